//! Test vectors for the in-band detector: generated tone pairs (levels, durations, twist,
//! noise, alignment) and real speech for talk-off.

use super::*;

/// The shipped Mandarin prompts (speech and music on hold): the talk-off corpus.
const PROMPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ivr/prompts/zh-CN");

const ALL: &str = "123A456B789C*0#D";

/// A deterministic noise source (LCG), uniform, scaled to an RMS level in dBm0.
struct Noise(u64);

impl Noise {
    fn sample(&mut self, dbm0: f32) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0; // uniform in [-1, 1)
        // uniform RMS is 1/√3; 0 dBm0 RMS is 22,780/√2
        let rms = 22_780.0 / std::f32::consts::SQRT_2 * 10f32.powf(dbm0 / 20.0);
        u * rms * 3f32.sqrt()
    }
}

struct Gen {
    out: Vec<i16>,
    noise: Noise,
    noise_dbm0: Option<f32>,
}

impl Gen {
    fn new(noise_dbm0: Option<f32>) -> Self {
        Self {
            out: Vec::new(),
            noise: Noise(7),
            noise_dbm0,
        }
    }

    fn push(&mut self, x: f32) {
        let n = self.noise_dbm0.map_or(0.0, |l| self.noise.sample(l));
        self.out
            .push((x + n).round().clamp(-32768.0, 32767.0) as i16);
    }

    fn silence(&mut self, ms: usize) {
        for _ in 0..ms * 8 {
            self.push(0.0);
        }
    }

    /// A digit with the row tone at `row_dbm0` and the column tone at `col_dbm0`.
    fn digit(&mut self, d: char, row_dbm0: f32, col_dbm0: f32, ms: usize) {
        let (r, c) = (0..4)
            .flat_map(|r| (0..4).map(move |c| (r, c)))
            .find(|&(r, c)| KEYS[r][c] == d)
            .expect("a DTMF key");
        let amp = |dbm0: f32| 22_780.0 * 10f32.powf(dbm0 / 20.0);
        let (ar, ac) = (amp(row_dbm0), amp(col_dbm0));
        for i in 0..ms * 8 {
            let t = i as f32 / 8000.0;
            let x = ar * (2.0 * std::f32::consts::PI * ROWS[r] * t).sin()
                + ac * (2.0 * std::f32::consts::PI * COLS[c] * t + 0.7).sin();
            self.push(x);
        }
    }
}

fn detect(samples: &[i16], chunk: usize) -> String {
    let mut d = InbandDtmfDetector::new();
    let mut out = String::new();
    for part in samples.chunks(chunk) {
        d.handle_samples(part);
        while let Some(x) = d.poll_digit() {
            out.push(x);
        }
    }
    out
}

fn sequence(
    level: f32,
    on_ms: usize,
    off_ms: usize,
    lead_samples: usize,
    noise: Option<f32>,
) -> Vec<i16> {
    let mut g = Gen::new(noise);
    for _ in 0..lead_samples {
        g.push(0.0);
    }
    for d in ALL.chars() {
        g.digit(d, level, level, on_ms);
        g.silence(off_ms);
    }
    g.out
}

#[test]
fn all_sixteen_digits_at_minus_25_dbm0_and_40_ms_at_every_alignment() {
    // Every offset against the 102-sample block grid, fed in RTP-sized (160) chunks.
    for lead in (0..BLOCK).step_by(7) {
        let got = detect(&sequence(-25.0, 40, 40, lead, None), 160);
        assert_eq!(got, ALL, "alignment {lead}");
    }
}

#[test]
fn detection_table_with_noise_levels_and_durations() {
    // (tone level dBm0, on ms, noise dBm0) → must detect all 16 exactly once.
    let cases: &[(f32, usize, Option<f32>)] = &[
        (-25.0, 40, Some(-50.0)),
        (-25.0, 40, Some(-45.0)),
        (-20.0, 40, Some(-40.0)),
        (-10.0, 50, Some(-35.0)),
        (-3.0, 40, None),
        (-25.0, 100, Some(-45.0)),
        (-28.0, 60, None),
    ];
    let mut table = String::from("level  on_ms  noise   detected/16\n");
    for &(level, on, noise) in cases {
        let mut ok = 0;
        for lead in [0, 33, 71] {
            let got = detect(&sequence(level, on, 40, lead, noise), 160);
            if got == ALL {
                ok += 1;
            }
            table.push_str(&format!(
                "{level:>5}  {on:>5}  {:>5}   {}/16 (lead {lead})\n",
                noise.map_or("none".into(), |n| n.to_string()),
                got.len()
            ));
        }
        assert_eq!(ok, 3, "{table}");
    }
    println!("{table}");
}

