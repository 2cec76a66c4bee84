//! Batches: who gets a notice (an audience from bidder data, or an uploaded list validated all
//! or nothing), the preview (recipients, excluded by opt-out, invalid numbers, duplicates,
//! segments), confirmation into the outbox, progress and per-message results; the opt-out
//! list; single notices (e.g. the result of a deposit review) through the same outbox.

use std::collections::{BTreeMap, HashMap, HashSet};

use hotline_core::mask::mask_phone;
use hotline_core::{IdGenerator, Rng, UnixMillis};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row as _};

use super::template::{self, Template, TemplateError, compose, segments};
use crate::bidders::{self, RowProblem};
use crate::error::{IntegrationError, Result};
use crate::table::Table;
use crate::text::format_cents;

/// Which bidders of a period get the notice (what bidder data can tell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BidderFilter {
    All,
    /// 保证金未缴纳 (deposit reminders).
    DepositUnpaid,
    /// 保证金已缴纳 (activation notices).
    DepositPaid,
    /// Deposit paid, not yet activated (activation reminders).
    ActivationPending,
    /// 成交 (payment notices).
    Won,
    /// Won, price not yet paid (payment reminders).
    WonUnpaid,
    /// 退款失败.
    RefundFailed,
}

impl BidderFilter {
    fn sql(self) -> &'static str {
        match self {
            Self::All => "",
            Self::DepositUnpaid => " AND deposit_status = 'unpaid'",
            Self::DepositPaid => " AND deposit_status = 'paid'",
            Self::ActivationPending => " AND deposit_status = 'paid' AND activated = 0",
            Self::Won => " AND result = 'won'",
            Self::WonUnpaid => " AND result = 'won' AND payment_status = 'unpaid'",
            Self::RefundFailed => " AND refund_status = 'failed'",
        }
    }
}

/// Where a batch's recipients came from (stored with the batch as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Audience {
    Bidders {
        period: String,
        filter: BidderFilter,
    },
    Upload {
        file_name: String,
        rows: u64,
    },
}

/// One recipient: a mobile and the values of the template's variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub mobile: String,
    pub vars: BTreeMap<String, String>,
}

/// `13812345678`, `138 1234 5678`, `138-1234-5678`, `+8613812345678` → `13812345678`.
pub fn normalize_mobile(s: &str) -> String {
    let digits: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '+' | '\u{3000}'))
        .collect();
    match digits.strip_prefix("86") {
        Some(rest) if digits.len() == 13 => rest.to_string(),
        _ => digits,
    }
}

/// The variables every bidder audience provides (docs/sms.md lists them).
pub const BIDDER_VARIABLES: &[&str] = &[
    "name",
    "code",
    "period",
    "amount",
    "price",
    "refund_failure",
    "deposit_start",
    "deposit_end",
    "activation_start",
    "activation_end",
    "bidding_date",
    "payment_start",
    "payment_end",
];

/// The recipients of a bidder audience, with their variables. Batch-wide `extra` values fill
/// variables the data does not have (e.g. `deadline`); the bidder's own values win.
pub async fn bidder_recipients(
    pool: &AnyPool,
    period: &str,
    filter: BidderFilter,
    extra: &BTreeMap<String, String>,
) -> Result<Vec<Recipient>> {
    let cal = crate::calendar::get_calendar(pool, period).await?;
    let mut base = extra.clone();
    if let Some(c) = &cal {
        for (k, v) in [
            ("deposit_start", &c.deposit_start),
            ("deposit_end", &c.deposit_end),
            ("activation_start", &c.activation_start),
            ("activation_end", &c.activation_end),
            ("bidding_date", &c.bidding_date),
            ("payment_start", &c.payment_start),
            ("payment_end", &c.payment_end),
        ] {
            base.entry(k.to_string()).or_insert_with(|| v.clone());
        }
    }
    let default_deposit = cal
        .as_ref()
        .map_or(crate::bank::DEFAULT_DEPOSIT_CENTS, |c| c.deposit_cents);
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT application_code, name, mobile, deposit_cents, price_cents, refund_failure \
         FROM auction_bidders WHERE period = $1{} ORDER BY application_code",
        filter.sql()
    )))
    .bind(period.to_string())
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut vars = base.clone();
        let deposit: i64 = r.try_get("deposit_cents")?;
        let price: i64 = r.try_get("price_cents")?;
        vars.insert("name".into(), r.try_get("name")?);
        vars.insert("code".into(), r.try_get("application_code")?);
        vars.insert("period".into(), period.to_string());
        vars.insert(
            "amount".into(),
            format_cents(if deposit > 0 {
                deposit
            } else {
                default_deposit
            }),
        );
        vars.insert("price".into(), format_cents(price));
        vars.insert("refund_failure".into(), r.try_get("refund_failure")?);
        out.push(Recipient {
            mobile: r.try_get("mobile")?,
            vars,
        });
    }
    Ok(out)
}

