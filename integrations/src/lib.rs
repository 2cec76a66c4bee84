//! `hotline-integrations`: Integrations with other systems: auction bidder records and bank files, the 12345 platform,
//! the WeChat Official Account bridge, the SMS gateway, monthly reports for the agency.
//!
//! May depend on: `hotline-core` only among hotline's crates (no sibling domain crate); the
//! binary `hotline` wires it to the others through `hotline-core` ports and events.
//!
//! Status: the crate exists so the workspace has its final shape; its issue fills it in.
