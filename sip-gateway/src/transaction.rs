//! Transaction-layer reliability over UDP, sans-IO (RFC 3261 §17). Every method takes `now`;
//! [`Transactions::handle_timeout`] returns what must be (re)sent. Over TCP nothing is
//! retransmitted (§17.1.1.2, §17.2.1: the timers apply to unreliable transports only).
//!
//! Server side: the last response of each transaction is kept, so a retransmitted request
//! gets it again (§17.2.1, §17.2.2); a non-2xx final answer to INVITE is retransmitted with
//! Timer G until its ACK (§17.2.1); a 2xx to INVITE is retransmitted by the UAS core until the
//! dialog's ACK (§13.3.1.4). Client side: requests are retransmitted with Timer A/E and time
//! out with Timer B/F (§17.1.1.2, §17.1.2.2).

use std::collections::HashMap;
use std::net::SocketAddr;

use hotline_core::UnixMillis;

use crate::sip::Request;

/// RFC 3261 §17.1.1.1.
pub(crate) const T1: i64 = 500;
pub(crate) const T2: i64 = 4_000;
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transmit {
    pub(crate) target: Target,
    pub(crate) data: Vec<u8>,
}

#[derive(Debug)]
struct Resend {
    data: Vec<u8>,
    target: Target,
    next_at: UnixMillis,
    interval: i64,
    cap: i64,
    give_up_at: UnixMillis,
}

impl Resend {
    fn new(now: UnixMillis, data: Vec<u8>, target: Target, cap: i64) -> Self {
        Self {
            data,
            target,
            next_at: now + T1,
            interval: T1,
            cap,
            give_up_at: now + T64,
        }
    }
    fn due(&mut self, now: UnixMillis) -> Option<Transmit> {
        if now < self.next_at {
            return None;
        }
        self.interval = (self.interval * 2).min(self.cap);
        self.next_at = now + self.interval;
        Some(Transmit {
            target: self.target,
            data: self.data.clone(),
        })
    }
}

#[derive(Debug)]
struct ServerTxn {
    last: Option<Transmit>,
    expires_at: UnixMillis,
    resend: Option<Resend>,
}

#[derive(Debug)]
struct ClientTxn {
    call_id: String,
    method: String,
    resend: Option<Resend>,
    invite: bool,
    proceeding: bool,
    deadline: Option<UnixMillis>,
}

/// What the server side made of an incoming request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A new request for the core.
    New,
    /// A retransmission: the stored response (if any yet) is sent again; the core sees nothing.
    Retransmission(Option<Transmit>),
}

/// A client transaction that got no final response in time (Timer B / F).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimedOut {
    pub(crate) branch: String,
    pub(crate) call_id: String,
    pub(crate) method: String,
}

#[derive(Debug, Default)]
pub(crate) struct Transactions {
    server: HashMap<(String, String), ServerTxn>,
    /// 2xx responses to INVITE awaiting the dialog's ACK, by Call-ID.
    ok_resend: HashMap<String, Resend>,
    client: HashMap<String, ClientTxn>,
}

fn server_key(req: &Request) -> (String, String) {
    let method = if req.method == "ACK" {
        "INVITE"
    } else {
        req.method.as_str()
    };
    // Without an RFC 3261 branch, fall back to Call-ID + CSeq number (RFC 2543 matching).
    let branch = req.branch();
    let id = if branch.starts_with("z9hG4bK") {
        // RFC 3261 §17.2.3: the branch together with the top Via's sent-by identifies the
        // transaction, so two clients that happen to use the same branch do not collide.
        match req.top_via() {
            Some(v) => format!("{branch}|{}:{}", v.host, v.port.unwrap_or(0)),
            None => branch,
        }
    } else {
        format!("{}|{}|{}", req.call_id(), req.cseq().0, branch)
    };
    (id, method.to_string())
}

impl Transactions {
    pub(crate) fn on_request(&mut self, now: UnixMillis, req: &Request) -> Incoming {
        let key = server_key(req);
        if req.method == "ACK" {
            // An ACK with the INVITE's branch acknowledges our non-2xx final (§17.2.1); the
            // 2xx ACK has a new branch and goes to the core (§13.3.1.4).
            if let Some(t) = self.server.get_mut(&key) {
                t.resend = None;
                return Incoming::Retransmission(None);
            }
            return Incoming::New;
        }
        match self.server.get(&key) {
            Some(t) => Incoming::Retransmission(t.last.clone()),
            None => {
                self.server.insert(
                    key,
                    ServerTxn {
                        last: None,
                        expires_at: now + T64,
                        resend: None,
                    },
                );
                Incoming::New
            }
        }
    }

