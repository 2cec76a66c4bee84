//! ACD tables on virtual time.

use super::*;

const T0: UnixMillis = 1_000_000;

struct World {
    acd: Acd,
    now: UnixMillis,
}

impl World {
    fn new(strategy: Strategy) -> Self {
        let mut config = AcdConfig::default();
        for q in &mut config.queues {
            q.strategy = strategy;
        }
        Self::with(config)
    }

    fn with(config: AcdConfig) -> Self {
        World {
            acd: Acd::new(config),
            now: T0,
        }
    }

    fn cmds(&mut self) -> Vec<AcdCommand> {
        std::iter::from_fn(|| self.acd.poll_command()).collect()
    }

    fn events(&mut self) -> Vec<AcdEvent> {
        std::iter::from_fn(|| self.acd.poll_event()).collect()
    }

    fn login(&mut self, agents: &[&str]) {
        for a in agents {
            self.now += 1_000;
            self.acd.login(self.now, a, &["hotline"]).unwrap();
        }
    }

    fn call(&mut self, id: &str) -> Vec<AcdCommand> {
        self.call_prio(id, 0)
    }

    fn call_prio(&mut self, id: &str, prio: i32) -> Vec<AcdCommand> {
        self.acd
            .enqueue(self.now, id, "13800001234", "hotline", prio)
            .unwrap();
        self.cmds()
    }

    fn advance(&mut self, ms: i64) -> Vec<AcdCommand> {
        let target = self.now + ms;
        // Fire every timer on the way, in order, like a driver would.
        while let Some(t) = self.acd.poll_timeout().filter(|t| *t <= target) {
            self.now = t.max(self.now);
            self.acd.handle_timeout(self.now);
        }
        self.now = target;
        self.cmds()
    }

    fn state(&self, a: &str) -> AgentState {
        self.acd.agent_state(a).unwrap().clone()
    }

    /// Answers, talks `talk_ms`, and the caller hangs up.
    fn serve(&mut self, call: &str, agent: &str, talk_ms: i64) {
        self.acd
            .handle_agent_answered(self.now, call, agent)
            .unwrap();
        self.advance(talk_ms);
        self.acd.handle_caller_hangup(self.now, call).unwrap();
    }
}

fn ring(call: &str, agent: &str) -> AcdCommand {
    AcdCommand::Ring {
        call_id: call.into(),
        agent: agent.into(),
    }
}

fn cancel(call: &str, agent: &str) -> AcdCommand {
    AcdCommand::CancelRing {
        call_id: call.into(),
        agent: agent.into(),
    }
}

fn rings(cmds: &[AcdCommand]) -> Vec<&str> {
    cmds.iter()
        .filter_map(|c| match c {
            AcdCommand::Ring { agent, .. } => Some(agent.as_str()),
            _ => None,
        })
        .collect()
}

fn not_ready(reason: &str) -> AgentState {
    AgentState::NotReady {
        reason: reason.into(),
    }
}

#[test]
fn longest_idle_agent_gets_the_call_and_is_bridged() {
    let mut w = World::new(Strategy::LongestIdle);
    w.login(&["a", "b"]);
    let cmds = w.call("c1");
    assert_eq!(
        cmds,
        [
            AcdCommand::StartMusicOnHold {
                call_id: "c1".into(),
                prompt: "moh/default".into()
            },
            ring("c1", "a")
        ]
    );
    w.events();
    w.now += 5_000;
    w.acd.handle_agent_answered(w.now, "c1", "a").unwrap();
    assert_eq!(
        w.cmds(),
        [AcdCommand::Bridge {
            call_id: "c1".into(),
            agent: "a".into()
        }]
    );
    assert!(w.events().contains(&AcdEvent::CallAnswered {
        at: w.now,
        call_id: "c1".into(),
        queue: "hotline".into(),
        agent: "a".into(),
        wait_ms: 5_000,
        within_service_level: true,
    }));
    assert_eq!(
        w.state("a"),
        AgentState::Busy {
            call_id: "c1".into()
        }
    );
    // The next call goes to b, the only ready one.
    assert_eq!(rings(&w.call("c2")), ["b"]);
}

