//! Calls the gateway answers itself and hands to an application (the IVR, the ACD queue and
//! the survey, driven by the binary): the application learns of the call through
//! [`AppEvent`]s and acts on it through the [`crate::GatewayHandle`] (`play`,
//! `stop_playback`, `connect_seat`, `disconnect_seat`, `set_hold`, `hangup`).
//!
//! Life of an application call: the trunk INVITE to a DID routed to `ivr` is answered at once
//! (200 with our SDP; media task started) → `Incoming` → prompts and digits → the application
//! may connect a seat: leg B is invited like a plain call's (RFC 3264 offer with the caller's
//! codec first) and on its 2xx the media task relays caller ↔ seat → the seat may hang up
//! (`SeatHungUp`; the caller stays with the application, e.g. for the survey) or be
//! disconnected by the application → the caller's BYE or `hangup` ends the call (`Ended`).

use std::sync::Arc;

use hotline_core::events::{CallEvent, Event};
use hotline_core::{IdGenerator, UnixMillis};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::call::{Call, State};
use crate::dialog::Dialog;
use crate::engine::{ALLOW, Engine};
use crate::error::GatewayError;
use crate::media::MediaClip;
use crate::media::player::Stream;
use crate::media::session::{MediaCmd, MediaSetup, spawn_media};
use crate::rtp::{LegMedia, RelayStats, bind_rtp};
use crate::sdp::{self, RemoteAudio};
use crate::sip::{self, NameAddr, Request, Response};
use crate::store::{self, CallRecord};
use crate::transaction::{Target, Transport};

/// How a digit reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DtmfSource {
    /// RFC 4733 telephone-event in the RTP stream.
    Rfc4733,
    /// SIP INFO with `application/dtmf-relay`.
    Info,
    /// A tone in the audio (Goertzel).
    Inband,
}

/// What happens on application calls, in order per call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    /// A caller was answered; `peer` is the trunk peer's name from the configuration.
    Incoming {
        call_id: String,
        caller: String,
        did: String,
        peer: Option<String>,
    },
    Digit {
        call_id: String,
        digit: char,
        source: DtmfSource,
    },
    /// Playback `id` has sent its last frame.
    PlayFinished {
        call_id: String,
        id: u64,
    },
    SeatRinging {
        call_id: String,
        seat: String,
    },
    SeatAnswered {
        call_id: String,
        seat: String,
    },
    /// The seat refused, was unreachable or did not answer (`status` is its final code,
    /// 408 when it never answered, 487 after `disconnect_seat`).
    SeatFailed {
        call_id: String,
        seat: String,
        status: u16,
    },
    /// The seat hung up; the caller is still connected to the application.
    SeatHungUp {
        call_id: String,
        seat: String,
    },
    /// The call is over (`side`: caller, system).
    Ended {
        call_id: String,
        side: String,
    },
}

/// Leg B of an application call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SeatLeg {
    Idle,
    Ringing(String),
    Bridged(String),
}

#[derive(Debug)]
pub(crate) struct AppLeg {
    pub(crate) media: mpsc::UnboundedSender<MediaCmd>,
    pub(crate) seat: SeatLeg,
}

/// What the application asks of a call.
#[derive(Debug)]
pub(crate) enum AppCommand {
    Play {
        call_id: String,
        id: u64,
        clips: Vec<MediaClip>,
    },
    Stop {
        call_id: String,
    },
    ConnectSeat {
        call_id: String,
        seat: String,
        reply: tokio::sync::oneshot::Sender<Result<(), GatewayError>>,
    },
    DisconnectSeat {
        call_id: String,
    },
    SetRecordingPaused {
        call_id: String,
        paused: bool,
        reply: tokio::sync::oneshot::Sender<Result<bool, GatewayError>>,
    },
    SetHold {
        call_id: String,
        on: bool,
        reply: tokio::sync::oneshot::Sender<Result<bool, GatewayError>>,
    },
}

impl Engine {
    fn app_event(&self, e: AppEvent) {
        if let Some(app) = &self.app {
            let _ = app.send(e);
        }
    }

