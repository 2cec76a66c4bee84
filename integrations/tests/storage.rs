//! Storage tests of the integrations, each on SQLite and PostgreSQL: bidder imports (both
//! encodings, XLSX, every kind of bad row, idempotency, dry run), the deposit matcher's cases
//! one by one with 手工勾兑, refund failures and the published list, the calendar, the IVR
//! lookup and screen-pop, and the 12345 orders, nonces and outbox.

use std::collections::HashMap;
use std::path::Path;

use hotline_core::SystemRng;
use hotline_integrations::bank::{
    self, DepositFlowColumns, DepositRules, MismatchFilter, RefundFailureColumns, Resolution,
};
use hotline_integrations::bidders::{
    self, ColumnMapping, DepositStatus, ImportReport, ImportRun, RefundStatus,
};
use hotline_integrations::calendar::{self, CalendarInput};
use hotline_integrations::lookup::{self, LookupAnswer, SelfServiceGate};
use hotline_integrations::table::{FileFormat, TextEncoding, read_table};
use hotline_integrations::text::Date;
use hotline_integrations::workorder;
use sqlx::AnyPool;

const T0: i64 = 1_764_000_000_000;
const P: &str = "2025-11";

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn run(dry_run: bool) -> ImportRun<'static> {
    ImportRun {
        period: P,
        file_name: "f.csv",
        file_sha256: "x",
        actor: "biz",
        dry_run,
    }
}

async fn import_file(pool: &AnyPool, name: &str, dry_run: bool) -> anyhow::Result<ImportReport> {
    let table = read_table(&fixture(name), FileFormat::Auto, TextEncoding::Auto)?;
    Ok(bidders::import_bidders(
        pool,
        T0,
        &SystemRng,
        &table,
        &ColumnMapping::default(),
        &run(dry_run),
    )
    .await?)
}

async fn count(pool: &AnyPool, sql: &str) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(pool)
            .await?,
    )
}

fn calendar_input() -> CalendarInput {
    serde_json::from_value(serde_json::json!({
        "period": P,
        "deposit_start": "2025-11-01",
        "deposit_end": "2025-11-10",
        "activation_start": "2025-11-01 09:00",
        "activation_end": "2025-11-25 15:00",
        "bidding_date": "2025-11-25",
        "payment_start": "2025-11-26",
        "payment_end": "2025-11-28",
        "quota_persons": 3000,
        "quota_companies": 500
    }))
    .unwrap()
}

hotline_testkit::db_test!(bidder_import_both_encodings_idempotent, |db| async move {
    // dry run: counts, nothing written
    let r = import_file(&db.pool, "bidders_utf8.csv", true).await?;
    assert_eq!((r.inserted, r.updated, r.unchanged), (7, 0, 0));
    assert!(!r.committed && r.problems.is_empty());
    assert_eq!(
        count(&db.pool, "SELECT COUNT(*) FROM auction_bidders").await?,
        0
    );

    let r = import_file(&db.pool, "bidders_utf8.csv", false).await?;
    assert_eq!((r.inserted, r.updated, r.unchanged), (7, 0, 0));
    assert!(r.committed);
    // the same content in GBK changes nothing
    let r = import_file(&db.pool, "bidders_gbk.csv", false).await?;
    assert_eq!((r.inserted, r.updated, r.unchanged), (0, 0, 7), "{r:?}");
    let before: Vec<(String, i64)> =
        sqlx::query_as("SELECT application_code, updated_at FROM auction_bidders ORDER BY 1")
            .fetch_all(&db.pool)
            .await?;
    let r = import_file(&db.pool, "bidders_utf8.csv", false).await?;
    assert_eq!(r.unchanged, 7);
    let after: Vec<(String, i64)> =
        sqlx::query_as("SELECT application_code, updated_at FROM auction_bidders ORDER BY 1")
            .fetch_all(&db.pool)
            .await?;
    assert_eq!(before, after);

    let b = bidders::get_bidder(&db.pool, P, "2511000000004")
        .await?
        .unwrap();
    assert_eq!(b.record.price_cents, 9_500_000);
    assert_eq!(b.record.deposit_date, "2025-11-03");
    assert_eq!(b.record.deposit_status, DepositStatus::Paid);
    let m = b.clone().masked();
    assert_eq!(m.record.mobile, "136****3333");
    assert!(m.record.id_number.contains("********"));
    assert_eq!(
        count(&db.pool, "SELECT COUNT(*) FROM auction_imports").await?,
        3
    );

    // a changed row is an update
    let mut text = String::from_utf8(fixture("bidders_utf8.csv"))?;
    text = text.replace("13812345678", "13812349999");
    let table = read_table(text.as_bytes(), FileFormat::Csv, TextEncoding::Auto)?;
    let r = bidders::import_bidders(
        &db.pool,
        T0 + 1,
        &SystemRng,
        &table,
        &ColumnMapping::default(),
        &run(false),
    )
    .await?;
    assert_eq!((r.inserted, r.updated, r.unchanged), (0, 1, 6));
    Ok(())
});

