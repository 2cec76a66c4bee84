//! Provider adapters behind one trait: the generic HTTP JSON gateway and the file sink.
//! Each message carries its idempotency key (the outbox row id) as the client message id.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use serde_json::{Map, Value};

use super::HttpProviderConfig;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One message as handed to a provider.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingSms<'a> {
    /// The idempotency key (client message id).
    pub key: &'a str,
    pub mobile: &'a str,
    pub text: &'a str,
}

/// What the provider said about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted for delivery (its own id, or '').
    Accepted { provider_id: String },
    /// Refused for good (bad number, content refused): no retry.
    Rejected(String),
    /// Not accepted this time (network, 5xx, 429): retried with backoff.
    Retry(String),
}

/// Whether the provider has a message of this key (settles messages in doubt after a crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStatus {
    Known {
        provider_id: String,
    },
    NotKnown,
    /// The provider cannot tell.
    Unsupported,
}

/// An SMS gateway.
pub trait SmsProvider: Send + Sync + std::fmt::Debug {
    fn send<'a>(&'a self, msg: OutgoingSms<'a>) -> BoxFuture<'a, SendOutcome>;
    /// Asks whether a message with this key reached the provider; `Err` when the question
    /// itself failed (try again later).
    fn status<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyStatus, String>>;
    /// Whether a second message with the same key is refused or absorbed by the provider.
    fn dedupes_by_key(&self) -> bool;
}

/// The generic HTTP JSON gateway: `POST url` with `{mobile, content, client_msg_id}` (field
/// names configurable) and the credential header.
#[derive(Debug, Clone)]
pub struct HttpProvider {
    client: reqwest::Client,
    config: HttpProviderConfig,
}

impl HttpProvider {
    pub fn new(config: HttpProviderConfig) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(u64::from(
                    config.timeout_secs.max(1),
                )))
                .build()
                .unwrap_or_default(),
            config,
        }
    }

    fn with_auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.config.auth_header.is_empty() || self.config.auth_value.is_empty() {
            rb
        } else {
            rb.header(&self.config.auth_header, &self.config.auth_value)
        }
    }

    fn provider_id(&self, body: &[u8]) -> String {
        let f = &self.config.field_provider_id;
        if f.is_empty() {
            return String::new();
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => match v.get(f) {
                Some(Value::String(s)) => s.chars().take(128).collect(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            },
            Err(_) => String::new(),
        }
    }

    async fn do_send(&self, msg: OutgoingSms<'_>) -> SendOutcome {
        let c = &self.config;
        let mut body = Map::new();
        body.insert(c.field_mobile.clone(), Value::from(msg.mobile));
        body.insert(c.field_content.clone(), Value::from(msg.text));
        body.insert(c.field_key.clone(), Value::from(msg.key));
        let req = self
            .with_auth(self.client.post(&c.url))
            .json(&Value::Object(body));
        let resp = match req.send().await {
            Ok(r) => r,
            // The error text of reqwest names the URL, never the body (no mobile).
            Err(e) => return SendOutcome::Retry(format!("request failed: {e}")),
        };
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap_or_default();
        if status.is_success() {
            SendOutcome::Accepted {
                provider_id: self.provider_id(&bytes),
            }
        } else if status.as_u16() == 409 && c.dedupes_by_key {
            // The gateway already has this key: it was sent before (a resend in doubt).
            SendOutcome::Accepted {
                provider_id: self.provider_id(&bytes),
            }
        } else if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
            let text: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            SendOutcome::Rejected(format!("gateway refused ({status}): {text}"))
        } else {
            SendOutcome::Retry(format!("gateway answered {status}"))
        }
    }

    async fn do_status(&self, key: &str) -> Result<KeyStatus, String> {
        if self.config.status_url.is_empty() {
            return Ok(KeyStatus::Unsupported);
        }
        let url = self.config.status_url.replace("{key}", key);
        let resp = self
            .with_auth(self.client.get(url))
            .send()
            .await
            .map_err(|e| format!("status request failed: {e}"))?;
        match resp.status().as_u16() {
            200..=299 => {
                let bytes = resp.bytes().await.unwrap_or_default();
                Ok(KeyStatus::Known {
                    provider_id: self.provider_id(&bytes),
                })
            }
            404 => Ok(KeyStatus::NotKnown),
            s => Err(format!("status answered {s}")),
        }
    }
}

