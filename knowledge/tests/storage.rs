//! Storage and API tests, each on SQLite and on PostgreSQL (`TEST_DATABASE_URL`).

use std::sync::Arc;

use hotline_core::id::SeededRng;
use hotline_core::{Clock, ManualClock};
use hotline_knowledge::{
    ArticleInput, ArticleStatus, KnowledgeBase, KnowledgeError, LineChange, ListFilter,
    SearchQuery, VersionAction,
};
use hotline_testkit::db_test;

const T0: i64 = 1_796_054_400_000; // 2026-12-01 00:00 Beijing

fn clock() -> ManualClock {
    ManualClock::new(T0)
}

async fn kb(pool: sqlx::AnyPool, clock: &ManualClock) -> anyhow::Result<KnowledgeBase> {
    Ok(
        KnowledgeBase::in_memory(pool, Arc::new(clock.clone()), Arc::new(SeededRng::new(7)))
            .await?,
    )
}

fn input(slug: &str, title: &str, body: &str) -> ArticleInput {
    ArticleInput {
        slug: slug.into(),
        title: title.into(),
        body: body.into(),
        category: "保证金".into(),
        tags: vec!["个人".into()],
        keywords: vec!["押金".into()],
        status: ArticleStatus::Draft,
        valid_from: None,
        valid_to: None,
    }
}

db_test!(crud_versions_diff_restore, |db| async move {
    let c = clock();
    let kb = kb(db.pool.clone(), &c).await?;
    let a = kb
        .create(
            &input(
                "deposit-amount",
                "保证金金额",
                "每个申请编码 2000 元。\n以到账为准。",
            ),
            "biz1",
        )
        .await?;
    assert_eq!(a.version, 1);
    assert_eq!(kb.get(&a.id).await?, a);
    assert_eq!(kb.get_by_slug("deposit-amount").await?.id, a.id);

    c.advance_ms(1_000);
    let mut edit = a.content.clone();
    edit.body = "每个申请编码 2000 元。\n以到账时间为准，17:00 截止。".into();
    let b = kb.update(&a.id, &edit, Some(1), "biz2").await?;
    assert_eq!(b.version, 2);
    assert_eq!(b.author, "biz2");
    assert_eq!(b.updated_at, T0 + 1_000);

    // A stale editor's copy is refused.
    let err = kb
        .update(&a.id, &a.content, Some(1), "biz1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            KnowledgeError::Conflict {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
    // Saving the same content makes no version.
    assert_eq!(kb.update(&a.id, &edit, None, "biz2").await?.version, 2);

    let p = kb.publish(&a.id, "sup1").await?;
    assert_eq!((p.version, p.content.status), (3, ArticleStatus::Published));

    let versions = kb.versions(&a.id).await?;
    let actions: Vec<_> = versions.iter().map(|v| (v.version, v.action)).collect();
    assert_eq!(
        actions,
        [
            (3, VersionAction::Publish),
            (2, VersionAction::Update),
            (1, VersionAction::Create)
        ]
    );

    let d = kb.diff(&a.id, 1, 3).await?;
    let changed: Vec<_> = d
        .body
        .iter()
        .filter(|l| l.change != LineChange::Equal)
        .map(|l| (l.change, l.text.as_str()))
        .collect();
    assert_eq!(
        changed,
        [
            (LineChange::Delete, "以到账为准。"),
            (LineChange::Insert, "以到账时间为准，17:00 截止。")
        ]
    );
    assert_eq!(d.fields.len(), 1);
    assert_eq!(d.fields[0].field, "status");
    assert!(d.to_text().contains("+以到账时间为准"));

    let r = kb.restore(&a.id, 1, "sup1").await?;
    assert_eq!(r.version, 4);
    assert_eq!(r.content.body, a.content.body);
    assert_eq!(
        r.content.status,
        ArticleStatus::Published,
        "restore keeps the status"
    );
    assert_eq!(kb.versions(&a.id).await?[0].action, VersionAction::Restore);

    let missing = kb.diff(&a.id, 1, 99).await.unwrap_err();
    assert!(matches!(
        missing,
        KnowledgeError::VersionNotFound { version: 99, .. }
    ));

    let dup = kb
        .create(&input("deposit-amount", "x", "y"), "biz1")
        .await
        .unwrap_err();
    assert!(matches!(dup, KnowledgeError::DuplicateSlug(_)), "{dup}");
    let bad = kb
        .create(&input("Bad Slug", "x", "y"), "biz1")
        .await
        .unwrap_err();
    assert!(
        matches!(bad, KnowledgeError::Invalid { ref field, .. } if field == "slug"),
        "{bad}"
    );

    kb.create(
        &input("refund-when", "保证金什么时候退", "未竞得的原路退还。"),
        "biz1",
    )
    .await?;
    let page = kb
        .list(&ListFilter {
            status: Some(ArticleStatus::Draft),
            ..Default::default()
        })
        .await?;
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].slug, "refund-when");
    let page = kb
        .list(&ListFilter {
            limit: 1,
            ..Default::default()
        })
        .await?;
    assert_eq!((page.total, page.items.len()), (2, 1));
    assert_eq!(
        kb.store().categories().await?,
        vec![("保证金".to_string(), 2)]
    );

    kb.delete(&a.id).await?;
    assert!(matches!(
        kb.get(&a.id).await,
        Err(KnowledgeError::NotFound(_))
    ));
    assert!(matches!(
        kb.delete(&a.id).await,
        Err(KnowledgeError::NotFound(_))
    ));
    Ok(())
});

