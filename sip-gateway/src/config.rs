//! The gateway's configuration: one serde struct the binary embeds in its config file (for
//! example under `[sip]`), with documented defaults and a [`GatewayConfig::validate`] that
//! names the offending field.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::error::GatewayError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Address for SIP over UDP and TCP. Default `127.0.0.1:5060`.
    pub listen: SocketAddr,
    /// Serve UDP. Default true.
    pub udp: bool,
    /// Serve TCP. Default true.
    pub tcp: bool,
    /// The address put in Via/Contact/SDP when `listen` is a wildcard (0.0.0.0). Default none.
    pub advertised_ip: Option<IpAddr>,
    /// The digest realm for seats. Default `hotline`.
    pub realm: String,
    /// Largest SIP message accepted, in bytes (datagram or stream frame). Default 16384.
    pub max_message_size: usize,
    pub trunk: TrunkConfig,
    pub rtp: RtpConfig,
    pub register: RegisterConfig,
    pub auth: AuthConfig,
    /// Called number (DID) → where the call goes.
    pub routes: Vec<DidRoute>,
    /// Inbound INVITEs per source IP per second before 503. Default 20.
    pub max_calls_per_second_per_source: u32,
    /// Overload control: when a SIP message has waited this long (ms) between the socket and
    /// the engine, new INVITEs get 503 with Retry-After until the wait is under a quarter of
    /// it (`overload` module). 0 = off. Default 200.
    pub overload_lag_ms: u64,
    /// OPTIONS qualify interval for registered seat contacts and trunk peers, seconds. 0 = off.
    /// Default 30.
    pub qualify_interval_secs: u64,
    /// How long a seat leg may ring before the caller gets 480, seconds. Default 60.
    pub ring_timeout_secs: u64,
    /// Smallest session interval accepted (RFC 4028 Min-SE, at least 90). Default 90.
    pub min_session_expires_secs: u32,
    pub flood: FloodConfig,
}

/// Requests refused from an address that is neither a trunk peer nor a registered seat (a
/// scanner, a flood): past `max_refused` within `window_secs` the address gets no answer at
/// all for `block_secs` — dropped before the transaction layer, so that a flood costs
/// neither memory (no transaction kept per request) nor bandwidth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FloodConfig {
    /// Default 50.
    pub max_refused: u32,
    /// Default 10.
    pub window_secs: u64,
    /// Default 300.
    pub block_secs: u64,
}

