//! HTTP API of the integrations (issue 8), on SQLite and PostgreSQL: the route × role matrix
//! of these routes, imports over HTTP (raw body, both encodings, dry run, bad rows, bodies
//! over the global 1 MiB limit), masking by role, the calendar, 手工勾兑 with its audit entry,
//! the self-service lookup, the signed 12345 push (replay, stale, bad signature) and the
//! outbox delivering replies to a fake 12345 platform with retries. Also the CLI functions.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Request, StatusCode, header};
use hotline::config::Config;
use hotline::db::Db;
use hotline::db::users::NewUser;
use hotline::http::AppState;
use hotline::http::access::{ApiBuilder, CSRF_HEADER, SESSION_COOKIE};
use hotline_core::events::NullSink;
use hotline_core::metrics::Registry;
use hotline_core::{Clock, ManualClock, Role, SystemRng};
use hotline_integrations::IntegrationsConfig;
use hotline_integrations::text::Date;
use hotline_integrations::workorder::{
    NONCE_HEADER, OutboxDriver, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign,
};
use serde_json::{Value, json};
use tower::ServiceExt;

use hotline::commands_integrations;
use hotline::http::access;
use hotline::http::integrations::{self, IntegrationsHttp, routes_with};

/// 2025-11-05 10:00 Beijing time: inside the deposit window of the test calendar.
fn t0() -> i64 {
    Date::new(2025, 11, 5).unwrap().at_beijing(10, 0, 0)
}

const SECRET: &str = "test-secret-12345";

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../integrations/tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

struct App {
    app: axum::Router,
    db: Db,
    st: AppState,
    clock: ManualClock,
    ctx: Arc<IntegrationsHttp>,
    specs: Vec<access::RouteSpec>,
}

fn app(t: &hotline_testkit::TestDb, reply_url: &str) -> App {
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let clock = ManualClock::new(t0());
    let st = AppState::new(
        db.clone(),
        Arc::new(Config::default()),
        Arc::new(clock.clone()),
        Arc::new(SystemRng),
        Registry::new(),
        Arc::new(NullSink),
    );
    let mut config = IntegrationsConfig::default();
    config.platform_12345.secret = SECRET.into();
    config.platform_12345.reply_url = reply_url.into();
    let ctx = Arc::new(IntegrationsHttp::new(config));
    let (api, specs) = routes_with(ApiBuilder::new(st.clone()), ctx.clone()).finish();
    // the same global limit as the real router
    let app = api
        .layer(DefaultBodyLimit::max(hotline::http::MAX_BODY_BYTES))
        .with_state(st.clone());
    App {
        app,
        db,
        st,
        clock,
        ctx,
        specs,
    }
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[derive(Clone)]
struct Session {
    token: String,
    csrf: String,
}

async fn session(a: &App, role: Role) -> anyhow::Result<Session> {
    let name = format!("u-{}", role.as_str().replace('_', "-"));
    let existing =
        a.db.list_users()
            .await?
            .into_iter()
            .find(|u| u.username == name);
    let id = match existing {
        Some(u) => u.id,
        None => {
            a.db.create_user(
                t0(),
                &SystemRng,
                NewUser {
                    username: &name,
                    display_name: &name,
                    role,
                    password_hash: "unused",
                },
            )
            .await?
            .id
        }
    };
    let s =
        a.db.create_session(t0(), &SystemRng, &id, a.st.session_policy(), "test")
            .await?;
    Ok(Session {
        token: s.token,
        csrf: s.csrf_token,
    })
}

fn req(method: Method, path: &str, s: Option<&Session>, body: Body, ctype: &str) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(s) = s {
        b = b
            .header(header::COOKIE, format!("{SESSION_COOKIE}={}", s.token))
            .header(CSRF_HEADER, &s.csrf);
    }
    b.header(header::CONTENT_TYPE, ctype).body(body).unwrap()
}

fn get(path: &str, s: &Session) -> Request<Body> {
    req(
        Method::GET,
        path,
        Some(s),
        Body::empty(),
        "application/json",
    )
}

fn post_json(path: &str, s: &Session, v: Value) -> Request<Body> {
    req(
        Method::POST,
        path,
        Some(s),
        Body::from(v.to_string()),
        "application/json",
    )
}

fn upload(path: &str, s: &Session, bytes: Vec<u8>) -> Request<Body> {
    req(Method::POST, path, Some(s), Body::from(bytes), "text/csv")
}

