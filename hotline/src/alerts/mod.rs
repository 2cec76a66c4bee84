//! System health alerts (issue 10, "someone watches the system"): trunk peers down, seats
//! of logged-in agents unreachable, recording and backup failures, low disk space, database
//! trouble, callers waiting with no ready agent.
//!
//! - [`engine`]: the sans-IO [`AlertEngine`] (hold time, de-duplication by rule and subject,
//!   reminders, clearing), tested with virtual time;
//! - [`sources`]: what one sample reads (gateway, contact centre, metrics, disks, database);
//! - [`store`]: the `alerts` table (history for the console, acknowledgements, what a
//!   restart must not raise again);
//! - [`notify`]: SMS to the on-duty technicians through the SMS outbox, and a webhook;
//! - [`driver`]: the thin tokio task that samples every `interval_secs` and carries the
//!   engine's notices out.
//!
//! Rules, de-duplication and configuration: docs/alerts.md.

pub mod driver;
pub mod engine;
pub mod notify;
pub mod sources;
pub mod store;

use serde::{Deserialize, Serialize};

pub use engine::{AlertEngine, AlertPolicy, Notice, NoticeKind, Rule, Severity};

/// `[alerts]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Whether the watcher runs (the API and the pages show the history either way).
    pub enabled: bool,
    /// Seconds between two samples of every source.
    pub interval_secs: u32,
    /// A condition must hold this long before it is raised (and be gone this long before it
    /// is cleared), seconds: a blip wakes nobody.
    pub for_secs: u32,
    /// A reminder every this many minutes while an alert is active and not acknowledged;
    /// 0: no reminders.
    pub repeat_minutes: u32,
    /// A recording or backup failure alert clears after this many minutes without a new
    /// failure.
    pub quiet_minutes: u32,
    /// Callers waiting longer than this with no ready agent in their queue raise an alert,
    /// seconds.
    pub waiting_secs: u32,
    /// Free space below this percentage of a file system raises an alert; 0: not checked.
    pub disk_min_free_percent: u32,
    /// Free space below this many MiB raises an alert; 0: not checked.
    pub disk_min_free_mb: u64,
    /// Mobiles of the on-duty technicians: every notice goes to each by SMS (through the
    /// SMS outbox; quiet hours do not apply to these). Empty: no SMS.
    pub technician_mobiles: Vec<String>,
    /// Every notice is POSTed here as JSON (retried with backoff). Empty: no webhook.
    pub webhook_url: String,
    pub webhook_timeout_secs: u32,
    /// Attempts per notice before the webhook delivery is given up (and counted as failed).
    pub webhook_max_attempts: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 10,
            for_secs: 30,
            repeat_minutes: 30,
            quiet_minutes: 30,
            waiting_secs: 60,
            disk_min_free_percent: 10,
            disk_min_free_mb: 1024,
            technician_mobiles: Vec::new(),
            webhook_url: String::new(),
            webhook_timeout_secs: 5,
            webhook_max_attempts: 5,
        }
    }
}

/// Mobiles are personal data and a webhook URL may carry a token: neither reaches a log.
impl std::fmt::Debug for AlertsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mobiles: Vec<String> = self
            .technician_mobiles
            .iter()
            .map(|m| hotline_core::mask::mask_phone(m))
            .collect();
        let webhook = match self.webhook_url.split_once('?') {
            Some((base, _)) => format!("{base}?***"),
            None => self.webhook_url.clone(),
        };
        f.debug_struct("AlertsConfig")
            .field("enabled", &self.enabled)
            .field("interval_secs", &self.interval_secs)
            .field("for_secs", &self.for_secs)
            .field("repeat_minutes", &self.repeat_minutes)
            .field("quiet_minutes", &self.quiet_minutes)
            .field("waiting_secs", &self.waiting_secs)
            .field("disk_min_free_percent", &self.disk_min_free_percent)
            .field("disk_min_free_mb", &self.disk_min_free_mb)
            .field("technician_mobiles", &mobiles)
            .field("webhook_url", &webhook)
            .field("webhook_timeout_secs", &self.webhook_timeout_secs)
            .field("webhook_max_attempts", &self.webhook_max_attempts)
            .finish()
    }
}

