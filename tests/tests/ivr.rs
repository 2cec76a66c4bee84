//! The caller's whole journey through the real binary: a trunk call to the IVR's DID hears
//! the welcome prompt, keys 2, an application code and the last four mobile digits and
//! hears the bidder's status, keys 0 and is bridged through the ACD to the agent's seat
//! (a sipp UAS that echoes RTP: the caller hears its own audio back), the seat hangs up,
//! the caller hears the survey and keys 1, and the rating is stored with the call and the
//! agent. Run once with RFC 4733 digits and once with in-band tones only.

use std::path::Path;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use hotline_tests::caller::{Caller, tone};
use hotline_tests::{
    Server, Sipp, client, field, free_udp_port, hotline, import_one_bidder, init_printed,
    ivr_config, login, run, serve, text,
};
use serde_json::{Value, json};
use sqlx::Connection;

const DID: &str = "02296077";
const CODE: &str = "2511000000042";
const MOBILE: &str = "13812340042";

/// The welcome prompt's length in 20 ms packets (it cannot be interrupted).
fn welcome_packets() -> Result<usize> {
    let wav = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ivr/prompts/zh-CN/msg/welcome.wav"),
    )?;
    let data = wav
        .windows(4)
        .position(|w| w == b"data")
        .context("data chunk")?;
    let bytes = u32::from_le_bytes(wav[data + 4..data + 8].try_into()?) as usize;
    Ok((bytes / 2).div_ceil(160))
}

