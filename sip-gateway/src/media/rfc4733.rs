//! RFC 4733 telephone-events received from a caller (sans-IO).
//!
//! One key press is one event: every packet of it carries the same RTP timestamp (§2.5.1.1),
//! the duration grows, and the last state is sent with the E bit, usually three times
//! (§2.5.1.4). A digit is reported once, on the first end packet; the repeats are counted
//! but not reported again. If every end packet is lost, the digit is reported when the next
//! event (a new timestamp) starts, so a lossy trunk does not swallow it.

const EVENTS: &[u8; 16] = b"0123456789*#ABCD";

/// A digit with how long it was held (milliseconds, from the event's duration field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub digit: char,
    pub duration_ms: u32,
}

#[derive(Debug, Default)]
pub(crate) struct EventReceiver {
    /// The event in progress: (timestamp, digit, duration in samples, ended).
    current: Option<(u32, char, u16, bool)>,
    /// End packets seen again after the first (for tests and statistics).
    pub(crate) repeated_ends: u64,
}

impl EventReceiver {
    /// One telephone-event payload with its RTP timestamp; returns the digits completed.
    pub(crate) fn handle(&mut self, ts: u32, payload: &[u8]) -> Vec<TelephoneEvent> {
        let mut done = Vec::new();
        if payload.len() < 4 {
            return done;
        }
        let Some(&digit) = EVENTS.get(usize::from(payload[0])) else {
            return done; // not a DTMF event (flash, tones)
        };
        let end = payload[1] & 0x80 != 0;
        let duration = u16::from_be_bytes([payload[2], payload[3]]);
        match self.current {
            Some((cts, _, _, true)) if cts == ts => {
                self.repeated_ends += 1;
                return done;
            }
            Some((cts, d, dur, false)) if cts != ts => {
                // The previous event never showed its end.
                done.push(event(d, dur));
            }
            _ => {}
        }
        self.current = Some((ts, digit as char, duration, end));
        if end {
            done.push(event(digit as char, duration));
        }
        done
    }
}

fn event(digit: char, samples: u16) -> TelephoneEvent {
    TelephoneEvent {
        digit,
        duration_ms: u32::from(samples) / 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(event: u8, end: bool, duration: u16) -> Vec<u8> {
        let mut v = vec![event, if end { 0x80 | 10 } else { 10 }];
        v.extend_from_slice(&duration.to_be_bytes());
        v
    }

    #[test]
    fn one_digit_per_event_with_repeated_ends_counted_once() {
        let mut r = EventReceiver::default();
        let mut got = Vec::new();
        for d in [160, 320, 480, 640] {
            got.extend(r.handle(1000, &p(5, false, d)));
        }
        assert!(got.is_empty());
        for _ in 0..3 {
            got.extend(r.handle(1000, &p(5, true, 800)));
        }
        assert_eq!(
            got,
            [TelephoneEvent {
                digit: '5',
                duration_ms: 100
            }]
        );
        assert_eq!(r.repeated_ends, 2);
        // The same digit pressed again is a new event (new timestamp).
        let again = r.handle(5000, &p(5, true, 400));
        assert_eq!(again.len(), 1);
        // * and # and A–D.
        assert_eq!(r.handle(6000, &p(10, true, 400))[0].digit, '*');
        assert_eq!(r.handle(7000, &p(11, true, 400))[0].digit, '#');
        assert_eq!(r.handle(8000, &p(15, true, 400))[0].digit, 'D');
    }

    #[test]
    fn lost_end_packets_and_junk() {
        let mut r = EventReceiver::default();
        assert!(r.handle(100, &p(1, false, 160)).is_empty());
        // All end packets of '1' lost; '2' starts.
        let got = r.handle(900, &p(2, false, 160));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].digit, '1');
        assert_eq!(r.handle(900, &p(2, true, 480))[0].digit, '2');
        assert!(r.handle(2000, &[1, 2]).is_empty());
        assert!(
            r.handle(2000, &p(16, true, 100)).is_empty(),
            "flash is no digit"
        );
    }
}
