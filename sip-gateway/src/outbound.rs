//! Click-to-call origination (third-party call control, RFC 3725 flow I simplified): we call
//! the agent's seat first; when it answers we call the customer over the trunk with the
//! hotline number as caller ID; when the customer answers the two legs are bridged through
//! our RTP relay. Both legs are our UAC legs, each with our own SDP offer. The number must
//! match the outbound allow-list (toll-fraud guard) and the call takes a trunk channel.

use std::net::SocketAddr;
use std::sync::Arc;

use hotline_core::events::{CallEvent, Event};
use hotline_core::{IdGenerator, UnixMillis};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::dialog::Dialog;
use crate::engine::{ALLOW, Engine};
use crate::error::GatewayError;
use crate::policy::outbound_allowed;
use crate::rtp::{Forwarder, LegMedia, RelaySetup, RelayStats, bind_rtp, spawn_relay};
use crate::sdp::{self, Codec, Direction};
use crate::sip::{Headers, Request, Response};
use crate::store::{self, CallRecord};
use crate::transaction::{T64, Target, Transport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum C2cState {
    SeatRinging,
    CustomerRinging,
    Answered,
    Ended,
}

/// One UAC leg: the INVITE we sent and what came back.
#[derive(Debug)]
pub(crate) struct UacLeg {
    pub(crate) d: Dialog,
    pub(crate) branch: String,
    pub(crate) media: Option<(LegMedia, SocketAddr)>,
    pub(crate) final_: bool,
    pub(crate) rtp: (Arc<UdpSocket>, u16),
}

#[derive(Debug)]
pub(crate) struct ClickCall {
    pub(crate) id: String,
    pub(crate) state: C2cState,
    pub(crate) record: CallRecord,
    /// The agent's leg: after a blind transfer (REFER), the new seat's or number's leg.
    pub(crate) seat: UacLeg,
    pub(crate) customer: Option<UacLeg>,
    customer_call_id: String,
    customer_rtp: Option<(Arc<UdpSocket>, u16)>,
    pub(crate) number: String,
    peer: Target,
    pub(crate) relay: Option<CancellationToken>,
    pub(crate) stats: Arc<RelayStats>,
    deadline: UnixMillis,
    gc_at: Option<UnixMillis>,
    /// The call's recording, opened with the first relay and finished with the call, so
    /// that a transfer goes on recording into the same file.
    pub(crate) tap: Option<crate::rtp::SharedTap>,
    pub(crate) tap_origin: UnixMillis,
    /// A blind transfer in progress (REFER from the agent's seat).
    pub(crate) transfer: Option<crate::transfer::Transfer>,
    /// The transfer goes over the trunk: it holds a second channel.
    pub(crate) extra_channel: bool,
    /// Call-IDs of legs replaced or abandoned by transfers, forgotten at garbage collection.
    pub(crate) retired: Vec<String>,
}

impl ClickCall {
    pub(crate) fn is_ended(&self) -> bool {
        self.state == C2cState::Ended
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegSide {
    Seat,
    Customer,
}

impl Engine {
    /// The trunk peer outbound calls go to: the first peer that is one host with a port.
    pub(crate) fn outbound_peer(&self) -> Option<(String, Target)> {
        self.cfg.trunk.peers.iter().find_map(|p| {
            let net = crate::policy::parse_net(&p.address)?;
            (net.prefix_len() == net.max_prefix_len()).then_some(())?;
            Some((
                p.name.clone(),
                Target {
                    transport: Transport::Udp,
                    addr: SocketAddr::new(net.addr(), p.port?),
                },
            ))
        })
    }

    /// Builds and sends an INVITE with our SDP offer on a new UAC leg.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_uac_invite(
        &mut self,
        now: UnixMillis,
        target: Target,
        ruri: String,
        from: String,
        to: String,
        call_id: String,
        rtp: (Arc<UdpSocket>, u16),
    ) -> UacLeg {
        let branch = self.new_branch();
        let body = sdp::build(
            now.unsigned_abs(),
            1,
            self.public_ip,
            rtp.1,
            &[Codec::Pcma, Codec::Pcmu],
            Some(sdp::OUR_TE),
            Direction::SendRecv,
        );
        let mut inv = Request {
            method: "INVITE".into(),
            uri: ruri.clone(),
            headers: Headers::default(),
            body,
        };
        inv.headers.push("Via", self.via(target.transport, &branch));
        inv.headers.push("Max-Forwards", "70");
        inv.headers.push("From", from.clone());
        inv.headers.push("To", to.clone());
        inv.headers.push("Call-ID", call_id.clone());
        inv.headers.push("CSeq", "1 INVITE");
        inv.headers.push("Contact", self.contact(target.transport));
        inv.headers.push("Allow", ALLOW);
        inv.headers.push("Content-Type", "application/sdp");
        let tx = self
            .txns
            .send_request(now, &branch, &call_id, "INVITE", inv.to_bytes(), target);
        self.out.push(tx);
        UacLeg {
            d: Dialog::uac(call_id, from, to, target),
            branch,
            media: None,
            final_: false,
            rtp,
        }
    }

    /// Starts a click-to-call: rings `seat`, then calls `number` over the trunk.
    pub(crate) async fn click_to_call(
        &mut self,
        seat: &str,
        number: &str,
    ) -> Result<String, GatewayError> {
        let now = self.now();
        if !outbound_allowed(&self.cfg.trunk.outbound_allow, number) {
            return Err(GatewayError::NotAllowed(number.to_string()));
        }
        let (peer_name, peer) = self.outbound_peer().ok_or(GatewayError::NoTrunkPeer)?;
        let binding = self
            .registrar
            .reachable_contacts(seat, now)
            .into_iter()
            .find(|b| b.source.parse::<SocketAddr>().is_ok())
            .ok_or_else(|| GatewayError::SeatUnavailable(seat.to_string()))?;
        let seat_target = Target {
            transport: Transport::parse(&binding.transport),
            addr: binding.source.parse().map_err(|_| GatewayError::Stopped)?,
        };
        if !self.cap.try_acquire() {
            return Err(GatewayError::ChannelsBusy);
        }
        let ip = self.cfg.listen.ip();
        let Some((s_seat, p_seat)) = bind_rtp(&mut self.ports, ip) else {
            self.cap.release();
            return Err(GatewayError::ChannelsBusy);
        };
        let Some((s_cust, p_cust)) = bind_rtp(&mut self.ports, ip) else {
            self.ports.release(p_seat);
            self.cap.release();
            return Err(GatewayError::ChannelsBusy);
        };
        self.m.channels_in_use.set(i64::from(self.cap.in_use()));
        let id = IdGenerator::new_id(now, self.rng.as_ref());
        let seat_call_id = format!("{}@{}", self.token(12), self.public_ip);
        let customer_call_id = format!("{}@{}", self.token(12), self.public_ip);
        // The agent's phone shows the customer's number.
        let from = format!(
            "\"{number}\" <sip:{number}@{}>;tag={}",
            self.host_port(),
            self.token(6)
        );
        let to = format!("<sip:{seat}@{}>", self.host_port());
        let leg = self.send_uac_invite(
            now,
            seat_target,
            binding.contact.clone(),
            from,
            to,
            seat_call_id.clone(),
            (Arc::new(s_seat), p_seat),
        );
        let record = CallRecord {
            id: id.clone(),
            direction: "outbound".into(),
            caller: self.cfg.trunk.caller_id.clone(),
            callee: number.to_string(),
            trunk: Some(peer_name),
            seat: Some(seat.to_string()),
            a_call_id: customer_call_id.clone(),
            b_call_id: Some(seat_call_id.clone()),
            offered_at: now,
            ..CallRecord::default()
        };
        if let Err(e) = store::save_call(&self.pool, &record).await {
            tracing::error!(error = %e, "storing the call record failed");
        }
        self.events.publish(Event::Call(CallEvent::Offered {
            at: now,
            call_id: id.clone(),
            from: seat.to_string(),
            to: number.to_string(),
            source: "click-to-call".into(),
        }));
        let ring_ms = i64::try_from(self.cfg.ring_timeout_secs).unwrap_or(60) * 1000;
        self.by_sip.insert(seat_call_id, id.clone());
        self.by_sip.insert(customer_call_id.clone(), id.clone());
        self.c2c.insert(
            id.clone(),
            ClickCall {
                id: id.clone(),
                state: C2cState::SeatRinging,
                record,
                seat: leg,
                customer: None,
                customer_call_id,
                customer_rtp: Some((Arc::new(s_cust), p_cust)),
                number: number.to_string(),
                peer,
                relay: None,
                stats: Arc::new(RelayStats::default()),
                deadline: now + ring_ms,
                gc_at: None,
                tap: None,
                tap_origin: now,
                transfer: None,
                extra_channel: false,
                retired: Vec::new(),
            },
        );
        self.m.active_calls.inc();
        tracing::info!(call = %id, seat, "click-to-call: ringing the seat");
        Ok(id)
    }

    pub(crate) fn uac_cancel(&mut self, leg: &UacLeg) {
        if leg.final_ {
            return;
        }
        let d = leg.d.clone();
        self.cancel_in(&d);
    }

    pub(crate) async fn handle_c2c_response(&mut self, id: &str, resp: Response) {
        let now = self.now();
        if resp.cseq().1 != "INVITE" {
            return;
        }
        if self
            .c2c
            .get(id)
            .and_then(|c| c.transfer.as_ref())
            .is_some_and(|t| t.leg.d.call_id == resp.call_id())
        {
            self.handle_c2c_transfer_response(id, resp).await;
            return;
        }
        let Some(mut call) = self.c2c.remove(id) else {
            return;
        };
        let side = if resp.call_id() == call.seat.d.call_id {
            LegSide::Seat
        } else {
            LegSide::Customer
        };
        let outcome = {
            let leg = match side {
                LegSide::Seat => &mut call.seat,
                LegSide::Customer => match call.customer.as_mut() {
                    Some(l) => l,
                    None => {
                        self.c2c.insert(id.to_string(), call);
                        return;
                    }
                },
            };
            if resp.status < 200 {
                if side == LegSide::Customer
                    && resp.status > 100
                    && let Some(m) = sdp::parse(&resp.body).filter(|s| !s.codecs.is_empty())
                {
                    // Early media (RFC 3261 §13.2.1, RFC 3960): the carrier's ringback or
                    // "the subscriber is switched off" comes in a 183 with SDP; the answer
                    // in it is the answer of the dialog.
                    leg.media = Some((
                        LegMedia {
                            codec: m.codecs[0],
                            te: m.telephone_event,
                        },
                        m.addr,
                    ));
                }
                None
            } else if leg.final_ {
                // A retransmitted 2xx: the leg's dialog ACKs it again (RFC 6026 §7.2).
                None
            } else {
                leg.final_ = true;
                if resp.status < 300 {
                    // Its ACK is the leg's dialog's (RFC 3261 §13.2.2.4).
                    leg.d.confirm(&resp);
                    // A 2xx without SDP after early media: the early answer stands.
                    let early = leg.media.take();
                    let media = sdp::parse(&resp.body)
                        .filter(|s| !s.codecs.is_empty())
                        .map(|s| {
                            (
                                LegMedia {
                                    codec: s.codecs[0],
                                    te: s.telephone_event,
                                },
                                s.addr,
                            )
                        })
                        .or(early);
                    leg.media = media;
                }
                Some(resp.status)
            }
        };
        let Some(status) = outcome else {
            // Early media: the seat hears the customer's network before the answer.
            if side == LegSide::Customer
                && call.state == C2cState::CustomerRinging
                && call.relay.is_none()
                && call.customer.as_ref().is_some_and(|l| l.media.is_some())
            {
                self.start_c2c_relay(id, &mut call, now);
                tracing::info!(call = %id, "click-to-call: early media from the customer's network relayed to the seat");
            }
            self.c2c.insert(id.to_string(), call);
            return;
        };
        match (side, call.state) {
            (LegSide::Seat, C2cState::SeatRinging) if status < 300 => {
                call.record.b_final_code = Some(status);
                if call.seat.media.is_none() {
                    self.bye_in(&call.seat.d);
                    self.c2c.insert(id.to_string(), call);
                    self.finish_c2c(id, "failed", "system").await;
                    return;
                }
                call.record.b_codec = call.seat.media.map(|m| m.0.codec.name().to_string());
                // Now the customer, with the hotline number as caller ID.
                let peer = call.peer;
                let ruri = format!("sip:{}@{}", call.number, peer.addr);
                let from = format!(
                    "<sip:{}@{}>;tag={}",
                    if self.cfg.trunk.caller_id.is_empty() {
                        "hotline"
                    } else {
                        &self.cfg.trunk.caller_id
                    },
                    self.host_port(),
                    self.token(6)
                );
                let to = format!("<{ruri}>");
                let rtp = call.customer_rtp.take();
                if let Some(rtp) = rtp {
                    let leg = self.send_uac_invite(
                        now,
                        peer,
                        ruri,
                        from,
                        to,
                        call.customer_call_id.clone(),
                        rtp,
                    );
                    call.customer = Some(leg);
                }
                call.state = C2cState::CustomerRinging;
                tracing::info!(call = %id, "click-to-call: seat answered, calling the customer");
                self.c2c.insert(id.to_string(), call);
            }
            (LegSide::Seat, _) => {
                call.record.b_final_code = Some(status);
                let cause = if status == 486 || status == 603 {
                    "rejected"
                } else {
                    "unavailable"
                };
                self.c2c.insert(id.to_string(), call);
                self.finish_c2c(id, cause, "callee").await;
            }
            (LegSide::Customer, C2cState::CustomerRinging) if status < 300 => {
                call.record.a_final_code = Some(status);
                let (Some(c_media), Some(_)) = (
                    call.customer.as_ref().and_then(|l| l.media),
                    call.seat.media,
                ) else {
                    if let Some(l) = call.customer.take() {
                        self.bye_in(&l.d);
                        call.customer = Some(l);
                    }
                    self.bye_in(&call.seat.d);
                    self.c2c.insert(id.to_string(), call);
                    self.finish_c2c(id, "failed", "system").await;
                    return;
                };
                call.record.a_codec = Some(c_media.0.codec.name().to_string());
                call.record.answered_at = Some(now);
                call.record.bridged_at = Some(now);
                call.state = C2cState::Answered;
                // Already relaying since the early media, or from now on.
                if call.relay.is_none() {
                    self.start_c2c_relay(id, &mut call, now);
                }
                let record = call.record.clone();
                self.c2c.insert(id.to_string(), call);
                if let Err(e) = store::save_call(&self.pool, &record).await {
                    tracing::error!(error = %e, "updating the call record failed");
                }
                self.events.publish(Event::Call(CallEvent::Answered {
                    at: now,
                    call_id: id.to_string(),
                }));
                self.events.publish(Event::Call(CallEvent::Bridged {
                    at: now,
                    call_id: id.to_string(),
                    seat: record.seat.unwrap_or_default(),
                }));
            }
            (LegSide::Customer, _) => {
                call.record.a_final_code = Some(status);
                let answered_late = status < 300;
                if let Some(l) = call.customer.take() {
                    if answered_late {
                        self.bye_in(&l.d);
                    }
                    call.customer = Some(l);
                }
                if call.state != C2cState::Ended {
                    self.bye_in(&call.seat.d);
                }
                let cause = if status == 486 || status == 603 {
                    "rejected"
                } else {
                    "unavailable"
                };
                self.c2c.insert(id.to_string(), call);
                self.finish_c2c(id, cause, "callee").await;
            }
        }
    }

    /// Bridges the customer and seat legs through the relay (recorded like any call, the
    /// customer on the left channel): at the answer, or earlier at the customer network's
    /// early media — then the recording holds that announcement too, which is what staff
    /// want to hear when a callback "did not get through".
    pub(crate) fn start_c2c_relay(&mut self, id: &str, call: &mut ClickCall, now: UnixMillis) {
        let (Some((c_media, c_addr)), Some((s_media, s_addr))) = (
            call.customer.as_ref().and_then(|l| l.media),
            call.seat.media,
        ) else {
            return;
        };
        let Some(sock_a) = call.customer.as_ref().map(|l| l.rtp.0.clone()) else {
            return;
        };
        if call.tap.is_none() {
            call.tap = self
                .open_tap(id, &call.record.callee, now)
                .map(|t| Arc::new(std::sync::Mutex::new(Some(t))));
            call.tap_origin = now;
        }
        let mut seed = [0u8; 12];
        self.rng.fill(&mut seed);
        let w = |i: usize| u32::from_be_bytes([seed[i], seed[i + 1], seed[i + 2], seed[i + 3]]);
        let cancel = CancellationToken::new();
        spawn_relay(RelaySetup {
            sock_a,
            sock_b: call.seat.rtp.0.clone(),
            remote_a: c_addr,
            remote_b: s_addr,
            a_to_b: Forwarder::new(c_media, s_media, w(0), seed[8].into(), w(4)),
            b_to_a: Forwarder::new(s_media, c_media, w(8), seed[9].into(), w(0)),
            call_id: id.to_string(),
            events: self.events.clone(),
            clock: self.clock.clone(),
            stats: call.stats.clone(),
            metric_a_to_b: self.m.rtp_caller_to_seat.clone(),
            metric_b_to_a: self.m.rtp_seat_to_caller.clone(),
            cancel: cancel.clone(),
            tap: call.tap.clone(),
            origin: call.tap_origin,
            finish_tap: false,
        });
        call.relay = Some(cancel);
    }

    /// re-INVITE on a click-to-call leg (hold/unhold, refresh): answered from our anchor for
    /// that leg, as for inbound calls (RFC 3264 §8.4); the other leg is untouched.
    pub(crate) fn handle_c2c_reinvite(&mut self, id: &str, req: &Request, target: Target) {
        let now = self.now();
        let Some(call) = self.c2c.get(id) else {
            self.reply(req, 481, target);
            return;
        };
        if call.state != C2cState::Answered {
            let code = if call.state == C2cState::Ended {
                481
            } else {
                491
            };
            self.reply(req, code, target);
            return;
        }
        let leg = if call.seat.d.call_id == req.call_id() {
            Some(&call.seat)
        } else {
            call.customer.as_ref()
        };
        let Some((media, port)) = leg.and_then(|l| Some((l.media?.0, l.rtp.1))) else {
            self.reply(req, 481, target);
            return;
        };
        let offer = sdp::parse(&req.body);
        let dir = offer
            .as_ref()
            .map_or(Direction::SendRecv, |o| o.direction.answer());
        let body = sdp::build(
            now.unsigned_abs(),
            now.unsigned_abs(),
            self.public_ip,
            port,
            &[media.codec],
            media.te,
            dir,
        );
        let mut r = crate::sip::response_to(req, 200, None);
        r.headers.push("Contact", self.contact(target.transport));
        r.headers.push("Content-Type", "application/sdp");
        r.body = body;
        self.send_response(req, r, target);
        if offer.is_some() {
            self.events.publish(Event::Call(CallEvent::Held {
                at: now,
                call_id: id.to_string(),
                on_hold: dir != Direction::SendRecv,
            }));
        }
    }

    /// BYE inside a click-to-call: hang up the other leg.
    pub(crate) async fn handle_c2c_bye(&mut self, id: &str, call_id: &str) {
        let Some(mut call) = self.c2c.remove(id) else {
            return;
        };
        let from_seat = call.seat.d.call_id == call_id;
        let from_customer = call
            .customer
            .as_ref()
            .is_some_and(|l| l.d.call_id == call_id);
        if !from_seat && !from_customer {
            // The seat that transferred the call away (RFC 5589 §6.1: the transferor hangs
            // up), or the transfer's new leg before it was answered: the call goes on.
            self.c2c.insert(id.to_string(), call);
            return;
        }
        match call.state {
            C2cState::Ended => {}
            C2cState::Answered => {
                if from_seat {
                    if let Some(l) = call.customer.take() {
                        self.bye_in(&l.d);
                        call.customer = Some(l);
                    }
                } else {
                    self.bye_in(&call.seat.d);
                }
            }
            C2cState::CustomerRinging if from_seat => {
                if let Some(l) = call.customer.take() {
                    self.uac_cancel(&l);
                    call.customer = Some(l);
                }
            }
            _ => {}
        }
        let side = if from_seat { "caller" } else { "callee" };
        self.c2c.insert(id.to_string(), call);
        self.finish_c2c(id, "normal", side).await;
    }

    pub(crate) async fn check_c2c_timers(&mut self, now: UnixMillis) {
        let over: Vec<String> = self
            .c2c
            .values()
            .filter(|c| {
                matches!(c.state, C2cState::SeatRinging | C2cState::CustomerRinging)
                    && now >= c.deadline
            })
            .map(|c| c.id.clone())
            .collect();
        for id in over {
            self.end_c2c(&id, "no_answer").await;
        }
        let gone: Vec<String> = self
            .c2c
            .values()
            .filter(|c| c.gc_at.is_some_and(|g| now >= g))
            .map(|c| c.id.clone())
            .collect();
        for id in gone {
            if let Some(c) = self.c2c.remove(&id) {
                self.by_sip.remove(&c.seat.d.call_id);
                self.by_sip.remove(&c.customer_call_id);
                for old in &c.retired {
                    self.by_sip.remove(old);
                }
                self.txns.cancel_client(&c.seat.branch, "INVITE");
                if let Some(l) = &c.customer {
                    self.txns.cancel_client(&l.branch, "INVITE");
                }
            }
        }
    }

    /// Ends a click-to-call from our side (timeout, shutdown).
    pub(crate) async fn end_c2c(&mut self, id: &str, cause: &str) {
        let Some(mut call) = self.c2c.remove(id) else {
            return;
        };
        match call.state {
            C2cState::SeatRinging => self.uac_cancel(&call.seat),
            C2cState::CustomerRinging => {
                if let Some(l) = call.customer.take() {
                    self.uac_cancel(&l);
                    call.customer = Some(l);
                }
                self.bye_in(&call.seat.d);
            }
            C2cState::Answered => {
                if let Some(l) = call.customer.take() {
                    self.bye_in(&l.d);
                    call.customer = Some(l);
                }
                self.bye_in(&call.seat.d);
            }
            C2cState::Ended => {}
        }
        self.c2c.insert(id.to_string(), call);
        self.finish_c2c(id, cause, "system").await;
    }

    pub(crate) async fn handle_c2c_timeout(&mut self, id: &str, method: &str, call_id: &str) {
        if method != "INVITE" {
            return;
        }
        let transfer_leg = self
            .c2c
            .get(id)
            .and_then(|c| c.transfer.as_ref())
            .is_some_and(|t| t.leg.d.call_id == call_id);
        if transfer_leg {
            // Timer B on the transfer's new leg: the transfer failed, the call goes on.
            self.fail_c2c_transfer(id, 408).await;
        } else {
            self.end_c2c(id, "unavailable").await;
        }
    }

    async fn finish_c2c(&mut self, id: &str, cause: &str, side: &str) {
        let now = self.now();
        let Some(call) = self.c2c.get_mut(id) else {
            return;
        };
        if call.state == C2cState::Ended {
            return;
        }
        call.state = C2cState::Ended;
        call.gc_at = Some(now + T64);
        if let Some(c) = call.relay.take() {
            c.cancel();
        }
        if let Some(t) = call.tap.take() {
            crate::rtp::finish_tap(&t, call.tap_origin, now);
        }
        let transfer = call.transfer.take();
        if let Some(t) = &transfer {
            call.retired.push(t.leg.d.call_id.clone());
        }
        let extra = std::mem::take(&mut call.extra_channel);
        call.record.ended_at = Some(now);
        call.record.end_cause = Some(cause.to_string());
        call.record.hangup_side = Some(side.to_string());
        let record = call.record.clone();
        let mut ports = vec![call.seat.rtp.1];
        if let Some(l) = &call.customer {
            ports.push(l.rtp.1);
        }
        if let Some((_, p)) = &call.customer_rtp {
            ports.push(*p);
        }
        call.customer_rtp = None;
        if let Some(t) = transfer {
            // The transfer's new leg goes with the call.
            if t.leg.final_ {
                self.bye_in(&t.leg.d);
            } else {
                self.uac_cancel(&t.leg);
            }
            ports.push(t.leg.rtp.1);
        }
        for p in ports {
            self.ports.release(p);
        }
        if extra {
            self.cap.release();
        }
        self.cap.release();
        self.m.channels_in_use.set(i64::from(self.cap.in_use()));
        self.m.active_calls.dec();
        self.m
            .calls
            .with(&[("direction", "outbound"), ("cause", cause)])
            .inc();
        if let Err(e) = store::save_call(&self.pool, &record).await {
            tracing::error!(error = %e, "closing the call record failed");
        }
        self.events.publish(Event::Call(CallEvent::Ended {
            at: now,
            call_id: id.to_string(),
            cause: cause.to_string(),
        }));
        tracing::info!(call = %id, cause, side, "click-to-call ended");
    }
}
