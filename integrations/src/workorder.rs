//! 12345 work orders: the platform pushes orders to us (JSON, HMAC-SHA256 signed with a
//! timestamp and a nonce; stale or replayed requests are refused), each stored once by its
//! order number; our replies and results go back through an outbox table, retried with
//! exponential backoff until the platform acknowledges them, surviving restarts.
//!
//! Signature (both directions, docs/formats.md): hex HMAC-SHA256 with the shared secret over
//! `timestamp + "\n" + nonce + "\n" + body`, in the headers `X-12345-Timestamp` (Unix
//! seconds), `X-12345-Nonce` and `X-12345-Signature`.
//!
//! Sans-IO parts: [`SignatureVerifier`] and [`Backoff`] take `now`; [`OutboxDriver`] is the
//! thin async driver that does the HTTP.

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use hotline_core::{Clock, IdGenerator, Rng, UnixMillis};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::{AnyPool, Row as _};

use crate::error::{IntegrationError, Result};
use crate::text::parse_beijing_datetime;

pub const TIMESTAMP_HEADER: &str = "x-12345-timestamp";
pub const NONCE_HEADER: &str = "x-12345-nonce";
pub const SIGNATURE_HEADER: &str = "x-12345-signature";

type HmacSha256 = Hmac<Sha256>;

/// Configuration of the 12345 integration. `Debug` hides the secret (issue 12: secrets never
/// reach logs or debug output).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Platform12345Config {
    /// Shared secret for the HMAC; empty disables the push endpoint (503).
    pub secret: String,
    /// Where replies are pushed; empty disables delivery (they wait in the outbox).
    pub reply_url: String,
    /// Requests whose timestamp is further than this from our clock are refused.
    pub max_skew_secs: u32,
    pub retry_base_secs: u32,
    pub retry_max_secs: u32,
}

impl std::fmt::Debug for Platform12345Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform12345Config")
            .field("secret", &if self.secret.is_empty() { "" } else { "***" })
            .field("reply_url", &self.reply_url)
            .field("max_skew_secs", &self.max_skew_secs)
            .field("retry_base_secs", &self.retry_base_secs)
            .field("retry_max_secs", &self.retry_max_secs)
            .finish()
    }
}

impl Default for Platform12345Config {
    fn default() -> Self {
        Self {
            secret: String::new(),
            reply_url: String::new(),
            max_skew_secs: 300,
            retry_base_secs: 10,
            retry_max_secs: 3600,
        }
    }
}

/// Signs a message: hex HMAC-SHA256 over `timestamp\nnonce\nbody`.
pub fn sign(secret: &[u8], timestamp: &str, nonce: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(nonce.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Why a signed request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("missing or malformed signature headers")]
    Malformed,
    #[error("timestamp outside the allowed window")]
    Stale,
    #[error("signature does not match")]
    BadSignature,
    #[error("nonce already used")]
    Replayed,
}

impl AuthFailure {
    pub fn message_zh(self) -> &'static str {
        match self {
            Self::Malformed => "缺少或格式错误的签名头",
            Self::Stale => "请求时间戳已过期",
            Self::BadSignature => "签名校验失败",
            Self::Replayed => "重复的请求（nonce 已使用）",
        }
    }
}

/// Checks the signature and the timestamp of a request (sans-IO). The nonce's freshness is
/// checked afterwards against storage ([`accept_nonce`]).
#[derive(Debug, Clone)]
pub struct SignatureVerifier {
    secret: Vec<u8>,
    max_skew_ms: i64,
}

impl SignatureVerifier {
    pub fn new(secret: &[u8], max_skew_secs: u32) -> Self {
        Self {
            secret: secret.to_vec(),
            max_skew_ms: i64::from(max_skew_secs) * 1000,
        }
    }

    pub fn max_skew_ms(&self) -> i64 {
        self.max_skew_ms
    }

