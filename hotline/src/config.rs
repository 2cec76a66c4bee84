//! Configuration: `hotline.toml` (path by `--config`), then environment overrides named
//! `HOTLINE_` + the key path in capitals with `__` between levels (`database.url` →
//! `HOTLINE_DATABASE__URL`), then the command-line flags of `serve`.
//!
//! Loading is strict: an unknown key or a wrong type is an error that names the file (or the
//! environment variable), the key path and, for files, the line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the SQLite database, recordings and the search index live.
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    /// The SIP gateway (`hotline-sip-gateway`): transport, seats, trunk, RTP.
    pub sip: hotline_sip_gateway::GatewayConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub security: SecurityConfig,
    /// The IVR flow, prompts, ACD queues and survey (`crate::contact`).
    pub ivr: crate::contact::IvrConfig,
    /// Call recording (`hotline-recording`): archive, backup, retention, QA review form.
    pub recording: hotline_recording::RecordingConfig,
    /// The CRM (`hotline-crm`): SLAs, callbacks, statistics, attachments, archive.
    pub crm: hotline_crm::store::CrmConfig,
    /// Auction data and the 12345 platform (`hotline-integrations`).
    pub integrations: hotline_integrations::IntegrationsConfig,
    /// System health alerts (`crate::alerts`): thresholds, technicians, webhook.
    pub alerts: crate::alerts::AlertsConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: u32,
    /// A session ends this many hours after login, active or not (one 12-hour shift).
    pub session_max_hours: u32,
    /// Mark cookies `Secure` (set when a TLS-terminating proxy is in front).
    pub secure_cookies: bool,
}

/// `Debug` prints the URL without its password (issue 12: secrets never reach logs).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Empty: SQLite file `hotline.db` in the data directory. `postgres://…`: PostgreSQL.
    /// `sqlite://path`: a SQLite file elsewhere.
    pub url: String,
    pub max_connections: u32,
    /// Seconds to wait for a connection from the pool before a request fails.
    pub acquire_timeout_secs: u32,
    /// Seconds a write that must not be lost (call record, call fact, recording row) is
    /// retried while the database is unreachable before it is given up (issue 12).
    pub write_retry_secs: u32,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &crate::db::redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_secs", &self.acquire_timeout_secs)
            .field("write_retry_secs", &self.write_retry_secs)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter (`info`, `hotline=debug,rsipstack=warn`, …).
    pub filter: String,
}

impl LogConfig {
    /// The filter in effect. rsipstack logs every SIP packet whole at INFO — callers' numbers
    /// included — so unless the filter names rsipstack, rsipstack is held at `warn`.
    pub fn effective_filter(&self) -> String {
        let f = self.filter.trim();
        if f.contains("rsipstack") {
            f.to_string()
        } else if f.is_empty() {
            "rsipstack=warn".to_string()
        } else {
            format!("{f},rsipstack=warn")
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Failed logins for one account within the window that lock the account for a while.
    pub login_max_failures_per_account: u32,
    /// Failed logins from one address within the window that block the address for a while.
    pub login_max_failures_per_address: u32,
    pub login_window_minutes: u32,
    pub login_lockout_minutes: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            http: HttpConfig::default(),
            sip: hotline_sip_gateway::GatewayConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            security: SecurityConfig::default(),
            ivr: crate::contact::IvrConfig::default(),
            recording: hotline_recording::RecordingConfig::default(),
            crm: hotline_crm::store::CrmConfig::default(),
            integrations: hotline_integrations::IntegrationsConfig::default(),
            alerts: crate::alerts::AlertsConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            session_idle_minutes: 60,
            session_max_hours: 12,
            secure_cookies: false,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 8,
            acquire_timeout_secs: 10,
            write_retry_secs: 600,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            filter: "info,rsipstack=warn,sqlx=warn".into(),
        }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            login_max_failures_per_account: 5,
            login_max_failures_per_address: 20,
            login_window_minutes: 15,
            login_lockout_minutes: 15,
        }
    }
}

