//! Keeps the two directions of a call in step (sans-IO). Every frame carries its media
//! position in samples since the recording started (8 kHz); the aligner places it on the
//! timeline of its channel, and emits interleaved stereo once a position is older than the
//! jitter window behind the newest audio seen. Positions nobody sent (lost packets, a silent
//! direction, a held call) come out as silence, so the file's length follows media time, not
//! the number of packets or the wall clock. Paused stretches are emitted as silence too.
//!
//! Drive contract: `push`/`advance`/`pause`/`resume` in any order; `drain` after each
//! input appends what is ready; `finish` appends the rest, padded or cut to the call's end.

use std::collections::VecDeque;

/// Which side of the call a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The caller (left channel).
    Caller,
    /// The IVR or the agent (right channel).
    Agent,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::Caller => 0,
            Direction::Agent => 1,
        }
    }
}

/// Counters the aligner keeps for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AlignStats {
    /// Frames that arrived after their position had been written (partly or wholly).
    pub late_frames: u64,
    /// Frames whose position was too far ahead to be believable (a timestamp jump).
    pub out_of_range_frames: u64,
}

/// A pause of the recording, in samples since start; `end` is `None` while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    pub start: u64,
    pub end: Option<u64>,
}

#[derive(Debug)]
pub struct Aligner {
    /// Stereo frames emitted so far; both buffers start at this position.
    committed: u64,
    bufs: [VecDeque<i16>; 2],
    /// The newest position (exclusive end) heard on any channel, or advanced to.
    max_end: u64,
    window: u64,
    max_ahead: u64,
    pauses: Vec<Pause>,
    stats: AlignStats,
}

impl Aligner {
    /// `window`: how long (in samples) a position waits for late audio before it is written;
    /// `max_ahead`: frames further ahead than this of the written position are refused.
    pub fn new(window: u64, max_ahead: u64) -> Self {
        Self {
            committed: 0,
            bufs: [VecDeque::new(), VecDeque::new()],
            max_end: 0,
            window,
            max_ahead: max_ahead.max(window + 1),
            pauses: Vec::new(),
            stats: AlignStats::default(),
        }
    }

    pub fn committed(&self) -> u64 {
        self.committed
    }

    pub fn max_end(&self) -> u64 {
        self.max_end
    }

    pub fn stats(&self) -> AlignStats {
        self.stats
    }

    pub fn pauses(&self) -> &[Pause] {
        &self.pauses
    }

    pub fn is_paused(&self) -> bool {
        self.pauses.last().is_some_and(|p| p.end.is_none())
    }

    /// Places `samples` of `dir` at position `at` (samples since start).
    pub fn push(&mut self, dir: Direction, at: u64, samples: &[i16]) {
        let end = at + samples.len() as u64;
        if end <= self.committed {
            if !samples.is_empty() {
                self.stats.late_frames += 1;
            }
            return;
        }
        if end > self.committed + self.max_ahead {
            self.stats.out_of_range_frames += 1;
            return;
        }
        let (skip, start) = if at < self.committed {
            self.stats.late_frames += 1;
            ((self.committed - at) as usize, 0usize)
        } else {
            (0, (at - self.committed) as usize)
        };
        let buf = &mut self.bufs[dir.index()];
        let need = start + samples.len() - skip;
        if buf.len() < need {
            buf.resize(need, 0);
        }
        for (slot, s) in buf.range_mut(start..need).zip(&samples[skip..]) {
            *slot = *s;
        }
        self.max_end = self.max_end.max(end);
    }

    /// Media time has reached `at` even if nobody sent audio (both sides on hold).
    pub fn advance(&mut self, at: u64) {
        if at <= self.committed + self.max_ahead {
            self.max_end = self.max_end.max(at);
        }
    }

    /// Starts a pause at `at`; audio from there on is written as silence. Returns false when
    /// already paused.
    pub fn pause(&mut self, at: u64) -> bool {
        if self.is_paused() {
            return false;
        }
        self.pauses.push(Pause {
            start: at.max(self.committed),
            end: None,
        });
        true
    }

    /// Ends the pause at `at`. Returns false when not paused.
    pub fn resume(&mut self, at: u64) -> bool {
        match self.pauses.last_mut() {
            Some(p) if p.end.is_none() => {
                p.end = Some(at.max(p.start));
                true
            }
            _ => false,
        }
    }

