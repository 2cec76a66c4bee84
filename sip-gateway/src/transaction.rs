//! The engine's view of SIP transactions. Reliability itself (retransmission with Timers
//! A/E/G, absorbing retransmitted requests, the ACK of a non-2xx final, Timers B/D/F/H/J/K/L/M)
//! is rsipstack's transaction layer (RFC 3261 §17, RFC 6026), reached through
//! [`crate::sip::stack`]. What stays here, sans-IO and on the engine's clock, is what the
//! transaction user must decide: which outgoing message belongs to which transaction
//! ([`Kind`]), when a client transaction of ours has waited long enough (64·T1, so that a
//! qualify or a call leg fails on our clock) and when a 2xx we sent to INVITE has gone
//! without its ACK for 64·T1 (RFC 3261 §13.3.1.4: the session is ended).

use std::collections::HashMap;
use std::net::SocketAddr;

use hotline_core::UnixMillis;

use crate::sip::Request;

/// RFC 3261 §17.1.1.1.
pub(crate) const T1: i64 = 500;
/// 64·T1: Timer B, F, H, J.
pub(crate) const T64: i64 = 64 * T1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
    pub(crate) fn reliable(self) -> bool {
        self == Transport::Tcp
    }
    pub(crate) fn parse(s: &str) -> Transport {
        if s.eq_ignore_ascii_case("tcp") {
            Transport::Tcp
        } else {
            Transport::Udp
        }
    }
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    pub(crate) transport: Transport,
    pub(crate) addr: SocketAddr,
}

/// Which transaction an outgoing message belongs to: it tells the stack driver what to do
/// with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A response, sent by the server transaction with this key ([`server_key`]).
    Response(String),
    /// A request that opens a client transaction.
    Request,
    /// Something to do in the dialog of one of our legs, carried out by that leg's rsipstack
    /// dialog ([`crate::sip::dialogs`]), which builds the request (Request-URI, Route, CSeq,
    /// RFC 3261 §12.2.1.1). The transmit's `target` and `data` are unused.
    Dialog(DialogOp),
}

/// An operation in a leg's dialog. A leg is named by its Call-ID: in this B2BUA every leg
/// has its own (a trunk's or a seat's INVITE brings one, each INVITE of ours makes one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DialogOp {
    /// BYE (RFC 3261 §15.1.1).
    Bye { call_id: String },
    /// CANCEL of our unanswered INVITE (§9.1).
    Cancel { call_id: String },
    /// Another request in the dialog (NOTIFY), with its own headers and body.
    Request {
        call_id: String,
        method: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
}

impl Transmit {
    /// An operation in the dialog of leg `target` leaves on.
    pub(crate) fn dialog(op: DialogOp, target: Target) -> Transmit {
        Transmit {
            target,
            data: Vec::new(),
            kind: Kind::Dialog(op),
        }
    }
}

/// A transaction the engine is done with before rsipstack would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Done {
    /// A request left unanswered (the flood guard's silence), by [`server_key`]: its server
    /// transaction ends without a response.
    Server(String),
    /// A client transaction the engine gave up on after 64·T1, by `branch|METHOD`: its
    /// retransmissions stop and no late 408 follows.
    Client(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transmit {
    pub(crate) target: Target,
    pub(crate) data: Vec<u8>,
    pub(crate) kind: Kind,
}

#[derive(Debug)]
struct ClientTxn {
    call_id: String,
    method: String,
    deadline: Option<UnixMillis>,
}

/// A client transaction that got no final response in time (Timer B / F), or a 2xx to
/// INVITE that got no ACK (`method` "ACK").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimedOut {
    pub(crate) branch: String,
    pub(crate) call_id: String,
    pub(crate) method: String,
}

#[derive(Debug, Default)]
pub(crate) struct Transactions {
    /// 2xx responses to INVITE awaiting the dialog's ACK: Call-ID → give up at.
    ok_wait: HashMap<String, UnixMillis>,
    client: HashMap<String, ClientTxn>,
}

/// The key of the server transaction a request belongs to: the top Via's branch and
/// sent-by (RFC 3261 §17.2.3; two clients that happen to use one branch do not collide)
/// and the method, ACK and CANCEL counted as their INVITE's. Without an RFC 3261 branch,
/// Call-ID + CSeq number (RFC 2543 matching).
pub(crate) fn server_key(req: &Request) -> String {
    let method = if req.method == "ACK" {
        "INVITE"
    } else {
        req.method.as_str()
    };
    let branch = req.branch();
    let id = if branch.starts_with("z9hG4bK") {
        match req.top_via() {
            Some(v) => format!("{branch}|{}:{}", v.host, v.port.unwrap_or(0)),
            None => branch,
        }
    } else {
        format!("{}|{}|{}", req.call_id(), req.cseq().0, branch)
    };
    format!("{id}|{method}")
}

impl Transactions {
    /// A response for `req`, to be sent by its server transaction.
    pub(crate) fn respond(
        &mut self,
        now: UnixMillis,
        req: &Request,
        status: u16,
        data: Vec<u8>,
        target: Target,
    ) -> Transmit {
        if req.method == "INVITE" && (200..300).contains(&status) {
            // RFC 3261 §13.3.1.4: the UAS core waits 64·T1 for the ACK (rsipstack's
            // transaction retransmits the 2xx meanwhile).
            self.ok_wait.insert(req.call_id().to_string(), now + T64);
        }
        Transmit {
            target,
            data,
            kind: Kind::Response(server_key(req)),
        }
    }

