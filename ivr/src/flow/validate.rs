//! Load-time validation of a flow: every problem is collected (not just the first), each
//! with the node and field it is in, so an operator can fix a file in one pass.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

use super::{Node, SayWhat, ServiceHours};
use crate::prompts::{PromptCatalog, valid_name};

/// Variables the engine sets itself.
pub const BUILTIN_VARS: &[&str] = &["caller_id"];

/// One problem in a flow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The node it is in; `None` for flow-level fields (`start`, `hours`).
    pub node: Option<String>,
    /// The field, e.g. `next`, `options."7"`, `hours.special[2].date`.
    pub field: String,
    pub kind: ProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// A reference to a node that does not exist.
    UnknownNode(String),
    /// No path from `start` leads here.
    Unreachable,
    /// A prompt that is not in the prompt catalogue.
    MissingPrompt(String),
    /// A prompt name that is not a relative `dir/name`.
    BadPromptName(String),
    /// Not a DTMF digit (or not one allowed here).
    BadDigit(String),
    /// A name or date given twice.
    Duplicate(String),
    /// A variable no `collect` node sets.
    UnknownVariable(String),
    /// Any other value out of range or inconsistent.
    BadValue(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(n) => write!(f, "node \"{n}\", field `{}`: ", self.field)?,
            None => write!(f, "field `{}`: ", self.field)?,
        }
        match &self.kind {
            ProblemKind::UnknownNode(t) => write!(f, "unknown node \"{t}\""),
            ProblemKind::Unreachable => write!(f, "node is unreachable from `start`"),
            ProblemKind::MissingPrompt(p) => write!(f, "missing prompt \"{p}\""),
            ProblemKind::BadPromptName(p) => {
                write!(f, "bad prompt name \"{p}\" (want dir/name, a-z 0-9 _ -)")
            }
            ProblemKind::BadDigit(d) => write!(f, "bad digit \"{d}\""),
            ProblemKind::Duplicate(v) => write!(f, "duplicate \"{v}\""),
            ProblemKind::UnknownVariable(v) => {
                write!(f, "unknown variable \"{v}\" (no collect node sets it)")
            }
            ProblemKind::BadValue(why) => write!(f, "{why}"),
        }
    }
}

pub(super) fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

struct Checker<'a> {
    problems: Vec<Problem>,
    node: Option<&'a str>,
}

impl<'a> Checker<'a> {
    fn report(&mut self, field: impl Into<String>, kind: ProblemKind) {
        self.problems.push(Problem {
            node: self.node.map(str::to_string),
            field: field.into(),
            kind,
        });
    }

    fn bad(&mut self, field: &str, why: impl Into<String>) {
        self.report(field, ProblemKind::BadValue(why.into()));
    }
}

pub(super) fn validate(
    start: &str,
    hours: &ServiceHours,
    nodes: &[Node],
    catalog: Option<&PromptCatalog>,
) -> Vec<Problem> {
    let mut c = Checker {
        problems: Vec::new(),
        node: None,
    };
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if names.insert(n.name(), i).is_some() {
            c.node = Some(n.name());
            c.report("name", ProblemKind::Duplicate(n.name().to_string()));
        }
    }
    c.node = None;
    if !names.contains_key(start) {
        c.report("start", ProblemKind::UnknownNode(start.to_string()));
    }
    check_hours(&mut c, hours);

    let vars: HashSet<&str> = nodes
        .iter()
        .filter_map(|n| match n {
            Node::Collect { var, .. } => Some(var.as_str()),
            _ => None,
        })
        .chain(BUILTIN_VARS.iter().copied())
        .collect();

    for n in nodes {
        c.node = Some(n.name());
        if n.name().trim().is_empty() {
            c.bad("name", "empty node name");
        }
        for (field, target) in n.edges() {
            if !names.contains_key(target) {
                c.report(field, ProblemKind::UnknownNode(target.to_string()));
            }
        }
        for (field, prompt) in n.prompts() {
            check_prompt(&mut c, catalog, field, prompt);
        }
        check_node(&mut c, n, &vars, catalog);
    }

    // Reachability, only meaningful when start exists.
    if let Some(&s) = names.get(start) {
        let mut seen = vec![false; nodes.len()];
        let mut todo = VecDeque::from([s]);
        seen[s] = true;
        while let Some(i) = todo.pop_front() {
            for (_, t) in nodes[i].edges() {
                if let Some(&j) = names.get(t)
                    && !seen[j]
                {
                    seen[j] = true;
                    todo.push_back(j);
                }
            }
        }
        for (i, n) in nodes.iter().enumerate() {
            // A duplicate's second copy is already reported; skip it here.
            if !seen[i] && names.get(n.name()) == Some(&i) {
                c.node = Some(n.name());
                c.report("name", ProblemKind::Unreachable);
            }
        }
    }
    c.problems
}

fn check_prompt(c: &mut Checker<'_>, catalog: Option<&PromptCatalog>, field: &str, p: &str) {
    if !valid_name(p) {
        c.report(field, ProblemKind::BadPromptName(p.to_string()));
    } else if let Some(cat) = catalog
        && !cat.contains(p)
    {
        c.report(field, ProblemKind::MissingPrompt(p.to_string()));
    }
}

