//! The agents' chat API (JSON, for the web console): the queue and one's own
//! conversations, taking a queued conversation (one agent each), the thread with the
//! user's earlier history, replying (on WeChat through the customer-service API, within
//! the 48-hour window) and closing (asks the user for a 1–5 rating). Agents and
//! supervisors; a supervisor may also close any conversation.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use hotline_core::Role;
use hotline_integrations::IntegrationError;
use hotline_integrations::chat::store::{self, Conversation, ListFilter, Message};
use hotline_integrations::wechat::WechatError;
use serde::{Deserialize, Serialize};

use super::access::{Access, ApiBuilder, ClientAddr, CurrentUser};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use super::state::AppState;
use crate::chat::{self, ChatError};

/// Who works the chat queue.
pub const CHAT: &[Role] = &[Role::Supervisor, Role::Agent];

pub fn routes(b: ApiBuilder) -> ApiBuilder {
    let roles = Access::Roles(CHAT);
    b.route(
        Method::GET,
        "/api/v1/chats",
        roles,
        "chat",
        "在线咨询会话列表（view=queue 排队中 / mine 我的 / open 全部进行中）",
        list,
    )
    .route(
        Method::GET,
        "/api/v1/chats/{id}",
        roles,
        "chat",
        "会话详情（消息及该用户的历史消息）",
        thread,
    )
    .route(
        Method::POST,
        "/api/v1/chats/{id}/take",
        roles,
        "chat",
        "接入排队中的会话（每个会话由一名坐席负责）",
        take,
    )
    .route(
        Method::POST,
        "/api/v1/chats/{id}/messages",
        roles,
        "chat",
        "回复用户（微信用户通过客服消息接口发送，受 48 小时限制）",
        reply,
    )
    .route(
        Method::POST,
        "/api/v1/chats/{id}/close",
        roles,
        "chat",
        "结束会话（并邀请用户评价 1–5 分）",
        close,
    )
}

/// The status of a chat failure (shared with the WeChat and visitor routes).
pub(crate) fn chat_err(e: ChatError) -> ApiError {
    match e {
        ChatError::Store(IntegrationError::NotFound(m)) => ApiError::NotFound(format!("{m}不存在")),
        ChatError::Store(IntegrationError::Conflict(m)) => ApiError::Conflict(m),
        ChatError::Store(IntegrationError::Invalid(m)) => ApiError::BadRequest(m),
        ChatError::Store(other) => ApiError::internal(other),
        ChatError::Refused(m) => ApiError::Conflict(m),
        ChatError::NotYours(m) => ApiError::Conflict(m),
        ChatError::Wechat(e @ (WechatError::Api { .. } | WechatError::Http(_))) => {
            tracing::warn!(error = %e, "WeChat customer-service message failed");
            ApiError::Upstream(format!("消息未能发送到微信：{}", e.message_zh()))
        }
        ChatError::Wechat(other) => ApiError::internal(other),
        ChatError::Crm(m) => ApiError::internal(m),
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    #[default]
    Queue,
    Mine,
    Open,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub view: View,
    pub limit: Option<i64>,
}

async fn list(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<Conversation>>> {
    let filter = match q.view {
        View::Queue => ListFilter::Queue,
        View::Mine => ListFilter::Mine(me.user.username.clone()),
        View::Open => ListFilter::Open,
    };
    let list = store::list(&st.db.pool, &filter, q.limit.unwrap_or(100))
        .await
        .map_err(|e| chat_err(e.into()))?;
    Ok(Json(list))
}

#[derive(Debug, Serialize)]
pub struct Thread {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
    /// The same user's messages in earlier conversations (oldest first).
    pub history: Vec<Message>,
    /// Until when an agent may still reply (WeChat's window; 0 for the website).
    pub reply_deadline: i64,
}

async fn thread(
    State(st): State<AppState>,
    _me: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Thread>> {
    let pool = &st.db.pool;
    let conversation = store::get(pool, &id)
        .await
        .map_err(|e| chat_err(e.into()))?;
    let messages = store::messages(pool, &id)
        .await
        .map_err(|e| chat_err(e.into()))?;
    let history = store::history_before(pool, &conversation, chat::HISTORY_MESSAGES)
        .await
        .map_err(|e| chat_err(e.into()))?;
    let reply_deadline = match conversation.channel {
        hotline_integrations::chat::Channel::Wechat => {
            conversation.last_user_at
                + i64::from(st.config.integrations.wechat.reply_window_hours) * 3_600_000
        }
        hotline_integrations::chat::Channel::Web => 0,
    };
    Ok(Json(Thread {
        conversation,
        messages,
        history,
        reply_deadline,
    }))
}

async fn audit(
    st: &AppState,
    me: &CurrentUser,
    addr: &str,
    action: &str,
    id: &str,
) -> ApiResult<()> {
    st.audit_by(me, addr, action, id, "").await?;
    Ok(())
}

async fn take(
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Conversation>> {
    let hub = st.chat_hub();
    let name = if me.user.display_name.trim().is_empty() {
        me.user.username.clone()
    } else {
        me.user.display_name.clone()
    };
    let c = chat::take(&st, &hub, &id, &me.user.username, &name)
        .await
        .map_err(chat_err)?;
    audit(&st, &me, &addr, "chat.take", &id).await?;
    Ok(Json(c))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    pub text: String,
}

async fn reply(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ReplyRequest>,
) -> ApiResult<Json<Message>> {
    let hub = st.chat_hub();
    let m = chat::agent_reply(&st, &hub, &id, &me.user.username, &req.text)
        .await
        .map_err(chat_err)?;
    Ok(Json(m))
}

async fn close(
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Conversation>> {
    let hub = st.chat_hub();
    let force = me.user.role == Role::Supervisor;
    let c = chat::close(&st, &hub, &id, &me.user.username, force)
        .await
        .map_err(chat_err)?;
    audit(&st, &me, &addr, "chat.close", &id).await?;
    Ok(Json(c))
}
