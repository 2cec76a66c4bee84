//! rsipstack's dialogs (RFC 3261 §12) under the engine. Every leg of every call — the
//! trunk's or a seat's INVITE we answer (UAS), each INVITE of ours to a seat, to the trunk,
//! of a transfer or a click-to-call (UAC) — is an rsipstack `InviteDialog`: it holds the
//! dialog's state, builds every request in it (Request-URI, route set, CSeq: §12.2.1.1),
//! sends the ACK of a 2xx (with the endpoint's `auto_ack_2xx`, §13.2.2.4, again for each
//! retransmitted 2xx, RFC 6026 §7.2), answers BYE, PRACK and a CANCEL's 487 itself, and
//! hands every other request in the dialog up with a handle to answer it through.
//!
//! The engine decides; this module carries its decisions out on the dialogs:
//! - its answers to an INVITE become the dialog's `ringing` / `accept` / `reject`; the
//!   dialog is opened with the engine's first answer that names our tag, so a refusal
//!   before that (403, 503, 420, 407 ...) costs no dialog;
//! - its answers to requests in a dialog go through the handle rsipstack's dialog gives;
//! - its BYE, CANCEL and NOTIFY are [`DialogOp`]s, run in order by a task per leg.
//!
//! Two things rsipstack's dialogs do not do, and a contact centre needs, are done here
//! (both are checked on the wire by `tests/it/rsipstack_dialog_layer.rs`, against plain
//! rsipstack, and by `tests/it/dialogs.rs`, against the gateway):
//! - **Phones behind NAT.** Over UDP a dialog sends its requests and the 2xx ACK to the
//!   remote target, which a softphone behind NAT names with its private address. The
//!   endpoint's target locator ([`Flows`]) maps each leg's remote target to the flow the
//!   leg uses — where its INVITE came from, where ours went (a seat's registered flow) —
//!   as the engine's own dialogs did.
//! - **Requests out of order.** A UAS dialog drops a request whose CSeq is lower than the
//!   last without an answer; §12.2.2 asks for 500, which is sent here.
//!
//! The dialogs are kept here, by Call-ID, not in rsipstack's `DialogLayer`: the layer only
//! registers dialogs it built itself, with a To tag and an INVITE of its own making, and ours
//! carry the engine's (its tag is in the engine's CDR and events; its INVITE carries our
//! SDP, caller ID and headers).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rsipstack::dialog::DialogId;
use rsipstack::dialog::dialog::{
    DialogInner, DialogState, DialogStateReceiver, DialogStateSender, TerminatedReason,
    TransactionHandle,
};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{
    Header, HeadersExt, Method, Response, StatusCode, StatusCodeKind, ToTypedHeader, Uri,
};
use rsipstack::transaction::endpoint::{EndpointInnerRef, TargetLocator};
use rsipstack::transaction::key::TransactionRole;
use rsipstack::transaction::transaction::{Transaction, TransactionEventSender};
use rsipstack::transport::SipAddr;
use tokio::sync::{mpsc, watch};

use crate::transaction::{DialogOp, T64};

/// How long an operation waits for its dialog to settle (a 2xx on its way through the
/// transaction, a re-INVITE waiting for its ACK) before it is tried all the same.
const SETTLE: Duration = Duration::from_millis(T64 as u64);

/// The flows of the legs' remote targets, for the endpoint's target locator.
#[derive(Clone, Default)]
pub(crate) struct Flows(Arc<Mutex<Pins>>);

#[derive(Default)]
struct Pins {
    /// A remote target URI (as rsipstack prints it) → the legs that pinned it, latest last.
    by_uri: HashMap<String, Vec<(String, SipAddr)>>,
    /// Call-ID → the URIs its leg pinned.
    by_call: HashMap<String, Vec<String>>,
}