impl Default for FloodConfig {
    fn default() -> Self {
        Self {
            max_refused: 50,
            window_secs: 10,
            block_secs: 300,
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            udp: true,
            tcp: true,
            advertised_ip: None,
            realm: "hotline".into(),
            max_message_size: 16 * 1024,
            trunk: TrunkConfig::default(),
            rtp: RtpConfig::default(),
            register: RegisterConfig::default(),
            auth: AuthConfig::default(),
            routes: Vec::new(),
            max_calls_per_second_per_source: 20,
            overload_lag_ms: 200,
            qualify_interval_secs: 30,
            ring_timeout_secs: 60,
            min_session_expires_secs: 90,
            flood: FloodConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrunkConfig {
    /// Concurrent trunk calls, inbound and outbound together (an E1 carries 30). Default 30.
    pub channels: u32,
    /// Seconds announced in Retry-After when all channels are busy. Default 30.
    pub retry_after_secs: u32,
    /// Peers allowed to send calls: the E1 media gateway, the 12345 transfer peer.
    pub peers: Vec<TrunkPeer>,
    /// Patterns an outbound number must match (toll-fraud guard): digits, `X` = any digit,
    /// `.` at the end = anything more. Empty = no outbound calls.
    pub outbound_allow: Vec<String>,
    /// Caller ID used on outbound trunk calls (the hotline number).
    pub caller_id: String,
}

impl Default for TrunkConfig {
    fn default() -> Self {
        Self {
            channels: 30,
            retry_after_secs: 30,
            peers: Vec::new(),
            outbound_allow: Vec::new(),
            caller_id: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkPeer {
    pub name: String,
    /// An IP address or a CIDR block (`10.1.2.0/24`).
    pub address: String,
    /// Source port the peer must use, and where outbound calls and OPTIONS go.
    /// None = any source port (outbound to 5060).
    #[serde(default)]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtpConfig {
    /// First port of the RTP range (even). Default 20000.
    pub port_min: u16,
    /// Last port of the RTP range. Default 20999.
    pub port_max: u16,
}

impl Default for RtpConfig {
    fn default() -> Self {
        Self {
            port_min: 20000,
            port_max: 20999,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterConfig {
    /// Below this a REGISTER gets 423 with Min-Expires (RFC 3261 §10.3 step 7). Default 60.
    pub min_expires: u32,
    /// Longer requests are shortened to this. Default 3600.
    pub max_expires: u32,
    /// When the request names no expiry. Default 3600.
    pub default_expires: u32,
    /// Contacts kept per seat; the oldest is dropped beyond. Default 5.
    pub max_contacts: usize,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        Self {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Digest algorithms offered, most preferred first (RFC 8760 §2.4): "SHA-256", "MD5".
    /// MD5 comes first by default: many deployed softphones and sipp take the first challenge
    /// whatever its algorithm, and fail on SHA-256; clients that know RFC 8760 still pick
    /// SHA-256 when it is listed first. Put "SHA-256" first when every seat supports it.
    pub algorithms: Vec<String>,
    /// Seconds a nonce stays fresh; later it is answered with `stale=true`. Default 300.
    pub nonce_ttl_secs: u64,
    /// Failed authentications from one address within the window that block it. Default 5.
    pub max_failures: u32,
    /// The window, seconds. Default 60.
    pub failure_window_secs: u64,
    /// How long a blocked address gets 403, seconds. Default 600.
    pub block_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            algorithms: vec!["MD5".into(), "SHA-256".into()],
            nonce_ttl_secs: 300,
            max_failures: 5,
            failure_window_secs: 60,
            block_secs: 600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DidRoute {
    /// The called number (Request-URI or To user part).
    pub did: String,
    /// `seat:8001` rings that seat; `ivr` is the IVR entry (taken over by the media issue).
    pub target: String,
}

/// Where a routed call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    Seat(String),
    Ivr,
}

impl DidRoute {
    pub fn parse_target(&self) -> Option<RouteTarget> {
        if self.target == "ivr" {
            return Some(RouteTarget::Ivr);
        }
        let seat = self.target.strip_prefix("seat:")?;
        is_seat_number(seat).then(|| RouteTarget::Seat(seat.to_string()))
    }
}

/// Seat numbers are 2–16 digits (they are dialled and used as SIP user names).
pub fn is_seat_number(s: &str) -> bool {
    (2..=16).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

impl GatewayConfig {
    /// Checks the whole config; the error names the field.
    pub fn validate(&self) -> Result<(), GatewayError> {
        let bad = |field: &str, msg: String| {
            Err(GatewayError::Config {
                field: field.to_string(),
                message: msg,
            })
        };
        if !self.udp && !self.tcp {
            return bad("udp/tcp", "at least one transport must be enabled".into());
        }
        if self.realm.is_empty() || self.realm.contains(['"', '\\', '\r', '\n']) {
            return bad("realm", format!("invalid realm {:?}", self.realm));
        }
        if !(1024..=65_535).contains(&self.max_message_size) {
            return bad(
                "max_message_size",
                format!("{} is outside 1024..=65535", self.max_message_size),
            );
        }
        if self.trunk.channels == 0 {
            return bad("trunk.channels", "must be at least 1".into());
        }
        for (i, p) in self.trunk.peers.iter().enumerate() {
            if p.name.is_empty() {
                return bad(
                    &format!("trunk.peers[{i}].name"),
                    "must not be empty".into(),
                );
            }
            if crate::policy::parse_net(&p.address).is_none() {
                return bad(
                    &format!("trunk.peers[{i}].address"),
                    format!("{:?} is neither an IP address nor a CIDR block", p.address),
                );
            }
        }
        for (i, pat) in self.trunk.outbound_allow.iter().enumerate() {
            if !crate::policy::valid_pattern(pat) {
                return bad(
                    &format!("trunk.outbound_allow[{i}]"),
                    format!("{pat:?}: use digits, X for any digit, and an optional final ."),
                );
            }
        }
        if self.rtp.port_min < 1024 || self.rtp.port_min >= self.rtp.port_max {
            return bad(
                "rtp.port_min/port_max",
                format!(
                    "range {}..={} must be ascending and above 1023",
                    self.rtp.port_min, self.rtp.port_max
                ),
            );
        }
        if u32::from(self.rtp.port_max - self.rtp.port_min) < 4 {
            return bad("rtp", "range must hold at least two calls".into());
        }
        let r = &self.register;
        if r.min_expires == 0 || r.min_expires > r.max_expires {
            return bad(
                "register.min_expires",
                format!(
                    "need 0 < min_expires ({}) <= max_expires ({})",
                    r.min_expires, r.max_expires
                ),
            );
        }
        if r.default_expires < r.min_expires || r.default_expires > r.max_expires {
            return bad(
                "register.default_expires",
                format!("{} is outside min..=max", r.default_expires),
            );
        }
        if r.max_contacts == 0 {
            return bad("register.max_contacts", "must be at least 1".into());
        }
        let a = &self.auth;
        if a.algorithms.is_empty() {
            return bad("auth.algorithms", "offer at least one algorithm".into());
        }
        for alg in &a.algorithms {
            if crate::digest::Algorithm::parse(alg).is_none() {
                return bad(
                    "auth.algorithms",
                    format!("{alg:?} is not supported (use \"SHA-256\" or \"MD5\")"),
                );
            }
        }
        if a.nonce_ttl_secs == 0 || a.max_failures == 0 || a.failure_window_secs == 0 {
            return bad(
                "auth",
                "nonce_ttl_secs, max_failures and failure_window_secs must be positive".into(),
            );
        }
        let f = &self.flood;
        if f.max_refused == 0 || f.window_secs == 0 {
            return bad(
                "flood",
                "max_refused and window_secs must be positive".into(),
            );
        }
        for (i, route) in self.routes.iter().enumerate() {
            if route.did.is_empty() || !route.did.bytes().all(|b| b.is_ascii_graphic()) {
                return bad(
                    &format!("routes[{i}].did"),
                    format!("invalid DID {:?}", route.did),
                );
            }
            if route.parse_target().is_none() {
                return bad(
                    &format!("routes[{i}].target"),
                    format!("{:?}: use \"seat:<number>\" or \"ivr\"", route.target),
                );
            }
            if self.routes[..i].iter().any(|r| r.did == route.did) {
                return bad(
                    &format!("routes[{i}].did"),
                    format!("{} is routed twice", route.did),
                );
            }
        }
        if self.min_session_expires_secs < 90 {
            return bad(
                "min_session_expires_secs",
                "RFC 4028 §4 requires at least 90".into(),
            );
        }
        if self.max_calls_per_second_per_source == 0 {
            return bad(
                "max_calls_per_second_per_source",
                "must be at least 1".into(),
            );
        }
        if self.listen.ip().is_unspecified() && self.advertised_ip.is_none() {
            return bad(
                "advertised_ip",
                "required when listen is a wildcard address (it goes into Via, Contact and SDP)"
                    .into(),
            );
        }
        Ok(())
    }

    /// The address we put in Via, Contact and SDP.
    pub fn public_ip(&self) -> IpAddr {
        self.advertised_ip.unwrap_or(self.listen.ip())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = GatewayConfig::default();
        c.validate().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:5060");
        assert_eq!(c.trunk.channels, 30);
        assert!(c.udp && c.tcp);
    }

    #[test]
    fn toml_round_trip_and_unknown_fields_refused() {
        let text = r#"
            listen = "127.0.0.1:5070"
            realm = "hotline.example"
            [trunk]
            channels = 30
            peers = [{ name = "e1", address = "10.0.0.0/24", port = 5060 }]
            outbound_allow = ["1XXXXXXXXXX", "022."]
            [[routes]]
            did = "02212345"
            target = "seat:8001"
        "#;
        let c: GatewayConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.trunk.peers[0].port, Some(5060));
        assert!(toml::from_str::<GatewayConfig>("chanels = 3").is_err());
        assert!(toml::from_str::<GatewayConfig>("[trunk]\nchanels = 3").is_err());
    }

    #[test]
    fn validate_names_the_field() {
        let field = |c: GatewayConfig| match c.validate() {
            Err(GatewayError::Config { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let mut c = GatewayConfig::default();
        c.trunk.peers.push(TrunkPeer {
            name: "x".into(),
            address: "10.0.0.300".into(),
            port: None,
        });
        assert_eq!(field(c), "trunk.peers[0].address");
        let mut c = GatewayConfig::default();
        c.register.min_expires = 7200;
        assert_eq!(field(c), "register.min_expires");
        let mut c = GatewayConfig::default();
        c.routes.push(DidRoute {
            did: "1".into(),
            target: "queue".into(),
        });
        assert_eq!(field(c), "routes[0].target");
        let mut c = GatewayConfig::default();
        c.auth.algorithms = vec!["SHA-512".into()];
        assert_eq!(field(c), "auth.algorithms");
        let c = GatewayConfig {
            listen: "0.0.0.0:5060".parse().unwrap(),
            ..GatewayConfig::default()
        };
        assert_eq!(field(c), "advertised_ip");
        let mut c = GatewayConfig::default();
        c.trunk.outbound_allow.push("1*".into());
        assert_eq!(field(c), "trunk.outbound_allow[0]");
    }
}
