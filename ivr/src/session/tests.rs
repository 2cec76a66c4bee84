//! Walks the committed default flow on virtual time.

use super::*;
use crate::bidder::tests::{sample_calendar, sample_status};
use crate::civil::{UtcOffset, instant};
use crate::flow::{default_flow, parse_flow};

/// 2026-03-12 10:00 in Shanghai: inside 08:00–20:00.
fn in_hours() -> UnixMillis {
    instant(
        "2026-03-12".parse().unwrap(),
        "10:00".parse().unwrap(),
        UtcOffset::SHANGHAI,
    )
}

struct Call {
    s: IvrSession,
    now: UnixMillis,
    playing: Option<PlaybackId>,
    lookup: Option<u64>,
}

impl Call {
    fn start_at(now: UnixMillis, info: CallInfo) -> (Self, Vec<Command>) {
        let mut c = Call {
            s: IvrSession::new(Arc::new(default_flow()), info),
            now,
            playing: None,
            lookup: None,
        };
        c.s.start(now);
        let out = c.drain();
        (c, out)
    }

    fn new(info: CallInfo) -> (Self, Vec<Command>) {
        Self::start_at(in_hours(), info)
    }

    fn ordinary() -> CallInfo {
        CallInfo {
            caller_id: "13800001234".into(),
            from_12345: false,
            calendar: Some(sample_calendar()),
        }
    }

    fn drain(&mut self) -> Vec<Command> {
        let mut out = Vec::new();
        while let Some(c) = self.s.poll_command() {
            match &c {
                Command::Play { id, .. } => self.playing = Some(*id),
                Command::Lookup { request, .. } => self.lookup = Some(*request),
                _ => {}
            }
            out.push(c);
        }
        out
    }

    /// The current prompt plays to its end.
    fn played(&mut self) -> Vec<Command> {
        self.now += 1_000;
        let id = self.playing.take().expect("something is playing");
        self.s.handle_playback_finished(self.now, id);
        self.drain()
    }

    fn press(&mut self, keys: &str) -> Vec<Command> {
        let mut out = Vec::new();
        for k in keys.chars() {
            self.now += 300;
            self.s.handle_digit(self.now, k);
            out.extend(self.drain());
        }
        out
    }

    /// Advances virtual time to the pending deadline and fires it.
    fn wait_timeout(&mut self) -> Vec<Command> {
        let at = self.s.poll_timeout().expect("a timer is armed");
        assert!(at > self.now);
        self.now = at;
        self.s.handle_timeout(self.now);
        self.drain()
    }

    fn answer(&mut self, outcome: LookupOutcome) -> Vec<Command> {
        let r = self.lookup.take().expect("a lookup is pending");
        self.s.handle_lookup_result(self.now, r, outcome);
        self.drain()
    }
}

/// Just the prompt lists of the Play commands.
fn plays(cmds: &[Command]) -> Vec<Vec<&str>> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Play { prompts, .. } => Some(prompts.iter().map(String::as_str).collect()),
            _ => None,
        })
        .collect()
}

fn enqueue(queue: &str, priority: i32) -> Command {
    Command::Enqueue {
        queue: queue.into(),
        priority,
        caller_id: "13800001234".into(),
    }
}

/// From the start to the main menu prompt.
fn at_main_menu() -> Call {
    let (mut c, out) = Call::new(Call::ordinary());
    assert_eq!(plays(&out), [["msg/welcome"]]);
    let out = c.played();
    assert_eq!(plays(&out), [["msg/main_menu"]]);
    assert_eq!(c.s.current_node(), "main_menu");
    c
}

