//! B2BUA calls: an inbound trunk INVITE (leg A, we are its UAS) rings a seat's registered
//! contact (leg B, we are its UAC); on answer the legs are bridged through our RTP relay.
//! Each leg gets our own SDP (RFC 3264 offer/answer), so media is always anchored here.
//!
//! Life of a call: `Ringing` (B INVITE outstanding; CANCEL from A → 487 to A and CANCEL to
//! B, RFC 3261 §9.2) → `Answered` (200 to A sent, relay running; BYE from either side ends
//! both legs, §15.1.2) → `Ended` (kept for 64·T1 to absorb late responses, then dropped).

use std::sync::Arc;

use hotline_core::events::{CallEvent, Event};
use hotline_core::throttle::FailureOutcome;
use hotline_core::{IdGenerator, UnixMillis};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::config::RouteTarget;
use crate::dialog::Dialog;
use crate::engine::{ALLOW, Engine};
use crate::rtp::{Forwarder, LegMedia, RelaySetup, RelayStats, bind_rtp, spawn_relay};
use crate::sdp::{self, Codec, Direction, RemoteAudio};
use crate::sip::{self, Headers, NameAddr, Request, Response, SipUri};
use crate::store::{self, CallRecord};
use crate::transaction::{DialogOp, T64, Target, Transmit, Transport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Ringing,
    Answered,
    Ended,
}

#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) id: String,
    pub(crate) state: State,
    pub(crate) record: CallRecord,
    pub(crate) a_invite: Request,
    pub(crate) a_resp_target: Target,
    pub(crate) a: Dialog,
    pub(crate) a_tag: String,
    pub(crate) a_media: LegMedia,
    pub(crate) a_offer: RemoteAudio,
    pub(crate) b: Dialog,
    pub(crate) b_branch: String,
    pub(crate) b_media: Option<LegMedia>,
    pub(crate) b_final: bool,
    pub(crate) ringing_sent: bool,
    /// Each leg's RTP socket (dropped when the call ends, so that its port can be bound
    /// again at once; the call itself is kept for T64 for retransmissions) and port.
    pub(crate) rtp_a: (Option<Arc<UdpSocket>>, u16),
    pub(crate) rtp_b: (Option<Arc<UdpSocket>>, u16),
    pub(crate) relay: Option<CancellationToken>,
    pub(crate) stats: Arc<RelayStats>,
    pub(crate) ring_deadline: UnixMillis,
    pub(crate) gc_at: Option<UnixMillis>,
    pub(crate) sdp_session: u64,
    pub(crate) sdp_version: u64,
    pub(crate) channel: bool,
    /// A blind transfer in progress (REFER from the seat, RFC 3515).
    pub(crate) transfer: Option<crate::transfer::Transfer>,
    /// The seat leg hung up while its transfer was in progress.
    pub(crate) b_gone: bool,
    /// A second trunk channel taken by a transfer to an external number.
    pub(crate) extra_channel: bool,
    /// RFC 4028 session timer: (interval, when we end the call unless refreshed).
    pub(crate) session: Option<(u32, UnixMillis)>,
    /// Set when the gateway answered the call for the application (IVR, queue, survey).
    pub(crate) app: Option<crate::app::AppLeg>,
    /// The recording tap of a bridged call, kept across relays (a transfer restarts the
    /// relay); finished when the call ends.
    pub(crate) tap: Option<crate::rtp::SharedTap>,
}

impl Call {
    pub(crate) fn is_ended(&self) -> bool {
        self.state == State::Ended
    }
}

/// Seat contacts are asked in the Contact's transport; the request goes to where the
/// REGISTER came from (the NAT binding).
fn binding_target(b: &store::Binding) -> Option<Target> {
    Some(Target {
        transport: crate::transaction::Transport::parse(&b.transport),
        addr: b.source.parse().ok()?,
    })
}

/// The interval a request asks for in Session-Expires (RFC 4028 §4).
pub(crate) fn requested_session_expires(req: &Request) -> Option<u32> {
    let se = req.headers.get("Session-Expires")?;
    se.split(';').next()?.trim().parse().ok()
}

/// RFC 4028 §9: a UAS that supports timers echoes Session-Expires; we let the caller refresh.
/// Returns the interval in force.
pub(crate) fn session_timer_headers(req: &Request, resp: &mut Response) -> Option<u32> {
    let n = requested_session_expires(req)?;
    resp.headers
        .push("Session-Expires", format!("{n};refresher=uac"));
    resp.headers.push("Require", "timer");
    Some(n)
}

