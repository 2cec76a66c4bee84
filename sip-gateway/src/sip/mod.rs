//! SIP messages as the rest of the crate sees them, and the one place where `rsipstack` is
//! used: its `rsipstack::sip` parser reads every message, and [`stack`] runs its transport
//! and transaction layers under the engine. Everything past this module speaks [`Message`],
//! [`Request`], [`Response`] and the small helpers below, so a change of rsipstack's API
//! touches only this module.
//!
//! Malformed input (RFC 3261 §18.3, §8.2.2): a message that cannot be parsed at all is
//! dropped; a request whose start line parses but that lacks a mandatory header, carries a
//! wrong CSeq or an impossible Content-Length gets 400 when enough headers are present to
//! address a response. Nothing here panics on any input.

use std::fmt::Write as _;
use std::net::SocketAddr;

pub(crate) mod dialogs;
pub(crate) mod stack;

/// An ordered header list with canonical names (compact forms expanded by the parser).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Headers(pub(crate) Vec<(String, String)>);

impl Headers {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }
    pub(crate) fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_string(), value.into()));
    }
    pub(crate) fn set(&mut self, name: &str, value: impl Into<String>) {
        self.remove(name);
        self.push(name, value);
    }
    pub(crate) fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
    /// Every element of a list header, split at top-level commas.
    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.get_all(name).flat_map(split_list).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) uri: String,
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    Request(Request),
    Response(Response),
}

/// Why a message was refused, and whether a 400 can be sent for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseError {
    pub(crate) reason: String,
    /// A 400 (or other error) to send back, when the request had enough headers.
    pub(crate) reply: Option<Response>,
}

impl Request {
    pub(crate) fn call_id(&self) -> &str {
        self.headers.get("Call-ID").unwrap_or("")
    }
    pub(crate) fn cseq(&self) -> (u32, String) {
        parse_cseq(self.headers.get("CSeq").unwrap_or("")).unwrap_or((0, String::new()))
    }
    pub(crate) fn top_via(&self) -> Option<Via> {
        self.headers.list("Via").first().and_then(|v| Via::parse(v))
    }
    pub(crate) fn branch(&self) -> String {
        self.top_via()
            .and_then(|v| v.param("branch").map(str::to_string))
            .unwrap_or_default()
    }
    pub(crate) fn from(&self) -> Option<NameAddr> {
        self.headers.get("From").and_then(NameAddr::parse)
    }
    pub(crate) fn to(&self) -> Option<NameAddr> {
        self.headers.get("To").and_then(NameAddr::parse)
    }
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("{} {} SIP/2.0\r\n", self.method, self.uri);
        write_headers(&mut s, &self.headers, self.body.len());
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

impl Response {
    pub(crate) fn cseq(&self) -> (u32, String) {
        parse_cseq(self.headers.get("CSeq").unwrap_or("")).unwrap_or((0, String::new()))
    }
    pub(crate) fn call_id(&self) -> &str {
        self.headers.get("Call-ID").unwrap_or("")
    }
    pub(crate) fn branch(&self) -> String {
        self.headers
            .list("Via")
            .first()
            .and_then(|v| Via::parse(v))
            .and_then(|v| v.param("branch").map(str::to_string))
            .unwrap_or_default()
    }
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("SIP/2.0 {} {}\r\n", self.status, self.reason);
        write_headers(&mut s, &self.headers, self.body.len());
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn write_headers(s: &mut String, headers: &Headers, body_len: usize) {
    for (n, v) in &headers.0 {
        if n.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        let _ = write!(s, "{n}: {v}\r\n");
    }
    let _ = write!(s, "Content-Length: {body_len}\r\n\r\n");
}

/// The standard reason phrase for the codes we send.
pub(crate) fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Unknown",
    }
}