impl Flows {
    /// Requests of leg `call_id` to `uri` go to `flow`.
    pub(crate) fn pin(&self, call_id: &str, uri: &Uri, flow: SipAddr) {
        let key = uri.to_string();
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let pins = p.by_uri.entry(key.clone()).or_default();
        pins.retain(|(c, _)| c != call_id);
        pins.push((call_id.to_string(), flow));
        let keys = p.by_call.entry(call_id.to_string()).or_default();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }

    /// Forgets what leg `call_id` pinned.
    pub(crate) fn unpin(&self, call_id: &str) {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for key in p.by_call.remove(call_id).unwrap_or_default() {
            if let Some(pins) = p.by_uri.get_mut(&key) {
                pins.retain(|(c, _)| c != call_id);
                if pins.is_empty() {
                    p.by_uri.remove(&key);
                }
            }
        }
    }

    fn flow_of(&self, uri: &Uri) -> Option<SipAddr> {
        let p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        p.by_uri
            .get(&uri.to_string())
            .and_then(|pins| pins.last())
            .map(|(_, flow)| flow.clone())
    }

    /// The endpoint's target locator: a pinned URI goes to its flow, any other is resolved
    /// as rsipstack would (RFC 3263 by its host).
    pub(crate) fn locator(&self) -> Box<dyn TargetLocator> {
        Box::new(FlowLocator(self.clone()))
    }
}

struct FlowLocator(Flows);

#[async_trait::async_trait]
impl TargetLocator for FlowLocator {
    async fn locate(&self, uri: &Uri) -> rsipstack::Result<SipAddr> {
        match self.0.flow_of(uri) {
            Some(flow) => Ok(flow),
            None => SipAddr::try_from(uri),
        }
    }
}

/// One leg's dialog.
struct Leg {
    local_tag: String,
    inner: Arc<DialogInner>,
    dialog: InviteDialog,
    /// The queue of its operations' task, made with the first operation (most legs have
    /// none until the BYE, and a held call should not carry a task per leg).
    ops: Option<mpsc::UnboundedSender<DialogOp>>,
    /// Touched on every state change of the dialog (the op task waits on it).
    changed: watch::Sender<()>,
    /// Held while a REFER in the dialog is being answered: its NOTIFYs follow the 202
    /// (RFC 3515 §2.4.4).
    refer_gate: Arc<tokio::sync::Mutex<()>>,
    /// Our INVITE's Via branch (UAC legs).
    invite_branch: Option<String>,
    /// Their INVITE's server transaction key (UAS legs).
    invite_key: Option<String>,
    /// Their CANCEL arrived: its 200 is the transaction's, the 487 the dialog's.
    cancelled: bool,
}

impl Leg {
    fn new(
        local_tag: String,
        inner: DialogInner,
        invite_branch: Option<String>,
        invite_key: Option<String>,
    ) -> Leg {
        let inner = Arc::new(inner);
        Leg {
            local_tag,
            dialog: InviteDialog::from_inner(inner.clone()),
            inner,
            ops: None,
            changed: watch::Sender::new(()),
            refer_gate: Arc::default(),
            invite_branch,
            invite_key,
            cancelled: false,
        }
    }
}

/// The URI of a message's first Contact, as rsipstack reads it.
fn first_contact(m: &impl HeadersExt) -> Option<Uri> {
    m.typed_contact_headers()
        .ok()
        .and_then(|c| c.into_iter().next())
        .map(|c| c.uri)
}

/// An answer of the engine's, as a dialog sends it (the dialog adds Via, From, To with our
/// tag, Call-ID, CSeq, Record-Route, Contact and Content-Length).
struct Answer {
    status: StatusCode,
    headers: Vec<Header>,
    body: Option<Vec<u8>>,
}

impl Answer {
    fn of(resp: &Response) -> Answer {
        let headers = resp
            .headers
            .iter()
            .filter(|h| {
                !matches!(
                    h,
                    Header::Via(_)
                        | Header::From(_)
                        | Header::To(_)
                        | Header::CallId(_)
                        | Header::CSeq(_)
                        | Header::ContentLength(_)
                        | Header::UserAgent(_)
                        | Header::RecordRoute(_)
                        | Header::Contact(_)
                )
            })
            .cloned()
            .collect();
        Answer {
            status: resp.status_code.clone(),
            headers,
            body: (!resp.body.is_empty()).then(|| resp.body.clone()),
        }
    }

