//! [`IvrSession`]: one call through a flow.
//!
//! Sans-IO: the driver feeds inputs (`handle_digit`, `handle_playback_finished`,
//! `handle_lookup_result`, `handle_timeout`, `handle_hangup`), each with `now`, then drains
//! [`IvrSession::poll_command`] and arms one timer at [`IvrSession::poll_timeout`].
//!
//! Playbacks carry an id: after a barge-in the engine has already moved on, so a late
//! "finished" for the stopped prompt must not advance the flow a second time. Timers are a
//! single deadline because at most one thing is awaited at a time (a digit, the next digit,
//! or a lookup answer).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use hotline_core::UnixMillis;

use crate::bidder::{AuctionCalendar, BidderStatus};
use crate::flow::{Check, Flow, Node, SayWhat};
use crate::say::{Utterance, say_value};

/// Identifies one `Play` so that its completion can be matched.
pub type PlaybackId = u64;

/// What the session knows about its call when it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallInfo {
    /// The caller's number as delivered (may be empty when withheld).
    pub caller_id: String,
    /// The call came in from the 12345 government hotline peer.
    pub from_12345: bool,
    /// This month's auction calendar, if published.
    pub calendar: Option<AuctionCalendar>,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Play these prompts in order, then report `handle_playback_finished(id)`.
    Play {
        id: PlaybackId,
        prompts: Vec<String>,
    },
    /// Stop playback `id` now (barge-in). No "finished" is needed for it.
    StopPlayback { id: PlaybackId },
    /// Digits are being collected: the gateway should make sure DTMF detection is on and may
    /// discard digits buffered before this point.
    StartCollect {
        max_digits: usize,
        terminator: Option<char>,
    },
    /// Look the bidder up through the port and answer with `handle_lookup_result(request, ..)`.
    Lookup {
        request: u64,
        application_code: String,
        mobile_last4: String,
    },
    /// Hand the call to the ACD. The session is finished.
    Enqueue {
        queue: String,
        priority: i32,
        caller_id: String,
    },
    /// Blind-transfer the call. The session is finished.
    Transfer { target: String },
    /// Store a callback request for this number (the flow goes on).
    RequestCallback { number: String },
    /// Run the satisfaction survey on this call. The session is finished.
    StartSurvey,
    /// Hang the call up. The session is finished.
    Hangup,
}

/// The answer to a `Command::Lookup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupOutcome {
    Found(BidderStatus),
    /// Code and mobile digits do not match a bidder.
    NotFound,
    /// The directory could not answer.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Non-interruptible prompts; then `after`.
    Playing {
        id: PlaybackId,
        after: After,
    },
    MenuPrompt {
        id: PlaybackId,
    },
    MenuWait,
    CollectPrompt {
        id: PlaybackId,
    },
    Collecting {
        digits: String,
    },
    LookingUp {
        request: u64,
    },
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum After {
    Goto(String),
    /// Emit this terminal command and finish.
    Finish(Command),
}

/// Transitions without waiting for the caller before the session assumes a loop in the
/// flow (goto → goto → …) and hangs up rather than spinning.
const MAX_STEPS: u32 = 64;

/// One call executing one flow version.
#[derive(Debug)]
pub struct IvrSession {
    flow: Arc<Flow>,
    info: CallInfo,
    node: String,
    phase: Phase,
    deadline: Option<UnixMillis>,
    /// Re-prompts used in the current menu/collect node.
    retries_used: u32,
    /// Failed lookups in this call (the "three failures → agent").
    lookup_failures: u32,
    vars: HashMap<String, String>,
    bidder: Option<BidderStatus>,
    next_id: u64,
    commands: VecDeque<Command>,
    path: Vec<String>,
}

impl IvrSession {
    /// A session for one call; nothing happens until [`IvrSession::start`].
    pub fn new(flow: Arc<Flow>, info: CallInfo) -> Self {
        let mut vars = HashMap::new();
        vars.insert("caller_id".to_string(), info.caller_id.clone());
        Self {
            node: flow.start().to_string(),
            flow,
            info,
            phase: Phase::Idle,
            deadline: None,
            retries_used: 0,
            lookup_failures: 0,
            vars,
            bidder: None,
            next_id: 0,
            commands: VecDeque::new(),
            path: Vec::new(),
        }
    }

