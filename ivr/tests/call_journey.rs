//! A caller's whole journey through the three engines, driven the way the binary drives
//! them (sans-IO, virtual time): IVR menu → ACD → agent → agent hangs up → survey.

use std::sync::Arc;

use hotline_core::UnixMillis;
use hotline_ivr::bidder::{
    ActivationStatus, AuctionResult, BidderStatus, DepositStatus, PaymentStatus, RefundStatus,
};
use hotline_ivr::civil::{UtcOffset, instant};
use hotline_ivr::flow::default_flow;
use hotline_ivr::survey::{Rating, SurveyOutcome};
use hotline_ivr::{
    Acd, AcdCommand, AcdConfig, BidderDirectory, BidderTable, CallInfo, Command, IvrSession,
    LookupOutcome, Survey, SurveyCommand, SurveyConfig,
};

fn ten_am() -> UnixMillis {
    instant(
        "2026-03-12".parse().unwrap(),
        "10:00".parse().unwrap(),
        UtcOffset::SHANGHAI,
    )
}

/// Finishes whatever plays, answers lookups from `dir`, until the session is finished;
/// `keys` are pressed one by one whenever the session waits for input, and once they are
/// used up, timers fire.
fn run_ivr(
    s: &mut IvrSession,
    now: &mut UnixMillis,
    dir: &dyn BidderDirectory,
    keys: &str,
) -> Vec<Command> {
    let mut keys = keys.chars();
    let mut all = Vec::new();
    for _ in 0..100 {
        let mut progressed = false;
        while let Some(cmd) = s.poll_command() {
            progressed = true;
            all.push(cmd.clone());
            match cmd {
                Command::Play { id, .. } => {
                    *now += 1_000;
                    s.handle_playback_finished(*now, id);
                }
                Command::Lookup {
                    request,
                    application_code,
                    mobile_last4,
                } => {
                    let outcome = match dir.lookup(&application_code, &mobile_last4) {
                        Ok(Some(st)) => LookupOutcome::Found(st),
                        Ok(None) => LookupOutcome::NotFound,
                        Err(e) => LookupOutcome::Failed(e.to_string()),
                    };
                    s.handle_lookup_result(*now, request, outcome);
                }
                _ => {}
            }
        }
        if s.is_finished() {
            break;
        }
        if !progressed {
            match keys.next() {
                Some(k) => s.handle_digit(*now, k),
                None => {
                    *now = s.poll_timeout().expect("waiting on something");
                    s.handle_timeout(*now);
                }
            }
        }
    }
    all
}

#[test]
fn menu_zero_agent_answers_hangs_up_caller_rates() {
    let flow = Arc::new(default_flow());
    let mut now = ten_am();
    let mut ivr = IvrSession::new(
        flow,
        CallInfo {
            caller_id: "13900002222".into(),
            ..CallInfo::default()
        },
    );
    ivr.start(now);
    let cmds = run_ivr(&mut ivr, &mut now, &BidderTable::new(), "0");
    let Some(Command::Enqueue {
        queue,
        priority,
        caller_id,
    }) = cmds.last().cloned()
    else {
        panic!("{cmds:?}")
    };
    assert_eq!((queue.as_str(), priority), ("hotline", 0));

    let mut acd = Acd::new(AcdConfig::default());
    acd.login(now, "seat1", &["hotline"]).unwrap();
    acd.enqueue(now, "call-1", &caller_id, &queue, priority)
        .unwrap();
    let cmds: Vec<_> = std::iter::from_fn(|| acd.poll_command()).collect();
    assert!(cmds.contains(&AcdCommand::Ring {
        call_id: "call-1".into(),
        agent: "seat1".into()
    }));
    now += 4_000;
    acd.handle_agent_answered(now, "call-1", "seat1").unwrap();
    now += 90_000;
    acd.handle_agent_hangup(now, "call-1").unwrap();
    let cmds: Vec<_> = std::iter::from_fn(|| acd.poll_command()).collect();
    let Some(AcdCommand::StartSurvey { call_id, agent }) = cmds.last().cloned() else {
        panic!("{cmds:?}")
    };

    let mut survey = Survey::new(SurveyConfig::default(), &call_id, &agent);
    survey.start(now);
    let Some(SurveyCommand::Play { id, .. }) = survey.poll_command() else {
        panic!()
    };
    survey.handle_playback_finished(now + 3_000, id);
    survey.handle_digit(now + 4_000, '1');
    let result = std::iter::from_fn(|| survey.poll_command())
        .find_map(|c| match c {
            SurveyCommand::Finished(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(result.outcome, SurveyOutcome::Rated(Rating::Satisfied));
    assert_eq!(
        (result.call_id.as_str(), result.agent.as_str()),
        ("call-1", "seat1")
    );
}

#[test]
fn self_service_through_the_table_port() {
    let table = BidderTable::new();
    table.upsert(
        "13900005678",
        BidderStatus {
            application_code: "2026030112345".into(),
            deposit: DepositStatus::Received {
                on: "2026-03-04".parse().unwrap(),
            },
            activation: ActivationStatus::Activated,
            result: AuctionResult::Won,
            payment: PaymentStatus::Due {
                by: "2026-03-30".parse().unwrap(),
            },
            refund: RefundStatus::NotApplicable,
        },
    );
    let mut now = ten_am();
    let mut ivr = IvrSession::new(Arc::new(default_flow()), CallInfo::default());
    ivr.start(now);
    // 2, the code + #, the last four digits; then silence until the after-status menu
    // gives up and says goodbye.
    let cmds = run_ivr(&mut ivr, &mut now, &table, "22026030112345#5678");
    let spoken: Vec<&str> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Play { prompts, .. } => Some(prompts.first().unwrap().as_str()),
            _ => None,
        })
        .collect();
    assert!(spoken.contains(&"st/deposit_on"), "{spoken:?}");
    assert_eq!(cmds.last(), Some(&Command::Hangup));
    assert_eq!(ivr.var("mobile_last4"), Some("5678"));
}
