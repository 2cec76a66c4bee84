//! Request rate limits for the public visitor API (sans-IO): at most `per_minute` events per
//! key in each fixed one-minute window. Memory is bounded: entries of past windows are
//! swept when the table is full; a key that still finds no room is let through (the other
//! limit — per address — still applies), so a flood of fresh keys cannot lock others out.

use std::collections::HashMap;

use hotline_core::UnixMillis;

const WINDOW_MS: i64 = 60_000;

#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    max_keys: usize,
    entries: HashMap<String, (UnixMillis, u32)>,
}

impl RateLimiter {
    pub fn new(per_minute: u32, max_keys: usize) -> Self {
        Self {
            per_minute: per_minute.max(1),
            max_keys: max_keys.max(1),
            entries: HashMap::new(),
        }
    }

    /// Counts one event for `key`; `Err(retry_after_secs)` when over the limit.
    pub fn check(&mut self, now: UnixMillis, key: &str) -> Result<(), u64> {
        let window = now - now.rem_euclid(WINDOW_MS);
        if !self.entries.contains_key(key) && self.entries.len() >= self.max_keys {
            self.entries.retain(|_, (w, _)| *w == window);
            if self.entries.len() >= self.max_keys {
                return Ok(());
            }
        }
        let e = self.entries.entry(key.to_string()).or_insert((window, 0));
        if e.0 != window {
            *e = (window, 0);
        }
        if e.1 >= self.per_minute {
            let retry_ms = window + WINDOW_MS - now;
            return Err(((retry_ms + 999) / 1000).max(1) as u64);
        }
        e.1 += 1;
        Ok(())
    }

    pub fn keys(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_window() {
        let mut l = RateLimiter::new(3, 10);
        let t = 1_700_000_080_000; // 40 s into a minute
        for _ in 0..3 {
            l.check(t, "a").unwrap();
        }
        assert_eq!(l.check(t, "a"), Err(20));
        l.check(t, "b").unwrap();
        // the next minute starts afresh
        l.check(t + 20_000, "a").unwrap();
    }

    #[test]
    fn memory_is_bounded() {
        let mut l = RateLimiter::new(1, 5);
        let t = 1_700_000_000_000;
        for i in 0..100 {
            let _ = l.check(t, &format!("k{i}"));
        }
        assert!(l.keys() <= 5);
        // a minute later the old entries are swept for new keys
        l.check(t + 60_000, "new").unwrap();
        assert_eq!(l.keys(), 1);
    }
}
