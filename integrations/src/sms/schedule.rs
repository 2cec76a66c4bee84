//! When the sender may send (sans-IO, every function takes `now`): quiet hours in the local
//! time of the recipients, the provider's rate limit as a token bucket, and the backoff
//! between attempts (the 12345 outbox's [`Backoff`], reused).

use hotline_core::UnixMillis;

pub use crate::workorder::Backoff;

const DAY_MS: i64 = 86_400_000;

/// A daily window without sends, e.g. 21:00–08:00 at UTC+8 (Asia/Shanghai has no daylight
/// saving, so a fixed offset is exact). `start == end` means no quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// Minutes after local midnight.
    pub start_minute: u32,
    pub end_minute: u32,
    pub utc_offset_minutes: i32,
}

impl QuietHours {
    pub const NONE: QuietHours = QuietHours {
        start_minute: 0,
        end_minute: 0,
        utc_offset_minutes: 480,
    };

    /// Parses `HH:MM` pairs (`"21:00"`, `"08:00"`).
    pub fn parse(start: &str, end: &str, utc_offset_minutes: i32) -> Result<Self, String> {
        Ok(Self {
            start_minute: parse_hhmm(start).ok_or_else(|| format!("`{start}` is not HH:MM"))?,
            end_minute: parse_hhmm(end).ok_or_else(|| format!("`{end}` is not HH:MM"))?,
            utc_offset_minutes,
        })
    }

    fn local_ms_of_day(&self, now: UnixMillis) -> i64 {
        (now + i64::from(self.utc_offset_minutes) * 60_000).rem_euclid(DAY_MS)
    }

    /// `None` when sending is allowed at `now`; otherwise when the quiet hours end.
    pub fn quiet_until(&self, now: UnixMillis) -> Option<UnixMillis> {
        if self.start_minute == self.end_minute {
            return None;
        }
        let t = self.local_ms_of_day(now);
        let (s, e) = (
            i64::from(self.start_minute) * 60_000,
            i64::from(self.end_minute) * 60_000,
        );
        let quiet = if s < e {
            t >= s && t < e
        } else {
            // Over midnight: 21:00–08:00.
            t >= s || t < e
        };
        if !quiet {
            return None;
        }
        let wait = (e - t).rem_euclid(DAY_MS);
        Some(now + wait)
    }
}

pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// A token bucket: `rate` messages per second on average, bursts up to `burst`. Sans-IO: the
/// driver asks when it may send and sleeps itself.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    /// Tokens in thousandths, to keep integer arithmetic exact at any rate.
    milli_tokens: i64,
    per_sec: i64,
    burst_milli: i64,
    last: UnixMillis,
}

impl RateLimiter {
    pub fn new(now: UnixMillis, per_sec: u32, burst: u32) -> Self {
        let per_sec = i64::from(per_sec.max(1));
        let burst_milli = i64::from(burst.max(1)) * 1000;
        Self {
            // Starts full: a burst of `burst` may go at once. (A restart takes longer than
            // the second a gateway measures its limit over, so it cannot double a burst.)
            milli_tokens: burst_milli,
            per_sec,
            burst_milli,
            last: now,
        }
    }

    fn refill(&mut self, now: UnixMillis) {
        if now > self.last {
            // rate msgs/s = rate tokens per 1000 ms = rate milli-tokens per ms
            self.milli_tokens =
                (self.milli_tokens + (now - self.last) * self.per_sec).min(self.burst_milli);
            self.last = now;
        }
    }

    /// Takes one token: `Ok(())` to send now, or `Err(t)`: try again at `t`.
    pub fn try_acquire(&mut self, now: UnixMillis) -> Result<(), UnixMillis> {
        self.refill(now);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            Ok(())
        } else {
            let missing = 1000 - self.milli_tokens;
            Err(now + (missing + self.per_sec - 1) / self.per_sec)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-11-05 00:00 UTC.
    const MIDNIGHT_UTC: i64 = 1_762_300_800_000;

    fn at_beijing(h: i64, m: i64) -> i64 {
        MIDNIGHT_UTC - 8 * 3_600_000 + (h * 60 + m) * 60_000
    }

    #[test]
    fn quiet_hours_over_midnight() {
        let q = QuietHours::parse("21:00", "08:00", 480).unwrap();
        assert_eq!(q.quiet_until(at_beijing(20, 59)), None);
        assert_eq!(q.quiet_until(at_beijing(21, 0)), Some(at_beijing(32, 0)));
        assert_eq!(q.quiet_until(at_beijing(23, 30)), Some(at_beijing(32, 0)));
        assert_eq!(q.quiet_until(at_beijing(3, 0)), Some(at_beijing(8, 0)));
        assert_eq!(q.quiet_until(at_beijing(7, 59)), Some(at_beijing(8, 0)));
        assert_eq!(q.quiet_until(at_beijing(8, 0)), None);
        assert_eq!(q.quiet_until(at_beijing(12, 0)), None);
    }

    #[test]
    fn quiet_hours_within_a_day_and_none() {
        let q = QuietHours::parse("12:00", "13:30", 480).unwrap();
        assert_eq!(q.quiet_until(at_beijing(11, 59)), None);
        assert_eq!(q.quiet_until(at_beijing(12, 10)), Some(at_beijing(13, 30)));
        assert_eq!(q.quiet_until(at_beijing(13, 30)), None);
        assert_eq!(QuietHours::NONE.quiet_until(at_beijing(23, 0)), None);
        assert!(QuietHours::parse("25:00", "08:00", 480).is_err());
        assert!(QuietHours::parse("21:0", "08:00", 480).is_err());
        assert_eq!(parse_hhmm("8:05"), Some(485));
    }

    #[test]
    fn rate_limiter_keeps_the_rate() {
        let mut r = RateLimiter::new(0, 10, 1);
        assert_eq!(r.try_acquire(0), Ok(()));
        // the next token takes 100 ms at 10/s
        assert_eq!(r.try_acquire(0), Err(100));
        assert_eq!(r.try_acquire(100), Ok(()));
        // over 10 s, 10/s get through
        let mut sent = 0;
        let mut t = 100;
        while t <= 10_100 {
            match r.try_acquire(t) {
                Ok(()) => sent += 1,
                Err(next) => t = next,
            }
        }
        assert_eq!(sent, 100);
        let mut r = RateLimiter::new(0, 10, 10);
        // an idle minute allows a burst of `burst`, not sixty seconds' worth
        let mut burst = 0;
        while r.try_acquire(80_000).is_ok() {
            burst += 1;
        }
        assert_eq!(burst, 10);
    }

    #[test]
    fn rate_limiter_at_high_rates() {
        // a full bucket of 100 at start, then 5 per millisecond
        let mut r = RateLimiter::new(0, 5000, 100);
        let mut sent = 0;
        let mut t = 0;
        while t <= 1000 {
            match r.try_acquire(t) {
                Ok(()) => sent += 1,
                Err(next) => t = next,
            }
        }
        assert_eq!(sent, 5100);
    }

    #[test]
    fn backoff_is_exponential_and_capped() {
        let b = Backoff {
            base_ms: 1000,
            max_ms: 5000,
        };
        assert_eq!(b.next_attempt(0, 1), 1000);
        assert_eq!(b.next_attempt(0, 2), 2000);
        assert_eq!(b.next_attempt(0, 3), 4000);
        assert_eq!(b.next_attempt(0, 4), 5000);
    }
}