#[test]
fn longest_idle_counts_from_the_end_of_wrap_up() {
    let mut w = World::new(Strategy::LongestIdle);
    w.login(&["a", "b"]);
    w.call("c1");
    w.serve("c1", "a", 60_000);
    w.advance(15_000); // a's wrap-up ends: a is idle since now, b since login
    w.cmds();
    assert_eq!(rings(&w.call("c2")), ["b"]);
}

/// RONA for every strategy: the call moves on, the silent agent is not-ready("no answer"),
/// nobody is left ringing.
#[test]
fn ring_no_answer_table() {
    for (strategy, first, second) in [
        (Strategy::LongestIdle, vec!["a"], vec!["b"]),
        (Strategy::RoundRobin, vec!["a"], vec!["b"]),
        (Strategy::RingAll, vec!["a", "b"], vec![]),
    ] {
        let mut w = World::new(strategy);
        w.login(&["a", "b"]);
        assert_eq!(rings(&w.call("c1")), first, "{strategy:?}");
        assert_eq!(w.acd.poll_timeout(), Some(w.now + 20_000));
        let cmds = w.advance(20_000);
        for a in &first {
            assert!(cmds.contains(&cancel("c1", a)), "{strategy:?} {cmds:?}");
            assert_eq!(w.state(a), not_ready("no answer"), "{strategy:?}");
        }
        assert_eq!(rings(&cmds), second, "{strategy:?}");
        // The second agent (if any) lets it ring out too: nobody left, the call waits.
        let cmds = w.advance(20_000);
        assert!(rings(&cmds).is_empty());
        for a in ["a", "b"] {
            assert_eq!(w.state(a), not_ready("no answer"), "{strategy:?} {a}");
        }
        assert_eq!(w.acd.waiting("hotline"), ["c1"]);
        let nra = w
            .events()
            .iter()
            .filter(|e| matches!(e, AcdEvent::RingNoAnswer { .. }))
            .count();
        assert_eq!(nra, 2, "{strategy:?}");
        // Back to ready: rung again at once.
        w.acd.set_ready(w.now, "a").unwrap();
        assert_eq!(rings(&w.cmds()), ["a"]);
    }
}

#[test]
fn rejected_ring_moves_on_like_rona() {
    let mut w = World::new(Strategy::LongestIdle);
    w.login(&["a", "b"]);
    w.call("c1");
    w.acd
        .handle_ring_failed(w.now, "c1", "a", "rejected")
        .unwrap();
    assert_eq!(w.state("a"), not_ready("rejected"));
    assert_eq!(rings(&w.cmds()), ["b"]);
}

#[test]
fn ring_all_first_answer_wins() {
    let mut w = World::new(Strategy::RingAll);
    w.login(&["a", "b", "c"]);
    assert_eq!(rings(&w.call("c1")), ["a", "b", "c"]);
    w.acd.handle_agent_answered(w.now, "c1", "b").unwrap();
    let cmds = w.cmds();
    assert!(cmds.contains(&cancel("c1", "a")) && cmds.contains(&cancel("c1", "c")));
    assert_eq!(w.state("a"), AgentState::Ready);
    assert_eq!(
        w.state("b"),
        AgentState::Busy {
            call_id: "c1".into()
        }
    );
    // A late answer from a is refused.
    assert!(matches!(
        w.acd.handle_agent_answered(w.now, "c1", "a"),
        Err(AcdError::NotRinging { .. })
    ));
}