hotline_testkit::db_test!(
    bad_rows_write_nothing_and_are_all_reported,
    |db| async move {
        for name in ["bidders_bad_utf8.csv", "bidders_bad_gbk.csv"] {
            let r = import_file(&db.pool, name, false).await?;
            assert!(!r.committed);
            assert_eq!(r.bad_rows(), 17, "{name}: {:#?}", r.problems);
            let lines: Vec<u64> = r.problems.iter().map(|p| p.line).collect();
            assert_eq!(lines, (9..=25).collect::<Vec<u64>>(), "{name}");
            let reason_of = |line: u64| {
                r.problems
                    .iter()
                    .find(|p| p.line == line)
                    .map(|p| (p.column.clone(), p.reason.clone()))
                    .unwrap()
            };
            assert_eq!(reason_of(9).0, "申请编码");
            assert_eq!(reason_of(11).0, "类型");
            assert_eq!(reason_of(13).0, "证件号码");
            assert_eq!(reason_of(15).0, "手机号");
            assert_eq!(reason_of(21).0, "成交价");
            assert!(
                reason_of(25).1.contains("第 2 行重复"),
                "{:?}",
                reason_of(25)
            );
            // personal data stays masked in the report
            let id = r.problems.iter().find(|p| p.line == 13).unwrap();
            assert!(id.value.contains('*'), "{id:?}");
            assert!(!r.problems.iter().any(|p| p.value.contains("1381234000")));
            assert_eq!(
                count(&db.pool, "SELECT COUNT(*) FROM auction_bidders").await?,
                0
            );
        }
        assert_eq!(
            count(&db.pool, "SELECT COUNT(*) FROM auction_imports").await?,
            0
        );
        // a missing required column is an error of the file
        let table = read_table(
            "申请编码,类型\n1,个人\n".as_bytes(),
            FileFormat::Csv,
            TextEncoding::Auto,
        )?;
        let e = bidders::import_bidders(
            &db.pool,
            T0,
            &SystemRng,
            &table,
            &ColumnMapping::default(),
            &run(false),
        )
        .await
        .unwrap_err();
        assert!(e.message_zh().contains("姓名/名称"), "{e}");
        Ok(())
    }
);

hotline_testkit::db_test!(xlsx_import_with_custom_mapping, |db| async move {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let header = [
        "编号",
        "类别",
        "名称",
        "证件",
        "电话",
        "保证金状态",
        "保证金缴纳日期",
    ];
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, *h)?;
    }
    let id = "11010519491231002X";
    sheet.write_string(1, 0, "2511000000009")?;
    sheet.write_string(1, 1, "个人")?;
    sheet.write_string(1, 2, "孙八")?;
    sheet.write_string(1, 3, id)?;
    sheet.write_number(1, 4, 13812345678.0)?;
    sheet.write_string(1, 5, "已缴纳")?;
    let fmt = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    let d = rust_xlsxwriter::ExcelDateTime::from_ymd(2025, 11, 5)?;
    sheet.write_datetime_with_format(1, 6, &d, &fmt)?;
    let bytes = book.save_to_buffer()?;
    let table = read_table(&bytes, FileFormat::Auto, TextEncoding::Auto)?;
    let mapping: ColumnMapping = serde_json::from_value(serde_json::json!({
        "application_code": "编号", "kind": "类别", "name": "名称",
        "id_number": "证件", "mobile": "电话"
    }))?;
    let r =
        bidders::import_bidders(&db.pool, T0, &SystemRng, &table, &mapping, &run(false)).await?;
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.inserted, 1);
    let b = bidders::get_bidder(&db.pool, P, "2511000000009")
        .await?
        .unwrap();
    assert_eq!(b.record.mobile, "13812345678");
    assert_eq!(b.record.deposit_date, "2025-11-05");
    Ok(())
});

