//! The website's online Q&A widget (seed 6: 竞价网站线上答疑) in a real browser: a page on
//! another origin embeds `<script src=".../widget/chat.js">` (tests/browser/widget.mjs), a
//! visitor asks a question and the knowledge base answers in the chat, then 转人工 puts the
//! conversation in the agents' chat queue — without cookies, through CORS for that origin.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use hotline_tests::{client, field, init_printed, login, serve};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_on_the_auction_site_gets_an_answer_then_an_agent() -> Result<()> {
    let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    anyhow::ensure!(
        browser.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci --prefix tests/browser` (scripts/test.sh does)"
    );
    let dir = tempfile::tempdir()?;
    let (data, stdout) = init_printed(dir.path())?;
    let site_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nqualify_interval_secs = 0\n\
             [integrations.web_chat]\nenabled = true\n\
             allowed_origins = [\"http://127.0.0.1:{site_port}\"]\n"
        ),
    )?;
    let server = serve(&config, &data)?;

    let out = Command::new("node")
        .arg(browser.join("widget.mjs"))
        .env("HOTLINE_URL", format!("http://{}", server.http))
        .env("SITE_PORT", site_port.to_string())
        .env("QUESTION", "押金啥时候退")
        .env(
            "CHROMIUM",
            std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        )
        .output()
        .context("starting node (the browser driver)")?;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the widget script failed: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("ANSWERED") && said.contains("QUEUED"),
        "{said}"
    );

    // The conversation waits in the agents' queue, from the website channel.
    let c = client();
    let admin_pw = field(&stdout, "password:").context("admin password")?;
    let csrf = login(&c, &server, "admin", &admin_pw).await?;
    let r = c
        .post(server.url("/api/v1/users"))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({"username": "agent1", "role": "agent", "password": "Widget-test-2026"}))
        .send()
        .await?;
    assert!(r.status().is_success(), "{}", r.text().await?);
    let agent = client();
    login(&agent, &server, "agent1", "Widget-test-2026").await?;
    let queue: Value = agent
        .get(server.url("/api/v1/chats?view=queue"))
        .send()
        .await?
        .json()
        .await?;
    let list = queue.as_array().context("a list")?;
    assert_eq!(list.len(), 1, "{queue}");
    assert_eq!(list[0]["channel"], "web");
    Ok(())
}
