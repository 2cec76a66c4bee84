//! Dialogs on the wire (an rsipstack `InviteDialog` per leg, RFC 3261 §12), as a trunk and a
//! seat see them: raw SIP over UDP, every wait bounded.
//!
//! A seat behind NAT: its REGISTER, its 200 and its SDP name a private address (10.0.0.5,
//! RFC 1918) that cannot be reached from here. Requests in its dialog still have that Contact
//! as their Request-URI (§12.2.1.1), but they go to the flow its REGISTER came from (§18.2.2
//! `received`, RFC 3581 `rport`), and its media goes to where its RTP comes from (symmetric
//! RTP, RFC 4961). (rsipstack 0.7.14's dialogs send UDP in-dialog requests to the Contact
//! unless a `TargetLocator` maps it, which the gateway's does: `src/sip/dialogs.rs`.)
//!
//! Requests that name the dialog's Call-ID but not its tags get 481, and requests out of
//! order 500 (§12.2.2); the call goes on.

use anyhow::{Context, Result};
use hotline_core::events::CallEvent;
use tokio::net::UdpSocket;
use tokio::time::{Duration, timeout};

use crate::harness::*;

const PRIVATE: &str = "10.0.0.5:5062";

fn request_uri(text: &str) -> Option<&str> {
    text.lines().next()?.split(' ').nth(1)
}

fn header_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

fn audio_port(sdp: &str) -> Result<u16> {
    Ok(sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .context("m= line")?
        .parse()?)
}

/// An RTP packet (PCMA, 20 ms of `fill`).
fn rtp(seq: u16, ssrc: u32, fill: u8) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend(std::iter::repeat_n(fill, 160));
    p
}

/// Sends `packet` from `from` to `to` every 20 ms (the RTP pace) until `at` receives a packet
/// whose payload is `fill`, for at most 5 s.
async fn until_heard(
    from: &UdpSocket,
    to: std::net::SocketAddr,
    at: &UdpSocket,
    fill: u8,
) -> Result<()> {
    let mut buf = [0u8; 2048];
    for seq in 0..250u16 {
        from.send_to(&rtp(seq, 0xca11, fill), to).await?;
        if let Ok(r) = timeout(Duration::from_millis(20), at.recv_from(&mut buf)).await {
            let (n, _) = r?;
            if n > 12 && buf[12..n].iter().all(|&b| b == fill) {
                return Ok(());
            }
        }
    }
    anyhow::bail!("no audio arrived in 5 s")
}

/// A request from the trunk inside call `n`'s dialog (leg A), with the tags given.
fn trunk_request(
    trunk: &Client,
    n: u32,
    method: &str,
    cseq: u32,
    from_tag: &str,
    to: &str,
) -> String {
    format!(
        "{method} sip:hotline@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{method}{n}x{cseq};rport\r\nFrom: <sip:1390000{n:04}@{me}>;tag={from_tag}\r\nTo: {to}\r\nCall-ID: call-{n}@test\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        srv = trunk.server,
        me = trunk.local
    )
}

/// A BYE from the seat in the dialog of the INVITE it was `offered` (with another To tag
/// than ours when `to_tag` is given).
fn seat_bye(seat: &Client, offered: &str, to_tag: Option<&str>) -> Result<String> {
    let mut to = header_value(offered, "From").context("From")?.to_string();
    if let Some(t) = to_tag {
        to = format!("{};tag={t}", to.split(";tag=").next().unwrap_or(""));
    }
    Ok(format!(
        "BYE sip:hotline@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKseatbye;rport\r\nFrom: {from};tag=seat\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        srv = seat.server,
        me = seat.local,
        from = header_value(offered, "To").context("To")?,
        cid = header_value(offered, "Call-ID").context("Call-ID")?,
    ))
}

/// `c` answers the `bye` it got; the call ends and the gateway stops cleanly.
async fn hang_up(h: Harness, c: &Client, bye: &str) -> Result<()> {
    c.send(answer(bye, "200 OK", None, "").as_bytes()).await?;
    h.events
        .wait_for(|e| matches!(e, CallEvent::Ended { .. }))
        .await?;
    h.finish().await
}

