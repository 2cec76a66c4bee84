//! rsipstack's transport and transaction layers under the engine.
//!
//! Transport (RFC 3261 §18): rsipstack's UDP connection reads and writes the SIP socket and
//! stamps `received`/`rport` (RFC 3581 §4); its stream connections frame TCP. Every datagram
//! first passes [`Screened`], our socket adapter, which refuses what the engine must not see:
//! oversize datagrams (dropped), and malformed ones — 400 when a response can be addressed,
//! dropped otherwise (§18.3, §8.2.2) — and counts them. TCP connections are accepted here
//! (so UDP and TCP share one port, picked together) and handed to rsipstack's transport
//! layer, which frames, parses and serves them.
//!
//! Transactions (§17, RFC 6026): rsipstack's endpoint matches every message to its
//! transaction, retransmits (Timers A, E, G), absorbs retransmitted requests, answers CANCEL
//! once an INVITE is answered, and ACKs our INVITEs' non-2xx finals. A new server
//! transaction comes to the engine's task ([`Stack::accept`]), which keeps it and answers
//! through it in line ([`Stack::send`]): every message leaves in the engine's order and
//! no task or wake-up is spent per answer. A non-INVITE transaction is done with its final
//! answer (rsipstack keeps that answer for retransmissions); an answered INVITE transaction
//! gets a task that drives it to its end (2xx or non-2xx retransmission until the ACK).
//! Client transactions are sent from the engine task too, each with a task that drives it.
//!
//! What the engine must see in arrival order — every response, and every ACK and CANCEL —
//! [`Arrivals`] passes to it as it comes off the socket, before rsipstack matches it: an ACK
//! then a BYE from one phone reach the engine in that order, and so do a 180 and the 200
//! behind it. rsipstack still gets each message and does its part (absorbing, stopping
//! retransmissions). The engine saw every response before rsipstack was under it and takes
//! repeats in its stride.
//!
//! Dialogs (§12) are rsipstack's too ([`super::dialogs`]): a new request that names one of
//! our legs' dialogs goes to that dialog (the engine still sees it and decides the answer);
//! an INVITE of ours opens a UAC dialog that sends it; the engine's answers to an INVITE and
//! to requests in a dialog, and its BYE, CANCEL and NOTIFY, go through the dialogs. The ACK
//! of a 2xx is the INVITE transaction's (`auto_ack_2xx`), sent where the endpoint's target
//! locator says: the flow of the leg, pinned here as the 2xx arrives.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotline_core::metrics::Metric;
use rsipstack::sip::SipMessage;
use rsipstack::sip::ToTypedHeader;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transaction::endpoint::{EndpointInnerRef, EndpointOption, TransportEventInspector};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::{Transaction, TransactionEvent, TransactionEventSender};
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportEvent, TransportLayer};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::dialogs::{DialogStates, Dialogs, Flows, InDialog, StateChange};
use super::{Message, Request, Response};
use crate::transaction::{Done, Kind, T64, Target, Transmit, Transport, server_key};

/// What the stack hands to the engine.
#[derive(Debug)]
pub(crate) enum Event {
    /// A request: new (its server transaction is kept by the stack), or an ACK or CANCEL.
    Request {
        req: Request,
        transport: Transport,
        source: SocketAddr,
    },
    /// A response, as it arrived.
    Response {
        resp: Response,
        transport: Transport,
    },
}

/// An [`Event`] and when the stack handed it over (the engine's backlog is measured from
/// it, for overload control).
#[derive(Debug)]
pub(crate) struct Inbound {
    pub(crate) event: Event,
    pub(crate) at: Instant,
}

impl Inbound {
    fn now(event: Event) -> Self {
        Self {
            event,
            at: Instant::now(),
        }
    }
}

/// New server transactions, as rsipstack's endpoint hands them over, for [`Stack::accept`]
/// (rsipstack's types stay inside this module).
pub(crate) struct NewTransactions(TransactionReceiver);

/// One new server transaction.
pub(crate) struct NewTransaction(Transaction);

impl NewTransactions {
    pub(crate) async fn recv(&mut self) -> Option<NewTransaction> {
        self.0.recv().await.map(NewTransaction)
    }
}

