//! Test support: a gateway on 127.0.0.1 with a random port and a fresh SQLite database, a
//! raw SIP client over UDP, and a runner for the real `sipp`. Everything waits on an event
//! (a datagram, a process exit, a published event) with a bounded timeout; nothing sleeps.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hotline_core::events::{CallEvent, Event, EventSink};
use hotline_core::id::SeededRng;
use hotline_core::metrics::Registry;
use hotline_core::{Clock, SystemClock};
use hotline_sip_gateway::{
    AppEvent, DidRoute, Gateway, GatewayConfig, GatewayDeps, GatewayHandle, TrunkPeer, add_seat,
};
use hotline_testkit::{Backend, ExternalDb};
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub const T: Duration = Duration::from_secs(20);
pub const PASSWORD: &str = "seat-password-1";
pub const DID: &str = "02212345";

/// An event sink tests can wait on.
#[derive(Debug, Default)]
pub struct TestSink {
    pub events: Mutex<Vec<Event>>,
    notify: Notify,
}

impl EventSink for TestSink {
    fn publish(&self, event: Event) {
        self.events.lock().unwrap().push(event);
        self.notify.notify_waiters();
    }
}

impl TestSink {
    /// Waits until an event matching `pred` has been published; returns it.
    pub async fn wait_for(&self, pred: impl Fn(&CallEvent) -> bool) -> Result<CallEvent> {
        let fut = async {
            loop {
                let notified = self.notify.notified();
                if let Some(e) = self.events.lock().unwrap().iter().find_map(|e| match e {
                    Event::Call(c) if pred(c) => Some(c.clone()),
                    _ => None,
                }) {
                    return e;
                }
                notified.await;
            }
        };
        tokio::time::timeout(T, fut)
            .await
            .context("timed out waiting for a call event")
    }

    pub fn call_events(&self) -> Vec<CallEvent> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Call(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }
}

pub struct Harness {
    pub handle: Option<GatewayHandle>,
    pub addr: SocketAddr,
    pub db: Option<ExternalDb>,
    pub pool: sqlx::AnyPool,
    pub metrics: Registry,
    pub events: Arc<TestSink>,
    pub cancel: CancellationToken,
    /// Application calls (DIDs routed to `ivr`) as the gateway reports them.
    pub app: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<AppEvent>>,
}

pub fn base_config() -> GatewayConfig {
    let mut c = GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..GatewayConfig::default()
    };
    c.trunk.peers = vec![TrunkPeer {
        name: "e1".into(),
        address: "127.0.0.1/32".into(),
        port: None,
    }];
    c.routes = vec![DidRoute {
        did: DID.into(),
        target: "seat:8001".into(),
    }];
    // sipp 3.6 answers only MD5 challenges and takes the first WWW-Authenticate.
    c.auth.algorithms = vec!["MD5".into(), "SHA-256".into()];
    c.rtp.port_min = 30000;
    c.rtp.port_max = 39998;
    c.qualify_interval_secs = 0;
    c
}

impl Harness {
    pub async fn start(config: GatewayConfig) -> Result<Harness> {
        // RUST_LOG=… shows the gateway's and rsipstack's logs when a test needs reading.
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
        let db = ExternalDb::create(Backend::Sqlite)
            .await?
            .context("sqlite test database")?;
        let pool = db.db.pool.clone();
        for n in ["8001", "8002"] {
            add_seat(&pool, n, PASSWORD, &config.realm, SystemClock.now_ms()).await?;
        }
        Self::start_on(config, db, Arc::new(SystemClock)).await
    }

    pub async fn start_on(
        config: GatewayConfig,
        db: ExternalDb,
        clock: Arc<dyn Clock>,
    ) -> Result<Harness> {
        let pool = db.db.pool.clone();
        let metrics = Registry::new();
        let events = Arc::new(TestSink::default());
        let cancel = CancellationToken::new();
        let (app_tx, app_rx) = tokio::sync::mpsc::unbounded_channel();
        let handle = Gateway::start(
            config.clone(),
            GatewayDeps {
                pool: pool.clone(),
                metrics: metrics.clone(),
                events: events.clone(),
                clock,
                rng: Arc::new(SeededRng::new(std::process::id().into())),
                cancel: cancel.clone(),
                app: Some(app_tx),
                tap: None,
                writes: None,
            },
        )
        .await?;
        Ok(Harness {
            addr: handle.local_addr(),
            handle: Some(handle),
            db: Some(db),
            pool,
            metrics,
            events,
            cancel,
            app: tokio::sync::Mutex::new(app_rx),
        })
    }

