//! The route × role matrix: for every route in the router's own table, a request without a
//! session gets 401, a role the route does not allow gets 403, and an allowed role gets past
//! the guard — all as the one JSON error shape. Later routes join automatically, because the
//! table comes from the router. Also: login, CSRF, session fixation, expiry, throttling.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use hotline::config::Config;
use hotline::db::Db;
use hotline::db::users::NewUser;
use hotline::http::access::{CSRF_HEADER, SESSION_COOKIE};
use hotline::http::{AppState, router};
use hotline_core::events::NullSink;
use hotline_core::metrics::Registry;
use hotline_core::{ManualClock, Role, SystemRng};
use serde_json::{Value, json};
use tower::ServiceExt;

const T0: i64 = 1_764_000_000_000;

fn state(db: Db, clock: ManualClock) -> AppState {
    AppState::new(
        db,
        Arc::new(Config::default()),
        Arc::new(clock),
        Arc::new(SystemRng),
        Registry::new(),
        Arc::new(NullSink),
    )
}

async fn send(
    app: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body, headers)
}

fn request(method: &Method, path: &str, session: Option<(&str, &str)>) -> Request<Body> {
    let mut b = Request::builder().method(method.clone()).uri(path);
    if let Some((token, csrf)) = session {
        b = b
            .header(header::COOKIE, format!("{SESSION_COOKIE}={token}"))
            .header(CSRF_HEADER, csrf);
    }
    if *method == Method::GET {
        b.body(Body::empty()).unwrap()
    } else {
        b.header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap()
    }
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "nobody" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

async fn user_of(db: &Db, role: Role) -> anyhow::Result<String> {
    let name = format!("u-{}", role.as_str().replace('_', "-"));
    let u = db
        .create_user(
            T0,
            &SystemRng,
            NewUser {
                username: &name,
                display_name: &name,
                role,
                password_hash: "unused",
            },
        )
        .await?;
    Ok(u.id)
}

hotline_testkit::db_test!(every_route_by_every_role, |t| async move {
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let clock = ManualClock::new(T0);
    let st = state(db.clone(), clock.clone());
    let (app, specs) = router(st.clone());
    assert!(specs.len() >= 10, "the table lists the routes");
    let mut ids = Vec::new();
    for role in Role::ALL {
        ids.push((role, user_of(&db, role).await?));
    }
    let mut checked = 0;
    for spec in &specs {
        let path = concrete(spec.path);
        // no session
        let (status, body, _) = send(&app, request(&spec.method, &path, None)).await;
        if spec.access.is_public() {
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "{} {} is public but gave {status}",
                spec.method,
                spec.path
            );
        } else {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {} without session",
                spec.method,
                spec.path
            );
            assert_eq!(body["error"]["code"], "unauthorized");
        }
        for (role, id) in &ids {
            // a fresh session per request, so that logout does not spoil the next one
            let s = db
                .create_session(T0, &SystemRng, id, st.session_policy(), "test")
                .await?;
            let (status, body, _) = send(
                &app,
                request(&spec.method, &path, Some((&s.token, &s.csrf_token))),
            )
            .await;
            if spec.access.allows(*role) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{} {} as {role} should pass the guard, got {status} {body}",
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
                assert_eq!(body["error"]["code"], "forbidden");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, specs.len() * Role::ALL.len());
    Ok(())
});

async fn login(
    app: &axum::Router,
    user: &str,
    pw: &str,
    cookie: Option<&str>,
) -> (StatusCode, Value, Option<String>) {
    let mut b =
        Request::post("/api/v1/auth/login").header(header::CONTENT_TYPE, "application/json");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, format!("{SESSION_COOKIE}={c}"));
    }
    let req = b
        .body(Body::from(
            json!({"username": user, "password": pw}).to_string(),
        ))
        .unwrap();
    let (status, body, headers) = send(app, req).await;
    let token = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{SESSION_COOKIE}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_string());
    (status, body, token)
}

/// An app on `t`'s database with a virtual clock at `T0` and the supervisor "sup" whose
/// password is "a-long-password".
async fn with_supervisor(
    t: &hotline_testkit::TestDb,
) -> anyhow::Result<(Db, ManualClock, axum::Router)> {
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let clock = ManualClock::new(T0);
    let st = state(db.clone(), clock.clone());
    let (app, _) = router(st.clone());
    let hash = hotline::password::hash("a-long-password")?;
    db.create_user(
        T0,
        &SystemRng,
        NewUser {
            username: "sup",
            display_name: "主管",
            role: Role::Supervisor,
            password_hash: &hash,
        },
    )
    .await?;
    Ok((db, clock, app))
}

