//! The web console's pages over HTTP (the browser test in tests/tests/console.rs drives them
//! in Chromium): the login redirect, role-gated pages and navigation, the CSRF meta tag, the
//! Content-Security-Policy, static assets, and the live stream's refusal without a bus.

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode, header};
use hotline::config::Config;
use hotline::db::Db;
use hotline::http::AppState;
use hotline_core::events::NullSink;
use hotline_core::metrics::Registry;
use hotline_core::{ManualClock, Role, SystemRng};

use common::{Client, T0, login_as};

/// The page's text with minijinja's escaped slashes (`&#x2f;`) read back as the browser does.
fn body(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("&#x2f;", "/")
}

hotline_testkit::db_test!(pages_follow_roles_and_sessions, |t| async move {
    let dir = tempfile::tempdir()?;
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let st = AppState::new(
        db.clone(),
        Arc::new(Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        }),
        Arc::new(ManualClock::new(T0)),
        Arc::new(SystemRng),
        Registry::new(),
        Arc::new(NullSink),
    );
    let (app, _) = hotline::http::router(st.clone());
    let anon = Client {
        app: app.clone(),
        session: None,
    };

    // No session: the login page, and every page sends the browser there.
    let (s, b, h) = anon.raw(Method::GET, "/login", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body(&b).contains("登录"));
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str()?;
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!body(&b).contains("<script>"), "no inline script");
    let (s, _, h) = anon.raw(Method::GET, "/qa?x=1", None).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/login?next=/qa%3Fx%3D1");

    // An agent: lands on the desk, sees its pages only, the CSRF token is in the page.
    let agent: Client = login_as(&db, &st, &app, "agent1", Role::Agent).await?;
    let (s, _, h) = agent.raw(Method::GET, "/", None).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/desk");
    let (s, b, _) = agent.raw(Method::GET, "/desk", None).await;
    assert_eq!(s, StatusCode::OK);
    let page = body(&b);
    let csrf = &agent.session.as_ref().unwrap().1;
    assert!(page.contains(&format!("<meta name=\"csrf-token\" content=\"{csrf}\">")));
    assert!(page.contains("href=\"/desk\"") && page.contains("href=\"/tickets\""));
    assert!(!page.contains("href=\"/admin\"") && !page.contains("href=\"/wallboard\""));
    assert!(page.contains("/static/js/desk.js"));
    let (s, b, _) = agent.raw(Method::GET, "/admin", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(body(&b).contains("无权访问"));
    // Logged in, the login page sends the user home.
    let (s, _, h) = agent.raw(Method::GET, "/login", None).await;
    assert_eq!(
        (s, h[header::LOCATION].to_str()?),
        (StatusCode::SEE_OTHER, "/desk")
    );

    // Every role opens exactly the pages of the table.
    for role in Role::ALL {
        let c = login_as(&db, &st, &app, &format!("u-{}", role.as_str()), role).await?;
        for p in hotline::web::PAGES {
            let (s, _, _) = c.raw(Method::GET, p.path, None).await;
            let want = if p.roles.contains(&role) {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(s, want, "{role:?} {}", p.path);
        }
    }

    // Static assets, and nothing outside them.
    let (s, b, h) = anon.raw(Method::GET, "/static/js/common.js", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h[header::CONTENT_TYPE]
            .to_str()?
            .starts_with("text/javascript")
    );
    assert!(body(&b).contains("X-CSRF-Token"));
    let (s, _, _) = anon.raw(Method::GET, "/static/../Cargo.toml", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The live stream needs a session, and the event bus (absent in this in-process app).
    let (s, _, _) = anon.raw(Method::GET, "/api/v1/console/events", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = agent.raw(Method::GET, "/api/v1/console/events", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    Ok(())
});
