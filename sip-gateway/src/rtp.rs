//! The anchored RTP relay. [`Forwarder`] is the sans-IO part: it rewrites one direction of a
//! bridged call so the receiving side sees one consistent stream (our SSRC, a sequence and a
//! timestamp that continue across source changes, RFC 3550 §8.2 / §5.1), transcodes
//! PCMA↔PCMU only when the legs differ (G.711 Appendix / `audio-codec-algorithms`), maps the
//! RFC 4733 telephone-event payload type and reports DTMF digits. The driver
//! ([`spawn_relay`]) owns one UDP socket per leg and latches each leg's remote address to the
//! first packet it receives (symmetric RTP, for NAT).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hotline_core::events::{CallEvent, Event, EventSink};
use hotline_core::metrics::Series;
use hotline_core::{Clock, UnixMillis};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::sdp::Codec;

/// What one leg negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LegMedia {
    pub(crate) codec: Codec,
    pub(crate) te: Option<u8>,
}

/// What happened to one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forwarded {
    Dropped,
    Audio,
    /// A telephone-event packet; `Some(digit)` on the first end packet of an event.
    Event(Option<char>),
}

/// A minimal RTP header view (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RtpHeader {
    pub(crate) marker: bool,
    pub(crate) pt: u8,
    pub(crate) seq: u16,
    pub(crate) ts: u32,
    pub(crate) ssrc: u32,
    /// Where the payload starts and ends (padding removed).
    pub(crate) payload: (usize, usize),
}

pub(crate) fn parse_rtp(p: &[u8]) -> Option<RtpHeader> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let cc = usize::from(p[0] & 0x0f);
    let mut start = 12 + cc * 4;
    if p[0] & 0x10 != 0 {
        // Header extension (RFC 3550 §5.3.1): 4 bytes, then length in 32-bit words.
        let ext = p.get(start..start + 4)?;
        start += 4 + usize::from(u16::from_be_bytes([ext[2], ext[3]])) * 4;
    }
    let mut end = p.len();
    if p[0] & 0x20 != 0 {
        let pad = usize::from(*p.last()?);
        end = end.checked_sub(pad)?;
    }
    if start > end {
        return None;
    }
    let pt = p[1] & 0x7f;
    // 72–76 are RTCP packet types when multiplexed (RFC 5761 §4): not RTP.
    if (72..=76).contains(&pt) {
        return None;
    }
    Some(RtpHeader {
        marker: p[1] & 0x80 != 0,
        pt,
        seq: u16::from_be_bytes([p[2], p[3]]),
        ts: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        payload: (start, end),
    })
}

/// One direction of the relay.
#[derive(Debug)]
pub(crate) struct Forwarder {
    from: LegMedia,
    to: LegMedia,
    out_ssrc: u32,
    seq_start: u16,
    ts_start: u32,
    in_ssrc: Option<u32>,
    seq_offset: u16,
    ts_offset: u32,
    last_out: Option<(u16, u32)>,
    last_event_ts: Option<u32>,
}

const DTMF: &[u8; 17] = b"0123456789*#ABCDF";

impl Forwarder {
    pub(crate) fn new(
        from: LegMedia,
        to: LegMedia,
        out_ssrc: u32,
        seq_start: u16,
        ts_start: u32,
    ) -> Self {
        Self {
            from,
            to,
            out_ssrc,
            seq_start,
            ts_start,
            in_ssrc: None,
            seq_offset: 0,
            ts_offset: 0,
            last_out: None,
            last_event_ts: None,
        }
    }

    /// The codec this direction receives.
    pub(crate) fn source_codec(&self) -> Codec {
        self.from.codec
    }

    /// The sequence number and timestamp of the last packet written, if any.
    pub(crate) fn last_out(&self) -> Option<(u16, u32)> {
        self.last_out
    }

    #[cfg(test)]
    pub(crate) fn transcodes(&self) -> bool {
        self.from.codec != self.to.codec
    }

