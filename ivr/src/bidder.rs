//! Bidder self-service: the status model the IVR speaks, the port it is looked up through,
//! and this month's auction calendar.
//!
//! DESIGN.md wants ports in `hotline-core`; this one lives here until the integrations issue
//! moves it (the IVR is its only consumer so far). The engine never calls the port itself:
//! [`crate::IvrSession`] emits `Command::Lookup` and takes the answer back through
//! `handle_lookup_result`, so the binary may answer from a table, a database or a network
//! service without blocking the engine. [`BidderTable`] is the in-memory implementation the
//! issue asks for until real bidder data arrives (filled through a CLI/API).

use std::collections::HashMap;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::civil::{Date, TimeOfDay};
use crate::prompts::default_text;
use crate::say::{Utterance, say_month_day, say_time};

/// Everything a bidder may ask about one application code (申请编码).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidderStatus {
    pub application_code: String,
    pub deposit: DepositStatus,
    pub activation: ActivationStatus,
    pub result: AuctionResult,
    pub payment: PaymentStatus,
    pub refund: RefundStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DepositStatus {
    Received { on: Date },
    NotReceived,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationStatus {
    Activated,
    NotActivated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuctionResult {
    /// Bidding has not happened or results are not published.
    Pending,
    Won,
    Lost,
    /// Did not bid (e.g. never activated).
    Absent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Only winners pay.
    NotApplicable,
    Due {
        by: Date,
    },
    Paid {
        on: Date,
    },
    /// Did not pay in time: the deposit is forfeit (违约金).
    Defaulted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RefundStatus {
    NotApplicable,
    Pending,
    Done { on: Date },
    Failed { reason: RefundFailure },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundFailure {
    AccountClosed,
    NameMismatch,
    Other,
}

/// Why a lookup could not answer (distinct from "no such bidder", which is `Ok(None)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("bidder directory unavailable: {0}")]
    Unavailable(String),
}

/// The port: application code + last four digits of the registered mobile → status.
/// `Ok(None)` means the pair does not match (wrong code or wrong digits); implementations
/// must not reveal which of the two was wrong.
pub trait BidderDirectory: Send + Sync + std::fmt::Debug {
    fn lookup(
        &self,
        application_code: &str,
        mobile_last4: &str,
    ) -> Result<Option<BidderStatus>, LookupError>;
}

/// An in-memory directory keyed by application code, holding the full mobile number.
#[derive(Debug, Default)]
pub struct BidderTable {
    rows: RwLock<HashMap<String, (String, BidderStatus)>>,
}

impl BidderTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces the record of `status.application_code`.
    pub fn upsert(&self, mobile: &str, status: BidderStatus) {
        let mut rows = self.rows.write().unwrap_or_else(|e| e.into_inner());
        rows.insert(
            status.application_code.clone(),
            (mobile.to_string(), status),
        );
    }

    /// The record of a code, for the API (no mobile check: the caller is staff).
    pub fn get(&self, application_code: &str) -> Option<BidderStatus> {
        let rows = self.rows.read().unwrap_or_else(|e| e.into_inner());
        rows.get(application_code).map(|(_, s)| s.clone())
    }

    pub fn remove(&self, application_code: &str) -> bool {
        let mut rows = self.rows.write().unwrap_or_else(|e| e.into_inner());
        rows.remove(application_code).is_some()
    }

    pub fn len(&self) -> usize {
        self.rows.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BidderDirectory for BidderTable {
    fn lookup(&self, code: &str, last4: &str) -> Result<Option<BidderStatus>, LookupError> {
        let rows = self.rows.read().unwrap_or_else(|e| e.into_inner());
        Ok(rows
            .get(code)
            .filter(|(mobile, _)| last4.len() == 4 && mobile.ends_with(last4))
            .map(|(_, s)| s.clone()))
    }
}

/// The phrases [`BidderStatus::utterance`] may play (besides Say fragments).
pub const STATUS_PROMPTS: &[&str] = &[
    "st/deposit_on",
    "st/arrived",
    "st/deposit_missing",
    "st/activated",
    "st/not_activated",
    "st/result_pending",
    "st/result_won",
    "st/result_lost",
    "st/result_absent",
    "st/pay_by",
    "st/pay_by_end",
    "st/paid",
    "st/defaulted",
    "st/refunded",
    "st/refund_pending",
    "st/refund_failed",
    "st/reason_account_closed",
    "st/reason_name_mismatch",
    "st/reason_other",
    "st/refund_action",
];

/// The phrases [`AuctionCalendar::utterance`] plays (besides Say fragments).
pub const CALENDAR_PROMPTS: &[&str] = &[
    "cal/intro",
    "cal/deposit",
    "cal/activation",
    "cal/bidding",
    "cal/payment",
];

fn phrase(u: &mut Utterance, name: &str) {
    u.push_phrase(name, &default_text(name));
}

impl BidderStatus {
    /// What the caller hears: deposit, activation, result, payment, refund — each only when
    /// it says something (no "refund not applicable" noise).
    pub fn utterance(&self) -> Utterance {
        let mut u = Utterance::new();
        match self.deposit {
            DepositStatus::Received { on } => {
                phrase(&mut u, "st/deposit_on");
                u.extend(say_month_day(on));
                phrase(&mut u, "st/arrived");
            }
            DepositStatus::NotReceived => phrase(&mut u, "st/deposit_missing"),
        }
        match self.activation {
            ActivationStatus::Activated => phrase(&mut u, "st/activated"),
            ActivationStatus::NotActivated => phrase(&mut u, "st/not_activated"),
        }
        match self.result {
            AuctionResult::Pending => phrase(&mut u, "st/result_pending"),
            AuctionResult::Won => phrase(&mut u, "st/result_won"),
            AuctionResult::Lost => phrase(&mut u, "st/result_lost"),
            AuctionResult::Absent => phrase(&mut u, "st/result_absent"),
        }
        match self.payment {
            PaymentStatus::NotApplicable => {}
            PaymentStatus::Due { by } => {
                phrase(&mut u, "st/pay_by");
                u.extend(say_month_day(by));
                phrase(&mut u, "st/pay_by_end");
            }
            PaymentStatus::Paid { .. } => phrase(&mut u, "st/paid"),
            PaymentStatus::Defaulted => phrase(&mut u, "st/defaulted"),
        }
        match self.refund {
            RefundStatus::NotApplicable => {}
            RefundStatus::Pending => phrase(&mut u, "st/refund_pending"),
            RefundStatus::Done { on } => {
                phrase(&mut u, "st/deposit_on");
                u.extend(say_month_day(on));
                phrase(&mut u, "st/refunded");
            }
            RefundStatus::Failed { reason } => {
                phrase(&mut u, "st/refund_failed");
                phrase(
                    &mut u,
                    match reason {
                        RefundFailure::AccountClosed => "st/reason_account_closed",
                        RefundFailure::NameMismatch => "st/reason_name_mismatch",
                        RefundFailure::Other => "st/reason_other",
                    },
                );
                phrase(&mut u, "st/refund_action");
            }
        }
        u
    }
}

/// This month's auction calendar as approved and announced (data, not flow: the binary
/// loads it and hands it to each session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionCalendar {
    pub deposit_from: Date,
    pub deposit_to: Date,
    /// The deposit must arrive by this time of the last day (17:00 in the announcements).
    pub deposit_deadline: TimeOfDay,
    pub activation_from: Date,
    pub activation_to: Date,
    pub bidding_day: Date,
    pub bidding_from: TimeOfDay,
    pub bidding_to: TimeOfDay,
    pub payment_to: Date,
}

impl AuctionCalendar {
    /// 本月竞价日程安排如下。保证金缴纳时间为三月一日至三月十日十七点整。…
    pub fn utterance(&self) -> Utterance {
        let mut u = Utterance::new();
        phrase(&mut u, "cal/intro");
        phrase(&mut u, "cal/deposit");
        u.extend(say_month_day(self.deposit_from));
        u.push("word/zhi");
        u.extend(say_month_day(self.deposit_to));
        u.extend(say_time(self.deposit_deadline));
        phrase(&mut u, "cal/activation");
        u.extend(say_month_day(self.activation_from));
        u.push("word/zhi");
        u.extend(say_month_day(self.activation_to));
        phrase(&mut u, "cal/bidding");
        u.extend(say_month_day(self.bidding_day));
        u.extend(say_time(self.bidding_from));
        u.push("word/zhi");
        u.extend(say_time(self.bidding_to));
        phrase(&mut u, "cal/payment");
        u.extend(say_month_day(self.payment_to));
        u
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    pub(crate) fn sample_status() -> BidderStatus {
        BidderStatus {
            application_code: "1234567890123".into(),
            deposit: DepositStatus::Received {
                on: d("2026-03-05"),
            },
            activation: ActivationStatus::Activated,
            result: AuctionResult::Lost,
            payment: PaymentStatus::NotApplicable,
            refund: RefundStatus::Failed {
                reason: RefundFailure::AccountClosed,
            },
        }
    }

    pub(crate) fn sample_calendar() -> AuctionCalendar {
        AuctionCalendar {
            deposit_from: d("2026-03-01"),
            deposit_to: d("2026-03-10"),
            deposit_deadline: "17:00".parse().unwrap(),
            activation_from: d("2026-03-01"),
            activation_to: d("2026-03-25"),
            bidding_day: d("2026-03-25"),
            bidding_from: "09:00".parse().unwrap(),
            bidding_to: "15:00".parse().unwrap(),
            payment_to: d("2026-03-30"),
        }
    }

    #[test]
    fn table_matches_code_and_last_four() {
        let t = BidderTable::new();
        t.upsert("13800001234", sample_status());
        assert_eq!(t.len(), 1);
        assert!(t.lookup("1234567890123", "1234").unwrap().is_some());
        assert!(t.lookup("1234567890123", "4321").unwrap().is_none());
        assert!(t.lookup("1234567890123", "234").unwrap().is_none());
        assert!(t.lookup("999", "1234").unwrap().is_none());
        assert_eq!(t.get("1234567890123"), Some(sample_status()));
        assert!(t.remove("1234567890123"));
        assert!(t.is_empty());
    }

    #[test]
    fn status_is_spoken() {
        let table: Vec<(BidderStatus, &str)> = vec![
            (
                sample_status(),
                "您的保证金已于三月五日到账。您的竞价资格已激活。本期竞价，您未竞得指标。\
                 您的保证金退还失败，原因是缴款账户已注销。",
            ),
            (
                BidderStatus {
                    deposit: DepositStatus::NotReceived,
                    activation: ActivationStatus::NotActivated,
                    result: AuctionResult::Pending,
                    refund: RefundStatus::NotApplicable,
                    ..sample_status()
                },
                "系统尚未收到您的保证金。您的竞价资格尚未激活。本期竞价结果尚未公布。",
            ),
            (
                BidderStatus {
                    result: AuctionResult::Won,
                    payment: PaymentStatus::Due {
                        by: d("2026-03-28"),
                    },
                    refund: RefundStatus::NotApplicable,
                    ..sample_status()
                },
                "您的保证金已于三月五日到账。您的竞价资格已激活。本期竞价，您已成功竞得指标。\
                 请于三月二十八日前通过税务部门缴纳成交价款。",
            ),
            (
                BidderStatus {
                    result: AuctionResult::Won,
                    payment: PaymentStatus::Paid {
                        on: d("2026-03-27"),
                    },
                    refund: RefundStatus::Done {
                        on: d("2026-04-02"),
                    },
                    ..sample_status()
                },
                "您的保证金已于三月五日到账。您的竞价资格已激活。本期竞价，您已成功竞得指标。\
                 您已缴纳成交价款。您的保证金已于四月二日退还至原缴款账户。",
            ),
        ];
        for (status, want) in table {
            let text = status.utterance().text;
            assert!(text.starts_with(want), "{text}\n  !starts_with\n{want}");
        }
        let failed = sample_status().utterance();
        assert!(failed.text.ends_with("到服务窗口办理重新退款。"));
        assert_eq!(failed.prompts[0], "st/deposit_on");
        assert_eq!(
            failed.prompts[1..5],
            ["num/3", "word/yue", "num/5", "word/ri"]
        );
    }

    #[test]
    fn calendar_is_spoken() {
        let u = sample_calendar().utterance();
        assert_eq!(
            u.text,
            "本月竞价日程安排如下。保证金缴纳时间为三月一日至三月十日十七点整\
             竞价资格激活时间为三月一日至三月二十五日网上竞价时间为三月二十五日九点整至十五点整\
             竞得人缴纳成交价款截止日期为三月三十日"
        );
        let catalog = crate::prompts::PromptCatalog::default_zh_cn();
        for p in &u.prompts {
            assert!(catalog.contains(p), "{p}");
        }
    }
}
