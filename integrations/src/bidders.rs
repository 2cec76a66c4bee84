//! Bidder records (竞买人数据) of one auction period, as exported by the auction system:
//! the record type, the column mapping, the validation of each row of a file, and the
//! storage (upsert by period and application code, all or nothing per file).
//!
//! ID numbers and mobiles are personal data: they are never logged, import reports show them
//! masked, and [`Bidder::masked`] is what roles without `sees_personal_data()` get.

use std::collections::{HashMap, HashSet};

use hotline_core::mask::{mask_id_number, mask_phone};
use hotline_core::{IdGenerator, Rng, UnixMillis};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row as _};

use crate::error::{IntegrationError, Result};
use crate::table::{Row, Table};
use crate::text::{Date, parse_money_cents};

/// Declares a status enum stored as its English word and read from the Chinese labels (or
/// the English word) found in files.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $def:ident = $den:literal, $dzh:literal, [$($dalias:literal),*]; $($var:ident = $en:literal, $zh:literal, [$($alias:literal),*]);+ $(;)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { #[default] $def, $($var),+ }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { Self::$def => $den, $(Self::$var => $en),+ }
            }
            pub fn label_zh(self) -> &'static str {
                match self { Self::$def => $dzh, $(Self::$var => $zh),+ }
            }
            /// Parses a file's cell: blank is the default; Chinese labels or English words.
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.trim();
                if s.is_empty() || s.eq_ignore_ascii_case($den) || s == $dzh $(|| s == $dalias)* {
                    return Some(Self::$def);
                }
                $( if s.eq_ignore_ascii_case($en) || s == $zh $(|| s == $alias)* { return Some(Self::$var); } )+
                None
            }
            pub fn from_db(s: &str) -> Result<Self> {
                Self::parse(s).ok_or_else(|| IntegrationError::Corrupt(format!("{} `{s}`", stringify!($name))))
            }
        }
    };
}

text_enum!(
    /// 个人 or 单位.
    BidderKind {
    Person = "person", "个人", ["自然人"];
    Company = "company", "单位", ["企业", "公司", "法人"];
});

text_enum!(
    /// 保证金状态.
    DepositStatus {
    Unpaid = "unpaid", "未缴纳", ["未缴", "未到账"];
    Paid = "paid", "已缴纳", ["已缴", "已到账", "已交"];
    Refunded = "refunded", "已退还", ["已退", "已退款"];
    Forfeited = "forfeited", "不予退还", ["违约", "已罚没"];
});

text_enum!(
    /// 竞价结果.
    AuctionResult {
    Pending = "pending", "待竞价", ["未竞价", "未参与"];
    Won = "won", "成交", ["中标", "竞得"];
    Lost = "lost", "未成交", ["未中标", "未竞得"];
});

text_enum!(
    /// 缴款状态 (the winner's payment of the price).
    PaymentStatus {
    None = "none", "无", ["-"];
    Unpaid = "unpaid", "未缴款", ["待缴款"];
    Paid = "paid", "已缴款", ["已缴纳"];
    Defaulted = "defaulted", "违约", ["逾期未缴"];
});

text_enum!(
    /// 退款状态 (refund of the deposit).
    RefundStatus {
    None = "none", "无", ["-"];
    Pending = "pending", "退款中", ["待退款"];
    Refunded = "refunded", "已退款", ["退款成功"];
    Failed = "failed", "退款失败", ["失败"];
});

/// Where each field is found in the auction system's export: the header text of its column.
/// The defaults match the example header documented in docs/formats.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ColumnMapping {
    pub application_code: String,
    pub kind: String,
    pub name: String,
    pub id_number: String,
    pub mobile: String,
    pub deposit_status: String,
    pub deposit_date: String,
    pub deposit_amount: String,
    pub activated: String,
    pub result: String,
    pub price: String,
    pub payment_status: String,
    pub refund_status: String,
    pub refund_date: String,
    pub refund_failure: String,
}

impl Default for ColumnMapping {
    fn default() -> Self {
        Self {
            application_code: "申请编码".into(),
            kind: "类型".into(),
            name: "姓名/名称".into(),
            id_number: "证件号码".into(),
            mobile: "手机号".into(),
            deposit_status: "保证金状态".into(),
            deposit_date: "保证金缴纳日期".into(),
            deposit_amount: "保证金金额".into(),
            activated: "激活状态".into(),
            result: "竞价结果".into(),
            price: "成交价".into(),
            payment_status: "缴款状态".into(),
            refund_status: "退款状态".into(),
            refund_date: "退款日期".into(),
            refund_failure: "退款失败原因".into(),
        }
    }
}