    fn is_final(&self) -> bool {
        self.status.kind() != StatusCodeKind::Provisional
    }

    /// Sends it through `handle` (the dialog's task builds and sends the response).
    fn send(self, handle: TransactionHandle) {
        tokio::spawn(async move {
            if handle
                .respond(self.status, Some(self.headers), self.body)
                .await
                .is_err()
            {
                tracing::debug!("an answer found its request already given up");
            }
        });
    }
}

/// A request in a dialog that the dialog handles, until the engine's answer has gone.
enum Pending {
    /// Neither the engine's answer nor the dialog's handle yet.
    Waiting,
    Answer(Answer),
    Handle(TransactionHandle),
    /// The dialog answers it itself (BYE, PRACK, a method it refuses).
    ByDialog,
}

/// What became of a new request that names a dialog.
pub(crate) enum InDialog {
    /// Not one of our dialogs' (or one it cannot take now): the engine answers it through
    /// its transaction.
    NotOurs(Box<Transaction>),
    /// Out of order: answered 500 here (§12.2.2).
    Refused,
    /// Its dialog handles it; the engine decides the answer.
    Taken,
}

/// The legs' dialogs, owned by the engine's task.
pub(crate) struct Dialogs {
    endpoint: EndpointInnerRef,
    flows: Flows,
    states: DialogStateSender,
    legs: HashMap<String, Leg>,
    /// Their INVITE's server transaction key → Call-ID, for the engine's answers to it.
    invites: HashMap<String, String>,
    /// Requests in dialogs by server transaction key.
    pending: HashMap<String, (Instant, Pending)>,
}

/// State changes of every dialog, for [`Dialogs::on_state`] on the engine's task.
pub(crate) struct DialogStates(DialogStateReceiver);

/// One state change (rsipstack's type stays inside this module).
pub(crate) struct StateChange(DialogState);

impl DialogStates {
    pub(crate) async fn recv(&mut self) -> Option<StateChange> {
        self.0.recv().await.map(StateChange)
    }
}

impl Dialogs {
    pub(crate) fn new(endpoint: EndpointInnerRef, flows: Flows) -> (Dialogs, DialogStates) {
        let (states, rx) = tokio::sync::mpsc::unbounded_channel();
        let dialogs = Dialogs {
            endpoint,
            flows,
            states,
            legs: HashMap::new(),
            invites: HashMap::new(),
            pending: HashMap::new(),
        };
        (dialogs, DialogStates(rx))
    }

    fn insert(&mut self, call_id: String, leg: Leg) {
        // The same Call-ID again (a peer reusing one): the newer dialog wins.
        if let Some(key) = self.legs.remove(&call_id).and_then(|old| old.invite_key) {
            self.invites.remove(&key);
        }
        if let Some(key) = &leg.invite_key {
            self.invites.insert(key.clone(), call_id.clone());
        }
        self.legs.insert(call_id, leg);
    }

    fn remove(&mut self, call_id: &str) {
        if let Some(leg) = self.legs.remove(call_id) {
            if let Some(key) = leg.invite_key {
                self.invites.remove(&key);
            }
            self.flows.unpin(call_id);
        }
    }

    /// rsipstack's dialog for a leg whose first request is `req` (its transaction's TU
    /// channel `tu`), `contact` being ours. The engine takes and sends only INVITEs a
    /// dialog can be made of (`dialog::opens_dialog`): a failure here is a bug, and that
    /// call could not be hung up from here.
    fn make(
        &self,
        role: TransactionRole,
        id: DialogId,
        req: &rsipstack::sip::Request,
        tu: TransactionEventSender,
        contact: Option<Uri>,
    ) -> Option<DialogInner> {
        let made = DialogInner::new(
            role,
            id,
            req.clone(),
            self.endpoint.clone(),
            self.states.clone(),
            None,
            contact,
            tu,
        );
        made.map_err(|e| tracing::warn!(error = %e, ?role, "no dialog for an INVITE"))
            .ok()
    }

