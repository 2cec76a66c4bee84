//! Overload control for new calls (RFC 6357 §3, local overload control at a server).
//!
//! The driver stamps every SIP message when it leaves the socket and tells the engine how
//! long it waited before the engine took it. When that wait reaches `sip.overload_lag_ms`,
//! the engine is behind: new INVITEs are refused at once with 503 and Retry-After (RFC 3261
//! §21.5.4) — no call state, no RTP ports, no database write — while everything that belongs
//! to calls already up (ACK, BYE, responses, re-INVITEs) is still handled. Without it a burst
//! beyond capacity makes every call late, retransmissions add to the load and nearly every
//! call fails; with it the gateway keeps serving what it can and refuses the rest cleanly.
//! Shedding stops when the wait is back under a quarter of the limit (hysteresis, so the
//! state does not flap with every message).

/// What a change of state means for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    Shedding,
    Recovered,
}

#[derive(Debug, Clone)]
pub(crate) struct OverloadGuard {
    /// 0 = never shed.
    limit_ms: u64,
    shedding: bool,
}

impl OverloadGuard {
    pub(crate) fn new(limit_ms: u64) -> Self {
        Self {
            limit_ms,
            shedding: false,
        }
    }

    /// Records how long the message now being handled waited; returns a change of state.
    pub(crate) fn note(&mut self, waited_ms: u64) -> Option<Transition> {
        if self.limit_ms == 0 {
            return None;
        }
        if !self.shedding && waited_ms >= self.limit_ms {
            self.shedding = true;
            return Some(Transition::Shedding);
        }
        if self.shedding && waited_ms < self.limit_ms / 4 {
            self.shedding = false;
            return Some(Transition::Recovered);
        }
        None
    }

    /// New calls are to be refused now.
    pub(crate) fn shedding(&self) -> bool {
        self.shedding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheds_past_the_limit_and_recovers_below_a_quarter_of_it() {
        let mut g = OverloadGuard::new(200);
        assert_eq!(g.note(10), None);
        assert_eq!(g.note(199), None);
        assert!(!g.shedding());
        assert_eq!(g.note(200), Some(Transition::Shedding));
        assert!(g.shedding());
        // Still behind, or only partly caught up: keeps shedding.
        assert_eq!(g.note(500), None);
        assert_eq!(g.note(50), None);
        assert!(g.shedding());
        assert_eq!(g.note(49), Some(Transition::Recovered));
        assert!(!g.shedding());
        assert_eq!(g.note(100), None);
    }

    #[test]
    fn a_zero_limit_never_sheds() {
        let mut g = OverloadGuard::new(0);
        assert_eq!(g.note(u64::MAX), None);
        assert!(!g.shedding());
    }
}
