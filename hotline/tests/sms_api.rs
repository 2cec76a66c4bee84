//! The SMS HTTP API on SQLite and PostgreSQL, built as the binary builds it (the whole
//! router): templates with the four-eyes approval, a batch from bidder data with its preview,
//! an uploaded list refused row by row and then accepted, confirmation, masking by role,
//! opt-outs (staff and 回复TD), and the gateway's callbacks with their token.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use hotline::config::Config;
use hotline::db::Db;
use hotline::http::{AppState, router};
use hotline_core::events::NullSink;
use hotline_core::metrics::Registry;
use hotline_core::{ManualClock, Role, SystemRng};
use hotline_integrations::bidders::{self, ColumnMapping, ImportRun};
use hotline_integrations::table::{FileFormat, TextEncoding, read_table};
use serde_json::{Value, json};

mod common;
use common::{Client, T0, login_as};

const TOKEN: &str = "tok-123";

fn state(db: Db) -> AppState {
    let mut config = Config::default();
    config.integrations.sms.receipt_token = TOKEN.into();
    AppState::new(
        db,
        Arc::new(config),
        Arc::new(ManualClock::new(T0)),
        Arc::new(SystemRng),
        Registry::new(),
        Arc::new(NullSink),
    )
}

async fn import(t: &hotline_testkit::TestDb) -> anyhow::Result<()> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../integrations/tests/fixtures/bidders_utf8.csv");
    let table = read_table(&std::fs::read(p)?, FileFormat::Auto, TextEncoding::Auto)?;
    let r = bidders::import_bidders(
        &t.pool,
        T0,
        &SystemRng,
        &table,
        &ColumnMapping::default(),
        &ImportRun {
            period: "2025-11",
            file_name: "b.csv",
            file_sha256: "x",
            actor: "biz",
            dry_run: false,
        },
    )
    .await?;
    assert!(r.committed);
    Ok(())
}