    /// Opens our UAS dialog on their INVITE (its server transaction `tx`, the key `key`)
    /// with the engine's first answer that carries our tag (a 1xx or 2xx), and sends that
    /// answer through it. `flow`: where the INVITE came from. When rsipstack cannot make a
    /// dialog of the INVITE, the transaction and the answer come back.
    pub(crate) fn open_uas(
        &mut self,
        key: &str,
        mut tx: Transaction,
        answer: Response,
        flow: SipAddr,
    ) -> Result<(), Box<(Transaction, Response)>> {
        let req = tx.original.clone();
        let ids = (|| {
            let call_id = req.call_id_header().ok()?.value().to_string();
            let local_tag = answer.to_header().ok()?.tag().ok()??.value().to_string();
            // An RFC 2543 caller sends no From tag: the dialog is matched without one.
            let remote_tag = req
                .from_header()
                .ok()
                .and_then(|f| f.tag().ok().flatten())
                .map(|t| t.value().to_string())
                .unwrap_or_default();
            let cseq = req.cseq_header().ok()?.seq().ok()?;
            Some((call_id, local_tag, remote_tag, cseq))
        })();
        let Some((call_id, local_tag, remote_tag, cseq)) = ids else {
            return Err(Box::new((tx, answer)));
        };
        let id = DialogId {
            call_id: call_id.clone(),
            local_tag: local_tag.clone(),
            remote_tag,
        };
        let made = self.make(
            TransactionRole::Server,
            id,
            &req,
            tx.tu_sender.clone(),
            first_contact(&answer),
        );
        let Some(inner) = made else {
            return Err(Box::new((tx, answer)));
        };
        // §12.1.1: the remote sequence number is the INVITE's.
        inner.remote_seq.store(cseq, Ordering::Relaxed);
        *inner.remote_contact.lock() = req.contact_header().ok().cloned();
        inner.set_server_connection(tx.connection.clone());
        let remote_uri = inner.remote_uri.lock().clone();
        self.flows.pin(&call_id, &remote_uri, flow);
        let leg = Leg::new(local_tag, inner, None, Some(key.to_string()));
        let mut handler = leg.dialog.clone();
        // The INVITE transaction lives until its ACK (or CANCEL): its own task.
        tokio::spawn(async move {
            if let Err(e) = handler.handle(&mut tx).await {
                tracing::debug!(error = %e, "INVITE dialog ended with an error");
            }
            while tx.receive().await.is_some() {}
        });
        answer_invite(&leg, &answer);
        self.insert(call_id, leg);
        Ok(())
    }

    /// Opens our UAC dialog on the INVITE of client transaction `tx` (not sent yet; the
    /// returned dialog sends it and takes its responses: [`InviteDialog::process_invite`]).
    /// `flow`: where the INVITE goes, which is where its CANCEL and, once the 2xx names the
    /// far end's Contact, the dialog's requests go too.
    pub(crate) fn open_uac(
        &mut self,
        tx: &Transaction,
        branch: &str,
        flow: SipAddr,
    ) -> Option<InviteDialog> {
        let req = &tx.original;
        let call_id = req.call_id_header().ok()?.value().to_string();
        let local_tag = req.from_header().ok()?.tag().ok()??.value().to_string();
        let id = DialogId {
            call_id: call_id.clone(),
            local_tag: local_tag.clone(),
            remote_tag: String::new(),
        };
        let inner = self.make(
            TransactionRole::Client,
            id,
            req,
            tx.tu_sender.clone(),
            first_contact(req),
        )?;
        self.flows.pin(&call_id, &req.uri, flow);
        let leg = Leg::new(local_tag, inner, Some(branch.to_string()), None);
        let dialog = leg.dialog.clone();
        self.insert(call_id, leg);
        Some(dialog)
    }

