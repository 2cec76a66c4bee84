//! The web console in a real browser (headless Chromium driven by playwright-core, script in
//! tests/browser/console.mjs) against the real binary: each role logs in and sees only its
//! pages; an agent goes ready at seat 8001, a trunk call goes through the IVR to the ACD and
//! the desk's screen-pop shows the caller (masked), the IVR path and the caller's bidder
//! record within 2 s of the seat ringing; after the call a QA reviewer plays the recording
//! (the audio element can play and seeks), annotates and saves a review; a bidder file's dry
//! run shows its errors and cannot be committed. Screenshots of the main pages are saved in
//! `<target>/tmp/console-screenshots/`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hotline_tests::caller::Caller;
use hotline_tests::{
    Sipp, TIMEOUT, client, field, free_udp_port, import_one_bidder, init_printed, ivr_config,
    login, serve,
};
use serde_json::{Value, json};
use sqlx::Connection;

const DID: &str = "02296077";
const CODE: &str = "2511000000042";
const MOBILE: &str = "13812340042";
const PASSWORD: &str = "Console-test-2026";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// The console's page table as the server declares it: what each role may open.
fn page_table() -> Value {
    Value::Array(
        hotline::web::PAGES
            .iter()
            .map(|p| json!({ "path": p.path, "roles": p.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>() }))
            .collect(),
    )
}

struct Browser {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Browser {
    fn start(url: &str, users: &Value, shots: &Path) -> Result<Self> {
        let script = browser_dir().join("console.mjs");
        anyhow::ensure!(
            browser_dir().join("node_modules/playwright-core").exists(),
            "playwright-core is missing: run `npm ci --prefix tests/browser` (scripts/test.sh does)"
        );
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        anyhow::ensure!(
            Path::new(&chromium).exists(),
            "{chromium} is missing: install Debian's chromium (scripts/test.sh does)"
        );
        let mut child = Command::new("node")
            .arg(script)
            .env("HOTLINE_URL", url)
            .env("HOTLINE_USERS", users.to_string())
            .env("HOTLINE_PAGES", page_table().to_string())
            .env("SCREENSHOT_DIR", shots)
            .env("CHROMIUM", chromium)
            .env("SEAT", "8001")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting node (the browser driver)")?;
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines: rx })
    }

    /// Waits (bounded) for a line starting with `prefix` from the browser script.
    fn expect(&mut self, prefix: &str, within: Duration) -> Result<String> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return Ok(l),
                Ok(l) => eprintln!("browser: {l}"),
                Err(_) => {
                    let status = self.child.try_wait()?;
                    bail!("the browser script never said {prefix} (exit: {status:?})")
                }
            }
        }
    }

    fn say(&mut self, line: &str) -> Result<()> {
        let stdin = self.child.stdin.as_mut().context("stdin")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn console_in_a_real_browser() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (data, stdout) = init_printed(dir.path())?;
    let admin_pw = field(&stdout, "password:").context("admin password")?;
    let seat_pw = field(&stdout, "seat 8001:").context("seat password")?;

    // The caller's bidder record (the screen-pop finds it by the calling number).
    import_one_bidder(dir.path(), &data, CODE, MOBILE)?;

    let config = ivr_config(dir.path(), DID, (34000, 34999), "")?;
    let server = serve(&config, &data)?;
    let sip: std::net::SocketAddr = server.sip.parse()?;

    // One user per role, made by the administrator through the API.
    let c = client();
    let csrf = login(&c, &server, "admin", &admin_pw).await?;
    let mut users = json!({ "admin": { "username": "admin", "password": admin_pw } });
    for (role, name) in [
        ("agent", "坐席一"),
        ("supervisor", "主管"),
        ("qa_reviewer", "质检员"),
        ("complaint_officer", "投诉专员"),
        ("business", "业务员"),
    ] {
        let username = format!("{role}1");
        let r = c
            .post(server.url("/api/v1/users"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"username": username, "display_name": name, "role": role, "password": PASSWORD}))
            .send()
            .await?;
        assert!(r.status().is_success(), "user {role}: {}", r.text().await?);
        users[role] = json!({ "username": username, "password": PASSWORD });
    }

    // The agent's seat registers before the agent goes ready in the browser.
    let seat_port = free_udp_port().to_string();
    Sipp::spawn(
        &server.sip,
        "register.xml",
        &[
            "-m", "1", "-p", &seat_port, "-s", "8001", "-au", "8001", "-ap", &seat_pw,
        ],
    )?
    .success()
    .await?;

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots)?;
    let mut browser = Browser::start(&format!("http://{}", server.http), &users, &shots)?;
    browser.expect("AGENT_READY", Duration::from_secs(120))?;

    // A caller whose number has a bidder record: the IVR, then 0 for an agent.
    let seat = Sipp::echo_seat(
        &server.sip,
        "seat_uas_hangup.xml",
        &seat_port,
        "PCMA",
        &["-d", "6000"],
    )?;
    let mut caller = Caller::call(sip, DID, MOBILE, true).await?;
    let mut rang = false;
    for _ in 0..60 {
        caller.key('0').await?;
        caller.hear_for(Duration::from_millis(500)).await?;
        let acd: Value = c
            .get(server.url("/api/v1/acd"))
            .send()
            .await?
            .json()
            .await?;
        let state = &acd["agents"][0]["state"]["state"];
        if state == "ringing" || state == "busy" {
            rang = true;
            break;
        }
    }
    assert!(rang, "the agent's seat never rang");
    let pop = browser.expect("POP_OK", TIMEOUT)?;
    eprintln!("screen-pop: {pop} ms after ringing");
    browser.expect("HOLD_OK", TIMEOUT)?;

    // The seat hangs up after 6 s (time for the agent to hold and take back the call); the caller rates the call; the recording is finished.
    seat.success().await?;
    caller.hear(25).await?;
    caller.key('1').await?;
    caller.wait_bye().await?;
    let url = format!("sqlite://{}", data.join("hotline.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await?;
    let (call_id,): (String,) = sqlx::query_as("SELECT id FROM sip_calls")
        .fetch_one(&mut db)
        .await?;
    let (state, ..) = hotline_tests::finished_recording(&server, &mut db, &call_id).await?;
    assert_eq!(state, "finished");
    browser.say("RECORDING_READY")?;
    browser.expect("DONE", Duration::from_secs(300))?;
    let status = browser.child.wait()?;
    assert!(status.success(), "the browser script failed: {status}");

    // The QA reviewer's listen and review reached the server.
    let (reviews,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM recording_reviews")
        .fetch_one(&mut db)
        .await?;
    assert_eq!(reviews, 1, "the review was stored");
    let (listens,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = 'recording.listen'")
            .fetch_one(&mut db)
            .await?;
    assert!(listens >= 1, "listening was audited");
    let (holds,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_log WHERE action IN ('call.hold', 'call.retrieve')",
    )
    .fetch_one(&mut db)
    .await?;
    assert_eq!(holds, 2, "the desk's hold and take-back acted on the call");
    Ok(())
}
