//! The WeChat Official Account server endpoint (服务器配置 URL):
//! `GET /api/v1/wechat/callback` answers WeChat's URL verification (echo `echostr` when
//! `signature` is right) and `POST` receives messages in plaintext or safe mode
//! (`encrypt_type=aes`), answering with a passive reply (encrypted in safe mode) or
//! `success`.
//!
//! Public, but every request is verified: signature (and `msg_signature` in safe mode),
//! timestamp within `timestamp_window_secs`, nonce not seen before, AppID of the decrypted
//! message. Refusals are 400 with the JSON error shape and a code (`bad_signature`,
//! `stale`, `replayed`, `malformed_xml`, `wrong_app_id`, `bad_padding`, …), logged without
//! secrets; nothing in a request can make the handler panic.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotline_integrations::chat::{Channel, texts};
use hotline_integrations::wechat::WechatError;
use hotline_integrations::wechat::message::{self, Inbound, InboundMessage};
use serde::Deserialize;
use serde_json::json;

use super::access::{Access, ApiBuilder};
use super::error::{ApiError, ApiQuery, ApiResult};
use super::state::AppState;
use crate::chat::{self, ChatHub, Outcome, UserMessage};

/// WeChat's messages are small; a bound against hostile bodies.
pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;

/// The EventKey of a menu button that asks for a human agent.
pub const MENU_KEY_HUMAN: &str = "HUMAN";

pub fn routes(b: ApiBuilder) -> ApiBuilder {
    b.route(
        Method::GET,
        "/api/v1/wechat/callback",
        Access::Public,
        "wechat",
        "微信公众号服务器地址校验（签名验证后返回 echostr）",
        verify_url,
    )
    .route(
        Method::POST,
        "/api/v1/wechat/callback",
        Access::Public,
        "wechat",
        "接收微信公众号消息（明文或安全模式，签名、时间戳、nonce 校验）",
        receive.layer(DefaultBodyLimit::max(MAX_CALLBACK_BYTES)),
    )
}

/// The query WeChat adds to our URL. Unknown parameters are ignored: WeChat adds new ones.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    pub signature: String,
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub nonce: String,
    #[serde(default)]
    pub echostr: String,
    #[serde(default)]
    pub encrypt_type: String,
    #[serde(default)]
    pub msg_signature: String,
}

fn refuse(e: &WechatError) -> Response {
    tracing::warn!(reason = e.code(), "WeChat callback refused");
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": { "code": e.code(), "message": e.message_zh() } })),
    )
        .into_response()
}

fn hub_if_enabled(st: &AppState) -> ApiResult<std::sync::Arc<ChatHub>> {
    let hub = st.chat_hub();
    if !hub.config.wechat.enabled {
        return Err(ApiError::Unavailable(
            "integrations.wechat is not enabled".into(),
        ));
    }
    Ok(hub)
}

fn xml(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn plain(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

async fn verify_url(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> ApiResult<Response> {
    let hub = hub_if_enabled(&st)?;
    let w = &hub.config.wechat;
    let check = || -> Result<(), WechatError> {
        let sig =
            hotline_integrations::wechat::crypto::signature(&[&w.token, &q.timestamp, &q.nonce]);
        if !hotline_integrations::wechat::crypto::same(&sig, q.signature.trim()) {
            return Err(WechatError::BadSignature);
        }
        hub.guard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check_time(st.now(), &q.timestamp)
    };
    if let Err(e) = check() {
        return Ok(refuse(&e));
    }
    tracing::info!("WeChat URL verification passed");
    Ok(plain(q.echostr))
}

/// Verifies and decodes a callback: `(message, safe_mode)`.
fn open_callback(
    st: &AppState,
    hub: &ChatHub,
    q: &CallbackQuery,
    body: &[u8],
) -> Result<(InboundMessage, bool), WechatError> {
    let w = &hub.config.wechat;
    let text = std::str::from_utf8(body)
        .map_err(|_| WechatError::MalformedXml("body is not UTF-8".into()))?;
    let safe = q.encrypt_type.eq_ignore_ascii_case("aes");
    let xml_text = if safe {
        let crypto = hub.crypto.as_ref().ok_or_else(|| {
            WechatError::InvalidKey("safe mode needs integrations.wechat.encoding_aes_key".into())
        })?;
        let encrypt = message::encrypted_field(text)?;
        crypto.verify_msg_signature(&q.timestamp, &q.nonce, &encrypt, &q.msg_signature)?;
        // The nonce is recorded only after the signature holds, so forged requests cannot
        // fill the replay cache.
        hub.guard.lock().unwrap_or_else(|e| e.into_inner()).accept(
            st.now(),
            &q.timestamp,
            &q.nonce,
        )?;
        crypto.decrypt(&encrypt)?
    } else {
        let sig =
            hotline_integrations::wechat::crypto::signature(&[&w.token, &q.timestamp, &q.nonce]);
        if !hotline_integrations::wechat::crypto::same(&sig, q.signature.trim()) {
            return Err(WechatError::BadSignature);
        }
        hub.guard.lock().unwrap_or_else(|e| e.into_inner()).accept(
            st.now(),
            &q.timestamp,
            &q.nonce,
        )?;
        text.to_string()
    };
    Ok((message::parse_message(&xml_text)?, safe))
}

async fn receive(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<CallbackQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let hub = hub_if_enabled(&st)?;
    let (msg, safe) = match open_callback(&st, &hub, &q, &body) {
        Ok(x) => x,
        Err(e) => return Ok(refuse(&e)),
    };
    let reply = match &msg.kind {
        Inbound::Subscribe => Some(texts::WELCOME.to_string()),
        Inbound::Unsubscribe => None,
        kind => {
            let (text, placeholder) = match kind {
                Inbound::MenuClick { key } if key.eq_ignore_ascii_case(MENU_KEY_HUMAN) => {
                    (Some("转人工".to_string()), String::new())
                }
                // Other menu keys are questions for the knowledge base (e.g. "保证金退还").
                Inbound::MenuClick { key } => (Some(key.clone()), String::new()),
                Inbound::Voice { recognition: None } => (None, "[语音消息]".to_string()),
                Inbound::Other { msg_type } => (None, format!("[{msg_type} 消息]")),
                _ => (msg.text().map(str::to_string), String::new()),
            };
            let outcome = chat::handle_user_message(
                &st,
                UserMessage {
                    channel: Channel::Wechat,
                    user_id: msg.from_user.clone(),
                    text,
                    placeholder,
                    external_id: Some(msg.dedup_key()),
                },
            )
            .await
            .map_err(super::chat::chat_err)?;
            match outcome {
                Outcome::Reply(t) => Some(t),
                Outcome::Silent | Outcome::Duplicate => None,
            }
        }
    };
    let Some(reply) = reply else {
        // WeChat's documented "no reply" answer.
        return Ok(plain("success".into()));
    };
    let now = st.now();
    let inner = message::text_reply(&msg.from_user, &msg.to_user, chat::wechat_time(now), &reply);
    if !safe {
        return Ok(xml(inner));
    }
    let crypto = hub
        .crypto
        .as_ref()
        .ok_or_else(|| ApiError::internal("safe mode without a cipher"))?;
    let encrypt = crypto.encrypt(st.rng.as_ref(), &inner);
    let ts = chat::wechat_time(now).to_string();
    let sig = crypto.msg_signature(&ts, &q.nonce, &encrypt);
    Ok(xml(message::encrypted_reply(&encrypt, &sig, &ts, &q.nonce)))
}