    /// Answers a trunk call routed to the application (the DID's target is `ivr`).
    pub(crate) async fn answer_app_call(
        &mut self,
        req: Request,
        (transport, source, target): (Transport, std::net::SocketAddr, Target),
        peer: Option<String>,
        did: String,
        offer: RemoteAudio,
    ) {
        let now = self.now();
        let Some(app) = self.app.clone() else {
            return;
        };
        let uses_channel = peer.is_some();
        if uses_channel && !self.cap.try_acquire() {
            self.reject(&req, 503, target, "channels");
            return;
        }
        let ip = self.cfg.listen.ip();
        let sockets =
            bind_rtp(&mut self.ports, ip).and_then(|a| match bind_rtp(&mut self.ports, ip) {
                Some(b) => Some((a, b)),
                None => {
                    self.ports.release(a.1);
                    None
                }
            });
        let Some(((sock_a, port_a), (sock_b, port_b))) = sockets else {
            if uses_channel {
                self.cap.release();
            }
            self.reject(&req, 503, target, "rtp_ports");
            return;
        };
        self.m.channels_in_use.set(i64::from(self.cap.in_use()));
        let id = IdGenerator::new_id(now, self.rng.as_ref());
        let a_tag = self.token(6);
        let caller = req
            .from()
            .as_ref()
            .and_then(NameAddr::user)
            .unwrap_or_default();
        let a = Dialog::uas(&req, &a_tag, transport, source);
        let a_media = LegMedia {
            codec: offer.codecs[0],
            te: offer.telephone_event,
        };
        let sdp_session = u64::from_str_radix(&self.token(4), 16).unwrap_or(1);
        let mut r = sip::response_to(&req, 200, Some(&a_tag));
        r.headers.push("Contact", self.contact(transport));
        r.headers.push("Allow", ALLOW);
        r.headers.push("Content-Type", "application/sdp");
        let session = crate::call::session_timer_headers(&req, &mut r)
            .map(|n| (n, crate::call::session_deadline(now, n)));
        r.body = sdp::build(
            sdp_session,
            1,
            self.public_ip,
            port_a,
            &[a_media.codec],
            a_media.te,
            offer.direction.answer(),
        );
        self.send_response(&req, r, target);

        let record = CallRecord {
            id: id.clone(),
            direction: "inbound".into(),
            caller: caller.clone(),
            callee: did.clone(),
            trunk: peer.clone(),
            a_call_id: a.call_id.clone(),
            offered_at: now,
            answered_at: Some(now),
            a_final_code: Some(200),
            a_codec: Some(a_media.codec.name().into()),
            ..CallRecord::default()
        };
        store::save_call_durably(&self.pool, self.writes.as_ref(), record.clone()).await;
        let mut seed = [0u8; 10];
        self.rng.fill(&mut seed);
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let stats = Arc::new(RelayStats::default());
        let sock_a = Arc::new(sock_a);
        spawn_media(MediaSetup {
            sock_a: sock_a.clone(),
            remote_a: offer.addr,
            a_media,
            call_id: id.clone(),
            app,
            events: self.events.clone(),
            clock: self.clock.clone(),
            stats: stats.clone(),
            metric_a_to_b: self.m.rtp_caller_to_seat.clone(),
            metric_b_to_a: self.m.rtp_seat_to_caller.clone(),
            cancel: cancel.clone(),
            cmds: rx,
            tap: self.open_tap(&id, &caller, now),
            stream: Stream {
                ssrc: u32::from_be_bytes([seed[0], seed[1], seed[2], seed[3]]),
                seq: u16::from_be_bytes([seed[4], seed[5]]) & 0x7fff,
                ts: u32::from_be_bytes([seed[6], seed[7], seed[8], seed[9]]),
                talking: false,
            },
        });
        self.events.publish(Event::Call(CallEvent::Offered {
            at: now,
            call_id: id.clone(),
            from: caller.clone(),
            to: did.clone(),
            source: peer.clone().unwrap_or_default(),
        }));
        self.events.publish(Event::Call(CallEvent::Answered {
            at: now,
            call_id: id.clone(),
        }));
        let call = Call {
            id: id.clone(),
            state: State::Answered,
            record,
            a_invite: req,
            a_resp_target: target,
            b: Dialog::uac(String::new(), String::new(), String::new(), a.target),
            a,
            a_tag,
            a_media,
            a_offer: offer,
            b_branch: String::new(),
            b_media: None,
            b_final: true,
            ringing_sent: true,
            rtp_a: (Some(sock_a), port_a),
            rtp_b: (Some(Arc::new(sock_b)), port_b),
            relay: Some(cancel),
            stats,
            ring_deadline: UnixMillis::MAX,
            gc_at: None,
            sdp_session,
            sdp_version: 1,
            channel: uses_channel,
            transfer: None,
            b_gone: false,
            extra_channel: false,
            session,
            app: Some(AppLeg {
                media: tx,
                seat: SeatLeg::Idle,
            }),
            // The media task owns this call's tap.
            tap: None,
        };
        self.by_sip.insert(call.a.call_id.clone(), id.clone());
        self.calls.insert(id.clone(), call);
        self.m.active_calls.inc();
        tracing::info!(call = %id, %did, "call answered by the application");
        self.app_event(AppEvent::Incoming {
            call_id: id,
            caller,
            did,
            peer,
        });
    }

