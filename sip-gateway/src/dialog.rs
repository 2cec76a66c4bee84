//! One leg's dialog as the engine keeps it (RFC 3261 §12): who the two ends are (Call-ID and
//! tags), where requests in it are addressed (the remote target and the route set), the
//! sequence numbers both ways, and the flow its requests leave on.
//!
//! Requests in a dialog are addressed per §12.2.1.1 (Request-URI, Route) but sent to the
//! dialog's flow: for a seat, the address its REGISTER came from (a softphone behind NAT
//! names a private Contact); for a trunk, the address its INVITE came from, which is the
//! nearest proxy when proxies record-route.

use crate::sip::{Headers, NameAddr, Request, Response, SipUri, request_uri_ok, split_list};
use crate::transaction::{Target, Transport};

#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    pub(crate) call_id: String,
    /// Our From/To header value, with our tag.
    pub(crate) local: String,
    /// Their header value (with their tag once known).
    pub(crate) remote: String,
    pub(crate) remote_target: String,
    /// Route header values for our requests, in order (§12.1.1: the Record-Route of their
    /// INVITE as it came; §12.1.2: the Record-Route of their 2xx, reversed). Empty when no
    /// proxy record-routed.
    pub(crate) route_set: Vec<String>,
    pub(crate) target: Target,
    pub(crate) local_cseq: u32,
    /// The highest CSeq number of their requests so far (§12.2.2 "remote sequence number";
    /// empty on our UAC legs until they send one).
    pub(crate) remote_cseq: Option<u32>,
}

impl Dialog {
    /// Our UAS side of a dialog an INVITE opens (§12.1.1): their From is the remote party,
    /// their Contact (else From URI) the remote target, their Record-Route the route set,
    /// our To gets `tag`.
    pub(crate) fn uas(
        req: &Request,
        tag: &str,
        transport: Transport,
        source: std::net::SocketAddr,
    ) -> Dialog {
        let remote_target = req
            .headers
            .get("Contact")
            .and_then(target_of)
            .or_else(|| req.from().map(|f| f.uri).filter(|u| request_uri_ok(u)))
            .unwrap_or_default();
        Dialog {
            call_id: req.call_id().to_string(),
            local: format!("{};tag={tag}", req.headers.get("To").unwrap_or("")),
            remote: req.headers.get("From").unwrap_or("").to_string(),
            remote_target,
            route_set: record_route(&req.headers),
            target: Target {
                transport,
                addr: source,
            },
            local_cseq: 0,
            remote_cseq: Some(req.cseq().0),
        }
    }

    /// Our UAC side of the dialog our INVITE (CSeq 1) to `remote_target` opens, until it is
    /// answered.
    pub(crate) fn uac(
        call_id: String,
        local: String,
        remote: String,
        remote_target: String,
        target: Target,
    ) -> Dialog {
        Dialog {
            call_id,
            local,
            remote,
            remote_target,
            route_set: Vec::new(),
            target,
            local_cseq: 1,
            remote_cseq: None,
        }
    }

    /// Takes what a 2xx to our INVITE fixes (§12.1.2): their To (with their tag), their
    /// Contact as the remote target, and the route set (their Record-Route, reversed).
    pub(crate) fn confirm(&mut self, resp: &Response) {
        if let Some(to) = resp.headers.get("To") {
            self.remote = to.to_string();
        }
        if let Some(uri) = resp.headers.get("Contact").and_then(target_of) {
            self.remote_target = uri;
        }
        let mut routes = record_route(&resp.headers);
        routes.reverse();
        self.route_set = routes;
    }

    /// Whether a request with this dialog's Call-ID belongs to it and is in order (§12.2.2):
    /// our tag must be in its To and theirs, once known, in its From, else 481
    /// (Call/Transaction Does Not Exist); a CSeq lower than their last one is out of order,
    /// 500. An admitted request moves the remote sequence number on, and a target refresh
    /// (re-INVITE, UPDATE) with a Contact replaces the remote target (§12.2.2, RFC 3311
    /// §5.2). ACK and CANCEL are not asked: they carry the CSeq of the INVITE they belong
    /// to.
    pub(crate) fn admit(&mut self, req: &Request) -> Result<(), u16> {
        let tag = |v: &str| NameAddr::parse(v).and_then(|n| n.tag().map(str::to_owned));
        let ours = tag(&self.local);
        let theirs = tag(&self.remote);
        let to = req.to().and_then(|t| t.tag().map(str::to_owned));
        let from = req.from().and_then(|f| f.tag().map(str::to_owned));
        if ours.is_some() && to != ours || theirs.is_some() && from != theirs {
            return Err(481);
        }
        let n = req.cseq().0;
        if self.remote_cseq.is_some_and(|last| n < last) {
            return Err(500);
        }
        self.remote_cseq = Some(n);
        if matches!(req.method.as_str(), "INVITE" | "UPDATE")
            && let Some(uri) = req.headers.get("Contact").and_then(target_of)
        {
            self.remote_target = uri;
        }
        Ok(())
    }

