//! The administrators' queue settings and service-day calendar on the real binary:
//! - a special closed day for today, added over HTTP, is merged into the running flow at
//!   once (`GET /api/v1/ivr/flow` reports it) and a trunk call hears the closed branch: its
//!   key 1 leaves an after-hours callback request, which only that branch offers;
//! - a queue's new strategy is applied to the running ACD and applied again after a
//!   restart, from the database;
//! - in headless Chromium (tests/browser/admin.mjs) an administrator changes a queue's
//!   strategy and adds a holiday on the admin page and sees both listed.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use hotline_tests::caller::Caller;
use hotline_tests::{client, field, init_printed, ivr_config, login, serve};
use serde_json::{Value, json};
use sqlx::Connection;

const DID: &str = "02296077";

/// Today's date in Asia/Shanghai (the flow's offset), YYYY-MM-DD: days-from-civil inverted
/// (Howard Hinnant's public-domain algorithm).
fn shanghai_today() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let z = (ms + 8 * 3_600_000).div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The welcome prompt's length in 20 ms packets (it cannot be interrupted).
fn welcome_packets() -> Result<usize> {
    let wav = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ivr/prompts/zh-CN/msg/welcome.wav"),
    )?;
    let data = wav
        .windows(4)
        .position(|w| w == b"data")
        .context("data chunk")?;
    let bytes = u32::from_le_bytes(wav[data + 4..data + 8].try_into()?) as usize;
    Ok((bytes / 2).div_ceil(160))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_day_for_today_sends_callers_to_the_closed_branch() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (data, stdout) = init_printed(dir.path())?;
    let admin_pw = field(&stdout, "password:").context("admin password")?;
    // The all-day flow: without the special day every call would be in hours.
    let config = ivr_config(dir.path(), DID, (36500, 36999), "")?;
    let mut server = serve(&config, &data)?;
    let c = client();
    let csrf = login(&c, &server, "admin", &admin_pw).await?;

    let today = shanghai_today();
    let r = c
        .post(server.url("/api/v1/service-days"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"date": today, "closed": true, "note": "系统维护"}))
        .send()
        .await?;
    assert_eq!(r.status(), 200, "{}", r.text().await?);
    let body: Value = r.json().await?;
    assert_eq!(body["applied"], true, "{body}");
    server.wait_log("IVR flow and prompts reloaded")?;
    let flow: Value = c
        .get(server.url("/api/v1/ivr/flow"))
        .send()
        .await?
        .json()
        .await?;
    let special = flow["check"]["hours"]["special"]
        .as_array()
        .context("special days")?;
    assert!(
        special
            .iter()
            .any(|d| d["date"] == today.as_str() && d["closed"] == true && d["note"] == "系统维护"),
        "the flow reports the merged day: {flow}"
    );

    // A call now hears the closed message; its key 1 leaves an after-hours callback.
    let sip: std::net::SocketAddr = server.sip.parse()?;
    let mut caller = Caller::call(sip, DID, "13900000077", true).await?;
    caller.hear(welcome_packets()? + 10).await?;
    caller.key('1').await?;
    caller.wait_bye().await?;
    let url = format!("sqlite://{}", data.join("hotline.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await?;
    // Stored when the key came, seconds before the confirmation and goodbye ended.
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT source, phone FROM crm_callbacks")
        .fetch_all(&mut db)
        .await?;
    assert_eq!(
        rows,
        [("after_hours".to_string(), "13900000077".to_string())],
        "the closed branch took the call"
    );

    // A queue's strategy: applied to the running ACD, and again after a restart.
    let r = c
        .put(server.url("/api/v1/acd/queues/hotline/settings"))
        .header("x-csrf-token", &csrf)
        .json(&json!({
            "version": 0, "strategy": "round_robin", "announce_every_ms": 40_000,
            "max_wait_ms": 300_000, "callback_key": "1", "moh": "moh/default",
        }))
        .send()
        .await?;
    assert_eq!(r.status(), 200, "{}", r.text().await?);
    assert_eq!(r.json::<Value>().await?["applied"], true);
    server.wait_log("queue settings replaced")?;
    // A prompt that does not exist is refused by the running contact centre: nothing stored.
    let r = c
        .put(server.url("/api/v1/acd/queues/hotline/settings"))
        .header("x-csrf-token", &csrf)
        .json(&json!({
            "version": 1, "strategy": "longest_idle", "announce_every_ms": 40_000,
            "max_wait_ms": 300_000, "callback_key": "1", "moh": "moh/nosuch",
        }))
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    assert!(r.text().await?.contains("moh/nosuch"));
    server.terminate()?;
    drop(db);

    let server = serve(&config, &data)?;
    let c = client();
    login(&c, &server, "admin", &admin_pw).await?;
    let q: Value = c
        .get(server.url("/api/v1/acd/queues/hotline/settings"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(q["settings"]["strategy"], "round_robin", "{q}");
    assert_eq!(q["settings"]["announce_every_ms"], 40_000, "{q}");
    assert_eq!(q["version"], 1, "the refused edit stored nothing: {q}");
    assert!(
        q["live"].is_object(),
        "live figures of the running queue: {q}"
    );
    let flow: Value = c
        .get(server.url("/api/v1/ivr/flow"))
        .send()
        .await?
        .json()
        .await?;
    assert!(
        flow["check"]["hours"]["special"]
            .as_array()
            .is_some_and(|s| s.iter().any(|d| d["date"] == today.as_str())),
        "merged again at start: {flow}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edits_a_queue_and_adds_a_holiday_in_a_real_browser() -> Result<()> {
    let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    anyhow::ensure!(
        browser.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci --prefix tests/browser` (scripts/test.sh does)"
    );
    let dir = tempfile::tempdir()?;
    let (data, stdout) = init_printed(dir.path())?;
    let admin_pw = field(&stdout, "password:").context("admin password")?;
    let config = ivr_config(dir.path(), DID, (37000, 37499), "")?;
    let server = serve(&config, &data)?;

    // The script bounds each of its steps (playwright timeouts) and exits on the first failure.
    let out = Command::new("node")
        .arg(browser.join("admin.mjs"))
        .env("HOTLINE_URL", format!("http://{}", server.http))
        .env("ADMIN_USER", "admin")
        .env("ADMIN_PASSWORD", &admin_pw)
        .env(
            "SCREENSHOT",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-settings.png"),
        )
        .env(
            "CHROMIUM",
            std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        )
        .output()
        .context("starting node (the browser driver)")?;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the admin page script failed: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = said
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .context("no JSON result from the browser script")?;
    assert_eq!(
        result["queue_row"],
        json!(["hotline", "轮流分配"]),
        "{result}"
    );
    assert_eq!(
        result["day_row"],
        json!(["2027-02-06", "全天停止服务", "春节"]),
        "{result}"
    );

    // What the page showed is what the server holds and runs.
    let c = client();
    login(&c, &server, "admin", &admin_pw).await?;
    let q: Value = c
        .get(server.url("/api/v1/acd/queues/hotline/settings"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(q["settings"]["strategy"], "round_robin", "{q}");
    let days: Value = c
        .get(server.url("/api/v1/service-days"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(days["items"][0]["date"], "2027-02-06", "{days}");
    assert_eq!(days["items"][0]["note"], "春节", "{days}");
    Ok(())
}
