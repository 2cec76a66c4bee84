//! Telling the on-duty technician: an SMS per notice and technician through the SMS outbox,
//! and a JSON POST per notice to the webhook.
//!
//! **SMS.** Queued with [`enqueue_staff_notice`]: an idempotency key made of the alert id,
//! the notice (raised / n-th reminder / cleared) and the technician, so a notice queued twice
//! (a retry, a restart) is sent once; marked urgent, so the quiet hours (which protect the
//! public from night-time notices) do not hold it back. These texts are fixed by the program
//! and go only to the configured staff mobiles, so they do not pass through the template
//! approval that bulk notices to bidders need (docs/alerts.md); the carrier's sign is put in
//! front like on every message.
//!
//! **Webhook.** One worker delivers notices in order; each is retried with exponential
//! backoff (1 s, 2 s, 4 s … at most 60 s) up to `webhook_max_attempts`, every attempt
//! bounded by `webhook_timeout_secs`. Deliveries live in memory: those pending at shutdown
//! are logged and dropped (the alert itself is in the database and on the console).

use std::sync::Arc;
use std::time::Duration;

use hotline_core::UnixMillis;
use hotline_integrations::sms::batch::enqueue_staff_notice;
use hotline_integrations::sms::template::compose;
use serde_json::{Value, json};
use sqlx::AnyPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::engine::{Notice, NoticeKind};
use super::store;

/// `MM-DD HH:MM` in the staff's time zone.
pub fn local_time(ms: UnixMillis, utc_offset_minutes: i32) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .zip(time::UtcOffset::from_whole_seconds(utc_offset_minutes * 60).ok())
        .map(|(t, off)| t.to_offset(off));
    match t {
        Some(t) => format!(
            "{:02}-{:02} {:02}:{:02}",
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        None => String::new(),
    }
}

/// The SMS text of a notice (without the sign).
pub fn sms_body(n: &Notice, utc_offset_minutes: i32) -> String {
    let title = n.rule.title_zh();
    let since = local_time(n.raised_at, utc_offset_minutes);
    match n.kind {
        NoticeKind::Raised => format!("【告警】{title}：{}（{since} 起）", n.message),
        NoticeKind::Repeat => format!(
            "【告警提醒·第{}次】{title}仍未恢复：{}（{since} 起）",
            n.reminders, n.message
        ),
        NoticeKind::Cleared => {
            let minutes = (n.at - n.raised_at).max(0) / 60_000;
            format!(
                "【已恢复】{title}：{}（{since} 起，持续约 {minutes} 分钟）",
                n.subject
            )
        }
    }
}

fn kind_str(k: NoticeKind) -> &'static str {
    match k {
        NoticeKind::Raised => "raised",
        NoticeKind::Repeat => "repeat",
        NoticeKind::Cleared => "cleared",
    }
}

/// The JSON of a notice (webhook body and console event).
pub fn notice_json(id: &str, n: &Notice) -> Value {
    json!({
        "id": id,
        "event": kind_str(n.kind),
        "rule": n.rule.as_str(),
        "title": n.rule.title_zh(),
        "subject": n.subject,
        "severity": n.rule.severity().as_str(),
        "message": n.message,
        "at": n.at,
        "raised_at": n.raised_at,
        "reminders": n.reminders,
    })
}

/// The SMS key of notice `n` of alert `id` to technician number `i`.
pub fn sms_key(id: &str, n: &Notice, i: usize) -> String {
    let what = match n.kind {
        NoticeKind::Raised => "r".to_string(),
        NoticeKind::Repeat => format!("p{}", n.reminders),
        NoticeKind::Cleared => "c".to_string(),
    };
    format!("{id}-{what}-{i}")
}

/// Queues the SMS of a notice to every technician; returns how many were newly queued.
pub async fn queue_sms(
    pool: &AnyPool,
    now: UnixMillis,
    sign: &str,
    utc_offset_minutes: i32,
    mobiles: &[String],
    id: &str,
    n: &Notice,
) -> i64 {
    let text = compose(sign, &sms_body(n, utc_offset_minutes), "");
    let mut queued = 0;
    for (i, m) in mobiles.iter().enumerate() {
        match enqueue_staff_notice(pool, now, &sms_key(id, n, i), m, &text).await {
            Ok(true) => queued += 1,
            Ok(false) => {
                tracing::warn!(alert = %id, technician = i, "alert SMS not queued (already queued, opted out or invalid number)");
            }
            Err(e) => tracing::error!(alert = %id, error = %e, "queuing the alert SMS failed"),
        }
    }
    queued
}

