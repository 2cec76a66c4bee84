//! The post-call satisfaction survey (满意度调查).
//!
//! When the agent hangs up first, the ACD emits `StartSurvey` and the driver runs a
//! [`Survey`] on the caller's leg: 1 满意, 2 基本满意, 3 不满意, with re-prompts on an invalid
//! key or silence. The result comes out exactly once as `SurveyCommand::Finished` (also when
//! the caller hangs up or never answers), to be stored with the call and the agent.

use std::collections::VecDeque;

use hotline_core::UnixMillis;
use serde::{Deserialize, Serialize};

use crate::session::PlaybackId;

/// Survey prompts and timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyConfig {
    #[serde(default = "ask")]
    pub prompts: Vec<String>,
    #[serde(default = "invalid")]
    pub invalid_prompts: Vec<String>,
    #[serde(default = "thanks")]
    pub thanks_prompts: Vec<String>,
    #[serde(default = "goodbye")]
    pub goodbye_prompts: Vec<String>,
    /// Wait for a key this long after the question.
    #[serde(default = "timeout")]
    pub timeout_ms: u64,
    /// Re-asks after an invalid key or silence.
    #[serde(default = "retries")]
    pub retries: u32,
}

fn ask() -> Vec<String> {
    vec!["survey/ask".into()]
}
fn invalid() -> Vec<String> {
    vec!["survey/invalid".into()]
}
fn thanks() -> Vec<String> {
    vec!["survey/thanks".into()]
}
fn goodbye() -> Vec<String> {
    vec!["msg/goodbye".into()]
}
fn timeout() -> u64 {
    6_000
}
fn retries() -> u32 {
    2
}

impl Default for SurveyConfig {
    fn default() -> Self {
        Self {
            prompts: ask(),
            invalid_prompts: invalid(),
            thanks_prompts: thanks(),
            goodbye_prompts: goodbye(),
            timeout_ms: timeout(),
            retries: retries(),
        }
    }
}

impl SurveyConfig {
    /// Every prompt the survey may play (for a check against the prompt catalogue).
    pub fn prompt_names(&self) -> impl Iterator<Item = &str> {
        self.prompts
            .iter()
            .chain(&self.invalid_prompts)
            .chain(&self.thanks_prompts)
            .chain(&self.goodbye_prompts)
            .map(String::as_str)
    }
}

/// The caller's rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    /// 1 满意
    Satisfied,
    /// 2 基本满意
    FairlySatisfied,
    /// 3 不满意
    Dissatisfied,
}

impl Rating {
    pub fn from_digit(d: char) -> Option<Rating> {
        match d {
            '1' => Some(Rating::Satisfied),
            '2' => Some(Rating::FairlySatisfied),
            '3' => Some(Rating::Dissatisfied),
            _ => None,
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Rating::Satisfied => "满意",
            Rating::FairlySatisfied => "基本满意",
            Rating::Dissatisfied => "不满意",
        }
    }
}

/// How the survey ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "rating", rename_all = "snake_case")]
pub enum SurveyOutcome {
    Rated(Rating),
    /// Retries used up without a valid key.
    NoAnswer,
    /// The caller hung up before rating.
    HungUp,
}

/// What is stored with the call and the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyResult {
    pub call_id: String,
    pub agent: String,
    pub outcome: SurveyOutcome,
    pub at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SurveyCommand {
    Play {
        id: PlaybackId,
        prompts: Vec<String>,
    },
    StopPlayback {
        id: PlaybackId,
    },
    /// Store this; emitted exactly once.
    Finished(SurveyResult),
    Hangup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Asking(PlaybackId),
    Waiting,
    Closing(PlaybackId),
    Done,
}

/// One caller's survey.
#[derive(Debug)]
pub struct Survey {
    config: SurveyConfig,
    call_id: String,
    agent: String,
    phase: Phase,
    deadline: Option<UnixMillis>,
    retries_used: u32,
    next_id: PlaybackId,
    result: Option<SurveyResult>,
    commands: VecDeque<SurveyCommand>,
}

impl Survey {
    pub fn new(config: SurveyConfig, call_id: &str, agent: &str) -> Self {
        Self {
            config,
            call_id: call_id.into(),
            agent: agent.into(),
            phase: Phase::Idle,
            deadline: None,
            retries_used: 0,
            next_id: 0,
            result: None,
            commands: VecDeque::new(),
        }
    }

