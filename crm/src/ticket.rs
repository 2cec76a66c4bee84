//! Tickets: their kinds, the status state machine, and SLA due dates.
//!
//! Statuses move new → assigned → in progress → awaiting callback → resolved → closed, with a
//! few sanctioned detours (back to work from awaiting callback, reopen from resolved). The
//! table [`TicketStatus::can_move_to`] is the whole state machine; the tests enumerate every
//! pair.

use hotline_core::UnixMillis;
use serde::{Deserialize, Serialize};

use crate::calendar::MS_PER_HOUR;
use crate::error::{CrmError, CrmResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketKind {
    /// 咨询
    Inquiry,
    /// 投诉
    Complaint,
    /// 建议
    Suggestion,
    /// 退回成交价款申请 (during the payment window)
    RefundRequest,
    /// 12345 工单
    WorkOrder12345,
    /// 回访
    Callback,
    /// 无账户社会团体授权缴纳保证金
    DepositAuthorization,
}

impl TicketKind {
    pub const ALL: [TicketKind; 7] = [
        TicketKind::Inquiry,
        TicketKind::Complaint,
        TicketKind::Suggestion,
        TicketKind::RefundRequest,
        TicketKind::WorkOrder12345,
        TicketKind::Callback,
        TicketKind::DepositAuthorization,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketKind::Inquiry => "inquiry",
            TicketKind::Complaint => "complaint",
            TicketKind::Suggestion => "suggestion",
            TicketKind::RefundRequest => "refund_request",
            TicketKind::WorkOrder12345 => "work_order_12345",
            TicketKind::Callback => "callback",
            TicketKind::DepositAuthorization => "deposit_authorization",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            TicketKind::Inquiry => "咨询",
            TicketKind::Complaint => "投诉",
            TicketKind::Suggestion => "建议",
            TicketKind::RefundRequest => "退回成交价款申请",
            TicketKind::WorkOrder12345 => "12345工单",
            TicketKind::Callback => "回访",
            TicketKind::DepositAuthorization => "无账户社会团体授权缴纳保证金",
        }
    }
}

impl std::str::FromStr for TicketKind {
    type Err = CrmError;
    fn from_str(s: &str) -> CrmResult<Self> {
        TicketKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| CrmError::Invalid(format!("未知的工单类型: {s}")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    New,
    Assigned,
    InProgress,
    AwaitingCallback,
    Resolved,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 6] = [
        TicketStatus::New,
        TicketStatus::Assigned,
        TicketStatus::InProgress,
        TicketStatus::AwaitingCallback,
        TicketStatus::Resolved,
        TicketStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::New => "new",
            TicketStatus::Assigned => "assigned",
            TicketStatus::InProgress => "in_progress",
            TicketStatus::AwaitingCallback => "awaiting_callback",
            TicketStatus::Resolved => "resolved",
            TicketStatus::Closed => "closed",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            TicketStatus::New => "新建",
            TicketStatus::Assigned => "已分派",
            TicketStatus::InProgress => "处理中",
            TicketStatus::AwaitingCallback => "待回访",
            TicketStatus::Resolved => "已解决",
            TicketStatus::Closed => "已关闭",
        }
    }

    /// The state machine. Everything not listed is refused.
    pub fn can_move_to(self, to: TicketStatus) -> bool {
        use TicketStatus::*;
        matches!(
            (self, to),
            (New, Assigned)
                | (Assigned, InProgress)
                | (InProgress, AwaitingCallback)
                | (InProgress, Resolved)
                | (AwaitingCallback, InProgress)
                | (AwaitingCallback, Resolved)
                | (Resolved, Closed)
                // reopen: the citizen was not satisfied after all
                | (Resolved, InProgress)
        )
    }

    /// Checks one transition.
    pub fn transition(self, to: TicketStatus) -> CrmResult<TicketStatus> {
        if self.can_move_to(to) {
            Ok(to)
        } else {
            Err(CrmError::InvalidTransition { from: self, to })
        }
    }

    pub fn is_open(self) -> bool {
        !matches!(self, TicketStatus::Resolved | TicketStatus::Closed)
    }
}

