//! `hotline-bench`: benchmarks and load tools (criterion benches for hot functions, sipp-driven
//! load scripts, an RTP load generator). Results and the commands that produced them are in
//! `bench/README.md`.
//!
//! May depend on: any hotline crate (it measures them); nothing depends on it.

pub mod rtpstats;
pub mod sipmsg;
