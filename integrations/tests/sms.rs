//! Storage tests of SMS notices, each on SQLite and PostgreSQL: templates and their
//! approval, a batch from bidder data (filters, opt-outs, preview counts, confirmation), the
//! outbox protocol (claim → send → mark, retries with backoff, receipts), settling messages in
//! doubt after a crash, quiet hours, and single notices queued once.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use hotline_core::{ManualClock, SystemRng};
use hotline_integrations::bidders::{self, ColumnMapping, ImportRun};
use hotline_integrations::sms::batch::{self, Audience, BidderFilter, NewBatch};
use hotline_integrations::sms::provider::{
    BoxFuture, KeyStatus, OutgoingSms, SendOutcome, SmsProvider,
};
use hotline_integrations::sms::schedule::{Backoff, QuietHours};
use hotline_integrations::sms::sender::{self, Round, SenderPolicy, SmsSender};
use hotline_integrations::sms::template::{self, TemplateInput, TemplateKind};
use hotline_integrations::table::{FileFormat, TextEncoding, read_table};
use hotline_integrations::text::Date;
use sqlx::AnyPool;

const P: &str = "2025-11";
const SIGN: &str = "【天津小客车指标】";

/// 2025-11-05 10:00 Beijing time (outside the default quiet hours).
fn t0() -> i64 {
    Date::new(2025, 11, 5).unwrap().at_beijing(10, 0, 0)
}

async fn import_bidders(pool: &AnyPool) -> anyhow::Result<()> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bidders_utf8.csv");
    let table = read_table(&std::fs::read(p)?, FileFormat::Auto, TextEncoding::Auto)?;
    let r = bidders::import_bidders(
        pool,
        t0(),
        &SystemRng,
        &table,
        &ColumnMapping::default(),
        &ImportRun {
            period: P,
            file_name: "b.csv",
            file_sha256: "x",
            actor: "biz",
            dry_run: false,
        },
    )
    .await?;
    assert!(r.committed);
    Ok(())
}

async fn approved_template(pool: &AnyPool, body: &str) -> anyhow::Result<template::Template> {
    let t = template::create_template(
        pool,
        t0(),
        &SystemRng,
        &TemplateInput {
            kind: TemplateKind::DepositReminder,
            name: "保证金缴纳提醒".into(),
            body: body.into(),
        },
        "biz",
    )
    .await?;
    Ok(template::approve_template(pool, t0(), &t.id, t.version, "boss").await?)
}

/// A provider in memory: counts requests per key, fails the first `fail_first` requests,
/// and answers status questions from what it got.
#[derive(Debug, Default)]
struct MemoryProvider {
    got: Mutex<HashMap<String, u32>>,
    requests: Mutex<u32>,
    fail_first: u32,
    reject_mobile: Option<String>,
}

impl SmsProvider for MemoryProvider {
    fn send<'a>(&'a self, msg: OutgoingSms<'a>) -> BoxFuture<'a, SendOutcome> {
        Box::pin(async move {
            let n = {
                let mut r = self.requests.lock().unwrap();
                *r += 1;
                *r
            };
            if n <= self.fail_first {
                return SendOutcome::Retry("503".into());
            }
            if self.reject_mobile.as_deref() == Some(msg.mobile) {
                return SendOutcome::Rejected("空号".into());
            }
            *self
                .got
                .lock()
                .unwrap()
                .entry(msg.key.to_string())
                .or_default() += 1;
            SendOutcome::Accepted {
                provider_id: format!("p-{}", msg.key),
            }
        })
    }
    fn status<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyStatus, String>> {
        Box::pin(async move {
            Ok(if self.got.lock().unwrap().contains_key(key) {
                KeyStatus::Known {
                    provider_id: format!("p-{key}"),
                }
            } else {
                KeyStatus::NotKnown
            })
        })
    }
    fn dedupes_by_key(&self) -> bool {
        false
    }
}

fn policy(quiet: QuietHours) -> SenderPolicy {
    SenderPolicy {
        rate_per_sec: 1000,
        concurrency: 4,
        max_attempts: 3,
        backoff: Backoff {
            base_ms: 1000,
            max_ms: 10_000,
        },
        quiet,
    }
}