/// A configuration error, naming where it came from and which key is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {location}key `{key}`: {message}")]
    Invalid {
        /// The file path or the environment variable.
        origin: String,
        /// `line L, column C: ` for files, empty otherwise.
        location: String,
        key: String,
        message: String,
    },
}

impl Config {
    /// Loads the file (when given), then applies `HOTLINE_*` environment overrides from `env`,
    /// then validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (origin, text) = match path {
            Some(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?,
            ),
            None => ("(defaults)".to_string(), String::new()),
        };
        let mut config = parse_toml(&origin, &text)?;
        let overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.len() > ENV_PREFIX.len())
            .collect();
        if !overrides.is_empty() {
            config = apply_env(&config, &overrides)?;
        }
        config.validate(&origin)?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            location: String::new(),
            key: key.to_string(),
            message: message.to_string(),
        };
        let url = &self.database.url;
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "must be empty (SQLite in the data directory), sqlite:… or postgres://…",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if self.http.session_idle_minutes == 0 || self.http.session_max_hours == 0 {
            return Err(invalid(
                "http.session_idle_minutes",
                "session lifetimes must be at least 1",
            ));
        }
        let s = &self.security;
        for (key, v) in [
            (
                "security.login_max_failures_per_account",
                s.login_max_failures_per_account,
            ),
            (
                "security.login_max_failures_per_address",
                s.login_max_failures_per_address,
            ),
            ("security.login_window_minutes", s.login_window_minutes),
            ("security.login_lockout_minutes", s.login_lockout_minutes),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if let Err(hotline_sip_gateway::GatewayError::Config { field, message }) =
            self.sip.validate()
        {
            return Err(invalid(&format!("sip.{field}"), &message));
        }
        if let Err(e) = self.ivr.acd.validate() {
            return Err(invalid("ivr.acd", &e.to_string()));
        }
        // The gateway rings one seat per call at a time (no forking yet), so ring-all would
        // leave the other agents "ringing" without a phone that rings.
        if let Some(i) = self
            .ivr
            .acd
            .queues
            .iter()
            .position(|q| q.strategy == hotline_ivr::queue::Strategy::RingAll)
        {
            return Err(invalid(
                &format!("ivr.acd.queues[{i}].strategy"),
                "ring_all is not supported with SIP seats yet: use longest_idle or round_robin",
            ));
        }
        if self.ivr.survey.timeout_ms == 0 {
            return Err(invalid("ivr.survey.timeout_ms", "must be at least 1"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.filter).is_err() {
            return Err(invalid("log.filter", "not a valid tracing filter"));
        }
        if let Err((key, message)) = self.validate_recording() {
            return Err(invalid(&key, &message));
        }
        if let Err((key, message)) = self.validate_crm() {
            return Err(invalid(&key, &message));
        }
        if let Err((key, message)) = self.validate_integrations() {
            return Err(invalid(&key, &message));
        }
        if let Err((key, message)) = self.alerts.validate() {
            return Err(invalid(&format!("alerts.{key}"), &message));
        }
        Ok(())
    }

    /// The recording configuration with its paths resolved against the data directory.
    pub fn recording(&self) -> hotline_recording::RecordingConfig {
        self.recording.clone().resolved(&self.data_dir)
    }

    fn validate_recording(&self) -> Result<(), (String, String)> {
        // Validated resolved, so that a backup path equal to the default archive is caught.
        self.recording().validate().map_err(|message| {
            // The crate's messages start with the key path (`recording.queue_frames = …`,
            // `recording.criteria: …`); name exactly that key.
            let key: String = message
                .split([' ', ':'])
                .next()
                .filter(|k| k.starts_with("recording."))
                .unwrap_or("recording")
                .to_string();
            (key, message)
        })
    }

    fn validate_crm(&self) -> Result<(), (String, String)> {
        let c = &self.crm;
        let err = |k: &str, m: &str| Err((format!("crm.{k}"), m.to_string()));
        let sla = toml::Table::try_from(&c.sla).expect("the SLA policy serializes");
        for (field, v) in &sla {
            if v.as_integer() == Some(0) {
                return err(&format!("sla.{field}"), "must be at least 1 hour");
            }
        }
        let cb = &c.callbacks;
        if cb.open_minute >= cb.close_minute || cb.close_minute > 24 * 60 {
            return err(
                "callbacks.close_minute",
                "service hours must satisfy open_minute < close_minute <= 1440",
            );
        }
        if cb.max_attempts == 0 {
            return err("callbacks.max_attempts", "must be at least 1");
        }
        if cb.retry_spacing_minutes.is_empty() {
            return err("callbacks.retry_spacing_minutes", "must not be empty");
        }
        if cb.sample_per_mille > 1000 {
            return err("callbacks.sample_per_mille", "must be at most 1000");
        }
        for (k, off) in [
            ("callbacks.utc_offset_minutes", cb.utc_offset_minutes),
            ("stats.utc_offset_minutes", c.stats.utc_offset_minutes),
        ] {
            if !(-14 * 60..=14 * 60).contains(&off) {
                return err(k, "must be between -840 and 840");
            }
        }
        if c.stats.short_abandon_ms < 0 {
            return err("stats.short_abandon_ms", "must not be negative");
        }
        if c.stats.service_level_ms <= 0 {
            return err("stats.service_level_ms", "must be at least 1");
        }
        if c.attachments.max_bytes == 0 {
            return err("attachments.max_bytes", "must be at least 1");
        }
        Ok(())
    }

    fn validate_integrations(&self) -> Result<(), (String, String)> {
        let i = &self.integrations;
        let err = |k: &str, m: &str| Err((format!("integrations.{k}"), m.to_string()));
        for (section, table) in [
            ("bidder_columns", toml::Table::try_from(&i.bidder_columns)),
            ("deposit_columns", toml::Table::try_from(&i.deposit_columns)),
            (
                "refund_failure_columns",
                toml::Table::try_from(&i.refund_failure_columns),
            ),
        ] {
            let table = table.expect("column mappings serialize");
            let mut seen = std::collections::HashSet::new();
            for (field, v) in &table {
                let header = v.as_str().unwrap_or_default().trim();
                if header.is_empty() {
                    return err(&format!("{section}.{field}"), "must not be empty");
                }
                if !seen.insert(header.to_string()) {
                    return err(
                        &format!("{section}.{field}"),
                        &format!("header `{header}` is mapped to two columns"),
                    );
                }
            }
        }
        let p = &i.platform_12345;
        if !p.reply_url.is_empty() {
            if !(p.reply_url.starts_with("http://") || p.reply_url.starts_with("https://")) {
                return err(
                    "platform_12345.reply_url",
                    "must be an http:// or https:// URL",
                );
            }
            if p.secret.is_empty() {
                return err(
                    "platform_12345.secret",
                    "must be set when reply_url is (replies are signed with it)",
                );
            }
        }
        if p.max_skew_secs == 0 {
            return err("platform_12345.max_skew_secs", "must be at least 1");
        }
        if p.retry_base_secs == 0 {
            return err("platform_12345.retry_base_secs", "must be at least 1");
        }
        if p.retry_max_secs < p.retry_base_secs {
            return err(
                "platform_12345.retry_max_secs",
                "must be at least retry_base_secs",
            );
        }
        if let Err((field, message)) = i.wechat.validate() {
            return err(&format!("wechat.{field}"), &message);
        }
        if let Err((field, message)) = i.web_chat.validate() {
            return err(&format!("web_chat.{field}"), &message);
        }
        if let Err((key, message)) = i.sms.validate() {
            return err(&format!("sms.{key}"), &message);
        }
        Ok(())
    }

    /// The database URL in effect: the configured one, or SQLite inside the data directory.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("hotline.db").display()
            )
        } else {
            self.database.url.clone()
        }
    }
}