    /// Appends the interleaved frames that are ready (older than the jitter window).
    pub fn drain(&mut self, out: &mut Vec<i16>) -> u64 {
        let target = self.max_end.saturating_sub(self.window);
        self.emit_to(target, out)
    }

    /// Appends everything up to `end` (default: the newest position heard), padding with
    /// silence or dropping what lies past the end.
    pub fn finish(&mut self, end: Option<u64>, out: &mut Vec<i16>) -> u64 {
        let end = end.unwrap_or(self.max_end).max(self.committed);
        let n = self.emit_to(end, out);
        self.bufs[0].clear();
        self.bufs[1].clear();
        if let Some(p) = self.pauses.last_mut()
            && p.end.is_none()
        {
            p.end = Some(end);
        }
        n
    }

    fn emit_to(&mut self, target: u64, out: &mut Vec<i16>) -> u64 {
        if target <= self.committed {
            return 0;
        }
        let n = target - self.committed;
        let from = out.len();
        out.reserve(n as usize * 2);
        let [a, b] = &mut self.bufs;
        let take_a = (n as usize).min(a.len());
        let take_b = (n as usize).min(b.len());
        for i in 0..n as usize {
            let l = if i < take_a { a[i] } else { 0 };
            let r = if i < take_b { b[i] } else { 0 };
            out.push(l);
            out.push(r);
        }
        a.drain(..take_a);
        b.drain(..take_b);
        // Silence the paused stretches of what was just emitted.
        let (lo, hi) = (self.committed, target);
        for p in &self.pauses {
            let pe = p.end.unwrap_or(u64::MAX);
            let s = p.start.max(lo);
            let e = pe.min(hi);
            if s < e {
                let i0 = from + ((s - lo) as usize) * 2;
                let i1 = from + ((e - lo) as usize) * 2;
                out[i0..i1].fill(0);
            }
        }
        self.committed = target;
        n
    }
}

/// Maps one direction's RTP timestamps (32-bit, wrapping, random start) to positions in
/// samples since the recording started. The media engine anchors it with the first packet's
/// timestamp and the position at which that packet arrived; a new SSRC needs a new anchor.
#[derive(Debug, Clone, Copy)]
pub struct RtpClock {
    anchor_ts: u32,
    anchor_at: u64,
    /// Extended timestamp of the newest packet, relative to the anchor.
    last_rel: i64,
}

impl RtpClock {
    pub fn new(first_ts: u32, at: u64) -> Self {
        Self {
            anchor_ts: first_ts,
            anchor_at: at,
            last_rel: 0,
        }
    }

    /// The position of a packet with timestamp `ts` (8 kHz clock), unwrapping around 2^32
    /// relative to the newest packet seen (RFC 3550 §5.1: timestamps wrap). `None` for a
    /// position before the recording started.
    pub fn position(&mut self, ts: u32) -> Option<u64> {
        let last_ts = self.anchor_ts.wrapping_add(self.last_rel as u32);
        let delta = i64::from(ts.wrapping_sub(last_ts) as i32);
        let rel = self.last_rel + delta;
        if rel > self.last_rel {
            self.last_rel = rel;
        }
        u64::try_from(self.anchor_at as i64 + rel).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: i16) -> Vec<i16> {
        vec![v; 160]
    }

    fn left(out: &[i16]) -> Vec<i16> {
        out.iter().step_by(2).copied().collect()
    }

    fn right(out: &[i16]) -> Vec<i16> {
        out.iter().skip(1).step_by(2).copied().collect()
    }

    #[test]
    fn interleaves_both_sides_in_step() {
        let mut a = Aligner::new(0, 80_000);
        let mut out = Vec::new();
        a.push(Direction::Caller, 0, &frame(1));
        a.push(Direction::Agent, 0, &frame(2));
        a.finish(None, &mut out);
        assert_eq!(out.len(), 320);
        assert!(left(&out).iter().all(|&s| s == 1));
        assert!(right(&out).iter().all(|&s| s == 2));
    }

