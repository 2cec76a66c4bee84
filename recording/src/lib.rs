//! `hotline-recording`: Call recording: the stereo WAV writer, crash-safe finalisation, archive layout, checksums,
//! backup and verification, retention, QA reviews and annotations, the listen audit.
//!
//! May depend on: `hotline-core` only among hotline's crates (no sibling domain crate); the
//! binary `hotline` wires it to the others through `hotline-core` ports and events.
//!
//! Status: the crate exists so the workspace has its final shape; its issue fills it in.