    /// Rewrites `pkt` into `out` (cleared first). `out` is empty when the packet is dropped.
    pub(crate) fn forward(&mut self, pkt: &[u8], out: &mut Vec<u8>) -> Forwarded {
        out.clear();
        let Some(h) = parse_rtp(pkt) else {
            return Forwarded::Dropped;
        };
        let payload = &pkt[h.payload.0..h.payload.1];
        let (out_pt, kind) = if let Some(c_in) = Codec::from_pt(h.pt) {
            (self.to.codec.pt(), Some(c_in))
        } else if Some(h.pt) == self.from.te {
            match self.to.te {
                Some(te) => (te, None),
                None => return Forwarded::Dropped,
            }
        } else if h.pt == 13 {
            (13, None) // comfort noise (RFC 3389) passes as is
        } else {
            return Forwarded::Dropped;
        };
        let mut marker = h.marker;
        if self.in_ssrc != Some(h.ssrc) {
            // A new source: continue our numbering where it stopped (RFC 3550 §8.2 lets a
            // translator keep one SSRC towards the receiver).
            let (seq_next, ts_next) = match self.last_out {
                Some((s, t)) => (s.wrapping_add(1), t.wrapping_add(160)),
                None => (self.seq_start, self.ts_start),
            };
            self.seq_offset = seq_next.wrapping_sub(h.seq);
            self.ts_offset = ts_next.wrapping_sub(h.ts);
            self.in_ssrc = Some(h.ssrc);
            marker = true;
        }
        let seq = h.seq.wrapping_add(self.seq_offset);
        let ts = h.ts.wrapping_add(self.ts_offset);
        self.last_out = Some((seq, ts));
        out.push(0x80);
        out.push(out_pt | if marker { 0x80 } else { 0 });
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&self.out_ssrc.to_be_bytes());
        match kind {
            Some(c_in) if c_in != self.to.codec => {
                out.extend(payload.iter().map(|&b| match c_in {
                    Codec::Pcma => audio_codec_algorithms::convert_alaw_to_ulaw(b),
                    Codec::Pcmu => audio_codec_algorithms::convert_ulaw_to_alaw(b),
                }));
                Forwarded::Audio
            }
            Some(_) => {
                out.extend_from_slice(payload);
                Forwarded::Audio
            }
            None if h.pt == 13 => {
                out.extend_from_slice(payload);
                Forwarded::Audio
            }
            None => {
                out.extend_from_slice(payload);
                // RFC 4733 §2.3: event, E bit, volume, duration; the end packet is repeated.
                let digit = if payload.len() >= 4
                    && payload[1] & 0x80 != 0
                    && self.last_event_ts != Some(h.ts)
                {
                    self.last_event_ts = Some(h.ts);
                    DTMF.get(usize::from(payload[0])).map(|&c| c as char)
                } else {
                    None
                };
                Forwarded::Event(digit)
            }
        }
    }
}

/// Hands out even RTP ports from the configured range (RFC 3550 §11: RTP on even ports).
#[derive(Debug)]
pub(crate) struct PortAllocator {
    min: u16,
    max: u16,
    next: u16,
    in_use: HashSet<u16>,
}

impl PortAllocator {
    pub(crate) fn new(min: u16, max: u16) -> Self {
        let min = min + (min % 2);
        Self {
            min,
            max,
            next: min,
            in_use: HashSet::new(),
        }
    }

    /// The even port after `p`, wrapping at the end of the range.
    fn step(&self, p: u16) -> u16 {
        if p + 2 > self.max { self.min } else { p + 2 }
    }

