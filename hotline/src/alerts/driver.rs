//! The watcher task: every `interval_secs` it samples the sources, feeds the engine, and
//! carries each notice out — stored, shown on the console (event stream), queued as SMS,
//! posted to the webhook. The engine decides; this only does the I/O.

use std::collections::HashMap;
use std::time::Duration;

use hotline_core::EventSink;
use hotline_core::events::Event;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::engine::{AlertEngine, Notice, NoticeKind, Rule};
use super::notify::{self, Delivery, Webhook};
use super::sources::Sources;
use super::store;
use crate::http::AppState;

/// Publishes an alert change on the console's event stream.
pub fn publish(events: &dyn EventSink, at: i64, body: &serde_json::Value) {
    events.publish(Event::Alert {
        at,
        json: body.to_string(),
    });
}

struct Watcher {
    state: AppState,
    engine: AlertEngine,
    sources: Sources,
    /// The stored id of every alert the engine holds active.
    ids: HashMap<(Rule, String), String>,
    webhook: Option<Webhook>,
}

/// Starts the watcher (and its webhook worker) when `[alerts] enabled`.
pub fn spawn(tracker: &TaskTracker, cancel: &CancellationToken, state: &AppState) {
    let cfg = &state.config.alerts;
    if !cfg.enabled {
        tracing::info!("alerts.enabled is false: the system is not watched");
        return;
    }
    let webhook = (!cfg.webhook_url.is_empty()).then(|| {
        let (hook, task) = notify::start_webhook(
            cfg.webhook_url.clone(),
            Duration::from_secs(u64::from(cfg.webhook_timeout_secs)),
            cfg.webhook_max_attempts,
            state.db.pool.clone(),
            cancel.clone(),
        );
        tracker.spawn(task);
        hook
    });
    let sources = Sources::new(
        state.config.clone(),
        state.db.clone(),
        state.metrics.clone(),
        state.gateway.get().cloned(),
        state.contact.get().cloned(),
    );
    let mut w = Watcher {
        state: state.clone(),
        engine: AlertEngine::new(cfg.policy()),
        sources,
        ids: HashMap::new(),
        webhook,
    };
    let every = Duration::from_secs(u64::from(cfg.interval_secs));
    tracing::info!(
        interval_secs = cfg.interval_secs,
        technicians = cfg.technician_mobiles.len(),
        webhook = !cfg.webhook_url.is_empty(),
        "alert watcher started"
    );
    let cancel = cancel.clone();
    tracker.spawn(async move {
        w.restore().await;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                () = w.round() => {}
            }
        }
    });
}

impl Watcher {
    /// Carries on the alerts that were active when the process stopped.
    async fn restore(&mut self) {
        let now = self.state.now();
        match store::open(&self.state.db.pool).await {
            Ok(rows) => {
                for row in rows {
                    if let Some(r) = row.restored() {
                        self.ids.insert((r.rule, r.subject.clone()), row.id.clone());
                        self.engine.restore(now, r);
                    }
                }
                if !self.ids.is_empty() {
                    tracing::info!(
                        active = self.ids.len(),
                        "alerts active before the restart carried on"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "reading the active alerts failed"),
        }
    }

    async fn round(&mut self) {
        let now = self.state.now();
        let sample = self.sources.sample(now).await;
        // Acknowledged through the API since the last round: no more reminders.
        if let Ok(rows) = store::open(&self.state.db.pool).await {
            for row in rows.iter().filter(|r| !r.acked_by.is_empty()) {
                if let Some(rule) = Rule::parse(&row.rule) {
                    self.engine.handle_ack(rule, &row.subject);
                }
            }
        }
        for (rule, holding) in &sample.levels {
            self.engine.handle_sample(now, *rule, holding);
        }
        for (rule, subject, message) in &sample.occurrences {
            self.engine.handle_occurrence(now, *rule, subject, message);
        }
        self.engine.handle_timeout(now);
        while let Some(n) = self.engine.poll_notice() {
            self.deliver(n).await;
        }
    }

    async fn deliver(&mut self, n: Notice) {
        let key = (n.rule, n.subject.clone());
        let id = match n.kind {
            NoticeKind::Raised => {
                let id = store::new_id(n.at, self.state.rng.as_ref());
                self.ids.insert(key, id.clone());
                id
            }
            NoticeKind::Repeat => match self.ids.get(&key) {
                Some(id) => id.clone(),
                None => return,
            },
            NoticeKind::Cleared => match self.ids.remove(&key) {
                Some(id) => id,
                None => return,
            },
        };
        let kind = match n.kind {
            NoticeKind::Raised => "raised",
            NoticeKind::Repeat => "repeated",
            NoticeKind::Cleared => "cleared",
        };
        match n.kind {
            NoticeKind::Cleared => {
                tracing::info!(rule = %n.rule.as_str(), subject = %n.subject, alert = %id, "alert {kind}")
            }
            _ => {
                tracing::warn!(rule = %n.rule.as_str(), subject = %n.subject, alert = %id, message = %n.message, "alert {kind}")
            }
        }
        let pool = &self.state.db.pool;
        // When the database is the problem this fails too; the webhook still goes out.
        if let Err(e) = store::record(pool, &id, &n).await {
            tracing::error!(alert = %id, error = %e, "storing the alert failed");
        }
        let body = notify::notice_json(&id, &n);
        publish(self.state.events.as_ref(), n.at, &body);
        let cfg = &self.state.config;
        if !cfg.alerts.technician_mobiles.is_empty() {
            let sms = &cfg.integrations.sms;
            let queued = notify::queue_sms(
                pool,
                n.at,
                &sms.sign,
                sms.utc_offset_minutes,
                &cfg.alerts.technician_mobiles,
                &id,
                &n,
            )
            .await;
            if queued > 0 {
                self.state.sms_http().wake.notify_one();
                if let Err(e) = store::count_sent(pool, &id, queued, 0, 0).await {
                    tracing::warn!(error = %e, "counting the alert SMS failed");
                }
            }
        }
        if let Some(hook) = &self.webhook {
            hook.send(Delivery { alert_id: id, body });
        }
    }
}