    pub fn verify(
        &self,
        now: UnixMillis,
        timestamp: &str,
        nonce: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<(), AuthFailure> {
        let ts: i64 = timestamp.parse().map_err(|_| AuthFailure::Malformed)?;
        if !(8..=64).contains(&nonce.len())
            || !nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(AuthFailure::Malformed);
        }
        let sig = hex::decode(signature.trim()).map_err(|_| AuthFailure::Malformed)?;
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(timestamp.as_bytes());
        mac.update(b"\n");
        mac.update(nonce.as_bytes());
        mac.update(b"\n");
        mac.update(body);
        // Constant-time comparison.
        mac.verify_slice(&sig)
            .map_err(|_| AuthFailure::BadSignature)?;
        if (ts.saturating_mul(1000) - now).abs() > self.max_skew_ms {
            return Err(AuthFailure::Stale);
        }
        Ok(())
    }
}

/// Records a nonce; `false` when it was already used (a replay). Nonces older than twice the
/// allowed skew are forgotten: requests that old are refused as stale anyway.
pub async fn accept_nonce(
    pool: &AnyPool,
    now: UnixMillis,
    nonce: &str,
    max_skew_ms: i64,
) -> Result<bool> {
    sqlx::query("DELETE FROM workorder_nonces WHERE seen_at < $1")
        .bind(now - 2 * max_skew_ms)
        .execute(pool)
        .await?;
    let r = sqlx::query(
        "INSERT INTO workorder_nonces (nonce, seen_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING",
    )
    .bind(nonce.to_string())
    .bind(now)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A work order as the platform sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkOrderIn {
    pub order_no: String,
    pub title: String,
    pub content: String,
    #[serde(default)]
    pub caller_name: String,
    #[serde(default)]
    pub caller_phone: String,
    #[serde(default)]
    pub category: String,
    /// Beijing time, `YYYY-MM-DD HH:MM:SS`.
    pub deadline: String,
}

/// A stored work order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkOrder {
    pub id: String,
    pub order_no: String,
    pub title: String,
    pub content: String,
    pub caller_name: String,
    pub caller_phone: String,
    pub category: String,
    pub deadline_at: UnixMillis,
    pub status: String,
    pub ticket_id: String,
    pub received_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl WorkOrder {
    pub fn masked(mut self) -> Self {
        self.caller_phone = hotline_core::mask::mask_phone(&self.caller_phone);
        self
    }
}

const WO_COLS: &str = "id, order_no, title, content, caller_name, caller_phone, category, \
    deadline_at, status, ticket_id, received_at, updated_at";

fn order_from_row(r: &sqlx::any::AnyRow) -> Result<WorkOrder> {
    Ok(WorkOrder {
        id: r.try_get("id")?,
        order_no: r.try_get("order_no")?,
        title: r.try_get("title")?,
        content: r.try_get("content")?,
        caller_name: r.try_get("caller_name")?,
        caller_phone: r.try_get("caller_phone")?,
        category: r.try_get("category")?,
        deadline_at: r.try_get("deadline_at")?,
        status: r.try_get("status")?,
        ticket_id: r.try_get("ticket_id")?,
        received_at: r.try_get("received_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl WorkOrderIn {
    pub fn validate(&self) -> Result<UnixMillis> {
        let bad = |m: &str| IntegrationError::Invalid(m.to_string());
        if self.order_no.is_empty()
            || self.order_no.len() > 64
            || !self
                .order_no
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad("工单编号无效"));
        }
        if self.title.trim().is_empty() || self.content.trim().is_empty() {
            return Err(bad("工单标题和内容不能为空"));
        }
        parse_beijing_datetime(&self.deadline)
            .ok_or_else(|| bad("办理时限格式应为 YYYY-MM-DD HH:MM:SS"))
    }
}

/// Stores a pushed work order once: returns it and whether it was new.
pub async fn receive_order(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    order: &WorkOrderIn,
) -> Result<(WorkOrder, bool)> {
    let deadline_at = order.validate()?;
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO workorders_12345 ({WO_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
         'open', '', $9, $9) ON CONFLICT (order_no) DO NOTHING"
    )))
    .bind(IdGenerator::new_id(now, rng))
    .bind(order.order_no.clone())
    .bind(order.title.trim().to_string())
    .bind(order.content.trim().to_string())
    .bind(order.caller_name.trim().to_string())
    .bind(order.caller_phone.trim().to_string())
    .bind(order.category.trim().to_string())
    .bind(deadline_at)
    .bind(now)
    .execute(pool)
    .await?;
    let stored = get_order(pool, &order.order_no)
        .await?
        .ok_or_else(|| IntegrationError::NotFound("工单".into()))?;
    Ok((stored, r.rows_affected() == 1))
}

