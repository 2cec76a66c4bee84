//! The SIP gateway's acceptance cases against the real binary (the gateway's own tests run
//! the same logic in-process): brute-force blocking and SHA-256 digest, the channel cap
//! (31st call → 503 with Retry-After), CANCEL → 487 and a "cancelled" record, PCMA caller ↔
//! PCMU seat transcoded both ways (energy compared), and the malformed-message corpus — the
//! server answers OPTIONS after every case.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hotline_tests::caller::{Caller, rms, tone};
use hotline_tests::{Server, Sipp, field, free_udp_port, hotline, run, serve, text};
use sqlx::Connection;
use tokio::net::UdpSocket;

#[path = "../../sip-gateway/tests/corpus.rs"]
mod corpus;

const SEAT_DID: &str = "02212345";
const IVR_DID: &str = "02296077";

struct Setup {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    server: Server,
    sip: SocketAddr,
    seat_pw: String,
}

fn start(extra: &str) -> Result<Setup> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let out = run(hotline(&["init", "--data-dir", d]), None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seat_pw = field(&text(&out.stdout), "seat 8001:").context("seat password")?;
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nroutes = [{{ did = \"{SEAT_DID}\", target = \"seat:8001\" }}, \
             {{ did = \"{IVR_DID}\", target = \"ivr\" }}]\n\
             qualify_interval_secs = 0\nmax_calls_per_second_per_source = 1000\n{extra}\n\
             [sip.trunk]\npeers = [{{ name = \"e1\", address = \"127.0.0.1/32\" }}]\n\
             [sip.rtp]\nport_min = 35000\nport_max = 35999\n"
        ),
    )?;
    let server = serve(&config, Path::new(d))?;
    let sip = server.sip.parse()?;
    Ok(Setup {
        _dir: dir,
        data,
        server,
        sip,
        seat_pw,
    })
}

async fn metrics(s: &Setup) -> Result<String> {
    Ok(hotline_tests::client()
        .get(s.server.url("/metrics"))
        .send()
        .await?
        .text()
        .await?)
}

fn metric(all: &str, series: &str) -> i64 {
    all.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// One OPTIONS; returns every other final response received before its 200.
async fn probe(sock: &UdpSocket, server: SocketAddr, n: u32) -> Result<Vec<u16>> {
    let me = sock.local_addr()?;
    let m = format!(
        "OPTIONS sip:{server} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKprobe{n};rport\r\nFrom: <sip:probe@{me}>;tag=p{n}\r\nTo: <sip:{server}>\r\nCall-ID: probe-{n}@test\r\nCSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(m.as_bytes(), server).await?;
    let mut others = Vec::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let (len, _) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
            .await
            .context("the server stopped answering")??;
        let text = String::from_utf8_lossy(&buf[..len]).to_string();
        let status: u16 = text.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0);
        if text.contains(&format!("Call-ID: probe-{n}@test")) {
            if status != 200 {
                bail!("probe answered {status}");
            }
            return Ok(others);
        }
        if status >= 200 {
            others.push(status);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_corpus_against_the_binary() -> Result<()> {
    let s = start("")?;
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let cases = corpus::corpus();
    assert!(cases.len() >= 20);
    for (i, (name, data, expect)) in cases.into_iter().enumerate() {
        sock.send_to(&data, s.sip).await?;
        let got = probe(&sock, s.sip, i as u32 + 1).await?;
        match expect {
            Some(code) => assert_eq!(got, vec![code], "case {name:?}"),
            None => assert!(got.is_empty(), "case {name:?} should be dropped: {got:?}"),
        }
    }
    let m = metrics(&s).await?;
    assert!(metric(&m, "hotline_sip_malformed_total{action=\"reply_400\"}") >= 10);
    assert!(metric(&m, "hotline_sip_malformed_total{action=\"drop\"}") >= 5);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_is_blocked_and_sha256_digest_is_accepted() -> Result<()> {
    let s = start("")?;
    let port = free_udp_port().to_string();
    // SHA-256 (RFC 8760) from a client that prefers it.
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let me = sock.local_addr()?;
    let register = |auth: Option<&str>, cseq: u32| {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER sip:{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKsha{cseq};rport\r\nFrom: <sip:8001@{srv}>;tag=s1\r\nTo: <sip:8001@{srv}>\r\nCall-ID: sha-reg@test\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:8001@{me}>\r\n{auth}Expires: 300\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            srv = s.sip
        )
    };
    sock.send_to(register(None, 1).as_bytes(), s.sip).await?;
    let mut buf = vec![0u8; 8192];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf)).await??;
    let challenge = String::from_utf8_lossy(&buf[..n]).to_string();
    let www = challenge
        .lines()
        .find(|l| l.starts_with("WWW-Authenticate:") && l.contains("SHA-256"))
        .context("a SHA-256 challenge")?;
    let param = |name: &str| {
        let i = www.find(&format!("{name}=\""))? + name.len() + 2;
        Some(www[i..].split('"').next()?.to_string())
    };
    let (nonce, realm) = (
        param("nonce").context("nonce")?,
        param("realm").context("realm")?,
    );
    let auth = hotline_sip_gateway::digest::client_response(
        hotline_sip_gateway::digest::Algorithm::parse("SHA-256").context("alg")?,
        "8001",
        &s.seat_pw,
        &realm,
        &nonce,
        "REGISTER",
        &format!("sip:{}", s.sip),
        "c0ffee",
    );
    sock.send_to(register(Some(&auth), 2).as_bytes(), s.sip)
        .await?;
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf)).await??;
    let ok = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");

    // Four wrong passwords from one address are answered with new challenges; the fifth
    // blocks the address (403), and from then on it is refused outright.
    for (scenario, m) in [
        ("register_refused.xml", "4"),
        ("register_refused_blocks.xml", "1"),
    ] {
        Sipp::spawn(
            &s.server.sip,
            scenario,
            &[
                "-m",
                m,
                "-p",
                &port,
                "-s",
                "8002",
                "-au",
                "8002",
                "-ap",
                "wrong-password",
            ],
        )?
        .success()
        .await?;
    }
    Sipp::spawn(
        &s.server.sip,
        "register_blocked.xml",
        &["-m", "1", "-p", &port, "-s", "8002"],
    )?
    .success()
    .await?;
    let m = metrics(&s).await?;
    assert!(metric(&m, "hotline_sip_auth_blocks_total") >= 1, "{m}");
    assert!(metric(&m, "hotline_sip_auth_failures_total") >= 5);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_31st_call_is_refused_cancel_gives_487_and_codecs_are_transcoded() -> Result<()> {
    let s = start("")?;
    // 30 calls up (answered by the IVR) fill the E1.
    let mut up = Vec::new();
    for n in 0..30 {
        up.push(Caller::call(s.sip, IVR_DID, &format!("1380000{n:04}"), true).await?);
    }
    let refused = Caller::call(s.sip, IVR_DID, "13899999999", true).await;
    let Err(e) = refused else {
        bail!("the 31st call was answered");
    };
    let e = e.to_string();
    assert!(
        e.contains("SIP/2.0 503") && e.contains("Retry-After"),
        "{e}"
    );
    for c in &mut up {
        c.bye().await?;
    }
    drop(up);

    // A seat that rings and never answers; the caller cancels.
    let seat_port = free_udp_port().to_string();
    Sipp::spawn(
        &s.server.sip,
        "register.xml",
        &[
            "-m", "1", "-p", &seat_port, "-s", "8001", "-au", "8001", "-ap", &s.seat_pw,
        ],
    )?
    .success()
    .await?;
    let seat = Sipp::spawn(
        &s.server.sip,
        "seat_uas_cancel.xml",
        &["-m", "1", "-p", &seat_port],
    )?;
    let mp = free_udp_port().to_string();
    Sipp::spawn(
        &s.server.sip,
        "uac_cancel.xml",
        &["-m", "1", "-s", SEAT_DID, "-mp", &mp],
    )?
    .success()
    .await?;
    seat.success().await?;
    let url = format!("sqlite://{}", s.data.join("hotline.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await?;
    let (cause, code): (String, i64) = sqlx::query_as(
        "SELECT end_cause, a_final_code FROM sip_calls WHERE callee = $1 ORDER BY offered_at DESC",
    )
    .bind(SEAT_DID)
    .fetch_one(&mut db)
    .await?;
    assert_eq!((cause.as_str(), code), ("cancelled", 487));

    // PCMA caller, PCMU seat (echoing): the caller hears its own tone back, transcoded twice.
    let seat = Sipp::echo_seat(&s.server.sip, "seat_uas.xml", &seat_port, "PCMU", &[])?;
    let mut caller = Caller::call(s.sip, SEAT_DID, "13900000001", true).await?;
    let sent = tone(&[1000.0], 1000, 8000.0);
    let mut echoed = Vec::new();
    for chunk in sent.chunks(800) {
        caller.send_audio(chunk).await?;
        echoed.extend(caller.hear(5).await?.samples);
    }
    let ratio = rms(&echoed) / rms(&sent);
    assert!((0.85..1.15).contains(&ratio), "energy ratio {ratio}");
    caller.bye().await?;
    seat.success().await?;
    let m = metrics(&s).await?;
    assert!(
        metric(
            &m,
            "hotline_sip_rtp_packets_total{direction=\"caller_to_seat\"}"
        ) >= 10
    );
    Ok(())
}
