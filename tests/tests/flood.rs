//! Overload: an INVITE flood of 1,000 per second from one address that is neither trunk peer
//! nor seat. The flood guard answers the first refusals (403), then ignores the address;
//! meanwhile a registered seat still receives a trunk call with audio, and registers again
//! afterwards. The server's resident memory before and after is printed and bounded.

use std::path::Path;

use anyhow::{Context, Result};
use hotline_tests::{Sipp, client, field, free_udp_port, hotline, run, serve, text};
use serde_json::json;

const DID: &str = "02212345";
const FLOOD: usize = 5_000;

/// The process's resident set, KiB (`VmRSS` of /proc/<pid>/status).
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_flood_is_ignored_while_seats_keep_working() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let out = run(hotline(&["init", "--data-dir", d]), None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let admin_pw = field(&stdout, "password:").context("admin password")?;
    let seat_pw = field(&stdout, "seat 8001:").context("seat 8001 password")?;
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nroutes = [{{ did = \"{DID}\", target = \"seat:8001\" }}]\n\
             qualify_interval_secs = 0\n\
             [sip.trunk]\npeers = [{{ name = \"e1\", address = \"127.0.0.1/32\" }}]\n\
             [sip.rtp]\nport_min = 33000\nport_max = 33999\n"
        ),
    )?;
    let server = serve(&config, Path::new(d))?;
    let sip = server.sip.clone();
    let seat_port = free_udp_port().to_string();
    let register = |port: &str| {
        Sipp::spawn(
            &sip,
            "register.xml",
            &[
                "-m", "1", "-p", port, "-s", "8001", "-au", "8001", "-ap", &seat_pw,
            ],
        )
    };
    register(&seat_port)?.success().await?;
    let rss_before = rss_kib(server.child.id())?;

    // The flood, and during it a trunk call to the seat (RTP echoed both ways).
    let flood = Sipp::spawn(
        &sip,
        "uac_flood.xml",
        &[
            "-i",
            "127.0.0.2",
            "-s",
            DID,
            "-r",
            "1000",
            "-m",
            &FLOOD.to_string(),
        ],
    )?;
    let seat = Sipp::echo_seat(&sip, "seat_uas.xml", &seat_port, "PCMA", &[])?;
    let caller_mp = free_udp_port().to_string();
    Sipp::spawn(
        &sip,
        "uac_call.xml",
        &["-m", "1", "-s", DID, "-mp", &caller_mp, "-d", "2000"],
    )?
    .success()
    .await?;
    seat.success().await?;
    flood.success().await?;
    let rss_after = rss_kib(server.child.id())?;
    // The seat registers again after the flood.
    register(&free_udp_port().to_string())?.success().await?;

    let c = client();
    let login = c
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": admin_pw}))
        .send()
        .await?;
    assert_eq!(login.status(), 200);
    let metrics = c.get(server.url("/metrics")).send().await?.text().await?;
    let count = |series: &str| -> i64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0)
    };
    let refused = count("hotline_sip_calls_rejected_total{reason=\"acl\"}");
    let dropped = count("hotline_sip_flood_dropped_total");
    eprintln!(
        "flood of {FLOOD} INVITEs: {refused} answered 403, {dropped} ignored; \
         RSS {rss_before} KiB before, {rss_after} KiB after"
    );
    assert_eq!(count("hotline_sip_flood_blocks_total"), 1, "{metrics}");
    assert_eq!(refused, 50, "the default flood.max_refused answers");
    assert_eq!(refused + dropped, FLOOD as i64, "every INVITE was seen");
    let calls: serde_json::Value = c
        .get(server.url("/api/v1/calls"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        calls[0]["seat"], "8001",
        "the trunk call reached the seat: {calls}"
    );
    assert_eq!(calls[0]["end_cause"], "normal", "{calls}");
    assert!(
        count("hotline_sip_rtp_packets_total{direction=\"seat_to_caller\"}") >= 20,
        "audio flowed during the flood"
    );
    assert!(
        rss_after < rss_before + 32 * 1024,
        "memory stays bounded: {rss_before} → {rss_after} KiB"
    );
    assert!(
        server.stderr.lock().unwrap().contains("flood guard"),
        "the block is logged once"
    );
    Ok(())
}