/// A response to `req` per RFC 3261 §8.2.6.2: Via, From, Call-ID and CSeq copied, To copied
/// with `to_tag` added when the request's To has none (and Record-Route, §12.1.1).
pub(crate) fn response_to(req: &Request, status: u16, to_tag: Option<&str>) -> Response {
    let mut headers = Headers::default();
    for v in req.headers.get_all("Via") {
        headers.push("Via", v);
    }
    // §12.1.1: a response that may establish a dialog carries the request's Record-Route,
    // in order, so that the proxies that asked stay on the dialog's path.
    if req.method == "INVITE" && (101..300).contains(&status) {
        for v in req.headers.get_all("Record-Route") {
            headers.push("Record-Route", v);
        }
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(v) = req.headers.get(name) {
            headers.push(name, v);
        }
    }
    if let (Some(tag), Some(to)) = (to_tag, req.headers.get("To"))
        && !to.contains(";tag=")
        && status != 100
    {
        headers.set("To", format!("{to};tag={tag}"));
    }
    headers.push("Server", "hotline");
    Response {
        status,
        reason: reason_phrase(status).to_string(),
        headers,
        body: Vec::new(),
    }
}

/// Finds the end of the header section (the index of the empty line's CRLFCRLF).
pub(crate) fn find_header_end(data: &[u8]) -> Option<usize> {
    data.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Parses one complete message (a datagram, or a stream frame cut by Content-Length).
pub(crate) fn parse(data: &[u8]) -> Result<Message, ParseError> {
    let Some(sep) = find_header_end(data) else {
        return Err(unparseable("no end of headers"));
    };
    let raw_body = &data[sep + 4..];
    let parsed = match rsipstack::sip::parser::parse_message(data) {
        Ok(m) => m,
        Err(e) => return Err(lenient_reply(data, &format!("unparseable: {e}"))),
    };
    let (start, headers_src) = match &parsed {
        rsipstack::sip::SipMessage::Request(r) => (
            Some((
                r.method.to_string(),
                r.uri.to_string(),
                r.version.to_string(),
            )),
            &r.headers,
        ),
        rsipstack::sip::SipMessage::Response(r) => (None, &r.headers),
    };
    let mut headers = Headers::default();
    for h in headers_src.iter() {
        let text = h.to_string();
        let Some((n, v)) = text.split_once(':') else {
            continue;
        };
        headers.push(n.trim(), v.trim());
    }
    // Content-Length (RFC 3261 §18.3): more declared than received is an error; less means
    // the rest of the datagram is discarded.
    let body = match headers.get("Content-Length") {
        Some(cl) => match cl.trim().parse::<usize>() {
            Ok(n) if n <= raw_body.len() => raw_body[..n].to_vec(),
            _ => return Err(reply_400(start.is_some(), &headers, "bad Content-Length")),
        },
        None => raw_body.to_vec(),
    };
    match (start, parsed) {
        (Some((method, uri, version)), _) => {
            let req = Request {
                method,
                uri,
                headers,
                body,
            };
            validate_request(req, &version)
        }
        (None, rsipstack::sip::SipMessage::Response(r)) => {
            let status = u16::from(r.status_code.clone());
            let reason = r
                .reason_phrase()
                .map(str::to_string)
                .unwrap_or_else(|| reason_phrase(status).to_string());
            // A response without the headers that match it to a transaction is dropped.
            if headers.get("Call-ID").is_none()
                || headers.get("Via").is_none()
                || parse_cseq(headers.get("CSeq").unwrap_or("")).is_none()
            {
                return Err(unparseable("response without Via/Call-ID/CSeq"));
            }
            // Its From and To go into our dialogs (and into our ACK and BYE): a response
            // whose From or To cannot be read is discarded like one without them.
            let readable = |name| headers.get(name).and_then(NameAddr::parse).is_some();
            if !readable("From") || !readable("To") {
                return Err(unparseable("response with a malformed From/To"));
            }
            let resp = Response {
                status,
                reason,
                headers,
                body,
            };
            // A 2xx to INVITE confirms a dialog of ours (rsipstack's), whose remote target
            // is its Contact (§12.1.2): one that dialog cannot read is discarded too.
            let confirms = (200..300).contains(&status) && resp.cseq().1 == "INVITE";
            if confirms && !dialogs::confirms_dialog(&resp.to_bytes()) {
                return Err(unparseable("2xx to INVITE without a readable Contact"));
            }
            Ok(Message::Response(resp))
        }
        (None, rsipstack::sip::SipMessage::Request(_)) => Err(unparseable("inconsistent")),
    }
}

fn unparseable(reason: &str) -> ParseError {
    ParseError {
        reason: reason.to_string(),
        reply: None,
    }
}

/// RFC 3261 §8.1.1: To, From, CSeq, Call-ID, Max-Forwards and Via are mandatory; we accept a
/// missing Max-Forwards (older stacks) but not the others.
fn validate_request(req: Request, version: &str) -> Result<Message, ParseError> {
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if req.headers.get(name).is_none_or(|v| v.trim().is_empty()) {
            return Err(reply_400(true, &req.headers, &format!("missing {name}")));
        }
    }
    for name in [
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Content-Length",
    ] {
        if req.headers.count(name) > 1 {
            return Err(reply_400(true, &req.headers, &format!("duplicate {name}")));
        }
    }
    let vias = req.headers.list("Via");
    if vias.iter().any(|v| Via::parse(v).is_none()) {
        return Err(reply_400(true, &req.headers, "malformed Via"));
    }
    match parse_cseq(req.headers.get("CSeq").unwrap_or("")) {
        Some((_, m)) if m == req.method || (req.method == "ACK" && m == "ACK") => {}
        _ => return Err(reply_400(true, &req.headers, "CSeq does not match")),
    }
    if req.from().is_none() || req.to().is_none() {
        return Err(reply_400(true, &req.headers, "malformed From/To"));
    }
    if SipUri::parse(&req.uri).is_none() {
        return Err(reply_400(true, &req.headers, "malformed Request-URI"));
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(with_status(&req, 505));
    }
    if let Some(mf) = req.headers.get("Max-Forwards") {
        match mf.trim().parse::<u32>() {
            Ok(0) if req.method != "OPTIONS" => return Err(with_status(&req, 483)),
            Ok(_) => {}
            Err(_) => return Err(reply_400(true, &req.headers, "bad Max-Forwards")),
        }
    }
    Ok(Message::Request(req))
}

