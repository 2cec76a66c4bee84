//! The IVR flow file (TOML) and its model.
//!
//! A flow is a named graph of nodes (`[[node]]` tables, each with a `name` and a `type`),
//! a `start` node and the service hours its `condition` nodes consult. It is loaded and
//! validated once ([`load_flow_file`] / [`parse_flow`]) and then shared read-only
//! (`Arc<Flow>`): reloading builds a new `Flow`, and calls in progress keep the `Arc` of the
//! version they started with. The operator documentation is `docs/ivr.md`.

#[doc(hidden)]
pub mod fuzzing;
mod hours;
mod reload;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use hours::{ServiceHours, SpecialDay};
pub use reload::FlowHandle;
pub use validate::{Problem, ProblemKind};

use crate::prompts::PromptCatalog;

/// A validated flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    name: String,
    start: String,
    hours: ServiceHours,
    nodes: Vec<Node>,
    index: HashMap<String, usize>,
}

/// The file as written, before validation.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FlowFile {
    name: String,
    start: String,
    #[serde(default)]
    hours: ServiceHours,
    #[serde(default, rename = "node")]
    nodes: Vec<Node>,
}

/// One node of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Node {
    /// Plays prompts, then goes on. Digits pressed meanwhile are ignored.
    Play {
        name: String,
        prompts: Vec<String>,
        next: String,
    },
    /// Plays a menu (barge-in allowed) and branches on one digit.
    Menu {
        name: String,
        prompts: Vec<String>,
        /// digit (`0`-`9`, `*`, `#`) → node.
        options: BTreeMap<String, String>,
        #[serde(default)]
        invalid_prompts: Vec<String>,
        #[serde(default)]
        timeout_prompts: Vec<String>,
        /// Wait for a digit this long after the prompt ends.
        #[serde(default = "default_menu_timeout")]
        timeout_ms: u64,
        /// Re-prompts after an invalid digit or a timeout before `on_failure`.
        #[serde(default = "default_retries")]
        retries: u32,
        on_failure: String,
    },
    /// Collects a digit string into a variable.
    Collect {
        name: String,
        prompts: Vec<String>,
        var: String,
        #[serde(default = "one")]
        min_digits: usize,
        max_digits: usize,
        /// `#` (default), `*`, or "" for none. Ends input early.
        #[serde(default = "hash")]
        terminator: String,
        #[serde(default = "default_first_digit_timeout")]
        first_digit_timeout_ms: u64,
        #[serde(default = "default_inter_digit_timeout")]
        inter_digit_timeout_ms: u64,
        #[serde(default)]
        invalid_prompts: Vec<String>,
        #[serde(default)]
        timeout_prompts: Vec<String>,
        #[serde(default = "default_retries")]
        retries: u32,
        next: String,
        on_failure: String,
    },
    /// Branches on a fact about the call.
    Condition {
        name: String,
        check: Check,
        then: String,
        #[serde(rename = "else")]
        otherwise: String,
    },
    /// Bidder self-service lookup through the port.
    Lookup {
        name: String,
        code_var: String,
        mobile_var: String,
        /// Found: go here (usually a `say` of `bidder_status`).
        next: String,
        /// Not found and attempts remain: play `not_found_prompts`, go here.
        retry: String,
        #[serde(default)]
        not_found_prompts: Vec<String>,
        /// Failed attempts before `on_failure` (the "three failures → agent").
        #[serde(default = "default_attempts")]
        attempts: u32,
        /// Attempts used up (after `not_found_prompts`).
        on_failure: String,
        /// The directory failed or did not answer within `timeout_ms`; `on_failure` if unset.
        on_error: Option<String>,
        #[serde(default = "default_lookup_timeout")]
        timeout_ms: u64,
    },
    /// Speaks data in Chinese.
    Say {
        name: String,
        what: SayWhat,
        /// Variable holding the value (scalar kinds).
        var: Option<String>,
        /// Literal value (scalar kinds): "12005", "2000.00", "2025-03-12", "08:30".
        value: Option<String>,
        #[serde(default)]
        prompts_before: Vec<String>,
        #[serde(default)]
        prompts_after: Vec<String>,
        next: String,
        /// No data to say (no calendar published, no lookup result, empty variable).
        on_missing: Option<String>,
    },
    /// Hands the call to an ACD queue; the IVR session ends here.
    Enqueue {
        name: String,
        queue: String,
        #[serde(default)]
        priority: i32,
        #[serde(default)]
        prompts: Vec<String>,
    },
    /// Blind transfer to another number or URI; the session ends.
    Transfer {
        name: String,
        target: String,
        #[serde(default)]
        prompts: Vec<String>,
    },
    /// Records a callback request for the caller's number, plays a confirmation, goes on.
    Callback {
        name: String,
        #[serde(default)]
        prompts: Vec<String>,
        next: String,
    },
    /// Starts the satisfaction survey; the session ends.
    Survey {
        name: String,
        #[serde(default)]
        prompts: Vec<String>,
    },
    /// Plays prompts (if any) and hangs up.
    Hangup {
        name: String,
        #[serde(default)]
        prompts: Vec<String>,
    },
    /// Jumps to another node.
    Goto { name: String, target: String },
}

