//! `hotline-crm`: The CRM: callers and their timeline, tickets, complaints about agents, callbacks, surveys,
//! statistics and the archive.
//!
//! May depend on: `hotline-core` only among hotline's crates (no sibling domain crate); the
//! binary `hotline` wires it to the others through `hotline-core` ports and events.
//!
//! Status: the crate exists so the workspace has its final shape; its issue fills it in.
