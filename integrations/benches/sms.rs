//! SMS batch benchmark (issue 9): imports N bidders, then times what staff wait for —
//! resolving the audience, rendering, the opt-out check and writing the outbox (the draft
//! batch with its preview), and the confirmation — then drains the outbox through the real
//! sender (claim → send → mark) against an in-memory gateway at the configured rate, and
//! reports the rate achieved. SQLite always; PostgreSQL too when `TEST_DATABASE_URL` is set.
//!
//! Run: `cargo bench -p hotline-integrations --bench sms -- 100000 5000`
//! (recipients, rate per second; defaults 100,000 and 5,000). Results: bench/README.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hotline_core::SystemClock;
use hotline_core::id::SeededRng;
use hotline_integrations::bidders::{self, ColumnMapping, ImportRun};
use hotline_integrations::sms::batch::{self, Audience, BidderFilter, NewBatch};
use hotline_integrations::sms::provider::{
    BoxFuture, KeyStatus, OutgoingSms, SendOutcome, SmsProvider,
};
use hotline_integrations::sms::schedule::{Backoff, QuietHours};
use hotline_integrations::sms::sender::{Round, SenderPolicy, SmsSender};
use hotline_integrations::sms::template::{self, TemplateInput, TemplateKind};
use hotline_integrations::table::read_csv;
use hotline_testkit::{Backend, ExternalDb};

/// Accepts everything at once: measures our side only.
#[derive(Debug, Default)]
struct NullGateway(AtomicU64);

impl SmsProvider for NullGateway {
    fn send<'a>(&'a self, _: OutgoingSms<'a>) -> BoxFuture<'a, SendOutcome> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Box::pin(async {
            SendOutcome::Accepted {
                provider_id: String::new(),
            }
        })
    }
    fn status<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<KeyStatus, String>> {
        Box::pin(async { Ok(KeyStatus::NotKnown) })
    }
    fn dedupes_by_key(&self) -> bool {
        false
    }
}

fn generate(rows: u64) -> String {
    let mut s = String::with_capacity(rows as usize * 120);
    s.push_str("申请编码,类型,姓名/名称,证件号码,手机号,保证金状态,保证金缴纳日期,保证金金额,激活状态,竞价结果,成交价,缴款状态,退款状态,退款日期,退款失败原因\n");
    for n in 0..rows {
        s.push_str(&format!(
            "25{n:011},个人,竞买人{n},E{n:08},13{n:09},未缴纳,,,否,,,,,,\n"
        ));
    }
    s
}

async fn bench(backend: Backend, rows: u64, rate: u32, csv: &str) -> anyhow::Result<()> {
    let Some(ext) = ExternalDb::create(backend).await? else {
        println!("{backend:?}: skipped (TEST_DATABASE_URL not set)");
        return Ok(());
    };
    let pool = ext.db.pool.clone();
    let rng = SeededRng::new(7);
    let table = read_csv(csv)?;
    let r = bidders::import_bidders(
        &pool,
        1,
        &rng,
        &table,
        &ColumnMapping::default(),
        &ImportRun {
            period: "2025-11",
            file_name: "bench.csv",
            file_sha256: "-",
            actor: "bench",
            dry_run: false,
        },
    )
    .await?;
    assert_eq!(r.inserted, rows, "{:?}", r.problems.first());
    for i in 0..100u64 {
        batch::add_opt_out(&pool, 1, &format!("13{:09}", i * 997), "staff", "", "bench").await?;
    }
    let t = template::create_template(
        &pool,
        1,
        &rng,
        &TemplateInput {
            kind: TemplateKind::DepositReminder,
            name: "保证金缴纳提醒".into(),
            body: "{name}您好，您{period}期竞价保证金{amount}元尚未到账，请于{deadline}前缴纳。"
                .into(),
        },
        "biz",
    )
    .await?;
    let t = template::approve_template(&pool, 1, &t.id, 1, "boss").await?;
    let extra: BTreeMap<String, String> =
        [("deadline".to_string(), "11月10日17:00".to_string())].into();

    let started = Instant::now();
    let recipients =
        batch::bidder_recipients(&pool, "2025-11", BidderFilter::DepositUnpaid, &extra).await?;
    let audience_t = started.elapsed();
    let b = batch::create_batch(
        &pool,
        2,
        &rng,
        NewBatch {
            name: "bench",
            template: &t,
            audience: Audience::Bidders {
                period: "2025-11".into(),
                filter: BidderFilter::DepositUnpaid,
            },
            recipients,
            sign: "【天津小客车指标】",
            opt_out_hint: "回复TD退订",
            actor: "biz",
        },
    )
    .await?;
    let draft_t = started.elapsed();
    let b = batch::confirm_batch(&pool, 3, &b.id, "biz").await?;
    let queued_t = started.elapsed();
    println!(
        "{backend:?}: {rows} recipients queued in {:.2?} (audience {:.2?}, render+preview+write {:.2?}, confirm {:.2?}); to send {}, opted out {}, segments {}",
        queued_t,
        audience_t,
        draft_t - audience_t,
        queued_t - draft_t,
        b.counts.recipients,
        b.counts.excluded_opt_out,
        b.counts.segments
    );

    let gateway = Arc::new(NullGateway::default());
    let mut sender = SmsSender::new(
        pool.clone(),
        gateway.clone(),
        SenderPolicy {
            rate_per_sec: rate,
            concurrency: 8,
            max_attempts: 5,
            backoff: Backoff {
                base_ms: 1000,
                max_ms: 60_000,
            },
            quiet: QuietHours::NONE,
        },
    );
    let clock = SystemClock;
    let t = Instant::now();
    while sender.run_round(&clock).await? != Round::Idle {}
    let took = t.elapsed();
    let sent = gateway.0.load(Ordering::Relaxed);
    assert_eq!(sent, b.counts.recipients);
    println!(
        "{backend:?}: sent {sent} at a configured {rate}/s in {:.2?}: {:.0} messages/s achieved",
        took,
        sent as f64 / took.as_secs_f64()
    );
    ext.release().await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let rows = args.next().unwrap_or(100_000);
    let rate = args.next().unwrap_or(5_000) as u32;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let csv = generate(rows);
    rt.block_on(async {
        bench(Backend::Sqlite, rows, rate, &csv).await?;
        bench(Backend::Postgres, rows, rate, &csv).await
    })
}
