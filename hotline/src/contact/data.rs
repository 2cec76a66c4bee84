//! Auction data as the IVR speaks it: the integrations crate's records and calendar mapped
//! to the `ivr` crate's model (the two crates do not know each other; the binary joins them).

use hotline_integrations::bidders::{AuctionResult, DepositStatus, PaymentStatus, RefundStatus};
use hotline_integrations::calendar::AuctionCalendar as StoredCalendar;
use hotline_integrations::lookup::StatusSummary;
use hotline_ivr::bidder as ivr;
use hotline_ivr::civil::{Date, TimeOfDay};

/// `YYYY-MM-DD` (a time after a space is ignored).
pub fn date(s: &str) -> Option<Date> {
    let d = s.trim().split([' ', 'T']).next()?;
    let mut it = d.split('-');
    let y = it.next()?.parse().ok()?;
    let m = it.next()?.parse().ok()?;
    let day = it.next()?.parse().ok()?;
    Date::new(y, m, day)
}

/// `HH:MM` (seconds ignored).
pub fn time(s: &str) -> Option<TimeOfDay> {
    let mut it = s.trim().split(':');
    TimeOfDay::new(it.next()?.parse().ok()?, it.next()?.parse().ok()?)
}

/// The Beijing wall-clock time of an instant (UTC+8, no daylight saving).
fn beijing_time(at_ms: i64) -> Option<TimeOfDay> {
    let secs = (at_ms.div_euclid(1000) + 8 * 3600).rem_euclid(86_400);
    TimeOfDay::new(
        u8::try_from(secs / 3600).ok()?,
        u8::try_from(secs % 3600 / 60).ok()?,
    )
}

/// This month's calendar for the IVR (menu 1), when every date in it is readable.
pub fn calendar(c: &StoredCalendar) -> Option<ivr::AuctionCalendar> {
    Some(ivr::AuctionCalendar {
        deposit_from: date(&c.deposit_start)?,
        deposit_to: date(&c.deposit_end)?,
        deposit_deadline: beijing_time(c.deposit_deadline_at)?,
        activation_from: date(&c.activation_start)?,
        activation_to: date(&c.activation_end)?,
        bidding_day: date(&c.bidding_date)?,
        bidding_from: time(&c.bidding_start)?,
        bidding_to: time(&c.bidding_end)?,
        payment_to: date(&c.payment_end)?,
    })
}

/// A bidder's status as the IVR reads it out. `payment_to` is the period's payment deadline
/// (from the calendar), which the record itself does not carry.
pub fn status(s: &StatusSummary, payment_to: Option<Date>) -> ivr::BidderStatus {
    let deposit = match (s.deposit_status, date(&s.deposit_date)) {
        (DepositStatus::Unpaid, _) | (_, None) => ivr::DepositStatus::NotReceived,
        (_, Some(on)) => ivr::DepositStatus::Received { on },
    };
    let result = match s.result {
        AuctionResult::Pending => ivr::AuctionResult::Pending,
        AuctionResult::Won => ivr::AuctionResult::Won,
        AuctionResult::Lost => ivr::AuctionResult::Lost,
    };
    let payment = match (s.payment_status, payment_to) {
        (PaymentStatus::None, _) => ivr::PaymentStatus::NotApplicable,
        (PaymentStatus::Unpaid, Some(by)) => ivr::PaymentStatus::Due { by },
        (PaymentStatus::Unpaid, None) => ivr::PaymentStatus::NotApplicable,
        // The record has no payment date; the spoken answer ("已缴款") does not use it.
        (PaymentStatus::Paid, _) => match payment_to.or(date(&s.deposit_date)) {
            Some(on) => ivr::PaymentStatus::Paid { on },
            None => ivr::PaymentStatus::NotApplicable,
        },
        (PaymentStatus::Defaulted, _) => ivr::PaymentStatus::Defaulted,
    };
    let refund = match s.refund_status {
        RefundStatus::None => ivr::RefundStatus::NotApplicable,
        RefundStatus::Pending => ivr::RefundStatus::Pending,
        RefundStatus::Refunded => match date(&s.refund_date) {
            Some(on) => ivr::RefundStatus::Done { on },
            None => ivr::RefundStatus::Pending,
        },
        RefundStatus::Failed => ivr::RefundStatus::Failed {
            reason: if s.refund_failure.contains("销户") || s.refund_failure.contains("注销") {
                ivr::RefundFailure::AccountClosed
            } else if s.refund_failure.contains("户名") || s.refund_failure.contains("姓名") {
                ivr::RefundFailure::NameMismatch
            } else {
                ivr::RefundFailure::Other
            },
        },
    };
    ivr::BidderStatus {
        application_code: s.application_code.clone(),
        deposit,
        activation: if s.activated {
            ivr::ActivationStatus::Activated
        } else {
            ivr::ActivationStatus::NotActivated
        },
        result,
        payment,
        refund,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_parse_strictly() {
        assert_eq!(date("2026-03-10"), Date::new(2026, 3, 10));
        assert_eq!(date("2026-03-10 17:00"), Date::new(2026, 3, 10));
        assert_eq!(date("2026-02-30"), None);
        assert_eq!(date(""), None);
        assert_eq!(time("17:00"), TimeOfDay::new(17, 0));
        assert_eq!(time("25:00"), None);
        // 2026-03-10 09:00 UTC is 17:00 in Beijing.
        assert_eq!(beijing_time(1_773_133_200_000), TimeOfDay::new(17, 0));
    }
}
