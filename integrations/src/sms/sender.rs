//! The sender: drains the outbox at the provider's rate, outside quiet hours, with retries.
//!
//! # No duplicate sends after a crash
//!
//! Every message has an idempotency key (its row id, given to the provider as the client
//! message id). A round of the sender:
//!
//! 1. **claims** up to one second's worth of due messages in one transaction:
//!    `queued → sending` (attempts + 1), committed *before* any request leaves;
//! 2. sends them (at most `concurrency` in flight, paced by the token bucket);
//! 3. **marks** every outcome in one transaction: `sent` (with the provider's id), `failed`,
//!    or back to `queued` with the next attempt time (exponential backoff).
//!
//! A crash (kill -9) between 2 and 3 leaves rows in `sending`: the provider may or may not
//! have them. Before every round (so at every start) those rows are **settled**, never sent
//! blindly: the sender asks the provider about each key (`status_url`): known → `sent`
//! without a new request; not known → `queued` (it never arrived, sending it is the first
//! send). A provider that cannot answer: when it de-duplicates by client message id
//! (`dedupes_by_key`) the message is sent again with the same key and the provider absorbs
//! the copy; otherwise the row becomes `unknown` (at most once: never sent twice, listed for
//! staff to check). So the real gateway must offer either a status query by client id or
//! de-duplication by client id for exactly-once; without both, we promise at-most-once for
//! the few messages in flight at the crash.
//!
//! One sender per database: claims are not meant to be shared by two processes.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use hotline_core::{Clock, UnixMillis};
use sqlx::{AnyPool, Row as _};

use super::SmsConfig;
use super::provider::{KeyStatus, OutgoingSms, SendOutcome, SmsProvider};
use super::schedule::{Backoff, QuietHours, RateLimiter};
use crate::error::Result;

/// How the sender paces and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderPolicy {
    pub rate_per_sec: u32,
    pub concurrency: u32,
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub quiet: QuietHours,
}

impl SenderPolicy {
    pub fn from_config(c: &SmsConfig) -> Self {
        Self {
            rate_per_sec: c.rate_per_sec.max(1),
            concurrency: c.concurrency.max(1),
            max_attempts: c.max_attempts.max(1),
            backoff: Backoff {
                base_ms: i64::from(c.retry_base_secs) * 1000,
                max_ms: i64::from(c.retry_max_secs) * 1000,
            },
            quiet: c.quiet_hours(),
        }
    }

    /// Messages claimed per round: one second's worth (at least `concurrency`, at most 500),
    /// which bounds what can be in doubt after a crash.
    pub fn chunk(&self) -> i64 {
        i64::from(self.rate_per_sec.max(self.concurrency).min(500))
    }
}

/// A message claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: String,
    pub batch_id: String,
    pub mobile: String,
    pub body: String,
    /// Attempts including this one.
    pub attempts: i64,
}

fn claimed_from_row(r: &sqlx::any::AnyRow) -> Result<Claimed> {
    Ok(Claimed {
        id: r.try_get("id")?,
        batch_id: r.try_get("batch_id")?,
        mobile: r.try_get("mobile")?,
        body: r.try_get("body")?,
        attempts: r.try_get("attempts")?,
    })
}

/// Step 1: `queued → sending` for up to `limit` due messages, committed before sending.
///
/// One statement, so that it takes the write lock before it reads: as a transaction that
/// first SELECTs and then UPDATEs, SQLite (WAL) refuses the upgrade at once with
/// `SQLITE_BUSY_SNAPSHOT` — the busy timeout does not apply — whenever a receipt was written
/// in between, and the round fails. `RETURNING` needs SQLite ≥ 3.35 (bundled) or PostgreSQL.
pub async fn claim_due(pool: &AnyPool, now: UnixMillis, limit: i64) -> Result<Vec<Claimed>> {
    claim(pool, now, limit, false).await
}

/// [`claim_due`] for the urgent messages only (staff notices), which quiet hours do not stop.
pub async fn claim_due_urgent(pool: &AnyPool, now: UnixMillis, limit: i64) -> Result<Vec<Claimed>> {
    claim(pool, now, limit, true).await
}