pub async fn get_order(pool: &AnyPool, order_no: &str) -> Result<Option<WorkOrder>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {WO_COLS} FROM workorders_12345 WHERE order_no = $1"
    )))
    .bind(order_no.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(order_from_row).transpose()
}

/// Work orders, newest first; `status` filters when not empty.
pub async fn list_orders(pool: &AnyPool, status: &str, limit: i64) -> Result<Vec<WorkOrder>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {WO_COLS} FROM workorders_12345 WHERE ($1 = '' OR status = $1) \
         ORDER BY received_at DESC, order_no LIMIT $2"
    )))
    .bind(status.to_string())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(order_from_row).collect()
}

/// Links the CRM ticket made from an order.
pub async fn set_ticket(
    pool: &AnyPool,
    now: UnixMillis,
    order_no: &str,
    ticket: &str,
) -> Result<()> {
    sqlx::query("UPDATE workorders_12345 SET ticket_id = $1, updated_at = $2 WHERE order_no = $3")
        .bind(ticket.to_string())
        .bind(now)
        .bind(order_no.to_string())
        .execute(pool)
        .await?;
    Ok(())
}

/// What we send back: a reply (答复) or the final result (办结).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    Reply,
    Result,
}

impl ReplyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reply => "reply",
            Self::Result => "result",
        }
    }
}

/// The JSON pushed to the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyOut {
    pub order_no: String,
    pub kind: ReplyKind,
    pub content: String,
    pub handled_by: String,
    pub at: UnixMillis,
}

/// Queues a reply for delivery and moves the order to `replied` (or `closed` for a result).
pub async fn enqueue_reply(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    order_no: &str,
    kind: ReplyKind,
    content: &str,
    handled_by: &str,
) -> Result<String> {
    if content.trim().is_empty() {
        return Err(IntegrationError::Invalid("答复内容不能为空".into()));
    }
    let mut tx = pool.begin().await?;
    let status = match kind {
        ReplyKind::Reply => "replied",
        ReplyKind::Result => "closed",
    };
    let n =
        sqlx::query("UPDATE workorders_12345 SET status = $1, updated_at = $2 WHERE order_no = $3")
            .bind(status)
            .bind(now)
            .bind(order_no.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if n == 0 {
        return Err(IntegrationError::NotFound(format!("工单 {order_no}")));
    }
    let payload = serde_json::to_string(&ReplyOut {
        order_no: order_no.to_string(),
        kind,
        content: content.trim().to_string(),
        handled_by: handled_by.to_string(),
        at: now,
    })
    .map_err(|e| IntegrationError::Invalid(e.to_string()))?;
    let id = IdGenerator::new_id(now, rng);
    sqlx::query(
        "INSERT INTO outbox_12345 (id, order_no, kind, payload, attempts, next_attempt_at, \
         last_error, delivered_at, created_at) VALUES ($1, $2, $3, $4, 0, $5, '', 0, $5)",
    )
    .bind(id.clone())
    .bind(order_no.to_string())
    .bind(kind.as_str())
    .bind(payload)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// A queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: String,
    pub order_no: String,
    pub kind: String,
    pub payload: String,
    pub attempts: i64,
    pub next_attempt_at: UnixMillis,
    pub last_error: String,
    pub delivered_at: UnixMillis,
}

const OB_COLS: &str =
    "id, order_no, kind, payload, attempts, next_attempt_at, last_error, delivered_at";

fn msg_from_row(r: &sqlx::any::AnyRow) -> Result<OutboxMessage> {
    Ok(OutboxMessage {
        id: r.try_get("id")?,
        order_no: r.try_get("order_no")?,
        kind: r.try_get("kind")?,
        payload: r.try_get("payload")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

/// Undelivered messages due at `now`, oldest first.
pub async fn due_messages(
    pool: &AnyPool,
    now: UnixMillis,
    limit: i64,
) -> Result<Vec<OutboxMessage>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {OB_COLS} FROM outbox_12345 WHERE delivered_at = 0 AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, id LIMIT $2"
    )))
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(msg_from_row).collect()
}