    /// The dialog's ACK arrived.
    pub(crate) fn ack_2xx(&mut self, call_id: &str) {
        self.ok_wait.remove(call_id);
    }

    /// Sends a request in a new client transaction (`branch` is its Via branch).
    pub(crate) fn send_request(
        &mut self,
        now: UnixMillis,
        branch: &str,
        call_id: &str,
        method: &str,
        data: Vec<u8>,
        target: Target,
    ) -> Transmit {
        self.client.insert(
            format!("{branch}|{method}"),
            ClientTxn {
                call_id: call_id.to_string(),
                method: method.to_string(),
                deadline: Some(now + T64),
            },
        );
        Transmit {
            target,
            data,
            kind: Kind::Request,
        }
    }

    /// A response arrived for our client transaction `branch`: a final one ends it; a
    /// provisional one to INVITE hands the wait to the core's ring timer (§17.1.1.2).
    pub(crate) fn on_response(&mut self, status: u16, branch: &str, method: &str) {
        let key = format!("{branch}|{method}");
        if status >= 200 {
            self.client.remove(&key);
        } else if method == "INVITE"
            && let Some(t) = self.client.get_mut(&key)
        {
            t.deadline = None;
        }
    }

    /// Forgets a client transaction (e.g. its call ended).
    pub(crate) fn cancel_client(&mut self, branch: &str, method: &str) {
        self.client.remove(&format!("{branch}|{method}"));
    }

    pub(crate) fn handle_timeout(&mut self, now: UnixMillis) -> Vec<TimedOut> {
        let mut timed_out = Vec::new();
        self.ok_wait.retain(|call_id, give_up_at| {
            if now < *give_up_at {
                return true;
            }
            timed_out.push(TimedOut {
                branch: String::new(),
                call_id: call_id.clone(),
                method: "ACK".into(),
            });
            false
        });
        self.client.retain(|key, t| {
            if t.deadline.is_some_and(|d| now >= d) {
                timed_out.push(TimedOut {
                    branch: key.split('|').next().unwrap_or_default().to_string(),
                    call_id: t.call_id.clone(),
                    method: t.method.clone(),
                });
                return false;
            }
            true
        });
        timed_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{Message, parse};

    fn req(method: &str, branch: &str, sent_by: &str) -> Request {
        let text = format!(
            "{method} sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {sent_by};branch={branch}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: cid\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        match parse(text.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn udp() -> Target {
        Target {
            transport: Transport::Udp,
            addr: "1.2.3.4:5060".parse().unwrap(),
        }
    }

    #[test]
    fn server_keys_follow_branch_sent_by_and_method() {
        // RFC 3261 §17.2.3: branch + sent-by; two callers with one (badly chosen) branch.
        let a = req("INVITE", "z9hG4bKsame", "1.2.3.4:5060");
        let b = req("INVITE", "z9hG4bKsame", "1.2.3.4:5062");
        assert_ne!(server_key(&a), server_key(&b));
        // A non-2xx ACK belongs to its INVITE's transaction; a CANCEL has its own.
        assert_eq!(
            server_key(&req("ACK", "z9hG4bKsame", "1.2.3.4:5060")),
            server_key(&a)
        );
        assert_ne!(
            server_key(&req("CANCEL", "z9hG4bKsame", "1.2.3.4:5060")),
            server_key(&a)
        );
        let t = Transactions::default().respond(0, &a, 180, b"180".to_vec(), udp());
        assert_eq!(t.kind, Kind::Response(server_key(&a)));
    }

    #[test]
    fn a_2xx_to_invite_without_its_ack_is_reported_after_64_t1() {
        let mut t = Transactions::default();
        let r = req("INVITE", "z9hG4bKj", "1.2.3.4:5060");
        t.respond(0, &r, 200, b"200".to_vec(), udp());
        assert!(t.handle_timeout(T64 - 1).is_empty());
        t.ack_2xx("cid");
        assert!(t.handle_timeout(T64).is_empty());
        t.respond(0, &r, 200, b"200".to_vec(), udp());
        let to = t.handle_timeout(T64);
        assert_eq!(
            (to[0].method.as_str(), to[0].call_id.as_str()),
            ("ACK", "cid")
        );
    }

    #[test]
    fn a_client_invite_waits_on_the_core_once_it_rings() {
        let mut t = Transactions::default();
        let tx = t.send_request(0, "z9hG4bKc", "cid", "INVITE", b"INV".to_vec(), udp());
        assert_eq!(tx.kind, Kind::Request);
        t.on_response(180, "z9hG4bKc", "INVITE");
        assert!(t.handle_timeout(60_000).is_empty());
        t.on_response(200, "z9hG4bKc", "INVITE");
        assert!(t.client.is_empty());
    }

    #[test]
    fn a_client_non_invite_times_out_after_64_t1() {
        let mut t = Transactions::default();
        t.send_request(0, "z9hG4bKo", "cid", "OPTIONS", b"OPT".to_vec(), udp());
        t.on_response(100, "z9hG4bKo", "OPTIONS");
        assert!(t.handle_timeout(T64 - 1).is_empty());
        let to = t.handle_timeout(T64);
        assert_eq!(
            (to[0].branch.as_str(), to[0].method.as_str()),
            ("z9hG4bKo", "OPTIONS")
        );
        assert!(t.client.is_empty());
    }
}
