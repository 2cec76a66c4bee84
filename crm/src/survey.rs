//! Post-call satisfaction surveys, as the IVR reports them (the binary maps the IVR's
//! `SurveyResult` onto [`SurveyAnswer`]).
//!
//! Satisfaction rate = (满意 + 基本满意) / rated calls; calls without a valid key or where the
//! caller hung up are stored but not rated.

use hotline_core::UnixMillis;
use serde::{Deserialize, Serialize};

use crate::error::{CrmError, CrmResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SurveyRating {
    /// 1 满意
    Satisfied,
    /// 2 基本满意
    FairlySatisfied,
    /// 3 不满意
    Dissatisfied,
    /// retries used up without a valid key
    NoAnswer,
    /// the caller hung up before rating
    HungUp,
}

impl SurveyRating {
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyRating::Satisfied => "satisfied",
            SurveyRating::FairlySatisfied => "fairly_satisfied",
            SurveyRating::Dissatisfied => "dissatisfied",
            SurveyRating::NoAnswer => "no_answer",
            SurveyRating::HungUp => "hung_up",
        }
    }
    pub fn parse(s: &str) -> CrmResult<Self> {
        [
            SurveyRating::Satisfied,
            SurveyRating::FairlySatisfied,
            SurveyRating::Dissatisfied,
            SurveyRating::NoAnswer,
            SurveyRating::HungUp,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| CrmError::Invalid(format!("未知的满意度结果: {s}")))
    }
    /// Whether the caller gave a rating at all.
    pub fn is_rated(self) -> bool {
        matches!(
            self,
            SurveyRating::Satisfied | SurveyRating::FairlySatisfied | SurveyRating::Dissatisfied
        )
    }
    /// Whether the rating counts as satisfied.
    pub fn is_satisfied(self) -> bool {
        matches!(
            self,
            SurveyRating::Satisfied | SurveyRating::FairlySatisfied
        )
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            SurveyRating::Satisfied => "满意",
            SurveyRating::FairlySatisfied => "基本满意",
            SurveyRating::Dissatisfied => "不满意",
            SurveyRating::NoAnswer => "未评价",
            SurveyRating::HungUp => "挂机未评价",
        }
    }
}

/// One survey result per call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyAnswer {
    pub call_id: String,
    pub agent: String,
    pub queue: String,
    pub rating: SurveyRating,
    pub at: UnixMillis,
}

/// Counts for a satisfaction rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Satisfaction {
    pub rated: u64,
    pub satisfied: u64,
}

impl Satisfaction {
    pub fn add(&mut self, r: SurveyRating) {
        if r.is_rated() {
            self.rated += 1;
            if r.is_satisfied() {
                self.satisfied += 1;
            }
        }
    }
    /// `None` when nobody rated.
    pub fn rate(&self) -> Option<f64> {
        (self.rated > 0).then(|| self.satisfied as f64 / self.rated as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfaction_counts_only_rated_calls() {
        let mut s = Satisfaction::default();
        assert_eq!(s.rate(), None);
        for r in [
            SurveyRating::Satisfied,
            SurveyRating::FairlySatisfied,
            SurveyRating::Dissatisfied,
            SurveyRating::Dissatisfied,
            SurveyRating::HungUp,
            SurveyRating::NoAnswer,
        ] {
            s.add(r);
            assert_eq!(SurveyRating::parse(r.as_str()).unwrap(), r);
        }
        assert_eq!((s.rated, s.satisfied), (4, 2));
        assert_eq!(s.rate(), Some(0.5));
    }
}
