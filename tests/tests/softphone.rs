//! Real softphones as the agents' seats: PJSIP 2.15 (pjsua2 from PyPI, driven by
//! `tests/pjsua/seat.py`) registers with digest, over UDP, over TCP and from behind NAT, and
//! is offered a trunk call through the real binary. It answers; the caller and the agent hear
//! each other (each side's tone checked by energy and pitch); a digit the caller keys reaches
//! the agent (RFC 4733); the agent puts the caller on hold and takes the call back
//! (re-INVITE, RFC 3264 §8.4); the caller's BYE ends the call at the phone. An agent
//! blind-transfers the caller to a colleague with PJSIP's own REFER; the ACD queue hands an
//! IVR caller to a PJSIP agent; and click-to-call rings the PJSIP agent, then the customer.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hotline_tests::caller::{Caller, rms, tone};
use hotline_tests::{client, field, hotline, init_printed, ivr_config, login, run, serve, text};
use serde_json::Value;
use sqlx::Connection;

const SEAT_DID: &str = "02212345";
/// The agent's voice: a 600 Hz tone; the caller's: 1,000 Hz.
const SEAT_HZ: f64 = 600.0;
const CALLER_HZ: f64 = 1000.0;

/// The Python of the venv `scripts/test.sh` makes for pjsua2 (tests/pjsua/requirements.txt).
fn python() -> Result<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("pjsua/.venv/bin/python");
    anyhow::ensure!(
        p.exists(),
        "{} is missing: scripts/test.sh installs pjsua2-python there",
        p.display()
    );
    Ok(p)
}

/// The softphone process (one PJSIP account per seat): its events (one JSON object per
/// line), those read but not yet asked for, and its command input.
struct Phone {
    child: Child,
    stdin: ChildStdin,
    events: mpsc::Receiver<Value>,
    pending: Vec<Value>,
}

impl Phone {
    /// Registers `seats` (number, password, the tone its agent speaks) at `sip`.
    fn start(
        sip: SocketAddr,
        transport: &str,
        dir: &Path,
        seats: &[(&str, &str, f64)],
    ) -> Result<Phone> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        for (seat, _, hz) in seats {
            let mut w = hound::WavWriter::create(dir.join(format!("{seat}.wav")), spec)?;
            for s in tone(&[*hz], 2000, 8000.0) {
                w.write_sample(s)?;
            }
            w.finalize()?;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("pjsua/seat.py");
        let mut child = Command::new(python()?)
            .arg(script)
            .args([&sip.to_string(), transport])
            .arg(dir)
            .args(seats.iter().map(|(seat, pw, _)| format!("{seat}:{pw}")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("pjsua.log"))?)
            .spawn()
            .context("starting the PJSIP softphone")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        Ok(Phone {
            child,
            stdin,
            events,
            pending: Vec::new(),
        })
    }

    /// The first event of `seat` (any seat when empty) named `name` not yet taken, within
    /// 20 s; events of other seats or names stay for later.
    fn wait(&mut self, seat: &str, name: &str) -> Result<Value> {
        let hit = |v: &Value| v["event"] == name && (seat.is_empty() || v["seat"] == seat);
        if let Some(i) = self.pending.iter().position(hit) {
            return Ok(self.pending.remove(i));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let v = self
                .events
                .recv_timeout(left)
                .with_context(|| format!("the softphone did not report {seat} {name}"))?;
            if v["event"] == "error" {
                bail!("the softphone: {v}");
            }
            if hit(&v) {
                return Ok(v);
            }
            self.pending.push(v);
        }
    }

    /// Whether `seat` has reported `name` by now (without waiting); the event is taken.
    fn reported(&mut self, seat: &str, name: &str) -> bool {
        self.pending.extend(self.events.try_iter());
        let hit = |v: &Value| v["event"] == name && v["seat"] == seat;
        match self.pending.iter().position(hit) {
            Some(i) => {
                self.pending.remove(i);
                true
            }
            None => false,
        }
    }

    /// The next "media" event of `seat` with `status`.
    fn wait_media(&mut self, seat: &str, status: &str) -> Result<()> {
        while self.wait(seat, "media")?["status"] != status {}
        Ok(())
    }