/// The most rows an uploaded list may have.
pub const MAX_UPLOAD_ROWS: usize = 200_000;

/// Reads an uploaded list: a `mobile` (or `手机号`) column and one column per template
/// variable, named like the variable. All or nothing: every problem of every row is
/// reported (line numbers as the file shows them), and nothing is made when there is one.
pub fn upload_recipients(
    table: &Table,
    template_body: &str,
    extra: &BTreeMap<String, String>,
) -> Result<std::result::Result<Vec<Recipient>, Vec<RowProblem>>> {
    let vars = template::variables(template_body)
        .map_err(|e| IntegrationError::Invalid(e.message_zh()))?;
    let mobile_col = table
        .column("mobile")
        .or_else(|| table.column("手机号"))
        .ok_or_else(|| IntegrationError::MissingColumns("mobile（或 手机号）".into()))?;
    if table.rows.len() > MAX_UPLOAD_ROWS {
        return Err(IntegrationError::Invalid(format!(
            "名单最多 {MAX_UPLOAD_ROWS} 行，文件有 {} 行",
            table.rows.len()
        )));
    }
    let mut columns = Vec::new();
    let mut missing = Vec::new();
    for v in &vars {
        match table.column(v) {
            Some(i) => columns.push((v.clone(), Some(i))),
            None if extra.contains_key(v) => columns.push((v.clone(), None)),
            None => missing.push(v.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(IntegrationError::MissingColumns(missing.join("、")));
    }
    let mut out = Vec::with_capacity(table.rows.len());
    let mut problems = Vec::new();
    for row in &table.rows {
        let raw = row.get(Some(mobile_col));
        let mobile = normalize_mobile(raw);
        if !bidders::valid_mobile(&mobile) {
            problems.push(RowProblem {
                line: row.line,
                column: table.header[mobile_col].clone(),
                value: mask_phone(raw),
                reason: "手机号应为 1 开头的 11 位数字".into(),
            });
        }
        let mut values = extra.clone();
        for (name, col) in &columns {
            let Some(i) = col else { continue };
            let v = row.get(Some(*i));
            if v.is_empty() {
                if !extra.contains_key(name) {
                    problems.push(RowProblem {
                        line: row.line,
                        column: name.clone(),
                        value: String::new(),
                        reason: format!("变量 {{{name}}} 不能为空"),
                    });
                }
            } else {
                values.insert(name.clone(), v.to_string());
            }
        }
        out.push(Recipient {
            mobile,
            vars: values,
        });
    }
    Ok(if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    })
}

/// What a batch will send (before confirmation) or has sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Messages to send (held, queued, sending, sent, delivered, undelivered, failed, unknown).
    pub recipients: u64,
    pub excluded_opt_out: u64,
    pub invalid_mobile: u64,
    pub duplicates: u64,
    /// Parts billed for the messages to send.
    pub segments: u64,
    /// Messages by status.
    pub by_status: BTreeMap<String, u64>,
}

