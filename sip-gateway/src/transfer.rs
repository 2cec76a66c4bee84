//! Blind transfer by REFER from a seat (RFC 3515; call flow of RFC 5589 §6.1): the seat's
//! REFER is accepted with 202, the target (another registered seat, or an external number
//! that matches the outbound allow-list, over the trunk) is called on a new UAC leg with our
//! own SDP, the seat is told the progress by NOTIFY with a `message/sipfrag` body, and on
//! answer the caller's leg is re-bridged to the new leg. The caller never sees a re-INVITE:
//! media stays anchored on the same port towards the trunk.

use std::net::SocketAddr;
use std::sync::Arc;

use hotline_core::events::{CallEvent, Event};

use crate::call::State;
use crate::config::is_seat_number;
use crate::engine::Engine;
use crate::outbound::UacLeg;
use crate::policy::outbound_allowed;
use crate::rtp::{LegMedia, bind_rtp};
use crate::sdp;
use crate::sip::{self, Headers, NameAddr, Request, Response};
use crate::store;
use crate::transaction::{Target, Transport};

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
            // Click-to-call legs are not transferable yet.
            let code = if self.c2c.contains_key(&id) { 403 } else { 481 };
            self.reply(req, code, target);
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
        let Some(dest) = req
            .headers
            .get("Refer-To")
            .and_then(NameAddr::parse)
            .and_then(|n| n.user())
        else {
            self.reply(req, 400, target);
            return;
        };
        let caller = call.record.caller.clone();
        let seat_binding = is_seat_number(&dest)
            .then(|| {
                self.registrar
                    .reachable_contacts(&dest, now)
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
        let (leg_target, ruri, external) = match seat_binding {
            Some((t, contact)) => (t, contact, false),
            None => match self.outbound_peer() {
                Some((_, peer)) if outbound_allowed(&self.cfg.trunk.outbound_allow, &dest) => {
                    (peer, format!("sip:{dest}@{}", peer.addr), true)
                }
                // Neither a reachable seat nor an allowed number (toll-fraud guard).
                _ => {
                    self.reply(req, 403, target);
                    return;
                }
            },
        };
        if external && !self.cap.try_acquire() {
            self.reply(req, 503, target);
            return;
        }
        let ip = self.cfg.listen.ip();
        let Some((sock, port)) = bind_rtp(&mut self.ports, ip) else {
            if external {
                self.cap.release();
            }
            self.reply(req, 503, target);
            return;
        };
        self.m.channels_in_use.set(i64::from(self.cap.in_use()));
        // RFC 3515 §2.4.2: 202 Accepted, then NOTIFYs carrying the new call's progress.
        let r = sip::response_to(req, 202, None);
        self.send_response(req, r, target);
        self.send_refer_notify(&id, "SIP/2.0 100 Trying", false);
        let from = format!(
            "<sip:{}@{}>;tag={}",
            if caller.is_empty() {
                "anonymous"
            } else {
                &caller
            },
            self.host_port(),
            self.token(6)
        );
        let to = if external {
            format!("<{ruri}>")
        } else {
            format!("<sip:{dest}@{}>", self.host_port())
        };
        let call_id = format!("{}@{}", self.token(12), self.public_ip);
        let leg = self.send_uac_invite(
            now,
            leg_target,
            ruri,
            from,
            to,
            call_id.clone(),
            (Arc::new(sock), port),
        );
        self.by_sip.insert(call_id, id.clone());
        if let Some(call) = self.calls.get_mut(&id) {
            call.transfer = Some(Transfer {
                leg,
                target: dest.clone(),
            });
            call.extra_channel = external;
        }
        tracing::info!(call = %id, target = %dest, "blind transfer started");
    }

    /// NOTIFY in the seat's dialog with the transfer's progress (RFC 3515 §2.4.4).
    fn send_refer_notify(&mut self, id: &str, frag: &str, terminated: bool) {
        let now = self.now();
        let branch = self.new_branch();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.b_gone {
            return;
        }
        let d = &mut call.b;
        d.local_cseq += 1;
        let mut n = Request {
            method: "NOTIFY".into(),
            uri: d.remote_target.clone(),
            headers: Headers::default(),
            body: format!("{frag}\r\n").into_bytes(),
        };
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            d.target.transport.name(),
            match self.public_ip {
                std::net::IpAddr::V4(ip) => format!("{ip}:{}", self.port),
                std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", self.port),
            }
        );
        n.headers.push("Via", via);
        n.headers.push("Max-Forwards", "70");
        n.headers.push("From", d.local.clone());
        n.headers.push("To", d.remote.clone());
        n.headers.push("Call-ID", d.call_id.clone());
        n.headers.push("CSeq", format!("{} NOTIFY", d.local_cseq));
        n.headers.push("Event", "refer");
        n.headers.push(
            "Subscription-State",
            if terminated {
                "terminated;reason=noresource"
            } else {
                "active;expires=60"
            },
        );
        n.headers
            .push("Content-Type", "message/sipfrag;version=2.0");
        let (cid, target) = (d.call_id.clone(), d.target);
        let tx = self
            .txns
            .send_request(now, &branch, &cid, "NOTIFY", n.to_bytes(), target);
        self.out.push(tx);
    }

    /// The caller hung up during a transfer: cancel the new leg.
    pub(crate) fn abandon_transfer(&mut self, id: &str) {
        let leg = self.calls.get_mut(id).and_then(|c| {
            c.transfer
                .as_ref()
                .map(|t| (t.leg.final_, t.leg.branch.clone()))
        });
        if let Some((false, _)) = leg
            && let Some(t) = self.calls.get_mut(id).and_then(|c| c.transfer.take())
        {
            self.uac_cancel(&t.leg);
            if let Some(c) = self.calls.get_mut(id) {
                c.transfer = Some(t);
            }
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
        if resp.status < 200 {
            put_back(self, t);
            return;
        }
        if t.leg.final_ {
            if resp.status < 300 {
                if let Some(a) = t.leg.ack.clone() {
                    self.out.push(a);
                }
            } else {
                self.uac_ack(&mut t.leg, &resp);
            }
            put_back(self, t);
            return;
        }
        t.leg.final_ = true;
        let ack = self.uac_ack(&mut t.leg, &resp);
        let media = (resp.status < 300)
            .then(|| sdp::parse(&resp.body))
            .flatten()
            .filter(|s| !s.codecs.is_empty());
        let Some(media) = media else {
            // Failed (or answered without usable SDP): tell the seat, keep or end the call.
            if resp.status < 300 {
                self.uac_bye(&mut t.leg.d);
            }
            let frag = format!(
                "SIP/2.0 {} {}",
                resp.status,
                sip::reason_phrase(resp.status)
            );
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
            tracing::info!(call = %id, status = resp.status, "blind transfer failed");
            if b_gone {
                self.send_bye(id, true);
                self.finish(id, "transfer_failed", "system").await;
            }
            return;
        };
        t.leg.ack = Some(ack);
        let b_media = LegMedia {
            codec: media.codecs[0],
            te: media.telephone_event,
        };
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
        call.b_invite = t.leg.invite.clone();
        call.b_branch = t.leg.branch.clone();
        call.b_media = Some(b_media);
        call.b_final = true;
        call.b_ack = t.leg.ack.clone();
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
            (sock_b, media.addr, b_media),
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
}
