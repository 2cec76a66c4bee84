//! The WAV container as hotline writes it: canonical 44-byte RIFF header, PCM, 8 kHz,
//! 16-bit, 2 channels (left = caller, right = IVR/agent). Sans-IO: header bytes in, header
//! bytes out; the file I/O lives in `recorder` and `archive`.
//!
//! Crash safety rests on one rule: the header at offset 0 always describes a data length
//! that is present in the file (it lags behind the real length, never runs ahead), so a
//! file cut off at any point plays up to the last header rewrite, and [`repaired_header`]
//! recovers everything written up to the crash from the file's size alone.

/// Samples per second per channel.
pub const SAMPLE_RATE: u32 = 8_000;
/// Interleaved channels: 0 = caller (left), 1 = agent/IVR (right).
pub const CHANNELS: u16 = 2;
pub const BITS_PER_SAMPLE: u16 = 16;
/// Bytes of one stereo frame (one sample per channel).
pub const BYTES_PER_FRAME: u64 = (CHANNELS as u64) * (BITS_PER_SAMPLE as u64 / 8);
/// Length of the canonical header written by [`header`].
pub const HEADER_LEN: u64 = 44;
/// Stereo frames per millisecond.
pub const FRAMES_PER_MS: u64 = SAMPLE_RATE as u64 / 1000;

/// The canonical header for `data_len` bytes of interleaved PCM.
pub fn header(data_len: u64) -> [u8; HEADER_LEN as usize] {
    // RIFF sizes are 32-bit; 4 GiB is ~37 hours of 8 kHz stereo, far past any call.
    let data_len = u32::try_from(data_len).unwrap_or(u32::MAX - 36) & !3;
    let byte_rate = SAMPLE_RATE * u32::from(CHANNELS) * u32::from(BITS_PER_SAMPLE / 8);
    let block_align = CHANNELS * (BITS_PER_SAMPLE / 8);
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&CHANNELS.to_le_bytes());
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&BITS_PER_SAMPLE.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// What a header says, when it is one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderInfo {
    pub channels: u16,
    pub sample_rate: u32,
    pub bits_per_sample: u16,
    pub data_len: u64,
}

/// Parses a canonical 44-byte header (the only layout hotline writes).
pub fn parse_header(h: &[u8]) -> Option<HeaderInfo> {
    if h.len() < HEADER_LEN as usize
        || &h[0..4] != b"RIFF"
        || &h[8..12] != b"WAVE"
        || &h[12..16] != b"fmt "
        || &h[36..40] != b"data"
    {
        return None;
    }
    let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    if u16_at(20) != 1 {
        return None;
    }
    Some(HeaderInfo {
        channels: u16_at(22),
        sample_rate: u32_at(24),
        bits_per_sample: u16_at(34),
        data_len: u64::from(u32_at(40)),
    })
}

/// The data length a file of `file_len` bytes really holds: whole stereo frames only (a
/// crash can cut the last frame in half).
pub fn data_len_from_size(file_len: u64) -> u64 {
    let data = file_len.saturating_sub(HEADER_LEN);
    data - data % BYTES_PER_FRAME
}

/// The header that makes a cut-off file of `file_len` bytes whole again, and the length the
/// file must be truncated to.
pub fn repaired_header(file_len: u64) -> ([u8; HEADER_LEN as usize], u64) {
    let data = data_len_from_size(file_len);
    (header(data), HEADER_LEN + data)
}

/// Duration in milliseconds of `data_len` bytes of our PCM.
pub fn duration_ms(data_len: u64) -> u64 {
    data_len / BYTES_PER_FRAME / FRAMES_PER_MS
}

/// Appends interleaved samples as little-endian bytes.
pub fn encode_samples(samples: &[i16], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 2);
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = header(32_000);
        let info = parse_header(&h).unwrap();
        assert_eq!(
            info,
            HeaderInfo {
                channels: 2,
                sample_rate: 8_000,
                bits_per_sample: 16,
                data_len: 32_000
            }
        );
        assert_eq!(&h[4..8], &(36u32 + 32_000).to_le_bytes());
        assert_eq!(parse_header(b"RIFX"), None);
    }

    #[test]
    fn repair_rounds_down_to_whole_frames() {
        assert_eq!(data_len_from_size(0), 0);
        assert_eq!(data_len_from_size(20), 0);
        assert_eq!(data_len_from_size(44 + 7), 4);
        assert_eq!(data_len_from_size(44 + 32_000), 32_000);
        let (h, len) = repaired_header(44 + 32_003);
        assert_eq!(len, 44 + 32_000);
        assert_eq!(parse_header(&h).unwrap().data_len, 32_000);
        assert_eq!(duration_ms(32_000), 1_000);
    }

    #[test]
    fn header_is_readable_by_hound() {
        let mut bytes = header(8).to_vec();
        encode_samples(&[1, -1, 300, -300], &mut bytes);
        let r = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
        let spec = r.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        let s: Vec<i16> = r.into_samples().map(Result::unwrap).collect();
        assert_eq!(s, vec![1, -1, 300, -300]);
    }
}
