//! The alert engine: sans-IO. The driver feeds it what it sampled, with the time; it answers
//! with notices to send (raised, reminder, cleared). It never reads a clock, sleeps or does
//! I/O, so its behaviour is tested with virtual time (see the tests below).
//!
//! Two kinds of rule:
//! - **level** rules follow a condition sampled every few seconds (a trunk peer is down, a
//!   queue has callers and no ready agent). An alert is raised only after the condition held
//!   for `for_ms` (a blip is not worth waking someone), and cleared only after it stayed
//!   away for `for_ms` (a flapping peer does not send a stream of raise/clear pairs);
//! - **event** rules count failures that happened (a recording that could not be written, a
//!   backup copy that failed). One failure raises at once; the alert clears after `quiet_ms`
//!   without a new failure.
//!
//! De-duplication is by (rule, subject): while an alert is active, more samples or failures
//! of the same subject update its message and send nothing; a reminder goes out every
//! `repeat_ms` until it is acknowledged or cleared; clearing sends one notice.

use std::collections::{BTreeMap, VecDeque};

use hotline_core::UnixMillis;
use serde::{Deserialize, Serialize};

/// What is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A trunk peer does not answer OPTIONS keepalives.
    TrunkDown,
    /// A seat with a logged-in agent has no reachable registration.
    SeatUnreachable,
    /// A call recording could not be written (disk full, unwritable, I/O error).
    RecordingFailed,
    /// Copying recordings to the backup path failed, or the backup job failed.
    BackupFailed,
    /// Free space on the data, recording or backup file system is below the threshold.
    DiskLow,
    /// The database does not answer or refuses writes.
    Database,
    /// Callers wait in a queue with no ready agent, longer than the threshold.
    CallersWaiting,
}

/// How urgent an alert is (shown and sent with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Warning => "warning",
        }
    }
}

impl Rule {
    pub const ALL: [Rule; 7] = [
        Rule::TrunkDown,
        Rule::SeatUnreachable,
        Rule::RecordingFailed,
        Rule::BackupFailed,
        Rule::DiskLow,
        Rule::Database,
        Rule::CallersWaiting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TrunkDown => "trunk_down",
            Self::SeatUnreachable => "seat_unreachable",
            Self::RecordingFailed => "recording_failed",
            Self::BackupFailed => "backup_failed",
            Self::DiskLow => "disk_low",
            Self::Database => "database",
            Self::CallersWaiting => "callers_waiting",
        }
    }

    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The rule's name as staff read it.
    pub fn title_zh(self) -> &'static str {
        match self {
            Self::TrunkDown => "中继中断",
            Self::SeatUnreachable => "坐席分机不可达",
            Self::RecordingFailed => "录音失败",
            Self::BackupFailed => "录音备份失败",
            Self::DiskLow => "磁盘空间不足",
            Self::Database => "数据库故障",
            Self::CallersWaiting => "来电排队无空闲坐席",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Self::TrunkDown | Self::RecordingFailed | Self::Database | Self::CallersWaiting => {
                Severity::Critical
            }
            Self::SeatUnreachable | Self::BackupFailed | Self::DiskLow => Severity::Warning,
        }
    }

    /// Event rules raise on one failure and clear after a quiet period; the others follow a
    /// sampled condition.
    pub fn is_event(self) -> bool {
        matches!(self, Self::RecordingFailed | Self::BackupFailed)
    }
}

/// The engine's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertPolicy {
    /// A level condition must hold this long before it is raised, and be gone this long
    /// before it is cleared.
    pub for_ms: i64,
    /// A reminder while an unacknowledged alert stays active; 0: no reminders.
    pub repeat_ms: i64,
    /// An event alert clears after this long without a new failure.
    pub quiet_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Raised,
    Repeat,
    Cleared,
}

/// One notification to send (and to store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub rule: Rule,
    pub subject: String,
    pub message: String,
    /// When this notice was made.
    pub at: UnixMillis,
    pub raised_at: UnixMillis,
    /// Reminders sent so far, this one included (0 for `Raised`).
    pub reminders: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Seen, not yet held for `for_ms` (level rules only).
    Pending { since: UnixMillis },
    Active {
        raised_at: UnixMillis,
        last_notice_at: UnixMillis,
        reminders: u32,
        acked: bool,
        /// Level rules: since when the condition is gone (cleared after `for_ms`).
        gone_since: Option<UnixMillis>,
        /// Event rules: the latest failure.
        last_seen: UnixMillis,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    message: String,
    phase: Phase,
}

