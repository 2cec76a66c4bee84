//! The gateway's state and its message dispatch: one task owns an [`Engine`] and feeds it
//! the SIP stack's events, commands and timer ticks (`handle_event`, `handle_command`,
//! `handle_timeout`); what must be sent collects in `out`, each message marked with the
//! transaction it belongs to, and the driver hands it to the stack.
//! Storage is awaited in line (it is small and local); the protocol decisions are made by
//! the sans-IO parts (`digest`, `registrar`, `policy`, `transaction`, `rtp`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hotline_core::events::EventSink;
use hotline_core::metrics::{Registry, Series};
use hotline_core::throttle::{FailureOutcome, FailureThrottle, ThrottlePolicy};
use hotline_core::{Clock, IdGenerator, Rng, UnixMillis};
use sqlx::AnyPool;
use tokio::sync::{oneshot, watch};

use crate::call::Call;
use crate::config::{GatewayConfig, RouteTarget};
use crate::digest::{Algorithm, Credentials, DigestAuth, NonceState};
use crate::policy::{ChannelCap, PeerAcl, RateLimit};
use crate::registrar::{RegisterInput, RegisterReject, Registrar};
use crate::rtp::PortAllocator;
use crate::sip::{self, Request, Response};
use crate::store;
use crate::transaction::{Done, Target, Transactions, Transmit, Transport};

/// The methods we answer (RFC 3261 §20.5).
pub(crate) const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, REFER, NOTIFY";

/// The extensions we support (RFC 3261 §20.37): session timers (RFC 4028).
pub(crate) const SUPPORTED: &[&str] = &["timer"];

/// Series the gateway keeps, registered on the shared registry.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    pub(crate) received: hotline_core::metrics::Metric,
    pub(crate) malformed: hotline_core::metrics::Metric,
    pub(crate) auth_failures: Series,
    pub(crate) auth_blocked_requests: Series,
    pub(crate) auth_blocks: Series,
    pub(crate) flood_dropped: Series,
    pub(crate) flood_blocks: Series,
    pub(crate) overload: Series,
    pub(crate) bindings: Series,
    pub(crate) channels_in_use: Series,
    pub(crate) active_calls: Series,
    pub(crate) calls: hotline_core::metrics::Metric,
    pub(crate) rejected: hotline_core::metrics::Metric,
    pub(crate) rtp_caller_to_seat: Series,
    pub(crate) rtp_seat_to_caller: Series,
    pub(crate) peer_up: hotline_core::metrics::Metric,
}

impl Metrics {
    pub(crate) fn new(r: &Registry, channels: u32) -> Self {
        r.gauge(
            "hotline_sip_trunk_channels",
            "Configured trunk channels (the cap)",
        )
        .plain()
        .set(i64::from(channels));
        let rtp = r.counter(
            "hotline_sip_rtp_packets_total",
            "RTP packets relayed, by direction",
        );
        Self {
            received: r.counter(
                "hotline_sip_messages_received_total",
                "SIP messages received, by transport and kind",
            ),
            malformed: r.counter(
                "hotline_sip_malformed_total",
                "Malformed SIP messages, by action (reply_400, drop, oversize)",
            ),
            auth_failures: r
                .counter("hotline_sip_auth_failures_total", "Failed digest authentications")
                .plain(),
            auth_blocked_requests: r
                .counter(
                    "hotline_sip_auth_blocked_requests_total",
                    "Requests refused with 403 because their source address is blocked",
                )
                .plain(),
            auth_blocks: r
                .counter(
                    "hotline_sip_auth_blocks_total",
                    "Source addresses blocked after repeated authentication failures",
                )
                .plain(),
            flood_dropped: r
                .counter(
                    "hotline_sip_flood_dropped_total",
                    "Requests dropped unanswered from addresses blocked by the flood guard",
                )
                .plain(),
            flood_blocks: r
                .counter(
                    "hotline_sip_flood_blocks_total",
                    "Addresses (neither trunk peer nor seat) blocked after too many refused requests",
                )
                .plain(),
            overload: r
                .gauge(
                    "hotline_sip_overload",
                    "1 while new calls are refused because the SIP engine is behind (sip.overload_lag_ms)",
                )
                .plain(),
            bindings: r
                .gauge("hotline_sip_registrations", "Registered seat contacts")
                .plain(),
            channels_in_use: r
                .gauge("hotline_sip_trunk_channels_in_use", "Trunk channels in use")
                .plain(),
            active_calls: r.gauge("hotline_sip_active_calls", "Calls in progress").plain(),
            calls: r.counter(
                "hotline_sip_calls_total",
                "Finished calls, by direction and end cause",
            ),
            rejected: r.counter(
                "hotline_sip_calls_rejected_total",
                "INVITEs refused before ringing, by reason (acl, channels, rate, overload, route, codec, unavailable, extension)",
            ),
            rtp_caller_to_seat: rtp.with(&[("direction", "caller_to_seat")]),
            rtp_seat_to_caller: rtp.with(&[("direction", "seat_to_caller")]),
            peer_up: r.gauge(
                "hotline_sip_trunk_peer_up",
                "1 when the trunk peer answered the last OPTIONS keepalive",
            ),
        }
    }
}

