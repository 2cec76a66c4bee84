//! The operator's side of the binary, end to end: the CLI imports of the auction system's
//! bidder export (idempotent, all-or-nothing with every bad row reported, exit code 2),
//! `recordings verify`, recovery of a recording cut off by a crash at `serve` start, the
//! backup job, `/readyz` on the recording archive, the 12345 push answering 503 until a
//! secret is configured, and the `[recording]`/`[crm]`/`[integrations]` config sections.

use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::{Result, ensure};
use hotline_tests::{Server, client, hotline, run, text};
use serde_json::Value;
use sqlx::Connection;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../integrations/tests/fixtures")
        .join(name)
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

fn cli(data: &Path, args: &[&str]) -> Result<Output> {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--data-dir", data.to_str().expect("utf-8 path")]);
    run(hotline(&all), None)
}

fn serve_cmd(data: &Path) -> std::process::Command {
    hotline(&[
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--http",
        "127.0.0.1:0",
        "--sip",
        "127.0.0.1:0",
    ])
}

/// Every bidder row of the SQLite database in `data`, as text, in key order.
async fn bidder_rows(data: &Path) -> Result<Vec<String>> {
    let url = format!("sqlite://{}?mode=ro", data.join("hotline.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT period, application_code, name, deposit_status, updated_at \
         FROM auction_bidders ORDER BY period, application_code",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    Ok(rows.into_iter().map(|r| format!("{r:?}")).collect())
}

#[tokio::test]
async fn bidder_import_is_idempotent_and_all_or_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let good = fixture("bidders_utf8.csv");
    let import = |file: &str, extra: &[&str]| {
        let mut args = vec!["bidders", "import", file, "--period", "2025-11"];
        args.extend_from_slice(extra);
        cli(&data, &args)
    };

    // a dry run writes nothing
    let out = import(&good, &["--dry-run"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("试运行"),
        "{}",
        text(&out.stdout)
    );
    assert!(bidder_rows(&data).await?.is_empty());

    let out = import(&good, &[])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = text(&out.stdout);
    assert!(first.contains("共 7 行；新增 7，更新 0，未变 0"), "{first}");
    let after_first = bidder_rows(&data).await?;
    assert_eq!(after_first.len(), 7);

    // the same file again: nothing changes
    let out = import(&good, &["--encoding", "utf-8"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let second = text(&out.stdout);
    assert!(second.contains("新增 0，更新 0，未变 7"), "{second}");
    assert_eq!(bidder_rows(&data).await?, after_first);

    // a file with bad rows: exit 2, every bad row reported, nothing written
    let out = import(&fixture("bidders_bad_gbk.csv"), &["--encoding", "gbk"])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains("发现 17 行错误，整个文件未写入"),
        "{report}"
    );
    for line in 9..=25 {
        assert!(
            report.contains(&format!("第 {line} 行")),
            "line {line} is reported: {report}"
        );
    }
    assert!(
        !report.contains("13812340005"),
        "mobiles are masked in the report"
    );
    assert!(text(&out.stderr).contains("17 行有错误"));
    assert_eq!(bidder_rows(&data).await?, after_first, "nothing written");

    // the same bad file into an empty database writes none of its good rows either
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty)?;
    let out = cli(
        &empty,
        &[
            "bidders",
            "import",
            &fixture("bidders_bad_utf8.csv"),
            "--period",
            "2025-11",
        ],
    )?;
    assert_eq!(out.status.code(), Some(2));
    assert!(bidder_rows(&empty).await?.is_empty());

    // a wrong period or a missing file is a usage error too
    let out = cli(&data, &["bidders", "import", &good, "--period", "2025-13"])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("期次无效"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(
        &data,
        &[
            "bidders",
            "import",
            "/nonexistent.csv",
            "--period",
            "2025-11",
        ],
    )?;
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}

fn write_cut_off_recording(root: &Path, call_id: &str) -> Result<PathBuf> {
    let dir = root.join("2025/11/05");
    std::fs::create_dir_all(&dir)?;
    let part = dir.join(format!("{call_id}.wav.part"));
    // a header never updated (crash before the first rewrite) and 500 ms of stereo audio
    let mut bytes = vec![0u8; 44];
    bytes.extend((0..16_000u32).map(|i| (i % 251) as u8));
    std::fs::write(&part, bytes)?;
    Ok(dir.join(format!("{call_id}.wav")))
}

#[tokio::test]
async fn recordings_are_recovered_backed_up_and_verified() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let backup = dir.path().join("backup");

    // an empty archive verifies clean
    let out = cli(&data, &["recordings", "verify"])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no missing or mismatched files"));

    let wav = write_cut_off_recording(&data.join("recordings"), "crash-call-1")?;
    let mut cmd = serve_cmd(&data);
    cmd.env("HOTLINE_RECORDING__BACKUP_PATH", &backup);
    let mut server = Server::start(cmd)?;
    assert!(
        wav.exists(),
        "the cut-off recording was repaired before serving"
    );
    assert!(!wav.with_extension("wav.part").exists());

    let c = client();
    let ready = c.get(server.url("/readyz")).send().await?;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await?;
    assert_eq!(body["checks"]["recordings"], "ok");

    // the backup job runs at start; wait for its report in the log
    server.wait_log("recording jobs done")?;
    let log = server.stderr.lock().unwrap().clone();
    assert!(log.contains("repaired=1"), "{log}");
    let metrics = c.get(server.url("/metrics")).send().await?.text().await?;
    assert!(
        metrics.contains("hotline_recording_backups_total{result=\"copied\"} 1"),
        "{metrics}"
    );
    let status = server.terminate()?;
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    drop(server);
    let backed_up = backup.join("2025/11/05/crash-call-1.wav");
    assert_eq!(std::fs::read(&backed_up)?, std::fs::read(&wav)?);

    let verify = |extra: Option<(&str, &Path)>| {
        let mut cmd = hotline(&["recordings", "verify", "--data-dir", data.to_str().unwrap()]);
        cmd.env("HOTLINE_RECORDING__BACKUP_PATH", &backup);
        if let Some((k, v)) = extra {
            cmd.env(k, v);
        }
        run(cmd, None)
    };
    let out = verify(None)?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // a flipped byte in the backup and a deleted archive file are both reported
    let mut b = std::fs::read(&backed_up)?;
    b[100] ^= 0xff;
    std::fs::write(&backed_up, b)?;
    std::fs::remove_file(&wav)?;
    let out = verify(None)?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("archive missing") && l.contains("2025/11/05/crash-call-1.wav")),
        "{report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("backup mismatch") && l.contains("2025/11/05/crash-call-1.wav")),
        "{report}"
    );
    assert!(text(&out.stderr).contains("2 missing or mismatched"));
    Ok(())
}