#[test]
fn zero_goes_to_an_agent_with_barge_in() {
    let mut c = at_main_menu();
    let out = c.press("0");
    assert!(matches!(out[0], Command::StopPlayback { .. }), "{out:?}");
    assert_eq!(plays(&out), [["msg/to_agent"]]);
    assert!(!c.s.is_finished());
    assert_eq!(c.played(), [enqueue("hotline", 0)]);
    assert!(c.s.is_finished());
    assert_eq!(c.s.poll_timeout(), None);
    assert_eq!(
        c.s.path(),
        [
            "welcome",
            "check_hours",
            "check_12345",
            "main_menu",
            "agent"
        ]
    );
}

#[test]
fn nine_is_the_complaint_queue() {
    let mut c = at_main_menu();
    c.played(); // prompt ends, waiting for a digit
    let out = c.press("9");
    assert!(
        !out.iter()
            .any(|c| matches!(c, Command::StopPlayback { .. }))
    );
    assert_eq!(plays(&out), [["msg/to_complaints"]]);
    assert_eq!(c.played(), [enqueue("complaints", 0)]);
}

#[test]
fn calls_from_12345_skip_the_menu_with_priority() {
    let (mut c, _) = Call::new(CallInfo {
        from_12345: true,
        ..Call::ordinary()
    });
    let out = c.played();
    assert_eq!(plays(&out), [["msg/to_agent"]]);
    assert_eq!(c.played(), [enqueue("hotline", 10)]);
    assert!(!c.s.path().iter().any(|n| n == "main_menu"));
}

#[test]
fn digits_during_the_welcome_are_dropped() {
    let (mut c, _) = Call::new(Call::ordinary());
    assert!(c.press("0").is_empty());
    assert_eq!(plays(&c.played()), [["msg/main_menu"]]);
}

