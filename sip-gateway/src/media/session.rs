//! The media task of a call the gateway answers itself (IVR, queue, survey): it owns the
//! caller's RTP socket, plays prompts paced at 20 ms ([`Player`]), takes the caller's digits
//! from RFC 4733 events and from the audio (jitter buffer → G.711 decode → Goertzel), and,
//! while a seat is connected, relays both directions exactly like the plain relay does
//! (no buffering on that path). One SSRC goes to the caller for the whole call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hotline_core::Clock;
use hotline_core::events::{CallEvent, Event, EventSink};
use hotline_core::metrics::Series;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::clip::MediaClip;
use super::dtmf_inband::InbandDtmfDetector;
use super::jitter::{Frame, JitterBuffer};
use super::player::{FRAME, Player, Stream};
use super::rfc4733::EventReceiver;
use super::tap::{TapClock, decode};
use crate::app::{AppEvent, DtmfSource};
use crate::rtp::{Forwarded, Forwarder, LegMedia, RelayStats, parse_rtp};
use crate::sdp::Codec;
use hotline_core::media::{CallTap, TapSide};

/// What the engine asks of a call's media task.
#[derive(Debug)]
pub(crate) enum MediaCmd {
    Play {
        id: u64,
        clips: Vec<MediaClip>,
    },
    Stop,
    Bridge {
        sock_b: Arc<UdpSocket>,
        remote_b: SocketAddr,
        b_media: LegMedia,
        ssrc_b: u32,
    },
    Unbridge,
    /// Hold (`true`) or retrieve the caller of a bridged call: on hold, nothing is relayed
    /// either way and the caller hears what the application plays (music on hold); the
    /// seat hears silence. Answers whether the state changed.
    Hold {
        on: bool,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
    /// Pause or resume the call's recording; answers whether the state changed.
    SetRecordingPaused {
        paused: bool,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
}

pub(crate) struct MediaSetup {
    pub(crate) sock_a: Arc<UdpSocket>,
    pub(crate) remote_a: SocketAddr,
    pub(crate) a_media: LegMedia,
    pub(crate) call_id: String,
    pub(crate) app: mpsc::UnboundedSender<AppEvent>,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) stats: Arc<RelayStats>,
    pub(crate) metric_a_to_b: Series,
    pub(crate) metric_b_to_a: Series,
    pub(crate) cancel: CancellationToken,
    pub(crate) cmds: mpsc::UnboundedReceiver<MediaCmd>,
    pub(crate) stream: Stream,
    /// The recorder's tap, when the call is recorded.
    pub(crate) tap: Option<Box<dyn CallTap>>,
}

struct Bridge {
    sock: Arc<UdpSocket>,
    remote: SocketAddr,
    latched: bool,
    a_to_b: Forwarder,
    b_to_a: Forwarder,
    b_media: LegMedia,
    /// The caller is on hold: the player speaks to the caller, nothing is relayed.
    held: bool,
}

/// The caller's input side: events and in-band tones.
struct Ears {
    codec: Codec,
    te: Option<u8>,
    events: EventReceiver,
    jitter: JitterBuffer,
    inband: InbandDtmfDetector,
    pcm: Vec<i16>,
}

impl Ears {
    /// Digits found in one packet from the caller; in-band detection only while `listen`.
    fn hear(&mut self, pkt: &[u8], listen: bool) -> Vec<(char, DtmfSource)> {
        let mut digits = Vec::new();
        let Some(h) = parse_rtp(pkt) else {
            return digits;
        };
        let payload = &pkt[h.payload.0..h.payload.1];
        if Some(h.pt) == self.te {
            digits.extend(
                self.events
                    .handle(h.ts, payload)
                    .into_iter()
                    .map(|e| (e.digit, DtmfSource::Rfc4733)),
            );
            return digits;
        }
        if !listen || Codec::from_pt(h.pt) != Some(self.codec) {
            return digits;
        }
        self.jitter.push(h.seq, payload);
        while let Some(frame) = self.jitter.pop() {
            self.pcm.clear();
            match frame {
                Frame::Audio(p) => self.pcm.extend(p.iter().map(|&b| match self.codec {
                    Codec::Pcma => audio_codec_algorithms::decode_alaw(b),
                    Codec::Pcmu => audio_codec_algorithms::decode_ulaw(b),
                })),
                Frame::Lost => self.pcm.resize(FRAME, 0),
            }
            self.inband.handle_samples(&self.pcm);
            while let Some(d) = self.inband.poll_digit() {
                digits.push((d, DtmfSource::Inband));
            }
        }
        digits
    }
}

pub(crate) fn spawn_media(setup: MediaSetup) {
    tokio::spawn(run(setup));
}

async fn run(mut s: MediaSetup) {
    let mut player = Player::default();
    let mut ears = Ears {
        codec: s.a_media.codec,
        te: s.a_media.te,
        events: EventReceiver::default(),
        jitter: JitterBuffer::default(),
        inband: InbandDtmfDetector::new(),
        pcm: Vec::with_capacity(FRAME),
    };
    let mut remote_a = s.remote_a;
    let mut a_latched = false;
    let mut bridge: Option<Bridge> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut buf_a, mut buf_b) = (vec![0u8; 2048], vec![0u8; 2048]);
    let mut out = Vec::with_capacity(2048);
    let started = s.clock.now_ms();
    let pos = |clock: &Arc<dyn Clock>| u64::try_from(clock.now_ms() - started).unwrap_or(0) * 8;
    let (mut heard, mut said) = (TapClock::default(), TapClock::default());
    let mut pcm = Vec::with_capacity(FRAME);
    let mut tap = s.tap.take();
    loop {
        let sock_b = bridge.as_ref().map(|b| b.sock.clone());
        let recv_b = async {
            match &sock_b {
                Some(sock) => sock.recv_from(&mut buf_b).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = s.cancel.cancelled() => {
                if let Some(t) = tap.take() {
                    t.finish(pos(&s.clock));
                }
                return;
            }
            cmd = s.cmds.recv() => match cmd {
                None => {
                    if let Some(t) = tap.take() {
                        t.finish(pos(&s.clock));
                    }
                    return;
                }
                Some(MediaCmd::SetRecordingPaused { paused, reply }) => {
                    let changed = tap.as_mut().is_some_and(|t| t.set_paused(paused));
                    let _ = reply.send(changed);
                }
                Some(MediaCmd::Play { id, clips }) => player.play(id, clips),
                Some(MediaCmd::Stop) => player.stop(),
                Some(MediaCmd::Bridge { sock_b, remote_b, b_media, ssrc_b }) => {
                    player.stop();
                    // Towards the caller the seat's audio continues our stream (same SSRC,
                    // next sequence number and timestamp).
                    bridge = Some(Bridge {
                        sock: sock_b,
                        remote: remote_b,
                        latched: false,
                        a_to_b: Forwarder::new(s.a_media, b_media, ssrc_b, (ssrc_b >> 16) as u16, ssrc_b.rotate_left(7)),
                        b_to_a: Forwarder::new(b_media, s.a_media, s.stream.ssrc, s.stream.seq, s.stream.ts),
                        b_media,
                        held: false,
                    });
                }
                Some(MediaCmd::Hold { on, reply }) => {
                    let changed = match bridge.as_mut() {
                        Some(b) if b.held != on => {
                            b.held = on;
                            if on {
                                // The player continues the caller's stream where the seat's
                                // audio left it (RFC 3550 §5.1: one SSRC, contiguous numbers).
                                if let Some((seq, ts)) = b.b_to_a.last_out() {
                                    s.stream.seq = seq.wrapping_add(1);
                                    s.stream.ts = ts.wrapping_add(FRAME as u32);
                                }
                                s.stream.talking = false;
                                tick.reset();
                            } else {
                                player.stop();
                                b.b_to_a = Forwarder::new(b.b_media, s.a_media, s.stream.ssrc, s.stream.seq, s.stream.ts);
                            }
                            true
                        }
                        _ => false,
                    };
                    let _ = reply.send(changed);
                }
                Some(MediaCmd::Unbridge) => {
                    // On hold the player's stream is already the newer one.
                    if let Some(b) = bridge.take().filter(|b| !b.held)
                        && let Some((seq, ts)) = b.b_to_a.last_out()
                    {
                        s.stream.seq = seq.wrapping_add(1);
                        s.stream.ts = ts.wrapping_add(FRAME as u32);
                    }
                    s.stream.talking = false;
                    tick.reset();
                }
            },
            _ = tick.tick(), if bridge.as_ref().is_none_or(|b| b.held) => {
                let t = player.tick(s.a_media.codec, &mut s.stream, &mut out);
                if t.sent {
                    let _ = s.sock_a.send_to(&out, remote_a).await;
                    s.stats.played.fetch_add(1, Ordering::Relaxed);
                    tap_packet(&mut tap, TapSide::Agent, &mut said, &out, s.a_media.codec, pos(&s.clock), &mut pcm);
                }
                for id in t.finished {
                    let _ = s.app.send(AppEvent::PlayFinished { call_id: s.call_id.clone(), id });
                }
            }
            r = s.sock_a.recv_from(&mut buf_a) => {
                let Ok((n, src)) = r else { continue };
                // Symmetric RTP (RFC 4961): answer where the caller sends from.
                if !a_latched {
                    remote_a = src;
                    a_latched = true;
                } else if src != remote_a {
                    s.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let pkt = &buf_a[..n];
                tap_packet(&mut tap, TapSide::Caller, &mut heard, pkt, s.a_media.codec, pos(&s.clock), &mut pcm);
                for (digit, source) in ears.hear(pkt, bridge.is_none()) {
                    report_digit(&s, digit, source);
                }
                if let Some(b) = bridge.as_mut().filter(|b| !b.held) {
                    let what = b.a_to_b.forward(pkt, &mut out);
                    if out.is_empty() || what == Forwarded::Dropped {
                        s.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let _ = b.sock.send_to(&out, b.remote).await;
                    s.stats.a_to_b.fetch_add(1, Ordering::Relaxed);
                    s.metric_a_to_b.inc();
                }
            }
            r = recv_b => {
                let Ok((n, src)) = r else { continue };
                let Some(b) = bridge.as_mut() else { continue };
                if b.held {
                    continue; // the seat talks to nobody while the caller is on hold
                }
                if !b.latched {
                    b.remote = src;
                    b.latched = true;
                } else if src != b.remote {
                    s.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                b.b_to_a.forward(&buf_b[..n], &mut out);
                if out.is_empty() {
                    s.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let _ = s.sock_a.send_to(&out, remote_a).await;
                s.stats.b_to_a.fetch_add(1, Ordering::Relaxed);
                s.metric_b_to_a.inc();
                tap_packet(&mut tap, TapSide::Agent, &mut said, &out, s.a_media.codec, pos(&s.clock), &mut pcm);
            }
        }
    }
}

/// Hands one RTP packet's audio (when it is `codec`, not an event) to the tap.
pub(crate) fn tap_packet(
    tap: &mut Option<Box<dyn CallTap>>,
    side: TapSide,
    clock: &mut TapClock,
    pkt: &[u8],
    codec: Codec,
    now: u64,
    pcm: &mut Vec<i16>,
) {
    let Some(t) = tap.as_mut() else {
        return;
    };
    let Some(h) = parse_rtp(pkt) else {
        return;
    };
    if Codec::from_pt(h.pt) != Some(codec) {
        return;
    }
    if let Some(at) = clock.position(h.ssrc, h.ts, now) {
        decode(codec, &pkt[h.payload.0..h.payload.1], pcm);
        t.audio(side, at, pcm);
    }
}

fn report_digit(s: &MediaSetup, digit: char, source: DtmfSource) {
    tracing::debug!(call = %s.call_id, %digit, ?source, "caller digit");
    s.events.publish(Event::Call(CallEvent::Dtmf {
        at: s.clock.now_ms(),
        call_id: s.call_id.clone(),
        digit,
    }));
    let _ = s.app.send(AppEvent::Digit {
        call_id: s.call_id.clone(),
        digit,
        source,
    });
}
