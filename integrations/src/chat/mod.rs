//! Online chat (在线咨询): one conversation engine for the WeChat Official Account and the
//! website widget. A conversation belongs to one (channel, user): a WeChat openid or a
//! website visitor id. It starts with the bot (the knowledge base's confident answer);
//! when there is none, or the user asks for a human (人工 / 转人工), it is handed over to
//! the chat queue, where one agent takes it and replies; the agent closes it, and the
//! closing message asks for a 1–5 rating, which the user's next message may give.
//!
//! Sans-IO: [`step`], [`wants_human`], [`parse_rating`] and [`limit::RateLimiter`] take
//! `now` and inputs and decide; [`store`] keeps conversations and messages in the database.
//! The binary wires the knowledge base, the CRM timeline and the WeChat API around them.

pub mod limit;
pub mod store;

use serde::{Deserialize, Serialize};

/// `[integrations.web_chat]`: the website chat widget and its public visitor API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebChatConfig {
    /// Off: the visitor API answers 503 (the widget script is still served).
    pub enabled: bool,
    /// Sites whose pages may call the visitor API (CORS), e.g. `https://auction.example.cn`:
    /// scheme, host and port only.
    pub allowed_origins: Vec<String>,
    /// Messages one visitor may send per minute.
    pub visitor_messages_per_minute: u32,
    /// Requests (messages and polls) one client address may make per minute.
    pub ip_requests_per_minute: u32,
    /// Longest message a visitor may send, in characters.
    pub max_message_chars: u32,
}

impl Default for WebChatConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            allowed_origins: Vec::new(),
            visitor_messages_per_minute: 10,
            ip_requests_per_minute: 120,
            max_message_chars: 500,
        }
    }
}

impl WebChatConfig {
    /// Checks the values; `Err((field, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for o in &self.allowed_origins {
            let rest = o
                .strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"));
            let ok = rest.is_some_and(|h| {
                !h.is_empty()
                    && !h.contains('/')
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            });
            if !ok {
                return Err((
                    "allowed_origins",
                    format!(
                        "`{o}` is not an origin like https://auction.example.cn (no path, no trailing slash)"
                    ),
                ));
            }
        }
        if self.enabled && self.allowed_origins.is_empty() {
            return Err((
                "allowed_origins",
                "must list the website's origin when enabled".into(),
            ));
        }
        for (k, v) in [
            (
                "visitor_messages_per_minute",
                self.visitor_messages_per_minute,
            ),
            ("ip_requests_per_minute", self.ip_requests_per_minute),
        ] {
            if v == 0 {
                return Err((k, "must be at least 1".into()));
            }
        }
        if !(1..=5000).contains(&self.max_message_chars) {
            return Err(("max_message_chars", "must be between 1 and 5000".into()));
        }
        Ok(())
    }

    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == origin)
    }
}

/// Where a conversation takes place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Wechat,
    Web,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wechat => "wechat",
            Self::Web => "web",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "wechat" => Some(Self::Wechat),
            "web" => Some(Self::Web),
            _ => None,
        }
    }
}

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvState {
    /// The bot answers from the knowledge base.
    Bot,
    /// Handed over, waiting in the chat queue for an agent.
    Queued,
    /// One agent has it.
    Assigned,
    Closed,
}

impl ConvState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::Queued => "queued",
            Self::Assigned => "assigned",
            Self::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bot" => Some(Self::Bot),
            "queued" => Some(Self::Queued),
            "assigned" => Some(Self::Assigned),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    User,
    Bot,
    Agent,
    /// Notices of the system (hand-over, agent joined, closed).
    System,
}

impl Sender {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Bot => "bot",
            Self::Agent => "agent",
            Self::System => "system",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "bot" => Some(Self::Bot),
            "agent" => Some(Self::Agent),
            "system" => Some(Self::System),
            _ => None,
        }
    }
}