/// Requests from the [`crate::GatewayHandle`].
#[derive(Debug)]
pub(crate) enum Command {
    Status(oneshot::Sender<crate::GatewayStatus>),
    Health(oneshot::Sender<crate::GatewayHealth>),
    ClickToCall {
        seat: String,
        number: String,
        reply: oneshot::Sender<Result<String, crate::GatewayError>>,
    },
    Hangup {
        call_id: String,
        reply: oneshot::Sender<bool>,
    },
    App(crate::app::AppCommand),
}

/// What a qualify OPTIONS was for.
#[derive(Debug, Clone)]
enum QualifyFor {
    Binding { seat: String, contact: String },
    Peer { name: String },
}

pub(crate) struct Engine {
    pub(crate) cfg: GatewayConfig,
    pub(crate) pool: AnyPool,
    pub(crate) writes: Option<Arc<dyn hotline_core::write_queue::WriteQueue>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn Rng>,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) m: Metrics,
    /// The bound SIP port (UDP and TCP share it).
    pub(crate) port: u16,
    pub(crate) public_ip: IpAddr,
    pub(crate) txns: Transactions,
    auth: DigestAuth,
    dummy_ha1: String,
    throttle: FailureThrottle<IpAddr>,
    /// Addresses that are neither trunk peers nor seats, by refused requests (flood guard).
    pub(crate) strangers: FailureThrottle<IpAddr>,
    pub(crate) registrar: Registrar,
    pub(crate) acl: PeerAcl,
    pub(crate) cap: ChannelCap,
    pub(crate) rate: RateLimit,
    pub(crate) overload: crate::overload::OverloadGuard,
    pub(crate) routes: HashMap<String, RouteTarget>,
    pub(crate) ports: PortAllocator,
    pub(crate) calls: HashMap<String, Call>,
    pub(crate) c2c: HashMap<String, crate::outbound::ClickCall>,
    /// SIP Call-ID of either leg → our call id.
    pub(crate) by_sip: HashMap<String, String>,
    qualify: HashMap<String, QualifyFor>,
    /// The latest keepalive result per trunk peer (for the health watcher).
    peer_up: HashMap<String, bool>,
    next_qualify_at: UnixMillis,
    next_purge_at: UnixMillis,
    pub(crate) out: Vec<Transmit>,
    /// Transactions to end now (the driver takes them after `out`).
    pub(crate) done: Vec<Done>,
    reg_watch: watch::Sender<u64>,
    /// Where application calls are reported (none: DIDs routed to `ivr` get 480).
    pub(crate) app: Option<tokio::sync::mpsc::UnboundedSender<crate::app::AppEvent>>,
    /// The recorder's tap (none: calls are not recorded).
    pub(crate) tap: Option<Arc<dyn hotline_core::media::MediaTap>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("port", &self.port)
            .field("calls", &self.calls.len())
            .finish()
    }
}

pub(crate) struct EngineParts {
    pub(crate) cfg: GatewayConfig,
    pub(crate) pool: AnyPool,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn Rng>,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) metrics: Registry,
    pub(crate) port: u16,
    pub(crate) bindings: Vec<store::Binding>,
    pub(crate) reg_watch: watch::Sender<u64>,
    pub(crate) app: Option<tokio::sync::mpsc::UnboundedSender<crate::app::AppEvent>>,
    pub(crate) tap: Option<Arc<dyn hotline_core::media::MediaTap>>,
    pub(crate) writes: Option<Arc<dyn hotline_core::write_queue::WriteQueue>>,
}

