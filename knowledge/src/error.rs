//! The crate's one error type.

use std::path::PathBuf;

/// A problem found while importing, located precisely: which file (or JSON entry) and which
/// field. An import reports all of them at once and applies nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    /// The file name, or `<json>` for a JSON document.
    pub file: String,
    /// The front-matter field or JSON path (`articles[3].title`); empty when the whole file
    /// is at fault (unreadable, no front matter).
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: field `{}`: {}", self.file, self.field, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("article not found: {0}")]
    NotFound(String),
    #[error("version {version} of article {article_id} not found")]
    VersionNotFound { article_id: String, version: i64 },
    #[error(
        "article {article_id} was changed meanwhile: expected version {expected}, found {found}"
    )]
    Conflict {
        article_id: String,
        expected: i64,
        found: i64,
    },
    #[error("slug already in use: {0}")]
    DuplicateSlug(String),
    #[error("invalid field `{field}`: {message}")]
    Invalid { field: String, message: String },
    #[error("import rejected, nothing applied: {}", summarize(.0))]
    Import(Vec<ImportProblem>),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory {path}: {message}")]
    IndexDirectory { path: PathBuf, message: String },
    #[error("i/o on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("background task failed: {0}")]
    Task(String),
}

fn summarize(problems: &[ImportProblem]) -> String {
    let mut s = format!("{} problem(s)", problems.len());
    for p in problems.iter().take(5) {
        s.push_str("; ");
        s.push_str(&p.to_string());
    }
    if problems.len() > 5 {
        s.push_str("; …");
    }
    s
}

/// How the HTTP layer should treat an error (its one status mapping can match on this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// 404
    NotFound,
    /// 409: stale version or slug taken.
    Conflict,
    /// 400/422: the request's content is at fault; the message is safe to show.
    Invalid,
    /// 500: log it, do not leak it.
    Internal,
}

impl KnowledgeError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::NotFound(_) | Self::VersionNotFound { .. } => ErrorClass::NotFound,
            Self::Conflict { .. } | Self::DuplicateSlug(_) => ErrorClass::Conflict,
            Self::Invalid { .. } | Self::Import(_) => ErrorClass::Invalid,
            Self::Database(_)
            | Self::Index(_)
            | Self::IndexDirectory { .. }
            | Self::Io { .. }
            | Self::Corrupt(_)
            | Self::Task(_) => ErrorClass::Internal,
        }
    }

    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = KnowledgeError> = std::result::Result<T, E>;