fn calendar_json() -> Value {
    json!({
        "period": "2025-11",
        "deposit_start": "2025-11-01", "deposit_end": "2025-11-10",
        "activation_start": "2025-11-01 09:00", "activation_end": "2025-11-25 15:00",
        "bidding_date": "2025-11-25", "payment_start": "2025-11-26", "payment_end": "2025-11-28",
        "quota_persons": 3000, "quota_companies": 500
    })
}

hotline_testkit::db_test!(every_integration_route_by_every_role, |t| async move {
    let a = app(&t, "");
    let mut sessions = Vec::new();
    for role in Role::ALL {
        sessions.push((role, session(&a, role).await?));
    }
    assert!(a.specs.len() >= 18);
    for spec in &a.specs {
        let path: String = spec
            .path
            .split('/')
            .map(|s| if s.starts_with('{') { "nobody" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let body = || {
            if spec.method == Method::GET {
                Body::empty()
            } else {
                Body::from("{}")
            }
        };
        let (status, _) = send(
            &a.app,
            req(spec.method.clone(), &path, None, body(), "application/json"),
        )
        .await;
        if spec.access.is_public() {
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "{} {}",
                spec.method,
                spec.path
            );
        } else {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {}",
                spec.method,
                spec.path
            );
        }
        for (role, s) in &sessions {
            let (status, b) = send(
                &a.app,
                req(
                    spec.method.clone(),
                    &path,
                    Some(s),
                    body(),
                    "application/json",
                ),
            )
            .await;
            if spec.access.allows(*role) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{} {} as {role}: {status} {b}",
                    spec.method,
                    spec.path
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {} as {role}",
                    spec.method,
                    spec.path
                );
            }
        }
    }
    Ok(())
});

