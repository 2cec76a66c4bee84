//! The command-line side of the integrations (issue 8): imports of the auction system's
//! bidder export and of Bohai Bank's files (with `--dry-run` and a progress bar on stderr),
//! the mismatch list and its manual reconciliation, and the auction calendar. Each command
//! writes an audit entry with actor `cli`. The clap wiring lives in `cli.rs`.

use std::io::Write;
use std::path::Path;

use hotline_core::{Clock, SystemClock, SystemRng};
use hotline_integrations::bank::{
    self, BankDeposit, DEFAULT_DEPOSIT_CENTS, DepositRules, MismatchFilter, Resolution,
};
use hotline_integrations::bidders::{self, ImportReport, ImportRun, sha256_hex};
use hotline_integrations::calendar::{self, AuctionCalendar, CalendarInput};
use hotline_integrations::table::{FileFormat, TextEncoding, read_table};
use hotline_integrations::text::parse_period;
use hotline_integrations::{IntegrationError, IntegrationsConfig};

use crate::db::Db;
use crate::db::audit::Audit;
use crate::db::data_files::{Direction, NewDataFile};
use crate::fail::Failure;

/// What every file import takes besides the file.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// `YYYY-MM`.
    pub period: String,
    pub dry_run: bool,
    pub encoding: TextEncoding,
    pub format: FileFormat,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Which file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Bidders,
    Deposits,
    RefundFailures,
}

fn fail(e: IntegrationError) -> Failure {
    match e {
        IntegrationError::Db(_) | IntegrationError::Corrupt(_) => Failure::runtime(e),
        other => Failure::usage(other.message_zh()),
    }
}

fn draw_progress(done: u64, total: u64) {
    let width = 30u64;
    // An empty file is complete from the start.
    let filled = (done * width).checked_div(total).unwrap_or(width);
    let pct = (done * 100).checked_div(total).unwrap_or(100);
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r写入 [{}{}] {pct:>3}% {done}/{total}",
        "#".repeat(filled as usize),
        "-".repeat((width - filled) as usize)
    );
    if done >= total {
        let _ = writeln!(err);
    }
    let _ = err.flush();
}

/// Imports one file. Returns the report (with `problems` and `committed: false` when a row
/// is bad; the caller prints it and exits non-zero).
pub async fn import_file(
    db: &Db,
    config: &IntegrationsConfig,
    kind: ImportKind,
    path: &Path,
    opts: &ImportOptions,
) -> Result<ImportReport, Failure> {
    let period = parse_period(&opts.period)
        .ok_or_else(|| Failure::usage(format!("期次无效（应为 YYYY-MM）：{}", opts.period)))?;
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("无法读取 {}: {e}", path.display())))?;
    let format = match (opts.format, path.extension().and_then(|e| e.to_str())) {
        (FileFormat::Auto, Some(ext)) if ext.eq_ignore_ascii_case("xlsx") => FileFormat::Xlsx,
        (f, _) => f,
    };
    let table = read_table(&bytes, format, opts.encoding).map_err(fail)?;
    let sha = sha256_hex(&bytes);
    let file_name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let run = ImportRun {
        period: &period,
        file_name: &file_name,
        file_sha256: &sha,
        actor: "cli",
        dry_run: opts.dry_run,
    };
    let now = SystemClock.now_ms();
    let rng = SystemRng;
    let pool = &db.pool;
    let report = match kind {
        ImportKind::Bidders => {
            let progress: Option<bidders::Progress<'_>> = if opts.progress {
                Some(&draw_progress)
            } else {
                None
            };
            bidders::import_bidders_with_progress(
                pool,
                now,
                &rng,
                &table,
                &config.bidder_columns,
                &run,
                progress,
            )
            .await
        }
        ImportKind::Deposits => {
            let cal = calendar::get_calendar(pool, &period).await.map_err(fail)?;
            if cal.is_none() {
                eprintln!("注意：{period} 期尚未录入竞价日历，不检查到账截止时间");
            }
            let rules = DepositRules {
                deadline: cal.as_ref().map(|c| c.deposit_deadline_at),
                deposit_cents: cal.map_or(DEFAULT_DEPOSIT_CENTS, |c| c.deposit_cents),
            };
            bank::import_deposits(
                pool,
                now,
                &rng,
                &table,
                &config.deposit_columns,
                rules,
                &run,
            )
            .await
        }
        ImportKind::RefundFailures => {
            bank::import_refund_failures(
                pool,
                now,
                &rng,
                &table,
                &config.refund_failure_columns,
                &run,
            )
            .await
        }
    }
    .map_err(fail)?;
    let action = match kind {
        ImportKind::Bidders => "integrations.import_bidders",
        ImportKind::Deposits => "integrations.import_deposits",
        ImportKind::RefundFailures => "integrations.import_refund_failures",
    };
    let detail = format!(
        "file={file_name} sha256={sha} rows={} inserted={} updated={} unchanged={} bad_rows={} dry_run={} committed={}",
        report.rows,
        report.inserted,
        report.updated,
        report.unchanged,
        report.bad_rows(),
        report.dry_run,
        report.committed
    );
    db.audit(
        now,
        &rng,
        Audit {
            actor: "cli",
            action,
            target: &period,
            detail: &detail,
            remote_addr: "",
        },
    )
    .await?;
    if report.committed {
        let kind = match kind {
            ImportKind::Bidders => "bidders",
            ImportKind::Deposits => "bank_deposits",
            ImportKind::RefundFailures => "bank_refund_failures",
        };
        db.record_data_file(
            now,
            &rng,
            NewDataFile {
                direction: Direction::Import,
                kind,
                file_name: &file_name,
                bytes: &bytes,
                operator: "cli",
                remote_addr: "local",
            },
        )
        .await?;
    }
    Ok(report)
}