impl std::fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TicketStatus {
    type Err = CrmError;
    fn from_str(s: &str) -> CrmResult<Self> {
        TicketStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| CrmError::Invalid(format!("未知的工单状态: {s}")))
    }
}

/// How long each kind of ticket may stay open, in hours. 12345 work orders carry their own
/// deadline from the 12345 platform; the value here is used only when one comes without.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaPolicy {
    pub inquiry_hours: u32,
    pub complaint_hours: u32,
    pub suggestion_hours: u32,
    pub refund_request_hours: u32,
    pub work_order_12345_hours: u32,
    pub callback_hours: u32,
    pub deposit_authorization_hours: u32,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        Self {
            inquiry_hours: 24,
            complaint_hours: 72,
            suggestion_hours: 120,
            // the price must be refunded within the payment window (3 working days)
            refund_request_hours: 72,
            work_order_12345_hours: 48,
            callback_hours: 24,
            deposit_authorization_hours: 48,
        }
    }
}

impl SlaPolicy {
    pub fn hours(&self, kind: TicketKind) -> u32 {
        match kind {
            TicketKind::Inquiry => self.inquiry_hours,
            TicketKind::Complaint => self.complaint_hours,
            TicketKind::Suggestion => self.suggestion_hours,
            TicketKind::RefundRequest => self.refund_request_hours,
            TicketKind::WorkOrder12345 => self.work_order_12345_hours,
            TicketKind::Callback => self.callback_hours,
            TicketKind::DepositAuthorization => self.deposit_authorization_hours,
        }
    }

    /// The due date of a ticket created at `created_at`. A 12345 work order's own deadline
    /// wins; other kinds ignore `external_due`.
    pub fn due_at(
        &self,
        kind: TicketKind,
        created_at: UnixMillis,
        external_due: Option<UnixMillis>,
    ) -> UnixMillis {
        match (kind, external_due) {
            (TicketKind::WorkOrder12345, Some(due)) => due,
            _ => created_at + i64::from(self.hours(kind)) * MS_PER_HOUR,
        }
    }
}

/// The documents a deposit authorisation needs (seed 2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepositDocument {
    /// 登记证书
    RegistrationCertificate,
    /// 法定代表人身份证明
    LegalRepresentativeId,
    /// 授权委托书
    PowerOfAttorney,
    /// 无法正常缴纳的情况说明
    ExplanationLetter,
}

impl DepositDocument {
    pub const ALL: [DepositDocument; 4] = [
        DepositDocument::RegistrationCertificate,
        DepositDocument::LegalRepresentativeId,
        DepositDocument::PowerOfAttorney,
        DepositDocument::ExplanationLetter,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DepositDocument::RegistrationCertificate => "registration_certificate",
            DepositDocument::LegalRepresentativeId => "legal_representative_id",
            DepositDocument::PowerOfAttorney => "power_of_attorney",
            DepositDocument::ExplanationLetter => "explanation_letter",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            DepositDocument::RegistrationCertificate => "登记证书",
            DepositDocument::LegalRepresentativeId => "法定代表人身份证明",
            DepositDocument::PowerOfAttorney => "授权委托书",
            DepositDocument::ExplanationLetter => "无法正常缴纳保证金的情况说明",
        }
    }
}

impl std::str::FromStr for DepositDocument {
    type Err = CrmError;
    fn from_str(s: &str) -> CrmResult<Self> {
        DepositDocument::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| CrmError::Invalid(format!("未知的材料类型: {s}")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Approve,
    Reject,
}

impl ReviewDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewDecision::Approve => "approve",
            ReviewDecision::Reject => "reject",
        }
    }
}

/// A reviewer's checklist: which documents were checked and found in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositChecklist {
    pub checked: Vec<DepositDocument>,
}

