//! The in-process event bus: a broadcast channel behind `hotline_core::EventSink`.
//! Publishing never waits; a subscriber that falls behind misses events (it is told how many
//! by `RecvError::Lagged`) rather than slowing the producer.

use hotline_core::{Event, EventSink};
use tokio::sync::broadcast;

#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        Self { tx }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl EventSink for EventBus {
    fn publish(&self, event: Event) {
        // An error only means nobody listens right now.
        let _ = self.tx.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_receive_published_events() {
        let bus = EventBus::new(8);
        let mut rx = bus.subscribe();
        let e = Event::UserLoggedIn {
            at: 1,
            username: "a".into(),
        };
        bus.publish(e.clone());
        assert_eq!(rx.recv().await.unwrap(), e);
        // publishing with no subscribers is fine
        drop(rx);
        bus.publish(e);
    }
}