    pub(crate) async fn handle_app_command(&mut self, cmd: AppCommand) {
        match cmd {
            AppCommand::Play { call_id, id, clips } => {
                if let Some(leg) = self.calls.get(&call_id).and_then(|c| c.app.as_ref()) {
                    let _ = leg.media.send(MediaCmd::Play { id, clips });
                }
            }
            AppCommand::Stop { call_id } => {
                if let Some(leg) = self.calls.get(&call_id).and_then(|c| c.app.as_ref()) {
                    let _ = leg.media.send(MediaCmd::Stop);
                }
            }
            AppCommand::ConnectSeat {
                call_id,
                seat,
                reply,
            } => {
                let r = self.connect_seat(&call_id, &seat);
                let _ = reply.send(r);
            }
            AppCommand::DisconnectSeat { call_id } => self.disconnect_seat(&call_id),
            AppCommand::SetRecordingPaused {
                call_id,
                paused,
                reply,
            } => {
                let Some(leg) = self
                    .calls
                    .get(&call_id)
                    .filter(|c| !c.is_ended())
                    .and_then(|c| c.app.as_ref())
                else {
                    let _ = reply.send(Err(GatewayError::CallNotFound(call_id)));
                    return;
                };
                let (tx, rx) = tokio::sync::oneshot::channel();
                let _ = leg
                    .media
                    .send(MediaCmd::SetRecordingPaused { paused, reply: tx });
                answer_from_media(rx, reply);
            }
            AppCommand::SetHold { call_id, on, reply } => {
                // Hold is ours to do: we anchor the media and are the caller's only RTP
                // peer, so no re-INVITE (RFC 3264 §8.4) is needed on either leg — the caller
                // hears our music, the seat silence.
                let Some(leg) = self
                    .calls
                    .get(&call_id)
                    .filter(|c| !c.is_ended())
                    .and_then(|c| c.app.as_ref())
                    .filter(|a| matches!(a.seat, SeatLeg::Bridged(_)))
                else {
                    let _ = reply.send(Err(GatewayError::CallNotFound(call_id)));
                    return;
                };
                let (tx, rx) = tokio::sync::oneshot::channel();
                let _ = leg.media.send(MediaCmd::Hold { on, reply: tx });
                answer_from_media(rx, reply);
            }
        }
    }

