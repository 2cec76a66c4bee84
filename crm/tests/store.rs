//! Storage, workflow and permission tests of the CRM on SQLite and PostgreSQL.

use hotline_core::id::SeededRng;
use hotline_core::{Role, UnixMillis};
use hotline_crm::calendar::{CST_OFFSET_MIN, YearMonth, from_local};
use hotline_crm::callback::{CallbackOutcome, CallbackSource, CallbackStatus, NewCallback};
use hotline_crm::stats::{CallFact, Dimension, Period, StatsQuery};
use hotline_crm::store::{CrmConfig, Finding, NewTicket, TicketEdit, TicketFilter};
use hotline_crm::survey::{SurveyAnswer, SurveyRating};
use hotline_crm::ticket::{DepositChecklist, DepositDocument, ReviewDecision};
use hotline_crm::{Actor, CrmError, CrmStore, TicketKind, TicketStatus};
use hotline_testkit::TestDb;

fn at(d: u32, h: u32, m: u32) -> UnixMillis {
    from_local(2026, 11, d, h, m, CST_OFFSET_MIN)
}

fn store(db: &TestDb, dir: &std::path::Path) -> CrmStore {
    let mut config = CrmConfig::default();
    config.attachments.max_bytes = 4096;
    config.callbacks.sample_per_mille = 1000;
    CrmStore::new(db.pool.clone(), config, dir)
}

fn inquiry(title: &str) -> NewTicket {
    NewTicket {
        kind: Some(TicketKind::Inquiry),
        title: title.into(),
        body: "询问本月保证金缴纳截止时间".into(),
        caller_phone: "13812345678".into(),
        ..NewTicket::default()
    }
}

fn complaint_about(agent: &str) -> NewTicket {
    NewTicket {
        kind: Some(TicketKind::Complaint),
        title: "投诉坐席服务态度".into(),
        body: "坐席语气生硬".into(),
        caller_phone: "13900000001".into(),
        named_agent: Some(agent.into()),
        call_id: Some("call-9".into()),
        ..NewTicket::default()
    }
}

const PDF: &[u8] = b"%PDF-1.4 test document";

