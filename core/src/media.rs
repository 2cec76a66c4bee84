//! The media tap port: how the SIP gateway hands a call's decoded audio to whoever records
//! it, without the gateway knowing the recording crate (or the recorder knowing SIP).
//!
//! The gateway opens a [`CallTap`] when it answers a call and gives it 8 kHz 16-bit PCM of
//! both sides, each frame with its media position: samples since the answer, derived from
//! the RTP timestamps (so lost packets leave a gap the recorder fills with silence and late
//! ones land where they belong). Every method returns at once: the tap sits on the RTP path.

use crate::UnixMillis;

/// Which side of the call a stretch of audio is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapSide {
    /// What the caller says (left channel).
    Caller,
    /// What the caller hears: IVR prompts, the agent (right channel).
    Agent,
}

/// What is known about a call when its tap opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapStart {
    pub call_id: String,
    pub caller: String,
    /// Wall-clock time of the answer (media position 0).
    pub started_at: UnixMillis,
}

/// Opens taps; one per process, shared by every call.
pub trait MediaTap: Send + Sync + std::fmt::Debug {
    /// `None` when this call is not tapped (or the tap could not start; it reports why).
    fn open(&self, call: TapStart) -> Option<Box<dyn CallTap>>;
}

/// One call's tap, owned by the call's media task.
pub trait CallTap: Send + std::fmt::Debug {
    /// Audio of one side at media position `at` (samples since the answer).
    fn audio(&mut self, side: TapSide, at: u64, pcm: &[i16]);
    /// Pause (silence from now on, e.g. while the caller reads out a card number) or resume;
    /// false when it already was in that state.
    fn set_paused(&mut self, paused: bool) -> bool;
    /// The call ended at media position `end`.
    fn finish(self: Box<Self>, end: u64);
}
