//! Entry points for the fuzz targets (`fuzz/`, issue 12): each feeds arbitrary bytes through
//! one of the gateway's parsers exactly as the network drivers do, plus the cheap follow-up
//! calls a parsed value gets (accessors, printing, re-parsing), and checks invariants the
//! rest of the gateway relies on. They exist because the parsers are crate-private; they are
//! not part of the gateway's API. A panic here is a bug (malformed input must be refused,
//! never crash the single task that owns the engine).

use crate::dialog::{Dialog, opens_dialog};
use crate::media::rfc4733::EventReceiver;
use crate::rtp::{Forwarder, LegMedia, parse_rtp};
use crate::sdp::{self, Codec};
use crate::sip::{self, Message};
use crate::transaction::{Target, Transport};

/// A datagram or stream frame through the SIP adapter (rsipstack's parser + our checks).
pub fn sip_message(data: &[u8]) {
    match sip::parse(data) {
        Ok(Message::Request(r)) => {
            let _ = (r.call_id(), r.cseq(), r.branch(), r.from(), r.to());
            if let Some(to) = r.to() {
                let _ = (to.tag(), to.user());
            }
            let reply = sip::response_to(&r, 486, Some("fuzz"));
            let _ = sip::parse(&reply.to_bytes());
            // What we print must parse again (we forward requests on the B2BUA).
            let _ = sip::parse(&r.to_bytes());
            // An INVITE the engine would take (it refuses one that cannot open a dialog:
            // 400) and the engine's record of its dialog (tags, order).
            if r.method == "INVITE" && opens_dialog(&r) {
                let source = std::net::SocketAddr::from(([127, 0, 0, 1], 5060));
                let mut d = Dialog::uas(&r, "fuzz", Transport::Udp, source);
                let _ = d.admit(&r);
            }
        }
        Ok(Message::Response(r)) => {
            let _ = (r.call_id(), r.cseq(), r.branch());
            let _ = sip::parse(&r.to_bytes());
            // The 2xx that confirms a UAC dialog of ours: the engine takes their tag.
            let target = Target {
                transport: Transport::Udp,
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], 5062)),
            };
            let mut d = Dialog::uac(
                "fuzz@gw".into(),
                "<sip:hotline@gw>;tag=us".into(),
                "<sip:8001@gw>".into(),
                target,
            );
            d.confirm(&r);
        }
        Err(e) => {
            if let Some(reply) = e.reply {
                let _ = sip::parse(&reply.to_bytes());
            }
        }
    }
}

/// An SDP body (offer or answer) through the parser, then our answer to it.
pub fn sdp(data: &[u8]) {
    if let Some(remote) = sdp::parse(data) {
        let ours = sdp::build(
            1,
            1,
            remote.addr.ip(),
            remote.addr.port(),
            &remote.codecs,
            remote.telephone_event,
            remote.direction.answer(),
        );
        // Our own answer must always be understood by our own parser.
        assert!(sdp::parse(&ours).is_some(), "our SDP answer does not parse");
    }
}

/// RTP packets (the input cut into packets at 0xFF 0xFF markers) through the header parser,
/// the relay's forwarder (with and without transcoding) and the RFC 4733 receiver.
pub fn rtp(data: &[u8]) {
    let leg = |codec, te| LegMedia { codec, te };
    let mut same = Forwarder::new(
        leg(Codec::Pcma, Some(101)),
        leg(Codec::Pcma, Some(101)),
        7,
        100,
        1_000,
    );
    let mut transcode = Forwarder::new(
        leg(Codec::Pcmu, Some(96)),
        leg(Codec::Pcma, Some(101)),
        8,
        65_000,
        u32::MAX - 500,
    );
    let mut events = EventReceiver::default();
    let mut out = Vec::new();
    for pkt in split_packets(data) {
        if let Some(h) = parse_rtp(pkt) {
            assert!(
                h.payload.0 <= h.payload.1 && h.payload.1 <= pkt.len(),
                "payload range outside the packet"
            );
            let _ = events.handle(h.ts, &pkt[h.payload.0..h.payload.1]);
        }
        let _ = same.forward(pkt, &mut out);
        let _ = transcode.forward(pkt, &mut out);
    }
}

fn split_packets(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == 0xFF).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fuzz_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
    }

    const TARGETS: &[hotline_testkit::mutate::Target] = &[
        ("sip_message", sip_message),
        ("sdp", sdp),
        ("rtp_rfc4733", rtp),
    ];

    /// Replays the committed seed corpus (and anything the fuzzer added to it) on stable, so
    /// a regression shows up in `cargo test` without the fuzz toolchain.
    #[test]
    fn fuzz_corpus_replays() {
        hotline_testkit::mutate::replay_corpus(&fuzz_dir(), TARGETS);
    }

    /// The stable fuzz driver: mutated corpus inputs for `HOTLINE_FUZZ_SECS` seconds per
    /// target (docs/robustness.md). A crashing input is saved to `fuzz/artifacts/<target>/`.
    #[test]
    #[ignore = "long-running: the stable fuzz driver, run with --ignored"]
    fn fuzz_random_mutations() {
        hotline_testkit::mutate::fuzz_targets(&fuzz_dir(), TARGETS);
    }
}