/// Messages of one order (delivered or not).
pub async fn messages_of(pool: &AnyPool, order_no: &str) -> Result<Vec<OutboxMessage>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {OB_COLS} FROM outbox_12345 WHERE order_no = $1 ORDER BY created_at, id"
    )))
    .bind(order_no.to_string())
    .fetch_all(pool)
    .await?;
    rows.iter().map(msg_from_row).collect()
}

/// When the next undelivered message is due.
pub async fn next_due_at(pool: &AnyPool) -> Result<Option<UnixMillis>> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT next_attempt_at FROM outbox_12345 WHERE delivered_at = 0 \
         ORDER BY next_attempt_at LIMIT 1",
    )
    .fetch_optional(pool)
    .await?)
}

async fn mark_delivered(pool: &AnyPool, id: &str, now: UnixMillis) -> Result<()> {
    sqlx::query("UPDATE outbox_12345 SET delivered_at = $1, attempts = attempts + 1, last_error = '' WHERE id = $2")
        .bind(now)
        .bind(id.to_string())
        .execute(pool)
        .await?;
    Ok(())
}

async fn mark_failed(pool: &AnyPool, id: &str, next: UnixMillis, error: &str) -> Result<()> {
    let error: String = error.chars().take(500).collect();
    sqlx::query("UPDATE outbox_12345 SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE id = $3")
        .bind(next)
        .bind(error)
        .bind(id.to_string())
        .execute(pool)
        .await?;
    Ok(())
}

/// Exponential backoff (sans-IO): base · 2^(attempts−1), capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: i64,
    pub max_ms: i64,
}

impl Backoff {
    /// When to try again after the `attempts`-th failed attempt (1 = the first).
    pub fn next_attempt(&self, now: UnixMillis, attempts: i64) -> UnixMillis {
        let exp = (attempts - 1).clamp(0, 30) as u32;
        now + self.base_ms.saturating_mul(1i64 << exp).min(self.max_ms)
    }
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    pub delivered: u64,
    pub failed: u64,
}

/// The async driver of the outbox: posts due messages, signed, to the platform's URL.
/// A message counts as acknowledged when the platform answers 2xx. (`Debug` leaves the
/// secret out.)
#[derive(Clone)]
pub struct OutboxDriver {
    pool: AnyPool,
    client: reqwest::Client,
    url: String,
    secret: Vec<u8>,
    backoff: Backoff,
}

