//! Bohai Bank files (seed 2.3–2.8, 3.6, 3.14): the deposit-flow file (到账流水) matched to
//! bidders, with a mismatch list that staff resolve by hand (手工勾兑), and the refund-failure
//! file (退款失败文件) with the list to publish (masked names).
//!
//! Matching is a pure function ([`match_deposits`]) over the file's lines and the period's
//! bidders; storage applies its outcome in one transaction. File formats: docs/formats.md.

use std::collections::{HashMap, HashSet};

use hotline_core::mask::mask_name;
use hotline_core::{IdGenerator, Rng, UnixMillis};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row as _};

use crate::bidders::{ImportReport, ImportRun, RowProblem, log_import};
use crate::error::{IntegrationError, Result};
use crate::table::Table;
use crate::text::{Date, fold_name, parse_beijing_datetime, parse_money_cents};

/// Header texts of the deposit-flow file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DepositFlowColumns {
    pub serial: String,
    pub time: String,
    pub payer_name: String,
    pub payer_account: String,
    pub amount: String,
    pub memo: String,
}

impl Default for DepositFlowColumns {
    fn default() -> Self {
        Self {
            serial: "交易流水号".into(),
            time: "交易时间".into(),
            payer_name: "付款人户名".into(),
            payer_account: "付款人账号".into(),
            amount: "金额".into(),
            memo: "摘要".into(),
        }
    }
}

/// Header texts of the refund-failure file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefundFailureColumns {
    pub application_code: String,
    pub name: String,
    pub amount: String,
    pub reason: String,
    pub date: String,
}

impl Default for RefundFailureColumns {
    fn default() -> Self {
        Self {
            application_code: "申请编码".into(),
            name: "户名".into(),
            amount: "退款金额".into(),
            reason: "失败原因".into(),
            date: "退款日期".into(),
        }
    }
}

/// One line of a deposit-flow file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositFlow {
    pub line: u64,
    pub serial: String,
    pub arrived_at: UnixMillis,
    pub payer_name: String,
    pub payer_account: String,
    pub amount_cents: i64,
    pub memo: String,
}

/// Why a payment could not be credited automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    /// No application code of this period in the memo.
    UnknownCode,
    /// Arrived after 17:00 of the deposit window's last day.
    Late,
    /// The code already has a credited deposit.
    Duplicate,
    /// Not the deposit amount.
    WrongAmount,
    /// The payer's name is not the bidder's (after folding case, spaces, full-width forms).
    NameDiffers,
}

impl MismatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownCode => "unknown_code",
            Self::Late => "late",
            Self::Duplicate => "duplicate",
            Self::WrongAmount => "wrong_amount",
            Self::NameDiffers => "name_differs",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::UnknownCode => "无此申请编码",
            Self::Late => "超过缴纳截止时间到账",
            Self::Duplicate => "重复缴纳",
            Self::WrongAmount => "金额不符",
            Self::NameDiffers => "户名与竞买人姓名/名称不符",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::UnknownCode,
            Self::Late,
            Self::Duplicate,
            Self::WrongAmount,
            Self::NameDiffers,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// What the matcher needs to know of a bidder.
#[derive(Debug, Clone)]
pub struct PayeeInfo {
    pub name: String,
    /// Already has a credited deposit (matched, or accepted by hand).
    pub credited: bool,
}

/// The matcher's verdict on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchOutcome {
    pub flow: DepositFlow,
    /// The code found in the memo ('' when none).
    pub application_code: String,
    pub mismatch: Option<MismatchKind>,
}

fn memo_candidates(memo: &str) -> Vec<String> {
    memo.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() >= 6)
        .map(str::to_string)
        .collect()
}