#[test]
fn round_robin_takes_turns() {
    let mut w = World::new(Strategy::RoundRobin);
    w.login(&["a", "b", "c"]);
    let mut order = Vec::new();
    for i in 0..5 {
        let id = format!("c{i}");
        let cmds = w.call(&id);
        let agent = rings(&cmds)[0].to_string();
        w.serve(&id, &agent, 1_000);
        w.acd.set_ready(w.now, &agent).unwrap(); // skip wrap-up
        order.push(agent);
    }
    assert_eq!(order, ["a", "b", "c", "a", "b"]);
}

/// Wrap-up after every way a call ends; the survey only when the agent hung up first.
#[test]
fn wrap_up_table() {
    for by in [EndedBy::Caller, EndedBy::Agent, EndedBy::Transfer] {
        let mut w = World::new(Strategy::LongestIdle);
        w.login(&["a"]);
        w.call("c1");
        w.acd.handle_agent_answered(w.now, "c1", "a").unwrap();
        w.advance(30_000);
        match by {
            EndedBy::Caller => w.acd.handle_caller_hangup(w.now, "c1").unwrap(),
            EndedBy::Agent => w.acd.handle_agent_hangup(w.now, "c1").unwrap(),
            EndedBy::Transfer => w.acd.handle_transferred(w.now, "c1").unwrap(),
        }
        let cmds = w.cmds();
        let survey = AcdCommand::StartSurvey {
            call_id: "c1".into(),
            agent: "a".into(),
        };
        assert_eq!(cmds.contains(&survey), by == EndedBy::Agent, "{by:?}");
        assert_eq!(
            w.state("a"),
            AgentState::WrapUp {
                until: w.now + 15_000
            },
            "{by:?}"
        );
        assert!(w.events().contains(&AcdEvent::CallEnded {
            at: w.now,
            call_id: "c1".into(),
            agent: "a".into(),
            by,
            talk_ms: 30_000,
        }));
        // A call arriving during wrap-up waits for it to end.
        assert!(rings(&w.call("c2")).is_empty(), "{by:?}");
        assert_eq!(rings(&w.advance(14_999)), Vec::<&str>::new());
        assert_eq!(rings(&w.advance(1)), ["a"], "{by:?}");
    }
}

#[test]
fn not_ready_during_wrap_up_sticks() {
    let mut w = World::new(Strategy::LongestIdle);
    w.login(&["a"]);
    w.call("c1");
    w.serve("c1", "a", 1_000);
    w.acd.set_not_ready(w.now, "a", "break").unwrap();
    w.advance(60_000);
    assert_eq!(w.state("a"), not_ready("break"));
}

#[test]
fn not_ready_while_ringing_passes_the_call_on() {
    let mut w = World::new(Strategy::LongestIdle);
    w.login(&["a", "b"]);
    w.call("c1");
    w.acd.set_not_ready(w.now, "a", "break").unwrap();
    let cmds = w.cmds();
    assert_eq!(cmds[0], cancel("c1", "a"));
    assert_eq!(rings(&cmds), ["b"]);
    assert_eq!(w.state("a"), not_ready("break"));
    // Logging out while busy is refused.
    w.acd.handle_agent_answered(w.now, "c1", "b").unwrap();
    assert!(matches!(
        w.acd.logout(w.now, "b"),
        Err(AcdError::AgentBusy { .. })
    ));
}

#[test]
fn priority_calls_from_12345_go_first() {
    let mut w = World::new(Strategy::LongestIdle);
    w.call("c1");
    w.call("c2");
    w.call_prio("p1", 10);
    w.call("c3");
    w.call_prio("p2", 10);
    assert_eq!(w.acd.waiting("hotline"), ["p1", "p2", "c1", "c2", "c3"]);
    w.login(&["a"]);
    assert_eq!(
        w.cmds()
            .iter()
            .find(|c| matches!(c, AcdCommand::Ring { .. })),
        Some(&ring("p1", "a"))
    );
}

