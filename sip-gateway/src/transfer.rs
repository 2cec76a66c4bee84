//! Blind transfer by REFER from a seat (RFC 3515; call flow of RFC 5589 §6.1): the seat's
//! REFER is accepted with 202, the target (another registered seat, or an external number
//! that matches the outbound allow-list, over the trunk) is called on a new UAC leg with our
//! own SDP, the seat is told the progress by NOTIFY with a `message/sipfrag` body, and on
//! answer the caller's leg is re-bridged to the new leg. The caller never sees a re-INVITE:
//! media stays anchored on the same port towards the trunk.

use std::net::SocketAddr;
use std::sync::Arc;

use hotline_core::UnixMillis;
use hotline_core::events::{CallEvent, Event};

use crate::call::State;
use crate::config::is_seat_number;
use crate::dialog::Dialog;
use crate::engine::Engine;
use crate::outbound::{C2cState, UacLeg};
use crate::policy::outbound_allowed;
use crate::rtp::{LegMedia, bind_rtp};
use crate::sdp;
use crate::sip::{self, NameAddr, Request, Response};
use crate::store;
use crate::transaction::{DialogOp, Target, Transmit, Transport};

/// A REFER that passed the checks: where the new leg goes.
#[derive(Debug)]
struct Accepted {
    dest: String,
    leg_target: Target,
    ruri: String,
    external: bool,
    rtp: (Arc<tokio::net::UdpSocket>, u16),
}

/// A transfer in progress.
#[derive(Debug)]
pub(crate) struct Transfer {
    pub(crate) leg: UacLeg,
    pub(crate) target: String,
}

impl Engine {
    pub(crate) async fn handle_refer(&mut self, req: &Request, target: Target) {
        let now = self.now();
        let Some(id) = self.by_sip.get(req.call_id()).cloned() else {
            self.reply(req, 481, target);
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            if self.c2c.contains_key(&id) {
                self.handle_c2c_refer(&id, req, target);
            } else {
                self.reply(req, 481, target);
            }
            return;
        };
        // Only the seat may transfer, and only an answered call.
        if call.state != State::Answered || req.call_id() != call.b.call_id {
            self.reply(req, 403, target);
            return;
        }
        if call.transfer.is_some() {
            self.reply(req, 491, target);
            return;
        }
        let caller = call.record.caller.clone();
        let Some(a) = self.accept_refer(req, target, now) else {
            return;
        };
        self.send_refer_notify(&id, "SIP/2.0 100 Trying", false);
        let (dest, external) = (a.dest.clone(), a.external);
        let leg = self.send_transfer_invite(now, &caller, a);
        self.by_sip.insert(leg.d.call_id.clone(), id.clone());
        if let Some(call) = self.calls.get_mut(&id) {
            call.transfer = Some(Transfer {
                leg,
                target: dest.clone(),
            });
            call.extra_channel = external;
        }
        tracing::info!(call = %id, target = %dest, "blind transfer started");
    }

    /// Where a REFER's target is called: a reachable registered seat, or an allow-listed
    /// number over the trunk (third: whether it goes over the trunk). None: refused.
    fn refer_destination(&self, dest: &str, now: UnixMillis) -> Option<(Target, String, bool)> {
        let seat_binding = is_seat_number(dest)
            .then(|| {
                self.registrar
                    .reachable_contacts(dest, now)
                    .into_iter()
                    .find_map(|b| {
                        let addr: SocketAddr = b.source.parse().ok()?;
                        Some((
                            Target {
                                transport: Transport::parse(&b.transport),
                                addr,
                            },
                            b.contact,
                        ))
                    })
            })
            .flatten();
        match seat_binding {
            Some((t, contact)) => Some((t, contact, false)),
            None => match self.outbound_peer() {
                Some((_, peer)) if outbound_allowed(&self.cfg.trunk.outbound_allow, dest) => {
                    Some((peer, format!("sip:{dest}@{}", peer.addr), true))
                }
                _ => None,
            },
        }
    }

