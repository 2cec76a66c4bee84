//! Recording rows in the database (`recordings`, migration 0005) and the jobs that keep the
//! archive honest: recovery at start, backup, verify and retention. One SQL text for SQLite
//! and PostgreSQL through sqlx's `AnyPool` (`$n` placeholders, BIGINT milliseconds).

use std::path::{Path, PathBuf};

use hotline_core::{IdGenerator, Rng, UnixMillis};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::archive::{self, Expected, Repaired, VerifyIssue};
use crate::config::RecordingConfig;
use crate::error::{RecordingError, Result};
use crate::recorder::{FinishedRecording, RecordingMeta, RecordingState};

/// A recording as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recording {
    pub id: String,
    pub call_id: String,
    pub caller: String,
    pub agent: String,
    pub seat: String,
    pub queue: String,
    pub started_at: UnixMillis,
    pub duration_ms: i64,
    pub bytes: i64,
    pub sha256: String,
    pub path: String,
    pub state: RecordingState,
    pub error: String,
    pub backup_state: String,
    pub backed_up_at: Option<UnixMillis>,
    pub complaint_id: Option<String>,
    /// (start_ms, end_ms) of each pause.
    pub pauses: Vec<(u64, u64)>,
    pub dropped_frames: i64,
    /// Latest review score in hundredths (0..=10000).
    pub score: Option<i64>,
    pub reviewed: bool,
    pub proofread: String,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