/// (keys or "timeout", the prompts played next, the node after).
#[test]
fn main_menu_retries_table() {
    type Step = (&'static str, &'static [&'static str], &'static str);
    let cases: &[&[Step]] = &[
        // invalid digit, then a valid one.
        &[
            ("5", &["msg/invalid", "msg/main_menu"], "main_menu"),
            ("3", &["msg/rules_faq"], "rules"),
        ],
        // timeout, then timeout, then the third failure goes to an agent.
        &[
            ("timeout", &["msg/no_input", "msg/main_menu"], "main_menu"),
            ("timeout", &["msg/no_input", "msg/main_menu"], "main_menu"),
            ("timeout", &["msg/to_agent"], "agent"),
        ],
        // mixed invalid and timeout count together.
        &[
            ("#", &["msg/invalid", "msg/main_menu"], "main_menu"),
            ("timeout", &["msg/no_input", "msg/main_menu"], "main_menu"),
            ("7", &["msg/to_agent"], "agent"),
        ],
        // `*` repeats and resets the retry count.
        &[
            ("5", &["msg/invalid", "msg/main_menu"], "main_menu"),
            ("5", &["msg/invalid", "msg/main_menu"], "main_menu"),
            ("*", &["msg/main_menu"], "main_menu"),
            ("5", &["msg/invalid", "msg/main_menu"], "main_menu"),
        ],
    ];
    for (i, steps) in cases.iter().enumerate() {
        let mut c = at_main_menu();
        for (keys, want, node) in steps.iter() {
            // Half the time let the prompt finish first, half barge in.
            if *keys == "timeout" || i % 2 == 0 {
                c.played();
            }
            let out = if *keys == "timeout" {
                c.wait_timeout()
            } else {
                c.press(keys)
            };
            assert_eq!(plays(&out), [want.to_vec()], "case {i} step {keys}");
            assert_eq!(c.s.current_node(), *node, "case {i} step {keys}");
        }
    }
}

#[test]
fn menu_timeout_is_measured_from_the_end_of_the_prompt() {
    let mut c = at_main_menu();
    assert_eq!(c.s.poll_timeout(), None, "no timer while the prompt plays");
    c.played();
    assert_eq!(c.s.poll_timeout(), Some(c.now + 6_000));
    c.now += 5_999;
    c.s.handle_timeout(c.now);
    assert!(c.drain().is_empty(), "early timer does nothing");
}

#[test]
fn calendar_is_spoken_from_data_or_unavailable() {
    let mut c = at_main_menu();
    let out = c.press("1");
    let p = plays(&out);
    assert_eq!(p[0][0], "cal/intro");
    assert!(p[0].contains(&"word/zhi"));
    assert_eq!(plays(&c.played()), [["msg/back_menu"]]);
    assert_eq!(plays(&c.press("1")), [["msg/main_menu"]]);

    let (mut c, _) = Call::new(CallInfo {
        calendar: None,
        ..Call::ordinary()
    });
    c.played();
    assert_eq!(plays(&c.press("1")), [["cal/unavailable"]]);
    assert_eq!(plays(&c.played()), [["msg/back_menu"]]);
    // The after-info menu gives up quietly: goodbye and hang up.
    c.played();
    c.wait_timeout();
    c.played();
    assert_eq!(plays(&c.wait_timeout()), [["msg/goodbye"]]);
    assert_eq!(c.played(), [Command::Hangup]);
}

#[test]
fn rules_faq_then_agent() {
    let mut c = at_main_menu();
    assert_eq!(plays(&c.press("3")), [["msg/rules_faq"]]);
    assert_eq!(plays(&c.played()), [["msg/back_menu"]]);
    assert_eq!(plays(&c.press("0")), [["msg/to_agent"]]);
}

fn start_self_service() -> Call {
    let mut c = at_main_menu();
    let out = c.press("2");
    assert_eq!(
        out[1],
        Command::StartCollect {
            max_digits: 20,
            terminator: Some('#')
        }
    );
    assert_eq!(plays(&out), [["ss/enter_code"]]);
    c
}

#[test]
fn self_service_status_is_spoken() {
    let mut c = start_self_service();
    c.played();
    let out = c.press("1234567890123#");
    assert_eq!(plays(&out), [["ss/enter_mobile"]]);
    // Four digits complete the entry without `#`.
    // Keying during the prompt stops it (barge-in), then the lookup goes out.
    let out = c.press("1234");
    assert!(matches!(out[0], Command::StopPlayback { .. }));
    assert_eq!(
        out[1..],
        [Command::Lookup {
            request: c.lookup.unwrap(),
            application_code: "1234567890123".into(),
            mobile_last4: "1234".into(),
        }]
    );
    assert_eq!(c.s.var("application_code"), Some("1234567890123"));
    let out = c.answer(LookupOutcome::Found(sample_status()));
    let p = plays(&out);
    assert_eq!(p[0][0], "st/deposit_on");
    assert!(p[0].contains(&"st/refund_action"));
    assert_eq!(plays(&c.played()), [["msg/back_menu"]]);
    // `*` hears the status again.
    assert_eq!(plays(&c.press("*"))[0][0], "st/deposit_on");
}

#[test]
fn three_failed_lookups_go_to_an_agent() {
    let mut c = start_self_service();
    for attempt in 1..=3 {
        c.press("123456#");
        let out = c.press("9999");
        assert!(
            matches!(
                out[..],
                [Command::StopPlayback { .. }, Command::Lookup { .. }]
            ),
            "{out:?}"
        );
        let out = c.answer(LookupOutcome::NotFound);
        assert_eq!(plays(&out), [["ss/not_found"]], "attempt {attempt}");
        let out = c.played();
        if attempt < 3 {
            assert_eq!(plays(&out), [["ss/enter_code"]], "attempt {attempt}");
        } else {
            assert_eq!(plays(&out), [["msg/to_agent"]]);
        }
    }
    assert_eq!(c.played(), [enqueue("hotline", 0)]);
}

#[test]
fn lookup_timeout_or_error_goes_to_an_agent() {
    for timeout in [true, false] {
        let mut c = start_self_service();
        c.press("123456#");
        c.press("1234");
        let out = if timeout {
            c.wait_timeout()
        } else {
            c.answer(LookupOutcome::Failed("db down".into()))
        };
        assert_eq!(plays(&out), [["ss/failed"]]);
        assert_eq!(plays(&c.played()), [["msg/to_agent"]]);
    }
    // An answer after the timeout is ignored.
    let mut c = start_self_service();
    c.press("123456#");
    c.press("1234");
    let late = c.lookup.unwrap();
    c.wait_timeout();
    c.s.handle_lookup_result(c.now, late, LookupOutcome::Found(sample_status()));
    assert!(c.drain().is_empty());
    assert_eq!(c.s.current_node(), "lookup_failed");
}

/// (keys, then timeout?, prompts played next, node after)
#[test]
fn collect_table() {
    type Case = (&'static str, bool, &'static [&'static str], &'static str);
    let cases: &[Case] = &[
        // Inter-digit timeout ends an entry that is long enough.
        ("12345678", true, &["ss/enter_mobile"], "enter_mobile"),
        // Too short on `#`.
        (
            "123#",
            false,
            &["msg/invalid", "ss/enter_code"],
            "enter_code",
        ),
        // Too short on the inter-digit timeout.
        ("123", true, &["msg/invalid", "ss/enter_code"], "enter_code"),
        // `#` alone is no input.
        ("#", false, &["msg/no_input", "ss/enter_code"], "enter_code"),
        // First-digit timeout.
        ("", true, &["msg/no_input", "ss/enter_code"], "enter_code"),
        // A stray `*` is ignored.
        ("123*456#", false, &["ss/enter_mobile"], "enter_mobile"),
        // Twenty digits complete without `#`.
        (
            "12345678901234567890",
            false,
            &["ss/enter_mobile"],
            "enter_mobile",
        ),
    ];
    for (keys, timeout, want, node) in cases {
        let mut c = start_self_service();
        c.played();
        let mut out = c.press(keys);
        if *timeout {
            out.extend(c.wait_timeout());
        }
        assert_eq!(plays(&out), [want.to_vec()], "{keys:?}");
        assert_eq!(c.s.current_node(), *node, "{keys:?}");
    }
}

#[test]
fn collect_timers_first_digit_then_inter_digit() {
    let mut c = start_self_service();
    c.played();
    assert_eq!(c.s.poll_timeout(), Some(c.now + 10_000));
    c.press("1");
    assert_eq!(c.s.poll_timeout(), Some(c.now + 5_000));
}

#[test]
fn collect_barge_in_and_stale_finish() {
    let mut c = start_self_service();
    let prompt = c.playing.unwrap();
    let out = c.press("1");
    assert_eq!(out, [Command::StopPlayback { id: prompt }]);
    // The gateway still reports the stopped prompt as finished: no effect.
    c.s.handle_playback_finished(c.now, prompt);
    assert!(c.drain().is_empty());
    assert_eq!(plays(&c.press("23456#")), [["ss/enter_mobile"]]);
    assert_eq!(c.s.var("application_code"), Some("123456"));
}

#[test]
fn collect_failures_go_to_an_agent() {
    let mut c = start_self_service();
    c.played();
    c.wait_timeout();
    c.played();
    c.wait_timeout();
    c.played();
    assert_eq!(plays(&c.wait_timeout()), [["msg/to_agent"]]);
}

fn out_of_hours() -> (Call, Vec<Command>) {
    let night = instant(
        "2026-03-12".parse().unwrap(),
        "22:30".parse().unwrap(),
        UtcOffset::SHANGHAI,
    );
    let (mut c, _) = Call::start_at(night, Call::ordinary());
    let out = c.played();
    (c, out)
}

#[test]
fn out_of_hours_callback_request() {
    let (mut c, out) = out_of_hours();
    assert_eq!(plays(&out), [["msg/closed", "msg/callback_offer"]]);
    let out = c.press("1");
    assert_eq!(
        out[1],
        Command::RequestCallback {
            number: "13800001234".into()
        }
    );
    assert_eq!(plays(&out), [["msg/callback_recorded"]]);
    assert_eq!(plays(&c.played()), [["msg/goodbye"]]);
    assert_eq!(c.played(), [Command::Hangup]);
    assert!(c.s.is_finished());
}

#[test]
fn out_of_hours_without_caller_number_offers_no_callback() {
    let night = instant(
        "2026-03-12".parse().unwrap(),
        "07:59".parse().unwrap(),
        UtcOffset::SHANGHAI,
    );
    let (mut c, _) = Call::start_at(
        night,
        CallInfo {
            caller_id: String::new(),
            ..Call::ordinary()
        },
    );
    assert_eq!(plays(&c.played()), [["msg/closed"]]);
    assert_eq!(plays(&c.played()), [["msg/goodbye"]]);
    assert_eq!(c.played(), [Command::Hangup]);
}

#[test]
fn out_of_hours_without_answer_hangs_up() {
    let (mut c, _) = out_of_hours();
    c.played();
    assert_eq!(plays(&c.wait_timeout()), [["msg/goodbye"]]);
    assert_eq!(c.played(), [Command::Hangup]);
}

#[test]
fn caller_hangup_stops_everything() {
    let mut c = start_self_service();
    c.played();
    c.s.handle_hangup(c.now);
    assert!(c.s.is_finished());
    assert_eq!(c.s.poll_timeout(), None);
    c.press("1234#");
    assert!(c.drain().is_empty());
}

#[test]
fn a_goto_loop_hangs_up_instead_of_spinning() {
    let text = r#"
        name = "loop"
        start = "a"
        [[node]]
        name = "a"
        type = "goto"
        target = "b"
        [[node]]
        name = "b"
        type = "goto"
        target = "a"
    "#;
    let flow = Arc::new(parse_flow(text, "loop.toml", None).unwrap());
    let mut s = IvrSession::new(flow, CallInfo::default());
    s.start(0);
    assert_eq!(s.poll_command(), Some(Command::Hangup));
    assert!(s.is_finished());
}

#[test]
fn literal_and_variable_say_and_survey_and_transfer_nodes() {
    let text = r#"
        name = "misc"
        start = "code"
        [[node]]
        name = "code"
        type = "collect"
        prompts = ["ss/enter_code"]
        var = "code"
        max_digits = 3
        next = "echo"
        on_failure = "bye"
        [[node]]
        name = "echo"
        type = "say"
        what = "digits"
        var = "code"
        next = "fee"
        [[node]]
        name = "fee"
        type = "say"
        what = "money"
        value = "2000"
        prompts_before = ["cal/deposit"]
        next = "pick"
        [[node]]
        name = "pick"
        type = "menu"
        prompts = ["msg/back_menu"]
        options = { "1" = "survey", "2" = "xfer" }
        on_failure = "bye"
        [[node]]
        name = "survey"
        type = "survey"
        [[node]]
        name = "xfer"
        type = "transfer"
        target = "sip:12345@gw"
        [[node]]
        name = "bye"
        type = "hangup"
    "#;
    let flow = Arc::new(parse_flow(text, "misc.toml", None).unwrap());
    for (key, last) in [
        ('1', Command::StartSurvey),
        (
            '2',
            Command::Transfer {
                target: "sip:12345@gw".into(),
            },
        ),
    ] {
        let mut c = Call {
            s: IvrSession::new(flow.clone(), CallInfo::default()),
            now: 0,
            playing: None,
            lookup: None,
        };
        c.s.start(0);
        c.drain();
        assert_eq!(plays(&c.press("110")), [["num/yao", "num/yao", "num/0"]]);
        assert_eq!(
            plays(&c.played()),
            [[
                "cal/deposit",
                "num/liang",
                "unit/qian",
                "word/yuan",
                "word/zheng"
            ]]
        );
        c.played();
        c.played();
        c.s.handle_digit(c.now, key);
        assert_eq!(c.drain(), [last]);
        assert!(c.s.is_finished());
    }
}