/// A live client transaction of ours.
struct Client {
    tu: TransactionEventSender,
    key: TransactionKey,
    call_id: String,
    /// Where it went: for an INVITE, the flow of the leg it opens.
    flow: SipAddr,
}

/// Live client transactions by `branch|METHOD` (their tasks remove themselves).
type Clients = Arc<Mutex<HashMap<String, Client>>>;

/// The running stack, owned by the engine's task.
pub(crate) struct Stack {
    endpoint: EndpointInnerRef,
    /// rsipstack's transport layer, for what is sent outside a transaction.
    transport: TransportLayer,
    /// Server transactions not yet finally answered, by [`server_key`].
    servers: HashMap<String, Transaction>,
    clients: Clients,
    dialogs: Dialogs,
    arrived: Arrived,
    max_message_size: usize,
    malformed: Metric,
}

/// rsipstack's datagram buffer (`MAX_UDP_BUF_SIZE`): a longer datagram would arrive cut.
const UDP_BUFFER: usize = 8192;

impl Stack {
    /// Starts rsipstack's endpoint on the bound sockets. ACKs, CANCELs and responses go to
    /// `events`; new server transactions come out of the returned receiver, for
    /// [`Stack::accept`], and the dialogs' state changes out of the other, for
    /// [`Stack::on_dialog_state`]. `advertised`: our address in Via and Contact when it is
    /// not the bound one. Everything stops with `cancel`.
    pub(crate) async fn start(
        udp: Option<UdpSocket>,
        tcp: Option<TcpListener>,
        advertised: Option<SocketAddr>,
        max_message_size: usize,
        malformed: Metric,
        events: mpsc::Sender<Inbound>,
        cancel: CancellationToken,
    ) -> std::io::Result<(Stack, NewTransactions, DialogStates)> {
        let layer = TransportLayer::new(cancel.child_token());
        let arrived = Arrived::default();
        let clients = Clients::default();
        let flows = Flows::default();
        if let Some(sock) = udp {
            let screened = Screened {
                sock,
                limit: max_message_size.min(UDP_BUFFER),
                buf: tokio::sync::Mutex::new(vec![0; 65_536]),
                malformed: malformed.clone(),
            };
            let conn = UdpConnection::from_socket(
                Arc::new(screened),
                advertised,
                Some(cancel.child_token()),
            )
            .await
            .map_err(std::io::Error::other)?;
            layer.add_transport(SipConnection::Udp(conn));
        }
        let endpoint = rsipstack::EndpointBuilder::new()
            .with_user_agent(concat!("hotline/", env!("CARGO_PKG_VERSION")))
            .with_transport_layer(layer)
            .with_cancel_token(cancel.child_token())
            .with_transport_inspector(Box::new(Arrivals {
                events,
                arrived: arrived.clone(),
                clients: clients.clone(),
                flows: flows.clone(),
            }))
            .with_target_locator(flows.locator())
            .with_option(EndpointOption {
                // The engine gives up on its client transactions after 64·T1 on its own
                // clock; rsipstack's Timer B/F comes later, so its local 408 never races
                // the engine's decision.
                t1x64: Duration::from_millis((T64 + 8_000) as u64),
                // The ACK of a 2xx to our INVITE is the transaction's, to the leg's flow
                // (the target locator), again for each retransmitted 2xx (RFC 6026 §7.2).
                auto_ack_2xx: true,
                ..EndpointOption::default()
            })
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .map_err(std::io::Error::other)?;
        let inner = endpoint.inner.clone();
        tokio::spawn(async move { endpoint.serve().await });
        if let Some(listener) = tcp {
            tokio::spawn(accept_tcp(listener, inner.clone(), cancel.clone()));
        }
        let (dialogs, states) = Dialogs::new(inner.clone(), flows);
        let stack = Stack {
            transport: transport_of(&inner),
            endpoint: inner,
            servers: HashMap::new(),
            clients,
            dialogs,
            arrived,
            max_message_size,
            malformed,
        };
        Ok((stack, NewTransactions(incoming), states))
    }

    /// A dialog's state changed ([`Dialogs::on_state`]).
    pub(crate) fn on_dialog_state(&mut self, state: StateChange) {
        self.dialogs.on_state(state);
    }