/// The fields of one bidder as imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidderRecord {
    pub application_code: String,
    pub kind: BidderKind,
    pub name: String,
    pub id_number: String,
    pub mobile: String,
    pub deposit_status: DepositStatus,
    /// `YYYY-MM-DD` or empty.
    pub deposit_date: String,
    pub deposit_cents: i64,
    pub activated: bool,
    pub result: AuctionResult,
    pub price_cents: i64,
    pub payment_status: PaymentStatus,
    pub refund_status: RefundStatus,
    pub refund_date: String,
    pub refund_failure: String,
}

impl BidderRecord {
    /// SHA-256 over the imported fields: equal hashes mean an import changes nothing.
    pub fn import_hash(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.application_code.as_str(),
            self.kind.as_str(),
            &self.name,
            &self.id_number,
            &self.mobile,
            self.deposit_status.as_str(),
            &self.deposit_date,
            &self.deposit_cents.to_string(),
            if self.activated { "1" } else { "0" },
            self.result.as_str(),
            &self.price_cents.to_string(),
            self.payment_status.as_str(),
            self.refund_status.as_str(),
            &self.refund_date,
            &self.refund_failure,
        ] {
            h.update(part.as_bytes());
            h.update([0x1f]);
        }
        hex::encode(h.finalize())
    }
}

/// A stored bidder record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bidder {
    pub period: String,
    #[serde(flatten)]
    pub record: BidderRecord,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl Bidder {
    /// The record as roles without `sees_personal_data()` may see it.
    pub fn masked(mut self) -> Self {
        self.record.id_number = mask_id_number(&self.record.id_number);
        self.record.mobile = mask_phone(&self.record.mobile);
        self
    }

    /// Masks unless `full` (the caller's role sees personal data).
    pub fn for_role(self, full: bool) -> Self {
        if full { self } else { self.masked() }
    }
}

/// One problem found in a row of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowProblem {
    pub line: u64,
    pub column: String,
    /// The cell as found (ID numbers and mobiles masked).
    pub value: String,
    /// Why it was refused (zh-CN).
    pub reason: String,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "第 {} 行 [{}] “{}”：{}",
            self.line, self.column, self.value, self.reason
        )
    }
}

/// What an import did (or, for a dry run or a refused file, would have done).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub kind: String,
    pub period: String,
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Every problem of every bad row; non-empty means nothing was written.
    pub problems: Vec<RowProblem>,
    pub dry_run: bool,
    /// Whether the changes were written (false for dry runs and refused files).
    pub committed: bool,
    /// The `auction_imports` row of a committed import.
    pub import_id: Option<String>,
    /// Extra counters of bank-file imports (matched, mismatches, …).
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub counts: HashMap<String, u64>,
}

impl ImportReport {
    pub fn bad_rows(&self) -> u64 {
        self.problems
            .iter()
            .map(|p| p.line)
            .collect::<HashSet<_>>()
            .len() as u64
    }
}

/// Who imports which file.
#[derive(Debug, Clone)]
pub struct ImportRun<'a> {
    pub period: &'a str,
    pub file_name: &'a str,
    pub file_sha256: &'a str,
    pub actor: &'a str,
    pub dry_run: bool,
}

/// SHA-256 of a file's bytes (recorded with each import).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// GB 11643 check digit of an 18-character resident ID number.
pub fn resident_id_valid(id: &str) -> bool {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: &[u8; 11] = b"10X98765432";
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(W)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    b[17].to_ascii_uppercase() == C[(sum % 11) as usize]
}

