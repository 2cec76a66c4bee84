//! The one error type of the CRM.

use crate::ticket::TicketStatus;

#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0} not found")]
    NotFound(String),
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    #[error("transition {from} -> {to} is not allowed")]
    InvalidTransition {
        from: TicketStatus,
        to: TicketStatus,
    },
    #[error("ticket {0} is archived and read-only")]
    Archived(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("the record was changed meanwhile (expected version {expected})")]
    Stale { expected: i64 },
    #[error("attachment too large: {size} bytes (limit {limit})")]
    TooLarge { size: u64, limit: u64 },
    #[error("attachment type not allowed: {0}")]
    UnsupportedType(String),
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    #[error("xlsx error: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("csv error: {0}")]
    Csv(#[from] csv::Error),
    #[error("invalid stored value: {0}")]
    Corrupt(String),
}

impl CrmError {
    /// A message for people (zh-CN), safe to show: internal details are left out.
    pub fn message_zh(&self) -> String {
        match self {
            CrmError::NotFound(what) => format!("{what} 不存在"),
            CrmError::Forbidden(_) => "没有权限执行此操作".into(),
            CrmError::InvalidTransition { from, to } => {
                format!(
                    "工单状态不能从「{}」变为「{}」",
                    from.label_zh(),
                    to.label_zh()
                )
            }
            CrmError::Archived(_) => "该案卷已归档，不能修改".into(),
            CrmError::Invalid(m) => m.clone(),
            CrmError::Stale { .. } => "记录已被他人修改，请刷新后重试".into(),
            CrmError::TooLarge { limit, .. } => {
                format!("附件过大，不能超过 {} KB", limit / 1024)
            }
            CrmError::UnsupportedType(_) => "附件类型不支持（仅限 PDF、JPG、PNG）".into(),
            _ => "服务器内部错误".into(),
        }
    }
}

pub type CrmResult<T> = Result<T, CrmError>;
