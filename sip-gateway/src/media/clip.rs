//! Prompt audio, pre-encoded once: a [`MediaClip`] holds 8 kHz mono PCM and its A-law and
//! μ-law encodings (ITU-T G.711, bit-exact with G.191 through `audio-codec-algorithms`), so
//! playing a prompt to a thousand callers costs a copy per frame, not an encode.

use std::sync::Arc;

/// Encoded silence: the G.711 code words for linear 0.
pub(crate) const ALAW_SILENCE: u8 = 0xD5;
pub(crate) const ULAW_SILENCE: u8 = 0xFF;

/// One prompt, ready to send.
#[derive(Clone)]
pub struct MediaClip {
    name: Arc<str>,
    pcm: Arc<[i16]>,
    pcma: Arc<[u8]>,
    pcmu: Arc<[u8]>,
}

impl std::fmt::Debug for MediaClip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaClip")
            .field("name", &self.name)
            .field("samples", &self.pcm.len())
            .finish()
    }
}

impl MediaClip {
    /// `pcm` is 8 kHz mono 16-bit linear.
    pub fn from_pcm(name: &str, pcm: Arc<[i16]>) -> Self {
        let pcma: Arc<[u8]> = pcm
            .iter()
            .map(|&s| audio_codec_algorithms::encode_alaw(s))
            .collect();
        let pcmu: Arc<[u8]> = pcm
            .iter()
            .map(|&s| audio_codec_algorithms::encode_ulaw(s))
            .collect();
        Self {
            name: name.into(),
            pcm,
            pcma,
            pcmu,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Samples (8 per millisecond).
    pub fn len(&self) -> usize {
        self.pcm.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pcm.is_empty()
    }

    pub fn pcm(&self) -> &[i16] {
        &self.pcm
    }

    pub(crate) fn encoded(&self, codec: crate::sdp::Codec) -> &[u8] {
        match codec {
            crate::sdp::Codec::Pcma => &self.pcma,
            crate::sdp::Codec::Pcmu => &self.pcmu,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_g191_over_every_input() {
        // The encoder is the reference; decoding what we stored must give the G.711
        // reconstruction of every 16-bit input.
        let pcm: Arc<[i16]> = (i16::MIN..=i16::MAX).collect();
        let clip = MediaClip::from_pcm("all", pcm.clone());
        assert_eq!(clip.len(), 65_536);
        for (i, &s) in pcm.iter().enumerate() {
            let a = clip.encoded(crate::sdp::Codec::Pcma)[i];
            let u = clip.encoded(crate::sdp::Codec::Pcmu)[i];
            assert_eq!(a, audio_codec_algorithms::encode_alaw(s));
            assert_eq!(u, audio_codec_algorithms::encode_ulaw(s));
        }
        assert_eq!(audio_codec_algorithms::encode_alaw(0), ALAW_SILENCE);
        assert_eq!(audio_codec_algorithms::encode_ulaw(0), ULAW_SILENCE);
    }
}
