//! Lookups for the phone side: the IVR self-service port (application code + last 4 digits
//! of the mobile given at application → status) and the agent screen-pop (caller number →
//! bidder records).
//!
//! The IVR answer never says whether a code exists: a wrong pair and an unknown code give the
//! same `NotFound`, and both count as failures for the caller; after too many the caller is
//! blocked for a while ([`SelfServiceGate`], sans-IO on top of `FailureThrottle`).

use hotline_core::UnixMillis;
use hotline_core::throttle::{FailureOutcome, FailureThrottle, ThrottlePolicy};
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

use crate::bidders::{
    AuctionResult, Bidder, BidderKind, DepositStatus, PaymentStatus, RefundStatus, by_mobile,
    latest_by_code, valid_code,
};
use crate::error::Result;
use crate::text::format_cents;

/// Default limit: 5 failed lookups within 10 minutes block the caller for 30 minutes.
pub const DEFAULT_SELF_SERVICE_POLICY: ThrottlePolicy = ThrottlePolicy {
    max_failures: 5,
    window_ms: 10 * 60_000,
    block_ms: 30 * 60_000,
};

/// The statuses a caller may hear about their own application (no personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSummary {
    pub period: String,
    pub application_code: String,
    pub kind: BidderKind,
    pub deposit_status: DepositStatus,
    /// `YYYY-MM-DD` or empty (the IVR speaks it).
    pub deposit_date: String,
    pub activated: bool,
    pub result: AuctionResult,
    pub price_cents: i64,
    pub payment_status: PaymentStatus,
    pub refund_status: RefundStatus,
    pub refund_failure: String,
    /// `YYYY-MM-DD` or empty.
    pub refund_date: String,
    /// The answer as one zh-CN sentence for text-to-prompt.
    pub text_zh: String,
}

impl StatusSummary {
    pub fn of(b: &Bidder) -> Self {
        let r = &b.record;
        let mut text = format!(
            "您的申请编码{}，{}期：保证金{}，资格{}",
            r.application_code,
            b.period,
            r.deposit_status.label_zh(),
            if r.activated {
                "已激活"
            } else {
                "未激活"
            }
        );
        match r.result {
            AuctionResult::Pending => {}
            AuctionResult::Lost => text.push_str("，竞价未成交"),
            AuctionResult::Won => text.push_str(&format!(
                "，竞价成交，成交价{}元，缴款状态{}",
                format_cents(r.price_cents).trim_end_matches(".00"),
                r.payment_status.label_zh()
            )),
        }
        match r.refund_status {
            RefundStatus::None => {}
            RefundStatus::Failed => {
                text.push_str(&format!("，保证金退款失败，原因：{}", r.refund_failure));
            }
            s => text.push_str(&format!("，保证金{}", s.label_zh())),
        }
        text.push('。');
        Self {
            period: b.period.clone(),
            application_code: r.application_code.clone(),
            kind: r.kind,
            deposit_status: r.deposit_status,
            deposit_date: r.deposit_date.clone(),
            activated: r.activated,
            result: r.result,
            price_cents: r.price_cents,
            payment_status: r.payment_status,
            refund_status: r.refund_status,
            refund_failure: r.refund_failure.clone(),
            refund_date: r.refund_date.clone(),
            text_zh: text,
        }
    }
}

/// The IVR's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LookupAnswer {
    Found(StatusSummary),
    /// Unknown code or wrong last digits: the same answer for both.
    NotFound,
    /// Too many failures from this caller: try again after `until`.
    Blocked {
        until: UnixMillis,
    },
}

/// Per-caller failure limit of the self-service lookup. Sans-IO: every call takes `now`.
#[derive(Debug)]
pub struct SelfServiceGate {
    throttle: FailureThrottle<String>,
}

impl Default for SelfServiceGate {
    fn default() -> Self {
        Self::new(DEFAULT_SELF_SERVICE_POLICY)
    }
}