fn with_status(req: &Request, status: u16) -> ParseError {
    ParseError {
        reason: format!("answered {status}"),
        reply: (req.method != "ACK").then(|| response_to(req, status, None)),
    }
}

/// A 400 when the request carries the headers needed to address it (Via, From, To, Call-ID,
/// CSeq); otherwise the message is dropped (RFC 3261 §18.3 / §8.2.2).
fn reply_400(is_request: bool, headers: &Headers, reason: &str) -> ParseError {
    let addressable = is_request
        && ["Via", "From", "To", "Call-ID", "CSeq"]
            .iter()
            .all(|n| headers.get(n).is_some_and(|v| !v.trim().is_empty()))
        && headers
            .list("Via")
            .first()
            .and_then(|v| Via::parse(v))
            .is_some()
        && !headers
            .get("CSeq")
            .is_some_and(|c| c.trim().ends_with("ACK"));
    if !addressable {
        return unparseable(reason);
    }
    let mut h = Headers::default();
    for v in headers.get_all("Via") {
        h.push("Via", v);
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(v) = headers.get(name) {
            h.push(name, v);
        }
    }
    h.push("Server", "hotline");
    ParseError {
        reason: reason.to_string(),
        reply: Some(Response {
            status: 400,
            reason: format!("Bad Request ({})", reason.replace(['\r', '\n'], " ")),
            headers: h,
            body: Vec::new(),
        }),
    }
}

/// Methods the parser knows; any other well-formed token is an extension method we do not
/// implement (501, RFC 3261 §8.2.1).
const KNOWN_METHODS: &[&str] = &[
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// When the strict parser refuses a message, scan it line by line: a request-looking start
/// line with the addressing headers still gets a 400 (501 for an unknown method).
fn lenient_reply(data: &[u8], reason: &str) -> ParseError {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or("");
    let method = start.split(' ').next().unwrap_or("");
    let looks_like_request = !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && start.ends_with("SIP/2.0");
    let mut headers = Headers::default();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            let n = canonical_name(n.trim());
            if !v.contains('\u{FFFD}') {
                headers.push(n, v.trim());
            }
        }
    }
    let mut e = reply_400(looks_like_request, &headers, reason);
    let cseq_method = headers
        .get("CSeq")
        .and_then(parse_cseq)
        .map(|(_, m)| m)
        .unwrap_or_default();
    if let Some(r) = &mut e.reply
        && !KNOWN_METHODS.contains(&method)
        && cseq_method == method
    {
        r.status = 501;
        r.reason = reason_phrase(501).to_string();
    }
    e
}