/// Matches deposit lines to bidders, in order of arrival (so of two payments for one code the
/// later one is the duplicate). Checks, in order: code known, on time, not yet credited, the
/// amount, the name. `deadline` is the calendar's 17:00 deadline (None: not checked).
pub fn match_deposits(
    mut flows: Vec<DepositFlow>,
    payees: &HashMap<String, PayeeInfo>,
    deadline: Option<UnixMillis>,
    deposit_cents: i64,
) -> Vec<MatchOutcome> {
    flows.sort_by(|a, b| (a.arrived_at, &a.serial).cmp(&(b.arrived_at, &b.serial)));
    let mut credited_now: HashSet<String> = HashSet::new();
    flows
        .into_iter()
        .map(|flow| {
            let cands = memo_candidates(&flow.memo);
            let known = cands.iter().find(|c| payees.contains_key(*c));
            let Some(code) = known else {
                return MatchOutcome {
                    application_code: cands.into_iter().next().unwrap_or_default(),
                    flow,
                    mismatch: Some(MismatchKind::UnknownCode),
                };
            };
            let p = &payees[code];
            let mismatch = if deadline.is_some_and(|d| flow.arrived_at > d) {
                Some(MismatchKind::Late)
            } else if p.credited || credited_now.contains(code) {
                Some(MismatchKind::Duplicate)
            } else if flow.amount_cents != deposit_cents {
                Some(MismatchKind::WrongAmount)
            } else if fold_name(&flow.payer_name) != fold_name(&p.name) {
                Some(MismatchKind::NameDiffers)
            } else {
                credited_now.insert(code.clone());
                None
            };
            MatchOutcome {
                application_code: code.clone(),
                flow,
                mismatch,
            }
        })
        .collect()
}