/// Application codes: 1–32 ASCII letters and digits.
pub fn valid_code(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A mainland mobile number: 11 digits starting with 1.
pub fn valid_mobile(s: &str) -> bool {
    s.len() == 11 && s.starts_with('1') && s.bytes().all(|b| b.is_ascii_digit())
}

/// The column indices of a table for a mapping.
#[derive(Debug, Clone)]
pub struct ResolvedColumns {
    idx: [Option<usize>; 15],
    names: [String; 15],
}

const REQUIRED: [usize; 5] = [0, 1, 2, 3, 4];

impl ResolvedColumns {
    pub fn resolve(table: &Table, m: &ColumnMapping) -> Result<Self> {
        let names = [
            m.application_code.clone(),
            m.kind.clone(),
            m.name.clone(),
            m.id_number.clone(),
            m.mobile.clone(),
            m.deposit_status.clone(),
            m.deposit_date.clone(),
            m.deposit_amount.clone(),
            m.activated.clone(),
            m.result.clone(),
            m.price.clone(),
            m.payment_status.clone(),
            m.refund_status.clone(),
            m.refund_date.clone(),
            m.refund_failure.clone(),
        ];
        let idx = names.clone().map(|n| table.column(&n));
        let missing: Vec<&str> = REQUIRED
            .iter()
            .filter(|&&i| idx[i].is_none())
            .map(|&i| names[i].as_str())
            .collect();
        if !missing.is_empty() {
            return Err(IntegrationError::MissingColumns(missing.join("、")));
        }
        Ok(Self { idx, names })
    }
}

fn parse_bool_zh(s: &str) -> Option<bool> {
    match s.trim() {
        "" | "否" | "未激活" | "N" | "n" | "0" | "false" | "FALSE" => Some(false),
        "是" | "已激活" | "Y" | "y" | "1" | "true" | "TRUE" => Some(true),
        _ => None,
    }
}

/// Validates one row; every problem of the row is reported, not just the first.
pub fn parse_row(row: &Row, cols: &ResolvedColumns) -> Result<BidderRecord, Vec<RowProblem>> {
    let mut problems = Vec::new();
    let cell = |i: usize| row.get(cols.idx[i]);
    let mut bad = |i: usize, value: String, reason: &str| {
        problems.push(RowProblem {
            line: row.line,
            column: cols.names[i].clone(),
            value,
            reason: reason.to_string(),
        });
    };
    let code = cell(0).to_string();
    if code.is_empty() {
        bad(0, code.clone(), "申请编码不能为空");
    } else if !valid_code(&code) {
        bad(0, code.clone(), "申请编码只能由 1–32 位字母或数字组成");
    }
    let kind = match cell(1) {
        "" => {
            bad(1, String::new(), "类型不能为空（个人或单位）");
            BidderKind::Person
        }
        s => BidderKind::parse(s).unwrap_or_else(|| {
            bad(1, s.to_string(), "类型只能是“个人”或“单位”");
            BidderKind::Person
        }),
    };
    let name = cell(2).to_string();
    if name.is_empty() {
        bad(2, name.clone(), "姓名/名称不能为空");
    } else if name.chars().count() > 100 {
        bad(2, name.clone(), "姓名/名称超过 100 个字符");
    }
    let id_number = cell(3).to_ascii_uppercase();
    let passport_like = id_number.len() >= 6
        && id_number.len() <= 20
        && id_number.starts_with(|c: char| c.is_ascii_alphabetic())
        && id_number.bytes().all(|b| b.is_ascii_alphanumeric());
    let id_ok = match kind {
        BidderKind::Person => resident_id_valid(&id_number) || passport_like,
        BidderKind::Company => {
            id_number.len() == 18 && id_number.bytes().all(|b| b.is_ascii_alphanumeric())
        }
    };
    if id_number.is_empty() {
        bad(3, String::new(), "证件号码不能为空");
    } else if !id_ok {
        let why = match kind {
            BidderKind::Person => "不是有效的居民身份证号码（18 位，校验位不符）或护照号码",
            BidderKind::Company => "统一社会信用代码应为 18 位字母或数字",
        };
        bad(3, mask_id_number(&id_number), why);
    }
    let mobile: String = cell(4)
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    if !valid_mobile(&mobile) {
        bad(4, mask_phone(&mobile), "手机号应为 1 开头的 11 位数字");
    }
    let deposit_status = DepositStatus::parse(cell(5)).unwrap_or_else(|| {
        bad(
            5,
            cell(5).to_string(),
            "保证金状态无法识别（未缴纳/已缴纳/已退还/不予退还）",
        );
        DepositStatus::Unpaid
    });
    let date_of = |i: usize, bad: &mut dyn FnMut(usize, String, &str)| match cell(i) {
        "" => String::new(),
        s => Date::parse(s).map(Date::iso).unwrap_or_else(|| {
            bad(i, s.to_string(), "日期格式应为 YYYY-MM-DD");
            String::new()
        }),
    };
    let deposit_date = date_of(6, &mut bad);
    let money_of = |i: usize, bad: &mut dyn FnMut(usize, String, &str)| match cell(i) {
        "" => 0,
        s => parse_money_cents(s).unwrap_or_else(|| {
            bad(
                i,
                s.to_string(),
                "金额格式错误（元，最多两位小数，不能为负）",
            );
            0
        }),
    };
    let deposit_cents = money_of(7, &mut bad);
    let activated = parse_bool_zh(cell(8)).unwrap_or_else(|| {
        bad(
            8,
            cell(8).to_string(),
            "激活状态只能是“是/否”或“已激活/未激活”",
        );
        false
    });
    let result = AuctionResult::parse(cell(9)).unwrap_or_else(|| {
        bad(9, cell(9).to_string(), "竞价结果无法识别（成交/未成交/空）");
        AuctionResult::Pending
    });
    let price_cents = money_of(10, &mut bad);
    if result == AuctionResult::Won && price_cents == 0 && cell(10).is_empty() {
        bad(10, String::new(), "竞价结果为成交时必须填写成交价");
    }
    let payment_status = PaymentStatus::parse(cell(11)).unwrap_or_else(|| {
        bad(
            11,
            cell(11).to_string(),
            "缴款状态无法识别（未缴款/已缴款/违约/空）",
        );
        PaymentStatus::None
    });
    let refund_status = RefundStatus::parse(cell(12)).unwrap_or_else(|| {
        bad(
            12,
            cell(12).to_string(),
            "退款状态无法识别（退款中/已退款/退款失败/空）",
        );
        RefundStatus::None
    });
    let refund_date = date_of(13, &mut bad);
    let refund_failure = cell(14).to_string();
    if refund_status == RefundStatus::Failed && refund_failure.is_empty() {
        bad(14, String::new(), "退款失败时必须填写失败原因");
    }
    if problems.is_empty() {
        Ok(BidderRecord {
            application_code: code,
            kind,
            name,
            id_number,
            mobile,
            deposit_status,
            deposit_date,
            deposit_cents,
            activated,
            result,
            price_cents,
            payment_status,
            refund_status,
            refund_date,
            refund_failure,
        })
    } else {
        Err(problems)
    }
}

/// Validates every row of a table. Returns the records, or every problem of every bad row
/// (including application codes that occur twice in the file).
pub fn parse_table(
    table: &Table,
    mapping: &ColumnMapping,
) -> Result<Result<Vec<BidderRecord>, Vec<RowProblem>>> {
    let cols = ResolvedColumns::resolve(table, mapping)?;
    let mut records = Vec::with_capacity(table.rows.len());
    let mut problems = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::with_capacity(table.rows.len());
    for row in &table.rows {
        match parse_row(row, &cols) {
            Ok(r) => {
                if let Some(first) = first_line.get(&r.application_code) {
                    problems.push(RowProblem {
                        line: row.line,
                        column: mapping.application_code.clone(),
                        value: r.application_code.clone(),
                        reason: format!("申请编码与第 {first} 行重复"),
                    });
                } else {
                    first_line.insert(r.application_code.clone(), row.line);
                    records.push(r);
                }
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    Ok(if problems.is_empty() {
        Ok(records)
    } else {
        Err(problems)
    })
}

const COLS: &str = "period, application_code, kind, name, id_number, mobile, deposit_status, \
     deposit_date, deposit_cents, activated, result, price_cents, payment_status, refund_status, \
     refund_date, refund_failure, created_at, updated_at";

/// Rows per INSERT statement. Small on purpose: SQLite resolves `$n` parameters by name with
/// a linear search, so a statement of n parameters costs O(n²) to bind (1,000 rows of 19 took
/// about a second); 32 rows keep that negligible and still save most round trips.
const BATCH: usize = 32;

pub(crate) fn bidder_from_row(r: &sqlx::any::AnyRow) -> Result<Bidder> {
    Ok(Bidder {
        period: r.try_get("period")?,
        record: BidderRecord {
            application_code: r.try_get("application_code")?,
            kind: BidderKind::from_db(&r.try_get::<String, _>("kind")?)?,
            name: r.try_get("name")?,
            id_number: r.try_get("id_number")?,
            mobile: r.try_get("mobile")?,
            deposit_status: DepositStatus::from_db(&r.try_get::<String, _>("deposit_status")?)?,
            deposit_date: r.try_get("deposit_date")?,
            deposit_cents: r.try_get("deposit_cents")?,
            activated: r.try_get::<i64, _>("activated")? != 0,
            result: AuctionResult::from_db(&r.try_get::<String, _>("result")?)?,
            price_cents: r.try_get("price_cents")?,
            payment_status: PaymentStatus::from_db(&r.try_get::<String, _>("payment_status")?)?,
            refund_status: RefundStatus::from_db(&r.try_get::<String, _>("refund_status")?)?,
            refund_date: r.try_get("refund_date")?,
            refund_failure: r.try_get("refund_failure")?,
        },
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Writes records (insert or update by period and code) in batches on a transaction.
async fn upsert_batch(
    tx: &mut sqlx::AnyConnection,
    period: &str,
    now: UnixMillis,
    records: &[&BidderRecord],
    progress: Option<Progress<'_>>,
) -> Result<()> {
    let total = records.len() as u64;
    for (n, chunk) in records.chunks(BATCH).enumerate() {
        if let Some(p) = progress {
            p((n * BATCH) as u64, total);
        }
        let mut sql = format!("INSERT INTO auction_bidders ({COLS}, import_hash) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let b = i * 19;
            sql.push('(');
            for k in 1..=19 {
                if k > 1 {
                    sql.push(',');
                }
                sql.push_str(&format!("${}", b + k));
            }
            sql.push(')');
        }
        sql.push_str(
            " ON CONFLICT (period, application_code) DO UPDATE SET kind = excluded.kind, \
             name = excluded.name, id_number = excluded.id_number, mobile = excluded.mobile, \
             deposit_status = excluded.deposit_status, deposit_date = excluded.deposit_date, \
             deposit_cents = excluded.deposit_cents, activated = excluded.activated, \
             result = excluded.result, price_cents = excluded.price_cents, \
             payment_status = excluded.payment_status, refund_status = excluded.refund_status, \
             refund_date = excluded.refund_date, refund_failure = excluded.refund_failure, \
             import_hash = excluded.import_hash, updated_at = excluded.updated_at",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(period.to_string())
                .bind(r.application_code.clone())
                .bind(r.kind.as_str())
                .bind(r.name.clone())
                .bind(r.id_number.clone())
                .bind(r.mobile.clone())
                .bind(r.deposit_status.as_str())
                .bind(r.deposit_date.clone())
                .bind(r.deposit_cents)
                .bind(i64::from(r.activated))
                .bind(r.result.as_str())
                .bind(r.price_cents)
                .bind(r.payment_status.as_str())
                .bind(r.refund_status.as_str())
                .bind(r.refund_date.clone())
                .bind(r.refund_failure.clone())
                .bind(now)
                .bind(now)
                .bind(r.import_hash());
        }
        q.execute(&mut *tx).await?;
    }
    if let Some(p) = progress {
        p(total, total);
    }
    Ok(())
}

/// Called with (rows written, rows to write) while an import writes (the CLI's progress bar).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// Records a committed import.
pub(crate) async fn log_import(
    tx: &mut sqlx::AnyConnection,
    now: UnixMillis,
    rng: &dyn Rng,
    kind: &str,
    run: &ImportRun<'_>,
    report: &ImportReport,
) -> Result<String> {
    let id = IdGenerator::new_id(now, rng);
    sqlx::query(
        "INSERT INTO auction_imports (id, kind, period, file_name, sha256, dry_run, outcome, \
         rows_total, inserted, updated, unchanged, bad_rows, actor, at) \
         VALUES ($1, $2, $3, $4, $5, 0, 'ok', $6, $7, $8, $9, 0, $10, $11)",
    )
    .bind(id.clone())
    .bind(kind)
    .bind(run.period.to_string())
    .bind(run.file_name.to_string())
    .bind(run.file_sha256.to_string())
    .bind(report.rows as i64)
    .bind(report.inserted as i64)
    .bind(report.updated as i64)
    .bind(report.unchanged as i64)
    .bind(run.actor.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(id)
}

/// Imports the auction system's export for one period: validates every row, then writes all
/// of them in one transaction, or nothing when any row is bad. Unchanged rows are not
/// touched, so importing the same file twice changes nothing.
pub async fn import_bidders(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    table: &Table,
    mapping: &ColumnMapping,
    run: &ImportRun<'_>,
) -> Result<ImportReport> {
    import_bidders_with_progress(pool, now, rng, table, mapping, run, None).await
}

/// [`import_bidders`] reporting the progress of the write.
pub async fn import_bidders_with_progress(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    table: &Table,
    mapping: &ColumnMapping,
    run: &ImportRun<'_>,
    progress: Option<Progress<'_>>,
) -> Result<ImportReport> {
    let mut report = ImportReport {
        kind: "bidders".into(),
        period: run.period.to_string(),
        rows: table.rows.len() as u64,
        dry_run: run.dry_run,
        ..Default::default()
    };
    let records = match parse_table(table, mapping)? {
        Ok(r) => r,
        Err(problems) => {
            report.problems = problems;
            return Ok(report);
        }
    };
    let existing: HashMap<String, String> =
        sqlx::query("SELECT application_code, import_hash FROM auction_bidders WHERE period = $1")
            .bind(run.period.to_string())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
    let mut changed = Vec::new();
    for r in &records {
        match existing.get(&r.application_code) {
            None => {
                report.inserted += 1;
                changed.push(r);
            }
            Some(h) if *h == r.import_hash() => report.unchanged += 1,
            Some(_) => {
                report.updated += 1;
                changed.push(r);
            }
        }
    }
    if run.dry_run {
        return Ok(report);
    }
    let mut tx = pool.begin().await?;
    upsert_batch(&mut tx, run.period, now, &changed, progress).await?;
    report.import_id = Some(log_import(&mut tx, now, rng, "bidders", run, &report).await?);
    tx.commit().await?;
    report.committed = true;
    Ok(report)
}

/// One bidder of one period.
pub async fn get_bidder(pool: &AnyPool, period: &str, code: &str) -> Result<Option<Bidder>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM auction_bidders WHERE period = $1 AND application_code = $2"
    )))
    .bind(period.to_string())
    .bind(code.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(bidder_from_row).transpose()
}

/// The newest record of an application code (codes are issued per period; the newest
/// period wins).
pub async fn latest_by_code(pool: &AnyPool, code: &str) -> Result<Option<Bidder>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM auction_bidders WHERE application_code = $1 \
         ORDER BY period DESC LIMIT 1"
    )))
    .bind(code.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(bidder_from_row).transpose()
}

/// Records whose mobile is this number, newest period first (screen-pop).
pub async fn by_mobile(pool: &AnyPool, mobile: &str, limit: i64) -> Result<Vec<Bidder>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM auction_bidders WHERE mobile = $1 \
         ORDER BY period DESC, application_code LIMIT $2"
    )))
    .bind(mobile.to_string())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(bidder_from_row).collect()
}

