//! The media engine's per-call costs, per core.
//!
//! `cargo bench -p hotline-sip-gateway --bench media` (results in bench/README.md).
//!
//! 1. In-band DTMF detection (Goertzel): seconds of 8 kHz audio analysed per CPU second =
//!    how many callers one core can listen to at once. Measured on speech-like noise (the
//!    common case: nobody presses a key) and on a digit sequence.
//! 2. Prompt pre-encoding (`MediaClip::from_pcm`, A-law + μ-law once per prompt): seconds of
//!    prompt encoded per CPU second (start and reload cost).

use std::sync::Arc;
use std::time::Instant;

use hotline_sip_gateway::MediaClip;
use hotline_sip_gateway::media::dtmf_inband::InbandDtmfDetector;

fn noise(seconds: usize) -> Vec<i16> {
    // A deterministic LCG: broadband noise at speech-like level.
    let mut x: u32 = 12345;
    (0..seconds * 8000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            ((x >> 16) as i16) / 8
        })
        .collect()
}

fn digits(seconds: usize) -> Vec<i16> {
    let keys = [
        (697.0, 1209.0),
        (770.0, 1336.0),
        (852.0, 1477.0),
        (941.0, 1336.0),
    ];
    let mut v = Vec::with_capacity(seconds * 8000);
    let mut k = 0;
    while v.len() < seconds * 8000 {
        let (lo, hi): (f64, f64) = keys[k % keys.len()];
        for i in 0..800 {
            let t = f64::from(i) / 8000.0;
            let s = 6000.0
                * ((2.0 * std::f64::consts::PI * lo * t).sin()
                    + (2.0 * std::f64::consts::PI * hi * t).sin());
            v.push(s as i16);
        }
        v.extend(std::iter::repeat_n(0, 800));
        k += 1;
    }
    v.truncate(seconds * 8000);
    v
}

fn detector(label: &str, audio: &[i16]) {
    let mut d = InbandDtmfDetector::new();
    let t = Instant::now();
    let mut found = 0;
    // 20 ms packets, as the media task feeds it.
    for frame in audio.chunks(160) {
        d.handle_samples(frame);
        while d.poll_digit().is_some() {
            found += 1;
        }
    }
    let cpu = t.elapsed().as_secs_f64();
    let audio_s = audio.len() as f64 / 8000.0;
    println!(
        "goertzel {label:<8} {audio_s:>6.0} s of audio in {cpu:>6.3} s: {:>7.0} channels per core ({found} digits)",
        audio_s / cpu
    );
}

fn main() {
    let seconds = 600;
    detector("noise", &noise(seconds));
    detector("digits", &digits(seconds));
    let pcm: Arc<[i16]> = noise(60).into();
    let t = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        std::hint::black_box(MediaClip::from_pcm("bench", pcm.clone()));
    }
    let cpu = t.elapsed().as_secs_f64();
    println!(
        "prompt encoding: {:.0} s of prompt per CPU second (A-law + μ-law)",
        60.0 * f64::from(rounds) / cpu
    );
}
