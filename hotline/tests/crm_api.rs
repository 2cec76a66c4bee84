//! The CRM's HTTP API, built as the binary builds it: an `ApiBuilder` plus
//! `crm::routes`. Checks every CRM route × role at the guard, the ticket workflow with
//! attachments over HTTP, the complaint rule, statistics downloads and the monthly report.

use hotline::http::crm;

use std::sync::Arc;

use axum::http::{Method, StatusCode, header};
use hotline::config::Config;
use hotline::db::Db;
use hotline::http::AppState;
use hotline::http::access::{ApiBuilder, RouteSpec};
use hotline_core::events::NullSink;
use hotline_core::metrics::Registry;
use hotline_core::{ManualClock, Role, SystemRng};
use serde_json::json;

/// 2026-11-29 10:00 in Tianjin (02:00 UTC).
use common::T0;

fn state(db: Db, data_dir: &std::path::Path) -> AppState {
    let config = Config {
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    AppState::new(
        db,
        Arc::new(config),
        Arc::new(ManualClock::new(T0)),
        Arc::new(SystemRng),
        Registry::new(),
        Arc::new(NullSink),
    )
}

fn app(st: &AppState) -> (axum::Router, Vec<RouteSpec>) {
    let (router, specs) = crm::routes(ApiBuilder::new(st.clone())).finish();
    (
        router
            .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
            .with_state(st.clone()),
        specs,
    )
}

mod common;
use common::{Client, login_as};

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "nobody" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

hotline_testkit::db_test!(every_crm_route_by_every_role, |t| async move {
    let dir = tempfile::tempdir()?;
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let st = state(db.clone(), dir.path());
    let (app, specs) = app(&st);
    assert!(specs.len() >= 35, "{}", specs.len());
    let anon = Client {
        app: app.clone(),
        session: None,
    };
    let mut clients = Vec::new();
    for role in Role::ALL {
        clients.push((
            role,
            login_as(&db, &st, &app, &format!("u-{role}"), role).await?,
        ));
    }
    for spec in &specs {
        let path = concrete(spec.path);
        let body = (spec.method != Method::GET).then(|| json!({}));
        let (status, b) = anon.json(spec.method.clone(), &path, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{} {path}: {b}",
            spec.method
        );
        for (role, c) in &clients {
            let (status, b) = c.json(spec.method.clone(), &path, body.clone()).await;
            if spec.access.allows(*role) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{} {path} as {role}: {status} {b}",
                    spec.method
                );
                assert_ne!(
                    status,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "{} {path} as {role}: {b}",
                    spec.method
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {path} as {role}",
                    spec.method
                );
                assert_eq!(b["error"]["code"], "forbidden");
            }
        }
        assert!(!spec.access.is_public(), "no CRM route is public");
    }
    Ok(())
});

const PDF: &[u8] = b"%PDF-1.4 test";