#[test]
fn position_and_expected_wait_announcements() {
    let mut w = World::new(Strategy::LongestIdle);
    w.acd.login(w.now, "a", &["hotline"]).unwrap();
    w.acd.set_not_ready(w.now, "a", "break").unwrap();
    for c in ["c1", "c2", "c3"] {
        w.call(c);
    }
    let cmds = w.advance(29_999);
    assert!(cmds.is_empty(), "{cmds:?}");
    let cmds = w.advance(1);
    let announced: Vec<(&str, Vec<&str>)> = cmds
        .iter()
        .filter_map(|c| match c {
            AcdCommand::Announce { call_id, prompts } => Some((
                call_id.as_str(),
                prompts.iter().map(String::as_str).collect(),
            )),
            _ => None,
        })
        .collect();
    // One logged-in agent, 180 s assumed handle time: 3 min, 6 min, 9 min.
    assert_eq!(
        announced,
        [
            (
                "c1",
                vec![
                    "q/please_hold",
                    "q/expected_wait",
                    "num/3",
                    "word/minutes",
                    "q/callback_option"
                ]
            ),
            (
                "c2",
                vec![
                    "q/ahead",
                    "num/1",
                    "word/wei",
                    "q/expected_wait",
                    "num/6",
                    "word/minutes",
                    "q/callback_option"
                ]
            ),
            (
                "c3",
                vec![
                    "q/ahead",
                    "num/liang",
                    "word/wei",
                    "q/expected_wait",
                    "num/9",
                    "word/minutes",
                    "q/callback_option"
                ]
            ),
        ]
    );
    // And again every 30 s; positions move up when someone ahead leaves.
    w.acd.handle_caller_hangup(w.now, "c1").unwrap();
    let cmds = w.advance(30_000);
    assert_eq!(
        cmds.iter()
            .filter(|c| matches!(c, AcdCommand::Announce { .. }))
            .count(),
        2
    );
    let AcdCommand::Announce { call_id, prompts } = &cmds[1] else {
        panic!("{cmds:?}")
    };
    assert_eq!(call_id, "c3");
    assert_eq!(prompts[..3], ["q/ahead", "num/1", "word/wei"]);
}

#[test]
fn announcement_prompts_exist() {
    let catalog = crate::prompts::PromptCatalog::default_zh_cn();
    for p in ACD_PROMPTS.iter().chain(&["moh/default"]) {
        assert!(catalog.contains(p), "{p}");
    }
}

#[test]
fn max_wait_and_key_one_leave_with_a_callback_request() {
    for key in [false, true] {
        let mut w = World::new(Strategy::LongestIdle);
        w.call("c1");
        w.call("c2");
        w.events();
        let cmds = if key {
            w.advance(42_000);
            w.acd.handle_digit(w.now, "c1", '5').unwrap(); // not the callback key
            assert!(w.cmds().is_empty());
            w.acd.handle_digit(w.now, "c1", '1').unwrap();
            w.cmds()
        } else {
            w.advance(600_000)
        };
        let release = cmds
            .iter()
            .find(|c| matches!(c, AcdCommand::Release { call_id, .. } if call_id == "c1"))
            .expect("c1 released");
        let AcdCommand::Release { prompts, .. } = release else {
            unreachable!()
        };
        let (reason, prompt, waited) = if key {
            (CallbackReason::Key, "msg/callback_recorded", 42_000)
        } else {
            (CallbackReason::MaxWait, "q/max_wait", 600_000)
        };
        assert_eq!(prompts[0], prompt);
        assert!(w.events().contains(&AcdEvent::CallbackRequested {
            at: w.now,
            call_id: "c1".into(),
            queue: "hotline".into(),
            number: "13800001234".into(),
            wait_ms: waited,
            reason,
        }));
        assert!(!w.acd.waiting("hotline").contains(&"c1"));
        assert_eq!(
            w.acd.stats("hotline").unwrap().callbacks,
            if key { 1 } else { 2 }
        );
    }
}