    /// The next application event that `pred` accepts (others are skipped), within `T`.
    pub async fn app_event(&self, pred: impl Fn(&AppEvent) -> bool) -> Result<AppEvent> {
        let mut rx = self.app.lock().await;
        tokio::time::timeout(T, async {
            loop {
                match rx.recv().await {
                    Some(e) if pred(&e) => return Ok(e),
                    Some(_) => {}
                    None => anyhow::bail!("the gateway stopped"),
                }
            }
        })
        .await
        .context("timed out waiting for an application event")?
    }

    pub fn handle(&self) -> &GatewayHandle {
        self.handle.as_ref().unwrap()
    }

    /// Waits until the gateway holds `n` registered contacts.
    pub async fn wait_registrations(&self, n: usize) -> Result<()> {
        let mut rx = self.handle().registrations();
        tokio::time::timeout(T, async {
            loop {
                if self.handle().status().await?.registrations == n {
                    return Ok::<_, anyhow::Error>(());
                }
                rx.changed().await?;
            }
        })
        .await
        .context("timed out waiting for registrations")?
    }

    /// The value of one metric line, e.g. `hotline_sip_auth_blocks_total`.
    pub fn metric(&self, series: &str) -> i64 {
        self.metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    }

    pub async fn stop(mut self) -> Result<ExternalDb> {
        self.cancel.cancel();
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(T, h.stopped()).await?;
        }
        Ok(self.db.take().unwrap())
    }

    pub async fn finish(self) -> Result<()> {
        self.stop().await?.release().await
    }
}

/// A free UDP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A parsed SIP response as a test sees it.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }
    pub fn headers(&self, name: &str) -> Vec<String> {
        let head = self.text.split("\r\n\r\n").next().unwrap_or("");
        head.split("\r\n")
            .skip(1)
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
            .collect()
    }
    pub fn body(&self) -> &str {
        self.text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }
}

/// A raw SIP endpoint over UDP.
pub struct Client {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub local: SocketAddr,
}

impl Client {
    pub async fn new(server: SocketAddr) -> Result<Client> {
        Self::bind("127.0.0.1:0", server).await
    }

    pub async fn bind(local: &str, server: SocketAddr) -> Result<Client> {
        let sock = UdpSocket::bind(local).await?;
        let local = sock.local_addr()?;
        Ok(Client {
            sock,
            server,
            local,
        })
    }

    pub async fn send(&self, data: &[u8]) -> Result<()> {
        self.sock.send_to(data, self.server).await?;
        Ok(())
    }