async fn status_of(pool: &AnyPool, batch_id: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    Ok(batch::get_batch(pool, batch_id)
        .await?
        .unwrap()
        .counts
        .by_status)
}

hotline_testkit::db_test!(
    templates_need_approval_and_edits_revoke_it,
    |db| async move {
        let pool = &db.pool;
        let input = TemplateInput {
            kind: TemplateKind::Activation,
            name: "资格激活".into(),
            body: "{name}您好，请于{activation_end}前激活。".into(),
        };
        let t = template::create_template(pool, t0(), &SystemRng, &input, "biz").await?;
        assert_eq!((t.status.as_str(), t.version), ("draft", 1));
        // approving a version that is not the current one is refused
        let e = template::approve_template(pool, t0(), &t.id, 7, "boss").await;
        assert!(e.is_err());
        let a = template::approve_template(pool, t0(), &t.id, 1, "boss").await?;
        assert!(a.is_approved());
        assert_eq!(a.approved_by, "boss");
        // editing the approved text makes it a draft again
        let edited = template::update_template(
            pool,
            t0() + 1,
            &t.id,
            &TemplateInput {
                body: "{name}您好，请尽快激活。".into(),
                ..input.clone()
            },
            "biz",
        )
        .await?;
        assert_eq!(
            (
                edited.status.as_str(),
                edited.version,
                edited.approved_by.as_str()
            ),
            ("draft", 2, "")
        );
        // a malformed body is refused with a clear message
        let bad = template::create_template(
            pool,
            t0(),
            &SystemRng,
            &TemplateInput {
                body: "{name 您好".into(),
                ..input.clone()
            },
            "biz",
        )
        .await;
        assert!(bad.unwrap_err().message_zh().contains("缺少 }"));
        assert_eq!(template::list_templates(pool).await?.len(), 1);
        assert!(template::delete_template(pool, &t.id).await?);
        Ok(())
    }
);

