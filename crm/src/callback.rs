//! Callbacks (回访): where tasks come from, when they may be called, and what happens after
//! each attempt. Sans-IO: every function takes `now`; the store persists the result and
//! lists the tasks due (`CrmStore::due_callbacks(now)`).

use hotline_core::{Rng, UnixMillis};
use serde::{Deserialize, Serialize};

use crate::calendar::{MS_PER_DAY, MS_PER_MIN, ms_of_local_day, offset_ms};
use crate::error::{CrmError, CrmResult};

/// Why a callback task exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackSource {
    /// The caller asked for a callback in the queue (key press or max wait).
    QueueRequest,
    /// A request left outside service hours.
    AfterHours,
    /// The citizen is told the outcome of a complaint.
    ComplaintClosure,
    /// A random sample of answered calls (satisfaction follow-up).
    Sample,
    /// Created by hand from a ticket.
    Ticket,
}

impl CallbackSource {
    pub const ALL: [CallbackSource; 5] = [
        CallbackSource::QueueRequest,
        CallbackSource::AfterHours,
        CallbackSource::ComplaintClosure,
        CallbackSource::Sample,
        CallbackSource::Ticket,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackSource::QueueRequest => "queue_request",
            CallbackSource::AfterHours => "after_hours",
            CallbackSource::ComplaintClosure => "complaint_closure",
            CallbackSource::Sample => "sample",
            CallbackSource::Ticket => "ticket",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            CallbackSource::QueueRequest => "排队回呼请求",
            CallbackSource::AfterHours => "非工作时间留言",
            CallbackSource::ComplaintClosure => "投诉办结回访",
            CallbackSource::Sample => "满意度抽样回访",
            CallbackSource::Ticket => "工单回访",
        }
    }
}

impl std::str::FromStr for CallbackSource {
    type Err = CrmError;
    fn from_str(s: &str) -> CrmResult<Self> {
        CallbackSource::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| CrmError::Invalid(format!("未知的回访来源: {s}")))
    }
}

/// The outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackOutcome {
    /// 已联系上
    Reached,
    /// 无人接听
    NoAnswer,
    /// 号码错误
    WrongNumber,
}

impl CallbackOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackOutcome::Reached => "reached",
            CallbackOutcome::NoAnswer => "no_answer",
            CallbackOutcome::WrongNumber => "wrong_number",
        }
    }
    pub fn parse(s: &str) -> CrmResult<Self> {
        match s {
            "reached" => Ok(CallbackOutcome::Reached),
            "no_answer" => Ok(CallbackOutcome::NoAnswer),
            "wrong_number" => Ok(CallbackOutcome::WrongNumber),
            _ => Err(CrmError::Invalid(format!("未知的回访结果: {s}"))),
        }
    }
}

/// pending → done (reached) | failed (wrong number, or attempts used up) | cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackStatus {
    Pending,
    Done,
    Failed,
    Cancelled,
}

impl CallbackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackStatus::Pending => "pending",
            CallbackStatus::Done => "done",
            CallbackStatus::Failed => "failed",
            CallbackStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> CrmResult<Self> {
        match s {
            "pending" => Ok(CallbackStatus::Pending),
            "done" => Ok(CallbackStatus::Done),
            "failed" => Ok(CallbackStatus::Failed),
            "cancelled" => Ok(CallbackStatus::Cancelled),
            _ => Err(CrmError::Corrupt(format!("callback status {s}"))),
        }
    }
}

/// Service hours (local time) and the retry rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackPolicy {
    /// Minutes after local midnight when calling may start (08:00 = 480).
    pub open_minute: u32,
    /// Minutes after local midnight when calling must stop (20:00 = 1200).
    pub close_minute: u32,
    /// Minutes east of UTC (+08:00 = 480).
    pub utc_offset_minutes: i32,
    /// Attempts in total before a task fails.
    pub max_attempts: u32,
    /// Wait before the 2nd, 3rd, … attempt, in minutes; the last value repeats.
    pub retry_spacing_minutes: Vec<u32>,
    /// Share of answered calls sampled for a satisfaction follow-up, in per mille.
    pub sample_per_mille: u32,
}

