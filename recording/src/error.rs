//! The one error type of the recording crate.

/// How a disk failure is labelled in logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskErrorKind {
    /// No space left (ENOSPC, quota).
    Full,
    /// The path cannot be written (permissions, read-only file system, not a directory).
    Unwritable,
    /// Anything else the operating system reported.
    Io,
}

impl DiskErrorKind {
    pub fn of(e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::StorageFull | K::QuotaExceeded | K::FileTooLarge => DiskErrorKind::Full,
            K::PermissionDenied | K::ReadOnlyFilesystem | K::NotADirectory | K::NotFound => {
                DiskErrorKind::Unwritable
            }
            _ => DiskErrorKind::Io,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DiskErrorKind::Full => "full",
            DiskErrorKind::Unwritable => "unwritable",
            DiskErrorKind::Io => "io",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("invalid call id `{0}`: use 1–128 characters of A–Z, a–z, 0–9, '.', '_', '-', '@'")]
    InvalidCallId(String),
    #[error("invalid recording configuration: {0}")]
    Config(String),
    #[error("disk error ({kind:?}) on {path}: {source}")]
    Disk {
        kind: DiskErrorKind,
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("invalid stored value: {0}")]
    Corrupt(String),
}

impl RecordingError {
    pub fn disk(path: &std::path::Path, source: std::io::Error) -> Self {
        RecordingError::Disk {
            kind: DiskErrorKind::of(&source),
            path: path.display().to_string(),
            source,
        }
    }
}

pub type Result<T, E = RecordingError> = std::result::Result<T, E>;