/// When we end a session nobody refreshed: RFC 4028 §10, the non-refresher sends BYE
/// min(32, SE/3) seconds before the session expires.
pub(crate) fn session_deadline(now: UnixMillis, interval: u32) -> UnixMillis {
    let margin = (interval / 3).min(32);
    now + i64::from(interval.saturating_sub(margin)) * 1000
}

fn map_seat_failure(status: u16) -> u16 {
    match status {
        486 | 600 => 486,
        603 => 603,
        404 | 408 | 410 | 480 | 503 => 480,
        s if (400..700).contains(&s) => s,
        _ => 480,
    }
}

impl Engine {
    pub(crate) fn reject(&mut self, req: &Request, status: u16, target: Target, reason: &str) {
        self.m.rejected.with(&[("reason", reason)]).inc();
        let mut r = sip::response_to(req, status, Some(&self.token(6)));
        if status == 503 {
            r.headers
                .push("Retry-After", self.cfg.trunk.retry_after_secs.to_string());
        }
        if reason == "overload" {
            // One warning per overload episode (note_queue_delay), not one line per call.
            tracing::debug!(status, reason, call_id = req.call_id(), "INVITE refused");
        } else {
            tracing::info!(status, reason, call_id = req.call_id(), "INVITE refused");
        }
        self.send_response(req, r, target);
    }

    /// Counts a request refused to an address that is neither trunk peer nor seat; past the
    /// flood guard's limit the address is ignored for a while (config `flood`).
    pub(crate) fn refused_stranger(&mut self, now: UnixMillis, ip: std::net::IpAddr) {
        if let FailureOutcome::Blocked { until } = self.strangers.record_failure(now, ip) {
            self.m.flood_blocks.inc();
            tracing::warn!(%ip, until, "SIP source ignored: too many refused requests (flood guard)");
        }
    }