hotline_testkit::db_test!(login_csrf_fixation_expiry_throttle, |t| async move {
    let (db, clock, app) = with_supervisor(&t).await?;

    // wrong password and unknown user look the same
    let (s1, b1, _) = login(&app, "sup", "wrong-password", None).await;
    let (s2, b2, _) = login(&app, "ghost", "wrong-password", None).await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(b1, b2);

    // a good login; the cookie is HttpOnly and SameSite
    let (status, body, token) = login(&app, "sup", "a-long-password", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = token.expect("session cookie");
    let csrf = body["csrf_token"].as_str().unwrap().to_string();

    // state-changing request without the CSRF header → 403 csrf
    let req = Request::post("/api/v1/auth/logout")
        .header(header::COOKIE, format!("{SESSION_COOKIE}={token}"))
        .body(Body::empty())
        .unwrap();
    let (status, body, _) = send(&app, req).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf"))
    );
    // cross-origin POST is refused even with the header
    let req = Request::post("/api/v1/auth/logout")
        .header(header::COOKIE, format!("{SESSION_COOKIE}={token}"))
        .header(CSRF_HEADER, &csrf)
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, "http://evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.0, StatusCode::FORBIDDEN);

    // session fixation: logging in with an existing cookie replaces that session
    let (_, _, token2) = login(&app, "sup", "a-long-password", Some(&token)).await;
    let token2 = token2.unwrap();
    assert_ne!(token, token2);
    let me = |tok: String| {
        Request::get("/api/v1/me")
            .header(header::COOKIE, format!("{SESSION_COOKIE}={tok}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        send(&app, me(token.clone())).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(send(&app, me(token2.clone())).await.0, StatusCode::OK);

    // idle expiry on virtual time (60 minutes by default)
    clock.advance_ms(61 * 60_000);
    assert_eq!(send(&app, me(token2)).await.0, StatusCode::UNAUTHORIZED);

    // throttling per account: 5 failures lock the account, even for the right password
    for _ in 0..5 {
        login(&app, "sup", "wrong-password", None).await;
    }
    let (status, body, _) = login(&app, "sup", "a-long-password", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // after the lockout the right password works again
    clock.advance_ms(16 * 60_000);
    assert_eq!(
        login(&app, "sup", "a-long-password", None).await.0,
        StatusCode::OK
    );

    // every login attempt is audited
    let failed = db.audit_entries(Some("auth.login_failed"), 100).await?;
    assert!(failed.len() >= 7, "{}", failed.len());
    assert!(!db.audit_entries(Some("auth.login"), 10).await?.is_empty());
    assert!(
        !db.audit_entries(Some("auth.login_blocked"), 10)
            .await?
            .is_empty()
    );
    Ok(())
});

// Issue 12 hardening: the per-address limit (many usernames from one address, which the
// per-account limit alone would not stop), a forged CSRF token (not just a missing one), and
// a session token the server never issued (fixation by planting a cookie).
hotline_testkit::db_test!(
    login_spraying_forged_csrf_and_planted_cookies,
    |t| async move {
        let (_, clock, app) = with_supervisor(&t).await?;

        // A planted token is not a session, and logging in with it issues a different one.
        let planted = "a".repeat(43);
        let me = |tok: &str| {
            Request::get("/api/v1/me")
                .header(header::COOKIE, format!("{SESSION_COOKIE}={tok}"))
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(send(&app, me(&planted)).await.0, StatusCode::UNAUTHORIZED);
        let (status, body, token) = login(&app, "sup", "a-long-password", Some(&planted)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = token.expect("session cookie");
        assert_ne!(token, planted);
        assert_eq!(send(&app, me(&planted)).await.0, StatusCode::UNAUTHORIZED);

        // A wrong CSRF token (another session's, or made up) is refused like a missing one.
        let forged = Request::post("/api/v1/auth/logout")
            .header(header::COOKIE, format!("{SESSION_COOKIE}={token}"))
            .header(CSRF_HEADER, "0".repeat(43))
            .body(Body::empty())
            .unwrap();
        let (status, body, _) = send(&app, forged).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf"))
        );
        assert_eq!(
            send(&app, me(&token)).await.0,
            StatusCode::OK,
            "still logged in"
        );

        // Password spraying: 20 failures over 20 usernames from one address block the address,
        // so even the right password for an untouched account is refused from there.
        for i in 0..20 {
            let (status, _, _) = login(&app, &format!("user{i}"), "guess-123456", None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, body, _) = login(&app, "sup", "a-long-password", None).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        clock.advance_ms(16 * 60_000);
        assert_eq!(
            login(&app, "sup", "a-long-password", None).await.0,
            StatusCode::OK
        );
        Ok(())
    }
);

hotline_testkit::db_test!(errors_share_one_json_shape, |t| async move {
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let (app, _) = router(state(db, ManualClock::new(T0)));
    let (status, body, _) = send(
        &app,
        Request::get("/api/v1/nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let bad = Request::post("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (status, body, _) = send(&app, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_request");
    let huge = Request::post("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(vec![b' '; 2 * 1024 * 1024]))
        .unwrap();
    let (status, body, _) = send(&app, huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "payload_too_large");
    Ok(())
});

hotline_testkit::db_test!(admin_manages_users_over_http, |t| async move {
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let st = state(db.clone(), ManualClock::new(T0));
    let (app, _) = router(st.clone());
    let admin_id = user_of(&db, Role::Admin).await?;
    let s = db
        .create_session(T0, &SystemRng, &admin_id, st.session_policy(), "test")
        .await?;
    let post = |path: &str, body: Value| {
        Request::post(path)
            .header(header::COOKIE, format!("{SESSION_COOKIE}={}", s.token))
            .header(CSRF_HEADER, &s.csrf_token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, body, _) = send(
        &app,
        post(
            "/api/v1/users",
            json!({"username": "qa1", "role": "qa_reviewer"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let generated = body["generated_password"].as_str().unwrap().to_string();
    assert!(generated.len() >= 10);
    let (status, _, _) = send(
        &app,
        post("/api/v1/users", json!({"username": "qa1", "role": "agent"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body, _) = send(
        &app,
        post("/api/v1/users", json!({"username": "x2", "role": "king"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, _) = send(
        &app,
        post(
            "/api/v1/users",
            json!({"username": "x3", "role": "agent", "password": "short"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body, _) = send(&app, post("/api/v1/users/qa1/disable", json!({}))).await;
    assert_eq!(
        (status, body["disabled"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (status, _, _) = send(&app, post("/api/v1/users/u-admin/disable", json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "cannot disable oneself");
    let actions: Vec<String> = db
        .audit_entries(None, 50)
        .await?
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&"user.create".to_string())
            && actions.contains(&"user.disable".to_string()),
        "{actions:?}"
    );
    Ok(())
});