    #[test]
    fn lost_frames_become_silence_and_duration_follows_media_time() {
        let mut a = Aligner::new(1_600, 80_000);
        let mut out = Vec::new();
        // 50 frames of 20 ms on each side, every 7th caller frame lost, agent silent at 20..30
        for i in 0..50u64 {
            if i % 7 != 3 {
                a.push(Direction::Caller, i * 160, &frame(5));
            }
            if !(20..30).contains(&i) {
                a.push(Direction::Agent, i * 160, &frame(-5));
            }
            a.drain(&mut out);
        }
        a.finish(Some(50 * 160), &mut out);
        assert_eq!(out.len(), 2 * 50 * 160, "exactly one second");
        let l = left(&out);
        assert!(l[3 * 160..4 * 160].iter().all(|&s| s == 0));
        assert!(l[4 * 160..5 * 160].iter().all(|&s| s == 5));
        let r = right(&out);
        assert!(r[20 * 160..30 * 160].iter().all(|&s| s == 0));
        assert!(r[30 * 160..].iter().all(|&s| s == -5));
    }

    #[test]
    fn late_frames_within_the_window_are_placed_and_later_ones_dropped() {
        let mut a = Aligner::new(320, 80_000);
        let mut out = Vec::new();
        a.push(Direction::Caller, 0, &frame(1));
        a.push(Direction::Caller, 320, &frame(3));
        a.push(Direction::Caller, 480, &frame(4));
        a.drain(&mut out); // commits up to 640 - 320 = 320
        assert_eq!(out.len(), 2 * 320);
        a.push(Direction::Caller, 160, &frame(2)); // too late: its slot was written
        assert_eq!(a.stats().late_frames, 1);
        a.push(Direction::Caller, 640, &frame(5));
        a.finish(None, &mut out);
        let l = left(&out);
        assert_eq!(l.len(), 800);
        assert_eq!(l[200], 0, "the late frame's slot stayed silent");
        assert_eq!(l[400], 3);
        assert_eq!(l[700], 5);
    }

    #[test]
    fn finish_pads_and_cuts_to_the_call_end() {
        let mut a = Aligner::new(0, 80_000);
        let mut out = Vec::new();
        a.push(Direction::Agent, 0, &frame(9));
        a.finish(Some(800), &mut out);
        assert_eq!(out.len(), 1600);
        let mut b = Aligner::new(0, 80_000);
        let mut out2 = Vec::new();
        b.push(Direction::Agent, 0, &frame(9));
        b.finish(Some(100), &mut out2);
        assert_eq!(out2.len(), 200);
    }

    #[test]
    fn pause_writes_silence_not_a_gap() {
        let mut a = Aligner::new(0, 80_000);
        let mut out = Vec::new();
        for i in 0..10u64 {
            if i == 3 {
                assert!(a.pause(i * 160));
                assert!(!a.pause(i * 160));
            }
            if i == 6 {
                assert!(a.resume(i * 160));
            }
            a.push(Direction::Caller, i * 160, &frame(7));
            a.push(Direction::Agent, i * 160, &frame(8));
            a.drain(&mut out);
        }
        a.finish(None, &mut out);
        assert_eq!(out.len(), 2 * 1600);
        let l = left(&out);
        let r = right(&out);
        assert!(l[..480].iter().all(|&s| s == 7));
        assert!(l[480..960].iter().all(|&s| s == 0));
        assert!(r[480..960].iter().all(|&s| s == 0));
        assert!(l[960..].iter().all(|&s| s == 7));
        assert_eq!(
            a.pauses(),
            &[Pause {
                start: 480,
                end: Some(960)
            }]
        );
    }

    #[test]
    fn advance_without_audio_writes_silence_and_jumps_are_refused() {
        let mut a = Aligner::new(0, 8_000);
        let mut out = Vec::new();
        a.advance(1_600);
        a.drain(&mut out);
        assert_eq!(out.len(), 3_200);
        a.push(Direction::Caller, 1_000_000, &frame(1));
        assert_eq!(a.stats().out_of_range_frames, 1);
        assert_eq!(a.max_end(), 1_600);
    }

    #[test]
    fn rtp_clock_unwraps_timestamps() {
        let mut c = RtpClock::new(u32::MAX - 159, 800);
        assert_eq!(c.position(u32::MAX - 159), Some(800));
        assert_eq!(c.position(0), Some(960));
        assert_eq!(c.position(160), Some(1_120));
        // a reordered packet from before the wrap
        assert_eq!(c.position(u32::MAX - 159), Some(800));
        assert_eq!(c.position(320), Some(1_280));
        let mut early = RtpClock::new(1_000, 0);
        assert_eq!(early.position(840), None);
    }
}