pub const ENV_PREFIX: &str = "HOTLINE_";

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

fn parse_toml(origin: &str, text: &str) -> Result<Config, ConfigError> {
    let de = toml::Deserializer::parse(text).map_err(|e| {
        let location = e
            .span()
            .map(|s| {
                let (l, c) = line_col(text, s.start);
                format!("line {l}, column {c}: ")
            })
            .unwrap_or_default();
        ConfigError::Invalid {
            origin: origin.to_string(),
            location,
            key: "(syntax)".into(),
            message: e.message().trim().to_string(),
        }
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let location = inner
            .span()
            .map(|s| {
                let (l, c) = line_col(text, s.start);
                format!("line {l}, column {c}: ")
            })
            .unwrap_or_default();
        ConfigError::Invalid {
            origin: origin.to_string(),
            location,
            key,
            message: inner.message().trim().to_string(),
        }
    })
}

fn apply_env(config: &Config, overrides: &[(String, String)]) -> Result<Config, ConfigError> {
    let mut table = toml::Table::try_from(config).expect("the config always serializes");
    let defaults = toml::Table::try_from(Config::default()).expect("defaults serialize");
    for (var, raw) in overrides {
        let path: Vec<String> = var[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        let invalid = |message: String| ConfigError::Invalid {
            origin: format!("environment variable {var}"),
            location: String::new(),
            key: path.join("."),
            message,
        };
        if path.iter().any(String::is_empty) {
            return Err(invalid("empty key segment in the variable name".into()));
        }
        let value = typed_value(&defaults, &path, raw);
        let (last, parents) = path.split_last().expect("non-empty");
        let mut t = &mut table;
        for seg in parents {
            let entry = t
                .entry(seg.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            t = match entry {
                toml::Value::Table(inner) => inner,
                _ => return Err(invalid(format!("`{seg}` is not a table"))),
            };
        }
        t.insert(last.clone(), value);
    }
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        let message = e.inner().message().trim().to_string();
        let var = format!(
            "{ENV_PREFIX}{}",
            key.to_ascii_uppercase().replace('.', "__")
        );
        ConfigError::Invalid {
            origin: format!("environment variable {var}"),
            location: String::new(),
            key,
            message,
        }
    })
}