impl AlertsConfig {
    /// Checks what types alone cannot; the error names the key (without `alerts.`).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: &str| Err((k.to_string(), m.to_string()));
        if !(1..=3600).contains(&self.interval_secs) {
            return err("interval_secs", "must be between 1 and 3600");
        }
        if self.for_secs > 86_400 {
            return err("for_secs", "must be at most 86400");
        }
        if self.quiet_minutes == 0 {
            return err("quiet_minutes", "must be at least 1");
        }
        if self.waiting_secs == 0 {
            return err("waiting_secs", "must be at least 1");
        }
        if self.disk_min_free_percent > 99 {
            return err("disk_min_free_percent", "must be between 0 and 99");
        }
        for (i, m) in self.technician_mobiles.iter().enumerate() {
            let n = hotline_integrations::sms::batch::normalize_mobile(m);
            if !hotline_integrations::bidders::valid_mobile(&n) {
                return err(
                    &format!("technician_mobiles[{i}]"),
                    "must be a mainland mobile number (11 digits starting with 1)",
                );
            }
        }
        let url = self.webhook_url.trim();
        if !url.is_empty() {
            if url.starts_with("https://") {
                // The HTTP client is built without TLS (as for the SMS gateway): point the
                // webhook at a local relay that forwards over TLS.
                return err(
                    "webhook_url",
                    "https is not supported by this build: use an http:// URL (e.g. a local relay)",
                );
            }
            if !url.starts_with("http://") || url.len() <= "http://".len() {
                return err("webhook_url", "must be an http:// URL");
            }
        }
        if !(1..=60).contains(&self.webhook_timeout_secs) {
            return err("webhook_timeout_secs", "must be between 1 and 60");
        }
        if !(1..=20).contains(&self.webhook_max_attempts) {
            return err("webhook_max_attempts", "must be between 1 and 20");
        }
        Ok(())
    }

    pub fn policy(&self) -> AlertPolicy {
        AlertPolicy {
            for_ms: i64::from(self.for_secs) * 1000,
            repeat_ms: i64::from(self.repeat_minutes) * 60_000,
            quiet_ms: i64::from(self.quiet_minutes) * 60_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key() {
        for (change, key) in [
            (
                (|c: &mut AlertsConfig| c.interval_secs = 0) as fn(&mut AlertsConfig),
                "interval_secs",
            ),
            (|c| c.quiet_minutes = 0, "quiet_minutes"),
            (|c| c.waiting_secs = 0, "waiting_secs"),
            (|c| c.disk_min_free_percent = 100, "disk_min_free_percent"),
            (
                |c| c.technician_mobiles = vec!["13800000000".into(), "12345".into()],
                "technician_mobiles[1]",
            ),
            (|c| c.webhook_url = "ftp://x".into(), "webhook_url"),
            (|c| c.webhook_url = "https://x/hook".into(), "webhook_url"),
            (|c| c.webhook_timeout_secs = 0, "webhook_timeout_secs"),
            (|c| c.webhook_max_attempts = 0, "webhook_max_attempts"),
        ] {
            let mut c = AlertsConfig::default();
            change(&mut c);
            assert_eq!(c.validate().unwrap_err().0, key);
        }
        let c = AlertsConfig {
            technician_mobiles: vec!["+86 138 0000 0000".into()],
            webhook_url: "http://127.0.0.1:9/hook?token=s3cret".into(),
            ..AlertsConfig::default()
        };
        assert_eq!(c.validate(), Ok(()));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("0000 0000"),
            "{shown}"
        );
    }
}