/// An alert active now, as the engine knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveAlert {
    pub rule: Rule,
    pub subject: String,
    pub raised_at: UnixMillis,
    pub acked: bool,
}

/// What was active when the process stopped (from the store), to carry on without raising
/// it a second time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub rule: Rule,
    pub subject: String,
    pub message: String,
    pub raised_at: UnixMillis,
    pub last_notice_at: UnixMillis,
    pub reminders: u32,
    pub acked: bool,
}

#[derive(Debug)]
pub struct AlertEngine {
    policy: AlertPolicy,
    entries: BTreeMap<(Rule, String), Entry>,
    out: VecDeque<Notice>,
}

impl AlertEngine {
    pub fn new(policy: AlertPolicy) -> Self {
        Self {
            policy,
            entries: BTreeMap::new(),
            out: VecDeque::new(),
        }
    }

    /// Takes over an alert that was active before a restart: no new `Raised` for it; it
    /// clears (with a notice) when its condition is found gone. An event alert's quiet
    /// period starts again at `now`.
    pub fn restore(&mut self, now: UnixMillis, r: Restored) {
        self.entries.insert(
            (r.rule, r.subject),
            Entry {
                message: r.message,
                phase: Phase::Active {
                    raised_at: r.raised_at,
                    last_notice_at: r.last_notice_at,
                    reminders: r.reminders,
                    acked: r.acked,
                    gone_since: None,
                    last_seen: now,
                },
            },
        );
    }

    /// A sample of a level rule: `holding` lists every subject of `rule` whose condition
    /// holds now, with its message; every other subject of the rule does not hold. (A source
    /// that could not be read is not sampled at all, which changes nothing.)
    pub fn handle_sample(&mut self, now: UnixMillis, rule: Rule, holding: &[(String, String)]) {
        debug_assert!(!rule.is_event(), "{rule:?} is an event rule");
        let for_ms = self.policy.for_ms;
        for (subject, message) in holding {
            let key = (rule, subject.clone());
            let entry = self.entries.entry(key).or_insert_with(|| Entry {
                message: message.clone(),
                phase: Phase::Pending { since: now },
            });
            entry.message.clone_from(message);
            match &mut entry.phase {
                Phase::Pending { since } => {
                    if now - *since >= for_ms {
                        entry.phase = Phase::Active {
                            raised_at: now,
                            last_notice_at: now,
                            reminders: 0,
                            acked: false,
                            gone_since: None,
                            last_seen: now,
                        };
                        self.out.push_back(Notice {
                            kind: NoticeKind::Raised,
                            rule,
                            subject: subject.clone(),
                            message: message.clone(),
                            at: now,
                            raised_at: now,
                            reminders: 0,
                        });
                    }
                }
                Phase::Active {
                    gone_since,
                    last_seen,
                    ..
                } => {
                    *gone_since = None;
                    *last_seen = now;
                }
            }
        }
        let gone: Vec<String> = self
            .entries
            .range((rule, String::new())..)
            .take_while(|((r, _), _)| *r == rule)
            .filter(|((_, s), _)| !holding.iter().any(|(h, _)| h == s))
            .map(|((_, s), _)| s.clone())
            .collect();
        for subject in gone {
            let key = (rule, subject);
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            match &mut entry.phase {
                // It did not hold for long enough: forgotten, nothing was sent.
                Phase::Pending { .. } => {
                    self.entries.remove(&key);
                }
                Phase::Active { gone_since, .. } => {
                    let since = *gone_since.get_or_insert(now);
                    if now - since >= for_ms {
                        self.clear(now, &key);
                    }
                }
            }
        }
    }

    /// A failure of an event rule happened now (one notice per subject until it clears).
    pub fn handle_occurrence(&mut self, now: UnixMillis, rule: Rule, subject: &str, message: &str) {
        debug_assert!(rule.is_event(), "{rule:?} is a level rule");
        let key = (rule, subject.to_string());
        match self.entries.get_mut(&key) {
            Some(Entry {
                message: m,
                phase: Phase::Active { last_seen, .. },
            }) => {
                *m = message.to_string();
                *last_seen = now;
            }
            _ => {
                self.entries.insert(
                    key,
                    Entry {
                        message: message.to_string(),
                        phase: Phase::Active {
                            raised_at: now,
                            last_notice_at: now,
                            reminders: 0,
                            acked: false,
                            gone_since: None,
                            last_seen: now,
                        },
                    },
                );
                self.out.push_back(Notice {
                    kind: NoticeKind::Raised,
                    rule,
                    subject: subject.to_string(),
                    message: message.to_string(),
                    at: now,
                    raised_at: now,
                    reminders: 0,
                });
            }
        }
    }