    /// The checks of a REFER from a seat, then 202 (RFC 3515 §2.4.2; NOTIFYs with the new
    /// call's progress follow): its Refer-To (400), the target (403 unless a reachable seat
    /// or an allowed number: the toll-fraud guard), a trunk channel when it goes out (503)
    /// and an RTP port (503). None: refused, the answer sent.
    fn accept_refer(&mut self, req: &Request, target: Target, now: UnixMillis) -> Option<Accepted> {
        let Some(dest) = refer_to(req) else {
            self.reply(req, 400, target);
            return None;
        };
        let Some((leg_target, ruri, external)) = self.refer_destination(&dest, now) else {
            self.reply(req, 403, target);
            return None;
        };
        if external && !self.cap.try_acquire() {
            self.reply(req, 503, target);
            return None;
        }
        let Some((sock, port)) = bind_rtp(&mut self.ports, self.cfg.listen.ip()) else {
            if external {
                self.cap.release();
            }
            self.reply(req, 503, target);
            return None;
        };
        self.m.channels_in_use.set(i64::from(self.cap.in_use()));
        let r = sip::response_to(req, 202, None);
        self.send_response(req, r, target);
        Some(Accepted {
            dest,
            leg_target,
            ruri,
            external,
            rtp: (Arc::new(sock), port),
        })
    }

    /// The INVITE of a transfer's new leg, shown to the target as coming from `caller`.
    fn send_transfer_invite(&mut self, now: UnixMillis, caller: &str, a: Accepted) -> UacLeg {
        let from = format!(
            "<sip:{}@{}>;tag={}",
            if caller.is_empty() {
                "anonymous"
            } else {
                caller
            },
            self.host_port(),
            self.token(6)
        );
        let to = if a.external {
            format!("<{}>", a.ruri)
        } else {
            format!("<sip:{}@{}>", a.dest, self.host_port())
        };
        let call_id = format!("{}@{}", self.token(12), self.public_ip);
        self.send_uac_invite(now, a.leg_target, a.ruri, from, to, call_id, a.rtp)
    }

