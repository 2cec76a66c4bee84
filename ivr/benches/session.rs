//! IVR sessions per second through the default flow, on virtual time.
//!
//! `cargo bench -p hotline-ivr --bench session` (results in bench/README.md).
//!
//! Each session is the self-service path of the default flow: welcome → menu 2 →
//! application code + # → last 4 digits + # → lookup (answered at once) → status spoken →
//! 0 → enqueue. Every playback is reported finished at once, so this measures the engine's
//! own cost per call (flow walking, Say fragments, commands), not audio time.

use std::sync::Arc;
use std::time::Instant;

use hotline_ivr::bidder::{
    ActivationStatus, AuctionResult, BidderStatus, DepositStatus, PaymentStatus, RefundStatus,
};
use hotline_ivr::civil::Date;
use hotline_ivr::flow::default_flow;
use hotline_ivr::{CallInfo, Command, IvrSession, LookupOutcome};

/// 2026-11-30 10:00 in Beijing: inside service hours.
const NOW: i64 = 1_796_004_000_000;

fn status() -> BidderStatus {
    BidderStatus {
        application_code: "2511000000042".into(),
        deposit: DepositStatus::Received {
            on: Date::new(2026, 11, 5).expect("date"),
        },
        activation: ActivationStatus::Activated,
        result: AuctionResult::Lost,
        payment: PaymentStatus::NotApplicable,
        refund: RefundStatus::Done {
            on: Date::new(2026, 11, 20).expect("date"),
        },
    }
}

/// Runs one session to the queue; returns the number of commands it produced.
fn one_call(flow: &Arc<hotline_ivr::Flow>, found: &BidderStatus) -> usize {
    let mut s = IvrSession::new(
        flow.clone(),
        CallInfo {
            caller_id: "13900000042".into(),
            from_12345: false,
            calendar: None,
        },
    );
    let mut now = NOW;
    s.start(now);
    let mut keys = "22511000000042#0042#0".chars();
    let mut commands = 0;
    loop {
        let mut last_play = None;
        while let Some(c) = s.poll_command() {
            commands += 1;
            match c {
                Command::Play { id, .. } => last_play = Some(id),
                Command::Lookup { request, .. } => {
                    s.handle_lookup_result(now, request, LookupOutcome::Found(found.clone()))
                }
                Command::Enqueue { .. } => return commands,
                Command::Hangup => panic!("the flow hung up at {}", s.current_node()),
                _ => {}
            }
        }
        now += 20;
        if let Some(id) = last_play {
            s.handle_playback_finished(now, id);
            continue;
        }
        match keys.next() {
            Some(k) => s.handle_digit(now, k),
            None => panic!("stuck at {}", s.current_node()),
        }
    }
}

fn main() {
    let flow = Arc::new(default_flow());
    let found = status();
    // Warm up and check the path once.
    assert!(one_call(&flow, &found) > 5);
    let n = 200_000;
    let t = Instant::now();
    let mut commands = 0;
    for _ in 0..n {
        commands += one_call(&flow, &found);
    }
    let el = t.elapsed().as_secs_f64();
    println!(
        "ivr sessions: {n} self-service calls in {el:.2} s = {:.0} sessions/s per core ({:.1} commands each)",
        f64::from(n) / el,
        commands as f64 / f64::from(n)
    );
}
