//! The transaction layer on the wire (rsipstack's, RFC 3261 §17 and RFC 6026), as a phone or
//! a trunk sees it when messages are lost or repeated: raw SIP over UDP, real timers (T1 =
//! 500 ms), every wait bounded.

use anyhow::{Context, Result};
use hotline_core::events::CallEvent;

use crate::harness::*;

const REQUESTS: &str = "hotline_sip_messages_received_total{transport=\"UDP\",kind=\"request\"}";

fn branch(text: &str) -> Option<String> {
    let via = text.lines().find(|l| l.starts_with("Via: "))?;
    param(via, "branch")
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retransmitted_request_is_answered_again_and_handled_once() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let c = Client::new(h.addr).await?;
    let options = format!(
        "OPTIONS sip:{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKrt1;rport\r\nFrom: <sip:r@{me}>;tag=r1\r\nTo: <sip:{srv}>\r\nCall-ID: rt-1@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        srv = c.server,
        me = c.local
    );
    c.send(options.as_bytes()).await?;
    let first = c.recv_response("OPTIONS", true).await?;
    // The answer was lost: the phone sends the request again (Timer E) and gets the same
    // answer (same To tag) from the transaction; the engine does not see it twice.
    c.send(options.as_bytes()).await?;
    let again = c.recv_response("OPTIONS", true).await?;
    assert_eq!(first.status, 200);
    assert_eq!(again.status, 200);
    assert_eq!(first.header("To"), again.header("To"));
    c.barrier().await?;
    assert_eq!(h.metric(REQUESTS), 2, "the OPTIONS once, the barrier once");
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_invite_is_answered_again_until_its_ack() -> Result<()> {
    let mut cfg = base_config();
    cfg.routes.clear();
    let h = Harness::start(cfg).await?;
    let trunk = Client::new(h.addr).await?;
    trunk
        .send(invite(&trunk, 1, 40_000, (8, "PCMA")).as_bytes())
        .await?;
    let refused = trunk.recv_response("INVITE", true).await?;
    assert_eq!(refused.status, 404, "{}", refused.text);
    // No ACK: the final answer comes again (Timer G, RFC 3261 §17.2.1), the same one.
    let again = trunk.recv_response("INVITE", true).await?;
    assert_eq!(again.status, 404);
    assert_eq!(refused.header("To"), again.header("To"));
    let ack = format!(
        "ACK sip:{DID}@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKinv1;rport\r\nFrom: <sip:13900000001@{me}>;tag=f1\r\nTo: {to}\r\nCall-ID: call-1@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        srv = trunk.server,
        me = trunk.local,
        to = refused.header("To").context("To")?
    );
    trunk.send(ack.as_bytes()).await?;
    trunk.barrier().await?;
    // The INVITE was refused once, however often its answer went out.
    assert_eq!(
        h.metric("hotline_sip_calls_rejected_total{reason=\"route\"}"),
        1
    );
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_to_a_silent_seat_is_sent_again_and_its_refusal_acked_in_the_transaction()
-> Result<()> {
    let h = Harness::start(base_config()).await?;
    let (seat, trunk) = seat_and_trunk(&h).await?;
    trunk
        .send(invite(&trunk, 2, 40_010, (8, "PCMA")).as_bytes())
        .await?;
    let offered = recv_request(&seat, "INVITE").await?;
    // The seat stays silent: the INVITE comes again (Timer A, RFC 3261 §17.1.1.2), the same
    // transaction.
    let again = recv_request(&seat, "INVITE").await?;
    assert_eq!(branch(&offered), branch(&again));
    seat.send(answer(&offered, "486 Busy Here", Some("busy"), "").as_bytes())
        .await?;
    // The ACK of a non-2xx final belongs to the INVITE's transaction: same branch, same
    // Request-URI (§17.1.1.3).
    let ack = recv_request(&seat, "ACK").await?;
    assert_eq!(branch(&ack), branch(&offered));
    assert_eq!(
        ack.lines().next(),
        offered
            .lines()
            .next()
            .map(|l| l.replacen("INVITE", "ACK", 1))
            .as_deref()
    );
    let failed = trunk.recv_response("INVITE", true).await?;
    assert!(failed.status >= 400, "{}", failed.text);
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_2xx_from_a_seat_is_acked_the_retransmitted_one_too() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let (seat, trunk) = seat_and_trunk(&h).await?;
    trunk
        .send(invite(&trunk, 3, 40_020, (8, "PCMA")).as_bytes())
        .await?;
    let offered = recv_request(&seat, "INVITE").await?;
    let sdp = "v=0\r\no=s 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40030 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    let ok = answer(&offered, "200 OK", Some("up"), sdp);
    seat.send(ok.as_bytes()).await?;
    // The 2xx ACK is a transaction of its own (new branch, RFC 3261 §13.2.2.4), sent to where
    // the seat registered from.
    let ack = recv_request(&seat, "ACK").await?;
    assert_ne!(branch(&ack), branch(&offered));
    assert_eq!(header(&ack, "CSeq"), Some("1 ACK"));
    // The seat did not get it and sends its 200 again: it is ACKed again.
    seat.send(ok.as_bytes()).await?;
    let again = recv_request(&seat, "ACK").await?;
    assert_eq!(header(&again, "CSeq"), Some("1 ACK"));
    assert_eq!(header(&again, "To"), header(&ack, "To"));
    let answered = trunk.recv_response("INVITE", true).await?;
    assert_eq!(answered.status, 200, "{}", answered.text);
    h.events
        .wait_for(|e| matches!(e, CallEvent::Answered { .. }))
        .await?;
    h.finish().await
}

/// One SIP message from a TCP stream, framed by Content-Length (RFC 3261 §18.3).
async fn read_frame(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Result<String> {
    use tokio::io::AsyncReadExt;
    tokio::time::timeout(T, async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let len: usize = header(&head, "Content-Length")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let frame: Vec<u8> = buf.drain(..end + 4 + len).collect();
                    return Ok(String::from_utf8_lossy(&frame).into_owned());
                }
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "connection closed");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_registered_over_tcp_gets_its_calls_on_that_connection() -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let h = Harness::start(base_config()).await?;
    let mut s = tokio::net::TcpStream::connect(h.addr).await?;
    let me = s.local_addr()?;
    let srv = h.addr;
    let register = |cseq: u32, auth: Option<&str>| {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER sip:{srv} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKtcpreg{cseq}\r\nFrom: <sip:8001@{srv}>;tag=t1\r\nTo: <sip:8001@{srv}>\r\nCall-ID: tcp-reg@test\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:8001@{me};transport=tcp>\r\n{auth}Expires: 300\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let mut buf = Vec::new();
    s.write_all(register(1, None).as_bytes()).await?;
    let challenge = read_frame(&mut s, &mut buf).await?;
    let www = challenge
        .lines()
        .filter_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .find(|h| h.contains("algorithm=MD5"))
        .context("no MD5 challenge")?;
    let auth = hotline_sip_gateway::digest::client_response(
        hotline_sip_gateway::digest::Algorithm::parse("MD5").context("MD5")?,
        "8001",
        PASSWORD,
        &param(www, "realm").context("realm")?,
        &param(www, "nonce").context("nonce")?,
        "REGISTER",
        &format!("sip:{srv}"),
        "tcp1",
    );
    s.write_all(register(2, Some(&auth)).as_bytes()).await?;
    let ok = read_frame(&mut s, &mut buf).await?;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    // A trunk call over UDP reaches the seat on its TCP connection (RFC 3261 §18.2.2 / the
    // flow it registered on), and the seat's answer over TCP bridges it.
    let trunk = Client::new(h.addr).await?;
    trunk
        .send(invite(&trunk, 4, 40_040, (8, "PCMA")).as_bytes())
        .await?;
    let offered = read_frame(&mut s, &mut buf).await?;
    assert!(offered.starts_with("INVITE "), "{offered}");
    assert!(header(&offered, "Via").is_some_and(|v| v.starts_with("SIP/2.0/TCP")));
    let sdp = "v=0\r\no=s 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40050 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    s.write_all(answer(&offered, "200 OK", Some("tcpseat"), sdp).as_bytes())
        .await?;
    let ack = read_frame(&mut s, &mut buf).await?;
    assert!(ack.starts_with("ACK "), "{ack}");
    let answered = trunk.recv_response("INVITE", true).await?;
    assert_eq!(answered.status, 200, "{}", answered.text);
    h.events
        .wait_for(|e| matches!(e, CallEvent::Bridged { .. }))
        .await?;
    h.finish().await
}
