//! Statistics through the store and the monthly report read back with calamine, from the
//! same synthetic day as the unit tests of `stats` (values worked out by hand there).

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use hotline_core::id::SeededRng;
use hotline_core::{Role, UnixMillis};
use hotline_crm::calendar::{CST_OFFSET_MIN, YearMonth, from_local};
use hotline_crm::callback::{CallbackOutcome, CallbackSource, NewCallback};
use hotline_crm::export::{REPORT_TITLE, monthly_report_xlsx, stats_csv, stats_xlsx};
use hotline_crm::stats::{CallFact, Dimension, NotReadyPeriod, Period, StatsQuery, day_range};
use hotline_crm::store::{CrmConfig, NewTicket};
use hotline_crm::survey::{SurveyAnswer, SurveyRating};
use hotline_crm::{Actor, CrmStore, TicketKind};

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
        caller: format!("1380000000{}", id.len()),
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

async fn load_day(s: &CrmStore) -> anyhow::Result<()> {
    let rng = SeededRng::new(11);
    let now = t(23, 0, 0);
    let oct31 = from_local(2026, 10, 31, 23, 59, CST_OFFSET_MIN) + 59 * SEC;
    for c in [
        // the month before: in neither the day nor the month
        call(
            "c0",
            "main",
            Some("a1"),
            oct31,
            Some(oct31 + 5 * SEC),
            oct31 + 60 * SEC,
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
    ] {
        s.record_call(now, &rng, &c).await?;
    }
    for (agent, a, b) in [
        ("a1", t(0, 0, -600), t(0, 10, 0)),
        ("a1", t(11, 0, 0), t(11, 15, 0)),
        ("a2", t(9, 55, 0), t(10, 5, 0)),
    ] {
        let id = hotline_core::IdGenerator::new_id(a, &rng);
        let period = NotReadyPeriod {
            agent: agent.into(),
            from_at: a,
            to_at: b,
            reason: "休息".into(),
        };
        s.record_not_ready(&id, &period).await?;
        // Stored again (a retried write): still one period.
        s.record_not_ready(&id, &period).await?;
    }
    for (call_id, agent, queue, rating, at) in [
        ("c1", "a1", "main", SurveyRating::Satisfied, t(9, 5, 40)),
        ("c2", "a2", "main", SurveyRating::Dissatisfied, t(9, 12, 55)),
        (
            "c5",
            "a1",
            "complaint",
            SurveyRating::FairlySatisfied,
            t(10, 25, 50),
        ),
        ("c6", "a2", "main", SurveyRating::HungUp, t(10, 43, 35)),
    ] {
        s.record_survey(
            now,
            &rng,
            &SurveyAnswer {
                call_id: call_id.into(),
                agent: agent.into(),
                queue: queue.into(),
                rating,
                at,
            },
        )
        .await?;
    }
    s.create_ticket(
        t(12, 0, 0),
        &rng,
        &Actor::new("a1", Role::Agent),
        NewTicket {
            kind: Some(TicketKind::Complaint),
            title: "投诉".into(),
            named_agent: Some("a2".into()),
            ..NewTicket::default()
        },
    )
    .await?;
    let cb = s
        .create_callback(
            t(13, 0, 0),
            &rng,
            NewCallback {
                source: CallbackSource::QueueRequest,
                phone: "13800000002".into(),
                call_id: None,
                ticket_id: None,
                queue: Some("main".into()),
                note: String::new(),
                requested_at: t(13, 0, 0),
            },
        )
        .await?;
    s.record_callback_attempt(
        t(14, 0, 0),
        &rng,
        &Actor::new("a1", Role::Agent),
        &cb.id,
        CallbackOutcome::Reached,
        "",
    )
    .await?;
    Ok(())
}

hotline_testkit::db_test!(
    statistics_from_storage_match_the_hand_computed_day,
    |db| async move {
        let dir = tempfile::tempdir()?;
        let s = CrmStore::new(db.pool.clone(), CrmConfig::default(), dir.path());
        load_day(&s).await?;
        let (from, to) = day_range(2026, 11, 29, CST_OFFSET_MIN);
        let q = |period, dimension| StatsQuery {
            from,
            to,
            period,
            dimension,
        };
        let day = s.statistics(q(Period::Day, Dimension::Total)).await?;
        let r = &day[0];
        assert_eq!(
            (r.offered, r.answered, r.abandoned, r.short_abandoned),
            (6, 4, 1, 1)
        );
        assert_eq!(r.answer_rate(), Some(0.8));
        assert_eq!(r.service_level(), Some(0.6));
        assert_eq!(r.asa_secs(), Some(15.0));
        assert_eq!(r.aht_secs(), Some(331.25));
        assert_eq!(r.longest_wait_secs(), 60.0);
        assert_eq!(r.not_ready_secs(), 2100.0);
        assert_eq!(r.satisfaction_rate(), Some(2.0 / 3.0));
        assert_eq!((r.complaints, r.callbacks_done), (1, 1));
        let agents = s.statistics(q(Period::Day, Dimension::Agent)).await?;
        let a2 = agents.iter().find(|r| r.key == "a2").unwrap();
        assert_eq!(
            (a2.aht_secs(), a2.complaints, a2.not_ready_secs()),
            (Some(167.5), 1, 600.0)
        );
        let hours = s.statistics(q(Period::Hour, Dimension::Total)).await?;
        assert_eq!(hours.len(), 24);
        assert_eq!(hours[9].asa_secs(), Some(17.5));
        assert!(
            s.statistics(StatsQuery {
                from: to,
                to: from,
                period: Period::Day,
                dimension: Dimension::Total
            })
            .await
            .is_err()
        );

        // exports of the same rows
        let csv = String::from_utf8(stats_csv(&day)?)?;
        assert!(
            csv.contains(
                "2026-11-29,全部,6,4,1,1,80.00%,60.00%,15.00,331.25,60.00,2100.00,3,2,66.67%,1,1"
            ),
            "{csv}"
        );
        let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(stats_xlsx(&agents, "坐席")?))?;
        let range = wb.worksheet_range("坐席")?;
        assert_eq!(range.get_value((2, 1)), Some(&Data::String("a2".into())));
        assert_eq!(range.get_value((2, 9)), Some(&Data::Float(167.5)));
        Ok(())
    }
);