    pub(crate) async fn handle_invite(
        &mut self,
        req: Request,
        transport: Transport,
        source: std::net::SocketAddr,
        target: Target,
    ) {
        let now = self.now();
        // Who calls: a trunk peer (by address), or a seat that proves who it is (407
        // challenge, RFC 3261 §22.3). Everything else gets 403.
        let peer = self.acl.peer_of(source).map(str::to_string);
        let from_seat = match &peer {
            Some(_) => None,
            None if self.registrar.has_source(&source.to_string())
                || req.headers.get("Proxy-Authorization").is_some() =>
            {
                match self.authenticate(&req, source, target, None).await {
                    Some(seat) => Some(seat),
                    None => return,
                }
            }
            None => {
                self.reject(&req, 403, target, "acl");
                self.refused_stranger(now, source.ip());
                return;
            }
        };
        if !self.rate.allow(now, source.ip()) {
            self.reject(&req, 503, target, "rate");
            return;
        }
        if self.overload.shedding() {
            self.reject(&req, 503, target, "overload");
            return;
        }
        let min_se = self.cfg.min_session_expires_secs;
        if requested_session_expires(&req).is_some_and(|se| se < min_se) {
            // RFC 4028 §8.1: too small an interval → 422 with our Min-SE.
            let mut r = sip::response_to(&req, 422, Some(&self.token(6)));
            r.headers.push("Min-SE", min_se.to_string());
            self.send_response(&req, r, target);
            return;
        }
        let did = SipUri::parse(&req.uri)
            .and_then(|u| u.user)
            .or_else(|| req.to().and_then(|t| t.user()))
            .unwrap_or_default();
        // Where it goes: a DID route from the trunk; from a seat, another seat or an
        // allow-listed number over the trunk.
        let dest_seat = match (&from_seat, self.routes.get(&did).cloned()) {
            (_, Some(RouteTarget::Seat(s))) => Some(s),
            (None, Some(RouteTarget::Ivr)) => {
                if self.app.is_none() {
                    // No application is attached (a gateway started on its own).
                    self.reject(&req, 480, target, "route");
                    return;
                }
                let Some(offer) = sdp::parse(&req.body).filter(|o| !o.codecs.is_empty()) else {
                    self.reject(&req, 488, target, "codec");
                    return;
                };
                let trying = sip::response_to(&req, 100, None);
                self.send_response(&req, trying, target);
                self.answer_app_call(req, (transport, source, target), peer, did, offer)
                    .await;
                return;
            }
            (None, None) => {
                self.reject(&req, 404, target, "route");
                return;
            }
            (Some(_), _) if store::seat_exists(&self.pool, &did).await.unwrap_or(false) => {
                Some(did.clone())
            }
            (Some(_), _) => None,
        };
        let outbound = match (&dest_seat, self.outbound_peer()) {
            (Some(_), _) => None,
            (None, Some((name, t)))
                if crate::policy::outbound_allowed(&self.cfg.trunk.outbound_allow, &did) =>
            {
                Some((name, t))
            }
            (None, _) => {
                // Toll-fraud guard: only allow-listed numbers leave over the trunk.
                self.reject(&req, 403, target, "not_allowed");
                return;
            }
        };
        let offer = match sdp::parse(&req.body) {
            Some(o) if !o.codecs.is_empty() => o,
            _ => {
                self.reject(&req, 488, target, "codec");
                return;
            }
        };
        let (b_uri, b_target, b_to) = match (&dest_seat, &outbound) {
            (Some(seat), _) => {
                let contacts = self.registrar.reachable_contacts(seat, now);
                let Some((binding, b_target)) = contacts
                    .iter()
                    .find_map(|b| Some((b.clone(), binding_target(b)?)))
                else {
                    self.reject(&req, 480, target, "unavailable");
                    return;
                };
                (
                    binding.contact,
                    b_target,
                    format!("<sip:{seat}@{}>", self.host_port()),
                )
            }
            (None, Some((_, t))) => {
                let uri = format!("sip:{did}@{}", t.addr);
                (uri.clone(), *t, format!("<{uri}>"))
            }
            (None, None) => return,
        };
        let trunk_name = peer
            .clone()
            .or_else(|| outbound.as_ref().map(|o| o.0.clone()));
        let uses_channel = trunk_name.is_some();
        if uses_channel && !self.cap.try_acquire() {
            self.reject(&req, 503, target, "channels");
            return;
        }
        let ip = self.cfg.listen.ip();
        let Some((sock_a, port_a)) = bind_rtp(&mut self.ports, ip) else {
            if uses_channel {
                self.cap.release();
            }
            self.reject(&req, 503, target, "rtp_ports");
            return;
        };
        let Some((sock_b, port_b)) = bind_rtp(&mut self.ports, ip) else {
            self.ports.release(port_a);
            if uses_channel {
                self.cap.release();
            }
            self.reject(&req, 503, target, "rtp_ports");
            return;
        };
        self.m.channels_in_use.set(i64::from(self.cap.in_use()));
        // 100 Trying at once (RFC 3261 §8.2.6.1), so the trunk stops retransmitting.
        let trying = sip::response_to(&req, 100, None);
        self.send_response(&req, trying, target);

        let id = IdGenerator::new_id(now, self.rng.as_ref());
        let a_tag = self.token(6);
        let from = req.from();
        let caller = from.as_ref().and_then(NameAddr::user).unwrap_or_default();
        let a = Dialog::uas(&req, &a_tag, transport, source);
        let a_codec = offer.codecs[0];
        let a_media = LegMedia {
            codec: a_codec,
            te: offer.telephone_event,
        };
        let sdp_session = u64::from_str_radix(&self.token(4), 16).unwrap_or(1);
        let display = from
            .as_ref()
            .and_then(|f| f.display.clone())
            .map(|d| format!("\"{}\" ", d.replace(['"', '\\'], "")))
            .unwrap_or_default();
        let user = if outbound.is_some() && !self.cfg.trunk.caller_id.is_empty() {
            // Over the trunk the hotline number is the caller ID.
            self.cfg.trunk.caller_id.clone()
        } else if caller.is_empty() {
            "anonymous".to_string()
        } else {
            caller.clone()
        };
        let display = if outbound.is_some() {
            String::new()
        } else {
            display
        };
        let b_from = format!("{display}<sip:{user}@{}>", self.host_port());
        let b_remote = b_to;
        let (b_branch, b_call_id, b_local) = self.send_b_invite(
            now,
            &b_uri,
            b_target,
            &b_from,
            &b_remote,
            (sdp_session, port_b),
            a_codec,
        );

        let record = CallRecord {
            id: id.clone(),
            direction: match (&from_seat, &outbound) {
                (None, _) => "inbound",
                (Some(_), None) => "internal",
                (Some(_), Some(_)) => "outbound",
            }
            .into(),
            caller: from_seat.clone().unwrap_or_else(|| caller.clone()),
            callee: did.clone(),
            trunk: trunk_name.clone(),
            seat: dest_seat.clone().or_else(|| from_seat.clone()),
            a_call_id: a.call_id.clone(),
            b_call_id: Some(b_call_id.clone()),
            offered_at: now,
            a_codec: Some(a_codec.name().into()),
            ..CallRecord::default()
        };
        store::save_call_durably(&self.pool, self.writes.as_ref(), record.clone()).await;
        self.events.publish(Event::Call(CallEvent::Offered {
            at: now,
            call_id: id.clone(),
            from: caller,
            to: did,
            source: peer
                .clone()
                .or_else(|| from_seat.as_ref().map(|s| format!("seat:{s}")))
                .unwrap_or_default(),
        }));
        tracing::info!(call = %id, to = %b_uri, "calling the B leg");
        let ring_ms = i64::try_from(self.cfg.ring_timeout_secs).unwrap_or(60) * 1000;
        let call = Call {
            id: id.clone(),
            state: State::Ringing,
            record,
            a_invite: req,
            a_resp_target: target,
            a,
            a_tag,
            a_media,
            a_offer: offer,
            b: Dialog::uac(b_call_id.clone(), b_local, b_remote, b_target),
            b_branch,
            b_media: None,
            b_final: false,
            ringing_sent: false,
            rtp_a: (Some(Arc::new(sock_a)), port_a),
            rtp_b: (Some(Arc::new(sock_b)), port_b),
            relay: None,
            stats: Arc::new(RelayStats::default()),
            ring_deadline: now + ring_ms,
            gc_at: None,
            sdp_session,
            sdp_version: 1,
            channel: uses_channel,
            transfer: None,
            b_gone: false,
            extra_channel: false,
            session: None,
            app: None,
            tap: None,
        };
        self.by_sip.insert(call.a.call_id.clone(), id.clone());
        self.by_sip.insert(b_call_id, id.clone());
        self.calls.insert(id, call);
        self.m.active_calls.inc();
    }

