//! The ACD: queues, agents and how calls reach them.
//!
//! [`Acd`] is one sans-IO engine for all queues and agents of the hotline (8 seats, a few
//! queues: one engine keeps "which agent is free" consistent across queues an agent serves).
//! Inputs are `enqueue`, agent actions (`login`, `set_ready`, …) and call progress
//! (`handle_agent_answered`, `handle_ring_failed`, `handle_caller_hangup`,
//! `handle_agent_hangup`, `handle_transferred`, `handle_digit`), each with `now`; the driver
//! fires `handle_timeout` at `poll_timeout` and drains `poll_command` (what to do on the
//! calls) and `poll_event` (what happened, for the event bus and the call records).
//!
//! Rules that the issue and DESIGN.md insist on:
//! - an agent who lets a call ring out (RONA) is set not-ready("no answer") and the call goes
//!   to the next agent: nobody stays in ringing/reserved;
//! - every finished call — caller hangup, agent hangup or transfer — puts the agent into
//!   wrap-up for `wrap_up_ms`, then ready;
//! - higher `priority` (12345 transfers) is served first, then first come first served.

mod engine;

use serde::{Deserialize, Serialize};

pub use engine::{Acd, TRANSFER_PRIORITY};

use hotline_core::UnixMillis;

/// Every prompt the ACD itself plays (besides Say fragments and each queue's `moh`), for a
/// check against the prompt catalogue at start.
pub const ACD_PROMPTS: &[&str] = &[
    "q/please_hold",
    "q/ahead",
    "q/expected_wait",
    "q/callback_option",
    "q/max_wait",
    "msg/callback_recorded",
    "msg/goodbye",
];

/// How a queue picks among ready agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent idle the longest (since the end of their last wrap-up) gets the call.
    #[default]
    LongestIdle,
    /// Agents in turn (by id), continuing after the last one offered a call.
    RoundRobin,
    /// Every ready agent rings; the first to answer gets the call.
    RingAll,
}

/// One queue's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub name: String,
    #[serde(default)]
    pub strategy: Strategy,
    /// Position / expected-wait announcement period; 0 disables it.
    #[serde(default = "default_announce")]
    pub announce_every_ms: u64,
    /// After this long waiting, the caller's number is kept as a callback request and the
    /// caller leaves the queue; 0 disables it.
    #[serde(default = "default_max_wait")]
    pub max_wait_ms: u64,
    /// The key that asks for a callback while waiting ("" disables it).
    #[serde(default = "default_callback_key")]
    pub callback_key: String,
    /// Music on hold prompt.
    #[serde(default = "default_moh")]
    pub moh: String,
}

/// The ACD's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcdConfig {
    #[serde(default = "default_queues")]
    pub queues: Vec<QueueConfig>,
    /// Ring no answer after this long.
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_ms: u64,
    /// After-call work time before an agent is offered the next call.
    #[serde(default = "default_wrap_up")]
    pub wrap_up_ms: u64,
    /// "Answered within" threshold of the service-level counter.
    #[serde(default = "default_service_level")]
    pub service_level_ms: u64,
    /// Handle time assumed for the expected-wait estimate until calls have been measured.
    #[serde(default = "default_handle_time")]
    pub initial_handle_time_ms: u64,
}

fn default_announce() -> u64 {
    30_000
}
fn default_max_wait() -> u64 {
    600_000
}
fn default_callback_key() -> String {
    "1".into()
}
fn default_moh() -> String {
    crate::prompts::MUSIC_ON_HOLD.into()
}
fn default_ring_timeout() -> u64 {
    20_000
}
fn default_wrap_up() -> u64 {
    15_000
}
fn default_service_level() -> u64 {
    20_000
}
fn default_handle_time() -> u64 {
    180_000
}

impl QueueConfig {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            strategy: Strategy::default(),
            announce_every_ms: default_announce(),
            max_wait_ms: default_max_wait(),
            callback_key: default_callback_key(),
            moh: default_moh(),
        }
    }
}

fn default_queues() -> Vec<QueueConfig> {
    vec![QueueConfig::new("hotline"), QueueConfig::new("complaints")]
}

impl Default for AcdConfig {
    /// Queues `hotline` and `complaints`, longest-idle, 20 s ring, 15 s wrap-up.
    fn default() -> Self {
        Self {
            queues: default_queues(),
            ring_timeout_ms: default_ring_timeout(),
            wrap_up_ms: default_wrap_up(),
            service_level_ms: default_service_level(),
            initial_handle_time_ms: default_handle_time(),
        }
    }
}

/// An agent's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentState {
    Offline,
    Ready,
    NotReady { reason: String },
    Ringing { call_id: String },
    Busy { call_id: String },
    WrapUp { until: UnixMillis },
}

/// Why a waiting caller left with a callback request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackReason {
    MaxWait,
    Key,
}

/// Who ended a connected call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    Caller,
    Agent,
    Transfer,
}

/// What the driver must do on the calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdCommand {
    /// Loop this prompt to the waiting caller until told otherwise.
    StartMusicOnHold { call_id: String, prompt: String },
    /// Play prompts to the waiting caller (over/instead of MOH), then resume MOH.
    Announce {
        call_id: String,
        prompts: Vec<String>,
    },
    /// Ring the agent's seat for this call.
    Ring { call_id: String, agent: String },
    /// Stop ringing that seat (answered elsewhere, timed out, caller gone).
    CancelRing { call_id: String, agent: String },
    /// The agent answered: stop MOH and bridge caller and agent.
    Bridge { call_id: String, agent: String },
    /// Play prompts to the caller, then hang up (they left the queue with a callback).
    Release {
        call_id: String,
        prompts: Vec<String>,
    },
    /// The agent hung up first: run the satisfaction survey with the caller.
    StartSurvey { call_id: String, agent: String },
}

