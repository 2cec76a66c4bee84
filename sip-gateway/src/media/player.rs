//! The prompt player and RTP packetizer (sans-IO): the media task calls [`Player::tick`]
//! every 20 ms; it returns the next packet to send, if any.
//!
//! RTP rules kept here (RFC 3550 §5.1, RFC 3551 §4.1):
//! - one SSRC for the whole call: prompts, the bridged seat's audio and the survey all go out
//!   under it, with sequence numbers and timestamps that continue across them;
//! - the timestamp advances 160 per 20 ms whether or not a packet is sent, so that after a
//!   silent gap the receiver sees the real elapsed time;
//! - the marker bit is set on the first packet of each talk-spurt (after a gap in sending).

use std::collections::VecDeque;

use super::clip::{ALAW_SILENCE, MediaClip, ULAW_SILENCE};
use crate::sdp::Codec;

/// Samples in one 20 ms packet at 8 kHz.
pub const FRAME: usize = 160;

/// Our outgoing stream's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stream {
    pub(crate) ssrc: u32,
    /// The next packet's sequence number.
    pub(crate) seq: u16,
    /// The next packet's timestamp.
    pub(crate) ts: u32,
    /// The previous tick sent a packet (no marker needed on the next one).
    pub(crate) talking: bool,
}

impl Stream {
    /// Writes one RTP packet (RFC 3550 §5.1, no CSRC, no extension) into `out` and advances.
    pub(crate) fn packet(&mut self, pt: u8, payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.push(0x80);
        out.push(pt | if self.talking { 0 } else { 0x80 });
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.ts.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME as u32);
        self.talking = true;
    }

    /// A tick without a packet: time goes on, the next packet starts a talk-spurt.
    pub(crate) fn idle(&mut self) {
        self.ts = self.ts.wrapping_add(FRAME as u32);
        self.talking = false;
    }
}

struct Playback {
    id: u64,
    clips: Vec<MediaClip>,
    clip: usize,
    offset: usize,
}

/// What one tick produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Tick {
    /// The packet was written into the output buffer.
    pub(crate) sent: bool,
    /// Playbacks whose last sample went out with this tick (or that were empty).
    pub(crate) finished: Vec<u64>,
}

/// Queued playbacks, played in order.
#[derive(Default)]
pub(crate) struct Player {
    queue: VecDeque<Playback>,
    payload: Vec<u8>,
}

impl Player {
    pub(crate) fn play(&mut self, id: u64, clips: Vec<MediaClip>) {
        self.queue.push_back(Playback {
            id,
            clips,
            clip: 0,
            offset: 0,
        });
    }

    /// Drops every queued playback (barge-in, bridge): no "finished" for them.
    pub(crate) fn stop(&mut self) {
        self.queue.clear();
    }

    #[cfg(test)]
    pub(crate) fn is_playing(&self) -> bool {
        !self.queue.is_empty()
    }

