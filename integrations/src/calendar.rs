//! The monthly auction calendar (竞价日历), approved by the transport authority: deposit
//! window with its 17:00 deadline, activation window, bidding day and hours, payment days,
//! quotas and reserve price. Entered through the API/CLI; read by the IVR ("this month's
//! calendar"), the deposit matcher (the deadline) and the knowledge base.

use hotline_core::UnixMillis;
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row as _};

use crate::bank::DEFAULT_DEPOSIT_CENTS;
use crate::error::{IntegrationError, Result};
use crate::text::{Date, format_cents, parse_hms, parse_period};

fn default_deadline() -> String {
    "17:00".into()
}
fn default_bid_start() -> String {
    "09:00".into()
}
fn default_bid_end() -> String {
    "15:00".into()
}
fn default_reserve() -> i64 {
    1_000_000
}
fn default_deposit() -> i64 {
    DEFAULT_DEPOSIT_CENTS
}

/// One month's calendar as entered. Dates are `YYYY-MM-DD`, times `HH:MM` (Beijing time);
/// the activation window is `YYYY-MM-DD HH:MM` at both ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarInput {
    pub period: String,
    pub deposit_start: String,
    pub deposit_end: String,
    /// Time of day on `deposit_end` after which arrivals are late (17:00).
    #[serde(default = "default_deadline")]
    pub deposit_deadline: String,
    pub activation_start: String,
    pub activation_end: String,
    pub bidding_date: String,
    #[serde(default = "default_bid_start")]
    pub bidding_start: String,
    #[serde(default = "default_bid_end")]
    pub bidding_end: String,
    pub payment_start: String,
    pub payment_end: String,
    pub quota_persons: i64,
    pub quota_companies: i64,
    /// Reserve price in cents (¥10,000 = 1,000,000).
    #[serde(default = "default_reserve")]
    pub reserve_price_cents: i64,
    /// Deposit per application code in cents (¥2,000 = 200,000).
    #[serde(default = "default_deposit")]
    pub deposit_cents: i64,
    #[serde(default)]
    pub note: String,
}

/// A stored calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionCalendar {
    pub period: String,
    pub deposit_start: String,
    pub deposit_end: String,
    pub deposit_deadline_at: UnixMillis,
    pub activation_start: String,
    pub activation_end: String,
    pub bidding_date: String,
    pub bidding_start: String,
    pub bidding_end: String,
    pub payment_start: String,
    pub payment_end: String,
    pub quota_persons: i64,
    pub quota_companies: i64,
    pub reserve_price_cents: i64,
    pub deposit_cents: i64,
    pub note: String,
    pub updated_by: String,
    pub updated_at: UnixMillis,
}

fn bad(msg: &str) -> IntegrationError {
    IntegrationError::Invalid(msg.to_string())
}

fn date(s: &str, what: &str) -> Result<Date> {
    Date::parse(s).ok_or_else(|| bad(&format!("{what}日期无效（应为 YYYY-MM-DD）：{s}")))
}

fn hm(s: &str, what: &str) -> Result<(u32, u32)> {
    parse_hms(s)
        .map(|(h, m, _)| (h, m))
        .ok_or_else(|| bad(&format!("{what}时间无效（应为 HH:MM）：{s}")))
}

fn date_time(s: &str, what: &str) -> Result<(Date, (u32, u32))> {
    let (d, t) = s
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad(&format!("{what}应为 YYYY-MM-DD HH:MM：{s}")))?;
    Ok((date(d, what)?, hm(t, what)?))
}