    /// Sends leg B's INVITE (we are its UAC) offering the caller's codec first, so no
    /// transcoding is needed when the seat can; returns its branch, the new Call-ID and our
    /// From value with its tag. (The INVITE itself is kept by the leg's dialog.)
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_b_invite(
        &mut self,
        now: UnixMillis,
        b_uri: &str,
        b_target: Target,
        from: &str,
        to: &str,
        (sdp_session, port_b): (u64, u16),
        a_codec: Codec,
    ) -> (String, String, String) {
        let b_codecs = match a_codec {
            Codec::Pcma => [Codec::Pcma, Codec::Pcmu],
            Codec::Pcmu => [Codec::Pcmu, Codec::Pcma],
        };
        let b_sdp = sdp::build(
            sdp_session,
            1,
            self.public_ip,
            port_b,
            &b_codecs,
            Some(sdp::OUR_TE),
            Direction::SendRecv,
        );
        let b_branch = self.new_branch();
        let b_call_id = format!("{}@{}", self.token(12), self.public_ip);
        let b_local = format!("{from};tag={}", self.token(6));
        let mut inv = Request {
            method: "INVITE".into(),
            uri: b_uri.to_string(),
            headers: Headers::default(),
            body: b_sdp,
        };
        inv.headers
            .push("Via", self.via(b_target.transport, &b_branch));
        inv.headers.push("Max-Forwards", "70");
        inv.headers.push("From", b_local.clone());
        inv.headers.push("To", to.to_string());
        inv.headers.push("Call-ID", b_call_id.clone());
        inv.headers.push("CSeq", "1 INVITE");
        inv.headers
            .push("Contact", self.contact(b_target.transport));
        inv.headers.push("Allow", ALLOW);
        inv.headers.push("Content-Type", "application/sdp");
        let tx = self.txns.send_request(
            now,
            &b_branch,
            &b_call_id,
            "INVITE",
            inv.to_bytes(),
            b_target,
        );
        self.out.push(tx);
        (b_branch, b_call_id, b_local)
    }

