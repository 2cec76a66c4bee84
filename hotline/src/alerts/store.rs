//! The `alerts` table (migration 0010): one row per alert from raised to cleared, what was
//! sent for it, and who acknowledged it. Written by the watcher; read by the API and, at
//! start, by the watcher itself so that an alert active before a restart is carried on
//! rather than raised (and sent) again.

use hotline_core::{IdGenerator, Rng, UnixMillis};
use serde::Serialize;
use sqlx::{AnyPool, Row as _};

use super::engine::{Notice, NoticeKind, Restored, Rule};
use crate::db::StoreError;

/// One alert as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRow {
    pub id: String,
    pub rule: String,
    /// The rule's name in zh-CN.
    pub title: String,
    pub subject: String,
    pub severity: String,
    pub message: String,
    pub raised_at: UnixMillis,
    pub cleared_at: Option<UnixMillis>,
    pub active: bool,
    pub acked_by: String,
    pub acked_at: Option<UnixMillis>,
    pub reminders: i64,
    pub last_notified_at: UnixMillis,
    pub sms_queued: i64,
    pub webhook_delivered: i64,
    pub webhook_failed: i64,
}

const COLUMNS: &str = "id, rule, subject, severity, message, raised_at, cleared_at, acked_by, \
    acked_at, reminders, last_notified_at, sms_queued, webhook_delivered, webhook_failed";

fn from_row(r: &sqlx::any::AnyRow) -> Result<AlertRow, StoreError> {
    let rule: String = r.try_get("rule")?;
    let cleared_at: Option<i64> = r.try_get("cleared_at")?;
    Ok(AlertRow {
        id: r.try_get("id")?,
        title: Rule::parse(&rule).map_or_else(|| rule.clone(), |x| x.title_zh().to_string()),
        rule,
        subject: r.try_get("subject")?,
        severity: r.try_get("severity")?,
        message: r.try_get("message")?,
        raised_at: r.try_get("raised_at")?,
        cleared_at,
        active: cleared_at.is_none(),
        acked_by: r.try_get("acked_by")?,
        acked_at: r.try_get("acked_at")?,
        reminders: r.try_get("reminders")?,
        last_notified_at: r.try_get("last_notified_at")?,
        sms_queued: r.try_get("sms_queued")?,
        webhook_delivered: r.try_get("webhook_delivered")?,
        webhook_failed: r.try_get("webhook_failed")?,
    })
}

/// A new alert's id.
pub fn new_id(now: UnixMillis, rng: &dyn Rng) -> String {
    format!("al-{now}-{}", IdGenerator::token(rng, 6))
}

async fn insert(pool: &AnyPool, id: &str, n: &Notice) -> Result<(), StoreError> {
    let cleared = (n.kind == NoticeKind::Cleared).then_some(n.at);
    sqlx::query(
        "INSERT INTO alerts (id, rule, subject, severity, message, raised_at, cleared_at, \
         acked_by, acked_at, reminders, last_notified_at, sms_queued, webhook_delivered, \
         webhook_failed, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, '', NULL, $8, $9, 0, 0, 0, $9) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(n.rule.as_str())
    .bind(n.subject.clone())
    .bind(n.rule.severity().as_str())
    .bind(n.message.clone())
    .bind(n.raised_at)
    .bind(cleared)
    .bind(i64::from(n.reminders))
    .bind(n.at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Stores a notice of alert `id`: the row for `Raised`; the reminder count or the clearing
/// otherwise. A row missing because the database was down when the alert was raised is
/// written whole.
pub async fn record(pool: &AnyPool, id: &str, n: &Notice) -> Result<(), StoreError> {
    if n.kind == NoticeKind::Raised {
        return insert(pool, id, n).await;
    }
    let cleared = (n.kind == NoticeKind::Cleared).then_some(n.at);
    let r = sqlx::query(
        "UPDATE alerts SET message = $1, reminders = $2, \
         last_notified_at = $3, cleared_at = $4, updated_at = $3 WHERE id = $5",
    )
    .bind(n.message.clone())
    .bind(i64::from(n.reminders))
    .bind(n.at)
    .bind(cleared)
    .bind(id.to_string())
    .execute(pool)
    .await?;
    if r.rows_affected() == 0 {
        insert(pool, id, n).await?;
    }
    Ok(())
}

/// Counts what went out for alert `id`.
pub async fn count_sent(
    pool: &AnyPool,
    id: &str,
    sms_queued: i64,
    webhook_delivered: i64,
    webhook_failed: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE alerts SET sms_queued = sms_queued + $1, \
         webhook_delivered = webhook_delivered + $2, webhook_failed = webhook_failed + $3 \
         WHERE id = $4",
    )
    .bind(sms_queued)
    .bind(webhook_delivered)
    .bind(webhook_failed)
    .bind(id.to_string())
    .execute(pool)
    .await?;
    Ok(())
}

/// The alerts still active (not cleared), oldest first.
pub async fn open(pool: &AnyPool) -> Result<Vec<AlertRow>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM alerts WHERE cleared_at IS NULL ORDER BY raised_at, id"
    )))
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The active alerts, then the latest `recent` cleared ones (newest first).
pub async fn list(pool: &AnyPool, recent: i64) -> Result<Vec<AlertRow>, StoreError> {
    let mut out = open(pool).await?;
    out.reverse();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM alerts WHERE cleared_at IS NOT NULL \
         ORDER BY raised_at DESC, id DESC LIMIT $1"
    )))
    .bind(recent)
    .fetch_all(pool)
    .await?;
    for r in &rows {
        out.push(from_row(r)?);
    }
    Ok(out)
}