#[test]
fn callback_key_needs_a_caller_number() {
    let mut w = World::new(Strategy::LongestIdle);
    w.acd.enqueue(w.now, "anon", "", "hotline", 0).unwrap();
    w.cmds();
    w.acd.handle_digit(w.now, "anon", '1').unwrap();
    assert!(w.cmds().is_empty());
    assert_eq!(w.acd.waiting("hotline"), ["anon"]);
}

#[test]
fn max_wait_never_cuts_a_ringing_call() {
    let mut config = AcdConfig::default();
    config.queues[0].max_wait_ms = 30_000;
    config.queues[0].announce_every_ms = 0;
    let mut w = World::with(config);
    w.call("c1");
    w.advance(25_000);
    w.login(&["a"]); // now + 1 s: ringing until 46 s
    w.cmds();
    let cmds = w.advance(10_000);
    assert!(cmds.is_empty(), "{cmds:?}");
    // Ring times out at 46 s: RONA, and only then the call leaves with a callback.
    let cmds = w.advance(20_000);
    assert!(cmds.contains(&cancel("c1", "a")));
    assert!(cmds.iter().any(|c| matches!(c, AcdCommand::Release { .. })));
    assert_eq!(w.state("a"), not_ready("no answer"));
}

#[test]
fn abandoned_calls_keep_their_wait_time() {
    let mut w = World::new(Strategy::LongestIdle);
    w.call("c1");
    w.advance(12_000);
    w.acd.handle_caller_hangup(w.now, "c1").unwrap();
    assert!(w.events().contains(&AcdEvent::CallAbandoned {
        at: w.now,
        call_id: "c1".into(),
        queue: "hotline".into(),
        wait_ms: 12_000,
    }));
    // Abandoned while ringing: the agent is freed, not penalised.
    w.login(&["a"]);
    w.call("c2");
    w.acd.handle_caller_hangup(w.now, "c2").unwrap();
    assert_eq!(w.cmds(), [cancel("c2", "a")]);
    assert_eq!(w.state("a"), AgentState::Ready);
    let s = w.acd.stats("hotline").unwrap();
    assert_eq!(
        (s.offered, s.abandoned, s.abandoned_wait_ms),
        (2, 2, 12_000)
    );
}

