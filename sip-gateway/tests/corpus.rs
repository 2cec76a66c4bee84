//! The malformed-SIP corpus, shared by the gateway's own tests (`tests/it/robustness.rs`)
//! and the end-to-end tests of the binary (`tests/tests/sip_binary.rs`, included by path).
//! Each case: a name, the bytes, and `Some(code)` when it must be answered with `code`,
//! `None` when it must be dropped silently (RFC 3261 §18.3, §8.2.2).

#![allow(dead_code)]

/// A DID the cases call (routed or not, the cases must not reach a call).
pub const CORPUS_DID: &str = "02212345";

pub fn msg(start: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut m = format!("{start}\r\n");
    for h in headers {
        m.push_str(h);
        m.push_str("\r\n");
    }
    m.push_str("\r\n");
    m.push_str(body);
    m.into_bytes()
}

pub const VIA: &str = "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbad;rport";
pub const FROM: &str = "From: <sip:bad@127.0.0.1>;tag=b1";
pub const TO: &str = "To: <sip:gw@127.0.0.1>";
pub const CALLID: &str = "Call-ID: bad-case@test";
pub const CSEQ: &str = "CSeq: 1 OPTIONS";
pub const CL0: &str = "Content-Length: 0";
pub const OPT: &str = "OPTIONS sip:gw@127.0.0.1 SIP/2.0";

/// `Some(code)`: the case must be answered with `code`; `None`: it must be dropped silently.
pub fn corpus() -> Vec<(&'static str, Vec<u8>, Option<u16>)> {
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
                &format!("INVITE sip:{CORPUS_DID}@127.0.0.1 SIP/2.0"),
                &[
                    &via("m16"),
                    FROM,
                    TO,
                    CALLID,
                    "CSeq: 1 INVITE",
                    "Contact: <sip:bad@127.0.0.1:9>",
                    "Content-Type: application/sdp",
                    "Content-Length: 9",
                ],
                "\u{1}\u{2}garbage",
            ),
            Some(488),
        ),
        (
            "INVITE without a Contact (RFC 3261 §8.1.1.8)",
            msg(
                &format!("INVITE sip:{CORPUS_DID}@127.0.0.1 SIP/2.0"),
                &[&via("m30"), FROM, TO, CALLID, "CSeq: 1 INVITE", CL0],
                "",
            ),
            Some(400),
        ),
        (
            "INVITE whose Contact could not be sent to",
            msg(
                &format!("INVITE sip:{CORPUS_DID}@127.0.0.1 SIP/2.0"),
                &[
                    &via("m31"),
                    FROM,
                    TO,
                    CALLID,
                    "CSeq: 1 INVITE",
                    "Contact: <sip:;bad@127.0.0.1:9>",
                    CL0,
                ],
                "",
            ),
            Some(400),
        ),
        (
            "INVITE with a second, malformed Contact",
            msg(
                &format!("INVITE sip:{CORPUS_DID}@127.0.0.1 SIP/2.0"),
                &[
                    &via("m32"),
                    FROM,
                    TO,
                    CALLID,
                    "CSeq: 1 INVITE",
                    "Contact: <sip:caller@127.0.0.1:9>",
                    "Contact: <sip:caller@127.0.0.1:9",
                    CL0,
                ],
                "",
            ),
            Some(400),
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
        // (Exactly CRLFCRLF is a keepalive ping, answered with a CRLF pong: tested apart.)
        ("a datagram of blank lines", b"\r\n\r\n\r\n".to_vec(), None),
        (
            "only headers, no blank line",
            b"OPTIONS sip:gw SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n".to_vec(),
            None,
        ),
    ]
}