hotline_testkit::db_test!(
    bidder_batch_preview_confirm_send_and_receipts,
    |db| async move {
        let pool = &db.pool;
        import_bidders(pool).await?;
        let t = approved_template(
            pool,
            "{name}您好，您{period}期的保证金{amount}元尚未到账，请于{deadline}前缴纳。",
        )
        .await?;
        assert!(batch::add_opt_out(pool, t0(), "139 0000 1111", "staff", "", "biz").await?);
        let extra: BTreeMap<String, String> = [("deadline".into(), "11月10日17:00".into())].into();
        // a variable the data does not have and nobody gave refuses the batch
        let no_extra =
            batch::bidder_recipients(pool, P, BidderFilter::DepositUnpaid, &BTreeMap::new())
                .await?;
        let e = batch::create_batch(
            pool,
            t0(),
            &SystemRng,
            NewBatch {
                name: "",
                template: &t,
                audience: Audience::Bidders {
                    period: P.into(),
                    filter: BidderFilter::DepositUnpaid,
                },
                recipients: no_extra,
                sign: SIGN,
                opt_out_hint: "回复TD退订",
                actor: "biz",
            },
        )
        .await
        .unwrap_err();
        assert!(e.message_zh().contains("{deadline}"), "{}", e.message_zh());

        let recipients =
            batch::bidder_recipients(pool, P, BidderFilter::DepositUnpaid, &extra).await?;
        assert_eq!(recipients.len(), 5, "codes 1, 2, 3, 6, 7 have not paid");
        let b = batch::create_batch(
            pool,
            t0(),
            &SystemRng,
            NewBatch {
                name: "11月保证金催缴",
                template: &t,
                audience: Audience::Bidders {
                    period: P.into(),
                    filter: BidderFilter::DepositUnpaid,
                },
                recipients,
                sign: SIGN,
                opt_out_hint: "回复TD退订",
                actor: "biz",
            },
        )
        .await?;
        assert_eq!(b.status, "draft");
        assert_eq!(
            (
                b.counts.recipients,
                b.counts.excluded_opt_out,
                b.counts.invalid_mobile
            ),
            (4, 1, 0)
        );
        let sample = b.sample.clone().unwrap();
        assert_eq!(sample.clone().masked().mobile, "138****5678");
        assert_eq!(
            sample.body,
            "【天津小客车指标】张三您好，您2025-11期的保证金2000.00元尚未到账，请于11月10日17:00前缴纳。回复TD退订"
        );
        assert_eq!(template::segments(&sample.body).chars, 63);
        // the company's 10-character name makes its message 71 characters: two parts
        assert_eq!(b.counts.segments, 5);
        // nothing is sent before confirmation
        assert!(sender::claim_due(pool, t0(), 100).await?.is_empty());
        let b = batch::confirm_batch(pool, t0(), &b.id, "biz").await?;
        assert_eq!(b.counts.by_status.get("queued"), Some(&4));
        assert!(
            batch::confirm_batch(pool, t0(), &b.id, "biz")
                .await
                .is_err()
        );

        // one request fails (retry), one number is refused by the provider (failed)
        let provider = Arc::new(MemoryProvider {
            fail_first: 1,
            reject_mobile: Some("13700002222".into()),
            ..Default::default()
        });
        let clock = ManualClock::new(t0());
        // one request at a time, so which message meets the failure is known
        let one_by_one = SenderPolicy {
            concurrency: 1,
            ..policy(QuietHours::NONE)
        };
        let mut s = SmsSender::new(pool.clone(), provider.clone(), one_by_one);
        assert_eq!(
            s.run_round(&clock).await?,
            Round::Sent {
                accepted: 2,
                failed: 2
            }
        );
        // the retried one waits for its backoff
        assert_eq!(s.run_round(&clock).await?, Round::Idle);
        assert_eq!(sender::next_due_at(pool).await?, Some(t0() + 1000));
        clock.advance_ms(1000);
        assert_eq!(
            s.run_round(&clock).await?,
            Round::Sent {
                accepted: 1,
                failed: 0
            }
        );
        let by = status_of(pool, &b.id).await?;
        assert_eq!(by.get("sent"), Some(&3));
        assert_eq!(by.get("failed"), Some(&1));
        let got = provider.got.lock().unwrap().clone();
        assert_eq!(got.len(), 3);
        assert!(got.values().all(|&n| n == 1));
        // receipts: by key; unknown keys are not ours
        let key = got.keys().next().unwrap().clone();
        assert!(batch::apply_receipt(pool, t0(), &key, true, "").await?);
        assert!(!batch::apply_receipt(pool, t0(), "nope", true, "").await?);
        let by = status_of(pool, &b.id).await?;
        assert_eq!((by.get("delivered"), by.get("sent")), (Some(&1), Some(&2)));
        let b = batch::get_batch(pool, &b.id).await?.unwrap();
        assert!(b.finished);
        let failed = batch::list_messages(pool, &b.id, "failed", 10, 0).await?;
        assert_eq!(failed[0].last_error, "空号");
        Ok(())
    }
);