impl SelfServiceGate {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            throttle: FailureThrottle::new(policy),
        }
    }

    pub fn blocked_until(&self, now: UnixMillis, caller: &str) -> Option<UnixMillis> {
        self.throttle.blocked_until(now, &caller.to_string())
    }

    /// Counts a lookup's outcome; returns the block it caused, if any.
    pub fn record(&mut self, now: UnixMillis, caller: &str, found: bool) -> Option<UnixMillis> {
        if found {
            self.throttle.record_success(now, &caller.to_string());
            None
        } else {
            match self.throttle.record_failure(now, caller.to_string()) {
                FailureOutcome::Blocked { until } => Some(until),
                FailureOutcome::Counted { .. } => None,
            }
        }
    }
}

/// Whether a stored record answers to these last four digits of the mobile.
pub fn pair_matches(b: &Bidder, last4: &str) -> bool {
    last4.len() == 4
        && last4.bytes().all(|c| c.is_ascii_digit())
        && b.record.mobile.ends_with(last4)
}

/// The IVR self-service lookup, limited per caller. The gate is locked only briefly around
/// the (sans-IO) checks, never across the query.
pub async fn ivr_lookup(
    pool: &AnyPool,
    gate: &std::sync::Mutex<SelfServiceGate>,
    now: UnixMillis,
    caller: &str,
    code: &str,
    last4: &str,
) -> Result<LookupAnswer> {
    let lock = || gate.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(until) = lock().blocked_until(now, caller) {
        return Ok(LookupAnswer::Blocked { until });
    }
    let code = code.trim();
    let found = if valid_code(code) {
        latest_by_code(pool, code)
            .await?
            .filter(|b| pair_matches(b, last4.trim()))
    } else {
        None
    };
    let blocked = lock().record(now, caller, found.is_some());
    Ok(match (found, blocked) {
        (Some(b), _) => LookupAnswer::Found(StatusSummary::of(&b)),
        (None, Some(until)) => LookupAnswer::Blocked { until },
        (None, None) => LookupAnswer::NotFound,
    })
}

/// The mobile number in a caller id: digits only, without `+86`/`0086` or a trunk `0` before a
/// mobile. Landlines are returned as digits.
pub fn normalize_caller(number: &str) -> String {
    let user = number
        .trim()
        .trim_start_matches("sip:")
        .trim_start_matches("tel:");
    let user = user.split('@').next().unwrap_or(user);
    let digits: String = user.chars().filter(char::is_ascii_digit).collect();
    if let Some(rest) = digits.strip_prefix("0086").filter(|r| r.len() == 11) {
        return rest.to_string();
    }
    if let Some(rest) = digits.strip_prefix("86").filter(|r| r.len() == 11) {
        return rest.to_string();
    }
    if let Some(rest) = digits
        .strip_prefix('0')
        .filter(|r| r.len() == 11 && r.starts_with('1'))
    {
        return rest.to_string();
    }
    digits
}

/// Screen-pop: the bidder records of a caller's number, newest period first (at most 20).
pub async fn screen_pop(pool: &AnyPool, caller: &str) -> Result<Vec<Bidder>> {
    let mobile = normalize_caller(caller);
    if mobile.len() < 7 {
        return Ok(Vec::new());
    }
    by_mobile(pool, &mobile, 20).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_caller_ids() {
        for n in [
            "13812345678",
            "+8613812345678",
            "008613812345678",
            "013812345678",
            "sip:+86 138-1234-5678@gw",
            "tel:8613812345678",
        ] {
            assert_eq!(normalize_caller(n), "13812345678", "{n}");
        }
        assert_eq!(normalize_caller("022-23456789"), "02223456789");
    }

    #[test]
    fn gate_blocks_after_failures_and_forgets_on_success() {
        let mut g = SelfServiceGate::new(ThrottlePolicy {
            max_failures: 3,
            window_ms: 1000,
            block_ms: 5000,
        });
        assert_eq!(g.record(0, "a", false), None);
        assert_eq!(g.record(1, "a", true), None);
        assert_eq!(g.record(2, "a", false), None);
        assert_eq!(g.record(3, "a", false), None);
        assert_eq!(g.record(4, "a", false), Some(5004));
        assert_eq!(g.blocked_until(10, "a"), Some(5004));
        assert_eq!(g.blocked_until(10, "b"), None);
        assert_eq!(g.blocked_until(5004, "a"), None);
    }
}