    /// The engine gave up on our INVITE `branch` (64·T1 on its clock): its dialog goes,
    /// unless it was answered meanwhile.
    pub(crate) fn invite_given_up(&mut self, branch: &str) {
        let gone: Vec<String> = self
            .legs
            .iter()
            .filter(|(_, l)| l.invite_branch.as_deref() == Some(branch) && !l.inner.is_confirmed())
            .map(|(c, _)| c.clone())
            .collect();
        for call_id in gone {
            self.remove(&call_id);
        }
    }

    /// The engine leaves request `key` unanswered.
    pub(crate) fn forget(&mut self, key: &str) {
        self.pending.remove(key);
    }

    /// A new request that names a dialog (a To tag; not ACK or CANCEL). `req` is it as the
    /// engine reads it, `key` its server transaction key, `flow` where it came from.
    pub(crate) fn take_request(
        &mut self,
        tx: Transaction,
        req: &super::Request,
        key: &str,
        flow: SipAddr,
    ) -> InDialog {
        let call_id = req.call_id().to_string();
        let Some(leg) = self.legs.get(&call_id) else {
            return InDialog::NotOurs(Box::new(tx));
        };
        let to_tag = req.to().and_then(|t| t.tag().map(str::to_owned));
        let from_tag = req.from().and_then(|f| f.tag().map(str::to_owned));
        let remote_tag = leg.inner.id.lock().remote_tag.clone();
        if to_tag.as_deref() != Some(leg.local_tag.as_str())
            || !remote_tag.is_empty() && from_tag.as_deref() != Some(remote_tag.as_str())
        {
            return InDialog::NotOurs(Box::new(tx));
        }
        let method = req.method.as_str();
        let server = leg.inner.role == TransactionRole::Server;
        // rsipstack's dialog serves requests once confirmed (and, as a UAS, a BYE before
        // the ACK); in between — a re-INVITE waiting for its ACK — the engine answers.
        let takes =
            leg.inner.is_confirmed() || method == "BYE" && server && !leg.inner.is_terminated();
        if !takes {
            if method == "BYE" {
                // The engine answers it; the dialog ends all the same.
                self.remove(&call_id);
            }
            return InDialog::NotOurs(Box::new(tx));
        }
        let cseq = req.cseq().0;
        let last = leg.inner.remote_seq.load(Ordering::Relaxed);
        if last > 0 && cseq < last {
            // §12.2.2: a request below the remote sequence number gets 500 (rsipstack's
            // dialog would drop it unanswered and the peer would retransmit to Timer F).
            tokio::spawn(async move {
                let mut tx = tx;
                let _ = tx.reply(StatusCode::ServerInternalError).await;
            });
            return InDialog::Refused;
        }
        // Moved on here, not in the dialog's task, so the next request is judged by it.
        leg.inner.remote_seq.fetch_max(cseq, Ordering::Relaxed);
        if matches!(method, "INVITE" | "UPDATE")
            && let Ok(contact) = tx.original.contact_header()
            && let Ok(typed) = contact.typed()
        {
            // §12.2.2 target refresh (RFC 3311 §5.2 for UPDATE): rsipstack's dialog keeps
            // the first Contact.
            leg.inner
                .set_remote_target(typed.uri.clone(), Some(contact.clone()));
            self.flows.pin(&call_id, &typed.uri, flow);
        }
        let handled_by_engine = matches!(
            method,
            "INVITE" | "INFO" | "OPTIONS" | "UPDATE" | "REFER" | "MESSAGE" | "NOTIFY"
        );
        let gate = if method == "REFER" {
            leg.refer_gate.clone().try_lock_owned().ok()
        } else {
            None
        };
        let mut handler = leg.dialog.clone();
        tokio::spawn(async move {
            let mut tx = tx;
            let result = handler.handle(&mut tx).await;
            drop(gate);
            if let Err(e) = result {
                tracing::debug!(error = %e, "a request in a dialog ended with an error");
            }
        });
        self.purge_pending();
        let pending = if handled_by_engine {
            Pending::Waiting
        } else {
            Pending::ByDialog
        };
        self.pending
            .insert(key.to_string(), (Instant::now(), pending));
        InDialog::Taken
    }