hotline_testkit::db_test!(tickets_complaints_and_reports_over_http, |t| async move {
    let dir = tempfile::tempdir()?;
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let st = state(db.clone(), dir.path());
    let (app, _) = app(&st);
    let agent = login_as(&db, &st, &app, "a1", Role::Agent).await?;
    let named = login_as(&db, &st, &app, "a7", Role::Agent).await?;
    let officer = login_as(&db, &st, &app, "o1", Role::ComplaintOfficer).await?;
    let biz = login_as(&db, &st, &app, "biz", Role::Business).await?;
    let sup = login_as(&db, &st, &app, "sup", Role::Supervisor).await?;

    // an inquiry through its whole life
    let (s, tk) = agent
        .post(
            "/api/v1/tickets",
            json!({"kind": "inquiry", "title": "激活时间", "caller_phone": "13812345678"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tk}");
    assert_eq!(tk["caller_phone"], "138****5678", "masked for agents");
    assert_eq!(
        (tk["status"].as_str(), tk["overdue"].as_bool()),
        (Some("new"), Some(false))
    );
    let id = tk["id"].as_str().unwrap().to_string();
    let (s, b) = agent
        .post(
            &format!("/api/v1/tickets/{id}/transition"),
            json!({"to": "in_progress"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "{b}"
    );
    let (s, b) = agent
        .post(
            &format!("/api/v1/tickets/{id}/assign"),
            json!({"assignee": "a1"}),
        )
        .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("assigned")),
        "{b}"
    );
    for to in ["in_progress", "resolved", "closed"] {
        let (s, b) = agent
            .post(
                &format!("/api/v1/tickets/{id}/transition"),
                json!({"to": to, "note": "处理"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{to}: {b}");
    }
    let (s, b) = agent
        .post(
            &format!("/api/v1/tickets/{id}/transition"),
            json!({"to": "bogus"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (_, h) = agent.get(&format!("/api/v1/tickets/{id}/history")).await;
    assert_eq!(h["items"].as_array().unwrap().len(), 5);
    let (s, _) = agent
        .post(
            &format!("/api/v1/tickets/{id}/comments"),
            json!({"body": "已解答"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // deposit authorisation: upload as raw body, review by business staff
    let (_, dep) = biz
        .post("/api/v1/tickets", json!({"kind": "deposit_authorization", "title": "社团授权", "caller_phone": "13700000000"}))
        .await;
    let dep_id = dep["id"].as_str().unwrap().to_string();
    assert_eq!(
        dep["caller_phone"], "13700000000",
        "business staff see full numbers"
    );
    let (s, _, _) = biz
        .raw(
            Method::POST,
            &format!("/api/v1/tickets/{dep_id}/attachments?file_name=a.exe"),
            Some(("application/octet-stream", b"MZ..".to_vec())),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    for doc in [
        "registration_certificate",
        "legal_representative_id",
        "power_of_attorney",
        "explanation_letter",
    ] {
        let (s, body, _) = biz
            .raw(
                Method::POST,
                &format!("/api/v1/tickets/{dep_id}/attachments?file_name=%E6%9D%90%E6%96%99.pdf&document={doc}"),
                Some(("application/pdf", PDF.to_vec())),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
    // larger than the API's general 1 MiB limit but within the attachment limit
    let mut big = PDF.to_vec();
    big.resize(1_500_000, b' ');
    let (s, _, _) = biz
        .raw(
            Method::POST,
            &format!("/api/v1/tickets/{dep_id}/attachments?file_name=big.pdf"),
            Some(("application/pdf", big)),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, list) = biz
        .get(&format!("/api/v1/tickets/{dep_id}/attachments"))
        .await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    let material = items.iter().find(|a| a["file_name"] == "材料.pdf").unwrap();
    let first = material["id"].as_str().unwrap().to_string();
    let (s, bytes, headers) = biz
        .raw(
            Method::GET,
            &format!("/api/v1/tickets/{dep_id}/attachments/{first}"),
            None,
        )
        .await;
    assert_eq!((s, bytes.as_slice()), (StatusCode::OK, PDF));
    assert_eq!(headers[header::CONTENT_TYPE], "application/pdf");
    biz.post(
        &format!("/api/v1/tickets/{dep_id}/assign"),
        json!({"assignee": "biz"}),
    )
    .await;
    biz.post(
        &format!("/api/v1/tickets/{dep_id}/transition"),
        json!({"to": "in_progress"}),
    )
    .await;
    let all = json!([
        "registration_certificate",
        "legal_representative_id",
        "power_of_attorney",
        "explanation_letter"
    ]);
    let (s, b) = biz
        .post(
            &format!("/api/v1/tickets/{dep_id}/deposit-review"),
            json!({"checked": all, "decision": "approve"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["ticket"]["status"], "resolved");
    assert!(b["notice"]["text"].as_str().unwrap().contains("审核通过"));
    // the notice goes out by SMS through the outbox, once per review, with our sign
    assert_eq!(b["notice"]["sms_queued"], true, "{b}");
    let review_id = b["review"]["id"].as_str().unwrap();
    let (status, body): (String, String) =
        sqlx::query_as("SELECT status, body FROM sms_messages WHERE id = $1")
            .bind(format!("review-{review_id}"))
            .fetch_one(&t.pool)
            .await?;
    assert_eq!(status, "queued");
    assert!(
        body.starts_with("【天津小客车指标】您单位的保证金授权"),
        "{body}"
    );

    // a complaint about a7: a7 cannot see it, the officer handles it
    let (s, c) = agent
        .post("/api/v1/tickets", json!({"kind": "complaint", "title": "态度差", "caller_phone": "13900000001", "named_agent": "a7"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let cid = c["id"].as_str().unwrap().to_string();
    assert_eq!(
        named.get(&format!("/api/v1/tickets/{cid}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        agent.get(&format!("/api/v1/tickets/{cid}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, l) = named.get("/api/v1/tickets").await;
    assert!(
        l["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["id"] != cid.as_str())
    );
    assert_eq!(
        named.get("/api/v1/complaints").await.0,
        StatusCode::FORBIDDEN
    );
    let (_, desk) = officer.get("/api/v1/complaints?open_only=true").await;
    assert_eq!(desk["items"][0]["ticket"]["id"], cid.as_str());
    assert_eq!(desk["items"][0]["ticket"]["caller_phone"], "13900000001");
    officer
        .post(
            &format!("/api/v1/tickets/{cid}/assign"),
            json!({"assignee": "o1"}),
        )
        .await;
    officer
        .post(
            &format!("/api/v1/tickets/{cid}/transition"),
            json!({"to": "in_progress"}),
        )
        .await;
    let (s, _) = officer
        .post(
            &format!("/api/v1/complaints/{cid}/recordings"),
            json!({"recording_id": "rec-1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = officer
        .post(
            &format!("/api/v1/complaints/{cid}/finding"),
            json!({"finding": "substantiated", "action_taken": "培训"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        officer
            .post(&format!("/api/v1/complaints/{cid}/close"), json!({}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    officer
        .post(
            &format!("/api/v1/complaints/{cid}/citizen-callback"),
            json!({"note": "已反馈"}),
        )
        .await;
    let (s, closed) = officer
        .post(&format!("/api/v1/complaints/{cid}/close"), json!({}))
        .await;
    assert_eq!(
        (s, closed["ticket"]["status"].as_str()),
        (StatusCode::OK, Some("closed")),
        "{closed}"
    );

    // the closure made a callback task; an agent works it
    let (_, cbs) = agent
        .get("/api/v1/callbacks?source=complaint_closure")
        .await;
    let cb = cbs["items"][0]["id"].as_str().unwrap().to_string();
    let (s, b) = agent
        .post(
            &format!("/api/v1/callbacks/{cb}/attempts"),
            json!({"outcome": "reached", "note": "满意"}),
        )
        .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("done")),
        "{b}"
    );

    // contacts and the timeline
    let (s, ct) = agent
        .post("/api/v1/contacts", json!({"phone": "13812345678"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{ct}");
    let ct_id = ct["id"].as_str().unwrap().to_string();
    assert_eq!(ct["phone"], "138****5678");
    let (s, _) = agent
        .post(
            &format!("/api/v1/contacts/{ct_id}/application-codes"),
            json!({"application_code": "5012345678901"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, found) = agent.get("/api/v1/contacts?q=5012345678901").await;
    assert_eq!(found["items"][0]["id"], ct_id.as_str());
    let (s, tl) = agent
        .get(&format!(
            "/api/v1/contacts/{ct_id}/timeline?page=1&per_page=10"
        ))
        .await;
    assert_eq!((s, tl["total"].as_i64()), (StatusCode::OK, Some(0)));

    // statistics, downloads and the monthly report
    let (s, b) = sup
        .get("/api/v1/stats?from=2026-11-29&to=2026-11-29&period=hour")
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["items"].as_array().unwrap().len(), 24);
    let (_, b) = sup
        .get("/api/v1/stats?from=2026-11-29&to=2026-11-29&dimension=agent")
        .await;
    assert_eq!(b["items"][0]["key"], "a1");
    assert_eq!(b["items"][0]["callbacks_done"], 1);
    assert_eq!(
        sup.get("/api/v1/stats?from=2026-11-31&to=2026-12-01")
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (s, csv, h) = sup
        .raw(
            Method::GET,
            "/api/v1/stats/csv?from=2026-11-29&to=2026-11-29",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(h[header::CONTENT_TYPE].to_str()?.starts_with("text/csv"));
    assert!(String::from_utf8(csv)?.contains("呼入量"));
    let (s, xlsx, _) = sup
        .raw(
            Method::GET,
            "/api/v1/stats/xlsx?from=2026-11-01&to=2026-11-30&period=month",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // an XLSX is a ZIP archive; its cells are read back with calamine in the crm crate's tests
    assert!(xlsx.starts_with(b"PK\x03\x04"));
    let (_, counts) = sup
        .get("/api/v1/stats/complaints?from=2026-11-01&to=2026-11-30")
        .await;
    assert_eq!(
        counts["items"][0],
        json!({"agent": "a7", "total": 1, "substantiated": 1})
    );
    let (s, report, h) = sup
        .raw(Method::GET, "/api/v1/reports/monthly/2026-11", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h[header::CONTENT_DISPOSITION]
            .to_str()?
            .contains("hotline-report-2026-11.xlsx")
    );
    assert!(report.starts_with(b"PK\x03\x04") && report.len() > 4000);
    let exports = db.audit_entries(Some("crm.export"), 10).await?;
    assert_eq!(exports.len(), 3);
    // Each download is in the data-file register with the digest of the bytes served.
    let files = db.data_files(None, 10).await?;
    let report_file = files
        .iter()
        .find(|f| f.kind == "monthly_report")
        .expect("monthly report registered");
    assert_eq!(
        report_file.sha256,
        hotline::db::data_files::sha256_hex(&report)
    );
    assert_eq!(files.iter().filter(|f| f.direction == "export").count(), 3);

    // archive: not before the month is over
    assert_eq!(
        sup.post("/api/v1/archive/2026-11", json!({})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        sup.post("/api/v1/archive/2026-10", json!({})).await.0,
        StatusCode::OK
    );
    let (s, b) = sup.get("/api/v1/archive?month=2026-10").await;
    assert_eq!(
        (s, b["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    // The CRM's own audit writes (inside its transactions) and the binary's share one
    // unbroken hash chain.
    assert!(
        matches!(
            db.verify_audit().await?,
            hotline::db::audit::ChainReport::Intact(n) if n > 10
        ),
        "{:?}",
        db.verify_audit().await?
    );
    Ok(())
});