impl Engine {
    pub(crate) fn new(p: EngineParts) -> Self {
        let mut secret = [0u8; 32];
        p.rng.fill(&mut secret);
        let cfg = p.cfg;
        let algorithms = cfg
            .auth
            .algorithms
            .iter()
            .filter_map(|a| Algorithm::parse(a))
            .collect();
        let auth = DigestAuth::new(
            secret,
            i64::try_from(cfg.auth.nonce_ttl_secs)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
            algorithms,
            cfg.realm.clone(),
        );
        let secs = |s: u64| {
            i64::try_from(s)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000)
        };
        let throttle = FailureThrottle::new(ThrottlePolicy {
            max_failures: cfg.auth.max_failures,
            window_ms: secs(cfg.auth.failure_window_secs),
            block_ms: secs(cfg.auth.block_secs),
        });
        let strangers = FailureThrottle::new(ThrottlePolicy {
            max_failures: cfg.flood.max_refused,
            window_ms: secs(cfg.flood.window_secs),
            block_ms: secs(cfg.flood.block_secs),
        });
        let m = Metrics::new(&p.metrics, cfg.trunk.channels);
        m.bindings.set(p.bindings.len() as i64);
        let routes = cfg
            .routes
            .iter()
            .filter_map(|r| Some((r.did.clone(), r.parse_target()?)))
            .collect();
        let dummy_ha1 = IdGenerator::token(p.rng.as_ref(), 16);
        let now = p.clock.now_ms();
        Self {
            registrar: Registrar::new(cfg.register.clone(), p.bindings),
            acl: PeerAcl::new(&cfg.trunk.peers),
            cap: ChannelCap::new(cfg.trunk.channels),
            rate: RateLimit::new(cfg.max_calls_per_second_per_source),
            overload: crate::overload::OverloadGuard::new(cfg.overload_lag_ms),
            ports: PortAllocator::new(cfg.rtp.port_min, cfg.rtp.port_max),
            public_ip: cfg.public_ip(),
            routes,
            auth,
            dummy_ha1,
            throttle,
            strangers,
            m,
            port: p.port,
            txns: Transactions::default(),
            calls: HashMap::new(),
            c2c: HashMap::new(),
            by_sip: HashMap::new(),
            qualify: HashMap::new(),
            peer_up: HashMap::new(),
            next_qualify_at: now + 1_000,
            next_purge_at: now + 60_000,
            out: Vec::new(),
            done: Vec::new(),
            reg_watch: p.reg_watch,
            app: p.app,
            tap: p.tap,
            pool: p.pool,
            writes: p.writes,
            clock: p.clock,
            rng: p.rng,
            events: p.events,
            cfg,
        }
    }

    /// Opens the recorder's tap for a call answered now.
    pub(crate) fn open_tap(
        &self,
        call_id: &str,
        caller: &str,
        now: UnixMillis,
    ) -> Option<Box<dyn hotline_core::media::CallTap>> {
        self.tap.as_ref()?.open(hotline_core::media::TapStart {
            call_id: call_id.to_string(),
            caller: caller.to_string(),
            started_at: now,
        })
    }

    pub(crate) fn now(&self) -> UnixMillis {
        self.clock.now_ms()
    }

    pub(crate) fn token(&self, bytes: usize) -> String {
        IdGenerator::token(self.rng.as_ref(), bytes)
    }

    /// A new top-Via branch (RFC 3261 §8.1.1.7: the magic cookie, then a random token).
    pub(crate) fn new_branch(&self) -> String {
        format!("z9hG4bK{}", self.token(8))
    }

    /// Our Via for a request sent over `transport` (RFC 3581 `rport`).
    pub(crate) fn via(&self, transport: Transport, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            transport.name(),
            self.host_port()
        )
    }

    /// `ip:port`, an IPv6 address in brackets.
    pub(crate) fn host_port(&self) -> String {
        match self.public_ip {
            IpAddr::V4(ip) => format!("{ip}:{}", self.port),
            IpAddr::V6(ip) => format!("[{ip}]:{}", self.port),
        }
    }

    pub(crate) fn contact(&self, transport: Transport) -> String {
        let t = if transport == Transport::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        format!("<sip:hotline@{}{t}>", self.host_port())
    }

    // ---- inbound -------------------------------------------------------------------------

    /// How long the message about to be handled waited between the socket and the engine
    /// (measured by the driver): the engine's backlog, for overload control.
    pub(crate) fn note_queue_delay(&mut self, waited_ms: u64) {
        match self.overload.note(waited_ms) {
            Some(crate::overload::Transition::Shedding) => {
                self.m.overload.set(1);
                tracing::warn!(
                    waited_ms,
                    "SIP overload: new calls are refused with 503 until the backlog clears"
                );
            }
            Some(crate::overload::Transition::Recovered) => {
                self.m.overload.set(0);
                tracing::warn!(waited_ms, "SIP overload over: new calls are accepted again");
            }
            None => {}
        }
    }

    /// One event from the SIP stack: a request (new, or the CANCEL / 2xx-ACK of a server
    /// transaction) or a response to one of our client transactions.
    pub(crate) async fn handle_event(&mut self, event: crate::sip::stack::Event) {
        use crate::sip::stack::Event;
        match event {
            Event::Request {
                mut req,
                transport,
                source,
            } => {
                self.m
                    .received
                    .with(&[("transport", transport.name()), ("kind", "request")])
                    .inc();
                // RFC 3261 §18.2.1 / RFC 3581 §4: record where it really came from.
                let mut vias = req.headers.list("Via");
                if let Some(top) = vias.first_mut() {
                    *top = sip::stamp_via(top, source);
                }
                req.headers.remove("Via");
                let rest = std::mem::take(&mut req.headers.0);
                for v in vias {
                    req.headers.push("Via", v);
                }
                req.headers.0.extend(rest);
                let target = Target {
                    transport,
                    addr: sip::response_target(&req, source, transport.reliable()),
                };
                self.handle_request(req, transport, source, target).await;
            }
            Event::Response { resp, transport } => {
                self.m
                    .received
                    .with(&[("transport", transport.name()), ("kind", "response")])
                    .inc();
                self.handle_response(resp).await;
            }
        }
    }

    async fn handle_request(
        &mut self,
        req: Request,
        transport: Transport,
        source: SocketAddr,
        target: Target,
    ) {
        let now = self.now();
        if self.strangers.blocked_until(now, &source.ip()).is_some()
            && self.acl.peer_of(source).is_none()
        {
            // No answer and no transaction: a flood costs us nothing more.
            self.m.flood_dropped.inc();
            self.done
                .push(Done::Server(crate::transaction::server_key(&req)));
            return;
        }
        let in_dialog = req.to().is_some_and(|t| t.tag().is_some());
        if self.refused_before_dispatch(&req, in_dialog, source, target) {
            return;
        }
        match req.method.as_str() {
            "REGISTER" => self.handle_register(&req, transport, source, target).await,
            "OPTIONS" => {
                let mut r = sip::response_to(&req, 200, Some(&self.token(6)));
                r.headers.push("Allow", ALLOW);
                r.headers.push("Accept", "application/sdp");
                r.headers.push("Supported", SUPPORTED.join(", "));
                self.send_response(&req, r, target);
            }
            "INVITE" if in_dialog => self.handle_reinvite(&req, target).await,
            "INVITE" => self.handle_invite(req, transport, source, target).await,
            "ACK" => self.handle_ack(&req).await,
            "CANCEL" => self.handle_cancel(&req, target).await,
            "BYE" => self.handle_bye(&req, target).await,
            "INFO" | "UPDATE" if in_dialog => self.handle_in_dialog_simple(&req, target),
            "REFER" if in_dialog => self.handle_refer(&req, target).await,
            "INFO" | "UPDATE" | "PRACK" | "NOTIFY" => self.reply(&req, 481, target),
            _ => {
                let mut r = sip::response_to(&req, 405, Some(&self.token(6)));
                r.headers.push("Allow", ALLOW);
                self.send_response(&req, r, target);
            }
        }
    }

    /// The checks every request passes before its handler, in RFC 3261's order: an
    /// extension it requires and we lack (420), an INVITE that opens a dialog without a
    /// Contact we could send to (400), a request in a dialog that is not that dialog's or not
    /// in its order (481, 500). True when it was refused (and answered).
    fn refused_before_dispatch(
        &mut self,
        req: &Request,
        in_dialog: bool,
        source: SocketAddr,
        target: Target,
    ) -> bool {
        // ACK and CANCEL belong to an INVITE's transaction: nothing here applies to them.
        if matches!(req.method.as_str(), "ACK" | "CANCEL") {
            return false;
        }
        // RFC 3261 §8.2.2.3: an extension the request requires and we do not know
        // (e.g. 100rel, RFC 3262) refuses it with 420 and the list, so that the sender
        // can try again without it.
        let unknown: Vec<String> = req
            .headers
            .list("Require")
            .into_iter()
            .filter(|t| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(t)))
            .collect();
        if !unknown.is_empty() {
            if req.method == "INVITE" && !in_dialog {
                // A trunk set to require 100rel fails every call: make it visible.
                self.m.rejected.with(&[("reason", "extension")]).inc();
                tracing::warn!(%source, unsupported = %unknown.join(", "), "INVITE requires an extension we do not support: 420");
            }
            let mut r = sip::response_to(req, 420, Some(&self.token(6)));
            r.headers.push("Unsupported", unknown.join(", "));
            self.send_response(req, r, target);
            return true;
        }
        if req.method == "INVITE" && !in_dialog && !crate::dialog::opens_dialog(req) {
            // RFC 3261 §8.1.1.8: an INVITE names in its Contact where the requests of its
            // dialog go; without one we could not even hang up.
            let mut r = sip::response_to(req, 400, Some(&self.token(6)));
            r.headers
                .push("Warning", "399 hotline \"INVITE without a usable Contact\"");
            self.send_response(req, r, target);
            return true;
        }
        if in_dialog && let Some(Err(code)) = self.dialog_of(req.call_id()).map(|d| d.admit(req)) {
            self.reply(req, code, target);
            return true;
        }
        false
    }

    /// The leg whose dialog has this Call-ID, among calls, click-to-call calls and the legs
    /// their transfers opened. `None` for a Call-ID we do not know or no longer keep a dialog
    /// for (the handlers answer those 481).
    fn dialog_of(&mut self, call_id: &str) -> Option<&mut crate::dialog::Dialog> {
        let id = self.by_sip.get(call_id)?;
        if let Some(c) = self.calls.get_mut(id) {
            let transfer = c.transfer.as_mut().map(|t| &mut t.leg.d);
            return [Some(&mut c.a), Some(&mut c.b), transfer]
                .into_iter()
                .flatten()
                .find(|d| d.call_id == call_id);
        }
        let c = self.c2c.get_mut(id)?;
        let customer = c.customer.as_mut().map(|l| &mut l.d);
        let transfer = c.transfer.as_mut().map(|t| &mut t.leg.d);
        [Some(&mut c.seat.d), customer, transfer]
            .into_iter()
            .flatten()
            .find(|d| d.call_id == call_id)
    }

    /// Sends `resp` for `req` through the server transaction.
    pub(crate) fn send_response(&mut self, req: &Request, resp: Response, target: Target) {
        let now = self.now();
        let status = resp.status;
        let tx = self.txns.respond(now, req, status, resp.to_bytes(), target);
        self.out.push(tx);
    }

    pub(crate) fn reply(&mut self, req: &Request, status: u16, target: Target) {
        let r = sip::response_to(req, status, Some(&self.token(6)));
        self.send_response(req, r, target);
    }

    // ---- registrar (RFC 3261 §10.3) --------------------------------------------------------

    async fn handle_register(
        &mut self,
        req: &Request,
        transport: Transport,
        source: SocketAddr,
        target: Target,
    ) {
        let now = self.now();
        let Some(seat) = req.to().and_then(|t| t.user()) else {
            self.reply(req, 400, target);
            return;
        };
        if self
            .authenticate(req, source, target, Some(&seat))
            .await
            .is_none()
        {
            return;
        }
        let Some(input) =
            RegisterInput::from_request(req, source.to_string(), transport.name().to_string())
        else {
            self.reply(req, 400, target);
            return;
        };
        let outcome = match self.registrar.handle_register(now, &seat, &input) {
            Ok(o) => o,
            Err(RegisterReject::TooBrief(min)) => {
                let mut r = sip::response_to(req, 423, Some(&self.token(6)));
                r.headers.push("Min-Expires", min.to_string());
                self.send_response(req, r, target);
                return;
            }
            Err(RegisterReject::Bad(why)) => {
                let mut r = sip::response_to(req, 400, Some(&self.token(6)));
                r.reason = format!("Bad Request ({why})");
                self.send_response(req, r, target);
                return;
            }
            Err(RegisterReject::OutOfOrder) => {
                self.reply(req, 500, target);
                return;
            }
        };
        let mut db_ok = true;
        for b in &outcome.upserted {
            if let Err(e) = store::upsert_binding(&self.pool, b, self.rng.as_ref()).await {
                tracing::error!(error = %e, "storing a binding failed");
                db_ok = false;
            }
        }
        for c in &outcome.removed {
            if let Err(e) = store::delete_binding(&self.pool, &seat, c).await {
                tracing::error!(error = %e, "removing a binding failed");
                db_ok = false;
            }
        }
        if !db_ok {
            self.reply(req, 500, target);
            return;
        }
        let mut r = sip::response_to(req, 200, Some(&self.token(6)));
        for b in &outcome.current {
            let left = ((b.expires_at - now) / 1000).max(0);
            r.headers
                .push("Contact", format!("<{}>;expires={left}", b.contact));
        }
        self.send_response(req, r, target);
        tracing::info!(seat, source = %source, contacts = outcome.current.len(), "seat registered");
        self.bindings_changed();
    }

    /// Digest authentication of a seat (RFC 3261 §22): REGISTER is challenged with 401 /
    /// WWW-Authenticate, other requests (a seat's INVITE) with 407 / Proxy-Authenticate.
    /// Returns the authenticated seat number; otherwise the answer (401/407, or 403 for a
    /// blocked address) has been sent. `expected` is the seat the request claims (REGISTER's
    /// To); None takes the user name from the credentials.
    pub(crate) async fn authenticate(
        &mut self,
        req: &Request,
        source: SocketAddr,
        target: Target,
        expected: Option<&str>,
    ) -> Option<String> {
        let now = self.now();
        let ip = source.ip();
        if self.throttle.blocked_until(now, &ip).is_some() {
            self.m.auth_blocked_requests.inc();
            self.reply(req, 403, target);
            return None;
        }
        let header = if req.method == "REGISTER" {
            "Authorization"
        } else {
            "Proxy-Authorization"
        };
        let realm = self.auth.realm().to_string();
        let creds = req
            .headers
            .get_all(header)
            .filter_map(Credentials::parse)
            .find(|c| c.realm == realm);
        let Some(creds) = creds else {
            self.challenge(req, target, false);
            return None;
        };
        let Some(alg) = creds.algorithm().filter(|a| self.auth.offers(*a)) else {
            self.challenge(req, target, false);
            return None;
        };
        let seat = creds.username.clone();
        let stored = if expected.is_none_or(|e| e == seat) && crate::config::is_seat_number(&seat) {
            match store::seat_ha1(&self.pool, &seat, &realm, alg).await {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(error = %e, "seat lookup failed");
                    self.reply(req, 500, target);
                    return None;
                }
            }
        } else {
            None
        };
        // An unknown seat is checked against a random HA1, so it fails exactly like a wrong
        // password: same response, same path (no seat-existence leak).
        let ha1 = stored.unwrap_or_else(|| self.dummy_ha1.clone());
        if !self.auth.verify(&creds, &req.method, &ha1) {
            self.m.auth_failures.inc();
            match self.throttle.record_failure(now, ip) {
                FailureOutcome::Blocked { until } => {
                    self.m.auth_blocks.inc();
                    tracing::warn!(%ip, until, "SIP source blocked after repeated authentication failures");
                    self.reply(req, 403, target);
                }
                FailureOutcome::Counted { failures } => {
                    tracing::info!(%ip, failures, "SIP authentication failed");
                    self.challenge(req, target, false);
                }
            }
            return None;
        }
        // A stale nonce, or a replayed nonce-count, with the right password: ask again
        // with a fresh nonce; not counted as a failure.
        if self.auth.nonce_state(&creds.nonce, now) == NonceState::Stale
            || !self.auth.check_nc(&creds, now)
        {
            self.challenge(req, target, true);
            return None;
        }
        self.throttle.record_success(now, &ip);
        Some(seat)
    }

    fn challenge(&mut self, req: &Request, target: Target, stale: bool) {
        let now = self.now();
        let (code, header) = if req.method == "REGISTER" {
            (401, "WWW-Authenticate")
        } else {
            (407, "Proxy-Authenticate")
        };
        let mut r = sip::response_to(req, code, Some(&self.token(6)));
        for c in self.auth.challenges(now, stale) {
            r.headers.push(header, c);
        }
        self.send_response(req, r, target);
    }

    fn bindings_changed(&mut self) {
        self.m.bindings.set(self.registrar.count() as i64);
        self.reg_watch.send_modify(|g| *g += 1);
    }

    // ---- responses -------------------------------------------------------------------------

    async fn handle_response(&mut self, resp: Response) {
        let branch = resp.branch();
        self.txns.on_response(resp.status, &branch, &resp.cseq().1);
        if let Some(q) = self.qualify.remove(&branch) {
            self.qualified(q, true);
            return;
        }
        if let Some(id) = self.by_sip.get(resp.call_id()).cloned() {
            if self.c2c.contains_key(&id) {
                self.handle_c2c_response(&id, resp).await;
            } else {
                self.handle_call_response(&id, resp).await;
            }
        }
    }

    fn qualified(&mut self, q: QualifyFor, ok: bool) {
        let now = self.now();
        match q {
            QualifyFor::Binding { seat, contact } => {
                if !ok {
                    tracing::info!(seat, contact, "seat contact did not answer OPTIONS");
                }
                if self.registrar.set_reachable(&seat, &contact, ok, now) {
                    self.bindings_changed();
                }
            }
            QualifyFor::Peer { name } => {
                self.m.peer_up.with(&[("peer", &name)]).set(i64::from(ok));
                if self.peer_up.insert(name.clone(), ok) != Some(ok) && !ok {
                    tracing::warn!(peer = %name, "trunk peer did not answer OPTIONS");
                }
            }
        }
    }

    // ---- commands and timers ---------------------------------------------------------------

    pub(crate) async fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Status(tx) => {
                let _ = tx.send(crate::GatewayStatus {
                    active_calls: self.calls.values().filter(|c| !c.is_ended()).count()
                        + self.c2c.values().filter(|c| !c.is_ended()).count(),
                    trunk_channels_in_use: self.cap.in_use(),
                    registrations: self.registrar.count(),
                });
            }
            Command::Health(tx) => {
                let _ = tx.send(self.health());
            }
            Command::ClickToCall {
                seat,
                number,
                reply,
            } => {
                let r = self.click_to_call(&seat, &number).await;
                let _ = reply.send(r);
            }
            Command::Hangup { call_id, reply } => {
                let known = self.calls.get(&call_id).is_some_and(|c| !c.is_ended())
                    || self.c2c.get(&call_id).is_some_and(|c| !c.is_ended());
                if self.calls.contains_key(&call_id) {
                    self.end_call_everywhere(&call_id, "hangup").await;
                } else {
                    self.end_c2c(&call_id, "hangup").await;
                }
                let _ = reply.send(known);
            }
            Command::App(cmd) => self.handle_app_command(cmd).await,
        }
    }

    pub(crate) async fn handle_timeout(&mut self) {
        let now = self.now();
        let timed_out = self.txns.handle_timeout(now);
        for t in timed_out {
            if !t.branch.is_empty() {
                self.done
                    .push(Done::Client(format!("{}|{}", t.branch, t.method)));
            }
            if let Some(q) = self.qualify.remove(&t.branch) {
                self.qualified(q, false);
            } else if let Some(id) = self.by_sip.get(&t.call_id).cloned() {
                if self.c2c.contains_key(&id) {
                    self.handle_c2c_timeout(&id, &t.method, &t.call_id).await;
                } else {
                    self.handle_call_timeout(&id, &t.method).await;
                }
            }
        }
        self.check_call_timers(now).await;
        self.check_c2c_timers(now).await;
        if now >= self.next_purge_at {
            self.next_purge_at = now + 60_000;
            if !self.registrar.expire(now).is_empty() {
                self.bindings_changed();
            }
            if let Err(e) = store::purge_expired_bindings(&self.pool, now).await {
                tracing::warn!(error = %e, "purging expired bindings failed");
            }
        }
        if self.cfg.qualify_interval_secs > 0 && now >= self.next_qualify_at {
            let every = i64::try_from(self.cfg.qualify_interval_secs).unwrap_or(3600) * 1000;
            self.next_qualify_at = now + every;
            self.send_qualifies(now);
        }
    }

    fn health(&self) -> crate::GatewayHealth {
        let now = self.now();
        let peers = self
            .cfg
            .trunk
            .peers
            .iter()
            .filter(|p| p.port.is_some())
            .map(|p| crate::PeerHealth {
                name: p.name.clone(),
                up: self.peer_up.get(&p.name).copied(),
            })
            .collect();
        let mut seats: Vec<String> = self.registrar.all().map(|b| b.seat.clone()).collect();
        seats.sort();
        seats.dedup();
        let seats = seats
            .into_iter()
            .map(|seat| crate::SeatHealth {
                reachable: !self.registrar.reachable_contacts(&seat, now).is_empty(),
                seat,
            })
            .collect();
        crate::GatewayHealth { peers, seats }
    }

    /// OPTIONS to every registered contact and every trunk peer with a port (RFC 3261 §11).
    fn send_qualifies(&mut self, now: UnixMillis) {
        let mut jobs: Vec<(QualifyFor, String, Target)> = Vec::new();
        for b in self.registrar.all() {
            let Ok(addr) = b.source.parse::<SocketAddr>() else {
                continue;
            };
            jobs.push((
                QualifyFor::Binding {
                    seat: b.seat.clone(),
                    contact: b.contact.clone(),
                },
                b.contact.clone(),
                Target {
                    transport: Transport::parse(&b.transport),
                    addr,
                },
            ));
        }
        for p in &self.cfg.trunk.peers {
            let (Some(port), Some(net)) = (p.port, crate::policy::parse_net(&p.address)) else {
                continue;
            };
            if net.prefix_len() != net.max_prefix_len() {
                continue; // a block, not one host
            }
            let addr = SocketAddr::new(net.addr(), port);
            jobs.push((
                QualifyFor::Peer {
                    name: p.name.clone(),
                },
                format!("sip:{addr}"),
                Target {
                    transport: Transport::Udp,
                    addr,
                },
            ));
        }
        for (what, uri, target) in jobs {
            let branch = self.new_branch();
            let call_id = format!("{}@{}", self.token(10), self.public_ip);
            let mut r = Request {
                method: "OPTIONS".into(),
                uri: uri.clone(),
                headers: sip::Headers::default(),
                body: Vec::new(),
            };
            r.headers.push("Via", self.via(target.transport, &branch));
            r.headers.push("Max-Forwards", "70");
            r.headers.push(
                "From",
                format!("<sip:hotline@{}>;tag={}", self.host_port(), self.token(6)),
            );
            r.headers.push("To", format!("<{uri}>"));
            r.headers.push("Call-ID", call_id.clone());
            r.headers.push("CSeq", "1 OPTIONS");
            let tx =
                self.txns
                    .send_request(now, &branch, &call_id, "OPTIONS", r.to_bytes(), target);
            self.out.push(tx);
            self.qualify.insert(branch, what);
        }
    }

    /// Ends every call (shutdown): BYE both legs, CDRs closed with cause `shutdown`.
    pub(crate) async fn shutdown(&mut self) {
        let ids: Vec<String> = self.calls.keys().cloned().collect();
        for id in ids {
            self.end_call_everywhere(&id, "shutdown").await;
        }
        let ids: Vec<String> = self.c2c.keys().cloned().collect();
        for id in ids {
            self.end_c2c(&id, "shutdown").await;
        }
    }
}
