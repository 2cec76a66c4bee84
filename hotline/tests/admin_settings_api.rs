//! The administrators' queue settings and service-day calendar over HTTP, on SQLite and
//! PostgreSQL, through the whole router: zh-CN validation errors, optimistic versioning
//! (a stale edit gets 409 and changes nothing), who may read and who may change, and the
//! audit entries. The live application to a running contact centre is covered end to end
//! (tests/tests/admin_settings.rs); here no contact centre runs, so edits are stored for the
//! next start and say `applied: false`.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use hotline::config::Config;
use hotline::db::Db;
use hotline::http::{AppState, router};
use hotline_core::events::NullSink;
use hotline_core::metrics::Registry;
use hotline_core::{ManualClock, Role, SystemRng};
use serde_json::{Value, json};

mod common;
use common::{Client, T0, login_as};

fn state(db: Db) -> AppState {
    AppState::new(
        db,
        Arc::new(Config::default()),
        Arc::new(ManualClock::new(T0)),
        Arc::new(SystemRng),
        Registry::new(),
        Arc::new(NullSink),
    )
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

async fn put(c: &Client, path: &str, body: Value) -> (StatusCode, Value) {
    c.json(Method::PUT, path, Some(body)).await
}

fn queue_edit(version: i64, strategy: &str, key: &str) -> Value {
    json!({
        "version": version,
        "strategy": strategy,
        "announce_every_ms": 45_000,
        "max_wait_ms": 300_000,
        "callback_key": key,
        "moh": "moh/default",
    })
}

hotline_testkit::db_test!(
    queue_settings_are_checked_versioned_and_audited,
    |t| async move {
        let db = Db::from_pool(t.pool.clone(), &t.url);
        let st = state(db.clone());
        let (app, _) = router(st.clone());
        let admin = login_as(&db, &st, &app, "admin1", Role::Admin).await?;
        let sup = login_as(&db, &st, &app, "sup1", Role::Supervisor).await?;
        let agent = login_as(&db, &st, &app, "agent1", Role::Agent).await?;

        let (s, list) = admin.get("/api/v1/acd/queue-settings").await;
        assert_eq!(s, StatusCode::OK, "{list}");
        let names: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["hotline", "complaints"]);
        assert_eq!(list["items"][0]["version"], 0);
        assert_eq!(list["items"][0]["settings"]["strategy"], "longest_idle");
        assert_eq!(list["items"][0]["edited"], false);

        let path = "/api/v1/acd/queues/hotline/settings";
        // Refused with a zh-CN reason, nothing stored.
        for (body, want) in [
            (queue_edit(0, "random", "1"), "未知的分配策略"),
            (queue_edit(0, "round_robin", "12"), "回拨按键"),
            (queue_edit(0, "ring_all", "1"), "不支持同时振铃"),
            (
                json!({"version": 0, "strategy": "round_robin", "announce_every_ms": 90_000_000u64,
                   "max_wait_ms": 0, "callback_key": "", "moh": "moh/default"}),
                "播报间隔",
            ),
            (
                json!({"version": 0, "strategy": "round_robin", "announce_every_ms": 0,
                   "max_wait_ms": 0, "callback_key": "", "moh": " "}),
                "等待音乐",
            ),
        ] {
            let (s, b) = put(&admin, path, body).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
            assert!(message(&b).contains(want), "{want}: {b}");
        }
        let (s, b) = put(
            &admin,
            "/api/v1/acd/queues/nosuch/settings",
            queue_edit(0, "round_robin", "1"),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
        let (s, b) = put(&admin, path, json!({"version": 0})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(
            db.queue_overrides().await?.is_empty(),
            "nothing half-written"
        );

        // Supervisors may look but not change; agents may not even look.
        let (s, _) = sup.get(path).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = put(&sup, path, queue_edit(0, "round_robin", "1")).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = agent.get("/api/v1/acd/queue-settings").await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        let (s, b) = put(&admin, path, queue_edit(0, "round_robin", "#")).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["version"], 1);
        assert_eq!(b["applied"], false);
        // Someone else's edit from the config values is now stale.
        let (s, b) = put(&admin, path, queue_edit(0, "longest_idle", "1")).await;
        assert_eq!(s, StatusCode::CONFLICT, "{b}");
        assert!(message(&b).contains("刷新"), "{b}");
        let (s, b) = put(&admin, path, queue_edit(1, "longest_idle", "")).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["version"], 2);
        let (s, b) = put(&admin, path, queue_edit(1, "round_robin", "1")).await;
        assert_eq!(s, StatusCode::CONFLICT, "{b}");

        let (_, q) = sup.get(path).await;
        assert_eq!(q["version"], 2, "{q}");
        assert_eq!(q["edited"], true);
        assert_eq!(q["updated_by"], "admin1");
        assert_eq!(q["settings"]["strategy"], "longest_idle");
        assert_eq!(q["settings"]["callback_key"], "");
        assert_eq!(q["settings"]["announce_every_ms"], 45_000);
        assert_eq!(
            q["config"]["announce_every_ms"], 30_000,
            "the file's values stay visible"
        );
        let audit = db.audit_entries(Some("acd.queue_settings"), 10).await?;
        assert_eq!(audit.len(), 2, "one entry per stored edit");
        assert_eq!(audit[0].target, "queue:hotline");
        Ok(())
    }
);

