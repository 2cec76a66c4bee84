//! A minimal SIP text parser for the load tools: enough of RFC 3261 to play a trunk and a
//! seat (start line, headers with their compact forms, body, the SDP connection address and
//! audio port). It is deliberately separate from the gateway's own parser, so a load run does
//! not only exercise the code against itself.

use std::net::SocketAddrV4;

/// A parsed SIP request or response.
#[derive(Debug, Clone, PartialEq)]
pub struct SipMessage {
    /// `Some(method)` for a request.
    pub method: Option<String>,
    /// The status code of a response.
    pub status: Option<u16>,
    /// The Request-URI of a request.
    pub uri: Option<String>,
    /// Header names lower-cased and compact forms expanded, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// RFC 3261 §7.3.3 compact header forms.
fn full_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        _ => return lower,
    }
    .to_string()
}

impl SipMessage {
    pub fn parse(text: &str) -> Option<SipMessage> {
        let (head, body) = match text.find("\r\n\r\n") {
            Some(i) => (&text[..i], &text[i + 4..]),
            None => (text.trim_end(), ""),
        };
        let mut lines = head.split("\r\n");
        let start = lines.next()?.trim();
        let (method, status, uri) = if let Some(rest) = start.strip_prefix("SIP/2.0 ") {
            let code = rest.split_whitespace().next()?.parse().ok()?;
            (None, Some(code), None)
        } else {
            let mut parts = start.split_whitespace();
            let m = parts.next()?.to_string();
            let u = parts.next()?.to_string();
            if parts.next()? != "SIP/2.0" {
                return None;
            }
            (Some(m), None, Some(u))
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // RFC 3261 §7.3.1 line folding: a continuation of the previous header.
                let last = headers.last_mut()?;
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((full_name(name.trim()), value.trim().to_string()));
        }
        let msg = SipMessage {
            method,
            status,
            uri,
            headers,
            body: String::new(),
        };
        let len = msg
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(body.len());
        let body = body.get(..len.min(body.len()))?.to_string();
        Some(SipMessage { body, ..msg })
    }

    /// The first value of a header (lower-case name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a header, comma-separated values split (for Via).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(',').map(str::trim))
            .collect()
    }

    /// `(number, method)` of CSeq.
    pub fn cseq(&self) -> Option<(u32, String)> {
        let v = self.header("cseq")?;
        let (n, m) = v.split_once(char::is_whitespace)?;
        Some((n.trim().parse().ok()?, m.trim().to_string()))
    }

    /// The URI inside the Contact header's angle brackets (or the bare value).
    pub fn contact_uri(&self) -> Option<&str> {
        self.header("contact").map(uri_of)
    }
}

/// The URI in a name-addr (`"x" <sip:a@b>;tag=1` → `sip:a@b`).
pub fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// A parameter of a header value (`tag` of `<sip:a@b>;tag=x`), looking after the URI.
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let after = value.rfind('>').map_or(value, |i| &value[i + 1..]);
    after.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A parameter of a `Digest` challenge (`realm`, `nonce`), unquoted.
pub fn digest_param<'a>(challenge: &'a str, name: &str) -> Option<&'a str> {
    let rest = challenge.trim().strip_prefix("Digest")?;
    rest.split(',').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// The audio destination of an SDP body: `c=` address and `m=audio` port (RFC 4566).
pub fn sdp_audio(body: &str) -> Option<SocketAddrV4> {
    let mut ip = None;
    let mut port = None;
    for line in body.lines() {
        let line = line.trim();
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            ip = c.split('/').next()?.trim().parse().ok();
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            port = m.split_whitespace().next()?.parse().ok();
        }
    }
    Some(SocketAddrV4::new(ip?, port?))
}

/// A PCMA-only SDP offer or answer for one RTP port.
pub fn sdp_pcma(origin: &str, addr: SocketAddrV4) -> String {
    format!(
        "v=0\r\no={origin} 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\na=sendrecv\r\n",
        ip = addr.ip(),
        port = addr.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response_with_sdp_and_compact_headers() {
        let text = "SIP/2.0 200 OK\r\n\
             v: SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bKa;rport=5000\r\n\
             Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKb, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKc\r\n\
             From: <sip:139@127.0.0.1>;tag=abc\r\n\
             To: \"Seat\" <sip:02212345@127.0.0.1>;tag=xyz\r\n\
             i: call-1\r\n\
             CSeq: 1 INVITE\r\n\
             m: <sip:gw@127.0.0.1:5091;transport=udp>\r\n\
             Content-Type: application/sdp\r\n\
             l: 62\r\n\r\n\
             v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 20002 RTP/AVP 8 101\r\nt=0 0\r\nextra";
        let m = SipMessage::parse(text).unwrap();
        assert_eq!(m.status, Some(200));
        assert_eq!(m.method, None);
        assert_eq!(m.header("call-id"), Some("call-1"));
        assert_eq!(m.header_all("via").len(), 3);
        assert_eq!(m.cseq(), Some((1, "INVITE".to_string())));
        assert_eq!(param(m.header("to").unwrap(), "tag"), Some("xyz"));
        assert_eq!(m.contact_uri(), Some("sip:gw@127.0.0.1:5091;transport=udp"));
        assert_eq!(m.body.len(), 62);
        assert_eq!(sdp_audio(&m.body), Some("127.0.0.1:20002".parse().unwrap()));
    }

    #[test]
    fn parses_a_request_and_a_digest_challenge() {
        let text = "INVITE sip:8001@127.0.0.1:5300 SIP/2.0\r\nCSeq: 7 INVITE\r\n\
             Content-Length: 0\r\n\r\n";
        let m = SipMessage::parse(text).unwrap();
        assert_eq!(m.method.as_deref(), Some("INVITE"));
        assert_eq!(m.uri.as_deref(), Some("sip:8001@127.0.0.1:5300"));
        assert!(SipMessage::parse("INVITE sip:x SIP/3.0\r\n\r\n").is_none());
        assert!(SipMessage::parse("garbage\r\nno colon\r\n\r\n").is_none());
        let ch = "Digest realm=\"hotline\", nonce=\"18c.ab\", algorithm=MD5, qop=\"auth\"";
        assert_eq!(digest_param(ch, "realm"), Some("hotline"));
        assert_eq!(digest_param(ch, "nonce"), Some("18c.ab"));
        assert_eq!(digest_param(ch, "opaque"), None);
    }
}
