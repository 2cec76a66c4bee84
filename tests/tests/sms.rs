//! SMS end to end with the real binary and a fake gateway (an axum server in this test that
//! counts requests per idempotency key, fails some, stalls on demand and posts receipts):
//! a 10,000-message batch from an uploaded list is cut by `kill -9` while requests are in
//! flight; after the restart every message reached the gateway exactly once — counted by
//! key and by total accepted requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, ensure};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use hotline_tests::{Server, TIMEOUT, client, hotline, init};
use serde_json::{Value, json};
use sqlx::Connection;

const MESSAGES: usize = 10_000;
const STALL_AFTER: u64 = 3_000;
const CONCURRENCY: u64 = 16;
const TOKEN: &str = "receipt-token-for-tests";

/// What the fake gateway has seen.
#[derive(Debug)]
struct Gateway {
    /// Accepted requests per client message id.
    by_key: Mutex<HashMap<String, u32>>,
    /// Accepted requests in total (a resend of a key counts again).
    accepted: AtomicU64,
    /// Requests answered 503 (every 97th), not recorded.
    refused: AtomicU64,
    requests: AtomicU64,
    /// Requests held without an answer (recorded, like a gateway that took the message
    /// and then lost the connection).
    stalled: AtomicU64,
    stall: AtomicBool,
    release: tokio::sync::Notify,
    progress: tokio::sync::watch::Sender<(u64, u64)>,
    receipts: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Gateway {
    fn publish(&self) {
        let distinct = self.by_key.lock().unwrap().len() as u64;
        self.progress
            .send_replace((distinct, self.stalled.load(Ordering::SeqCst)));
    }
}

async fn send(State(g): State<Arc<Gateway>>, body: axum::Json<Value>) -> impl IntoResponse {
    let n = g.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let key = body["client_msg_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mobile = body["mobile"].as_str().unwrap_or_default();
    let content = body["content"].as_str().unwrap_or_default();
    if key.is_empty() || mobile.len() != 11 || !content.starts_with("【天津小客车指标】") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "bad request"})),
        );
    }
    if n % 97 == 0 {
        g.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({})));
    }
    *g.by_key.lock().unwrap().entry(key.clone()).or_default() += 1;
    g.accepted.fetch_add(1, Ordering::SeqCst);
    if g.stall.load(Ordering::SeqCst) && g.accepted.load(Ordering::SeqCst) > STALL_AFTER {
        g.stalled.fetch_add(1, Ordering::SeqCst);
        g.publish();
        g.release.notified().await;
    } else {
        g.publish();
        let _ = g.receipts.send(key.clone());
    }
    (
        StatusCode::OK,
        axum::Json(json!({ "msg_id": format!("gw-{key}") })),
    )
}

async fn status(State(g): State<Arc<Gateway>>, Path(key): Path<String>) -> impl IntoResponse {
    if g.by_key.lock().unwrap().contains_key(&key) {
        (
            StatusCode::OK,
            axum::Json(json!({ "msg_id": format!("gw-{key}") })),
        )
    } else {
        (StatusCode::NOT_FOUND, axum::Json(json!({})))
    }
}

/// Starts the fake gateway; receipts for accepted keys are posted (in batches, as gateways
/// do) to whatever URL `receipt_url` holds; posts while hotline is down are lost.
async fn start_gateway() -> Result<(Arc<Gateway>, String, Arc<Mutex<Option<String>>>)> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let g = Arc::new(Gateway {
        by_key: Mutex::default(),
        accepted: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        stalled: AtomicU64::new(0),
        stall: AtomicBool::new(true),
        release: tokio::sync::Notify::new(),
        progress: tokio::sync::watch::channel((0, 0)).0,
        receipts: tx,
    });
    let app = axum::Router::new()
        .route("/send", post(send))
        .route("/status/{key}", get(status))
        .with_state(g.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let receipt_url: Arc<Mutex<Option<String>>> = Arc::default();
    let url = receipt_url.clone();
    tokio::spawn(async move {
        let c = reqwest::Client::new();
        while let Some(first) = rx.recv().await {
            let mut keys = vec![first];
            while keys.len() < 200 {
                match rx.try_recv() {
                    Ok(k) => keys.push(k),
                    Err(_) => break,
                }
            }
            let Some(u) = url.lock().unwrap().clone() else {
                continue;
            };
            let body: Vec<Value> = keys
                .iter()
                .map(|k| json!({ "client_msg_id": k, "status": "DELIVRD" }))
                .collect();
            let _ = c
                .post(u)
                .header("x-sms-token", TOKEN)
                .json(&body)
                .send()
                .await;
        }
    });
    Ok((g, format!("http://{addr}"), receipt_url))
}

