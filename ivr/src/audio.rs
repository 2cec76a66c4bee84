//! The prompt library's audio: any WAV, MP3, OGG/Vorbis or FLAC file becomes 8 kHz mono 16-bit PCM, the
//! form the media engine plays (and encodes to G.711 once, at load). Decoding uses symphonia;
//! other sample rates are converted with rubato's FFT resampler; several channels are mixed
//! down. Done once at start or at reload, never per call. An administrator's upload passes
//! [`check`] first and is stored in the canonical form [`wav_bytes`] writes.

use std::fs::File;
use std::path::{Path, PathBuf};

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// The sample rate of telephone audio.
pub const RATE: u32 = 8000;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a supported audio file (WAV, MP3, OGG/Vorbis, FLAC): {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: contains no audio")]
    Empty { path: PathBuf },
    #[error("{path}: cannot resample from {rate} Hz: {reason}")]
    Resample {
        path: PathBuf,
        rate: u32,
        reason: String,
    },
}

/// Decodes `path` to 8 kHz mono 16-bit PCM.
pub fn decode_to_8k_mono(path: &Path) -> Result<Vec<i16>, DecodeError> {
    let file = File::open(path).map_err(|source| DecodeError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    decode_source(path, Box::new(file))
}

/// Decodes an audio file held in memory; `name` (with its extension) is used as a format
/// hint and in errors.
pub fn decode_bytes_to_8k_mono(name: &str, bytes: &'static [u8]) -> Result<Vec<i16>, DecodeError> {
    decode_source(Path::new(name), Box::new(std::io::Cursor::new(bytes)))
}

/// Like [`decode_bytes_to_8k_mono`] for bytes received at run time (an upload).
pub fn decode_owned_to_8k_mono(name: &str, bytes: Vec<u8>) -> Result<Vec<i16>, DecodeError> {
    decode_source(Path::new(name), Box::new(std::io::Cursor::new(bytes)))
}

/// 8 kHz mono 16-bit PCM as a WAV file with the canonical 44-byte header: the form uploaded
/// prompts are stored in (so a reload decodes them without resampling) and the form browsers
/// are given to listen to a prompt.
pub fn wav_bytes(pcm: &[i16]) -> Vec<u8> {
    let data_len = u32::try_from(pcm.len() * 2).unwrap_or(u32::MAX - 36);
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// The duration of a PCM WAV file in milliseconds, read from its `fmt ` and `data` chunk
/// headers without decoding (for listing a prompt set); `None` when the bytes are not such
/// a file.
pub fn wav_duration_ms(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let (mut pos, mut byte_rate, mut data) = (12usize, None, None);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().ok()?) as usize;
        let body = pos + 8;
        if id == b"fmt " && body + 12 <= bytes.len() {
            byte_rate = Some(u32::from_le_bytes(
                bytes[body + 8..body + 12].try_into().ok()?,
            ));
        } else if id == b"data" {
            // A writer that never finished leaves the length too large: count what is there.
            data = Some(len.min(bytes.len() - body) as u64);
            break;
        }
        // Chunks are padded to an even length (RIFF).
        pos = body.checked_add(len)?.checked_add(len & 1)?;
    }
    match (byte_rate, data) {
        (Some(r), Some(d)) if r > 0 => Some(d * 1000 / u64::from(r)),
        _ => None,
    }
}

fn decode_source(
    path: &Path,
    source: Box<dyn symphonia::core::io::MediaSource>,
) -> Result<Vec<i16>, DecodeError> {
    let format_err = |reason: String| DecodeError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let mss = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| format_err(e.to_string()))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| format_err("no audio track".into()))?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| format_err("no audio codec parameters".into()))?
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| format_err(e.to_string()))?;

    let mut mono: Vec<f32> = Vec::new();
    let mut rate = params.sample_rate.unwrap_or(0);
    let mut interleaved: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(format_err(e.to_string())),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(b) => b,
            // A damaged frame in an otherwise good file: skip it, as players do.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(format_err(e.to_string())),
        };
        let channels = buf.spec().channels().count().max(1);
        rate = buf.spec().rate();
        interleaved.resize(buf.samples_interleaved(), 0.0);
        buf.copy_to_slice_interleaved(&mut interleaved);
        mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
    }
    if mono.is_empty() || rate == 0 {
        return Err(DecodeError::Empty {
            path: path.to_path_buf(),
        });
    }
    let at_8k = if rate == RATE {
        mono
    } else {
        resample(&mono, rate).map_err(|reason| DecodeError::Resample {
            path: path.to_path_buf(),
            rate,
            reason,
        })?
    };
    Ok(at_8k
        .iter()
        .map(|&x| (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

fn resample(mono: &[f32], rate: u32) -> Result<Vec<f32>, String> {
    let input = InterleavedSlice::new(mono, 1, mono.len()).map_err(|e| e.to_string())?;
    let mut rs = Fft::<f32>::new(rate as usize, RATE as usize, 1024, 1, FixedSync::Both)
        .map_err(|e| e.to_string())?;
    let out = rs
        .process_all(&input, mono.len(), None)
        .map_err(|e| e.to_string())?;
    Ok(out.take_data())
}

/// Every prompt of a catalogue, decoded once. A missing or undecodable prompt fails the
/// whole load with its path, so a bad prompt set is found at start (or at reload, which then
/// keeps the old set), never in the middle of a call.
#[derive(Debug, Clone, Default)]
pub struct PromptAudio {
    pcm: std::collections::BTreeMap<String, std::sync::Arc<[i16]>>,
}

impl PromptAudio {
    /// Decodes `<dir>/<name>.wav` for every name in `catalog`.
    pub fn load(dir: &Path, catalog: &crate::prompts::PromptCatalog) -> Result<Self, DecodeError> {
        let mut pcm = std::collections::BTreeMap::new();
        for name in catalog.names() {
            let path = dir.join(crate::prompts::PromptCatalog::relative_path(name));
            pcm.insert(name.to_string(), decode_to_8k_mono(&path)?.into());
        }
        Ok(Self { pcm })
    }

    /// Decodes the default zh-CN set compiled into the binary (`prompts/zh-CN`).
    pub fn load_default_zh_cn() -> Result<Self, DecodeError> {
        let mut pcm = std::collections::BTreeMap::new();
        for (name, bytes) in crate::prompts::DEFAULT_ZH_CN_FILES {
            let file = format!("{name}.wav");
            pcm.insert(
                name.to_string(),
                decode_bytes_to_8k_mono(&file, bytes)?.into(),
            );
        }
        Ok(Self { pcm })
    }

    /// The names of the prompts loaded.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pcm.keys().map(String::as_str)
    }

    /// The 8 kHz mono PCM of a prompt.
    pub fn get(&self, name: &str) -> Option<std::sync::Arc<[i16]>> {
        self.pcm.get(name).cloned()
    }

    pub fn len(&self) -> usize {
        self.pcm.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pcm.is_empty()
    }

    /// Total duration in milliseconds.
    pub fn total_ms(&self) -> u64 {
        self.pcm.values().map(|p| p.len() as u64).sum::<u64>() / u64::from(RATE / 1000)
    }
}

pub mod check;

#[cfg(test)]
mod tests;
