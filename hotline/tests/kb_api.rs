//! The knowledge base over HTTP, on SQLite and PostgreSQL: business staff write, publish,
//! edit (optimistic versions), diff and restore; agents see only published articles; search
//! finds unspaced Chinese with highlighted snippets; the best answer is returned only when
//! confident; export then import is idempotent.

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use hotline::config::Config;
use hotline::db::Db;
use hotline::http::AppState;
use hotline::http::access::ApiBuilder;
use hotline::http::kb;
use hotline_core::events::NullSink;
use hotline_core::metrics::Registry;
use hotline_core::{ManualClock, Role, SystemRng};
use serde_json::{Value, json};

use common::{Client, T0, login_as};

fn article(slug: &str, title: &str, body: &str, keywords: &[&str]) -> Value {
    json!({
        "slug": slug, "title": title, "body": body, "category": "保证金",
        "tags": ["竞价"], "keywords": keywords, "status": "draft"
    })
}

hotline_testkit::db_test!(articles_search_versions_and_roles, |t| async move {
    let dir = tempfile::tempdir()?;
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let clock = Arc::new(ManualClock::new(T0));
    let st = AppState::new(
        db.clone(),
        Arc::new(Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        }),
        clock.clone(),
        Arc::new(SystemRng),
        Registry::new(),
        Arc::new(NullSink),
    );
    let kb = hotline_knowledge::KnowledgeBase::open(
        t.pool.clone(),
        &dir.path().join("kb-index"),
        clock.clone(),
        Arc::new(SystemRng),
    )
    .await?;
    let _ = st.knowledge.set(Arc::new(kb));
    let (router, _) = kb::routes(ApiBuilder::new(st.clone())).finish();
    let app = router.with_state(st.clone());
    let business = login_as(&db, &st, &app, "biz", Role::Business).await?;
    let agent: Client = login_as(&db, &st, &app, "agent", Role::Agent).await?;

    // An agent may not write.
    let (s, _) = agent
        .post("/api/v1/kb/articles", article("x", "标题", "正文", &[]))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A bad body names the field.
    let (s, b) = business
        .post(
            "/api/v1/kb/articles",
            article("Bad Slug", "标题", "正文", &[]),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.to_string().contains("slug"), "{b}");

    let (s, a) = business
        .post(
            "/api/v1/kb/articles",
            article(
                "deposit-refund",
                "保证金退还时间",
                "未成交的竞买人，保证金在竞价结束后5个工作日内原路退还。",
                &["押金", "退款"],
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let id = a["id"].as_str().unwrap().to_string();
    // A draft is invisible to agents, in search and by id.
    let (_, r) = agent.get("/api/v1/kb/search?text=保证金退还").await;
    assert_eq!(r["total"], 0, "{r}");
    let (s, _) = agent.get(&format!("/api/v1/kb/articles/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, published) = business
        .post(&format!("/api/v1/kb/articles/{id}/publish"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    // Publishing is itself a version.
    let pv = published["version"].as_i64().unwrap_or(0);
    assert_eq!(pv, 2, "{published}");
    // Unspaced Chinese and a synonym both find it, with the match highlighted.
    for q in ["保证金什么时候退", "押金退款"] {
        let (s, r) = agent
            .get(&format!("/api/v1/kb/search?text={}", urlencode(q)))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(r["hits"][0]["id"], id.as_str(), "{q}: {r}");
    }
    let (_, r) = agent
        .get(&format!(
            "/api/v1/kb/search?text={}",
            urlencode("保证金退还")
        ))
        .await;
    assert!(
        r["hits"][0]["snippet_html"]
            .as_str()
            .unwrap_or("")
            .contains("<b>"),
        "{r}"
    );
    let (_, ans) = agent
        .get(&format!(
            "/api/v1/kb/answer?q={}",
            urlencode("保证金退还时间")
        ))
        .await;
    assert_eq!(ans["id"], id.as_str(), "{ans}");
    let (_, none) = agent
        .get(&format!(
            "/api/v1/kb/answer?q={}",
            urlencode("今天天气怎么样")
        ))
        .await;
    assert!(none.is_null(), "{none}");

    // Edit with the version the editor saw; a stale version is refused.
    let mut edited = article(
        "deposit-refund",
        "保证金退还时间（更新）",
        "未成交的竞买人，保证金在竞价结束后3个工作日内原路退还。",
        &["押金", "退款"],
    );
    edited["status"] = json!("published");
    let (s, v2) = business
        .json(
            Method::PUT,
            &format!("/api/v1/kb/articles/{id}"),
            Some(json!({"article": edited, "expected_version": pv})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v2}");
    assert_eq!(v2["version"], pv + 1);
    let (s, _) = business
        .json(
            Method::PUT,
            &format!("/api/v1/kb/articles/{id}"),
            Some(json!({"article": edited, "expected_version": pv})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, versions) = business
        .get(&format!("/api/v1/kb/articles/{id}/versions"))
        .await;
    assert!(
        versions.as_array().is_some_and(|v| v.len() >= 3),
        "{versions}"
    );
    let (s, diff) = business
        .get(&format!(
            "/api/v1/kb/articles/{id}/diff?from={pv}&to={}",
            pv + 1
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(diff.to_string().contains("3个工作日"), "{diff}");
    let (s, restored) = business
        .post(
            &format!("/api/v1/kb/articles/{id}/restore"),
            json!({"version": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{restored}");
    assert_eq!(restored["title"], "保证金退还时间");

    // Export, then import the same file: nothing changes.
    let (s, export) = business.get("/api/v1/kb/export").await;
    assert_eq!(s, StatusCode::OK);
    let (s, report) = business.post("/api/v1/kb/import", export.clone()).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    let (_, after) = business.get("/api/v1/kb/export").await;
    assert_eq!(
        after.to_string().len(),
        export.to_string().len(),
        "import of the export is idempotent: {report}"
    );
    Ok(())
});

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}