impl std::fmt::Debug for OutboxDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxDriver")
            .field("url", &self.url)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl OutboxDriver {
    pub fn new(pool: AnyPool, config: &Platform12345Config) -> Self {
        Self {
            pool,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(15))
                .build()
                .unwrap_or_default(),
            url: config.reply_url.clone(),
            secret: config.secret.as_bytes().to_vec(),
            backoff: Backoff {
                base_ms: i64::from(config.retry_base_secs) * 1000,
                max_ms: i64::from(config.retry_max_secs) * 1000,
            },
        }
    }

    async fn post(&self, now: UnixMillis, rng: &dyn Rng, body: &str) -> Result<(), String> {
        let ts = (now / 1000).to_string();
        let nonce = IdGenerator::token(rng, 16);
        let sig = sign(&self.secret, &ts, &nonce, body.as_bytes());
        let resp = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, ts)
            .header(NONCE_HEADER, nonce)
            .header(SIGNATURE_HEADER, sig)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("platform answered {}", resp.status()))
        }
    }

    /// Delivers every message due at `now` once.
    pub async fn run_once(&self, now: UnixMillis, rng: &dyn Rng) -> Result<DeliveryStats> {
        let mut stats = DeliveryStats::default();
        if self.url.is_empty() {
            return Ok(stats);
        }
        for m in due_messages(&self.pool, now, 100).await? {
            match self.post(now, rng, &m.payload).await {
                Ok(()) => {
                    mark_delivered(&self.pool, &m.id, now).await?;
                    stats.delivered += 1;
                }
                Err(e) => {
                    tracing::warn!(order = %m.order_no, attempts = m.attempts + 1, error = %e, "12345 reply not delivered");
                    let next = self.backoff.next_attempt(now, m.attempts + 1);
                    mark_failed(&self.pool, &m.id, next, &e).await?;
                    stats.failed += 1;
                }
            }
        }
        Ok(stats)
    }

    /// Runs until `shutdown` completes: a round whenever a message is due or `wake` is
    /// notified (a new reply was queued).
    pub async fn run(
        self,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
        wake: Arc<tokio::sync::Notify>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let now = clock.now_ms();
            if let Err(e) = self.run_once(now, rng.as_ref()).await {
                tracing::error!(error = %e, "12345 outbox round failed");
            }
            let wait_ms = match next_due_at(&self.pool).await {
                Ok(Some(t)) => (t - clock.now_ms()).clamp(100, 60_000),
                _ => 60_000,
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(std::time::Duration::from_millis(wait_ms as u64)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_refuse() {
        let v = SignatureVerifier::new(b"secret", 300);
        let now = 1_764_000_000_000;
        let ts = (now / 1000).to_string();
        let body = br#"{"order_no":"A1"}"#;
        let sig = sign(b"secret", &ts, "nonce-0001", body);
        assert_eq!(v.verify(now, &ts, "nonce-0001", &sig, body), Ok(()));
        assert_eq!(
            v.verify(now, &ts, "nonce-0001", &sig, b"{}"),
            Err(AuthFailure::BadSignature)
        );
        assert_eq!(
            v.verify(now, &ts, "nonce-0002", &sig, body),
            Err(AuthFailure::BadSignature)
        );
        let wrong_key = sign(b"other", &ts, "nonce-0001", body);
        assert_eq!(
            v.verify(now, &ts, "nonce-0001", &wrong_key, body),
            Err(AuthFailure::BadSignature)
        );
        assert_eq!(
            v.verify(now + 301_000, &ts, "nonce-0001", &sig, body),
            Err(AuthFailure::Stale)
        );
        assert_eq!(
            v.verify(now, "x", "nonce-0001", &sig, body),
            Err(AuthFailure::Malformed)
        );
        assert_eq!(
            v.verify(now, &ts, "short", &sig, body),
            Err(AuthFailure::Malformed)
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            base_ms: 10_000,
            max_ms: 60_000,
        };
        assert_eq!(b.next_attempt(0, 1), 10_000);
        assert_eq!(b.next_attempt(0, 2), 20_000);
        assert_eq!(b.next_attempt(0, 3), 40_000);
        assert_eq!(b.next_attempt(0, 4), 60_000);
        assert_eq!(b.next_attempt(0, 100), 60_000);
    }
}