pub(crate) const COLUMNS: &str = "id, call_id, caller, agent, seat, queue, started_at, \
    duration_ms, bytes, sha256, path, state, error, backup_state, backed_up_at, complaint_id, \
    pauses, dropped_frames, score, reviewed, proofread, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<Recording> {
    let state: String = r.try_get("state")?;
    let pauses: String = r.try_get("pauses")?;
    Ok(Recording {
        id: r.try_get("id")?,
        call_id: r.try_get("call_id")?,
        caller: r.try_get("caller")?,
        agent: r.try_get("agent")?,
        seat: r.try_get("seat")?,
        queue: r.try_get("queue")?,
        started_at: r.try_get("started_at")?,
        duration_ms: r.try_get("duration_ms")?,
        bytes: r.try_get("bytes")?,
        sha256: r.try_get("sha256")?,
        path: r.try_get("path")?,
        state: RecordingState::parse(&state)
            .ok_or_else(|| RecordingError::Corrupt(format!("recording state `{state}`")))?,
        error: r.try_get("error")?,
        backup_state: r.try_get("backup_state")?,
        backed_up_at: r.try_get("backed_up_at")?,
        complaint_id: r.try_get("complaint_id")?,
        pauses: serde_json::from_str(&pauses).unwrap_or_default(),
        dropped_frames: r.try_get("dropped_frames")?,
        score: r.try_get("score")?,
        reviewed: r.try_get::<i64, _>("reviewed")? != 0,
        proofread: r.try_get("proofread")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Stores the row of a recording that has just started (state `recording`).
pub async fn insert_started(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    meta: &RecordingMeta,
) -> Result<String> {
    archive::validate_call_id(&meta.call_id)?;
    let id = IdGenerator::new_id(now, rng);
    let rel = archive::relative_path(meta.started_at, &meta.call_id);
    let r = sqlx::query(
        "INSERT INTO recordings (id, call_id, caller, agent, seat, queue, started_at, \
         duration_ms, bytes, sha256, path, state, error, backup_state, pauses, dropped_frames, \
         reviewed, proofread, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, '', $8, 'recording', '', 'pending', '[]', 0, \
         0, 'none', $9, $9) ON CONFLICT (call_id) DO NOTHING",
    )
    .bind(&id)
    .bind(&meta.call_id)
    .bind(&meta.caller)
    .bind(&meta.agent)
    .bind(&meta.seat)
    .bind(&meta.queue)
    .bind(meta.started_at)
    .bind(&rel)
    .bind(now)
    .execute(pool)
    .await?;
    // Already there (a retried write whose first reply was lost): the stored row's id.
    if r.rows_affected() == 0 {
        return Ok(get_by_call(pool, &meta.call_id)
            .await?
            .map(|r| r.id)
            .unwrap_or(id));
    }
    Ok(id)
}

/// Stores the outcome of a recording (inserting the row when it was never started in the
/// store). Returns the recording's id.
pub async fn record_finished(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    f: &FinishedRecording,
) -> Result<String> {
    if get_by_call(pool, &f.meta.call_id).await?.is_none() {
        insert_started(pool, now, rng, &f.meta).await?;
    }
    let pauses = serde_json::to_string(&f.pauses).unwrap_or_else(|_| "[]".into());
    let backup = if f.sha256.is_empty() {
        "none"
    } else {
        "pending"
    };
    sqlx::query(
        "UPDATE recordings SET duration_ms = $1, bytes = $2, sha256 = $3, path = $4, \
         state = $5, error = $6, backup_state = $7, pauses = $8, dropped_frames = $9, \
         agent = CASE WHEN agent = '' THEN $10 ELSE agent END, updated_at = $11 \
         WHERE call_id = $12",
    )
    .bind(i(f.duration_ms))
    .bind(i(f.bytes))
    .bind(&f.sha256)
    .bind(&f.relative_path)
    .bind(f.state.as_str())
    .bind(f.error.clone().unwrap_or_default())
    .bind(backup)
    .bind(pauses)
    .bind(i(f.dropped_frames))
    .bind(&f.meta.agent)
    .bind(now)
    .bind(&f.meta.call_id)
    .execute(pool)
    .await?;
    Ok(get_by_call(pool, &f.meta.call_id)
        .await?
        .map(|r| r.id)
        .unwrap_or_default())
}

pub async fn get(pool: &AnyPool, id: &str) -> Result<Option<Recording>> {
    let sql = format!("SELECT {COLUMNS} FROM recordings WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn get_by_call(pool: &AnyPool, call_id: &str) -> Result<Option<Recording>> {
    let sql = format!("SELECT {COLUMNS} FROM recordings WHERE call_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(call_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Sets who took the call (known after the ACD answers), by call id.
pub async fn set_agent(
    pool: &AnyPool,
    now: UnixMillis,
    call_id: &str,
    agent: &str,
    seat: &str,
    queue: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE recordings SET agent = $1, seat = $2, queue = $3, updated_at = $4 \
         WHERE call_id = $5",
    )
    .bind(agent)
    .bind(seat)
    .bind(queue)
    .bind(now)
    .bind(call_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Links a recording to the complaint it is evidence for (or unlinks it with `None`).
pub async fn link_complaint(
    pool: &AnyPool,
    now: UnixMillis,
    id: &str,
    complaint_id: Option<&str>,
) -> Result<()> {
    let n = sqlx::query("UPDATE recordings SET complaint_id = $1, updated_at = $2 WHERE id = $3")
        .bind(complaint_id.map(str::to_string))
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(RecordingError::NotFound(format!("recording {id}")));
    }
    Ok(())
}

/// Filters of the recording list; all optional.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct ListFilter {
    /// Start time range, inclusive from, exclusive to (UTC milliseconds).
    pub from: Option<UnixMillis>,
    pub to: Option<UnixMillis>,
    pub agent: Option<String>,
    /// Part of the caller's number.
    pub caller: Option<String>,
    pub queue: Option<String>,
    pub min_duration_ms: Option<i64>,
    pub max_duration_ms: Option<i64>,
    pub reviewed: Option<bool>,
    /// Score range in points (0–100), inclusive.
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    /// Only recordings linked to a complaint (true) or not linked (false).
    pub has_complaint: Option<bool>,
    pub complaint_id: Option<String>,
    pub state: Option<String>,
    /// Only recordings in the open review queue.
    pub in_review_queue: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

enum Bind {
    I(i64),
    S(String),
}

/// One page of recordings, newest first, and the number of all that match.
pub async fn list(pool: &AnyPool, f: &ListFilter) -> Result<(Vec<Recording>, i64)> {
    let mut conds: Vec<String> = vec!["state <> 'deleted'".into()];
    let mut binds: Vec<Bind> = Vec::new();
    let mut add = |cond: &str, b: Bind| {
        binds.push(b);
        conds.push(cond.replace('?', &format!("${}", binds.len())));
    };
    if let Some(v) = f.from {
        add("started_at >= ?", Bind::I(v));
    }
    if let Some(v) = f.to {
        add("started_at < ?", Bind::I(v));
    }
    if let Some(v) = &f.agent {
        add("agent = ?", Bind::S(v.clone()));
    }
    if let Some(v) = &f.caller {
        let esc = v
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        add("caller LIKE ? ESCAPE '\\'", Bind::S(format!("%{esc}%")));
    }
    if let Some(v) = &f.queue {
        add("queue = ?", Bind::S(v.clone()));
    }
    if let Some(v) = f.min_duration_ms {
        add("duration_ms >= ?", Bind::I(v));
    }
    if let Some(v) = f.max_duration_ms {
        add("duration_ms <= ?", Bind::I(v));
    }
    if let Some(v) = f.reviewed {
        add("reviewed = ?", Bind::I(i64::from(v)));
    }
    if let Some(v) = f.min_score {
        add("score >= ?", Bind::I((v * 100.0).round() as i64));
    }
    if let Some(v) = f.max_score {
        add("score <= ?", Bind::I((v * 100.0).round() as i64));
    }
    if let Some(v) = &f.complaint_id {
        add("complaint_id = ?", Bind::S(v.clone()));
    }
    if let Some(v) = &f.state {
        add("state = ?", Bind::S(v.clone()));
    }
    match f.has_complaint {
        Some(true) => conds.push("complaint_id IS NOT NULL".into()),
        Some(false) => conds.push("complaint_id IS NULL".into()),
        None => {}
    }
    match f.in_review_queue {
        Some(true) => conds.push(
            "id IN (SELECT recording_id FROM recording_review_queue WHERE done_at IS NULL)".into(),
        ),
        Some(false) => conds.push(
            "id NOT IN (SELECT recording_id FROM recording_review_queue WHERE done_at IS NULL)"
                .into(),
        ),
        None => {}
    }
    let wher = conds.join(" AND ");
    let limit = f.limit.unwrap_or(50).clamp(1, 500);
    let offset = f.offset.unwrap_or(0).max(0);
    let count_sql = format!("SELECT COUNT(*) FROM recordings WHERE {wher}");
    let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql));
    for b in &binds {
        q = match b {
            Bind::I(v) => q.bind(*v),
            Bind::S(v) => q.bind(v.clone()),
        };
    }
    let total = q.fetch_one(pool).await?;
    let n = binds.len();
    let sql = format!(
        "SELECT {COLUMNS} FROM recordings WHERE {wher} \
         ORDER BY started_at DESC, id DESC LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = match b {
            Bind::I(v) => q.bind(v),
            Bind::S(v) => q.bind(v),
        };
    }
    let rows = q.bind(limit).bind(offset).fetch_all(pool).await?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    Ok((items, total))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RecordingError::Invalid(format!("blocking task failed: {e}")))?
}

/// At start, before new calls: repairs every `.wav.part` a crash left and marks its row
/// `recovered`; rows still `recording` whose file was finished are marked `recovered`
/// too, and those without any file `failed`. Returns what was repaired.
pub async fn recover_at_start(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    root: &Path,
) -> Result<Vec<Repaired>> {
    let r = root.to_path_buf();
    let repaired = blocking(move || archive::repair_unfinished(&r)).await?;
    for rep in &repaired {
        if get_by_call(pool, &rep.call_id).await?.is_none() {
            let meta = RecordingMeta {
                call_id: rep.call_id.clone(),
                caller: String::new(),
                agent: String::new(),
                seat: String::new(),
                queue: String::new(),
                started_at: now,
            };
            insert_started(pool, now, rng, &meta).await?;
        }
        sqlx::query(
            "UPDATE recordings SET state = 'recovered', duration_ms = $1, bytes = $2, \
             sha256 = $3, path = $4, backup_state = 'pending', error = $5, updated_at = $6 \
             WHERE call_id = $7",
        )
        .bind(i(rep.duration_ms))
        .bind(i(rep.bytes))
        .bind(&rep.sha256)
        .bind(&rep.relative_path)
        .bind("录音未正常结束，已根据文件大小修复")
        .bind(now)
        .bind(&rep.call_id)
        .execute(pool)
        .await?;
    }
    let (stale, _) = list(
        pool,
        &ListFilter {
            state: Some("recording".into()),
            limit: Some(500),
            ..Default::default()
        },
    )
    .await?;
    for rec in stale {
        let path = archive::resolve(root, &rec.path)?;
        let found = blocking(move || Ok(archive::sha256_file(&path).ok())).await?;
        match found {
            Some((bytes, sha)) => {
                let dur = crate::wav::duration_ms(crate::wav::data_len_from_size(bytes));
                sqlx::query(
                    "UPDATE recordings SET state = 'recovered', duration_ms = $1, bytes = $2, \
                     sha256 = $3, updated_at = $4 WHERE id = $5",
                )
                .bind(i(dur))
                .bind(i(bytes))
                .bind(sha)
                .bind(now)
                .bind(&rec.id)
                .execute(pool)
                .await?;
            }
            None => {
                sqlx::query(
                    "UPDATE recordings SET state = 'failed', backup_state = 'none', \
                     error = $1, updated_at = $2 WHERE id = $3",
                )
                .bind("重启后未找到录音文件")
                .bind(now)
                .bind(&rec.id)
                .execute(pool)
                .await?;
            }
        }
    }
    Ok(repaired)
}

/// What one backup run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BackupReport {
    pub copied: Vec<String>,
    /// (recording id, error)
    pub failed: Vec<(String, String)>,
}