fn canonical_name(n: &str) -> &str {
    match n.to_ascii_lowercase().as_str() {
        "v" | "via" => "Via",
        "f" | "from" => "From",
        "t" | "to" => "To",
        "i" | "call-id" => "Call-ID",
        "cseq" => "CSeq",
        _ => n,
    }
}

pub(crate) fn parse_cseq(v: &str) -> Option<(u32, String)> {
    let mut it = v.split_whitespace();
    let n = it.next()?.parse::<u32>().ok()?;
    let m = it.next()?;
    if it.next().is_some() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    Some((n, m.to_string()))
}

/// Splits a header value at commas that are outside quotes and angle brackets.
pub(crate) fn split_list(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut cur) = (false, false, String::new());
    let mut prev_backslash = false;
    for c in v.chars() {
        match c {
            '"' if !prev_backslash => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                prev_backslash = false;
                continue;
            }
            _ => {}
        }
        prev_backslash = c == '\\' && !prev_backslash;
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// `;name=value;flag` parameters.
pub(crate) fn parse_params(s: &str) -> Vec<(String, Option<String>)> {
    s.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
            None => (p.to_ascii_lowercase(), None),
        })
        .collect()
}

/// A parsed Via value (RFC 3261 §20.42).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Via {
    pub(crate) transport: String,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) params: Vec<(String, Option<String>)>,
}

impl Via {
    pub(crate) fn parse(v: &str) -> Option<Via> {
        let (proto, rest) = v.trim().split_once(char::is_whitespace)?;
        let mut parts = proto.split('/');
        let (name, ver, transport) = (parts.next()?, parts.next()?, parts.next()?);
        if !name.trim().eq_ignore_ascii_case("SIP") || ver.trim() != "2.0" {
            return None;
        }
        let rest = rest.trim();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(sent_by.trim())?;
        Some(Via {
            transport: transport.trim().to_ascii_uppercase(),
            host,
            port,
            params: parse_params(params),
        })
    }
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
    pub(crate) fn has(&self, name: &str) -> bool {
        self.params.iter().any(|(k, _)| k == name)
    }
}

/// RFC 3581 §4 (and RFC 3261 §18.2.1): a server adds `received` with the source address, and
/// fills `rport` with the source port when the client asked for it. Returns the new value.
pub(crate) fn stamp_via(via: &str, source: SocketAddr) -> String {
    let Some(parsed) = Via::parse(via) else {
        return via.to_string();
    };
    let mut out = String::new();
    let base = via.split(';').next().unwrap_or(via).trim();
    out.push_str(base);
    for (k, v) in &parsed.params {
        if k == "received" || k == "rport" {
            continue;
        }
        out.push(';');
        out.push_str(k);
        if let Some(v) = v {
            out.push('=');
            out.push_str(v);
        }
    }
    let _ = write!(out, ";received={}", source.ip());
    if parsed.has("rport") {
        let _ = write!(out, ";rport={}", source.port());
    }
    out
}

/// Where responses to a request go (RFC 3261 §18.2.2 with RFC 3581 §4): the source address
/// when `rport` was asked for or the transport is a stream; else the source IP and the Via port.
pub(crate) fn response_target(req: &Request, source: SocketAddr, reliable: bool) -> SocketAddr {
    match req.top_via() {
        Some(v) if !reliable && !v.has("rport") => {
            SocketAddr::new(source.ip(), v.port.unwrap_or(5060))
        }
        _ => source,
    }
}

fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((h.to_string(), port));
    }
    let (h, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().ok()?)),
        None => (s, None),
    };
    if h.is_empty()
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    {
        return None;
    }
    Some((h.to_string(), port))
}

/// Whether rsipstack, which reads every message we send, reads `uri` as a Request-URI: a
/// Contact or route URI we would send requests to must pass (our [`SipUri`] is more lenient
/// in places, e.g. `sip:;user@host`).
pub(crate) fn request_uri_ok(uri: &str) -> bool {
    rsipstack::sip::Uri::try_from(uri.trim()).is_ok()
}

/// A `sip:` / `sips:` / `tel:` URI (RFC 3261 §19.1), enough of it for routing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SipUri {
    pub(crate) scheme: String,
    pub(crate) user: Option<String>,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) params: Vec<(String, Option<String>)>,
}