/// A stored batch with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub id: String,
    pub name: String,
    pub template_id: String,
    pub template_version: i64,
    pub audience: Audience,
    /// draft | confirmed | cancelled
    pub status: String,
    pub created_by: String,
    pub confirmed_by: String,
    pub confirmed_at: UnixMillis,
    pub created_at: UnixMillis,
    pub counts: Counts,
    /// The first message as it will read, for the preview (the API masks its mobile for
    /// roles without `sees_personal_data()`).
    pub sample: Option<MessageView>,
    /// Whether nothing is left to send (every message has an outcome).
    pub finished: bool,
}

/// What a new batch is made of.
#[derive(Debug, Clone)]
pub struct NewBatch<'a> {
    pub name: &'a str,
    pub template: &'a Template,
    pub audience: Audience,
    pub recipients: Vec<Recipient>,
    pub sign: &'a str,
    pub opt_out_hint: &'a str,
    pub actor: &'a str,
}

/// Rows per INSERT (SQLite binds `$n` by a linear search; see bidders::BATCH).
const ROWS_PER_INSERT: usize = 50;

/// Makes a draft batch: renders every message (a variable missing anywhere refuses the whole
/// batch), marks opt-outs, invalid numbers and duplicates (same mobile, same text), and
/// stores the messages `held` until the batch is confirmed. Returns the batch with its
/// preview counts.
pub async fn create_batch(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    nb: NewBatch<'_>,
) -> Result<Batch> {
    if !nb.template.is_approved() {
        return Err(IntegrationError::Conflict(
            "模板尚未审批，不能用于发送".into(),
        ));
    }
    if nb.recipients.is_empty() {
        return Err(IntegrationError::Invalid("没有符合条件的接收人".into()));
    }
    let name = nb.name.trim();
    if name.chars().count() > 100 {
        return Err(IntegrationError::Invalid(
            "批次名称不能超过 100 个字符".into(),
        ));
    }
    let opted_out = opt_out_set(pool).await?;
    let batch_id = IdGenerator::new_id(now, rng);
    struct Planned {
        mobile: String,
        body: String,
        segments: i64,
        status: &'static str,
    }
    let mut planned = Vec::with_capacity(nb.recipients.len());
    let mut seen: HashSet<(String, String)> = HashSet::with_capacity(nb.recipients.len());
    for r in nb.recipients {
        let mobile = normalize_mobile(&r.mobile);
        let body = template::render(&nb.template.body, &r.vars).map_err(|e| match e {
            TemplateError::Missing(v) => IntegrationError::Invalid(format!(
                "模板变量 {{{v}}} 没有值：请在批次的 variables 中提供，或改用含该变量的名单"
            )),
            other => IntegrationError::Invalid(other.message_zh()),
        })?;
        let text = compose(nb.sign, &body, nb.opt_out_hint);
        let status = if !bidders::valid_mobile(&mobile) {
            "invalid_mobile"
        } else if opted_out.contains(&mobile) {
            "excluded_opt_out"
        } else if !seen.insert((mobile.clone(), text.clone())) {
            "duplicate"
        } else {
            "held"
        };
        planned.push(Planned {
            segments: i64::from(segments(&text).parts),
            mobile,
            body: text,
            status,
        });
    }
    let audience = serde_json::to_string(&nb.audience)
        .map_err(|e| IntegrationError::Invalid(e.to_string()))?;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO sms_batches (id, name, template_id, template_version, audience, status, \
         created_by, confirmed_by, confirmed_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'draft', $6, '', 0, $7)",
    )
    .bind(batch_id.clone())
    .bind(if name.is_empty() {
        nb.template.name.clone()
    } else {
        name.to_string()
    })
    .bind(nb.template.id.clone())
    .bind(nb.template.version)
    .bind(audience)
    .bind(nb.actor.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for (c, chunk) in planned.chunks(ROWS_PER_INSERT).enumerate() {
        let mut sql = String::from(
            "INSERT INTO sms_messages (id, batch_id, seq, mobile, body, segments, status, \
             attempts, next_attempt_at, claimed_at, provider_id, last_error, sent_at, \
             receipt_at, created_at) VALUES ",
        );
        // The creation time is the same for every row: one shared parameter after the rows'.
        let shared = 7 * chunk.len() + 1;
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let b = i * 7;
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, 0, ${shared}, 0, '', '', 0, 0, ${shared})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, p) in chunk.iter().enumerate() {
            let seq = (c * ROWS_PER_INSERT + i) as i64;
            q = q
                .bind(message_key(&batch_id, seq))
                .bind(batch_id.clone())
                .bind(seq)
                .bind(p.mobile.clone())
                .bind(p.body.clone())
                .bind(p.segments)
                .bind(p.status);
        }
        q.bind(now).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    get_batch(pool, &batch_id)
        .await?
        .ok_or_else(|| IntegrationError::NotFound("短信批次".into()))
}

