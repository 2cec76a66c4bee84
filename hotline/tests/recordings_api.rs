//! The recordings API over a router built like `router()` does: route × role guard, agents
//! limited to their own calls, playback with HTTP Range (first bytes, middle, suffix, 416),
//! every listen audited, peaks, review, annotations, proofreading and the ZIP export — on
//! recordings made by the real recorder.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use hotline::config::Config;
use hotline::db::Db;
use hotline::db::users::NewUser;
use hotline::http::AppState;
use hotline::http::access::{Access, ApiBuilder, CSRF_HEADER, SESSION_COOKIE};
use hotline_core::events::NullSink;
use hotline_core::metrics::Registry;
use hotline_core::{ManualClock, Role, SystemRng};
use hotline_recording::{Direction, Recorder, RecordingMeta, store, zip};
use serde_json::{Value, json};
use tower::ServiceExt;

use hotline::http::recordings;

const T0: i64 = 1_764_000_000_000;

struct Fixture {
    app: axum::Router,
    specs: Vec<hotline::http::access::RouteSpec>,
    db: Db,
    st: AppState,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

async fn fixture(t: &hotline_testkit::TestDb) -> anyhow::Result<Fixture> {
    let dir = tempfile::tempdir()?;
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let clock = ManualClock::new(T0);
    let st = AppState::new(
        db.clone(),
        Arc::new(config),
        Arc::new(clock.clone()),
        Arc::new(SystemRng),
        Registry::new(),
        Arc::new(NullSink),
    );
    let (router, specs) = recordings::routes(ApiBuilder::new(st.clone())).finish();
    Ok(Fixture {
        app: router.with_state(st.clone()),
        specs,
        db,
        st,
        clock,
        _dir: dir,
    })
}

async fn user(db: &Db, name: &str, role: Role) -> anyhow::Result<String> {
    Ok(db
        .create_user(
            T0,
            &SystemRng,
            NewUser {
                username: name,
                display_name: name,
                role,
                password_hash: "unused",
            },
        )
        .await?
        .id)
}

/// Session cookie and CSRF token of a fresh session.
async fn login(f: &Fixture, user_id: &str) -> anyhow::Result<(String, String)> {
    let s =
        f.db.create_session(
            f.st.now(),
            &SystemRng,
            user_id,
            f.st.session_policy(),
            "test",
        )
        .await?;
    Ok((s.token, s.csrf_token))
}

async fn send(
    app: &axum::Router,
    method: Method,
    path: &str,
    session: Option<&(String, String)>,
    extra: &[(header::HeaderName, &str)],
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut b = Request::builder().method(method).uri(path);
    if let Some((token, csrf)) = session {
        b = b
            .header(header::COOKIE, format!("{SESSION_COOKIE}={token}"))
            .header(CSRF_HEADER, csrf);
    }
    for (k, v) in extra {
        b = b.header(k, *v);
    }
    let req = match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap()
        .to_vec();
    (status, headers, bytes)
}

fn json_of(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or(Value::Null)
}

/// Records a 3-second call with the real recorder and stores it.
async fn record(f: &Fixture, call_id: &str, agent: &str) -> anyhow::Result<String> {
    let cfg = recordings::config_of(&f.st);
    let rec = Recorder::new(&cfg, &Registry::new(), Arc::new(ManualClock::new(T0)));
    let meta = RecordingMeta {
        call_id: call_id.into(),
        caller: "13800001234".into(),
        agent: agent.into(),
        seat: "8001".into(),
        queue: "bidders".into(),
        started_at: T0,
    };
    store::insert_started(&f.db.pool, T0, &SystemRng, &meta).await?;
    let mut h = rec.start(meta)?;
    for i in 0..150u64 {
        let v = (i % 100) as i16 * 100;
        h.push_frame(Direction::Caller, i * 160, &[v; 160]);
        h.push_frame(Direction::Agent, i * 160, &[-v; 160]);
    }
    let report = h.finish(Some(24_000)).await?;
    Ok(store::record_finished(&f.db.pool, T0 + 3_000, &SystemRng, &report).await?)
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "nobody" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

hotline_testkit::db_test!(recordings_routes_by_every_role, |t| async move {
    let f = fixture(&t).await?;
    assert!(f.specs.len() >= 10);
    let mut sessions = Vec::new();
    for role in Role::ALL {
        let id = user(
            &f.db,
            &format!("u-{}", role.as_str().replace('_', "-")),
            role,
        )
        .await?;
        sessions.push((role, id));
    }
    for spec in &f.specs {
        assert!(spec.path.starts_with("/api/v1/recordings"));
        let path = concrete(spec.path);
        let body = (spec.method != Method::GET).then(|| json!({}));
        let (status, _, _) =
            send(&f.app, spec.method.clone(), &path, None, &[], body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{} {}",
            spec.method,
            spec.path
        );
        for (role, id) in &sessions {
            let s = login(&f, id).await?;
            let (status, _, b) = send(
                &f.app,
                spec.method.clone(),
                &path,
                Some(&s),
                &[],
                body.clone(),
            )
            .await;
            if spec.access.allows(*role) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{} {} as {role}: {status} {}",
                    spec.method,
                    spec.path,
                    String::from_utf8_lossy(&b)
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {} as {role}",
                    spec.method,
                    spec.path
                );
                assert_eq!(json_of(&b)["error"]["code"], "forbidden");
            }
        }
    }
    // recordings are not for administrators
    let audio = f.specs.iter().find(|s| s.path.ends_with("/audio")).unwrap();
    assert!(matches!(audio.access, Access::Roles(r) if !r.contains(&Role::Admin)));
    Ok(())
});

