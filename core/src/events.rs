//! Domain events on the in-process event bus. Producers (the gateway, the ACD, the HTTP API)
//! publish through an [`EventSink`]; the binary implements the sink over a broadcast channel
//! and hands it to every crate, so no crate depends on another to be told what happened.

use serde::Serialize;

use crate::clock::UnixMillis;

/// Something that happened, with when it happened.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A user logged in to the web console or the API.
    UserLoggedIn { at: UnixMillis, username: String },
    /// A call-level event from the SIP gateway.
    Call(CallEvent),
    /// A queue or agent event of the ACD (call queued, agent ringing, answered, abandoned,
    /// callback requested, call ended, agent state changed). `kind` is the event's type
    /// (`call_queued`, `agent_state_changed`, …) and `json` the whole event as the `ivr`
    /// crate serialises it: core does not know that crate's types, consumers (wallboard,
    /// statistics) parse what they need.
    Acd {
        at: UnixMillis,
        kind: String,
        json: String,
    },
    /// A system health alert was raised, repeated, cleared or acknowledged. `json` is the
    /// alert as the console shows it (no personal data).
    Alert { at: UnixMillis, json: String },
}

/// What a call went through (issue: SIP gateway). `call_id` is hotline's own call id, not the
/// SIP Call-ID of either leg.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallEvent {
    Offered {
        at: UnixMillis,
        call_id: String,
        from: String,
        to: String,
        source: String,
    },
    Answered {
        at: UnixMillis,
        call_id: String,
    },
    Bridged {
        at: UnixMillis,
        call_id: String,
        seat: String,
    },
    Dtmf {
        at: UnixMillis,
        call_id: String,
        digit: char,
    },
    Held {
        at: UnixMillis,
        call_id: String,
        on_hold: bool,
    },
    Transferred {
        at: UnixMillis,
        call_id: String,
        target: String,
    },
    Ended {
        at: UnixMillis,
        call_id: String,
        cause: String,
    },
}

/// Where events go. Publishing never blocks: a slow subscriber loses events, the producer
/// (possibly on the RTP path) never waits.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    fn publish(&self, event: Event);
}

/// A sink that drops everything (tools and tests that do not watch events).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl EventSink for NullSink {
    fn publish(&self, _event: Event) {}
}

/// A sink that keeps every event, for tests.
#[derive(Debug, Default)]
pub struct MemorySink(pub std::sync::Mutex<Vec<Event>>);

impl EventSink for MemorySink {
    fn publish(&self, event: Event) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sink_keeps_events_in_order() {
        let sink = MemorySink::default();
        let a = Event::Call(CallEvent::Answered {
            at: 5,
            call_id: "c1".into(),
        });
        let b = Event::UserLoggedIn {
            at: 6,
            username: "admin".into(),
        };
        sink.publish(a.clone());
        NullSink.publish(a.clone());
        sink.publish(b.clone());
        assert_eq!(sink.0.lock().unwrap().as_slice(), &[a, b]);
    }
}