#[test]
fn service_level_counts_answers_within_20_seconds() {
    let mut w = World::new(Strategy::LongestIdle);
    w.login(&["a"]);
    for (i, wait) in [5_000, 20_000, 20_001, 45_000].into_iter().enumerate() {
        let id = format!("c{i}");
        w.acd.set_ready(w.now, "a").unwrap();
        w.acd.set_not_ready(w.now, "a", "hold").unwrap();
        w.call(&id);
        w.advance(wait);
        w.acd.set_ready(w.now, "a").unwrap();
        w.serve(&id, "a", 1_000);
    }
    let s = w.acd.stats("hotline").unwrap();
    assert_eq!((s.answered, s.answered_within_sl), (4, 2));
    assert_eq!(s.service_level_percent(), 50.0);
    let registry = hotline_core::metrics::Registry::new();
    w.acd.export_metrics(&registry, w.now);
    let text = registry.render();
    assert!(
        text.contains("hotline_acd_calls_answered_within_sl_total{queue=\"hotline\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("hotline_acd_agents{state=\"wrap_up\"} 1"),
        "{text}"
    );
}

#[test]
fn complaints_queue_is_served_by_its_own_agents() {
    let mut w = World::new(Strategy::LongestIdle);
    w.login(&["a"]);
    w.acd.login(w.now, "officer", &["complaints"]).unwrap();
    w.acd
        .enqueue(w.now, "k1", "13800001234", "complaints", 0)
        .unwrap();
    assert_eq!(rings(&w.cmds()), ["officer"]);
    let snap = w.acd.queues_snapshot(w.now);
    assert_eq!(
        snap.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(),
        ["complaints", "hotline"]
    );
    assert_eq!(w.acd.agents_snapshot().len(), 2);
}

#[test]
fn input_errors() {
    let mut w = World::new(Strategy::LongestIdle);
    assert_eq!(
        w.acd.enqueue(w.now, "c1", "", "nope", 0),
        Err(AcdError::UnknownQueue("nope".into()))
    );
    assert_eq!(
        w.acd.login(w.now, "a", &["nope"]),
        Err(AcdError::UnknownQueue("nope".into()))
    );
    w.call("c1");
    assert_eq!(
        w.acd.enqueue(w.now, "c1", "", "hotline", 0),
        Err(AcdError::DuplicateCall("c1".into()))
    );
    assert_eq!(
        w.acd.set_ready(w.now, "ghost"),
        Err(AcdError::UnknownAgent("ghost".into()))
    );
    assert_eq!(
        w.acd.handle_agent_hangup(w.now, "c1"),
        Err(AcdError::UnknownCall("c1".into()))
    );
    w.login(&["a"]);
    assert!(matches!(
        w.acd.login(w.now, "a", &["hotline"]),
        Err(AcdError::AgentBusy { .. })
    ));
}

/// A deterministic random walk over every input; after each step no agent may be ringing
/// without a ring timer, and agent and call must agree on who rings whom.
#[test]
fn random_walk_never_leaves_an_agent_stuck_ringing() {
    for strategy in [
        Strategy::LongestIdle,
        Strategy::RoundRobin,
        Strategy::RingAll,
    ] {
        let mut w = World::new(strategy);
        let agents = ["a", "b", "c"];
        w.login(&agents);
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut next_call = 0;
        for _ in 0..3_000 {
            let agent = agents[rnd(3) as usize];
            let ringing_call = match w.acd.agent_state(agent) {
                Some(AgentState::Ringing { call_id }) => Some(call_id.clone()),
                _ => None,
            };
            let busy_call = match w.acd.agent_state(agent) {
                Some(AgentState::Busy { call_id }) => Some(call_id.clone()),
                _ => None,
            };
            match rnd(8) {
                0 | 1 => {
                    next_call += 1;
                    let _ = w.acd.enqueue(
                        w.now,
                        &format!("c{next_call}"),
                        "1",
                        "hotline",
                        rnd(2) as i32,
                    );
                }
                2 => {
                    if let Some(c) = ringing_call {
                        w.acd.handle_agent_answered(w.now, &c, agent).unwrap();
                    }
                }
                3 => {
                    if let Some(c) = busy_call {
                        let _ = match rnd(3) {
                            0 => w.acd.handle_agent_hangup(w.now, &c),
                            1 => w.acd.handle_caller_hangup(w.now, &c),
                            _ => w.acd.handle_transferred(w.now, &c),
                        };
                    }
                }
                4 => {
                    let _ = w.acd.set_ready(w.now, agent);
                }
                5 => {
                    let waiting = w.acd.waiting("hotline");
                    if let Some(c) = waiting.first().map(|c| c.to_string()) {
                        let _ = w.acd.handle_caller_hangup(w.now, &c);
                    }
                }
                6 => {
                    let _ = w.acd.set_not_ready(w.now, agent, "break");
                }
                _ => {
                    w.advance(rnd(25_000) as i64);
                }
            }
            w.cmds();
            w.events();
            for a in agents {
                if let Some(AgentState::Ringing { call_id }) = w.acd.agent_state(a) {
                    assert!(
                        w.acd.waiting("hotline").contains(&call_id.as_str()),
                        "{strategy:?}: {a} rings for {call_id}, which is not waiting"
                    );
                    let t = w.acd.poll_timeout().expect("a ring timer");
                    assert!(t <= w.now + 20_000);
                }
            }
        }
    }
}

#[test]
fn config_defaults_and_validation() {
    let c = AcdConfig::default();
    assert!(c.validate().is_ok());
    let names: Vec<&str> = c.queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["hotline", "complaints"]);
    let parsed: AcdConfig = toml::from_str(
        r#"
        ring_timeout_ms = 15000
        [[queues]]
        name = "hotline"
        strategy = "ring_all"
        [[queues]]
        name = "hotline"
        "#,
    )
    .unwrap();
    assert_eq!(parsed.queues[0].strategy, Strategy::RingAll);
    assert_eq!(parsed.queues[1].announce_every_ms, 30_000);
    assert_eq!(
        parsed.validate(),
        Err(AcdError::InvalidConfig {
            field: "queues[1].name".into(),
            reason: "duplicate queue".into()
        })
    );
    let mut bad_key = AcdConfig::default();
    bad_key.queues[0].callback_key = "12".into();
    assert!(bad_key.validate().is_err());
}