impl Default for CallbackPolicy {
    fn default() -> Self {
        Self {
            open_minute: 8 * 60,
            close_minute: 20 * 60,
            utc_offset_minutes: crate::calendar::CST_OFFSET_MIN,
            max_attempts: 3,
            retry_spacing_minutes: vec![30, 120],
            sample_per_mille: 50,
        }
    }
}

impl CallbackPolicy {
    pub fn validate(&self) -> CrmResult<()> {
        if self.open_minute >= self.close_minute || self.close_minute > 24 * 60 {
            return Err(CrmError::Invalid("回访时段无效".into()));
        }
        if self.max_attempts == 0 || self.retry_spacing_minutes.is_empty() {
            return Err(CrmError::Invalid("回访重试设置无效".into()));
        }
        Ok(())
    }

    /// Whether `t` lies inside service hours.
    pub fn in_service_hours(&self, t: UnixMillis) -> bool {
        let m = ms_of_local_day(t, self.utc_offset_minutes);
        m >= i64::from(self.open_minute) * MS_PER_MIN
            && m < i64::from(self.close_minute) * MS_PER_MIN
    }

    /// The earliest instant at or after `t` inside service hours.
    pub fn next_service_time(&self, t: UnixMillis) -> UnixMillis {
        if self.in_service_hours(t) {
            return t;
        }
        let m = ms_of_local_day(t, self.utc_offset_minutes);
        let open = i64::from(self.open_minute) * MS_PER_MIN;
        let day_start = t - m;
        if m < open {
            day_start + open
        } else {
            day_start + MS_PER_DAY + open
        }
    }

    /// Whether a request made at `t` counts as after hours.
    pub fn is_after_hours(&self, t: UnixMillis) -> bool {
        !self.in_service_hours(t)
    }

    fn spacing_ms(&self, attempts_done: u32) -> i64 {
        let i =
            (attempts_done.saturating_sub(1) as usize).min(self.retry_spacing_minutes.len() - 1);
        i64::from(self.retry_spacing_minutes[i]) * MS_PER_MIN
    }

    /// Whether an answered call is picked for a satisfaction follow-up.
    pub fn sample(&self, rng: &dyn Rng) -> bool {
        let mut b = [0u8; 4];
        rng.fill(&mut b);
        u32::from_le_bytes(b) % 1000 < self.sample_per_mille
    }

    /// Offset used for local time, in ms.
    pub fn offset_ms(&self) -> i64 {
        offset_ms(self.utc_offset_minutes)
    }
}

/// A new task, as the binary maps it from a queue callback request, an after-hours
/// message, a complaint closure or a sampled answered call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCallback {
    pub source: CallbackSource,
    pub phone: String,
    pub call_id: Option<String>,
    pub ticket_id: Option<String>,
    pub queue: Option<String>,
    pub note: String,
    /// When the request was made.
    pub requested_at: UnixMillis,
}

/// The scheduling state of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub status: CallbackStatus,
    pub attempts: u32,
    pub next_attempt_at: UnixMillis,
}

impl Schedule {
    /// A fresh task: first attempt at the next moment inside service hours.
    pub fn first(policy: &CallbackPolicy, requested_at: UnixMillis) -> Self {
        Self {
            status: CallbackStatus::Pending,
            attempts: 0,
            next_attempt_at: policy.next_service_time(requested_at),
        }
    }

