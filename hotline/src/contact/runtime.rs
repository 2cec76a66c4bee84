//! The driver task of the contact centre (see the module doc in `mod.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline_core::metrics::Registry;
use hotline_core::{Clock, Rng, UnixMillis};
use hotline_crm::CrmStore;
use hotline_crm::callback::{CallbackSource, NewCallback};
use hotline_crm::stats::CallFact;
use hotline_crm::survey::{SurveyAnswer, SurveyRating};
use hotline_integrations::lookup::{self, LookupAnswer, SelfServiceGate};
use hotline_ivr::queue::{AcdCommand, AcdEvent, CallbackReason};
use hotline_ivr::survey::{Rating, SurveyCommand, SurveyOutcome};
use hotline_ivr::{Acd, CallInfo, Command, IvrSession, LookupOutcome, Survey};
use hotline_sip_gateway::{AppEvent, GatewayHandle};
use sqlx::AnyPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::db::write_queue::{crm_failure, recording_failure, submit};
use hotline_core::write_queue::WriteQueue;

use super::{
    AgentError, ContactCentre, IvrConfig, Library, QueueRefused, Request, TransferTarget, data,
};

/// What the runtime needs from the composition root.
pub struct ContactDeps {
    pub config: IvrConfig,
    pub library: Library,
    pub gateway: GatewayHandle,
    pub app_events: mpsc::UnboundedReceiver<AppEvent>,
    pub pool: AnyPool,
    pub crm: CrmStore,
    /// Call facts and recording rows go through it, so a database outage does not lose them.
    pub writes: Arc<dyn WriteQueue>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
    pub metrics: Registry,
    pub events: Arc<dyn hotline_core::EventSink>,
    pub cancel: CancellationToken,
}

/// Starts the runtime task; it ends when `cancel` fires or the gateway stops.
pub fn start(deps: ContactDeps) -> Result<ContactCentre, AgentError> {
    let acd = Acd::new(deps.config.acd.clone());
    let (tx, rx) = mpsc::channel(64);
    let (lookup_tx, lookup_rx) = mpsc::unbounded_channel();
    let rt = Runtime {
        cfg: deps.config,
        library: deps.library,
        gw: deps.gateway,
        pool: deps.pool,
        crm: deps.crm,
        writes: deps.writes,
        clock: deps.clock,
        rng: deps.rng,
        metrics: deps.metrics,
        events: deps.events,
        acd,
        calls: HashMap::new(),
        not_ready: HashMap::new(),
        state_since: HashMap::new(),
        gate: Arc::new(Mutex::new(SelfServiceGate::default())),
        lookup_tx,
    };
    tokio::spawn(rt.run(deps.app_events, rx, lookup_rx, deps.cancel));
    Ok(ContactCentre { tx })
}

enum Phase {
    Ivr(Box<IvrSession>),
    /// In the ACD: waiting, ringing an agent, or talking (the ACD knows which).
    Queued,
    /// Sent straight to a seat by the flow (`transfer`), outside the ACD.
    Direct,
    Survey(Box<Survey>),
    Closing,
}

struct CallCtx {
    caller: String,
    phase: Phase,
    /// Bumped on every phase change; the upper half of our playback ids.
    generation: u64,
    next_local: u64,
    /// Queue phase: the music-on-hold prompt and the playback id looping it.
    moh: Option<(String, u64)>,
    /// The agent put the caller on hold (the music loops until taken back).
    held: bool,
    announcing: Option<u64>,
    /// Hang up when this playback ends.
    release: Option<u64>,
    ringing: Option<String>,
    /// An agent the ACD wants rung while the previous seat leg (cancelled after a ring
    /// timeout) is still being torn down: rung as soon as that leg is gone.
    waiting_ring: Option<String>,
    fact: CallFact,
    ivr_path: Vec<String>,
}

struct LookupDone {
    call_id: String,
    request: u64,
    outcome: LookupOutcome,
}

struct Runtime {
    cfg: IvrConfig,
    library: Library,
    gw: GatewayHandle,
    pool: AnyPool,
    crm: CrmStore,
    writes: Arc<dyn WriteQueue>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
    metrics: Registry,
    events: Arc<dyn hotline_core::EventSink>,
    acd: Acd,
    calls: HashMap<String, CallCtx>,
    /// Agents not ready now: since when and why (a period is stored when it ends).
    not_ready: HashMap<String, (UnixMillis, String)>,
    /// When each agent entered its present state (the wallboard's "time in state").
    state_since: HashMap<String, UnixMillis>,
    gate: Arc<Mutex<SelfServiceGate>>,
    lookup_tx: mpsc::UnboundedSender<LookupDone>,
}

fn playback_id(generation: u64, id: u64) -> u64 {
    (generation << 32) | (id & 0xffff_ffff)
}

impl Runtime {
    fn now(&self) -> UnixMillis {
        self.clock.now_ms()
    }