async fn load_period(pool: &AnyPool) -> anyhow::Result<DepositRules> {
    import_file(pool, "bidders_utf8.csv", false).await?;
    let (cal, created) = calendar::put_calendar(pool, T0, &calendar_input(), "biz").await?;
    assert!(created);
    Ok(DepositRules {
        deadline: Some(cal.deposit_deadline_at),
        deposit_cents: cal.deposit_cents,
    })
}

async fn import_deposits(
    pool: &AnyPool,
    name: &str,
    rules: DepositRules,
    dry_run: bool,
) -> anyhow::Result<ImportReport> {
    let table = read_table(&fixture(name), FileFormat::Auto, TextEncoding::Auto)?;
    Ok(bank::import_deposits(
        pool,
        T0,
        &SystemRng,
        &table,
        &DepositFlowColumns::default(),
        rules,
        &run(dry_run),
    )
    .await?)
}

hotline_testkit::db_test!(
    deposit_matching_case_by_case_and_manual_reconciliation,
    |db| async move {
        let rules = load_period(&db.pool).await?;
        let dry = import_deposits(&db.pool, "deposits_gbk.csv", rules, true).await?;
        assert!(!dry.committed);
        assert_eq!(
            count(&db.pool, "SELECT COUNT(*) FROM bank_deposits").await?,
            0
        );
        let r = import_deposits(&db.pool, "deposits_utf8.csv", rules, false).await?;
        assert_eq!(r.counts, dry.counts, "GBK and UTF-8 files agree");
        let want: HashMap<String, u64> = [
            ("matched", 3),
            ("wrong_amount", 1),
            ("duplicate", 1),
            ("unknown_code", 1),
            ("name_differs", 1),
            ("late", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(r.counts, want);
        // the same file again (either encoding) changes nothing
        let again = import_deposits(&db.pool, "deposits_gbk.csv", rules, false).await?;
        assert_eq!((again.inserted, again.unchanged), (0, 8));
        assert_eq!(
            count(&db.pool, "SELECT COUNT(*) FROM bank_deposits").await?,
            8
        );

        let paid = |code: &'static str| {
            let pool = db.pool.clone();
            async move {
                Ok::<_, anyhow::Error>(
                    bidders::get_bidder(&pool, P, code)
                        .await?
                        .unwrap()
                        .record
                        .deposit_status,
                )
            }
        };
        assert_eq!(paid("2511000000001").await?, DepositStatus::Paid);
        assert_eq!(
            paid("2511000000002").await?,
            DepositStatus::Paid,
            "foreign name, spacing and case"
        );
        assert_eq!(
            paid("2511000000006").await?,
            DepositStatus::Paid,
            "middle dot"
        );
        assert_eq!(
            paid("2511000000003").await?,
            DepositStatus::Unpaid,
            "wrong amount"
        );
        assert_eq!(
            paid("2511000000007").await?,
            DepositStatus::Unpaid,
            "name differs, late"
        );

        let open = bank::list_mismatches(&db.pool, P, MismatchFilter::Open).await?;
        let kinds: Vec<(&str, &str)> = open
            .iter()
            .map(|d| (d.bank_serial.as_str(), d.mismatch_kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("BH20251104000003", "wrong_amount"),
                ("BH20251105000005", "duplicate"),
                ("BH20251106000006", "unknown_code"),
                ("BH20251106000007", "name_differs"),
                ("BH20251110000008", "late"),
            ]
        );
        assert_eq!(open[2].mismatch_label, "无此申请编码");

        // 手工勾兑: the name differs because a relative paid for 赵六 — accept it
        let id = open[3].id.clone();
        let d = bank::resolve_mismatch(
            &db.pool,
            T0 + 5,
            &id,
            &Resolution::Accept {
                application_code: None,
            },
            "亲属代缴，已核实",
            "biz",
        )
        .await?;
        assert_eq!(
            (d.resolution.as_str(), d.resolved_by.as_str()),
            ("accepted", "biz")
        );
        assert_eq!(paid("2511000000007").await?, DepositStatus::Paid);
        // resolving twice is refused
        let e = bank::resolve_mismatch(&db.pool, T0 + 6, &id, &Resolution::Return, "", "biz")
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            hotline_integrations::IntegrationError::Conflict(_)
        ));
        // the late payment for the same code can no longer be accepted, only returned
        let late = open[4].id.clone();
        let e = bank::resolve_mismatch(
            &db.pool,
            T0 + 6,
            &late,
            &Resolution::Accept {
                application_code: None,
            },
            "",
            "biz",
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, hotline_integrations::IntegrationError::Conflict(_)),
            "{e}"
        );
        bank::resolve_mismatch(
            &db.pool,
            T0 + 6,
            &late,
            &Resolution::Return,
            "逾期到账，退回",
            "biz",
        )
        .await?;
        // an unknown code is credited to the code staff found
        let unknown = open[2].id.clone();
        let e = bank::resolve_mismatch(
            &db.pool,
            T0 + 7,
            &unknown,
            &Resolution::Accept {
                application_code: None,
            },
            "",
            "biz",
        )
        .await
        .unwrap_err();
        assert!(matches!(
            e,
            hotline_integrations::IntegrationError::NotFound(_)
        ));
        bank::resolve_mismatch(
            &db.pool,
            T0 + 7,
            &unknown,
            &Resolution::Accept {
                application_code: Some("2511000000003".into()),
            },
            "编码填错",
            "biz",
        )
        .await?;
        assert_eq!(paid("2511000000003").await?, DepositStatus::Paid);
        let open = bank::list_mismatches(&db.pool, P, MismatchFilter::Open).await?;
        assert_eq!(open.len(), 2);
        assert_eq!(
            bank::list_mismatches(&db.pool, P, MismatchFilter::Resolved)
                .await?
                .len(),
            3
        );

        // bad lines: nothing written, every line reported
        let bad = import_deposits(&db.pool, "deposits_bad.csv", rules, false).await?;
        let lines: Vec<u64> = bad.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 8], "{:#?}", bad.problems);
        assert_eq!(
            count(&db.pool, "SELECT COUNT(*) FROM bank_deposits").await?,
            8
        );
        Ok(())
    }
);