    /// Takes a new server transaction: returns its request for the engine, with when it
    /// came off the socket, and keeps the transaction for the answer; an oversize (TCP) or
    /// malformed request is answered here.
    pub(crate) async fn accept(&mut self, tx: NewTransaction) -> Option<Inbound> {
        let NewTransaction(mut tx) = tx;
        let at = branch_of(&tx.original)
            .and_then(|b| {
                self.arrived
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&b)
            })
            .unwrap_or_else(Instant::now);
        let (transport, source) = origin(tx.connection.as_ref())?;
        let bytes = tx.original.to_bytes();
        if bytes.len() > self.max_message_size {
            // Over TCP (datagrams are screened before): RFC 3261 §21.5.14.
            self.malformed.with(&[("action", "oversize")]).inc();
            let _ = tx.reply(rsipstack::sip::StatusCode::MessageTooLarge).await;
            return None;
        }
        let req = match super::parse(&bytes) {
            Ok(Message::Request(r)) => r,
            Ok(Message::Response(_)) => return None,
            Err(e) => {
                match e.reply.as_ref().and_then(|r| to_rsip(&r.to_bytes())) {
                    Some(SipMessage::Response(resp)) => {
                        self.malformed.with(&[("action", "reply_400")]).inc();
                        let _ = tx.respond(resp).await;
                    }
                    _ => self.malformed.with(&[("action", "drop")]).inc(),
                }
                return None;
            }
        };
        let key = server_key(&req);
        let names_a_dialog = req.to().is_some_and(|t| t.tag().is_some());
        let tx = if names_a_dialog {
            let flow = sip_addr(Target {
                transport,
                addr: source,
            });
            match self.dialogs.take_request(tx, &req, &key, flow) {
                InDialog::NotOurs(tx) => Some(*tx),
                InDialog::Refused => return None,
                InDialog::Taken => None,
            }
        } else {
            Some(tx)
        };
        if let Some(tx) = tx {
            self.servers.insert(key, tx);
        }
        Some(Inbound {
            event: Event::Request {
                req,
                transport,
                source,
            },
            at,
        })
    }

    /// Ends transactions the engine is done with: a server transaction it does not answer
    /// (nothing is sent; a retransmission of the request is a new one), a client
    /// transaction it gave up on (its retransmissions stop).
    pub(crate) fn end(&mut self, done: Vec<Done>) {
        for d in done {
            match d {
                Done::Server(key) => {
                    self.servers.remove(&key);
                    self.dialogs.forget(&key);
                }
                Done::Client(key) => {
                    let client = self
                        .clients
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&key);
                    if let Some(c) = client {
                        let _ = c.tu.send(TransactionEvent::Terminate(c.key));
                    }
                    if let Some(branch) = key.strip_suffix("|INVITE") {
                        self.dialogs.invite_given_up(branch);
                    }
                }
            }
        }
    }

    /// Answers through the server transaction `key`. A final answer ends the engine's hold
    /// on it: a non-INVITE transaction is done (rsipstack keeps the answer for
    /// retransmissions), an INVITE one gets a task that drives it to its end.
    async fn respond(&mut self, key: &str, t: Transmit) {
        let Some(SipMessage::Response(resp)) = to_rsip(&t.data) else {
            return;
        };
        let Some(resp) = self.dialogs.answer(key, resp) else {
            return; // a dialog's to send
        };
        // The first 1xx/2xx to their INVITE that names our tag opens its dialog, which then
        // owns the INVITE's transaction.
        let opens_dialog = (101..300).contains(&resp.status_code.code())
            && resp
                .to_header()
                .ok()
                .and_then(|to| to.tag().ok().flatten())
                .is_some()
            && self
                .servers
                .get(key)
                .is_some_and(|tx| tx.original.method == rsipstack::sip::Method::Invite);
        let taken = if opens_dialog {
            self.servers.remove(key)
        } else {
            None
        };
        let resp = match taken {
            Some(tx) => {
                let flow = origin(tx.connection.as_ref())
                    .map(|(transport, addr)| sip_addr(Target { transport, addr }))
                    .unwrap_or_else(|| sip_addr(t.target));
                match self.dialogs.open_uas(key, tx, resp, flow) {
                    Ok(()) => return,
                    // Not a dialog after all: answered through its transaction, below.
                    Err(refused) => {
                        let (tx, resp) = *refused;
                        self.servers.insert(key.to_string(), tx);
                        resp
                    }
                }
            }
            None => resp,
        };
        let Some(tx) = self.servers.get_mut(key) else {
            // The 200 to a CANCEL: its INVITE's transaction answers it once that INVITE is
            // answered; before, the engine's answer goes out as is. Anything else: the
            // transaction is gone.
            let invite = key
                .strip_suffix("|CANCEL")
                .is_some_and(|id| self.servers.contains_key(&format!("{id}|INVITE")));
            if invite {
                self.send_stateless(SipMessage::Response(resp), t.target)
                    .await;
            } else {
                tracing::debug!(key, "response without a live server transaction");
            }
            return;
        };
        let final_ = resp.status_code.kind() != rsipstack::sip::StatusCodeKind::Provisional;
        if let Err(e) = tx.respond(resp).await {
            tracing::debug!(error = %e, key, "a response was not sent");
        }
        if !final_ {
            return;
        }
        let Some(mut tx) = self.servers.remove(key) else {
            return;
        };
        if tx.original.method == rsipstack::sip::Method::Invite && !tx.is_terminated() {
            tokio::spawn(async move { while tx.receive().await.is_some() {} });
        }
    }

    /// Sends one message that belongs to no transaction of ours (the 200 to a CANCEL before
    /// its INVITE is answered) over the connection to `target`.
    async fn send_stateless(&self, msg: SipMessage, target: Target) {
        match self.transport.lookup(&sip_addr(target), None).await {
            Ok((conn, dest)) => {
                if let Err(e) = conn.send(msg, Some(&dest)).await {
                    tracing::debug!(error = %e, "sending failed");
                }
            }
            Err(e) => tracing::debug!(error = %e, "no connection to send on"),
        }
    }

    /// Sends one message the engine produced, from the engine's task (so messages leave in
    /// the engine's order).
    pub(crate) async fn send(&mut self, t: Transmit) {
        match t.kind.clone() {
            Kind::Response(key) => self.respond(&key, t).await,
            Kind::Dialog(op) => self.dialogs.op(op),
            Kind::Request => {
                let Some(SipMessage::Request(req)) = to_rsip(&t.data) else {
                    return;
                };
                let key = match TransactionKey::from_request(&req, TransactionRole::Client) {
                    Ok(k) => k,
                    Err(e) => {
                        tracing::warn!(error = %e, "request without a transaction key");
                        return;
                    }
                };
                let branch = branch_of(&req);
                let ours = branch.as_ref().map(|b| format!("{b}|{}", req.method));
                let call_id = req
                    .call_id_header()
                    .map(|c| c.value().to_string())
                    .unwrap_or_default();
                let opens_dialog = req.method == rsipstack::sip::Method::Invite
                    && req
                        .to_header()
                        .ok()
                        .and_then(|to| to.tag().ok().flatten())
                        .is_none();
                let flow = sip_addr(t.target);
                let mut tx = Transaction::new_client(key, req, self.endpoint.clone(), None);
                tx.destination = Some(flow.clone());
                let clients = self.clients.clone();
                if let Some(ours) = &ours {
                    clients.lock().unwrap_or_else(|e| e.into_inner()).insert(
                        ours.clone(),
                        Client {
                            tu: tx.tu_sender.clone(),
                            key: tx.key.clone(),
                            call_id,
                            flow: flow.clone(),
                        },
                    );
                }
                // An INVITE of ours opens a dialog, which sends it and takes its responses.
                let dialog = match (&branch, opens_dialog) {
                    (Some(branch), true) => self.dialogs.open_uac(&tx, branch, flow),
                    _ => None,
                };
                if dialog.is_none()
                    && let Err(e) = tx.send().await
                {
                    tracing::debug!(error = %e, "sending a request failed");
                }
                // The task drives the transaction (retransmission, the ACKs, timers) and,
                // for an INVITE, its dialog; the responses reach the engine through
                // `Arrivals`. A local 408 or 503 of rsipstack's is not passed on; the
                // engine's own 64·T1 decides.
                tokio::spawn(async move {
                    if let Some(dialog) = dialog
                        && let Err(e) = dialog.process_invite(&mut tx).await
                    {
                        tracing::debug!(error = %e, "our INVITE ended with an error");
                    }
                    while tx.receive().await.is_some() {}
                    if let Some(ours) = ours {
                        clients
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&ours);
                    }
                });
            }
        }
    }
}

