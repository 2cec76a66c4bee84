//! The WeChat Official Account (微信公众号) bridge: the server endpoint's protocol
//! (URL verification, plaintext and safe-mode messages, passive replies) and the
//! customer-service message API for agents' replies.
//!
//! Sans-IO: [`crypto`] and [`message`] are pure; [`CallbackGuard`] (timestamp window and
//! replayed nonces) takes `now`. [`api::WechatApi`] is the one part that does HTTP.
//! The HTTP endpoints live in the binary (`hotline/src/http/wechat.rs`).

pub mod api;
pub mod crypto;
pub mod message;

use std::collections::{HashMap, VecDeque};

use hotline_core::UnixMillis;
use serde::{Deserialize, Serialize};

/// Why a callback or an API call was refused. Never carries secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WechatError {
    #[error("signature does not match")]
    BadSignature,
    #[error("timestamp missing or outside the allowed window")]
    Stale,
    #[error("nonce already used")]
    Replayed,
    #[error("malformed XML: {0}")]
    MalformedXml(String),
    #[error("the message is for another AppID")]
    WrongAppId,
    #[error("bad PKCS#7 padding")]
    BadPadding,
    #[error("bad ciphertext: {0}")]
    BadCiphertext(String),
    #[error("invalid EncodingAESKey: {0}")]
    InvalidKey(String),
    #[error("WeChat API error {errcode}: {errmsg}")]
    Api { errcode: i64, errmsg: String },
    #[error("WeChat API unreachable: {0}")]
    Http(String),
}

impl WechatError {
    /// A short stable code for logs and error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadSignature => "bad_signature",
            Self::Stale => "stale",
            Self::Replayed => "replayed",
            Self::MalformedXml(_) => "malformed_xml",
            Self::WrongAppId => "wrong_app_id",
            Self::BadPadding => "bad_padding",
            Self::BadCiphertext(_) => "bad_ciphertext",
            Self::InvalidKey(_) => "invalid_key",
            Self::Api { .. } => "api_error",
            Self::Http(_) => "unreachable",
        }
    }

    pub fn message_zh(&self) -> String {
        match self {
            Self::BadSignature => "签名校验失败".into(),
            Self::Stale => "请求时间戳无效或已过期".into(),
            Self::Replayed => "重复的请求（nonce 已使用）".into(),
            Self::MalformedXml(_) => "消息 XML 格式错误".into(),
            Self::WrongAppId => "消息不属于本公众号（AppID 不符）".into(),
            Self::BadPadding | Self::BadCiphertext(_) => "消息解密失败".into(),
            Self::InvalidKey(_) => "EncodingAESKey 无效".into(),
            Self::Api { errcode, .. } => format!("微信接口返回错误（errcode {errcode}）"),
            Self::Http(_) => "无法连接微信接口".into(),
        }
    }
}

/// `[integrations.wechat]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WechatConfig {
    /// Off: the callback answers 503.
    pub enabled: bool,
    /// The Token set in the Official Account's server configuration (服务器配置).
    pub token: String,
    pub app_id: String,
    /// 43 characters; empty means plaintext mode only (安全模式 needs it).
    pub encoding_aes_key: String,
    /// For the access_token of the customer-service message API (agents' replies).
    pub app_secret: String,
    /// The WeChat API (tests point it at a fake server).
    pub api_base: String,
    /// Callbacks whose timestamp is further than this from our clock are refused.
    pub timestamp_window_secs: u32,
    /// How many recent nonces are remembered to refuse replays.
    pub nonce_cache_size: u32,
    /// WeChat lets an account message a user for this long after the user's last message.
    pub reply_window_hours: u32,
}

impl Default for WechatConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            token: String::new(),
            app_id: String::new(),
            encoding_aes_key: String::new(),
            app_secret: String::new(),
            api_base: "https://api.weixin.qq.com".into(),
            timestamp_window_secs: 300,
            nonce_cache_size: 10_000,
            reply_window_hours: 48,
        }
    }
}

fn redact(s: &str) -> &'static str {
    if s.is_empty() { "" } else { "<redacted>" }
}

impl std::fmt::Debug for WechatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatConfig")
            .field("enabled", &self.enabled)
            .field("token", &redact(&self.token))
            .field("app_id", &self.app_id)
            .field("encoding_aes_key", &redact(&self.encoding_aes_key))
            .field("app_secret", &redact(&self.app_secret))
            .field("api_base", &self.api_base)
            .field("timestamp_window_secs", &self.timestamp_window_secs)
            .field("nonce_cache_size", &self.nonce_cache_size)
            .field("reply_window_hours", &self.reply_window_hours)
            .finish()
    }
}