db_test!(
    publish_is_searchable_at_once_with_filters,
    |db| async move {
        let c = clock();
        let kb = kb(db.pool.clone(), &c).await?;
        let a = kb
            .create(
                &input(
                    "refund-when",
                    "保证金什么时候退",
                    "未竞得的，保证金原路退还。",
                ),
                "biz1",
            )
            .await?;
        // Drafts are indexed but agents (status = published) do not see them.
        assert!(
            kb.search(SearchQuery::published("押金啥时候退"))
                .await?
                .hits
                .is_empty()
        );
        let mut any = SearchQuery::published("押金啥时候退");
        any.status = None;
        assert_eq!(kb.search(any.clone()).await?.hits[0].slug, "refund-when");

        kb.publish(&a.id, "sup1").await?;
        let res = kb.search(SearchQuery::published("押金啥时候退")).await?;
        assert_eq!(res.total, 1);
        assert_eq!(res.hits[0].slug, "refund-when");
        assert!(
            res.hits[0].snippet_html.contains("<b>"),
            "{}",
            res.hits[0].snippet_html
        );

        // Validity window and category filters.
        let mut cal = input(
            "calendar-2026-12",
            "2026年12月竞价日程",
            "12月保证金缴纳期和竞价日安排。",
        );
        cal.category = "竞价日程".into();
        cal.status = ArticleStatus::Published;
        cal.valid_from = Some(T0);
        cal.valid_to = Some(T0 + 31 * 86_400_000);
        kb.create(&cal, "biz1").await?;
        let mut q = SearchQuery::published("竞价日程");
        q.valid_at = Some(T0 + 86_400_000);
        assert_eq!(kb.search(q.clone()).await?.hits.len(), 1);
        q.valid_at = Some(T0 + 40 * 86_400_000);
        assert!(kb.search(q.clone()).await?.hits.is_empty());
        q.valid_at = None;
        q.category = Some("保证金".into());
        assert!(
            kb.search(q)
                .await?
                .hits
                .iter()
                .all(|h| h.category == "保证金")
        );

        kb.archive(&a.id, "sup1").await?;
        let hits = kb
            .search(SearchQuery::published("押金啥时候退"))
            .await?
            .hits;
        assert!(
            hits.iter().all(|h| h.slug != "refund-when"),
            "archived is hidden"
        );
        Ok(())
    }
);

db_test!(
    builtin_import_is_idempotent_and_export_round_trips,
    |db| async move {
        let c = clock();
        let kb = kb(db.pool.clone(), &c).await?;
        let first = kb.load_builtin("init").await?;
        assert!(
            first.created.len() >= 40,
            "{} built-in articles",
            first.created.len()
        );
        let rev = kb.store().revision().await?;
        let again = kb.load_builtin("init").await?;
        assert!(!again.changed());
        assert_eq!(again.unchanged.len(), first.created.len());
        assert_eq!(
            kb.store().revision().await?,
            rev,
            "an idempotent import writes nothing"
        );

        let a = kb
            .best_answer("押金啥时候退")
            .await?
            .expect("a confident answer");
        assert_eq!(a.slug, "refund-when");
        assert!(kb.best_answer("今天天气怎么样").await?.is_none());

        // Export to a folder, edit one file, import again: exactly one update.
        let dir = tempfile::tempdir()?;
        let n = kb.export_dir(dir.path()).await?;
        assert_eq!(n, first.created.len());
        let path = dir.path().join("deposit-amount.md");
        let text = std::fs::read_to_string(&path)?;
        std::fs::write(&path, text.replace("2000 元", "2000 元（贰仟元）"))?;
        let r = kb.import_dir(dir.path(), "biz1").await?;
        assert_eq!(r.updated, ["deposit-amount"]);
        assert_eq!(r.unchanged.len(), n - 1);
        let v = kb
            .versions(&kb.get_by_slug("deposit-amount").await?.id)
            .await?;
        assert_eq!(v[0].action, VersionAction::Import);

        // JSON round trip is idempotent too.
        let json = kb.export_json().await?;
        let r = kb.import_json(&json, "biz1").await?;
        assert!(!r.changed());
        Ok(())
    }
);

