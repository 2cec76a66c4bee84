//! Conversations and messages in the database (tables `chat_conversations` and
//! `chat_messages`, migration 0007). State changes are conditional updates, so two agents
//! taking the same conversation cannot both win.

use hotline_core::{IdGenerator, Rng, UnixMillis};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row as _};

use super::{Channel, ConvState, Sender};
use crate::error::{IntegrationError, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub channel: Channel,
    pub user_id: String,
    pub state: ConvState,
    pub agent: String,
    pub contact_id: String,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub last_user_at: UnixMillis,
    pub queued_at: UnixMillis,
    pub taken_at: UnixMillis,
    pub closed_at: UnixMillis,
    pub rating: i64,
    pub rating_asked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub sender: Sender,
    pub agent: String,
    pub body: String,
    pub at: UnixMillis,
}

const CONV_COLS: &str = "id, channel, user_id, state, agent, contact_id, created_at, updated_at, \
    last_user_at, queued_at, taken_at, closed_at, rating, rating_asked";
const MSG_COLS: &str = "id, conversation_id, seq, sender, agent, body, at";

fn corrupt(what: &str, v: &str) -> IntegrationError {
    IntegrationError::Corrupt(format!("{what}: {v}"))
}

fn conv_from_row(r: &sqlx::any::AnyRow) -> Result<Conversation> {
    let channel: String = r.try_get("channel")?;
    let state: String = r.try_get("state")?;
    Ok(Conversation {
        id: r.try_get("id")?,
        channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel", &channel))?,
        user_id: r.try_get("user_id")?,
        state: ConvState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        agent: r.try_get("agent")?,
        contact_id: r.try_get("contact_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        last_user_at: r.try_get("last_user_at")?,
        queued_at: r.try_get("queued_at")?,
        taken_at: r.try_get("taken_at")?,
        closed_at: r.try_get("closed_at")?,
        rating: r.try_get("rating")?,
        rating_asked: r.try_get::<i64, _>("rating_asked")? != 0,
    })
}

fn msg_from_row(r: &sqlx::any::AnyRow) -> Result<Message> {
    let sender: String = r.try_get("sender")?;
    Ok(Message {
        id: r.try_get("id")?,
        conversation_id: r.try_get("conversation_id")?,
        seq: r.try_get("seq")?,
        sender: Sender::parse(&sender).ok_or_else(|| corrupt("sender", &sender))?,
        agent: r.try_get("agent")?,
        body: r.try_get("body")?,
        at: r.try_get("at")?,
    })
}

fn open_key(channel: Channel, user_id: &str) -> String {
    format!("{}:{user_id}", channel.as_str())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub async fn get(pool: &AnyPool, id: &str) -> Result<Conversation> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CONV_COLS} FROM chat_conversations WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref()
        .map(conv_from_row)
        .transpose()?
        .ok_or_else(|| IntegrationError::NotFound("会话".into()))
}

/// The user's open conversation, if any.
pub async fn find_open(
    pool: &AnyPool,
    channel: Channel,
    user_id: &str,
) -> Result<Option<Conversation>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CONV_COLS} FROM chat_conversations WHERE open_key = $1"
    )))
    .bind(open_key(channel, user_id))
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(conv_from_row).transpose()
}

/// The user's open conversation, or a new one with the bot.
pub async fn open(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    channel: Channel,
    user_id: &str,
    contact_id: &str,
) -> Result<Conversation> {
    if let Some(c) = find_open(pool, channel, user_id).await? {
        return Ok(c);
    }
    let res = sqlx::query(
        "INSERT INTO chat_conversations (id, channel, user_id, state, agent, contact_id, open_key, \
         created_at, updated_at, last_user_at, queued_at, taken_at, closed_at, rating, rating_asked) \
         VALUES ($1, $2, $3, 'bot', '', $4, $5, $6, $6, 0, 0, 0, 0, 0, 0)",
    )
    .bind(IdGenerator::new_id(now, rng))
    .bind(channel.as_str())
    .bind(user_id.to_string())
    .bind(contact_id.to_string())
    .bind(open_key(channel, user_id))
    .bind(now)
    .execute(pool)
    .await;
    match res {
        Ok(_) => {}
        // opened meanwhile by a concurrent message of the same user: use that one
        Err(e) if is_unique_violation(&e) => {}
        Err(e) => return Err(e.into()),
    }
    find_open(pool, channel, user_id)
        .await?
        .ok_or_else(|| IntegrationError::NotFound("会话".into()))
}

