//! The console's upload forms in a real browser (headless Chromium driven by playwright-core,
//! script in tests/browser/uploads.mjs) against the real binary, and what a caller hears
//! afterwards:
//! - the administrator uploads a bad file for the welcome prompt (refused with its reason),
//!   then a 1 kHz test recording (16 kHz WAV); the prompt list shows it as uploaded and the
//!   page's `<audio>` can play it;
//! - a trunk call then hears that recording as its welcome (the IVR library was reloaded by
//!   the upload; no restart, no SIGHUP);
//! - a business user uploads an SMS list with a bad row (its line is shown, no batch), then a
//!   good list: the preview counts and the sample message, then the batch is confirmed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use hotline_tests::caller::Caller;
use hotline_tests::{TIMEOUT, client, field, init_printed, ivr_config, login, serve};
use serde_json::{Value, json};

const DID: &str = "02296077";
const PASSWORD: &str = "Uploads-test-2026";
const TEMPLATE: &str = "缴款提醒";
/// The uploaded welcome: 2 s of 1 kHz.
const PROMPT_MS: u32 = 2000;

/// Power at `freq` relative to the whole signal's (1.0 = a pure tone), 8 kHz.
fn tone_share(x: &[i16], freq: f64) -> f64 {
    let c = 2.0 * (2.0 * std::f64::consts::PI * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let p = (s1 * s1 + s2 * s2 - c * s1 * s2) * 2.0 / x.len() as f64;
    let e: f64 = x.iter().map(|&v| f64::from(v).powi(2)).sum();
    p / e
}

/// A studio-style recording: 16 kHz mono WAV of a 1 kHz tone.
fn test_recording(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("欢迎词-录音棚.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec)?;
    for i in 0..16 * PROMPT_MS {
        let t = f64::from(i) / 16_000.0;
        w.write_sample((10_000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16)?;
    }
    w.finalize()?;
    Ok(path)
}

async fn post(c: &reqwest::Client, url: String, csrf: &str, body: Value) -> Result<Value> {
    let r = c
        .post(url)
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await?;
    anyhow::ensure!(status.is_success(), "{status}: {v}");
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_and_sms_list_uploads_in_a_real_browser() -> Result<()> {
    let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    anyhow::ensure!(
        browser.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci --prefix tests/browser` (scripts/test.sh does)"
    );
    let dir = tempfile::tempdir()?;
    let (data, stdout) = init_printed(dir.path())?;
    let admin_pw = field(&stdout, "password:").context("admin password")?;
    let config = ivr_config(dir.path(), DID, (40000, 40999), "")?;
    let server = serve(&config, &data)?;

    // A business user writes an SMS template; the administrator approves it (four eyes).
    let admin = client();
    let csrf = login(&admin, &server, "admin", &admin_pw).await?;
    post(
        &admin,
        server.url("/api/v1/users"),
        &csrf,
        json!({"username": "business1", "display_name": "业务员", "role": "business", "password": PASSWORD}),
    )
    .await?;
    let biz = client();
    let biz_csrf = login(&biz, &server, "business1", PASSWORD).await?;
    let t = post(
        &biz,
        server.url("/api/v1/sms/templates"),
        &biz_csrf,
        json!({"kind": "payment_reminder", "name": TEMPLATE, "body": "{name}您好，请于{deadline}前缴纳成交价款。"}),
    )
    .await?;
    let id = t["id"].as_str().context("template id")?;
    post(
        &admin,
        server.url(&format!("/api/v1/sms/templates/{id}/approve")),
        &csrf,
        json!({"version": t["version"]}),
    )
    .await?;

    let recording = test_recording(dir.path())?;
    let users = json!({
        "admin": { "username": "admin", "password": admin_pw },
        "business": { "username": "business1", "password": PASSWORD },
    });
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots)?;
    let run = tokio::process::Command::new("node")
        .arg(browser.join("uploads.mjs"))
        .env("HOTLINE_URL", format!("http://{}", server.http))
        .env("HOTLINE_USERS", users.to_string())
        .env("PROMPT_WAV", &recording)
        .env("PROMPT_MS", PROMPT_MS.to_string())
        .env("TEMPLATE", TEMPLATE)
        .env("SCREENSHOT_DIR", &shots)
        .env(
            "CHROMIUM",
            std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        )
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .context("the browser script did not finish")??;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("DONE"),
        "the browser script failed: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The upload is stored, listed and audited; the SMS batch from the list is confirmed.
    let prompts: Value = admin
        .get(server.url("/api/v1/prompts"))
        .send()
        .await?
        .json()
        .await?;
    let welcome = prompts["items"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "msg/welcome"))
        .context("msg/welcome listed")?;
    assert_eq!(welcome["source"], "uploaded", "{welcome}");
    assert!(data.join("prompts/custom/msg/welcome.wav").exists());
    let audit: Value = admin
        .get(server.url("/api/v1/audit?limit=50"))
        .send()
        .await?
        .json()
        .await?;
    assert!(audit.to_string().contains("prompt.upload"), "{audit}");
    let batches: Value = biz
        .get(server.url("/api/v1/sms/batches"))
        .send()
        .await?
        .json()
        .await?;
    let batch = batches
        .as_array()
        .and_then(|a| a.iter().find(|b| b["audience"]["kind"] == "upload"))
        .context("the uploaded list's batch")?;
    assert_eq!(batch["status"], "confirmed", "{batch}");
    assert_eq!(batch["counts"]["recipients"], 2, "{batch}");

    // A new call hears the uploaded recording as its welcome: the 1 kHz tone, not speech.
    let sip: std::net::SocketAddr = server.sip.parse()?;
    let mut caller = Caller::call(sip, DID, "13900000042", true).await?;
    let heard = tokio::time::timeout(TIMEOUT, caller.hear(PROMPT_MS as usize / 20)).await??;
    let s = &heard.samples;
    anyhow::ensure!(s.len() > 12_000, "heard {} samples", s.len());
    // Skip the edges, where the resampler ramps and the next prompt may begin.
    let share = tone_share(&s[2_000..12_000], 1000.0);
    assert!(
        share > 0.9,
        "the caller hears the uploaded welcome (1 kHz holds {share:.2} of the power)"
    );
    caller.bye().await?;
    Ok(())
}
