//! The one error type of the HTTP API and its one JSON shape:
//! `{"error": {"code": "forbidden", "message": "…"}}`. Codes are stable English words for
//! programs; messages are zh-CN for people. Internal errors are logged, never leaked.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::db::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not logged in")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("CSRF check failed")]
    Csrf,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("login failed")]
    LoginFailed,
    #[error("account disabled")]
    AccountDisabled,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A service we call (the WeChat API) failed; the message (zh-CN) says which and why.
    #[error("upstream failed: {0}")]
    Upstream(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    /// Logs why (for the operator) and returns the error unchanged (for the client).
    pub fn with_log(self, why: &str) -> Self {
        tracing::warn!(reason = why, "request refused");
        self
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::LoginFailed => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::Csrf | ApiError::AccountDisabled => {
                StatusCode::FORBIDDEN
            }
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code_and_message(&self) -> (&'static str, String) {
        match self {
            ApiError::Unauthorized => ("unauthorized", "请先登录".into()),
            ApiError::Forbidden => ("forbidden", "没有权限执行此操作".into()),
            ApiError::Csrf => ("csrf", "请求校验失败，请刷新页面后重试".into()),
            ApiError::BadRequest(m) => ("bad_request", m.clone()),
            ApiError::NotFound(m) => ("not_found", m.clone()),
            ApiError::Conflict(m) => ("conflict", m.clone()),
            ApiError::PayloadTooLarge => ("payload_too_large", "请求内容过大".into()),
            ApiError::TooManyRequests { .. } => {
                ("too_many_requests", "尝试次数过多，请稍后再试".into())
            }
            ApiError::LoginFailed => ("login_failed", "用户名或密码错误".into()),
            ApiError::AccountDisabled => ("account_disabled", "账号已停用".into()),
            ApiError::Unavailable(_) => ("unavailable", "服务暂时不可用".into()),
            ApiError::Upstream(m) => ("upstream", m.clone()),
            ApiError::Internal(_) => ("internal", "服务器内部错误".into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) | ApiError::Unavailable(detail) = &self {
            tracing::error!(error = %detail, "request failed");
        }
        let (code, message) = self.code_and_message();
        let mut resp = (
            self.status(),
            Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response();
        if let ApiError::TooManyRequests { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ApiError::Conflict(format!("{what} 已存在")),
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} 不存在")),
            StoreError::Stale(message) => ApiError::Conflict(message),
            other => ApiError::internal(other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge;
        }
        ApiError::BadRequest(format!("请求体无效: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(format!("查询参数无效: {}", r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(format!("路径参数无效: {}", r.body_text()))
    }
}

/// `Json<T>` whose rejection is an [`ApiError`], so bad bodies get the one error shape.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `Query<T>` with the same treatment.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `Path<T>` with the same treatment.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

pub type ApiResult<T> = Result<T, ApiError>;