hotline_testkit::db_test!(
    service_days_are_checked_versioned_and_audited,
    |t| async move {
        let db = Db::from_pool(t.pool.clone(), &t.url);
        let st = state(db.clone());
        let (app, _) = router(st.clone());
        let admin = login_as(&db, &st, &app, "admin1", Role::Admin).await?;
        let sup = login_as(&db, &st, &app, "sup1", Role::Supervisor).await?;

        for (body, want) in [
            (json!({"date": "2027/02/06", "closed": true}), "YYYY-MM-DD"),
            (json!({"date": "2027-02-30", "closed": true}), "YYYY-MM-DD"),
            (
                json!({"date": "2027-02-06", "closed": true, "open": "09:00"}),
                "不能填写服务时间",
            ),
            (
                json!({"date": "2027-02-06", "closed": false}),
                "开始和结束时间",
            ),
            (
                json!({"date": "2027-02-06", "open": "9点", "close": "12:00"}),
                "HH:MM",
            ),
            (
                json!({"date": "2027-02-06", "open": "12:00", "close": "09:00"}),
                "须早于",
            ),
            (
                json!({"date": "2027-02-06", "open": "12:00", "close": "12:00"}),
                "须早于",
            ),
            (
                json!({"date": "2027-02-06", "closed": true, "note": "长".repeat(41)}),
                "40",
            ),
        ] {
            let (s, b) = admin.post("/api/v1/service-days", body.clone()).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{body} → {b}");
            assert!(message(&b).contains(want), "{want}: {b}");
        }
        assert!(db.service_days().await?.is_empty());

        let (s, _) = sup
            .post(
                "/api/v1/service-days",
                json!({"date": "2027-02-06", "closed": true}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        let (s, b) = admin
            .post(
                "/api/v1/service-days",
                json!({"date": "2027-02-06", "closed": true, "note": "春节"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["day"]["version"], 1);
        assert_eq!(b["applied"], false);
        let (s, b) = admin
            .post(
                "/api/v1/service-days",
                json!({"date": "2027-02-06", "open": "09:00", "close": "12:00"}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "a date is listed once: {b}");
        let (s, _) = admin
        .post(
            "/api/v1/service-days",
            json!({"date": "2026-12-31", "open": "08:00", "close": "12:00", "note": "系统维护"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK);

        let (s, list) = sup.get("/api/v1/service-days").await;
        assert_eq!(s, StatusCode::OK, "{list}");
        assert_eq!(
            list["weekly"]["open"], "08:00",
            "the default flow's weekly hours"
        );
        let dates: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["date"].as_str().unwrap())
            .collect();
        assert_eq!(dates, ["2026-12-31", "2027-02-06"]);
        assert_eq!(list["items"][0]["open"], "08:00");
        assert_eq!(list["in_force"][1]["note"], "春节");
        assert_eq!(list["in_force"][1]["closed"], true);

        let edit = json!({"open": "10:00", "close": "11:30", "note": "延迟开放", "version": 1});
        let (s, b) = put(&admin, "/api/v1/service-days/2027-02-06", edit.clone()).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["day"]["version"], 2);
        let (s, b) = put(&admin, "/api/v1/service-days/2027-02-06", edit.clone()).await;
        assert_eq!(s, StatusCode::CONFLICT, "stale: {b}");
        let (s, b) = put(&admin, "/api/v1/service-days/2027-03-01", edit).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
        let (s, b) = put(
            &admin,
            "/api/v1/service-days/2027-02-06",
            json!({"closed": true, "note": ""}),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "an edit names its version: {b}");
        let (s, b) = put(
            &admin,
            "/api/v1/service-days/02-06",
            json!({"closed": true, "version": 2}),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");

        let (s, _) = admin
            .json(Method::DELETE, "/api/v1/service-days/2026-12-31", None)
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = admin
            .json(Method::DELETE, "/api/v1/service-days/2026-12-31", None)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let days = db.service_days().await?;
        assert_eq!(days.len(), 1);
        assert_eq!(days[0].note, "延迟开放");
        let actions: Vec<String> = db
            .audit_entries(None, 20)
            .await?
            .into_iter()
            .filter(|e| e.action.starts_with("service_day."))
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions.len(),
            4,
            "two adds, one edit, one delete: {actions:?}"
        );
        Ok(())
    }
);