/// The idempotency key of a batch's message: stable, so the same message always carries the
/// same key to the provider.
pub fn message_key(batch_id: &str, seq: i64) -> String {
    format!("{batch_id}-{seq:06}")
}

const BATCH_COLS: &str = "id, name, template_id, template_version, audience, status, created_by, \
    confirmed_by, confirmed_at, created_at";

async fn counts_of(pool: &AnyPool, batch_id: &str) -> Result<Counts> {
    let rows = sqlx::query(
        "SELECT status, COUNT(*) AS n, CAST(SUM(segments) AS BIGINT) AS s FROM sms_messages \
         WHERE batch_id = $1 GROUP BY status",
    )
    .bind(batch_id.to_string())
    .fetch_all(pool)
    .await?;
    let mut c = Counts::default();
    for r in &rows {
        let status: String = r.try_get("status")?;
        let n = r.try_get::<i64, _>("n")? as u64;
        let s = r.try_get::<Option<i64>, _>("s")?.unwrap_or(0) as u64;
        match status.as_str() {
            "excluded_opt_out" => c.excluded_opt_out += n,
            "invalid_mobile" => c.invalid_mobile += n,
            "duplicate" => c.duplicates += n,
            "cancelled" => {}
            _ => {
                c.recipients += n;
                c.segments += s;
            }
        }
        c.by_status.insert(status, n);
    }
    Ok(c)
}

fn batch_from_row(r: &sqlx::any::AnyRow) -> Result<Batch> {
    let audience: String = r.try_get("audience")?;
    Ok(Batch {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        template_id: r.try_get("template_id")?,
        template_version: r.try_get("template_version")?,
        audience: serde_json::from_str(&audience)
            .map_err(|e| IntegrationError::Corrupt(format!("batch audience: {e}")))?,
        status: r.try_get("status")?,
        created_by: r.try_get("created_by")?,
        confirmed_by: r.try_get("confirmed_by")?,
        confirmed_at: r.try_get("confirmed_at")?,
        created_at: r.try_get("created_at")?,
        counts: Counts::default(),
        sample: None,
        finished: false,
    })
}

/// A batch with its counts and sample message (mobile in full: callers mask by role).
pub async fn get_batch(pool: &AnyPool, id: &str) -> Result<Option<Batch>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {BATCH_COLS} FROM sms_batches WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut b = batch_from_row(&row)?;
    b.counts = counts_of(pool, id).await?;
    let open = ["held", "queued", "sending"]
        .iter()
        .map(|s| b.counts.by_status.get(*s).copied().unwrap_or(0))
        .sum::<u64>();
    b.finished = b.status != "draft" && open == 0;
    // The first message that will be (or was) sent, not an excluded one.
    let first: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(seq) FROM sms_messages WHERE batch_id = $1 \
         AND status NOT IN ('excluded_opt_out', 'invalid_mobile', 'duplicate')",
    )
    .bind(id.to_string())
    .fetch_one(pool)
    .await?;
    if let Some(seq) = first {
        b.sample = list_messages(pool, id, "", 1, seq)
            .await?
            .into_iter()
            .next();
    }
    Ok(Some(b))
}

/// Batches, newest first (without samples; counts included).
pub async fn list_batches(pool: &AnyPool, limit: i64) -> Result<Vec<Batch>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {BATCH_COLS} FROM sms_batches ORDER BY created_at DESC, id DESC LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut b = batch_from_row(r)?;
        b.counts = counts_of(pool, &b.id).await?;
        out.push(b);
    }
    Ok(out)
}