pub async fn get(pool: &AnyPool, id: &str) -> Result<Option<AlertRow>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM alerts WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Why an acknowledgement was refused.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error("no such alert")]
    NotFound,
    #[error("already acknowledged by {0}")]
    Already(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Marks alert `id` acknowledged by `user` (once: a second acknowledgement is refused).
pub async fn ack(
    pool: &AnyPool,
    id: &str,
    user: &str,
    now: UnixMillis,
) -> Result<AlertRow, AckError> {
    let r = sqlx::query(
        "UPDATE alerts SET acked_by = $1, acked_at = $2, updated_at = $2 \
         WHERE id = $3 AND acked_by = ''",
    )
    .bind(user.to_string())
    .bind(now)
    .bind(id.to_string())
    .execute(pool)
    .await
    .map_err(StoreError::from)?;
    let row = get(pool, id).await?.ok_or(AckError::NotFound)?;
    if r.rows_affected() == 0 {
        return Err(AckError::Already(row.acked_by));
    }
    Ok(row)
}

impl AlertRow {
    /// The engine's view of an active row (for [`super::AlertEngine::restore`]).
    pub fn restored(&self) -> Option<Restored> {
        Some(Restored {
            rule: Rule::parse(&self.rule)?,
            subject: self.subject.clone(),
            message: self.message.clone(),
            raised_at: self.raised_at,
            last_notice_at: self.last_notified_at,
            reminders: u32::try_from(self.reminders).unwrap_or(0),
            acked: !self.acked_by.is_empty(),
        })
    }
}

/// Rewrites the probe row: fails when the database refuses writes.
pub async fn probe_write(pool: &AnyPool, now: UnixMillis) -> Result<(), StoreError> {
    sqlx::query("UPDATE health_probe SET at = $1 WHERE id = 1")
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_core::SystemRng;

    fn notice(kind: NoticeKind, at: UnixMillis, reminders: u32) -> Notice {
        Notice {
            kind,
            rule: Rule::TrunkDown,
            subject: "e1".into(),
            message: format!("e1 不通 {at}"),
            at,
            raised_at: 1_000,
            reminders,
        }
    }

    hotline_testkit::db_test!(alerts_round_trip, |db| async move {
        let pool = &db.pool;
        let id = new_id(1_000, &SystemRng);
        record(pool, &id, &notice(NoticeKind::Raised, 1_000, 0)).await?;
        // Raised twice (a retry after a crash) stays one row.
        record(pool, &id, &notice(NoticeKind::Raised, 1_000, 0)).await?;
        record(pool, &id, &notice(NoticeKind::Repeat, 2_000, 1)).await?;
        count_sent(pool, &id, 2, 1, 0).await?;
        let open_now = open(pool).await?;
        assert_eq!(open_now.len(), 1);
        let a = &open_now[0];
        assert_eq!((a.reminders, a.sms_queued, a.webhook_delivered), (1, 2, 1));
        assert_eq!(
            (a.title.as_str(), a.severity.as_str()),
            ("中继中断", "critical")
        );
        let r = a.restored().unwrap();
        assert_eq!((r.last_notice_at, r.acked), (2_000, false));

        let acked = ack(pool, &id, "admin", 2_500).await?;
        assert_eq!(
            (acked.acked_by.as_str(), acked.acked_at),
            ("admin", Some(2_500))
        );
        assert!(matches!(
            ack(pool, &id, "sup", 2_600).await,
            Err(AckError::Already(by)) if by == "admin"
        ));
        assert!(matches!(
            ack(pool, "nope", "sup", 1).await,
            Err(AckError::NotFound)
        ));
        assert!(open(pool).await?[0].restored().unwrap().acked);

        record(pool, &id, &notice(NoticeKind::Cleared, 3_000, 1)).await?;
        assert!(open(pool).await?.is_empty());
        // A clear whose raise was never stored (database down then) is stored whole.
        let lost = new_id(4_000, &SystemRng);
        record(pool, &lost, &notice(NoticeKind::Cleared, 5_000, 0)).await?;
        let all = list(pool, 10).await?;
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|a| !a.active));
        assert!(all.iter().any(|a| a.id == lost));
        probe_write(pool, 6_000).await?;
        Ok(())
    });
}
