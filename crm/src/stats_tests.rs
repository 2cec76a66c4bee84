//! A fixed synthetic day of calls (2026-11-29, local time +08:00); every expected value is
//! worked out by hand in the comments and must match to the second.

use super::*;
use crate::calendar::CST_OFFSET_MIN;
use crate::survey::SurveyRating;

const SEC: i64 = 1000;

fn t(h: u32, m: u32, s: i64) -> UnixMillis {
    from_local(2026, 11, 29, h, m, CST_OFFSET_MIN) + s * SEC
}

#[allow(clippy::too_many_arguments)]
fn call(
    id: &str,
    queue: &str,
    agent: Option<&str>,
    offered: UnixMillis,
    answered: Option<UnixMillis>,
    ended: UnixMillis,
    wrap_s: i64,
    abandoned: bool,
) -> CallFact {
    CallFact {
        call_id: id.into(),
        queue: queue.into(),
        caller: "13800000000".into(),
        agent: agent.map(str::to_string),
        offered_at: offered,
        answered_at: answered,
        ended_at: Some(ended),
        wrap_up_ms: wrap_s * SEC,
        abandoned,
        recording_id: None,
        ivr_path: String::new(),
    }
}

fn survey(
    call_id: &str,
    agent: &str,
    queue: &str,
    rating: SurveyRating,
    at: UnixMillis,
) -> SurveyAnswer {
    SurveyAnswer {
        call_id: call_id.into(),
        agent: agent.into(),
        queue: queue.into(),
        rating,
        at,
    }
}

/// The day:
/// c1 main   09:00:00 answered +10 s by a1, talk 300 s, wrap 30 s
/// c2 main   09:10:00 answered +25 s by a2, talk 120 s, wrap 20 s  (outside 20 s)
/// c3 main   09:20:00 abandoned after 3 s                       (short abandon)
/// c4 main   09:30:00 abandoned after 60 s
/// c5 complaint 10:15:00 answered +20 s by a1, talk 600 s, wrap 60 s (20 s counts as within)
/// c6 main   10:40:00 answered +5 s by a2, talk 180 s, wrap 15 s
/// c0 main   the day before 23:59:59 answered — outside the range
/// not ready: a1 28th 23:50 – 29th 00:10 (600 s inside), a1 11:00–11:15 (900 s),
///            a2 09:55–10:05 (300 s in hour 09, 300 s in hour 10)
/// surveys: c1 satisfied, c2 dissatisfied, c5 fairly satisfied, c6 hung up
/// complaint naming a2 at 12:00; a callback finished by a1 at 14:00.
fn day() -> StatsInput {
    let calls = vec![
        call(
            "c0",
            "main",
            Some("a1"),
            t(0, 0, -1),
            Some(t(0, 0, 5)),
            t(0, 5, 0),
            10,
            false,
        ),
        call(
            "c1",
            "main",
            Some("a1"),
            t(9, 0, 0),
            Some(t(9, 0, 10)),
            t(9, 5, 10),
            30,
            false,
        ),
        call(
            "c2",
            "main",
            Some("a2"),
            t(9, 10, 0),
            Some(t(9, 10, 25)),
            t(9, 12, 25),
            20,
            false,
        ),
        call("c3", "main", None, t(9, 20, 0), None, t(9, 20, 3), 0, true),
        call("c4", "main", None, t(9, 30, 0), None, t(9, 31, 0), 0, true),
        call(
            "c5",
            "complaint",
            Some("a1"),
            t(10, 15, 0),
            Some(t(10, 15, 20)),
            t(10, 25, 20),
            60,
            false,
        ),
        call(
            "c6",
            "main",
            Some("a2"),
            t(10, 40, 0),
            Some(t(10, 40, 5)),
            t(10, 43, 5),
            15,
            false,
        ),
    ];
    let nr = |agent: &str, a: UnixMillis, b: UnixMillis| NotReadyPeriod {
        agent: agent.into(),
        from_at: a,
        to_at: b,
        reason: "休息".into(),
    };
    StatsInput {
        calls,
        not_ready: vec![
            nr("a1", t(0, 0, -600), t(0, 10, 0)),
            nr("a1", t(11, 0, 0), t(11, 15, 0)),
            nr("a2", t(9, 55, 0), t(10, 5, 0)),
        ],
        surveys: vec![
            survey("c1", "a1", "main", SurveyRating::Satisfied, t(9, 5, 40)),
            survey("c2", "a2", "main", SurveyRating::Dissatisfied, t(9, 12, 55)),
            survey(
                "c5",
                "a1",
                "complaint",
                SurveyRating::FairlySatisfied,
                t(10, 25, 50),
            ),
            survey("c6", "a2", "main", SurveyRating::HungUp, t(10, 43, 35)),
        ],
        complaints: vec![AgentMark {
            agent: "a2".into(),
            at: t(12, 0, 0),
        }],
        callbacks_done: vec![AgentMark {
            agent: "a1".into(),
            at: t(14, 0, 0),
        }],
    }
}