#[tokio::test]
async fn readyz_reports_an_unusable_archive_and_12345_waits_for_a_secret() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    // the archive path is a file: it cannot be created nor written
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x")?;
    let mut cmd = serve_cmd(&data);
    cmd.env("HOTLINE_RECORDING__ROOT", &not_a_dir);
    let mut server = Server::start(cmd)?;
    let c = client();
    let ready = c.get(server.url("/readyz")).send().await?;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await?;
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["recordings"], "missing");
    assert!(
        !body.to_string().contains(not_a_dir.to_str().unwrap()),
        "no paths in the public answer"
    );
    let metrics = c.get(server.url("/metrics")).send().await?.text().await?;
    assert!(
        metrics.contains("hotline_recording_path_writable 0"),
        "{metrics}"
    );

    let push = |s: &Server| {
        c.post(s.url("/api/v1/integrations/12345/orders"))
            .header("content-type", "application/json")
            .body(r#"{"order_no":"A1"}"#)
            .send()
    };
    assert_eq!(push(&server).await?.status(), 503, "no secret configured");
    assert!(server.terminate()?.success());
    drop(server);

    // with a secret (from the environment) the endpoint checks signatures instead
    let mut cmd = serve_cmd(&data);
    cmd.env(
        "HOTLINE_INTEGRATIONS__PLATFORM_12345__SECRET",
        "s3cret-for-test",
    );
    let mut server = Server::start(cmd)?;
    let resp = push(&server).await?;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await?;
    ensure!(body.to_string().contains("malformed"), "{body}");
    let ready = c.get(server.url("/readyz")).send().await?;
    assert_eq!(ready.status(), 200);
    assert!(server.terminate()?.success());
    Ok(())
}

#[test]
fn feature_config_sections_are_strict() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cases = [
        (
            "[recording]\nretention_dys = 30\n",
            "recording.retention_dys",
        ),
        (
            "[recording]\nheader_interval_ms = 9000\n",
            "recording.header_interval_ms",
        ),
        (
            "[crm.sla]\ncomplaint_hours = 0\n",
            "crm.sla.complaint_hours",
        ),
        (
            "[integrations.platform_12345]\nreply_url = \"https://12345.example/reply\"\n",
            "integrations.platform_12345.secret",
        ),
    ];
    for (i, (toml, key)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, toml)?;
        let p = path.to_str().unwrap();
        for args in [
            vec!["--config", p, "serve", "--http", "127.0.0.1:0"],
            vec!["config", "check", p],
            vec!["--config", p, "recordings", "verify"],
        ] {
            let out = run(hotline(&args), None)?;
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains(&format!("`{key}`")) && err.contains(p),
                "{args:?} should name {key} and the file: {err}"
            );
        }
    }
    let out = run(
        {
            let mut c = hotline(&["config", "check", "/dev/null"]);
            c.env("HOTLINE_RECORDING__QUEUE_FRAMES", "many");
            c
        },
        None,
    )?;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("HOTLINE_RECORDING__QUEUE_FRAMES") && err.contains("`recording.queue_frames`"),
        "{err}"
    );
    Ok(())
}
