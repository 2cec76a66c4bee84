const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/audio");
use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

/// Power of one frequency relative to the signal's total power (1.0 = a pure tone).
fn tone_share(x: &[i16], freq: f32) -> f32 {
    let c = 2.0 * (2.0 * std::f32::consts::PI * freq / RATE as f32).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + f64::from(c) * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let p = (s1 * s1 + s2 * s2 - f64::from(c) * s1 * s2) * 2.0 / x.len() as f64;
    let e: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    (p / e) as f32
}

#[test]
fn every_format_becomes_8k_mono_with_the_same_tone() {
    // (file, extra samples allowed: MP3 carries encoder padding)
    for (name, slack) in [
        ("tone-8k.wav", 0),
        ("tone-44k1-stereo.wav", 8),
        ("tone-16k.flac", 8),
        ("tone-48k.ogg", 8),
        ("tone-22k.mp3", 800),
    ] {
        let pcm = decode_to_8k_mono(&fixture(name)).unwrap_or_else(|e| panic!("{e}"));
        let want = 4000usize;
        assert!(
            pcm.len() + 8 >= want && pcm.len() <= want + slack,
            "{name}: {} samples for 0.5 s",
            pcm.len()
        );
        // skip the edges, where resamplers and codecs ramp
        let mid = &pcm[400..3600];
        let share = tone_share(mid, 1000.0);
        assert!(share > 0.95, "{name}: 1 kHz holds {share:.3} of the power");
        let peak = mid.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
        // −6 dBFS ≈ 16,400; allow codec and resampler ripple
        assert!((14_000..=18_500).contains(&peak), "{name}: peak {peak}");
    }
}

#[test]
fn errors_name_the_file() {
    let e = decode_to_8k_mono(&fixture("nope.wav")).unwrap_err();
    assert!(matches!(e, DecodeError::Open { .. }));
    assert!(e.to_string().contains("nope.wav"), "{e}");
    let e = decode_to_8k_mono(&fixture("broken.wav")).unwrap_err();
    assert!(e.to_string().contains("broken.wav"), "{e}");
    assert!(
        matches!(e, DecodeError::Format { .. } | DecodeError::Empty { .. }),
        "{e}"
    );
}

#[test]
fn the_shipped_prompt_set_loads_completely() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/zh-CN"));
    let catalog = crate::prompts::PromptCatalog::default_zh_cn();
    let audio = PromptAudio::load(dir, &catalog).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(audio.len(), catalog.names().count());
    assert!(
        audio.total_ms() > 60_000,
        "{} ms of prompts",
        audio.total_ms()
    );
    let welcome = audio.get("msg/welcome").expect("welcome prompt");
    assert!(welcome.len() > 8000, "the welcome is longer than a second");
}

#[test]
fn a_missing_prompt_fails_the_load_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = crate::prompts::PromptCatalog::from_names(["msg/welcome"]);
    let e = PromptAudio::load(dir.path(), &catalog).unwrap_err();
    assert!(e.to_string().contains("msg/welcome.wav"), "{e}");
}

#[test]
fn the_embedded_default_set_is_the_shipped_set() {
    let embedded = PromptAudio::load_default_zh_cn().expect("embedded prompts decode");
    let catalog = crate::prompts::PromptCatalog::default_zh_cn();
    let names: Vec<&str> = embedded.names().collect();
    let expected: Vec<&str> = catalog.names().collect();
    assert_eq!(
        names, expected,
        "every catalogue prompt is embedded, nothing else"
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/zh-CN");
    let on_disk = PromptAudio::load(&dir, &catalog).unwrap();
    for n in expected {
        assert_eq!(embedded.get(n), on_disk.get(n), "{n}");
    }
}
