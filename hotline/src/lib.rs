//! `hotline`: the binary and composition root. It parses the command line, loads the
//! configuration, opens storage, wires the domain crates together through `hotline-core`
//! ports and events, and serves the HTTP API (and, as features land, the SIP gateway and the
//! web console).
//!
//! May depend on: every hotline crate. Nothing depends on it but `hotline-tests`.

pub mod alerts;
pub mod chat;
pub mod cli;
pub mod commands_audit;
pub mod commands_integrations;
pub mod config;
pub mod contact;
pub mod db;
pub mod events;
pub mod fail;
pub mod http;
pub mod password;
pub mod recording_tap;
pub mod server;
pub mod web;