hotline_testkit::db_test!(ticket_workflow_history_and_comments, |db| async move {
    let dir = tempfile::tempdir()?;
    let s = store(&db, dir.path());
    let rng = SeededRng::new(1);
    let a1 = Actor::new("a1", Role::Agent);
    let sup = Actor::new("sup", Role::Supervisor);
    let t0 = at(29, 9, 0);
    let t = s
        .create_ticket(t0, &rng, &a1, inquiry("保证金截止时间"))
        .await?;
    assert_eq!((t.status, t.version), (TicketStatus::New, 1));
    assert_eq!(t.due_at, t0 + 24 * 3_600_000, "inquiry SLA: 24 h");
    // a 12345 order carries its own deadline, and needs its number
    let mut wo = inquiry("12345 转办");
    wo.kind = Some(TicketKind::WorkOrder12345);
    assert!(matches!(
        s.create_ticket(t0, &rng, &a1, wo.clone()).await,
        Err(CrmError::Invalid(_))
    ));
    wo.external_ref = Some("TJ12345-001".into());
    wo.external_due = Some(t0 + 5_000);
    assert_eq!(s.create_ticket(t0, &rng, &a1, wo).await?.due_at, t0 + 5_000);

    // refused through the store as well: new → in progress skips assignment
    let err = s
        .transition(t0, &rng, &a1, &t.id, TicketStatus::InProgress, "", None)
        .await
        .unwrap_err();
    assert!(matches!(err, CrmError::InvalidTransition { .. }), "{err}");
    // the agent takes the ticket, works it, waits for a callback, resolves, closes
    let t = s.assign(t0 + 1, &rng, &a1, &t.id, "a1").await?;
    assert_eq!(
        (t.status, t.assignee.as_deref()),
        (TicketStatus::Assigned, Some("a1"))
    );
    let other = Actor::new("a2", Role::Agent);
    assert!(matches!(
        s.transition(t0, &rng, &other, &t.id, TicketStatus::InProgress, "", None)
            .await,
        Err(CrmError::Forbidden(_))
    ));
    for (i, to) in [
        TicketStatus::InProgress,
        TicketStatus::AwaitingCallback,
        TicketStatus::Resolved,
    ]
    .into_iter()
    .enumerate()
    {
        s.transition(t0 + 10 + i as i64, &rng, &a1, &t.id, to, "处理", None)
            .await?;
    }
    // an out-of-date version is refused
    let cur = s.ticket(&a1, &t.id).await?;
    assert!(matches!(
        s.transition(
            t0 + 20,
            &rng,
            &a1,
            &t.id,
            TicketStatus::Closed,
            "",
            Some(cur.version - 1)
        )
        .await,
        Err(CrmError::Stale { .. })
    ));
    s.add_comment(t0 + 21, &rng, &a1, &t.id, "已电话告知截止时间")
        .await?;
    let edited = s
        .edit_ticket(
            t0 + 22,
            &rng,
            &a1,
            &t.id,
            TicketEdit {
                application_code: Some("1234567890123".into()),
                ..TicketEdit::default()
            },
        )
        .await?;
    assert_eq!(edited.application_code.as_deref(), Some("1234567890123"));
    let closed = s
        .transition(t0 + 30, &rng, &sup, &t.id, TicketStatus::Closed, "", None)
        .await?;
    assert_eq!(
        (closed.status, closed.closed_at),
        (TicketStatus::Closed, Some(t0 + 30))
    );
    assert!(matches!(
        s.transition(
            t0 + 31,
            &rng,
            &sup,
            &t.id,
            TicketStatus::InProgress,
            "",
            None
        )
        .await,
        Err(CrmError::InvalidTransition { .. })
    ));
    let hist = s.history(&a1, &t.id).await?;
    let actions: Vec<&str> = hist.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "create",
            "assign",
            "transition",
            "transition",
            "transition",
            "comment",
            "edit",
            "transition"
        ]
    );
    assert_eq!(hist[7].to_status.as_deref(), Some("closed"));
    assert_eq!(hist[6].detail["application_code"]["to"], "1234567890123");
    assert_eq!(s.comments(&a1, &t.id).await?.len(), 1);
    // masking for agents
    assert_eq!(
        closed.clone().masked_for(Role::Agent).caller_phone,
        "138****5678"
    );
    assert_eq!(
        closed.masked_for(Role::Business).caller_phone,
        "13812345678"
    );
    // lists
    let mine = s
        .list_tickets(
            &a1,
            &TicketFilter {
                assignee: Some("a1".into()),
                ..TicketFilter::default()
            },
        )
        .await?;
    assert_eq!(mine.len(), 1);
    let qa = Actor::new("qa", Role::QaReviewer);
    assert!(matches!(
        s.create_ticket(t0, &rng, &qa, inquiry("x")).await,
        Err(CrmError::Forbidden(_))
    ));
    Ok(())
});