    /// Applies the outcome of an attempt made at `now`.
    pub fn after_attempt(
        self,
        policy: &CallbackPolicy,
        now: UnixMillis,
        outcome: CallbackOutcome,
    ) -> CrmResult<Self> {
        if self.status != CallbackStatus::Pending {
            return Err(CrmError::Invalid("该回访任务已结束".into()));
        }
        let attempts = self.attempts + 1;
        let (status, next) = match outcome {
            CallbackOutcome::Reached => (CallbackStatus::Done, self.next_attempt_at),
            CallbackOutcome::WrongNumber => (CallbackStatus::Failed, self.next_attempt_at),
            CallbackOutcome::NoAnswer if attempts >= policy.max_attempts => {
                (CallbackStatus::Failed, self.next_attempt_at)
            }
            CallbackOutcome::NoAnswer => (
                CallbackStatus::Pending,
                policy.next_service_time(now + policy.spacing_ms(attempts)),
            ),
        };
        Ok(Self {
            status,
            attempts,
            next_attempt_at: next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{CST_OFFSET_MIN, format_local, from_local};
    use hotline_core::id::SeededRng;

    fn at(h: u32, m: u32) -> UnixMillis {
        from_local(2026, 11, 29, h, m, CST_OFFSET_MIN)
    }

    #[test]
    fn service_hours_are_local_eight_to_twenty() {
        let p = CallbackPolicy::default();
        p.validate().unwrap();
        assert!(!p.in_service_hours(at(7, 59)));
        assert!(p.in_service_hours(at(8, 0)));
        assert!(p.in_service_hours(at(19, 59)));
        assert!(!p.in_service_hours(at(20, 0)));
        assert_eq!(p.next_service_time(at(6, 30)), at(8, 0));
        assert_eq!(p.next_service_time(at(12, 0)), at(12, 0));
        assert_eq!(
            format_local(p.next_service_time(at(21, 15)), CST_OFFSET_MIN),
            "2026-11-30 08:00:00"
        );
        assert!(p.is_after_hours(at(23, 0)));
        let bad = CallbackPolicy {
            open_minute: 600,
            close_minute: 500,
            ..CallbackPolicy::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn retries_are_spaced_and_bounded() {
        let p = CallbackPolicy::default(); // 3 attempts, 30 then 120 minutes
        let s = Schedule::first(&p, at(22, 0));
        assert_eq!(
            format_local(s.next_attempt_at, CST_OFFSET_MIN),
            "2026-11-30 08:00:00",
            "an after-hours request is called the next morning"
        );
        let t1 = s.next_attempt_at;
        let s = s.after_attempt(&p, t1, CallbackOutcome::NoAnswer).unwrap();
        assert_eq!((s.status, s.attempts), (CallbackStatus::Pending, 1));
        assert_eq!(s.next_attempt_at, t1 + 30 * MS_PER_MIN);
        let t2 = s.next_attempt_at;
        let s = s.after_attempt(&p, t2, CallbackOutcome::NoAnswer).unwrap();
        assert_eq!(s.next_attempt_at, t2 + 120 * MS_PER_MIN);
        let s = s
            .after_attempt(&p, s.next_attempt_at, CallbackOutcome::NoAnswer)
            .unwrap();
        assert_eq!((s.status, s.attempts), (CallbackStatus::Failed, 3));
        assert!(
            s.after_attempt(&p, t2, CallbackOutcome::Reached).is_err(),
            "a finished task takes no more attempts"
        );
    }

    #[test]
    fn a_retry_that_would_fall_after_hours_moves_to_the_next_morning() {
        let p = CallbackPolicy::default();
        let s = Schedule::first(&p, at(19, 50));
        let s = s
            .after_attempt(&p, at(19, 50), CallbackOutcome::NoAnswer)
            .unwrap();
        assert_eq!(
            format_local(s.next_attempt_at, CST_OFFSET_MIN),
            "2026-11-30 08:00:00"
        );
    }

    #[test]
    fn reached_and_wrong_number_end_the_task() {
        let p = CallbackPolicy::default();
        let s = Schedule::first(&p, at(9, 0));
        assert_eq!(
            s.after_attempt(&p, at(9, 1), CallbackOutcome::Reached)
                .unwrap()
                .status,
            CallbackStatus::Done
        );
        assert_eq!(
            s.after_attempt(&p, at(9, 1), CallbackOutcome::WrongNumber)
                .unwrap()
                .status,
            CallbackStatus::Failed
        );
    }

    #[test]
    fn sampling_follows_the_rate() {
        let rng = SeededRng::new(7);
        let p = CallbackPolicy {
            sample_per_mille: 100,
            ..CallbackPolicy::default()
        };
        let n = (0..10_000).filter(|_| p.sample(&rng)).count();
        assert!((800..1200).contains(&n), "{n}");
        let none = CallbackPolicy {
            sample_per_mille: 0,
            ..CallbackPolicy::default()
        };
        assert!(!(0..100).any(|_| none.sample(&rng)));
    }
}