/// What a `condition` node tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Inside the flow's service hours (weekly pattern + special days).
    InHours,
    /// The call came in from the 12345 government hotline peer.
    #[serde(rename = "from_12345")]
    From12345,
    /// This month's auction calendar is known.
    HasCalendar,
    /// The calling number was delivered (needed for a callback request).
    HasCallerId,
}

/// What a `say` node speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SayWhat {
    /// This month's auction calendar (data handed to the session).
    Calendar,
    /// The result of the last `lookup`.
    BidderStatus,
    Number,
    /// A count before a measure word (2 → 两).
    Count,
    /// Yuan with up to two decimals: "2000", "12.5", "12.05".
    Money,
    /// YYYY-MM-DD.
    Date,
    /// HH:MM.
    Time,
    /// Digit by digit, 1 as 幺.
    Digits,
}

impl SayWhat {
    pub fn is_scalar(self) -> bool {
        !matches!(self, SayWhat::Calendar | SayWhat::BidderStatus)
    }
}

fn default_menu_timeout() -> u64 {
    5_000
}
fn default_retries() -> u32 {
    2
}
fn one() -> usize {
    1
}
fn hash() -> String {
    "#".into()
}
fn default_first_digit_timeout() -> u64 {
    8_000
}
fn default_inter_digit_timeout() -> u64 {
    4_000
}
fn default_attempts() -> u32 {
    3
}
fn default_lookup_timeout() -> u64 {
    5_000
}

impl Node {
    pub fn name(&self) -> &str {
        match self {
            Node::Play { name, .. }
            | Node::Menu { name, .. }
            | Node::Collect { name, .. }
            | Node::Condition { name, .. }
            | Node::Lookup { name, .. }
            | Node::Say { name, .. }
            | Node::Enqueue { name, .. }
            | Node::Transfer { name, .. }
            | Node::Callback { name, .. }
            | Node::Survey { name, .. }
            | Node::Hangup { name, .. }
            | Node::Goto { name, .. } => name,
        }
    }

