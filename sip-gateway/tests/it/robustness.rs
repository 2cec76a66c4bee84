//! Malformed input: every case is followed by an OPTIONS that must still be answered;
//! cases that carry enough headers must get 400 (or another precise error), the rest are
//! dropped (RFC 3261 §18.3, §8.2.2).

use anyhow::{Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

fn msg(start: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut m = format!("{start}\r\n");
    for h in headers {
        m.push_str(h);
        m.push_str("\r\n");
    }
    m.push_str("\r\n");
    m.push_str(body);
    m.into_bytes()
}

const VIA: &str = "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbad;rport";
const FROM: &str = "From: <sip:bad@127.0.0.1>;tag=b1";
const TO: &str = "To: <sip:gw@127.0.0.1>";
const CALLID: &str = "Call-ID: bad-case@test";
const CSEQ: &str = "CSeq: 1 OPTIONS";
const CL0: &str = "Content-Length: 0";
const OPT: &str = "OPTIONS sip:gw@127.0.0.1 SIP/2.0";

/// `Some(code)`: the case must be answered with `code`; `None`: it must be dropped silently.
fn corpus() -> Vec<(&'static str, Vec<u8>, Option<u16>)> {
    let via = |b: &str| format!("Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{b};rport");
    vec![
        ("garbage start line", msg("GARBAGE", &[], ""), None),
        (
            "binary junk",
            (0..300u32).map(|i| (i * 7919 % 251) as u8).collect(),
            None,
        ),
        (
            "start line without version",
            msg(
                "OPTIONS sip:gw@127.0.0.1",
                &[VIA, FROM, TO, CALLID, CSEQ, CL0],
                "",
            ),
            None,
        ),
        (
            "non-UTF-8 start line",
            [
                b"OPT\xff\xfeIONS sip:gw SIP/2.0\r\n".as_slice(),
                VIA.as_bytes(),
                b"\r\n\r\n",
            ]
            .concat(),
            None,
        ),
        (
            "missing Call-ID",
            msg(OPT, &[VIA, FROM, TO, CSEQ, CL0], ""),
            None,
        ),
        (
            "missing CSeq",
            msg(OPT, &[VIA, FROM, TO, CALLID, CL0], ""),
            None,
        ),
        (
            "missing Via",
            msg(OPT, &[FROM, TO, CALLID, CSEQ, CL0], ""),
            None,
        ),
        (
            "missing From",
            msg(OPT, &[VIA, TO, CALLID, CSEQ, CL0], ""),
            None,
        ),
        (
            "CSeq method mismatch",
            msg(
                OPT,
                &[&via("m1"), FROM, TO, CALLID, "CSeq: 1 INVITE", CL0],
                "",
            ),
            Some(400),
        ),
        (
            "CSeq not a number",
            msg(
                OPT,
                &[&via("m2"), FROM, TO, CALLID, "CSeq: one OPTIONS", CL0],
                "",
            ),
            Some(400),
        ),
        (
            "huge Content-Length",
            msg(
                OPT,
                &[
                    &via("m3"),
                    FROM,
                    TO,
                    CALLID,
                    CSEQ,
                    "Content-Length: 99999999",
                ],
                "",
            ),
            Some(400),
        ),
        (
            "negative Content-Length",
            msg(
                OPT,
                &[&via("m4"), FROM, TO, CALLID, CSEQ, "Content-Length: -5"],
                "",
            ),
            Some(400),
        ),
        (
            "Content-Length beyond the datagram",
            msg(
                OPT,
                &[&via("m5"), FROM, TO, CALLID, CSEQ, "Content-Length: 50"],
                "short",
            ),
            Some(400),
        ),
        (
            "duplicate Call-ID",
            msg(
                OPT,
                &[
                    &via("m6"),
                    FROM,
                    TO,
                    CALLID,
                    "Call-ID: other@test",
                    CSEQ,
                    CL0,
                ],
                "",
            ),
            Some(400),
        ),
        (
            "duplicate CSeq",
            msg(
                OPT,
                &[&via("m7"), FROM, TO, CALLID, CSEQ, "CSeq: 2 OPTIONS", CL0],
                "",
            ),
            Some(400),
        ),
        (
            "duplicate To",
            msg(
                OPT,
                &[&via("m8"), FROM, TO, "To: <sip:x@y>", CALLID, CSEQ, CL0],
                "",
            ),
            Some(400),
        ),
        (
            "Max-Forwards not a number",
            msg(
                OPT,
                &[
                    &via("m9"),
                    FROM,
                    TO,
                    CALLID,
                    CSEQ,
                    "Max-Forwards: lots",
                    CL0,
                ],
                "",
            ),
            Some(400),
        ),
        (
            "unsupported SIP version",
            msg(
                "OPTIONS sip:gw@127.0.0.1 SIP/3.0",
                &[&via("m10"), FROM, TO, CALLID, CSEQ, CL0],
                "",
            ),
            Some(505),
        ),
        (
            "Via without host",
            msg(
                OPT,
                &[
                    "Via: SIP/2.0/UDP ;branch=z9hG4bKx",
                    FROM,
                    TO,
                    CALLID,
                    CSEQ,
                    CL0,
                ],
                "",
            ),
            None,
        ),
        (
            "non-UTF-8 header value",
            [
                msg(OPT, &[&via("m11"), FROM, TO, CALLID, CSEQ, CL0], "").as_slice(),
                b"",
            ]
            .concat()
            .into_iter()
            .map(|b| if b == b'@' { 0xff } else { b })
            .collect(),
            None,
        ),
        (
            "header folding is legal",
            msg(
                OPT,
                &[
                    &via("m12"),
                    FROM,
                    "To:",
                    " <sip:gw@127.0.0.1>",
                    CALLID,
                    CSEQ,
                    CL0,
                ],
                "",
            ),
            Some(200),
        ),
        (
            "line without a colon",
            msg(
                OPT,
                &[&via("m13"), FROM, TO, CALLID, CSEQ, "NoColonHere", CL0],
                "",
            ),
            Some(200),
        ),
        (
            "malformed From",
            msg(
                OPT,
                &[&via("m14"), "From: <<<>>>", TO, CALLID, CSEQ, CL0],
                "",
            ),
            Some(400),
        ),
        (
            "Max-Forwards 0 on INVITE",
            msg(
                "INVITE sip:gw@127.0.0.1 SIP/2.0",
                &[
                    &via("m15"),
                    FROM,
                    TO,
                    CALLID,
                    "CSeq: 1 INVITE",
                    "Max-Forwards: 0",
                    CL0,
                ],
                "",
            ),
            Some(483),
        ),
        (
            "INVITE with garbage SDP from a peer",
            msg(
                &format!("INVITE sip:{DID}@127.0.0.1 SIP/2.0"),
                &[
                    &via("m16"),
                    FROM,
                    TO,
                    CALLID,
                    "CSeq: 1 INVITE",
                    "Content-Type: application/sdp",
                    "Content-Length: 9",
                ],
                "\u{1}\u{2}garbage",
            ),
            Some(488),
        ),
        (
            "stray response",
            msg("SIP/2.0 200 OK", &[VIA, FROM, TO, CALLID, CSEQ, CL0], ""),
            None,
        ),
        (
            "unknown method",
            msg(
                "FROB sip:gw@127.0.0.1 SIP/2.0",
                &[&via("m17"), FROM, TO, CALLID, "CSeq: 1 FROB", CL0],
                "",
            ),
            Some(501),
        ),
        (
            "known method we do not serve",
            msg(
                "SUBSCRIBE sip:gw@127.0.0.1 SIP/2.0",
                &[&via("m19"), FROM, TO, CALLID, "CSeq: 1 SUBSCRIBE", CL0],
                "",
            ),
            Some(405),
        ),
        (
            "BYE outside a dialog",
            msg(
                "BYE sip:gw@127.0.0.1 SIP/2.0",
                &[
                    &via("m18"),
                    FROM,
                    "To: <sip:gw@127.0.0.1>;tag=zz",
                    CALLID,
                    "CSeq: 1 BYE",
                    CL0,
                ],
                "",
            ),
            Some(481),
        ),
        ("empty datagram of CRLFs", b"\r\n\r\n".to_vec(), None),
        (
            "only headers, no blank line",
            b"OPTIONS sip:gw SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n".to_vec(),
            None,
        ),
    ]
}

/// Sends an OPTIONS probe and collects every other response that arrives before its 200.
async fn probe(c: &Client, n: u32) -> Result<Vec<Resp>> {
    let m = format!(
        "OPTIONS sip:{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKprobe{n};rport\r\nFrom: <sip:probe@{me}>;tag=p{n}\r\nTo: <sip:{srv}>\r\nCall-ID: probe-{n}@test\r\nCSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        srv = c.server,
        me = c.local
    );
    c.send(m.as_bytes()).await?;
    let mut others = Vec::new();
    loop {
        let text = c.recv_text().await?;
        let status: u16 = text.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0);
        let r = Resp { status, text };
        if r.header("Call-ID").as_deref() == Some(&format!("probe-{n}@test")) {
            if r.status != 200 {
                bail!("probe answered {}", r.status);
            }
            return Ok(others);
        }
        if r.status >= 200 || r.status == 0 {
            others.push(r);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_corpus_is_answered_or_dropped_and_the_server_keeps_serving() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let c = Client::new(h.addr).await?;
    let cases = corpus();
    assert!(cases.len() >= 20);
    for (i, (name, data, expect)) in cases.into_iter().enumerate() {
        c.send(&data).await?;
        let replies = probe(&c, i as u32 + 1).await?;
        let got: Vec<u16> = replies.iter().map(|r| r.status).collect();
        match expect {
            Some(code) => assert_eq!(got, vec![code], "case {name:?}: {replies:?}"),
            None => assert!(
                got.is_empty(),
                "case {name:?} should be dropped, got {replies:?}"
            ),
        }
    }
    assert!(h.metric("hotline_sip_malformed_total{action=\"reply_400\"}") >= 10);
    assert!(h.metric("hotline_sip_malformed_total{action=\"drop\"}") >= 5);
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_datagrams_are_dropped_and_counted() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let c = Client::new(h.addr).await?;
    let big = format!(
        "OPTIONS sip:gw SIP/2.0\r\n{VIA}\r\n{FROM}\r\n{TO}\r\n{CALLID}\r\n{CSEQ}\r\nX-Pad: {}\r\n{CL0}\r\n\r\n",
        "a".repeat(20_000)
    );
    c.send(big.as_bytes()).await?;
    assert!(probe(&c, 1).await?.is_empty());
    assert_eq!(
        h.metric("hotline_sip_malformed_total{action=\"oversize\"}"),
        1
    );
    h.finish().await
}

async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<String> {
    tokio::time::timeout(T, async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let text: Vec<u8> = buf.drain(..end + 4).collect();
                return Ok(String::from_utf8_lossy(&text).into_owned());
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed");
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_frames_pipelined_requests_and_survives_bad_framing() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let mut s = TcpStream::connect(h.addr).await?;
    let me = s.local_addr()?;
    let opt = |n: u32| {
        format!(
            "OPTIONS sip:gw SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKtcp{n}\r\nFrom: <sip:t@x>;tag=t\r\nTo: <sip:gw@x>\r\nCall-ID: tcp-{n}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // Two requests in one segment, then one split across two writes.
    s.write_all(format!("{}{}", opt(1), opt(2)).as_bytes())
        .await?;
    let third = opt(3);
    let (a, b) = third.split_at(30);
    s.write_all(a.as_bytes()).await?;
    let mut buf = Vec::new();
    for n in 1..=2 {
        let r = read_response(&mut s, &mut buf).await?;
        assert!(r.starts_with("SIP/2.0 200"), "{r}");
        assert!(r.contains(&format!("Call-ID: tcp-{n}")), "{r}");
    }
    s.write_all(b.as_bytes()).await?;
    let r = read_response(&mut s, &mut buf).await?;
    assert!(r.contains("Call-ID: tcp-3"), "{r}");
    // A frame larger than the limit closes that connection only.
    s.write_all(b"OPTIONS sip:gw SIP/2.0\r\nContent-Length: 999999\r\n\r\n")
        .await?;
    assert!(read_response(&mut s, &mut buf).await.is_err());
    let mut s2 = TcpStream::connect(h.addr).await?;
    s2.write_all(opt(4).as_bytes()).await?;
    let mut buf2 = Vec::new();
    assert!(
        read_response(&mut s2, &mut buf2)
            .await?
            .starts_with("SIP/2.0 200")
    );
    h.finish().await
}
