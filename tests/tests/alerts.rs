//! System health alerts end to end with the real binary: a trunk peer at an address where
//! nothing answers OPTIONS, and a caller (from the 12345 peer, straight into the queue)
//! waiting while no agent is logged in. A fake webhook receiver and a fake SMS gateway (axum
//! servers in this test) count what arrives: exactly one webhook POST and one SMS per raised
//! alert however many samples saw the condition; the clearing is sent once too. The API
//! lists the alerts and acknowledges one (audited, refused twice); an administrator who
//! opened the wallboard before the trunk alert existed sees it appear on the banner and
//! acknowledges it there (tests/browser/alerts.mjs).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail, ensure};
use axum::extract::State;
use axum::routing::post;
use hotline_tests::caller::Caller;
use hotline_tests::{TIMEOUT, all_day_flow, client, init_printed, login, serve};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const DID: &str = "02296099";
const TECHNICIAN: &str = "13800000077";

#[derive(Debug, Default)]
struct Seen {
    webhooks: Mutex<Vec<Value>>,
    /// (client message id, mobile, content)
    sms: Mutex<Vec<(String, String, String)>>,
}

struct Fakes {
    seen: Arc<Seen>,
    hooks: mpsc::UnboundedReceiver<Value>,
    texts: mpsc::UnboundedReceiver<String>,
    url: String,
}

