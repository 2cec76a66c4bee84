//! SMS notices to bidders (seed 3.3–3.12): approved [`template`]s, batches whose audience
//! comes from bidder data or an uploaded list ([`batch`]), the outbox of messages drained by
//! the [`sender`] at the provider's rate, outside quiet hours, with retries, receipts, an
//! opt-out list, and no duplicate sends after a crash ([`sender`] explains the protocol).
//!
//! Providers are adapters behind one trait ([`provider::SmsProvider`]): a generic HTTP JSON
//! gateway and a file sink for development. Mobiles are personal data: never logged.

pub mod batch;
pub mod provider;
pub mod schedule;
pub mod sender;
pub mod template;

use serde::{Deserialize, Serialize};

/// Which adapter sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Appends one JSON line per message to a file (development, rehearsals).
    #[default]
    File,
    /// A generic HTTP JSON gateway (`[integrations.sms.http]`).
    Http,
}

/// `[integrations.sms]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// Whether the sender runs. Batches can be prepared either way; they wait in the outbox.
    pub enabled: bool,
    pub provider: ProviderKind,
    /// The file of the `file` provider; relative paths are inside the data directory.
    pub file_path: String,
    /// The provider's limit, in messages per second.
    pub rate_per_sec: u32,
    /// Requests in flight at once.
    pub concurrency: u32,
    /// Attempts per message before it is marked failed.
    pub max_attempts: u32,
    pub retry_base_secs: u32,
    pub retry_max_secs: u32,
    /// No sends from `quiet_start` to `quiet_end` (local `HH:MM`); equal values: none.
    pub quiet_start: String,
    pub quiet_end: String,
    /// The recipients' time zone as an offset (Asia/Shanghai: +480, no daylight saving).
    pub utc_offset_minutes: i32,
    /// The sign (签名) put before every message, as registered with the carriers.
    pub sign: String,
    /// Put after every message (carriers require an opt-out hint on bulk notices).
    pub opt_out_hint: String,
    /// Shared token the provider sends (header `X-Sms-Token`) with receipts and replies;
    /// empty refuses those callbacks (503).
    pub receipt_token: String,
    pub http: HttpProviderConfig,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            provider: ProviderKind::File,
            file_path: "sms-outbox.jsonl".into(),
            rate_per_sec: 20,
            concurrency: 4,
            max_attempts: 5,
            retry_base_secs: 30,
            retry_max_secs: 3600,
            quiet_start: "21:00".into(),
            quiet_end: "08:00".into(),
            utc_offset_minutes: 480,
            sign: "【天津小客车指标】".into(),
            opt_out_hint: "回复TD退订".into(),
            receipt_token: String::new(),
            http: HttpProviderConfig::default(),
        }
    }
}

// Secrets stay out of debug output (and so out of any log line that prints the config).
impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("enabled", &self.enabled)
            .field("provider", &self.provider)
            .field("rate_per_sec", &self.rate_per_sec)
            .field("quiet", &(&self.quiet_start, &self.quiet_end))
            .field(
                "receipt_token",
                &if self.receipt_token.is_empty() {
                    ""
                } else {
                    "***"
                },
            )
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// `[integrations.sms.http]`: a gateway that takes one message per JSON POST.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpProviderConfig {
    pub url: String,
    /// Header that carries the credential (e.g. `Authorization`); empty: none.
    pub auth_header: String,
    /// The credential (secret; never logged).
    pub auth_value: String,
    /// `GET` URL with `{key}` that tells whether the gateway has a message of that client
    /// id (200 = has it, 404 = never got it); used to settle messages in doubt after a
    /// crash. Empty when the gateway has none.
    pub status_url: String,
    /// Whether the gateway refuses (or silently absorbs) a second message with a client id
    /// it has seen. When true, a message in doubt may be sent again safely.
    pub dedupes_by_key: bool,
    pub timeout_secs: u32,
    /// JSON field names of the request.
    pub field_mobile: String,
    pub field_content: String,
    pub field_key: String,
    /// Field of the gateway's answer with its own message id ('' when it has none).
    pub field_provider_id: String,
    /// Fields of a receipt (one object, or an array of them).
    pub receipt_field_key: String,
    pub receipt_field_status: String,
    pub receipt_field_error: String,
    /// Status values that mean delivered; any other value is a delivery failure.
    pub delivered_values: Vec<String>,
}

