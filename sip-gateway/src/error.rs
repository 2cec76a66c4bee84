//! The crate's one error type.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// A configuration value is wrong; `field` is its path in the config.
    #[error("invalid SIP gateway configuration: {field}: {message}")]
    Config { field: String, message: String },
    /// A listening socket could not be bound (typically: the port is in use).
    #[error("cannot bind SIP {transport} on {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid seat number {0:?}: use 2 to 16 digits")]
    InvalidSeatNumber(String),
    #[error("the password must be 8 to 128 characters")]
    WeakPassword,
    #[error("seat {0} already exists")]
    SeatExists(String),
    #[error("seat {0} does not exist")]
    SeatNotFound(String),
    #[error("number {0:?} is not allowed for outbound calls")]
    NotAllowed(String),
    #[error("seat {0} has no reachable registered contact")]
    SeatUnavailable(String),
    #[error("all trunk channels are busy")]
    ChannelsBusy,
    #[error("no trunk peer is configured for outbound calls (one host with a port)")]
    NoTrunkPeer,
    #[error("no call {0} in progress")]
    CallNotFound(String),
    #[error("call {0} already has a seat leg")]
    SeatLegBusy(String),
    #[error("the gateway has stopped")]
    Stopped,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
