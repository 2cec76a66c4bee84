//! Calls the gateway answers for the application (a DID routed to `ivr`): this test plays
//! the application's part through the `GatewayHandle`, a raw-SIP trunk caller with its own
//! RTP socket plays the caller, and a sipp seat answers when the application connects it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hotline_sip_gateway::{AppEvent, DidRoute, DtmfSource, MediaClip, get_call};
use tokio::net::UdpSocket;

use crate::harness::*;

const IVR_DID: &str = "02299999";

fn tone(freqs: &[f64], ms: usize, amplitude: f64) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let v: f64 = freqs
                .iter()
                .map(|f| (2.0 * std::f64::consts::PI * f * t).sin())
                .sum();
            (amplitude * v) as i16
        })
        .collect()
}

struct Caller {
    rtp: UdpSocket,
    gw: SocketAddr,
    seq: u16,
    ts: u32,
}

struct Heard {
    samples: Vec<i16>,
    ssrcs: HashSet<u32>,
    seqs: Vec<u16>,
    tss: Vec<u32>,
    markers: usize,
}

impl Caller {
    async fn send_audio(&mut self, pcm: &[i16]) -> Result<()> {
        for chunk in pcm.chunks(160) {
            let mut p = vec![0x80, 8];
            p.extend_from_slice(&self.seq.to_be_bytes());
            p.extend_from_slice(&self.ts.to_be_bytes());
            p.extend_from_slice(&0xCA11_E200u32.to_be_bytes());
            p.extend(
                chunk
                    .iter()
                    .map(|&s| audio_codec_algorithms::encode_alaw(s)),
            );
            self.rtp.send_to(&p, self.gw).await?;
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(160);
        }
        Ok(())
    }

    /// RFC 4733 §2.5: the event's packets share a timestamp; the end is sent three times.
    async fn send_event(&mut self, event: u8) -> Result<()> {
        for (i, end) in [false, false, false, true, true, true]
            .into_iter()
            .enumerate()
        {
            let mut p = vec![0x80, if i == 0 { 0x80 | 101 } else { 101 }];
            p.extend_from_slice(&self.seq.to_be_bytes());
            p.extend_from_slice(&self.ts.to_be_bytes());
            p.extend_from_slice(&0xCA11_E200u32.to_be_bytes());
            let duration = (i.min(3) as u16 + 1) * 160;
            p.extend_from_slice(&[event, if end { 0x8a } else { 0x0a }]);
            p.extend_from_slice(&duration.to_be_bytes());
            self.rtp.send_to(&p, self.gw).await?;
            self.seq = self.seq.wrapping_add(1);
        }
        self.ts = self.ts.wrapping_add(800);
        Ok(())
    }

    /// Receives until `n` packets arrived (each within a bounded wait).
    async fn hear(&self, n: usize) -> Result<Heard> {
        let mut h = Heard {
            samples: Vec::new(),
            ssrcs: HashSet::new(),
            seqs: Vec::new(),
            tss: Vec::new(),
            markers: 0,
        };
        let mut buf = [0u8; 2048];
        for _ in 0..n {
            let (len, _) =
                tokio::time::timeout(Duration::from_secs(5), self.rtp.recv_from(&mut buf))
                    .await
                    .context("no RTP from the gateway")??;
            if buf[1] & 0x7f != 8 {
                bail!("payload type {}", buf[1] & 0x7f);
            }
            h.markers += usize::from(buf[1] & 0x80 != 0);
            h.seqs.push(u16::from_be_bytes([buf[2], buf[3]]));
            h.tss
                .push(u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]));
            h.ssrcs
                .insert(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));
            h.samples.extend(
                buf[12..len]
                    .iter()
                    .map(|&b| audio_codec_algorithms::decode_alaw(b)),
            );
        }
        Ok(h)
    }
}

fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_plays_prompts_hears_digits_and_connects_a_seat() -> Result<()> {
    let mut cfg = base_config();
    cfg.routes.push(DidRoute {
        did: IVR_DID.into(),
        target: "ivr".into(),
    });
    let h = Harness::start(cfg).await?;
    let seat_port = free_udp_port();
    sipp_register(h.addr, "8001", PASSWORD, seat_port, 200).await?;
    h.wait_registrations(1).await?;

    let trunk = Client::new(h.addr).await?;
    let rtp = UdpSocket::bind("127.0.0.1:0").await?;
    let sdp = format!(
        "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
        rtp.local_addr()?.port()
    );
    let inv = format!(
        "INVITE sip:{IVR_DID}@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKivr1;rport\r\nFrom: <sip:13900000001@{me}>;tag=f1\r\nTo: <sip:{IVR_DID}@{srv}>\r\nCall-ID: ivr-1@test\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len(),
        srv = trunk.server,
        me = trunk.local
    );
    trunk.send(inv.as_bytes()).await?;
    let ok = trunk.recv_response("INVITE", true).await?;
    assert_eq!(
        ok.status, 200,
        "answered by the gateway itself: {}",
        ok.text
    );
    let port: u16 = ok
        .body()
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .context("m= line")?
        .parse()?;
    let to_tag = ok.header("To").context("To")?;
    let in_dialog = |method: &str, cseq: u32, branch: &str, extra: &str, body: &str| {
        format!(
            "{method} sip:{IVR_DID}@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\nFrom: <sip:13900000001@{me}>;tag=f1\r\nTo: {to_tag}\r\nCall-ID: ivr-1@test\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len(),
            srv = trunk.server,
            me = trunk.local
        )
    };
    trunk
        .send(in_dialog("ACK", 1, "z9hG4bKivrack", "", "").as_bytes())
        .await?;
    let AppEvent::Incoming {
        call_id,
        caller,
        did,
        peer,
    } = h
        .app_event(|e| matches!(e, AppEvent::Incoming { .. }))
        .await?
    else {
        unreachable!()
    };
    assert_eq!(
        (caller.as_str(), did.as_str(), peer.as_deref()),
        ("13900000001", IVR_DID, Some("e1"))
    );
    let mut c = Caller {
        rtp,
        gw: ([127, 0, 0, 1], port).into(),
        seq: 100,
        ts: 16_000,
    };
    // The caller speaks first so the gateway latches its address.
    c.send_audio(&[0; 160]).await?;

    // A 1 s prompt in two clips: 50 packets, paced, one SSRC, consecutive numbers.
    let prompt = MediaClip::from_pcm("t/tone", Arc::from(tone(&[440.0], 600, 8000.0)));
    let quiet = MediaClip::from_pcm("t/quiet", Arc::from(tone(&[440.0], 400, 800.0)));
    h.handle()
        .play(&call_id, 1, vec![prompt.clone(), quiet])
        .await?;
    let heard = c.hear(50).await?;
    assert_eq!(heard.ssrcs.len(), 1);
    assert_eq!(heard.markers, 1, "one talk-spurt, marked once");
    for w in heard.seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1));
    }
    for w in heard.tss.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(160));
    }
    let loud = rms(&heard.samples[..4800]);
    assert!(loud > 5000.0, "the prompt is heard: rms {loud}");
    h.app_event(|e| matches!(e, AppEvent::PlayFinished { id: 1, .. }))
        .await?;
    let first_ssrc = *heard.ssrcs.iter().next().unwrap();

    // RFC 4733 digit 7 with its end packet three times: reported once.
    c.send_event(7).await?;
    let d = h.app_event(|e| matches!(e, AppEvent::Digit { .. })).await?;
    assert!(
        matches!(
            d,
            AppEvent::Digit {
                digit: '7',
                source: DtmfSource::Rfc4733,
                ..
            }
        ),
        "{d:?}"
    );
    // In-band: DTMF 3 (697 + 1477 Hz) for 80 ms, then silence.
    let mut pcm = tone(&[697.0, 1477.0], 80, 4000.0);
    pcm.extend(std::iter::repeat_n(0, 1600));
    c.send_audio(&pcm).await?;
    let d = h.app_event(|e| matches!(e, AppEvent::Digit { .. })).await?;
    assert!(
        matches!(
            d,
            AppEvent::Digit {
                digit: '3',
                source: DtmfSource::Inband,
                ..
            }
        ),
        "{d:?}"
    );
    // SIP INFO dtmf-relay.
    trunk
        .send(
            in_dialog(
                "INFO",
                2,
                "z9hG4bKivrinfo",
                "Content-Type: application/dtmf-relay\r\n",
                "Signal=#\r\nDuration=160\r\n",
            )
            .as_bytes(),
        )
        .await?;
    let d = h.app_event(|e| matches!(e, AppEvent::Digit { .. })).await?;
    assert!(
        matches!(
            d,
            AppEvent::Digit {
                digit: '#',
                source: DtmfSource::Info,
                ..
            }
        ),
        "{d:?}"
    );

    // Connect the seat: sipp answers and echoes; the caller hears its own audio back
    // under the same SSRC as the prompts.
    let seat = echo_seat(h.addr, "seat_uas.xml", seat_port, "8", "PCMA", &[])?;
    h.handle().connect_seat(&call_id, "8001").await?;
    let ev = h
        .app_event(|e| {
            matches!(
                e,
                AppEvent::SeatAnswered { .. } | AppEvent::SeatFailed { .. }
            )
        })
        .await?;
    assert!(
        matches!(ev, AppEvent::SeatAnswered { ref seat, .. } if seat == "8001"),
        "{ev:?}"
    );
    assert!(matches!(
        h.handle().connect_seat(&call_id, "8001").await,
        Err(hotline_sip_gateway::GatewayError::SeatLegBusy(_))
    ));
    let speech = tone(&[1000.0], 400, 6000.0);
    let mut echoed = Vec::new();
    let mut ssrcs = HashSet::new();
    for chunk in speech.chunks(1600) {
        c.send_audio(chunk).await?;
        let got = c.hear(10).await?;
        ssrcs.extend(got.ssrcs);
        echoed.extend(got.samples);
    }
    assert!(
        rms(&echoed) > 3000.0,
        "the seat hears the caller (echo rms {})",
        rms(&echoed)
    );
    assert_eq!(ssrcs, HashSet::from([first_ssrc]), "one SSRC to the caller");

    // The application hangs the seat up (sipp expects our BYE) and plays again.
    h.handle().disconnect_seat(&call_id).await?;
    seat.success().await?;
    h.handle().play(&call_id, 2, vec![prompt]).await?;
    let again = c.hear(30).await?;
    assert_eq!(again.ssrcs, HashSet::from([first_ssrc]));
    assert_eq!(again.markers, 1);
    h.app_event(|e| matches!(e, AppEvent::PlayFinished { id: 2, .. }))
        .await?;

    // The caller hangs up.
    trunk
        .send(in_dialog("BYE", 3, "z9hG4bKivrbye", "", "").as_bytes())
        .await?;
    let bye_ok = trunk.recv_response("BYE", true).await?;
    assert_eq!(bye_ok.status, 200);
    let ended = h.app_event(|e| matches!(e, AppEvent::Ended { .. })).await?;
    assert!(matches!(ended, AppEvent::Ended { ref side, .. } if side == "caller"));
    let rec = get_call(&h.pool, &call_id).await?.context("CDR")?;
    assert_eq!(rec.seat.as_deref(), Some("8001"));
    assert_eq!(rec.end_cause.as_deref(), Some("normal"));
    assert!(rec.answered_at.is_some() && rec.bridged_at.is_some());
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_seat_fails_at_once_and_sipp_digits_arrive() -> Result<()> {
    let mut cfg = base_config();
    cfg.routes.push(DidRoute {
        did: IVR_DID.into(),
        target: "ivr".into(),
    });
    let h = Harness::start(cfg).await?;
    let mp = free_udp_port().to_string();
    let sipp = Sipp::spawn(
        h.addr,
        "uac_call.xml",
        &["-m", "1", "-s", IVR_DID, "-mp", &mp, "-d", "3000"],
    )?;
    let AppEvent::Incoming { call_id, .. } = h
        .app_event(|e| matches!(e, AppEvent::Incoming { .. }))
        .await?
    else {
        unreachable!()
    };
    assert!(matches!(
        h.handle().connect_seat(&call_id, "8002").await,
        Err(hotline_sip_gateway::GatewayError::SeatUnavailable(_))
    ));
    assert!(matches!(
        h.handle().connect_seat("no-such-call", "8002").await,
        Err(hotline_sip_gateway::GatewayError::CallNotFound(_))
    ));
    let d = h.app_event(|e| matches!(e, AppEvent::Digit { .. })).await?;
    assert!(
        matches!(
            d,
            AppEvent::Digit {
                digit: '5',
                source: DtmfSource::Rfc4733,
                ..
            }
        ),
        "{d:?}"
    );
    h.app_event(|e| matches!(e, AppEvent::Ended { .. })).await?;
    sipp.success().await?;
    h.finish().await
}