/// Texts users see (zh-CN).
pub mod texts {
    pub const WELCOME: &str =
        "您好，欢迎关注！请直接输入您的问题，例如“保证金什么时候退”。如需人工服务，请回复“人工”。";
    pub const ANSWER_FOOTER: &str = "（如未解决您的问题，请回复“人工”转人工客服）";
    pub const HANDOVER_ASKED: &str = "正在为您转接人工客服，请稍候，客服接入后会在这里回复您。";
    pub const HANDOVER_NO_ANSWER: &str =
        "抱歉，暂时没有找到确切的答案，正在为您转接人工客服，请稍候。";
    pub const STILL_WAITING: &str = "您已在人工客服排队中，请稍候，客服接入后会尽快回复您。";
    pub const CLOSING: &str =
        "本次会话已结束，感谢您的咨询。请为本次服务评分：回复数字 1–5（5 为非常满意）。";
    pub const RATING_THANKS: &str = "感谢您的评价！如有其他问题，欢迎随时留言。";
    pub const UNSUPPORTED: &str = "抱歉，目前只能处理文字消息，请用文字描述您的问题。";

    pub fn agent_joined(name: &str) -> String {
        format!("客服 {name} 已接入，为您服务。")
    }
}

/// Whether the user asks for a human agent (人工, 转人工, 人工客服, 找客服 …).
pub fn wants_human(text: &str) -> bool {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    t.contains("人工") || matches!(t.as_str(), "客服" | "找客服" | "转客服")
}

/// A rating 1–5 given as the whole message ("5", "５", "5分", "5星").
pub fn parse_rating(text: &str) -> Option<u8> {
    let t = text.trim();
    let t = t
        .strip_suffix('分')
        .or_else(|| t.strip_suffix('星'))
        .unwrap_or(t)
        .trim();
    let mut chars = t.chars();
    let c = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    let d = match c {
        '1'..='5' => c as u32 - '0' as u32,
        '１'..='５' => c as u32 - '０' as u32,
        _ => return None,
    };
    Some(d as u8)
}

/// What to do with a user's text, given the conversation's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Ask the knowledge base; answer when it is confident, else hand over.
    AskBot,
    /// The user asked for a human: hand over now.
    HandOver,
    /// Already waiting for an agent: remind the user, nothing else.
    Waiting,
    /// An agent has the conversation: the message is for them.
    ToAgent,
}

pub fn step(state: ConvState, text: &str) -> Step {
    match state {
        ConvState::Bot | ConvState::Closed if wants_human(text) => Step::HandOver,
        ConvState::Bot | ConvState::Closed => Step::AskBot,
        ConvState::Queued => Step::Waiting,
        ConvState::Assigned => Step::ToAgent,
    }
}

/// The bot's answer text from a knowledge-base article (plain text, bounded, with the
/// hint how to reach a human). WeChat limits a passive text reply to 2,048 bytes.
pub fn bot_answer(title: &str, text: &str, max_chars: usize) -> String {
    let body: String = text.trim().chars().take(max_chars).collect();
    let cut = if text.trim().chars().count() > max_chars {
        "……"
    } else {
        ""
    };
    format!(
        "【{}】\n{body}{cut}\n\n{}",
        title.trim(),
        texts::ANSWER_FOOTER
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_requests_are_recognised() {
        for t in ["人工", "转人工", " 转 人工 ", "我要人工客服", "客服"] {
            assert!(wants_human(t), "{t}");
        }
        for t in ["保证金什么时候退", "人", "工作时间"] {
            assert!(!wants_human(t), "{t}");
        }
    }

    #[test]
    fn ratings_are_single_digits() {
        assert_eq!(parse_rating("5"), Some(5));
        assert_eq!(parse_rating(" １ "), Some(1));
        assert_eq!(parse_rating("4分"), Some(4));
        assert_eq!(parse_rating("3星"), Some(3));
        for t in ["0", "6", "55", "五", "", "5 分钟后", "12345"] {
            assert_eq!(parse_rating(t), None, "{t}");
        }
    }

    #[test]
    fn steps_by_state() {
        assert_eq!(step(ConvState::Bot, "保证金"), Step::AskBot);
        assert_eq!(step(ConvState::Bot, "转人工"), Step::HandOver);
        assert_eq!(step(ConvState::Queued, "在吗"), Step::Waiting);
        assert_eq!(step(ConvState::Queued, "人工"), Step::Waiting);
        assert_eq!(step(ConvState::Assigned, "人工"), Step::ToAgent);
    }

    #[test]
    fn bot_answers_are_bounded() {
        let a = bot_answer("退款", &"很".repeat(1000), 300);
        assert!(a.chars().count() < 400);
        assert!(a.contains("……") && a.contains("人工"));
        let a = bot_answer("退款", "三个工作日内", 300);
        assert!(a.starts_with("【退款】\n三个工作日内\n"));
    }
}