impl Default for HttpProviderConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            auth_header: "Authorization".into(),
            auth_value: String::new(),
            status_url: String::new(),
            dedupes_by_key: false,
            timeout_secs: 15,
            field_mobile: "mobile".into(),
            field_content: "content".into(),
            field_key: "client_msg_id".into(),
            field_provider_id: "msg_id".into(),
            receipt_field_key: "client_msg_id".into(),
            receipt_field_status: "status".into(),
            receipt_field_error: "error".into(),
            delivered_values: vec!["DELIVRD".into(), "delivered".into()],
        }
    }
}

impl std::fmt::Debug for HttpProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProviderConfig")
            .field("url", &self.url)
            .field("auth_header", &self.auth_header)
            .field("auth_value", &"***")
            .field("status_url", &self.status_url)
            .field("dedupes_by_key", &self.dedupes_by_key)
            .finish_non_exhaustive()
    }
}

impl SmsConfig {
    /// Checks what types alone cannot; `Err((key under integrations.sms, message))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: &str| Err((k.to_string(), m.to_string()));
        if self.rate_per_sec == 0 {
            return err("rate_per_sec", "must be at least 1");
        }
        if self.concurrency == 0 || self.concurrency > 256 {
            return err("concurrency", "must be between 1 and 256");
        }
        if self.max_attempts == 0 {
            return err("max_attempts", "must be at least 1");
        }
        if self.retry_base_secs == 0 {
            return err("retry_base_secs", "must be at least 1");
        }
        if self.retry_max_secs < self.retry_base_secs {
            return err("retry_max_secs", "must be at least retry_base_secs");
        }
        for (k, v) in [
            ("quiet_start", &self.quiet_start),
            ("quiet_end", &self.quiet_end),
        ] {
            if schedule::parse_hhmm(v).is_none() {
                return err(k, "must be a local time HH:MM (00:00–23:59)");
            }
        }
        if !(-14 * 60..=14 * 60).contains(&self.utc_offset_minutes) {
            return err("utc_offset_minutes", "must be between -840 and 840");
        }
        if self.sign.chars().count() > 20 {
            return err("sign", "must be at most 20 characters");
        }
        if self.provider == ProviderKind::File && self.file_path.trim().is_empty() {
            return err("file_path", "must be set for the file provider");
        }
        if self.provider == ProviderKind::Http {
            let h = &self.http;
            let is_url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
            if !is_url(&h.url) {
                return err(
                    "http.url",
                    "must be an http:// or https:// URL for the http provider",
                );
            }
            if !h.status_url.is_empty()
                && (!is_url(&h.status_url) || !h.status_url.contains("{key}"))
            {
                return err(
                    "http.status_url",
                    "must be an http(s) URL containing {key}, or empty",
                );
            }
            if h.timeout_secs == 0 {
                return err("http.timeout_secs", "must be at least 1");
            }
            for (k, v) in [
                ("http.field_mobile", &h.field_mobile),
                ("http.field_content", &h.field_content),
                ("http.field_key", &h.field_key),
                ("http.receipt_field_key", &h.receipt_field_key),
                ("http.receipt_field_status", &h.receipt_field_status),
            ] {
                if v.trim().is_empty() {
                    return err(k, "must not be empty");
                }
            }
            if !h.auth_header.is_empty()
                && !h
                    .auth_header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return err("http.auth_header", "must be a header name");
            }
        }
        Ok(())
    }

    pub fn quiet_hours(&self) -> schedule::QuietHours {
        schedule::QuietHours::parse(&self.quiet_start, &self.quiet_end, self.utc_offset_minutes)
            .unwrap_or(schedule::QuietHours::NONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_errors_name_the_key() {
        assert_eq!(SmsConfig::default().validate(), Ok(()));
        let c = SmsConfig {
            quiet_start: "25:00".into(),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "quiet_start");
        let c = SmsConfig {
            provider: ProviderKind::Http,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "http.url");
        let mut c = SmsConfig {
            provider: ProviderKind::Http,
            ..Default::default()
        };
        c.http.url = "https://sms.example/send".into();
        c.http.status_url = "https://sms.example/status".into();
        assert_eq!(c.validate().unwrap_err().0, "http.status_url");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut c = SmsConfig {
            receipt_token: "tok-secret".into(),
            ..Default::default()
        };
        c.http.auth_value = "Bearer very-secret".into();
        let s = format!("{c:?}");
        assert!(
            !s.contains("tok-secret") && !s.contains("very-secret"),
            "{s}"
        );
    }
}
