//! What administrators change in the web console instead of the files (issue 10): queue
//! settings that override the configuration's `ivr.acd.queues[]`, and special service days
//! that are merged into the IVR flow's hours. Both tables are in migration 0011.
//!
//! The writers take a connection inside the caller's transaction, so that the HTTP layer can
//! write, audit and apply the change to the running contact centre as one unit (a change
//! the runtime refuses is rolled back). Edits carry the version they were made from; a stale
//! one is refused with [`StoreError::Stale`].

use hotline_core::UnixMillis;
use hotline_ivr::civil::{Date, TimeOfDay};
use hotline_ivr::flow::SpecialDay;
use hotline_ivr::queue::{QueueConfig, Strategy};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Db, StoreError};

/// One queue's edited settings (all the fields an administrator may change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueOverride {
    pub queue: String,
    pub strategy: Strategy,
    pub announce_every_ms: u64,
    pub max_wait_ms: u64,
    pub callback_key: String,
    pub moh: String,
    /// 1 after the first edit; 0 means "no edit yet" where a version is asked for.
    pub version: i64,
    pub updated_by: String,
    pub updated_at: UnixMillis,
}

impl QueueOverride {
    /// `base` (the configuration's queue) with these settings.
    pub fn apply(&self, base: &QueueConfig) -> QueueConfig {
        QueueConfig {
            name: base.name.clone(),
            strategy: self.strategy,
            announce_every_ms: self.announce_every_ms,
            max_wait_ms: self.max_wait_ms,
            callback_key: self.callback_key.clone(),
            moh: self.moh.clone(),
        }
    }
}

/// One special service day from the administrators' calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceDay {
    pub date: Date,
    pub closed: bool,
    pub open: Option<TimeOfDay>,
    pub close: Option<TimeOfDay>,
    pub note: String,
    pub version: i64,
    pub updated_by: String,
    pub updated_at: UnixMillis,
}

impl ServiceDay {
    /// The flow's form of this day.
    pub fn special(&self) -> SpecialDay {
        SpecialDay {
            date: self.date,
            closed: self.closed,
            open: self.open,
            close: self.close,
            note: self.note.clone(),
        }
    }
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::LongestIdle => "longest_idle",
        Strategy::RoundRobin => "round_robin",
        Strategy::RingAll => "ring_all",
    }
}

fn strategy_of(s: &str) -> Result<Strategy, StoreError> {
    match s {
        "longest_idle" => Ok(Strategy::LongestIdle),
        "round_robin" => Ok(Strategy::RoundRobin),
        "ring_all" => Ok(Strategy::RingAll),
        other => Err(StoreError::Corrupt(format!("queue strategy {other:?}"))),
    }
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn queue_row(r: &AnyRow) -> Result<QueueOverride, StoreError> {
    let unsigned = |col: &str| -> Result<u64, StoreError> {
        let v: i64 = r.try_get(col)?;
        u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} {v}")))
    };
    Ok(QueueOverride {
        queue: r.try_get("queue")?,
        strategy: strategy_of(&r.try_get::<String, _>("strategy")?)?,
        announce_every_ms: unsigned("announce_every_ms")?,
        max_wait_ms: unsigned("max_wait_ms")?,
        callback_key: r.try_get("callback_key")?,
        moh: r.try_get("moh")?,
        version: r.try_get("version")?,
        updated_by: r.try_get("updated_by")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn day_row(r: &AnyRow) -> Result<ServiceDay, StoreError> {
    let corrupt = |e: hotline_ivr::civil::CivilParseError| StoreError::Corrupt(e.to_string());
    let time = |col: &str| -> Result<Option<TimeOfDay>, StoreError> {
        let v: String = r.try_get(col)?;
        if v.is_empty() {
            Ok(None)
        } else {
            v.parse().map(Some).map_err(corrupt)
        }
    };
    Ok(ServiceDay {
        date: r.try_get::<String, _>("day")?.parse().map_err(corrupt)?,
        closed: r.try_get::<i64, _>("closed")? != 0,
        open: time("open_at")?,
        close: time("close_at")?,
        note: r.try_get("note")?,
        version: r.try_get("version")?,
        updated_by: r.try_get("updated_by")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const QUEUE_COLUMNS: &str = "queue, strategy, announce_every_ms, max_wait_ms, callback_key, moh, \
                             version, updated_by, updated_at";
const DAY_COLUMNS: &str = "day, closed, open_at, close_at, note, version, updated_by, updated_at";

impl Db {
    /// Every queue's edited settings, by queue name.
    pub async fn queue_overrides(&self) -> Result<Vec<QueueOverride>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {QUEUE_COLUMNS} FROM queue_settings ORDER BY queue"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(queue_row).collect()
    }

    /// The calendar's special days, by date.
    pub async fn service_days(&self) -> Result<Vec<ServiceDay>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        service_days(&mut conn).await
    }

    /// The calendar's days as the flow takes them (what every library load merges in).
    pub async fn special_days(&self) -> Result<Vec<hotline_ivr::flow::SpecialDay>, StoreError> {
        Ok(self
            .service_days()
            .await?
            .iter()
            .map(|d| d.special())
            .collect())
    }
}

/// The calendar's special days on `conn` (inside a transaction it sees its own writes).
pub async fn service_days(conn: &mut AnyConnection) -> Result<Vec<ServiceDay>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DAY_COLUMNS} FROM service_days ORDER BY day"
    )))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(day_row).collect()
}

