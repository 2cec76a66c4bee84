//! QA review in the database: review forms and scores, annotations at timestamps,
//! proofreading of the agent's call summary (every step a new version; the original is
//! kept), the review queue with its weekly sample, and the evidence export as a ZIP.

use std::collections::BTreeMap;
use std::path::Path;

use hotline_core::{IdGenerator, Rng, UnixMillis};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};

use crate::error::{RecordingError, Result};
use crate::qa::{self, Criterion};
use crate::store::{self, Recording};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    pub id: String,
    pub recording_id: String,
    pub reviewer: String,
    pub scores: BTreeMap<String, u32>,
    pub form: Vec<Criterion>,
    /// Hundredths of a point, 0..=10000.
    pub score: i64,
    pub comment: String,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// Writes first (a no-op update of the recording's row), then reads: on SQLite (WAL) a
/// transaction that reads before its first write cannot take the write lock once another
/// connection has committed meanwhile (`SQLITE_BUSY_SNAPSHOT`, returned at once, the busy
/// timeout does not apply) — and live calls write recordings all the time. On PostgreSQL the
/// row lock also serialises two reviewers of one recording (the next summary version).
async fn lock_recording(tx: &mut sqlx::AnyConnection, id: &str) -> Result<()> {
    sqlx::query("UPDATE recordings SET id = id WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn must_exist(pool: &AnyPool, id: &str) -> Result<Recording> {
    store::get(pool, id)
        .await?
        .ok_or_else(|| RecordingError::NotFound(format!("recording {id}")))
}

/// Saves `reviewer`'s review (replacing an earlier one of theirs), sets the recording's
/// score and reviewed flag, and closes its review-queue entry.
#[allow(clippy::too_many_arguments)]
pub async fn save_review(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    recording_id: &str,
    reviewer: &str,
    form: &[Criterion],
    scores: &BTreeMap<String, u32>,
    comment: &str,
) -> Result<Review> {
    must_exist(pool, recording_id).await?;
    let score = qa::score(form, scores).map_err(RecordingError::Invalid)?;
    let scores_json = serde_json::to_string(scores).unwrap_or_default();
    let form_json = serde_json::to_string(form).unwrap_or_default();
    let mut tx = pool.begin().await?;
    lock_recording(&mut tx, recording_id).await?;
    let existing: Option<String> = sqlx::query_scalar(
        "SELECT id FROM recording_reviews WHERE recording_id = $1 AND reviewer = $2",
    )
    .bind(recording_id)
    .bind(reviewer)
    .fetch_optional(&mut *tx)
    .await?;
    let id = match existing {
        Some(id) => {
            sqlx::query(
                "UPDATE recording_reviews SET scores = $1, form = $2, score = $3, comment = $4, \
                 updated_at = $5 WHERE id = $6",
            )
            .bind(&scores_json)
            .bind(&form_json)
            .bind(score)
            .bind(comment)
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            id
        }
        None => {
            let id = IdGenerator::new_id(now, rng);
            sqlx::query(
                "INSERT INTO recording_reviews (id, recording_id, reviewer, scores, form, score, \
                 comment, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(&id)
            .bind(recording_id)
            .bind(reviewer)
            .bind(&scores_json)
            .bind(&form_json)
            .bind(score)
            .bind(comment)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            id
        }
    };
    sqlx::query("UPDATE recordings SET score = $1, reviewed = 1, updated_at = $2 WHERE id = $3")
        .bind(score)
        .bind(now)
        .bind(recording_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE recording_review_queue SET done_at = $1 WHERE recording_id = $2 \
         AND done_at IS NULL",
    )
    .bind(now)
    .bind(recording_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    reviews(pool, recording_id)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| RecordingError::NotFound(format!("review {id}")))
}

pub async fn reviews(pool: &AnyPool, recording_id: &str) -> Result<Vec<Review>> {
    let rows = sqlx::query(
        "SELECT id, recording_id, reviewer, scores, form, score, comment, created_at, \
         updated_at FROM recording_reviews WHERE recording_id = $1 ORDER BY updated_at, id",
    )
    .bind(recording_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let scores: String = r.try_get("scores")?;
            let form: String = r.try_get("form")?;
            Ok(Review {
                id: r.try_get("id")?,
                recording_id: r.try_get("recording_id")?,
                reviewer: r.try_get("reviewer")?,
                scores: serde_json::from_str(&scores)
                    .map_err(|e| RecordingError::Corrupt(e.to_string()))?,
                form: serde_json::from_str(&form)
                    .map_err(|e| RecordingError::Corrupt(e.to_string()))?,
                score: r.try_get("score")?,
                comment: r.try_get("comment")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Annotation {
    pub id: String,
    pub recording_id: String,
    pub at_ms: i64,
    /// `mm:ss` of `at_ms`.
    pub at: String,
    pub text: String,
    pub tag: String,
    pub author: String,
    pub created_at: UnixMillis,
}

/// Adds a note at `at_ms` into the recording; it must lie within the recording.
#[allow(clippy::too_many_arguments)]
pub async fn add_annotation(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    recording_id: &str,
    at_ms: u64,
    text: &str,
    tag: &str,
    author: &str,
) -> Result<Annotation> {
    let rec = must_exist(pool, recording_id).await?;
    let at = i64::try_from(at_ms).unwrap_or(i64::MAX);
    if at > rec.duration_ms.max(0) + 999 {
        return Err(RecordingError::Invalid(format!(
            "标注时间 {} 超出录音时长 {}",
            qa::format_timestamp(at_ms),
            qa::format_timestamp(rec.duration_ms.max(0) as u64)
        )));
    }
    if text.trim().is_empty() || text.chars().count() > 2_000 || tag.chars().count() > 64 {
        return Err(RecordingError::Invalid(
            "标注内容不能为空且不超过 2000 字，标签不超过 64 字".into(),
        ));
    }
    let id = IdGenerator::new_id(now, rng);
    sqlx::query(
        "INSERT INTO recording_annotations (id, recording_id, at_ms, text, tag, author, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(recording_id)
    .bind(at)
    .bind(text)
    .bind(tag)
    .bind(author)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(Annotation {
        id,
        recording_id: recording_id.into(),
        at_ms: at,
        at: qa::format_timestamp(at_ms),
        text: text.into(),
        tag: tag.into(),
        author: author.into(),
        created_at: now,
    })
}

pub async fn annotations(pool: &AnyPool, recording_id: &str) -> Result<Vec<Annotation>> {
    let rows = sqlx::query(
        "SELECT id, recording_id, at_ms, text, tag, author, created_at \
         FROM recording_annotations WHERE recording_id = $1 ORDER BY at_ms, created_at, id",
    )
    .bind(recording_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let at_ms: i64 = r.try_get("at_ms")?;
            Ok(Annotation {
                id: r.try_get("id")?,
                recording_id: r.try_get("recording_id")?,
                at_ms,
                at: qa::format_timestamp(at_ms.max(0) as u64),
                text: r.try_get("text")?,
                tag: r.try_get("tag")?,
                author: r.try_get("author")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryVersion {
    pub version: i64,
    /// `original`, `confirmed` or `corrected`.
    pub kind: String,
    pub summary: String,
    pub note: String,
    pub author: String,
    pub created_at: UnixMillis,
}

/// What a proofreader decides about the agent's summary.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Proofread {
    /// The summary matches the recording.
    Confirm {
        #[serde(default)]
        note: String,
    },
    /// The summary is wrong; this is what the call was about.
    Correct {
        summary: String,
        #[serde(default)]
        note: String,
    },
}

#[allow(clippy::too_many_arguments)]
async fn append_summary(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    recording_id: &str,
    kind: &str,
    summary: &str,
    note: &str,
    author: &str,
) -> Result<SummaryVersion> {
    let mut tx = pool.begin().await?;
    lock_recording(&mut tx, recording_id).await?;
    let last: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM recording_summaries WHERE recording_id = $1")
            .bind(recording_id)
            .fetch_one(&mut *tx)
            .await?;
    let version = last.unwrap_or(0) + 1;
    sqlx::query(
        "INSERT INTO recording_summaries (id, recording_id, version, kind, summary, note, \
         author, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(IdGenerator::new_id(now, rng))
    .bind(recording_id)
    .bind(version)
    .bind(kind)
    .bind(summary)
    .bind(note)
    .bind(author)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            RecordingError::Invalid("校对冲突，请刷新后重试".into())
        }
        _ => RecordingError::Db(e),
    })?;
    if kind != "original" {
        sqlx::query("UPDATE recordings SET proofread = $1, updated_at = $2 WHERE id = $3")
            .bind(kind)
            .bind(now)
            .bind(recording_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(SummaryVersion {
        version,
        kind: kind.into(),
        summary: summary.into(),
        note: note.into(),
        author: author.into(),
        created_at: now,
    })
}

/// Stores the agent's own summary of the call (the version proofreading checks).
pub async fn set_original_summary(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    recording_id: &str,
    author: &str,
    summary: &str,
) -> Result<SummaryVersion> {
    must_exist(pool, recording_id).await?;
    append_summary(
        pool,
        now,
        rng,
        recording_id,
        "original",
        summary,
        "",
        author,
    )
    .await
}

/// Confirms or corrects the newest summary; either way a new version is stored.
pub async fn proofread(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    recording_id: &str,
    author: &str,
    p: &Proofread,
) -> Result<SummaryVersion> {
    must_exist(pool, recording_id).await?;
    let current = summaries(pool, recording_id).await?;
    let Some(last) = current.last() else {
        return Err(RecordingError::Invalid(
            "该通话还没有坐席小结，无法校对".into(),
        ));
    };
    match p {
        Proofread::Confirm { note } => {
            append_summary(
                pool,
                now,
                rng,
                recording_id,
                "confirmed",
                &last.summary,
                note,
                author,
            )
            .await
        }
        Proofread::Correct { summary, note } => {
            if summary.trim().is_empty() {
                return Err(RecordingError::Invalid("更正后的小结不能为空".into()));
            }
            append_summary(
                pool,
                now,
                rng,
                recording_id,
                "corrected",
                summary,
                note,
                author,
            )
            .await
        }
    }
}

pub async fn summaries(pool: &AnyPool, recording_id: &str) -> Result<Vec<SummaryVersion>> {
    let rows = sqlx::query(
        "SELECT version, kind, summary, note, author, created_at FROM recording_summaries \
         WHERE recording_id = $1 ORDER BY version",
    )
    .bind(recording_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SummaryVersion {
                version: r.try_get("version")?,
                kind: r.try_get("kind")?,
                summary: r.try_get("summary")?,
                note: r.try_get("note")?,
                author: r.try_get("author")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Puts a recording in the review queue (no-op when it is already queued and open).
pub async fn enqueue(
    pool: &AnyPool,
    now: UnixMillis,
    recording_id: &str,
    reason: &str,
    week: &str,
) -> Result<bool> {
    let open: Option<Option<i64>> =
        sqlx::query_scalar("SELECT done_at FROM recording_review_queue WHERE recording_id = $1")
            .bind(recording_id)
            .fetch_optional(pool)
            .await?;
    match open {
        Some(None) => Ok(false),
        Some(Some(_)) => {
            sqlx::query(
                "UPDATE recording_review_queue SET reason = $1, week = $2, added_at = $3, \
                 done_at = NULL WHERE recording_id = $4",
            )
            .bind(reason)
            .bind(week)
            .bind(now)
            .bind(recording_id)
            .execute(pool)
            .await?;
            Ok(true)
        }
        None => {
            sqlx::query(
                "INSERT INTO recording_review_queue (recording_id, reason, week, added_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(recording_id)
            .bind(reason)
            .bind(week)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(true)
        }
    }
}

/// Samples `percent` % of each agent's recordings of the week that contains `week_of`
/// (Monday to Monday, UTC) into the review queue. Recordings sampled or reviewed before are
/// not drawn again. Returns the ids queued.
pub async fn sample_week(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    week_of: UnixMillis,
    percent: u32,
) -> Result<Vec<String>> {
    let start = qa::week_start(week_of);
    let week = qa::iso_week(start);
    let rows = sqlx::query(
        "SELECT agent, id FROM recordings WHERE started_at >= $1 AND started_at < $2 \
         AND agent <> '' AND state IN ('finished', 'recovered') AND reviewed = 0 \
         AND id NOT IN (SELECT recording_id FROM recording_review_queue) ORDER BY id",
    )
    .bind(start)
    .bind(start + 7 * 86_400_000)
    .fetch_all(pool)
    .await?;
    let calls = rows
        .iter()
        .map(|r| Ok((r.try_get("agent")?, r.try_get("id")?)))
        .collect::<Result<Vec<(String, String)>>>()?;
    let picked = qa::weekly_sample(&calls, percent, rng);
    for id in &picked {
        enqueue(pool, now, id, "sample", &week).await?;
    }
    Ok(picked)
}

/// The automatic weekly sample: once the week before `now` is over, samples it — once (a
/// week that already has sampled entries is left alone, so the periodic job can call this
/// every time it runs). Returns the ids queued, `None` when that week was done already.
pub async fn sample_previous_week_once(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    percent: u32,
) -> Result<Option<Vec<String>>> {
    let previous = qa::week_start(now) - 1;
    let week = qa::iso_week(qa::week_start(previous));
    let done: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM recording_review_queue WHERE reason = 'sample' AND week = $1",
    )
    .bind(&week)
    .fetch_one(pool)
    .await?;
    if done > 0 || percent == 0 {
        return Ok(None);
    }
    sample_week(pool, now, rng, previous, percent)
        .await
        .map(Some)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueEntry {
    pub recording: Recording,
    pub reason: String,
    pub week: String,
    pub added_at: UnixMillis,
}

/// The open review queue, oldest first.
pub async fn review_queue(pool: &AnyPool, limit: i64) -> Result<Vec<QueueEntry>> {
    let rows = sqlx::query(
        "SELECT recording_id, reason, week, added_at FROM recording_review_queue \
         WHERE done_at IS NULL ORDER BY added_at, recording_id LIMIT $1",
    )
    .bind(limit.clamp(1, 1_000))
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: String = r.try_get("recording_id")?;
        if let Some(rec) = store::get(pool, &id).await? {
            out.push(QueueEntry {
                recording: rec,
                reason: r.try_get("reason")?,
                week: r.try_get("week")?,
                added_at: r.try_get("added_at")?,
            });
        }
    }
    Ok(out)
}

/// Evidence export: the WAV, the recording's data, reviews, annotations and summary
/// versions, and a manifest with the SHA-256 of each file, as one ZIP.
pub async fn export_zip(
    pool: &AnyPool,
    now: UnixMillis,
    root: &Path,
    recording_id: &str,
) -> Result<Vec<u8>> {
    let rec = must_exist(pool, recording_id).await?;
    if rec.state == crate::recorder::RecordingState::Deleted {
        return Err(RecordingError::NotFound(format!(
            "recording {recording_id} file"
        )));
    }
    let path = crate::archive::resolve(root, &rec.path)?;
    let wav = tokio::fs::read(&path)
        .await
        .map_err(|e| RecordingError::disk(&path, e))?;
    let reviews = reviews(pool, recording_id).await?;
    let notes = annotations(pool, recording_id).await?;
    let sums = summaries(pool, recording_id).await?;
    let files: Vec<(String, Vec<u8>)> = vec![
        (format!("{}.wav", rec.call_id), wav),
        ("recording.json".into(), pretty(&rec)),
        ("reviews.json".into(), pretty(&reviews)),
        ("annotations.json".into(), pretty(&notes)),
        ("summaries.json".into(), pretty(&sums)),
    ];
    let manifest: Vec<serde_json::Value> = files
        .iter()
        .map(|(name, data)| {
            serde_json::json!({
                "name": name,
                "bytes": data.len(),
                "sha256": sha256_hex(data),
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "recording_id": rec.id,
        "call_id": rec.call_id,
        "exported_at": now,
        "recorded_sha256": rec.sha256,
        "files": manifest,
    });
    let mut z = crate::zip::ZipWriter::new(now);
    for (name, data) in &files {
        z.add(name, data);
    }
    z.add(
        "manifest.json",
        &serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
    );
    Ok(z.finish())
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    crate::archive::hex(&sha2::Sha256::digest(data))
}

fn pretty<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}