fn problem(line: u64, column: &str, value: &str, reason: &str) -> RowProblem {
    RowProblem {
        line,
        column: column.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Validates the lines of a deposit-flow file (every problem of every bad line).
pub fn parse_deposit_flows(
    table: &Table,
    c: &DepositFlowColumns,
) -> Result<Result<Vec<DepositFlow>, Vec<RowProblem>>> {
    let names = [
        &c.serial,
        &c.time,
        &c.payer_name,
        &c.payer_account,
        &c.amount,
        &c.memo,
    ];
    let idx: Vec<Option<usize>> = names.iter().map(|n| table.column(n)).collect();
    let missing: Vec<&str> = names
        .iter()
        .zip(&idx)
        .filter(|(_, i)| i.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(IntegrationError::MissingColumns(missing.join("、")));
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for row in &table.rows {
        let before = problems.len();
        let serial = row.get(idx[0]).to_string();
        if serial.is_empty() {
            problems.push(problem(row.line, &c.serial, "", "交易流水号不能为空"));
        } else if let Some(first) = seen.get(&serial) {
            problems.push(problem(
                row.line,
                &c.serial,
                &serial,
                &format!("交易流水号与第 {first} 行重复"),
            ));
        }
        let time = row.get(idx[1]);
        let arrived_at = parse_beijing_datetime(time);
        if arrived_at.is_none() {
            problems.push(problem(
                row.line,
                &c.time,
                time,
                "交易时间格式应为 YYYY-MM-DD HH:MM:SS（北京时间）",
            ));
        }
        let payer_name = row.get(idx[2]).to_string();
        if payer_name.is_empty() {
            problems.push(problem(row.line, &c.payer_name, "", "付款人户名不能为空"));
        }
        let account: String = row.get(idx[3]).chars().filter(|c| *c != ' ').collect();
        if account.is_empty() || !account.bytes().all(|b| b.is_ascii_digit()) {
            problems.push(problem(
                row.line,
                &c.payer_account,
                &hotline_core::mask::mask_phone(&account),
                "付款人账号应为数字",
            ));
        }
        let amount = row.get(idx[4]);
        let amount_cents = parse_money_cents(amount).filter(|&a| a > 0);
        if amount_cents.is_none() {
            problems.push(problem(
                row.line,
                &c.amount,
                amount,
                "金额应为大于 0 的数字（元）",
            ));
        }
        if problems.len() == before {
            seen.insert(serial.clone(), row.line);
            out.push(DepositFlow {
                line: row.line,
                serial,
                arrived_at: arrived_at.unwrap_or_default(),
                payer_name,
                payer_account: account,
                amount_cents: amount_cents.unwrap_or_default(),
                memo: row.get(idx[5]).to_string(),
            });
        }
    }
    Ok(if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    })
}

/// A stored line of a deposit-flow file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankDeposit {
    pub id: String,
    pub period: String,
    pub bank_serial: String,
    pub payer_name: String,
    pub payer_account: String,
    pub amount_cents: i64,
    pub arrived_at: UnixMillis,
    pub memo: String,
    pub application_code: String,
    pub outcome: String,
    pub mismatch_kind: String,
    pub mismatch_label: String,
    pub resolution: String,
    pub resolved_by: String,
    pub resolved_at: UnixMillis,
    pub resolution_note: String,
    pub created_at: UnixMillis,
}

impl BankDeposit {
    /// Masks the payer's account for roles without `sees_personal_data()`.
    pub fn masked(mut self) -> Self {
        self.payer_account = hotline_core::mask::mask_phone(&self.payer_account);
        self
    }
}

const DEP_COLS: &str = "id, period, bank_serial, payer_name, payer_account, amount_cents, \
    arrived_at, memo, application_code, outcome, mismatch_kind, resolution, resolved_by, \
    resolved_at, resolution_note, created_at";

fn deposit_from_row(r: &sqlx::any::AnyRow) -> Result<BankDeposit> {
    let kind: String = r.try_get("mismatch_kind")?;
    Ok(BankDeposit {
        id: r.try_get("id")?,
        period: r.try_get("period")?,
        bank_serial: r.try_get("bank_serial")?,
        payer_name: r.try_get("payer_name")?,
        payer_account: r.try_get("payer_account")?,
        amount_cents: r.try_get("amount_cents")?,
        arrived_at: r.try_get("arrived_at")?,
        memo: r.try_get("memo")?,
        application_code: r.try_get("application_code")?,
        outcome: r.try_get("outcome")?,
        mismatch_label: MismatchKind::parse(&kind)
            .map_or("", MismatchKind::label_zh)
            .to_string(),
        mismatch_kind: kind,
        resolution: r.try_get("resolution")?,
        resolved_by: r.try_get("resolved_by")?,
        resolved_at: r.try_get("resolved_at")?,
        resolution_note: r.try_get("resolution_note")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Period settings the deposit matcher needs (from the calendar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepositRules {
    pub deadline: Option<UnixMillis>,
    pub deposit_cents: i64,
}

/// ¥2,000 per application code (public auction announcements).
pub const DEFAULT_DEPOSIT_CENTS: i64 = 200_000;

async fn credit_bidder(
    tx: &mut sqlx::AnyConnection,
    now: UnixMillis,
    period: &str,
    code: &str,
    arrived_at: UnixMillis,
    amount_cents: i64,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE auction_bidders SET deposit_status = 'paid', deposit_date = $1, \
         deposit_cents = $2, updated_at = $3 \
         WHERE period = $4 AND application_code = $5 AND deposit_status = 'unpaid'",
    )
    .bind(Date::of_beijing(arrived_at).iso())
    .bind(amount_cents)
    .bind(now)
    .bind(period.to_string())
    .bind(code.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected())
}

/// Imports a deposit-flow file: lines already stored (same bank serial) are skipped, the
/// others are matched; matched lines credit the bidder, mismatches wait for 手工勾兑. All or
/// nothing: one bad line and nothing is written.
pub async fn import_deposits(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    table: &Table,
    columns: &DepositFlowColumns,
    rules: DepositRules,
    run: &ImportRun<'_>,
) -> Result<ImportReport> {
    let mut report = ImportReport {
        kind: "deposits".into(),
        period: run.period.to_string(),
        rows: table.rows.len() as u64,
        dry_run: run.dry_run,
        ..Default::default()
    };
    let flows = match parse_deposit_flows(table, columns)? {
        Ok(f) => f,
        Err(p) => {
            report.problems = p;
            return Ok(report);
        }
    };
    let period = run.period.to_string();
    let known: HashSet<String> =
        sqlx::query_scalar::<_, String>("SELECT bank_serial FROM bank_deposits WHERE period = $1")
            .bind(period.clone())
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let credited: HashSet<String> = sqlx::query_scalar::<_, String>(
        "SELECT application_code FROM bank_deposits WHERE period = $1 \
         AND (outcome = 'matched' OR resolution = 'accepted')",
    )
    .bind(period.clone())
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let payees: HashMap<String, PayeeInfo> =
        sqlx::query("SELECT application_code, name FROM auction_bidders WHERE period = $1")
            .bind(period.clone())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                let code: String = r.try_get(0)?;
                Ok((
                    code.clone(),
                    PayeeInfo {
                        name: r.try_get(1)?,
                        credited: credited.contains(&code),
                    },
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?;
    let (old, new): (Vec<_>, Vec<_>) = flows.into_iter().partition(|f| known.contains(&f.serial));
    report.unchanged = old.len() as u64;
    report.inserted = new.len() as u64;
    let outcomes = match_deposits(new, &payees, rules.deadline, rules.deposit_cents);
    for o in &outcomes {
        let key = o.mismatch.map_or("matched", MismatchKind::as_str);
        *report.counts.entry(key.to_string()).or_default() += 1;
    }
    if run.dry_run {
        return Ok(report);
    }
    let mut tx = pool.begin().await?;
    let import_id = log_import(&mut tx, now, rng, "deposits", run, &report).await?;
    for o in &outcomes {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO bank_deposits ({DEP_COLS}, import_id) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '', '', 0, '', $12, $13)"
        )))
        .bind(IdGenerator::new_id(now, rng))
        .bind(period.clone())
        .bind(o.flow.serial.clone())
        .bind(o.flow.payer_name.clone())
        .bind(o.flow.payer_account.clone())
        .bind(o.flow.amount_cents)
        .bind(o.flow.arrived_at)
        .bind(o.flow.memo.clone())
        .bind(o.application_code.clone())
        .bind(if o.mismatch.is_some() {
            "mismatch"
        } else {
            "matched"
        })
        .bind(o.mismatch.map_or("", MismatchKind::as_str))
        .bind(now)
        .bind(import_id.clone())
        .execute(&mut *tx)
        .await?;
        if o.mismatch.is_none() {
            credit_bidder(
                &mut tx,
                now,
                &period,
                &o.application_code,
                o.flow.arrived_at,
                o.flow.amount_cents,
            )
            .await?;
        }
    }
    tx.commit().await?;
    report.import_id = Some(import_id);
    report.committed = true;
    Ok(report)
}

/// Filter of the mismatch list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchFilter {
    /// Not yet resolved.
    #[default]
    Open,
    Resolved,
    All,
}

/// The mismatches of a period, oldest arrival first.
pub async fn list_mismatches(
    pool: &AnyPool,
    period: &str,
    filter: MismatchFilter,
) -> Result<Vec<BankDeposit>> {
    let cond = match filter {
        MismatchFilter::Open => "AND resolution = ''",
        MismatchFilter::Resolved => "AND resolution <> ''",
        MismatchFilter::All => "",
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DEP_COLS} FROM bank_deposits WHERE period = $1 AND outcome = 'mismatch' {cond} \
         ORDER BY arrived_at, bank_serial"
    )))
    .bind(period.to_string())
    .fetch_all(pool)
    .await?;
    rows.iter().map(deposit_from_row).collect()
}

