//! A real softphone as the agent's seat: PJSIP 2.15 (pjsua2 from PyPI, driven by
//! `tests/pjsua/seat.py`) registers with digest, over UDP and over TCP, and is offered a trunk
//! call through the real binary. It answers; the caller and the agent hear each other (each
//! side's tone checked by energy and pitch); a digit the caller keys reaches the agent (RFC
//! 4733); the agent puts the caller on hold and takes the call back (re-INVITE, RFC 3264
//! §8.4); the caller's BYE ends the call at the phone.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hotline_tests::caller::{Caller, rms, tone};
use hotline_tests::{field, hotline, run, serve, text};
use serde_json::Value;

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

/// The softphone process: its events (one JSON object per line) and its command input.
struct Phone {
    child: Child,
    stdin: ChildStdin,
    events: mpsc::Receiver<Value>,
}

impl Phone {
    fn start(sip: SocketAddr, password: &str, transport: &str, dir: &Path) -> Result<Phone> {
        let play = dir.join("agent.wav");
        let mut w = hound::WavWriter::create(
            &play,
            hound::WavSpec {
                channels: 1,
                sample_rate: 8000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            },
        )?;
        for s in tone(&[SEAT_HZ], 2000, 8000.0) {
            w.write_sample(s)?;
        }
        w.finalize()?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("pjsua/seat.py");
        let mut child = Command::new(python()?)
            .arg(script)
            .args([&sip.to_string(), "8001", password, transport])
            .arg(&play)
            .arg(dir.join("heard.wav"))
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
        })
    }

    /// The next event named `name` (others are skipped), within 20 s.
    fn wait(&self, name: &str) -> Result<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let v = self
                .events
                .recv_timeout(left)
                .with_context(|| format!("the softphone did not report {name}"))?;
            if v["event"] == "error" {
                bail!("softphone: {v}");
            }
            if v["event"] == name {
                return Ok(v);
            }
        }
    }

    /// The next "media" event with `status`.
    fn wait_media(&self, status: &str) -> Result<()> {
        loop {
            if self.wait("media")?["status"] == status {
                return Ok(());
            }
        }
    }

    /// Stops the softphone (which completes its recording).
    fn quit(&mut self) -> Result<()> {
        self.send("quit")?;
        self.wait("stopped")?;
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

async fn a_call_to_a_pjsip_seat(transport: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().context("path")?;
    let out = run(hotline(&["init", "--data-dir", d]), None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let password = field(&text(&out.stdout), "seat 8001:").context("seat password")?;
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nroutes = [{{ did = \"{SEAT_DID}\", target = \"seat:8001\" }}]\n\
             [sip.trunk]\npeers = [{{ name = \"e1\", address = \"127.0.0.1/32\" }}]\n"
        ),
    )?;
    let server = serve(&config, Path::new(d))?;
    let sip: SocketAddr = server.sip.parse()?;

    let mut phone = Phone::start(sip, &password, transport, dir.path())?;
    assert_eq!(phone.wait("registered")?["code"], 200);

    let mut caller = Caller::call(sip, SEAT_DID, "13912345678", true).await?;
    phone.wait("incoming")?;
    phone.wait("confirmed")?;
    // Both talk for 2 s; the caller hears the agent's tone, and PJSIP records the caller's.
    let heard = caller.talk(&tone(&[CALLER_HZ], 2000, 8000.0)).await?;
    let tail = &heard.samples[heard.samples.len() / 2..];
    assert!(
        rms(tail) > 1000.0,
        "the caller hears the agent: rms {}",
        rms(tail)
    );
    assert!(
        power_at(tail, 8000.0, SEAT_HZ) > 20.0 * power_at(tail, 8000.0, CALLER_HZ),
        "what the caller hears is the agent's 600 Hz"
    );

    // A digit from the caller reaches the agent's phone as an RFC 4733 event.
    caller.key('5').await?;
    assert_eq!(phone.wait("dtmf")?["digit"], "5");

    // The agent holds the caller and takes the call back: both re-INVITEs answered.
    phone.send("hold")?;
    phone.wait_media("local_hold")?;
    phone.send("unhold")?;
    phone.wait_media("active")?;

    caller.bye().await?;
    let gone = phone.wait("disconnected")?;
    assert_eq!(gone["code"], 200, "{gone}");

    // What the agent's phone recorded (at PJSIP's own clock rate) holds the caller's tone.
    phone.quit()?;
    let mut r = hound::WavReader::open(dir.path().join("heard.wav"))?;
    let rate = f64::from(r.spec().sample_rate);
    let recorded: Vec<i16> = r.samples::<i16>().collect::<Result<_, _>>()?;
    let loud: Vec<i16> = recorded
        .chunks(rate as usize / 50)
        .filter(|c| rms(c) > 500.0)
        .flatten()
        .copied()
        .collect();
    assert!(
        loud.len() as f64 > rate,
        "the agent heard the caller for at least 1 s ({} samples)",
        loud.len()
    );
    assert!(
        power_at(&loud, rate, CALLER_HZ) > 20.0 * power_at(&loud, rate, SEAT_HZ),
        "what the agent hears is the caller's 1,000 Hz"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pjsip_seat_over_udp_takes_a_trunk_call() -> Result<()> {
    a_call_to_a_pjsip_seat("udp").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pjsip_seat_over_tcp_takes_a_trunk_call() -> Result<()> {
    a_call_to_a_pjsip_seat("tcp").await
}
