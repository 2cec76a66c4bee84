//! B2BUA calls from the trunk to a seat, with sipp on both sides (the seat registers first,
//! then answers from the same port and echoes RTP), and raw SIP where counting matters.

use std::time::Duration;

use anyhow::{Context, Result};
use hotline_core::events::CallEvent;
use hotline_sip_gateway::{CallRecord, get_call, list_calls};
use tokio::net::UdpSocket;

use crate::harness::*;

/// Registers seat 8001 from a fresh port with sipp and starts the seat scenario there.
async fn seat(h: &Harness, scenario: &str, pt: &str, codec: &str, extra: &[&str]) -> Result<Sipp> {
    let port = free_udp_port();
    sipp_register(h.addr, "8001", PASSWORD, port, 200).await?;
    h.wait_registrations(1).await?;
    echo_seat(h.addr, scenario, port, pt, codec, extra)
}

/// Seat 8002 registered and waiting to take a transferred call (it echoes the audio), and
/// seat 8001 registered and running `transferor`, a scenario that REFERs the call to 8002.
async fn transfer_seats(h: &Harness, transferor: &str) -> Result<(Sipp, Sipp)> {
    let p2 = free_udp_port();
    sipp_register(h.addr, "8002", PASSWORD, p2, 200).await?;
    h.wait_registrations(1).await?;
    let target = echo_seat(h.addr, "seat_uas.xml", p2, "8", "PCMA", &[])?;
    let p1 = free_udp_port();
    sipp_register(h.addr, "8001", PASSWORD, p1, 200).await?;
    h.wait_registrations(2).await?;
    let (p1, mp1) = (p1.to_string(), free_udp_port().to_string());
    let t = Sipp::spawn(
        h.addr,
        transferor,
        &["-m", "1", "-p", &p1, "-mp", &mp1, "-key", "target", "8002"],
    )?;
    Ok((target, t))
}

/// The trunk peer (the customer's network) at `customer_port`, mobile numbers allowed out,
/// the hotline's DID as caller ID.
fn click_to_call_config(customer_port: u16) -> hotline_sip_gateway::GatewayConfig {
    let mut cfg = base_config();
    cfg.trunk.peers[0].port = Some(customer_port);
    cfg.trunk.outbound_allow = vec!["1XXXXXXXXXX".into()];
    cfg.trunk.caller_id = DID.into();
    cfg
}