/// One stored deposit line by id.
pub async fn get_deposit(pool: &AnyPool, id: &str) -> Result<Option<BankDeposit>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DEP_COLS} FROM bank_deposits WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(deposit_from_row).transpose()
}

/// A staff decision on a mismatch (手工勾兑).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Resolution {
    /// Credit the payment to a bidder: the code found in the memo, or the one staff give
    /// (e.g. when the payer mistyped the code).
    Accept { application_code: Option<String> },
    /// Return the money to the payer (退回).
    Return,
}

/// Resolves an open mismatch. The caller writes the audit entry.
pub async fn resolve_mismatch(
    pool: &AnyPool,
    now: UnixMillis,
    id: &str,
    resolution: &Resolution,
    note: &str,
    actor: &str,
) -> Result<BankDeposit> {
    let mut tx = pool.begin().await?;
    // Write first (a no-op update), then read: on SQLite a transaction that reads first
    // cannot take the write lock once another connection committed meanwhile.
    sqlx::query("UPDATE bank_deposits SET id = id WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DEP_COLS} FROM bank_deposits WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    let dep = row
        .as_ref()
        .map(deposit_from_row)
        .transpose()?
        .ok_or_else(|| IntegrationError::NotFound("到账记录".into()))?;
    if dep.outcome != "mismatch" || !dep.resolution.is_empty() {
        return Err(IntegrationError::Conflict(
            "该到账记录已处理，不能重复勾兑".into(),
        ));
    }
    let (res, code) = match resolution {
        Resolution::Return => ("returned", dep.application_code.clone()),
        Resolution::Accept { application_code } => {
            let code = application_code
                .clone()
                .unwrap_or_else(|| dep.application_code.clone());
            let exists: Option<String> = sqlx::query_scalar(
                "SELECT application_code FROM auction_bidders \
                 WHERE period = $1 AND application_code = $2",
            )
            .bind(dep.period.clone())
            .bind(code.clone())
            .fetch_optional(&mut *tx)
            .await?;
            if exists.is_none() {
                return Err(IntegrationError::NotFound(format!("申请编码 {code}")));
            }
            let already: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM bank_deposits WHERE period = $1 AND application_code = $2 \
                 AND (outcome = 'matched' OR resolution = 'accepted')",
            )
            .bind(dep.period.clone())
            .bind(code.clone())
            .fetch_one(&mut *tx)
            .await?;
            if already > 0 {
                return Err(IntegrationError::Conflict(format!(
                    "申请编码 {code} 已有入账的保证金，请选择退回"
                )));
            }
            credit_bidder(
                &mut tx,
                now,
                &dep.period,
                &code,
                dep.arrived_at,
                dep.amount_cents,
            )
            .await?;
            ("accepted", code)
        }
    };
    sqlx::query(
        "UPDATE bank_deposits SET resolution = $1, application_code = $2, resolved_by = $3, \
         resolved_at = $4, resolution_note = $5 WHERE id = $6",
    )
    .bind(res)
    .bind(code)
    .bind(actor.to_string())
    .bind(now)
    .bind(note.to_string())
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    get_deposit(pool, id)
        .await?
        .ok_or_else(|| IntegrationError::NotFound("到账记录".into()))
}