    /// Invites `seat` on leg B of an application call.
    fn connect_seat(&mut self, call_id: &str, seat: &str) -> Result<(), GatewayError> {
        let now = self.now();
        let Some(call) = self
            .calls
            .get(call_id)
            .filter(|c| c.state == State::Answered)
        else {
            return Err(GatewayError::CallNotFound(call_id.to_string()));
        };
        match call.app.as_ref().map(|a| &a.seat) {
            Some(SeatLeg::Idle) => {}
            Some(_) => return Err(GatewayError::SeatLegBusy(call_id.to_string())),
            None => return Err(GatewayError::CallNotFound(call_id.to_string())),
        }
        let (a_codec, sdp_session, port_b, caller) = (
            call.a_media.codec,
            call.sdp_session,
            call.rtp_b.1,
            call.record.caller.clone(),
        );
        let Some((binding, b_target)) = self
            .registrar
            .reachable_contacts(seat, now)
            .into_iter()
            .find_map(|b| {
                let t = Target {
                    transport: Transport::parse(&b.transport),
                    addr: b.source.parse().ok()?,
                };
                Some((b, t))
            })
        else {
            return Err(GatewayError::SeatUnavailable(seat.to_string()));
        };
        let user = if caller.is_empty() {
            "anonymous".to_string()
        } else {
            caller
        };
        let from = format!("<sip:{user}@{}>", self.host_port());
        let to = format!("<sip:{seat}@{}>", self.host_port());
        let (branch, b_call_id, local) = self.send_b_invite(
            now,
            &binding.contact,
            b_target,
            &from,
            &to,
            (sdp_session, port_b),
            a_codec,
        );
        self.by_sip.insert(b_call_id.clone(), call_id.to_string());
        let Some(call) = self.calls.get_mut(call_id) else {
            return Ok(());
        };
        if !call.b.call_id.is_empty() {
            self.by_sip.remove(&call.b.call_id);
        }
        call.b = Dialog::uac(b_call_id.clone(), local, to, b_target);
        call.b_branch = branch;
        call.b_final = false;
        call.b_media = None;
        call.record.b_call_id = Some(b_call_id);
        if let Some(app) = call.app.as_mut() {
            app.seat = SeatLeg::Ringing(seat.to_string());
        }
        tracing::info!(call = %call_id, %seat, "application call: ringing a seat");
        Ok(())
    }

    /// Stops ringing the seat (CANCEL, RFC 3261 §9.1) or hangs the seat up (BYE); the caller
    /// stays with the application.
    fn disconnect_seat(&mut self, call_id: &str) {
        let Some(seat) = self
            .calls
            .get(call_id)
            .and_then(|c| c.app.as_ref())
            .map(|a| a.seat.clone())
        else {
            return;
        };
        match seat {
            SeatLeg::Idle => {}
            SeatLeg::Ringing(_) => self.send_cancel_b(call_id),
            SeatLeg::Bridged(_) => {
                self.send_bye(call_id, false);
                self.unbridge(call_id);
            }
        }
    }

    fn unbridge(&mut self, call_id: &str) {
        if let Some(app) = self.calls.get_mut(call_id).and_then(|c| c.app.as_mut()) {
            let _ = app.media.send(MediaCmd::Unbridge);
            app.seat = SeatLeg::Idle;
        }
    }

