//! The website's online Q&A (在线咨询) widget: the script (`GET /widget/chat.js`, embedded in
//! the binary) and the public visitor API it calls from the auction website's pages:
//! `POST /api/v1/webchat/messages` (send; answers with the new messages) and
//! `GET /api/v1/webchat/messages?visitor_id=…&since=N` (poll for new messages, `since` is the
//! last `seq` seen). The same conversation engine as WeChat answers (knowledge base, 转人工
//! to the same chat queue).
//!
//! A visitor is a random id the script keeps in `localStorage` (no cookies, so it works from
//! a third-party origin and there is no session to forge). Guards, in order: enabled (503),
//! origin in `allowed_origins` (CORS, [`cors`]; 403 otherwise), requests per client address
//! and minute (429), a well-formed visitor id (400), message size (413), messages per
//! visitor and minute (429).

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hotline_integrations::chat::Channel;
use hotline_integrations::chat::store::{self, Message};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::access::{Access, ApiBuilder, ClientAddr};
use super::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use super::state::AppState;
use crate::chat::{self, UserMessage};

/// The widget script, served as is.
pub const WIDGET_JS: &str = include_str!("../../assets/widget/chat.js");

/// Visitor requests are small; the JSON body of a message may not exceed this.
pub const MAX_VISITOR_BODY_BYTES: usize = 16 * 1024;

/// The path prefix of the visitor API (CORS applies to it).
pub const API_PREFIX: &str = "/api/v1/webchat/";

pub fn routes(b: ApiBuilder) -> ApiBuilder {
    b.route(
        Method::GET,
        "/widget/chat.js",
        Access::Public,
        "webchat",
        "网站在线咨询挂件脚本",
        widget_js,
    )
    .route(
        Method::POST,
        "/api/v1/webchat/messages",
        Access::Visitor,
        "webchat",
        "网站访客发送咨询消息（返回新消息）",
        send.layer(DefaultBodyLimit::max(MAX_VISITOR_BODY_BYTES)),
    )
    .route(
        Method::GET,
        "/api/v1/webchat/messages",
        Access::Visitor,
        "webchat",
        "网站访客获取新消息（since 游标）",
        poll,
    )
}

async fn widget_js() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
            // Pages of other sites load it with a <script> tag.
            (
                header::HeaderName::from_static("cross-origin-resource-policy"),
                HeaderValue::from_static("cross-origin"),
            ),
        ],
        WIDGET_JS,
    )
        .into_response()
}

fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