impl CalendarInput {
    /// Checks the calendar and normalises it into the stored form.
    pub fn validate(&self, now: UnixMillis, actor: &str) -> Result<AuctionCalendar> {
        let period = parse_period(&self.period)
            .ok_or_else(|| bad(&format!("期次无效（应为 YYYY-MM）：{}", self.period)))?;
        let ds = date(&self.deposit_start, "保证金缴纳开始")?;
        let de = date(&self.deposit_end, "保证金缴纳截止")?;
        let (dh, dm) = hm(&self.deposit_deadline, "保证金缴纳截止")?;
        let (as_d, as_t) = date_time(&self.activation_start, "资格激活开始")?;
        let (ae_d, ae_t) = date_time(&self.activation_end, "资格激活截止")?;
        let bd = date(&self.bidding_date, "竞价")?;
        let bs = hm(&self.bidding_start, "竞价开始")?;
        let be = hm(&self.bidding_end, "竞价结束")?;
        let ps = date(&self.payment_start, "缴款开始")?;
        let pe = date(&self.payment_end, "缴款截止")?;
        if ds > de {
            return Err(bad("保证金缴纳开始日期晚于截止日期"));
        }
        if de >= bd {
            return Err(bad("保证金缴纳应在竞价日之前截止"));
        }
        if (as_d, as_t) > (ae_d, ae_t) {
            return Err(bad("资格激活开始时间晚于截止时间"));
        }
        if (ae_d, ae_t) > (bd, be) {
            return Err(bad("资格激活应不晚于竞价结束"));
        }
        if bs >= be {
            return Err(bad("竞价开始时间应早于结束时间"));
        }
        if ps <= bd || ps > pe {
            return Err(bad("缴款期应在竞价日之后，且开始不晚于截止"));
        }
        if self.quota_persons < 0 || self.quota_companies < 0 {
            return Err(bad("指标数量不能为负数"));
        }
        if self.reserve_price_cents <= 0 || self.deposit_cents <= 0 {
            return Err(bad("保留价和保证金必须大于 0"));
        }
        let fmt_dt = |d: Date, (h, m): (u32, u32)| format!("{} {h:02}:{m:02}", d.iso());
        Ok(AuctionCalendar {
            period,
            deposit_start: ds.iso(),
            deposit_end: de.iso(),
            deposit_deadline_at: de.at_beijing(dh, dm, 0),
            activation_start: fmt_dt(as_d, as_t),
            activation_end: fmt_dt(ae_d, ae_t),
            bidding_date: bd.iso(),
            bidding_start: format!("{:02}:{:02}", bs.0, bs.1),
            bidding_end: format!("{:02}:{:02}", be.0, be.1),
            payment_start: ps.iso(),
            payment_end: pe.iso(),
            quota_persons: self.quota_persons,
            quota_companies: self.quota_companies,
            reserve_price_cents: self.reserve_price_cents,
            deposit_cents: self.deposit_cents,
            note: self.note.trim().to_string(),
            updated_by: actor.to_string(),
            updated_at: now,
        })
    }
}

fn md(iso: &str) -> String {
    Date::parse(iso).map_or_else(|| iso.to_string(), |d| format!("{}月{}日", d.m, d.d))
}

fn md_hm(s: &str) -> String {
    match s.split_once(' ') {
        Some((d, t)) => format!("{}{}", md(d), t),
        None => md(s),
    }
}

impl AuctionCalendar {
    /// The calendar as one zh-CN paragraph (IVR text-to-prompt, knowledge base).
    pub fn summary_zh(&self) -> String {
        let deadline = Date::of_beijing(self.deposit_deadline_at);
        let secs = (self.deposit_deadline_at + crate::text::BEIJING_OFFSET_MS) / 1000 % 86_400;
        format!(
            "{}期竞价安排：保证金缴纳时间为{}至{}{:02}:{:02}（以到账时间为准），每个申请编码{}元；\
             资格激活时间为{}至{}；竞价日为{}，{}至{}；买受人缴款时间为{}至{}。\
             本期指标个人{}个、单位{}个，保留价{}元。",
            self.period,
            md(&self.deposit_start),
            md(&deadline.iso()),
            secs / 3600,
            secs / 60 % 60,
            format_cents(self.deposit_cents).trim_end_matches(".00"),
            md_hm(&self.activation_start),
            md_hm(&self.activation_end),
            md(&self.bidding_date),
            self.bidding_start,
            self.bidding_end,
            md(&self.payment_start),
            md(&self.payment_end),
            self.quota_persons,
            self.quota_companies,
            format_cents(self.reserve_price_cents).trim_end_matches(".00"),
        )
    }
}