fn query(period: Period, dimension: Dimension) -> StatsQuery {
    let (from, to) = day_range(2026, 11, 29, CST_OFFSET_MIN);
    StatsQuery {
        from,
        to,
        period,
        dimension,
    }
}

#[test]
fn the_day_in_total() {
    let rows = compute(
        &day(),
        &StatsParams::default(),
        query(Period::Day, Dimension::Total),
    );
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r.bucket.as_str(), r.key.as_str()),
        ("2026-11-29", TOTAL_KEY)
    );
    // 6 offered; answered c1 c2 c5 c6; c3 short; c4 abandoned
    assert_eq!(
        (r.offered, r.answered, r.abandoned, r.short_abandoned),
        (6, 4, 1, 1)
    );
    // base 6 - 1 = 5: answer rate 4/5; within 20 s: c1 c5 c6 → 3/5
    assert_eq!(r.answer_rate(), Some(0.8));
    assert_eq!(r.service_level(), Some(0.6));
    // ASA (10+25+20+5)/4 = 15 s
    assert_eq!(r.asa_secs(), Some(15.0));
    // AHT (330+140+660+195)/4 = 331.25 s
    assert_eq!(r.aht_secs(), Some(331.25));
    assert_eq!(r.longest_wait_secs(), 60.0);
    // 600 + 900 + 600
    assert_eq!(r.not_ready_secs(), 2100.0);
    // rated c1 c2 c5, satisfied c1 c5
    assert_eq!((r.surveys_rated, r.surveys_satisfied), (3, 2));
    assert_eq!(r.satisfaction_rate(), Some(2.0 / 3.0));
    assert_eq!((r.complaints, r.callbacks_done), (1, 1));
    // the month view of the same range is the same numbers
    let m = compute(
        &day(),
        &StatsParams::default(),
        query(Period::Month, Dimension::Total),
    );
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].bucket, "2026-11");
    assert_eq!(
        StatsRow {
            bucket: r.bucket.clone(),
            bucket_start: r.bucket_start,
            ..m[0].clone()
        },
        *r
    );
}

#[test]
fn the_day_per_agent() {
    let rows = compute(
        &day(),
        &StatsParams::default(),
        query(Period::Day, Dimension::Agent),
    );
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["a1", "a2"]);
    let (a1, a2) = (&rows[0], &rows[1]);
    assert_eq!((a1.offered, a1.answered, a1.answered_within_sl), (2, 2, 2));
    assert_eq!(a1.asa_secs(), Some(15.0)); // (10+20)/2
    assert_eq!(a1.aht_secs(), Some(495.0)); // (330+660)/2
    assert_eq!(a1.longest_wait_secs(), 20.0);
    assert_eq!(a1.not_ready_secs(), 1500.0);
    assert_eq!(a1.satisfaction_rate(), Some(1.0));
    assert_eq!((a1.complaints, a1.callbacks_done), (0, 1));
    assert_eq!(a2.service_level(), Some(0.5));
    assert_eq!(a2.asa_secs(), Some(15.0)); // (25+5)/2
    assert_eq!(a2.aht_secs(), Some(167.5)); // (140+195)/2
    assert_eq!(a2.not_ready_secs(), 600.0);
    assert_eq!(a2.satisfaction_rate(), Some(0.0));
    assert_eq!(a2.complaints, 1);
}