    /// A response to the INVITE (or another request) we sent on leg B.
    pub(crate) async fn handle_call_response(&mut self, id: &str, resp: Response) {
        let now = self.now();
        let (_, method) = resp.cseq();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call
            .transfer
            .as_ref()
            .is_some_and(|t| t.leg.d.call_id == resp.call_id())
        {
            if method == "INVITE" {
                self.handle_transfer_response(id, resp).await;
            }
            return;
        }
        if resp.call_id() != call.b.call_id || method != "INVITE" {
            return; // responses to our BYE/CANCEL/NOTIFY need no action
        }
        if call.app.is_some() {
            self.handle_app_b_response(id, resp).await;
            return;
        }
        if resp.status < 200 {
            if resp.status > 100 && call.state == State::Ringing && !call.ringing_sent {
                call.ringing_sent = true;
                let r = sip::response_to(&call.a_invite, 180, Some(&call.a_tag));
                let (req, t) = (call.a_invite.clone(), call.a_resp_target);
                self.send_response(&req, r, t);
            }
            return;
        }
        if resp.status >= 300 {
            // rsipstack's INVITE transaction ACKs it (RFC 3261 §17.1.1.3).
            if call.b_final {
                return;
            }
            call.b_final = true;
            call.record.b_final_code = Some(resp.status);
            if call.state == State::Ringing {
                let code = map_seat_failure(resp.status);
                let r = sip::response_to(&call.a_invite, code, Some(&call.a_tag));
                let (req, t) = (call.a_invite.clone(), call.a_resp_target);
                call.record.a_final_code = Some(code);
                self.send_response(&req, r, t);
                let cause = if code == 486 || code == 603 {
                    "rejected"
                } else {
                    "unavailable"
                };
                self.finish(id, cause, "callee").await;
            }
            return;
        }
        // 2xx. Its ACK, and the ACK of each retransmission, is the seat leg's dialog's
        // (rsipstack, RFC 3261 §13.2.2.4, RFC 6026 §7.2).
        if call.b_final {
            return;
        }
        call.b_final = true;
        call.record.b_final_code = Some(resp.status);
        call.b.confirm(&resp);
        if call.state == State::Ended {
            // CANCEL crossed the 2xx (RFC 3261 §9.1): confirm, then hang up.
            self.send_bye(id, false);
            return;
        }
        let answer = sdp::parse(&resp.body).filter(|s| !s.codecs.is_empty());
        let Some(answer) = answer else {
            tracing::warn!(call = %id, "seat answered without usable SDP");
            self.send_bye(id, false);
            if let Some(call) = self.calls.get_mut(id) {
                let r = sip::response_to(&call.a_invite, 488, Some(&call.a_tag));
                call.record.a_final_code = Some(488);
                let (req, t) = (call.a_invite.clone(), call.a_resp_target);
                self.send_response(&req, r, t);
            }
            self.finish(id, "failed", "system").await;
            return;
        };
        let a_contact = self.contact(
            self.calls
                .get(id)
                .map_or(Transport::Udp, |c| c.a.target.transport),
        );
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let b_media = LegMedia {
            codec: answer.codecs[0],
            te: answer.telephone_event,
        };
        call.b_media = Some(b_media);
        call.record.b_codec = Some(b_media.codec.name().into());
        call.state = State::Answered;
        call.record.answered_at = Some(now);
        call.record.bridged_at = Some(now);
        call.record.a_final_code = Some(200);
        // Our answer to the caller: its first codec, telephone-event if it offered one.
        let body = sdp::build(
            call.sdp_session,
            call.sdp_version,
            self.public_ip,
            call.rtp_a.1,
            &[call.a_media.codec],
            call.a_media.te,
            call.a_offer.direction.answer(),
        );
        let mut r = sip::response_to(&call.a_invite, 200, Some(&call.a_tag));
        r.headers.push("Contact", a_contact);
        r.headers.push("Allow", ALLOW);
        r.headers.push("Content-Type", "application/sdp");
        call.session =
            session_timer_headers(&call.a_invite, &mut r).map(|n| (n, session_deadline(now, n)));
        r.body = body;
        let (req, t) = (call.a_invite.clone(), call.a_resp_target);
        // The relay: leg A faces the caller, leg B the seat.
        let (Some(sock_a), Some(sock_b)) = (call.rtp_a.0.clone(), call.rtp_b.0.clone()) else {
            // Only an ended call has given its sockets back.
            return;
        };
        let (a_media, stats) = (call.a_media, call.stats.clone());
        let remote_a = call.a_offer.addr;
        let caller = call.record.caller.clone();
        let tap = self
            .open_tap(id, &caller, now)
            .map(|t| Arc::new(std::sync::Mutex::new(Some(t))));
        let cancel = self.start_relay(
            id,
            (sock_a, remote_a, a_media),
            (sock_b, answer.addr, b_media),
            stats,
            (tap.clone(), now),
        );
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        call.relay = Some(cancel);
        call.tap = tap;
        let record = call.record.clone();
        let seat = record.seat.clone().unwrap_or_default();
        self.send_response(&req, r, t);
        store::save_call_durably(&self.pool, self.writes.as_ref(), record.clone()).await;
        self.events.publish(Event::Call(CallEvent::Answered {
            at: now,
            call_id: id.to_string(),
        }));
        self.events.publish(Event::Call(CallEvent::Bridged {
            at: now,
            call_id: id.to_string(),
            seat,
        }));
        tracing::info!(call = %id, "call answered and bridged");
    }

