//! The prompt API on SQLite and PostgreSQL, built as the binary builds it (the whole
//! router): a supervisor lists and listens but may not change; an administrator's bad,
//! silent or overlong file is refused with its reason and changes nothing on disk; a good
//! recording (16 kHz, so it is resampled) is stored as 8 kHz WAV, listed as uploaded, plays,
//! is what the IVR library loads, and is audited; revert brings the built-in one back.

use std::sync::Arc;

use axum::http::{Method, StatusCode, header};
use hotline::config::Config;
use hotline::contact::Library;
use hotline::contact::prompts::custom_dir;
use hotline::db::Db;
use hotline::http::{AppState, router};
use hotline_core::events::NullSink;
use hotline_core::metrics::Registry;
use hotline_core::{ManualClock, Role, SystemRng};
use hotline_ivr::prompts::PromptCatalog;
use serde_json::Value;

mod common;
use common::{Client, T0, login_as};

/// A mono 16-bit WAV at `rate` holding `ms` of a 440 Hz tone at `amplitude`.
fn wav(rate: u32, ms: u32, amplitude: f64) -> Vec<u8> {
    let n = rate * ms / 1000;
    let data: Vec<u8> = (0..n)
        .flat_map(|i| {
            let t = f64::from(i) / f64::from(rate);
            ((amplitude * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16).to_le_bytes()
        })
        .collect();
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

async fn put(c: &Client, name: &str, file: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let (s, bytes, _) = c
        .raw(
            Method::PUT,
            &format!(
                "/api/v1/prompts/{}?file_name={file}",
                name.replace('/', "%2F")
            ),
            Some(("application/octet-stream", body)),
        )
        .await;
    (s, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn entry<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["items"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("{name} not listed: {list}"))
}

/// Every file under `dir` (none when it does not exist).
fn files(dir: &std::path::Path) -> Vec<String> {
    fn walk(d: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}

hotline_testkit::db_test!(prompts_upload_listen_revert_over_http, |t| async move {
    let data = tempfile::tempdir()?;
    let config = Arc::new(Config {
        data_dir: data.path().to_path_buf(),
        ..Config::default()
    });
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let st = AppState::new(
        db.clone(),
        config.clone(),
        Arc::new(ManualClock::new(T0)),
        Arc::new(SystemRng),
        Registry::new(),
        Arc::new(NullSink),
    );
    let (app, _) = router(st.clone());
    let admin = login_as(&db, &st, &app, "root", Role::Admin).await?;
    let boss = login_as(&db, &st, &app, "boss", Role::Supervisor).await?;
    let agent = login_as(&db, &st, &app, "a1", Role::Agent).await?;
    let custom = custom_dir(&config.data_dir);

    // The supervisor lists and listens to the built-in set.
    let (s, list) = boss.get("/api/v1/prompts").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(PromptCatalog::default_zh_cn().names().count()),
        "every prompt of the set is listed"
    );
    let welcome = entry(&list, "msg/welcome");
    assert_eq!(welcome["source"], "builtin");
    assert!(welcome["text"].as_str().unwrap().contains("欢迎致电"));
    let builtin_ms = welcome["duration_ms"].as_u64().unwrap();
    assert!(builtin_ms > 1000, "{welcome}");
    let (s, wav_body, headers) = boss
        .raw(Method::GET, "/api/v1/prompts/msg%2Fwelcome/audio", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(&wav_body[0..4], b"RIFF");
    assert_eq!(
        hotline_ivr::audio::wav_duration_ms(&wav_body),
        Some(builtin_ms)
    );
    assert_eq!(agent.get("/api/v1/prompts").await.0, StatusCode::FORBIDDEN);
    // Only an administrator changes prompts.
    let good = wav(16_000, 1500, 12_000.0);
    assert_eq!(
        put(&boss, "msg/welcome", "w.wav", good.clone()).await.0,
        StatusCode::FORBIDDEN
    );

    // Refusals name the problem and leave nothing behind.
    for (body, file, needle) in [
        (
            b"RIFF but not really a wave file".to_vec(),
            "w.wav",
            "无法识别",
        ),
        (wav(8000, 3000, 0.0), "silence.wav", "静音"),
        (wav(8000, 130_000, 9000.0), "long.wav", "过长"),
        (wav(8000, 50, 9000.0), "click.wav", "过短"),
        (Vec::new(), "empty.wav", "请求体为空"),
    ] {
        let (s, v) = put(&admin, "msg/welcome", file, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{file}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(needle), "{file}: {msg}");
        assert!(
            files(&custom).is_empty(),
            "{file} left {:?}",
            files(&custom)
        );
    }
    let (s, v) = put(&admin, "msg/nope", "w.wav", good.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _) = put(&admin, "..%2Fescape", "w.wav", good.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        entry(&boss.get("/api/v1/prompts").await.1, "msg/welcome")["source"],
        "builtin"
    );

    // A good recording: stored as 8 kHz, listed, playable, loaded by the IVR, audited.
    let (s, v) = put(&admin, "msg/welcome", "欢迎词.wav", good).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["source"], "uploaded");
    assert_eq!(v["duration_ms"], 1500);
    assert_eq!(v["builtin_duration_ms"], builtin_ms);
    assert_eq!(
        files(&custom),
        [custom.join("msg/welcome.wav").display().to_string()]
    );
    let (_, list) = boss.get("/api/v1/prompts").await;
    let welcome = entry(&list, "msg/welcome");
    assert_eq!(welcome["source"], "uploaded");
    assert!(welcome["updated_at"].as_i64().is_some());
    assert_eq!(entry(&list, "msg/goodbye")["source"], "builtin");
    let (s, wav_body, _) = boss
        .raw(Method::GET, "/api/v1/prompts/msg%2Fwelcome/audio", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(wav_body.len(), 44 + 12_000 * 2, "1.5 s at 8 kHz, 16-bit");
    let lib = Library::load(&config.ivr, std::path::Path::new("."), &custom)?;
    assert_eq!(lib.clips["msg/welcome"].len(), 12_000);
    let (_, audit) = admin.get("/api/v1/audit?limit=10").await;
    let audit = audit.to_string();
    assert!(
        audit.contains("prompt.upload") && audit.contains("prompt:msg/welcome"),
        "{audit}"
    );
    assert!(audit.contains("欢迎词.wav"), "{audit}");

    // A second upload replaces the first; a refused one keeps it.
    let (s, v) = put(&admin, "msg/welcome", "w2.wav", wav(8000, 2000, 9000.0)).await;
    assert_eq!((s, v["duration_ms"].as_u64()), (StatusCode::OK, Some(2000)));
    let (s, _) = put(&admin, "msg/welcome", "bad.wav", b"junk".to_vec()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let lib = Library::load(&config.ivr, std::path::Path::new("."), &custom)?;
    assert_eq!(lib.clips["msg/welcome"].len(), 16_000);

    // Revert: the built-in recording again, audited; a second revert has nothing to do.
    let (s, _, _) = boss
        .raw(Method::DELETE, "/api/v1/prompts/msg%2Fwelcome", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = admin
        .json(Method::DELETE, "/api/v1/prompts/msg%2Fwelcome", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["source"], "builtin");
    assert_eq!(v["duration_ms"], builtin_ms);
    assert!(files(&custom).is_empty());
    let (s, v) = admin
        .json(Method::DELETE, "/api/v1/prompts/msg%2Fwelcome", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let lib = Library::load(&config.ivr, std::path::Path::new("."), &custom)?;
    let samples = lib.clips["msg/welcome"].len() as u64;
    assert!(
        (builtin_ms * 8..builtin_ms * 8 + 8).contains(&samples),
        "the built-in welcome plays again ({samples} samples)"
    );
    let (_, audit) = admin.get("/api/v1/audit?limit=10").await;
    assert!(audit.to_string().contains("prompt.revert"));
    Ok(())
});
