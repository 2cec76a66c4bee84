//! `hotline-sip-gateway`: the SIP side of hotline. UDP and TCP transport with RFC 3581
//! `rport` and the transaction layer (rsipstack's), the registrar for agent seats with digest
//! authentication (RFC 2617 MD5, RFC 8760 SHA-256, nonce-count replay check) and brute-force
//! blocking, trunk peers with an ACL and a channel cap, a B2BUA that bridges trunk calls to
//! seats (and seats to seats or to allow-listed numbers) through an anchored RTP relay
//! (PCMA↔PCMU transcoding only when needed, RFC 4733 events), click-to-call, blind transfer
//! by REFER, session timers (RFC 4028), call detail records and
//! [`hotline_core::events::CallEvent`]s.
//!
//! May depend on: `hotline-core` only among hotline's crates. `rsipstack` (its `sip` parser,
//! its transport and transaction layers) is used only inside the private `sip` module; the
//! rest speaks our own message types.
//!
//! Drive contract: the binary builds a [`GatewayConfig`] (validated with
//! [`GatewayConfig::validate`]), then calls [`Gateway::start`] with [`GatewayDeps`] (pool,
//! metrics registry, event sink, clock, RNG, cancel token) and keeps the [`GatewayHandle`]
//! (status, click-to-call, hangup). Seats are managed through the free functions in
//! [`store`] (re-exported here), which only need the pool; a running gateway reads seats on
//! each authentication, so changes apply at once. The protocol engines (`digest`,
//! `registrar`, `policy`, `transaction`, `sdp`, `rtp::Forwarder`) are sans-IO and take `now`;
//! the drivers (`gateway`, the relay task) do the I/O. See README.md for config, metrics and
//! tables.

pub mod app;
#[doc(hidden)]
pub mod benching;
mod call;
pub mod config;
mod dialog;
pub mod digest;
mod engine;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
pub mod media;
mod outbound;
mod overload;
pub mod policy;
mod registrar;
mod rtp;
pub mod sdp;
mod sip;
pub mod store;
mod transaction;
mod transfer;

pub use app::{AppEvent, DtmfSource};
pub use config::{
    AuthConfig, DidRoute, GatewayConfig, RegisterConfig, RouteTarget, RtpConfig, TrunkConfig,
    TrunkPeer,
};
pub use error::GatewayError;
pub use gateway::{
    Gateway, GatewayDeps, GatewayHandle, GatewayHealth, GatewayStatus, PeerHealth, SeatHealth,
};
pub use media::MediaClip;
pub use store::{
    Binding, CallRecord, Seat, add_seat, get_call, list_bindings, list_calls, list_seats,
    remove_seat, seat_exists, set_seat_password,
};
pub use transaction::Transport;