/// Validates a review decision: approval needs every document both uploaded and ticked;
/// rejection needs a reason.
pub fn validate_deposit_review(
    uploaded: &[DepositDocument],
    checklist: &DepositChecklist,
    decision: ReviewDecision,
    reason: &str,
) -> CrmResult<()> {
    match decision {
        ReviewDecision::Approve => {
            let missing: Vec<&str> = DepositDocument::ALL
                .into_iter()
                .filter(|d| !uploaded.contains(d) || !checklist.checked.contains(d))
                .map(DepositDocument::label_zh)
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(CrmError::Invalid(format!(
                    "材料不全或未核验，不能通过: {}",
                    missing.join("、")
                )))
            }
        }
        ReviewDecision::Reject if reason.trim().is_empty() => {
            Err(CrmError::Invalid("驳回须填写原因".into()))
        }
        ReviewDecision::Reject => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TicketStatus::*;

    const ALLOWED: [(TicketStatus, TicketStatus); 8] = [
        (New, Assigned),
        (Assigned, InProgress),
        (InProgress, AwaitingCallback),
        (InProgress, Resolved),
        (AwaitingCallback, InProgress),
        (AwaitingCallback, Resolved),
        (Resolved, Closed),
        (Resolved, InProgress),
    ];

    #[test]
    fn every_allowed_transition() {
        for (from, to) in ALLOWED {
            assert_eq!(from.transition(to).unwrap(), to, "{from} -> {to}");
        }
    }

    #[test]
    fn every_refused_transition() {
        let mut refused = 0;
        for from in TicketStatus::ALL {
            for to in TicketStatus::ALL {
                if ALLOWED.contains(&(from, to)) {
                    continue;
                }
                let err = from.transition(to).unwrap_err();
                assert!(
                    matches!(err, CrmError::InvalidTransition { from: f, to: t } if f == from && t == to),
                    "{from} -> {to}"
                );
                assert!(err.message_zh().contains(from.label_zh()));
                refused += 1;
            }
        }
        // 36 pairs, 8 allowed; closed is terminal, no self-loops
        assert_eq!(refused, 28);
        assert!(TicketStatus::ALL.iter().all(|s| !Closed.can_move_to(*s)));
    }

    #[test]
    fn names_round_trip() {
        for k in TicketKind::ALL {
            assert_eq!(k.as_str().parse::<TicketKind>().unwrap(), k);
        }
        for s in TicketStatus::ALL {
            assert_eq!(s.as_str().parse::<TicketStatus>().unwrap(), s);
        }
        for d in DepositDocument::ALL {
            assert_eq!(d.as_str().parse::<DepositDocument>().unwrap(), d);
        }
        assert!("bogus".parse::<TicketKind>().is_err());
    }

    #[test]
    fn sla_due_dates() {
        let p = SlaPolicy {
            inquiry_hours: 2,
            ..SlaPolicy::default()
        };
        assert_eq!(
            p.due_at(TicketKind::Inquiry, 1_000, None),
            1_000 + 2 * MS_PER_HOUR
        );
        assert_eq!(
            p.due_at(TicketKind::Complaint, 0, Some(5)),
            72 * MS_PER_HOUR,
            "only 12345 orders bring their own deadline"
        );
        assert_eq!(p.due_at(TicketKind::WorkOrder12345, 0, Some(5)), 5);
        assert_eq!(
            p.due_at(TicketKind::WorkOrder12345, 0, None),
            48 * MS_PER_HOUR
        );
    }

    #[test]
    fn deposit_review_rules() {
        let all = DepositDocument::ALL.to_vec();
        let full = DepositChecklist {
            checked: all.clone(),
        };
        validate_deposit_review(&all, &full, ReviewDecision::Approve, "").unwrap();
        let err =
            validate_deposit_review(&all[..3], &full, ReviewDecision::Approve, "").unwrap_err();
        assert!(
            err.message_zh().contains("情况说明"),
            "{}",
            err.message_zh()
        );
        let partial = DepositChecklist {
            checked: all[1..].to_vec(),
        };
        assert!(validate_deposit_review(&all, &partial, ReviewDecision::Approve, "").is_err());
        assert!(validate_deposit_review(&[], &partial, ReviewDecision::Reject, " ").is_err());
        validate_deposit_review(&[], &partial, ReviewDecision::Reject, "缺少授权委托书").unwrap();
    }
}
