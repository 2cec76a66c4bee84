//! Statistics: the one query layer behind the API, the exports, the monthly report and the
//! wallboard. The store loads the records of a time range; [`compute`] turns them into rows
//! per hour/day/month and per total/agent/queue. Pure, so a synthetic day checks it.
//!
//! Definitions (all waits measured from entering the queue):
//! - offered: calls that entered a queue in the bucket;
//! - short abandoned: abandoned after waiting less than `short_abandon_ms` (not counted as
//!   abandoned, and left out of the answer-rate and service-level denominators);
//! - answer rate = answered / (offered − short abandoned);
//! - service level = answered within `service_level_ms` / (offered − short abandoned);
//! - ASA = Σ wait of answered calls / answered; AHT = Σ (talk + wrap-up) / answered;
//! - longest wait: over answered and abandoned calls;
//! - not-ready time: the part of each agent's not-ready periods inside the bucket;
//! - satisfaction rate: see [`crate::survey`]; complaints: complaints naming the agent;
//!   callbacks done: tasks finished as reached.
//!
//! Per agent, calls count for the agent who answered them (unanswered calls belong to no
//! agent); per queue, not-ready time, complaints and callbacks are not attributed.

use std::collections::BTreeMap;

use hotline_core::UnixMillis;
use serde::{Deserialize, Serialize};

use crate::calendar::{MS_PER_DAY, MS_PER_HOUR, YearMonth, from_local, local_day_start, to_local};
use crate::error::{CrmError, CrmResult};
use crate::survey::{Satisfaction, SurveyAnswer};

/// One queued call, as the binary maps it from the gateway's call record and the ACD events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallFact {
    pub call_id: String,
    pub queue: String,
    pub caller: String,
    pub agent: Option<String>,
    pub offered_at: UnixMillis,
    pub answered_at: Option<UnixMillis>,
    pub ended_at: Option<UnixMillis>,
    pub wrap_up_ms: i64,
    pub abandoned: bool,
    pub recording_id: Option<String>,
    /// The IVR menu path taken, e.g. `1>3` (for the timeline).
    pub ivr_path: String,
}

impl CallFact {
    /// Time in the queue (to answer, or to hanging up), if known.
    pub fn wait_ms(&self) -> Option<i64> {
        match (self.answered_at, self.ended_at) {
            (Some(a), _) => Some(a - self.offered_at),
            (None, Some(e)) if self.abandoned => Some(e - self.offered_at),
            _ => None,
        }
    }
    pub fn talk_ms(&self) -> i64 {
        match (self.answered_at, self.ended_at) {
            (Some(a), Some(e)) => (e - a).max(0),
            _ => 0,
        }
    }
}

/// A period in which an agent was not ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotReadyPeriod {
    pub agent: String,
    pub from_at: UnixMillis,
    pub to_at: UnixMillis,
    pub reason: String,
}

/// Something attributed to an agent at a time (a complaint, a finished callback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMark {
    pub agent: String,
    pub at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsParams {
    pub short_abandon_ms: i64,
    pub service_level_ms: i64,
    pub utc_offset_minutes: i32,
}

