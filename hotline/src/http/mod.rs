//! The HTTP API (axum 0.8): health, readiness, metrics, OpenAPI, and `/api/v1/…`.
//! Every API route is declared once in [`router`] with who may call it.

pub mod access;
pub mod acd;
pub mod admin_settings;
pub mod alerts;
pub mod auth;
pub mod chat;
pub mod crm;
pub mod error;
pub mod integrations;
pub mod ivr_admin;
pub mod kb;
pub mod openapi;
pub mod ops;
pub mod prompts;
pub mod recordings;
pub mod sip;
pub mod sms;
pub mod state;
pub mod users;
pub mod webchat;
pub mod wechat;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use access::{Access, ApiBuilder, RouteSpec, roles};
use error::ApiError;
pub use state::AppState;

/// Request bodies larger than this are refused with 413 before any handler runs.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Builds the whole HTTP application and returns it with its route table.
pub fn router(state: AppState) -> (Router, Vec<RouteSpec>) {
    use Access::{AnyUser, Public, Roles};
    let doc: Arc<OnceLock<serde_json::Value>> = Arc::new(OnceLock::new());
    let doc_for_handler = doc.clone();
    let openapi = move || {
        let doc = doc_for_handler.clone();
        async move { axum::Json(doc.get().cloned().unwrap_or_default()) }
    };

    let (api, specs) = ApiBuilder::new(state.clone())
        .route(
            Method::GET,
            "/healthz",
            Public,
            "ops",
            "存活检查",
            ops::healthz,
        )
        .route(
            Method::GET,
            "/readyz",
            Public,
            "ops",
            "就绪检查（数据库可用、录音目录可写）",
            ops::readyz,
        )
        .route(
            Method::GET,
            "/metrics",
            Public,
            "ops",
            "Prometheus 指标",
            ops::metrics,
        )
        .route(
            Method::GET,
            "/api/v1/openapi.json",
            Public,
            "ops",
            "OpenAPI 文档",
            openapi,
        )
        .route(
            Method::POST,
            "/api/v1/auth/login",
            Public,
            "auth",
            "登录",
            auth::login,
        )
        .route(
            Method::POST,
            "/api/v1/auth/logout",
            AnyUser,
            "auth",
            "退出登录",
            auth::logout,
        )
        .route(
            Method::GET,
            "/api/v1/me",
            AnyUser,
            "auth",
            "当前用户",
            auth::me,
        )
        .route(
            Method::POST,
            "/api/v1/me/password",
            AnyUser,
            "auth",
            "修改本人密码",
            auth::change_own_password,
        )
        .route(
            Method::GET,
            "/api/v1/users",
            Roles(roles::ADMIN),
            "users",
            "用户列表",
            users::list,
        )
        .route(
            Method::POST,
            "/api/v1/users",
            Roles(roles::ADMIN),
            "users",
            "新建用户",
            users::create,
        )
        .route(
            Method::POST,
            "/api/v1/users/{username}/password",
            Roles(roles::ADMIN),
            "users",
            "重置用户密码",
            users::reset_password,
        )
        .route(
            Method::POST,
            "/api/v1/users/{username}/disable",
            Roles(roles::ADMIN),
            "users",
            "停用用户",
            users::disable,
        )
        .route(
            Method::POST,
            "/api/v1/users/{username}/enable",
            Roles(roles::ADMIN),
            "users",
            "启用用户",
            users::enable,
        )
        .route(
            Method::GET,
            "/api/v1/audit",
            Roles(roles::ADMIN_SUPERVISOR),
            "audit",
            "审计日志",
            users::audit_log,
        )
        .route(
            Method::GET,
            "/api/v1/audit/verify",
            Roles(roles::ADMIN_SUPERVISOR),
            "audit",
            "校验审计日志哈希链",
            users::audit_verify,
        )
        .route(
            Method::GET,
            "/api/v1/data-files",
            Roles(roles::ADMIN_SUPERVISOR),
            "audit",
            "导入导出数据文件登记（SHA-256 摘要）",
            users::data_files,
        )
        .with(sip::routes)
        .with(acd::routes)
        .with(crm::routes)
        .with(kb::routes)
        .with(recordings::routes)
        .with(|b| integrations::routes_with(b, state.integrations_http()))
        .with(crate::web::live::routes)
        .with(ivr_admin::routes)
        .with(admin_settings::routes)
        .with(|b| prompts::routes(b, Arc::new(prompts::PromptsHttp::default())))
        .with(chat::routes)
        .with(wechat::routes)
        .with(webchat::routes)
        .with(|b| sms::routes_with(b, state.sms_http()))
        .with(alerts::routes)
        .finish();
    let _ = doc.set(openapi::document(&specs));

    let app = api
        .merge(crate::web::routes())
        .fallback(|| async { ApiError::NotFound("接口不存在".into()) })
        .layer(middleware::from_fn_with_state(state.clone(), webchat::cors))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    (app, specs)
}

/// Counts every request by matched route (never the raw path, which would let clients create
/// unbounded label values) and adds headers every response should carry.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let mut resp = next.run(req).await.into_response();
    let status = resp.status();
    state
        .http_requests
        .with(&[
            ("route", &route),
            ("method", &method),
            ("status", status.as_str()),
        ])
        .inc();
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if route.starts_with("/api/") {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