const CAL_COLS: &str = "period, deposit_start, deposit_end, deposit_deadline_at, \
    activation_start, activation_end, bidding_date, bidding_start, bidding_end, payment_start, \
    payment_end, quota_persons, quota_companies, reserve_price_cents, deposit_cents, note, \
    updated_by, updated_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<AuctionCalendar> {
    Ok(AuctionCalendar {
        period: r.try_get("period")?,
        deposit_start: r.try_get("deposit_start")?,
        deposit_end: r.try_get("deposit_end")?,
        deposit_deadline_at: r.try_get("deposit_deadline_at")?,
        activation_start: r.try_get("activation_start")?,
        activation_end: r.try_get("activation_end")?,
        bidding_date: r.try_get("bidding_date")?,
        bidding_start: r.try_get("bidding_start")?,
        bidding_end: r.try_get("bidding_end")?,
        payment_start: r.try_get("payment_start")?,
        payment_end: r.try_get("payment_end")?,
        quota_persons: r.try_get("quota_persons")?,
        quota_companies: r.try_get("quota_companies")?,
        reserve_price_cents: r.try_get("reserve_price_cents")?,
        deposit_cents: r.try_get("deposit_cents")?,
        note: r.try_get("note")?,
        updated_by: r.try_get("updated_by")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Creates or replaces a period's calendar. Returns it and whether it was new.
pub async fn put_calendar(
    pool: &AnyPool,
    now: UnixMillis,
    input: &CalendarInput,
    actor: &str,
) -> Result<(AuctionCalendar, bool)> {
    let c = input.validate(now, actor)?;
    let existed = get_calendar(pool, &c.period).await?.is_some();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO auction_calendar ({CAL_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15, $16, $17, $18) ON CONFLICT (period) DO UPDATE SET \
         deposit_start = excluded.deposit_start, deposit_end = excluded.deposit_end, \
         deposit_deadline_at = excluded.deposit_deadline_at, \
         activation_start = excluded.activation_start, activation_end = excluded.activation_end, \
         bidding_date = excluded.bidding_date, bidding_start = excluded.bidding_start, \
         bidding_end = excluded.bidding_end, payment_start = excluded.payment_start, \
         payment_end = excluded.payment_end, quota_persons = excluded.quota_persons, \
         quota_companies = excluded.quota_companies, \
         reserve_price_cents = excluded.reserve_price_cents, \
         deposit_cents = excluded.deposit_cents, note = excluded.note, \
         updated_by = excluded.updated_by, updated_at = excluded.updated_at"
    )))
    .bind(c.period.clone())
    .bind(c.deposit_start.clone())
    .bind(c.deposit_end.clone())
    .bind(c.deposit_deadline_at)
    .bind(c.activation_start.clone())
    .bind(c.activation_end.clone())
    .bind(c.bidding_date.clone())
    .bind(c.bidding_start.clone())
    .bind(c.bidding_end.clone())
    .bind(c.payment_start.clone())
    .bind(c.payment_end.clone())
    .bind(c.quota_persons)
    .bind(c.quota_companies)
    .bind(c.reserve_price_cents)
    .bind(c.deposit_cents)
    .bind(c.note.clone())
    .bind(c.updated_by.clone())
    .bind(c.updated_at)
    .execute(pool)
    .await?;
    Ok((c, !existed))
}

pub async fn get_calendar(pool: &AnyPool, period: &str) -> Result<Option<AuctionCalendar>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CAL_COLS} FROM auction_calendar WHERE period = $1"
    )))
    .bind(period.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The newest calendars first.
pub async fn list_calendars(pool: &AnyPool, limit: i64) -> Result<Vec<AuctionCalendar>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CAL_COLS} FROM auction_calendar ORDER BY period DESC LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Removes a period's calendar; whether there was one.
pub async fn delete_calendar(pool: &AnyPool, period: &str) -> Result<bool> {
    Ok(
        sqlx::query("DELETE FROM auction_calendar WHERE period = $1")
            .bind(period.to_string())
            .execute(pool)
            .await?
            .rows_affected()
            > 0,
    )
}

/// "This month's calendar": the one of the current Beijing month, else the newest one
/// whose bidding day is still ahead, else the newest.
pub async fn current_calendar(pool: &AnyPool, now: UnixMillis) -> Result<Option<AuctionCalendar>> {
    let today = Date::of_beijing(now);
    let period = format!("{:04}-{:02}", today.y, today.m);
    if let Some(c) = get_calendar(pool, &period).await? {
        return Ok(Some(c));
    }
    let all = list_calendars(pool, 24).await?;
    let today = today.iso();
    Ok(all
        .iter()
        .rev()
        .find(|c| c.bidding_date >= today)
        .or(all.first())
        .cloned())
}

#[cfg(test)]
pub(crate) fn example(period: &str) -> CalendarInput {
    CalendarInput {
        period: period.into(),
        deposit_start: "2025-11-01".into(),
        deposit_end: "2025-11-10".into(),
        deposit_deadline: default_deadline(),
        activation_start: "2025-11-01 09:00".into(),
        activation_end: "2025-11-25 15:00".into(),
        bidding_date: "2025-11-25".into(),
        bidding_start: default_bid_start(),
        bidding_end: default_bid_end(),
        payment_start: "2025-11-26".into(),
        payment_end: "2025-11-28".into(),
        quota_persons: 3000,
        quota_companies: 500,
        reserve_price_cents: default_reserve(),
        deposit_cents: default_deposit(),
        note: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_and_summarises() {
        let c = example("2025-11").validate(0, "biz").unwrap();
        assert_eq!(
            c.deposit_deadline_at,
            Date::new(2025, 11, 10).unwrap().at_beijing(17, 0, 0)
        );
        let s = c.summary_zh();
        assert!(s.contains("11月1日至11月10日17:00"), "{s}");
        assert!(s.contains("11月25日，09:00至15:00"), "{s}");
        assert!(s.contains("保留价10000元"), "{s}");
        let mut bad = example("2025-11");
        bad.deposit_end = "2025-11-30".into();
        assert!(bad.validate(0, "x").is_err());
        let mut bad = example("2025-11");
        bad.activation_end = "2025-11-25 16:00".into();
        assert!(bad.validate(0, "x").is_err());
        let mut bad = example("2025-13");
        bad.period = "2025-13".into();
        assert!(bad.validate(0, "x").is_err());
    }
}