hotline_testkit::db_test!(
    imports_masking_calendar_and_reconciliation,
    |t| async move {
        let a = app(&t, "");
        let biz = session(&a, Role::Business).await?;
        let agent = session(&a, Role::Agent).await?;

        // dry run, then the GBK file, then the UTF-8 one: unchanged
        let (s, r) = send(
            &a.app,
            upload(
                "/api/v1/integrations/bidders/import?period=2025-11&dry_run=true",
                &biz,
                fixture("bidders_gbk.csv"),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(
            (r["inserted"].as_u64(), r["committed"].as_bool()),
            (Some(7), Some(false))
        );
        let (_, r) = send(
            &a.app,
            upload(
                "/api/v1/integrations/bidders/import?period=2025-11&encoding=gbk&file_name=b.csv",
                &biz,
                fixture("bidders_gbk.csv"),
            ),
        )
        .await;
        assert_eq!(
            (r["inserted"].as_u64(), r["committed"].as_bool()),
            (Some(7), Some(true)),
            "{r}"
        );
        let (_, r) = send(
            &a.app,
            upload(
                "/api/v1/integrations/bidders/import?period=2025-11",
                &biz,
                fixture("bidders_utf8.csv"),
            ),
        )
        .await;
        assert_eq!(r["unchanged"].as_u64(), Some(7), "{r}");
        // a bad file: nothing written, every bad row reported
        let (s, r) = send(
            &a.app,
            upload(
                "/api/v1/integrations/bidders/import?period=2025-11",
                &biz,
                fixture("bidders_bad_utf8.csv"),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(r["committed"].as_bool(), Some(false));
        assert_eq!(r["problems"].as_array().unwrap().len(), 17);
        // a declared wrong encoding is refused
        let (s, r) = send(
            &a.app,
            upload(
                "/api/v1/integrations/bidders/import?period=2025-11&encoding=utf-8",
                &biz,
                fixture("bidders_gbk.csv"),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{r}");

        // masking by role
        let (_, full) = send(
            &a.app,
            get(
                "/api/v1/integrations/periods/2025-11/bidders/2511000000001",
                &biz,
            ),
        )
        .await;
        assert_eq!(full["mobile"], "13812345678");
        let (_, masked) = send(
            &a.app,
            get(
                "/api/v1/integrations/periods/2025-11/bidders/2511000000001",
                &agent,
            ),
        )
        .await;
        assert_eq!(masked["mobile"], "138****5678");
        assert_eq!(masked["id_number"], "120101********1239");
        let (_, pop) = send(
            &a.app,
            get(
                "/api/v1/integrations/screen-pop?caller=%2B8613812345678",
                &agent,
            ),
        )
        .await;
        assert_eq!(pop[0]["application_code"], "2511000000001", "{pop}");
        assert_eq!(pop[0]["mobile"], "138****5678");
        let (_, list) = send(
            &a.app,
            get(
                "/api/v1/integrations/periods/2025-11/bidders?prefix=25110000000&limit=3",
                &agent,
            ),
        )
        .await;
        assert_eq!(list.as_array().unwrap().len(), 3);

        // the calendar
        let put = |v: Value| {
            req(
                Method::PUT,
                "/api/v1/integrations/calendar/2025-11",
                Some(&biz),
                Body::from(v.to_string()),
                "application/json",
            )
        };
        assert_eq!(
            send(&a.app, put(calendar_json())).await.0,
            StatusCode::CREATED
        );
        assert_eq!(send(&a.app, put(calendar_json())).await.0, StatusCode::OK);
        let mut other = calendar_json();
        other["period"] = json!("2025-12");
        assert_eq!(send(&a.app, put(other)).await.0, StatusCode::BAD_REQUEST);
        let (s, cur) = send(&a.app, get("/api/v1/integrations/calendar/current", &agent)).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            cur["summary_zh"]
                .as_str()
                .unwrap()
                .contains("11月10日17:00"),
            "{cur}"
        );

        // deposits: matched and mismatches, then 手工勾兑 with an audit entry
        let (_, r) = send(
            &a.app,
            upload(
                "/api/v1/integrations/deposits/import?period=2025-11",
                &biz,
                fixture("deposits_gbk.csv"),
            ),
        )
        .await;
        assert_eq!(r["counts"]["matched"].as_u64(), Some(3), "{r}");
        assert_eq!(r["counts"]["late"].as_u64(), Some(1), "{r}");
        let sup = session(&a, Role::Supervisor).await?;
        let (_, mm) = send(
            &a.app,
            get("/api/v1/integrations/periods/2025-11/mismatches", &sup),
        )
        .await;
        let mm = mm.as_array().unwrap().clone();
        assert_eq!(mm.len(), 5);
        assert!(
            mm[0]["payer_account"].as_str().unwrap().contains('*'),
            "masked for the supervisor"
        );
        let id = mm[3]["id"].as_str().unwrap();
        assert_eq!(mm[3]["mismatch_kind"], "name_differs");
        let (s, d) = send(
            &a.app,
            post_json(
                &format!("/api/v1/integrations/deposits/{id}/resolve"),
                &biz,
                json!({"action": "accept", "note": "亲属代缴"}),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{d}");
        assert_eq!(d["resolution"], "accepted");
        let (s, _) = send(
            &a.app,
            post_json(
                &format!("/api/v1/integrations/deposits/{id}/resolve"),
                &biz,
                json!({"action": "return"}),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let audit =
            a.db.audit_entries(Some("integrations.deposit_resolve"), 10)
                .await?;
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].actor, "u-business");
        let imports =
            a.db.audit_entries(Some("integrations.import_bidders"), 10)
                .await?;
        assert_eq!(
            imports.len(),
            4,
            "dry run, GBK, UTF-8, bad file; the unreadable one is refused before"
        );
        assert!(imports.iter().all(|e| !e.detail.contains("13812345678")));

        // refund failures and the published list
        let (_, r) = send(
            &a.app,
            upload(
                "/api/v1/integrations/refund-failures/import?period=2025-11",
                &biz,
                fixture("refund_failures_utf8.csv"),
            ),
        )
        .await;
        assert_eq!(r["updated"].as_u64(), Some(2), "{r}");
        let (_, list) = send(
            &a.app,
            get(
                "/api/v1/integrations/periods/2025-11/refund-failures",
                &agent,
            ),
        )
        .await;
        assert_eq!(list[1]["name"], "天********司", "{list}");

        // self-service: a wrong pair answers like an unknown code
        let look = |code: &str, last4: &str| {
            post_json(
                "/api/v1/integrations/lookup",
                &agent,
                json!({"caller": "13000000000", "application_code": code, "last4": last4}),
            )
        };
        let (_, ok) = send(&a.app, look("2511000000001", "5678")).await;
        assert_eq!(ok["outcome"], "found", "{ok}");
        assert_eq!(ok["deposit_status"], "paid");
        let (_, wrong) = send(&a.app, look("2511000000001", "0000")).await;
        let (_, unknown) = send(&a.app, look("2599999999999", "5678")).await;
        assert_eq!(wrong, unknown);
        assert_eq!(wrong["outcome"], "not_found");

        // delete the calendar
        let del = req(
            Method::DELETE,
            "/api/v1/integrations/calendar/2025-11",
            Some(&biz),
            Body::empty(),
            "application/json",
        );
        assert_eq!(send(&a.app, del).await.0, StatusCode::OK);
        assert_eq!(
            send(&a.app, get("/api/v1/integrations/calendar/2025-11", &agent))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        Ok(())
    }
);

hotline_testkit::db_test!(imports_larger_than_the_global_body_limit, |t| async move {
    let a = app(&t, "");
    let biz = session(&a, Role::Business).await?;
    let mut csv = String::from("申请编码,类型,姓名/名称,证件号码,手机号\n");
    let mut n = 0;
    while csv.len() < 2 * hotline::http::MAX_BODY_BYTES {
        csv.push_str(&format!("26010{n:08},单位,天津某某某某某某某某某某有限公司第{n}分公司,91120000MA05XXXX1K,139{n:08}\n"));
        n += 1;
    }
    let (s, r) = send(
        &a.app,
        upload(
            "/api/v1/integrations/bidders/import?period=2026-01",
            &biz,
            csv.into_bytes(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["inserted"].as_u64(), Some(n));
    Ok(())
});

fn signed(body: &str, ts: i64, nonce: &str, secret: &str) -> Request<Body> {
    let ts = (ts / 1000).to_string();
    Request::post("/api/v1/integrations/12345/orders")
        .header(header::CONTENT_TYPE, "application/json")
        .header(TIMESTAMP_HEADER, &ts)
        .header(NONCE_HEADER, nonce)
        .header(
            SIGNATURE_HEADER,
            sign(secret.as_bytes(), &ts, nonce, body.as_bytes()),
        )
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A fake 12345 platform: answers 500 to the first `fail_first` requests, then 200, and hands
/// every request (headers checked by the test) to a channel.
async fn fake_platform(
    fail_first: usize,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(axum::http::HeaderMap, String)>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handler = move |headers: axum::http::HeaderMap, body: String| {
        let tx = tx.clone();
        let seen = seen.clone();
        async move {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = tx.send((headers, body));
            if n < fail_first {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            }
        }
    };
    let app = axum::Router::new().route("/reply", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/reply"), rx)
}

hotline_testkit::db_test!(
    work_orders_signed_push_and_outbox_delivery,
    |t| async move {
        let (url, mut rx) = fake_platform(1).await;
        let a = app(&t, &url);
        let now = a.clock.clone();
        let body =
            json!({"order_no": "GD-20251105-0001", "title": "咨询", "content": "保证金何时退还",
                      "caller_phone": "13812345678", "deadline": "2025-11-07 17:00:00"})
            .to_string();
        let ts = t0();
        let (s, r) = send(&a.app, signed(&body, ts, "nonce-00000001", SECRET)).await;
        assert_eq!(
            (s, r["created"].as_bool()),
            (StatusCode::OK, Some(true)),
            "{r}"
        );
        let ticket_id = r["ticket_id"].as_str().unwrap_or_default().to_string();
        assert!(!ticket_id.is_empty(), "the order became a CRM ticket: {r}");
        // the same order again (new nonce): idempotent, the same ticket
        let (s, r) = send(&a.app, signed(&body, ts, "nonce-00000002", SECRET)).await;
        assert_eq!((s, r["created"].as_bool()), (StatusCode::OK, Some(false)));
        assert_eq!(r["ticket_id"].as_str(), Some(ticket_id.as_str()));
        let (kind, ext, due): (String, String, i64) = sqlx::query_as(sqlx::AssertSqlSafe(
            "SELECT kind, external_ref, due_at FROM crm_tickets".to_string(),
        ))
        .fetch_one(&t.pool)
        .await?;
        assert_eq!(
            (kind.as_str(), ext.as_str()),
            ("work_order_12345", "GD-20251105-0001")
        );
        // 2025-11-07 17:00 in Beijing is 09:00 UTC.
        assert_eq!(due, 1_762_506_000_000);
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM crm_tickets")
            .fetch_one(&t.pool)
            .await?;
        assert_eq!(n, 1);
        // replayed, stale, badly signed, unsigned
        let (s, r) = send(&a.app, signed(&body, ts, "nonce-00000002", SECRET)).await;
        assert_eq!(
            (s, r["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("replayed"))
        );
        let (s, r) = send(
            &a.app,
            signed(&body, ts - 301_000, "nonce-00000003", SECRET),
        )
        .await;
        assert_eq!(
            (s, r["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("stale"))
        );
        let (s, r) = send(&a.app, signed(&body, ts, "nonce-00000004", "wrong")).await;
        assert_eq!(
            (s, r["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_signature"))
        );
        let unsigned = Request::post("/api/v1/integrations/12345/orders")
            .body(Body::from(body.clone()))
            .unwrap();
        assert_eq!(send(&a.app, unsigned).await.1["error"]["code"], "malformed");
        assert_eq!(
            a.db.audit_entries(Some("integrations.workorder_received"), 10)
                .await?
                .len(),
            1
        );

        // an agent replies; the outbox delivers, retrying after the platform's 500
        let agent = session(&a, Role::Agent).await?;
        let (_, orders) = send(&a.app, get("/api/v1/integrations/12345/orders", &agent)).await;
        assert_eq!(orders[0]["caller_phone"], "138****5678");
        let (s, r) = send(
            &a.app,
            post_json(
                "/api/v1/integrations/12345/orders/GD-20251105-0001/reply",
                &agent,
                json!({"kind": "reply", "content": "已电话答复市民"}),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let driver = OutboxDriver::new(t.pool.clone(), &a.ctx.config.platform_12345);
        let first = driver.run_once(now.now_ms(), &SystemRng).await?;
        assert_eq!((first.delivered, first.failed), (0, 1));
        let (h, b) = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await?
            .unwrap();
        let hv = |n: &str| h.get(n).unwrap().to_str().unwrap().to_string();
        assert_eq!(
            hv(SIGNATURE_HEADER),
            sign(
                SECRET.as_bytes(),
                &hv(TIMESTAMP_HEADER),
                &hv(NONCE_HEADER),
                b.as_bytes()
            )
        );
        let v: Value = serde_json::from_str(&b)?;
        assert_eq!(
            (v["order_no"].as_str(), v["kind"].as_str()),
            (Some("GD-20251105-0001"), Some("reply"))
        );
        // not yet due: nothing sent
        assert_eq!(
            driver.run_once(now.now_ms() + 9_000, &SystemRng).await?,
            Default::default()
        );
        // after the 10 s backoff: delivered
        now.advance_ms(10_000);
        let second = driver.run_once(now.now_ms(), &SystemRng).await?;
        assert_eq!((second.delivered, second.failed), (1, 0));
        tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await?
            .unwrap();
        let msgs =
            hotline_integrations::workorder::messages_of(&t.pool, "GD-20251105-0001").await?;
        assert_eq!((msgs[0].attempts, msgs[0].delivered_at > 0), (2, true));
        assert_eq!(
            driver
                .run_once(now.now_ms() + 1_000_000, &SystemRng)
                .await?,
            Default::default()
        );
        Ok(())
    }
);

hotline_testkit::db_test!(push_refused_without_a_secret, |t| async move {
    let a = app(&t, "");
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let st = a.st.clone();
    let (api, _) = integrations::routes(ApiBuilder::new(st.clone())).finish();
    let plain = api.with_state(st);
    let (s, _) = send(&plain, signed("{}", t0(), "nonce-00000001", "")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let _ = db;
    Ok(())
});

hotline_testkit::db_test!(cli_functions_import_and_report, |t| async move {
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bidders.csv");
    std::fs::write(&path, fixture("bidders_bad_gbk.csv"))?;
    let opts = commands_integrations::ImportOptions {
        period: "2025-11".into(),
        dry_run: false,
        encoding: Default::default(),
        format: Default::default(),
        progress: false,
    };
    let config = IntegrationsConfig::default();
    let r = commands_integrations::import_bidders(&db, &config, &path, &opts)
        .await
        .unwrap();
    assert_eq!(commands_integrations::exit_code(&r), 2);
    let text = commands_integrations::format_report(&r);
    assert!(text.contains("第 25 行 [申请编码]"), "{text}");
    std::fs::write(&path, fixture("bidders_utf8.csv"))?;
    let r = commands_integrations::import_bidders(&db, &config, &path, &opts)
        .await
        .unwrap();
    assert_eq!((r.inserted, commands_integrations::exit_code(&r)), (7, 0));
    let cal = dir.path().join("cal.json");
    std::fs::write(&cal, calendar_json().to_string())?;
    commands_integrations::set_calendar(&db, &cal)
        .await
        .unwrap();
    let c = commands_integrations::show_calendar(&db, Some("2025-11"))
        .await
        .unwrap();
    assert_eq!(c.quota_persons, 3000);
    let dep = dir.path().join("dep.csv");
    std::fs::write(&dep, fixture("deposits_utf8.csv"))?;
    let r = commands_integrations::import_file(
        &db,
        &config,
        commands_integrations::ImportKind::Deposits,
        &dep,
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(r.counts["matched"], 3);
    let mm = commands_integrations::list_mismatches(&db, "2025-11", Default::default())
        .await
        .unwrap();
    let d = commands_integrations::resolve_mismatch(
        &db,
        &mm[0].id,
        hotline_integrations::bank::Resolution::Return,
        "金额不符，退回",
    )
    .await
    .unwrap();
    assert_eq!(d.resolution, "returned");
    assert_eq!(
        db.audit_entries(Some("integrations.deposit_resolve"), 10)
            .await?
            .len(),
        1
    );
    Ok(())
});
