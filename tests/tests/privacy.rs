//! Hardening, end to end (issue 12): personal data and secrets stay out of the server's log,
//! the imported file lands in the digest register, and `hotline audit verify` notices a
//! tampered audit row.
//!
//! The journey: import the bidder export over HTTP, list bidders, screen-pop and self-service
//! lookups by mobile and ID digits (right and wrong), a signed 12345 work order carrying a
//! mobile, and refused pushes, with our crates logging at `debug`. Then the whole log is
//! scanned for an unmasked 18-digit ID number or 11-digit mobile and for the configured
//! secrets.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use hotline_integrations::workorder::sign;
use hotline_tests::{Server, client, hotline, init, run, text};
use serde_json::{Value, json};
use sqlx::Connection;

const SECRET_12345: &str = "s3cret-12345-8d1f0a";

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../integrations/tests/fixtures")
        .join(name)
}

/// Runs of digits in `log` that look like a mainland ID number (17 digits + digit/X) or a
/// mobile number (11 digits starting 13–19): a masked value has `*` in it and is not a run.
fn unmasked_personal_numbers(log: &str) -> Vec<String> {
    let b = log.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let mut run = &log[start..i];
        if run.len() == 17 && i < b.len() && (b[i] == b'X' || b[i] == b'x') {
            run = &log[start..=i];
        }
        let id = run.len() == 18;
        let mobile =
            run.len() == 11 && run.starts_with('1') && (b'3'..=b'9').contains(&b[start + 1]);
        if id || mobile {
            found.push(run.to_string());
        }
    }
    found
}

#[test]
fn the_scanner_finds_what_it_should() {
    let log = "a 120101199001011239 b 13812345678 c 1381234**** d 12010119900101123X \
               e 1764000000000 f 02212345 g 138123456789";
    assert_eq!(
        unmasked_personal_numbers(log),
        ["120101199001011239", "13812345678", "12010119900101123X"]
    );
}

fn serve(data: &Path) -> Result<Server> {
    let mut cmd = hotline(&[
        "serve",
        "--data-dir",
        data.to_str().context("utf-8 path")?,
        "--http",
        "127.0.0.1:0",
        "--sip",
        "127.0.0.1:0",
    ]);
    cmd.env("HOTLINE_INTEGRATIONS__PLATFORM_12345__SECRET", SECRET_12345)
        .env(
            "HOTLINE_LOG__FILTER",
            "info,hotline=debug,hotline_integrations=debug,hotline_crm=debug,\
             hotline_sip_gateway=debug,hotline_ivr=debug",
        );
    Server::start(cmd)
}