    /// NOTIFY in the seat's dialog with the transfer's progress (RFC 3515 §2.4.4).
    fn send_refer_notify(&mut self, id: &str, frag: &str, terminated: bool) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.b_gone {
            return;
        }
        let d = call.b.clone();
        self.send_notify_in(&d, frag, terminated);
    }

    /// The same NOTIFY in the agent's leg of a click-to-call.
    fn send_c2c_refer_notify(&mut self, id: &str, frag: &str, terminated: bool) {
        let Some(call) = self.c2c.get_mut(id) else {
            return;
        };
        let d = call.seat.d.clone();
        self.send_notify_in(&d, frag, terminated);
    }

    /// Sends a `refer` NOTIFY in the dialog of leg `d` (RFC 3515 §2.4.4); the dialog sends
    /// it once the REFER's 202 has left.
    fn send_notify_in(&mut self, d: &Dialog, frag: &str, terminated: bool) {
        let state = if terminated {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        let op = DialogOp::Request {
            call_id: d.call_id.clone(),
            method: "NOTIFY".into(),
            headers: vec![
                ("Event".into(), "refer".into()),
                ("Subscription-State".into(), state.into()),
                ("Content-Type".into(), "message/sipfrag;version=2.0".into()),
            ],
            body: format!("{frag}\r\n").into_bytes(),
        };
        self.out.push(Transmit::dialog(op, d.target));
    }

    /// The caller hung up during a transfer: cancel the new leg.
    pub(crate) fn abandon_transfer(&mut self, id: &str) {
        let unanswered = self
            .calls
            .get(id)
            .and_then(|c| c.transfer.as_ref())
            .filter(|t| !t.leg.final_)
            .map(|t| t.leg.d.clone());
        if let Some(d) = unanswered {
            self.cancel_in(&d);
        }
    }

    pub(crate) async fn handle_transfer_response(&mut self, id: &str, resp: Response) {
        let now = self.now();
        let Some(mut t) = self.calls.get_mut(id).and_then(|c| c.transfer.take()) else {
            return;
        };
        let put_back = |e: &mut Engine, t: Transfer| {
            if let Some(c) = e.calls.get_mut(id) {
                c.transfer = Some(t);
            }
        };
        let Some(outcome) = self.transfer_leg_final(&mut t, &resp) else {
            put_back(self, t);
            return;
        };
        let status = match outcome {
            Ok(media) => return self.complete_transfer(id, t, media, now).await,
            Err(status) => status,
        };
        // Failed (or answered without usable SDP): tell the seat, keep or end the call.
        let frag = format!("SIP/2.0 {status} {}", sip::reason_phrase(status));
        self.send_refer_notify(id, &frag, true);
        self.ports.release(t.leg.rtp.1);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if std::mem::take(&mut call.extra_channel) {
            self.cap.release();
            self.m.channels_in_use.set(i64::from(self.cap.in_use()));
        }
        let b_gone = call.b_gone;
        tracing::info!(call = %id, status, "blind transfer failed");
        if b_gone {
            self.send_bye(id, true);
            self.finish(id, "transfer_failed", "system").await;
        }
    }

    /// A response on a transfer's new leg (inbound calls and click-to-calls alike). None: a
    /// provisional answer or a retransmitted final one (ACKed again, RFC 3261 §13.2.2.4 and
    /// §17.1.1.2), nothing to do. Some(Ok): answered with usable SDP, ACKed. Some(Err(status)):
    /// the transfer failed (a 2xx without usable SDP is ACKed and hung up).
    fn transfer_leg_final(
        &mut self,
        t: &mut Transfer,
        resp: &Response,
    ) -> Option<Result<(LegMedia, SocketAddr), u16>> {
        if resp.status < 200 {
            return None;
        }
        if t.leg.final_ {
            // A retransmitted 2xx: the new leg's dialog ACKs it again (RFC 6026 §7.2).
            return None;
        }
        t.leg.final_ = true;
        if resp.status < 300 {
            // Its ACK is the new leg's dialog's (RFC 3261 §13.2.2.4).
            t.leg.d.confirm(resp);
        }
        let media = (resp.status < 300)
            .then(|| sdp::parse(&resp.body))
            .flatten()
            .filter(|s| !s.codecs.is_empty());
        let Some(media) = media else {
            if resp.status < 300 {
                self.bye_in(&t.leg.d);
            }
            return Some(Err(resp.status));
        };
        Some(Ok((
            LegMedia {
                codec: media.codecs[0],
                te: media.telephone_event,
            },
            media.addr,
        )))
    }

    /// The transfer's new leg answered with `media`: the caller is re-bridged to it.
    async fn complete_transfer(
        &mut self,
        id: &str,
        t: Transfer,
        (b_media, b_addr): (LegMedia, SocketAddr),
        now: UnixMillis,
    ) {
        self.send_refer_notify(id, "SIP/2.0 200 OK", true);
        let b_gone = self.calls.get(id).is_some_and(|c| c.b_gone);
        if !b_gone {
            self.send_bye(id, false);
        }
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if let Some(c) = call.relay.take() {
            c.cancel();
        }
        let old_port = call.rtp_b.1;
        let Some(sock_a) = call.rtp_a.0.clone() else {
            // The call ended meanwhile (its sockets are gone).
            return;
        };
        let (remote_a, a_media, stats) = (call.a_offer.addr, call.a_media, call.stats.clone());
        let sock_b = t.leg.rtp.0.clone();
        call.b = t.leg.d.clone();
        call.b_branch = t.leg.branch.clone();
        call.b_media = Some(b_media);
        call.b_final = true;
        call.rtp_b = (Some(t.leg.rtp.0.clone()), t.leg.rtp.1);
        call.b_gone = false;
        call.record.b_call_id = Some(t.leg.d.call_id.clone());
        call.record.b_codec = Some(b_media.codec.name().into());
        call.record.transferred_to = Some(t.target.clone());
        let record = call.record.clone();
        let (tap, origin) = (call.tap.clone(), call.record.answered_at.unwrap_or(now));
        self.ports.release(old_port);
        let cancel = self.start_relay(
            id,
            (sock_a, remote_a, a_media),
            (sock_b, b_addr, b_media),
            stats,
            // The same recording goes on, at the call's media positions.
            (tap, origin),
        );
        if let Some(call) = self.calls.get_mut(id) {
            call.relay = Some(cancel);
        }
        if let Err(e) = store::save_call(&self.pool, &record).await {
            tracing::error!(error = %e, "updating the call record failed");
        }
        self.events.publish(Event::Call(CallEvent::Transferred {
            at: now,
            call_id: id.to_string(),
            target: t.target.clone(),
        }));
        tracing::info!(call = %id, target = %t.target, "blind transfer completed");
    }

    /// REFER from the agent's seat in an answered click-to-call: the customer is handed to
    /// another seat or an allow-listed number, as for inbound calls (RFC 5589 §6.1).
    fn handle_c2c_refer(&mut self, id: &str, req: &Request, target: Target) {
        let now = self.now();
        let Some(call) = self.c2c.get(id) else {
            self.reply(req, 481, target);
            return;
        };
        // Only the agent's leg transfers, and only once the customer is on the line.
        if call.state != C2cState::Answered || req.call_id() != call.seat.d.call_id {
            self.reply(req, 403, target);
            return;
        }
        if call.transfer.is_some() {
            self.reply(req, 491, target);
            return;
        }
        let customer = call.number.clone();
        let Some(a) = self.accept_refer(req, target, now) else {
            return;
        };
        self.send_c2c_refer_notify(id, "SIP/2.0 100 Trying", false);
        // The target's phone shows the customer's number.
        let (dest, external) = (a.dest.clone(), a.external);
        let leg = self.send_transfer_invite(now, &customer, a);
        self.by_sip.insert(leg.d.call_id.clone(), id.to_string());
        if let Some(call) = self.c2c.get_mut(id) {
            call.transfer = Some(Transfer {
                leg,
                target: dest.clone(),
            });
            call.extra_channel = external;
        }
        tracing::info!(call = %id, target = %dest, "click-to-call: blind transfer started");
    }

    /// A final answer on a click-to-call transfer's new leg: on 2xx with SDP the customer is
    /// re-bridged to it and the agent's old leg hung up; otherwise the transfer fails and the
    /// agent keeps the customer.
    pub(crate) async fn handle_c2c_transfer_response(&mut self, id: &str, resp: Response) {
        let now = self.now();
        let Some(mut t) = self.c2c.get_mut(id).and_then(|c| c.transfer.take()) else {
            return;
        };
        let Some(outcome) = self.transfer_leg_final(&mut t, &resp) else {
            if let Some(c) = self.c2c.get_mut(id) {
                c.transfer = Some(t);
            }
            return;
        };
        let (b_media, b_addr) = match outcome {
            Ok(media) => media,
            Err(status) => {
                if let Some(c) = self.c2c.get_mut(id) {
                    c.transfer = Some(t);
                }
                self.fail_c2c_transfer(id, status).await;
                return;
            }
        };
        t.leg.media = Some((b_media, b_addr));
        self.send_c2c_refer_notify(id, "SIP/2.0 200 OK", true);
        let Some(mut call) = self.c2c.remove(id) else {
            return;
        };
        if let Some(c) = call.relay.take() {
            c.cancel();
        }
        let target = t.target.clone();
        let old = std::mem::replace(&mut call.seat, t.leg);
        call.retired.push(old.d.call_id.clone());
        // The transferor's leg ends (we hang it up; it may hang up too).
        self.bye_in(&old.d);
        self.ports.release(old.rtp.1);
        call.record.b_call_id = Some(call.seat.d.call_id.clone());
        call.record.b_codec = Some(b_media.codec.name().into());
        call.record.transferred_to = Some(target.clone());
        // The same recording goes on (the tap is the call's, opened at the first relay).
        self.start_c2c_relay(id, &mut call, now);
        let record = call.record.clone();
        self.c2c.insert(id.to_string(), call);
        if let Err(e) = store::save_call(&self.pool, &record).await {
            tracing::error!(error = %e, "updating the call record failed");
        }
        self.events.publish(Event::Call(CallEvent::Transferred {
            at: now,
            call_id: id.to_string(),
            target: target.clone(),
        }));
        tracing::info!(call = %id, %target, "click-to-call: blind transfer completed");
    }

    /// The transfer's new leg failed with `status`: the agent is told (NOTIFY), the extra
    /// channel is given back, the agent keeps the customer.
    pub(crate) async fn fail_c2c_transfer(&mut self, id: &str, status: u16) {
        let frag = format!("SIP/2.0 {status} {}", sip::reason_phrase(status));
        self.send_c2c_refer_notify(id, &frag, true);
        let Some(call) = self.c2c.get_mut(id) else {
            return;
        };
        if let Some(t) = call.transfer.take() {
            self.ports.release(t.leg.rtp.1);
            call.retired.push(t.leg.d.call_id.clone());
        }
        if std::mem::take(&mut call.extra_channel) {
            self.cap.release();
            self.m.channels_in_use.set(i64::from(self.cap.in_use()));
        }
        tracing::info!(call = %id, status, "click-to-call: blind transfer failed");
    }
}

/// The user part of a REFER's Refer-To (a seat number or a phone number).
fn refer_to(req: &Request) -> Option<String> {
    req.headers
        .get("Refer-To")
        .and_then(NameAddr::parse)
        .and_then(|n| n.user())
}