    /// Asks the question.
    pub fn start(&mut self, _now: UnixMillis) {
        if self.phase == Phase::Idle {
            let prompts = self.config.prompts.clone();
            self.ask(prompts);
        }
    }

    pub fn poll_command(&mut self) -> Option<SurveyCommand> {
        self.commands.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.deadline
    }

    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done
    }

    pub fn result(&self) -> Option<&SurveyResult> {
        self.result.as_ref()
    }

    pub fn handle_digit(&mut self, now: UnixMillis, digit: char) {
        match self.phase {
            Phase::Asking(id) => {
                // Barge-in: callers who know the keys need not hear the question out.
                self.commands.push_back(SurveyCommand::StopPlayback { id });
            }
            Phase::Waiting => {}
            _ => return,
        }
        self.deadline = None;
        match Rating::from_digit(digit) {
            Some(r) => {
                let prompts = self.config.thanks_prompts.clone();
                self.conclude(now, SurveyOutcome::Rated(r), prompts);
            }
            None => self.retry(now, false),
        }
    }

    pub fn handle_playback_finished(&mut self, now: UnixMillis, id: PlaybackId) {
        match self.phase {
            Phase::Asking(p) if p == id => {
                self.phase = Phase::Waiting;
                self.deadline = Some(now + self.config.timeout_ms as i64);
            }
            Phase::Closing(p) if p == id => self.hang_up(),
            _ => {}
        }
    }

    pub fn handle_timeout(&mut self, now: UnixMillis) {
        if self.phase == Phase::Waiting && self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
            self.retry(now, true);
        }
    }

    /// The caller hung up: the result (if none yet) is `HungUp`.
    pub fn handle_hangup(&mut self, now: UnixMillis) {
        if self.phase == Phase::Done {
            return;
        }
        if self.result.is_none() {
            self.record(now, SurveyOutcome::HungUp);
        }
        self.phase = Phase::Done;
        self.deadline = None;
    }

    fn play(&mut self, prompts: Vec<String>) -> PlaybackId {
        self.next_id += 1;
        let id = self.next_id;
        self.commands.push_back(SurveyCommand::Play { id, prompts });
        id
    }

    fn ask(&mut self, prompts: Vec<String>) {
        let id = self.play(prompts);
        self.phase = Phase::Asking(id);
    }

    fn retry(&mut self, now: UnixMillis, silent: bool) {
        if self.retries_used >= self.config.retries {
            let prompts = self.config.goodbye_prompts.clone();
            self.conclude(now, SurveyOutcome::NoAnswer, prompts);
            return;
        }
        self.retries_used += 1;
        // Silence re-asks plainly; a wrong key first says it was wrong.
        let mut prompts = if silent {
            Vec::new()
        } else {
            self.config.invalid_prompts.clone()
        };
        prompts.extend(self.config.prompts.iter().cloned());
        self.ask(prompts);
    }

    fn record(&mut self, now: UnixMillis, outcome: SurveyOutcome) {
        let result = SurveyResult {
            call_id: self.call_id.clone(),
            agent: self.agent.clone(),
            outcome,
            at: now,
        };
        self.result = Some(result.clone());
        self.commands.push_back(SurveyCommand::Finished(result));
    }

    fn conclude(&mut self, now: UnixMillis, outcome: SurveyOutcome, prompts: Vec<String>) {
        self.record(now, outcome);
        if prompts.is_empty() {
            self.hang_up();
        } else {
            let id = self.play(prompts);
            self.phase = Phase::Closing(id);
        }
    }

    fn hang_up(&mut self) {
        self.commands.push_back(SurveyCommand::Hangup);
        self.phase = Phase::Done;
        self.deadline = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a survey through a script: a key, `t` (timeout) or `p` (prompt finished).
    fn run(script: &str) -> (Vec<SurveyCommand>, Survey) {
        let mut s = Survey::new(SurveyConfig::default(), "c1", "agent7");
        let mut now = 0;
        let mut out = Vec::new();
        let mut playing = None;
        s.start(now);
        let drain = |s: &mut Survey, out: &mut Vec<SurveyCommand>, playing: &mut Option<u64>| {
            while let Some(c) = s.poll_command() {
                if let SurveyCommand::Play { id, .. } = c {
                    *playing = Some(id);
                }
                out.push(c);
            }
        };
        drain(&mut s, &mut out, &mut playing);
        for step in script.chars() {
            now += 500;
            match step {
                'p' => s.handle_playback_finished(now, playing.take().unwrap()),
                't' => {
                    now = s.poll_timeout().expect("timer armed");
                    s.handle_timeout(now);
                }
                'h' => s.handle_hangup(now),
                d => s.handle_digit(now, d),
            }
            drain(&mut s, &mut out, &mut playing);
        }
        (out, s)
    }

    fn outcome(s: &Survey) -> Option<SurveyOutcome> {
        s.result().map(|r| r.outcome)
    }

    fn plays(cmds: &[SurveyCommand]) -> Vec<Vec<&str>> {
        cmds.iter()
            .filter_map(|c| match c {
                SurveyCommand::Play { prompts, .. } => {
                    Some(prompts.iter().map(String::as_str).collect())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn survey_table() {
        use Rating::*;
        use SurveyOutcome::*;
        let cases: &[(&str, Option<SurveyOutcome>, bool)] = &[
            // script, outcome, hung up by the survey
            ("p1p", Some(Rated(Satisfied)), true),
            ("2p", Some(Rated(FairlySatisfied)), true), // barge-in
            ("p3p", Some(Rated(Dissatisfied)), true),
            ("p9p3p", Some(Rated(Dissatisfied)), true), // invalid, then valid
            ("ptp1p", Some(Rated(Satisfied)), true),    // silence, then valid
            ("ptptptp", Some(NoAnswer), true),          // silence × 3
            ("p9p#p*p", Some(NoAnswer), true),          // invalid × 3
            ("ph", Some(HungUp), false),
            ("p", None, false),
        ];
        for (script, want, hung_up) in cases {
            let (cmds, s) = run(script);
            assert_eq!(outcome(&s), *want, "{script}");
            let finished = cmds
                .iter()
                .filter(|c| matches!(c, SurveyCommand::Finished(_)))
                .count();
            assert_eq!(finished, usize::from(want.is_some()), "{script}");
            assert_eq!(
                cmds.last() == Some(&SurveyCommand::Hangup),
                *hung_up,
                "{script}: {cmds:?}"
            );
            assert_eq!(
                s.is_finished(),
                *hung_up || script.ends_with('h'),
                "{script}"
            );
        }
    }

    #[test]
    fn prompts_and_result_fields() {
        let (cmds, s) = run("p9p1p");
        assert_eq!(
            plays(&cmds),
            [
                vec!["survey/ask"],
                vec!["survey/invalid", "survey/ask"],
                vec!["survey/thanks"]
            ]
        );
        let r = s.result().unwrap();
        assert_eq!((r.call_id.as_str(), r.agent.as_str()), ("c1", "agent7"));
        assert_eq!(Rating::Satisfied.label_zh(), "满意");
        let (cmds, _) = run("ptp");
        assert_eq!(plays(&cmds)[1], ["survey/ask"], "silence re-asks plainly");
        let (cmds, _) = run("1");
        assert!(matches!(cmds[1], SurveyCommand::StopPlayback { id: 1 }));
        // Hanging up after the rating does not change it.
        let (_, s) = run("p2h");
        assert_eq!(
            outcome(&s),
            Some(SurveyOutcome::Rated(Rating::FairlySatisfied))
        );
        let catalog = crate::prompts::PromptCatalog::default_zh_cn();
        for p in SurveyConfig::default().prompt_names() {
            assert!(catalog.contains(p), "{p}");
        }
    }

    #[test]
    fn timeout_waits_after_the_question() {
        let mut s = Survey::new(SurveyConfig::default(), "c", "a");
        s.start(0);
        assert_eq!(s.poll_timeout(), None);
        s.handle_playback_finished(4_000, 1);
        assert_eq!(s.poll_timeout(), Some(10_000));
        s.handle_timeout(9_999);
        assert_eq!(s.poll_timeout(), Some(10_000));
    }
}
