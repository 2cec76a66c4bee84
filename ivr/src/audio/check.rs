//! The check an uploaded prompt recording passes before it may replace a prompt: it decodes
//! (any format [`super::decode_to_8k_mono`] takes), it is neither a blip nor a lecture, and
//! it is not silence. A caller hears whatever passes, so each refusal names its problem in
//! words the administrator can act on ([`PromptProblem::message_zh`]).

use super::{DecodeError, RATE, decode_owned_to_8k_mono};

/// The longest prompt accepted. The longest built-in prompt (the rules) is about 25 s; a
/// caller cannot interrupt most prompts, so two minutes is already generous.
pub const MAX_PROMPT_MS: u64 = 120_000;

/// The shortest prompt accepted: a fragment such as "元" lasts about 0.3 s.
pub const MIN_PROMPT_MS: u64 = 200;

/// A recording whose loudest 20 ms stays below this RMS (−40 dBFS) holds no speech: an empty
/// take, a muted microphone or a file of digital silence.
pub const SILENCE_RMS: f64 = 327.7;

/// 20 ms at 8 kHz, the packet size callers hear.
const WINDOW: usize = (RATE / 50) as usize;

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum PromptProblem {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("recording is {ms} ms long, shorter than {MIN_PROMPT_MS} ms")]
    TooShort { ms: u64 },
    #[error("recording is {ms} ms long, longer than {max_ms} ms")]
    TooLong { ms: u64, max_ms: u64 },
    #[error("recording is silent (loudest 20 ms at {loudest_dbfs:.0} dBFS)")]
    Silent { loudest_dbfs: f64 },
}

impl PromptProblem {
    /// What the administrator reads (zh-CN).
    pub fn message_zh(&self) -> String {
        match self {
            PromptProblem::Decode(DecodeError::Empty { .. }) => {
                "文件中没有音频内容，请上传录音文件".to_string()
            }
            PromptProblem::Decode(DecodeError::Resample { rate, .. }) => {
                format!("无法转换采样率 {rate} Hz 的录音，请改用 8000–48000 Hz 的文件")
            }
            PromptProblem::Decode(_) => {
                "无法识别的音频文件：请上传 WAV、MP3、OGG（Vorbis）或 FLAC 格式的录音".to_string()
            }
            PromptProblem::TooShort { ms } => format!(
                "录音过短（{:.1} 秒），至少需要 {:.1} 秒",
                *ms as f64 / 1000.0,
                MIN_PROMPT_MS as f64 / 1000.0
            ),
            PromptProblem::TooLong { ms, max_ms } => format!(
                "录音过长（{:.1} 秒），提示音最长 {} 秒",
                *ms as f64 / 1000.0,
                max_ms / 1000
            ),
            PromptProblem::Silent { .. } => {
                "录音没有声音（全部为静音），请检查录音后重新上传".to_string()
            }
        }
    }
}

/// What the check measured of an accepted recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PromptStats {
    pub duration_ms: u64,
    /// RMS of the loudest 20 ms, in dBFS (0 = full scale).
    pub loudest_dbfs: f64,
}

fn dbfs(rms: f64) -> f64 {
    if rms <= 0.0 {
        -120.0
    } else {
        20.0 * (rms / 32768.0).log10()
    }
}

/// Checks decoded 8 kHz mono PCM: length within bounds, not silent.
pub fn check_prompt(pcm: &[i16]) -> Result<PromptStats, PromptProblem> {
    let ms = pcm.len() as u64 * 1000 / u64::from(RATE);
    if ms < MIN_PROMPT_MS {
        return Err(PromptProblem::TooShort { ms });
    }
    if ms > MAX_PROMPT_MS {
        return Err(PromptProblem::TooLong {
            ms,
            max_ms: MAX_PROMPT_MS,
        });
    }
    let loudest = pcm
        .chunks(WINDOW)
        .map(|w| {
            let e: f64 = w.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
            (e / w.len() as f64).sqrt()
        })
        .fold(0.0f64, f64::max);
    let loudest_dbfs = dbfs(loudest);
    if loudest < SILENCE_RMS {
        return Err(PromptProblem::Silent { loudest_dbfs });
    }
    Ok(PromptStats {
        duration_ms: ms,
        loudest_dbfs,
    })
}