/// When new requests came off the socket, by top Via branch: rsipstack hands their
/// transactions over later, and the engine's backlog (overload control) counts from here.
type Arrived = Arc<Mutex<HashMap<String, Instant>>>;

/// Passes what the engine must see in arrival order — every response, every ACK and
/// CANCEL — to the engine as it comes off the socket, then lets rsipstack have it too; notes
/// when each other request arrived.
struct Arrivals {
    events: mpsc::Sender<Inbound>,
    arrived: Arrived,
    clients: Clients,
    flows: Flows,
}

impl Arrivals {
    /// A 2xx to our INVITE names the far end's Contact, the remote target of the leg's
    /// dialog: requests to it (and the ACK, sent as this 2xx is processed) go to the flow
    /// the INVITE went on — a seat's registered flow, not the private address a phone
    /// behind NAT puts in its Contact.
    fn pin_contact(&self, resp: &rsipstack::sip::Response) {
        let invite = resp
            .cseq_header()
            .ok()
            .and_then(|c| c.method().ok())
            .is_some_and(|m| m == rsipstack::sip::Method::Invite);
        if !invite || resp.status_code.kind() != rsipstack::sip::StatusCodeKind::Successful {
            return;
        }
        let Some(branch) = resp
            .via_header()
            .ok()
            .and_then(|v| v.typed().ok())
            .and_then(|v| v.branch().map(|b| b.to_string()))
        else {
            return;
        };
        let Some(contact) = resp
            .typed_contact_headers()
            .ok()
            .and_then(|c| c.into_iter().next())
        else {
            return;
        };
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&format!("{branch}|INVITE")) {
            self.flows.pin(&c.call_id, &contact.uri, c.flow.clone());
        }
    }
}

