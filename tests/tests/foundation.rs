//! The foundation, end to end: `hotline init`, `serve` on the embedded defaults, login and
//! `/api/v1/me`, CLI user management, config errors with exit code 2, port in use,
//! unreachable database, graceful shutdown, and the same on PostgreSQL.

use anyhow::{Result, ensure};
use hotline_tests::{Server, client, field, hotline, init, run, text};
use serde_json::{Value, json};

async fn login(server: &Server, user: &str, password: &str) -> Result<(reqwest::Client, Value)> {
    let c = client();
    let resp = c
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": user, "password": password }))
        .send()
        .await?;
    ensure!(resp.status() == 200, "login status {}", resp.status());
    let body: Value = resp.json().await?;
    Ok((c, body))
}

fn serve_cmd(data: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let mut args = vec![
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--http",
        "127.0.0.1:0",
        "--sip",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    hotline(&args)
}

#[tokio::test]
async fn init_serve_login_me_on_sqlite() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let password = init(&data, &[])?;
    assert!(
        data.join("hotline.db").exists(),
        "SQLite file in the data dir"
    );
    // a second init keeps the admin and prints no password
    let again = run(
        hotline(&["init", "--data-dir", data.to_str().unwrap()]),
        None,
    )?;
    assert!(again.status.success());
    assert!(field(&text(&again.stdout), "password:").is_none());

    let mut server = Server::start(serve_cmd(&data, &[]))?;
    let c = client();
    let health = c.get(server.url("/healthz")).send().await?;
    assert_eq!(health.status(), 200);
    let ready = c.get(server.url("/readyz")).send().await?;
    assert_eq!(ready.status(), 200);

    let anon = c.get(server.url("/api/v1/me")).send().await?;
    assert_eq!(anon.status(), 401);
    let err: Value = anon.json().await?;
    assert_eq!(err["error"]["code"], "unauthorized");

    let (c, session) = login(&server, "admin", &password).await?;
    assert_eq!(session["user"]["username"], "admin");
    let me: Value = c.get(server.url("/api/v1/me")).send().await?.json().await?;
    assert_eq!(me["user"]["username"], "admin");
    assert_eq!(me["user"]["role"], "admin");

    let metrics = c.get(server.url("/metrics")).send().await?.text().await?;
    assert!(
        metrics.contains(
            "hotline_http_requests_total{method=\"GET\",route=\"/api/v1/me\",status=\"200\"}"
        ) || metrics.contains("route=\"/api/v1/me\""),
        "{metrics}"
    );
    let doc: Value = c
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/me"]["get"].is_object());

    let status = server.terminate()?;
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    Ok(())
}

#[tokio::test]
async fn cli_manages_users_and_the_web_sees_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    init(&data, &[])?;
    let add = run(
        hotline(&[
            "user",
            "add",
            "zhang.li",
            "--role",
            "agent",
            "--display-name",
            "张丽",
            "--password-stdin",
            "--data-dir",
            d,
        ]),
        Some("agent-password-1\n"),
    )?;
    assert!(add.status.success(), "{}", text(&add.stderr));
    let dup = run(
        hotline(&[
            "user",
            "add",
            "zhang.li",
            "--role",
            "agent",
            "--data-dir",
            d,
        ]),
        None,
    )?;
    assert_eq!(dup.status.code(), Some(2), "{}", text(&dup.stderr));
    let bad_role = run(
        hotline(&["user", "add", "x1", "--role", "root", "--data-dir", d]),
        None,
    )?;
    assert_eq!(bad_role.status.code(), Some(2));
    assert!(text(&bad_role.stderr).contains("root"));
    let list = run(hotline(&["user", "list", "--data-dir", d]), None)?;
    let list = text(&list.stdout);
    assert!(
        list.contains("zhang.li") && list.contains("agent") && list.contains("张丽"),
        "{list}"
    );

    let server = Server::start(serve_cmd(&data, &[]))?;
    let (c, s) = login(&server, "zhang.li", "agent-password-1").await?;
    assert_eq!(s["user"]["role"], "agent");
    // an agent may not list users
    let r = c.get(server.url("/api/v1/users")).send().await?;
    assert_eq!(r.status(), 403);

    // passwd ends the session and the old password stops working
    let pw = run(
        hotline(&["user", "passwd", "zhang.li", "--data-dir", d]),
        None,
    )?;
    assert!(pw.status.success());
    let new_pw = field(&text(&pw.stdout), "password:").expect("generated password");
    assert_eq!(c.get(server.url("/api/v1/me")).send().await?.status(), 401);
    let old = client()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "zhang.li", "password": "agent-password-1"}))
        .send()
        .await?;
    assert_eq!(old.status(), 401);
    let (c2, _) = login(&server, "zhang.li", &new_pw).await?;

    // disable ends the session and refuses login
    let off = run(
        hotline(&["user", "disable", "zhang.li", "--data-dir", d]),
        None,
    )?;
    assert!(off.status.success());
    assert_eq!(c2.get(server.url("/api/v1/me")).send().await?.status(), 401);
    let refused = client()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "zhang.li", "password": new_pw}))
        .send()
        .await?;
    assert_eq!(refused.status(), 403);
    Ok(())
}