#[tokio::test]
async fn logs_hold_no_personal_numbers_or_secrets_and_tampering_is_found() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let password = init(&data, &[])?;
    let mut server = serve(&data)?;
    let c = client();
    let resp = c
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": password }))
        .send()
        .await?;
    ensure!(resp.status() == 200, "login {}", resp.status());
    let csrf = resp.json::<Value>().await?["csrf_token"]
        .as_str()
        .context("csrf token")?
        .to_string();

    // The import, over HTTP.
    let file = std::fs::read(fixture("bidders_utf8.csv"))?;
    let resp = c
        .post(
            server.url(
                "/api/v1/integrations/bidders/import?period=2025-11&file_name=bidders_utf8.csv",
            ),
        )
        .header("x-csrf-token", &csrf)
        .header("content-type", "text/csv")
        .body(file.clone())
        .send()
        .await?;
    ensure!(resp.status() == 200, "import {}", resp.text().await?);

    // Lookups that carry personal numbers in the request.
    let list = c
        .get(server.url("/api/v1/integrations/periods/2025-11/bidders"))
        .send()
        .await?;
    ensure!(list.status() == 200);
    for caller in ["13812345678", "13600003333", "02212345678"] {
        let r = c
            .get(server.url(&format!("/api/v1/integrations/screen-pop?caller={caller}")))
            .send()
            .await?;
        ensure!(r.status() == 200, "screen-pop {}", r.status());
    }
    for (code, last4) in [
        ("2511000000001", "1239"),
        ("2511000000001", "0000"),
        ("2511000000004", "5675"),
        ("120101199001011239", "1239"),
    ] {
        let _ = c
            .post(server.url("/api/v1/integrations/lookup"))
            .header("x-csrf-token", &csrf)
            .json(&json!({ "caller": "13812345678", "application_code": code, "last4": last4 }))
            .send()
            .await?;
    }

    // A signed 12345 work order with the citizen's mobile, and refused pushes.
    let body = json!({
        "order_no": "GD2025110001",
        "title": "咨询保证金退款",
        "content": "市民 13912345678 反映身份证 120101199001011239 的保证金未退",
        "caller_name": "王五",
        "caller_phone": "13912345678",
        "deadline": "2099-12-31 18:00:00",
    })
    .to_string();
    let ts = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?)
        .as_secs()
        .to_string();
    let push = |nonce: &str, sig: String| {
        c.post(server.url("/api/v1/integrations/12345/orders"))
            .header("content-type", "application/json")
            .header("x-12345-timestamp", &ts)
            .header("x-12345-nonce", nonce.to_string())
            .header("x-12345-signature", sig)
            .body(body.clone())
            .send()
    };
    let ok = push(
        "nonce-privacy-0001",
        sign(
            SECRET_12345.as_bytes(),
            &ts,
            "nonce-privacy-0001",
            body.as_bytes(),
        ),
    )
    .await?;
    ensure!(ok.status() == 200, "push {}", ok.text().await?);
    let bad = push("nonce-privacy-0002", "00".repeat(32)).await?;
    ensure!(bad.status() == 400);

    // The register has the imported file with its digest (and the pushed order).
    let files: Value = c
        .get(server.url("/api/v1/data-files"))
        .send()
        .await?
        .json()
        .await?;
    let digest = hotline::db::data_files::sha256_hex(&file);
    let listed = files.as_array().context("array")?;
    ensure!(
        listed
            .iter()
            .any(|f| f["sha256"] == digest.as_str() && f["kind"] == "bidders"),
        "{files}"
    );
    ensure!(
        listed.iter().any(|f| f["kind"] == "workorder_12345_in"),
        "{files}"
    );

    ensure!(server.terminate()?.success());
    let log = server
        .stderr
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    ensure!(
        log.contains("12345"),
        "the journey was logged at all:\n{log}"
    );
    let leaks = unmasked_personal_numbers(&log);
    ensure!(
        leaks.is_empty(),
        "unmasked numbers {leaks:?} in the log:\n{log}"
    );
    ensure!(
        !log.contains(SECRET_12345),
        "the 12345 secret is in the log"
    );

    // The chain is whole; then a row is changed behind the application's back.
    let data_arg = data.to_str().context("utf-8 path")?;
    let out = run(hotline(&["audit", "verify", "--data-dir", data_arg]), None)?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    ensure!(text(&out.stdout).starts_with("OK"), "{}", text(&out.stdout));
    let out = run(hotline(&["audit", "files", "--data-dir", data_arg]), None)?;
    ensure!(text(&out.stdout).contains(&digest), "{}", text(&out.stdout));

    let url = format!("sqlite://{}", data.join("hotline.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    let (id,): (String,) =
        sqlx::query_as("SELECT id FROM audit_log WHERE action = 'auth.login' ORDER BY seq LIMIT 1")
            .fetch_one(&mut conn)
            .await?;
    sqlx::query("UPDATE audit_log SET remote_addr = '10.9.9.9' WHERE id = ?")
        .bind(&id)
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let out = run(hotline(&["audit", "verify", "--data-dir", data_arg]), None)?;
    ensure!(!out.status.success(), "tampering not reported");
    let err = text(&out.stderr);
    ensure!(err.contains(&id) && err.contains("BROKEN"), "{err}");
    Ok(())
}
