//! Feeding the media tap (`hotline_core::media`, the recorder) from RTP: decoding G.711 and
//! placing each packet at its media position (samples since the answer).
//!
//! A side's position comes from its RTP timestamps, anchored at the first packet's arrival:
//! `at = arrival_of_first + (ts − ts_first)`. So lost packets leave gaps (written as silence
//! by the recorder) and reordered ones land where they belong, while the two sides stay in
//! step with the wall clock (RFC 3550 §5.1: the timestamp is the sampling instant). A new
//! SSRC (the seat's stream after a reconnect) re-anchors, and so does a stream whose
//! timestamps drift more than a second from its arrivals (a sender that restarted its clock
//! or does not advance it over silence): its audio is then placed by arrival rather than
//! thrown away as late.

use crate::sdp::Codec;

/// One second at 8 kHz.
const MAX_DRIFT: i64 = 8_000;

#[derive(Debug, Default)]
pub(crate) struct TapClock {
    /// (ssrc, timestamp, position) of the anchor packet.
    anchor: Option<(u32, u32, u64)>,
    /// The newest packet's timestamp relative to the anchor.
    newest: i64,
}

impl TapClock {
    /// The position of a packet with `ssrc`/`ts` arriving at position `now`; `None` when it
    /// would fall before the anchor (a very late packet of a previous stretch).
    pub(crate) fn position(&mut self, ssrc: u32, ts: u32, now: u64) -> Option<u64> {
        let (a_ssrc, a_ts, a_at) = *self.anchor.get_or_insert((ssrc, ts, now));
        let rel = i64::from(ts.wrapping_sub(a_ts) as i32);
        let at = a_at as i64 + rel;
        // Only a packet newer than any before may move the anchor: a late one is placed by
        // its timestamp (or refused), never drags the stream back.
        let newer = rel > self.newest;
        if a_ssrc != ssrc || (newer && (at - now as i64).abs() > MAX_DRIFT) {
            self.anchor = Some((ssrc, ts, now));
            self.newest = 0;
            return Some(now);
        }
        if newer {
            self.newest = rel;
        }
        u64::try_from(at).ok()
    }
}

/// Decodes a G.711 payload into `out` (cleared first).
pub(crate) fn decode(codec: Codec, payload: &[u8], out: &mut Vec<i16>) {
    out.clear();
    out.extend(payload.iter().map(|&b| match codec {
        Codec::Pcma => audio_codec_algorithms::decode_alaw(b),
        Codec::Pcmu => audio_codec_algorithms::decode_ulaw(b),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_timestamps_from_the_first_arrival() {
        let mut c = TapClock::default();
        assert_eq!(c.position(7, u32::MAX - 159, 800), Some(800));
        // Next packet, wrapped timestamp, arriving a bit late: placed by its timestamp.
        assert_eq!(c.position(7, 0, 1_000), Some(960));
        // A lost packet leaves a 160-sample gap.
        assert_eq!(c.position(7, 320, 1_300), Some(1_280));
        // Reordered: an older one lands before.
        assert_eq!(c.position(7, 160, 1_310), Some(1_120));
        // Before the anchor: refused rather than wrapped to the far future.
        assert_eq!(c.position(7, u32::MAX - 10_000, 1_400), None);
        // Timestamps that fell behind the arrivals by more than a second re-anchor.
        assert_eq!(c.position(7, 480, 20_000), Some(20_000));
        assert_eq!(c.position(7, 640, 20_150), Some(20_160));
        // A new source re-anchors at its arrival.
        assert_eq!(c.position(9, 5, 5_000), Some(5_000));
        assert_eq!(c.position(9, 165, 5_100), Some(5_160));
    }
}