    async fn run(
        mut self,
        mut app: mpsc::UnboundedReceiver<AppEvent>,
        mut requests: mpsc::Receiver<Request>,
        mut lookups: mpsc::UnboundedReceiver<LookupDone>,
        cancel: CancellationToken,
    ) {
        loop {
            let wait = self
                .next_deadline()
                .map(|d| Duration::from_millis(u64::try_from(d - self.now()).unwrap_or(0)))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                _ = cancel.cancelled() => return,
                ev = app.recv() => match ev {
                    Some(ev) => self.on_app_event(ev).await,
                    None => return,
                },
                req = requests.recv() => match req {
                    Some(r) => self.on_request(r).await,
                    None => return,
                },
                Some(done) = lookups.recv() => {
                    let now = self.now();
                    if let Some(Phase::Ivr(s)) = self.calls.get_mut(&done.call_id).map(|c| &mut c.phase) {
                        s.handle_lookup_result(now, done.request, done.outcome);
                    }
                    self.pump_call(&done.call_id).await;
                }
                _ = tokio::time::sleep(wait) => self.on_timeout().await,
            }
            self.pump_acd().await;
            self.acd.export_metrics(&self.metrics, self.now());
        }
    }

    fn next_deadline(&self) -> Option<UnixMillis> {
        let calls = self.calls.values().filter_map(|c| match &c.phase {
            Phase::Ivr(s) => s.poll_timeout(),
            Phase::Survey(s) => s.poll_timeout(),
            _ => None,
        });
        calls.chain(self.acd.poll_timeout()).min()
    }

    async fn on_timeout(&mut self) {
        let now = self.now();
        let due: Vec<String> = self
            .calls
            .iter_mut()
            .filter_map(|(id, c)| {
                match &mut c.phase {
                    Phase::Ivr(s) if s.poll_timeout().is_some_and(|d| d <= now) => {
                        s.handle_timeout(now)
                    }
                    Phase::Survey(s) if s.poll_timeout().is_some_and(|d| d <= now) => {
                        s.handle_timeout(now)
                    }
                    _ => return None,
                }
                Some(id.clone())
            })
            .collect();
        for id in due {
            self.pump_call(&id).await;
        }
        if self.acd.poll_timeout().is_some_and(|d| d <= now) {
            self.acd.handle_timeout(now);
        }
    }

    async fn on_request(&mut self, r: Request) {
        let now = self.now();
        let err = |e: hotline_ivr::queue::AcdError| AgentError(e.to_string());
        match r {
            Request::Login {
                agent,
                queues,
                reply,
            } => {
                let q: Vec<&str> = queues.iter().map(String::as_str).collect();
                let _ = reply.send(self.acd.login(now, &agent, &q).map_err(err));
            }
            Request::Ready { agent, reply } => {
                let _ = reply.send(self.acd.set_ready(now, &agent).map_err(err));
            }
            Request::NotReady {
                agent,
                reason,
                reply,
            } => {
                let _ = reply.send(self.acd.set_not_ready(now, &agent, &reason).map_err(err));
            }
            Request::Logout { agent, reply } => {
                let _ = reply.send(self.acd.logout(now, &agent).map_err(err));
            }
            Request::Snapshot { reply } => {
                let _ = reply.send(serde_json::json!({
                    "queues": self.acd.queues_snapshot(now),
                    "agents": self.acd.agents_snapshot(),
                    "since": self.state_since,
                    "now": now,
                    "calls": self.calls.len(),
                }));
            }
            Request::Transfer { call_id, to, reply } => {
                let _ = reply.send(self.transfer(now, &call_id, &to).await);
            }
            Request::Hold { call_id, on, reply } => {
                let _ = reply.send(self.hold(now, &call_id, on).await);
            }
            Request::Reload { library, reply } => {
                tracing::info!(
                    flow = library.flow.name(),
                    prompts = library.clips.len(),
                    "IVR flow and prompts reloaded"
                );
                self.library = library;
                let _ = reply.send(());
            }
            Request::QueueSettings { reply } => {
                let all = self
                    .cfg
                    .acd
                    .queues
                    .iter()
                    .filter_map(|q| self.acd.queue_config(&q.name).cloned())
                    .collect();
                let _ = reply.send(all);
            }
            Request::SetQueue { settings, reply } => {
                let _ = reply.send(self.set_queue(now, settings));
            }
        }
    }

    /// An administrator's edit of one queue: checked with the running prompts, then the
    /// ACD's settings are replaced (waiting calls stay).
    fn set_queue(
        &mut self,
        now: UnixMillis,
        settings: hotline_ivr::queue::QueueConfig,
    ) -> Result<hotline_ivr::queue::QueueConfig, QueueRefused> {
        if self.acd.queue_config(&settings.name).is_none() {
            return Err(QueueRefused::UnknownQueue(settings.name));
        }
        super::check_queue_settings(&settings, Some(&self.library))
            .map_err(QueueRefused::Invalid)?;
        let name = settings.name.clone();
        let old = self
            .acd
            .replace_queue_config(now, settings)
            .map_err(|e| QueueRefused::Invalid(e.to_string()))?;
        tracing::info!(queue = %name, "queue settings replaced");
        Ok(old)
    }

    async fn on_app_event(&mut self, ev: AppEvent) {
        let now = self.now();
        match ev {
            AppEvent::Incoming {
                call_id,
                caller,
                did,
                peer,
            } => {
                let calendar =
                    match hotline_integrations::calendar::current_calendar(&self.pool, now).await {
                        Ok(c) => c.as_ref().and_then(data::calendar),
                        Err(e) => {
                            tracing::warn!(error = %e, "reading the auction calendar failed");
                            None
                        }
                    };
                let from_12345 = peer.as_deref() == Some(self.cfg.transfer_peer.as_str());
                tracing::info!(call = %call_id, %caller, %did, from_12345, "IVR call");
                let mut session = IvrSession::new(
                    self.library.flow.clone(),
                    CallInfo {
                        caller_id: caller.clone(),
                        from_12345,
                        calendar,
                    },
                );
                session.start(now);
                self.calls.insert(
                    call_id.clone(),
                    CallCtx {
                        caller: caller.clone(),
                        phase: Phase::Ivr(Box::new(session)),
                        generation: 1,
                        next_local: 0,
                        moh: None,
                        held: false,
                        announcing: None,
                        release: None,
                        ringing: None,
                        waiting_ring: None,
                        fact: CallFact {
                            call_id: call_id.clone(),
                            queue: String::new(),
                            caller,
                            agent: None,
                            offered_at: now,
                            answered_at: None,
                            ended_at: None,
                            wrap_up_ms: i64::try_from(self.cfg.acd.wrap_up_ms).unwrap_or(0),
                            abandoned: false,
                            recording_id: None,
                            ivr_path: String::new(),
                        },
                        ivr_path: Vec::new(),
                    },
                );
                self.pump_call(&call_id).await;
            }
            AppEvent::Digit { call_id, digit, .. } => {
                let Some(c) = self.calls.get_mut(&call_id) else {
                    return;
                };
                match &mut c.phase {
                    Phase::Ivr(s) => s.handle_digit(now, digit),
                    Phase::Survey(s) => s.handle_digit(now, digit),
                    Phase::Queued => {
                        let _ = self.acd.handle_digit(now, &call_id, digit);
                    }
                    Phase::Direct | Phase::Closing => {}
                }
                self.pump_call(&call_id).await;
            }
            AppEvent::PlayFinished { call_id, id } => self.on_play_finished(&call_id, id).await,
            AppEvent::SeatRinging { .. } => {}
            AppEvent::SeatAnswered { call_id, seat } => {
                let Some(c) = self.calls.get_mut(&call_id) else {
                    return;
                };
                if c.ringing.as_deref() != Some(seat.as_str()) {
                    // A seat we had stopped ringing answered just before its CANCEL: hang it
                    // up and ring the agent the ACD chose meanwhile.
                    let _ = self.gw.disconnect_seat(&call_id).await;
                    self.ring_waiting(&call_id).await;
                    return;
                }
                c.ringing = None;
                // The recording row names the agent (the ACD's agent id is the seat).
                let (pool, queue) = (self.pool.clone(), c.fact.queue.clone());
                let (cid, s2) = (call_id.clone(), seat.clone());
                submit(self.writes.as_ref(), "recording agent", move || {
                    let (pool, cid, s2, queue) =
                        (pool.clone(), cid.clone(), s2.clone(), queue.clone());
                    async move {
                        hotline_recording::store::set_agent(&pool, now, &cid, &s2, &s2, &queue)
                            .await
                            .map_err(recording_failure)
                    }
                });
                match c.phase {
                    Phase::Queued => {
                        if self
                            .acd
                            .handle_agent_answered(now, &call_id, &seat)
                            .is_err()
                        {
                            // The ACD moved on (caller gone, ring cancelled): drop the seat.
                            let _ = self.gw.disconnect_seat(&call_id).await;
                        }
                    }
                    Phase::Direct => {
                        c.fact.agent = Some(seat);
                        c.fact.answered_at = Some(now);
                    }
                    _ => {
                        let _ = self.gw.disconnect_seat(&call_id).await;
                    }
                }
            }
            AppEvent::SeatFailed {
                call_id,
                seat,
                status,
            } => {
                let Some(c) = self.calls.get_mut(&call_id) else {
                    return;
                };
                if c.ringing.as_deref() != Some(seat.as_str()) {
                    // The leg we cancelled is gone: the next agent can be rung now.
                    self.ring_waiting(&call_id).await;
                    return;
                }
                c.ringing = None;
                match c.phase {
                    Phase::Queued => {
                        let reason = match status {
                            486 | 600 | 603 => "busy",
                            408 | 480 | 487 => "no_answer",
                            _ => "unreachable",
                        };
                        let _ = self.acd.handle_ring_failed(now, &call_id, &seat, reason);
                    }
                    Phase::Direct => {
                        tracing::info!(call = %call_id, %seat, status, "transfer target did not answer");
                        let _ = self.gw.hangup(&call_id).await;
                    }
                    _ => {}
                }
            }
            AppEvent::SeatHungUp { call_id, .. } => {
                let Some(c) = self.calls.get(&call_id) else {
                    return;
                };
                match c.phase {
                    Phase::Queued => {
                        let _ = self.acd.handle_agent_hangup(now, &call_id);
                    }
                    _ => {
                        let _ = self.gw.hangup(&call_id).await;
                    }
                }
            }
            AppEvent::Ended { call_id, .. } => {
                let Some(c) = self.calls.get_mut(&call_id) else {
                    return;
                };
                let mut store_fact = false;
                match &mut c.phase {
                    Phase::Ivr(s) => s.handle_hangup(now),
                    Phase::Survey(s) => s.handle_hangup(now),
                    Phase::Queued => {
                        let _ = self.acd.handle_caller_hangup(now, &call_id);
                    }
                    Phase::Direct => {
                        c.fact.ended_at = Some(now);
                        store_fact = true;
                    }
                    Phase::Closing => {}
                }
                self.pump_call(&call_id).await;
                self.pump_acd().await;
                if let Some(c) = self.calls.remove(&call_id)
                    && store_fact
                {
                    self.store_fact(c.fact, c.ivr_path);
                }
            }
        }
    }

    async fn on_play_finished(&mut self, call_id: &str, id: u64) {
        let now = self.now();
        let Some(c) = self.calls.get_mut(call_id) else {
            return;
        };
        if id >> 32 != c.generation {
            return; // from an earlier phase
        }
        let local = id & 0xffff_ffff;
        match &mut c.phase {
            Phase::Ivr(s) => s.handle_playback_finished(now, local),
            Phase::Survey(s) => s.handle_playback_finished(now, local),
            Phase::Queued | Phase::Direct | Phase::Closing => {
                if c.release == Some(id) {
                    let _ = self.gw.hangup(call_id).await;
                    return;
                }
                let was_announcement = c.announcing == Some(id);
                if was_announcement {
                    c.announcing = None;
                }
                let moh_ended = c.moh.as_ref().is_some_and(|(_, m)| *m == id);
                if was_announcement || moh_ended {
                    self.play_moh(call_id).await;
                }
                return;
            }
        }
        self.pump_call(call_id).await;
    }

    /// Rings the agent that waited for the previous seat leg to be torn down.
    async fn ring_waiting(&mut self, call_id: &str) {
        let now = self.now();
        let Some(agent) = self
            .calls
            .get_mut(call_id)
            .and_then(|c| c.waiting_ring.take())
        else {
            return;
        };
        if let Err(e) = self.gw.connect_seat(call_id, &agent).await {
            tracing::info!(call = %call_id, %agent, error = %e, "agent's seat cannot ring");
            if let Some(c) = self.calls.get_mut(call_id) {
                c.ringing = None;
            }
            let _ = self
                .acd
                .handle_ring_failed(now, call_id, &agent, "unreachable");
        }
    }

    /// Plays (again) the queue's music on hold.
    async fn play_moh(&mut self, call_id: &str) {
        let Some(c) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some((prompt, _)) = c.moh.clone() else {
            return;
        };
        c.next_local += 1;
        let id = playback_id(c.generation, c.next_local);
        c.moh = Some((prompt.clone(), id));
        self.play(call_id, id, &[prompt]).await;
    }

    async fn play(&self, call_id: &str, id: u64, prompts: &[String]) {
        let clips = prompts
            .iter()
            .filter_map(|p| {
                let clip = self.library.clips.get(p).cloned();
                if clip.is_none() {
                    tracing::warn!(prompt = %p, "prompt not in the library; skipped");
                }
                clip
            })
            .collect();
        let _ = self.gw.play(call_id, id, clips).await;
    }

    /// Moves a call to a new phase: stops what it was hearing, bumps the generation.
    async fn enter(&mut self, call_id: &str, phase: Phase) {
        if let Some(c) = self.calls.get_mut(call_id) {
            if let Phase::Ivr(s) = &c.phase {
                c.ivr_path = s.path().to_vec();
            }
            c.phase = phase;
            c.generation += 1;
            c.next_local = 0;
            c.moh = None;
            c.held = false;
            c.announcing = None;
            c.release = None;
            let _ = self.gw.stop_playback(call_id).await;
        }
    }

    /// Carries out what the call's IVR session or survey asks for.
    async fn pump_call(&mut self, call_id: &str) {
        loop {
            let Some(c) = self.calls.get_mut(call_id) else {
                return;
            };
            let generation = c.generation;
            match &mut c.phase {
                Phase::Ivr(s) => {
                    let Some(cmd) = s.poll_command() else { return };
                    self.ivr_command(call_id, generation, cmd).await;
                }
                Phase::Survey(s) => {
                    let Some(cmd) = s.poll_command() else { return };
                    self.survey_command(call_id, generation, cmd).await;
                }
                _ => return,
            }
        }
    }

    async fn ivr_command(&mut self, call_id: &str, generation: u64, cmd: Command) {
        let now = self.now();
        match cmd {
            Command::Play { id, prompts } => {
                self.play(call_id, playback_id(generation, id), &prompts)
                    .await;
            }
            Command::StopPlayback { .. } => {
                let _ = self.gw.stop_playback(call_id).await;
            }
            Command::StartCollect { .. } => {}
            Command::Lookup {
                request,
                application_code,
                mobile_last4,
            } => self.spawn_lookup(call_id, request, application_code, mobile_last4),
            Command::Enqueue {
                queue,
                priority,
                caller_id,
            } => {
                self.enter(call_id, Phase::Queued).await;
                if let Some(c) = self.calls.get_mut(call_id) {
                    c.fact.queue = queue.clone();
                }
                if let Err(e) = self.acd.enqueue(now, call_id, &caller_id, &queue, priority) {
                    tracing::error!(call = %call_id, error = %e, "enqueue failed");
                    let _ = self.gw.hangup(call_id).await;
                }
            }
            Command::Transfer { target } => {
                self.enter(call_id, Phase::Direct).await;
                let seat = target.trim_start_matches("seat:").to_string();
                if let Some(c) = self.calls.get_mut(call_id) {
                    c.ringing = Some(seat.clone());
                    c.fact.queue = format!("transfer:{seat}");
                }
                if let Err(e) = self.gw.connect_seat(call_id, &seat).await {
                    tracing::info!(call = %call_id, %seat, error = %e, "transfer target unavailable");
                    let _ = self.gw.hangup(call_id).await;
                }
            }
            Command::RequestCallback { number } => {
                let caller = self.calls.get(call_id).map(|c| c.caller.clone());
                let number = if number.is_empty() {
                    caller.unwrap_or_default()
                } else {
                    number
                };
                self.spawn_callback(call_id, number, None, CallbackSource::AfterHours);
            }
            Command::StartSurvey => self.start_survey(call_id, String::new()).await,
            Command::Hangup => {
                self.enter(call_id, Phase::Closing).await;
                let _ = self.gw.hangup(call_id).await;
            }
        }
    }

    async fn survey_command(&mut self, call_id: &str, generation: u64, cmd: SurveyCommand) {
        match cmd {
            SurveyCommand::Play { id, prompts } => {
                self.play(call_id, playback_id(generation, id), &prompts)
                    .await;
            }
            SurveyCommand::StopPlayback { .. } => {
                let _ = self.gw.stop_playback(call_id).await;
            }
            SurveyCommand::Finished(r) => {
                let queue = self
                    .calls
                    .get(call_id)
                    .map(|c| c.fact.queue.clone())
                    .unwrap_or_default();
                let rating = match r.outcome {
                    SurveyOutcome::Rated(Rating::Satisfied) => SurveyRating::Satisfied,
                    SurveyOutcome::Rated(Rating::FairlySatisfied) => SurveyRating::FairlySatisfied,
                    SurveyOutcome::Rated(Rating::Dissatisfied) => SurveyRating::Dissatisfied,
                    SurveyOutcome::NoAnswer => SurveyRating::NoAnswer,
                    SurveyOutcome::HungUp => SurveyRating::HungUp,
                };
                tracing::info!(call = %call_id, agent = %r.agent, rating = rating.as_str(), "survey answered");
                let (crm, rng) = (self.crm.clone(), self.rng.clone());
                let answer = SurveyAnswer {
                    call_id: r.call_id,
                    agent: r.agent,
                    queue,
                    rating,
                    at: r.at,
                };
                let now = self.now();
                // An upsert by call: retried through a database outage (issue 12).
                submit(self.writes.as_ref(), "survey", move || {
                    let (crm, rng, answer) = (crm.clone(), rng.clone(), answer.clone());
                    async move {
                        crm.record_survey(now, rng.as_ref(), &answer)
                            .await
                            .map_err(crm_failure)
                    }
                });
            }
            SurveyCommand::Hangup => {
                let _ = self.gw.hangup(call_id).await;
            }
        }
    }

    async fn start_survey(&mut self, call_id: &str, agent: String) {
        let now = self.now();
        let mut survey = Survey::new(self.cfg.survey.clone(), call_id, &agent);
        survey.start(now);
        // The caller of this function drains the survey's first commands (`pump_call`).
        self.enter(call_id, Phase::Survey(Box::new(survey))).await;
    }

    fn spawn_lookup(&self, call_id: &str, request: u64, code: String, last4: String) {
        let (pool, gate, tx, now) = (
            self.pool.clone(),
            self.gate.clone(),
            self.lookup_tx.clone(),
            self.now(),
        );
        let caller = self
            .calls
            .get(call_id)
            .map(|c| lookup::normalize_caller(&c.caller))
            .unwrap_or_default();
        let call_id = call_id.to_string();
        tokio::spawn(async move {
            let payment_to = hotline_integrations::calendar::current_calendar(&pool, now)
                .await
                .ok()
                .flatten()
                .and_then(|c| data::date(&c.payment_end));
            let outcome = match lookup::ivr_lookup(&pool, &gate, now, &caller, &code, &last4).await
            {
                Ok(LookupAnswer::Found(s)) => LookupOutcome::Found(data::status(&s, payment_to)),
                Ok(LookupAnswer::NotFound) => LookupOutcome::NotFound,
                Ok(LookupAnswer::Blocked { .. }) => LookupOutcome::Failed("blocked".into()),
                Err(e) => LookupOutcome::Failed(e.to_string()),
            };
            let _ = tx.send(LookupDone {
                call_id,
                request,
                outcome,
            });
        });
    }

    fn spawn_callback(
        &self,
        call_id: &str,
        number: String,
        queue: Option<String>,
        source: CallbackSource,
    ) {
        let (crm, rng, now) = (self.crm.clone(), self.rng.clone(), self.now());
        let new = NewCallback {
            source,
            phone: number,
            call_id: Some(call_id.to_string()),
            ticket_id: None,
            queue,
            note: String::new(),
            requested_at: now,
        };
        // One id for every try: retried through a database outage, it makes one task.
        let id = hotline_core::IdGenerator::new_id(now, rng.as_ref());
        submit(self.writes.as_ref(), "callback request", move || {
            let (crm, rng, id, new) = (crm.clone(), rng.clone(), id.clone(), new.clone());
            async move {
                crm.create_callback_as(now, rng.as_ref(), &id, new)
                    .await
                    .map(drop)
                    .map_err(crm_failure)
            }
        });
    }

    async fn transfer(
        &mut self,
        now: UnixMillis,
        call_id: &str,
        to: &TransferTarget,
    ) -> Result<(), AgentError> {
        let Some(c) = self.calls.get(call_id) else {
            return Err(AgentError("通话不存在或已结束".into()));
        };
        if !matches!(c.phase, Phase::Queued) || c.fact.answered_at.is_none() {
            return Err(AgentError("只有坐席正在接听的来电可以转接".into()));
        }
        let caller = c.caller.clone();
        match to {
            TransferTarget::Queue(queue) => {
                if self.acd.stats(queue).is_none() {
                    return Err(AgentError(format!("队列不存在：{queue}")));
                }
                // The ACD ends the agent's part (wrap-up follows, DESIGN.md: wrap-up is not
                // skipped on transfer), then the caller joins the new queue as a new arrival.
                self.acd
                    .handle_transferred(now, call_id)
                    .map_err(|e| AgentError(e.to_string()))?;
                // The call's fact keeps the queue it was offered in; the next agent's answer
                // updates its agent and answer time.
                self.release_seat(call_id).await;
                self.acd
                    .enqueue(now, call_id, &caller, queue, 0)
                    .map_err(|e| AgentError(e.to_string()))
            }
            TransferTarget::Agent(agent) => {
                use hotline_ivr::queue::AcdError;
                let queue = c.fact.queue.clone();
                // Checked and done in one ACD step: a refusal leaves the call as it was.
                self.acd
                    .transfer_to_agent(now, call_id, &caller, &queue, agent)
                    .map_err(|e| match e {
                        AcdError::UnknownAgent(_) => {
                            AgentError(format!("坐席 {agent} 未签入，不能转接"))
                        }
                        AcdError::AgentBusy { state, .. } if state == "on this call" => {
                            AgentError("不能转接给自己".into())
                        }
                        AcdError::AgentBusy { .. } => {
                            AgentError(format!("坐席 {agent} 当前不空闲，不能转接"))
                        }
                        other => AgentError(other.to_string()),
                    })?;
                self.release_seat(call_id).await;
                Ok(())
            }
        }
    }

    /// The transferring agent's leg goes; a held caller is taken off hold first so that
    /// the next agent hears them.
    async fn release_seat(&mut self, call_id: &str) {
        if let Some(c) = self.calls.get_mut(call_id)
            && c.held
        {
            c.held = false;
            c.moh = None;
            let _ = self.gw.stop_playback(call_id).await;
        }
        let _ = self.gw.disconnect_seat(call_id).await;
    }

    async fn hold(&mut self, now: UnixMillis, call_id: &str, on: bool) -> Result<bool, AgentError> {
        let Some(c) = self.calls.get(call_id) else {
            return Err(AgentError("通话不存在或已结束".into()));
        };
        if !matches!(c.phase, Phase::Queued | Phase::Direct) || c.fact.answered_at.is_none() {
            return Err(AgentError("只有坐席正在接听的来电可以保持".into()));
        }
        let agent = c.fact.agent.clone().unwrap_or_default();
        let queue = c.fact.queue.clone();
        let changed = self
            .gw
            .set_hold(call_id, on)
            .await
            .map_err(|_| AgentError("坐席未接通，不能保持".into()))?;
        if !changed {
            return Ok(false);
        }
        let moh = self
            .cfg
            .acd
            .queues
            .iter()
            .find(|q| q.name == queue)
            .map(|q| q.moh.clone())
            .unwrap_or_else(|| hotline_ivr::prompts::MUSIC_ON_HOLD.to_string());
        if let Some(c) = self.calls.get_mut(call_id) {
            c.held = on;
            if on {
                c.moh = Some((moh, 0));
            } else {
                c.moh = None;
            }
        }
        if on {
            self.play_moh(call_id).await;
        } else {
            let _ = self.gw.stop_playback(call_id).await;
        }
        tracing::info!(call = %call_id, %agent, on, "call hold changed");
        self.events.publish(hotline_core::events::Event::Acd {
            at: now,
            kind: "hold".into(),
            json: serde_json::json!({ "call_id": call_id, "agent": agent, "on": on }).to_string(),
        });
        Ok(true)
    }

    fn store_fact(&self, mut fact: CallFact, path: Vec<String>) {
        fact.ivr_path = path.join(">");
        let (crm, rng, now, pool) = (
            self.crm.clone(),
            self.rng.clone(),
            self.now(),
            self.pool.clone(),
        );
        // Queued behind the recording row's writes, so the row is there to be linked.
        submit(self.writes.as_ref(), "call fact", move || {
            let (crm, rng, pool, mut fact) = (crm.clone(), rng.clone(), pool.clone(), fact.clone());
            async move {
                // The call's recording (its row exists from the answer), linked on the timeline.
                if fact.recording_id.is_none() {
                    fact.recording_id = hotline_recording::store::get_by_call(&pool, &fact.call_id)
                        .await
                        .map_err(recording_failure)?
                        .map(|r| r.id);
                }
                crm.record_call(now, rng.as_ref(), &fact)
                    .await
                    .map_err(crm_failure)
            }
        });
    }

    /// Carries out the ACD's commands and records its events.
    async fn pump_acd(&mut self) {
        loop {
            if let Some(ev) = self.acd.poll_event() {
                self.acd_event(ev);
                continue;
            }
            let Some(cmd) = self.acd.poll_command() else {
                return;
            };
            self.acd_command(cmd).await;
        }
    }

    fn acd_event(&mut self, ev: AcdEvent) {
        tracing::debug!(?ev, "ACD");
        if let Ok(json) = serde_json::to_value(&ev) {
            self.events.publish(hotline_core::events::Event::Acd {
                at: self.now(),
                kind: json["type"].as_str().unwrap_or_default().to_string(),
                json: json.to_string(),
            });
        }
        match ev {
            AcdEvent::CallAnswered {
                at, call_id, agent, ..
            } => {
                if let Some(c) = self.calls.get_mut(&call_id) {
                    c.fact.answered_at = Some(at);
                    c.fact.agent = Some(agent);
                }
            }
            AcdEvent::CallAbandoned { at, call_id, .. } => {
                if let Some(c) = self.calls.get_mut(&call_id) {
                    c.fact.ended_at = Some(at);
                    c.fact.abandoned = true;
                    let (fact, path) = (c.fact.clone(), c.ivr_path.clone());
                    self.store_fact(fact, path);
                }
            }
            AcdEvent::CallEnded { at, call_id, .. } => {
                if let Some(c) = self.calls.get_mut(&call_id) {
                    c.fact.ended_at = Some(at);
                    let (fact, path) = (c.fact.clone(), c.ivr_path.clone());
                    self.store_fact(fact, path);
                }
            }
            AcdEvent::CallbackRequested {
                call_id,
                queue,
                number,
                reason,
                at,
                ..
            } => {
                if let Some(c) = self.calls.get_mut(&call_id) {
                    c.fact.ended_at = Some(at);
                    c.fact.abandoned = reason == CallbackReason::MaxWait;
                    let (fact, path) = (c.fact.clone(), c.ivr_path.clone());
                    self.store_fact(fact, path);
                }
                self.spawn_callback(&call_id, number, Some(queue), CallbackSource::QueueRequest);
            }
            AcdEvent::AgentStateChanged { at, agent, state } => {
                self.state_since.insert(agent.clone(), at);
                let reason = match &state {
                    hotline_ivr::queue::AgentState::NotReady { reason } => Some(reason.clone()),
                    _ => None,
                };
                let open = self.not_ready.get(&agent).cloned();
                if let Some((from_at, was)) = open
                    && reason.as_deref() != Some(was.as_str())
                {
                    // A not-ready period ended (or its reason changed): it counts in the
                    // agent's not-ready time.
                    self.not_ready.remove(&agent);
                    let period = hotline_crm::stats::NotReadyPeriod {
                        agent: agent.clone(),
                        from_at,
                        to_at: at,
                        reason: was,
                    };
                    let crm = self.crm.clone();
                    let id = hotline_core::IdGenerator::new_id(from_at, self.rng.as_ref());
                    submit(self.writes.as_ref(), "not-ready period", move || {
                        let (crm, id, period) = (crm.clone(), id.clone(), period.clone());
                        async move {
                            crm.record_not_ready(&id, &period)
                                .await
                                .map_err(crm_failure)
                        }
                    });
                }
                if let Some(r) = reason {
                    self.not_ready.entry(agent).or_insert((at, r));
                }
            }
            AcdEvent::AgentRinging { at, call_id, agent } => {
                // The agent desktop's screen-pop (docs/console.md): who is calling, what they
                // did in the IVR and how long they waited, published as the seat starts to
                // ring so the page can show it before the agent answers.
                if let Some(c) = self.calls.get(&call_id) {
                    let pop = serde_json::json!({
                        "call_id": call_id,
                        "agent": agent,
                        "caller": c.caller,
                        "queue": c.fact.queue,
                        "ivr_path": c.ivr_path.join(">"),
                        "offered_at": c.fact.offered_at,
                        "wait_ms": (at - c.fact.offered_at).max(0),
                        "rang_at": at,
                    });
                    self.events.publish(hotline_core::events::Event::Acd {
                        at,
                        kind: "screen_pop".into(),
                        json: pop.to_string(),
                    });
                }
            }
            AcdEvent::CallQueued { .. } | AcdEvent::RingNoAnswer { .. } => {}
        }
    }

    async fn acd_command(&mut self, cmd: AcdCommand) {
        let now = self.now();
        match cmd {
            AcdCommand::StartMusicOnHold { call_id, prompt } => {
                if let Some(c) = self.calls.get_mut(&call_id) {
                    c.moh = Some((prompt, 0));
                    if c.announcing.is_none() {
                        self.play_moh(&call_id).await;
                    }
                }
            }
            AcdCommand::Announce { call_id, prompts } => {
                let Some(c) = self.calls.get_mut(&call_id) else {
                    return;
                };
                c.next_local += 1;
                let id = playback_id(c.generation, c.next_local);
                c.announcing = Some(id);
                let _ = self.gw.stop_playback(&call_id).await;
                self.play(&call_id, id, &prompts).await;
            }
            AcdCommand::Ring { call_id, agent } => {
                if let Some(c) = self.calls.get_mut(&call_id) {
                    c.ringing = Some(agent.clone());
                }
                let result = self.gw.connect_seat(&call_id, &agent).await;
                if let Err(hotline_sip_gateway::GatewayError::SeatLegBusy(_)) = result {
                    // The previous agent's leg is still being cancelled (ring no answer).
                    if let Some(c) = self.calls.get_mut(&call_id) {
                        c.waiting_ring = Some(agent);
                    }
                } else if let Err(e) = result {
                    tracing::info!(call = %call_id, %agent, error = %e, "agent's seat cannot ring");
                    if let Some(c) = self.calls.get_mut(&call_id) {
                        c.ringing = None;
                    }
                    let _ = self
                        .acd
                        .handle_ring_failed(now, &call_id, &agent, "unreachable");
                }
            }
            AcdCommand::CancelRing { call_id, agent } => {
                if let Some(c) = self.calls.get_mut(&call_id)
                    && c.ringing.as_deref() == Some(agent.as_str())
                {
                    c.ringing = None;
                    if c.waiting_ring.as_deref() == Some(agent.as_str()) {
                        c.waiting_ring = None; // never rung: nothing to cancel
                    } else {
                        let _ = self.gw.disconnect_seat(&call_id).await;
                    }
                }
            }
            AcdCommand::Bridge { call_id, .. } => {
                // The media task stopped the hold music when the seat answered.
                if let Some(c) = self.calls.get_mut(&call_id) {
                    c.moh = None;
                    c.announcing = None;
                }
            }
            AcdCommand::Release { call_id, prompts } => {
                let Some(c) = self.calls.get_mut(&call_id) else {
                    return;
                };
                c.next_local += 1;
                let id = playback_id(c.generation, c.next_local);
                c.moh = None;
                c.announcing = None;
                c.release = Some(id);
                let _ = self.gw.stop_playback(&call_id).await;
                self.play(&call_id, id, &prompts).await;
            }
            AcdCommand::StartSurvey { call_id, agent } => {
                self.start_survey(&call_id, agent).await;
                self.pump_call(&call_id).await;
            }
        }
    }
}