hotline_testkit::db_test!(refund_failures_and_published_list, |db| async move {
    import_file(&db.pool, "bidders_utf8.csv", false).await?;
    let c = RefundFailureColumns::default();
    let imp = |name: &'static str| {
        let pool = db.pool.clone();
        let c = c.clone();
        async move {
            let t = read_table(&fixture(name), FileFormat::Auto, TextEncoding::Auto)?;
            Ok::<_, anyhow::Error>(
                bank::import_refund_failures(&pool, T0, &SystemRng, &t, &c, &run(false)).await?,
            )
        }
    };
    let bad = imp("refund_failures_bad.csv").await?;
    let mut lines: Vec<u64> = bad.problems.iter().map(|p| p.line).collect();
    lines.dedup();
    assert_eq!(lines, vec![3, 4, 5, 6, 7, 8], "{:#?}", bad.problems);
    assert!(!bad.committed);
    let r = imp("refund_failures_utf8.csv").await?;
    assert_eq!((r.updated, r.unchanged), (2, 0));
    let r = imp("refund_failures_gbk.csv").await?;
    assert_eq!((r.updated, r.unchanged), (0, 2));
    let b = bidders::get_bidder(&db.pool, P, "2511000000003")
        .await?
        .unwrap();
    assert_eq!(b.record.refund_status, RefundStatus::Failed);
    assert_eq!(b.record.refund_failure, "账户已冻结");
    let list = bank::refund_failure_list(&db.pool, P).await?;
    let names: Vec<(&str, &str)> = list
        .iter()
        .map(|l| (l.application_code.as_str(), l.name.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("2511000000002", "J********H"),
            ("2511000000003", "天********司"),
            ("2511000000005", "王*"),
        ]
    );
    Ok(())
});

hotline_testkit::db_test!(calendar_crud, |db| async move {
    let (c, created) = calendar::put_calendar(&db.pool, T0, &calendar_input(), "biz").await?;
    assert!(created);
    assert_eq!(
        c.deposit_deadline_at,
        Date::new(2025, 11, 10).unwrap().at_beijing(17, 0, 0)
    );
    let mut changed = calendar_input();
    changed.quota_persons = 2800;
    let (c2, created) = calendar::put_calendar(&db.pool, T0 + 1, &changed, "biz2").await?;
    assert!(!created);
    assert_eq!(calendar::get_calendar(&db.pool, P).await?, Some(c2.clone()));
    assert_eq!(c2.quota_persons, 2800);
    let now_in_nov = Date::new(2025, 11, 15).unwrap().at_beijing(10, 0, 0);
    assert_eq!(
        calendar::current_calendar(&db.pool, now_in_nov).await?,
        Some(c2)
    );
    assert_eq!(calendar::list_calendars(&db.pool, 10).await?.len(), 1);
    assert!(calendar::delete_calendar(&db.pool, P).await?);
    assert!(!calendar::delete_calendar(&db.pool, P).await?);
    assert_eq!(calendar::get_calendar(&db.pool, P).await?, None);
    let _ = c;
    Ok(())
});