impl Default for StatsParams {
    fn default() -> Self {
        Self {
            short_abandon_ms: 5_000,
            service_level_ms: 20_000,
            utc_offset_minutes: crate::calendar::CST_OFFSET_MIN,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Hour,
    Day,
    Month,
}

impl Period {
    pub fn parse(s: &str) -> CrmResult<Self> {
        match s {
            "hour" => Ok(Period::Hour),
            "day" => Ok(Period::Day),
            "month" => Ok(Period::Month),
            _ => Err(CrmError::Invalid(format!(
                "统计周期应为 hour/day/month: {s}"
            ))),
        }
    }
    /// Start of the bucket containing `t`.
    pub fn bucket_start(self, t: UnixMillis, offset_min: i32) -> UnixMillis {
        match self {
            Period::Hour => {
                let d = local_day_start(t, offset_min);
                d + (t - d) / MS_PER_HOUR * MS_PER_HOUR
            }
            Period::Day => local_day_start(t, offset_min),
            Period::Month => YearMonth::of(t, offset_min).range(offset_min).0,
        }
    }
    /// Start of the bucket after the one starting at `start`.
    pub fn next_start(self, start: UnixMillis, offset_min: i32) -> UnixMillis {
        match self {
            Period::Hour => start + MS_PER_HOUR,
            Period::Day => start + MS_PER_DAY,
            Period::Month => YearMonth::of(start, offset_min).next().range(offset_min).0,
        }
    }
    pub fn label(self, start: UnixMillis, offset_min: i32) -> String {
        let l = to_local(start, offset_min);
        match self {
            Period::Hour => format!("{:04}-{:02}-{:02} {:02}:00", l.year, l.month, l.day, l.hour),
            Period::Day => format!("{:04}-{:02}-{:02}", l.year, l.month, l.day),
            Period::Month => format!("{:04}-{:02}", l.year, l.month),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Total,
    Agent,
    Queue,
}

impl Dimension {
    pub fn parse(s: &str) -> CrmResult<Self> {
        match s {
            "total" => Ok(Dimension::Total),
            "agent" => Ok(Dimension::Agent),
            "queue" => Ok(Dimension::Queue),
            _ => Err(CrmError::Invalid(format!(
                "统计维度应为 total/agent/queue: {s}"
            ))),
        }
    }
}

/// The label of the total row.
pub const TOTAL_KEY: &str = "全部";

/// Everything statistics are computed from.
#[derive(Debug, Clone, Default)]
pub struct StatsInput {
    pub calls: Vec<CallFact>,
    pub not_ready: Vec<NotReadyPeriod>,
    pub surveys: Vec<SurveyAnswer>,
    pub complaints: Vec<AgentMark>,
    pub callbacks_done: Vec<AgentMark>,
}

/// One row of statistics: a bucket × a key (全部, an agent or a queue).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsRow {
    pub bucket_start: UnixMillis,
    pub bucket: String,
    pub key: String,
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub answered_within_sl: u64,
    pub wait_ms_answered: i64,
    pub handle_ms: i64,
    pub longest_wait_ms: i64,
    pub not_ready_ms: i64,
    pub surveys_rated: u64,
    pub surveys_satisfied: u64,
    pub complaints: u64,
    pub callbacks_done: u64,
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

impl StatsRow {
    fn base(&self) -> u64 {
        self.offered.saturating_sub(self.short_abandoned)
    }
    pub fn answer_rate(&self) -> Option<f64> {
        ratio(self.answered, self.base())
    }
    pub fn service_level(&self) -> Option<f64> {
        ratio(self.answered_within_sl, self.base())
    }
    /// Average speed of answer, seconds.
    pub fn asa_secs(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.wait_ms_answered as f64 / 1000.0 / self.answered as f64)
    }
    /// Average handle time (talk + wrap-up), seconds.
    pub fn aht_secs(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.handle_ms as f64 / 1000.0 / self.answered as f64)
    }
    pub fn longest_wait_secs(&self) -> f64 {
        self.longest_wait_ms as f64 / 1000.0
    }
    pub fn not_ready_secs(&self) -> f64 {
        self.not_ready_ms as f64 / 1000.0
    }
    pub fn satisfaction_rate(&self) -> Option<f64> {
        Satisfaction {
            rated: self.surveys_rated,
            satisfied: self.surveys_satisfied,
        }
        .rate()
    }
}

/// The JSON shape of a row, with the derived values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsView {
    #[serde(flatten)]
    pub row: StatsRow,
    pub answer_rate: Option<f64>,
    pub service_level: Option<f64>,
    pub asa_secs: Option<f64>,
    pub aht_secs: Option<f64>,
    pub satisfaction_rate: Option<f64>,
}

impl From<StatsRow> for StatsView {
    fn from(row: StatsRow) -> Self {
        Self {
            answer_rate: row.answer_rate(),
            service_level: row.service_level(),
            asa_secs: row.asa_secs(),
            aht_secs: row.aht_secs(),
            satisfaction_rate: row.satisfaction_rate(),
            row,
        }
    }
}

/// What to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsQuery {
    pub from: UnixMillis,
    pub to: UnixMillis,
    pub period: Period,
    pub dimension: Dimension,
}