    /// Starts the relay between leg A (`a`: socket, remote, media) and leg B.
    pub(crate) fn start_relay(
        &mut self,
        id: &str,
        a: (Arc<UdpSocket>, std::net::SocketAddr, LegMedia),
        b: (Arc<UdpSocket>, std::net::SocketAddr, LegMedia),
        stats: Arc<RelayStats>,
        (tap, origin): (Option<crate::rtp::SharedTap>, UnixMillis),
    ) -> CancellationToken {
        let mut seed = [0u8; 12];
        self.rng.fill(&mut seed);
        let word = |i: usize| u32::from_be_bytes([seed[i], seed[i + 1], seed[i + 2], seed[i + 3]]);
        let cancel = CancellationToken::new();
        spawn_relay(RelaySetup {
            sock_a: a.0,
            sock_b: b.0,
            remote_a: a.1,
            remote_b: b.1,
            a_to_b: Forwarder::new(a.2, b.2, word(0), seed[8].into(), word(4)),
            b_to_a: Forwarder::new(b.2, a.2, word(4) ^ word(0), seed[9].into(), word(8)),
            call_id: id.to_string(),
            events: self.events.clone(),
            clock: self.clock.clone(),
            stats,
            metric_a_to_b: self.m.rtp_caller_to_seat.clone(),
            metric_b_to_a: self.m.rtp_seat_to_caller.clone(),
            cancel: cancel.clone(),
            tap,
            origin,
            finish_tap: false,
        });
        cancel
    }

    pub(crate) async fn handle_ack(&mut self, req: &Request) {
        // The ACK for our 2xx (RFC 3261 §13.3.1.4): the dialog is confirmed (rsipstack's
        // transaction has stopped retransmitting the 2xx).
        self.txns.ack_2xx(req.call_id());
    }

    pub(crate) async fn handle_cancel(&mut self, req: &Request, target: Target) {
        let id = self.by_sip.get(req.call_id()).cloned();
        let Some(call) = id.as_deref().and_then(|id| self.calls.get(id)) else {
            self.reply(req, 481, target);
            return;
        };
        // RFC 3261 §9.2: the CANCEL must match the INVITE's transaction (same branch).
        if call.a.call_id != req.call_id() || call.a_invite.branch() != req.branch() {
            self.reply(req, 481, target);
            return;
        }
        let id = call.id.clone();
        self.reply(req, 200, target);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.state != State::Ringing {
            return;
        }
        let r = sip::response_to(&call.a_invite, 487, Some(&call.a_tag));
        call.record.a_final_code = Some(487);
        let (inv, t) = (call.a_invite.clone(), call.a_resp_target);
        self.send_response(&inv, r, t);
        self.send_cancel_b(&id);
        self.finish(&id, "cancelled", "caller").await;
    }