impl SipUri {
    pub(crate) fn parse(s: &str) -> Option<SipUri> {
        let s = s.trim();
        // No URI holds whitespace or control characters (RFC 3261 §25.1: they are escaped);
        // one that does could not be a Request-URI of ours.
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let (scheme, rest) = s.split_once(':')?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "tel" {
            let (num, params) = rest.split_once(';').unwrap_or((rest, ""));
            return Some(SipUri {
                scheme,
                user: Some(num.to_string()),
                host: String::new(),
                port: None,
                params: parse_params(params),
            });
        }
        if scheme != "sip" && scheme != "sips" {
            return None;
        }
        let rest = rest.split('?').next().unwrap_or(rest);
        let (userinfo, hostpart) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], &hostpart[i..]),
            None => (hostpart, ""),
        };
        let (host, port) = split_host_port(hostport)?;
        let user = userinfo.map(|u| u.split(':').next().unwrap_or(u).to_string());
        if user.as_deref().is_some_and(str::is_empty) {
            return None;
        }
        Some(SipUri {
            scheme,
            user,
            host,
            port,
            params: parse_params(params),
        })
    }
    #[cfg(test)]
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
    /// The socket address when the host is an IP literal.
    #[cfg(test)]
    pub(crate) fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: std::net::IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port.unwrap_or(5060)))
    }
}

