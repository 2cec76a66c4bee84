//! The online-chat engine wired to its neighbours: one path for a user's message from
//! WeChat or the website widget (knowledge-base answer within WeChat's 5-second window, or
//! hand-over to the chat queue), and the agent's operations (take, reply, close). The
//! protocol and storage are `hotline_integrations::{wechat, chat}`; this module adds the
//! knowledge base, the CRM timeline and the WeChat customer-service API.
//!
//! CRM timeline: a WeChat conversation is recorded once, when it closes (one `wechat`
//! interaction with the agent, the message count and the times), and the user's rating, when
//! it comes, as a `survey` interaction. Website visitors are anonymous (a random id in their
//! browser), so their conversations are not on any contact's timeline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline_core::UnixMillis;
use hotline_crm::store::{InteractionKind, NewInteraction};
use hotline_integrations::IntegrationError;
use hotline_integrations::IntegrationsConfig;
use hotline_integrations::chat::limit::RateLimiter;
use hotline_integrations::chat::store::{self, Conversation, Message, NewMessage};
use hotline_integrations::chat::{self, Channel, ConvState, Sender, Step, texts};
use hotline_integrations::wechat::api::WechatApi;
use hotline_integrations::wechat::crypto::MsgCrypto;
use hotline_integrations::wechat::{CallbackGuard, WechatError};

use crate::http::AppState;

/// WeChat waits 5 s for a passive reply; the knowledge base must answer well within that,
/// or the user is handed over (and WeChat would otherwise retry the message three times).
pub const ANSWER_DEADLINE: Duration = Duration::from_millis(3500);

/// Longest article text in a bot answer (WeChat's passive text reply allows 2,048 bytes).
pub const ANSWER_MAX_CHARS: usize = 550;

/// Longest agent reply (WeChat's customer-service text limit is 2,048 bytes).
pub const MAX_AGENT_REPLY_CHARS: usize = 600;

/// How many earlier messages of the same user an agent sees with a conversation.
pub const HISTORY_MESSAGES: i64 = 100;

/// What the chat routes share: the WeChat cipher, the callback guard, the API client and
/// the visitor rate limits. Made once from `[integrations]`.
#[derive(Debug)]
pub struct ChatHub {
    pub config: IntegrationsConfig,
    /// `None` when no EncodingAESKey is configured (plaintext mode only) or it is invalid.
    pub crypto: Option<MsgCrypto>,
    pub guard: Mutex<CallbackGuard>,
    pub api: Arc<WechatApi>,
    pub visitor_limit: Mutex<RateLimiter>,
    pub ip_limit: Mutex<RateLimiter>,
}

/// Rate-limit tables never hold more keys than this.
const MAX_LIMIT_KEYS: usize = 100_000;

impl ChatHub {
    pub fn new(config: IntegrationsConfig) -> Self {
        let w = &config.wechat;
        let crypto = if w.encoding_aes_key.is_empty() {
            None
        } else {
            MsgCrypto::new(&w.token, &w.encoding_aes_key, &w.app_id).ok()
        };
        Self {
            crypto,
            guard: Mutex::new(CallbackGuard::new(
                w.timestamp_window_secs,
                w.nonce_cache_size,
            )),
            api: Arc::new(WechatApi::new(w)),
            visitor_limit: Mutex::new(RateLimiter::new(
                config.web_chat.visitor_messages_per_minute,
                MAX_LIMIT_KEYS,
            )),
            ip_limit: Mutex::new(RateLimiter::new(
                config.web_chat.ip_requests_per_minute,
                MAX_LIMIT_KEYS,
            )),
            config,
        }
    }

    fn reply_window_ms(&self) -> i64 {
        i64::from(self.config.wechat.reply_window_hours) * 3_600_000
    }
}