/// Confirms a draft: its held messages join the outbox. Refused when the template changed
/// since the preview (what was previewed is not what the template now says).
pub async fn confirm_batch(
    pool: &AnyPool,
    now: UnixMillis,
    id: &str,
    actor: &str,
) -> Result<Batch> {
    let b = get_batch(pool, id)
        .await?
        .ok_or_else(|| IntegrationError::NotFound("短信批次".into()))?;
    if b.status != "draft" {
        return Err(IntegrationError::Conflict(format!(
            "批次状态为 {}，只能确认草稿批次",
            b.status
        )));
    }
    let t = template::get_template(pool, &b.template_id)
        .await?
        .ok_or_else(|| IntegrationError::NotFound("短信模板".into()))?;
    if !t.is_approved() || t.version != b.template_version {
        return Err(IntegrationError::Conflict(
            "模板在预览后被修改或撤销审批，请重新生成批次".into(),
        ));
    }
    let mut tx = pool.begin().await?;
    let n = sqlx::query(
        "UPDATE sms_batches SET status = 'confirmed', confirmed_by = $1, confirmed_at = $2 \
         WHERE id = $3 AND status = 'draft'",
    )
    .bind(actor.to_string())
    .bind(now)
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(IntegrationError::Conflict("批次已被确认或取消".into()));
    }
    sqlx::query(
        "UPDATE sms_messages SET status = 'queued', next_attempt_at = $1 \
         WHERE batch_id = $2 AND status = 'held'",
    )
    .bind(now)
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    get_batch(pool, id)
        .await?
        .ok_or_else(|| IntegrationError::NotFound("短信批次".into()))
}

/// Cancels a batch: messages not yet handed to the provider are not sent.
pub async fn cancel_batch(pool: &AnyPool, id: &str) -> Result<Batch> {
    let mut tx = pool.begin().await?;
    let n = sqlx::query(
        "UPDATE sms_batches SET status = 'cancelled' WHERE id = $1 AND status <> 'cancelled'",
    )
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(IntegrationError::NotFound("短信批次（或已取消）".into()));
    }
    sqlx::query(
        "UPDATE sms_messages SET status = 'cancelled' WHERE batch_id = $1 \
         AND status IN ('held', 'queued')",
    )
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    get_batch(pool, id)
        .await?
        .ok_or_else(|| IntegrationError::NotFound("短信批次".into()))
}

/// One message as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub id: String,
    pub batch_id: String,
    pub seq: i64,
    pub mobile: String,
    pub body: String,
    pub segments: i64,
    pub status: String,
    pub attempts: i64,
    pub provider_id: String,
    pub last_error: String,
    pub sent_at: UnixMillis,
    pub receipt_at: UnixMillis,
}

impl MessageView {
    pub fn masked(mut self) -> Self {
        self.mobile = mask_phone(&self.mobile);
        self
    }
    pub fn for_role(self, full: bool) -> Self {
        if full { self } else { self.masked() }
    }
}

/// A page of a batch's messages in order; `status` filters when not empty.
pub async fn list_messages(
    pool: &AnyPool,
    batch_id: &str,
    status: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<MessageView>> {
    let rows = sqlx::query(
        "SELECT id, batch_id, seq, mobile, body, segments, status, attempts, provider_id, \
         last_error, sent_at, receipt_at FROM sms_messages \
         WHERE batch_id = $1 AND ($2 = '' OR status = $2) ORDER BY seq LIMIT $3 OFFSET $4",
    )
    .bind(batch_id.to_string())
    .bind(status.to_string())
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MessageView {
                id: r.try_get("id")?,
                batch_id: r.try_get("batch_id")?,
                seq: r.try_get("seq")?,
                mobile: r.try_get("mobile")?,
                body: r.try_get("body")?,
                segments: r.try_get("segments")?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                provider_id: r.try_get("provider_id")?,
                last_error: r.try_get("last_error")?,
                sent_at: r.try_get("sent_at")?,
                receipt_at: r.try_get("receipt_at")?,
            })
        })
        .collect()
}