hotline_testkit::db_test!(the_named_agent_cannot_see_a_complaint, |db| async move {
    let dir = tempfile::tempdir()?;
    let s = store(&db, dir.path());
    let rng = SeededRng::new(2);
    let t0 = at(29, 10, 0);
    let taker = Actor::new("a1", Role::Agent);
    let named = Actor::new("a7", Role::Agent);
    let officer = Actor::new("o1", Role::ComplaintOfficer);
    let contact = s.contact_by_phone(t0, &rng, "13900000001").await?;
    let mut new = complaint_about("a7");
    new.contact_id = Some(contact.id.clone());
    let c = s.create_ticket(t0, &rng, &taker, new).await?;
    s.create_ticket(t0, &rng, &taker, inquiry("普通咨询"))
        .await?;

    // the agent complained about: not by id, not in lists, not on the timeline
    assert!(matches!(
        s.ticket(&named, &c.id).await,
        Err(CrmError::NotFound(_))
    ));
    let listed = s.list_tickets(&named, &TicketFilter::default()).await?;
    assert!(listed.iter().all(|t| t.id != c.id));
    assert_eq!(listed.len(), 1);
    assert!(matches!(
        s.history(&named, &c.id).await,
        Err(CrmError::NotFound(_))
    ));
    assert!(matches!(
        s.complaint_desk(&named, false).await,
        Err(CrmError::Forbidden(_))
    ));
    let tl = s.timeline(&named, &contact.id, 1, 20, false).await?;
    assert_eq!(tl.total, 0, "{tl:?}");
    // nor the agent who took it, nor a supervisor or an admin
    for a in [
        taker.clone(),
        Actor::new("sup", Role::Supervisor),
        Actor::new("root", Role::Admin),
    ] {
        assert!(
            matches!(s.ticket(&a, &c.id).await, Err(CrmError::NotFound(_))),
            "{a:?}"
        );
        assert!(
            s.list_tickets(&a, &TicketFilter::default())
                .await?
                .iter()
                .all(|t| t.id != c.id)
        );
    }
    // the complaint officer sees it everywhere
    assert_eq!(s.ticket(&officer, &c.id).await?.id, c.id);
    assert_eq!(s.complaint_desk(&officer, true).await?.len(), 1);
    assert_eq!(
        s.timeline(&officer, &contact.id, 1, 20, false).await?.total,
        1
    );
    let all = s.list_tickets(&officer, &TicketFilter::default()).await?;
    assert_eq!(all.len(), 2);
    // a complaint about an officer is hidden from that officer
    let o2 = Actor::new("o2", Role::ComplaintOfficer);
    let c2 = s
        .create_ticket(t0, &rng, &taker, complaint_about("o2"))
        .await?;
    assert!(matches!(
        s.ticket(&o2, &c2.id).await,
        Err(CrmError::NotFound(_))
    ));
    assert!(
        s.complaint_desk(&o2, false)
            .await?
            .iter()
            .all(|k| k.ticket.id != c2.id)
    );
    assert!(
        s.complaint_desk(&officer, false)
            .await?
            .iter()
            .any(|k| k.ticket.id == c2.id)
    );
    // and it cannot be assigned to the person it names
    assert!(matches!(
        s.assign(t0, &rng, &officer, &c2.id, "o2").await,
        Err(CrmError::Forbidden(_))
    ));
    Ok(())
});

hotline_testkit::db_test!(complaint_desk_workflow, |db| async move {
    let dir = tempfile::tempdir()?;
    let s = store(&db, dir.path());
    let rng = SeededRng::new(3);
    let t0 = at(29, 10, 0);
    let officer = Actor::new("o1", Role::ComplaintOfficer);
    let c = s
        .create_ticket(
            t0,
            &rng,
            &Actor::new("a1", Role::Agent),
            complaint_about("a7"),
        )
        .await?;
    s.create_ticket(t0, &rng, &officer, complaint_about("a7"))
        .await?;
    s.create_ticket(t0, &rng, &officer, complaint_about("a3"))
        .await?;
    s.assign(t0 + 1, &rng, &officer, &c.id, "o1").await?;
    s.transition(
        t0 + 2,
        &rng,
        &officer,
        &c.id,
        TicketStatus::InProgress,
        "",
        None,
    )
    .await?;
    let case = s
        .link_complaint_recording(t0 + 3, &rng, &officer, &c.id, "rec-42")
        .await?;
    assert_eq!(case.complaint.recording_ids, ["rec-42"]);
    assert!(matches!(
        s.close_complaint(t0 + 4, &rng, &officer, &c.id).await,
        Err(CrmError::Invalid(_))
    ));
    s.record_complaint_finding(
        t0 + 5,
        &rng,
        &officer,
        &c.id,
        Finding::Substantiated,
        "批评教育并扣绩效",
    )
    .await?;
    assert!(
        matches!(
            s.close_complaint(t0 + 6, &rng, &officer, &c.id).await,
            Err(CrmError::Invalid(_))
        ),
        "the citizen must be called back first"
    );
    s.record_complaint_callback(t0 + 7, &rng, &officer, &c.id, "已向投诉人反馈处理结果")
        .await?;
    let closed = s.close_complaint(t0 + 8, &rng, &officer, &c.id).await?;
    assert_eq!(closed.ticket.status, TicketStatus::Closed);
    assert_eq!(closed.complaint.finding, Some(Finding::Substantiated));
    // closing schedules a follow-up callback
    let cbs = s.list_callbacks(&Default::default()).await?;
    assert_eq!(cbs.len(), 1);
    assert_eq!(cbs[0].source, CallbackSource::ComplaintClosure);
    assert_eq!(cbs[0].ticket_id.as_deref(), Some(c.id.as_str()));
    let counts = s.complaint_counts(at(29, 0, 0), at(30, 0, 0)).await?;
    let pairs: Vec<(&str, i64, i64)> = counts
        .iter()
        .map(|c| (c.agent.as_str(), c.total, c.substantiated))
        .collect();
    assert_eq!(pairs, [("a3", 1, 0), ("a7", 2, 1)]);
    // audited
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'crm.complaint.%'")
            .fetch_one(&db.pool)
            .await?;
    assert_eq!(n, 4);
    Ok(())
});