/// A page of one period's bidders, by application code; `code_prefix` filters.
pub async fn list_bidders(
    pool: &AnyPool,
    period: &str,
    code_prefix: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<Bidder>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM auction_bidders WHERE period = $1 AND application_code LIKE $2 \
         ORDER BY application_code LIMIT $3 OFFSET $4"
    )))
    .bind(period.to_string())
    .bind(format!("{}%", code_prefix.replace(['%', '_'], "")))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    rows.iter().map(bidder_from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_check_digit() {
        assert!(resident_id_valid("11010519491231002X"));
        assert!(resident_id_valid("11010519491231002x"));
        assert!(!resident_id_valid("110105194912310021"));
        assert!(!resident_id_valid("1101051949123100"));
    }

    #[test]
    fn enums_parse_labels() {
        assert_eq!(BidderKind::parse("单位"), Some(BidderKind::Company));
        assert_eq!(BidderKind::parse("个人"), Some(BidderKind::Person));
        assert_eq!(DepositStatus::parse(""), Some(DepositStatus::Unpaid));
        assert_eq!(DepositStatus::parse("已缴纳"), Some(DepositStatus::Paid));
        assert_eq!(DepositStatus::parse("paid"), Some(DepositStatus::Paid));
        assert_eq!(RefundStatus::parse("退款失败"), Some(RefundStatus::Failed));
        assert_eq!(AuctionResult::parse("x"), None);
    }
}
