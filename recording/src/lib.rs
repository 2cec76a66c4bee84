//! `hotline-recording`: call recording — the stereo WAV writer, crash-safe finalisation, the
//! archive layout, checksums, backup and verification, retention, playback helpers (HTTP
//! Range, waveform peaks), QA reviews, annotations, proofreading and the evidence export.
//!
//! May depend on: `hotline-core` only among hotline's crates (no sibling domain crate); the
//! binary `hotline` wires it to the media engine and serves it over HTTP.
//!
//! Drive contract: the media engine calls [`Recorder::start`] when a call is answered and
//! feeds the returned [`RecordingHandle`] decoded 8 kHz PCM of both directions with their
//! media positions ([`RecordingHandle::push_frame`], never blocking), `pause`/`resume` on
//! the agent's request, and `finish(end)` at hangup; the report it gets back is stored with
//! [`store::record_finished`]. At start, before taking calls, the binary runs
//! [`store::recover_at_start`]. The sans-IO parts ([`align`], [`wav`], [`range`], [`qa`])
//! take inputs and return outputs; [`recorder`] is the thin tokio driver.

pub mod align;
pub mod archive;
pub mod config;
pub mod error;
pub mod peaks;
pub mod qa;
pub mod range;
pub mod recorder;
pub mod review;
pub mod store;
pub mod wav;
pub mod zip;

pub use align::{Direction, RtpClock};
pub use config::RecordingConfig;
pub use error::{DiskErrorKind, RecordingError};
pub use recorder::{
    DiskFault, FinishedRecording, Progress, Recorder, RecordingHandle, RecordingMeta,
    RecordingState,
};
