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
//! and ACKs our INVITEs' non-2xx finals. A new request reaches the engine once its server
//! transaction exists (so the engine's answer finds it); that transaction's task sends the
//! engine's responses, taken through the transaction's own event channel. Client
//! transactions are sent from the engine task, so requests leave in the engine's order.
//!
//! What the engine must see in arrival order — every response, and every ACK and CANCEL —
//! [`Arrivals`] passes to it as it comes off the socket, before rsipstack matches it: an ACK
//! then a BYE from one phone reach the engine in that order, and so do a 180 and the 200
//! behind it. rsipstack still gets each message and does its part (absorbing, stopping
//! retransmissions, the CANCEL's 200). The engine saw every response before rsipstack was
//! under it and still takes repeats in its stride.
//!
//! The ACK of a 2xx is the engine's (RFC 3261 §13.2.2.4; rsipstack's `auto_ack_2xx` is off):
//! rsipstack would send it to the Contact of the 2xx, which behind NAT is not where the
//! seat's registered flow is; the engine ACKs each 2xx it sees, the retransmitted ones too.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
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
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Message, Request, Response};
use crate::transaction::{Done, Kind, T64, Target, Transmit, Transport, server_key};

/// What the stack hands to the engine.
#[derive(Debug)]
pub(crate) enum Event {
    /// A request: new (its server transaction exists), or an ACK or CANCEL.
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

/// A live server transaction, as the engine task reaches it.
#[derive(Clone)]
struct Server {
    /// The transaction's own event channel: our responses go in as `Respond` events, which
    /// its task processes in order with everything else (rsipstack's cancel-safe way).
    tu: TransactionEventSender,
    key: TransactionKey,
    /// Waiters for "everything queued so far is done", fired by the task when it meets the
    /// marker queued after them (see [`Stack::send_all`]).
    synced: Arc<Mutex<VecDeque<oneshot::Sender<()>>>>,
    /// The engine will not answer: the task ends the transaction at the next marker.
    abandoned: Arc<AtomicBool>,
}

/// Live server transactions by [`server_key`].
type Servers = Arc<Mutex<HashMap<String, Server>>>;

/// Live client transactions by `branch|METHOD`.
type Clients = Arc<Mutex<HashMap<String, (TransactionEventSender, TransactionKey)>>>;

/// The running stack: what the engine task needs to send.
pub(crate) struct Stack {
    endpoint: EndpointInnerRef,
    servers: Servers,
    clients: Clients,
}

/// rsipstack's datagram buffer (`MAX_UDP_BUF_SIZE`): a longer datagram would arrive cut.
const UDP_BUFFER: usize = 8192;

impl Stack {
    /// Starts rsipstack's endpoint on the bound sockets. Events for the engine go to
    /// `events`; everything stops with `cancel`.
    pub(crate) async fn start(
        udp: Option<UdpSocket>,
        tcp: Option<TcpListener>,
        max_message_size: usize,
        malformed: Metric,
        events: mpsc::Sender<Inbound>,
        cancel: CancellationToken,
    ) -> std::io::Result<Stack> {
        let layer = TransportLayer::new(cancel.child_token());
        if let Some(sock) = udp {
            let screened = Screened {
                sock,
                limit: max_message_size.min(UDP_BUFFER),
                buf: tokio::sync::Mutex::new(vec![0; 65_536]),
                malformed: malformed.clone(),
            };
            let conn =
                UdpConnection::from_socket(Arc::new(screened), None, Some(cancel.child_token()))
                    .await
                    .map_err(std::io::Error::other)?;
            layer.add_transport(SipConnection::Udp(conn));
        }
        let endpoint = rsipstack::EndpointBuilder::new()
            .with_user_agent(concat!("hotline/", env!("CARGO_PKG_VERSION")))
            .with_transport_layer(layer)
            .with_cancel_token(cancel.child_token())
            .with_transport_inspector(Box::new(Arrivals {
                events: events.clone(),
            }))
            .with_option(EndpointOption {
                // The engine gives up on its client transactions after 64·T1 on its own
                // clock; rsipstack's Timer B/F comes later, so its local 408 never races
                // the engine's decision.
                t1x64: Duration::from_millis((T64 + 8_000) as u64),
                auto_ack_2xx: false,
                ..EndpointOption::default()
            })
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .map_err(std::io::Error::other)?;
        let inner = endpoint.inner.clone();
        let servers = Servers::default();
        tokio::spawn(async move { endpoint.serve().await });
        if let Some(listener) = tcp {
            tokio::spawn(accept_tcp(listener, inner.clone(), cancel.clone()));
        }
        tokio::spawn(serve_incoming(
            incoming,
            servers.clone(),
            events,
            max_message_size,
            malformed,
        ));
        Ok(Stack {
            endpoint: inner,
            servers,
            clients: Clients::default(),
        })
    }