hotline_testkit::db_test!(
    attachments_and_deposit_authorization_review,
    |db| async move {
        let dir = tempfile::tempdir()?;
        let s = store(&db, dir.path());
        let rng = SeededRng::new(4);
        let t0 = at(29, 11, 0);
        let biz = Actor::new("biz", Role::Business).with_addr("10.0.0.9");
        let new = NewTicket {
            kind: Some(TicketKind::DepositAuthorization),
            title: "某社会团体授权缴纳保证金".into(),
            caller_phone: "13700000000".into(),
            application_code: Some("5012345678901".into()),
            ..NewTicket::default()
        };
        let t = s.create_ticket(t0, &rng, &biz, new.clone()).await?;
        // type and size checks
        assert!(matches!(
            s.add_attachment(t0, &rng, &biz, &t.id, "x.exe", None, b"MZ\x90\x00", None)
                .await,
            Err(CrmError::UnsupportedType(_))
        ));
        assert!(matches!(
            s.add_attachment(t0, &rng, &biz, &t.id, "x.pdf", Some("image/png"), PDF, None)
                .await,
            Err(CrmError::UnsupportedType(_))
        ));
        let mut big = PDF.to_vec();
        big.resize(5000, b' ');
        assert!(matches!(
            s.add_attachment(t0, &rng, &biz, &t.id, "big.pdf", None, &big, None)
                .await,
            Err(CrmError::TooLarge { .. })
        ));
        for d in &DepositDocument::ALL[..3] {
            s.add_attachment(
                t0,
                &rng,
                &biz,
                &t.id,
                "../材料.pdf",
                Some("application/pdf"),
                PDF,
                Some(*d),
            )
            .await?;
        }
        let list = s.attachments(&biz, &t.id).await?;
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].file_name, "材料.pdf");
        let (_, bytes) = s.read_attachment(&biz, &t.id, &list[0].id).await?;
        assert_eq!(bytes, PDF);
        assert!(dir.path().join(&list[0].stored_path).is_file());

        let full = DepositChecklist {
            checked: DepositDocument::ALL.to_vec(),
        };
        // a new ticket cannot be decided yet
        s.assign(t0 + 1, &rng, &biz, &t.id, "biz").await?;
        assert!(matches!(
            s.review_deposit_authorization(
                t0 + 2,
                &rng,
                &biz,
                &t.id,
                full.clone(),
                ReviewDecision::Approve,
                ""
            )
            .await,
            Err(CrmError::InvalidTransition { .. } | CrmError::Invalid(_))
        ));
        s.transition(
            t0 + 3,
            &rng,
            &biz,
            &t.id,
            TicketStatus::InProgress,
            "",
            None,
        )
        .await?;
        // the explanation letter is missing
        let err = s
            .review_deposit_authorization(
                t0 + 4,
                &rng,
                &biz,
                &t.id,
                full.clone(),
                ReviewDecision::Approve,
                "",
            )
            .await
            .unwrap_err();
        assert!(err.message_zh().contains("情况说明"), "{err}");
        s.add_attachment(
            t0 + 5,
            &rng,
            &biz,
            &t.id,
            "说明.jpg",
            None,
            b"\xFF\xD8\xFF\xE0jpeg",
            Some(DepositDocument::ExplanationLetter),
        )
        .await?;
        let agent = Actor::new("a1", Role::Agent);
        assert!(matches!(
            s.review_deposit_authorization(
                t0 + 6,
                &rng,
                &agent,
                &t.id,
                full.clone(),
                ReviewDecision::Approve,
                ""
            )
            .await,
            Err(CrmError::Forbidden(_))
        ));
        let out = s
            .review_deposit_authorization(
                t0 + 7,
                &rng,
                &biz,
                &t.id,
                full,
                ReviewDecision::Approve,
                "",
            )
            .await?;
        assert_eq!(out.ticket.status, TicketStatus::Resolved);
        assert_eq!(out.notify_phone, "13700000000");
        assert!(out.notify_text.contains("审核通过"));
        assert_eq!(s.deposit_reviews(&biz, &t.id).await?.len(), 1);

        // a rejection needs a reason, and is audited with it
        let t2 = s.create_ticket(t0, &rng, &biz, new).await?;
        s.assign(t0 + 1, &rng, &biz, &t2.id, "biz").await?;
        s.transition(
            t0 + 2,
            &rng,
            &biz,
            &t2.id,
            TicketStatus::InProgress,
            "",
            None,
        )
        .await?;
        let partial = DepositChecklist {
            checked: vec![DepositDocument::PowerOfAttorney],
        };
        assert!(matches!(
            s.review_deposit_authorization(
                t0 + 3,
                &rng,
                &biz,
                &t2.id,
                partial.clone(),
                ReviewDecision::Reject,
                " "
            )
            .await,
            Err(CrmError::Invalid(_))
        ));
        let out = s
            .review_deposit_authorization(
                t0 + 4,
                &rng,
                &biz,
                &t2.id,
                partial,
                ReviewDecision::Reject,
                "缺少登记证书",
            )
            .await?;
        assert!(out.notify_text.contains("缺少登记证书"));
        let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT action, detail, remote_addr FROM audit_log WHERE action LIKE 'crm.deposit%' ORDER BY action",
    )
    .fetch_all(&db.pool)
    .await?;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, "crm.deposit_authorization.approve");
        assert_eq!(rows[1].0, "crm.deposit_authorization.reject");
        assert!(rows[1].1.contains("缺少登记证书"));
        assert_eq!(rows[1].2, "10.0.0.9");
        Ok(())
    }
);

