//! `hotline-knowledge`: see docs/ARCHITECTURE.md for its role.
//!
//! May depend on: `hotline-core` only among hotline's crates.
//!
//! Status: being written; its issue fills it in.
