//! Criterion micro-benchmarks of the gateway's hot functions (issue 11, item 3), per
//! operation: a SIP INVITE parsed through our adapter, and parsed + answered + printed; the
//! engine's dialog work of a leg (its record from the INVITE, a BYE admitted in it); G.711 decode and encode of one 20 ms
//! packet; the in-band DTMF detector on one 20 ms frame; the jitter buffer's push + pop of
//! one packet; the relay's rewrite of one packet, with and without transcoding.
//!
//! `cargo bench -p hotline-sip-gateway --bench hot` (results in bench/README.md).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hotline_sip_gateway::benching::{
    Jitter, Relay, dialog_round, g711_decode, g711_encode, sip_parse, sip_parse_and_answer,
};
use hotline_sip_gateway::media::dtmf_inband::InbandDtmfDetector;

/// The SDP offer of a trunk INVITE.
const SDP: &str = "v=0\r\n\
o=trunk 1 1 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n";

/// A trunk INVITE as the E1 gateway sends it (with SDP).
fn invite() -> Vec<u8> {
    format!(
        "INVITE sip:02296012@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-524287-1---a1b2c3d4e5;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:13900000012@127.0.0.1:5070>;tag=1234567\r\n\
To: <sip:02296012@127.0.0.1:5060>\r\n\
Call-ID: 9f0c3a2b-7d41-4e6b-a0c5-1b2c3d4e5f60@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:13900000012@127.0.0.1:5070>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\
\r\n\
{SDP}",
        SDP.len()
    )
    .into_bytes()
}

fn rtp_packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend((0..160u8).map(|i| i.wrapping_mul(37) ^ 0x55));
    p
}

fn sip(c: &mut Criterion) {
    let invite = invite();
    assert!(sip_parse(&invite), "the sample INVITE parses");
    assert!(sip_parse_and_answer(&invite) > 0);
    c.bench_function("sip: parse INVITE", |b| {
        b.iter(|| sip_parse(black_box(&invite)))
    });
    c.bench_function("sip: parse INVITE + build and print 180", |b| {
        b.iter(|| sip_parse_and_answer(black_box(&invite)))
    });
    assert!(dialog_round(&invite) > 0, "the BYE is admitted");
    c.bench_function(
        "dialog: the engine's record from the INVITE, admit a BYE",
        |b| b.iter(|| dialog_round(black_box(&invite))),
    );
}

fn g711(c: &mut Criterion) {
    let payload: Vec<u8> = (0..160u8).map(|i| i.wrapping_mul(37)).collect();
    let pcm: Vec<i16> = (0..160i16).map(|i| (i - 80) * 300).collect();
    let (mut dec, mut enc) = (Vec::with_capacity(160), Vec::with_capacity(160));
    c.bench_function("g711: decode 20 ms A-law", |b| {
        b.iter(|| g711_decode(black_box(&payload), &mut dec))
    });
    c.bench_function("g711: encode 20 ms A-law", |b| {
        b.iter(|| g711_encode(black_box(&pcm), &mut enc))
    });
}

fn goertzel(c: &mut Criterion) {
    // Speech-like noise: nobody presses a key (the common case).
    let mut x: u32 = 1;
    let frame: Vec<i16> = (0..160)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            ((x >> 16) as i16) / 4
        })
        .collect();
    let mut d = InbandDtmfDetector::new();
    c.bench_function("goertzel: in-band DTMF, one 20 ms frame", |b| {
        b.iter(|| {
            d.handle_samples(black_box(&frame));
            d.poll_digit()
        })
    });
}

fn jitter(c: &mut Criterion) {
    let payload = [0xd5u8; 160];
    let mut j = Jitter::default();
    let mut seq = 0u16;
    c.bench_function("jitter buffer: push + pop one packet", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            j.push_pop(black_box(seq), black_box(&payload))
        })
    });
}

fn relay(c: &mut Criterion) {
    for (name, transcode) in [
        ("relay: rewrite one packet (PCMA → PCMA)", false),
        ("relay: rewrite one packet (PCMA → PCMU)", true),
    ] {
        let mut r = Relay::new(transcode);
        let mut pkt = rtp_packet(0);
        assert!(r.forward(&pkt) > 0, "{name}: forwarded");
        let mut seq = 0u16;
        c.bench_function(name, |b| {
            b.iter(|| {
                // The next packet of the stream: sequence and timestamp advance.
                seq = seq.wrapping_add(1);
                pkt[2..4].copy_from_slice(&seq.to_be_bytes());
                pkt[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                r.forward(black_box(&pkt))
            })
        });
    }
}

criterion_group!(hot, sip, g711, goertzel, jitter, relay);
criterion_main!(hot);