/// Imports a refund-failure file: each line marks the bidder's refund failed with the
/// reason. Unknown codes are bad lines (nothing written). Idempotent.
pub async fn import_refund_failures(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    table: &Table,
    c: &RefundFailureColumns,
    run: &ImportRun<'_>,
) -> Result<ImportReport> {
    let mut report = ImportReport {
        kind: "refund_failures".into(),
        period: run.period.to_string(),
        rows: table.rows.len() as u64,
        dry_run: run.dry_run,
        ..Default::default()
    };
    let names = [&c.application_code, &c.name, &c.reason];
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| table.column(n).is_none())
        .map(|n| n.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(IntegrationError::MissingColumns(missing.join("、")));
    }
    let (ci, ni, ri) = (
        table.column(&c.application_code),
        table.column(&c.name),
        table.column(&c.reason),
    );
    let (ai, di) = (table.column(&c.amount), table.column(&c.date));
    let current: HashMap<String, (String, String, String)> = sqlx::query(
        "SELECT application_code, refund_status, refund_failure, refund_date \
         FROM auction_bidders WHERE period = $1",
    )
    .bind(run.period.to_string())
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))))
    .collect::<Result<_, sqlx::Error>>()?;
    let mut changes = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for row in &table.rows {
        let before = report.problems.len();
        let p = &mut report.problems;
        let code = row.get(ci).to_string();
        if !current.contains_key(&code) {
            p.push(problem(
                row.line,
                &c.application_code,
                &code,
                "本期无此申请编码",
            ));
        } else if let Some(first) = seen.get(&code) {
            p.push(problem(
                row.line,
                &c.application_code,
                &code,
                &format!("申请编码与第 {first} 行重复"),
            ));
        }
        if row.get(ni).is_empty() {
            p.push(problem(row.line, &c.name, "", "户名不能为空"));
        }
        let reason = row.get(ri).to_string();
        if reason.is_empty() {
            p.push(problem(row.line, &c.reason, "", "失败原因不能为空"));
        }
        let amount = row.get(ai);
        if !amount.is_empty() && parse_money_cents(amount).is_none() {
            p.push(problem(row.line, &c.amount, amount, "金额格式错误"));
        }
        let date = match row.get(di) {
            "" => String::new(),
            s => Date::parse(s).map(Date::iso).unwrap_or_else(|| {
                p.push(problem(row.line, &c.date, s, "日期格式应为 YYYY-MM-DD"));
                String::new()
            }),
        };
        if report.problems.len() == before {
            seen.insert(code.clone(), row.line);
            let cur = &current[&code];
            if cur.0 == "failed" && cur.1 == reason && cur.2 == date {
                report.unchanged += 1;
            } else {
                report.updated += 1;
                changes.push((code, reason, date));
            }
        }
    }
    if !report.problems.is_empty() {
        report.updated = 0;
        report.unchanged = 0;
        return Ok(report);
    }
    if run.dry_run {
        return Ok(report);
    }
    let mut tx = pool.begin().await?;
    for (code, reason, date) in &changes {
        sqlx::query(
            "UPDATE auction_bidders SET refund_status = 'failed', refund_failure = $1, \
             refund_date = $2, updated_at = $3 WHERE period = $4 AND application_code = $5",
        )
        .bind(reason.clone())
        .bind(date.clone())
        .bind(now)
        .bind(run.period.to_string())
        .bind(code.clone())
        .execute(&mut *tx)
        .await?;
    }
    report.import_id = Some(log_import(&mut tx, now, rng, "refund_failures", run, &report).await?);
    tx.commit().await?;
    report.committed = true;
    Ok(report)
}