hotline_testkit::db_test!(monthly_report_has_the_fixed_layout, |db| async move {
    let dir = tempfile::tempdir()?;
    let s = CrmStore::new(db.pool.clone(), CrmConfig::default(), dir.path());
    load_day(&s).await?;
    let data = s.monthly_data(YearMonth::new(2026, 11).unwrap()).await?;
    assert_eq!(data.days.len(), 30);
    let bytes = monthly_report_xlsx(&data)?;
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes))?;
    assert_eq!(
        wb.sheet_names(),
        ["月度统计报表", "每日明细", "坐席明细", "队列明细"]
    );
    let r = wb.worksheet_range("月度统计报表")?;
    let s_ = |v: &str| Some(Data::String(v.into()));
    let cell = |row: u32, col: u32| r.get_value((row, col)).cloned();
    assert_eq!(cell(0, 0), s_(REPORT_TITLE));
    assert_eq!(cell(1, 1), s_("2026年11月"));
    // summary block: A5.. labels, B5.. values
    let expected = [
        ("呼入总量", Data::Float(6.0)),
        ("人工接通量", Data::Float(4.0)),
        ("放弃量", Data::Float(1.0)),
        ("短时放弃量", Data::Float(1.0)),
        ("接通率", Data::Float(0.8)),
        ("服务水平(20秒内接通)", Data::Float(0.6)),
        ("平均应答时长(秒)", Data::Float(15.0)),
        ("平均处理时长(秒)", Data::Float(331.25)),
        ("最长等待时长(秒)", Data::Float(60.0)),
        // the day's 2100 s plus the 600 s on the 28th of the period across midnight
        ("坐席示忙时长(秒)", Data::Float(2700.0)),
        ("满意度参评数", Data::Float(3.0)),
        ("满意率", Data::Float(2.0 / 3.0)),
        ("投诉量", Data::Float(1.0)),
        ("回访任务数", Data::Float(1.0)),
        ("回访完成量", Data::Float(1.0)),
    ];
    for (i, (label, value)) in expected.iter().enumerate() {
        let row = 4 + i as u32;
        assert_eq!(cell(row, 0), s_(label), "A{}", row + 1);
        assert_eq!(cell(row, 1).as_ref(), Some(value), "B{} {label}", row + 1);
    }
    // tickets by kind: header at row 21 (1-based 22), complaint is the second kind
    assert_eq!(cell(21, 1), s_("本月受理"));
    assert_eq!(cell(23, 0), s_("投诉"));
    assert_eq!(cell(23, 1), Some(Data::Float(1.0)));
    // daily sheet: the 29th is row 30 (after the header), the total row after all days
    let d = wb.worksheet_range("每日明细")?;
    assert_eq!(
        d.get_value((29, 0)),
        Some(&Data::String("2026-11-29".into()))
    );
    assert_eq!(d.get_value((29, 2)), Some(&Data::Float(6.0)));
    assert_eq!(d.get_value((28, 2)), Some(&Data::Float(0.0)));
    assert_eq!(d.get_value((31, 0)), Some(&Data::String("合计".into())));
    assert_eq!(d.get_value((31, 8)), Some(&Data::Float(15.0)));
    let a = wb.worksheet_range("坐席明细")?;
    assert_eq!(
        a.get_value((0, 17)),
        Some(&Data::String("属实投诉量".into()))
    );
    assert_eq!(a.get_value((2, 1)), Some(&Data::String("a2".into())));
    assert_eq!(a.get_value((2, 15)), Some(&Data::Float(1.0)));
    Ok(())
});