fn serve(config: &str, data: &str) -> Result<Server> {
    Server::start(hotline(&[
        "--config",
        config,
        "serve",
        "--data-dir",
        data,
        "--http",
        "127.0.0.1:0",
        "--sip",
        "127.0.0.1:0",
    ]))
}

/// A logged-in client and its CSRF token.
async fn login(server: &Server, user: &str, password: &str) -> Result<(reqwest::Client, String)> {
    let c = client();
    let resp = c
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": user, "password": password }))
        .send()
        .await?;
    ensure!(resp.status() == 200, "login: {}", resp.status());
    let body: Value = resp.json().await?;
    let csrf = body["csrf_token"]
        .as_str()
        .context("csrf token")?
        .to_string();
    Ok((c, csrf))
}

async fn call(
    c: &reqwest::Client,
    csrf: &str,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut rb = c.request(method, url).header("x-csrf-token", csrf);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

async fn wait_progress(
    g: &Gateway,
    what: &str,
    done: impl FnMut(&(u64, u64)) -> bool,
) -> Result<()> {
    let mut rx = g.progress.subscribe();
    tokio::time::timeout(TIMEOUT, rx.wait_for(done))
        .await
        .with_context(|| format!("gateway never saw {what}: {:?}", *g.progress.borrow()))??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_in_a_10000_message_batch_sends_each_message_exactly_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let password = init(&data, &[])?;
    let (gateway, gw_url, receipt_url) = start_gateway().await?;
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "[integrations.sms]\nprovider = \"http\"\nrate_per_sec = 2000\n\
             concurrency = {CONCURRENCY}\nmax_attempts = 10\nretry_base_secs = 1\n\
             retry_max_secs = 2\nquiet_start = \"00:00\"\nquiet_end = \"00:00\"\n\
             receipt_token = \"{TOKEN}\"\n\
             [integrations.sms.http]\nurl = \"{gw_url}/send\"\n\
             status_url = \"{gw_url}/status/{{key}}\"\n"
        ),
    )?;
    let cfg = config.to_str().unwrap();
    let mut server = serve(cfg, d)?;
    *receipt_url.lock().unwrap() = Some(server.url("/api/v1/sms/receipts"));

    // A business user writes the template, a supervisor approves it (four eyes).
    let (admin, admin_csrf) = login(&server, "admin", &password).await?;
    for (name, role) in [("biz", "business"), ("boss", "supervisor")] {
        let (s, _) = call(
            &admin,
            &admin_csrf,
            reqwest::Method::POST,
            server.url("/api/v1/users"),
            Some(json!({ "username": name, "role": role, "password": "Passw0rd-long-enough" })),
        )
        .await?;
        ensure!(s == 201 || s == 200, "create user {name}: {s}");
    }
    let (biz, biz_csrf) = login(&server, "biz", "Passw0rd-long-enough").await?;
    let (boss, boss_csrf) = login(&server, "boss", "Passw0rd-long-enough").await?;
    let (s, t) = call(
        &biz,
        &biz_csrf,
        reqwest::Method::POST,
        server.url("/api/v1/sms/templates"),
        Some(json!({
            "kind": "deposit_reminder",
            "name": "保证金缴纳提醒",
            "body": "{name}您好，您的竞价保证金尚未到账，请于{deadline}前缴纳。",
        })),
    )
    .await?;
    ensure!(s == 201, "template: {s} {t}");
    let tid = t["id"].as_str().unwrap().to_string();
    let (s, _) = call(
        &boss,
        &boss_csrf,
        reqwest::Method::POST,
        server.url(&format!("/api/v1/sms/templates/{tid}/approve")),
        Some(json!({ "version": 1 })),
    )
    .await?;
    ensure!(s == 200, "approve: {s}");

    // The uploaded list: 10,000 rows of mobile + name.
    let mut csv = String::from("mobile,name\n");
    for i in 0..MESSAGES {
        csv.push_str(&format!("1390{i:07},用户{i}\n"));
    }
    let resp = biz
        .post(server.url(&format!(
            "/api/v1/sms/batches/upload?template_id={tid}&name=e2e&variables=%7B%22deadline%22%3A%2211%E6%9C%8810%E6%97%A5%22%7D"
        )))
        .header("x-csrf-token", &biz_csrf)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await?;
    ensure!(resp.status() == 201, "upload: {}", resp.status());
    let batch: Value = resp.json().await?;
    let bid = batch["id"].as_str().unwrap().to_string();
    assert_eq!(batch["status"], "draft");
    assert_eq!(batch["counts"]["recipients"], MESSAGES as u64);
    assert_eq!(batch["counts"]["segments"], MESSAGES as u64);
    assert_eq!(
        batch["sample"]["mobile"], "13900000000",
        "business sees numbers"
    );
    let (s, b) = call(
        &biz,
        &biz_csrf,
        reqwest::Method::POST,
        server.url(&format!("/api/v1/sms/batches/{bid}/confirm")),
        None,
    )
    .await?;
    ensure!(s == 200, "confirm: {s} {b}");

    // The gateway takes 3,000 messages, then holds every request (recorded, unanswered):
    // the sender has CONCURRENCY requests in flight and the rest of its chunk claimed.
    wait_progress(&gateway, "the stall", |&(_, stalled)| {
        stalled >= CONCURRENCY
    })
    .await?;
    server.child.kill()?; // SIGKILL: in the middle of a round
    server.child.wait()?;
    let url = format!("sqlite://{}", data.join("hotline.db").display());
    {
        let mut db = sqlx::SqliteConnection::connect(&url).await?;
        let (sending,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM sms_messages WHERE status = 'sending'")
                .fetch_one(&mut db)
                .await?;
        assert!(
            sending >= CONCURRENCY as i64,
            "{sending} messages in doubt at the kill"
        );
    }
    gateway.stall.store(false, Ordering::SeqCst);
    gateway.release.notify_waiters();

    let server = serve(cfg, d)?;
    *receipt_url.lock().unwrap() = Some(server.url("/api/v1/sms/receipts"));
    if let Err(e) = wait_progress(&gateway, "every message", |&(distinct, _)| {
        distinct >= MESSAGES as u64
    })
    .await
    {
        // What the sender said about it (rounds that failed, messages in doubt).
        let log = server.stderr.lock().unwrap().clone();
        let said: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("sms") && (l.contains("WARN") || l.contains("ERROR")))
            .collect();
        return Err(e.context(said.join("\n")));
    }
    tokio::task::block_in_place(|| server.wait_log(&format!("sms batch finished batch={bid}")))?;
    tokio::task::block_in_place(|| server.wait_log("sms in-doubt messages settled"))?;

    let by_key = gateway.by_key.lock().unwrap().clone();
    assert_eq!(by_key.len(), MESSAGES, "every key reached the gateway");
    let twice: Vec<_> = by_key.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(
        gateway.accepted.load(Ordering::SeqCst),
        MESSAGES as u64,
        "accepted requests in total"
    );
    assert!(
        gateway.refused.load(Ordering::SeqCst) > 0,
        "retries exercised"
    );

    // The batch's results: every message sent (or delivered by receipt), none failed.
    let (bc, bc_csrf) = login(&server, "biz", "Passw0rd-long-enough").await?;
    let (s, b) = call(
        &bc,
        &bc_csrf,
        reqwest::Method::GET,
        server.url(&format!("/api/v1/sms/batches/{bid}")),
        None,
    )
    .await?;
    ensure!(s == 200, "batch: {s}");
    assert_eq!(b["finished"], true, "{b}");
    let by = &b["counts"]["by_status"];
    let done = by["sent"].as_u64().unwrap_or(0) + by["delivered"].as_u64().unwrap_or(0);
    assert_eq!(done, MESSAGES as u64, "{by}");
    assert!(by["failed"].is_null() && by["unknown"].is_null(), "{by}");
    assert!(by["delivered"].as_u64().unwrap_or(0) > 0, "receipts: {by}");
    // Mobiles never reach the log.
    let log = server.stderr.lock().unwrap().clone();
    assert!(!log.contains("13900000"), "a mobile was logged");
    drop(server);
    Ok(())
}