/// Computes the rows of `q` from `input`. Records outside `[from, to)` are ignored. For the
/// total dimension every bucket of the range gets a row, also when empty.
pub fn compute(input: &StatsInput, params: &StatsParams, q: StatsQuery) -> Vec<StatsRow> {
    let off = params.utc_offset_minutes;
    let mut rows: BTreeMap<(UnixMillis, String), StatsRow> = BTreeMap::new();
    let inside = |t: UnixMillis| t >= q.from && t < q.to;
    let key_of = |agent: Option<&str>, queue: Option<&str>| -> Option<String> {
        match q.dimension {
            Dimension::Total => Some(TOTAL_KEY.to_string()),
            Dimension::Agent => agent.map(str::to_string),
            Dimension::Queue => queue.map(str::to_string),
        }
    };
    fn entry(
        rows: &mut BTreeMap<(UnixMillis, String), StatsRow>,
        period: Period,
        off: i32,
        t: UnixMillis,
        key: String,
    ) -> &mut StatsRow {
        let start = period.bucket_start(t, off);
        rows.entry((start, key.clone()))
            .or_insert_with(|| StatsRow {
                bucket_start: start,
                bucket: period.label(start, off),
                key,
                ..StatsRow::default()
            })
    }

    for c in input.calls.iter().filter(|c| inside(c.offered_at)) {
        let Some(key) = key_of(c.agent.as_deref(), Some(&c.queue)) else {
            continue;
        };
        let r = entry(&mut rows, q.period, off, c.offered_at, key);
        r.offered += 1;
        let wait = c.wait_ms();
        if c.answered_at.is_some() {
            let w = wait.unwrap_or(0);
            r.answered += 1;
            r.wait_ms_answered += w;
            r.handle_ms += c.talk_ms() + c.wrap_up_ms;
            if w <= params.service_level_ms {
                r.answered_within_sl += 1;
            }
        } else if c.abandoned {
            if wait.unwrap_or(0) < params.short_abandon_ms {
                r.short_abandoned += 1;
            } else {
                r.abandoned += 1;
            }
        }
        if let Some(w) = wait {
            r.longest_wait_ms = r.longest_wait_ms.max(w);
        }
    }
    if q.dimension != Dimension::Queue {
        for p in &input.not_ready {
            let key = key_of(Some(&p.agent), None).unwrap_or_default();
            let (mut t, end) = (p.from_at.max(q.from), p.to_at.min(q.to));
            while t < end {
                let next = q.period.next_start(q.period.bucket_start(t, off), off);
                let piece = next.min(end) - t;
                entry(&mut rows, q.period, off, t, key.clone()).not_ready_ms += piece;
                t = next;
            }
        }
        for m in input.complaints.iter().filter(|m| inside(m.at)) {
            let key = key_of(Some(&m.agent), None).unwrap_or_default();
            entry(&mut rows, q.period, off, m.at, key).complaints += 1;
        }
        for m in input.callbacks_done.iter().filter(|m| inside(m.at)) {
            let key = key_of(Some(&m.agent), None).unwrap_or_default();
            entry(&mut rows, q.period, off, m.at, key).callbacks_done += 1;
        }
    }
    for s in input
        .surveys
        .iter()
        .filter(|s| inside(s.at) && s.rating.is_rated())
    {
        let Some(key) = key_of(Some(&s.agent), Some(&s.queue)) else {
            continue;
        };
        let r = entry(&mut rows, q.period, off, s.at, key);
        r.surveys_rated += 1;
        if s.rating.is_satisfied() {
            r.surveys_satisfied += 1;
        }
    }
    if q.dimension == Dimension::Total && q.from < q.to {
        let mut t = q.period.bucket_start(q.from, off);
        while t < q.to {
            entry(&mut rows, q.period, off, t.max(q.from), TOTAL_KEY.into());
            t = q.period.next_start(t, off);
        }
    }
    rows.into_values().collect()
}

/// Sums rows (e.g. the days of a month) into one; the longest wait is the maximum.
pub fn sum_rows(rows: &[StatsRow], bucket: &str, key: &str) -> StatsRow {
    let mut out = StatsRow {
        bucket_start: rows.first().map_or(0, |r| r.bucket_start),
        bucket: bucket.to_string(),
        key: key.to_string(),
        ..StatsRow::default()
    };
    for r in rows {
        out.offered += r.offered;
        out.answered += r.answered;
        out.abandoned += r.abandoned;
        out.short_abandoned += r.short_abandoned;
        out.answered_within_sl += r.answered_within_sl;
        out.wait_ms_answered += r.wait_ms_answered;
        out.handle_ms += r.handle_ms;
        out.longest_wait_ms = out.longest_wait_ms.max(r.longest_wait_ms);
        out.not_ready_ms += r.not_ready_ms;
        out.surveys_rated += r.surveys_rated;
        out.surveys_satisfied += r.surveys_satisfied;
        out.complaints += r.complaints;
        out.callbacks_done += r.callbacks_done;
    }
    out
}

/// `[from, to)` of one local day.
pub fn day_range(y: i32, m: u32, d: u32, offset_min: i32) -> (UnixMillis, UnixMillis) {
    let a = from_local(y, m, d, 0, 0, offset_min);
    (a, a + MS_PER_DAY)
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