    /// Records a response sent for `req` and returns it as a transmit.
    pub(crate) fn respond(
        &mut self,
        now: UnixMillis,
        req: &Request,
        status: u16,
        data: Vec<u8>,
        target: Target,
    ) -> Transmit {
        let tx = Transmit { target, data };
        let key = server_key(req);
        let invite = req.method == "INVITE";
        let t = self.server.entry(key).or_insert(ServerTxn {
            last: None,
            expires_at: now + T64,
            resend: None,
        });
        t.last = Some(tx.clone());
        t.expires_at = now + T64;
        if invite && status >= 200 && !target.transport.reliable() {
            if status >= 300 {
                t.resend = Some(Resend::new(now, tx.data.clone(), target, T2));
            } else {
                self.ok_resend.insert(
                    req.call_id().to_string(),
                    Resend::new(now, tx.data.clone(), target, T2),
                );
            }
        }
        tx
    }

    /// The dialog's ACK arrived: stop retransmitting the 2xx.
    pub(crate) fn ack_2xx(&mut self, call_id: &str) {
        self.ok_resend.remove(call_id);
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
        let invite = method == "INVITE";
        let resend = (!target.transport.reliable() && method != "ACK").then(|| {
            Resend::new(
                now,
                data.clone(),
                target,
                if invite { i64::MAX / 4 } else { T2 },
            )
        });
        if method != "ACK" {
            self.client.insert(
                format!("{branch}|{method}"),
                ClientTxn {
                    call_id: call_id.to_string(),
                    method: method.to_string(),
                    resend,
                    invite,
                    proceeding: false,
                    deadline: Some(now + T64),
                },
            );
        }
        Transmit { target, data }
    }

    /// A response arrived for our client transaction `branch`: stops retransmission
    /// (INVITE: on any response; others: on a final one; §17.1.1.2, §17.1.2.2).
    pub(crate) fn on_response(&mut self, status: u16, branch: &str, method: &str) {
        let final_ = status >= 200;
        let key = format!("{branch}|{method}");
        if let Some(t) = self.client.get_mut(&key) {
            if final_ {
                self.client.remove(&key);
                return;
            }
            t.proceeding = true;
            if t.invite {
                t.resend = None;
                t.deadline = None; // the core's ring timer takes over
            } else if let Some(r) = &mut t.resend {
                r.interval = T2;
            }
        }
    }

    /// Forgets a client transaction (e.g. its call ended).
    pub(crate) fn cancel_client(&mut self, branch: &str, method: &str) {
        self.client.remove(&format!("{branch}|{method}"));
    }