fn check_hours(c: &mut Checker<'_>, h: &ServiceHours) {
    // open == close is a 24-hour service (ServiceHours::is_open).
    if h.open > h.close {
        c.bad(
            "hours.open",
            format!("opens at {} but closes at {}", h.open, h.close),
        );
    }
    let mut days = HashSet::new();
    for d in &h.days {
        if !days.insert(d) {
            c.report(
                "hours.days",
                ProblemKind::Duplicate(format!("{d:?}").to_lowercase()),
            );
        }
    }
    let mut dates = HashSet::new();
    for (i, s) in h.special.iter().enumerate() {
        if !dates.insert(s.date) {
            c.report(
                format!("hours.special[{i}].date"),
                ProblemKind::Duplicate(s.date.to_string()),
            );
        }
        if s.closed && (s.open.is_some() || s.close.is_some()) {
            c.bad(
                &format!("hours.special[{i}].closed"),
                "a closed day cannot have open/close times",
            );
        }
        if !s.closed && s.open.is_none() && s.close.is_none() {
            c.bad(
                &format!("hours.special[{i}]"),
                "give closed = true or open/close times",
            );
        }
        let (o, cl) = (s.open.unwrap_or(h.open), s.close.unwrap_or(h.close));
        if !s.closed && o > cl {
            c.bad(
                &format!("hours.special[{i}].open"),
                format!("opens at {o} but closes at {cl}"),
            );
        }
    }
}

fn is_dtmf(s: &str) -> bool {
    s.len() == 1
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Prompts the engine plays for a kind of `say`, beyond the Say fragments.
fn say_phrases(what: SayWhat) -> &'static [&'static str] {
    match what {
        SayWhat::Calendar => crate::bidder::CALENDAR_PROMPTS,
        SayWhat::BidderStatus => crate::bidder::STATUS_PROMPTS,
        _ => &[],
    }
}

fn check_node(
    c: &mut Checker<'_>,
    n: &Node,
    vars: &HashSet<&str>,
    catalog: Option<&PromptCatalog>,
) {
    match n {
        Node::Menu {
            options,
            timeout_ms,
            retries,
            prompts,
            ..
        } => {
            if options.is_empty() {
                c.bad("options", "a menu needs at least one option");
            }
            for digit in options.keys() {
                if !is_dtmf(digit) {
                    c.report(
                        format!("options.\"{digit}\""),
                        ProblemKind::BadDigit(digit.clone()),
                    );
                }
            }
            if prompts.is_empty() {
                c.bad("prompts", "a menu needs a prompt");
            }
            if *timeout_ms == 0 {
                c.bad("timeout_ms", "must be > 0");
            }
            if *retries > 9 {
                c.bad("retries", "at most 9");
            }
        }
        Node::Collect {
            var,
            min_digits,
            max_digits,
            terminator,
            first_digit_timeout_ms,
            inter_digit_timeout_ms,
            retries,
            ..
        } => {
            if !is_identifier(var) || BUILTIN_VARS.contains(&var.as_str()) {
                c.bad("var", format!("\"{var}\" is not a usable variable name"));
            }
            if *min_digits == 0 {
                c.bad("min_digits", "must be >= 1");
            }
            if max_digits < min_digits || *max_digits > 32 {
                c.bad(
                    "max_digits",
                    format!("must be between min_digits ({min_digits}) and 32"),
                );
            }
            if !(terminator.is_empty() || terminator == "#" || terminator == "*") {
                c.report("terminator", ProblemKind::BadDigit(terminator.clone()));
            }
            if *first_digit_timeout_ms == 0 {
                c.bad("first_digit_timeout_ms", "must be > 0");
            }
            if *inter_digit_timeout_ms == 0 {
                c.bad("inter_digit_timeout_ms", "must be > 0");
            }
            if *retries > 9 {
                c.bad("retries", "at most 9");
            }
        }
        Node::Lookup {
            code_var,
            mobile_var,
            attempts,
            timeout_ms,
            ..
        } => {
            for (field, v) in [("code_var", code_var), ("mobile_var", mobile_var)] {
                if !vars.contains(v.as_str()) {
                    c.report(field, ProblemKind::UnknownVariable(v.clone()));
                }
            }
            if *attempts == 0 || *attempts > 9 {
                c.bad("attempts", "must be 1..=9");
            }
            if *timeout_ms == 0 {
                c.bad("timeout_ms", "must be > 0");
            }
        }
        Node::Say {
            what, var, value, ..
        } => {
            match (what.is_scalar(), var, value) {
                (true, None, None) | (true, Some(_), Some(_)) => {
                    c.bad("var", "give exactly one of `var` and `value`")
                }
                (true, Some(v), None) if !vars.contains(v.as_str()) => {
                    c.report("var", ProblemKind::UnknownVariable(v.clone()))
                }
                (true, None, Some(v)) if crate::say::say_value(*what, v).is_none() => {
                    c.bad("value", format!("\"{v}\" is not a valid {what:?} value"))
                }
                (false, Some(_), _) | (false, _, Some(_)) => {
                    c.bad("what", format!("{what:?} takes no `var` or `value`"))
                }
                _ => {}
            }
            if let Some(cat) = catalog {
                let needed = crate::say::fragment_names().chain(say_phrases(*what).iter().copied());
                for p in needed {
                    if !cat.contains(p) {
                        c.report("what", ProblemKind::MissingPrompt(p.to_string()));
                    }
                }
            }
        }
        Node::Enqueue { queue, .. } => {
            if !is_identifier(queue) {
                c.bad(
                    "queue",
                    format!("\"{queue}\" is not a queue name (a-z 0-9 _ -)"),
                );
            }
        }
        Node::Transfer { target, .. } => {
            if target.trim().is_empty() {
                c.bad("target", "empty transfer target");
            }
        }
        Node::Play { prompts, .. } => {
            if prompts.is_empty() {
                c.bad("prompts", "nothing to play");
            }
        }
        Node::Condition { .. }
        | Node::Callback { .. }
        | Node::Survey { .. }
        | Node::Hangup { .. }
        | Node::Goto { .. } => {}
    }
}