    /// Stops the softphone (which completes its recordings).
    fn quit(&mut self) -> Result<()> {
        self.send("quit")?;
        self.wait("", "stopped")?;
        Ok(())
    }

    fn send(&mut self, command: &str) -> Result<()> {
        writeln!(self.stdin, "{command}")?;
        Ok(self.stdin.flush()?)
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.send("quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The power of `freq` in `s` (sampled at `rate`), by the Goertzel algorithm.
fn power_at(s: &[i16], rate: f64, freq: f64) -> f64 {
    let c = 2.0 * (2.0 * std::f64::consts::PI * freq / rate).cos();
    let (mut a, mut b) = (0.0, 0.0);
    for &x in s {
        let v = f64::from(x) + c * a - b;
        b = a;
        a = v;
    }
    (a * a + b * b - c * a * b) / s.len().max(1) as f64
}

/// The binary with a DID routed to seat 8001, the trunk on 127.0.0.1, and the seats'
/// passwords that `init` printed.
struct Setup {
    dir: tempfile::TempDir,
    _server: hotline_tests::Server,
    sip: SocketAddr,
    passwords: Vec<String>,
}

fn start(rtp: (u16, u16)) -> Result<Setup> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().context("path")?;
    let out = run(hotline(&["init", "--data-dir", d]), None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let passwords = ["seat 8001:", "seat 8002:"]
        .iter()
        .map(|label| field(&printed, label).context("seat password"))
        .collect::<Result<_>>()?;
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nroutes = [{{ did = \"{SEAT_DID}\", target = \"seat:8001\" }}]\n\
             [sip.trunk]\npeers = [{{ name = \"e1\", address = \"127.0.0.1/32\" }}]\n\
             [sip.rtp]\nport_min = {}\nport_max = {}\n",
            rtp.0, rtp.1
        ),
    )?;
    let server = serve(&config, Path::new(d))?;
    let sip = server.sip.parse()?;
    Ok(Setup {
        dir,
        _server: server,
        sip,
        passwords,
    })
}

/// The caller talks for 2 s and must hear `hz` (the agent's tone) in the second half.
async fn hears(caller: &mut Caller, hz: f64) -> Result<()> {
    let heard = caller.talk(&tone(&[CALLER_HZ], 2000, 8000.0)).await?;
    let tail = &heard.samples[heard.samples.len() / 2..];
    assert!(
        rms(tail) > 1000.0,
        "the caller hears an agent: rms {}",
        rms(tail)
    );
    assert!(
        power_at(tail, 8000.0, hz) > 20.0 * power_at(tail, 8000.0, CALLER_HZ),
        "what the caller hears is the agent's {hz} Hz"
    );
    Ok(())
}

/// The 20 ms stretches of what `seat`'s phone recorded that carry sound, and the recording's
/// sample rate (PJSIP's own clock rate). The phone must have quit.
fn heard_at(dir: &Path, seat: &str) -> Result<(Vec<i16>, f64)> {
    let mut r = hound::WavReader::open(dir.join(format!("{seat}.heard.wav")))?;
    let rate = f64::from(r.spec().sample_rate);
    let recorded: Vec<i16> = r.samples::<i16>().collect::<Result<_, _>>()?;
    let loud = recorded
        .chunks(rate as usize / 50)
        .filter(|c| rms(c) > 500.0)
        .flatten()
        .copied()
        .collect();
    Ok((loud, rate))
}

/// What `seat`'s phone recorded holds the caller's tone for at least 1 s.
fn recorded_the_caller(dir: &Path, seat: &str) -> Result<()> {
    let (loud, rate) = heard_at(dir, seat)?;
    assert!(
        loud.len() as f64 > rate,
        "{seat} heard the caller for at least 1 s ({} samples)",
        loud.len()
    );
    assert!(
        power_at(&loud, rate, CALLER_HZ) > 20.0 * power_at(&loud, rate, SEAT_HZ),
        "what {seat} hears is the caller's 1,000 Hz"
    );
    Ok(())
}

async fn a_call_to_a_pjsip_seat(transport: &str, rtp: (u16, u16)) -> Result<()> {
    let s = start(rtp)?;
    let mut phone = Phone::start(
        s.sip,
        transport,
        s.dir.path(),
        &[("8001", &s.passwords[0], SEAT_HZ)],
    )?;
    assert_eq!(phone.wait("8001", "registered")?["code"], 200);
    // What the registrar keeps: the Contact the phone gave, the address it came from.
    let url = format!(
        "sqlite://{}",
        s.dir.path().join("data/hotline.db").display()
    );
    let mut db = sqlx::SqliteConnection::connect(&url).await?;
    let (contact, source): (String, String) =
        sqlx::query_as("SELECT contact, source FROM sip_bindings WHERE seat = '8001'")
            .fetch_one(&mut db)
            .await?;
    assert!(source.starts_with("127.0.0.1:"), "{source}");
    assert_eq!(
        contact.contains("10.0.0.5"),
        transport == "udp-nat",
        "{contact}"
    );

    let mut caller = Caller::call(s.sip, SEAT_DID, "13912345678", true).await?;
    phone.wait("8001", "incoming")?;
    phone.wait("8001", "confirmed")?;
    hears(&mut caller, SEAT_HZ).await?;

    // A digit from the caller reaches the agent's phone as an RFC 4733 event.
    caller.key('5').await?;
    assert_eq!(phone.wait("8001", "dtmf")?["digit"], "5");

    // The agent holds the caller and takes the call back: both re-INVITEs answered.
    phone.send("8001 hold")?;
    phone.wait_media("8001", "local_hold")?;
    phone.send("8001 unhold")?;
    phone.wait_media("8001", "active")?;

    caller.bye().await?;
    let gone = phone.wait("8001", "disconnected")?;
    assert_eq!(gone["code"], 200, "{gone}");
    phone.quit()?;
    recorded_the_caller(s.dir.path(), "8001")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pjsip_seat_over_udp_takes_a_trunk_call() -> Result<()> {
    a_call_to_a_pjsip_seat("udp", (41000, 41249)).await
}

/// The phone believes it is 10.0.0.5 (a private address behind NAT): Contact and SDP name
/// it; every request and the media must still reach it where it really is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pjsip_seat_behind_nat_takes_a_trunk_call() -> Result<()> {
    a_call_to_a_pjsip_seat("udp-nat", (42000, 42249)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pjsip_seat_over_tcp_takes_a_trunk_call() -> Result<()> {
    a_call_to_a_pjsip_seat("tcp", (41250, 41499)).await
}

/// The agent at 8001 transfers the caller to 8002 with PJSIP's own REFER (RFC 3515): the
/// transfer's NOTIFYs reach 8001, 8002 rings and answers, and the caller now hears 8002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pjsip_seat_blind_transfers_the_caller_to_another_pjsip_seat() -> Result<()> {
    const OTHER_HZ: f64 = 1400.0;
    let s = start((41500, 41749))?;
    let mut phone = Phone::start(
        s.sip,
        "udp",
        s.dir.path(),
        &[
            ("8001", &s.passwords[0], SEAT_HZ),
            ("8002", &s.passwords[1], OTHER_HZ),
        ],
    )?;
    phone.wait("8001", "registered")?;
    phone.wait("8002", "registered")?;
    let mut caller = Caller::call(s.sip, SEAT_DID, "13912345678", true).await?;
    phone.wait("8001", "confirmed")?;
    hears(&mut caller, SEAT_HZ).await?;

    phone.send(&format!("8001 xfer sip:8002@{}", s.sip))?;
    let incoming = phone.wait("8002", "incoming")?;
    assert!(
        incoming["remote"]
            .as_str()
            .is_some_and(|r| r.contains("13912345678")),
        "8002 sees the caller's number: {incoming}"
    );
    phone.wait("8002", "confirmed")?;
    loop {
        let t = phone.wait("8001", "transfer")?;
        if t["final"] == true {
            assert_eq!(t["code"], 200, "{t}");
            break;
        }
    }
    // The transferor leaves (RFC 5589 §6.1), unless PJSIP has already.
    phone.send("8001 hangup")?;
    phone.wait("8001", "disconnected")?;
    hears(&mut caller, OTHER_HZ).await?;

    caller.bye().await?;
    assert_eq!(phone.wait("8002", "disconnected")?["code"], 200);
    phone.quit()?;
    recorded_the_caller(s.dir.path(), "8002")
}

/// The caller goes through the IVR (the all-day default flow) and keys 0; the ACD offers
/// the call to the logged-in, ready agent, whose seat is a PJSIP phone; they talk, the agent
/// hangs up, and the caller hears the survey.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_hands_an_ivr_caller_to_a_pjsip_agent() -> Result<()> {
    const IVR_DID: &str = "02296077";
    let dir = tempfile::tempdir()?;
    let (data, printed) = init_printed(dir.path())?;
    let admin = field(&printed, "password:").context("admin password")?;
    let seat_pw = field(&printed, "seat 8001:").context("seat password")?;
    let config = ivr_config(dir.path(), IVR_DID, (41750, 41999), "")?;
    let server = serve(&config, &data)?;
    let sip: SocketAddr = server.sip.parse()?;
    let mut phone = Phone::start(sip, "udp", dir.path(), &[("8001", &seat_pw, SEAT_HZ)])?;
    phone.wait("8001", "registered")?;
    let c = client();
    let csrf = login(&c, &server, "admin", &admin).await?;
    hotline_tests::agent_ready(&c, &server, &csrf, "8001").await?;

    let mut caller = Caller::call(sip, IVR_DID, "13900000042", true).await?;
    // The welcome cannot be interrupted: key 0 until the menu takes it and the phone rings.
    let mut offered = false;
    for _ in 0..60 {
        caller.key('0').await?;
        caller.hear_for(Duration::from_millis(500)).await?;
        if phone.reported("8001", "incoming") {
            offered = true;
            break;
        }
    }
    assert!(offered, "the agent's phone never rang");
    phone.wait("8001", "confirmed")?;
    hears(&mut caller, SEAT_HZ).await?;

    // The agent hangs up; the caller stays for the survey.
    phone.send("8001 hangup")?;
    phone.wait("8001", "disconnected")?;
    let survey = caller.hear(50).await?;
    assert!(survey.rms() > 500.0, "the survey question is heard");
    caller.key('1').await?;
    caller.wait_bye().await?;
    phone.quit()?;
    recorded_the_caller(dir.path(), "8001")
}

/// Click-to-call from the agent desk: the gateway rings the agent's PJSIP phone first, then
/// the customer over the trunk (a sipp phone that answers, speaks sipp's A-law recording for
/// 7.5 s and hangs up); the agent hears the customer, and the customer's BYE reaches the
/// agent's phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_call_rings_the_pjsip_agent_then_the_customer() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (data, printed) = init_printed(dir.path())?;
    let admin = field(&printed, "password:").context("admin password")?;
    let seat_pw = field(&printed, "seat 8001:").context("seat password")?;
    let customer_port = hotline_tests::free_udp_port().to_string();
    let config = hotline_tests::click_to_call_config(dir.path(), &customer_port, (42250, 42499))?;
    let server = serve(&config, &data)?;
    let sip: SocketAddr = server.sip.parse()?;
    let mut phone = Phone::start(sip, "udp", dir.path(), &[("8001", &seat_pw, SEAT_HZ)])?;
    phone.wait("8001", "registered")?;
    let customer =
        hotline_tests::click_to_call_a_speaking_customer(&server, &customer_port, &admin).await?;
    phone.wait("8001", "incoming")?;
    phone.wait("8001", "confirmed")?;
    customer.success().await?;
    assert_eq!(phone.wait("8001", "disconnected")?["code"], 200);
    phone.quit()?;
    let (loud, rate) = heard_at(dir.path(), "8001")?;
    assert!(
        loud.len() as f64 > 2.0 * rate,
        "the agent heard the customer speak for at least 2 s ({} samples)",
        loud.len()
    );
    Ok(())
}
