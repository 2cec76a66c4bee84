//! The SIP gateway inside the real binary, driven by sipp: a seat registers with digest
//! authentication using the password `hotline init` printed, a trunk call to the DID is
//! bridged to it with RTP both ways through the relay, the call record is served by the API,
//! a wrong password and a non-peer address are refused, and the server keeps answering.

use std::path::Path;

use anyhow::{Context, Result};
use hotline_tests::{Sipp, client, field, free_udp_port, hotline, run, serve, text};
use serde_json::{Value, json};

const DID: &str = "02212345";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seat_registers_and_a_trunk_call_is_bridged_and_recorded() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let out = run(hotline(&["init", "--data-dir", d]), None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let admin_pw = field(&stdout, "password:").context("admin password")?;
    let seat_pw = field(&stdout, "seat 8001:").context("seat 8001 password")?;
    assert!(
        field(&stdout, "seat 8008:").is_some(),
        "eight seats: {stdout}"
    );

    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nroutes = [{{ did = \"{DID}\", target = \"seat:8001\" }}]\n\
             qualify_interval_secs = 0\n\
             [sip.trunk]\npeers = [{{ name = \"e1\", address = \"127.0.0.1/32\" }}]\n\
             [sip.rtp]\nport_min = 32000\nport_max = 32999\n"
        ),
    )?;
    let server = serve(&config, Path::new(d))?;
    let sip = server.sip.clone();

    // a wrong password is refused
    let bad_port = free_udp_port().to_string();
    Sipp::spawn(
        &sip,
        "register_refused.xml",
        &[
            "-m",
            "1",
            "-p",
            &bad_port,
            "-s",
            "8001",
            "-au",
            "8001",
            "-ap",
            "wrong-password",
        ],
    )?
    .success()
    .await?;
    // the right one registers
    let seat_port = free_udp_port().to_string();
    Sipp::spawn(
        &sip,
        "register.xml",
        &[
            "-m", "1", "-p", &seat_port, "-s", "8001", "-au", "8001", "-ap", &seat_pw,
        ],
    )?
    .success()
    .await?;

    let c = client();
    let login = c
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": admin_pw}))
        .send()
        .await?;
    assert_eq!(login.status(), 200);
    let status: Value = c
        .get(server.url("/api/v1/sip/status"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(status["status"]["registrations"], 1, "{status}");
    assert_eq!(status["bindings"][0]["seat"], "8001");

    // the seat answers on its registered port and echoes RTP; the trunk caller plays a pcap
    let seat = Sipp::echo_seat(&sip, "seat_uas.xml", &seat_port, "PCMA", &[])?;
    let caller_mp = free_udp_port().to_string();
    Sipp::spawn(
        &sip,
        "uac_call.xml",
        &["-m", "1", "-s", DID, "-mp", &caller_mp, "-d", "2500"],
    )?
    .success()
    .await?;
    seat.success().await?;

    let calls: Value = c
        .get(server.url("/api/v1/calls"))
        .send()
        .await?
        .json()
        .await?;
    let call = &calls[0];
    assert_eq!(call["direction"], "inbound", "{calls}");
    assert_eq!(call["callee"], DID);
    assert_eq!(call["seat"], "8001");
    assert_eq!(call["trunk"], "e1");
    assert_eq!(call["end_cause"], "normal");
    assert_eq!(call["hangup_side"], "caller");
    assert_eq!(call["a_codec"], "PCMA");
    let one: Value = c
        .get(server.url(&format!("/api/v1/calls/{}", call["id"].as_str().unwrap())))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(one["id"], call["id"]);

    let metrics = c.get(server.url("/metrics")).send().await?.text().await?;
    let count = |series: &str| -> i64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0)
    };
    let to_seat = count("hotline_sip_rtp_packets_total{direction=\"caller_to_seat\"}");
    let to_caller = count("hotline_sip_rtp_packets_total{direction=\"seat_to_caller\"}");
    assert!(
        to_seat >= 20 && to_caller >= 20,
        "RTP through the relay: {to_seat} / {to_caller}"
    );
    assert!(count("hotline_sip_auth_failures_total") >= 1, "{metrics}");

    // an INVITE from an address that is neither a trunk peer nor a seat → 403
    Sipp::spawn(
        &sip,
        "uac_forbidden.xml",
        &["-m", "1", "-i", "127.0.0.2", "-s", DID],
    )?
    .success()
    .await?;
    let health = c.get(server.url("/healthz")).send().await?;
    assert_eq!(health.status(), 200);
    Ok(())
}
