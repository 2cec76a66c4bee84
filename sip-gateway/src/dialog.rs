//! The engine's record of one leg's dialog (RFC 3261 §12): who the two ends are (Call-ID
//! and tags), the flow the leg came in on or was called on, and the order of the far end's
//! requests. The dialog itself — Request-URI, route set, CSeq of our requests, the 2xx ACK,
//! target refresh — is the leg's rsipstack `InviteDialog` ([`crate::sip::dialogs`]); what is
//! kept here lets the engine refuse a request that names the leg's Call-ID but is not of its
//! dialog (481) or not in its order (500) when rsipstack's dialog does not take it (§12.2.2).

use crate::sip::{NameAddr, Request, Response, request_uri_ok};
use crate::transaction::{Target, Transport};

#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    pub(crate) call_id: String,
    /// Our From/To header value, with our tag.
    pub(crate) local: String,
    /// Their header value (with their tag once known).
    pub(crate) remote: String,
    /// The flow of the leg: where the INVITE came from (UAS), where ours went (UAC).
    pub(crate) target: Target,
    /// The highest CSeq number of their requests so far (§12.2.2 "remote sequence number";
    /// empty on our UAC legs until they send one).
    pub(crate) remote_cseq: Option<u32>,
}

impl Dialog {
    /// Our UAS side of a dialog an INVITE opens (§12.1.1): their From is the remote party,
    /// our To gets `tag`.
    pub(crate) fn uas(
        req: &Request,
        tag: &str,
        transport: Transport,
        source: std::net::SocketAddr,
    ) -> Dialog {
        Dialog {
            call_id: req.call_id().to_string(),
            local: format!("{};tag={tag}", req.headers.get("To").unwrap_or("")),
            remote: req.headers.get("From").unwrap_or("").to_string(),
            target: Target {
                transport,
                addr: source,
            },
            remote_cseq: Some(req.cseq().0),
        }
    }

    /// Our UAC side of the dialog our INVITE opens, until it is answered.
    pub(crate) fn uac(call_id: String, local: String, remote: String, target: Target) -> Dialog {
        Dialog {
            call_id,
            local,
            remote,
            target,
            remote_cseq: None,
        }
    }

    /// Takes their tag from a 2xx to our INVITE (§12.1.2).
    pub(crate) fn confirm(&mut self, resp: &Response) {
        if let Some(to) = resp.headers.get("To") {
            self.remote = to.to_string();
        }
    }

    /// Whether a request with this dialog's Call-ID belongs to it and is in order (§12.2.2):
    /// our tag must be in its To and theirs, once known, in its From, else 481
    /// (Call/Transaction Does Not Exist); a CSeq lower than their last one is out of order,
    /// 500. An admitted request moves the remote sequence number on. ACK and CANCEL are not
    /// asked: they carry the CSeq of the INVITE they belong to.
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
        Ok(())
    }
}

/// Whether an INVITE can open a dialog we could hang up in: its (first) Contact names a URI
/// requests can be sent to, and rsipstack's dialog can be made of it as we hand it over
/// (every Contact, From, To and CSeq readable: [`crate::sip::dialogs::dialog_ready`]).
pub(crate) fn opens_dialog(invite: &Request) -> bool {
    invite.headers.get("Contact").and_then(target_of).is_some()
        && crate::sip::dialogs::dialog_ready(&invite.to_bytes())
}

/// The URI of a Contact value, when requests can be sent to it: a name-addr whose URI
/// rsipstack reads as a Request-URI.
pub(crate) fn target_of(v: &str) -> Option<String> {
    NameAddr::parse(v)
        .map(|n| n.uri)
        .filter(|uri| request_uri_ok(uri))
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

    const INVITE: &str = "INVITE sip:2001@gw SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK1\r\nFrom: <sip:caller@far>;tag=them\r\nTo: <sip:2001@gw>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\nContact: <sip:caller@10.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";

    fn uas() -> Dialog {
        Dialog::uas(
            &request(INVITE),
            "us",
            Transport::Udp,
            "10.0.0.9:5060".parse().unwrap(),
        )
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
    fn a_uac_dialog_learns_their_tag_from_the_2xx() {
        let target = Target {
            transport: Transport::Udp,
            addr: "127.0.0.1:5062".parse().unwrap(),
        };
        let mut d = Dialog::uac(
            "b1".into(),
            "<sip:hotline@gw>;tag=us".into(),
            "<sip:8001@gw>".into(),
            target,
        );
        let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP gw;branch=z9hG4bK3\r\nFrom: <sip:hotline@gw>;tag=us\r\nTo: <sip:8001@gw>;tag=seat\r\nCall-ID: b1\r\nCSeq: 1 INVITE\r\nContact: <sip:8001@10.0.0.5:5062>\r\nContent-Length: 0\r\n\r\n";
        match parse(ok.as_bytes()) {
            Ok(Message::Response(r)) => d.confirm(&r),
            other => panic!("not a response: {other:?}"),
        }
        let bye = request(
            "BYE sip:hotline@gw SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK9\r\nFrom: <sip:8001@gw>;tag=seat\r\nTo: <sip:hotline@gw>;tag=us\r\nCall-ID: b1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(d.admit(&bye), Ok(()));
        let stranger = request(
            "BYE sip:hotline@gw SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKa\r\nFrom: <sip:8001@gw>;tag=other\r\nTo: <sip:hotline@gw>;tag=us\r\nCall-ID: b1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(d.admit(&stranger), Err(481));
    }
}
