//! Malformed input: every case is followed by an OPTIONS that must still be answered;
//! cases that carry enough headers must get 400 (or another precise error), the rest are
//! dropped (RFC 3261 §18.3, §8.2.2).

use anyhow::{Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

#[path = "../corpus.rs"]
mod corpus;
use corpus::*;

/// Sends an OPTIONS probe and collects every other response that arrives before its 200
/// (the gateway answers in the order it reads).
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
    // A CRLF keepalive ping gets a CRLF pong (RFC 5626 §3.5.1, which phones send over UDP
    // too), and is not counted as malformed.
    let drops = h.metric("hotline_sip_malformed_total{action=\"drop\"}");
    c.send(b"\r\n\r\n").await?;
    assert_eq!(c.recv_text().await?, "\r\n");
    assert_eq!(
        h.metric("hotline_sip_malformed_total{action=\"drop\"}"),
        drops
    );
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
    // A message over `max_message_size` is answered 513 (RFC 3261 §21.5.14)...
    let big = opt(5).replace(
        "Content-Length: 0\r\n",
        &format!("X-Pad: {}\r\nContent-Length: 0\r\n", "a".repeat(20_000)),
    );
    s.write_all(big.as_bytes()).await?;
    let r = read_response(&mut s, &mut buf).await?;
    assert!(r.starts_with("SIP/2.0 513"), "{r}");
    assert_eq!(
        h.metric("hotline_sip_malformed_total{action=\"oversize\"}"),
        1
    );
    // ...and a frame that cannot end within 64 KiB (rsipstack's stream limit) closes that
    // connection only.
    s.write_all(b"OPTIONS sip:gw SIP/2.0\r\nContent-Length: 999999\r\n\r\n")
        .await?;
    s.write_all(&vec![b'x'; 70_000]).await?;
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
