//! Storage of recordings on SQLite and PostgreSQL: the row's life, filters, recovery at
//! start, backup + verify (flipped byte, deleted file), retention, reviews, annotations,
//! proofreading versions, the weekly sample and the evidence export.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hotline_core::id::SeededRng;
use hotline_recording::review::{self, Proofread};
use hotline_recording::store::{self, ListFilter};
use hotline_recording::{
    FinishedRecording, RecordingConfig, RecordingMeta, RecordingState, archive, qa, wav, zip,
};

const T0: i64 = 1_764_000_000_000; // Monday 2025-11-24 16:00 UTC
const DAY: i64 = 86_400_000;

fn meta(call_id: &str, agent: &str, caller: &str, started_at: i64) -> RecordingMeta {
    RecordingMeta {
        call_id: call_id.into(),
        caller: caller.into(),
        agent: agent.into(),
        seat: "8001".into(),
        queue: "bidders".into(),
        started_at,
    }
}

/// Writes a finished recording of `ms` milliseconds to the archive, as the recorder would.
fn finished(root: &Path, m: RecordingMeta, ms: u64) -> FinishedRecording {
    let rel = archive::relative_path(m.started_at, &m.call_id);
    let path = root.join(&rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let frames = ms * 8;
    let mut bytes = wav::header(frames * 4).to_vec();
    wav::encode_samples(&vec![700i16; (frames * 2) as usize], &mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    let (size, sha) = archive::sha256_file(&path).unwrap();
    FinishedRecording {
        meta: m,
        relative_path: rel,
        path,
        state: RecordingState::Finished,
        error: None,
        frames,
        duration_ms: ms,
        bytes: size,
        sha256: sha,
        dropped_frames: 0,
        late_frames: 0,
        out_of_range_frames: 0,
        pauses: vec![(1_000, 2_000)],
    }
}

fn config(dir: &Path) -> RecordingConfig {
    RecordingConfig {
        root: dir.join("rec"),
        backup_path: dir.join("backup"),
        retention_days: 30,
        ..Default::default()
    }
}

fn filter() -> ListFilter {
    ListFilter::default()
}

hotline_testkit::db_test!(lifecycle_backup_verify_retention, |db| async move {
    let dir = tempfile::tempdir()?;
    let cfg = config(dir.path());
    let rng = SeededRng::new(1);
    let pool = &db.pool;
    let m1 = meta("c1", "alice", "13800001111", T0);
    let id1 = store::insert_started(pool, T0, &rng, &m1).await?;
    let r = store::get(pool, &id1).await?.unwrap();
    assert_eq!(r.state, RecordingState::Recording);
    assert_eq!(r.path, "2025/11/24/c1.wav");
    let f1 = finished(&cfg.root, m1, 3_000);
    assert_eq!(
        store::record_finished(pool, T0 + 3_000, &rng, &f1).await?,
        id1
    );
    // a finished recording never started in the store gets its row too
    let f2 = finished(
        &cfg.root,
        meta("c2", "bob", "02212345678", T0 + 60_000),
        65_000,
    );
    let id2 = store::record_finished(pool, T0 + 70_000, &rng, &f2).await?;
    let f3 = finished(
        &cfg.root,
        meta("c3", "alice", "13900002222", T0 - 40 * DAY),
        1_000,
    );
    let id3 = store::record_finished(pool, T0, &rng, &f3).await?;

    let r1 = store::get(pool, &id1).await?.unwrap();
    assert_eq!(
        (r1.state, r1.duration_ms, r1.bytes as u64, r1.sha256.clone()),
        (RecordingState::Finished, 3_000, f1.bytes, f1.sha256.clone())
    );
    assert_eq!(r1.pauses, vec![(1_000, 2_000)]);
    assert_eq!(r1.backup_state, "pending");

    // filters
    let ids = |v: Vec<store::Recording>| v.into_iter().map(|r| r.call_id).collect::<Vec<_>>();
    let (all, total) = store::list(pool, &filter()).await?;
    assert_eq!(
        (ids(all), total),
        (vec!["c2".into(), "c1".into(), "c3".into()], 3)
    );
    let f = ListFilter {
        agent: Some("alice".into()),
        ..filter()
    };
    assert_eq!(ids(store::list(pool, &f).await?.0), vec!["c1", "c3"]);
    let f = ListFilter {
        from: Some(T0 - DAY),
        to: Some(T0 + DAY),
        ..filter()
    };
    assert_eq!(store::list(pool, &f).await?.1, 2);
    let f = ListFilter {
        caller: Some("0000".into()),
        ..filter()
    };
    assert_eq!(ids(store::list(pool, &f).await?.0), vec!["c1", "c3"]);
    let f = ListFilter {
        caller: Some("%".into()),
        ..filter()
    };
    assert_eq!(
        store::list(pool, &f).await?.1,
        0,
        "LIKE wildcards are literal"
    );
    let f = ListFilter {
        min_duration_ms: Some(60_000),
        queue: Some("bidders".into()),
        ..filter()
    };
    assert_eq!(ids(store::list(pool, &f).await?.0), vec!["c2"]);
    let f = ListFilter {
        limit: Some(1),
        offset: Some(1),
        ..filter()
    };
    let (page, total) = store::list(pool, &f).await?;
    assert_eq!((ids(page), total), (vec!["c1".into()], 3));

    // backup: copies, fsyncs, verifies
    let rep = store::run_backup(pool, T0, &cfg, 100).await?;
    assert_eq!(rep.copied.len(), 3);
    assert!(rep.failed.is_empty());
    assert!(cfg.backup_path.join("2025/11/24/c1.wav").exists());
    assert_eq!(store::get(pool, &id1).await?.unwrap().backup_state, "done");
    assert!(
        store::run_backup(pool, T0, &cfg, 100)
            .await?
            .copied
            .is_empty()
    );
    assert!(store::verify(pool, &cfg).await?.is_empty());

    // a flipped byte in the archive and a deleted backup file are both reported
    let p1 = cfg.root.join(&f1.relative_path);
    let mut b = std::fs::read(&p1)?;
    b[100] ^= 0x40;
    std::fs::write(&p1, b)?;
    std::fs::remove_file(cfg.backup_path.join(&f2.relative_path))?;
    let issues = store::verify(pool, &cfg).await?;
    let got: Vec<(String, &str, &str)> = issues
        .iter()
        .map(|i| (i.recording_id.clone(), i.location, i.problem))
        .collect();
    assert_eq!(got.len(), 2, "{issues:?}");
    assert!(got.contains(&(id1.clone(), "archive", "mismatch")));
    assert!(got.contains(&(id2.clone(), "backup", "missing")));

    // retention: c3 is 40 days old; c1 linked to a complaint stays whatever its age
    store::link_complaint(pool, T0, &id1, Some("T-1")).await?;
    let f = ListFilter {
        has_complaint: Some(true),
        ..filter()
    };
    assert_eq!(ids(store::list(pool, &f).await?.0), vec!["c1"]);
    let deleted = store::apply_retention(pool, T0 + 31 * DAY, &cfg).await?;
    let mut gone: Vec<String> = deleted.iter().map(|r| r.call_id.clone()).collect();
    gone.sort();
    assert_eq!(gone, vec!["c2", "c3"]);
    assert!(!cfg.root.join(&f3.relative_path).exists());
    assert!(!cfg.backup_path.join(&f3.relative_path).exists());
    assert!(cfg.root.join(&f1.relative_path).exists());
    assert_eq!(
        store::get(pool, &id3).await?.unwrap().state,
        RecordingState::Deleted
    );
    assert_eq!(
        store::list(pool, &filter()).await?.1,
        1,
        "deleted ones leave the list"
    );
    assert!(
        store::apply_retention(pool, T0 + 31 * DAY, &cfg)
            .await?
            .is_empty()
    );
    let off = RecordingConfig {
        retention_days: 0,
        ..cfg.clone()
    };
    assert!(
        store::apply_retention(pool, T0 + 999 * DAY, &off)
            .await?
            .is_empty()
    );
    Ok(())
});

hotline_testkit::db_test!(recovery_at_start_marks_rows, |db| async move {
    let dir = tempfile::tempdir()?;
    let root: PathBuf = dir.path().join("rec");
    let rng = SeededRng::new(2);
    let pool = &db.pool;
    // c-part: crashed mid-call (a .part with a stale header)
    let m = meta("c-part", "alice", "1", T0);
    store::insert_started(pool, T0, &rng, &m).await?;
    let part = root.join("2025/11/24/c-part.wav.part");
    std::fs::create_dir_all(part.parent().unwrap())?;
    let mut bytes = wav::header(0).to_vec();
    wav::encode_samples(&vec![5i16; 2 * 8 * 2_500], &mut bytes);
    std::fs::write(&part, bytes)?;
    // c-done: finished on disk, but the process died before the row was updated
    let f = finished(&root, meta("c-done", "alice", "2", T0), 1_000);
    store::insert_started(pool, T0, &rng, &f.meta).await?;
    // c-lost: no file at all
    store::insert_started(pool, T0, &rng, &meta("c-lost", "bob", "3", T0)).await?;
    // c-orphan: a .part without a row
    let orphan = root.join("2025/11/24/c-orphan.wav.part");
    std::fs::write(&orphan, wav::header(0))?;

    let repaired = store::recover_at_start(pool, T0 + 1, &rng, &root).await?;
    let names: Vec<&str> = repaired.iter().map(|r| r.call_id.as_str()).collect();
    assert_eq!(names, vec!["c-orphan", "c-part"]);
    let get = |c: &'static str| async move { store::get_by_call(pool, c).await.unwrap().unwrap() };
    let p = get("c-part").await;
    assert_eq!((p.state, p.duration_ms), (RecordingState::Recovered, 2_500));
    assert!(!p.error.is_empty());
    assert_eq!(
        hound::WavReader::open(root.join(&p.path))?.duration(),
        20_000
    );
    let d = get("c-done").await;
    assert_eq!(
        (d.state, d.sha256.clone()),
        (RecordingState::Recovered, f.sha256.clone())
    );
    assert_eq!(get("c-lost").await.state, RecordingState::Failed);
    assert_eq!(get("c-orphan").await.state, RecordingState::Recovered);
    assert!(
        store::recover_at_start(pool, T0 + 2, &rng, &root)
            .await?
            .is_empty()
    );
    Ok(())
});

hotline_testkit::db_test!(
    reviews_annotations_proofreading_sample_export,
    |db| async move {
        let dir = tempfile::tempdir()?;
        let cfg = config(dir.path());
        let rng = SeededRng::new(3);
        let pool = &db.pool;
        let mut ids = Vec::new();
        for i in 0..20 {
            let agent = if i < 10 { "alice" } else { "bob" };
            let f = finished(
                &cfg.root,
                meta(&format!("q{i:02}"), agent, "138", T0 + i * 1_000),
                90_000,
            );
            ids.push(store::record_finished(pool, T0, &rng, &f).await?);
        }
        let id = ids[0].clone();
        let form = qa::default_criteria();
        let pts = |g: u32| -> BTreeMap<String, u32> {
            [
                ("greeting", g),
                ("accuracy", 80),
                ("attitude", 90),
                ("compliance", 100),
                ("closing", 60),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
        };
        // queue it, then review: the queue entry closes
        assert!(review::enqueue(pool, T0, &id, "manual", "").await?);
        assert!(!review::enqueue(pool, T0, &id, "manual", "").await?);
        assert_eq!(review::review_queue(pool, 10).await?.len(), 1);
        let r = review::save_review(pool, T0, &rng, &id, "qa1", &form, &pts(100), "good").await?;
        // (15*100 + 30*80 + 25*90 + 20*100 + 10*60) / 100 = 87.50
        assert_eq!(r.score, 8_750);
        assert!(review::review_queue(pool, 10).await?.is_empty());
        // the same reviewer again replaces; a second reviewer adds
        let r2 = review::save_review(pool, T0 + 1, &rng, &id, "qa1", &form, &pts(0), "").await?;
        assert_eq!((r2.id.clone(), r2.score), (r.id.clone(), 7_250));
        review::save_review(pool, T0 + 2, &rng, &id, "qa2", &form, &pts(100), "").await?;
        assert_eq!(review::reviews(pool, &id).await?.len(), 2);
        let bad =
            review::save_review(pool, T0, &rng, &id, "qa1", &form, &BTreeMap::new(), "").await;
        assert!(matches!(
            bad,
            Err(hotline_recording::RecordingError::Invalid(_))
        ));
        let rec = store::get(pool, &id).await?.unwrap();
        assert_eq!((rec.reviewed, rec.score), (true, Some(8_750)));
        let f = ListFilter {
            reviewed: Some(true),
            min_score: Some(80.0),
            max_score: Some(90.0),
            ..filter()
        };
        assert_eq!(store::list(pool, &f).await?.1, 1);
        let f = ListFilter {
            reviewed: Some(false),
            ..filter()
        };
        assert_eq!(store::list(pool, &f).await?.1, 19);

        // annotations at mm:ss, within the recording
        review::add_annotation(
            pool,
            T0,
            &rng,
            &id,
            65_000,
            "未核实身份",
            "compliance",
            "qa1",
        )
        .await?;
        review::add_annotation(pool, T0, &rng, &id, 5_000, "问候规范", "greeting", "qa1").await?;
        assert!(
            review::add_annotation(pool, T0, &rng, &id, 95_000, "x", "", "qa1")
                .await
                .is_err()
        );
        assert!(
            review::add_annotation(pool, T0, &rng, &id, 1_000, " ", "", "qa1")
                .await
                .is_err()
        );
        let notes = review::annotations(pool, &id).await?;
        assert_eq!(
            notes.iter().map(|n| n.at.as_str()).collect::<Vec<_>>(),
            vec!["00:05", "01:05"]
        );

        // proofreading: needs the agent's summary; confirm and correct add versions
        assert!(
            review::proofread(
                pool,
                T0,
                &rng,
                &id,
                "qa1",
                &Proofread::Confirm {
                    note: String::new()
                }
            )
            .await
            .is_err()
        );
        review::set_original_summary(pool, T0, &rng, &id, "alice", "咨询保证金退款时间").await?;
        let v2 = review::proofread(
            pool,
            T0 + 1,
            &rng,
            &id,
            "qa1",
            &Proofread::Confirm {
                note: "无误".into(),
            },
        )
        .await?;
        assert_eq!(
            (v2.version, v2.kind.as_str(), v2.summary.as_str()),
            (2, "confirmed", "咨询保证金退款时间")
        );
        let v3 = review::proofread(
            pool,
            T0 + 2,
            &rng,
            &id,
            "qa2",
            &Proofread::Correct {
                summary: "咨询保证金退款失败的重新退款".into(),
                note: "小结不完整".into(),
            },
        )
        .await?;
        assert_eq!((v3.version, v3.kind.as_str()), (3, "corrected"));
        let all = review::summaries(pool, &id).await?;
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].summary, "咨询保证金退款时间", "the original is kept");
        assert_eq!(store::get(pool, &id).await?.unwrap().proofread, "corrected");

        // weekly sample: 20 % of each agent's unreviewed calls of the week
        let picked = review::sample_week(pool, T0, &rng, T0, 20).await?;
        // alice has 9 unreviewed (ceil 1.8 = 2), bob 10 (2)
        assert_eq!(picked.len(), 4, "{picked:?}");
        assert!(!picked.contains(&id));
        let queue = review::review_queue(pool, 100).await?;
        assert_eq!(queue.len(), 4);
        assert!(
            queue
                .iter()
                .all(|q| q.reason == "sample" && q.week == "2025-W48")
        );
        let f = ListFilter {
            in_review_queue: Some(true),
            ..filter()
        };
        assert_eq!(store::list(pool, &f).await?.1, 4);
        let again = review::sample_week(pool, T0, &rng, T0, 20).await?;
        assert!(again.iter().all(|x| !picked.contains(x)), "not drawn twice");
        assert!(
            review::sample_week(pool, T0, &rng, T0 + 7 * DAY, 20)
                .await?
                .is_empty()
        );
        // The periodic job's weekly sample: the week before is already sampled → nothing;
        // run in the week after that, it would sample T0's week only once.
        assert_eq!(
            review::sample_previous_week_once(pool, T0 + 7 * DAY, &rng, 20).await?,
            None,
            "T0's week has sampled entries already"
        );
        let two_weeks_on = review::sample_previous_week_once(pool, T0 + 14 * DAY, &rng, 20).await?;
        assert_eq!(two_weeks_on, Some(vec![]), "the week after T0 had no calls");

        // export: WAV + data + manifest in a ZIP
        let bytes = review::export_zip(pool, T0, &cfg.root, &id).await?;
        let entries = zip::read_stored(&bytes).expect("valid zip");
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "q00.wav",
                "recording.json",
                "reviews.json",
                "annotations.json",
                "summaries.json",
                "manifest.json"
            ]
        );
        let wav_bytes = std::fs::read(cfg.root.join("2025/11/24/q00.wav"))?;
        assert_eq!(entries[0].1, wav_bytes);
        let notes: serde_json::Value = serde_json::from_slice(&entries[3].1)?;
        assert_eq!(notes[1]["text"], "未核实身份");
        let manifest: serde_json::Value = serde_json::from_slice(&entries[5].1)?;
        assert_eq!(manifest["recorded_sha256"], rec.sha256);
        assert!(
            review::export_zip(pool, T0, &cfg.root, "nope")
                .await
                .is_err()
        );
        Ok(())
    }
);