/// Queues one notice outside any batch (e.g. the result of a deposit review), keyed by
/// `key` so that queuing it twice sends it once. Opted-out or invalid numbers are stored with
/// that status and not sent. Returns whether a new message was queued.
pub async fn enqueue_single(
    pool: &AnyPool,
    now: UnixMillis,
    key: &str,
    mobile: &str,
    text: &str,
) -> Result<bool> {
    enqueue(pool, now, key, mobile, text, false).await
}

/// Queues one notice to staff (a health alert to the on-duty technician) like
/// [`enqueue_single`], marked urgent: the sender sends it during the quiet hours too, which
/// are there for notices to the public.
pub async fn enqueue_staff_notice(
    pool: &AnyPool,
    now: UnixMillis,
    key: &str,
    mobile: &str,
    text: &str,
) -> Result<bool> {
    enqueue(pool, now, key, mobile, text, true).await
}

async fn enqueue(
    pool: &AnyPool,
    now: UnixMillis,
    key: &str,
    mobile: &str,
    text: &str,
    urgent: bool,
) -> Result<bool> {
    let mobile = normalize_mobile(mobile);
    let status = if !bidders::valid_mobile(&mobile) {
        "invalid_mobile"
    } else if is_opted_out(pool, &mobile).await? {
        "excluded_opt_out"
    } else {
        "queued"
    };
    let r = sqlx::query(
        "INSERT INTO sms_messages (id, batch_id, seq, mobile, body, segments, status, attempts, \
         next_attempt_at, claimed_at, provider_id, last_error, sent_at, receipt_at, created_at, \
         urgent) \
         VALUES ($1, '', 0, $2, $3, $4, $5, 0, $6, 0, '', '', 0, 0, $6, $7) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(key.to_string())
    .bind(mobile)
    .bind(text.to_string())
    .bind(i64::from(segments(text).parts))
    .bind(status)
    .bind(now)
    .bind(i64::from(urgent))
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1 && status == "queued")
}

/// One entry of the opt-out list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOut {
    pub mobile: String,
    /// reply | staff
    pub source: String,
    pub note: String,
    pub created_by: String,
    pub created_at: UnixMillis,
}

impl OptOut {
    pub fn for_role(mut self, full: bool) -> Self {
        if !full {
            self.mobile = mask_phone(&self.mobile);
        }
        self
    }
}

async fn opt_out_set(pool: &AnyPool) -> Result<HashSet<String>> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT mobile FROM sms_opt_outs")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect(),
    )
}

pub async fn is_opted_out(pool: &AnyPool, mobile: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sms_opt_outs WHERE mobile = $1")
            .bind(mobile.to_string())
            .fetch_one(pool)
            .await?
            > 0,
    )
}

/// Adds a number to the opt-out list; its messages not yet sent are withdrawn. Returns
/// whether it was new.
pub async fn add_opt_out(
    pool: &AnyPool,
    now: UnixMillis,
    mobile: &str,
    source: &str,
    note: &str,
    actor: &str,
) -> Result<bool> {
    let mobile = normalize_mobile(mobile);
    if !bidders::valid_mobile(&mobile) {
        return Err(IntegrationError::Invalid(
            "手机号应为 1 开头的 11 位数字".into(),
        ));
    }
    let mut tx = pool.begin().await?;
    let n = sqlx::query(
        "INSERT INTO sms_opt_outs (mobile, source, note, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (mobile) DO NOTHING",
    )
    .bind(mobile.clone())
    .bind(source.to_string())
    .bind(note.chars().take(200).collect::<String>())
    .bind(actor.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE sms_messages SET status = 'excluded_opt_out' WHERE mobile = $1 \
         AND status IN ('held', 'queued')",
    )
    .bind(mobile)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(n == 1)
}

pub async fn remove_opt_out(pool: &AnyPool, mobile: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM sms_opt_outs WHERE mobile = $1")
        .bind(normalize_mobile(mobile))
        .execute(pool)
        .await?
        .rows_affected();
    Ok(n == 1)
}

