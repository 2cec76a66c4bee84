//! Writes that must survive a database outage (issue 12: "the database unreachable for
//! 30 s → new writes are retried or queued, nothing lost after it returns").
//!
//! A crate that owns such a write (the gateway's call record, the CRM's call fact, the
//! recording row) hands it to a [`WriteQueue`] as a [`WriteJob`]: a closure that performs
//! the write once. The queue, implemented by the binary on tokio, runs the jobs in the order
//! they were submitted and runs a job again after a transient failure, with backoff, until
//! it succeeds or a configured time is spent. Jobs must therefore be idempotent (upserts by
//! id): a write whose reply was lost with the connection may already be stored.
//!
//! This crate has no tokio: the port and the backoff schedule are plain data.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Why one attempt of a write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteFailure {
    /// The database could not be reached (connection refused or lost, pool timed out):
    /// worth trying again.
    Transient(String),
    /// The write itself is wrong (a constraint, bad data): trying again cannot help.
    Permanent(String),
}

pub type WriteFuture = Pin<Box<dyn Future<Output = Result<(), WriteFailure>> + Send>>;

/// One attempt of the write per call.
pub type WriteJob = Box<dyn FnMut() -> WriteFuture + Send>;

/// Where writes that must not be lost go. Jobs run in submission order.
pub trait WriteQueue: Send + Sync + std::fmt::Debug {
    /// Queues `job`; `what` names the write in logs ("call record", "call fact", ...).
    fn submit(&self, what: &'static str, job: WriteJob);
    /// No job is queued or running: a write done directly now cannot overtake an older
    /// queued write of the same row.
    fn is_idle(&self) -> bool;
}

/// Whether a database error with this SQLSTATE is about the connection, not the statement:
/// class 08 "connection exception", 57P01-57P03 the server shutting down or starting, class
/// 53 "insufficient resources". Crates with sqlx add their I/O and pool-timeout errors.
pub fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P") || code.starts_with("53")
}

/// The delays between attempts: 200 ms doubling up to 5 s. Short enough that a write lands
/// a few seconds after the database returns, long enough not to spin during an outage.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_millis(200);
    pub const MAX: Duration = Duration::from_secs(5);

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = Self::FIRST.saturating_mul(1u32 << self.attempt.min(16));
        self.attempt = self.attempt.saturating_add(1);
        d.min(Self::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_states_are_transient() {
        assert!(transient_sqlstate("08006"));
        assert!(transient_sqlstate("57P01"));
        assert!(!transient_sqlstate("23505"));
    }

    #[test]
    fn backoff_doubles_up_to_five_seconds() {
        let mut b = Backoff::default();
        let d: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(d, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        for _ in 0..100 {
            assert_eq!(b.next_delay(), Backoff::MAX);
        }
    }
}
