//! `hotline-tests`: end-to-end tests of the real `hotline` binary, driven over its real HTTP
//! and SIP sockets (sipp, HTTP clients). The helpers here start the binary in a temporary data
//! directory and wait for it to be ready, on events (its output), never by sleeping.
//!
//! May depend on: `hotline` (so the binary is built); nothing depends on it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
pub mod caller;

/// How long anything in an end-to-end test may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The `hotline` binary built by cargo beside this test binary (or `HOTLINE_BIN`).
pub fn hotline_bin() -> PathBuf {
    if let Ok(p) = std::env::var("HOTLINE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/hotline
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("hotline{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p hotline`",
        bin.display()
    );
    bin
}

/// A command for the binary with a clean environment as far as hotline is concerned.
pub fn hotline(args: &[&str]) -> Command {
    let mut cmd = Command::new(hotline_bin());
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("HOTLINE_") && k != "HOTLINE_BIN" {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Runs a command to completion, feeding `stdin`.
pub fn run(mut cmd: Command, stdin: Option<&str>) -> Result<Output> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("spawning hotline")?;
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(input.as_bytes())?;
    } else {
        drop(child.stdin.take());
    }
    Ok(child.wait_with_output()?)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The value after `label` on the first line of `out` that starts with it (trimmed).
pub fn field(out: &str, label: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .map(|v| v.trim().to_string())
}

/// `hotline init` in `data_dir`; returns the printed admin password.
pub fn init(data_dir: &Path, extra: &[&str]) -> Result<String> {
    let mut args = vec!["init", "--data-dir", data_dir.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let out = run(hotline(&args), None)?;
    if !out.status.success() {
        bail!("init failed: {}{}", text(&out.stdout), text(&out.stderr));
    }
    field(&text(&out.stdout), "password:").context("init printed no password")
}

/// A running `hotline serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub http: String,
    /// The SIP address (`ip:port`, UDP and TCP).
    pub sip: String,
    pub lines: mpsc::Receiver<String>,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// Notified after every line added to `stderr` (see [`Server::wait_log`]).
    log_changed: std::sync::Arc<std::sync::Condvar>,
}

impl Server {
    /// Starts `hotline serve` with `args` (e.g. `--data-dir`, `--http 127.0.0.1:0`) and waits
    /// until it prints its HTTP and SIP addresses.
    pub fn start(mut cmd: Command) -> Result<Self> {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().context("spawning hotline serve")?;
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr_buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr_buf.clone();
        let log_changed = std::sync::Arc::new(std::sync::Condvar::new());
        let notify = log_changed.clone();
        let stderr = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&line);
                s.push('\n');
                notify.notify_all();
            }
        });
        let deadline = std::time::Instant::now() + TIMEOUT;
        let (mut http, mut sip) = (None, None);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = field(&line, "web console and API:") {
                        http = Some(
                            url.trim_start_matches("http://")
                                .trim_end_matches('/')
                                .to_string(),
                        );
                    }
                    if let Some(addr) = field(&line, "SIP (UDP+TCP):") {
                        sip = Some(addr);
                    }
                    if let (Some(http), Some(sip)) = (&http, &sip) {
                        return Ok(Self {
                            child,
                            http: http.clone(),
                            sip: sip.clone(),
                            lines: rx,
                            stderr: stderr_buf,
                            log_changed,
                        });
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait()?;
                    bail!(
                        "hotline serve did not start ({status}): {}",
                        stderr_buf.lock().unwrap_or_else(|e| e.into_inner())
                    );
                }
            }
        }
    }

    /// Waits until the server's log holds `needle`, woken by every new log line (bounded by
    /// [`TIMEOUT`]). Blocks the calling thread: the server is another process.
    pub fn wait_log(&self, needle: &str) -> Result<()> {
        self.wait_log_since(0, needle)
    }

    /// Where the server's log ends now: for [`Server::wait_log_since`].
    pub fn log_mark(&self) -> usize {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Like [`Server::wait_log`], for a line written after `mark` (from [`Server::log_mark`]):
    /// a line that the server writes more than once.
    pub fn wait_log_since(&self, mark: usize, needle: &str) -> Result<()> {
        let deadline = std::time::Instant::now() + TIMEOUT;
        let mut log = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        while !log.get(mark..).unwrap_or("").contains(needle) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                bail!("`{needle}` never appeared in the server log:\n{log}");
            }
            log = self
                .log_changed
                .wait_timeout(log, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        // The process's stdout closes when it exits: the reader thread then ends and the
        // channel disconnects, which is the event waited on (bounded).
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(self.child.wait()?),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!("hotline did not stop within {TIMEOUT:?} of SIGTERM")
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reqwest client that keeps cookies, as a browser would.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(TIMEOUT)
        .build()
        .expect("client")
}

/// A sipp scenario file of the gateway's test suite.
pub fn sipp_scenario(name: &str) -> String {
    format!(
        "{}/../sip-gateway/tests/sipp/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A running sipp (Debian `sip-tester`), in a temporary working directory for its logs.
pub struct Sipp {
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Sipp {
    pub fn spawn(server: &str, scenario: &str, args: &[&str]) -> Result<Sipp> {
        let dir = tempfile::tempdir()?;
        let child = tokio::process::Command::new("sipp")
            .arg(server)
            .arg("-sf")
            .arg(sipp_scenario(scenario))
            .args([
                "-nostdin",
                "-timeout",
                "30s",
                "-timeout_error",
                "-trace_err",
            ])
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting sipp (Debian package sip-tester)")?;
        Ok(Sipp { child, dir })
    }

    /// Registers `seat` with its SIP `password` (digest) from a fresh UDP port, and returns
    /// that port: the seat's phone answers there (`echo_seat`, `-p`).
    pub async fn register(server: &str, seat: &str, password: &str) -> Result<String> {
        let port = free_udp_port().to_string();
        Sipp::spawn(
            server,
            "register.xml",
            &[
                "-m", "1", "-p", &port, "-s", seat, "-au", seat, "-ap", password,
            ],
        )?
        .success()
        .await?;
        Ok(port)
    }

    /// A phone on UDP `port`: sipp runs `scenario` (`seat_uas.xml`, `seat_uas_speaks.xml`, …)
    /// for one call in `codec` (`"PCMA"` or `"PCMU"`) from a fresh media port; `extra` goes
    /// on sipp's command line.
    pub fn phone(
        server: &str,
        scenario: &str,
        port: &str,
        codec: &str,
        extra: &[&str],
    ) -> Result<Sipp> {
        let mp = free_udp_port().to_string();
        let pt = if codec == "PCMU" { "0" } else { "8" };
        let mut args = vec![
            "-m", "1", "-p", port, "-mp", &mp, "-key", "pt", pt, "-key", "codec", codec,
        ];
        args.extend_from_slice(extra);
        Sipp::spawn(server, scenario, &args)
    }

    /// A seat's [`Sipp::phone`] on its registered `port` that echoes the call's RTP.
    pub fn echo_seat(
        server: &str,
        scenario: &str,
        port: &str,
        codec: &str,
        extra: &[&str],
    ) -> Result<Sipp> {
        let mut args = vec!["-rtp_echo"];
        args.extend_from_slice(extra);
        Sipp::phone(server, scenario, port, codec, &args)
    }

    /// Waits (bounded) for sipp to exit and fails unless every call succeeded.
    pub async fn success(mut self) -> Result<()> {
        let status = tokio::time::timeout(Duration::from_secs(45), self.child.wait())
            .await
            .context("sipp did not finish")??;
        if !status.success() {
            let logs: Vec<String> = std::fs::read_dir(self.dir.path())?
                .filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect();
            bail!("sipp {status}: {}", logs.join("\n"));
        }
        Ok(())
    }
}

/// A UDP port that was free a moment ago (for sipp's local ports).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

/// A call's recording once it is finished and stored (the server logs "recording stored"
/// for it): state, path relative to the archive, agent, duration in milliseconds.
pub async fn finished_recording(
    server: &Server,
    db: &mut sqlx::SqliteConnection,
    call_id: &str,
) -> Result<(String, String, String, i64)> {
    server.wait_log(&format!("recording stored call={call_id}"))?;
    Ok(
        sqlx::query_as("SELECT state, path, agent, duration_ms FROM recordings WHERE call_id = $1")
            .bind(call_id)
            .fetch_one(&mut *db)
            .await?,
    )
}

/// A stereo WAV's channels: (left, right).
pub fn stereo(path: &Path) -> Result<(Vec<i16>, Vec<i16>)> {
    let wav = hound::WavReader::open(path).with_context(|| format!("{}", path.display()))?;
    anyhow::ensure!(wav.spec().channels == 2, "{} is not stereo", path.display());
    let samples = wav.into_samples::<i16>().collect::<Result<Vec<_>, _>>()?;
    Ok(samples.chunks_exact(2).map(|f| (f[0], f[1])).unzip())
}

/// The default IVR flow, open round the clock so that a test does not depend on the hour,
/// written into `dir`.
pub fn all_day_flow(dir: &Path) -> Result<PathBuf> {
    let flow = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ivr/flows/default.toml"),
    )?
    .replace(
        "open = \"08:00\"\nclose = \"20:00\"",
        "open = \"00:00\"\nclose = \"00:00\"",
    );
    anyhow::ensure!(
        flow.contains("close = \"00:00\""),
        "the hours of the default flow moved"
    );
    let path = dir.join("flow.toml");
    std::fs::write(&path, flow)?;
    Ok(path)
}

/// `hotline init` in `<dir>/data`: the data directory and what init printed (the admin's and
/// the seats' passwords, read with [`field`]).
pub fn init_printed(dir: &Path) -> Result<(PathBuf, String)> {
    let data = dir.join("data");
    let out = run(
        hotline(&["init", "--data-dir", data.to_str().expect("utf-8 path")]),
        None,
    )?;
    if !out.status.success() {
        bail!("init failed: {}", text(&out.stderr));
    }
    Ok((data, text(&out.stdout)))
}

/// A configuration in `dir` that routes `did` to the IVR (the all-day default flow), takes
/// calls from a trunk peer on loopback, gives RTP the ports `rtp.0..=rtp.1` (distinct per
/// test, so that tests run side by side) and appends `extra` (more TOML).
pub fn ivr_config(dir: &Path, did: &str, rtp: (u16, u16), extra: &str) -> Result<PathBuf> {
    let flow = all_day_flow(dir)?;
    let config = dir.join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nroutes = [{{ did = \"{did}\", target = \"ivr\" }}]\n\
             qualify_interval_secs = 0\n\
             [sip.trunk]\npeers = [{{ name = \"e1\", address = \"127.0.0.1/32\" }}]\n\
             [sip.rtp]\nport_min = {}\nport_max = {}\n\
             [ivr]\nflow = {:?}\n{extra}",
            rtp.0,
            rtp.1,
            flow.to_str().expect("utf-8 path")
        ),
    )?;
    Ok(config)
}

/// `hotline serve` with `config` on `data`, HTTP and SIP on free loopback ports.
pub fn serve(config: &Path, data: &Path) -> Result<Server> {
    Server::start(hotline(&[
        "--config",
        config.to_str().expect("utf-8 path"),
        "serve",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        "--http",
        "127.0.0.1:0",
        "--sip",
        "127.0.0.1:0",
    ]))
}

/// Logs `username` in with `c` (which keeps the session cookie) and returns the CSRF token
/// to send with state-changing requests.
pub async fn login(
    c: &reqwest::Client,
    server: &Server,
    username: &str,
    password: &str,
) -> Result<String> {
    let r = c
        .post(server.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("login of {username}: {} {}", r.status(), r.text().await?);
    }
    let body: serde_json::Value = r.json().await?;
    body["csrf_token"]
        .as_str()
        .map(str::to_string)
        .context("no csrf_token in the login answer")
}

/// A configuration in `dir` for click-to-call: the trunk peer (where customers are called)
/// on loopback at `customer_port`, caller ID 02296012, mobile numbers allowed out, RTP on
/// `rtp.0..=rtp.1`.
pub fn click_to_call_config(dir: &Path, customer_port: &str, rtp: (u16, u16)) -> Result<PathBuf> {
    let config = dir.join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nqualify_interval_secs = 0\n\
             [sip.trunk]\ncaller_id = \"02296012\"\noutbound_allow = [\"1XXXXXXXXXX\"]\n\
             peers = [{{ name = \"e1\", address = \"127.0.0.1/32\", port = {customer_port} }}]\n\
             [sip.rtp]\nport_min = {}\nport_max = {}\n",
            rtp.0, rtp.1
        ),
    )?;
    Ok(config)
}

/// Asks for a click-to-call from `seat` to `number` (the agent desk's button).
pub async fn click_to_call(
    c: &reqwest::Client,
    server: &Server,
    csrf: &str,
    seat: &str,
    number: &str,
) -> Result<()> {
    let r = c
        .post(server.url("/api/v1/calls/click-to-call"))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({"seat": seat, "number": number}))
        .send()
        .await?;
    if r.status() != 200 {
        bail!("click-to-call: {} {}", r.status(), r.text().await?);
    }
    Ok(())
}

/// The customer of a click-to-call test: a sipp phone on the trunk peer's port
/// (`customer_port`, PCMA) that answers and speaks; then the admin (password `admin_pw`)
/// asks for a click-to-call from seat 8001 to it. Returns the customer's sipp.
pub async fn click_to_call_a_speaking_customer(
    server: &Server,
    customer_port: &str,
    admin_pw: &str,
) -> Result<Sipp> {
    let customer = Sipp::phone(
        &server.sip,
        "seat_uas_speaks.xml",
        customer_port,
        "PCMA",
        &[],
    )?;
    let c = client();
    let csrf = login(&c, server, "admin", admin_pw).await?;
    click_to_call(&c, server, &csrf, "8001", "13912345678").await?;
    Ok(customer)
}

/// Logs agent `agent` in to the queue "hotline" and makes them ready (with the session of
/// `c` and its CSRF token), as the agent desk does.
pub async fn agent_ready(
    c: &reqwest::Client,
    server: &Server,
    csrf: &str,
    agent: &str,
) -> Result<()> {
    for (path, body) in [
        (
            format!("/api/v1/acd/agents/{agent}/login"),
            serde_json::json!({"queues": ["hotline"]}),
        ),
        (
            format!("/api/v1/acd/agents/{agent}/ready"),
            serde_json::json!({}),
        ),
    ] {
        let r = c
            .post(server.url(&path))
            .header("x-csrf-token", csrf)
            .json(&body)
            .send()
            .await?;
        if r.status() != 200 {
            bail!("{path}: {} {}", r.status(), r.text().await?);
        }
    }
    Ok(())
}

/// Imports one bidder of period 2026-11 (deposit paid on 11-05, not won, refunded on 11-20)
/// with `hotline bidders import`, in the auction system's export format.
pub fn import_one_bidder(dir: &Path, data: &Path, code: &str, mobile: &str) -> Result<()> {
    let csv = dir.join("bidders.csv");
    std::fs::write(
        &csv,
        format!(
            "申请编码,类型,姓名/名称,证件号码,手机号,保证金状态,保证金缴纳日期,保证金金额,激活状态,竞价结果,成交价,缴款状态,退款状态,退款日期,退款失败原因\n\
             {code},个人,李四,120101199001011239,{mobile},已缴纳,2026-11-05,5000,是,未成交,,,已退款,2026-11-20,\n"
        ),
    )?;
    let out = run(
        hotline(&[
            "--data-dir",
            data.to_str().expect("utf-8 path"),
            "bidders",
            "import",
            csv.to_str().expect("utf-8 path"),
            "--period",
            "2026-11",
        ]),
        None,
    )?;
    if !out.status.success() {
        bail!("import: {}{}", text(&out.stdout), text(&out.stderr));
    }
    Ok(())
}