hotline_testkit::db_test!(ivr_lookup_and_screen_pop, |db| async move {
    import_file(&db.pool, "bidders_utf8.csv", false).await?;
    let gate = std::sync::Mutex::new(SelfServiceGate::default());
    let found =
        lookup::ivr_lookup(&db.pool, &gate, T0, "13000000000", "2511000000004", "3333").await?;
    let LookupAnswer::Found(s) = found else {
        panic!("{found:?}")
    };
    assert!(s.text_zh.contains("成交价95000元"), "{}", s.text_zh);
    // wrong pair and unknown code answer the same
    let wrong = lookup::ivr_lookup(&db.pool, &gate, T0, "c1", "2511000000004", "0000").await?;
    let unknown = lookup::ivr_lookup(&db.pool, &gate, T0, "c2", "2599999999999", "3333").await?;
    assert_eq!(wrong, LookupAnswer::NotFound);
    assert_eq!(wrong, unknown);
    // five failures block the caller, even for a right pair
    for _ in 0..3 {
        assert_eq!(
            lookup::ivr_lookup(&db.pool, &gate, T0, "c1", "x", "1").await?,
            LookupAnswer::NotFound
        );
    }
    let blocked = lookup::ivr_lookup(&db.pool, &gate, T0, "c1", "2511000000099", "1111").await?;
    assert!(
        matches!(blocked, LookupAnswer::Blocked { .. }),
        "{blocked:?}"
    );
    let still = lookup::ivr_lookup(&db.pool, &gate, T0 + 1, "c1", "2511000000004", "3333").await?;
    assert!(matches!(still, LookupAnswer::Blocked { .. }));
    let later = lookup::ivr_lookup(
        &db.pool,
        &gate,
        T0 + 31 * 60_000,
        "c1",
        "2511000000004",
        "3333",
    )
    .await?;
    assert!(matches!(later, LookupAnswer::Found(_)));

    let pop = lookup::screen_pop(&db.pool, "+86 138 1234 5678").await?;
    assert_eq!(pop.len(), 1);
    assert_eq!(pop[0].record.application_code, "2511000000001");
    assert!(
        lookup::screen_pop(&db.pool, "02223456789")
            .await?
            .is_empty()
    );
    Ok(())
});

hotline_testkit::db_test!(work_orders_nonces_and_outbox, |db| async move {
    let rng = SystemRng;
    let order: workorder::WorkOrderIn = serde_json::from_value(serde_json::json!({
        "order_no": "GD-20251110-0001", "title": "咨询保证金退款", "content": "市民询问保证金何时退还",
        "caller_phone": "13812345678", "deadline": "2025-11-12 17:00:00"
    }))?;
    let (o, created) = workorder::receive_order(&db.pool, T0, &rng, &order).await?;
    assert!(created);
    assert_eq!(o.status, "open");
    let (o2, created) = workorder::receive_order(&db.pool, T0 + 1, &rng, &order).await?;
    assert!(!created);
    assert_eq!(o, o2);
    assert_eq!(
        count(&db.pool, "SELECT COUNT(*) FROM workorders_12345").await?,
        1
    );

    assert!(workorder::accept_nonce(&db.pool, T0, "nonce-aaaa", 300_000).await?);
    assert!(!workorder::accept_nonce(&db.pool, T0 + 1, "nonce-aaaa", 300_000).await?);
    // old nonces are forgotten after twice the window
    assert!(workorder::accept_nonce(&db.pool, T0 + 600_001, "nonce-aaaa", 300_000).await?);

    let id = workorder::enqueue_reply(
        &db.pool,
        T0,
        &rng,
        &o.order_no,
        workorder::ReplyKind::Reply,
        "已答复",
        "agent1",
    )
    .await?;
    assert_eq!(
        workorder::get_order(&db.pool, &o.order_no)
            .await?
            .unwrap()
            .status,
        "replied"
    );
    let due = workorder::due_messages(&db.pool, T0, 10).await?;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, id);
    assert!(
        workorder::enqueue_reply(
            &db.pool,
            T0,
            &rng,
            "nope",
            workorder::ReplyKind::Reply,
            "x",
            "a"
        )
        .await
        .is_err()
    );
    Ok(())
});