    /// The next SIP message (request or response) as text.
    pub async fn recv_text(&self) -> Result<String> {
        let mut buf = vec![0u8; 65536];
        let (n, _) = tokio::time::timeout(T, self.sock.recv_from(&mut buf))
            .await
            .context("timed out waiting for a SIP message")??;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// The next response whose CSeq method is `method`, skipping others (e.g. 100 Trying
    /// when `skip_provisional`).
    pub async fn recv_response(&self, method: &str, skip_provisional: bool) -> Result<Resp> {
        loop {
            let text = self.recv_text().await?;
            let Some(rest) = text.strip_prefix("SIP/2.0 ") else {
                continue;
            };
            let status: u16 = rest.get(..3).unwrap_or("0").parse()?;
            let r = Resp { status, text };
            if !r.header("CSeq").is_some_and(|c| c.ends_with(method)) {
                continue;
            }
            if skip_provisional && status < 200 {
                continue;
            }
            return Ok(r);
        }
    }

    /// Sends an OPTIONS and waits for its 200: the gateway handles one source's messages in
    /// order, so everything sent before has been processed when this returns.
    pub async fn barrier(&self) -> Result<()> {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos();
        let m = format!(
            "OPTIONS sip:{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKbar{n};rport\r\nFrom: <sip:b@{me}>;tag=b{n}\r\nTo: <sip:{srv}>\r\nCall-ID: barrier-{n}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            srv = self.server,
            me = self.local
        );
        self.send(m.as_bytes()).await?;
        loop {
            let r = self.recv_response("OPTIONS", true).await?;
            if r.header("Call-ID").as_deref() == Some(&format!("barrier-{n}@test")) {
                return Ok(());
            }
        }
    }

    /// A REGISTER for `seat` with optional Authorization and Expires.
    pub fn register_msg(
        &self,
        seat: &str,
        cseq: u32,
        auth: Option<&str>,
        expires: Option<&str>,
        contact: &str,
    ) -> String {
        let mut m = format!(
            "REGISTER sip:{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKreg{seat}x{cseq}x{port};rport\r\nFrom: <sip:{seat}@{srv}>;tag=r{seat}\r\nTo: <sip:{seat}@{srv}>\r\nCall-ID: reg-{seat}-{me}\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\nMax-Forwards: 70\r\n",
            srv = self.server,
            me = self.local,
            port = self.local.port(),
        );
        if let Some(a) = auth {
            m.push_str(&format!("Authorization: {a}\r\n"));
        }
        if let Some(e) = expires {
            m.push_str(&format!("Expires: {e}\r\n"));
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m
    }

    /// REGISTER, answer the challenge for `alg` with `password`; returns the final response.
    pub async fn register(
        &self,
        seat: &str,
        password: &str,
        alg: &str,
        cseq: &mut u32,
        expires: Option<&str>,
    ) -> Result<Resp> {
        let contact = format!("<sip:{seat}@{}>", self.local);
        self.register_contact(seat, password, alg, cseq, expires, &contact)
            .await
    }

    /// [`Client::register`] with the Contact given: one the phone cannot be reached at, for
    /// a phone behind NAT.
    pub async fn register_contact(
        &self,
        seat: &str,
        password: &str,
        alg: &str,
        cseq: &mut u32,
        expires: Option<&str>,
        contact: &str,
    ) -> Result<Resp> {
        *cseq += 1;
        self.send(
            self.register_msg(seat, *cseq, None, expires, contact)
                .as_bytes(),
        )
        .await?;
        let ch = self.recv_response("REGISTER", true).await?;
        if ch.status != 401 {
            return Ok(ch);
        }
        let www = ch
            .headers("WWW-Authenticate")
            .into_iter()
            .find(|h| h.contains(&format!("algorithm={alg}")))
            .context("no challenge for the algorithm")?;
        let nonce = param(&www, "nonce").context("nonce")?;
        let realm = param(&www, "realm").context("realm")?;
        let algorithm = hotline_sip_gateway::digest::Algorithm::parse(alg).context("alg")?;
        let uri = format!("sip:{}", self.server);
        let auth = hotline_sip_gateway::digest::client_response(
            algorithm, seat, password, &realm, &nonce, "REGISTER", &uri, "abc123",
        );
        *cseq += 1;
        self.send(
            self.register_msg(seat, *cseq, Some(&auth), expires, contact)
                .as_bytes(),
        )
        .await?;
        self.recv_response("REGISTER", true).await
    }
}

/// A quoted or bare parameter of a challenge header.
pub fn param(h: &str, name: &str) -> Option<String> {
    let i = h.find(&format!("{name}="))?;
    let rest = &h[i + name.len() + 1..];
    Some(match rest.strip_prefix('"') {
        Some(r) => r.split('"').next()?.to_string(),
        None => rest.split([',', ' ']).next()?.to_string(),
    })
}

pub fn scenario(name: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "sipp", name]
        .iter()
        .collect();
    p.display().to_string()
}

/// A running sipp.
pub struct Sipp {
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Sipp {
    /// Starts sipp against `server` with the scenario and extra args; its working directory
    /// is a temporary one so that its logs stay out of the tree.
    pub fn spawn(server: SocketAddr, scenario_name: &str, args: &[&str]) -> Result<Sipp> {
        let dir = tempfile::tempdir()?;
        let child = tokio::process::Command::new("sipp")
            .arg(server.to_string())
            .arg("-sf")
            .arg(scenario(scenario_name))
            .args([
                "-nostdin",
                "-timeout",
                "30s",
                "-timeout_error",
                "-trace_err",
            ])
            .args(args)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting sipp")?;
        Ok(Sipp { child, _dir: dir })
    }

    /// Waits for sipp to exit; fails unless it exited 0 (all calls successful).
    pub async fn success(mut self) -> Result<()> {
        let status = tokio::time::timeout(Duration::from_secs(40), self.child.wait())
            .await
            .context("sipp did not finish")??;
        if !status.success() {
            let mut err = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut err).await;
            }
            let logs: Vec<String> = std::fs::read_dir(self._dir.path())?
                .filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect();
            bail!("sipp failed: {status}: {err}\n{}", logs.join("\n"));
        }
        Ok(())
    }
}

