//! Media processing on decoded audio (8 kHz linear PCM). The relay path itself never goes
//! through here; these run on the copy of the audio the IVR and the recorder consume.
//!
//! - [`dtmf_inband`]: Goertzel DTMF detection for trunks that send digits as tones.

pub mod dtmf_inband;