    /// A response to leg B's INVITE of an application call.
    pub(crate) async fn handle_app_b_response(&mut self, id: &str, resp: Response) {
        let now = self.now();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let seat = match call.app.as_ref().map(|a| a.seat.clone()) {
            Some(SeatLeg::Ringing(s) | SeatLeg::Bridged(s)) => s,
            _ => String::new(),
        };
        if resp.status < 200 {
            if resp.status > 100 && !call.b_final {
                self.app_event(AppEvent::SeatRinging {
                    call_id: id.to_string(),
                    seat,
                });
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
            if let Some(app) = call.app.as_mut() {
                app.seat = SeatLeg::Idle;
            }
            self.app_event(AppEvent::SeatFailed {
                call_id: id.to_string(),
                seat,
                status: resp.status,
            });
            return;
        }
        // A retransmitted 2xx: the seat leg's dialog ACKs it again (RFC 6026 §7.2).
        if call.b_final {
            return;
        }
        call.b_final = true;
        call.record.b_final_code = Some(resp.status);
        call.b.confirm(&resp);
        let answer = sdp::parse(&resp.body).filter(|s| !s.codecs.is_empty());
        let still_wanted = matches!(
            call.app.as_ref().map(|a| &a.seat),
            Some(SeatLeg::Ringing(_))
        );
        let Some(answer) = answer.filter(|_| still_wanted && call.state == State::Answered) else {
            // Disconnected while the 2xx was on its way, or no usable SDP: confirm, hang up.
            self.send_bye(id, false);
            if let Some(app) = self.calls.get_mut(id).and_then(|c| c.app.as_mut()) {
                app.seat = SeatLeg::Idle;
            }
            if still_wanted {
                self.app_event(AppEvent::SeatFailed {
                    call_id: id.to_string(),
                    seat,
                    status: 488,
                });
            }
            return;
        };
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let b_media = LegMedia {
            codec: answer.codecs[0],
            te: answer.telephone_event,
        };
        call.b_media = Some(b_media);
        call.record.b_codec = Some(b_media.codec.name().into());
        call.record.seat = Some(seat.clone());
        call.record.bridged_at.get_or_insert(now);
        let mut ssrc = [0u8; 4];
        self.rng.fill(&mut ssrc);
        if let (Some(app), Some(sock_b)) = (call.app.as_mut(), call.rtp_b.0.clone()) {
            app.seat = SeatLeg::Bridged(seat.clone());
            let _ = app.media.send(MediaCmd::Bridge {
                sock_b,
                remote_b: answer.addr,
                b_media,
                ssrc_b: u32::from_be_bytes(ssrc),
            });
        }
        let record = call.record.clone();
        store::save_call_durably(&self.pool, self.writes.as_ref(), record.clone()).await;
        self.events.publish(Event::Call(CallEvent::Bridged {
            at: now,
            call_id: id.to_string(),
            seat: seat.clone(),
        }));
        tracing::info!(call = %id, %seat, "application call bridged to a seat");
        self.app_event(AppEvent::SeatAnswered {
            call_id: id.to_string(),
            seat,
        });
    }

    /// BYE on an application call: from the caller it ends the call (and the seat leg);
    /// from the seat it only ends leg B.
    pub(crate) async fn handle_app_bye(&mut self, id: &str, req: &Request, target: Target) {
        let Some(call) = self.calls.get(id) else {
            self.reply(req, 481, target);
            return;
        };
        let from_a = call.a.call_id == req.call_id();
        let bridged_seat = match call.app.as_ref().map(|a| &a.seat) {
            Some(SeatLeg::Bridged(s)) if call.b.call_id == req.call_id() => Some(s.clone()),
            _ => None,
        };
        let state = call.state;
        self.reply(req, 200, target);
        if state != State::Answered {
            return;
        }
        if from_a {
            match call_seat(self.calls.get(id)) {
                Some(SeatLeg::Bridged(_)) => self.send_bye(id, false),
                Some(SeatLeg::Ringing(_)) => self.send_cancel_b(id),
                _ => {}
            }
            self.finish(id, "normal", "caller").await;
        } else if let Some(seat) = bridged_seat {
            self.unbridge(id);
            if let Some(call) = self.calls.get_mut(id) {
                call.record.hangup_side = Some("callee".into());
            }
            self.app_event(AppEvent::SeatHungUp {
                call_id: id.to_string(),
                seat,
            });
        }
    }

    /// Timer B on leg B's INVITE: the seat never answered at all.
    pub(crate) fn app_b_timed_out(&mut self, id: &str) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(SeatLeg::Ringing(seat)) = call.app.as_ref().map(|a| a.seat.clone()) else {
            return;
        };
        call.b_final = true;
        call.record.b_final_code = Some(408);
        if let Some(app) = call.app.as_mut() {
            app.seat = SeatLeg::Idle;
        }
        self.app_event(AppEvent::SeatFailed {
            call_id: id.to_string(),
            seat,
            status: 408,
        });
    }

    /// A SIP INFO digit (application/dtmf-relay) from the caller of an application call.
    pub(crate) fn app_info_digit(&self, id: &str, sip_call_id: &str, digit: char) {
        if self
            .calls
            .get(id)
            .is_some_and(|c| c.app.is_some() && c.a.call_id == sip_call_id)
        {
            self.app_event(AppEvent::Digit {
                call_id: id.to_string(),
                digit,
                source: DtmfSource::Info,
            });
        }
    }

    /// Called by `finish` for every call.
    pub(crate) fn app_finished(&self, id: &str, side: &str) {
        if self.calls.get(id).is_some_and(|c| c.app.is_some()) {
            self.app_event(AppEvent::Ended {
                call_id: id.to_string(),
                side: side.to_string(),
            });
        }
    }
}

/// Passes the media task's answer on; it answers at once, but the engine does not wait.
fn answer_from_media(
    rx: tokio::sync::oneshot::Receiver<bool>,
    reply: tokio::sync::oneshot::Sender<Result<bool, GatewayError>>,
) {
    tokio::spawn(async move {
        let _ = reply.send(Ok(rx.await.unwrap_or(false)));
    });
}

fn call_seat(call: Option<&Call>) -> Option<SeatLeg> {
    call.and_then(|c| c.app.as_ref()).map(|a| a.seat.clone())
}