hotline_testkit::db_test!(contacts_and_timeline, |db| async move {
    let dir = tempfile::tempdir()?;
    let s = store(&db, dir.path());
    let rng = SeededRng::new(5);
    let t0 = at(29, 9, 0);
    let c = s.contact_by_phone(t0, &rng, "+86 138 1234 5678").await?;
    assert_eq!(c.phone.as_deref(), Some("13812345678"));
    assert_eq!(s.contact_by_phone(t0, &rng, "13812345678").await?.id, c.id);
    let w = s.contact_by_openid(t0, &rng, "oAbC123").await?;
    assert_ne!(w.id, c.id);
    s.link_application_code(t0, &c.id, "5012345678901").await?;
    s.link_application_code(t0, &c.id, "5012345678901").await?;
    assert!(
        s.link_application_code(t0, &c.id, "bad code!")
            .await
            .is_err()
    );
    let found = s.find_contacts("5012345678901").await?;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].application_codes, ["5012345678901"]);
    // calls, a survey and a ticket land on the timeline
    for i in 0..3i64 {
        s.record_call(
            t0,
            &rng,
            &CallFact {
                call_id: format!("call-{i}"),
                queue: "main".into(),
                caller: "13812345678".into(),
                agent: Some("a1".into()),
                offered_at: t0 + i * 60_000,
                answered_at: Some(t0 + i * 60_000 + 5_000),
                ended_at: Some(t0 + i * 60_000 + 50_000),
                wrap_up_ms: 0,
                abandoned: false,
                recording_id: Some(format!("rec-{i}")),
                ivr_path: "1>2".into(),
            },
        )
        .await?;
    }
    s.record_survey(
        t0,
        &rng,
        &SurveyAnswer {
            call_id: "call-2".into(),
            agent: "a1".into(),
            queue: "main".into(),
            rating: SurveyRating::Satisfied,
            at: t0 + 200_000,
        },
    )
    .await?;
    let mut t = inquiry("问激活");
    t.contact_id = Some(c.id.clone());
    s.create_ticket(t0 + 300_000, &rng, &Actor::new("a1", Role::Agent), t)
        .await?;
    let a = Actor::new("a1", Role::Agent);
    let p1 = s.timeline(&a, &c.id, 1, 2, false).await?;
    assert_eq!((p1.total, p1.items.len()), (5, 2));
    assert_eq!(p1.items[0].summary, "咨询：问激活");
    assert_eq!(p1.items[1].summary, "满意度评价：满意");
    let p3 = s.timeline(&a, &c.id, 3, 2, false).await?;
    assert_eq!(p3.items.len(), 1);
    assert_eq!(p3.items[0].ref_id, "call-0");
    assert_eq!(p3.items[0].detail["recording_id"], "rec-0");
    let asc = s.timeline(&a, &c.id, 1, 10, true).await?;
    let times: Vec<i64> = asc.items.iter().map(|i| i.at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    // updating a call does not duplicate it on the timeline
    let mut again = s.call_fact("call-0").await?;
    again.wrap_up_ms = 9_000;
    s.record_call(t0, &rng, &again).await?;
    assert_eq!(s.call_fact("call-0").await?.wrap_up_ms, 9_000);
    assert_eq!(s.timeline(&a, &c.id, 1, 10, true).await?.total, 5);
    Ok(())
});