hotline_testkit::db_test!(playback_with_range_is_audited_and_scoped, |t| async move {
    let f = fixture(&t).await?;
    let qa = login(&f, &user(&f.db, "qa1", Role::QaReviewer).await?).await?;
    let alice = login(&f, &user(&f.db, "alice", Role::Agent).await?).await?;
    let bob = login(&f, &user(&f.db, "bob", Role::Agent).await?).await?;
    let id = record(&f, "call-a", "alice").await?;
    let rec = store::get(&f.db.pool, &id).await?.unwrap();
    let file = std::fs::read(f.st.config.data_dir.join("recordings").join(&rec.path))?;
    assert_eq!(file.len() as i64, rec.bytes);
    assert_eq!(file.len(), 44 + 24_000 * 4);
    let audio = format!("/api/v1/recordings/{id}/audio");
    let get = |s: &(String, String), range: Option<&str>| {
        let s = s.clone();
        let app = f.app.clone();
        let audio = audio.clone();
        let range = range.map(str::to_string);
        async move {
            let extra: Vec<(header::HeaderName, &str)> = match &range {
                Some(r) => vec![(header::RANGE, r.as_str())],
                None => vec![],
            };
            send(&app, Method::GET, &audio, Some(&s), &extra, None).await
        }
    };

    // the whole file
    let (status, h, body) = get(&qa, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(h[header::ACCEPT_RANGES], "bytes");
    assert_eq!(h[header::CONTENT_LENGTH], file.len().to_string().as_str());
    assert_eq!(body, file);
    // first bytes
    let (status, h, body) = get(&qa, Some("bytes=0-99")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        h[header::CONTENT_RANGE],
        format!("bytes 0-99/{}", file.len()).as_str()
    );
    assert_eq!(body, file[..100]);
    // the middle
    let (status, h, body) = get(&qa, Some("bytes=40000-40999")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(h[header::CONTENT_LENGTH], "1000");
    assert_eq!(body, file[40_000..41_000]);
    // the suffix
    let (status, h, body) = get(&qa, Some("bytes=-500")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    let n = file.len();
    assert_eq!(
        h[header::CONTENT_RANGE],
        format!("bytes {}-{}/{n}", n - 500, n - 1).as_str()
    );
    assert_eq!(body, file[n - 500..]);
    // out of range
    let (status, h, body) = get(&qa, Some(&format!("bytes={n}-"))).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h[header::CONTENT_RANGE], format!("bytes */{n}").as_str());
    assert!(body.is_empty());

    // an agent hears their own call, not another agent's
    assert_eq!(
        get(&alice, Some("bytes=0-0")).await.0,
        StatusCode::PARTIAL_CONTENT
    );
    let (status, _, b) = get(&bob, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&b)
    );
    let list = |s: &(String, String)| {
        let s = s.clone();
        let app = f.app.clone();
        async move {
            json_of(
                &send(&app, Method::GET, "/api/v1/recordings", Some(&s), &[], None)
                    .await
                    .2,
            )
        }
    };
    assert_eq!(list(&alice).await["total"], 1);
    assert_eq!(list(&bob).await["total"], 0);
    assert_eq!(list(&qa).await["items"][0]["call_id"], "call-a");
    // an agent cannot widen the filter to someone else
    let (_, _, b) = send(
        &f.app,
        Method::GET,
        "/api/v1/recordings?agent=alice",
        Some(&bob),
        &[],
        None,
    )
    .await;
    assert_eq!(json_of(&b)["total"], 0);

    // every listen is in the audit log: 5 by qa1 and 1 by alice; bob's refusal heard nothing
    let listens = f.db.audit_entries(Some("recording.listen"), 100).await?;
    assert_eq!(listens.len(), 6);
    assert_eq!(listens.iter().filter(|e| e.actor == "qa1").count(), 5);
    assert!(
        listens
            .iter()
            .all(|e| e.target == format!("recording:{id}"))
    );
    assert!(listens.iter().any(|e| e.detail.contains("bytes=-500")));

    // peaks
    let (status, _, b) = send(
        &f.app,
        Method::GET,
        &format!("/api/v1/recordings/{id}/peaks"),
        Some(&alice),
        &[],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let p = json_of(&b);
    assert_eq!(p["duration_ms"], 3_000);
    assert_eq!(p["left"].as_array().unwrap().len(), 30);
    assert!(p["left"][0].as_u64().unwrap() > 0);
    Ok(())
});

hotline_testkit::db_test!(review_annotate_proofread_export, |t| async move {
    let f = fixture(&t).await?;
    let qa = login(&f, &user(&f.db, "qa1", Role::QaReviewer).await?).await?;
    let alice = login(&f, &user(&f.db, "alice", Role::Agent).await?).await?;
    let officer = login(&f, &user(&f.db, "officer", Role::ComplaintOfficer).await?).await?;
    let id = record(&f, "call-b", "alice").await?;
    let base = format!("/api/v1/recordings/{id}");
    let post = |s: &(String, String), path: String, body: Value| {
        let s = s.clone();
        let app = f.app.clone();
        async move {
            let (st, _, b) = send(&app, Method::POST, &path, Some(&s), &[], Some(body)).await;
            (st, json_of(&b))
        }
    };

    let (st, b) = post(&qa, format!("{base}/review"), json!({"scores": {"greeting": 100, "accuracy": 100, "attitude": 100, "compliance": 100, "closing": 50}, "comment": "结束语不完整"})).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["score_points"], 95.0);
    let (st, b) = post(
        &qa,
        format!("{base}/review"),
        json!({"scores": {"greeting": 100}}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("缺少"));

    let (st, b) = post(
        &qa,
        format!("{base}/annotations"),
        json!({"at": "00:02", "text": "未报工号", "tag": "greeting"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["annotation"]["at_ms"], 2_000);
    let (st, _) = post(
        &qa,
        format!("{base}/annotations"),
        json!({"at": "2:99", "text": "x"}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = post(
        &officer,
        format!("{base}/annotations"),
        json!({"at_ms": 1500, "text": "投诉核实点"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK);

    // proofreading the agent's summary; the original stays
    let (st, _) = post(
        &qa,
        format!("{base}/proofread"),
        json!({"action": "confirm"}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "no summary yet");
    let (st, _) = post(
        &alice,
        format!("{base}/summary"),
        json!({"summary": "咨询竞价时间"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, b) = post(
        &qa,
        format!("{base}/proofread"),
        json!({"action": "correct", "summary": "咨询竞价时间及保证金缴纳截止时间", "note": "遗漏"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["summary"]["version"], 2);

    let (st, _, body) = send(&f.app, Method::GET, &base, Some(&qa), &[], None).await;
    assert_eq!(st, StatusCode::OK);
    let d = json_of(&body);
    assert_eq!(d["recording"]["reviewed"], true);
    assert_eq!(d["recording"]["proofread"], "corrected");
    assert_eq!(d["annotations"].as_array().unwrap().len(), 2);
    assert_eq!(d["summaries"][0]["summary"], "咨询竞价时间");

    // filters over HTTP
    let (_, _, b) = send(
        &f.app,
        Method::GET,
        "/api/v1/recordings?reviewed=true&min_score=90&agent=alice",
        Some(&qa),
        &[],
        None,
    )
    .await;
    assert_eq!(json_of(&b)["total"], 1);
    let (_, _, b) = send(
        &f.app,
        Method::GET,
        "/api/v1/recordings?max_score=50",
        Some(&qa),
        &[],
        None,
    )
    .await;
    assert_eq!(json_of(&b)["total"], 0);

    // a complaint links the recording and queues it for review
    let (st, _) = post(
        &officer,
        format!("{base}/complaint"),
        json!({"complaint_id": "T-9"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (_, _, b) = send(
        &f.app,
        Method::GET,
        "/api/v1/recordings/review-queue",
        Some(&qa),
        &[],
        None,
    )
    .await;
    assert_eq!(json_of(&b)["items"][0]["reason"], "complaint");

    // the evidence export
    let (st, h, zip_bytes) = send(
        &f.app,
        Method::GET,
        &format!("{base}/export"),
        Some(&officer),
        &[],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "application/zip");
    assert!(
        h[header::CONTENT_DISPOSITION]
            .to_str()?
            .contains("recording-call-b.zip")
    );
    let entries = zip::read_stored(&zip_bytes).expect("valid zip");
    assert_eq!(entries[0].0, "call-b.wav");
    assert_eq!(entries[0].1.len(), 44 + 24_000 * 4);
    let actions: Vec<String> =
        f.db.audit_entries(None, 100)
            .await?
            .into_iter()
            .map(|e| e.action)
            .collect();
    for a in [
        "recording.export",
        "recording.review",
        "recording.proofread",
        "recording.link_complaint",
    ] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
    // the weekly sample over HTTP
    let (st, b) = post(
        &qa,
        "/api/v1/recordings/review-queue/sample".into(),
        json!({"percent": 100}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["week"], "2025-W48");
    Ok(())
});

hotline_testkit::db_test!(jobs_back_up_and_audit_retention, |t| async move {
    let f = fixture(&t).await?;
    let id = record(&f, "call-old", "alice").await?;
    let mut cfg = recordings::config_of(&f.st);
    cfg.backup_path = f.st.config.data_dir.join("backup");
    cfg.retention_days = 1;
    let (copied, failed, deleted) = recordings::run_jobs(&f.st, &cfg).await?;
    assert_eq!((copied, failed, deleted), (1, 0, 0));
    let rec = store::get(&f.db.pool, &id).await?.unwrap();
    assert!(cfg.backup_path.join(&rec.path).exists());
    assert!(store::verify(&f.db.pool, &cfg).await?.is_empty());
    f.clock.advance_ms(2 * 86_400_000);
    let qa = login(&f, &user(&f.db, "qa2", Role::QaReviewer).await?).await?;
    let (_, _, deleted) = recordings::run_jobs(&f.st, &cfg).await?;
    assert_eq!(deleted, 1);
    let audit = f.db.audit_entries(Some("recording.delete"), 10).await?;
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].target.clone()),
        ("system", format!("recording:{id}"))
    );
    assert!(audit[0].detail.contains("call-old"));
    let (status, _, _) = send(
        &f.app,
        Method::GET,
        &format!("/api/v1/recordings/{id}/audio"),
        Some(&qa),
        &[],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
});
