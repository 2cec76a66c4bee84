//! The media engine: what the gateway does with audio when it is an endpoint itself (the
//! IVR, the queue and the survey), as opposed to relaying between two legs (`crate::rtp`).
//!
//! - [`clip`]: prompts pre-encoded to A-law and μ-law once.
//! - [`player`]: 20 ms pacing, RTP numbering, marker bits (sans-IO).
//! - [`rfc4733`]: telephone-events in (sans-IO).
//! - [`jitter`]: the small adaptive jitter buffer for audio we consume (sans-IO).
//! - [`dtmf_inband`]: Goertzel DTMF detection for trunks that send digits as tones.
//! - `session`: the per-call tokio task that drives the above.
//! - `tap`: decoded audio of both sides, placed by RTP timestamp, for the recorder.

pub mod clip;
pub mod dtmf_inband;
pub(crate) mod jitter;
pub(crate) mod player;
pub mod rfc4733;
pub(crate) mod session;
pub(crate) mod tap;

pub use clip::MediaClip;