    /// CANCEL for the B leg's INVITE (RFC 3261 §9.1), sent by its dialog.
    pub(crate) fn send_cancel_b(&mut self, id: &str) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        if call.b_final {
            return;
        }
        let d = call.b.clone();
        self.cancel_in(&d);
    }

    /// BYE on leg A (`to_a`) or leg B, inside that leg's dialog (RFC 3261 §15.1.1).
    pub(crate) fn send_bye(&mut self, id: &str, to_a: bool) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let d = if to_a { call.a.clone() } else { call.b.clone() };
        self.bye_in(&d);
    }

    /// BYE in the dialog of leg `d`: its rsipstack dialog builds and sends it.
    pub(crate) fn bye_in(&mut self, d: &Dialog) {
        let op = DialogOp::Bye {
            call_id: d.call_id.clone(),
        };
        self.out.push(Transmit::dialog(op, d.target));
    }

    /// CANCEL of our INVITE on leg `d` (its dialog waits for a provisional answer first,
    /// RFC 3261 §9.1).
    pub(crate) fn cancel_in(&mut self, d: &Dialog) {
        let op = DialogOp::Cancel {
            call_id: d.call_id.clone(),
        };
        self.out.push(Transmit::dialog(op, d.target));
    }

    pub(crate) async fn handle_bye(&mut self, req: &Request, target: Target) {
        let Some(id) = self.by_sip.get(req.call_id()).cloned() else {
            self.reply(req, 481, target);
            return;
        };
        if self.c2c.contains_key(&id) {
            self.reply(req, 200, target);
            self.handle_c2c_bye(&id, req.call_id()).await;
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            self.reply(req, 481, target);
            return;
        };
        if call.app.is_some() {
            self.handle_app_bye(&id, req, target).await;
            return;
        }
        let from_a = call.a.call_id == req.call_id();
        let from_b = call.b.call_id == req.call_id();
        let state = call.state;
        let transferring = call.transfer.is_some();
        self.reply(req, 200, target);
        if state != State::Answered || !(from_a || from_b) {
            return; // a leg that was already replaced by a transfer
        }
        if from_b && transferring {
            // The transferor leaves after REFER (RFC 5589 §6.1); the caller stays.
            if let Some(call) = self.calls.get_mut(&id) {
                call.b_gone = true;
            }
            return;
        }
        let b_gone = self.calls.get(&id).is_some_and(|c| c.b_gone);
        if from_a {
            self.abandon_transfer(&id);
        }
        if !(from_a && b_gone) {
            self.send_bye(&id, !from_a);
        }
        self.finish(&id, "normal", if from_a { "caller" } else { "callee" })
            .await;
    }

    /// re-INVITE on either leg (hold/unhold, session refresh): answered locally with our SDP
    /// for that leg; media stays anchored, so the other leg needs no renegotiation.
    pub(crate) async fn handle_reinvite(&mut self, req: &Request, target: Target) {
        let now = self.now();
        let Some(id) = self.by_sip.get(req.call_id()).cloned() else {
            self.reply(req, 481, target);
            return;
        };
        let public_ip = self.public_ip;
        if self.c2c.contains_key(&id) {
            self.handle_c2c_reinvite(&id, req, target);
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            self.reply(req, 481, target);
            return;
        };
        if call.state != State::Answered {
            let code = if call.state == State::Ended { 481 } else { 491 };
            self.reply(req, code, target);
            return;
        }
        let on_a = call.a.call_id == req.call_id();
        let offer = sdp::parse(&req.body);
        let dir = offer
            .as_ref()
            .map_or(Direction::SendRecv, |o| o.direction.answer());
        let (media, port) = if on_a {
            (call.a_media, call.rtp_a.1)
        } else {
            (call.b_media.unwrap_or(call.a_media), call.rtp_b.1)
        };
        call.sdp_version += 1;
        let body = sdp::build(
            call.sdp_session,
            call.sdp_version,
            public_ip,
            port,
            &[media.codec],
            media.te,
            dir,
        );
        let tag = if on_a {
            call.a_tag.clone()
        } else {
            String::new()
        };
        let mut r = sip::response_to(req, 200, (!tag.is_empty()).then_some(tag.as_str()));
        r.headers.push("Contact", self.contact(target.transport));
        r.headers.push("Content-Type", "application/sdp");
        if let Some(n) = session_timer_headers(req, &mut r)
            && let Some(call) = self.calls.get_mut(&id)
        {
            call.session = Some((n, session_deadline(now, n)));
        }
        r.body = body;
        self.send_response(req, r, target);
        if offer.is_some() {
            self.events.publish(Event::Call(CallEvent::Held {
                at: now,
                call_id: id,
                on_hold: dir != Direction::SendRecv,
            }));
        }
    }

    /// INFO and UPDATE inside a dialog: 200; SIP INFO DTMF (application/dtmf-relay) is
    /// reported as a DTMF event.
    pub(crate) fn handle_in_dialog_simple(&mut self, req: &Request, target: Target) {
        let Some(id) = self.by_sip.get(req.call_id()).cloned() else {
            self.reply(req, 481, target);
            return;
        };
        if req.method == "INFO"
            && req
                .headers
                .get("Content-Type")
                .is_some_and(|c| c.eq_ignore_ascii_case("application/dtmf-relay"))
        {
            let text = String::from_utf8_lossy(&req.body);
            if let Some(d) = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("Signal="))
                .and_then(|s| s.trim().chars().next())
            {
                self.events.publish(Event::Call(CallEvent::Dtmf {
                    at: self.now(),
                    call_id: id.clone(),
                    digit: d,
                }));
                self.app_info_digit(&id, req.call_id(), d);
            }
        }
        let mut r = sip::response_to(req, 200, None);
        if let Some(n) = session_timer_headers(req, &mut r)
            && let Some(call) = self.calls.get_mut(&id)
        {
            call.session = Some((n, session_deadline(self.clock.now_ms(), n)));
        }
        self.send_response(req, r, target);
    }

    pub(crate) async fn handle_call_timeout(&mut self, id: &str, method: &str) {
        if method == "ACK" {
            // Our 2xx to the caller was never acknowledged (RFC 3261 §13.3.1.4).
            if self
                .calls
                .get(id)
                .is_some_and(|c| c.state == State::Answered)
            {
                self.end_call_everywhere(id, "no_ack").await;
            }
            return;
        }
        if method != "INVITE" {
            return;
        }
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.app.is_some() {
            self.app_b_timed_out(id);
            return;
        }
        if call.state != State::Ringing {
            return;
        }
        // Timer B: the seat never answered (RFC 3261 §17.1.1.2).
        call.b_final = true;
        call.record.b_final_code = Some(408);
        call.record.a_final_code = Some(480);
        let r = sip::response_to(&call.a_invite, 480, Some(&call.a_tag));
        let (req, t) = (call.a_invite.clone(), call.a_resp_target);
        self.send_response(&req, r, t);
        self.finish(id, "unavailable", "system").await;
    }

    pub(crate) async fn check_call_timers(&mut self, now: UnixMillis) {
        let ring_over: Vec<String> = self
            .calls
            .values()
            .filter(|c| c.state == State::Ringing && now >= c.ring_deadline)
            .map(|c| c.id.clone())
            .collect();
        for id in ring_over {
            if let Some(call) = self.calls.get_mut(&id) {
                call.record.a_final_code = Some(480);
                let r = sip::response_to(&call.a_invite, 480, Some(&call.a_tag));
                let (req, t) = (call.a_invite.clone(), call.a_resp_target);
                self.send_response(&req, r, t);
            }
            self.send_cancel_b(&id);
            self.finish(&id, "no_answer", "system").await;
        }
        let expired: Vec<String> = self
            .calls
            .values()
            .filter(|c| c.state == State::Answered && c.session.is_some_and(|(_, d)| now >= d))
            .map(|c| c.id.clone())
            .collect();
        for id in expired {
            tracing::info!(call = %id, "session timer expired without refresh");
            self.end_call_everywhere(&id, "session_expired").await;
        }
        let gone: Vec<String> = self
            .calls
            .values()
            .filter(|c| c.gc_at.is_some_and(|g| now >= g))
            .map(|c| c.id.clone())
            .collect();
        for id in gone {
            if let Some(call) = self.calls.remove(&id) {
                self.by_sip.remove(&call.a.call_id);
                self.by_sip.remove(&call.b.call_id);
                self.txns.cancel_client(&call.b_branch, "INVITE");
            }
        }
    }

    /// Ends a call from our side on both legs (shutdown).
    pub(crate) async fn end_call_everywhere(&mut self, id: &str, cause: &str) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        match call.state {
            State::Ringing => {
                call.record.a_final_code = Some(503);
                let r = sip::response_to(&call.a_invite, 503, Some(&call.a_tag));
                let (req, t) = (call.a_invite.clone(), call.a_resp_target);
                self.send_response(&req, r, t);
                self.send_cancel_b(id);
            }
            State::Answered => {
                let seat = call.app.as_ref().map(|a| a.seat.clone());
                self.send_bye(id, true);
                match seat {
                    None | Some(crate::app::SeatLeg::Bridged(_)) => self.send_bye(id, false),
                    Some(crate::app::SeatLeg::Ringing(_)) => self.send_cancel_b(id),
                    Some(crate::app::SeatLeg::Idle) => {}
                }
            }
            State::Ended => return,
        }
        self.finish(id, cause, "system").await;
    }

    /// Marks the call ended: relay stopped, ports and channel released, CDR closed, event.
    pub(crate) async fn finish(&mut self, id: &str, cause: &str, side: &str) {
        let now = self.now();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.state == State::Ended {
            return;
        }
        call.state = State::Ended;
        call.gc_at = Some(now + T64);
        if let Some(c) = call.relay.take() {
            c.cancel();
        }
        if let Some(t) = call.tap.take() {
            crate::rtp::finish_tap(&t, call.record.answered_at.unwrap_or(now), now);
        }
        call.record.ended_at = Some(now);
        call.record.end_cause = Some(cause.to_string());
        call.record.hangup_side = Some(side.to_string());
        let record = call.record.clone();
        let (pa, pb, channel) = (call.rtp_a.1, call.rtp_b.1, call.channel);
        let extra = std::mem::take(&mut call.extra_channel);
        let pt = call.transfer.take().map(|t| t.leg.rtp.1);
        call.channel = false;
        // The sockets go now, not with the call at T64: at hundreds of calls per second the
        // range wraps within T64, and a port still bound by an ended call cannot be reused.
        call.rtp_a.0 = None;
        call.rtp_b.0 = None;
        self.ports.release(pa);
        self.ports.release(pb);
        if let Some(p) = pt {
            self.ports.release(p);
        }
        for taken in [channel, extra] {
            if taken {
                self.cap.release();
            }
        }
        self.m.channels_in_use.set(i64::from(self.cap.in_use()));
        self.m.active_calls.dec();
        self.m
            .calls
            .with(&[("direction", &record.direction), ("cause", cause)])
            .inc();
        store::save_call_durably(&self.pool, self.writes.as_ref(), record.clone()).await;
        self.events.publish(Event::Call(CallEvent::Ended {
            at: now,
            call_id: id.to_string(),
            cause: cause.to_string(),
        }));
        self.app_finished(id, side);
        tracing::info!(call = %id, cause, side, "call ended");
    }
}
