//! Issue 12's faults, on the real binary.
//!
//! The database unreachable: the binary runs on PostgreSQL through a TCP proxy inside the
//! test. A trunk call goes through the IVR and the ACD to a sipp seat that echoes RTP; then
//! the proxy is cut (new connections closed at once, open ones dropped) for [`OUTAGE`] while
//! the caller goes on talking and hearing the echo; `/readyz` answers 503 naming the
//! database; the caller hangs up during the outage. The call's record, its CRM call fact and
//! its recording row cannot be written and wait in the write queue (metric
//! `hotline_db_writes_waiting`); when the proxy is restored they all land, nothing lost, and
//! the server keeps serving.
//!
//! A full disk on the recording path: the archive is a 256 KiB tmpfs (the test needs root to
//! mount it and says so when it cannot); 4 s calls to a sipp seat fill it. Every call goes
//! on with audio relayed both ways; the recording that meets the full disk is stored as
//! `failed` with the error, logged, counted (`hotline_recording_disk_errors_total{kind="full"}`),
//! reported by `/readyz` (`"recordings": "disk_full"`) and raised by the alert watcher
//! (`recording_failed`); every WAV left on the disk has a header that describes its data.
//!
//! Nothing here polls: the test waits on the server's log lines (the write queue's debug
//! lines name each write queued and stored) and on the proxy's own connection count.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hotline_tests::caller::{Caller, rms, tone};
use hotline_tests::{
    Server, Sipp, TIMEOUT, client, field, free_udp_port, hotline, ivr_config, login, run, text,
};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long the database stays unreachable: issue 12's 30 s. The caller talks (and hears
/// the seat's echo) through all of it.
const OUTAGE: Duration = Duration::from_secs(30);

const DID: &str = "02296012";

/// A TCP proxy to PostgreSQL that the test can cut and restore.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Bumped on every cut: open connections watch it and drop.
    cuts: watch::Sender<u64>,
    /// Connections open through the proxy: a cut is complete when none is left.
    live: watch::Sender<usize>,
}

impl Proxy {
    async fn start(upstream: String) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let (live, _) = watch::channel(0usize);
        let (up2, cuts2, live2) = (up.clone(), cuts.clone(), live.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    // Cut: the connection is closed before the server says anything.
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = cuts2.subscribe();
                let (up, live) = (up2.clone(), live2.clone());
                live.send_modify(|n| *n += 1);
                tokio::spawn(async move {
                    // Subscribed after a cut that raced with the accept: it is not
                    // "changed" for this connection, but `up` already says so.
                    if up.load(Ordering::SeqCst)
                        && let Ok(mut server) = TcpStream::connect(&upstream).await
                    {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                    }
                    live.send_modify(|n| *n -= 1);
                });
            }
        });
        Ok(Self {
            addr,
            up,
            cuts,
            live,
        })
    }

    /// Cuts the database off and returns when every connection through the proxy is closed.
    async fn cut(&self) -> Result<()> {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
        let mut live = self.live.subscribe();
        tokio::time::timeout(TIMEOUT, live.wait_for(|n| *n == 0))
            .await
            .context("the proxy's connections did not close")??;
        Ok(())
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `postgres://user@host:port/db?x` → (`host:port`, the URL with `to` as host and port).
fn through(url: &str, to: SocketAddr) -> Result<(String, String)> {
    let scheme_end = url.find("://").context("no scheme")? + 3;
    let rest = &url[scheme_end..];
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host = &authority[host_start..];
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    };
    let proxied = format!(
        "{}{}{to}{}",
        &url[..scheme_end],
        &authority[..host_start],
        &rest[auth_end..]
    );
    Ok((host, proxied))
}