/// One line of the published list of failed refunds (names masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedRefundFailure {
    pub application_code: String,
    pub name: String,
    pub reason: String,
}

/// The list of failed refunds of a period, to publish (姓名脱敏).
pub async fn refund_failure_list(
    pool: &AnyPool,
    period: &str,
) -> Result<Vec<PublishedRefundFailure>> {
    let rows = sqlx::query(
        "SELECT application_code, name, refund_failure FROM auction_bidders \
         WHERE period = $1 AND refund_status = 'failed' ORDER BY application_code",
    )
    .bind(period.to_string())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PublishedRefundFailure {
                application_code: r.try_get(0)?,
                name: mask_name(&r.try_get::<String, _>(1)?),
                reason: r.try_get(2)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(serial: &str, at: i64, name: &str, cents: i64, memo: &str) -> DepositFlow {
        DepositFlow {
            line: 0,
            serial: serial.into(),
            arrived_at: at,
            payer_name: name.into(),
            payer_account: "6200".into(),
            amount_cents: cents,
            memo: memo.into(),
        }
    }

    #[test]
    fn matcher_decides_each_case() {
        let mut payees = HashMap::new();
        for (code, name, credited) in [
            ("1000000001", "张三", false),
            ("1000000002", "JOHN SMITH", false),
            ("1000000003", "李四", true),
            ("1000000004", "王五", false),
            ("1000000005", "赵六", false),
        ] {
            payees.insert(
                code.to_string(),
                PayeeInfo {
                    name: name.into(),
                    credited,
                },
            );
        }
        let d = 1_000;
        let flows = vec![
            flow("s1", 10, "张三", 200_000, "保证金 1000000001"),
            flow("s2", 11, "John  Smith", 200_000, "1000000002"),
            flow("s3", 12, "李四", 200_000, "1000000003"),
            flow("s4", 13, "王五", 100_000, "1000000004"),
            flow("s5", 14, "赵七", 200_000, "1000000005"),
            flow("s6", 15, "某人", 200_000, "9999999999"),
            flow("s7", 16, "某人", 200_000, "no code"),
            flow("s8", 2_000, "张三", 200_000, "1000000001"),
            flow("s9", 17, "张三", 200_000, "1000000001"),
        ];
        let got: Vec<(String, Option<MismatchKind>)> =
            match_deposits(flows, &payees, Some(d), 200_000)
                .into_iter()
                .map(|o| (o.flow.serial, o.mismatch))
                .collect();
        use MismatchKind::*;
        let want = [
            ("s1", None),
            ("s2", None),
            ("s3", Some(Duplicate)),
            ("s4", Some(WrongAmount)),
            ("s5", Some(NameDiffers)),
            ("s6", Some(UnknownCode)),
            ("s7", Some(UnknownCode)),
            ("s9", Some(Duplicate)),
            ("s8", Some(Late)),
        ];
        let want: Vec<(String, Option<MismatchKind>)> =
            want.iter().map(|(s, k)| (s.to_string(), *k)).collect();
        assert_eq!(got, want);
    }
}