    /// Sends what the engine produced, in its order: a request or ACK leaves only after the
    /// responses before it have left. Requests and ACKs are sent from this task; a response
    /// is sent by its server transaction's task, so before the next request the responses
    /// handed over are waited for (a marker after them in the transaction's queue; bounded,
    /// so a transaction that ended meanwhile cannot stall the engine).
    pub(crate) async fn send_all(&self, out: Vec<Transmit>) {
        let mut pending: Vec<oneshot::Receiver<()>> = Vec::new();
        for t in out {
            if let Kind::Response(key) = &t.kind {
                pending.extend(self.respond(key, &t.data));
                continue;
            }
            for done in pending.drain(..) {
                let _ = tokio::time::timeout(Duration::from_secs(1), done).await;
            }
            self.send(t).await;
        }
    }

    /// Ends transactions the engine is done with: a server transaction it does not answer
    /// (nothing is sent; a retransmission of the request is a new one), a client
    /// transaction it gave up on (its retransmissions stop).
    pub(crate) fn end(&self, done: Vec<Done>) {
        for d in done {
            match d {
                Done::Server(key) => {
                    let server = self
                        .servers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&key);
                    if let Some(server) = server {
                        server.abandoned.store(true, Ordering::Relaxed);
                        let _ = server.tu.send(TransactionEvent::Terminate(server.key));
                    }
                }
                Done::Client(key) => {
                    let client = self
                        .clients
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&key);
                    if let Some((tu, key)) = client {
                        let _ = tu.send(TransactionEvent::Terminate(key));
                    }
                }
            }
        }
    }

    /// Hands a response to its server transaction; the receiver fires once it is sent.
    fn respond(&self, key: &str, data: &[u8]) -> Option<oneshot::Receiver<()>> {
        let Some(SipMessage::Response(resp)) = to_rsip(data) else {
            return None;
        };
        let server = self
            .servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned();
        let Some(server) = server else {
            // The 200 to a CANCEL: rsipstack's INVITE transaction already sent it.
            tracing::debug!(key, "response without a live server transaction");
            return None;
        };
        let (done, sent) = oneshot::channel();
        server
            .synced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(done);
        let _ = server.tu.send(TransactionEvent::Respond(resp));
        // `Terminate` makes `receive()` return without touching the transaction: the task
        // takes it as the marker (and ends only when the transaction really has).
        let _ = server
            .tu
            .send(TransactionEvent::Terminate(server.key.clone()));
        Some(sent)
    }

    /// Sends one request or ACK (a response goes through [`Stack::send_all`]).
    async fn send(&self, t: Transmit) {
        match t.kind {
            Kind::AckInTransaction | Kind::Response(_) => {}
            Kind::Ack => {
                let Some(ack) = to_rsip(&t.data) else {
                    return;
                };
                let layer = TransportLayer {
                    outbound: None,
                    inner: self.endpoint.transport_layer.inner.clone(),
                };
                match layer.lookup(&sip_addr(t.target), None).await {
                    Ok((conn, dest)) => {
                        if let Err(e) = conn.send(ack, Some(&dest)).await {
                            tracing::debug!(error = %e, "sending an ACK failed");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "no connection for an ACK"),
                }
            }
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
                let ours = req
                    .via_header()
                    .ok()
                    .and_then(|v| v.typed().ok())
                    .and_then(|v| v.branch().map(|b| format!("{b}|{}", req.method)));
                let mut tx = Transaction::new_client(key, req, self.endpoint.clone(), None);
                tx.destination = Some(sip_addr(t.target));
                if let Err(e) = tx.send().await {
                    tracing::debug!(error = %e, "sending a request failed");
                }
                let clients = self.clients.clone();
                if let Some(ours) = &ours {
                    clients
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(ours.clone(), (tx.tu_sender.clone(), tx.key.clone()));
                }
                // The task only drives the transaction (retransmission, the non-2xx ACK,
                // timers): its responses reach the engine through `Arrivals`. A local 408 or
                // 503 of rsipstack's is not passed on; the engine's own 64·T1 decides.
                tokio::spawn(async move {
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

/// Passes what the engine must see in arrival order — every response, every ACK and
/// CANCEL — to the engine as it comes off the socket, then lets rsipstack have it too.
struct Arrivals {
    events: mpsc::Sender<Inbound>,
}

#[async_trait::async_trait]
impl TransportEventInspector for Arrivals {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        if let TransportEvent::Incoming(msg, conn, from) = &event {
            let pass = match msg {
                SipMessage::Response(_) => true,
                SipMessage::Request(r) => matches!(
                    r.method,
                    rsipstack::sip::Method::Ack | rsipstack::sip::Method::Cancel
                ),
            };
            let transport = if conn.is_reliable() {
                Transport::Tcp
            } else {
                Transport::Udp
            };
            let event = match super::parse(&msg.to_bytes()) {
                Ok(Message::Response(resp)) if pass => Some(Event::Response { resp, transport }),
                Ok(Message::Request(req)) if pass => {
                    from.get_socketaddr().ok().map(|source| Event::Request {
                        req,
                        transport,
                        source,
                    })
                }
                _ => None,
            };
            if let Some(e) = event {
                let _ = self.events.send(Inbound::now(e)).await;
            }
        }
        Some(event)
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

/// New server transactions: each is registered (so the engine's answer finds it), its
/// request goes to the engine, and a task serves it until it ends.
async fn serve_incoming(
    mut incoming: TransactionReceiver,
    servers: Servers,
    events: mpsc::Sender<Inbound>,
    max_message_size: usize,
    malformed: Metric,
) {
    while let Some(mut tx) = incoming.recv().await {
        let Some((transport, source)) = origin(tx.connection.as_ref()) else {
            continue;
        };
        let bytes = tx.original.to_bytes();
        if bytes.len() > max_message_size {
            // Over TCP (datagrams are screened before): RFC 3261 §21.5.14.
            malformed.with(&[("action", "oversize")]).inc();
            let _ = tx.reply(rsipstack::sip::StatusCode::MessageTooLarge).await;
            continue;
        }
        let req = match super::parse(&bytes) {
            Ok(Message::Request(r)) => r,
            Ok(Message::Response(_)) => continue,
            Err(e) => {
                match e.reply.as_ref().and_then(|r| to_rsip(&r.to_bytes())) {
                    Some(SipMessage::Response(resp)) => {
                        malformed.with(&[("action", "reply_400")]).inc();
                        let _ = tx.respond(resp).await;
                    }
                    _ => malformed.with(&[("action", "drop")]).inc(),
                }
                continue;
            }
        };
        let key = server_key(&req);
        let server = Server {
            tu: tx.tu_sender.clone(),
            key: tx.key.clone(),
            synced: Arc::default(),
            abandoned: Arc::default(),
        };
        let synced = server.synced.clone();
        let abandoned = server.abandoned.clone();
        servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), server);
        let event = Event::Request {
            req,
            transport,
            source,
        };
        if events.send(Inbound::now(event)).await.is_err() {
            return;
        }
        let servers = servers.clone();
        tokio::spawn(async move {
            loop {
                match tx.receive().await {
                    // ACK and CANCEL reached the engine through `Arrivals`.
                    Some(_) => {}
                    None => {
                        // A marker of Stack::respond (or the real end): what was queued
                        // before it has been processed.
                        let done = synced.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                        if tx.is_terminated() || abandoned.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                }
            }
            servers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        });
    }
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
    let layer = TransportLayer {
        outbound: None,
        inner: endpoint.transport_layer.inner.clone(),
    };
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
