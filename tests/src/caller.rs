//! A trunk caller for end-to-end tests: raw SIP over UDP (INVITE, ACK, BYE, answering the
//! far end's BYE) and its own RTP socket, so a test can check what the caller hears and
//! send digits as RFC 4733 events or as in-band tones.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(10);

/// What a stretch of received RTP held.
#[derive(Debug, Default)]
pub struct Heard {
    pub samples: Vec<i16>,
    pub packets: usize,
    pub ssrcs: std::collections::HashSet<u32>,
}

impl Heard {
    pub fn rms(&self) -> f64 {
        rms(&self.samples)
    }
}

pub fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

/// `freqs` summed at `amplitude` each, `ms` long, 8 kHz.
pub fn tone(freqs: &[f64], ms: usize, amplitude: f64) -> Vec<i16> {
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

/// The DTMF pair of a key (ITU-T Q.23).
pub fn dtmf_freqs(key: char) -> [f64; 2] {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    let keys = ["123A", "456B", "789C", "*0#D"];
    for (r, row) in keys.iter().enumerate() {
        if let Some(c) = row.find(key) {
            return [ROWS[r], COLS[c]];
        }
    }
    panic!("no DTMF key {key}")
}

/// A call from the trunk, answered.
pub struct Caller {
    sip: UdpSocket,
    server: SocketAddr,
    rtp: UdpSocket,
    media: SocketAddr,
    to_tag: String,
    call_id: String,
    cseq: u32,
    seq: u16,
    ts: u32,
    /// When the call was answered: the RTP clock runs with the wall clock, as a phone's does.
    started: std::time::Instant,
    /// Offered telephone-event (RFC 4733); without it digits must go in-band.
    pub rfc4733: bool,
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

impl Caller {
    /// Calls `did` at `server` from 127.0.0.1 as `caller` and waits for the 200 (answering
    /// 1xx silently), then ACKs.
    pub async fn call(
        server: SocketAddr,
        did: &str,
        caller: &str,
        rfc4733: bool,
    ) -> Result<Caller> {
        let sip = UdpSocket::bind("127.0.0.1:0").await?;
        let rtp = UdpSocket::bind("127.0.0.1:0").await?;
        let me = sip.local_addr()?;
        let (pts, te) = if rfc4733 {
            (
                "8 101",
                "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
            )
        } else {
            ("8", "")
        };
        let sdp = format!(
            "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP {pts}\r\na=rtpmap:8 PCMA/8000\r\n{te}a=ptime:20\r\n",
            rtp.local_addr()?.port()
        );
        let call_id = format!("e2e-{}@127.0.0.1", me.port());
        let invite = format!(
            "INVITE sip:{did}@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKe2e{port};rport\r\nFrom: <sip:{caller}@{me}>;tag=c1\r\nTo: <sip:{did}@{server}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:{caller}@{me}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len(),
            port = me.port()
        );
        sip.send_to(invite.as_bytes(), server).await?;
        let mut buf = vec![0u8; 8192];
        let ok = loop {
            let (n, _) = tokio::time::timeout(WAIT, sip.recv_from(&mut buf))
                .await
                .context("no answer to the INVITE")??;
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            let status: u16 = msg
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            match status {
                100..=199 => continue,
                200 => break msg,
                _ => bail!("INVITE failed: {msg}"),
            }
        };
        let to = header(&ok, "To").context("To")?.to_string();
        let port: u16 = ok
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split(' ').next())
            .context("m= line")?
            .parse()?;
        let mut c = Caller {
            sip,
            server,
            rtp,
            media: ([127, 0, 0, 1], port).into(),
            to_tag: to,
            call_id,
            cseq: 1,
            seq: 1000,
            ts: 80_000,
            started: std::time::Instant::now(),
            rfc4733,
        };
        c.send_request("ACK", 1).await?;
        // Speak first so the gateway's symmetric RTP latches to us.
        c.send_audio(&[0; 160]).await?;
        Ok(c)
    }

    async fn send_request(&self, method: &str, cseq: u32) -> Result<()> {
        let me = self.sip.local_addr()?;
        let msg = format!(
            "{method} sip:hotline@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKe2e{method}{cseq}x{port};rport\r\nFrom: <sip:caller@{me}>;tag=c1\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            srv = self.server,
            to = self.to_tag,
            cid = self.call_id,
            port = me.port(),
        );
        self.sip.send_to(msg.as_bytes(), self.server).await?;
        Ok(())
    }

    /// Sends audio as a phone does, one 20 ms packet every 20 ms, and returns what was heard
    /// meanwhile (the far end's audio, whatever arrived).
    pub async fn talk(&mut self, pcm: &[i16]) -> Result<Heard> {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut heard = Heard::default();
        let mut buf = [0u8; 2048];
        for chunk in pcm.chunks(160) {
            tick.tick().await;
            self.send_audio(chunk).await?;
            while let Ok((len, _)) = self.rtp.try_recv_from(&mut buf) {
                if len >= 12 && buf[1] & 0x7f == 8 {
                    heard.packets += 1;
                    heard.samples.extend(
                        buf[12..len]
                            .iter()
                            .map(|&b| audio_codec_algorithms::decode_alaw(b)),
                    );
                }
            }
        }
        Ok(heard)
    }

    /// The timestamp of the next packet: where the wall clock is (a phone's clock runs over
    /// silence too), or right after the previous packet when sending ahead of it.
    fn next_ts(&mut self) -> u32 {
        let wall = 80_000u32.wrapping_add((self.started.elapsed().as_millis() as u32) * 8);
        let next = self.ts.wrapping_add(160);
        self.ts = if (wall.wrapping_sub(next) as i32) > 0 {
            wall
        } else {
            next
        };
        self.ts
    }

    pub async fn send_audio(&mut self, pcm: &[i16]) -> Result<()> {
        for chunk in pcm.chunks(160) {
            let ts = self.next_ts();
            let mut p = vec![0x80, 8];
            p.extend_from_slice(&self.seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&0x00CA_11E5u32.to_be_bytes());
            p.extend(
                chunk
                    .iter()
                    .map(|&s| audio_codec_algorithms::encode_alaw(s)),
            );
            self.rtp.send_to(&p, self.media).await?;
            self.seq = self.seq.wrapping_add(1);
        }
        Ok(())
    }

    /// One key: an RFC 4733 event (end sent three times) when offered, else 80 ms of the
    /// key's two tones at about −10 dBm0 each followed by 80 ms of silence.
    pub async fn key(&mut self, key: char) -> Result<()> {
        if !self.rfc4733 {
            let mut pcm = tone(&dtmf_freqs(key), 80, 7000.0);
            pcm.extend(std::iter::repeat_n(0, 640));
            return self.send_audio(&pcm).await;
        }
        let event = "0123456789*#".find(key).context("key")? as u8;
        let ts = self.next_ts();
        for (i, end) in [false, false, false, true, true, true]
            .into_iter()
            .enumerate()
        {
            let mut p = vec![0x80, if i == 0 { 0x80 | 101 } else { 101 }];
            p.extend_from_slice(&self.seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&0x00CA_11E5u32.to_be_bytes());
            let duration = (i.min(3) as u16 + 1) * 160;
            p.extend_from_slice(&[event, if end { 0x8a } else { 0x0a }]);
            p.extend_from_slice(&duration.to_be_bytes());
            self.rtp.send_to(&p, self.media).await?;
            self.seq = self.seq.wrapping_add(1);
        }
        // The event lasted 100 ms; its packets all carry its start timestamp.
        self.ts = ts.wrapping_add(640);
        Ok(())
    }

    pub async fn keys(&mut self, keys: &str) -> Result<()> {
        for k in keys.chars() {
            self.key(k).await?;
        }
        Ok(())
    }

    /// Receives `n` RTP packets (each within a bounded wait).
    pub async fn hear(&self, n: usize) -> Result<Heard> {
        let mut h = Heard::default();
        let mut buf = [0u8; 2048];
        for _ in 0..n {
            let (len, _) = tokio::time::timeout(WAIT, self.rtp.recv_from(&mut buf))
                .await
                .context("the caller hears nothing")??;
            if len < 12 || buf[1] & 0x7f != 8 {
                continue;
            }
            h.packets += 1;
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

    /// Whatever RTP arrives within `d` (for stretches where the test cannot know how much
    /// will come, e.g. while the call is being connected).
    pub async fn hear_for(&self, d: Duration) -> Result<Heard> {
        let mut h = Heard::default();
        let mut buf = [0u8; 2048];
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(r) = tokio::time::timeout_at(deadline, self.rtp.recv_from(&mut buf)).await {
            let (len, _) = r?;
            if len >= 12 && buf[1] & 0x7f == 8 {
                h.packets += 1;
                h.samples.extend(
                    buf[12..len]
                        .iter()
                        .map(|&b| audio_codec_algorithms::decode_alaw(b)),
                );
            }
        }
        Ok(h)
    }

    /// Waits for the far end's BYE (answering it 200) while hearing whatever comes.
    pub async fn wait_bye(&self) -> Result<()> {
        let mut buf = vec![0u8; 8192];
        let mut rtp = [0u8; 2048];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            tokio::select! {
                r = self.sip.recv_from(&mut buf) => {
                    let (n, src) = r?;
                    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                    if msg.starts_with("BYE ") {
                        let mut ok = String::from("SIP/2.0 200 OK\r\n");
                        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
                            if let Some(v) = header(&msg, name) {
                                ok.push_str(&format!("{name}: {v}\r\n"));
                            }
                        }
                        ok.push_str("Content-Length: 0\r\n\r\n");
                        self.sip.send_to(ok.as_bytes(), src).await?;
                        return Ok(());
                    }
                }
                _ = self.rtp.recv_from(&mut rtp) => {}
                _ = tokio::time::sleep_until(deadline) => bail!("no BYE from the gateway"),
            }
        }
    }

    /// The caller hangs up.
    pub async fn bye(&mut self) -> Result<()> {
        self.cseq += 1;
        self.send_request("BYE", self.cseq).await
    }
}
