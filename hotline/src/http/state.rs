//! The state shared by every request handler.

use std::sync::{Arc, Mutex};

use hotline_core::metrics::{Metric, Registry};
use hotline_core::throttle::{FailureOutcome, FailureThrottle, ThrottlePolicy};
use hotline_core::{Clock, EventSink, Rng, UnixMillis};

use crate::config::Config;
use crate::db::Db;
use crate::db::sessions::SessionPolicy;

#[derive(Debug, Clone)]
pub struct AppState(pub Arc<AppInner>);

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

#[derive(Debug)]
pub struct AppInner {
    pub db: Db,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
    pub metrics: Registry,
    pub events: Arc<dyn EventSink>,
    pub login_throttle: Mutex<LoginThrottle>,
    pub http_requests: Metric,
    /// The running SIP gateway; unset when the API runs without one (tests, tools).
    pub gateway: std::sync::OnceLock<hotline_sip_gateway::GatewayHandle>,
    /// The knowledge base; unset when the API runs without one.
    pub knowledge: std::sync::OnceLock<Arc<hotline_knowledge::KnowledgeBase>>,
    /// The IVR/ACD runtime; unset when the API runs without the gateway.
    pub contact: std::sync::OnceLock<crate::contact::ContactCentre>,
    /// What the integration routes share (configuration, self-service gate, outbox wake-up);
    /// made from `config.integrations` on first use.
    pub integrations: std::sync::OnceLock<Arc<super::integrations::IntegrationsHttp>>,
    /// What the chat routes share (WeChat cipher and replay guard, API client, visitor rate
    /// limits); made from `config.integrations` on first use.
    pub chat: std::sync::OnceLock<Arc<crate::chat::ChatHub>>,
    /// What the SMS routes share (configuration, sender wake-up); made from
    /// `config.integrations.sms` on first use.
    pub sms: std::sync::OnceLock<Arc<super::sms::SmsHttp>>,
    pub login_failures: Metric,
    /// The event bus, for the console's live stream; unset in tools and in-process tests.
    pub event_bus: std::sync::OnceLock<crate::events::EventBus>,
}

impl AppState {
    pub fn new(
        db: Db,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
        metrics: Registry,
        events: Arc<dyn EventSink>,
    ) -> Self {
        let login_throttle = Mutex::new(LoginThrottle::new(&config));
        let http_requests = metrics.counter(
            "hotline_http_requests_total",
            "HTTP requests by route, method and status.",
        );
        let login_failures = metrics.counter(
            "hotline_login_failures_total",
            "Failed web logins, by reason (password, blocked).",
        );
        Self(Arc::new(AppInner {
            db,
            config,
            clock,
            rng,
            metrics,
            events,
            login_throttle,
            http_requests,
            login_failures,
            event_bus: std::sync::OnceLock::new(),
            gateway: std::sync::OnceLock::new(),
            knowledge: std::sync::OnceLock::new(),
            contact: std::sync::OnceLock::new(),
            integrations: std::sync::OnceLock::new(),
            chat: std::sync::OnceLock::new(),
            sms: std::sync::OnceLock::new(),
        }))
    }

    /// The integrations' shared state, configured from `[integrations]`.
    pub fn integrations_http(&self) -> Arc<super::integrations::IntegrationsHttp> {
        self.integrations
            .get_or_init(|| {
                Arc::new(super::integrations::IntegrationsHttp::new(
                    self.config.integrations.clone(),
                ))
            })
            .clone()
    }

    /// The chat engine's shared state, configured from `[integrations]`.
    pub fn chat_hub(&self) -> Arc<crate::chat::ChatHub> {
        self.chat
            .get_or_init(|| Arc::new(crate::chat::ChatHub::new(self.config.integrations.clone())))
            .clone()
    }

    /// The SMS routes' shared state, configured from `[integrations.sms]`.
    pub fn sms_http(&self) -> Arc<super::sms::SmsHttp> {
        self.sms
            .get_or_init(|| {
                Arc::new(super::sms::SmsHttp::new(
                    self.config.integrations.sms.clone(),
                ))
            })
            .clone()
    }

    pub fn now(&self) -> UnixMillis {
        self.clock.now_ms()
    }

    /// Writes the audit entry of a logged-in user's action, now, from `addr`.
    pub async fn audit_by(
        &self,
        me: &super::access::CurrentUser,
        addr: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), crate::db::StoreError> {
        self.db
            .audit(
                self.now(),
                self.rng.as_ref(),
                crate::db::audit::Audit {
                    actor: &me.user.username,
                    action,
                    target,
                    detail,
                    remote_addr: addr,
                },
            )
            .await
    }

    /// Records a data file that came in or went out (register + audit entry, issue 12).
    pub async fn record_file(
        &self,
        operator: &str,
        addr: &str,
        direction: crate::db::data_files::Direction,
        kind: &str,
        file_name: &str,
        bytes: &[u8],
    ) -> Result<(), crate::db::StoreError> {
        self.db
            .record_data_file(
                self.now(),
                self.rng.as_ref(),
                crate::db::data_files::NewDataFile {
                    direction,
                    kind,
                    file_name,
                    bytes,
                    operator,
                    remote_addr: addr,
                },
            )
            .await
            .map(|_| ())
    }

    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            idle_ms: i64::from(self.config.http.session_idle_minutes) * 60_000,
            max_ms: i64::from(self.config.http.session_max_hours) * 3_600_000,
        }
    }
}

/// Login throttling per account and per client address (two independent limits).
#[derive(Debug)]
pub struct LoginThrottle {
    pub by_account: FailureThrottle<String>,
    pub by_address: FailureThrottle<String>,
}

impl LoginThrottle {
    pub fn new(config: &Config) -> Self {
        let s = &config.security;
        let window_ms = i64::from(s.login_window_minutes) * 60_000;
        let block_ms = i64::from(s.login_lockout_minutes) * 60_000;
        Self {
            by_account: FailureThrottle::new(ThrottlePolicy {
                max_failures: s.login_max_failures_per_account,
                window_ms,
                block_ms,
            }),
            by_address: FailureThrottle::new(ThrottlePolicy {
                max_failures: s.login_max_failures_per_address,
                window_ms,
                block_ms,
            }),
        }
    }

    /// When either the account or the address is blocked: until when.
    pub fn blocked_until(
        &self,
        now: UnixMillis,
        account: &str,
        address: &str,
    ) -> Option<UnixMillis> {
        let a = self.by_account.blocked_until(now, &account.to_string());
        let b = self.by_address.blocked_until(now, &address.to_string());
        a.max(b)
    }

    /// Counts a failure on both keys; returns whether either is now blocked.
    pub fn failure(&mut self, now: UnixMillis, account: &str, address: &str) -> bool {
        let a = self.by_account.record_failure(now, account.to_string());
        let b = self.by_address.record_failure(now, address.to_string());
        matches!(a, FailureOutcome::Blocked { .. }) || matches!(b, FailureOutcome::Blocked { .. })
    }

    pub fn success(&mut self, now: UnixMillis, account: &str) {
        self.by_account.record_success(now, &account.to_string());
    }
}
