//! Import and lookup benchmark (issue 8): generates N bidder rows as a UTF-8 CSV, reads,
//! validates and imports them into a fresh database (SQLite always; PostgreSQL too when
//! `TEST_DATABASE_URL` is set), imports them again (all unchanged), then measures the IVR
//! self-service lookup and the screen-pop (p50/p99 over 10,000 random lookups).
//!
//! Run: `cargo bench -p hotline-integrations --bench import -- 1000000`
//! (the argument is the row count; default 100,000). Results: integrations/BENCH.md.

use std::time::{Duration, Instant};

use hotline_core::id::SeededRng;
use hotline_integrations::bidders::{self, ColumnMapping, ImportRun};
use hotline_integrations::lookup::{self, LookupAnswer, SelfServiceGate};
use hotline_integrations::table::read_csv;
use hotline_testkit::{Backend, ExternalDb};

const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const C: &[u8; 11] = b"10X98765432";

fn resident_id(n: u64) -> String {
    let body = format!("120101{:08}{:03}", 19_900_101 + (n % 28), n % 1000);
    let sum: u32 = body
        .bytes()
        .zip(W)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    format!("{body}{}", C[(sum % 11) as usize] as char)
}

fn generate(rows: u64) -> String {
    let mut s = String::with_capacity(rows as usize * 120);
    s.push_str("申请编码,类型,姓名/名称,证件号码,手机号,保证金状态,保证金缴纳日期,保证金金额,激活状态,竞价结果,成交价,缴款状态,退款状态,退款日期,退款失败原因\n");
    for n in 0..rows {
        let won = n % 20 == 0;
        s.push_str(&format!(
            "25{n:011},个人,竞买人{n},{},13{n:09},已缴纳,2025-11-03,2000,是,{},{},{},,,\n",
            resident_id(n),
            if won { "成交" } else { "未成交" },
            if won { "95000" } else { "" },
            if won { "已缴款" } else { "" },
        ));
    }
    s
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn bench(backend: Backend, rows: u64, csv: &str) -> anyhow::Result<()> {
    let Some(ext) = ExternalDb::create(backend).await? else {
        println!("{backend:?}: skipped (TEST_DATABASE_URL not set)");
        return Ok(());
    };
    let pool = ext.db.pool.clone();
    let rng = SeededRng::new(7);
    let run = ImportRun {
        period: "2025-11",
        file_name: "bench.csv",
        file_sha256: "-",
        actor: "bench",
        dry_run: false,
    };
    let t = Instant::now();
    let table = read_csv(csv)?;
    let read = t.elapsed();
    let t = Instant::now();
    let r =
        bidders::import_bidders(&pool, 1, &rng, &table, &ColumnMapping::default(), &run).await?;
    let import = t.elapsed();
    assert_eq!(r.inserted, rows, "{:?}", r.problems.first());
    let t = Instant::now();
    let r2 =
        bidders::import_bidders(&pool, 2, &rng, &table, &ColumnMapping::default(), &run).await?;
    let again = t.elapsed();
    assert_eq!(r2.unchanged, rows);
    println!(
        "{backend:?}: {rows} rows: read+decode CSV {:.2?}, validate+write {:.2?} (total {:.2?}, {:.0} rows/s); re-import (unchanged) {:.2?}",
        read,
        import,
        read + import,
        rows as f64 / (read + import).as_secs_f64(),
        again
    );

    let gate = std::sync::Mutex::new(SelfServiceGate::default());
    let mut lat = Vec::with_capacity(10_000);
    let mut pops = Vec::with_capacity(10_000);
    let mut x: u64 = 88_172_645_463_325_252;
    for i in 0..10_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = x % rows;
        let code = format!("25{n:011}");
        let last4 = format!("{:04}", n % 10_000);
        let t = Instant::now();
        let a = lookup::ivr_lookup(&pool, &gate, 10, &format!("c{i}"), &code, &last4).await?;
        lat.push(t.elapsed());
        assert!(matches!(a, LookupAnswer::Found(_)), "{a:?}");
        let t = Instant::now();
        let p = lookup::screen_pop(&pool, &format!("13{n:09}")).await?;
        pops.push(t.elapsed());
        assert_eq!(p.len(), 1);
    }
    lat.sort();
    pops.sort();
    println!(
        "{backend:?}: IVR lookup p50 {:.2?} p99 {:.2?}; screen-pop p50 {:.2?} p99 {:.2?} (10,000 each)",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&pops, 0.5),
        pct(&pops, 0.99)
    );
    ext.release().await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let rows: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let t = Instant::now();
    let csv = generate(rows);
    println!(
        "generated {rows} rows ({:.1} MB) in {:.2?}",
        csv.len() as f64 / 1e6,
        t.elapsed()
    );
    rt.block_on(async {
        bench(Backend::Sqlite, rows, &csv).await?;
        bench(Backend::Postgres, rows, &csv).await
    })
}