/// Copies every finished recording not yet backed up (at most `limit`) to the backup path,
/// with fsync and hash check; marks each `done` or `failed`.
pub async fn run_backup(
    pool: &AnyPool,
    now: UnixMillis,
    config: &RecordingConfig,
    limit: i64,
) -> Result<BackupReport> {
    let mut report = BackupReport::default();
    if config.backup_path.as_os_str().is_empty() {
        return Ok(report);
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM recordings WHERE backup_state IN ('pending', 'failed') \
         AND state IN ('finished', 'recovered', 'failed') AND sha256 <> '' \
         ORDER BY started_at LIMIT $1"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .fetch_all(pool)
        .await?;
    for row in rows {
        let rec = from_row(&row)?;
        let (root, backup) = (config.root.clone(), config.backup_path.clone());
        let (rel, sha) = (rec.path.clone(), rec.sha256.clone());
        let r = blocking(move || archive::backup_file(&root, &backup, &rel, &sha)).await;
        let state = match &r {
            Ok(()) => {
                report.copied.push(rec.id.clone());
                "done"
            }
            Err(e) => {
                tracing::error!(recording = %rec.id, error = %e, "recording backup failed");
                report.failed.push((rec.id.clone(), e.to_string()));
                "failed"
            }
        };
        sqlx::query(
            "UPDATE recordings SET backup_state = $1, \
             backed_up_at = CASE WHEN $1 = 'done' THEN $2 ELSE backed_up_at END, \
             updated_at = $2 WHERE id = $3",
        )
        .bind(state)
        .bind(now)
        .bind(&rec.id)
        .execute(pool)
        .await?;
    }
    Ok(report)
}

/// Re-hashes every stored recording in the archive and the backup; reports each missing or
/// mismatched file.
pub async fn verify(pool: &AnyPool, config: &RecordingConfig) -> Result<Vec<VerifyIssue>> {
    let rows = sqlx::query(
        "SELECT id, path, sha256, backup_state FROM recordings \
         WHERE state IN ('finished', 'recovered', 'failed') AND sha256 <> '' ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    let expected = rows
        .iter()
        .map(|r| {
            Ok(Expected {
                recording_id: r.try_get("id")?,
                relative_path: r.try_get("path")?,
                sha256: r.try_get("sha256")?,
                backed_up: r.try_get::<String, _>("backup_state")? == "done",
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let root = config.root.clone();
    let backup: Option<PathBuf> =
        (!config.backup_path.as_os_str().is_empty()).then(|| config.backup_path.clone());
    blocking(move || Ok(archive::verify_files(&root, backup.as_deref(), &expected))).await
}

/// Deletes the files of recordings that started more than `retention_days` ago and marks
/// them `deleted` (the row, its reviews and annotations stay). Returns what was deleted, for
/// the caller's audit log. Recordings linked to a complaint are kept.
pub async fn apply_retention(
    pool: &AnyPool,
    now: UnixMillis,
    config: &RecordingConfig,
) -> Result<Vec<Recording>> {
    if config.retention_days == 0 {
        return Ok(Vec::new());
    }
    let cutoff = now - i64::from(config.retention_days) * 86_400_000;
    let sql = format!(
        "SELECT {COLUMNS} FROM recordings WHERE started_at < $1 \
         AND state IN ('finished', 'recovered', 'failed') AND complaint_id IS NULL \
         ORDER BY started_at"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(cutoff)
        .fetch_all(pool)
        .await?;
    let mut deleted = Vec::new();
    for row in rows {
        let rec = from_row(&row)?;
        let (root, backup, rel) = (
            config.root.clone(),
            config.backup_path.clone(),
            rec.path.clone(),
        );
        let b = (!backup.as_os_str().is_empty()).then_some(backup);
        blocking(move || archive::delete_files(&root, b.as_deref(), &rel)).await?;
        sqlx::query("UPDATE recordings SET state = 'deleted', updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&rec.id)
            .execute(pool)
            .await?;
        deleted.push(rec);
    }
    Ok(deleted)
}