    /// One 20 ms tick: the next frame of the current playback, padded with silence at its
    /// end; playbacks with nothing (left) to play are reported finished.
    pub(crate) fn tick(&mut self, codec: Codec, stream: &mut Stream, out: &mut Vec<u8>) -> Tick {
        let mut tick = Tick::default();
        self.payload.clear();
        while self.payload.len() < FRAME {
            let Some(p) = self.queue.front_mut() else {
                break;
            };
            while p.clip < p.clips.len() && self.payload.len() < FRAME {
                let data = p.clips[p.clip].encoded(codec);
                let take = (FRAME - self.payload.len()).min(data.len() - p.offset);
                self.payload
                    .extend_from_slice(&data[p.offset..p.offset + take]);
                p.offset += take;
                if p.offset == data.len() {
                    p.clip += 1;
                    p.offset = 0;
                }
            }
            if p.clip >= p.clips.len() {
                tick.finished.push(p.id);
                self.queue.pop_front();
                // The next playback starts in the next packet (prompts are not glued
                // mid-frame); an empty one finishes without taking a frame.
                if !self.payload.is_empty() {
                    break;
                }
            }
        }
        if self.payload.is_empty() {
            stream.idle();
            return tick;
        }
        let pad = match codec {
            Codec::Pcma => ALAW_SILENCE,
            Codec::Pcmu => ULAW_SILENCE,
        };
        self.payload.resize(FRAME, pad);
        stream.packet(codec.pt(), &self.payload, out);
        tick.sent = true;
        tick
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::rtp::parse_rtp;

    fn clip(samples: usize, value: i16) -> MediaClip {
        MediaClip::from_pcm("t", Arc::from(vec![value; samples]))
    }

    fn stream() -> Stream {
        Stream {
            ssrc: 0x1234_5678,
            seq: 65_534,
            ts: u32::MAX - 159,
            talking: false,
        }
    }

    #[test]
    fn frames_are_paced_numbered_and_padded() {
        let mut p = Player::default();
        let mut s = stream();
        let mut out = Vec::new();
        // 400 samples = 2.5 frames.
        p.play(7, vec![clip(400, 1000)]);
        let mut packets = Vec::new();
        let mut finished = Vec::new();
        for _ in 0..5 {
            let t = p.tick(Codec::Pcmu, &mut s, &mut out);
            finished.extend(t.finished);
            if t.sent {
                packets.push(out.clone());
            }
        }
        assert_eq!(packets.len(), 3);
        assert_eq!(finished, vec![7]);
        let h: Vec<_> = packets.iter().map(|p| parse_rtp(p).unwrap()).collect();
        // Marker on the first packet only; sequence and timestamp wrap.
        assert_eq!(
            h.iter().map(|h| h.marker).collect::<Vec<_>>(),
            [true, false, false]
        );
        assert_eq!(
            h.iter().map(|h| h.seq).collect::<Vec<_>>(),
            [65_534, 65_535, 0]
        );
        assert_eq!(
            h.iter().map(|h| h.ts).collect::<Vec<_>>(),
            [u32::MAX - 159, 0, 160]
        );
        assert!(h.iter().all(|h| h.ssrc == 0x1234_5678 && h.pt == 0));
        // The half frame at the end is padded with μ-law silence.
        let last = &packets[2][12..];
        assert_eq!(last.len(), FRAME);
        assert!(last[80..].iter().all(|&b| b == ULAW_SILENCE));
        assert!(last[..80].iter().all(|&b| b != ULAW_SILENCE));
        // Two idle ticks advanced the clock: the next talk-spurt is marked and 2 frames on.
        p.play(8, vec![clip(160, 5)]);
        let t = p.tick(Codec::Pcma, &mut s, &mut out);
        assert!(t.sent);
        let h = parse_rtp(&out).unwrap();
        assert!(h.marker);
        assert_eq!(h.seq, 1);
        assert_eq!(h.ts, 160 + 3 * 160);
        assert_eq!(h.pt, 8);
        assert_eq!(t.finished, vec![8]);
    }

    #[test]
    fn clips_of_one_playback_are_joined_and_queued_playbacks_follow() {
        let mut p = Player::default();
        let mut s = stream();
        let mut out = Vec::new();
        p.play(1, vec![clip(100, 1), clip(100, 2)]);
        p.play(2, vec![]);
        p.play(3, vec![clip(160, 3)]);
        let t1 = p.tick(Codec::Pcma, &mut s, &mut out);
        assert_eq!(out.len(), 12 + FRAME);
        assert!(t1.finished.is_empty());
        let t2 = p.tick(Codec::Pcma, &mut s, &mut out);
        assert_eq!(t2.finished, vec![1]);
        let t3 = p.tick(Codec::Pcma, &mut s, &mut out);
        // The empty playback finishes at once, then the next one plays.
        assert_eq!(t3.finished, vec![2, 3]);
        assert!(t3.sent);
        assert!(!p.is_playing());
        p.play(4, vec![clip(1000, 1)]);
        p.stop();
        let t = p.tick(Codec::Pcma, &mut s, &mut out);
        assert!(!t.sent && t.finished.is_empty());
    }
}