async fn upload(c: &Client, query: &str, csv: &str) -> (StatusCode, Value) {
    let (s, bytes, _) = c
        .raw(
            Method::POST,
            &format!("/api/v1/sms/batches/upload?{query}"),
            Some(("text/csv", csv.as_bytes().to_vec())),
        )
        .await;
    (s, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

hotline_testkit::db_test!(sms_templates_batches_opt_outs_over_http, |t| async move {
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let st = state(db.clone());
    let (app, specs) = router(st.clone());
    assert!(specs.iter().any(|s| s.path == "/api/v1/sms/batches/upload"));
    import(&t).await?;
    let biz = login_as(&db, &st, &app, "biz", Role::Business).await?;
    let boss = login_as(&db, &st, &app, "boss", Role::Supervisor).await?;
    let admin = login_as(&db, &st, &app, "root", Role::Admin).await?;
    let agent = login_as(&db, &st, &app, "a1", Role::Agent).await?;

    // a template: draft, with its variables and the parts of the fixed text
    let (s, tpl) = biz
        .post(
            "/api/v1/sms/templates",
            json!({"kind": "deposit_reminder", "name": "保证金缴纳提醒",
                   "body": "{name}您好，您{period}期保证金{amount}元尚未到账，请于{deadline}前缴纳。"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{tpl}");
    assert_eq!(tpl["status"], "draft");
    assert_eq!(
        tpl["variables"],
        json!(["name", "period", "amount", "deadline"])
    );
    assert_eq!(tpl["segments"]["ucs2"], true);
    let tid = tpl["id"].as_str().unwrap().to_string();
    let (s, e) = biz
        .post(
            "/api/v1/sms/templates",
            json!({"kind": "payment", "name": "x", "body": "{name 您好"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");

    // a draft cannot be used
    let batch_req = json!({"template_id": tid, "name": "11月催缴",
        "audience": {"period": "2025-11", "filter": "deposit_unpaid"},
        "variables": {"deadline": "11月10日17:00"}});
    let (s, _) = biz.post("/api/v1/sms/batches", batch_req.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // business staff may not approve; the author may not approve their own text
    let (s, _) = biz
        .post(
            &format!("/api/v1/sms/templates/{tid}/approve"),
            json!({"version": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, own) = admin
        .post(
            "/api/v1/sms/templates",
            json!({"kind": "other", "name": "自拟", "body": "测试"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = admin
        .post(
            &format!(
                "/api/v1/sms/templates/{}/approve",
                own["id"].as_str().unwrap()
            ),
            json!({"version": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "four eyes");
    let (s, _) = boss
        .post(
            &format!("/api/v1/sms/templates/{tid}/approve"),
            json!({"version": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "not the version read");
    let (s, a) = boss
        .post(
            &format!("/api/v1/sms/templates/{tid}/approve"),
            json!({"version": 1}),
        )
        .await;
    assert_eq!(
        (s, a["status"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
    // rendering shows the message, its length and parts; a missing variable is named
    let (s, r) = boss
        .post(
            &format!("/api/v1/sms/templates/{tid}/render"),
            json!({"variables": {"name": "张三", "period": "2025-11", "amount": "2000.00", "deadline": "11月10日"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .starts_with("【天津小客车指标】张三您好")
    );
    assert_eq!(r["segments"]["parts"], 1);
    let (s, e) = boss
        .post(
            &format!("/api/v1/sms/templates/{tid}/render"),
            json!({"variables": {"name": "张三"}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["error"]["message"].as_str().unwrap().contains("{period}"));

    // opt-out by an agent (a caller asked on the phone); agents cannot remove
    let (s, o) = agent
        .post("/api/v1/sms/opt-outs", json!({"mobile": "139-0000-1111"}))
        .await;
    assert_eq!(
        (s, o["mobile"].as_str()),
        (StatusCode::OK, Some("139****1111"))
    );
    let (s, _) = agent
        .json(Method::DELETE, "/api/v1/sms/opt-outs/13900001111", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // the batch from bidder data: preview counts, sample masked for the supervisor
    let (s, b) = biz.post("/api/v1/sms/batches", batch_req).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["status"], "draft");
    assert_eq!(b["counts"]["recipients"], 4);
    assert_eq!(b["counts"]["excluded_opt_out"], 1);
    assert_eq!(
        b["sample"]["mobile"], "13812345678",
        "business sees numbers"
    );
    let bid = b["id"].as_str().unwrap().to_string();
    let (_, seen) = boss.get(&format!("/api/v1/sms/batches/{bid}")).await;
    assert_eq!(seen["sample"]["mobile"], "138****5678");
    let (s, b) = biz
        .post(&format!("/api/v1/sms/batches/{bid}/confirm"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["counts"]["by_status"]["queued"], 4);
    let (_, msgs) = boss
        .get(&format!("/api/v1/sms/batches/{bid}/messages?status=queued"))
        .await;
    let msgs = msgs.as_array().unwrap();
    assert_eq!(msgs.len(), 4);
    assert!(
        msgs.iter()
            .all(|m| m["mobile"].as_str().unwrap().contains("****"))
    );

    // an uploaded list: all or nothing, every bad row reported
    let q = format!("template_id={tid}&name=upload");
    let (s, e) = upload(
        &biz,
        &q,
        "mobile,name,period,amount,deadline\n13800000001,张三,2025-11,2000,11月10日\n123,李四,2025-11,2000,11月10日\n13800000003,,2025-11,2000,11月10日\n",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "bad_rows");
    let lines: Vec<u64> = e["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4]);
    let (s, b) = upload(
        &biz,
        &format!("{q}&variables=%7B%22deadline%22%3A%2211%E6%9C%8810%E6%97%A5%22%7D"),
        "手机号,name,period,amount\n13800000001,张三,2025-11,2000\n13800000001,张三,2025-11,2000\n12345,x,2025-11,1\n",
    )
    .await;
    // 12345 is not a mobile: in an upload that is a row error too
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = upload(
        &biz,
        &format!("{q}&variables=%7B%22deadline%22%3A%2211%E6%9C%8810%E6%97%A5%22%7D"),
        "手机号,name,period,amount\n13800000001,张三,2025-11,2000\n13800000001,张三,2025-11,2000\n",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(
        (
            b["counts"]["recipients"].as_u64(),
            b["counts"]["duplicates"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let upload_id = b["id"].as_str().unwrap().to_string();
    let (s, b) = biz
        .post(
            &format!("/api/v1/sms/batches/{upload_id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (_, list) = boss.get("/api/v1/sms/batches").await;
    assert_eq!(list.as_array().unwrap().len(), 2);

    // the gateway's callbacks need the token
    let anon = Client {
        app: app.clone(),
        session: None,
    };
    let (s, _) = anon
        .post(
            "/api/v1/sms/receipts",
            json!([{"client_msg_id": "x", "status": "DELIVRD"}]),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, bytes, _) = anon.raw(Method::POST, "/api/v1/sms/receipts", None).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    // 回复TD: the number joins the opt-out list, and its queued message is withdrawn
    let inbound = axum::http::Request::post("/api/v1/sms/inbound")
        .header("content-type", "application/json")
        .header("x-sms-token", TOKEN)
        .body(axum::body::Body::from(
            json!({"mobile": "13812345678", "content": "TD"}).to_string(),
        ))?;
    let resp = tower::ServiceExt::oneshot(app.clone(), inbound).await?;
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, b) = boss.get(&format!("/api/v1/sms/batches/{bid}")).await;
    assert_eq!(b["counts"]["by_status"]["queued"], 3);
    assert_eq!(b["counts"]["by_status"]["excluded_opt_out"], 2);
    let (_, opt) = boss.get("/api/v1/sms/opt-outs").await;
    let opt = opt.as_array().unwrap();
    assert_eq!(opt.len(), 2);
    assert!(
        opt.iter()
            .all(|o| o["mobile"].as_str().unwrap().contains("****"))
    );
    let (s, _) = biz
        .json(Method::DELETE, "/api/v1/sms/opt-outs/13900001111", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    Ok(())
});