db_test!(import_is_all_or_nothing, |db| async move {
    let c = clock();
    let kb = kb(db.pool.clone(), &c).await?;
    let good = "+++\ntitle = \"保证金金额\"\ncategory = \"保证金\"\n+++\n每个申请编码 2000 元。\n";
    let bad = "+++\ntitle = \"\"\ncategory = \"保证金\"\nstatus = \"live\"\n+++\n正文\n";
    let files = vec![
        ("deposit-amount.md".to_string(), good.to_string()),
        ("broken.md".to_string(), bad.to_string()),
    ];
    let err = kb.import_markdown(&files, "biz1").await.unwrap_err();
    let KnowledgeError::Import(problems) = &err else {
        panic!("{err}")
    };
    let got: Vec<_> = problems
        .iter()
        .map(|p| (p.file.as_str(), p.field.as_str()))
        .collect();
    assert_eq!(got, [("broken.md", "title"), ("broken.md", "status")]);
    assert_eq!(
        kb.list(&ListFilter::default()).await?.total,
        0,
        "nothing applied"
    );
    assert_eq!(kb.store().revision().await?, 0);
    Ok(())
});

db_test!(index_is_rebuilt_when_missing_or_stale, |db| async move {
    let c = clock();
    let dir = tempfile::tempdir()?;
    let index_dir = dir.path().join("kb-index");
    let rng = Arc::new(SeededRng::new(9));
    let open = |pool: sqlx::AnyPool| {
        let (clock, rng, index_dir) = (
            Arc::new(c.clone()) as Arc<dyn Clock>,
            rng.clone(),
            index_dir.clone(),
        );
        async move { KnowledgeBase::open(pool, &index_dir, clock, rng).await }
    };
    let kb = open(db.pool.clone()).await?;
    kb.load_builtin("init").await?;
    let rev = kb.store().revision().await?;
    assert_eq!(kb.index().indexed_revision()?, Some(rev));
    let n = kb.index().num_docs();
    drop(kb);

    // Reopen: fresh, no rebuild needed.
    let kb = open(db.pool.clone()).await?;
    assert!(!kb.refresh_if_stale().await?);
    // A write behind the index's back (another process) makes it stale.
    let id = kb.get_by_slug("refund-when").await?.id;
    kb.store()
        .set_status(&id, ArticleStatus::Archived, "other")
        .await?;
    assert!(kb.refresh_if_stale().await?);
    assert_eq!(kb.index().indexed_revision()?, Some(rev + 1));
    drop(kb);

    // Delete the index directory: it is rebuilt on open.
    std::fs::remove_dir_all(&index_dir)?;
    let kb = open(db.pool.clone()).await?;
    assert_eq!(kb.index().num_docs(), n);
    let hits = kb
        .search(SearchQuery::published("保证金交多少钱"))
        .await?
        .hits;
    assert_eq!(hits[0].slug, "deposit-amount");
    let report = kb.reindex().await?;
    assert_eq!(report.articles as u64, n);
    Ok(())
});

db_test!(concurrent_editors_one_wins, |db| async move {
    let c = clock();
    let kb = Arc::new(kb(db.pool.clone(), &c).await?);
    let a = kb
        .create(
            &input("deposit-window", "保证金缴纳时间", "截止 17:00。"),
            "biz1",
        )
        .await?;
    let mut tasks = Vec::new();
    for editor in ["biz1", "biz2"] {
        let (kb, id) = (kb.clone(), a.id.clone());
        let mut edit = a.content.clone();
        edit.body = format!("截止 17:00，以到账为准（{editor}）。");
        tasks.push(tokio::spawn(async move {
            kb.update(&id, &edit, Some(1), editor).await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await?);
    }
    let wins = outcomes.iter().filter(|r| r.is_ok()).count();
    let conflicts = outcomes
        .iter()
        .filter(|r| matches!(r, Err(KnowledgeError::Conflict { .. })))
        .count();
    assert_eq!((wins, conflicts), (1, 1));
    assert_eq!(kb.versions(&a.id).await?.len(), 2);
    Ok(())
});