#[async_trait::async_trait]
impl TransportEventInspector for Arrivals {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        if let TransportEvent::Incoming(msg, conn, from) = &event {
            let transport = if conn.is_reliable() {
                Transport::Tcp
            } else {
                Transport::Udp
            };
            let event = match msg {
                SipMessage::Request(r)
                    if !matches!(
                        r.method,
                        rsipstack::sip::Method::Ack | rsipstack::sip::Method::Cancel
                    ) =>
                {
                    if let Some(branch) = branch_of(r) {
                        let now = Instant::now();
                        let mut arrived = self.arrived.lock().unwrap_or_else(|e| e.into_inner());
                        if arrived.len() >= 10_000 {
                            // Retransmissions rsipstack absorbed leave theirs behind.
                            let t64 = Duration::from_millis(T64 as u64);
                            arrived.retain(|_, at| now.duration_since(*at) < t64);
                        }
                        arrived.entry(branch).or_insert(now);
                    }
                    None
                }
                SipMessage::Response(r) => {
                    self.pin_contact(r);
                    match super::parse(&msg.to_bytes()) {
                        Ok(Message::Response(resp)) => Some(Event::Response { resp, transport }),
                        _ => None,
                    }
                }
                // An ACK or a CANCEL.
                SipMessage::Request(_) => match super::parse(&msg.to_bytes()) {
                    Ok(Message::Request(req)) => {
                        from.get_socketaddr().ok().map(|source| Event::Request {
                            req,
                            transport,
                            source,
                        })
                    }
                    _ => None,
                },
            };
            if let Some(e) = event {
                let _ = self.events.send(Inbound::now(e)).await;
            }
        }
        Some(event)
    }
}

fn branch_of(req: &rsipstack::sip::Request) -> Option<String> {
    let via = req.via_header().ok()?.typed().ok()?;
    via.branch().map(|b| b.to_string())
}

/// A handle on the endpoint's transport layer (rsipstack's type is not `Clone`).
fn transport_of(endpoint: &EndpointInnerRef) -> TransportLayer {
    TransportLayer {
        outbound: None,
        inner: endpoint.transport_layer.inner.clone(),
    }
}