/// Registers `seat` with sipp from local port `port` (so a sipp UAS can later listen there).
pub async fn sipp_register(
    server: SocketAddr,
    seat: &str,
    password: &str,
    port: u16,
    expect: u16,
) -> Result<()> {
    let port = port.to_string();
    let scenario = if expect == 200 {
        "register.xml"
    } else {
        "register_refused.xml"
    };
    Sipp::spawn(
        server,
        scenario,
        &[
            "-m", "1", "-p", &port, "-s", seat, "-au", seat, "-ap", password,
        ],
    )?
    .success()
    .await
}

/// A sipp seat phone on its registered UDP `port`: runs `scenario` for one call, answering
/// with payload type `pt` / `codec` and echoing the call's RTP from a fresh media port;
/// `extra` goes on sipp's command line.
pub fn echo_seat(
    server: SocketAddr,
    scenario: &str,
    port: u16,
    pt: &str,
    codec: &str,
    extra: &[&str],
) -> Result<Sipp> {
    let (port, mp) = (port.to_string(), free_udp_port().to_string());
    let mut args = vec![
        "-m",
        "1",
        "-p",
        &port,
        "-rtp_echo",
        "-mp",
        &mp,
        "-key",
        "pt",
        pt,
        "-key",
        "codec",
        codec,
    ];
    args.extend_from_slice(extra);
    Sipp::spawn(server, scenario, &args)
}

/// A raw-SIP seat phone registered as 8001 (MD5 digest).
pub async fn registered_seat(h: &Harness) -> Result<Client> {
    let seat = Client::new(h.addr).await?;
    let mut cseq = 0;
    let r = seat
        .register("8001", PASSWORD, "MD5", &mut cseq, None)
        .await?;
    anyhow::ensure!(r.status == 200, "seat 8001 not registered: {}", r.text);
    Ok(seat)
}

/// [`registered_seat`] and a trunk peer's client.
pub async fn seat_and_trunk(h: &Harness) -> Result<(Client, Client)> {
    Ok((registered_seat(h).await?, Client::new(h.addr).await?))
}

/// A trunk INVITE from `c` to the DID routed to seat 8001, offering `codec` and RFC 4733.
pub fn invite(c: &Client, n: u32, rtp_port: u16, codec: (u8, &str)) -> String {
    let sdp = format!(
        "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {name}/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
        pt = codec.0,
        name = codec.1
    );
    format!(
        "INVITE sip:{DID}@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKinv{n};rport\r\nFrom: <sip:1390000{n:04}@{me}>;tag=f{n}\r\nTo: <sip:{DID}@{srv}>\r\nCall-ID: call-{n}@test\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len(),
        srv = c.server,
        me = c.local
    )
}

/// Answers a request received as `text` with `status`, echoing the transaction headers;
/// adds a To tag and `body` (SDP) when given.
pub fn answer(text: &str, status: &str, tag: Option<&str>, body: &str) -> String {
    let mut r = format!("SIP/2.0 {status}\r\n");
    for line in text.split("\r\n").skip(1) {
        let name = line.split(':').next().unwrap_or("");
        if ["Via", "From", "Call-ID", "CSeq"].contains(&name) {
            r.push_str(line);
            r.push_str("\r\n");
        } else if name == "To" {
            r.push_str(line);
            if let Some(t) = tag {
                r.push_str(&format!(";tag={t}"));
            }
            r.push_str("\r\n");
        }
    }
    if !body.is_empty() {
        r.push_str("Contact: <sip:8001@127.0.0.1>\r\nContent-Type: application/sdp\r\n");
    }
    r.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    r
}

/// The next request with `method`, skipping anything else.
pub async fn recv_request(c: &Client, method: &str) -> Result<String> {
    loop {
        let m = c.recv_text().await?;
        if m.starts_with(&format!("{method} ")) {
            return Ok(m);
        }
    }
}