    /// A request in this dialog (§12.2.1.1) with CSeq `cseq` and top Via `via`. With a
    /// loose-routing first hop (`;lr`, RFC 3261 proxies) the Request-URI is the remote target
    /// and the route set the Route header; with a strict router (RFC 2543) its URI becomes the
    /// Request-URI and the remote target the last Route.
    pub(crate) fn request(&self, method: &str, cseq: u32, via: String) -> Request {
        let mut headers = Headers::default();
        headers.push("Via", via);
        headers.push("Max-Forwards", "70");
        let first = self.route_set.first().and_then(|r| NameAddr::parse(r));
        let uri = match first {
            Some(first) if !loose(&first.uri) => {
                for r in &self.route_set[1..] {
                    headers.push("Route", r.clone());
                }
                headers.push("Route", format!("<{}>", self.remote_target));
                strip_request_uri(&first.uri)
            }
            _ => {
                for r in &self.route_set {
                    headers.push("Route", r.clone());
                }
                self.remote_target.clone()
            }
        };
        headers.push("From", self.local.clone());
        headers.push("To", self.remote.clone());
        headers.push("Call-ID", self.call_id.clone());
        headers.push("CSeq", format!("{cseq} {method}"));
        Request {
            method: method.into(),
            uri,
            headers,
            body: Vec::new(),
        }
    }
}

/// The Record-Route values of a message, in order (one header may carry several, §20.30);
/// a value whose URI we could not send to cannot be routed through and is left out.
fn record_route(headers: &Headers) -> Vec<String> {
    headers
        .get_all("Record-Route")
        .flat_map(split_list)
        .filter(|r| target_of(r).is_some())
        .collect()
}

/// The URI of a Contact or route value, when requests can be sent to it: a name-addr whose
/// URI rsipstack reads as a Request-URI. (A Contact that fails is not a target: the dialog
/// keeps the one it has.)
pub(crate) fn target_of(v: &str) -> Option<String> {
    NameAddr::parse(v)
        .map(|n| n.uri)
        .filter(|uri| request_uri_ok(uri))
}

/// Whether a route URI names a loose router (`lr`, RFC 3261 §19.1.1).
fn loose(uri: &str) -> bool {
    SipUri::parse(uri).is_some_and(|u| u.params.iter().any(|(k, _)| k == "lr"))
}