/// The user's most recently closed conversation that asked for a rating and got none yet.
pub async fn awaiting_rating(
    pool: &AnyPool,
    channel: Channel,
    user_id: &str,
) -> Result<Option<Conversation>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CONV_COLS} FROM chat_conversations WHERE channel = $1 AND user_id = $2 \
         AND state = 'closed' ORDER BY closed_at DESC, id DESC LIMIT 1"
    )))
    .bind(channel.as_str())
    .bind(user_id.to_string())
    .fetch_optional(pool)
    .await?;
    Ok(row
        .as_ref()
        .map(conv_from_row)
        .transpose()?
        .filter(|c| c.rating_asked && c.rating == 0))
}

/// A message to add.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    pub sender: Sender,
    /// The agent's username for agent messages, "" otherwise.
    pub agent: &'a str,
    pub body: &'a str,
    /// WeChat's message key (retries are stored once).
    pub external_id: Option<&'a str>,
}

impl<'a> NewMessage<'a> {
    pub fn new(sender: Sender, body: &'a str) -> Self {
        Self {
            sender,
            agent: "",
            body,
            external_id: None,
        }
    }
}

/// Adds a message; `Ok(None)` when a message with this `external_id` is already stored
/// (a retry). User messages also move `last_user_at`.
pub async fn add_message(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    conv: &Conversation,
    m: NewMessage<'_>,
) -> Result<Option<Message>> {
    let NewMessage {
        sender,
        agent,
        body,
        external_id,
    } = m;
    let id = IdGenerator::new_id(now, rng);
    // seq = the user's next number. Two writers may pick the same number on PostgreSQL:
    // the unique index refuses the second, which then tries again.
    for _ in 0..5 {
        let res = sqlx::query(
            "INSERT INTO chat_messages (id, conversation_id, channel, user_id, seq, sender, agent, \
             body, external_id, at) \
             SELECT $1, $2, $3, $4, COALESCE(MAX(seq), 0) + 1, $5, $6, $7, $8, $9 \
             FROM chat_messages WHERE channel = $3 AND user_id = $4",
        )
        .bind(id.clone())
        .bind(conv.id.clone())
        .bind(conv.channel.as_str())
        .bind(conv.user_id.clone())
        .bind(sender.as_str())
        .bind(agent.to_string())
        .bind(body.to_string())
        .bind(external_id.map(str::to_string))
        .bind(now)
        .execute(pool)
        .await;
        match res {
            Ok(_) => {
                let set_user = if sender == Sender::User {
                    ", last_user_at = $1"
                } else {
                    ""
                };
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE chat_conversations SET updated_at = $1{set_user} WHERE id = $2"
                )))
                .bind(now)
                .bind(conv.id.clone())
                .execute(pool)
                .await?;
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {MSG_COLS} FROM chat_messages WHERE id = $1"
                )))
                .bind(id.clone())
                .fetch_one(pool)
                .await?;
                return msg_from_row(&row).map(Some);
            }
            Err(e) if is_unique_violation(&e) => {
                if let Some(ext) = external_id {
                    let dup: Option<String> =
                        sqlx::query_scalar("SELECT id FROM chat_messages WHERE external_id = $1")
                            .bind(ext.to_string())
                            .fetch_optional(pool)
                            .await?;
                    if dup.is_some() {
                        return Ok(None);
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(IntegrationError::Conflict("消息保存冲突，请重试".into()))
}

/// Bot → queued (hand-over). Returns the updated conversation.
pub async fn hand_over(pool: &AnyPool, now: UnixMillis, id: &str) -> Result<Conversation> {
    sqlx::query(
        "UPDATE chat_conversations SET state = 'queued', queued_at = $1, updated_at = $1 \
         WHERE id = $2 AND state = 'bot'",
    )
    .bind(now)
    .bind(id.to_string())
    .execute(pool)
    .await?;
    get(pool, id).await
}

/// An agent takes a queued conversation. Only one agent wins; the others get a conflict.
pub async fn take(pool: &AnyPool, now: UnixMillis, id: &str, agent: &str) -> Result<Conversation> {
    let n = sqlx::query(
        "UPDATE chat_conversations SET state = 'assigned', agent = $1, taken_at = $2, \
         updated_at = $2 WHERE id = $3 AND state = 'queued'",
    )
    .bind(agent.to_string())
    .bind(now)
    .bind(id.to_string())
    .execute(pool)
    .await?
    .rows_affected();
    let c = get(pool, id).await?;
    if n == 0 {
        return Err(IntegrationError::Conflict(match c.state {
            ConvState::Assigned if c.agent == agent => "您已接入此会话".into(),
            ConvState::Assigned => format!("会话已由 {} 接入", c.agent),
            ConvState::Closed => "会话已结束".into(),
            _ => "会话不在排队中，无法接入".into(),
        }));
    }
    Ok(c)
}

/// Closes an open conversation (the closing message asks for a rating). `Conflict` when it
/// is closed already.
pub async fn close(pool: &AnyPool, now: UnixMillis, id: &str) -> Result<Conversation> {
    let n = sqlx::query(
        "UPDATE chat_conversations SET state = 'closed', open_key = NULL, closed_at = $1, \
         updated_at = $1, rating_asked = 1 WHERE id = $2 AND state <> 'closed'",
    )
    .bind(now)
    .bind(id.to_string())
    .execute(pool)
    .await?
    .rows_affected();
    let c = get(pool, id).await?;
    if n == 0 {
        return Err(IntegrationError::Conflict("会话已结束".into()));
    }
    Ok(c)
}

/// Stores the user's 1–5 rating of a closed conversation (once).
pub async fn set_rating(pool: &AnyPool, now: UnixMillis, id: &str, rating: u8) -> Result<bool> {
    if !(1..=5).contains(&rating) {
        return Err(IntegrationError::Invalid("评分应为 1–5".into()));
    }
    let n = sqlx::query(
        "UPDATE chat_conversations SET rating = $1, updated_at = $2 \
         WHERE id = $3 AND rating = 0 AND rating_asked = 1",
    )
    .bind(i64::from(rating))
    .bind(now)
    .bind(id.to_string())
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Which conversations to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFilter {
    /// Waiting for an agent, longest waiting first.
    Queue,
    /// Taken by this agent and still open.
    Mine(String),
    /// Every open conversation (bot, queued, assigned), newest activity first.
    Open,
}

pub async fn list(pool: &AnyPool, filter: &ListFilter, limit: i64) -> Result<Vec<Conversation>> {
    let (cond, order, arg) = match filter {
        ListFilter::Queue => ("state = 'queued'", "queued_at, id", None),
        ListFilter::Mine(a) => (
            "state = 'assigned' AND agent = $2",
            "updated_at DESC, id",
            Some(a.clone()),
        ),
        ListFilter::Open => ("state <> 'closed'", "updated_at DESC, id", None),
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CONV_COLS} FROM chat_conversations WHERE {cond} ORDER BY {order} LIMIT $1"
    )))
    .bind(limit.clamp(1, 500));
    if let Some(a) = arg {
        q = q.bind(a);
    }
    q.fetch_all(pool).await?.iter().map(conv_from_row).collect()
}