async fn journey(rfc4733: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let out = run(hotline(&["init", "--data-dir", d]), None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let admin_pw = field(&stdout, "password:").context("admin password")?;
    let seat_pw = field(&stdout, "seat 8001:").context("seat password")?;

    // Bidder data the self-service menu reads (the auction system's export format).
    import_one_bidder(dir.path(), &data, CODE, MOBILE)?;

    let config = ivr_config(dir.path(), DID, (33000, 33999), "")?;
    let server = serve(&config, &data)?;
    let sip: std::net::SocketAddr = server.sip.parse()?;

    // The agent's seat registers; the agent logs in and is ready.
    let seat_port = free_udp_port().to_string();
    Sipp::spawn(
        &server.sip,
        "register.xml",
        &[
            "-m", "1", "-p", &seat_port, "-s", "8001", "-au", "8001", "-ap", &seat_pw,
        ],
    )?
    .success()
    .await?;
    let c = client();
    let csrf = login(&c, &server, "admin", &admin_pw).await?;
    hotline_tests::agent_ready(&c, &server, &csrf, "8001").await?;

    // The caller: welcome (not interruptible), then the menu.
    let mut caller = Caller::call(sip, DID, "13900000042", rfc4733).await?;
    let welcome = caller.hear(welcome_packets()?).await?;
    assert!(
        welcome.rms() > 500.0,
        "the welcome prompt is heard (rms {})",
        welcome.rms()
    );
    assert_eq!(welcome.ssrcs.len(), 1);
    caller.hear(10).await?; // into the menu prompt
    caller.key('2').await?;
    caller.hear(10).await?;
    caller.keys(&format!("{CODE}#")).await?;
    caller.hear(10).await?;
    caller.keys(&format!("{}#", &MOBILE[7..])).await?;
    // The status is spoken (deposit received on 11-05, refund done ...).
    let status = caller.hear(150).await?;
    assert!(
        status.rms() > 500.0,
        "the status is heard (rms {})",
        status.rms()
    );

    // Key 0 (again, until the menu after the status takes it) → queue → the seat rings.
    let seat = Sipp::echo_seat(
        &server.sip,
        "seat_uas_hangup.xml",
        &seat_port,
        "PCMA",
        &["-d", "8000"],
    )?;
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
    // The seat echoes: the caller hears its own tone back.
    let mut echoed = Vec::new();
    for chunk in tone(&[1000.0], 600, 6000.0).chunks(800) {
        caller.send_audio(chunk).await?;
        echoed.extend(caller.hear(5).await?.samples);
    }
    let loud = hotline_tests::caller::rms(&echoed);
    assert!(loud > 2000.0, "the seat hears the caller (echo rms {loud})");
    // The seat hangs up after -d; then the survey: key 1 until the gateway says goodbye.
    seat.success().await?;
    let survey = caller.hear(50).await?;
    assert!(survey.rms() > 500.0, "the survey question is heard");
    caller.key('1').await?;
    caller.wait_bye().await?;

    // Stored: the survey with call and agent, the call fact with the IVR path.
    let url = format!("sqlite://{}", data.join("hotline.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await?;
    // The rating was written when the key came, seconds before the goodbye ended.
    let rating = sqlx::query_as::<_, (String, String, String)>(
        "SELECT agent, queue, rating FROM crm_surveys",
    )
    .fetch_optional(&mut db)
    .await?;
    let (agent, queue, rating) = rating.context("no survey stored")?;
    assert_eq!(
        (agent.as_str(), queue.as_str(), rating.as_str()),
        ("8001", "hotline", "satisfied")
    );
    let (path, fact_agent, fact_recording): (String, Option<String>, Option<String>) =
        sqlx::query_as("SELECT ivr_path, agent, recording_id FROM crm_call_facts")
            .fetch_one(&mut db)
            .await?;
    assert!(
        path.contains("lookup>status"),
        "the status was reached: {path}"
    );
    assert_eq!(fact_agent.as_deref(), Some("8001"));

    // The whole call is recorded: stereo, caller left, what the caller heard right, as long
    // as the call.
    let (call_id, answered, ended): (String, i64, i64) =
        sqlx::query_as("SELECT id, answered_at, ended_at FROM sip_calls")
            .fetch_one(&mut db)
            .await?;
    let (state, rel, agent, duration_ms) =
        hotline_tests::finished_recording(&server, &mut db, &call_id).await?;
    assert_eq!((state.as_str(), agent.as_str()), ("finished", "8001"));
    let (rec_id,): (String,) = sqlx::query_as("SELECT id FROM recordings WHERE call_id = $1")
        .bind(&call_id)
        .fetch_one(&mut db)
        .await?;
    assert_eq!(
        fact_recording.as_deref(),
        Some(rec_id.as_str()),
        "the call fact links its recording"
    );
    let call_ms = ended - answered;
    assert!(
        (duration_ms - call_ms).abs() <= 40,
        "recording {duration_ms} ms, call {call_ms} ms"
    );
    let wav = hound::WavReader::open(data.join("recordings").join(&rel))?;
    let spec = wav.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = wav.into_samples::<i16>().collect::<Result<_, _>>()?;
    let (left, right): (Vec<i16>, Vec<i16>) = samples.chunks_exact(2).map(|f| (f[0], f[1])).unzip();
    assert!(
        (left.len() as i64 / 8 - call_ms).abs() <= 40,
        "{} samples for {call_ms} ms",
        left.len()
    );
    // The welcome (first 5 s): the caller is silent, the prompt is heard.
    let welcome = 8 * 5_000;
    assert!(hotline_tests::caller::rms(&right[..welcome]) > 500.0);
    assert!(hotline_tests::caller::rms(&left[..welcome]) < 50.0);
    // The caller's tone to the agent is on the left.
    let loudest_left = left
        .chunks(1600)
        .map(hotline_tests::caller::rms)
        .fold(0.0, f64::max);
    assert!(
        loudest_left > 3000.0,
        "caller's tone on the left: {loudest_left}"
    );
    if !server_alive(server) {
        bail!("the server died");
    }
    Ok(())
}

fn server_alive(mut server: Server) -> bool {
    server
        .child
        .try_wait()
        .map(|s| s.is_none())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_journey_with_rfc4733_digits() -> Result<()> {
    journey(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_journey_with_in_band_digits_only() -> Result<()> {
    journey(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_are_checked_and_reloaded_without_a_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let out_init = run(hotline(&["init", "--data-dir", d]), None)?;
    assert!(out_init.status.success(), "{}", text(&out_init.stderr));
    let out_init = out_init.stdout;
    let default_flow = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ivr/flows/default.toml"),
    )?;
    let flow_path = dir.path().join("flow.toml");
    std::fs::write(&flow_path, &default_flow)?;
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        format!("[ivr]\nflow = {:?}\n", flow_path.to_str().unwrap()),
    )?;
    let cfg = config.to_str().unwrap();
    let ivr = |cmd: &str| {
        run(
            hotline(&["--config", cfg, "--data-dir", d, "ivr", cmd]),
            None,
        )
    };

    let out = ivr("check")?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("OK"), "{}", text(&out.stdout));
    // Nothing is running yet: reload says so.
    let out = ivr("reload")?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("hotline.pid"),
        "{}",
        text(&out.stderr)
    );

    let server = Server::start(hotline(&[
        "--config",
        cfg,
        "serve",
        "--data-dir",
        d,
        "--http",
        "127.0.0.1:0",
        "--sip",
        "127.0.0.1:0",
    ]))?;
    let out = ivr("reload")?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    server.wait_log("IVR flow and prompts reloaded")?;

    // A broken flow is refused before anything is signalled, with the file and the node.
    std::fs::write(
        &flow_path,
        default_flow.replace("\"0\" = \"agent\"", "\"0\" = \"agnet\""),
    )?;
    let out = ivr("reload")?;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("flow.toml") && err.contains("agnet"),
        "the error names the file and the bad reference: {err}"
    );
    let health = client().get(server.url("/healthz")).send().await?;
    assert_eq!(health.status(), 200, "the server keeps serving");

    // The same from the console's admin page (HTTP): the broken flow is shown with its
    // error and refused; fixed, it is reloaded and audited.
    let c = client();
    let admin_pw = field(&text(&out_init), "password:").context("admin password")?;
    let csrf = login(&c, &server, "admin", &admin_pw).await?;
    let f: Value = c
        .get(server.url("/api/v1/ivr/flow"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(f["check"]["ok"], false, "{f}");
    assert!(
        f["check"]["error"].as_str().unwrap_or("").contains("agnet"),
        "{f}"
    );
    assert!(f["source"].as_str().unwrap_or("").contains("agnet"));
    let r = c
        .post(server.url("/api/v1/ivr/reload"))
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    assert!(r.text().await?.contains("仍使用当前流程"));
    std::fs::write(&flow_path, &default_flow)?;
    let r = c
        .post(server.url("/api/v1/ivr/reload"))
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await?;
    assert_eq!(body["ok"], true, "{body}");
    let audit = c
        .get(server.url("/api/v1/audit?action=ivr.reload"))
        .send()
        .await?
        .text()
        .await?;
    assert!(audit.contains("ivr:flow"), "{audit}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_no_answer_moves_the_call_to_the_next_agent() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (data, stdout) = init_printed(dir.path())?;
    let config = ivr_config(
        dir.path(),
        DID,
        (38000, 38999),
        "[ivr.acd]\nring_timeout_ms = 2000\n",
    )?;
    let server = serve(&config, &data)?;
    let sip: std::net::SocketAddr = server.sip.parse()?;
    let c = client();
    let csrf = login(
        &c,
        &server,
        "admin",
        &field(&stdout, "password:").context("pw")?,
    )
    .await?;
    // 8001 rings but never answers; 8002 answers and echoes. 8001 is ready first, so it is
    // the longest idle and rung first.
    let mut seats = Vec::new();
    for seat in ["8001", "8002"] {
        let port = free_udp_port().to_string();
        let pw = field(&stdout, &format!("seat {seat}:")).context("seat pw")?;
        Sipp::spawn(
            &server.sip,
            "register.xml",
            &["-m", "1", "-p", &port, "-s", seat, "-au", seat, "-ap", &pw],
        )?
        .success()
        .await?;
        let mut steps = vec![(
            format!("/api/v1/acd/agents/{seat}/login"),
            json!({"queues": ["hotline"]}),
        )];
        // (A login leaves the agent ready; 8002 steps away until 8001 rings.)
        steps.push(if seat == "8001" {
            (format!("/api/v1/acd/agents/{seat}/ready"), json!({}))
        } else {
            (
                format!("/api/v1/acd/agents/{seat}/not-ready"),
                json!({"reason": "培训"}),
            )
        });
        for (path, body) in steps {
            let r = c
                .post(server.url(&path))
                .header("x-csrf-token", &csrf)
                .json(&body)
                .send()
                .await?;
            assert_eq!(r.status(), 200, "{path}");
        }
        seats.push(port);
    }
    let silent = Sipp::spawn(
        &server.sip,
        "seat_uas_cancel.xml",
        &["-m", "1", "-p", &seats[0]],
    )?;
    let answering = Sipp::echo_seat(&server.sip, "seat_uas.xml", &seats[1], "PCMA", &[])?;

    let mut caller = Caller::call(sip, DID, "13900000099", true).await?;
    caller.hear(welcome_packets()? + 10).await?;
    caller.key('0').await?; // agent, from the main menu
    // Only 8001 is ready: it rings. Then 8002 becomes ready, and 8001 does not answer.
    let mut rung = false;
    for _ in 0..100 {
        caller.hear_for(Duration::from_millis(100)).await?;
        let acd: Value = c
            .get(server.url("/api/v1/acd"))
            .send()
            .await?
            .json()
            .await?;
        if acd["agents"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["agent"] == "8001" && x["state"]["state"] == "ringing")
        }) {
            rung = true;
            break;
        }
    }
    if !rung {
        let acd: Value = c
            .get(server.url("/api/v1/acd"))
            .send()
            .await?
            .json()
            .await?;
        bail!(
            "8001 was never rung: {acd}\n{}",
            server.stderr.lock().unwrap()
        );
    }
    let r = c
        .post(server.url("/api/v1/acd/agents/8002/ready"))
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    silent.success().await?; // 8001 was cancelled after the ring timeout
    let mut state = Value::Null;
    for _ in 0..100 {
        caller.hear_for(Duration::from_millis(100)).await?;
        state = c
            .get(server.url("/api/v1/acd"))
            .send()
            .await?
            .json()
            .await?;
        if state["agents"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["agent"] == "8002" && x["state"]["state"] == "busy")
        }) {
            break;
        }
    }
    let agents = state["agents"].as_array().context("agents")?;
    let of = |id: &str| {
        agents
            .iter()
            .find(|a| a["agent"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        of("8002")["state"]["state"],
        "busy",
        "the call went on to 8002: {state}"
    );
    assert_eq!(
        of("8001")["state"]["state"],
        "not_ready",
        "8001 did not answer: {state}"
    );
    let echoed = caller.talk(&tone(&[1000.0], 600, 6000.0)).await?;
    assert!(
        echoed.rms() > 1000.0,
        "bridged to 8002 (echo rms {})",
        echoed.rms()
    );
    caller.bye().await?;
    answering.success().await?;
    Ok(())
}

/// The agent's state in an `/api/v1/acd` snapshot.
/// The share of the signal's power at `freq` (1.0 for a pure tone), by a single DFT bin.
fn share(samples: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    let (mut re, mut im, mut power) = (0.0f64, 0.0f64, 0.0f64);
    for (n, &x) in samples.iter().enumerate() {
        let x = f64::from(x);
        re += x * (w * n as f64).cos();
        im -= x * (w * n as f64).sin();
        power += x * x;
    }
    let n = samples.len().max(1) as f64;
    (2.0 * (re * re + im * im) / (n * n)) / (power / n).max(1e-9)
}

fn agent_state<'a>(acd: &'a Value, agent: &str) -> &'a Value {
    acd["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["agent"] == agent))
        .map_or(&Value::Null, |x| &x["state"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_transfers_the_caller_to_a_queue_holds_and_transfers_to_a_colleague() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let (data, stdout) = init_printed(dir.path())?;
    let config = ivr_config(dir.path(), DID, (39000, 39999), "")?;
    let server = serve(&config, &data)?;
    let sip: std::net::SocketAddr = server.sip.parse()?;
    let c = client();
    let csrf = login(
        &c,
        &server,
        "admin",
        &field(&stdout, "password:").context("pw")?,
    )
    .await?;
    let post = |path: String, body: Value| {
        let req = c
            .post(server.url(&path))
            .header("x-csrf-token", &csrf)
            .json(&body);
        async move {
            let r = req.send().await?;
            let status = r.status();
            Ok::<_, anyhow::Error>((status, r.text().await?))
        }
    };
    // Both seats register and both agents log in; 8002 steps away so that 8001 takes the call.
    let mut ports = Vec::new();
    for seat in ["8001", "8002"] {
        let port = free_udp_port().to_string();
        let pw = field(&stdout, &format!("seat {seat}:")).context("seat pw")?;
        Sipp::spawn(
            &server.sip,
            "register.xml",
            &["-m", "1", "-p", &port, "-s", seat, "-au", seat, "-ap", &pw],
        )?
        .success()
        .await?;
        let (s, b) = post(
            format!("/api/v1/acd/agents/{seat}/login"),
            json!({"queues": ["hotline"]}),
        )
        .await?;
        assert_eq!(s, 200, "{b}");
        ports.push(port);
    }
    let (s, b) = post(
        "/api/v1/acd/agents/8002/not-ready".into(),
        json!({"reason": "小休"}),
    )
    .await?;
    assert_eq!(s, 200, "{b}");
    let answer = |port: &str| Sipp::echo_seat(&server.sip, "seat_uas.xml", port, "PCMA", &[]);
    let first = answer(&ports[0])?;
    let second = answer(&ports[1])?;

    let mut caller = Caller::call(sip, DID, "13900000077", true).await?;
    caller.hear(welcome_packets()? + 10).await?;
    caller.key('0').await?;
    let snapshot = || async {
        Ok::<Value, anyhow::Error>(
            c.get(server.url("/api/v1/acd"))
                .send()
                .await?
                .json()
                .await?,
        )
    };
    let mut acd = Value::Null;
    for _ in 0..100 {
        caller.hear_for(Duration::from_millis(100)).await?;
        acd = snapshot().await?;
        if agent_state(&acd, "8001")["state"] == "busy" {
            break;
        }
    }
    let call_id = agent_state(&acd, "8001")["call_id"]
        .as_str()
        .with_context(|| format!("8001 never answered: {acd}"))?
        .to_string();
    let echoed = caller.talk(&tone(&[1000.0], 400, 6000.0)).await?;
    assert!(
        echoed.rms() > 1000.0,
        "bridged to 8001 (rms {})",
        echoed.rms()
    );

    // 8002 comes back; 8001 transfers the caller to the queue. A queue that does not exist
    // is refused first, with nothing changed.
    let (s, b) = post("/api/v1/acd/agents/8002/ready".into(), json!({})).await?;
    assert_eq!(s, 200, "{b}");
    let (s, b) = post(
        format!("/api/v1/calls/{call_id}/transfer"),
        json!({"queue": "nowhere"}),
    )
    .await?;
    assert_eq!(s, 409, "{b}");
    assert!(b.contains("队列不存在"), "{b}");
    let (s, b) = post(
        format!("/api/v1/calls/{call_id}/transfer"),
        json!({"queue": "hotline"}),
    )
    .await?;
    assert_eq!(s, 200, "{b}");
    first.success().await?; // 8001's leg is released (BYE)
    for _ in 0..100 {
        caller.hear_for(Duration::from_millis(100)).await?;
        acd = snapshot().await?;
        if agent_state(&acd, "8002")["state"] == "busy" {
            break;
        }
    }
    assert_eq!(
        agent_state(&acd, "8002")["state"],
        "busy",
        "8002 took the call: {acd}"
    );
    assert_eq!(agent_state(&acd, "8002")["call_id"], call_id.as_str());
    assert_eq!(
        agent_state(&acd, "8001")["state"],
        "wrap_up",
        "the transferring agent wraps up: {acd}"
    );
    let echoed = caller.talk(&tone(&[1000.0], 400, 6000.0)).await?;
    assert!(
        echoed.rms() > 1000.0,
        "bridged to 8002 (rms {})",
        echoed.rms()
    );

    // 8002 puts the caller on hold: the caller hears the music on hold (notes below 400 Hz),
    // not the seat (whose sipp echoes the caller's 1777 Hz); taken back, the echo returns.
    let probe = tone(&[1777.0], 600, 6000.0);
    let (s, b) = post(format!("/api/v1/calls/{call_id}/hold"), json!({"on": true})).await?;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("\"changed\":true"), "{b}");
    caller.hear_for(Duration::from_millis(100)).await?; // echo already on its way
    let held = caller.talk(&probe).await?;
    assert!(
        held.packets > 10 && held.rms() > 300.0,
        "music on hold heard: {} packets, rms {}",
        held.packets,
        held.rms()
    );
    assert!(
        share(&held.samples, 1777.0) < 0.05,
        "the seat is not heard on hold ({})",
        share(&held.samples, 1777.0)
    );
    let (s, b) = post(
        format!("/api/v1/calls/{call_id}/hold"),
        json!({"on": false}),
    )
    .await?;
    assert_eq!(s, 200, "{b}");
    let back = caller.talk(&probe).await?;
    assert!(
        share(&back.samples, 1777.0) > 0.3,
        "the seat is heard again ({})",
        share(&back.samples, 1777.0)
    );

    // 8002 transfers the caller to a named colleague: refused while 8001 wraps up, to
    // oneself, or with two targets; accepted once 8001 is ready — 8001 alone rings.
    for (body, status, text) in [
        (json!({"agent": "8001"}), 409, "不空闲"),
        (json!({"agent": "8002"}), 409, "不能转接给自己"),
        (json!({"agent": "8001", "queue": "hotline"}), 400, "二选一"),
    ] {
        let (s, b) = post(format!("/api/v1/calls/{call_id}/transfer"), body).await?;
        assert_eq!(s, status, "{b}");
        assert!(b.contains(text), "{b}");
    }
    let (s, b) = post("/api/v1/acd/agents/8001/ready".into(), json!({})).await?;
    assert_eq!(s, 200, "{b}");
    let third = answer(&ports[0])?;
    let (s, b) = post(
        format!("/api/v1/calls/{call_id}/transfer"),
        json!({"agent": "8001"}),
    )
    .await?;
    assert_eq!(s, 200, "{b}");
    second.success().await?; // 8002's leg is released
    for _ in 0..100 {
        caller.hear_for(Duration::from_millis(100)).await?;
        acd = snapshot().await?;
        if agent_state(&acd, "8001")["state"] == "busy" {
            break;
        }
    }
    assert_eq!(
        agent_state(&acd, "8001")["call_id"],
        call_id.as_str(),
        "{acd}"
    );
    assert_eq!(agent_state(&acd, "8002")["state"], "wrap_up", "{acd}");
    let echoed = caller.talk(&tone(&[1000.0], 400, 6000.0)).await?;
    assert!(echoed.rms() > 1000.0, "bridged to 8001 again");
    caller.bye().await?;
    third.success().await?;
    // The transfer is in the audit log.
    let audit = c
        .get(server.url("/api/v1/audit?action=call.transfer"))
        .send()
        .await?
        .text()
        .await?;
    assert!(audit.contains(&call_id), "audited: {audit}");
    Ok(())
}
