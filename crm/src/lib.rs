//! `hotline-crm`: the CRM — callers and their timeline, tickets, complaints about agents,
//! callbacks (回访), surveys, statistics and the monthly archive (issue 7).
//!
//! Layout: pure logic first — [`ticket`] (kinds, the status state machine, SLA),
//! [`permission`] (who may see or change which ticket; the HTTP layer only calls these),
//! [`callback`] (a sans-IO scheduler: service hours and retries with `now` passed in),
//! [`stats`] (one query layer for every report), [`export`] (CSV, XLSX, the monthly report),
//! [`calendar`] (local time at +08:00 without a time-zone database). Storage is [`store`]:
//! a [`store::CrmStore`] over an sqlx `AnyPool` with the SQL written once for SQLite and
//! PostgreSQL (migration `0006_crm.sql`); attachments are files under a given directory.
//!
//! May depend on: `hotline-core` only among hotline's crates (no sibling domain crate); the
//! binary `hotline` maps the gateway's and the ACD's events onto this crate's input records
//! ([`stats::CallFact`], [`survey::SurveyAnswer`], [`callback::NewCallback`]).
//!
//! Drive contract: no clock reads, no randomness of its own, no spawning. Every function that
//! needs the time takes `now`; every one that needs ids or sampling takes a `&dyn Rng`.

pub mod calendar;
pub mod callback;
pub mod error;
pub mod export;
pub mod permission;
pub mod stats;
pub mod store;
pub mod survey;
pub mod ticket;

pub use error::CrmError;
pub use permission::Actor;
pub use store::CrmStore;
pub use ticket::{TicketKind, TicketStatus};