async fn start_fakes() -> Result<Fakes> {
    type Ctx = (
        Arc<Seen>,
        mpsc::UnboundedSender<Value>,
        mpsc::UnboundedSender<String>,
    );
    async fn hook(State((seen, hooks, _)): State<Ctx>, body: axum::Json<Value>) -> &'static str {
        seen.webhooks.lock().unwrap().push(body.0.clone());
        let _ = hooks.send(body.0);
        "ok"
    }
    async fn send(
        State((seen, _, texts)): State<Ctx>,
        body: axum::Json<Value>,
    ) -> axum::Json<Value> {
        let key = body["client_msg_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mobile = body["mobile"].as_str().unwrap_or_default().to_string();
        let content = body["content"].as_str().unwrap_or_default().to_string();
        seen.sms
            .lock()
            .unwrap()
            .push((key.clone(), mobile, content));
        let _ = texts.send(key.clone());
        axum::Json(json!({ "msg_id": format!("gw-{key}") }))
    }
    let seen = Arc::new(Seen::default());
    let (hooks_tx, hooks) = mpsc::unbounded_channel();
    let (texts_tx, texts) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .route("/send", post(send))
        .with_state((seen.clone(), hooks_tx, texts_tx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Fakes {
        seen,
        hooks,
        texts,
        url,
    })
}

/// The next webhook body with `event` for `rule` (others are kept in `seen`).
async fn next_hook(f: &mut Fakes, rule: &str, event: &str) -> Result<Value> {
    tokio::time::timeout(TIMEOUT, async {
        while let Some(v) = f.hooks.recv().await {
            if v["rule"] == rule && v["event"] == event {
                return Ok(v);
            }
        }
        bail!("the webhook receiver stopped")
    })
    .await
    .with_context(|| format!("no webhook {event} for {rule}"))?
}

/// Waits until the fake gateway got an SMS whose key starts with `prefix`.
async fn next_sms(f: &mut Fakes, prefix: &str) -> Result<()> {
    if f.seen
        .sms
        .lock()
        .unwrap()
        .iter()
        .any(|(k, _, _)| k.starts_with(prefix))
    {
        return Ok(());
    }
    tokio::time::timeout(TIMEOUT, async {
        while let Some(k) = f.texts.recv().await {
            if k.starts_with(prefix) {
                return Ok(());
            }
        }
        bail!("the SMS gateway stopped")
    })
    .await
    .with_context(|| format!("no SMS {prefix}…"))?
}

fn browser(url: &str, password: &str) -> Result<std::process::Child> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    ensure!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci --prefix tests/browser` (scripts/test.sh does)"
    );
    Command::new("node")
        .arg(dir.join("alerts.mjs"))
        .env("HOTLINE_URL", url)
        .env("USERNAME", "admin")
        .env("PASSWORD", password)
        .env("RULE", "trunk_down")
        .env(
            "CHROMIUM",
            std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting node (the browser driver)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_trunk_peer_and_callers_without_agents_reach_the_technician_once() -> Result<()> {
    let mut fakes = start_fakes().await?;
    let dir = tempfile::tempdir()?;
    let (data, stdout) = init_printed(dir.path())?;
    let password = hotline_tests::field(&stdout, "password:").context("admin password")?;
    // The peer "carrier" is kept alive with OPTIONS at this socket, which never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let silent_port = silent.local_addr()?.port();
    let flow = all_day_flow(dir.path())?;
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nroutes = [{{ did = \"{DID}\", target = \"ivr\" }}]\n\
             qualify_interval_secs = 30\n\
             [sip.trunk]\npeers = [{{ name = \"carrier\", address = \"127.0.0.1\", port = {silent_port} }},\n\
             {{ name = \"12345\", address = \"127.0.0.1/32\" }}]\n\
             [sip.rtp]\nport_min = 36000\nport_max = 36099\n\
             [ivr]\nflow = {flow:?}\n\
             [integrations.sms]\nprovider = \"http\"\nquiet_start = \"00:00\"\nquiet_end = \"00:00\"\n\
             [integrations.sms.http]\nurl = \"{url}/send\"\n\
             [alerts]\ninterval_secs = 1\nfor_secs = 1\nwaiting_secs = 1\nrepeat_minutes = 0\n\
             disk_min_free_percent = 0\ndisk_min_free_mb = 0\n\
             technician_mobiles = [\"{TECHNICIAN}\"]\nwebhook_url = \"{url}/hook\"\n",
            url = fakes.url,
        ),
    )?;
    let server = serve(&config, &data)?;
    let web = format!("http://{}", server.http);
    let shown = browser(&web, &password)?;

    // A 12345 transfer skips the menu and waits in the queue; nobody is logged in.
    let mut caller = Caller::call(server.sip.parse()?, DID, "13900000042", true).await?;
    server.wait_log("alert raised rule=callers_waiting")?;
    let raised = next_hook(&mut fakes, "callers_waiting", "raised").await?;
    assert_eq!(raised["subject"], "hotline");
    assert_eq!(raised["title"], "来电排队无空闲坐席");
    let waiting_id = raised["id"].as_str().context("alert id")?.to_string();
    next_sms(&mut fakes, &format!("{waiting_id}-r-")).await?;

    // Listed by the API and acknowledged once (audited).
    let c = client();
    let csrf = login(&c, &server, "admin", &password).await?;
    let list: Value = c
        .get(server.url("/api/v1/alerts"))
        .send()
        .await?
        .json()
        .await?;
    let active = list["active"].as_array().context("active")?;
    ensure!(
        active
            .iter()
            .any(|a| a["id"] == waiting_id.as_str() && a["rule"] == "callers_waiting"),
        "{list}"
    );
    let ack = |id: String| {
        let (c, csrf, url) = (
            c.clone(),
            csrf.clone(),
            server.url(&format!("/api/v1/alerts/{id}/ack")),
        );
        async move {
            c.post(url)
                .header("x-csrf-token", csrf)
                .json(&json!({}))
                .send()
                .await
        }
    };
    let r = ack(waiting_id.clone()).await?;
    assert_eq!(r.status(), 200);
    let row: Value = r.json().await?;
    assert_eq!(row["acked_by"], "admin");
    let r = ack(waiting_id.clone()).await?;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["message"], "告警已由 admin 确认");
    assert_eq!(ack("al-nothing".into()).await?.status(), 404);
    let bad = c.get(server.url("/api/v1/alerts?recent=0")).send().await?;
    assert_eq!(bad.status(), 400);
    let audit: Value = c
        .get(server.url("/api/v1/audit?limit=20"))
        .send()
        .await?
        .json()
        .await?;
    ensure!(audit.to_string().contains("alert.ack"), "{audit}");

    // The caller hangs up: the alert clears, once.
    caller.bye().await?;
    server.wait_log("alert cleared rule=callers_waiting")?;
    let cleared = next_hook(&mut fakes, "callers_waiting", "cleared").await?;
    assert_eq!(cleared["id"], waiting_id.as_str());
    next_sms(&mut fakes, &format!("{waiting_id}-c-")).await?;

    // The keepalive of the silent peer times out (Timer F, 32 s): the trunk alert.
    server.wait_log("alert raised rule=trunk_down")?;
    let trunk = next_hook(&mut fakes, "trunk_down", "raised").await?;
    assert_eq!(trunk["subject"], "carrier");
    assert_eq!(trunk["severity"], "critical");
    let trunk_id = trunk["id"].as_str().context("alert id")?.to_string();
    next_sms(&mut fakes, &format!("{trunk_id}-r-")).await?;

    // The wallboard opened before it showed it live; 确认 there acknowledged it.
    let out = tokio::task::spawn_blocking(move || shown.wait_with_output()).await??;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("DONE"), "{said}");
    assert!(
        said.contains("BANNER 【严重】中继中断：中继 carrier"),
        "{said}"
    );
    let list: Value = c
        .get(server.url("/api/v1/alerts"))
        .send()
        .await?
        .json()
        .await?;
    let t = list["active"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == trunk_id.as_str()))
        .with_context(|| format!("trunk alert not active: {list}"))?;
    assert_eq!(t["acked_by"], "admin");
    assert_eq!(t["sms_queued"], 1);
    let w = list["recent"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == waiting_id.as_str()))
        .with_context(|| format!("waiting alert not in the history: {list}"))?;
    assert_eq!(
        (w["active"].as_bool(), w["sms_queued"].as_i64()),
        (Some(false), Some(2))
    );

    // Exactly one of each notice, although every second sampled the same conditions.
    let hooks = fakes.seen.webhooks.lock().unwrap().clone();
    let count = |id: &str, event: &str| {
        hooks
            .iter()
            .filter(|h| h["id"] == id && h["event"] == event)
            .count()
    };
    assert_eq!(count(&waiting_id, "raised"), 1, "{hooks:?}");
    assert_eq!(count(&waiting_id, "cleared"), 1, "{hooks:?}");
    assert_eq!(count(&trunk_id, "raised"), 1, "{hooks:?}");
    assert_eq!(hooks.len(), 3, "nothing else was raised: {hooks:?}");
    let sms = fakes.seen.sms.lock().unwrap().clone();
    let keys: Vec<&str> = sms.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(sms.len(), 3, "{keys:?}");
    assert!(sms.iter().all(|(_, m, _)| m == TECHNICIAN));
    let trunk_text = &sms
        .iter()
        .find(|(k, _, _)| k.starts_with(&trunk_id))
        .context("trunk SMS")?
        .2;
    assert!(
        trunk_text.starts_with("【天津小客车指标】【告警】中继中断：中继 carrier 不响应"),
        "{trunk_text}"
    );
    drop(silent);
    Ok(())
}