fn to_rsip(data: &[u8]) -> Option<SipMessage> {
    match SipMessage::try_from(data) {
        Ok(m) => Some(m),
        Err(e) => {
            // Our own printer produced it: a bug, not bad input.
            tracing::error!(error = %e, "rsipstack cannot read a message the engine built");
            None
        }
    }
}

fn sip_addr(t: Target) -> SipAddr {
    SipAddr {
        r#type: Some(match t.transport {
            Transport::Udp => rsipstack::sip::transport::Transport::Udp,
            Transport::Tcp => rsipstack::sip::transport::Transport::Tcp,
        }),
        addr: t.addr.into(),
    }
}

/// Where a server transaction's request came from.
fn origin(conn: Option<&SipConnection>) -> Option<(Transport, SocketAddr)> {
    let conn = conn?;
    let transport = if conn.is_reliable() {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    Some((transport, conn.get_remote_addr()?.get_socketaddr().ok()?))
}

/// Accepts TCP connections on our listener and hands each to rsipstack's transport layer
/// (which frames, parses and serves it, and reuses it for requests to that peer).
async fn accept_tcp(listener: TcpListener, endpoint: EndpointInnerRef, cancel: CancellationToken) {
    let Ok(local) = listener.local_addr() else {
        return;
    };
    let local = SipAddr {
        r#type: Some(rsipstack::sip::transport::Transport::Tcp),
        addr: local.into(),
    };
    let layer = transport_of(&endpoint);
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        match TcpConnection::from_stream(stream, local.clone(), Some(cancel.child_token())) {
            Ok(conn) => layer.add_connection(SipConnection::Tcp(conn)),
            Err(e) => tracing::debug!(error = %e, "TCP connection not usable"),
        }
    }
}

/// The SIP UDP socket as rsipstack's transport reads it, with our screen in front.
struct Screened {
    sock: UdpSocket,
    /// The largest datagram passed on.
    limit: usize,
    /// Room for any datagram, so that an oversize one is seen whole and counted.
    buf: tokio::sync::Mutex<Vec<u8>>,
    /// `hotline_sip_malformed_total`, counted before any answer leaves.
    malformed: Metric,
}

impl Screened {
    fn refused(&self, action: &'static str) {
        self.malformed.with(&[("action", action)]).inc();
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for Screened {
    async fn recv_from(&self, out: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        let mut buf = self.buf.lock().await;
        loop {
            let (n, source) = match self.sock.recv_from(&mut buf).await {
                Ok(r) => r,
                // ICMP port unreachable surfaces here on some systems: keep serving.
                Err(e) => {
                    tracing::debug!(error = %e, "UDP receive error");
                    continue;
                }
            };
            let data = &buf[..n];
            if n > self.limit.min(out.len()) {
                tracing::debug!(%source, len = n, "SIP datagram too large, dropped");
                self.refused("oversize");
                continue;
            }
            // CRLF keepalives (RFC 5626 §3.5.1) are rsipstack's to answer.
            if data.iter().all(u8::is_ascii_whitespace) {
                out[..n].copy_from_slice(data);
                return Ok((n, source));
            }
            // rsipstack gets the message as our parser understood it, printed anew: folded
            // headers unfolded and compact names expanded (RFC 3261 §7.3), so both layers
            // read one message the same way.
            let canonical = match super::parse(data) {
                Ok(Message::Request(r)) => r.to_bytes(),
                Ok(Message::Response(r)) => r.to_bytes(),
                Err(e) => {
                    tracing::debug!(%source, reason = %e.reason, "malformed SIP message");
                    match e.reply {
                        Some(resp) => {
                            self.refused("reply_400");
                            let _ = self.sock.send_to(&resp.to_bytes(), source).await;
                        }
                        None => self.refused("drop"),
                    }
                    continue;
                }
            };
            if canonical.len() > out.len() {
                self.refused("oversize");
                continue;
            }
            out[..canonical.len()].copy_from_slice(&canonical);
            return Ok((canonical.len(), source));
        }
    }

    async fn send_to(&self, data: &[u8], target: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.sock.send_to(data, target).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.sock.local_addr()?)
    }
}