/// A chat failure, for the HTTP layer to map.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Store(#[from] IntegrationError),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    NotYours(String),
    #[error("WeChat: {0}")]
    Wechat(#[from] WechatError),
    #[error("crm: {0}")]
    Crm(String),
}

/// What arrived from a user.
#[derive(Debug, Clone)]
pub struct UserMessage {
    pub channel: Channel,
    pub user_id: String,
    /// The text written (or WeChat's speech recognition); `None` for what we cannot read
    /// (images, voice without recognition …), stored as `placeholder`.
    pub text: Option<String>,
    pub placeholder: String,
    /// WeChat's message key, so that retries are handled once.
    pub external_id: Option<String>,
}

/// What to answer the user now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A reply to show (passive reply on WeChat; a new message for the widget).
    Reply(String),
    /// Nothing to say now (an agent has the conversation, or the user waits in the queue).
    Silent,
    /// WeChat's retry of a message already handled.
    Duplicate,
}

async fn contact_for(st: &AppState, channel: Channel, user_id: &str) -> Result<String, ChatError> {
    if channel != Channel::Wechat {
        return Ok(String::new());
    }
    crate::http::crm::store(st)
        .contact_by_openid(st.now(), st.rng.as_ref(), user_id)
        .await
        .map(|c| c.id)
        .map_err(|e| ChatError::Crm(e.to_string()))
}

async fn say(
    st: &AppState,
    conv: &Conversation,
    sender: Sender,
    body: &str,
) -> Result<Option<Message>, ChatError> {
    Ok(store::add_message(
        &st.db.pool,
        st.now(),
        st.rng.as_ref(),
        conv,
        NewMessage::new(sender, body),
    )
    .await?)
}

/// The knowledge base's confident answer, or `None` (no knowledge base, no confident
/// article, an error, or too slow for WeChat's window).
async fn bot_answer(st: &AppState, question: &str) -> Option<String> {
    let kb = st.knowledge.get()?.clone();
    match tokio::time::timeout(ANSWER_DEADLINE, kb.best_answer(question)).await {
        Ok(Ok(Some(a))) => Some(chat::bot_answer(&a.title, &a.text, ANSWER_MAX_CHARS)),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "knowledge base answer failed; handing over");
            None
        }
        Err(_) => {
            tracing::warn!("knowledge base too slow for the chat reply window; handing over");
            None
        }
    }
}

/// Handles one message of a user: stores it and decides the reply.
pub async fn handle_user_message(st: &AppState, m: UserMessage) -> Result<Outcome, ChatError> {
    let pool = &st.db.pool;
    let now = st.now();
    // A rating for the conversation that was just closed ("请回复 1–5")?
    if let Some(rating) = m.text.as_deref().and_then(chat::parse_rating)
        && store::find_open(pool, m.channel, &m.user_id)
            .await?
            .is_none()
        && let Some(closed) = store::awaiting_rating(pool, m.channel, &m.user_id).await?
    {
        let Some(_) = store::add_message(
            pool,
            now,
            st.rng.as_ref(),
            &closed,
            NewMessage {
                external_id: m.external_id.as_deref(),
                ..NewMessage::new(Sender::User, m.text.as_deref().unwrap_or_default())
            },
        )
        .await?
        else {
            return Ok(Outcome::Duplicate);
        };
        if store::set_rating(pool, now, &closed.id, rating).await? {
            record_rating(st, &closed, rating).await;
        }
        say(st, &closed, Sender::Bot, texts::RATING_THANKS).await?;
        return Ok(Outcome::Reply(texts::RATING_THANKS.into()));
    }
    let conv = match store::find_open(pool, m.channel, &m.user_id).await? {
        Some(c) => c,
        None => {
            let contact = contact_for(st, m.channel, &m.user_id).await?;
            store::open(pool, now, st.rng.as_ref(), m.channel, &m.user_id, &contact).await?
        }
    };
    let body = m.text.clone().unwrap_or_else(|| m.placeholder.clone());
    if store::add_message(
        pool,
        now,
        st.rng.as_ref(),
        &conv,
        NewMessage {
            external_id: m.external_id.as_deref(),
            ..NewMessage::new(Sender::User, &body)
        },
    )
    .await?
    .is_none()
    {
        return Ok(Outcome::Duplicate);
    }
    let Some(text) = m.text.as_deref().filter(|t| !t.trim().is_empty()) else {
        if conv.state == ConvState::Bot {
            say(st, &conv, Sender::Bot, texts::UNSUPPORTED).await?;
            return Ok(Outcome::Reply(texts::UNSUPPORTED.into()));
        }
        return Ok(Outcome::Silent);
    };
    match chat::step(conv.state, text) {
        Step::AskBot => match bot_answer(st, text).await {
            Some(answer) => {
                say(st, &conv, Sender::Bot, &answer).await?;
                Ok(Outcome::Reply(answer))
            }
            None => hand_over(st, &conv, texts::HANDOVER_NO_ANSWER).await,
        },
        Step::HandOver => hand_over(st, &conv, texts::HANDOVER_ASKED).await,
        // Messages while waiting or with an agent are for the agent: no automatic reply.
        Step::Waiting | Step::ToAgent => Ok(Outcome::Silent),
    }
}