/// A webhook delivery to make.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub alert_id: String,
    pub body: Value,
}

/// The webhook worker's queue.
#[derive(Debug, Clone)]
pub struct Webhook {
    tx: mpsc::UnboundedSender<Delivery>,
}

impl Webhook {
    pub fn send(&self, d: Delivery) {
        if self.tx.send(d).is_err() {
            tracing::warn!("alert webhook worker stopped; delivery dropped");
        }
    }
}

/// The delay before attempt `attempt + 1` (attempt counts from 1).
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs((1u64 << attempt.saturating_sub(1).min(6)).min(60))
}

/// Starts the worker that POSTs deliveries to `url` in order. Returns its queue and the
/// task (to be tracked).
pub fn start_webhook(
    url: String,
    timeout: Duration,
    max_attempts: u32,
    pool: AnyPool,
    cancel: CancellationToken,
) -> (
    Webhook,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
    let task = async move {
        let client = match reqwest::Client::builder().timeout(timeout).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "alert webhook client cannot be built");
                return;
            }
        };
        let client = Arc::new(client);
        loop {
            let d = tokio::select! {
                _ = cancel.cancelled() => break,
                d = rx.recv() => match d { Some(d) => d, None => break },
            };
            let mut delivered = false;
            for attempt in 1..=max_attempts {
                let r = tokio::select! {
                    _ = cancel.cancelled() => break,
                    r = client.post(&url).json(&d.body).send() => r,
                };
                match r {
                    Ok(resp) if resp.status().is_success() => {
                        delivered = true;
                        break;
                    }
                    Ok(resp) => {
                        tracing::warn!(alert = %d.alert_id, attempt, status = %resp.status(), "alert webhook refused");
                    }
                    Err(e) => {
                        tracing::warn!(alert = %d.alert_id, attempt, error = %e, "alert webhook failed");
                    }
                }
                if attempt < max_attempts {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        () = tokio::time::sleep(backoff(attempt)) => {}
                    }
                }
            }
            if cancel.is_cancelled() && !delivered {
                tracing::warn!(alert = %d.alert_id, "alert webhook delivery cut short by shutdown");
                break;
            }
            if !delivered {
                tracing::error!(alert = %d.alert_id, attempts = max_attempts, "alert webhook gave up");
            }
            let (ok, failed) = if delivered { (1, 0) } else { (0, 1) };
            if let Err(e) = store::count_sent(&pool, &d.alert_id, 0, ok, failed).await {
                tracing::warn!(error = %e, "counting the alert webhook delivery failed");
            }
        }
    };
    (Webhook { tx }, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::engine::Rule;

    fn notice(kind: NoticeKind) -> Notice {
        Notice {
            kind,
            rule: Rule::TrunkDown,
            subject: "e1".into(),
            message: "中继 e1 不响应 OPTIONS 保活探测".into(),
            // 2025-11-25 00:00 UTC = 08:00 Beijing
            at: 1_764_028_800_000 + 15 * 60_000,
            raised_at: 1_764_028_800_000,
            reminders: 2,
        }
    }

    #[test]
    fn texts_say_what_and_since_when_in_local_time() {
        let r = sms_body(&notice(NoticeKind::Raised), 480);
        assert_eq!(
            r,
            "【告警】中继中断：中继 e1 不响应 OPTIONS 保活探测（11-25 08:00 起）"
        );
        let p = sms_body(&notice(NoticeKind::Repeat), 480);
        assert!(p.starts_with("【告警提醒·第2次】中继中断仍未恢复"), "{p}");
        let c = sms_body(&notice(NoticeKind::Cleared), 480);
        assert_eq!(
            c,
            "【已恢复】中继中断：e1（11-25 08:00 起，持续约 15 分钟）"
        );
    }

    #[test]
    fn keys_differ_per_notice_and_technician() {
        let keys = [
            sms_key("al-1", &notice(NoticeKind::Raised), 0),
            sms_key("al-1", &notice(NoticeKind::Raised), 1),
            sms_key("al-1", &notice(NoticeKind::Repeat), 0),
            sms_key("al-1", &notice(NoticeKind::Cleared), 0),
        ];
        let set: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(set.len(), 4, "{keys:?}");
        assert_eq!(keys[2], "al-1-p2-0");
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let secs: Vec<u64> = (1..=9).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