/// A transfer to a named colleague rings that colleague alone, even when the queue's
/// strategy would pick someone else; the transferring agent wraps up.
#[test]
fn transfer_to_a_named_agent_rings_only_that_agent() {
    let mut w = World::new(Strategy::LongestIdle);
    w.login(&["a", "b", "c"]);
    assert_eq!(rings(&w.call("c1")), ["a"]);
    w.acd.handle_agent_answered(w.now, "c1", "a").unwrap();
    w.cmds();
    w.advance(10_000);
    // "b" is idle longer than "c"; the caller asks for "c".
    w.acd
        .transfer_to_agent(w.now, "c1", "13800001234", "hotline", "c")
        .unwrap();
    let cmds = w.cmds();
    assert_eq!(rings(&cmds), ["c"], "{cmds:?}");
    assert!(matches!(w.state("a"), AgentState::WrapUp { .. }));
    assert_eq!(w.state("b"), AgentState::Ready);
    w.acd.handle_agent_answered(w.now, "c1", "c").unwrap();
    assert!(w.cmds().contains(&AcdCommand::Bridge {
        call_id: "c1".into(),
        agent: "c".into()
    }));
}

/// Refused transfers change nothing: the call stays with its agent.
#[test]
fn transfer_to_an_agent_who_is_not_ready_is_refused() {
    let mut w = World::new(Strategy::LongestIdle);
    w.login(&["a", "b"]);
    w.call("c1");
    w.acd.handle_agent_answered(w.now, "c1", "a").unwrap();
    w.acd.set_not_ready(w.now, "b", "lunch").unwrap();
    w.cmds();
    for (agent, want) in [("b", "not ready"), ("a", "on this call"), ("zz", "unknown")] {
        let err = w
            .acd
            .transfer_to_agent(w.now, "c1", "", "hotline", agent)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{agent}: {err}");
    }
    assert!(matches!(
        w.acd.transfer_to_agent(w.now, "c1", "", "nope", "b"),
        Err(AcdError::AgentBusy { .. })
    ));
    assert_eq!(
        w.state("a"),
        AgentState::Busy {
            call_id: "c1".into()
        }
    );
    assert!(w.cmds().is_empty());
}

/// The colleague lets it ring out: the caller is not lost, the queue serves it first.
#[test]
fn a_transferred_call_the_colleague_does_not_take_goes_to_the_queue_first() {
    // Wrap-up longer than the 20 s ring timeout.
    let mut w = World::with(AcdConfig {
        wrap_up_ms: 30_000,
        ..AcdConfig::default()
    });
    w.login(&["a", "b"]);
    assert_eq!(rings(&w.call("c1")), ["a"]);
    w.acd.handle_agent_answered(w.now, "c1", "a").unwrap();
    w.cmds();
    w.acd
        .transfer_to_agent(w.now, "c1", "13800001234", "hotline", "b")
        .unwrap();
    assert_eq!(rings(&w.cmds()), ["b"]);
    w.advance(5_000);
    assert!(rings(&w.call("c3")).is_empty(), "nobody free for c3");
    let cmds = w.advance(15_000);
    assert!(cmds.contains(&cancel("c1", "b")), "{cmds:?}");
    assert_eq!(w.state("b"), not_ready("no answer"));
    // a's wrap-up ends: a is offered c1, ahead of c3 who waits longer in this queue.
    assert_eq!(rings(&w.advance(10_000)), ["a"]);
    assert_eq!(
        w.state("a"),
        AgentState::Ringing {
            call_id: "c1".into()
        }
    );
}

