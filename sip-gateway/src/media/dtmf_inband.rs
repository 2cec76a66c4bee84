//! In-band DTMF detection (Goertzel), for trunks that send digits as tones in the audio rather
//! than as RFC 4733 events.
//!
//! The signal is cut into blocks of 102 samples (12.75 ms at 8 kHz). In each block the power at
//! the eight DTMF frequencies (ITU-T Q.23) is measured with the Goertzel algorithm, and a
//! block "shows" a digit when:
//! - the strongest row and column tones are both above the level threshold (−32 dBm0 per
//!   tone, so −25 dBm0 digits pass with margin);
//! - the twist is within limits (Q.24): the column (high) tone at most 8 dB above the row
//!   tone ("normal twist"), and at most 4 dB below it ("reverse twist");
//! - each tone is at least 8 dB above the other tones of its group;
//! - the block is steady (both halves carry about the same energy), so blocks that hold a
//!   tone's start or end do not count and tones shorter than ~23 ms never fire;
//! - the two tones carry most of the block's energy, and their second harmonics carry little:
//!   speech is harmonic-rich and spread over the band, which is what keeps it from firing
//!   (talk-off).
//!
//! A digit is reported once it has shown in two consecutive blocks (≥ 25.5 ms, so a 40 ms tone
//! is always caught whatever its alignment) and is released after two blocks without it, so a
//! single block of speech that looks like a tone never fires and a short dropout inside a
//! tone does not produce a second digit.
//!
//! Sans-IO: feed samples, take digits out; no clock.

/// Samples per analysis block (12.75 ms at 8 kHz).
pub const BLOCK: usize = 102;

const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// 0 dBm0 is a sine of peak amplitude ~22,780 in 16-bit linear PCM (G.711's digital
/// milliwatt is +3.17 dBm0 at full scale). A tone's power as measured below is its energy over
/// the block, A²·N/2.
fn tone_power_at_dbm0(dbm0: f32) -> f32 {
    let a = 22_780.0 * 10f32.powf(dbm0 / 20.0);
    a * a * BLOCK as f32 / 2.0
}

const NORMAL_TWIST_DB: f32 = 8.0;
const REVERSE_TWIST_DB: f32 = 4.0;
const RELATIVE_PEAK_DB: f32 = 8.0;
/// The two tones must hold at least this share of the block's energy.
const TONE_TO_TOTAL: f32 = 0.70;
/// Second harmonics of the two tones together may hold at most this share of the tones' power.
const HARMONIC_RATIO: f32 = 0.10;
/// The block's two halves must carry energy within 2 dB of each other: a block that holds a
/// tone's start or end is not steady, and refusing it is what keeps tones shorter than
/// ~23 ms from firing (Q.24 asks for rejection of short tones).
const HALF_BALANCE: f32 = 0.63;

fn db(x: f32) -> f32 {
    10f32.powf(x / 10.0)
}

/// Goertzel coefficient 2·cos(2πf/fs) for each frequency of interest.
#[derive(Debug, Clone)]
struct Coeffs {
    rows: [f32; 4],
    cols: [f32; 4],
    row_h2: [f32; 4],
    col_h2: [f32; 4],
}

fn coeff(f: f32) -> f32 {
    2.0 * (2.0 * std::f32::consts::PI * f / 8000.0).cos()
}

impl Coeffs {
    fn new() -> Self {
        Self {
            rows: ROWS.map(coeff),
            cols: COLS.map(coeff),
            row_h2: ROWS.map(|f| coeff(2.0 * f)),
            col_h2: COLS.map(|f| coeff(2.0 * f)),
        }
    }
}

/// Power of one frequency over a block: |X(f)|² scaled to the tone's energy (A²·N/2 for a
/// sine of amplitude A), so it compares directly with the block energy Σx².
fn goertzel(block: &[f32], c: f32) -> f32 {
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in block {
        let s0 = x + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let mag2 = s1 * s1 + s2 * s2 - c * s1 * s2;
    2.0 * mag2 / block.len() as f32
}

/// What one block shows.
fn classify(block: &[f32], k: &Coeffs) -> Option<char> {
    let energy: f32 = block.iter().map(|x| x * x).sum();
    let threshold = tone_power_at_dbm0(-32.0);
    if energy < 2.0 * threshold {
        return None;
    }
    let (a, b) = block.split_at(block.len() / 2);
    let (ea, eb): (f32, f32) = (a.iter().map(|x| x * x).sum(), b.iter().map(|x| x * x).sum());
    if ea.min(eb) < HALF_BALANCE * ea.max(eb) {
        return None;
    }
    let rows = k.rows.map(|c| goertzel(block, c));
    let cols = k.cols.map(|c| goertzel(block, c));
    let argmax = |p: &[f32; 4]| {
        (0..4)
            .max_by(|&a, &b| p[a].total_cmp(&p[b]))
            .expect("four entries")
    };
    let (r, c) = (argmax(&rows), argmax(&cols));
    let (pr, pc) = (rows[r], cols[c]);
    if pr < threshold || pc < threshold {
        return None;
    }
    // Q.24 twist: the high-group tone may be up to 8 dB stronger, or 4 dB weaker.
    if pc > pr * db(NORMAL_TWIST_DB) || pr > pc * db(REVERSE_TWIST_DB) {
        return None;
    }
    let rel = db(RELATIVE_PEAK_DB);
    if (0..4).any(|i| i != r && rows[i] * rel > pr) || (0..4).any(|i| i != c && cols[i] * rel > pc)
    {
        return None;
    }
    if pr + pc < TONE_TO_TOTAL * energy {
        return None;
    }
    let h2 = goertzel(block, k.row_h2[r]) + goertzel(block, k.col_h2[c]);
    if h2 > HARMONIC_RATIO * (pr + pc) {
        return None;
    }
    Some(KEYS[r][c])
}

/// The detector for one audio stream.
#[derive(Debug, Clone)]
pub struct InbandDtmfDetector {
    coeffs: Coeffs,
    block: Vec<f32>,
    /// What the last two blocks showed.
    last: Option<char>,
    /// The digit currently held (reported, not yet released).
    current: Option<char>,
    /// Consecutive blocks without the current digit.
    misses: u8,
    out: std::collections::VecDeque<char>,
}

impl Default for InbandDtmfDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDtmfDetector {
    pub fn new() -> Self {
        Self {
            coeffs: Coeffs::new(),
            block: Vec::with_capacity(BLOCK),
            last: None,
            current: None,
            misses: 0,
            out: std::collections::VecDeque::new(),
        }
    }

    /// Feeds 16-bit linear samples at 8 kHz (any count; blocks are assembled inside).
    pub fn handle_samples(&mut self, samples: &[i16]) {
        for &s in samples {
            self.block.push(f32::from(s));
            if self.block.len() == BLOCK {
                let seen = classify(&self.block, &self.coeffs);
                self.block.clear();
                self.handle_block(seen);
            }
        }
    }

    fn handle_block(&mut self, seen: Option<char>) {
        match self.current {
            Some(d) if seen == Some(d) => self.misses = 0,
            Some(_) => {
                self.misses += 1;
                if self.misses >= 2 {
                    self.current = None;
                    self.misses = 0;
                }
            }
            None => {
                if seen.is_some() && seen == self.last {
                    self.current = seen;
                    self.misses = 0;
                    self.out.extend(seen);
                }
            }
        }
        self.last = seen;
    }

    /// The next detected digit.
    pub fn poll_digit(&mut self) -> Option<char> {
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests;
