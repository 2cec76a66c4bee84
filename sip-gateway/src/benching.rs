//! Entry points for the criterion micro-benchmarks (`benches/hot.rs`, issue 11): the
//! per-message and per-packet functions of the gateway, which are crate-private. Not part of
//! the gateway's API.

use crate::dialog::Dialog;
use crate::media::jitter::JitterBuffer;
use crate::media::tap::decode;
use crate::rtp::{Forwarder, LegMedia};
use crate::sdp::Codec;
use crate::sip::{self, Message};
use crate::transaction::Transport;

/// Parses a SIP message through our adapter (rsipstack's parser and our checks) and, for a
/// request, builds and prints the response the engine would send. Returns the printed size
/// (0 for a response or a refused message) so the work cannot be optimised away.
pub fn sip_parse_and_answer(data: &[u8]) -> usize {
    match sip::parse(data) {
        Ok(Message::Request(r)) => sip::response_to(&r, 180, Some("bench")).to_bytes().len(),
        _ => 0,
    }
}

/// The engine's dialog work of one call leg: its record of the dialog an INVITE opens
/// (tags, flow) and a BYE from the far end admitted in it (§12.2.2). (The requests of the
/// dialog are built by rsipstack's dialog.) Returns 1 when the BYE was admitted, 0 when
/// `data` is not a request.
pub fn dialog_round(data: &[u8]) -> usize {
    let Ok(Message::Request(inv)) = sip::parse(data) else {
        return 0;
    };
    let source = std::net::SocketAddr::from(([127, 0, 0, 1], 5070));
    let mut d = Dialog::uas(&inv, "bench", Transport::Udp, source);
    // Their BYE: our dialog seen from their side.
    let mut bye = inv.clone();
    bye.method = "BYE".into();
    bye.headers.set("From", d.remote.clone());
    bye.headers.set("To", d.local.clone());
    bye.headers.set("CSeq", format!("{} BYE", inv.cseq().0 + 1));
    usize::from(d.admit(&bye).is_ok())
}

/// Parses a SIP message through our adapter only.
pub fn sip_parse(data: &[u8]) -> bool {
    sip::parse(data).is_ok()
}

/// G.711 A-law payload → 16-bit PCM (what the recorder tap and the in-band detector get).
pub fn g711_decode(payload: &[u8], out: &mut Vec<i16>) {
    decode(Codec::Pcma, payload, out);
}

/// 16-bit PCM → A-law (what the prompt player and the transcoder send).
pub fn g711_encode(pcm: &[i16], out: &mut Vec<u8>) {
    out.clear();
    out.extend(pcm.iter().map(|&s| audio_codec_algorithms::encode_alaw(s)));
}

/// The relay's per-packet rewrite (SSRC, sequence, timestamp; payload copied or transcoded).
#[derive(Debug)]
pub struct Relay {
    f: Forwarder,
    out: Vec<u8>,
}

impl Relay {
    /// `transcode`: PCMA in, PCMU out; otherwise PCMA both sides.
    pub fn new(transcode: bool) -> Self {
        let leg = |codec| LegMedia {
            codec,
            te: Some(101),
        };
        let to = if transcode { Codec::Pcmu } else { Codec::Pcma };
        Self {
            f: Forwarder::new(leg(Codec::Pcma), leg(to), 7, 100, 1_000),
            out: Vec::with_capacity(2048),
        }
    }

    /// Forwards one packet; returns the size of what would be sent.
    pub fn forward(&mut self, pkt: &[u8]) -> usize {
        self.f.forward(pkt, &mut self.out);
        self.out.len()
    }
}

/// The media task's jitter buffer.
#[derive(Debug, Default)]
pub struct Jitter(JitterBuffer);

impl Jitter {
    /// One packet in (by sequence number), then whatever is due out; returns how many
    /// frames came out.
    pub fn push_pop(&mut self, seq: u16, payload: &[u8]) -> usize {
        self.0.push(seq, payload);
        let mut n = 0;
        while self.0.pop().is_some() {
            n += 1;
        }
        n
    }
}