hotline_testkit::db_test!(callbacks_are_scheduled_and_retried, |db| async move {
    let dir = tempfile::tempdir()?;
    let s = store(&db, dir.path());
    let rng = SeededRng::new(6);
    let agent = Actor::new("a1", Role::Agent);
    let req = at(28, 22, 0);
    let request = NewCallback {
        source: CallbackSource::QueueRequest,
        phone: "13812345678".into(),
        call_id: Some("c1".into()),
        ticket_id: None,
        queue: Some("main".into()),
        note: String::new(),
        requested_at: req,
    };
    let cb = s.create_callback(req, &rng, request.clone()).await?;
    assert_eq!(cb.source, CallbackSource::AfterHours);
    assert_eq!(cb.next_attempt_at, at(29, 8, 0));
    // The same task again, as a write retried after a lost reply does: still one task.
    let same = s.create_callback_as(req, &rng, &cb.id, request).await?;
    assert_eq!(same, cb);
    assert!(s.due_callbacks(at(29, 7, 59), 10).await?.is_empty());
    assert_eq!(s.due_callbacks(at(29, 8, 0), 10).await?.len(), 1);
    let cb = s
        .record_callback_attempt(
            at(29, 8, 5),
            &rng,
            &agent,
            &cb.id,
            CallbackOutcome::NoAnswer,
            "",
        )
        .await?;
    assert_eq!((cb.status, cb.attempts), (CallbackStatus::Pending, 1));
    assert_eq!(cb.next_attempt_at, at(29, 8, 35));
    assert!(s.due_callbacks(at(29, 8, 30), 10).await?.is_empty());
    let cb = s
        .record_callback_attempt(
            at(29, 8, 40),
            &rng,
            &agent,
            &cb.id,
            CallbackOutcome::Reached,
            "已解答",
        )
        .await?;
    assert_eq!(
        (cb.status, cb.done_by.as_deref()),
        (CallbackStatus::Done, Some("a1"))
    );
    assert!(
        s.record_callback_attempt(
            at(29, 9, 0),
            &rng,
            &agent,
            &cb.id,
            CallbackOutcome::Reached,
            ""
        )
        .await
        .is_err()
    );
    // sampled answered call (sampling rate set to 100 % here)
    let fact = CallFact {
        call_id: "c2".into(),
        queue: "main".into(),
        caller: "13900000000".into(),
        agent: Some("a2".into()),
        offered_at: at(29, 9, 0),
        answered_at: Some(at(29, 9, 1)),
        ended_at: Some(at(29, 9, 5)),
        wrap_up_ms: 0,
        abandoned: false,
        recording_id: None,
        ivr_path: String::new(),
    };
    let sampled = s
        .maybe_sample_call(at(29, 9, 5), &rng, &fact)
        .await?
        .unwrap();
    assert_eq!(sampled.source, CallbackSource::Sample);
    let qa = Actor::new("qa", Role::QaReviewer);
    assert!(matches!(
        s.record_callback_attempt(
            at(29, 9, 6),
            &rng,
            &qa,
            &sampled.id,
            CallbackOutcome::Reached,
            ""
        )
        .await,
        Err(CrmError::Forbidden(_))
    ));
    s.cancel_callback(at(29, 9, 7), &agent, &sampled.id).await?;
    // a done callback counts for the agent in statistics
    let rows = s
        .statistics(StatsQuery {
            from: at(29, 0, 0),
            to: at(30, 0, 0),
            period: Period::Day,
            dimension: Dimension::Agent,
        })
        .await?;
    let a1 = rows.iter().find(|r| r.key == "a1").unwrap();
    assert_eq!(a1.callbacks_done, 1);
    Ok(())
});

