//! Waveform peaks for the player: the largest absolute sample per channel in each bucket
//! of `samples_per_peak` frames, computed once and cached as JSON next to the recording
//! (`<call-id>.peaks.json`).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::wav;

/// 100 ms per peak: ten points a second, 3,000 for a five-minute call.
pub const DEFAULT_SAMPLES_PER_PEAK: u32 = 800;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    pub version: u32,
    pub sample_rate: u32,
    pub samples_per_peak: u32,
    pub duration_ms: u64,
    /// Caller channel, 0..=32767 per bucket.
    pub left: Vec<u16>,
    /// IVR/agent channel.
    pub right: Vec<u16>,
}

/// The cache file of a recording.
pub fn cache_path(wav_path: &Path) -> PathBuf {
    wav_path.with_extension("peaks.json")
}

/// Peaks of interleaved stereo samples.
pub fn compute_samples(samples: &[i16], samples_per_peak: u32) -> Peaks {
    let spp = samples_per_peak.max(1) as usize;
    let mut left = Vec::new();
    let mut right = Vec::new();
    for chunk in samples.chunks(spp * 2) {
        let (mut l, mut r) = (0u16, 0u16);
        for pair in chunk.chunks(2) {
            l = l.max(pair[0].unsigned_abs().min(32_767));
            if let Some(s) = pair.get(1) {
                r = r.max(s.unsigned_abs().min(32_767));
            }
        }
        left.push(l);
        right.push(r);
    }
    Peaks {
        version: 1,
        sample_rate: wav::SAMPLE_RATE,
        samples_per_peak: spp as u32,
        duration_ms: (samples.len() / 2) as u64 / wav::FRAMES_PER_MS,
        left,
        right,
    }
}

/// Reads one of our WAV files (the data length from its size, so an unrepaired file works
/// too) and computes its peaks.
pub fn compute_file(path: &Path, samples_per_peak: u32) -> std::io::Result<Peaks> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut r = BufReader::new(f);
    let mut header = [0u8; wav::HEADER_LEN as usize];
    r.read_exact(&mut header)?;
    if wav::parse_header(&header).is_none() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a hotline WAV file",
        ));
    }
    let data_len = wav::data_len_from_size(len);
    let mut bytes = vec![0u8; data_len as usize];
    r.read_exact(&mut bytes)?;
    let samples: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    Ok(compute_samples(&samples, samples_per_peak))
}

/// The cached peaks, or computed and cached now (written to a temporary name and renamed,
/// so a reader never sees half a file). A cache that cannot be written is not an error.
pub fn load_or_compute(path: &Path) -> std::io::Result<Peaks> {
    let cache = cache_path(path);
    if let Ok(bytes) = std::fs::read(&cache)
        && let Ok(p) = serde_json::from_slice::<Peaks>(&bytes)
    {
        return Ok(p);
    }
    let peaks = compute_file(path, DEFAULT_SAMPLES_PER_PEAK)?;
    if let Ok(json) = serde_json::to_vec(&peaks) {
        let tmp = cache.with_extension("json.tmp");
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, &cache);
        }
    }
    Ok(peaks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_per_channel() {
        let mut s = Vec::new();
        for i in 0..1_600i16 {
            s.push(if i == 100 { -20_000 } else { 10 });
            s.push(if i >= 800 { i } else { 0 });
        }
        let p = compute_samples(&s, 800);
        assert_eq!(p.left, vec![20_000, 10]);
        assert_eq!(p.right, vec![0, 1_599]);
        assert_eq!(p.duration_ms, 200);
        assert_eq!(compute_samples(&[i16::MIN, 0], 800).left, vec![32_767]);
    }

    #[test]
    fn computed_once_and_cached() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.wav");
        let mut bytes = wav::header(3_200).to_vec();
        wav::encode_samples(&vec![300i16; 1_600], &mut bytes);
        std::fs::write(&path, bytes).unwrap();
        let p = load_or_compute(&path).unwrap();
        assert_eq!(p.left, vec![300]);
        assert!(cache_path(&path).exists());
        // the cache is what is served the second time
        let mut cached = p.clone();
        cached.left = vec![1];
        std::fs::write(cache_path(&path), serde_json::to_vec(&cached).unwrap()).unwrap();
        assert_eq!(load_or_compute(&path).unwrap().left, vec![1]);
        assert!(compute_file(&dir.path().join("none.wav"), 800).is_err());
    }
}
