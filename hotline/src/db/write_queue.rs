//! The tokio side of [`hotline_core::write_queue`]: one task runs the queued writes in
//! order, trying a write again after a transient failure (the database unreachable) with
//! backoff, for at most `database.write_retry_secs`. An outage is logged once when it starts
//! and once when the writes go through again, not per attempt; the gauge
//! `hotline_db_writes_waiting` says how many writes are queued meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hotline_core::metrics::{Registry, Series};
use hotline_core::write_queue::{Backoff, WriteFailure, WriteJob, WriteQueue, transient_sqlstate};
use tokio::sync::mpsc;

/// Whether a failed statement is worth trying again: the connection, not the statement,
/// failed.
pub fn sqlx_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| transient_sqlstate(&c)),
        _ => false,
    }
}

/// Maps a store error to a [`WriteFailure`] by its database cause.
pub fn failure(e: impl std::fmt::Display, cause: Option<&sqlx::Error>) -> WriteFailure {
    if cause.is_some_and(sqlx_transient) {
        WriteFailure::Transient(e.to_string())
    } else {
        WriteFailure::Permanent(e.to_string())
    }
}

/// Submits `attempt` (called once per try) to `q`.
pub fn submit<F, Fut>(q: &dyn WriteQueue, what: &'static str, attempt: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), WriteFailure>> + Send + 'static,
{
    q.submit(what, Box::new(move || Box::pin(attempt())));
}

pub fn crm_failure(e: hotline_crm::CrmError) -> WriteFailure {
    let cause = match &e {
        hotline_crm::CrmError::Db(c) => Some(c),
        _ => None,
    };
    failure(&e, cause)
}

pub fn recording_failure(e: hotline_recording::RecordingError) -> WriteFailure {
    let cause = match &e {
        hotline_recording::RecordingError::Db(c) => Some(c),
        _ => None,
    };
    failure(&e, cause)
}

#[derive(Debug, Clone)]
pub struct DbWriteQueue {
    tx: mpsc::UnboundedSender<(&'static str, WriteJob)>,
    /// Jobs submitted and not yet done (queued or running).
    pending: Arc<AtomicUsize>,
}

impl DbWriteQueue {
    /// Starts the writer task. `budget`: how long one write is tried before it is given up
    /// (logged as an error and counted in `hotline_db_writes_given_up_total`).
    pub fn start(budget: Duration, metrics: &Registry) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let waiting = metrics
            .gauge(
                "hotline_db_writes_waiting",
                "Writes (call records, call facts, recording rows) queued because the database did not take them yet.",
            )
            .plain();
        let given_up = metrics
            .counter(
                "hotline_db_writes_given_up_total",
                "Writes dropped after database.write_retry_secs of failed attempts.",
            )
            .plain();
        tokio::spawn(run(rx, pending.clone(), waiting, given_up, budget));
        Self { tx, pending }
    }
}

impl WriteQueue for DbWriteQueue {
    fn submit(&self, what: &'static str, job: WriteJob) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        // Debug lines name each write as it is queued and stored: what an operator (or a
        // test, with `log.filter` raised for this module) follows through an outage.
        tracing::debug!("write queued: {what}");
        if self.tx.send((what, job)).is_err() {
            // The writer task is gone (shutdown): nothing will run it.
            self.pending.fetch_sub(1, Ordering::SeqCst);
            tracing::error!(what, "a write was submitted after the writer stopped");
        }
    }

    fn is_idle(&self) -> bool {
        self.pending.load(Ordering::SeqCst) == 0
    }
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<(&'static str, WriteJob)>,
    pending: Arc<AtomicUsize>,
    waiting: Series,
    given_up: Series,
    budget: Duration,
) {
    let mut outage_since: Option<tokio::time::Instant> = None;
    while let Some((what, mut job)) = rx.recv().await {
        waiting.set(pending.load(Ordering::SeqCst) as i64);
        let started = tokio::time::Instant::now();
        let mut backoff = Backoff::default();
        loop {
            match job().await {
                Ok(()) => {
                    tracing::debug!("write stored: {what}");
                    if let Some(since) = outage_since.take() {
                        tracing::info!(
                            waited_ms = since.elapsed().as_millis() as u64,
                            queued = pending.load(Ordering::SeqCst).saturating_sub(1),
                            "database writes go through again; the queued writes follow"
                        );
                    }
                    break;
                }
                Err(WriteFailure::Permanent(e)) => {
                    tracing::error!(what, error = %e, "a write failed and cannot be retried");
                    break;
                }
                Err(WriteFailure::Transient(e)) => {
                    if started.elapsed() >= budget {
                        given_up.inc();
                        tracing::error!(what, error = %e, budget_secs = budget.as_secs(), "a write was given up after retrying");
                        break;
                    }
                    // The gauge first: whoever reads the warning then sees the queue.
                    waiting.set(pending.load(Ordering::SeqCst) as i64);
                    if outage_since.is_none() {
                        outage_since = Some(tokio::time::Instant::now());
                        tracing::warn!(what, error = %e, "the database does not take writes; they are queued and retried");
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
        let left = pending.fetch_sub(1, Ordering::SeqCst) - 1;
        waiting.set(left as i64);
        if left == 0 {
            tracing::debug!("write queue empty");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// A job that fails transiently `fail_first` times, then reports `n` on `done`.
    fn job(fail_first: u32, done: mpsc::UnboundedSender<u32>, n: u32) -> WriteJob {
        let tries = Arc::new(AtomicU32::new(0));
        Box::new(move || {
            let (tries, done) = (tries.clone(), done.clone());
            Box::pin(async move {
                if tries.fetch_add(1, Ordering::SeqCst) < fail_first {
                    return Err(WriteFailure::Transient("refused".into()));
                }
                let _ = done.send(n);
                Ok(())
            })
        })
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<u32>) -> u32 {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a job ran")
            .expect("open")
    }

    #[tokio::test]
    async fn transient_failures_are_retried_in_order_and_permanent_ones_are_not() {
        let metrics = Registry::new();
        let q = DbWriteQueue::start(Duration::from_secs(600), &metrics);
        let (tx, mut rx) = mpsc::unbounded_channel();
        // Fails twice (200 + 400 ms of backoff), then lands; the next job waits behind it.
        q.submit("a", job(2, tx.clone(), 1));
        q.submit("b", job(0, tx.clone(), 2));
        let bad = Arc::new(AtomicU32::new(0));
        let (b2, tx2) = (bad.clone(), tx.clone());
        q.submit(
            "c",
            Box::new(move || {
                b2.fetch_add(1, Ordering::SeqCst);
                let _ = tx2.send(3);
                Box::pin(async { Err(WriteFailure::Permanent("constraint".into())) })
            }),
        );
        assert!(!q.is_idle());
        assert_eq!(
            [
                next(&mut rx).await,
                next(&mut rx).await,
                next(&mut rx).await
            ],
            [1, 2, 3]
        );
        q.submit("d", job(0, tx, 4));
        assert_eq!(next(&mut rx).await, 4);
        assert_eq!(
            bad.load(Ordering::SeqCst),
            1,
            "a permanent failure is not retried"
        );
        assert_eq!(metrics.sum("hotline_db_writes_given_up_total", &[]), 0);
    }

    #[tokio::test]
    async fn a_write_is_given_up_after_the_budget() {
        let metrics = Registry::new();
        let q = DbWriteQueue::start(Duration::ZERO, &metrics);
        let (tx, mut rx) = mpsc::unbounded_channel();
        q.submit("a", job(u32::MAX, tx.clone(), 1));
        q.submit("b", job(0, tx, 2));
        assert_eq!(next(&mut rx).await, 2, "the queue moves on");
        assert_eq!(metrics.sum("hotline_db_writes_given_up_total", &[]), 1);
    }

    #[test]
    fn connection_errors_are_transient_and_others_are_not() {
        assert!(sqlx_transient(&sqlx::Error::PoolTimedOut));
        assert!(sqlx_transient(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
        assert!(!sqlx_transient(&sqlx::Error::RowNotFound));
        assert!(!sqlx_transient(&sqlx::Error::PoolClosed));
    }
}