impl SmsProvider for HttpProvider {
    fn send<'a>(&'a self, msg: OutgoingSms<'a>) -> BoxFuture<'a, SendOutcome> {
        Box::pin(self.do_send(msg))
    }
    fn status<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyStatus, String>> {
        Box::pin(self.do_status(key))
    }
    fn dedupes_by_key(&self) -> bool {
        self.config.dedupes_by_key
    }
}

/// Appends `{"key":…,"mobile":…,"text":…}` lines to a file: for development and rehearsals
/// (the file holds mobiles: keep it where personal data may be). Knows its own keys, so
/// messages in doubt are settled by reading the file back.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl FileSink {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    async fn append(&self, msg: OutgoingSms<'_>) -> SendOutcome {
        use tokio::io::AsyncWriteExt as _;
        let mut line =
            serde_json::json!({ "key": msg.key, "mobile": msg.mobile, "text": msg.text })
                .to_string();
        line.push('\n');
        let _guard = self.lock.lock().await;
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await;
        let r = match file {
            Ok(mut f) => match f.write_all(line.as_bytes()).await {
                Ok(()) => f.flush().await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => SendOutcome::Accepted {
                provider_id: String::new(),
            },
            Err(e) => SendOutcome::Retry(format!("cannot append to {}: {e}", self.path.display())),
        }
    }

    async fn lookup(&self, key: &str) -> Result<KeyStatus, String> {
        let _guard = self.lock.lock().await;
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KeyStatus::NotKnown),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        let needle = format!("\"key\":\"{key}\"");
        Ok(if text.lines().any(|l| l.contains(&needle)) {
            KeyStatus::Known {
                provider_id: String::new(),
            }
        } else {
            KeyStatus::NotKnown
        })
    }
}

impl SmsProvider for FileSink {
    fn send<'a>(&'a self, msg: OutgoingSms<'a>) -> BoxFuture<'a, SendOutcome> {
        Box::pin(self.append(msg))
    }
    fn status<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyStatus, String>> {
        Box::pin(self.lookup(key))
    }
    fn dedupes_by_key(&self) -> bool {
        false
    }
}

/// A receipt as parsed from the provider's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub key: String,
    pub delivered: bool,
    pub error: String,
}

/// Parses a receipt callback body: one JSON object or an array of them, with the configured
/// field names. Entries without a key are skipped.
pub fn parse_receipts(config: &HttpProviderConfig, body: &[u8]) -> Result<Vec<Receipt>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("回执不是有效的 JSON：{e}"))?;
    let items = match v {
        Value::Array(a) => a,
        o @ Value::Object(_) => vec![o],
        _ => return Err("回执应为 JSON 对象或数组".into()),
    };
    let text = |o: &Value, f: &str| match o.get(f) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    Ok(items
        .iter()
        .filter_map(|o| {
            let key = text(o, &config.receipt_field_key);
            if key.is_empty() || key.len() > 64 {
                return None;
            }
            let status = text(o, &config.receipt_field_status);
            let delivered = config
                .delivered_values
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&status));
            let mut error = text(o, &config.receipt_field_error);
            if !delivered && error.is_empty() {
                error = status;
            }
            Some(Receipt {
                key,
                delivered,
                error: error.chars().take(200).collect(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_parse_with_the_configured_fields() {
        let c = HttpProviderConfig::default();
        let r = parse_receipts(
            &c,
            r#"[{"client_msg_id":"a1","status":"DELIVRD"},{"client_msg_id":"a2","status":"UNDELIV","error":"空号"},{"status":"x"}]"#
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert!(r[0].delivered);
        assert_eq!((r[1].delivered, r[1].error.as_str()), (false, "空号"));
        let one = parse_receipts(&c, br#"{"client_msg_id":"b","status":"delivered"}"#).unwrap();
        assert!(one[0].delivered);
        assert!(parse_receipts(&c, b"nope").is_err());
    }

    #[tokio::test]
    async fn file_sink_appends_and_knows_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::new(dir.path().join("out.jsonl"));
        assert_eq!(sink.status("k1").await, Ok(KeyStatus::NotKnown));
        let m = OutgoingSms {
            key: "k1",
            mobile: "13800000000",
            text: "【签名】你好",
        };
        assert!(matches!(sink.send(m).await, SendOutcome::Accepted { .. }));
        assert!(matches!(
            sink.status("k1").await,
            Ok(KeyStatus::Known { .. })
        ));
        assert_eq!(sink.status("k2").await, Ok(KeyStatus::NotKnown));
        let text = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 1);
    }
}