async fn ended_record(h: &Harness) -> Result<(String, CallRecord)> {
    let ev = h
        .events
        .wait_for(|e| matches!(e, CallEvent::Ended { .. }))
        .await?;
    let CallEvent::Ended { call_id, .. } = ev else {
        unreachable!()
    };
    let rec = get_call(&h.pool, &call_id).await?.context("CDR row")?;
    Ok((call_id, rec))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_call_is_bridged_with_rtp_both_ways_and_caller_hangs_up() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let seat = seat(&h, "seat_uas.xml", "8", "PCMA", &[]).await?;
    let mp = free_udp_port().to_string();
    Sipp::spawn(
        h.addr,
        "uac_call.xml",
        &["-m", "1", "-s", DID, "-mp", &mp, "-d", "2500"],
    )?
    .success()
    .await?;
    seat.success().await?;
    let (id, rec) = ended_record(&h).await?;
    assert_eq!(rec.direction, "inbound");
    assert_eq!(rec.caller, "13900000001");
    assert_eq!(rec.callee, DID);
    assert_eq!(rec.trunk.as_deref(), Some("e1"));
    assert_eq!(rec.seat.as_deref(), Some("8001"));
    assert_eq!(rec.end_cause.as_deref(), Some("normal"));
    assert_eq!(rec.hangup_side.as_deref(), Some("caller"));
    assert_eq!((rec.a_final_code, rec.b_final_code), (Some(200), Some(200)));
    assert_eq!(
        (rec.a_codec.as_deref(), rec.b_codec.as_deref()),
        (Some("PCMA"), Some("PCMA"))
    );
    assert!(
        rec.answered_at.is_some() && rec.bridged_at.is_some() && rec.ended_at >= rec.bridged_at
    );
    // RTP went through the relay both ways: the pcap to the seat, the seat's echo back.
    let to_seat = h.metric("hotline_sip_rtp_packets_total{direction=\"caller_to_seat\"}");
    let to_caller = h.metric("hotline_sip_rtp_packets_total{direction=\"seat_to_caller\"}");
    assert!(to_seat >= 20, "caller→seat {to_seat}");
    assert!(to_caller >= 20, "seat→caller {to_caller}");
    let kinds: Vec<&'static str> = h
        .events
        .call_events()
        .iter()
        .map(|e| match e {
            CallEvent::Offered { .. } => "offered",
            CallEvent::Answered { .. } => "answered",
            CallEvent::Bridged { .. } => "bridged",
            CallEvent::Ended { .. } => "ended",
            CallEvent::Dtmf { digit: '5', .. } => "dtmf 5",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["offered", "answered", "bridged", "dtmf 5", "ended"]);
    assert_eq!(list_calls(&h.pool, 10).await?[0].id, id);
    assert_eq!(h.handle().status().await?.trunk_channels_in_use, 0);
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seat_hangs_up_and_the_caller_gets_bye() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let seat = seat(&h, "seat_uas_hangup.xml", "8", "PCMA", &["-d", "1500"]).await?;
    let mp = free_udp_port().to_string();
    Sipp::spawn(
        h.addr,
        "uac_call_remote_bye.xml",
        &["-m", "1", "-s", DID, "-mp", &mp],
    )?
    .success()
    .await?;
    seat.success().await?;
    let (_, rec) = ended_record(&h).await?;
    assert_eq!(rec.end_cause.as_deref(), Some("normal"));
    assert_eq!(rec.hangup_side.as_deref(), Some("callee"));
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_answer_gives_487_and_a_cancelled_record() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let seat = seat(&h, "seat_uas_cancel.xml", "8", "PCMA", &[]).await?;
    let mp = free_udp_port().to_string();
    Sipp::spawn(
        h.addr,
        "uac_cancel.xml",
        &["-m", "1", "-s", DID, "-mp", &mp],
    )?
    .success()
    .await?;
    seat.success().await?;
    let (_, rec) = ended_record(&h).await?;
    assert_eq!(rec.end_cause.as_deref(), Some("cancelled"));
    assert_eq!(rec.hangup_side.as_deref(), Some("caller"));
    assert_eq!(rec.a_final_code, Some(487));
    assert!(rec.answered_at.is_none());
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_from_a_non_peer_address_is_forbidden() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let mp = free_udp_port().to_string();
    Sipp::spawn(
        h.addr,
        "uac_forbidden.xml",
        &["-m", "1", "-s", DID, "-i", "127.0.0.2", "-mp", &mp],
    )?
    .success()
    .await?;
    assert_eq!(
        h.metric("hotline_sip_calls_rejected_total{reason=\"acl\"}"),
        1
    );
    assert!(list_calls(&h.pool, 10).await?.is_empty());
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_31st_concurrent_trunk_call_gets_503_with_retry_after() -> Result<()> {
    let mut cfg = base_config();
    cfg.max_calls_per_second_per_source = 100;
    let h = Harness::start(cfg).await?;
    // A seat that rings but never answers.
    let (_seat, trunk) = seat_and_trunk(&h).await?;
    for n in 1..=30 {
        trunk
            .send(invite(&trunk, n, 40000, (8, "PCMA")).as_bytes())
            .await?;
        let r = trunk.recv_response("INVITE", false).await?;
        assert_eq!(r.status, 100, "call {n}: {}", r.text);
    }
    assert_eq!(h.handle().status().await?.trunk_channels_in_use, 30);
    trunk
        .send(invite(&trunk, 31, 40000, (8, "PCMA")).as_bytes())
        .await?;
    let r = trunk.recv_response("INVITE", false).await?;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.header("Retry-After").as_deref(), Some("30"));
    assert_eq!(
        h.metric("hotline_sip_calls_rejected_total{reason=\"channels\"}"),
        1
    );
    // Cancelling one frees a channel.
    let cancel = format!(
        "CANCEL sip:{DID}@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKinv1;rport\r\nFrom: <sip:13900000001@{me}>;tag=f1\r\nTo: <sip:{DID}@{srv}>\r\nCall-ID: call-1@test\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        srv = trunk.server,
        me = trunk.local
    );
    trunk.send(cancel.as_bytes()).await?;
    assert_eq!(trunk.recv_response("CANCEL", true).await?.status, 200);
    assert_eq!(trunk.recv_response("INVITE", true).await?.status, 487);
    assert_eq!(h.handle().status().await?.trunk_channels_in_use, 29);
    trunk
        .send(invite(&trunk, 32, 40000, (8, "PCMA")).as_bytes())
        .await?;
    assert_eq!(trunk.recv_response("INVITE", false).await?.status, 100);
    h.finish().await
}

/// A 1 kHz tone at -10 dBFS, 20 ms per packet, as A-law.
fn tone_packet(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for i in 0..160u32 {
        let t = f64::from(u32::from(seq) * 160 + i) / 8000.0;
        let s = (10_000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16;
        p.push(alaw::encode(s));
    }
    p
}

mod alaw {
    pub fn encode(s: i16) -> u8 {
        audio_codec_algorithms::encode_alaw(s)
    }
    pub fn decode(b: u8) -> i16 {
        audio_codec_algorithms::decode_alaw(b)
    }
}

fn energy(samples: &[i16]) -> f64 {
    samples
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / samples.len().max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcma_caller_to_pcmu_seat_is_transcoded_both_ways() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let seat = seat(&h, "seat_uas.xml", "0", "PCMU", &[]).await?;
    let trunk = Client::new(h.addr).await?;
    let rtp = UdpSocket::bind("127.0.0.1:0").await?;
    let rtp_port = rtp.local_addr()?.port();
    trunk
        .send(invite(&trunk, 1, rtp_port, (8, "PCMA")).as_bytes())
        .await?;
    let ok = trunk.recv_response("INVITE", true).await?;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let body = ok.body();
    assert!(
        body.contains("m=audio ") && body.contains("a=rtpmap:8 PCMA/8000"),
        "{body}"
    );
    assert!(body.contains("a=ptime:20"), "{body}");
    let port: u16 = body
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .context("m= line")?
        .parse()?;
    let to_tag = ok.header("To").context("To")?;
    let ack = format!(
        "ACK sip:hotline@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKack1;rport\r\nFrom: <sip:13900000001@{me}>;tag=f1\r\nTo: {to_tag}\r\nCall-ID: call-1@test\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        srv = trunk.server,
        me = trunk.local
    );
    trunk.send(ack.as_bytes()).await?;
    let relay: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    // Send 50 packets (1 s) and collect what the seat echoes back through the relay.
    let mut sent = Vec::new();
    let mut received: Vec<i16> = Vec::new();
    let mut ssrcs = std::collections::HashSet::new();
    let mut buf = [0u8; 2048];
    for seq in 0..50u16 {
        let p = tone_packet(seq, 0x1234);
        sent.extend(p[12..].iter().map(|&b| alaw::decode(b)));
        rtp.send_to(&p, relay).await?;
        // Drain whatever has come back so far without waiting.
        while let Ok((n, _)) = rtp.try_recv_from(&mut buf) {
            assert_eq!(buf[1] & 0x7f, 8, "the caller only ever sees PCMA");
            ssrcs.insert(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));
            received.extend(buf[12..n].iter().map(|&b| alaw::decode(b)));
        }
    }
    // Then wait for the rest of the echo, each packet with a bounded timeout.
    while received.len() < 40 * 160 {
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), rtp.recv_from(&mut buf))
            .await
            .context("echo stopped")??;
        assert_eq!(buf[1] & 0x7f, 8);
        ssrcs.insert(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));
        received.extend(buf[12..n].iter().map(|&b| alaw::decode(b)));
    }
    assert_eq!(ssrcs.len(), 1, "one consistent SSRC towards the caller");
    let (e_sent, e_recv) = (energy(&sent), energy(&received));
    let ratio = e_recv / e_sent;
    assert!(
        (0.8..1.25).contains(&ratio),
        "energy sent {e_sent} received {e_recv}"
    );
    // Hold: a re-INVITE with sendonly is answered recvonly from our anchor (RFC 3264 §8.4).
    let hold_sdp = format!(
        "v=0\r\no=t 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n"
    );
    let reinvite = format!(
        "INVITE sip:hotline@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKhold1;rport\r\nFrom: <sip:13900000001@{me}>;tag=f1\r\nTo: {to_tag}\r\nCall-ID: call-1@test\r\nCSeq: 2 INVITE\r\nContact: <sip:caller@{me}>\r\nSession-Expires: 1800\r\nSupported: timer\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{hold_sdp}",
        hold_sdp.len(),
        srv = trunk.server,
        me = trunk.local
    );
    trunk.send(reinvite.as_bytes()).await?;
    let held = loop {
        let r = trunk.recv_response("INVITE", true).await?;
        if r.header("CSeq").as_deref() == Some("2 INVITE") {
            break r;
        }
    };
    assert_eq!(held.status, 200, "{}", held.text);
    assert!(held.body().contains("a=recvonly"), "{}", held.body());
    assert!(
        held.body().contains(&format!("m=audio {port} ")),
        "same anchor port"
    );
    assert_eq!(
        held.header("Session-Expires").as_deref(),
        Some("1800;refresher=uac")
    );
    trunk
        .send(
            ack.replace("z9hG4bKack1", "z9hG4bKack2")
                .replace("1 ACK", "2 ACK")
                .as_bytes(),
        )
        .await?;
    h.events
        .wait_for(|e| matches!(e, CallEvent::Held { on_hold: true, .. }))
        .await?;
    let bye = format!(
        "BYE sip:hotline@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKbye1;rport\r\nFrom: <sip:13900000001@{me}>;tag=f1\r\nTo: {to_tag}\r\nCall-ID: call-1@test\r\nCSeq: 3 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        srv = trunk.server,
        me = trunk.local
    );
    trunk.send(bye.as_bytes()).await?;
    assert_eq!(trunk.recv_response("BYE", true).await?.status, 200);
    seat.success().await?;
    let (_, rec) = ended_record(&h).await?;
    assert_eq!(
        (rec.a_codec.as_deref(), rec.b_codec.as_deref()),
        (Some("PCMA"), Some("PCMU"))
    );
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_per_source_are_rate_limited() -> Result<()> {
    let mut cfg = base_config();
    cfg.max_calls_per_second_per_source = 2;
    let db = hotline_testkit::ExternalDb::create(hotline_testkit::Backend::Sqlite)
        .await?
        .context("db")?;
    // Time stands still, so all three INVITEs fall in one second.
    let clock = hotline_core::ManualClock::new(1_700_000_000_000);
    let h = Harness::start_on(cfg, db, std::sync::Arc::new(clock)).await?;
    let trunk = Client::new(h.addr).await?;
    // No seat is registered: the first two are refused as unavailable, the third as excess.
    for (n, want) in [(1, 480), (2, 480), (3, 503)] {
        trunk
            .send(invite(&trunk, n, 40000, (8, "PCMA")).as_bytes())
            .await?;
        assert_eq!(
            trunk.recv_response("INVITE", true).await?.status,
            want,
            "INVITE {n}"
        );
    }
    assert_eq!(
        h.metric("hotline_sip_calls_rejected_total{reason=\"rate\"}"),
        1
    );
    assert_eq!(
        h.metric("hotline_sip_calls_rejected_total{reason=\"unavailable\"}"),
        2
    );
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_that_does_not_answer_options_is_not_offered_calls() -> Result<()> {
    let mut cfg = base_config();
    cfg.qualify_interval_secs = 30;
    let db = hotline_testkit::ExternalDb::create(hotline_testkit::Backend::Sqlite)
        .await?
        .context("db")?;
    hotline_sip_gateway::add_seat(&db.db.pool, "8001", PASSWORD, "hotline", 0).await?;
    let clock = hotline_core::ManualClock::new(1_700_000_000_000);
    let h = Harness::start_on(cfg, db, std::sync::Arc::new(clock.clone())).await?;
    let seat = registered_seat(&h).await?;
    let mut changes = h.handle().registrations();
    changes.borrow_and_update();
    // The first qualify round: the seat stays silent until Timer F (RFC 3261 §17.1.2.2).
    clock.advance_ms(2_000);
    let first = seat.recv_text().await?;
    assert!(first.starts_with("OPTIONS sip:8001@"), "{first}");
    let first_branch = first
        .split("branch=")
        .nth(1)
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();
    clock.advance_ms(33_000);
    tokio::time::timeout(T, changes.changed()).await??;
    let trunk = Client::new(h.addr).await?;
    trunk
        .send(invite(&trunk, 1, 40000, (8, "PCMA")).as_bytes())
        .await?;
    assert_eq!(trunk.recv_response("INVITE", true).await?.status, 480);
    // The next round is answered: the seat is offered calls again.
    clock.advance_ms(30_000);
    let next = loop {
        let m = seat.recv_text().await?;
        if m.starts_with("OPTIONS ") && !m.contains(&first_branch) {
            break m;
        }
    };
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for line in next.split("\r\n").skip(1) {
        let name = line.split(':').next().unwrap_or("");
        if ["Via", "From", "To", "Call-ID", "CSeq"].contains(&name) {
            ok.push_str(line);
            ok.push_str("\r\n");
        }
    }
    ok.push_str("Content-Length: 0\r\n\r\n");
    seat.send(ok.as_bytes()).await?;
    tokio::time::timeout(T, changes.changed()).await??;
    trunk
        .send(invite(&trunk, 2, 40000, (8, "PCMA")).as_bytes())
        .await?;
    assert_eq!(trunk.recv_response("INVITE", false).await?.status, 100);
    let offered = loop {
        let m = seat.recv_text().await?;
        if m.starts_with("INVITE ") {
            break m;
        }
    };
    assert!(offered.contains("m=audio "), "{offered}");
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_call_rings_the_seat_then_the_customer_and_bridges() -> Result<()> {
    let customer_port = free_udp_port();
    let h = Harness::start(click_to_call_config(customer_port)).await?;
    // Refused before anything rings.
    assert!(matches!(
        h.handle().click_to_call("8001", "0085212345678").await,
        Err(hotline_sip_gateway::GatewayError::NotAllowed(_))
    ));
    assert!(matches!(
        h.handle().click_to_call("8001", "13912345678").await,
        Err(hotline_sip_gateway::GatewayError::SeatUnavailable(_))
    ));
    let seat = seat(&h, "seat_uas.xml", "8", "PCMA", &[]).await?;
    // The customer behind the trunk answers and hangs up after a while.
    let (cp, mp) = (customer_port.to_string(), free_udp_port().to_string());
    let customer = Sipp::spawn(
        h.addr,
        "seat_uas_hangup.xml",
        &[
            "-m", "1", "-p", &cp, "-mp", &mp, "-key", "pt", "0", "-key", "codec", "PCMU", "-d",
            "1000",
        ],
    )?;
    let id = h.handle().click_to_call("8001", "13912345678").await?;
    customer.success().await?;
    seat.success().await?;
    let (ended, rec) = ended_record(&h).await?;
    assert_eq!(ended, id);
    assert_eq!(rec.direction, "outbound");
    assert_eq!(rec.caller, DID);
    assert_eq!(rec.callee, "13912345678");
    assert_eq!(rec.seat.as_deref(), Some("8001"));
    assert_eq!(rec.end_cause.as_deref(), Some("normal"));
    assert_eq!(rec.hangup_side.as_deref(), Some("callee"));
    assert_eq!(
        (rec.a_codec.as_deref(), rec.b_codec.as_deref()),
        (Some("PCMU"), Some("PCMA"))
    );
    assert!(rec.bridged_at.is_some());
    h.events
        .wait_for(|e| matches!(e, CallEvent::Bridged { seat, .. } if seat == "8001"))
        .await?;
    assert_eq!(h.handle().status().await?.trunk_channels_in_use, 0);
    h.finish().await
}

/// The agent of a click-to-call hands the customer to another seat with REFER: 202, NOTIFY
/// 100 and 200 to the agent, the agent's leg hung up, the customer re-bridged to seat 8002
/// (audio both ways through the relay), the record naming the transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_to_call_agent_blind_transfers_the_customer_to_another_seat() -> Result<()> {
    let customer_port = free_udp_port();
    let h = Harness::start(click_to_call_config(customer_port)).await?;
    // Seat 8001 (the agent) answers, waits for the customer, then REFERs to 8002.
    let (target, agent) = transfer_seats(&h, "seat_uas_refer_later.xml").await?;
    // The customer answers, plays audio and hangs up after 5 s (after the transfer).
    let (cp, mp) = (customer_port.to_string(), free_udp_port().to_string());
    let customer = Sipp::spawn(
        h.addr,
        "seat_uas_speaks.xml",
        &[
            "-m", "1", "-p", &cp, "-mp", &mp, "-key", "pt", "8", "-key", "codec", "PCMA",
        ],
    )?;
    let id = h.handle().click_to_call("8001", "13912345678").await?;
    agent.success().await?;
    h.events
        .wait_for(|e| matches!(e, CallEvent::Transferred { target, .. } if target == "8002"))
        .await?;
    let to_seat_at_transfer =
        h.metric("hotline_sip_rtp_packets_total{direction=\"caller_to_seat\"}");
    let to_customer_at_transfer =
        h.metric("hotline_sip_rtp_packets_total{direction=\"seat_to_caller\"}");
    customer.success().await?;
    target.success().await?;
    let (ended, rec) = ended_record(&h).await?;
    assert_eq!(ended, id);
    assert_eq!(rec.direction, "outbound");
    assert_eq!(rec.seat.as_deref(), Some("8001"));
    assert_eq!(rec.transferred_to.as_deref(), Some("8002"));
    assert_eq!(rec.end_cause.as_deref(), Some("normal"));
    assert_eq!(rec.hangup_side.as_deref(), Some("callee"));
    // After the transfer the customer's audio reached 8002 and its echo came back.
    let to_seat = h.metric("hotline_sip_rtp_packets_total{direction=\"caller_to_seat\"}")
        - to_seat_at_transfer;
    let to_customer = h.metric("hotline_sip_rtp_packets_total{direction=\"seat_to_caller\"}")
        - to_customer_at_transfer;
    assert!(
        to_seat >= 20 && to_customer >= 20,
        "audio through the re-bridged relay: {to_seat} / {to_customer}"
    );
    assert_eq!(h.handle().status().await?.trunk_channels_in_use, 0);
    h.finish().await
}

/// The customer's network answers a click-to-call with early media (183 + SDP, an
/// announcement) and then busy: the agent hears the announcement through the relay before any
/// answer, and the call ends "rejected" without ever being answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_call_relays_the_customer_networks_early_media_to_the_seat() -> Result<()> {
    let customer_port = free_udp_port();
    let h = Harness::start(click_to_call_config(customer_port)).await?;
    let seat = seat(&h, "seat_uas.xml", "8", "PCMA", &[]).await?;
    let (cp, mp) = (customer_port.to_string(), free_udp_port().to_string());
    let customer = Sipp::spawn(
        h.addr,
        "customer_early_media_busy.xml",
        &["-m", "1", "-p", &cp, "-mp", &mp],
    )?;
    let id = h.handle().click_to_call("8001", "13912345678").await?;
    customer.success().await?;
    seat.success().await?;
    let (ended, rec) = ended_record(&h).await?;
    assert_eq!(ended, id);
    assert_eq!(rec.end_cause.as_deref(), Some("rejected"));
    assert_eq!(rec.a_final_code, Some(486));
    assert!(rec.answered_at.is_none(), "never answered");
    // The announcement reached the seat (the pcap plays for 2 s before the 486: ~100 packets).
    let to_seat = h.metric("hotline_sip_rtp_packets_total{direction=\"caller_to_seat\"}");
    assert!(to_seat >= 50, "early media customer→seat: {to_seat}");
    assert_eq!(h.handle().status().await?.trunk_channels_in_use, 0);
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_blind_transfers_the_caller_to_another_seat() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    // Seat 8001 answers and transfers with REFER to 8002.
    let (target, transferor) = transfer_seats(&h, "seat_uas_refer.xml").await?;
    let mp = free_udp_port().to_string();
    let caller = Sipp::spawn(
        h.addr,
        "uac_call.xml",
        &["-m", "1", "-s", DID, "-mp", &mp, "-d", "3000"],
    )?;
    transferor.success().await?;
    h.events
        .wait_for(|e| matches!(e, CallEvent::Transferred { target, .. } if target == "8002"))
        .await?;
    caller.success().await?;
    target.success().await?;
    let (_, rec) = ended_record(&h).await?;
    assert_eq!(rec.seat.as_deref(), Some("8001"));
    assert_eq!(rec.transferred_to.as_deref(), Some("8002"));
    assert_eq!(rec.end_cause.as_deref(), Some("normal"));
    assert_eq!(rec.hangup_side.as_deref(), Some("caller"));
    // Audio reached the new seat and came back through the re-bridged relay.
    assert!(h.metric("hotline_sip_rtp_packets_total{direction=\"seat_to_caller\"}") > 0);
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timers_are_honoured_and_unrefreshed_sessions_end() -> Result<()> {
    let db = hotline_testkit::ExternalDb::create(hotline_testkit::Backend::Sqlite)
        .await?
        .context("db")?;
    hotline_sip_gateway::add_seat(&db.db.pool, "8001", PASSWORD, "hotline", 0).await?;
    let clock = hotline_core::ManualClock::new(1_700_000_000_000);
    let h = Harness::start_on(base_config(), db, std::sync::Arc::new(clock.clone())).await?;
    let (seat, trunk) = seat_and_trunk(&h).await?;
    // Too short an interval: 422 with Min-SE (RFC 4028 §8.1).
    let short = invite(&trunk, 1, 40000, (8, "PCMA")).replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSupported: timer\r\nSession-Expires: 30\r\n",
    );
    trunk.send(short.as_bytes()).await?;
    let r = trunk.recv_response("INVITE", true).await?;
    assert_eq!(r.status, 422);
    assert_eq!(r.header("Min-SE").as_deref(), Some("90"));
    // 90 s is accepted and echoed with the caller as refresher.
    let ok_se = invite(&trunk, 2, 40000, (8, "PCMA")).replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSupported: timer\r\nSession-Expires: 90\r\n",
    );
    trunk.send(ok_se.as_bytes()).await?;
    let offered = recv_request(&seat, "INVITE").await?;
    let sdp = "v=0\r\no=s 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    seat.send(answer(&offered, "200 OK", Some("seat1"), sdp).as_bytes())
        .await?;
    let ok = trunk.recv_response("INVITE", true).await?;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        ok.header("Session-Expires").as_deref(),
        Some("90;refresher=uac")
    );
    assert_eq!(ok.header("Require").as_deref(), Some("timer"));
    let ack = format!(
        "ACK sip:hotline@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKack2;rport\r\nFrom: <sip:13900000002@{me}>;tag=f2\r\nTo: {to}\r\nCall-ID: call-2@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        srv = trunk.server,
        me = trunk.local,
        to = ok.header("To").context("To")?
    );
    trunk.send(ack.as_bytes()).await?;
    h.events
        .wait_for(|e| matches!(e, CallEvent::Bridged { .. }))
        .await?;
    trunk.barrier().await?; // the ACK has been handled before time moves
    // Nobody refreshes: BYE to both legs min(32, SE/3) s before expiry (RFC 4028 §10).
    clock.advance_ms(61_000);
    recv_request(&trunk, "BYE").await?;
    recv_request(&seat, "BYE").await?;
    let (_, rec) = ended_record(&h).await?;
    assert_eq!(rec.end_cause.as_deref(), Some("session_expired"));
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_peers_get_options_keepalives_and_a_silent_peer_is_marked_down() -> Result<()> {
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let mut cfg = base_config();
    cfg.qualify_interval_secs = 30;
    cfg.trunk.peers[0].port = Some(peer.local_addr()?.port());
    let db = hotline_testkit::ExternalDb::create(hotline_testkit::Backend::Sqlite)
        .await?
        .context("db")?;
    let clock = hotline_core::ManualClock::new(1_700_000_000_000);
    let h = Harness::start_on(cfg, db, std::sync::Arc::new(clock.clone())).await?;
    clock.advance_ms(2_000);
    let mut buf = vec![0u8; 4096];
    let (n, from) = tokio::time::timeout(T, peer.recv_from(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(text.starts_with("OPTIONS sip:127.0.0.1:"), "{text}");
    peer.send_to(answer(&text, "200 OK", Some("p"), "").as_bytes(), from)
        .await?;
    // Each status() is a round trip through the gateway's task, after the response.
    let series = "hotline_sip_trunk_peer_up{peer=\"e1\"}";
    tokio::time::timeout(T, async {
        while h.metric(series) != 1 {
            h.handle().status().await?;
            tokio::task::yield_now().await;
        }
        Ok::<_, anyhow::Error>(())
    })
    .await??;

    // The peer stops answering (issue 12: a trunk peer that stops answering OPTIONS is marked
    // down): the next keepalive goes unanswered; when its transaction times out (Timer F,
    // 64·T1 = 32 s, RFC 3261 §17.1.2.2) the peer is down.
    clock.advance_ms(30_000);
    let (n, _) = tokio::time::timeout(T, peer.recv_from(&mut buf)).await??;
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("OPTIONS "));
    clock.advance_ms(33_000);
    tokio::time::timeout(T, async {
        while h.metric(series) != 0 {
            h.handle().status().await?;
            tokio::task::yield_now().await;
        }
        Ok::<_, anyhow::Error>(())
    })
    .await??;
    // The health watcher reads the same state (docs/alerts.md, trunk_down).
    let health = h.handle().health().await?;
    assert_eq!(
        health.peers,
        vec![hotline_sip_gateway::PeerHealth {
            name: "e1".into(),
            up: Some(false)
        }]
    );
    h.finish().await
}

fn seat_invite(c: &Client, n: u32, to: &str, auth: Option<&str>) -> String {
    let sdp = "v=0\r\no=s 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40010 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n";
    let auth = auth
        .map(|a| format!("Proxy-Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "INVITE sip:{to}@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKsi{n}x{port};rport\r\nFrom: <sip:8001@{srv}>;tag=s{n}\r\nTo: <sip:{to}@{srv}>\r\nCall-ID: seatcall-{n}@test\r\nCSeq: {n} INVITE\r\nContact: <sip:8001@{me}>\r\n{auth}Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len(),
        srv = c.server,
        me = c.local,
        port = c.local.port(),
    )
}

fn ack_for(c: &Client, r: &Resp, n: u32, branch: &str) -> String {
    format!(
        "ACK sip:x@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\nFrom: <sip:8001@{srv}>;tag=s{n}\r\nTo: {to}\r\nCall-ID: seatcall-{n}@test\r\nCSeq: {n} ACK\r\nContent-Length: 0\r\n\r\n",
        srv = c.server,
        me = c.local,
        to = r.header("To").unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_authenticate_their_invites_and_call_seats_or_allowed_numbers() -> Result<()> {
    let peer = UdpSocket::bind("127.0.0.1:0").await?;
    let mut cfg = base_config();
    cfg.trunk.peers[0].port = Some(peer.local_addr()?.port());
    cfg.trunk.outbound_allow = vec!["1XXXXXXXXXX".into()];
    cfg.trunk.caller_id = DID.into();
    let h = Harness::start(cfg).await?;
    let (a, b) = (Client::new(h.addr).await?, Client::new(h.addr).await?);
    let (mut ca, mut cb) = (0, 0);
    assert_eq!(
        a.register("8001", PASSWORD, "MD5", &mut ca, None)
            .await?
            .status,
        200
    );
    assert_eq!(
        b.register("8002", PASSWORD, "MD5", &mut cb, None)
            .await?
            .status,
        200
    );
    // Unauthenticated: 407 with a challenge (RFC 3261 §22.3).
    a.send(seat_invite(&a, 1, "8002", None).as_bytes()).await?;
    let ch = a.recv_response("INVITE", true).await?;
    assert_eq!(ch.status, 407, "{}", ch.text);
    a.send(ack_for(&a, &ch, 1, &format!("z9hG4bKsi1x{}", a.local.port())).as_bytes())
        .await?;
    let www = ch.header("Proxy-Authenticate").context("challenge")?;
    let nonce = param(&www, "nonce").context("nonce")?;
    // Each use of the nonce counts up (RFC 7616 §3.4); a repeated count would be a replay.
    let auth = |to: &str, nc: u32| {
        hotline_sip_gateway::digest::client_response_nc(
            hotline_sip_gateway::digest::Algorithm::Md5,
            "8001",
            PASSWORD,
            "hotline",
            &nonce,
            "INVITE",
            &format!("sip:{to}@{}", h.addr),
            "cn",
            nc,
        )
    };
    // Seat to seat: no trunk channel.
    a.send(seat_invite(&a, 2, "8002", Some(&auth("8002", 1))).as_bytes())
        .await?;
    assert_eq!(a.recv_response("INVITE", false).await?.status, 100);
    let offered = recv_request(&b, "INVITE").await?;
    assert!(offered.contains("From: <sip:8001@"), "{offered}");
    let sdp = "v=0\r\no=s 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40012 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    b.send(answer(&offered, "200 OK", Some("b2"), sdp).as_bytes())
        .await?;
    let ok = a.recv_response("INVITE", true).await?;
    assert_eq!(ok.status, 200);
    assert!(
        ok.body().contains("a=rtpmap:0 PCMU/8000"),
        "answered in the seat's first codec"
    );
    a.send(ack_for(&a, &ok, 2, "z9hG4bKsiack2").as_bytes())
        .await?;
    assert_eq!(h.handle().status().await?.trunk_channels_in_use, 0);
    let bye = ack_for(&a, &ok, 2, "z9hG4bKsibye2")
        .replace("ACK sip", "BYE sip")
        .replace("CSeq: 2 ACK", "CSeq: 3 BYE");
    a.send(bye.as_bytes()).await?;
    assert_eq!(a.recv_response("BYE", true).await?.status, 200);
    recv_request(&b, "BYE").await?;
    let (_, rec) = ended_record(&h).await?;
    assert_eq!(rec.direction, "internal");
    assert_eq!((rec.caller.as_str(), rec.callee.as_str()), ("8001", "8002"));
    assert_eq!(rec.trunk, None);
    // A number outside the allow-list is refused (toll-fraud guard).
    a.send(seat_invite(&a, 4, "0085212345678", Some(&auth("0085212345678", 2))).as_bytes())
        .await?;
    assert_eq!(a.recv_response("INVITE", true).await?.status, 403);
    // An allowed number goes to the trunk with the hotline number as caller ID.
    a.send(seat_invite(&a, 5, "13912345678", Some(&auth("13912345678", 3))).as_bytes())
        .await?;
    let mut buf = vec![0u8; 8192];
    let (n, from) = tokio::time::timeout(T, peer.recv_from(&mut buf)).await??;
    let out = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        out.starts_with("INVITE sip:13912345678@127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains(&format!("From: <sip:{DID}@")), "{out}");
    peer.send_to(
        answer(&out, "486 Busy Here", Some("p5"), "").as_bytes(),
        from,
    )
    .await?;
    assert_eq!(a.recv_response("INVITE", true).await?.status, 486);
    let rec = list_calls(&h.pool, 1).await?.remove(0);
    assert_eq!(rec.direction, "outbound");
    assert_eq!(rec.trunk.as_deref(), Some("e1"));
    // Wrong password: challenged again and counted.
    let bad = hotline_sip_gateway::digest::client_response(
        hotline_sip_gateway::digest::Algorithm::Md5,
        "8001",
        "not-the-password",
        "hotline",
        &nonce,
        "INVITE",
        &format!("sip:8002@{}", h.addr),
        "cn",
    );
    a.send(seat_invite(&a, 6, "8002", Some(&bad)).as_bytes())
        .await?;
    assert_eq!(a.recv_response("INVITE", true).await?.status, 407);
    assert_eq!(h.metric("hotline_sip_auth_failures_total"), 1);
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_can_hang_up_a_call_on_both_legs() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let (seat, trunk) = seat_and_trunk(&h).await?;
    trunk
        .send(invite(&trunk, 7, 40000, (0, "PCMU")).as_bytes())
        .await?;
    let offered = recv_request(&seat, "INVITE").await?;
    let sdp = "v=0\r\no=s 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40004 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    seat.send(answer(&offered, "200 OK", Some("s7"), sdp).as_bytes())
        .await?;
    assert_eq!(trunk.recv_response("INVITE", true).await?.status, 200);
    let ev = h
        .events
        .wait_for(|e| matches!(e, CallEvent::Bridged { .. }))
        .await?;
    let CallEvent::Bridged { call_id, .. } = ev else {
        unreachable!()
    };
    assert!(h.handle().hangup(&call_id).await?);
    recv_request(&trunk, "BYE").await?;
    recv_request(&seat, "BYE").await?;
    let (_, rec) = ended_record(&h).await?;
    assert_eq!(rec.end_cause.as_deref(), Some("hangup"));
    assert_eq!(rec.hangup_side.as_deref(), Some("system"));
    assert!(!h.handle().hangup(&call_id).await?, "already ended");
    assert!(!h.handle().hangup("no-such-call").await?);
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_to_call_seat_can_hold_and_hang_up() -> Result<()> {
    let peer = Client::new("127.0.0.1:9".parse()?).await?;
    let mut cfg = base_config();
    cfg.trunk.peers[0].port = Some(peer.local.port());
    cfg.trunk.outbound_allow = vec!["1XXXXXXXXXX".into()];
    let h = Harness::start(cfg).await?;
    let seat = registered_seat(&h).await?;
    let id = h.handle().click_to_call("8001", "13800000000").await?;
    let sdp = |port: u16, dir: &str| {
        format!(
            "v=0\r\no=s 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na={dir}\r\n"
        )
    };
    let to_seat = recv_request(&seat, "INVITE").await?;
    assert!(to_seat.contains("From: \"13800000000\""), "{to_seat}");
    seat.send(answer(&to_seat, "200 OK", Some("st"), &sdp(40020, "sendrecv")).as_bytes())
        .await?;
    recv_request(&seat, "ACK").await?;
    // The customer leg goes to the trunk peer.
    let mut buf = vec![0u8; 8192];
    let (n, from) = tokio::time::timeout(T, peer.sock.recv_from(&mut buf)).await??;
    let to_customer = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        to_customer.starts_with("INVITE sip:13800000000@"),
        "{to_customer}"
    );
    peer.sock
        .send_to(
            answer(&to_customer, "200 OK", Some("cu"), &sdp(40022, "sendrecv")).as_bytes(),
            from,
        )
        .await?;
    h.events
        .wait_for(|e| matches!(e, CallEvent::Bridged { .. }))
        .await?;
    // The seat holds: its re-INVITE is answered from our anchor.
    let call_id = to_seat
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID: "))
        .context("Call-ID")?
        .trim()
        .to_string();
    let from_hdr = to_seat
        .lines()
        .find_map(|l| l.strip_prefix("From: "))
        .context("From")?;
    let to_hdr = to_seat
        .lines()
        .find_map(|l| l.strip_prefix("To: "))
        .context("To")?;
    let hold_sdp = sdp(40020, "sendonly");
    let reinvite = format!(
        "INVITE sip:hotline@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKc2chold;rport\r\nFrom: {to_hdr};tag=st\r\nTo: {from_hdr}\r\nCall-ID: {call_id}\r\nCSeq: 5 INVITE\r\nContact: <sip:8001@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{hold_sdp}",
        hold_sdp.len(),
        srv = h.addr,
        me = seat.local
    );
    seat.send(reinvite.as_bytes()).await?;
    let r = seat.recv_response("INVITE", true).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body().contains("a=recvonly"), "{}", r.body());
    h.events
        .wait_for(|e| matches!(e, CallEvent::Held { on_hold: true, .. }))
        .await?;
    // The seat hangs up: the customer gets BYE (after the ACK of its 200).
    let bye = format!(
        "BYE sip:hotline@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKc2cbye;rport\r\nFrom: {to_hdr};tag=st\r\nTo: {from_hdr}\r\nCall-ID: {call_id}\r\nCSeq: 6 BYE\r\nContent-Length: 0\r\n\r\n",
        srv = h.addr,
        me = seat.local
    );
    seat.send(bye.as_bytes()).await?;
    assert_eq!(seat.recv_response("BYE", true).await?.status, 200);
    loop {
        let (n, _) = tokio::time::timeout(T, peer.sock.recv_from(&mut buf)).await??;
        if buf[..n].starts_with(b"BYE ") {
            break;
        }
    }
    let (ended, rec) = ended_record(&h).await?;
    assert_eq!(ended, id);
    assert_eq!(rec.hangup_side.as_deref(), Some("caller"));
    h.finish().await
}