hotline_testkit::db_test!(messages_in_doubt_are_settled_not_resent, |db| async move {
    let pool = &db.pool;
    let t = approved_template(pool, "{name}您好").await?;
    let recipients = (0..10)
        .map(|i| batch::Recipient {
            mobile: format!("1380000{i:04}"),
            vars: [("name".to_string(), format!("用户{i}"))].into(),
        })
        .collect();
    let b = batch::create_batch(
        pool,
        t0(),
        &SystemRng,
        NewBatch {
            name: "t",
            template: &t,
            audience: Audience::Upload {
                file_name: "x.csv".into(),
                rows: 10,
            },
            recipients,
            sign: SIGN,
            opt_out_hint: "",
            actor: "biz",
        },
    )
    .await?;
    batch::confirm_batch(pool, t0(), &b.id, "biz").await?;
    // A crash after the claim: 6 claimed, of which the provider got 3 before the kill.
    let claimed = sender::claim_due(pool, t0(), 6).await?;
    assert_eq!(claimed.len(), 6);
    let provider = Arc::new(MemoryProvider::default());
    for m in &claimed[..3] {
        provider
            .send(OutgoingSms {
                key: &m.id,
                mobile: &m.mobile,
                text: &m.body,
            })
            .await;
    }
    assert_eq!(sender::in_doubt(pool).await?.len(), 6);
    // "Restart": the next round settles before sending.
    let clock = ManualClock::new(t0() + 5000);
    let mut s = SmsSender::new(pool.clone(), provider.clone(), policy(QuietHours::NONE));
    while s.run_round(&clock).await? != Round::Idle {}
    let got = provider.got.lock().unwrap().clone();
    assert_eq!(got.len(), 10, "every message reached the provider");
    assert!(got.values().all(|&n| n == 1), "none twice: {got:?}");
    assert_eq!(*provider.requests.lock().unwrap(), 10);
    assert_eq!(status_of(pool, &b.id).await?.get("sent"), Some(&10));
    let attempts = batch::list_messages(pool, &b.id, "", 100, 0).await?;
    assert!(attempts.iter().all(|m| m.attempts == 1), "{attempts:?}");
    Ok(())
});

hotline_testkit::db_test!(
    quiet_hours_hold_messages_and_singles_queue_once,
    |db| async move {
        let pool = &db.pool;
        // 22:00 Beijing: inside 21:00–08:00
        let night = Date::new(2025, 11, 5).unwrap().at_beijing(22, 0, 0);
        assert!(
            batch::enqueue_single(pool, night, "review-1", "13800000001", "【签】审核通过").await?
        );
        assert!(
            !batch::enqueue_single(pool, night, "review-1", "13800000001", "【签】审核通过")
                .await?
        );
        batch::add_opt_out(pool, night, "13800000002", "reply", "", "sms").await?;
        assert!(!batch::enqueue_single(pool, night, "review-2", "13800000002", "x").await?);
        let quiet = QuietHours::parse("21:00", "08:00", 480).unwrap();
        let provider = Arc::new(MemoryProvider::default());
        let clock = ManualClock::new(night);
        let mut s = SmsSender::new(pool.clone(), provider.clone(), policy(quiet));
        let morning = Date::new(2025, 11, 6).unwrap().at_beijing(8, 0, 0);
        assert_eq!(s.run_round(&clock).await?, Round::Quiet(morning));
        assert!(provider.got.lock().unwrap().is_empty());
        clock.set(morning);
        assert_eq!(
            s.run_round(&clock).await?,
            Round::Sent {
                accepted: 1,
                failed: 0
            }
        );
        assert_eq!(provider.got.lock().unwrap().get("review-1"), Some(&1));
        // A staff notice (health alert) goes out during the quiet hours, once; the public's
        // notices queued then still wait for the morning.
        let late = morning + 14 * 3_600_000; // 22:00 the next evening
        clock.set(late);
        assert!(batch::enqueue_single(pool, late, "review-3", "13800000003", "x").await?);
        assert!(batch::enqueue_staff_notice(pool, late, "alert-1-r", "13800000004", "告警").await?);
        assert!(
            !batch::enqueue_staff_notice(pool, late, "alert-1-r", "13800000004", "告警").await?
        );
        assert_eq!(
            s.run_round(&clock).await?,
            Round::Sent {
                accepted: 1,
                failed: 0
            }
        );
        assert_eq!(provider.got.lock().unwrap().get("alert-1-r"), Some(&1));
        assert_eq!(provider.got.lock().unwrap().get("review-3"), None);
        let next_morning = morning + 24 * 3_600_000;
        assert_eq!(s.run_round(&clock).await?, Round::Quiet(next_morning));
        // opt-outs: listed, removed
        assert_eq!(batch::list_opt_outs(pool, 10, 0).await?.len(), 1);
        assert!(batch::remove_opt_out(pool, "138-0000-0002").await?);
        assert!(!batch::is_opted_out(pool, "13800000002").await?);
        Ok(())
    }
);