async fn readyz(c: &reqwest::Client, server: &Server) -> Result<(u16, Value)> {
    let r = c.get(server.url("/readyz")).send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

async fn metric(c: &reqwest::Client, server: &Server, name: &str) -> Result<i64> {
    let text = c.get(server.url("/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_during_a_call_loses_nothing() -> Result<()> {
    let Some(pg) = hotline_testkit::ExternalDb::create(hotline_testkit::Backend::Postgres).await?
    else {
        eprintln!("database outage test skipped: TEST_DATABASE_URL is not set");
        return Ok(());
    };
    let direct_url = pg.db.url.clone();
    let direct = pg.db.pool.clone();
    let (upstream, _) = through(&direct_url, "127.0.0.1:1".parse()?)?;
    let proxy = Proxy::start(upstream).await?;
    let (_, url) = through(&direct_url, proxy.addr)?;

    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().context("utf-8")?;
    let mut init = hotline(&["init", "--data-dir", d]);
    init.env("HOTLINE_DATABASE__URL", &url);
    let out = run(init, None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let admin_pw = field(&stdout, "password:").context("admin password")?;
    let seat_pw = field(&stdout, "seat 8001:").context("seat password")?;
    let config = ivr_config(dir.path(), DID, (38000, 38999), "")?;
    let mut cmd = hotline(&[
        "--config",
        config.to_str().context("utf-8")?,
        "serve",
        "--data-dir",
        d,
        "--http",
        "127.0.0.1:0",
        "--sip",
        "127.0.0.1:0",
    ]);
    cmd.env("HOTLINE_DATABASE__URL", &url);
    // The write queue's debug lines ("write queued: …", "write stored: …", "write queue
    // empty") are the events the test waits on.
    cmd.env(
        "HOTLINE_LOG__FILTER",
        "info,rsipstack=warn,hotline::db::write_queue=debug",
    );
    let mut server = Server::start(cmd)?;
    let sip: SocketAddr = server.sip.parse()?;

    // The agent's seat registers; the agent logs in and is ready.
    let seat_port = Sipp::register(&server.sip, "8001", &seat_pw).await?;
    let c = client();
    let csrf = login(&c, &server, "admin", &admin_pw).await?;
    hotline_tests::agent_ready(&c, &server, &csrf, "8001").await?;
    assert_eq!(readyz(&c, &server).await?.0, 200);

    // The seat answers and echoes until the caller hangs up.
    // sipp's global timeout (30 s in `Sipp::spawn`) is raised: the seat's phone must outlive
    // the IVR, the queue and the outage.
    let seat = Sipp::echo_seat(
        &server.sip,
        "seat_uas.xml",
        &seat_port,
        "PCMA",
        &["-timeout", "120s"],
    )?;
    let mut caller = Caller::call(sip, DID, "13900000012", true).await?;
    let mut bridged = false;
    for _ in 0..60 {
        caller.key('0').await?;
        caller.hear_for(Duration::from_millis(500)).await?;
        let acd: Value = c
            .get(server.url("/api/v1/acd"))
            .send()
            .await?
            .json()
            .await?;
        if acd["agents"][0]["state"]["state"] == "busy" {
            bridged = true;
            break;
        }
    }
    assert!(bridged, "the agent was never connected");
    let (call_id,): (String,) = sqlx::query_as("SELECT id FROM sip_calls")
        .fetch_one(&direct)
        .await?;

    // The outage. The caller talks all through it and hears the seat's echo.
    let (c, srv, db, id) = (&c, &server, &direct, call_id.as_str());
    let cut_mark = srv.log_mark();
    proxy.cut().await?;
    let cut_at = Instant::now();
    let (status, body) = readyz(c, srv).await?;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["database"], "unreachable", "{body}");
    let mut seconds = 0;
    while cut_at.elapsed() < OUTAGE {
        let heard = caller.talk(&tone(&[1000.0], 1000, 6000.0)).await?;
        let loud = rms(&heard.samples);
        if loud <= 2000.0 {
            let log = srv.stderr.lock().map(|l| l.clone()).unwrap_or_default();
            bail!(
                "second {seconds} of the outage: the seat's echo is not heard (rms {loud}); log:\n{log}"
            );
        }
        seconds += 1;
    }
    // The caller hangs up while the database is still away: the call's record, its call
    // fact and its finished recording are queued.
    caller.bye().await?;
    seat.success().await?;
    srv.wait_log_since(cut_mark, "the database does not take writes")?;
    for what in ["call record", "call fact", "finished recording"] {
        srv.wait_log_since(cut_mark, &format!("write queued: {what}"))?;
    }
    let waiting = metric(c, srv, "hotline_db_writes_waiting").await?;
    assert!(waiting >= 1, "writes wait in the queue: {waiting}");
    let (status, _) = readyz(c, srv).await?;
    assert_eq!(status, 503, "still unreachable");
    assert_eq!(
        c.get(srv.url("/healthz")).send().await?.status(),
        200,
        "the server serves during the outage"
    );
    // The outage lasted as long as the caller talked through it (OUTAGE) and the checks
    // above: no extra wait.
    let outage = cut_at.elapsed();
    let restore_mark = srv.log_mark();
    proxy.restore();
    let restored = Instant::now();

    // Everything lands: the call's record closed, its call fact, its recording row.
    srv.wait_log_since(restore_mark, "database writes go through again")?;
    srv.wait_log_since(restore_mark, "write queue empty")?;
    let landed = restored.elapsed();
    let (end_cause, hangup_side): (String, String) = sqlx::query_as(
        "SELECT end_cause, hangup_side FROM sip_calls WHERE id = $1 AND ended_at IS NOT NULL",
    )
    .bind(id)
    .fetch_one(db)
    .await
    .context("the call record is closed")?;
    assert_eq!(
        (end_cause.as_str(), hangup_side.as_str()),
        ("normal", "caller")
    );
    let (agent, ended, recording_id): (Option<String>, Option<i64>, Option<String>) =
        sqlx::query_as(
            "SELECT agent, ended_at, recording_id FROM crm_call_facts \
             WHERE call_id = $1 AND ended_at IS NOT NULL",
        )
        .bind(id)
        .fetch_one(db)
        .await
        .context("the call fact is stored")?;
    assert_eq!(agent.as_deref(), Some("8001"));
    assert!(ended.is_some());
    let (rec_id, state, rec_agent, duration_ms): (String, String, String, i64) = sqlx::query_as(
        "SELECT id, state, agent, duration_ms FROM recordings \
         WHERE call_id = $1 AND state <> 'recording'",
    )
    .bind(id)
    .fetch_one(db)
    .await
    .context("the recording row is finished")?;
    assert_eq!((state.as_str(), rec_agent.as_str()), ("finished", "8001"));
    assert_eq!(recording_id.as_deref(), Some(rec_id.as_str()));
    assert!(
        duration_ms >= OUTAGE.as_millis() as i64 - 2_000,
        "the recording covers the outage: {duration_ms} ms"
    );
    assert_eq!(metric(c, srv, "hotline_db_writes_waiting").await?, 0);
    assert_eq!(metric(c, srv, "hotline_db_writes_given_up_total").await?, 0);
    assert_eq!(readyz(c, srv).await?.0, 200);
    let me = c.get(srv.url("/api/v1/me")).send().await?;
    assert_eq!(me.status(), 200, "the session survived the outage");
    eprintln!(
        "outage {outage:?}: {waiting} writes waited; all stored {landed:?} after the database returned"
    );
    assert!(server.terminate()?.success());
    drop(server);
    direct.close().await;
    pg.release().await?;
    Ok(())
}

/// A tmpfs mounted for the test, unmounted when dropped (also when the test fails).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// `None` (with the reason printed) where mounting is not permitted.
    fn mount(dir: &std::path::Path, size: &str) -> Result<Option<Self>> {
        std::fs::create_dir_all(dir)?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Ok(Some(Self(dir.to_path_buf()))),
            Ok(o) => {
                eprintln!(
                    "disk-full test skipped: cannot mount a tmpfs (needs root): {}",
                    text(&o.stderr).trim()
                );
                Ok(None)
            }
            Err(e) => {
                eprintln!("disk-full test skipped: cannot run mount: {e}");
                Ok(None)
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process that still holds a file there cannot keep the mount alive.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Every WAV (finished or `.part`) below `dir` with whether its header describes its data:
/// RIFF size = file size - 8, data chunk size = file size - 44.
fn wav_files(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, u64, bool)>) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        if path.is_dir() {
            wav_files(&path, out)?;
            continue;
        }
        let name = path.to_string_lossy().to_string();
        if !(name.ends_with(".wav") || name.ends_with(".wav.part")) {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        let len = bytes.len() as u64;
        let u32_at = |i: usize| -> Option<u64> {
            Some(u64::from(u32::from_le_bytes(
                bytes.get(i..i + 4)?.try_into().ok()?,
            )))
        };
        let ok = len >= 44
            && &bytes[0..4] == b"RIFF"
            && &bytes[36..40] == b"data"
            && u32_at(4) == Some(len - 8)
            && u32_at(40) == Some(len - 44)
            && (len - 44).is_multiple_of(4);
        out.push((path, len, ok));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_recording_disk_fails_the_recording_not_the_call() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mnt = dir.path().join("recordings");
    // 256 KiB: about 8 s of stereo 8 kHz 16-bit audio.
    let Some(_tmpfs) = Tmpfs::mount(&mnt, "256k")? else {
        return Ok(());
    };
    let data = dir.path().join("data");
    let d = data.to_str().context("utf-8")?;
    let out = run(hotline(&["init", "--data-dir", d]), None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seat_pw = field(&text(&out.stdout), "seat 8001:").context("seat password")?;
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nroutes = [{{ did = \"{DID}\", target = \"seat:8001\" }}]\n\
             qualify_interval_secs = 0\n\
             [sip.trunk]\npeers = [{{ name = \"e1\", address = \"127.0.0.1/32\" }}]\n\
             [sip.rtp]\nport_min = 39000\nport_max = 39999\n\
             [recording]\nroot = {:?}\n\
             [alerts]\ninterval_secs = 1\n",
            mnt.to_str().context("utf-8")?
        ),
    )?;
    let mut server = hotline_tests::serve(&config, &data)?;
    let seat_port = Sipp::register(&server.sip, "8001", &seat_pw).await?;
    let c = client();
    let url = format!("sqlite://{}", data.join("hotline.db").display());
    let db = sqlx::SqlitePool::connect(&url).await?;

    // Calls of about 4 s each until a recording fails, then two more: the calls go on.
    let mut states = Vec::new();
    let mut after_failure = 0;
    for _ in 0..10 {
        let before_to_seat = metric(
            &c,
            &server,
            "hotline_sip_rtp_packets_total{direction=\"caller_to_seat\"}",
        )
        .await?;
        let before_to_caller = metric(
            &c,
            &server,
            "hotline_sip_rtp_packets_total{direction=\"seat_to_caller\"}",
        )
        .await?;
        let seat = Sipp::echo_seat(&server.sip, "seat_uas.xml", &seat_port, "PCMA", &[])?;
        let caller_mp = free_udp_port().to_string();
        Sipp::spawn(
            &server.sip,
            "uac_call.xml",
            &["-m", "1", "-s", DID, "-mp", &caller_mp, "-d", "4000"],
        )?
        .success()
        .await?;
        seat.success().await?;
        let (call_id, end_cause): (String, String) =
            sqlx::query_as("SELECT id, end_cause FROM sip_calls ORDER BY offered_at DESC LIMIT 1")
                .fetch_one(&db)
                .await?;
        assert_eq!(end_cause, "normal", "call {call_id}");
        server.wait_log(&format!("recording stored call={call_id}"))?;
        let (state, error, bytes): (String, String, i64) =
            sqlx::query_as("SELECT state, error, bytes FROM recordings WHERE call_id = $1")
                .bind(&call_id)
                .fetch_one(&db)
                .await?;
        let to_seat = metric(
            &c,
            &server,
            "hotline_sip_rtp_packets_total{direction=\"caller_to_seat\"}",
        )
        .await?
            - before_to_seat;
        let to_caller = metric(
            &c,
            &server,
            "hotline_sip_rtp_packets_total{direction=\"seat_to_caller\"}",
        )
        .await?
            - before_to_caller;
        eprintln!(
            "call {call_id}: recording {state} ({bytes} bytes) {error}; RTP relayed {to_seat} / {to_caller}"
        );
        assert!(
            to_seat >= 100 && to_caller >= 100,
            "audio relayed both ways: {to_seat} / {to_caller}"
        );
        if state == "failed" {
            assert!(!error.is_empty(), "a failed recording says why");
        }
        let failed = states.iter().any(|s| s == "failed") || state == "failed";
        states.push(state);
        if failed {
            after_failure += 1;
            if after_failure == 3 {
                break;
            }
        }
    }
    assert!(
        states.iter().any(|s| s == "failed"),
        "the disk never filled: {states:?}"
    );
    assert_eq!(states[0], "finished", "the first call fits: {states:?}");

    // The failure is visible: the log, the metric, /readyz, the alert (the watcher samples
    // every second here).
    server.wait_log("recording disk error")?;
    server.wait_log("rule=recording_failed")?;
    assert!(
        metric(
            &c,
            &server,
            "hotline_recording_disk_errors_total{kind=\"full\"}"
        )
        .await?
            >= 1
    );
    let (status, body) = readyz(&c, &server).await?;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["recordings"], "disk_full", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(c.get(server.url("/healthz")).send().await?.status(), 200);

    // No corrupt file: every WAV's header describes its data.
    let mut files = Vec::new();
    wav_files(&mnt, &mut files)?;
    let bad: Vec<_> = files.iter().filter(|(_, _, ok)| !ok).collect();
    assert!(bad.is_empty(), "WAVs whose header does not match: {bad:?}");
    eprintln!("{} WAV files left, all consistent", files.len());

    assert!(server.terminate()?.success());
    drop(server);
    db.close().await;
    Ok(())
}
