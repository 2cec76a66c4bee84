//! Failure throttling: after `max_failures` failures for one key (an account, an address)
//! within `window_ms`, the key is blocked for `block_ms`. Used by HTTP login (per account and
//! per address) and by SIP digest authentication (per source address).
//!
//! Sans-IO: every call takes `now`, nothing reads a clock, so tests advance time by hand.

use std::collections::HashMap;
use std::hash::Hash;

use crate::clock::UnixMillis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub max_failures: u32,
    pub window_ms: i64,
    pub block_ms: i64,
}

#[derive(Debug, Default)]
struct Entry {
    /// Times of recent failures, oldest first, at most `max_failures` kept.
    failures: Vec<UnixMillis>,
    blocked_until: Option<UnixMillis>,
}

/// What a failure did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Counted; the key is not blocked yet.
    Counted { failures: u32 },
    /// This failure reached the limit: the key is now blocked until the given time.
    Blocked { until: UnixMillis },
}

#[derive(Debug)]
pub struct FailureThrottle<K> {
    policy: ThrottlePolicy,
    entries: HashMap<K, Entry>,
    /// Bounds memory under a flood of distinct keys: beyond this, expired entries are swept.
    sweep_at: usize,
}

impl<K: Eq + Hash + Clone> FailureThrottle<K> {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            entries: HashMap::new(),
            sweep_at: 4096,
        }
    }

    pub fn policy(&self) -> ThrottlePolicy {
        self.policy
    }

    /// `Some(until)` when the key is blocked at `now`.
    pub fn blocked_until(&self, now: UnixMillis, key: &K) -> Option<UnixMillis> {
        self.entries
            .get(key)
            .and_then(|e| e.blocked_until)
            .filter(|&until| until > now)
    }

    pub fn record_failure(&mut self, now: UnixMillis, key: K) -> FailureOutcome {
        if self.entries.len() >= self.sweep_at {
            self.sweep(now);
        }
        let policy = self.policy;
        let e = self.entries.entry(key).or_default();
        if let Some(until) = e.blocked_until.filter(|&u| u > now) {
            return FailureOutcome::Blocked { until };
        }
        e.blocked_until = None;
        e.failures.retain(|&t| now - t < policy.window_ms);
        e.failures.push(now);
        if e.failures.len() as u32 >= policy.max_failures {
            let until = now + policy.block_ms;
            e.blocked_until = Some(until);
            e.failures.clear();
            FailureOutcome::Blocked { until }
        } else {
            FailureOutcome::Counted {
                failures: e.failures.len() as u32,
            }
        }
    }

    /// A success forgets the key's failures (but does not lift an active block).
    pub fn record_success(&mut self, now: UnixMillis, key: &K) {
        if self.blocked_until(now, key).is_none() {
            self.entries.remove(key);
        }
    }

    /// Drops entries with no recent failures and no active block.
    pub fn sweep(&mut self, now: UnixMillis) {
        let window = self.policy.window_ms;
        self.entries.retain(|_, e| {
            e.blocked_until.is_some_and(|u| u > now) || e.failures.iter().any(|&t| now - t < window)
        });
        // Grow the threshold so a flood of live keys does not sweep on every call.
        self.sweep_at = (self.entries.len() * 2).max(4096);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: ThrottlePolicy = ThrottlePolicy {
        max_failures: 3,
        window_ms: 60_000,
        block_ms: 300_000,
    };

    #[test]
    fn blocks_after_n_failures_in_window_and_unblocks_later() {
        let mut t = FailureThrottle::new(P);
        assert_eq!(
            t.record_failure(0, "a"),
            FailureOutcome::Counted { failures: 1 }
        );
        assert_eq!(
            t.record_failure(10, "a"),
            FailureOutcome::Counted { failures: 2 }
        );
        assert_eq!(t.blocked_until(10, &"a"), None);
        assert_eq!(
            t.record_failure(20, "a"),
            FailureOutcome::Blocked { until: 300_020 }
        );
        assert_eq!(t.blocked_until(21, &"a"), Some(300_020));
        // other keys are unaffected
        assert_eq!(t.blocked_until(21, &"b"), None);
        // a success does not lift the block
        t.record_success(22, &"a");
        assert_eq!(t.blocked_until(22, &"a"), Some(300_020));
        // failures while blocked keep it blocked, not extended
        assert_eq!(
            t.record_failure(100, "a"),
            FailureOutcome::Blocked { until: 300_020 }
        );
        assert_eq!(t.blocked_until(300_020, &"a"), None);
        assert_eq!(
            t.record_failure(300_021, "a"),
            FailureOutcome::Counted { failures: 1 }
        );
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut t = FailureThrottle::new(P);
        t.record_failure(0, 1);
        t.record_failure(1, 1);
        // the failure at 0 has left the 60 s window, the one at 1 has not
        assert_eq!(
            t.record_failure(60_000, 1),
            FailureOutcome::Counted { failures: 2 }
        );
        assert_eq!(
            t.record_failure(200_000, 1),
            FailureOutcome::Counted { failures: 1 }
        );
    }

    #[test]
    fn success_forgets_failures() {
        let mut t = FailureThrottle::new(P);
        t.record_failure(0, 1);
        t.record_failure(1, 1);
        t.record_success(2, &1);
        assert_eq!(
            t.record_failure(3, 1),
            FailureOutcome::Counted { failures: 1 }
        );
    }

    #[test]
    fn sweep_bounds_memory() {
        let mut t = FailureThrottle::new(P);
        for k in 0..10_000u32 {
            t.record_failure(i64::from(k), k);
        }
        t.sweep(10_000_000);
        assert!(t.is_empty());
    }
}