/// `hotline bidders import FILE --period 2025-11 [--dry-run] [--encoding gbk]`.
pub async fn import_bidders(
    db: &Db,
    config: &IntegrationsConfig,
    path: &Path,
    opts: &ImportOptions,
) -> Result<ImportReport, Failure> {
    import_file(db, config, ImportKind::Bidders, path, opts).await
}

/// The report as text for the terminal (zh-CN). Personal data in problems is already masked.
pub fn format_report(r: &ImportReport) -> String {
    let mut out = String::new();
    let head = if r.dry_run {
        "试运行（未写入）"
    } else if r.committed {
        "已导入"
    } else {
        "未导入"
    };
    out.push_str(&format!(
        "{head}：{} 期，共 {} 行；新增 {}，更新 {}，未变 {}\n",
        r.period, r.rows, r.inserted, r.updated, r.unchanged
    ));
    let mut counts: Vec<_> = r.counts.iter().collect();
    counts.sort();
    for (k, v) in counts {
        out.push_str(&format!("  {k}: {v}\n"));
    }
    if !r.problems.is_empty() {
        out.push_str(&format!("发现 {} 行错误，整个文件未写入：\n", r.bad_rows()));
        for p in &r.problems {
            out.push_str(&format!("  {p}\n"));
        }
    }
    out
}

/// Exit status for an import: 0 when written (or a clean dry run), 2 when rows were bad.
pub fn exit_code(r: &ImportReport) -> u8 {
    if r.problems.is_empty() { 0 } else { 2 }
}

/// `hotline bank mismatches --period 2025-11 [--all]`.
pub async fn list_mismatches(
    db: &Db,
    period: &str,
    filter: MismatchFilter,
) -> Result<Vec<BankDeposit>, Failure> {
    let period = parse_period(period)
        .ok_or_else(|| Failure::usage(format!("期次无效（应为 YYYY-MM）：{period}")))?;
    bank::list_mismatches(&db.pool, &period, filter)
        .await
        .map_err(fail)
}

/// `hotline bank resolve ID --accept [--code C] | --return --note TEXT` (手工勾兑), audited.
pub async fn resolve_mismatch(
    db: &Db,
    id: &str,
    resolution: Resolution,
    note: &str,
) -> Result<BankDeposit, Failure> {
    let now = SystemClock.now_ms();
    let d = bank::resolve_mismatch(&db.pool, now, id, &resolution, note, "cli")
        .await
        .map_err(fail)?;
    let detail = format!(
        "resolution={} code={} serial={} kind={} note={}",
        d.resolution, d.application_code, d.bank_serial, d.mismatch_kind, d.resolution_note
    );
    db.audit(
        now,
        &SystemRng,
        Audit {
            actor: "cli",
            action: "integrations.deposit_resolve",
            target: &d.id,
            detail: &detail,
            remote_addr: "",
        },
    )
    .await?;
    Ok(d)
}

/// `hotline calendar set FILE.json` (the JSON of docs/formats.md §4), audited.
pub async fn set_calendar(db: &Db, path: &Path) -> Result<AuctionCalendar, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("无法读取 {}: {e}", path.display())))?;
    let input: CalendarInput = serde_json::from_str(&text)
        .map_err(|e| Failure::usage(format!("{}: 日历 JSON 无效: {e}", path.display())))?;
    let now = SystemClock.now_ms();
    let (c, created) = calendar::put_calendar(&db.pool, now, &input, "cli")
        .await
        .map_err(fail)?;
    db.audit(
        now,
        &SystemRng,
        Audit {
            actor: "cli",
            action: if created {
                "integrations.calendar_create"
            } else {
                "integrations.calendar_update"
            },
            target: &c.period,
            detail: &c.summary_zh(),
            remote_addr: "",
        },
    )
    .await?;
    Ok(c)
}

/// `hotline calendar show [PERIOD]`: one period, or this month's.
pub async fn show_calendar(db: &Db, period: Option<&str>) -> Result<AuctionCalendar, Failure> {
    let found = match period {
        Some(p) => {
            let p = parse_period(p)
                .ok_or_else(|| Failure::usage(format!("期次无效（应为 YYYY-MM）：{p}")))?;
            calendar::get_calendar(&db.pool, &p).await
        }
        None => calendar::current_calendar(&db.pool, SystemClock.now_ms()).await,
    }
    .map_err(fail)?;
    found.ok_or_else(|| Failure::usage("尚未录入该期竞价日历"))
}