async fn claim(
    pool: &AnyPool,
    now: UnixMillis,
    limit: i64,
    urgent_only: bool,
) -> Result<Vec<Claimed>> {
    let rows = sqlx::query(
        "UPDATE sms_messages SET status = 'sending', claimed_at = $1, attempts = attempts + 1 \
         WHERE status = 'queued' AND id IN (SELECT id FROM sms_messages \
           WHERE status = 'queued' AND next_attempt_at <= $1 AND urgent >= $3 \
           ORDER BY urgent DESC, next_attempt_at, id LIMIT $2) \
         RETURNING id, batch_id, mobile, body, attempts, next_attempt_at, urgent",
    )
    .bind(now)
    .bind(limit)
    .bind(i64::from(urgent_only))
    .fetch_all(pool)
    .await?;
    let mut claimed = rows
        .iter()
        .map(|r| {
            Ok((
                (
                    -r.try_get::<i64, _>("urgent")?,
                    r.try_get::<i64, _>("next_attempt_at")?,
                ),
                claimed_from_row(r)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    // RETURNING has no order: urgent first, then the oldest due.
    claimed.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.id.cmp(&y.id)));
    Ok(claimed.into_iter().map(|(_, c)| c).collect())
}

/// Step 3: records the outcome of every claimed message in one transaction.
pub async fn record_outcomes(
    pool: &AnyPool,
    now: UnixMillis,
    policy: &SenderPolicy,
    outcomes: &[(Claimed, SendOutcome)],
) -> Result<()> {
    let mut tx = pool.begin().await?;
    for (m, out) in outcomes {
        match out {
            SendOutcome::Accepted { provider_id } => {
                // A receipt may already have moved the row on (delivered): keep that.
                sqlx::query(
                    "UPDATE sms_messages SET provider_id = $1, sent_at = $2, last_error = '', \
                     status = CASE WHEN status = 'sending' THEN 'sent' ELSE status END \
                     WHERE id = $3",
                )
                .bind(provider_id.clone())
                .bind(now)
                .bind(m.id.clone())
                .execute(&mut *tx)
                .await?;
            }
            SendOutcome::Rejected(e) => {
                sqlx::query(
                    "UPDATE sms_messages SET status = 'failed', last_error = $1 \
                     WHERE id = $2 AND status = 'sending'",
                )
                .bind(e.chars().take(300).collect::<String>())
                .bind(m.id.clone())
                .execute(&mut *tx)
                .await?;
            }
            SendOutcome::Retry(e) => {
                let give_up = m.attempts >= i64::from(policy.max_attempts);
                // A batch cancelled meanwhile does not get its message back in the queue.
                sqlx::query(
                    "UPDATE sms_messages SET last_error = $1, next_attempt_at = $2, \
                     status = CASE WHEN $3 = 1 THEN 'failed' \
                       WHEN batch_id IN (SELECT id FROM sms_batches WHERE status = 'cancelled') \
                       THEN 'cancelled' ELSE 'queued' END \
                     WHERE id = $4 AND status = 'sending'",
                )
                .bind(e.chars().take(300).collect::<String>())
                .bind(policy.backoff.next_attempt(now, m.attempts))
                .bind(i64::from(give_up))
                .bind(m.id.clone())
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Messages left `sending` (by a crash, or a failed mark).
pub async fn in_doubt(pool: &AnyPool) -> Result<Vec<Claimed>> {
    let rows = sqlx::query(
        "SELECT id, batch_id, mobile, body, attempts FROM sms_messages \
         WHERE status = 'sending' ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter().map(claimed_from_row).collect()
}

/// What settling the messages in doubt did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    /// The provider has them: marked sent, not sent again.
    pub known: u64,
    /// The provider never got them: queued for their first real send.
    pub requeued: u64,
    /// The provider cannot tell and does not de-duplicate: `unknown`, not sent again.
    pub unknown: u64,
    /// The question failed: still in doubt, asked again next round.
    pub pending: u64,
}

/// Settles every message in doubt by asking the provider (see the module documentation).
pub async fn settle_in_doubt(
    pool: &AnyPool,
    now: UnixMillis,
    provider: &dyn SmsProvider,
) -> Result<Settled> {
    let mut s = Settled::default();
    for m in in_doubt(pool).await? {
        let (status, provider_id) = match provider.status(&m.id).await {
            Ok(KeyStatus::Known { provider_id }) => {
                s.known += 1;
                ("sent", provider_id)
            }
            Ok(KeyStatus::NotKnown) => {
                s.requeued += 1;
                ("queued", String::new())
            }
            Ok(KeyStatus::Unsupported) if provider.dedupes_by_key() => {
                s.requeued += 1;
                ("queued", String::new())
            }
            Ok(KeyStatus::Unsupported) => {
                s.unknown += 1;
                ("unknown", String::new())
            }
            Err(e) => {
                tracing::warn!(error = %e, "sms: cannot ask the provider about a message in doubt");
                s.pending += 1;
                continue;
            }
        };
        // A message that never reached the provider was not an attempt.
        let attempts_back = i64::from(status == "queued");
        sqlx::query(
            "UPDATE sms_messages SET status = $1, provider_id = $2, next_attempt_at = $3, \
             sent_at = CASE WHEN $1 = 'sent' THEN $3 ELSE sent_at END, \
             attempts = attempts - $4 WHERE id = $5 AND status = 'sending'",
        )
        .bind(status)
        .bind(provider_id)
        .bind(now)
        .bind(attempts_back)
        .bind(m.id.clone())
        .execute(pool)
        .await?;
    }
    Ok(s)
}

/// When the next queued message is due.
pub async fn next_due_at(pool: &AnyPool) -> Result<Option<UnixMillis>> {
    Ok(sqlx::query_scalar::<_, Option<i64>>(
        "SELECT MIN(next_attempt_at) FROM sms_messages WHERE status = 'queued'",
    )
    .fetch_one(pool)
    .await?)
}

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Messages were handed to the provider (accepted, refused or to retry).
    Sent { accepted: u64, failed: u64 },
    /// Nothing due.
    Idle,
    /// Quiet hours until then: nothing sent.
    Quiet(UnixMillis),
}

/// The outbox driver: settles, claims, sends at the rate, marks.
#[derive(Debug)]
pub struct SmsSender {
    pool: AnyPool,
    provider: Arc<dyn SmsProvider>,
    policy: SenderPolicy,
    limiter: Option<RateLimiter>,
}

impl SmsSender {
    pub fn new(pool: AnyPool, provider: Arc<dyn SmsProvider>, policy: SenderPolicy) -> Self {
        Self {
            pool,
            provider,
            policy,
            limiter: None,
        }
    }

    /// Waits (real time) until the token bucket allows one more message.
    async fn pace(&mut self, clock: &dyn Clock) {
        let p = self.policy;
        let limiter = self.limiter.get_or_insert_with(|| {
            RateLimiter::new(clock.now_ms(), p.rate_per_sec, p.rate_per_sec)
        });
        loop {
            let now = clock.now_ms();
            match limiter.try_acquire(now) {
                Ok(()) => return,
                Err(at) => {
                    tokio::time::sleep(std::time::Duration::from_millis((at - now).max(1) as u64))
                        .await;
                }
            }
        }
    }

    /// One round: settle what is in doubt, then claim, send and mark one chunk.
    pub async fn run_round(&mut self, clock: &dyn Clock) -> Result<Round> {
        let now = clock.now_ms();
        let settled = settle_in_doubt(&self.pool, now, self.provider.as_ref()).await?;
        if settled != Settled::default() {
            tracing::warn!(
                known = settled.known,
                requeued = settled.requeued,
                unknown = settled.unknown,
                pending = settled.pending,
                "sms in-doubt messages settled"
            );
        }
        let quiet = self.policy.quiet.quiet_until(now);
        // Quiet hours hold back notices to the public, not alerts to the on-duty staff.
        let claimed = match quiet {
            Some(_) => claim_due_urgent(&self.pool, now, self.policy.chunk()).await?,
            None => claim_due(&self.pool, now, self.policy.chunk()).await?,
        };
        if claimed.is_empty() {
            return Ok(quiet.map_or(Round::Idle, Round::Quiet));
        }
        let mut outstanding: HashSet<String> = claimed.iter().map(|m| m.id.clone()).collect();
        let batches: BTreeSet<String> = claimed
            .iter()
            .filter(|m| !m.batch_id.is_empty())
            .map(|m| m.batch_id.clone())
            .collect();
        let mut results = Vec::with_capacity(claimed.len());
        let mut tasks = tokio::task::JoinSet::new();
        let mut keep = Vec::with_capacity(claimed.len());
        for m in claimed {
            self.pace(clock).await;
            while tasks.len() >= self.policy.concurrency as usize {
                if let Some(Ok(r)) = tasks.join_next().await {
                    keep.push(r);
                }
            }
            let provider = self.provider.clone();
            tasks.spawn(async move {
                let out = provider
                    .send(OutgoingSms {
                        key: &m.id,
                        mobile: &m.mobile,
                        text: &m.body,
                    })
                    .await;
                (m, out)
            });
        }
        while let Some(r) = tasks.join_next().await {
            if let Ok(r) = r {
                keep.push(r);
            }
        }
        let (mut accepted, mut failed) = (0, 0);
        for (m, out) in keep {
            outstanding.remove(&m.id);
            match &out {
                SendOutcome::Accepted { .. } => accepted += 1,
                _ => failed += 1,
            }
            results.push((m, out));
        }
        // A send task that died (it cannot, short of a bug) leaves its message in doubt:
        // it is settled by asking the provider in the next round, never resent blindly.
        if !outstanding.is_empty() {
            tracing::error!(
                count = outstanding.len(),
                "sms send tasks failed; their messages stay in doubt"
            );
        }
        record_outcomes(&self.pool, clock.now_ms(), &self.policy, &results).await?;
        for b in batches {
            self.log_if_finished(&b).await?;
        }
        Ok(Round::Sent { accepted, failed })
    }

    async fn log_if_finished(&self, batch_id: &str) -> Result<()> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM sms_messages WHERE batch_id = $1 GROUP BY status",
        )
        .bind(batch_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut open = 0;
        let (mut sent, mut failed) = (0, 0);
        for r in &rows {
            let status: String = r.try_get("status")?;
            let n: i64 = r.try_get("n")?;
            match status.as_str() {
                "held" | "queued" | "sending" => open += n,
                "sent" | "delivered" | "undelivered" => sent += n,
                "failed" | "unknown" => failed += n,
                _ => {}
            }
        }
        if open == 0 {
            tracing::info!("sms batch finished batch={batch_id} sent={sent} failed={failed}");
        }
        Ok(())
    }

    /// Runs until `shutdown` completes: rounds back to back while messages are due, else
    /// sleeps until the next is due, the quiet hours end, or `wake` is notified (a batch was
    /// confirmed).
    pub async fn run(
        mut self,
        clock: Arc<dyn Clock>,
        wake: Arc<tokio::sync::Notify>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut quiet_logged = false;
        loop {
            let wait_ms = match self.run_round(clock.as_ref()).await {
                Ok(Round::Sent { .. }) => {
                    quiet_logged = false;
                    0
                }
                Ok(Round::Quiet(until)) => {
                    if !quiet_logged {
                        tracing::info!(resume_at_ms = until, "sms quiet hours: sending paused");
                        quiet_logged = true;
                    }
                    (until - clock.now_ms()).clamp(100, 60_000)
                }
                Ok(Round::Idle) => match next_due_at(&self.pool).await {
                    Ok(Some(t)) => (t - clock.now_ms()).clamp(20, 60_000),
                    _ => 60_000,
                },
                Err(e) => {
                    tracing::error!(error = %e, "sms round failed");
                    5_000
                }
            };
            if wait_ms == 0 {
                tokio::select! {
                    biased;
                    () = &mut shutdown => return,
                    () = std::future::ready(()) => continue,
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(std::time::Duration::from_millis(wait_ms as u64)) => {}
            }
        }
    }
}