hotline_testkit::db_test!(
    archived_cases_are_read_only_and_searchable,
    |db| async move {
        let dir = tempfile::tempdir()?;
        let s = store(&db, dir.path());
        let rng = SeededRng::new(7);
        let sup = Actor::new("sup", Role::Supervisor);
        let t0 = at(10, 9, 0);
        let t = s
            .create_ticket(t0, &rng, &sup, inquiry("竞价时间咨询"))
            .await?;
        let open = s.create_ticket(t0, &rng, &sup, inquiry("仍在处理")).await?;
        s.assign(t0, &rng, &sup, &t.id, "a1").await?;
        for to in [
            TicketStatus::InProgress,
            TicketStatus::Resolved,
            TicketStatus::Closed,
        ] {
            s.transition(t0 + 1, &rng, &sup, &t.id, to, "", None)
                .await?;
        }
        let nov = YearMonth::new(2026, 11).unwrap();
        assert!(
            matches!(
                s.archive_month(at(20, 0, 0), &rng, &sup, nov).await,
                Err(CrmError::Invalid(_))
            ),
            "a month is archived after it ends"
        );
        assert!(matches!(
            s.archive_month(at(20, 0, 0), &rng, &Actor::new("a", Role::Agent), nov)
                .await,
            Err(CrmError::Forbidden(_))
        ));
        let dec2 = from_local(2026, 12, 2, 9, 0, CST_OFFSET_MIN);
        assert_eq!(s.archive_month(dec2, &rng, &sup, nov).await?, 1);
        let archived = s.ticket(&sup, &t.id).await?;
        assert_eq!(archived.archive_month.as_deref(), Some("2026-11"));
        // any change refused
        assert!(matches!(
            s.add_comment(dec2, &rng, &sup, &t.id, "x").await,
            Err(CrmError::Archived(_))
        ));
        assert!(matches!(
            s.transition(dec2, &rng, &sup, &t.id, TicketStatus::InProgress, "", None)
                .await,
            Err(CrmError::Archived(_))
        ));
        assert!(matches!(
            s.edit_ticket(
                dec2,
                &rng,
                &sup,
                &t.id,
                TicketEdit {
                    title: Some("改".into()),
                    ..TicketEdit::default()
                }
            )
            .await,
            Err(CrmError::Archived(_))
        ));
        assert!(matches!(
            s.assign(dec2, &rng, &sup, &t.id, "a2").await,
            Err(CrmError::Archived(_))
        ));
        assert!(matches!(
            s.add_attachment(dec2, &rng, &sup, &t.id, "a.pdf", None, PDF, None)
                .await,
            Err(CrmError::Archived(_))
        ));
        // not in the working list, but in the archive search
        let list = s.list_tickets(&sup, &TicketFilter::default()).await?;
        assert_eq!(
            list.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            [open.id.as_str()]
        );
        use hotline_crm::store::ArchiveQuery;
        let q = |text: &str| ArchiveQuery {
            month: Some("2026-11".into()),
            text: Some(text.into()),
            ..ArchiveQuery::default()
        };
        assert_eq!(s.search_archive(&sup, &q("竞价")).await?.len(), 1);
        assert_eq!(s.search_archive(&sup, &q("13812345678")).await?.len(), 1);
        assert!(s.search_archive(&sup, &q("100%")).await?.is_empty());
        assert!(s.search_archive(&sup, &q("处理")).await?.is_empty());
        assert!(
            s.expired_archive_months(dec2).await?.is_empty(),
            "kept for ever by default"
        );
        Ok(())
    }
);
