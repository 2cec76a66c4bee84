//! The one error type of this crate.

/// Errors of imports, lookups and the 12345 integration. Row-level problems of an import are
/// not errors: they are collected into the import report.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("cannot read the file: {0}")]
    Unreadable(String),
    #[error("the file is not valid {0} text")]
    Encoding(&'static str),
    #[error("missing column(s) in the header: {0}")]
    MissingColumns(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

impl IntegrationError {
    /// A zh-CN sentence for the operator or the web console.
    pub fn message_zh(&self) -> String {
        match self {
            IntegrationError::Db(_) | IntegrationError::Corrupt(_) => "数据库错误".into(),
            IntegrationError::Unreadable(m) => format!("无法读取文件：{m}"),
            IntegrationError::Encoding(e) => format!("文件不是有效的 {e} 编码文本"),
            IntegrationError::MissingColumns(c) => format!("表头缺少列：{c}"),
            IntegrationError::Invalid(m) => m.clone(),
            IntegrationError::NotFound(m) => format!("{m} 不存在"),
            IntegrationError::Conflict(m) => m.clone(),
        }
    }
}

pub type Result<T, E = IntegrationError> = std::result::Result<T, E>;
