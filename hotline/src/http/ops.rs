//! Operational endpoints: liveness, readiness, metrics.

use std::path::Path;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::state::AppState;

/// `GET /healthz`: the process is up and serving HTTP.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Why the recording archive cannot take recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    Missing,
    NotWritable,
    /// No space left (ENOSPC, quota): the same answer as a recording that met a full disk.
    Full,
    TimedOut,
}

impl PathProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::NotWritable => "not_writable",
            Self::Full => "disk_full",
            Self::TimedOut => "timed_out",
        }
    }
}

/// Whether `dir` exists, is a directory, and a file can be created, written and removed in
/// it (a full disk or a read-only mount fails the write).
pub fn check_writable_dir(dir: &Path) -> Result<(), (PathProblem, String)> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err((PathProblem::Missing, "not a directory".into())),
        Err(e) => return Err((PathProblem::Missing, e.to_string())),
    }
    let probe = dir.join(format!(".hotline-ready-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&probe)?;
        f.write_all(b"ok")?;
        f.sync_all()
    };
    let result = write();
    let _ = std::fs::remove_file(&probe);
    result.map_err(|e| {
        let problem = match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                PathProblem::Full
            }
            _ => PathProblem::NotWritable,
        };
        (problem, e.to_string())
    })
}

/// `GET /readyz`: the process can do its work: the database answers, the recording archive
/// is a writable directory and no recording disk error stands. Details of a failure go to
/// the log, not to the (public) answer.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let db_ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await,
        Ok(Ok(()))
    );
    let root = state.config.recording().root;
    let shown = root.display().to_string();
    let rec = match tokio::time::timeout(
        Duration::from_secs(2),
        tokio::task::spawn_blocking(move || check_writable_dir(&root)),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err((PathProblem::NotWritable, e.to_string())),
        Err(_) => Err((PathProblem::TimedOut, "no answer within 2 s".into())),
    };
    state
        .metrics
        .gauge(
            "hotline_recording_path_writable",
            "1 when the recording archive directory exists and is writable (checked by /readyz).",
        )
        .with(&[])
        .set(i64::from(rec.is_ok()));
    if let Err((problem, detail)) = &rec {
        tracing::error!(path = %shown, problem = problem.as_str(), error = %detail, "recording archive not usable");
    }
    // The probe writes two bytes, which a full disk may still take: a recording that met a
    // full (or unwritable) disk stands until a later recording is written completely.
    let rec = rec.map_err(|(p, _)| p.as_str()).and_then(|()| {
        ["full", "unwritable", "io"]
            .into_iter()
            .find(|k| {
                state
                    .metrics
                    .sum("hotline_recording_disk_fault", &[("kind", k)])
                    > 0
            })
            .map_or(Ok(()), |k| {
                Err(match k {
                    "full" => "disk_full",
                    "unwritable" => "not_writable",
                    _ => "disk_error",
                })
            })
    });
    let ready = db_ok && rec.is_ok();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not_ready" },
            "checks": {
                "database": if db_ok { "ok" } else { "unreachable" },
                "recordings": rec.err().unwrap_or("ok"),
            },
        })),
    )
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_dir_check() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check_writable_dir(dir.path()), Ok(()));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the probe file is removed"
        );
        let missing = dir.path().join("nope");
        assert_eq!(
            check_writable_dir(&missing).unwrap_err().0,
            PathProblem::Missing
        );
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(
            check_writable_dir(&file).unwrap_err().0,
            PathProblem::Missing
        );
    }
}