/// Sends `req` and returns the status of its final answer.
async fn status(c: &Client, req: String, method: &str) -> Result<u16> {
    c.send(req.as_bytes()).await?;
    Ok(c.recv_response(method, true).await?.status)
}

/// A trunk call `n` to the DID, answered by `seat` (whose Contact is `contact`) with `sdp`
/// and ACKed on both legs. Returns the trunk, the seat's INVITE, and our 200 to the trunk.
async fn bridged(
    h: &Harness,
    seat: &Client,
    contact: &str,
    n: u32,
    caller_rtp: u16,
    sdp: &str,
) -> Result<(Client, String, Resp)> {
    let trunk = Client::new(h.addr).await?;
    trunk
        .send(invite(&trunk, n, caller_rtp, (8, "PCMA")).as_bytes())
        .await?;
    let offered = recv_request(seat, "INVITE").await?;
    let ok = answer(&offered, "200 OK", Some("seat"), sdp).replace("<sip:8001@127.0.0.1>", contact);
    seat.send(ok.as_bytes()).await?;
    recv_request(seat, "ACK").await?;
    let answered = trunk.recv_response("INVITE", true).await?;
    anyhow::ensure!(answered.status == 200, "{}", answered.text);
    let to = answered.header("To").context("To")?;
    trunk
        .send(trunk_request(&trunk, n, "ACK", 1, &format!("f{n}"), &to).as_bytes())
        .await?;
    h.events
        .wait_for(|e| matches!(e, CallEvent::Bridged { .. }))
        .await?;
    Ok((trunk, offered, answered))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_behind_nat_gets_its_requests_and_audio_on_its_flow() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let seat = Client::new(h.addr).await?;
    let contact = format!("<sip:8001@{PRIVATE}>");
    let mut cseq = 0;
    let r = seat
        .register_contact("8001", PASSWORD, "MD5", &mut cseq, None, &contact)
        .await?;
    assert_eq!(r.status, 200, "{}", r.text);
    let (seat_rtp, caller_rtp) = (
        UdpSocket::bind("127.0.0.1:0").await?,
        UdpSocket::bind("127.0.0.1:0").await?,
    );
    // The seat answers from behind NAT: private Contact, private media address.
    let sdp = "v=0\r\no=s 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 40030 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    let (trunk, offered, answered) =
        bridged(&h, &seat, &contact, 7, caller_rtp.local_addr()?.port(), sdp).await?;
    // The INVITE named the Contact and reached the socket the REGISTER came from (and so did
    // the ACK, or `bridged` would not have returned).
    let uri = format!("sip:8001@{PRIVATE}");
    assert_eq!(request_uri(&offered), Some(uri.as_str()), "{offered}");

    // Media: the seat speaks first, from its real socket; the relay latches to it and the
    // caller's audio reaches the seat there, not 10.0.0.5:40030. And the other way.
    let seat_leg = (
        [127, 0, 0, 1],
        audio_port(offered.split("\r\n\r\n").nth(1).unwrap_or(""))?,
    )
        .into();
    let caller_leg = ([127, 0, 0, 1], audio_port(answered.body())?).into();
    until_heard(&seat_rtp, seat_leg, &caller_rtp, 0x55).await?;
    until_heard(&caller_rtp, caller_leg, &seat_rtp, 0x2a).await?;

    // The caller hangs up: the BYE names the Contact and reaches the seat's flow.
    let to = answered.header("To").context("To")?;
    trunk
        .send(trunk_request(&trunk, 7, "BYE", 2, "f7", &to).as_bytes())
        .await?;
    assert_eq!(trunk.recv_response("BYE", true).await?.status, 200);
    let seat_bye = recv_request(&seat, "BYE").await?;
    assert_eq!(request_uri(&seat_bye), Some(uri.as_str()), "{seat_bye}");
    hang_up(h, &seat, &seat_bye).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_outside_the_dialog_or_out_of_order_are_refused_and_the_call_goes_on() -> Result<()>
{
    let h = Harness::start(base_config()).await?;
    let seat = registered_seat(&h).await?;
    let sdp = "v=0\r\no=s 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40060 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    let (trunk, offered, answered) =
        bridged(&h, &seat, "<sip:8001@127.0.0.1>", 8, 40_070, sdp).await?;
    let to = answered.header("To").context("To")?;
    // The Call-ID is the call's, the tags are not its dialog's: 481 (RFC 3261 §12.2.2).
    let stranger = to.replace(";tag=", ";tag=x");
    let req = trunk_request(&trunk, 8, "BYE", 2, "f8", &stranger);
    assert_eq!(status(&trunk, req, "BYE").await?, 481);
    let req = trunk_request(&trunk, 8, "BYE", 3, "someone", &to);
    assert_eq!(status(&trunk, req, "BYE").await?, 481);
    // In the dialog and in order: served. Then a CSeq lower than the last: 500.
    let req = trunk_request(&trunk, 8, "INFO", 5, "f8", &to);
    assert_eq!(status(&trunk, req, "INFO").await?, 200);
    let req = trunk_request(&trunk, 8, "BYE", 4, "f8", &to);
    assert_eq!(status(&trunk, req, "BYE").await?, 500);
    // The seat's leg is a dialog of its own: its tag is not the caller's.
    let seat_bye = seat_bye(&seat, &offered, Some("wrong"))?;
    assert_eq!(status(&seat, seat_bye, "BYE").await?, 481);
    assert!(
        !h.events
            .call_events()
            .iter()
            .any(|e| matches!(e, CallEvent::Ended { .. })),
        "the call goes on"
    );
    // The caller's own BYE, in order, ends it.
    let req = trunk_request(&trunk, 8, "BYE", 6, "f8", &to);
    assert_eq!(status(&trunk, req, "BYE").await?, 200);
    let bye = recv_request(&seat, "BYE").await?;
    hang_up(h, &seat, &bye).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_that_record_route_stay_on_the_path_of_both_legs() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let seat = registered_seat(&h).await?;
    let trunk = Client::new(h.addr).await?;
    // Two proxies between the trunk and us (RFC 3261 §16.6 step 4: the nearest one on top).
    // Requests in the dialog go to the nearest (§12.2.1.1), played by the trunk's socket.
    let rr = format!("<sip:{};lr>, <sip:sbc.example;lr;ftag=f9>", trunk.local);
    let inv = invite(&trunk, 9, 40_080, (8, "PCMA")).replacen(
        "\r\nFrom:",
        &format!("\r\nRecord-Route: {rr}\r\nFrom:"),
        1,
    );
    trunk.send(inv.as_bytes()).await?;
    let offered = recv_request(&seat, "INVITE").await?;
    assert!(
        header_value(&offered, "Record-Route").is_none(),
        "the seat's leg is a dialog of ours, not the trunk's"
    );
    // The seat's proxy (played by the seat's socket) record-routes its 200.
    let sdp = "v=0\r\no=s 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40090 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    let seat_proxy = format!("<sip:{};lr>", seat.local);
    let ok = answer(&offered, "200 OK", Some("seat"), sdp).replacen(
        "\r\n",
        &format!("\r\nRecord-Route: {seat_proxy}\r\n"),
        1,
    );
    seat.send(ok.as_bytes()).await?;
    // Our ACK to the seat routes through its proxy (§12.1.2, §13.2.2.4).
    let ack = recv_request(&seat, "ACK").await?;
    assert_eq!(
        header_value(&ack, "Route"),
        Some(seat_proxy.as_str()),
        "{ack}"
    );
    assert_eq!(request_uri(&ack), Some("sip:8001@127.0.0.1"));
    // Our 200 to the trunk carries its Record-Route as it came (§12.1.1).
    let answered = trunk.recv_response("INVITE", true).await?;
    assert_eq!(answered.status, 200, "{}", answered.text);
    assert_eq!(
        answered.header("Record-Route").as_deref(),
        Some(rr.as_str())
    );
    let to = answered.header("To").context("To")?;
    trunk
        .send(trunk_request(&trunk, 9, "ACK", 1, "f9", &to).as_bytes())
        .await?;
    h.events
        .wait_for(|e| matches!(e, CallEvent::Bridged { .. }))
        .await?;
    // The seat hangs up: our BYE to the trunk names its Contact and routes through both of
    // its proxies, in the order they record-routed.
    assert_eq!(
        status(&seat, seat_bye(&seat, &offered, None)?, "BYE").await?,
        200
    );
    let bye = recv_request(&trunk, "BYE").await?;
    assert_eq!(
        request_uri(&bye).map(str::to_owned),
        Some(format!("sip:caller@{}", trunk.local)),
        "{bye}"
    );
    let routes: Vec<&str> = bye
        .lines()
        .filter_map(|l| l.strip_prefix("Route: "))
        .collect();
    assert_eq!(
        routes,
        [
            format!("<sip:{};lr>", trunk.local),
            "<sip:sbc.example;lr;ftag=f9>".to_string(),
        ]
    );
    hang_up(h, &trunk, &bye).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_requiring_an_unknown_extension_gets_420_and_the_retry_goes_through() -> Result<()>
{
    let h = Harness::start(base_config()).await?;
    let seat = registered_seat(&h).await?;
    let trunk = Client::new(h.addr).await?;
    // A media gateway that requires reliable provisionals (RFC 3262) and session timers.
    let inv = invite(&trunk, 10, 40_100, (8, "PCMA"));
    let strict = inv.replacen("\r\nFrom:", "\r\nRequire: 100rel, timer\r\nFrom:", 1);
    trunk.send(strict.as_bytes()).await?;
    let refused = trunk.recv_response("INVITE", true).await?;
    assert_eq!(refused.status, 420, "{}", refused.text);
    assert_eq!(refused.header("Unsupported").as_deref(), Some("100rel"));
    assert_eq!(
        h.metric("hotline_sip_calls_rejected_total{reason=\"extension\"}"),
        1
    );
    let to = refused.header("To").context("To")?;
    trunk
        .send(trunk_request(&trunk, 10, "ACK", 1, "f10", &to).as_bytes())
        .await?;
    // It tries again with 100rel merely supported (RFC 3261 §8.1.3.5): the call goes on.
    let retry = inv
        .replace("z9hG4bKinv10", "z9hG4bKinv10b")
        .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE")
        .replacen("\r\nFrom:", "\r\nSupported: 100rel, timer\r\nFrom:", 1);
    trunk.send(retry.as_bytes()).await?;
    let offered = recv_request(&seat, "INVITE").await?;
    assert!(offered.contains("sip:8001@"), "{offered}");
    h.finish().await
}

/// A gateway behind a NAT of its own (or listening on 0.0.0.0) names its advertised address
/// in what it sends: in the INVITE the engine builds, and in the BYE the leg's rsipstack
/// dialog builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_dialogs_build_name_the_advertised_address() -> Result<()> {
    let mut cfg = base_config();
    cfg.advertised_ip = Some("127.0.0.2".parse()?);
    let h = Harness::start(cfg).await?;
    let ours = format!("127.0.0.2:{}", h.addr.port());
    let seat = registered_seat(&h).await?;
    let sdp = "v=0\r\no=s 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40120 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    let (trunk, offered, answered) =
        bridged(&h, &seat, "<sip:8001@127.0.0.1>", 11, 40_130, sdp).await?;
    let via = header_value(&offered, "Via").context("Via")?;
    assert!(via.contains(&ours), "{offered}");
    // The caller hangs up: the seat's BYE comes from its leg's dialog.
    let to = answered.header("To").context("To")?;
    let bye = trunk_request(&trunk, 11, "BYE", 2, "f11", &to);
    assert_eq!(status(&trunk, bye, "BYE").await?, 200);
    let seat_bye = recv_request(&seat, "BYE").await?;
    let via = header_value(&seat_bye, "Via").context("Via")?;
    assert!(via.contains(&ours), "{seat_bye}");
    hang_up(h, &seat, &seat_bye).await
}