/// `"Display" <uri>;params` or `uri;params` (RFC 3261 §20.10 name-addr / addr-spec).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NameAddr {
    pub(crate) display: Option<String>,
    pub(crate) uri: String,
    pub(crate) params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    pub(crate) fn parse(v: &str) -> Option<NameAddr> {
        let v = v.trim();
        if let Some(lt) = v.find('<') {
            let gt = lt + v[lt..].find('>')?;
            let display = v[..lt].trim().trim_matches('"').trim();
            let uri = v[lt + 1..gt].trim();
            SipUri::parse(uri)?;
            Some(NameAddr {
                display: (!display.is_empty()).then(|| display.to_string()),
                uri: uri.to_string(),
                params: parse_params(&v[gt + 1..]),
            })
        } else {
            // addr-spec: URI parameters are header parameters here (RFC 3261 §20.10).
            let (uri, params) = match v.find(';') {
                Some(i) => (&v[..i], &v[i..]),
                None => (v, ""),
            };
            SipUri::parse(uri)?;
            Some(NameAddr {
                display: None,
                uri: uri.to_string(),
                params: parse_params(params),
            })
        }
    }
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
    pub(crate) fn tag(&self) -> Option<&str> {
        self.param("tag")
    }
    pub(crate) fn user(&self) -> Option<String> {
        SipUri::parse(&self.uri).and_then(|u| u.user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn parses_and_prints_a_request() {
        let Ok(Message::Request(r)) = parse(OPTIONS.as_bytes()) else {
            panic!("did not parse")
        };
        assert_eq!(r.method, "OPTIONS");
        assert_eq!(r.call_id(), "c1");
        assert_eq!(r.cseq(), (1, "OPTIONS".into()));
        assert_eq!(r.branch(), "z9hG4bK1");
        let again = parse(&r.to_bytes()).unwrap();
        assert_eq!(again, Message::Request(r));
    }

    #[test]
    fn compact_forms_and_folding_are_understood() {
        let m = "OPTIONS sip:h SIP/2.0\r\nv: SIP/2.0/UDP h:1;branch=z9hG4bKx\r\nf: <sip:a@x>;tag=1\r\nt: <sip:b@y>\r\ni: c2\r\nCSeq: 2\r\n OPTIONS\r\nl: 0\r\n\r\n";
        let Ok(Message::Request(r)) = parse(m.as_bytes()) else {
            panic!("did not parse")
        };
        assert_eq!(r.call_id(), "c2");
        assert_eq!(r.cseq(), (2, "OPTIONS".into()));
    }

    #[test]
    fn missing_call_id_gets_no_400_but_missing_cseq_does_not_panic() {
        let m = OPTIONS.replace("Call-ID: c1\r\n", "");
        let e = parse(m.as_bytes()).unwrap_err();
        assert!(e.reply.is_none(), "cannot address a 400 without Call-ID");
        let m = OPTIONS.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
        let e = parse(m.as_bytes()).unwrap_err();
        assert_eq!(e.reply.unwrap().status, 400);
    }

    #[test]
    fn content_length_beyond_the_datagram_is_400() {
        let m = OPTIONS.replace("Content-Length: 0", "Content-Length: 9999");
        assert_eq!(parse(m.as_bytes()).unwrap_err().reply.unwrap().status, 400);
    }

    #[test]
    fn via_is_stamped_per_rfc3581() {
        let src: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let v = stamp_via("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport", src);
        assert_eq!(
            v,
            "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;received=192.0.2.7;rport=40000"
        );
        let v = stamp_via("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1", src);
        assert!(v.ends_with(";received=192.0.2.7"), "{v}");
    }

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_list("\"a, b\" <sip:x@y;p=1,2>;q=1, <sip:z@w>"),
            vec!["\"a, b\" <sip:x@y;p=1,2>;q=1", "<sip:z@w>"]
        );
    }

    #[test]
    fn uris_rsipstack_would_not_read_are_refused() {
        for bad in ["sip:80 01@10.0.0.9", "sip:8001@", "sip:a@b\u{7}"] {
            assert!(SipUri::parse(bad).is_none(), "{bad}");
        }
        assert!(!request_uri_ok("sip:;8001@10.0.0.9"));
        assert!(request_uri_ok("sip:8001@10.0.0.5:5062;transport=tcp"));
        for good in [
            "sip:8001@10.0.0.5:5062;transport=tcp",
            "sips:8001@gw.example",
            "sip:[::1]:5060",
            "tel:+8613800138000;phone-context=+86",
        ] {
            assert!(SipUri::parse(good).is_some(), "{good}");
        }
    }

    #[test]
    fn name_addr_and_uri() {
        let n = NameAddr::parse("\"Bob\" <sip:8001@10.0.0.1:5062;transport=tcp>;tag=abc").unwrap();
        assert_eq!(n.display.as_deref(), Some("Bob"));
        assert_eq!(n.tag(), Some("abc"));
        let u = SipUri::parse(&n.uri).unwrap();
        assert_eq!(u.user.as_deref(), Some("8001"));
        assert_eq!(u.port, Some(5062));
        assert_eq!(u.param("transport"), Some("tcp"));
        assert_eq!(u.socket_addr(), Some("10.0.0.1:5062".parse().unwrap()));
        assert!(SipUri::parse("http://x").is_none());
        assert!(NameAddr::parse("<sip:@x>").is_none());
    }

    #[test]
    fn mutated_messages_never_panic() {
        // Deterministic mutations (byte flips, truncations, duplications) of valid messages.
        let seeds = [
            OPTIONS.as_bytes().to_vec(),
            b"INVITE sip:1@h SIP/2.0\r\nVia: SIP/2.0/UDP h:1;branch=z9hG4bK1\r\nFrom: \"A\" <sip:a@h>;tag=1\r\nTo: <sip:1@h>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContact: <sip:a@h:5>\r\nContent-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\nm=au".to_vec(),
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h:1;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:1@h>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..6000 {
            let mut m = seeds[i % seeds.len()].clone();
            for _ in 0..(next() % 6 + 1) {
                let at = (next() as usize) % m.len().max(1);
                match next() % 5 {
                    0 => m[at] = next() as u8,
                    1 => m.truncate(at),
                    2 => {
                        let tail = m[at..].to_vec();
                        m.extend_from_slice(&tail);
                    }
                    3 => m.insert(at.min(m.len()), b"\r\n:;<>\"@,"[(next() % 9) as usize]),
                    _ => {
                        m.remove(at.min(m.len().saturating_sub(1)).min(m.len()));
                    }
                }
                if m.is_empty() {
                    break;
                }
            }
            if let Ok(Message::Request(r)) = parse(&m) {
                let _ = (r.top_via(), r.from(), r.to(), r.cseq(), r.to_bytes());
                let _ = stamp_via(
                    r.headers.get("Via").unwrap_or(""),
                    "1.2.3.4:5".parse().unwrap(),
                );
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            &b""[..],
            b"\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
            b"INVITE\r\n\r\n",
            b"SIP/2.0 abc\r\n\r\n",
            b"OPTIONS sip:x SIP/2.0\r\nVia: \r\n\r\n",
        ] {
            let _ = parse(input);
        }
    }
}
