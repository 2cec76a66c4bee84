//! The WeChat API client for agents' replies: the customer-service message API
//! (`POST /cgi-bin/message/custom/send?access_token=…`) with the access_token from
//! `GET /cgi-bin/token?grant_type=client_credential&appid=…&secret=…`, cached until shortly
//! before it expires and fetched again when WeChat says it is invalid or expired
//! (errcode 40001, 42001, 40014) — another server using the same AppSecret may have
//! refreshed it. The access_token and the AppSecret are never logged.

use hotline_core::UnixMillis;
use serde::Deserialize;

use super::{WechatConfig, WechatError};

/// errcodes that mean "get a new access_token and try again".
pub const TOKEN_EXPIRED_CODES: [i64; 3] = [40001, 42001, 40014];

/// Renew this long before WeChat's `expires_in` ends, so a token does not expire in flight.
const RENEW_MARGIN_MS: i64 = 5 * 60_000;

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: i64,
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

#[derive(Debug, Deserialize)]
struct Status {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

struct CachedToken {
    token: String,
    valid_until: UnixMillis,
}

/// The API client. Share behind an `Arc`.
pub struct WechatApi {
    client: reqwest::Client,
    base: String,
    app_id: String,
    app_secret: String,
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for WechatApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatApi")
            .field("base", &self.base)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl WechatApi {
    pub fn new(config: &WechatConfig) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            base: config.api_base.trim_end_matches('/').to_string(),
            app_id: config.app_id.clone(),
            app_secret: config.app_secret.clone(),
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// A valid access_token: the cached one, or a new one from `/cgi-bin/token`.
    async fn access_token(&self, now: UnixMillis, force: bool) -> Result<String, WechatError> {
        let mut cached = self.token.lock().await;
        if !force
            && let Some(t) = cached.as_ref()
            && now < t.valid_until
        {
            return Ok(t.token.clone());
        }
        let resp = self
            .client
            .get(format!(
                "{}/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
                self.base,
                encode(&self.app_id),
                encode(&self.app_secret)
            ))
            .send()
            .await
            // reqwest's error text may contain the URL, and with it the secret: keep only
            // the kind of failure.
            .map_err(|e| WechatError::Http(describe(&e)))?;
        let answer: TokenAnswer = resp
            .json()
            .await
            .map_err(|e| WechatError::Http(describe(&e)))?;
        if answer.errcode != 0 || answer.access_token.is_empty() {
            *cached = None;
            return Err(WechatError::Api {
                errcode: answer.errcode,
                errmsg: answer.errmsg,
            });
        }
        let lifetime_ms = answer.expires_in.clamp(60, 7200) * 1000;
        *cached = Some(CachedToken {
            token: answer.access_token.clone(),
            valid_until: now + (lifetime_ms - RENEW_MARGIN_MS).max(30_000),
        });
        tracing::info!(
            expires_in = answer.expires_in,
            "WeChat access_token fetched"
        );
        Ok(answer.access_token)
    }

    async fn post_send(
        &self,
        token: &str,
        body: &serde_json::Value,
    ) -> Result<Status, WechatError> {
        let resp = self
            .client
            .post(format!(
                "{}/cgi-bin/message/custom/send?access_token={}",
                self.base,
                encode(token)
            ))
            .json(body)
            .send()
            .await
            .map_err(|e| WechatError::Http(describe(&e)))?;
        resp.json()
            .await
            .map_err(|e| WechatError::Http(describe(&e)))
    }

    /// Sends a text message to a user through the customer-service message API (客服消息).
    pub async fn send_text(
        &self,
        now: UnixMillis,
        openid: &str,
        content: &str,
    ) -> Result<(), WechatError> {
        let body = serde_json::json!({
            "touser": openid,
            "msgtype": "text",
            "text": { "content": content },
        });
        let mut token = self.access_token(now, false).await?;
        for attempt in 0..2 {
            let status = self.post_send(&token, &body).await?;
            if status.errcode == 0 {
                return Ok(());
            }
            if attempt == 0 && TOKEN_EXPIRED_CODES.contains(&status.errcode) {
                tracing::info!(
                    errcode = status.errcode,
                    "WeChat access_token refused; fetching a new one"
                );
                token = self.access_token(now, true).await?;
                continue;
            }
            return Err(WechatError::Api {
                errcode: status.errcode,
                errmsg: status.errmsg,
            });
        }
        Err(WechatError::Api {
            errcode: 40001,
            errmsg: "access_token refused twice".into(),
        })
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "unreadable answer"
    } else {
        "request failed"
    };
    match e.status() {
        Some(s) => format!("{kind} (HTTP {s})"),
        None => kind.to_string(),
    }
}