pub async fn list_opt_outs(pool: &AnyPool, limit: i64, offset: i64) -> Result<Vec<OptOut>> {
    let rows = sqlx::query(
        "SELECT mobile, source, note, created_by, created_at FROM sms_opt_outs \
         ORDER BY created_at DESC, mobile LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OptOut {
                mobile: r.try_get("mobile")?,
                source: r.try_get("source")?,
                note: r.try_get("note")?,
                created_by: r.try_get("created_by")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Whether an inbound reply asks to stop notices (回复TD退订 and its usual variants).
pub fn is_unsubscribe_reply(content: &str) -> bool {
    let c = content.trim().to_ascii_uppercase();
    matches!(c.as_str(), "TD" | "T" | "N" | "0000" | "退订" | "STOP")
}

/// Records a delivery receipt for a message by its key. Returns whether the key was ours.
pub async fn apply_receipt(
    pool: &AnyPool,
    now: UnixMillis,
    key: &str,
    delivered: bool,
    error: &str,
) -> Result<bool> {
    // A receipt can overtake our own "sent" mark (the provider is fast, our write is
    // batched): accept it for `sending` rows too; the later mark leaves the status alone.
    let n = sqlx::query(
        "UPDATE sms_messages SET status = $1, receipt_at = $2, last_error = $3 \
         WHERE id = $4 AND status IN ('sending', 'sent', 'delivered', 'undelivered', 'unknown')",
    )
    .bind(if delivered {
        "delivered"
    } else {
        "undelivered"
    })
    .bind(now)
    .bind(error.to_string())
    .bind(key.to_string())
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Counts of messages by status over the whole outbox (for metrics and the console).
pub async fn outbox_counts(pool: &AnyPool) -> Result<HashMap<String, u64>> {
    let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM sms_messages GROUP BY status")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("status")?, r.try_get::<i64, _>("n")? as u64)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::read_csv;

    #[test]
    fn mobiles_normalize() {
        assert_eq!(normalize_mobile("138 1234 5678"), "13812345678");
        assert_eq!(normalize_mobile("+86 138-1234-5678"), "13812345678");
        assert_eq!(normalize_mobile("8613812345678"), "13812345678");
        assert_eq!(normalize_mobile("12345"), "12345");
    }

    #[test]
    fn upload_is_all_or_nothing_with_row_and_field_errors() {
        let t =
            read_csv("mobile,name,code\n13800000001,张三,A1\n1380000,李四,A2\n13800000003,,A3\n")
                .unwrap();
        let body = "{name}您好，申请编码{code}，请于{deadline}前缴纳。";
        let extra: BTreeMap<String, String> =
            [("deadline".to_string(), "11月10日".to_string())].into();
        let problems = upload_recipients(&t, body, &extra).unwrap().unwrap_err();
        assert_eq!(problems.len(), 2);
        assert_eq!(
            (problems[0].line, problems[0].column.as_str()),
            (3, "mobile")
        );
        assert_eq!(problems[0].value, "*****00", "masked");
        assert_eq!((problems[1].line, problems[1].column.as_str()), (4, "name"));
        let ok = read_csv("手机号,name,code\n138 0000 0001,张三,A1\n").unwrap();
        let r = upload_recipients(&ok, body, &extra).unwrap().unwrap();
        assert_eq!(r[0].mobile, "13800000001");
        assert_eq!(r[0].vars["deadline"], "11月10日");
        // a variable neither in the file nor given: the column is missing
        let e = upload_recipients(&ok, "{name}{other}", &BTreeMap::new()).unwrap_err();
        assert!(matches!(e, IntegrationError::MissingColumns(c) if c == "other"));
        let no_mobile = read_csv("name\nx\n").unwrap();
        assert!(upload_recipients(&no_mobile, "{name}", &BTreeMap::new()).is_err());
    }

    #[test]
    fn unsubscribe_replies() {
        assert!(is_unsubscribe_reply(" td "));
        assert!(is_unsubscribe_reply("退订"));
        assert!(!is_unsubscribe_reply("请问保证金"));
    }
}