#[test]
fn too_short_or_too_quiet_tones_are_not_digits() {
    assert_eq!(
        detect(&sequence(-25.0, 20, 40, 0, None), 160),
        "",
        "20 ms is too short"
    );
    assert_eq!(
        detect(&sequence(-40.0, 60, 40, 0, None), 160),
        "",
        "−40 dBm0 is below the threshold"
    );
}

#[test]
fn twist_limits() {
    // (row dBm0, col dBm0, detected?)
    let cases = [
        (-20.0, -20.0, true),
        (-26.0, -20.0, true),  // normal twist 6 dB
        (-30.0, -20.0, false), // normal twist 10 dB
        (-20.0, -23.0, true),  // reverse twist 3 dB
        (-20.0, -26.0, false), // reverse twist 6 dB
    ];
    for (row, col, want) in cases {
        let mut g = Gen::new(Some(-55.0));
        g.silence(20);
        g.digit('5', row, col, 60);
        g.silence(40);
        let got = detect(&g.out, 160);
        assert_eq!(got == "5", want, "row {row} col {col}: got {got:?}");
    }
}

#[test]
fn a_short_dropout_inside_a_tone_is_one_digit_and_a_gap_makes_two() {
    let mut g = Gen::new(None);
    g.digit('7', -20.0, -20.0, 60);
    for _ in 0..40 {
        g.push(0.0); // 5 ms dropout
    }
    g.digit('7', -20.0, -20.0, 60);
    g.silence(60);
    g.digit('7', -20.0, -20.0, 60);
    assert_eq!(detect(&g.out, 160), "77");
}

#[test]
fn single_tones_and_dial_tone_do_not_fire() {
    let mut g = Gen::new(None);
    // 450 Hz Chinese dial tone, and one DTMF row tone alone
    for i in 0..8000 {
        let t = i as f32 / 8000.0;
        g.push(8000.0 * (2.0 * std::f32::consts::PI * 450.0 * t).sin());
    }
    for i in 0..8000 {
        let t = i as f32 / 8000.0;
        g.push(8000.0 * (2.0 * std::f32::consts::PI * 770.0 * t).sin());
    }
    assert_eq!(detect(&g.out, 160), "");
}

fn wavs_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("prompt dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            wavs_under(&p, out);
        } else if p.extension().is_some_and(|x| x == "wav") {
            out.push(p);
        }
    }
}

/// Talk-off: the shipped Mandarin prompts (speech, digits spoken aloud, and the music-on-hold
/// loop) at three levels must never look like DTMF.
#[test]
fn speech_and_music_do_not_fire() {
    let dir = std::path::Path::new(PROMPTS);
    let mut files = Vec::new();
    wavs_under(dir, &mut files);
    assert!(files.len() >= 20, "prompt set found in {}", dir.display());
    let mut table = String::from("gain_db  files  seconds  false_digits\n");
    let mut total_false = 0;
    for gain_db in [-10.0f32, 0.0, 6.0] {
        let gain = 10f32.powf(gain_db / 20.0);
        let (mut secs, mut false_digits) = (0.0, 0);
        for f in &files {
            let mut r = hound::WavReader::open(f).expect("wav");
            assert_eq!(r.spec().sample_rate, 8000, "{}", f.display());
            let samples: Vec<i16> = r
                .samples::<i16>()
                .map(|s| (f32::from(s.expect("sample")) * gain).clamp(-32768.0, 32767.0) as i16)
                .collect();
            secs += samples.len() as f32 / 8000.0;
            let got = detect(&samples, 160);
            if !got.is_empty() {
                eprintln!("{} at {gain_db} dB: {got}", f.display());
            }
            false_digits += got.len();
        }
        table.push_str(&format!(
            "{gain_db:>7}  {:>5}  {secs:>7.1}  {false_digits}\n",
            files.len()
        ));
        total_false += false_digits;
    }
    println!("{table}");
    assert_eq!(total_false, 0, "{table}");
}