    pub(crate) fn handle_timeout(&mut self, now: UnixMillis) -> (Vec<Transmit>, Vec<TimedOut>) {
        let mut out = Vec::new();
        self.server.retain(|_, t| {
            if let Some(r) = &mut t.resend {
                if now >= r.give_up_at {
                    t.resend = None;
                } else if let Some(tx) = r.due(now) {
                    out.push(tx);
                }
            }
            t.expires_at > now || t.resend.is_some()
        });
        let mut timed_out = Vec::new();
        self.ok_resend.retain(|call_id, r| {
            if now >= r.give_up_at {
                // RFC 3261 §13.3.1.4: no ACK for 64·T1 — the session should be ended.
                timed_out.push(TimedOut {
                    branch: String::new(),
                    call_id: call_id.clone(),
                    method: "ACK".into(),
                });
                return false;
            }
            if let Some(tx) = r.due(now) {
                out.push(tx);
            }
            true
        });
        self.client.retain(|key, t| {
            let branch = key;
            if t.deadline.is_some_and(|d| now >= d) {
                timed_out.push(TimedOut {
                    branch: branch.split('|').next().unwrap_or_default().to_string(),
                    call_id: t.call_id.clone(),
                    method: t.method.clone(),
                });
                return false;
            }
            if let Some(r) = &mut t.resend
                && let Some(tx) = r.due(now)
            {
                out.push(tx);
            }
            true
        });
        (out, timed_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{Message, parse};

    fn req(method: &str, branch: &str) -> Request {
        let cseq_method = if method == "ACK" { "ACK" } else { method };
        let text = format!(
            "{method} sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4:5060;branch={branch}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: cid\r\nCSeq: 1 {cseq_method}\r\nContent-Length: 0\r\n\r\n"
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
    fn retransmitted_request_gets_the_stored_response() {
        let mut t = Transactions::default();
        let r = req("OPTIONS", "z9hG4bKa");
        assert_eq!(t.on_request(0, &r), Incoming::New);
        assert_eq!(t.on_request(1, &r), Incoming::Retransmission(None));
        let tx = t.respond(2, &r, 200, b"resp".to_vec(), udp());
        assert_eq!(t.on_request(3, &r), Incoming::Retransmission(Some(tx)));
        // Timer J: forgotten after 64*T1.
        t.handle_timeout(2 + T64 + 1);
        assert_eq!(t.on_request(T64 + 10, &r), Incoming::New);
    }

    #[test]
    fn the_same_branch_from_another_sent_by_is_another_transaction() {
        // RFC 3261 §17.2.3: branch + sent-by; two callers with one (badly chosen) branch.
        let mut t = Transactions::default();
        let a = req("INVITE", "z9hG4bKsame");
        let text = String::from_utf8(a.to_bytes())
            .unwrap()
            .replace("1.2.3.4:5060", "1.2.3.4:5062");
        let Ok(Message::Request(b)) = parse(text.as_bytes()) else {
            panic!("parse");
        };
        assert_eq!(t.on_request(0, &a), Incoming::New);
        assert_eq!(t.on_request(1, &b), Incoming::New);
        assert_eq!(t.on_request(2, &b), Incoming::Retransmission(None));
    }

    #[test]
    fn non_2xx_to_invite_is_resent_until_ack_with_timer_g() {
        let mut t = Transactions::default();
        let r = req("INVITE", "z9hG4bKi");
        t.on_request(0, &r);
        t.respond(0, &r, 486, b"486".to_vec(), udp());
        assert!(t.handle_timeout(499).0.is_empty());
        assert_eq!(t.handle_timeout(500).0.len(), 1);
        assert!(
            t.handle_timeout(1400).0.is_empty(),
            "interval doubled to 1 s"
        );
        assert_eq!(t.handle_timeout(1500).0.len(), 1);
        assert_eq!(
            t.on_request(1600, &req("ACK", "z9hG4bKi")),
            Incoming::Retransmission(None)
        );
        assert!(t.handle_timeout(10_000).0.is_empty());
    }

    #[test]
    fn ok_to_invite_is_resent_until_the_dialog_ack() {
        let mut t = Transactions::default();
        let r = req("INVITE", "z9hG4bKj");
        t.on_request(0, &r);
        t.respond(0, &r, 200, b"200".to_vec(), udp());
        assert_eq!(t.handle_timeout(500).0.len(), 1);
        // The 2xx ACK has its own branch: it is new to the transaction layer.
        assert_eq!(
            t.on_request(600, &req("ACK", "z9hG4bKother")),
            Incoming::New
        );
        t.ack_2xx("cid");
        assert!(t.handle_timeout(5_000).0.is_empty());
        // Without an ACK the 2xx is given up after 64*T1 and reported.
        t.respond(0, &r, 200, b"200".to_vec(), udp());
        let (_, to) = t.handle_timeout(T64);
        assert_eq!(to[0].method, "ACK");
        assert_eq!(to[0].call_id, "cid");
    }

    #[test]
    fn client_invite_retransmits_until_provisional_then_waits() {
        let mut t = Transactions::default();
        t.send_request(0, "z9hG4bKc", "cid", "INVITE", b"INV".to_vec(), udp());
        assert_eq!(t.handle_timeout(500).0.len(), 1);
        assert_eq!(t.handle_timeout(1500).0.len(), 1);
        t.on_response(180, "z9hG4bKc", "INVITE");
        let (tx, to) = t.handle_timeout(60_000);
        assert!(tx.is_empty() && to.is_empty());
        t.on_response(200, "z9hG4bKc", "INVITE");
        assert!(t.client.is_empty());
    }

    #[test]
    fn client_non_invite_times_out_with_timer_f() {
        let mut t = Transactions::default();
        t.send_request(0, "z9hG4bKo", "cid", "OPTIONS", b"OPT".to_vec(), udp());
        let mut sent = 0;
        let mut now = 0;
        while now < T64 {
            now += 100;
            sent += t.handle_timeout(now).0.len();
            if now == T64 - 100 {
                assert!(t.client.contains_key("z9hG4bKo|OPTIONS"));
            }
        }
        assert!(sent >= 7, "{sent}");
        assert!(t.client.is_empty());
        let mut t = Transactions::default();
        t.send_request(0, "z9hG4bKo", "cid", "BYE", b"BYE".to_vec(), udp());
        let (_, to) = t.handle_timeout(T64);
        assert_eq!(to[0].method, "BYE");
    }

    #[test]
    fn tcp_is_never_retransmitted() {
        let mut t = Transactions::default();
        let tcp = Target {
            transport: Transport::Tcp,
            addr: "1.2.3.4:5060".parse().unwrap(),
        };
        t.send_request(0, "z9hG4bKt", "cid", "INVITE", b"INV".to_vec(), tcp);
        assert!(t.handle_timeout(10_000).0.is_empty());
    }
}