/// The messages of one conversation, oldest first.
pub async fn messages(pool: &AnyPool, conversation_id: &str) -> Result<Vec<Message>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MSG_COLS} FROM chat_messages WHERE conversation_id = $1 ORDER BY seq"
    )))
    .bind(conversation_id.to_string())
    .fetch_all(pool)
    .await?
    .iter()
    .map(msg_from_row)
    .collect()
}

/// The user's messages before this conversation (earlier conversations), newest `limit`,
/// returned oldest first: the history an agent sees.
pub async fn history_before(
    pool: &AnyPool,
    conv: &Conversation,
    limit: i64,
) -> Result<Vec<Message>> {
    let mut v = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MSG_COLS} FROM chat_messages WHERE channel = $1 AND user_id = $2 \
         AND conversation_id <> $3 AND at <= $4 ORDER BY seq DESC LIMIT $5"
    )))
    .bind(conv.channel.as_str())
    .bind(conv.user_id.clone())
    .bind(conv.id.clone())
    .bind(conv.created_at)
    .bind(limit.clamp(1, 1000))
    .fetch_all(pool)
    .await?
    .iter()
    .map(msg_from_row)
    .collect::<Result<Vec<_>>>()?;
    v.reverse();
    Ok(v)
}

/// The user's messages after `since` (a `seq`), oldest first: the widget's poll.
pub async fn messages_since(
    pool: &AnyPool,
    channel: Channel,
    user_id: &str,
    since: i64,
    limit: i64,
) -> Result<Vec<Message>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MSG_COLS} FROM chat_messages WHERE channel = $1 AND user_id = $2 AND seq > $3 \
         ORDER BY seq LIMIT $4"
    )))
    .bind(channel.as_str())
    .bind(user_id.to_string())
    .bind(since)
    .bind(limit.clamp(1, 500))
    .fetch_all(pool)
    .await?
    .iter()
    .map(msg_from_row)
    .collect()
}