    /// Candidate ports to try, in order from the last one handed out, skipping those in
    /// use. Lazy: the first free port is found without walking the whole range (which is
    /// 20,000 ports by default, and `bind_rtp` runs twice per call).
    pub(crate) fn candidates(&self) -> impl Iterator<Item = u16> + '_ {
        let mut p = self.next;
        let mut done = false;
        std::iter::from_fn(move || {
            while !done {
                let here = p;
                p = self.step(p);
                done = p == self.next;
                if !self.in_use.contains(&here) {
                    return Some(here);
                }
            }
            None
        })
    }

    pub(crate) fn mark_used(&mut self, port: u16) {
        self.in_use.insert(port);
        self.next = self.step(port);
    }

    pub(crate) fn release(&mut self, port: u16) {
        self.in_use.remove(&port);
    }
}

/// Binds one RTP socket on `ip` from the range.
pub(crate) fn bind_rtp(ports: &mut PortAllocator, ip: IpAddr) -> Option<(UdpSocket, u16)> {
    // A port free in our books may still be taken by another process: try the next ones.
    let mut taken = Vec::new();
    loop {
        let p = ports.candidates().find(|c| !taken.contains(c))?;
        if let Ok(s) = std::net::UdpSocket::bind(SocketAddr::new(ip, p))
            && s.set_nonblocking(true).is_ok()
            && let Ok(sock) = UdpSocket::from_std(s)
        {
            ports.mark_used(p);
            return Some((sock, p));
        }
        taken.push(p);
    }
}

/// Packet counts of one relay, readable by the call and by tests.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Packets the gateway's own player sent to the caller (prompts, survey).
    pub played: AtomicU64,
    pub a_to_b: AtomicU64,
    pub b_to_a: AtomicU64,
    pub dropped: AtomicU64,
}

/// Everything a relay task needs.
pub(crate) struct RelaySetup {
    pub(crate) sock_a: Arc<UdpSocket>,
    pub(crate) sock_b: Arc<UdpSocket>,
    pub(crate) remote_a: SocketAddr,
    pub(crate) remote_b: SocketAddr,
    pub(crate) a_to_b: Forwarder,
    pub(crate) b_to_a: Forwarder,
    pub(crate) call_id: String,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) stats: Arc<RelayStats>,
    pub(crate) metric_a_to_b: Series,
    pub(crate) metric_b_to_a: Series,
    pub(crate) cancel: CancellationToken,
    /// The recorder's tap (leg A is the caller), when the call is recorded. Shared with the
    /// call, so that a relay restarted by a transfer keeps recording into the same file.
    pub(crate) tap: Option<SharedTap>,
    /// Media position 0 (the answer), for every relay of the call.
    pub(crate) origin: UnixMillis,
    /// Finish the tap when this relay is cancelled (click-to-call); otherwise the call
    /// finishes it when it ends.
    pub(crate) finish_tap: bool,
}

/// A call's recording tap, shared by the call and its current relay.
pub(crate) type SharedTap = Arc<std::sync::Mutex<Option<Box<dyn hotline_core::media::CallTap>>>>;

/// Finishes a shared tap at the media position of `now` (once; later calls do nothing).
pub(crate) fn finish_tap(tap: &SharedTap, origin: UnixMillis, now: UnixMillis) {
    let taken = tap.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(t) = taken {
        t.finish(u64::try_from(now - origin).unwrap_or(0) * 8);
    }
}

/// A leg's remote address: the SDP's until the first packet arrives, then the packet's source
/// (latching; RFC 4961 symmetric RTP). Later packets from elsewhere are dropped.
struct Latch {
    addr: SocketAddr,
    latched: bool,
}

impl Latch {
    fn accept(&mut self, src: SocketAddr) -> bool {
        if !self.latched {
            self.addr = src;
            self.latched = true;
        }
        self.addr == src
    }
}

pub(crate) fn spawn_relay(setup: RelaySetup) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run_relay(setup))
}