    /// The engine's answer `resp` to the request of server transaction `key`, when a dialog
    /// carries it: sent through the dialog (or left to it). `Some` gives it back when no
    /// dialog is concerned.
    pub(crate) fn answer(&mut self, key: &str, resp: Response) -> Option<Response> {
        if let Some(call_id) = self.invites.get(key) {
            if let Some(leg) = self.legs.get(call_id) {
                let cancelled = leg.cancelled && resp.status_code == StatusCode::RequestTerminated;
                if !cancelled {
                    answer_invite(leg, &resp);
                }
            }
            return None;
        }
        if let Some(invite) = key.strip_suffix("|CANCEL") {
            let invite = format!("{invite}|INVITE");
            if let Some(call_id) = self.invites.get(&invite).cloned() {
                // The INVITE's transaction answers the CANCEL and its dialog the INVITE
                // (487), in that order; the engine's 487 that follows this is not sent.
                if let Some(leg) = self.legs.get_mut(&call_id) {
                    leg.cancelled = true;
                }
                return None;
            }
        }
        let Some((at, pending)) = self.pending.remove(key) else {
            return Some(resp);
        };
        let answer = Answer::of(&resp);
        match pending {
            Pending::ByDialog => {}
            Pending::Waiting | Pending::Answer(_) => {
                self.pending
                    .insert(key.to_string(), (at, Pending::Answer(answer)));
            }
            Pending::Handle(handle) => {
                if !answer.is_final() {
                    self.pending
                        .insert(key.to_string(), (at, Pending::Handle(handle.clone())));
                }
                answer.send(handle);
            }
        }
        None
    }

    /// A state change of a dialog: a request in it waiting for the engine's answer, its end.
    pub(crate) fn on_state(&mut self, StateChange(state): StateChange) {
        let id = state.id().clone();
        match state {
            DialogState::Updated(_, req, handle)
            | DialogState::Publish(_, req, handle)
            | DialogState::Notify(_, req, handle)
            | DialogState::Info(_, req, handle)
            | DialogState::Options(_, req, handle)
            | DialogState::Refer(_, req, handle)
            | DialogState::Message(_, req, handle) => self.ready(&req, handle),
            DialogState::Terminated(..)
                if self
                    .legs
                    .get(&id.call_id)
                    .is_some_and(|l| l.local_tag == id.local_tag) =>
            {
                self.remove(&id.call_id);
            }
            _ => {}
        }
        if let Some(leg) = self.legs.get(&id.call_id) {
            leg.changed.send_replace(());
        }
    }

    /// A dialog hands request `req` up with `handle`: the engine's answer goes through it.
    fn ready(&mut self, req: &rsipstack::sip::Request, handle: TransactionHandle) {
        let Ok(super::Message::Request(ours)) = super::parse(&req.to_bytes()) else {
            return;
        };
        let key = crate::transaction::server_key(&ours);
        match self.pending.remove(&key) {
            Some((at, Pending::Answer(answer))) => {
                if !answer.is_final() {
                    self.pending
                        .insert(key, (at, Pending::Handle(handle.clone())));
                }
                answer.send(handle);
            }
            Some((at, _)) => {
                self.pending.insert(key, (at, Pending::Handle(handle)));
            }
            None => {
                self.pending
                    .insert(key, (Instant::now(), Pending::Handle(handle)));
            }
        }
    }