/// What happened, for the event bus, the CRM and statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AcdEvent {
    CallQueued {
        at: UnixMillis,
        call_id: String,
        queue: String,
        priority: i32,
    },
    AgentRinging {
        at: UnixMillis,
        call_id: String,
        agent: String,
    },
    RingNoAnswer {
        at: UnixMillis,
        call_id: String,
        agent: String,
        reason: String,
    },
    CallAnswered {
        at: UnixMillis,
        call_id: String,
        queue: String,
        agent: String,
        wait_ms: u64,
        within_service_level: bool,
    },
    CallAbandoned {
        at: UnixMillis,
        call_id: String,
        queue: String,
        wait_ms: u64,
    },
    /// Stored for the CRM (which turns it into a callback task).
    CallbackRequested {
        at: UnixMillis,
        call_id: String,
        queue: String,
        number: String,
        wait_ms: u64,
        reason: CallbackReason,
    },
    CallEnded {
        at: UnixMillis,
        call_id: String,
        agent: String,
        by: EndedBy,
        talk_ms: u64,
    },
    AgentStateChanged {
        at: UnixMillis,
        agent: String,
        state: AgentState,
    },
}

/// Rejected inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcdError {
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    #[error("unknown agent {0:?}")]
    UnknownAgent(String),
    #[error("unknown call {0:?}")]
    UnknownCall(String),
    #[error("call {0:?} is already in the ACD")]
    DuplicateCall(String),
    #[error("agent {agent:?} cannot do that while {state}")]
    AgentBusy { agent: String, state: String },
    #[error("agent {agent:?} is not ringing for call {call_id:?}")]
    NotRinging { agent: String, call_id: String },
    #[error("invalid ACD configuration: {field}: {reason}")]
    InvalidConfig { field: String, reason: String },
}

impl AcdConfig {
    /// Checks what serde cannot: unique queue names, usable keys and timers. The binary
    /// calls this once at load, before [`Acd::new`].
    pub fn validate(&self) -> Result<(), AcdError> {
        let bad = |field: String, reason: &str| {
            Err(AcdError::InvalidConfig {
                field,
                reason: reason.into(),
            })
        };
        if self.queues.is_empty() {
            return bad("queues".into(), "at least one queue");
        }
        if self.ring_timeout_ms == 0 {
            return bad("ring_timeout_ms".into(), "must be > 0");
        }
        let mut seen = std::collections::HashSet::new();
        for (i, q) in self.queues.iter().enumerate() {
            q.validate().map_err(|e| match e {
                AcdError::InvalidConfig { field, reason } => AcdError::InvalidConfig {
                    field: format!("queues[{i}].{field}"),
                    reason,
                },
                other => other,
            })?;
            if !seen.insert(q.name.as_str()) {
                return bad(format!("queues[{i}].name"), "duplicate queue");
            }
        }
        Ok(())
    }
}

/// The longest announcement period or maximum wait a queue may have (a day): larger values
/// are typos, and keeping them bounded keeps `now + period` far from overflow.
pub const MAX_QUEUE_TIMER_MS: u64 = 86_400_000;

impl QueueConfig {
    /// The rules for one queue, shared by the config file check ([`AcdConfig::validate`],
    /// which prefixes the field with `queues[i].`) and the administrators' live edits.
    pub fn validate(&self) -> Result<(), AcdError> {
        let bad = |field: &str, reason: &str| {
            Err(AcdError::InvalidConfig {
                field: field.into(),
                reason: reason.into(),
            })
        };
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return bad("name", "a-z 0-9 _ - only");
        }
        let key_ok = self.callback_key.is_empty()
            || self.callback_key.len() == 1
                && self
                    .callback_key
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
        if !key_ok {
            return bad("callback_key", "one key 0-9 * # or \"\"");
        }
        if self.announce_every_ms > MAX_QUEUE_TIMER_MS {
            return bad("announce_every_ms", "at most 86400000 (a day)");
        }
        if self.max_wait_ms > MAX_QUEUE_TIMER_MS {
            return bad("max_wait_ms", "at most 86400000 (a day)");
        }
        if self.moh.is_empty() {
            return bad("moh", "a prompt name");
        }
        Ok(())
    }
}

/// Counters of one queue since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    pub offered: u64,
    pub answered: u64,
    /// Answered within `service_level_ms` of entering the queue.
    pub answered_within_sl: u64,
    pub abandoned: u64,
    pub abandoned_wait_ms: u64,
    pub callbacks: u64,
    pub answered_wait_ms: u64,
}

impl QueueStats {
    /// Answered within the threshold as a share of calls that ended waiting (answered or
    /// abandoned), in percent; 100 when nothing happened yet.
    pub fn service_level_percent(&self) -> f64 {
        let total = self.answered + self.abandoned;
        if total == 0 {
            100.0
        } else {
            self.answered_within_sl as f64 * 100.0 / total as f64
        }
    }
}

/// Live state of one queue (wallboard, API).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueSnapshot {
    pub name: String,
    pub waiting: usize,
    pub longest_wait_ms: u64,
    pub agents_ready: usize,
    pub agents_logged_in: usize,
    pub stats: QueueStats,
    pub service_level_percent: f64,
}

/// Live state of one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentSnapshot {
    pub agent: String,
    pub queues: Vec<String>,
    pub state: AgentState,
}

#[cfg(test)]
mod tests;