    /// Someone took the alert in hand: no more reminders (the clear notice still goes out).
    /// Returns whether such an active alert exists.
    pub fn handle_ack(&mut self, rule: Rule, subject: &str) -> bool {
        match self.entries.get_mut(&(rule, subject.to_string())) {
            Some(Entry {
                phase: Phase::Active { acked, .. },
                ..
            }) => {
                *acked = true;
                true
            }
            _ => false,
        }
    }

    /// Reminders that are due, and event alerts whose quiet period is over.
    pub fn handle_timeout(&mut self, now: UnixMillis) {
        let (repeat_ms, quiet_ms) = (self.policy.repeat_ms, self.policy.quiet_ms);
        let mut quiet = Vec::new();
        for ((rule, subject), entry) in &mut self.entries {
            let Phase::Active {
                raised_at,
                last_notice_at,
                reminders,
                acked,
                last_seen,
                ..
            } = &mut entry.phase
            else {
                continue;
            };
            if rule.is_event() && now - *last_seen >= quiet_ms {
                quiet.push((*rule, subject.clone()));
                continue;
            }
            if repeat_ms > 0 && !*acked && now - *last_notice_at >= repeat_ms {
                *last_notice_at = now;
                *reminders += 1;
                self.out.push_back(Notice {
                    kind: NoticeKind::Repeat,
                    rule: *rule,
                    subject: subject.clone(),
                    message: entry.message.clone(),
                    at: now,
                    raised_at: *raised_at,
                    reminders: *reminders,
                });
            }
        }
        for key in quiet {
            self.clear(now, &key);
        }
    }