fn stale(what: &str) -> StoreError {
    StoreError::Stale(format!("{what}已被他人修改，请刷新后重试"))
}

/// Stores `settings` as the queue's override, made from `version` (0: from the
/// configuration's values, when no edit exists yet). Returns the stored row (version + 1).
pub async fn put_queue_override(
    conn: &mut AnyConnection,
    now: UnixMillis,
    settings: &QueueConfig,
    version: i64,
    by: &str,
) -> Result<QueueOverride, StoreError> {
    let what = format!("队列 {} 的设置", settings.name);
    let next = version + 1;
    let result = if version == 0 {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO queue_settings ({QUEUE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )))
        .bind(&settings.name)
        .bind(strategy_name(settings.strategy))
        .bind(ms(settings.announce_every_ms))
        .bind(ms(settings.max_wait_ms))
        .bind(&settings.callback_key)
        .bind(&settings.moh)
        .bind(next)
        .bind(by)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(|e| match StoreError::from_insert(e, "") {
            // Someone else made the first edit meanwhile.
            StoreError::Conflict(_) => stale(&what),
            other => other,
        })?
    } else {
        sqlx::query(
            "UPDATE queue_settings SET strategy = $1, announce_every_ms = $2, max_wait_ms = $3, \
             callback_key = $4, moh = $5, version = $6, updated_by = $7, updated_at = $8 \
             WHERE queue = $9 AND version = $10",
        )
        .bind(strategy_name(settings.strategy))
        .bind(ms(settings.announce_every_ms))
        .bind(ms(settings.max_wait_ms))
        .bind(&settings.callback_key)
        .bind(&settings.moh)
        .bind(next)
        .bind(by)
        .bind(now)
        .bind(&settings.name)
        .bind(version)
        .execute(&mut *conn)
        .await?
    };
    if result.rows_affected() != 1 {
        return Err(stale(&what));
    }
    Ok(QueueOverride {
        queue: settings.name.clone(),
        strategy: settings.strategy,
        announce_every_ms: settings.announce_every_ms,
        max_wait_ms: settings.max_wait_ms,
        callback_key: settings.callback_key.clone(),
        moh: settings.moh.clone(),
        version: next,
        updated_by: by.to_string(),
        updated_at: now,
    })
}

fn time_text(t: Option<TimeOfDay>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

/// Adds a special day; a date already in the calendar is a conflict.
pub async fn insert_service_day(
    conn: &mut AnyConnection,
    now: UnixMillis,
    day: &SpecialDay,
    by: &str,
) -> Result<ServiceDay, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO service_days ({DAY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, 1, $6, $7)"
    )))
    .bind(day.date.to_string())
    .bind(i64::from(day.closed))
    .bind(time_text(day.open))
    .bind(time_text(day.close))
    .bind(&day.note)
    .bind(by)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::from_insert(e, &format!("{} 的特殊日期设置", day.date)))?;
    Ok(stored(day, 1, by, now))
}

fn stored(day: &SpecialDay, version: i64, by: &str, now: UnixMillis) -> ServiceDay {
    ServiceDay {
        date: day.date,
        closed: day.closed,
        open: day.open,
        close: day.close,
        note: day.note.clone(),
        version,
        updated_by: by.to_string(),
        updated_at: now,
    }
}