async fn hand_over(st: &AppState, conv: &Conversation, notice: &str) -> Result<Outcome, ChatError> {
    store::hand_over(&st.db.pool, st.now(), &conv.id).await?;
    say(st, conv, Sender::System, notice).await?;
    tracing::info!(conversation = %conv.id, channel = conv.channel.as_str(), "chat handed over to the queue");
    Ok(Outcome::Reply(notice.into()))
}

/// An agent takes a queued conversation; the user is told who joined.
pub async fn take(
    st: &AppState,
    hub: &ChatHub,
    id: &str,
    agent: &str,
    display_name: &str,
) -> Result<Conversation, ChatError> {
    let conv = store::take(&st.db.pool, st.now(), id, agent).await?;
    let notice = texts::agent_joined(display_name);
    say(st, &conv, Sender::System, &notice).await?;
    if conv.channel == Channel::Wechat {
        // Best effort: the agent's first reply reaches the user either way.
        if let Err(e) = deliver_wechat(st, hub, &conv, &notice).await {
            tracing::warn!(conversation = %conv.id, error = %e, "WeChat join notice not sent");
        }
    }
    Ok(conv)
}

/// Checks WeChat's reply window and sends a text through the customer-service API.
async fn deliver_wechat(
    st: &AppState,
    hub: &ChatHub,
    conv: &Conversation,
    text: &str,
) -> Result<(), ChatError> {
    let now = st.now();
    if now - conv.last_user_at > hub.reply_window_ms() {
        return Err(ChatError::Refused(format!(
            "已超过微信 {} 小时回复时限：用户最后一条消息在 {} 小时之前，微信不允许再向其发送客服消息。请通过电话等其他方式联系用户。",
            hub.config.wechat.reply_window_hours, hub.config.wechat.reply_window_hours
        )));
    }
    hub.api.send_text(now, &conv.user_id, text).await?;
    Ok(())
}

/// The assigned agent replies; on WeChat the message goes out through the customer-service
/// API before it is stored (a failed send is reported, not stored as sent).
pub async fn agent_reply(
    st: &AppState,
    hub: &ChatHub,
    id: &str,
    agent: &str,
    text: &str,
) -> Result<Message, ChatError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ChatError::Refused("回复内容不能为空".into()));
    }
    if text.chars().count() > MAX_AGENT_REPLY_CHARS {
        return Err(ChatError::Refused(format!(
            "回复过长（最多 {MAX_AGENT_REPLY_CHARS} 字）"
        )));
    }
    let conv = store::get(&st.db.pool, id).await?;
    check_owner(&conv, agent)?;
    if conv.channel == Channel::Wechat {
        deliver_wechat(st, hub, &conv, text).await?;
    }
    store::add_message(
        &st.db.pool,
        st.now(),
        st.rng.as_ref(),
        &conv,
        NewMessage {
            agent,
            ..NewMessage::new(Sender::Agent, text)
        },
    )
    .await?
    .ok_or_else(|| ChatError::Refused("消息重复".into()))
}