    /// (field, node) for every edge out of this node, for validation and reachability.
    pub fn edges(&self) -> Vec<(String, &str)> {
        fn e<'a>(f: &str, n: &'a str) -> (String, &'a str) {
            (f.to_string(), n)
        }
        let mut out = Vec::new();
        match self {
            Node::Play { next, .. } | Node::Callback { next, .. } => out.push(e("next", next)),
            Node::Menu {
                options,
                on_failure,
                ..
            } => {
                for (digit, target) in options {
                    out.push((format!("options.\"{digit}\""), target.as_str()));
                }
                out.push(e("on_failure", on_failure));
            }
            Node::Collect {
                next, on_failure, ..
            } => {
                out.push(e("next", next));
                out.push(e("on_failure", on_failure));
            }
            Node::Condition {
                then, otherwise, ..
            } => {
                out.push(e("then", then));
                out.push(e("else", otherwise));
            }
            Node::Lookup {
                next,
                retry,
                on_failure,
                on_error,
                ..
            } => {
                out.push(e("next", next));
                out.push(e("retry", retry));
                out.push(e("on_failure", on_failure));
                if let Some(on_error) = on_error {
                    out.push(e("on_error", on_error));
                }
            }
            Node::Say {
                next, on_missing, ..
            } => {
                out.push(e("next", next));
                if let Some(m) = on_missing {
                    out.push(e("on_missing", m));
                }
            }
            Node::Goto { target, .. } => out.push(e("target", target)),
            Node::Enqueue { .. }
            | Node::Transfer { .. }
            | Node::Survey { .. }
            | Node::Hangup { .. } => {}
        }
        out
    }

    /// (field, prompt) for every prompt name this node plays.
    pub fn prompts(&self) -> Vec<(&'static str, &str)> {
        let mut out: Vec<(&'static str, &str)> = Vec::new();
        fn push<'a>(
            out: &mut Vec<(&'static str, &'a str)>,
            field: &'static str,
            list: &'a [String],
        ) {
            out.extend(list.iter().map(|p| (field, p.as_str())));
        }
        match self {
            Node::Play { prompts, .. }
            | Node::Enqueue { prompts, .. }
            | Node::Transfer { prompts, .. }
            | Node::Callback { prompts, .. }
            | Node::Survey { prompts, .. }
            | Node::Hangup { prompts, .. } => push(&mut out, "prompts", prompts),
            Node::Menu {
                prompts,
                invalid_prompts,
                timeout_prompts,
                ..
            }
            | Node::Collect {
                prompts,
                invalid_prompts,
                timeout_prompts,
                ..
            } => {
                push(&mut out, "prompts", prompts);
                push(&mut out, "invalid_prompts", invalid_prompts);
                push(&mut out, "timeout_prompts", timeout_prompts);
            }
            Node::Lookup {
                not_found_prompts, ..
            } => push(&mut out, "not_found_prompts", not_found_prompts),
            Node::Say {
                prompts_before,
                prompts_after,
                ..
            } => {
                push(&mut out, "prompts_before", prompts_before);
                push(&mut out, "prompts_after", prompts_after);
            }
            Node::Condition { .. } | Node::Goto { .. } => {}
        }
        out
    }
}

/// Why a flow could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{file}: cannot read flow: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: invalid flow:{}", validate::list(problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

impl FlowError {
    /// The validation problems (empty for I/O and syntax errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            FlowError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// Reads and validates a flow file. With a `catalog`, every prompt the flow plays (and every
/// Say fragment, when it has `say` nodes) must be in it.
pub fn load_flow_file(path: &Path, catalog: Option<&PromptCatalog>) -> Result<Flow, FlowError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| FlowError::Io {
        file: file.clone(),
        source,
    })?;
    parse_flow(&text, &file, catalog)
}

/// Parses and validates flow text; `file` names it in errors.
pub fn parse_flow(
    text: &str,
    file: &str,
    catalog: Option<&PromptCatalog>,
) -> Result<Flow, FlowError> {
    let raw: FlowFile = toml::from_str(text).map_err(|e| FlowError::Parse {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    let problems = validate::validate(&raw.start, &raw.hours, &raw.nodes, catalog);
    if !problems.is_empty() {
        return Err(FlowError::Invalid {
            file: file.to_string(),
            problems,
        });
    }
    let index = raw
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name().to_string(), i))
        .collect();
    Ok(Flow {
        name: raw.name,
        start: raw.start,
        hours: raw.hours,
        nodes: raw.nodes,
        index,
    })
}

/// The default hotline flow, as committed in `ivr/flows/default.toml`.
pub const DEFAULT_FLOW_TOML: &str = include_str!("../../flows/default.toml");

/// The default flow, validated against the default prompt set.
pub fn default_flow() -> Flow {
    parse_flow(
        DEFAULT_FLOW_TOML,
        "ivr/flows/default.toml",
        Some(&PromptCatalog::default_zh_cn()),
    )
    .expect("the committed default flow is valid")
}

impl Flow {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn start(&self) -> &str {
        &self.start
    }

    pub fn hours(&self) -> &ServiceHours {
        &self.hours
    }

    /// This flow with `days` merged into its special days (see
    /// [`ServiceHours::merge_special`]). The days must each be valid on their own — closed,
    /// or with both times and opening before closing — which is what the administrators'
    /// calendar checks on entry, so the merged flow stays valid.
    pub fn with_special_days(&self, days: &[SpecialDay]) -> Flow {
        let mut flow = self.clone();
        flow.hours.merge_special(days);
        flow
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Every queue an `enqueue` node names (the ACD must have them).
    pub fn queues(&self) -> Vec<&str> {
        let mut q: Vec<&str> = self
            .nodes
            .iter()
            .filter_map(|n| match n {
                Node::Enqueue { queue, .. } => Some(queue.as_str()),
                _ => None,
            })
            .collect();
        q.sort_unstable();
        q.dedup();
        q
    }
}

#[cfg(test)]
mod tests;
