//! The measuring half of the RTP load tool: packets carry a stamp in their payload (the relay
//! passes G.711 through unchanged when both legs use the same codec, while it may rewrite the
//! RTP header), and the receiver turns stamps into loss, latency percentiles and RFC 3550
//! interarrival jitter. Pure code, no I/O.

/// RTP header length without CSRCs or extensions (RFC 3550 §5.1).
pub const RTP_HEADER: usize = 12;
/// 20 ms of G.711 at 8 kHz.
pub const PCMA_PAYLOAD: usize = 160;
/// Marks our payloads, so stray packets are not counted.
const MAGIC: u32 = 0x5254_504c; // "RTPL"
const STAMP_LEN: usize = 24;
/// A-law silence, to pad the payload after the stamp.
const PCMA_SILENCE: u8 = 0xd5;

/// What a packet's payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The load level (run) the packet belongs to: late packets of an earlier run are ignored.
    pub run: u32,
    /// The call (stream) within the run and direction.
    pub stream: u32,
    pub seq: u32,
    /// Send time, ns on the sender's monotonic clock.
    pub sent_ns: u64,
}

impl Stamp {
    /// A full RTP packet (PT 8, PCMA) carrying this stamp.
    pub fn packet(&self, ssrc: u32, out: &mut [u8; RTP_HEADER + PCMA_PAYLOAD]) {
        out[0] = 0x80;
        out[1] = 8;
        out[2..4].copy_from_slice(&(self.seq as u16).to_be_bytes());
        out[4..8].copy_from_slice(&self.seq.wrapping_mul(160).to_be_bytes());
        out[8..12].copy_from_slice(&ssrc.to_be_bytes());
        let p = &mut out[RTP_HEADER..];
        p[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        p[4..8].copy_from_slice(&self.run.to_be_bytes());
        p[8..12].copy_from_slice(&self.stream.to_be_bytes());
        p[12..16].copy_from_slice(&self.seq.to_be_bytes());
        p[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
        p[STAMP_LEN..].fill(PCMA_SILENCE);
    }

    /// The stamp of a received RTP packet (header length taken from the packet itself).
    pub fn from_packet(pkt: &[u8]) -> Option<Stamp> {
        if pkt.len() < RTP_HEADER || pkt[0] >> 6 != 2 {
            return None;
        }
        let csrc = usize::from(pkt[0] & 0x0f) * 4;
        let mut off = RTP_HEADER + csrc;
        if pkt[0] & 0x10 != 0 {
            // RFC 3550 §5.3.1 header extension: 4 bytes + length in 32-bit words.
            let ext = pkt.get(off + 2..off + 4)?;
            off += 4 + usize::from(u16::from_be_bytes([ext[0], ext[1]])) * 4;
        }
        let p = pkt.get(off..off + STAMP_LEN)?;
        let word = |i: usize| u32::from_be_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
        if word(0) != MAGIC {
            return None;
        }
        let mut ns = [0u8; 8];
        ns.copy_from_slice(&p[16..24]);
        Some(Stamp {
            run: word(4),
            stream: word(8),
            seq: word(12),
            sent_ns: u64::from_be_bytes(ns),
        })
    }
}

/// RFC 3550 §6.4.1 interarrival jitter of one stream, with the send stamps in place of the RTP
/// timestamps: it measures the variation the path (the relay) adds, in ns.
#[derive(Debug, Clone, Default)]
pub struct Jitter {
    last: Option<(u64, u64)>,
    jitter: f64,
}

impl Jitter {
    pub fn on_packet(&mut self, sent_ns: u64, received_ns: u64) {
        if let Some((s, r)) = self.last {
            let d = (received_ns as f64 - r as f64) - (sent_ns as f64 - s as f64);
            self.jitter += (d.abs() - self.jitter) / 16.0;
        }
        self.last = Some((sent_ns, received_ns));
    }
    pub fn ns(&self) -> f64 {
        self.jitter
    }
}

/// One direction's counters for a run.
#[derive(Debug, Clone, Default)]
pub struct DirectionStats {
    pub received: u64,
    /// Receive time − stamp, µs, one entry per packet.
    pub latencies_us: Vec<u32>,
    pub jitter: Vec<Jitter>,
}

impl DirectionStats {
    pub fn on_packet(&mut self, stamp: &Stamp, received_ns: u64) {
        self.received += 1;
        let lat = received_ns.saturating_sub(stamp.sent_ns) / 1000;
        self.latencies_us
            .push(u32::try_from(lat).unwrap_or(u32::MAX));
        let i = stamp.stream as usize;
        if self.jitter.len() <= i {
            self.jitter.resize_with(i + 1, Jitter::default);
        }
        self.jitter[i].on_packet(stamp.sent_ns, received_ns);
    }

    /// Mean and maximum of the streams' final jitter, µs.
    pub fn jitter_us(&self) -> (f64, f64) {
        let seen: Vec<f64> = self
            .jitter
            .iter()
            .filter(|j| j.last.is_some())
            .map(|j| j.ns() / 1000.0)
            .collect();
        if seen.is_empty() {
            return (0.0, 0.0);
        }
        let mean = seen.iter().sum::<f64>() / seen.len() as f64;
        (mean, seen.iter().copied().fold(0.0, f64::max))
    }
}

/// The `p`-th percentile (0–100, nearest rank) of `values`; sorts them in place.
pub fn percentile(values: &mut [u32], p: f64) -> Option<u32> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

/// Loss in percent of `sent`.
pub fn loss_percent(sent: u64, received: u64) -> f64 {
    if sent == 0 {
        return 0.0;
    }
    100.0 * sent.saturating_sub(received) as f64 / sent as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_survives_a_packet_round_trip_and_a_rewritten_header() {
        let s = Stamp {
            run: 3,
            stream: 1999,
            seq: 70_000,
            sent_ns: 123_456_789_012,
        };
        let mut pkt = [0u8; RTP_HEADER + PCMA_PAYLOAD];
        s.packet(0xdead_beef, &mut pkt);
        assert_eq!(pkt[1], 8);
        assert_eq!(Stamp::from_packet(&pkt), Some(s));
        // The relay rewrites SSRC, sequence number and timestamp: the stamp is untouched.
        pkt[2..12].fill(0x42);
        assert_eq!(Stamp::from_packet(&pkt), Some(s));
        assert_eq!(pkt[RTP_HEADER + PCMA_PAYLOAD - 1], PCMA_SILENCE);
        // Not ours, too short, not RTP.
        let mut other = pkt;
        other[RTP_HEADER] ^= 1;
        assert_eq!(Stamp::from_packet(&other), None);
        assert_eq!(Stamp::from_packet(&pkt[..20]), None);
        let mut v1 = pkt;
        v1[0] = 0x40;
        assert_eq!(Stamp::from_packet(&v1), None);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let mut j = Jitter::default();
        // Constant delay: no jitter.
        for i in 0..10u64 {
            j.on_packet(i * 20_000_000, i * 20_000_000 + 500_000);
        }
        assert_eq!(j.ns(), 0.0);
        // One packet 1.6 ms late: D = 1.6 ms, J = 1.6/16 ms; the next one on time again gives
        // D = -1.6 ms, J += (1.6 - 0.1)/16.
        j.on_packet(200_000_000, 202_100_000);
        assert!((j.ns() - 100_000.0).abs() < 1e-6);
        j.on_packet(220_000_000, 220_500_000);
        assert!((j.ns() - (100_000.0 + 1_500_000.0 / 16.0)).abs() < 1e-6);
    }

    #[test]
    fn percentiles_and_loss() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut v, 50.0), Some(50));
        assert_eq!(percentile(&mut v, 99.0), Some(99));
        assert_eq!(percentile(&mut v, 100.0), Some(100));
        assert_eq!(percentile(&mut [7], 0.0), Some(7));
        assert_eq!(percentile(&mut [], 50.0), None);
        assert_eq!(loss_percent(1000, 990), 1.0);
        assert_eq!(loss_percent(0, 0), 0.0);
        let mut d = DirectionStats::default();
        let s = Stamp {
            run: 1,
            stream: 4,
            seq: 0,
            sent_ns: 1_000_000,
        };
        d.on_packet(&s, 1_250_000);
        assert_eq!(d.latencies_us, vec![250]);
        assert_eq!(d.jitter_us(), (0.0, 0.0));
    }
}