impl WechatConfig {
    /// Checks the values; `Err((field, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.encoding_aes_key.is_empty()
            && let Err(e) = crypto::decode_aes_key(&self.encoding_aes_key)
        {
            let msg = match e {
                WechatError::InvalidKey(m) => m,
                other => other.to_string(),
            };
            return Err(("encoding_aes_key", msg));
        }
        if !(self.api_base.starts_with("http://") || self.api_base.starts_with("https://")) {
            return Err(("api_base", "must be an http:// or https:// URL".into()));
        }
        if self.timestamp_window_secs == 0 {
            return Err(("timestamp_window_secs", "must be at least 1".into()));
        }
        if self.nonce_cache_size == 0 {
            return Err(("nonce_cache_size", "must be at least 1".into()));
        }
        if self.reply_window_hours == 0 {
            return Err(("reply_window_hours", "must be at least 1".into()));
        }
        if self.enabled {
            // WeChat's rule for the Token: 3–32 letters or digits.
            if !(3..=32).contains(&self.token.len())
                || !self.token.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err((
                    "token",
                    "must be 3–32 letters or digits when enabled (as set in 服务器配置)".into(),
                ));
            }
            if self.app_id.trim().is_empty() {
                return Err(("app_id", "must be set when enabled".into()));
            }
            if self.app_secret.is_empty() {
                return Err((
                    "app_secret",
                    "must be set when enabled (agents' replies need an access_token)".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Freshness of callbacks (sans-IO): the timestamp must be within the window and the nonce
/// new. Remembers at most `capacity` nonces, each for twice the window (older requests are
/// stale anyway), so memory stays bounded under a flood.
#[derive(Debug)]
pub struct CallbackGuard {
    window_ms: i64,
    capacity: usize,
    seen: HashMap<String, UnixMillis>,
    order: VecDeque<(UnixMillis, String)>,
}

impl CallbackGuard {
    pub fn new(window_secs: u32, capacity: u32) -> Self {
        Self {
            window_ms: i64::from(window_secs) * 1000,
            capacity: capacity.max(1) as usize,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Checks the timestamp only (URL verification carries no message to replay).
    pub fn check_time(&self, now: UnixMillis, timestamp: &str) -> Result<(), WechatError> {
        let ts: i64 = timestamp.trim().parse().map_err(|_| WechatError::Stale)?;
        if (ts.saturating_mul(1000) - now).abs() > self.window_ms {
            return Err(WechatError::Stale);
        }
        Ok(())
    }

    /// Checks the timestamp and records the nonce. Call after the signature is verified, so
    /// forged requests cannot fill the cache.
    pub fn accept(
        &mut self,
        now: UnixMillis,
        timestamp: &str,
        nonce: &str,
    ) -> Result<(), WechatError> {
        self.check_time(now, timestamp)?;
        if nonce.is_empty() || nonce.len() > 64 {
            return Err(WechatError::Replayed);
        }
        self.expire(now);
        let key = format!("{}:{nonce}", timestamp.trim());
        if self.seen.contains_key(&key) {
            return Err(WechatError::Replayed);
        }
        while self.seen.len() >= self.capacity {
            match self.order.pop_front() {
                Some((_, k)) => {
                    self.seen.remove(&k);
                }
                None => break,
            }
        }
        self.seen.insert(key.clone(), now);
        self.order.push_back((now, key));
        Ok(())
    }

    fn expire(&mut self, now: UnixMillis) {
        while let Some((at, _)) = self.order.front() {
            if now - *at <= 2 * self.window_ms {
                break;
            }
            if let Some((_, k)) = self.order.pop_front() {
                self.seen.remove(&k);
            }
        }
    }

    pub fn remembered(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_refuses_stale_and_replayed() {
        let now = 1_700_000_000_000;
        let mut g = CallbackGuard::new(300, 3);
        let ts = (now / 1000).to_string();
        g.accept(now, &ts, "n1").unwrap();
        assert_eq!(g.accept(now, &ts, "n1"), Err(WechatError::Replayed));
        assert_eq!(
            g.accept(now, &(now / 1000 - 301).to_string(), "n2"),
            Err(WechatError::Stale)
        );
        assert_eq!(
            g.accept(now, &(now / 1000 + 301).to_string(), "n2"),
            Err(WechatError::Stale)
        );
        assert_eq!(g.accept(now, "x", "n2"), Err(WechatError::Stale));
        assert_eq!(g.accept(now, &ts, ""), Err(WechatError::Replayed));
        // bounded: the oldest nonce is forgotten beyond the capacity
        for n in ["n2", "n3", "n4"] {
            g.accept(now, &ts, n).unwrap();
        }
        assert_eq!(g.remembered(), 3);
        // and entries expire after twice the window
        let later = now + 601_000;
        let ts2 = (later / 1000).to_string();
        g.accept(later, &ts2, "n9").unwrap();
        assert_eq!(g.remembered(), 1);
    }

    #[test]
    fn config_debug_redacts_secrets_and_validates() {
        let c = WechatConfig {
            enabled: true,
            token: "tok123".into(),
            app_id: "wx1".into(),
            encoding_aes_key: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C".into(),
            app_secret: "s3cr3t-value".into(),
            ..WechatConfig::default()
        };
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("tok123") && !dbg.contains("s3cr3t") && !dbg.contains("jWmY"));
        assert!(dbg.contains("wx1"));
        c.validate().unwrap();
        let bad = WechatConfig {
            encoding_aes_key: "abc".into(),
            ..c.clone()
        };
        let (field, msg) = bad.validate().unwrap_err();
        assert_eq!(field, "encoding_aes_key");
        assert!(msg.contains("43"), "{msg}");
        let bad = WechatConfig {
            token: "a b".into(),
            ..c.clone()
        };
        assert_eq!(bad.validate().unwrap_err().0, "token");
        WechatConfig::default().validate().unwrap();
    }
}
