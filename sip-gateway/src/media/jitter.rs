//! A small adaptive jitter buffer for the audio we consume ourselves (DTMF detection,
//! recording). The relay path does not use it: forwarded packets go out as they come.
//!
//! Packets are released in sequence order once more than `depth` are held; a missing packet
//! is given up on when the buffer is over depth and released as [`Frame::Lost`] (the consumer
//! inserts silence, so time stays in step). A packet that arrives after its slot was given up
//! is late: it is dropped and the depth grows by one (up to 8 packets, 160 ms); after 500
//! packets in a row without a late one the depth shrinks by one (down to 1), so the delay
//! follows the network's jitter.

use std::collections::VecDeque;

const MIN_DEPTH: usize = 1;
const MAX_DEPTH: usize = 8;
const SHRINK_AFTER: u32 = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    Audio(Vec<u8>),
    Lost,
}

#[derive(Debug)]
pub(crate) struct JitterBuffer {
    depth: usize,
    /// Sequence number of `slots[0]`.
    next: Option<u16>,
    slots: VecDeque<Option<Vec<u8>>>,
    held: usize,
    calm: u32,
    pub(crate) late: u64,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self {
            depth: 2,
            next: None,
            slots: VecDeque::new(),
            held: 0,
            calm: 0,
            late: 0,
        }
    }
}

impl JitterBuffer {
    #[cfg(test)]
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    pub(crate) fn push(&mut self, seq: u16, payload: &[u8]) {
        let next = *self.next.get_or_insert(seq);
        let offset = seq.wrapping_sub(next);
        if offset >= 0x8000 {
            // Behind the release point: late (or a duplicate of a released packet).
            self.late += 1;
            self.calm = 0;
            self.depth = (self.depth + 1).min(MAX_DEPTH);
            return;
        }
        let offset = usize::from(offset);
        if offset > 4 * MAX_DEPTH + self.slots.len() {
            // A jump far ahead (the sender restarted its numbering): start over there.
            self.slots.clear();
            self.held = 0;
            self.next = Some(seq);
            return self.push(seq, payload);
        }
        if self.slots.len() <= offset {
            self.slots.resize(offset + 1, None);
        }
        if self.slots[offset].is_none() {
            self.slots[offset] = Some(payload.to_vec());
            self.held += 1;
            self.calm += 1;
            if self.calm >= SHRINK_AFTER {
                self.calm = 0;
                self.depth = (self.depth - 1).max(MIN_DEPTH);
            }
        }
    }

    /// The next frame in order, when it is due.
    pub(crate) fn pop(&mut self) -> Option<Frame> {
        if self.held <= self.depth {
            return None;
        }
        self.release()
    }

    /// Everything still held, in order (at the end of the call).
    #[cfg(test)]
    pub(crate) fn drain(&mut self) -> Vec<Frame> {
        let mut v = Vec::new();
        while self.held > 0 {
            if let Some(f) = self.release() {
                v.push(f);
            }
        }
        v
    }

    fn release(&mut self) -> Option<Frame> {
        let slot = self.slots.pop_front()?;
        self.next = self.next.map(|n| n.wrapping_add(1));
        Some(match slot {
            Some(p) => {
                self.held -= 1;
                Frame::Audio(p)
            }
            None => Frame::Lost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(buf: &mut JitterBuffer, seqs: &[u16]) -> Vec<Frame> {
        let mut out = Vec::new();
        for &s in seqs {
            buf.push(s, &s.to_be_bytes());
            while let Some(f) = buf.pop() {
                out.push(f);
            }
        }
        out
    }

    fn audio(s: u16) -> Frame {
        Frame::Audio(s.to_be_bytes().to_vec())
    }

    #[test]
    fn reorders_within_depth_and_wraps() {
        let mut b = JitterBuffer::default();
        let out = run(&mut b, &[65_534, 0, 65_535, 1, 2, 3]);
        assert_eq!(out, [audio(65_534), audio(65_535), audio(0), audio(1)]);
        assert_eq!(b.drain(), [audio(2), audio(3)]);
        assert_eq!(b.late, 0);
    }

    #[test]
    fn loss_becomes_a_lost_frame_and_a_late_packet_grows_the_depth() {
        let mut b = JitterBuffer::default();
        let out = run(&mut b, &[10, 12, 13, 14]);
        assert_eq!(out, [audio(10), Frame::Lost, audio(12)]);
        // 11 arrives after it was given up.
        run(&mut b, &[11]);
        assert_eq!(b.late, 1);
        assert_eq!(b.depth(), 3);
        // Long calm shrinks it again.
        let seqs: Vec<u16> = (15..15 + SHRINK_AFTER as u16).collect();
        run(&mut b, &seqs);
        assert_eq!(b.depth(), 2);
    }

    #[test]
    fn a_restarted_sequence_is_followed() {
        let mut b = JitterBuffer::default();
        run(&mut b, &[100, 101, 102, 103]);
        let out = run(&mut b, &[30_000, 30_001, 30_002, 30_003]);
        assert_eq!(out.first(), Some(&audio(30_000)));
    }
}