fn too_many(retry_after_secs: u64, message: &str) -> Response {
    let mut r = refused(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message);
    if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Visitor ids are made by the script: 16–64 letters, digits, `-` or `_`.
fn valid_visitor(id: &str) -> bool {
    (16..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The refusal when off (503) or when the client address is over its limit (429).
fn refusal(st: &AppState, addr: &str) -> Option<Response> {
    let hub = st.chat_hub();
    if !hub.config.web_chat.enabled {
        return Some(
            ApiError::Unavailable("integrations.web_chat is not enabled".into()).into_response(),
        );
    }
    let limited = hub
        .ip_limit
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(st.now(), addr);
    if let Err(retry) = limited {
        tracing::warn!(addr, "web chat: address over its request limit");
        return Some(too_many(retry, "请求过于频繁，请稍后再试"));
    }
    None
}

/// A message as a visitor sees it (no agent usernames).
#[derive(Debug, Serialize)]
pub struct VisitorMessage {
    pub seq: i64,
    /// user | bot | agent | system
    pub sender: hotline_integrations::chat::Sender,
    pub body: String,
    pub at: i64,
}

impl From<Message> for VisitorMessage {
    fn from(m: Message) -> Self {
        Self {
            seq: m.seq,
            sender: m.sender,
            body: m.body,
            at: m.at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct VisitorAnswer {
    pub messages: Vec<VisitorMessage>,
    /// The `seq` to poll from next.
    pub cursor: i64,
    /// bot | queued | assigned | none (no open conversation)
    pub state: String,
}

async fn answer(st: &AppState, visitor: &str, since: i64) -> ApiResult<VisitorAnswer> {
    let pool = &st.db.pool;
    let messages = store::messages_since(pool, Channel::Web, visitor, since.max(0), 200)
        .await
        .map_err(|e| super::chat::chat_err(e.into()))?;
    let state = store::find_open(pool, Channel::Web, visitor)
        .await
        .map_err(|e| super::chat::chat_err(e.into()))?
        .map_or_else(|| "none".to_string(), |c| c.state.as_str().to_string());
    let cursor = messages.last().map_or(since.max(0), |m| m.seq);
    Ok(VisitorAnswer {
        messages: messages.into_iter().map(VisitorMessage::from).collect(),
        cursor,
        state,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub visitor_id: String,
    pub text: String,
    /// The last `seq` the widget has; the answer holds everything after it.
    #[serde(default)]
    pub since: i64,
}

async fn send(
    State(st): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<SendRequest>,
) -> ApiResult<Response> {
    if let Some(r) = refusal(&st, &addr) {
        return Ok(r);
    }
    if !valid_visitor(&req.visitor_id) {
        return Err(ApiError::BadRequest("访客标识无效".into()));
    }
    let text = req.text.trim();
    if text.is_empty() {
        return Err(ApiError::BadRequest("消息不能为空".into()));
    }
    let hub = st.chat_hub();
    let max = hub.config.web_chat.max_message_chars as usize;
    if text.chars().count() > max {
        return Ok(refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("消息过长，请控制在 {max} 字以内"),
        ));
    }
    let limited = hub
        .visitor_limit
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(st.now(), &req.visitor_id);
    if let Err(retry) = limited {
        return Ok(too_many(retry, "发送太频繁，请稍后再试"));
    }
    chat::handle_user_message(
        &st,
        UserMessage {
            channel: Channel::Web,
            user_id: req.visitor_id.clone(),
            text: Some(text.to_string()),
            placeholder: String::new(),
            external_id: None,
        },
    )
    .await
    .map_err(super::chat::chat_err)?;
    Ok(Json(answer(&st, &req.visitor_id, req.since).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollQuery {
    pub visitor_id: String,
    #[serde(default)]
    pub since: i64,
}

async fn poll(
    State(st): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiQuery(q): ApiQuery<PollQuery>,
) -> ApiResult<Response> {
    if let Some(r) = refusal(&st, &addr) {
        return Ok(r);
    }
    if !valid_visitor(&q.visitor_id) {
        return Err(ApiError::BadRequest("访客标识无效".into()));
    }
    Ok(Json(answer(&st, &q.visitor_id, q.since).await?).into_response())
}

fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
    host.is_some_and(|h| h == origin_host)
}

/// CORS for the visitor API (router-level middleware, so it also answers preflight
/// `OPTIONS` requests, which no route declares): a browser request from an origin in
/// `integrations.web_chat.allowed_origins` gets `Access-Control-Allow-Origin` for that
/// origin; another site's request is refused with 403. Requests without `Origin` (not from a
/// browser page of another site) pass; the rate limits still apply.
pub async fn cors(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with(API_PREFIX) {
        return next.run(req).await;
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(origin) = origin else {
        return next.run(req).await;
    };
    let allowed = st.config.integrations.web_chat.allows_origin(&origin);
    if !allowed && !same_origin(req.headers(), &origin) {
        tracing::warn!(origin = %origin, "web chat: origin not allowed");
        return refused(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "该网站未被允许使用在线咨询",
        );
    }
    let mut resp = if req.method() == Method::OPTIONS {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("origin"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_ids_are_checked() {
        assert!(valid_visitor("v_0123456789abcdef"));
        assert!(!valid_visitor("short"));
        assert!(!valid_visitor("has space 0123456789"));
        assert!(!valid_visitor(&"x".repeat(65)));
    }
}