/// Environment values are text; give them the type the key has in the defaults, so that a
/// string key keeps "123" as text and a number, boolean or list key gets parsed as TOML.
fn typed_value(defaults: &toml::Table, path: &[String], raw: &str) -> toml::Value {
    let mut cur: Option<&toml::Value> = None;
    let mut table = Some(defaults);
    for seg in path {
        cur = table.and_then(|t| t.get(seg));
        table = cur.and_then(toml::Value::as_table);
    }
    let text = || toml::Value::String(raw.to_string());
    match cur {
        Some(toml::Value::String(_)) => text(),
        _ => format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(text),
    }
}

/// The fully commented default configuration printed by `hotline config default`.
/// A test keeps it equal to `Config::default()`.
pub const DEFAULT_TOML: &str = include_str!("../hotline.example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hotline.toml");
        std::fs::write(&p, text).unwrap();
        Config::load(
            Some(&p),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn example_file_equals_defaults() {
        let c = load_str(DEFAULT_TOML, &[]).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn ivr_settings_are_checked_with_their_key() {
        let err = load_str(
            "[[ivr.acd.queues]]\nname = \"hotline\"\nstrategy = \"ring_all\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ivr.acd.queues[0].strategy"), "{err}");
        let err = load_str("[ivr]\ntransfer_peer = 1\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("ivr.transfer_peer"), "{err}");
    }

    #[test]
    fn no_file_gives_defaults() {
        let c = Config::load(None, Vec::new()).unwrap();
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.sip.listen.to_string(), "127.0.0.1:5060");
        assert!(c.database_url().starts_with("sqlite://"));
        assert!(c.database_url().contains("hotline.db"));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = load_str("[http]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `http.lisen`"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("hotline.toml"), "{err}");
    }

    #[test]
    fn unknown_top_level_table_is_named() {
        let err = load_str("[htp]\nlisten = 1\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `htp`"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = load_str("[database]\nmax_connections = \"many\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `database.max_connections`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let err = load_str("[http]\nlisten = \"nowhere\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `http.listen`"), "{err}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = load_str("[http\n", &[]).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn env_overrides_with_types() {
        let c = load_str(
            "",
            &[
                ("HOTLINE_DATABASE__URL", "postgres://u@h/db"),
                ("HOTLINE_DATABASE__MAX_CONNECTIONS", "3"),
                ("HOTLINE_HTTP__LISTEN", "0.0.0.0:9000"),
                ("HOTLINE_HTTP__SECURE_COOKIES", "true"),
                ("HOTLINE_DATA_DIR", "/srv/hotline"),
                ("OTHER_VAR", "ignored"),
            ],
        )
        .unwrap();
        assert_eq!(c.database.url, "postgres://u@h/db");
        assert_eq!(c.database.max_connections, 3);
        assert_eq!(c.http.listen.port(), 9000);
        assert!(c.http.secure_cookies);
        assert_eq!(c.data_dir, PathBuf::from("/srv/hotline"));
    }

    #[test]
    fn env_errors_name_the_variable_and_key() {
        let err = load_str("", &[("HOTLINE_DATABASE__MAX_CONNECTIONS", "lots")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("HOTLINE_DATABASE__MAX_CONNECTIONS"), "{err}");
        assert!(err.contains("key `database.max_connections`"), "{err}");
        let err = load_str("", &[("HOTLINE_HTTP__NOPE", "1")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `http.nope`"), "{err}");
    }

    #[test]
    fn rsipstack_is_held_at_warn_unless_named() {
        let quiet = |f: &str| {
            LogConfig {
                filter: f.into(),
                ..LogConfig::default()
            }
            .effective_filter()
        };
        assert_eq!(quiet("info"), "info,rsipstack=warn");
        assert_eq!(quiet(""), "rsipstack=warn");
        assert_eq!(quiet("debug,rsipstack=info"), "debug,rsipstack=info");
    }

    #[test]
    fn validation_names_the_key() {
        let err = load_str("[database]\nurl = \"mysql://x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `database.url`"), "{err}");
        let err = load_str("[log]\nfilter = \"a=b=c\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `log.filter`"), "{err}");
    }

    #[test]
    fn feature_sections_are_strict_and_name_the_key() {
        let err = load_str("[recording]\nretention_dys = 30\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `recording.retention_dys`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let err = load_str("[crm.sla]\ncomplaint = 3\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `crm.sla.complaint`"), "{err}");
        let err = load_str("[integrations.platform_12345]\nsecrt = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key `integrations.platform_12345.secrt`"),
            "{err}"
        );
    }

    #[test]
    fn feature_sections_are_validated_by_key() {
        for (text, key) in [
            (
                "[recording]\nheader_interval_ms = 5000\n",
                "recording.header_interval_ms",
            ),
            ("[recording]\nqueue_frames = 1\n", "recording.queue_frames"),
            ("[recording]\ncriteria = []\n", "recording.criteria"),
            (
                "data_dir = \"/d\"\n[recording]\nbackup_path = \"/d/recordings\"\n",
                "recording.backup_path",
            ),
            (
                "[crm.sla]\ncomplaint_hours = 0\n",
                "crm.sla.complaint_hours",
            ),
            (
                "[crm.callbacks]\nopen_minute = 1300\n",
                "crm.callbacks.close_minute",
            ),
            (
                "[crm.callbacks]\nretry_spacing_minutes = []\n",
                "crm.callbacks.retry_spacing_minutes",
            ),
            (
                "[crm.attachments]\nmax_bytes = 0\n",
                "crm.attachments.max_bytes",
            ),
            (
                "[integrations.bidder_columns]\nmobile = \"\"\n",
                "integrations.bidder_columns.mobile",
            ),
            (
                "[integrations.deposit_columns]\nmemo = \"金额\"\n",
                "integrations.deposit_columns.memo",
            ),
            (
                "[integrations.platform_12345]\nreply_url = \"ftp://x\"\nsecret = \"s\"\n",
                "integrations.platform_12345.reply_url",
            ),
            (
                "[integrations.platform_12345]\nreply_url = \"https://x/\"\n",
                "integrations.platform_12345.secret",
            ),
            (
                "[integrations.platform_12345]\nretry_max_secs = 1\n",
                "integrations.platform_12345.retry_max_secs",
            ),
            (
                "[integrations.wechat]\nencoding_aes_key = \"tooshort\"\n",
                "integrations.wechat.encoding_aes_key",
            ),
            (
                "[integrations.wechat]\nenabled = true\ntoken = \"tok123\"\napp_id = \"wx1\"\n",
                "integrations.wechat.app_secret",
            ),
            (
                "[integrations.wechat]\napi_base = \"ftp://x\"\n",
                "integrations.wechat.api_base",
            ),
            (
                "[integrations.web_chat]\nenabled = true\n",
                "integrations.web_chat.allowed_origins",
            ),
            (
                "[integrations.web_chat]\nallowed_origins = [\"https://a.example/\"]\n",
                "integrations.web_chat.allowed_origins",
            ),
            (
                "[integrations.web_chat]\nmax_message_chars = 0\n",
                "integrations.web_chat.max_message_chars",
            ),
            (
                "[integrations.sms]\nquiet_end = \"8\"\n",
                "integrations.sms.quiet_end",
            ),
            (
                "[integrations.sms]\nrate_per_sec = 0\n",
                "integrations.sms.rate_per_sec",
            ),
            (
                "[integrations.sms]\nprovider = \"http\"\n",
                "integrations.sms.http.url",
            ),
            (
                "[integrations.sms.http]\nfeild_key = \"id\"\n",
                "integrations.sms.http.feild_key",
            ),
            ("[alerts]\ninterval_secs = 0\n", "alerts.interval_secs"),
            (
                "[alerts]\ntechnician_mobiles = [\"110\"]\n",
                "alerts.technician_mobiles[0]",
            ),
            (
                "[alerts]\nwebhook_url = \"https://x/hook\"\n",
                "alerts.webhook_url",
            ),
            ("[alerts]\nfor_sec = 3\n", "alerts.for_sec"),
        ] {
            let err = load_str(text, &[]).unwrap_err().to_string();
            assert!(err.contains(&format!("key `{key}`")), "{text}: {err}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = load_str(
            "[database]\nurl = \"postgres://app:db-pass-7f3a@db:5432/hotline\"\n\
             [integrations.platform_12345]\nsecret = \"s3cret-12345-9d1e\"\n",
            &[],
        )
        .unwrap();
        let shown = format!("{c:?} {:#?}", c.integrations);
        assert!(!shown.contains("db-pass-7f3a"), "{shown}");
        assert!(!shown.contains("s3cret-12345-9d1e"), "{shown}");
        assert!(shown.contains("postgres://app:***@db:5432/hotline"));
    }

    #[test]
    fn wechat_key_error_is_precise_and_secrets_stay_out_of_debug() {
        let err = load_str("[integrations.wechat]\nencoding_aes_key = \"abc\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be 43 characters, got 3"), "{err}");
        let c = load_str(
            "[integrations.wechat]\nenabled = true\ntoken = \"tok123\"\napp_id = \"wx1\"\n\
             encoding_aes_key = \"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C\"\n",
            &[(
                "HOTLINE_INTEGRATIONS__WECHAT__APP_SECRET",
                "very-secret-value",
            )],
        )
        .unwrap();
        assert_eq!(c.integrations.wechat.app_secret, "very-secret-value");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("very-secret-value"), "{dbg}");
        assert!(!dbg.contains("jWmYm7qr"), "{dbg}");
        assert!(!dbg.contains("tok123"), "{dbg}");
    }

    #[test]
    fn feature_sections_take_env_overrides() {
        let c = load_str(
            "",
            &[
                ("HOTLINE_INTEGRATIONS__PLATFORM_12345__SECRET", "0123"),
                ("HOTLINE_RECORDING__RETENTION_DAYS", "180"),
                ("HOTLINE_RECORDING__BACKUP_PATH", "/backup"),
                ("HOTLINE_CRM__CALLBACKS__RETRY_SPACING_MINUTES", "[10, 20]"),
            ],
        )
        .unwrap();
        assert_eq!(c.integrations.platform_12345.secret, "0123");
        assert_eq!(c.recording.retention_days, 180);
        assert_eq!(c.recording.backup_path, PathBuf::from("/backup"));
        assert_eq!(c.crm.callbacks.retry_spacing_minutes, vec![10, 20]);
        // the archive defaults to a directory inside the data directory
        assert_eq!(c.recording().root, c.data_dir.join("recordings"));
    }
}