#[test]
fn the_day_per_queue() {
    let rows = compute(
        &day(),
        &StatsParams::default(),
        query(Period::Day, Dimension::Queue),
    );
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["complaint", "main"]);
    let (c, m) = (&rows[0], &rows[1]);
    assert_eq!((c.offered, c.answered, c.aht_secs()), (1, 1, Some(660.0)));
    assert_eq!(
        (m.offered, m.answered, m.abandoned, m.short_abandoned),
        (5, 3, 1, 1)
    );
    assert_eq!(m.answer_rate(), Some(0.75)); // 3/4
    assert_eq!(m.service_level(), Some(0.5)); // c1 c6 of 4
    assert_eq!(m.asa_secs(), Some(40.0 / 3.0)); // (10+25+5)/3
    assert_eq!(m.longest_wait_secs(), 60.0);
    assert_eq!(m.not_ready_ms, 0, "not attributed to queues");
    assert_eq!((m.surveys_rated, m.surveys_satisfied), (2, 1));
}

#[test]
fn the_day_per_hour() {
    let rows = compute(
        &day(),
        &StatsParams::default(),
        query(Period::Hour, Dimension::Total),
    );
    assert_eq!(rows.len(), 24, "every hour has a row");
    assert_eq!(rows[0].bucket, "2026-11-29 00:00");
    assert_eq!(rows[0].not_ready_secs(), 600.0);
    assert_eq!(rows[0].offered, 0, "the call of the day before is outside");
    let h9 = &rows[9];
    assert_eq!(h9.bucket, "2026-11-29 09:00");
    assert_eq!(
        (h9.offered, h9.answered, h9.abandoned, h9.short_abandoned),
        (4, 2, 1, 1)
    );
    assert_eq!(h9.service_level(), Some(1.0 / 3.0));
    assert_eq!(h9.asa_secs(), Some(17.5));
    assert_eq!(h9.not_ready_secs(), 300.0);
    assert_eq!((h9.surveys_rated, h9.surveys_satisfied), (2, 1));
    let h10 = &rows[10];
    assert_eq!(
        (h10.offered, h10.answered, h10.answered_within_sl),
        (2, 2, 2)
    );
    assert_eq!(h10.asa_secs(), Some(12.5));
    assert_eq!(h10.aht_secs(), Some(427.5)); // (660+195)/2
    assert_eq!(h10.not_ready_secs(), 300.0);
    assert_eq!(rows[11].not_ready_secs(), 900.0);
    assert_eq!(rows[12].complaints, 1);
    assert_eq!(rows[14].callbacks_done, 1);
    // the hours add up to the day
    let day_rows = compute(
        &day(),
        &StatsParams::default(),
        query(Period::Day, Dimension::Total),
    );
    let sum = sum_rows(&rows, "2026-11-29", TOTAL_KEY);
    assert_eq!(sum, day_rows[0]);
}

#[test]
fn short_abandon_threshold_is_a_parameter() {
    let p = StatsParams {
        short_abandon_ms: 0,
        ..StatsParams::default()
    };
    let rows = compute(&day(), &p, query(Period::Day, Dimension::Total));
    assert_eq!((rows[0].abandoned, rows[0].short_abandoned), (2, 0));
    assert_eq!(rows[0].answer_rate(), Some(4.0 / 6.0));
}

#[test]
fn buckets_follow_local_time() {
    let off = CST_OFFSET_MIN;
    // 2026-11-30 16:30 UTC is 2026-12-01 00:30 in Tianjin
    let x = from_local(2026, 11, 30, 16, 30, 0);
    assert_eq!(
        Period::Month.label(Period::Month.bucket_start(x, off), off),
        "2026-12"
    );
    assert_eq!(
        Period::Day.label(Period::Day.bucket_start(x, off), off),
        "2026-12-01"
    );
    assert_eq!(
        Period::Hour.label(Period::Hour.bucket_start(x, off), off),
        "2026-12-01 00:00"
    );
    assert!(Period::parse("week").is_err());
    assert!(Dimension::parse("seat").is_err());
}