    /// Runs `op` on its leg's dialog (after the ops before it).
    pub(crate) fn op(&mut self, op: DialogOp) {
        let call_id = match &op {
            DialogOp::Bye { call_id }
            | DialogOp::Cancel { call_id }
            | DialogOp::Request { call_id, .. } => call_id,
        };
        let Some(leg) = self.legs.get_mut(call_id) else {
            tracing::debug!(?op, "no dialog for this operation (it has ended)");
            return;
        };
        let ops = leg.ops.get_or_insert_with(|| {
            let (ops, queue) = mpsc::unbounded_channel();
            tokio::spawn(run_ops(
                leg.dialog.clone(),
                leg.inner.clone(),
                queue,
                leg.changed.subscribe(),
                leg.refer_gate.clone(),
                self.states.clone(),
            ));
            ops
        });
        let _ = ops.send(op);
    }

    /// Drops what the engine never answered and no dialog claimed within 64·T1 (rsipstack's
    /// dialog has answered 501 by then).
    fn purge_pending(&mut self) {
        if self.pending.len() < 256 {
            return;
        }
        let old = Duration::from_millis(2 * T64 as u64);
        self.pending.retain(|_, (at, _)| at.elapsed() < old);
    }
}

/// Whether rsipstack can make a dialog of this INVITE as printed: its From, To, CSeq and
/// Contact read as typed headers (what `DialogInner::new` needs). An INVITE the engine
/// takes must pass, or the call would have no dialog to hang up in (fuzzed: `fuzzing.rs`).
pub(crate) fn dialog_ready(printed: &[u8]) -> bool {
    let Ok(rsipstack::sip::SipMessage::Request(req)) =
        rsipstack::sip::SipMessage::try_from(printed)
    else {
        return false;
    };
    req.from_header().is_ok_and(|h| h.typed().is_ok())
        && req.to_header().is_ok_and(|h| h.typed().is_ok())
        && req.cseq_header().is_ok_and(|h| h.seq().is_ok())
        && req.typed_contact_headers().is_ok_and(|c| !c.is_empty())
}

/// Whether rsipstack's dialog can take this 2xx to our INVITE as printed (§12.1.2: their
/// tag, their Contact as the remote target): From, To and every Contact read as typed
/// headers. One it cannot take is discarded like a malformed response.
pub(crate) fn confirms_dialog(printed: &[u8]) -> bool {
    let Ok(rsipstack::sip::SipMessage::Response(resp)) =
        rsipstack::sip::SipMessage::try_from(printed)
    else {
        return false;
    };
    resp.from_header().is_ok_and(|h| h.typed().is_ok())
        && resp.to_header().is_ok_and(|h| h.tag().is_ok())
        && resp.typed_contact_headers().is_ok_and(|c| !c.is_empty())
}

/// The engine's answer to their INVITE, through the dialog (RFC 3261 §13.3.1).
fn answer_invite(leg: &Leg, resp: &Response) {
    let answer = Answer::of(resp);
    let code = resp.status_code.code();
    let sent = match code {
        100 => Ok(()),
        101..=199 => leg.dialog.ringing(Some(answer.headers), answer.body),
        200..=299 => leg.dialog.accept(Some(answer.headers), answer.body),
        _ => leg.dialog.reject(Some(answer.status), None),
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, code, "an answer to an INVITE was not sent");
    }
}