fn check_owner(conv: &Conversation, agent: &str) -> Result<(), ChatError> {
    match conv.state {
        ConvState::Assigned if conv.agent == agent => Ok(()),
        ConvState::Assigned => Err(ChatError::NotYours(format!(
            "会话由 {} 负责，您不能回复",
            conv.agent
        ))),
        ConvState::Closed => Err(ChatError::Refused("会话已结束".into())),
        _ => Err(ChatError::Refused("请先接入会话再回复".into())),
    }
}

/// The assigned agent (or a supervisor, `force`) closes the conversation: the closing
/// message asks for a rating, and the conversation goes on the contact's CRM timeline.
pub async fn close(
    st: &AppState,
    hub: &ChatHub,
    id: &str,
    agent: &str,
    force: bool,
) -> Result<Conversation, ChatError> {
    let before = store::get(&st.db.pool, id).await?;
    if !force {
        check_owner(&before, agent)?;
    }
    let conv = store::close(&st.db.pool, st.now(), id).await?;
    say(st, &conv, Sender::System, texts::CLOSING).await?;
    if conv.channel == Channel::Wechat
        && let Err(e) = deliver_wechat(st, hub, &conv, texts::CLOSING).await
    {
        tracing::warn!(conversation = %conv.id, error = %e, "WeChat closing message not sent");
    }
    record_conversation(st, &conv).await;
    Ok(conv)
}

async fn record_conversation(st: &AppState, conv: &Conversation) {
    if conv.contact_id.is_empty() {
        return;
    }
    let count = store::messages(&st.db.pool, &conv.id)
        .await
        .map(|m| m.len())
        .unwrap_or_default();
    let agent = if conv.agent.is_empty() {
        "无".to_string()
    } else {
        conv.agent.clone()
    };
    let i = NewInteraction {
        contact_id: conv.contact_id.clone(),
        kind: InteractionKind::Wechat,
        at: conv.created_at,
        ref_id: conv.id.clone(),
        summary: format!("微信咨询：{count} 条消息，客服 {agent}"),
        detail: serde_json::json!({
            "channel": conv.channel.as_str(),
            "agent": conv.agent,
            "messages": count,
            "queued_at": conv.queued_at,
            "taken_at": conv.taken_at,
            "closed_at": conv.closed_at,
        }),
    };
    if let Err(e) = crate::http::crm::store(st)
        .record_interaction(st.now(), st.rng.as_ref(), &i)
        .await
    {
        tracing::warn!(conversation = %conv.id, error = %e, "chat not recorded on the CRM timeline");
    }
}

async fn record_rating(st: &AppState, conv: &Conversation, rating: u8) {
    if conv.contact_id.is_empty() {
        return;
    }
    let i = NewInteraction {
        contact_id: conv.contact_id.clone(),
        kind: InteractionKind::Survey,
        at: st.now(),
        ref_id: conv.id.clone(),
        summary: format!("微信咨询满意度：{rating} 分"),
        detail: serde_json::json!({ "channel": conv.channel.as_str(), "rating": rating, "agent": conv.agent }),
    };
    if let Err(e) = crate::http::crm::store(st)
        .record_interaction(st.now(), st.rng.as_ref(), &i)
        .await
    {
        tracing::warn!(conversation = %conv.id, error = %e, "chat rating not recorded on the CRM timeline");
    }
}

/// Unix milliseconds → WeChat's seconds.
pub fn wechat_time(now: UnixMillis) -> i64 {
    now / 1000
}