/// A strict router's URI as a Request-URI: without the parameters a Request-URI may not
/// carry (§19.1.1: `method`, `maddr`, `ttl`, `transport` stay; headers go).
fn strip_request_uri(uri: &str) -> String {
    uri.split('?').next().unwrap_or(uri).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{Message, parse};

    fn request(text: &str) -> Request {
        match parse(text.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn response(text: &str) -> Response {
        match parse(text.as_bytes()) {
            Ok(Message::Response(r)) => r,
            other => panic!("not a response: {other:?}"),
        }
    }

    const INVITE: &str = "INVITE sip:2001@gw SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK1\r\nRecord-Route: <sip:p2.example;lr>, <sip:p1.example;lr;ftag=x>\r\nRecord-Route: <sip:p0.example;lr>\r\nFrom: <sip:caller@far>;tag=them\r\nTo: <sip:2001@gw>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\nContact: <sip:caller@10.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";

    fn uas() -> Dialog {
        Dialog::uas(
            &request(INVITE),
            "us",
            Transport::Udp,
            "10.0.0.9:5060".parse().unwrap(),
        )
    }

    fn header_values(r: &Request, name: &str) -> Vec<String> {
        r.headers.get_all(name).map(str::to_owned).collect()
    }

    #[test]
    fn a_uas_dialog_routes_through_the_record_route_in_order() {
        let d = uas();
        let bye = d.request("BYE", 1, "SIP/2.0/UDP gw;branch=z9hG4bK2".into());
        assert_eq!(bye.uri, "sip:caller@10.0.0.1:5070");
        assert_eq!(
            header_values(&bye, "Route"),
            [
                "<sip:p2.example;lr>",
                "<sip:p1.example;lr;ftag=x>",
                "<sip:p0.example;lr>"
            ]
        );
        assert_eq!(bye.headers.get("From"), Some("<sip:2001@gw>;tag=us"));
        assert_eq!(bye.headers.get("To"), Some("<sip:caller@far>;tag=them"));
        assert_eq!(bye.headers.get("CSeq"), Some("1 BYE"));
        // Sent to the dialog's flow, not to the first route.
        assert_eq!(d.target.addr, "10.0.0.9:5060".parse().unwrap());
    }

    #[test]
    fn a_uac_dialog_takes_the_2xx_record_route_reversed() {
        let target = Target {
            transport: Transport::Udp,
            addr: "127.0.0.1:5062".parse().unwrap(),
        };
        let mut d = Dialog::uac(
            "b1".into(),
            "<sip:hotline@gw>;tag=us".into(),
            "<sip:8001@gw>".into(),
            "sip:8001@127.0.0.1:5062".into(),
            target,
        );
        assert!(
            d.request("ACK", 1, "v".into())
                .headers
                .get("Route")
                .is_none()
        );
        d.confirm(&response("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP gw;branch=z9hG4bK3\r\nRecord-Route: <sip:near-seat;lr>, <sip:near-us;lr>\r\nFrom: <sip:hotline@gw>;tag=us\r\nTo: <sip:8001@gw>;tag=seat\r\nCall-ID: b1\r\nCSeq: 1 INVITE\r\nContact: <sip:8001@10.0.0.5:5062>\r\nContent-Length: 0\r\n\r\n"));
        let ack = d.request("ACK", 1, "v".into());
        assert_eq!(ack.uri, "sip:8001@10.0.0.5:5062");
        assert_eq!(
            header_values(&ack, "Route"),
            ["<sip:near-us;lr>", "<sip:near-seat;lr>"]
        );
        assert_eq!(ack.headers.get("To"), Some("<sip:8001@gw>;tag=seat"));
    }

    #[test]
    fn a_strict_router_gets_the_request_uri_and_the_target_goes_last() {
        let mut d = uas();
        d.route_set = vec!["<sip:strict.example>".into(), "<sip:p1.example;lr>".into()];
        let bye = d.request("BYE", 2, "v".into());
        assert_eq!(bye.uri, "sip:strict.example");
        assert_eq!(
            header_values(&bye, "Route"),
            ["<sip:p1.example;lr>", "<sip:caller@10.0.0.1:5070>"]
        );
    }

    #[test]
    fn requests_outside_the_dialog_or_out_of_order_are_not_admitted() {
        let mut d = uas();
        let req = |to_tag: &str, from_tag: &str, cseq: u32| {
            request(&format!(
                "BYE sip:2001@gw SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK{cseq}\r\nFrom: <sip:caller@far>;tag={from_tag}\r\nTo: <sip:2001@gw>;tag={to_tag}\r\nCall-ID: c1\r\nCSeq: {cseq} BYE\r\nContent-Length: 0\r\n\r\n"
            ))
        };
        assert_eq!(d.admit(&req("other", "them", 8)), Err(481));
        assert_eq!(d.admit(&req("us", "other", 8)), Err(481));
        assert_eq!(
            d.admit(&req("us", "them", 6)),
            Err(500),
            "below the INVITE's 7"
        );
        assert_eq!(d.admit(&req("us", "them", 7)), Ok(()));
        assert_eq!(d.admit(&req("us", "them", 9)), Ok(()));
        assert_eq!(d.admit(&req("us", "them", 8)), Err(500));
        assert_eq!(d.remote_cseq, Some(9));
    }

    #[test]
    fn a_reinvite_with_a_new_contact_refreshes_the_target() {
        let mut d = uas();
        let moved = "INVITE sip:2001@gw SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK8\r\nFrom: <sip:caller@far>;tag=them\r\nTo: <sip:2001@gw>;tag=us\r\nCall-ID: c1\r\nCSeq: 8 INVITE\r\nContact: <sip:caller@10.0.0.2:5080>\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(d.admit(&request(moved)), Ok(()));
        let bye = d.request("BYE", 1, "v".into());
        assert_eq!(bye.uri, "sip:caller@10.0.0.2:5080");
        // Refused requests refresh nothing.
        let stale = moved
            .replace("8 INVITE", "7 INVITE")
            .replace("10.0.0.2:5080", "10.0.0.3");
        assert_eq!(d.admit(&request(&stale)), Err(500));
        assert_eq!(d.remote_target, "sip:caller@10.0.0.2:5080");
    }
}