/// One leg's operations, in the engine's order.
async fn run_ops(
    dialog: InviteDialog,
    inner: Arc<DialogInner>,
    mut ops: mpsc::UnboundedReceiver<DialogOp>,
    mut changed: watch::Receiver<()>,
    refer_gate: Arc<tokio::sync::Mutex<()>>,
    states: DialogStateSender,
) {
    while let Some(op) = ops.recv().await {
        let result = match op {
            DialogOp::Cancel { .. } => dialog.cancel().await,
            DialogOp::Bye { .. } => {
                settle(&inner, &mut changed).await;
                let result = if inner.can_cancel() {
                    // Never answered after all: RFC 3261 §15, CANCEL.
                    dialog.cancel().await
                } else {
                    dialog.bye().await
                };
                if !inner.is_terminated() {
                    // A BYE that could not be sent ends the leg all the same: the dialog
                    // is forgotten (`Dialogs::on_state`) instead of kept forever.
                    let id = inner.id.lock().clone();
                    let _ = states.send(DialogState::Terminated(id, TerminatedReason::Timeout));
                }
                result
            }
            DialogOp::Request {
                method,
                headers,
                body,
                ..
            } => {
                let _after_the_202 = refer_gate.lock().await;
                settle(&inner, &mut changed).await;
                match method.parse::<Method>() {
                    Ok(method) => {
                        let headers = headers
                            .into_iter()
                            .map(|(n, v)| Header::Other(n, v))
                            .collect();
                        dialog
                            .request(method, Some(headers), Some(body))
                            .await
                            .map(|_| ())
                    }
                    Err(e) => Err(e.into()),
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "a dialog operation failed");
        }
    }
}

/// Waits, at most 64·T1, until the dialog can send a request: confirmed, or ended, or (a
/// UAS) waiting for the ACK of its 2xx.
async fn settle(inner: &DialogInner, changed: &mut watch::Receiver<()>) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let ready = inner.is_confirmed()
            || inner.is_terminated()
            || inner.role == TransactionRole::Server && inner.waiting_ack();
        if ready {
            return;
        }
        match tokio::time::timeout_at(deadline, changed.changed()).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        Uri::try_from(s).unwrap()
    }

    fn flow(port: u16) -> SipAddr {
        SipAddr::from(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn a_pinned_target_goes_to_its_legs_flow_until_the_leg_ends() {
        let flows = Flows::default();
        let contact = uri("sip:8001@10.0.0.5:5062");
        assert_eq!(
            flows.flow_of(&contact),
            None,
            "unpinned: resolved as it reads"
        );
        flows.pin("b1", &contact, flow(40001));
        assert_eq!(flows.flow_of(&contact), Some(flow(40001)));
        // The same phone in a second call, on a new flow: the latest pin wins, and the
        // first call's end leaves the second's in place.
        flows.pin("b2", &contact, flow(40002));
        assert_eq!(flows.flow_of(&contact), Some(flow(40002)));
        flows.unpin("b2");
        assert_eq!(flows.flow_of(&contact), Some(flow(40001)));
        flows.unpin("b1");
        assert_eq!(flows.flow_of(&contact), None);
        let p = flows.0.lock().unwrap();
        assert!(
            p.by_uri.is_empty() && p.by_call.is_empty(),
            "nothing left behind"
        );
    }

    #[test]
    fn a_leg_pinning_again_moves_its_target() {
        let flows = Flows::default();
        let (old, new) = (
            uri("sip:caller@10.0.0.1:5070"),
            uri("sip:caller@10.0.0.2:5080"),
        );
        flows.pin("a1", &old, flow(5070));
        flows.pin("a1", &old, flow(5071));
        flows.pin("a1", &new, flow(5080));
        assert_eq!(flows.flow_of(&old), Some(flow(5071)));
        assert_eq!(flows.flow_of(&new), Some(flow(5080)));
        flows.unpin("a1");
        assert_eq!((flows.flow_of(&old), flows.flow_of(&new)), (None, None));
    }

    #[tokio::test]
    async fn the_locator_answers_pinned_targets_and_resolves_the_rest() {
        let flows = Flows::default();
        let locator = flows.locator();
        let contact = uri("sip:8001@10.0.0.5:5062");
        flows.pin("b1", &contact, flow(40001));
        assert_eq!(locator.locate(&contact).await.unwrap(), flow(40001));
        let other = uri("sip:8002@127.0.0.1:5090");
        assert_eq!(
            locator
                .locate(&other)
                .await
                .unwrap()
                .get_socketaddr()
                .unwrap(),
            std::net::SocketAddr::from(([127, 0, 0, 1], 5090))
        );
    }
}