    /// Enters the start node (call answered).
    pub fn start(&mut self, now: UnixMillis) {
        if self.phase == Phase::Idle {
            let start = self.flow.start().to_string();
            self.enter(now, start);
        }
    }

    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.deadline
    }

    /// True once a terminal command (enqueue, transfer, survey, hangup) was issued or the
    /// caller hung up.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The node the call is in.
    pub fn current_node(&self) -> &str {
        &self.node
    }

    /// Every node entered so far, in order (for the call record and tests).
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// A collected variable (`application_code`, …) or `caller_id`.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The flow version this call runs (kept across reloads).
    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }

    /// The caller hung up: stop everything, emit nothing.
    pub fn handle_hangup(&mut self, _now: UnixMillis) {
        self.finish_silently();
    }

    pub fn handle_playback_finished(&mut self, now: UnixMillis, id: PlaybackId) {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Playing { id: pid, after } if pid == id => match after {
                After::Goto(next) => self.enter(now, next),
                After::Finish(cmd) => self.finish(cmd),
            },
            Phase::MenuPrompt { id: pid } if pid == id => {
                let Some(Node::Menu { timeout_ms, .. }) = self.current() else {
                    return;
                };
                let timeout = *timeout_ms;
                self.phase = Phase::MenuWait;
                self.deadline = Some(now + timeout as i64);
            }
            Phase::CollectPrompt { id: pid } if pid == id => {
                let Some(Node::Collect {
                    first_digit_timeout_ms,
                    ..
                }) = self.current()
                else {
                    return;
                };
                let timeout = *first_digit_timeout_ms;
                self.phase = Phase::Collecting {
                    digits: String::new(),
                };
                self.deadline = Some(now + timeout as i64);
            }
            // A stale or unknown id: the flow has moved on.
            other => self.phase = other,
        }
    }

    pub fn handle_digit(&mut self, now: UnixMillis, digit: char) {
        if !(digit.is_ascii_digit() || digit == '*' || digit == '#') {
            return;
        }
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::MenuPrompt { id } => {
                // Barge-in: the caller knows what to press.
                self.commands.push_back(Command::StopPlayback { id });
                self.menu_choice(now, digit);
            }
            Phase::MenuWait => self.menu_choice(now, digit),
            Phase::CollectPrompt { id } => {
                self.commands.push_back(Command::StopPlayback { id });
                self.collect_digit(now, String::new(), digit);
            }
            Phase::Collecting { digits } => self.collect_digit(now, digits, digit),
            // Digits during plain prompts, lookups or after the end are dropped.
            other => self.phase = other,
        }
    }

    pub fn handle_lookup_result(&mut self, now: UnixMillis, request: u64, outcome: LookupOutcome) {
        match &self.phase {
            Phase::LookingUp { request: r } if *r == request => {}
            _ => return, // late answer after the timeout already decided
        }
        self.deadline = None;
        self.phase = Phase::Idle;
        self.lookup_answered(now, outcome);
    }

    pub fn handle_timeout(&mut self, now: UnixMillis) {
        match self.deadline {
            Some(d) if d <= now => self.deadline = None,
            _ => return,
        }
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::MenuWait => self.reprompt(now, true),
            Phase::Collecting { digits } if digits.is_empty() => self.reprompt(now, true),
            // The inter-digit timeout ends the input like the terminator does.
            Phase::Collecting { digits } => self.collect_done(now, digits),
            Phase::LookingUp { .. } => {
                self.lookup_answered(now, LookupOutcome::Failed("timeout".into()))
            }
            other => self.phase = other,
        }
    }

    fn current(&self) -> Option<&Node> {
        self.flow.node(&self.node)
    }

    fn play_id(&mut self) -> PlaybackId {
        self.next_id += 1;
        self.next_id
    }

    /// Plays `prompts` (if any) and then does `after`.
    fn play_then(&mut self, now: UnixMillis, prompts: Vec<String>, after: After) {
        if prompts.is_empty() {
            match after {
                After::Goto(next) => self.enter(now, next),
                After::Finish(cmd) => self.finish(cmd),
            }
            return;
        }
        let id = self.play_id();
        self.commands.push_back(Command::Play { id, prompts });
        self.phase = Phase::Playing { id, after };
    }

    fn finish(&mut self, cmd: Command) {
        self.commands.push_back(cmd);
        self.finish_silently();
    }

    fn finish_silently(&mut self) {
        self.phase = Phase::Done;
        self.deadline = None;
    }

    fn enter(&mut self, now: UnixMillis, name: String) {
        let mut name = name;
        for _ in 0..MAX_STEPS {
            if self.phase == Phase::Done {
                return;
            }
            let Some(node) = self.flow.node(&name).cloned() else {
                // Validation makes this unreachable; fail safe rather than panic.
                self.finish(Command::Hangup);
                return;
            };
            self.node = name.clone();
            self.path.push(name.clone());
            self.deadline = None;
            self.phase = Phase::Idle;
            match self.step(now, node) {
                Some(next) => name = next,
                None => return,
            }
        }
        self.finish(Command::Hangup);
    }

    /// Executes a node; returns the next node when it completes without waiting.
    fn step(&mut self, now: UnixMillis, node: Node) -> Option<String> {
        match node {
            Node::Goto { target, .. } => Some(target),
            Node::Condition {
                check,
                then,
                otherwise,
                ..
            } => {
                let yes = match check {
                    Check::InHours => self.flow.hours().is_open(now),
                    Check::From12345 => self.info.from_12345,
                    Check::HasCalendar => self.info.calendar.is_some(),
                    Check::HasCallerId => !self.info.caller_id.is_empty(),
                };
                Some(if yes { then } else { otherwise })
            }
            Node::Play { prompts, next, .. } => {
                self.play_then(now, prompts, After::Goto(next));
                None
            }
            Node::Menu { prompts, .. } => {
                self.retries_used = 0;
                self.menu_prompt(prompts);
                None
            }
            Node::Collect { prompts, .. } => {
                self.retries_used = 0;
                self.collect_prompt(prompts);
                None
            }
            Node::Lookup {
                code_var,
                mobile_var,
                timeout_ms,
                ..
            } => {
                let request = self.play_id();
                self.commands.push_back(Command::Lookup {
                    request,
                    application_code: self.var(&code_var).unwrap_or("").to_string(),
                    mobile_last4: self.var(&mobile_var).unwrap_or("").to_string(),
                });
                self.phase = Phase::LookingUp { request };
                self.deadline = Some(now + timeout_ms as i64);
                None
            }
            Node::Say {
                what,
                var,
                value,
                prompts_before,
                prompts_after,
                next,
                on_missing,
                ..
            } => {
                let utterance = self.say(what, var.as_deref(), value.as_deref());
                match utterance {
                    Some(u) => {
                        let mut prompts = prompts_before;
                        prompts.extend(u.prompts);
                        prompts.extend(prompts_after);
                        self.play_then(now, prompts, After::Goto(next));
                        None
                    }
                    None => Some(on_missing.unwrap_or(next)),
                }
            }
            Node::Enqueue {
                queue,
                priority,
                prompts,
                ..
            } => {
                let cmd = Command::Enqueue {
                    queue,
                    priority,
                    caller_id: self.info.caller_id.clone(),
                };
                self.play_then(now, prompts, After::Finish(cmd));
                None
            }
            Node::Transfer {
                target, prompts, ..
            } => {
                self.play_then(now, prompts, After::Finish(Command::Transfer { target }));
                None
            }
            Node::Callback { prompts, next, .. } => {
                self.commands.push_back(Command::RequestCallback {
                    number: self.info.caller_id.clone(),
                });
                self.play_then(now, prompts, After::Goto(next));
                None
            }
            Node::Survey { prompts, .. } => {
                self.play_then(now, prompts, After::Finish(Command::StartSurvey));
                None
            }
            Node::Hangup { prompts, .. } => {
                self.play_then(now, prompts, After::Finish(Command::Hangup));
                None
            }
        }
    }

    fn say(&self, what: SayWhat, var: Option<&str>, value: Option<&str>) -> Option<Utterance> {
        match what {
            SayWhat::Calendar => self.info.calendar.as_ref().map(AuctionCalendar::utterance),
            SayWhat::BidderStatus => self.bidder.as_ref().map(BidderStatus::utterance),
            scalar => {
                let text = match (var, value) {
                    (Some(v), _) => self.var(v)?,
                    (None, Some(v)) => v,
                    (None, None) => return None,
                };
                say_value(scalar, text)
            }
        }
    }

    fn menu_prompt(&mut self, prompts: Vec<String>) {
        let id = self.play_id();
        self.commands.push_back(Command::Play { id, prompts });
        self.phase = Phase::MenuPrompt { id };
    }

    fn collect_prompt(&mut self, prompts: Vec<String>) {
        let Some(Node::Collect {
            max_digits,
            terminator,
            ..
        }) = self.current()
        else {
            return;
        };
        let start = Command::StartCollect {
            max_digits: *max_digits,
            terminator: terminator.chars().next(),
        };
        self.commands.push_back(start);
        let id = self.play_id();
        self.commands.push_back(Command::Play { id, prompts });
        self.phase = Phase::CollectPrompt { id };
    }

    fn menu_choice(&mut self, now: UnixMillis, digit: char) {
        self.deadline = None;
        let Some(Node::Menu { options, .. }) = self.current() else {
            return;
        };
        match options.get(digit.encode_utf8(&mut [0; 4]) as &str) {
            Some(target) => {
                // `*` pointing at the menu itself is "repeat": entering resets the retries.
                let target = target.clone();
                self.enter(now, target);
            }
            None => self.reprompt(now, false),
        }
    }

    /// An invalid entry (`timeout == false`) or no entry: re-prompt or give up.
    fn reprompt(&mut self, now: UnixMillis, timeout: bool) {
        let (prompts, extra, retries, on_failure) = match self.current() {
            Some(Node::Menu {
                prompts,
                invalid_prompts,
                timeout_prompts,
                retries,
                on_failure,
                ..
            })
            | Some(Node::Collect {
                prompts,
                invalid_prompts,
                timeout_prompts,
                retries,
                on_failure,
                ..
            }) => (
                prompts.clone(),
                if timeout {
                    timeout_prompts.clone()
                } else {
                    invalid_prompts.clone()
                },
                *retries,
                on_failure.clone(),
            ),
            _ => return,
        };
        if self.retries_used >= retries {
            self.enter(now, on_failure);
            return;
        }
        self.retries_used += 1;
        let mut all = extra;
        all.extend(prompts);
        if matches!(self.current(), Some(Node::Menu { .. })) {
            self.menu_prompt(all);
        } else {
            self.collect_prompt(all);
        }
    }

    fn collect_digit(&mut self, now: UnixMillis, mut digits: String, digit: char) {
        let Some(Node::Collect {
            max_digits,
            terminator,
            inter_digit_timeout_ms,
            ..
        }) = self.current()
        else {
            return;
        };
        let (max, inter) = (*max_digits, *inter_digit_timeout_ms);
        if terminator.starts_with(digit) {
            self.deadline = None;
            self.collect_done(now, digits);
            return;
        }
        if digit.is_ascii_digit() {
            digits.push(digit);
        }
        // A stray `*`/`#` that is not the terminator is ignored rather than failing the
        // whole entry: callers press them by habit.
        if digits.len() >= max {
            self.deadline = None;
            self.collect_done(now, digits);
        } else {
            self.phase = Phase::Collecting { digits };
            self.deadline = Some(now + inter as i64);
        }
    }

    fn collect_done(&mut self, now: UnixMillis, digits: String) {
        let Some(Node::Collect {
            var,
            min_digits,
            max_digits,
            next,
            ..
        }) = self.current()
        else {
            return;
        };
        if digits.is_empty() {
            // Terminator alone: treat as no input.
            self.reprompt(now, true);
        } else if digits.len() < *min_digits || digits.len() > *max_digits {
            self.reprompt(now, false);
        } else {
            let (var, next) = (var.clone(), next.clone());
            self.vars.insert(var, digits);
            self.enter(now, next);
        }
    }

    fn lookup_answered(&mut self, now: UnixMillis, outcome: LookupOutcome) {
        let Some(Node::Lookup {
            next,
            retry,
            not_found_prompts,
            attempts,
            on_failure,
            on_error,
            ..
        }) = self.current().cloned()
        else {
            return;
        };
        match outcome {
            LookupOutcome::Found(status) => {
                self.bidder = Some(status);
                self.enter(now, next);
            }
            LookupOutcome::NotFound => {
                self.lookup_failures += 1;
                if self.lookup_failures >= attempts {
                    self.play_then(now, not_found_prompts, After::Goto(on_failure));
                } else {
                    self.play_then(now, not_found_prompts, After::Goto(retry));
                }
            }
            LookupOutcome::Failed(_) => self.enter(now, on_error.unwrap_or(on_failure)),
        }
    }
}

#[cfg(test)]
mod tests;