async fn run_relay(mut s: RelaySetup) {
    let mut la = Latch {
        addr: s.remote_a,
        latched: false,
    };
    let mut lb = Latch {
        addr: s.remote_b,
        latched: false,
    };
    let (mut buf_a, mut buf_b) = (vec![0u8; 2048], vec![0u8; 2048]);
    let mut out = Vec::with_capacity(2048);
    let started = s.origin;
    let pos = |clock: &Arc<dyn Clock>| u64::try_from(clock.now_ms() - started).unwrap_or(0) * 8;
    let (mut heard, mut said) = (
        crate::media::tap::TapClock::default(),
        crate::media::tap::TapClock::default(),
    );
    let mut pcm = Vec::with_capacity(160);
    let tap = s.tap.take();
    let codec_a = s.a_to_b.source_codec();
    let feed =
        |side, clock: &mut crate::media::tap::TapClock, pkt: &[u8], now, pcm: &mut Vec<i16>| {
            if let Some(t) = &tap {
                let mut slot = t.lock().unwrap_or_else(|e| e.into_inner());
                crate::media::session::tap_packet(&mut slot, side, clock, pkt, codec_a, now, pcm);
            }
        };
    loop {
        tokio::select! {
            _ = s.cancel.cancelled() => {
                if s.finish_tap && let Some(t) = &tap {
                    finish_tap(t, s.origin, s.clock.now_ms());
                }
                return;
            }
            r = s.sock_a.recv_from(&mut buf_a) => {
                let Ok((n, src)) = r else { continue };
                if !la.accept(src) {
                    s.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                feed(hotline_core::media::TapSide::Caller, &mut heard, &buf_a[..n], pos(&s.clock), &mut pcm);
                let what = s.a_to_b.forward(&buf_a[..n], &mut out);
                if out.is_empty() {
                    s.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if let Forwarded::Event(Some(d)) = what {
                    dtmf(&s.events, s.clock.now_ms(), &s.call_id, d);
                }
                let _ = s.sock_b.send_to(&out, lb.addr).await;
                s.stats.a_to_b.fetch_add(1, Ordering::Relaxed);
                s.metric_a_to_b.inc();
            }
            r = s.sock_b.recv_from(&mut buf_b) => {
                let Ok((n, src)) = r else { continue };
                if !lb.accept(src) {
                    s.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                // The seat's own digits are relayed but not reported: CallEvent::Dtmf is
                // the caller's input (IVR, surveys).
                s.b_to_a.forward(&buf_b[..n], &mut out);
                if out.is_empty() {
                    s.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let _ = s.sock_a.send_to(&out, la.addr).await;
                feed(hotline_core::media::TapSide::Agent, &mut said, &out, pos(&s.clock), &mut pcm);
                s.stats.b_to_a.fetch_add(1, Ordering::Relaxed);
                s.metric_b_to_a.inc();
            }
        }
    }
}

fn dtmf(events: &Arc<dyn EventSink>, at: UnixMillis, call_id: &str, digit: char) {
    events.publish(Event::Call(CallEvent::Dtmf {
        at,
        call_id: call_id.to_string(),
        digit,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    const A: LegMedia = LegMedia {
        codec: Codec::Pcma,
        te: Some(101),
    };
    const U: LegMedia = LegMedia {
        codec: Codec::Pcmu,
        te: Some(96),
    };

    #[test]
    fn same_codec_passes_payload_and_rewrites_ssrc_seq_ts() {
        let mut f = Forwarder::new(A, A, 0xAABBCCDD, 1000, 50_000);
        assert!(!f.transcodes());
        let mut out = Vec::new();
        assert_eq!(
            f.forward(&pkt(8, 7, 160, 1, &[1, 2, 3]), &mut out),
            Forwarded::Audio
        );
        let h = parse_rtp(&out).unwrap();
        assert_eq!(
            (h.pt, h.seq, h.ts, h.ssrc, h.marker),
            (8, 1000, 50_000, 0xAABBCCDD, true)
        );
        assert_eq!(&out[12..], &[1, 2, 3]);
        f.forward(&pkt(8, 9, 480, 1, &[4]), &mut out);
        let h = parse_rtp(&out).unwrap();
        assert_eq!(
            (h.seq, h.ts, h.marker),
            (1002, 50_320, false),
            "gaps preserved"
        );
        // A new source continues our numbering.
        f.forward(&pkt(8, 60_000, 9, 2, &[5]), &mut out);
        let h = parse_rtp(&out).unwrap();
        assert_eq!(
            (h.seq, h.ts, h.ssrc, h.marker),
            (1003, 50_480, 0xAABBCCDD, true)
        );
    }

    #[test]
    fn transcodes_alaw_to_ulaw_bit_exact() {
        let mut f = Forwarder::new(A, U, 5, 0, 0);
        assert!(f.transcodes());
        let mut out = Vec::new();
        let alaw: Vec<u8> = (0..=255).collect();
        f.forward(&pkt(8, 1, 0, 1, &alaw), &mut out);
        assert_eq!(out[1] & 0x7f, 0);
        for (i, &u) in out[12..].iter().enumerate() {
            let lin_a = audio_codec_algorithms::decode_alaw(i as u8);
            let lin_u = audio_codec_algorithms::decode_ulaw(u);
            let tolerance = (i32::from(lin_a).abs() / 16).max(64);
            assert!(
                (i32::from(lin_a) - i32::from(lin_u)).abs() <= tolerance,
                "{i}: {lin_a} vs {lin_u}"
            );
        }
    }

    #[test]
    fn telephone_event_is_mapped_and_reported_once() {
        let mut f = Forwarder::new(A, U, 5, 0, 0);
        let mut out = Vec::new();
        assert_eq!(
            f.forward(&pkt(101, 1, 800, 1, &[5, 0x0a, 0, 160]), &mut out),
            Forwarded::Event(None)
        );
        assert_eq!(out[1] & 0x7f, 96);
        let end = [5, 0x8a, 0, 240];
        assert_eq!(
            f.forward(&pkt(101, 2, 800, 1, &end), &mut out),
            Forwarded::Event(Some('5'))
        );
        assert_eq!(
            f.forward(&pkt(101, 3, 800, 1, &end), &mut out),
            Forwarded::Event(None)
        );
        // The other side without telephone-event: dropped.
        let mut g = Forwarder::new(
            A,
            LegMedia {
                codec: Codec::Pcma,
                te: None,
            },
            5,
            0,
            0,
        );
        assert_eq!(
            g.forward(&pkt(101, 1, 0, 1, &end), &mut out),
            Forwarded::Dropped
        );
        assert!(out.is_empty());
    }

    #[test]
    fn junk_is_dropped_without_panic() {
        let mut f = Forwarder::new(A, U, 5, 0, 0);
        let mut out = Vec::new();
        for junk in [
            &[][..],
            &[0x80; 5],
            &[0x00; 20],
            &[0xB0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
            &[0xA0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200],
        ] {
            assert_eq!(f.forward(junk, &mut out), Forwarded::Dropped);
        }
        // RTCP sender report multiplexed on the RTP port
        assert_eq!(
            f.forward(&pkt(72, 0, 0, 0, &[]), &mut out),
            Forwarded::Dropped
        );
        // G.729 is not ours
        assert_eq!(
            f.forward(&pkt(18, 0, 0, 0, &[1]), &mut out),
            Forwarded::Dropped
        );
    }

    #[test]
    fn port_allocator_uses_even_ports_and_wraps() {
        let mut p = PortAllocator::new(20001, 20006);
        assert_eq!(
            p.candidates().collect::<Vec<_>>(),
            vec![20002, 20004, 20006]
        );
        p.mark_used(20002);
        assert_eq!(p.candidates().collect::<Vec<_>>(), vec![20004, 20006]);
        p.mark_used(20006);
        assert_eq!(p.candidates().collect::<Vec<_>>(), vec![20004]);
        p.release(20002);
        assert_eq!(p.candidates().collect::<Vec<_>>(), vec![20002, 20004]);
    }
}