#[test]
fn bad_config_exits_2_and_names_the_key() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cases = [
        ("[http]\nlisten = \"127.0.0.1:0\"\nport = 80\n", "http.port"),
        (
            "[database]\nmax_connections = \"eight\"\n",
            "database.max_connections",
        ),
        ("data_dir = 5\n", "data_dir"),
        ("[sip]\nlisten = \"not an address\"\n", "sip.listen"),
    ];
    for (i, (toml, key)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, toml)?;
        let p = path.to_str().unwrap();
        for args in [vec!["--config", p, "serve"], vec!["config", "check", p]] {
            let out = run(hotline(&args), None)?;
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains(&format!("`{key}`")),
                "{args:?} should name {key}: {err}"
            );
            assert!(err.contains(p), "names the file: {err}");
        }
    }
    // environment overrides are checked the same way
    let out = run(
        {
            let mut c = hotline(&["serve", "--data-dir", dir.path().to_str().unwrap()]);
            c.env("HOTLINE_HTTP__LISTEN", "nowhere");
            c
        },
        None,
    )?;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("HOTLINE_HTTP__LISTEN"));

    // the default file is valid and checks clean
    let def = run(hotline(&["config", "default"]), None)?;
    let path = dir.path().join("default.toml");
    std::fs::write(&path, &def.stdout)?;
    let ok = run(hotline(&["config", "check", path.to_str().unwrap()]), None)?;
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    Ok(())
}

#[test]
fn port_in_use_and_unreachable_database_exit_2() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();
    let out = run(
        hotline(&[
            "serve",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--http",
            &addr,
            "--sip",
            "127.0.0.1:0",
        ]),
        None,
    )?;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&addr) && err.contains("in use"), "{err}");

    // nothing listens on port 1
    let mut cmd = hotline(&[
        "serve",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--http",
        "127.0.0.1:0",
    ]);
    cmd.env(
        "HOTLINE_DATABASE__URL",
        "postgres://postgres:secret@127.0.0.1:1/none",
    )
    .env("HOTLINE_DATABASE__ACQUIRE_TIMEOUT_SECS", "2");
    let out = run(cmd, None)?;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("cannot open the database"), "{err}");
    assert!(
        !err.contains("secret"),
        "the password is not printed: {err}"
    );
    Ok(())
}

#[tokio::test]
async fn serves_on_postgresql() -> Result<()> {
    let Some(pg) = hotline_testkit::ExternalDb::create(hotline_testkit::Backend::Postgres).await?
    else {
        return Ok(());
    };
    let url = pg.db.url.clone();
    pg.db.pool.close().await;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let mut init_cmd = hotline(&["init", "--data-dir", data.to_str().unwrap()]);
    init_cmd.env("HOTLINE_DATABASE__URL", &url);
    let out = run(init_cmd, None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let password = field(&text(&out.stdout), "password:").expect("password");
    assert!(
        !data.join("hotline.db").exists(),
        "no SQLite file when PostgreSQL is configured"
    );
    let mut cmd = serve_cmd(&data, &[]);
    cmd.env("HOTLINE_DATABASE__URL", &url);
    let mut server = Server::start(cmd)?;
    let (c, _) = login(&server, "admin", &password).await?;
    let me: Value = c.get(server.url("/api/v1/me")).send().await?.json().await?;
    assert_eq!(me["user"]["username"], "admin");
    assert!(server.terminate()?.success());
    drop(server);
    pg.release().await?;
    Ok(())
}