    fn clear(&mut self, now: UnixMillis, key: &(Rule, String)) {
        let Some(entry) = self.entries.remove(key) else {
            return;
        };
        if let Phase::Active {
            raised_at,
            reminders,
            ..
        } = entry.phase
        {
            self.out.push_back(Notice {
                kind: NoticeKind::Cleared,
                rule: key.0,
                subject: key.1.clone(),
                message: entry.message,
                at: now,
                raised_at,
                reminders,
            });
        }
    }

    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.out.pop_front()
    }

    /// The earliest moment `handle_timeout` has something to do (level rules also need a
    /// sample to raise or clear, so the driver samples on its own interval as well).
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.entries
            .iter()
            .filter_map(|((rule, _), e)| match &e.phase {
                Phase::Pending { .. } => None,
                Phase::Active {
                    last_notice_at,
                    acked,
                    last_seen,
                    ..
                } => {
                    let repeat = (self.policy.repeat_ms > 0 && !*acked)
                        .then(|| last_notice_at + self.policy.repeat_ms);
                    let quiet = rule.is_event().then(|| last_seen + self.policy.quiet_ms);
                    [repeat, quiet].into_iter().flatten().min()
                }
            })
            .min()
    }

    /// The alerts active now.
    pub fn active(&self) -> Vec<ActiveAlert> {
        self.entries
            .iter()
            .filter_map(|((rule, subject), e)| match e.phase {
                Phase::Active {
                    raised_at, acked, ..
                } => Some(ActiveAlert {
                    rule: *rule,
                    subject: subject.clone(),
                    raised_at,
                    acked,
                }),
                Phase::Pending { .. } => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixMillis = 1_764_000_000_000;
    const SEC: i64 = 1000;

    fn engine() -> AlertEngine {
        AlertEngine::new(AlertPolicy {
            for_ms: 30 * SEC,
            repeat_ms: 600 * SEC,
            quiet_ms: 900 * SEC,
        })
    }

    fn holding(subjects: &[&str]) -> Vec<(String, String)> {
        subjects
            .iter()
            .map(|s| (s.to_string(), format!("{s} 不通")))
            .collect()
    }

    fn drain(e: &mut AlertEngine) -> Vec<(NoticeKind, String, UnixMillis)> {
        std::iter::from_fn(|| e.poll_notice())
            .map(|n| (n.kind, n.subject, n.at))
            .collect()
    }

    /// Samples every `step` from `from` to `to` (inclusive), firing timers too, like the
    /// driver does.
    fn run(
        e: &mut AlertEngine,
        rule: Rule,
        from: i64,
        to: i64,
        step: i64,
        subjects: &[&str],
    ) -> Vec<(NoticeKind, String, UnixMillis)> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= to {
            e.handle_sample(T0 + t, rule, &holding(subjects));
            e.handle_timeout(T0 + t);
            out.extend(drain(e));
            t += step;
        }
        out
    }

    #[test]
    fn raised_once_after_for_secs_then_cleared_once() {
        let mut e = engine();
        let out = run(&mut e, Rule::TrunkDown, 0, 120 * SEC, 10 * SEC, &["e1"]);
        assert_eq!(out, vec![(NoticeKind::Raised, "e1".into(), T0 + 30 * SEC)]);
        assert_eq!(e.active().len(), 1);
        // Gone: cleared after it stayed away for for_secs, once.
        let out = run(&mut e, Rule::TrunkDown, 130 * SEC, 300 * SEC, 10 * SEC, &[]);
        assert_eq!(
            out,
            vec![(NoticeKind::Cleared, "e1".into(), T0 + 160 * SEC)]
        );
        assert!(e.active().is_empty());
        assert_eq!(e.poll_timeout(), None);
    }

    #[test]
    fn a_blip_shorter_than_for_secs_sends_nothing() {
        let mut e = engine();
        let mut out = run(&mut e, Rule::TrunkDown, 0, 20 * SEC, 10 * SEC, &["e1"]);
        out.extend(run(
            &mut e,
            Rule::TrunkDown,
            30 * SEC,
            40 * SEC,
            10 * SEC,
            &[],
        ));
        // Back again: the hold time starts over.
        out.extend(run(
            &mut e,
            Rule::TrunkDown,
            50 * SEC,
            70 * SEC,
            10 * SEC,
            &["e1"],
        ));
        assert!(out.is_empty(), "{out:?}");
        let out = run(
            &mut e,
            Rule::TrunkDown,
            80 * SEC,
            80 * SEC,
            10 * SEC,
            &["e1"],
        );
        assert_eq!(out, vec![(NoticeKind::Raised, "e1".into(), T0 + 80 * SEC)]);
    }

    #[test]
    fn flapping_while_active_does_not_clear_and_raise_again() {
        let mut e = engine();
        run(&mut e, Rule::TrunkDown, 0, 30 * SEC, 10 * SEC, &["e1"]);
        let mut out = Vec::new();
        // Up for 20 s, down for 20 s, three times: never gone for 30 s.
        for k in 0..3 {
            let base = 40 * SEC + k * 40 * SEC;
            out.extend(run(
                &mut e,
                Rule::TrunkDown,
                base,
                base + 10 * SEC,
                10 * SEC,
                &[],
            ));
            out.extend(run(
                &mut e,
                Rule::TrunkDown,
                base + 20 * SEC,
                base + 30 * SEC,
                10 * SEC,
                &["e1"],
            ));
        }
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(e.active().len(), 1);
    }

    #[test]
    fn subjects_are_de_duplicated_separately() {
        let mut e = engine();
        let out = run(
            &mut e,
            Rule::SeatUnreachable,
            0,
            60 * SEC,
            5 * SEC,
            &["8001", "8002"],
        );
        let raised: Vec<_> = out.iter().map(|(k, s, _)| (*k, s.as_str())).collect();
        assert_eq!(
            raised,
            vec![(NoticeKind::Raised, "8001"), (NoticeKind::Raised, "8002")]
        );
        // 8002 recovers, 8001 does not; a third shows up.
        let out = run(
            &mut e,
            Rule::SeatUnreachable,
            65 * SEC,
            120 * SEC,
            5 * SEC,
            &["8001", "8003"],
        );
        let got: Vec<_> = out.iter().map(|(k, s, _)| (*k, s.as_str())).collect();
        assert_eq!(
            got,
            vec![(NoticeKind::Raised, "8003"), (NoticeKind::Cleared, "8002")]
        );
        // Another rule's samples leave these alone.
        e.handle_sample(T0 + 200 * SEC, Rule::TrunkDown, &[]);
        assert_eq!(e.active().len(), 2);
    }

    #[test]
    fn reminders_every_repeat_until_acknowledged() {
        let mut e = engine();
        let out = run(
            &mut e,
            Rule::CallersWaiting,
            0,
            1900 * SEC,
            10 * SEC,
            &["hotline"],
        );
        let kinds: Vec<_> = out.iter().map(|(k, _, at)| (*k, (at - T0) / SEC)).collect();
        assert_eq!(
            kinds,
            vec![
                (NoticeKind::Raised, 30),
                (NoticeKind::Repeat, 630),
                (NoticeKind::Repeat, 1230),
                (NoticeKind::Repeat, 1830)
            ]
        );
        assert!(e.handle_ack(Rule::CallersWaiting, "hotline"));
        assert!(!e.handle_ack(Rule::CallersWaiting, "other"));
        let out = run(
            &mut e,
            Rule::CallersWaiting,
            1910 * SEC,
            5000 * SEC,
            10 * SEC,
            &["hotline"],
        );
        assert!(out.is_empty(), "acknowledged: no reminders: {out:?}");
        // The clear still goes out, with the number of reminders sent.
        e.handle_sample(T0 + 5010 * SEC, Rule::CallersWaiting, &[]);
        e.handle_sample(T0 + 5040 * SEC, Rule::CallersWaiting, &[]);
        let n = e.poll_notice().unwrap();
        assert_eq!(
            (n.kind, n.reminders, n.raised_at),
            (NoticeKind::Cleared, 3, T0 + 30 * SEC)
        );
    }

    #[test]
    fn no_reminders_when_repeat_is_zero() {
        let mut e = AlertEngine::new(AlertPolicy {
            for_ms: 0,
            repeat_ms: 0,
            quiet_ms: 60 * SEC,
        });
        let out = run(
            &mut e,
            Rule::DiskLow,
            0,
            100_000 * SEC,
            1000 * SEC,
            &["/data"],
        );
        assert_eq!(out, vec![(NoticeKind::Raised, "/data".into(), T0)]);
        assert_eq!(e.poll_timeout(), None);
    }

    #[test]
    fn event_rules_raise_at_once_and_clear_after_quiet() {
        let mut e = engine();
        e.handle_occurrence(T0, Rule::RecordingFailed, "recordings", "1 次");
        e.handle_occurrence(T0 + 100 * SEC, Rule::RecordingFailed, "recordings", "2 次");
        assert_eq!(
            drain(&mut e),
            vec![(NoticeKind::Raised, "recordings".into(), T0)]
        );
        assert_eq!(
            e.poll_timeout(),
            Some(T0 + 600 * SEC),
            "the reminder comes first"
        );
        e.handle_timeout(T0 + 600 * SEC);
        let n = e.poll_notice().unwrap();
        assert_eq!((n.kind, n.message.as_str()), (NoticeKind::Repeat, "2 次"));
        // Quiet for 900 s after the last failure (at 100 s): cleared at 1000 s.
        e.handle_timeout(T0 + 999 * SEC);
        assert!(e.poll_notice().is_none());
        assert_eq!(e.poll_timeout(), Some(T0 + 1000 * SEC));
        e.handle_timeout(T0 + 1000 * SEC);
        assert_eq!(
            drain(&mut e),
            vec![(NoticeKind::Cleared, "recordings".into(), T0 + 1000 * SEC)]
        );
        // A new failure later is a new alert.
        e.handle_occurrence(T0 + 2000 * SEC, Rule::RecordingFailed, "recordings", "x");
        assert_eq!(drain(&mut e).len(), 1);
    }

    #[test]
    fn a_restored_alert_is_not_raised_again() {
        let mut e = engine();
        e.restore(
            T0,
            Restored {
                rule: Rule::TrunkDown,
                subject: "e1".into(),
                message: "e1 不通".into(),
                raised_at: T0 - 100 * SEC,
                last_notice_at: T0 - 100 * SEC,
                reminders: 0,
                acked: false,
            },
        );
        let out = run(&mut e, Rule::TrunkDown, 0, 500 * SEC, 10 * SEC, &["e1"]);
        let kinds: Vec<_> = out.iter().map(|(k, _, at)| (*k, (at - T0) / SEC)).collect();
        // The reminder is due 600 s after the notice sent before the restart.
        assert_eq!(kinds, vec![(NoticeKind::Repeat, 500)]);
        let out = run(&mut e, Rule::TrunkDown, 510 * SEC, 540 * SEC, 10 * SEC, &[]);
        assert_eq!(
            out,
            vec![(NoticeKind::Cleared, "e1".into(), T0 + 540 * SEC)]
        );
    }
}
