//! The little SDP we need (RFC 4566, offer/answer per RFC 3264): read the peer's audio
//! address, codecs, telephone-event payload type and direction; write our own offers and
//! answers (PCMA, PCMU, telephone-event/8000, ptime 20).

use std::net::{IpAddr, SocketAddr};

/// G.711 variants we speak; static payload types (RFC 3551 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcma,
    Pcmu,
}

impl Codec {
    pub fn pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
    pub(crate) fn from_pt(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    /// The answer's direction for an offered one (RFC 3264 §6.1).
    pub(crate) fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
}

/// The audio part of a peer's SDP.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RemoteAudio {
    /// Where to send RTP; the port is 0 when the stream is refused.
    pub(crate) addr: SocketAddr,
    /// G.711 codecs in the peer's order of preference.
    pub(crate) codecs: Vec<Codec>,
    /// The payload type of telephone-event/8000, if offered (RFC 4733 §7).
    pub(crate) telephone_event: Option<u8>,
    pub(crate) direction: Direction,
}

/// Parses the first audio stream. `None` when there is none or it is unusable.
pub(crate) fn parse(body: &[u8]) -> Option<RemoteAudio> {
    let text = std::str::from_utf8(body).ok()?;
    let mut session_ip: Option<IpAddr> = None;
    let mut media_ip: Option<IpAddr> = None;
    let mut in_audio = false;
    let mut seen_audio = false;
    let mut port = 0u16;
    let mut pts: Vec<u8> = Vec::new();
    let mut te = None;
    let mut dir = Direction::SendRecv;
    let mut rtpmaps: Vec<(u8, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "m" => {
                if seen_audio {
                    // Only the first audio stream is used; stop at the next m-line.
                    if in_audio {
                        in_audio = false;
                    }
                    continue;
                }
                let mut it = v.split_whitespace();
                if it.next() == Some("audio") {
                    in_audio = true;
                    seen_audio = true;
                    port = it.next()?.parse().ok()?;
                    let _proto = it.next()?;
                    pts = it.filter_map(|p| p.parse().ok()).collect();
                } else {
                    in_audio = false;
                }
            }
            "c" => {
                let ip = v
                    .split_whitespace()
                    .nth(2)?
                    .split('/')
                    .next()?
                    .parse()
                    .ok()?;
                if in_audio {
                    media_ip = Some(ip);
                } else if !seen_audio {
                    session_ip = Some(ip);
                }
            }
            "a" if in_audio || !seen_audio => {
                if let Some(rest) = v.strip_prefix("rtpmap:") {
                    let (pt, enc) = rest.split_once(' ')?;
                    if let Ok(pt) = pt.parse::<u8>() {
                        rtpmaps.push((pt, enc.trim().to_ascii_lowercase()));
                    }
                } else {
                    match v.trim() {
                        "sendrecv" => dir = Direction::SendRecv,
                        "sendonly" => dir = Direction::SendOnly,
                        "recvonly" => dir = Direction::RecvOnly,
                        "inactive" => dir = Direction::Inactive,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if !seen_audio {
        return None;
    }
    let ip = media_ip.or(session_ip)?;
    let mut codecs = Vec::new();
    for &pt in &pts {
        let mapped = rtpmaps
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, e)| e.as_str());
        let codec = match (pt, mapped) {
            (_, Some(e)) if e.starts_with("pcma/8000") => Some(Codec::Pcma),
            (_, Some(e)) if e.starts_with("pcmu/8000") => Some(Codec::Pcmu),
            (_, Some(e)) if e.starts_with("telephone-event/8000") => {
                te.get_or_insert(pt);
                None
            }
            (0 | 8, None) => Codec::from_pt(pt),
            _ => None,
        };
        if let Some(c) = codec
            && !codecs.contains(&c)
        {
            codecs.push(c);
        }
    }
    // RFC 3264 §5.1: c=0.0.0.0 (RFC 2543 hold) means inactive.
    if ip.is_unspecified() && dir == Direction::SendRecv {
        dir = Direction::Inactive;
    }
    Some(RemoteAudio {
        addr: SocketAddr::new(ip, port),
        codecs,
        telephone_event: te,
        direction: dir,
    })
}

/// Our SDP. `codecs` in preference order; `te` the telephone-event payload type to list.
pub(crate) fn build(
    session_id: u64,
    version: u64,
    ip: IpAddr,
    port: u16,
    codecs: &[Codec],
    te: Option<u8>,
    direction: Direction,
) -> Vec<u8> {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut pts: Vec<String> = codecs.iter().map(|c| c.pt().to_string()).collect();
    if let Some(te) = te {
        pts.push(te.to_string());
    }
    let mut s = format!(
        "v=0\r\no=hotline {session_id} {version} IN {family} {ip}\r\ns=hotline\r\n\
         c=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {}\r\n",
        pts.join(" ")
    );
    for c in codecs {
        s.push_str(&format!("a=rtpmap:{} {}/8000\r\n", c.pt(), c.name()));
    }
    if let Some(te) = te {
        s.push_str(&format!(
            "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
        ));
    }
    s.push_str("a=ptime:20\r\n");
    s.push_str(&format!("a={}\r\n", direction.attr()));
    s.into_bytes()
}

/// The telephone-event payload type we offer.
pub(crate) const OUR_TE: u8 = 101;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sipp_style_offer() {
        let sdp = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        let a = parse(sdp.as_bytes()).unwrap();
        assert_eq!(a.addr, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(a.codecs, vec![Codec::Pcma, Codec::Pcmu]);
        assert_eq!(a.telephone_event, Some(101));
        assert_eq!(a.direction, Direction::SendRecv);
    }

    #[test]
    fn media_level_connection_and_direction() {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0 96\r\nc=IN IP4 10.0.0.2\r\na=rtpmap:96 telephone-event/8000\r\na=sendonly\r\nm=video 5000 RTP/AVP 97\r\na=recvonly\r\n";
        let a = parse(sdp.as_bytes()).unwrap();
        assert_eq!(a.addr, "10.0.0.2:4000".parse().unwrap());
        assert_eq!(a.codecs, vec![Codec::Pcmu]);
        assert_eq!(a.telephone_event, Some(96));
        assert_eq!(a.direction, Direction::SendOnly);
        assert_eq!(a.direction.answer(), Direction::RecvOnly);
    }

    #[test]
    fn no_audio_or_garbage_is_none() {
        assert!(parse(b"v=0\r\nm=video 1 RTP/AVP 96\r\n").is_none());
        assert!(parse(b"\xff\xff").is_none());
        assert!(parse(b"m=audio x RTP/AVP 0\r\n").is_none());
        let g729 = parse(b"c=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 18\r\n").unwrap();
        assert!(g729.codecs.is_empty());
    }

    #[test]
    fn builds_what_it_parses() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let body = build(
            1,
            2,
            ip,
            20000,
            &[Codec::Pcma, Codec::Pcmu],
            Some(101),
            Direction::SendRecv,
        );
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.contains("m=audio 20000 RTP/AVP 8 0 101\r\n"));
        assert!(text.contains("a=ptime:20\r\n"));
        let a = parse(&body).unwrap();
        assert_eq!(a.codecs, vec![Codec::Pcma, Codec::Pcmu]);
        assert_eq!(a.telephone_event, Some(101));
    }
}
