//! `hotline-core`: the vocabulary every other hotline crate shares.
//!
//! Role: identifiers, time and randomness as injectable traits (so that engines can run on
//! virtual time in tests), user roles, masking of personal data, the failure throttle used
//! by both HTTP login and SIP digest authentication, a small Prometheus-style metrics
//! registry, the port for writes that must survive a database outage, the domain events that travel on the in-process event bus, and the audit log's
//! hash chain (the pure part: canonical hashing and verification).
//!
//! May depend on: nothing of hotline's. No tokio, sqlx or axum here: this crate is pure
//! data and logic so that every domain crate can use it without pulling in I/O.

pub mod audit_chain;
pub mod clock;
pub mod events;
pub mod id;
pub mod mask;
pub mod media;
pub mod metrics;
pub mod role;
pub mod throttle;
pub mod write_queue;

pub use clock::{Clock, ManualClock, SystemClock, UnixMillis};
pub use events::{Event, EventSink};
pub use id::{IdGenerator, Rng, SystemRng};
pub use role::Role;