/// Changes the special day of `day.date`, made from `version`.
pub async fn update_service_day(
    conn: &mut AnyConnection,
    now: UnixMillis,
    day: &SpecialDay,
    version: i64,
    by: &str,
) -> Result<ServiceDay, StoreError> {
    let result = sqlx::query(
        "UPDATE service_days SET closed = $1, open_at = $2, close_at = $3, note = $4, \
         version = $5, updated_by = $6, updated_at = $7 WHERE day = $8 AND version = $9",
    )
    .bind(i64::from(day.closed))
    .bind(time_text(day.open))
    .bind(time_text(day.close))
    .bind(&day.note)
    .bind(version + 1)
    .bind(by)
    .bind(now)
    .bind(day.date.to_string())
    .bind(version)
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() == 1 {
        return Ok(stored(day, version + 1, by, now));
    }
    let exists = sqlx::query("SELECT version FROM service_days WHERE day = $1")
        .bind(day.date.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    Err(match exists {
        Some(_) => stale(&format!("{} 的特殊日期设置", day.date)),
        None => StoreError::NotFound(format!("{} 的特殊日期设置", day.date)),
    })
}

/// Removes the special day of `date`; returns what it was.
pub async fn delete_service_day(
    conn: &mut AnyConnection,
    date: Date,
) -> Result<ServiceDay, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DAY_COLUMNS} FROM service_days WHERE day = $1"
    )))
    .bind(date.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("{date} 的特殊日期设置")))?;
    let day = day_row(&row)?;
    sqlx::query("DELETE FROM service_days WHERE day = $1")
        .bind(date.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, closed: bool, note: &str) -> SpecialDay {
        SpecialDay {
            date: date.parse().unwrap(),
            closed,
            open: (!closed).then(|| "09:00".parse().unwrap()),
            close: (!closed).then(|| "12:30".parse().unwrap()),
            note: note.into(),
        }
    }

    hotline_testkit::db_test!(queue_overrides_are_versioned, |t| async move {
        let db = Db::from_pool(t.pool.clone(), &t.url);
        assert!(db.queue_overrides().await?.is_empty());
        let mut q = QueueConfig::new("hotline");
        q.strategy = Strategy::RoundRobin;
        q.announce_every_ms = 45_000;
        q.callback_key = "#".into();
        let mut conn = db.pool.acquire().await?;
        let v1 = put_queue_override(&mut conn, 10, &q, 0, "admin").await?;
        assert_eq!(v1.version, 1);
        // A second "first edit" from the config values is stale.
        let again = put_queue_override(&mut conn, 11, &q, 0, "other").await;
        assert!(matches!(again, Err(StoreError::Stale(_))), "{again:?}");
        q.max_wait_ms = 0;
        let v2 = put_queue_override(&mut conn, 12, &q, 1, "admin").await?;
        assert_eq!(v2.version, 2);
        let stale_edit = put_queue_override(&mut conn, 13, &q, 1, "other").await;
        assert!(matches!(stale_edit, Err(StoreError::Stale(m)) if m.contains("刷新")));
        drop(conn);
        let all = db.queue_overrides().await?;
        assert_eq!(all, vec![v2.clone()]);
        assert_eq!(all[0].apply(&QueueConfig::new("hotline")), q);
        Ok(())
    });

    hotline_testkit::db_test!(service_days_round_trip, |t| async move {
        let db = Db::from_pool(t.pool.clone(), &t.url);
        let mut conn = db.pool.acquire().await?;
        let closed =
            insert_service_day(&mut conn, 5, &day("2027-02-06", true, "春节"), "a").await?;
        let short = day("2026-12-31", false, "系统维护");
        insert_service_day(&mut conn, 6, &short, "a").await?;
        let dup = insert_service_day(&mut conn, 7, &short, "a").await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        drop(conn);
        let days = db.service_days().await?;
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].special(), short, "ordered by date, times kept");
        assert_eq!(days[1], closed);
        assert_eq!(days[1].open, None);

        let mut tx = db.pool.begin().await?;
        let edited = day("2026-12-31", true, "全天维护");
        let v2 = update_service_day(&mut tx, 8, &edited, 1, "b").await?;
        assert_eq!(v2.version, 2);
        let stale_edit = update_service_day(&mut tx, 9, &edited, 1, "c").await;
        assert!(
            matches!(stale_edit, Err(StoreError::Stale(_))),
            "{stale_edit:?}"
        );
        let missing = update_service_day(&mut tx, 9, &day("2026-01-01", true, ""), 1, "c").await;
        assert!(
            matches!(missing, Err(StoreError::NotFound(_))),
            "{missing:?}"
        );
        // Inside the transaction the new state is visible; rolled back, it is gone.
        assert_eq!(service_days(&mut tx).await?[0].note, "全天维护");
        tx.rollback().await?;
        assert_eq!(db.service_days().await?[0].note, "系统维护");

        let mut conn = db.pool.acquire().await?;
        let gone = delete_service_day(&mut conn, "2027-02-06".parse().unwrap()).await?;
        assert_eq!(gone.note, "春节");
        let again = delete_service_day(&mut conn, "2027-02-06".parse().unwrap()).await;
        assert!(matches!(again, Err(StoreError::NotFound(_))));
        drop(conn);
        assert_eq!(db.service_days().await?.len(), 1);
        Ok(())
    });
}