#[test]
fn queue_settings_are_replaced_live_keeping_waiting_calls() {
    let mut w = World::new(Strategy::LongestIdle);
    w.login(&["8001", "8002"]);
    w.call("c1");
    w.call("c2");
    w.acd.handle_agent_answered(w.now, "c1", "8001").unwrap();
    w.acd.handle_agent_answered(w.now, "c2", "8002").unwrap();
    w.now += 1_000;
    w.call("c3");
    w.now += 1_000;
    w.call("c4");
    assert_eq!(w.acd.waiting("hotline"), ["c3", "c4"]);
    // Both agents hang up at the same instant: both become ready together after wrap-up.
    w.acd.handle_caller_hangup(w.now, "c1").unwrap();
    w.acd.handle_caller_hangup(w.now, "c2").unwrap();
    w.cmds();

    let mut next = w.acd.queue_config("hotline").unwrap().clone();
    next.strategy = Strategy::RingAll;
    next.announce_every_ms = 0;
    next.moh = "moh/other".into();
    let old = w.acd.replace_queue_config(w.now, next.clone()).unwrap();
    assert_eq!(old.strategy, Strategy::LongestIdle);
    assert_eq!(w.acd.queue_config("hotline"), Some(&next));
    // Nobody was dropped or reordered, nothing was said to the callers.
    assert_eq!(w.acd.waiting("hotline"), ["c3", "c4"]);
    assert_eq!(w.cmds(), []);

    // Wrap-up ends: the next dispatch uses ring-all (longest idle would ring one agent),
    // and no announcement is due any more.
    let cmds = w.advance(15_000);
    assert_eq!(cmds, [ring("c3", "8001"), ring("c3", "8002")]);
    assert!(
        !w.advance(60_000)
            .iter()
            .any(|c| matches!(c, AcdCommand::Announce { .. })),
        "announcements were switched off"
    );
    // A call entering now gets the new music on hold.
    let cmds = w.call("c5");
    assert_eq!(
        cmds[0],
        AcdCommand::StartMusicOnHold {
            call_id: "c5".into(),
            prompt: "moh/other".into()
        }
    );
}

#[test]
fn a_shorter_maximum_wait_counts_from_entering_the_queue() {
    let mut w = World::new(Strategy::LongestIdle);
    w.call("c1");
    w.advance(50_000);
    let mut next = QueueConfig::new("hotline");
    next.max_wait_ms = 40_000;
    w.acd.replace_queue_config(w.now, next).unwrap();
    // Already past 40 s: the caller leaves with a callback at the next timeout.
    assert_eq!(w.acd.poll_timeout(), Some(T0 + 40_000));
    let cmds = w.advance(1);
    assert!(
        matches!(&cmds[..], [AcdCommand::Release { call_id, .. }] if call_id == "c1"),
        "{cmds:?}"
    );
}

#[test]
fn replacing_settings_checks_them() {
    let mut w = World::new(Strategy::LongestIdle);
    assert_eq!(
        w.acd
            .replace_queue_config(w.now, QueueConfig::new("nosuch")),
        Err(AcdError::UnknownQueue("nosuch".into()))
    );
    let mut bad = QueueConfig::new("hotline");
    bad.callback_key = "12".into();
    assert!(matches!(
        w.acd.replace_queue_config(w.now, bad),
        Err(AcdError::InvalidConfig { field, .. }) if field == "callback_key"
    ));
    let mut bad = QueueConfig::new("hotline");
    bad.max_wait_ms = MAX_QUEUE_TIMER_MS + 1;
    assert!(w.acd.replace_queue_config(w.now, bad).is_err());
    assert_eq!(
        w.acd.queue_config("hotline"),
        Some(&QueueConfig::new("hotline"))
    );
}