/// Decodes an uploaded file (`file_name`'s extension is a format hint; the content decides)
/// and checks it: the 8 kHz PCM a caller will hear, with its measurements.
pub fn accept_upload(
    file_name: &str,
    bytes: Vec<u8>,
) -> Result<(Vec<i16>, PromptStats), PromptProblem> {
    let pcm = decode_owned_to_8k_mono(file_name, bytes)?;
    let stats = check_prompt(&pcm)?;
    Ok((pcm, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{wav_bytes, wav_duration_ms};

    fn tone(ms: u64, amplitude: f64) -> Vec<i16> {
        (0..ms * 8)
            .map(|i| {
                let t = i as f64 / 8000.0;
                (amplitude * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
            })
            .collect()
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/audio")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn a_spoken_length_tone_passes_and_round_trips_through_wav() {
        let pcm = tone(1500, 8000.0);
        let wav = wav_bytes(&pcm);
        assert_eq!(wav.len(), 44 + pcm.len() * 2);
        assert_eq!(wav_duration_ms(&wav), Some(1500));
        let (back, stats) = accept_upload("x.wav", wav).unwrap();
        assert_eq!(back, pcm, "8 kHz mono 16-bit decodes to itself");
        assert_eq!(stats.duration_ms, 1500);
        assert!((-16.0..-9.0).contains(&stats.loudest_dbfs), "{stats:?}");
    }

    #[test]
    fn every_supported_format_is_accepted() {
        for name in [
            "tone-8k.wav",
            "tone-44k1-stereo.wav",
            "tone-16k.flac",
            "tone-48k.ogg",
            "tone-22k.mp3",
        ] {
            // No hint: the content decides (a browser may send any file name).
            let (pcm, stats) =
                accept_upload("upload", fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(pcm.len() >= 3992, "{name}");
            assert!(stats.duration_ms >= 499, "{name}: {stats:?}");
        }
    }

    #[test]
    fn refusals_name_the_problem() {
        let e = accept_upload("notes.wav", b"this is not audio at all".to_vec()).unwrap_err();
        assert!(matches!(e, PromptProblem::Decode(_)), "{e}");
        assert!(e.message_zh().contains("无法识别"), "{}", e.message_zh());

        let e = check_prompt(&tone(100, 8000.0)).unwrap_err();
        assert!(matches!(e, PromptProblem::TooShort { ms: 100 }), "{e}");
        assert!(e.message_zh().contains("过短"));

        let e = check_prompt(&tone(MAX_PROMPT_MS + 20, 8000.0)).unwrap_err();
        assert!(matches!(e, PromptProblem::TooLong { .. }), "{e}");
        assert!(e.message_zh().contains("最长 120 秒"), "{}", e.message_zh());

        // Digital silence, and a hiss far below speech level.
        for quiet in [vec![0i16; 16_000], tone(2000, 200.0)] {
            let e = check_prompt(&quiet).unwrap_err();
            assert!(matches!(e, PromptProblem::Silent { .. }), "{e}");
            assert!(e.message_zh().contains("静音"));
        }
        // One loud 20 ms in silence is enough to count as sound: the check is not a
        // loudness judgement, only "is anything there".
        let mut blip = vec![0i16; 16_000];
        blip[8000..8160].copy_from_slice(&tone(20, 8000.0));
        assert!(check_prompt(&blip).is_ok());
    }

    #[test]
    fn wav_duration_reads_headers_of_other_layouts() {
        // 44.1 kHz stereo: 0.5 s.
        assert_eq!(wav_duration_ms(&fixture("tone-44k1-stereo.wav")), Some(500));
        assert_eq!(wav_duration_ms(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(wav_duration_ms(b"not a wav"), None);
        // A data length past the end (an unfinished writer) counts what is there.
        let mut wav = wav_bytes(&tone(1000, 1000.0));
        wav[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(wav_duration_ms(&wav), Some(1000));
    }
}
