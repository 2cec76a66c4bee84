//! The ACD state machine. See the module docs in `mod.rs` for the rules.

use std::collections::{BTreeMap, HashMap, VecDeque};

use hotline_core::UnixMillis;
use hotline_core::metrics::Registry;

use super::{
    AcdCommand, AcdConfig, AcdError, AcdEvent, AgentSnapshot, AgentState, CallbackReason, EndedBy,
    QueueConfig, QueueSnapshot, QueueStats, Strategy,
};
use crate::prompts::default_text;
use crate::say::{Utterance, say_count};

#[derive(Debug)]
struct Agent {
    queues: Vec<String>,
    state: AgentState,
    /// Since when the agent has been free (end of the last wrap-up, or ready).
    idle_since: UnixMillis,
}

#[derive(Debug)]
struct Waiting {
    call_id: String,
    caller_id: String,
    priority: i32,
    enqueued_at: UnixMillis,
    seq: u64,
    ringing: Vec<String>,
    ring_deadline: Option<UnixMillis>,
    next_announce: Option<UnixMillis>,
    max_wait_at: Option<UnixMillis>,
    /// Transferred to this agent by a colleague: offered to them only, and to the queue
    /// once they do not take it.
    target: Option<String>,
}

#[derive(Debug)]
struct Queue {
    config: QueueConfig,
    /// Ordered: priority descending, then arrival.
    waiting: Vec<Waiting>,
    rr_last: Option<String>,
    stats: QueueStats,
}

#[derive(Debug)]
struct Connected {
    agent: String,
    answered_at: UnixMillis,
}

/// The automatic call distributor for all queues and agents.
#[derive(Debug)]
pub struct Acd {
    config: AcdConfig,
    queues: BTreeMap<String, Queue>,
    agents: BTreeMap<String, Agent>,
    connected: HashMap<String, Connected>,
    seq: u64,
    /// Moving average of talk + wrap-up time, for the expected-wait estimate.
    handle_time_ms: u64,
    commands: VecDeque<AcdCommand>,
    events: VecDeque<AcdEvent>,
}

/// The priority of a caller transferred to a named agent: ahead of every other caller when
/// that agent does not take the call (they have already waited once).
pub const TRANSFER_PRIORITY: i32 = 1_000;

fn wait_ms(now: UnixMillis, since: UnixMillis) -> u64 {
    u64::try_from(now - since).unwrap_or(0)
}

fn state_name(s: &AgentState) -> String {
    match s {
        AgentState::Offline => "offline".into(),
        AgentState::Ready => "ready".into(),
        AgentState::NotReady { reason } => format!("not ready ({reason})"),
        AgentState::Ringing { .. } => "ringing".into(),
        AgentState::Busy { .. } => "busy".into(),
        AgentState::WrapUp { .. } => "in wrap-up".into(),
    }
}

impl Acd {
    pub fn new(config: AcdConfig) -> Self {
        let queues = config
            .queues
            .iter()
            .map(|q| {
                (
                    q.name.clone(),
                    Queue {
                        config: q.clone(),
                        waiting: Vec::new(),
                        rr_last: None,
                        stats: QueueStats::default(),
                    },
                )
            })
            .collect();
        Self {
            handle_time_ms: config.initial_handle_time_ms,
            config,
            queues,
            agents: BTreeMap::new(),
            connected: HashMap::new(),
            seq: 0,
            commands: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn poll_command(&mut self) -> Option<AcdCommand> {
        self.commands.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<AcdEvent> {
        self.events.pop_front()
    }

    /// The earliest ring timeout, announcement, maximum wait or wrap-up end.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        let calls = self.queues.values().flat_map(|q| &q.waiting).flat_map(|w| {
            // While ringing, max wait is checked when the ring ends (never cut a ring).
            let max = if w.ring_deadline.is_some() {
                None
            } else {
                w.max_wait_at
            };
            [w.ring_deadline, w.next_announce, max]
        });
        let agents = self.agents.values().map(|a| match a.state {
            AgentState::WrapUp { until } => Some(until),
            _ => None,
        });
        calls.chain(agents).flatten().min()
    }

    // ---- agents -------------------------------------------------------------------------

    /// An agent logs in on a seat, serving `queues`, and is ready.
    pub fn login(&mut self, now: UnixMillis, agent: &str, queues: &[&str]) -> Result<(), AcdError> {
        for q in queues {
            if !self.queues.contains_key(*q) {
                return Err(AcdError::UnknownQueue((*q).into()));
            }
        }
        if let Some(a) = self.agents.get(agent)
            && a.state != AgentState::Offline
        {
            return Err(AcdError::AgentBusy {
                agent: agent.into(),
                state: state_name(&a.state),
            });
        }
        self.agents.insert(
            agent.to_string(),
            Agent {
                queues: queues.iter().map(|q| q.to_string()).collect(),
                state: AgentState::Offline,
                idle_since: now,
            },
        );
        self.set_state(now, agent, AgentState::Ready);
        self.dispatch(now);
        Ok(())
    }

    /// Logs out; not while on a call. A ringing call goes to the next agent.
    pub fn logout(&mut self, now: UnixMillis, agent: &str) -> Result<(), AcdError> {
        self.leave_ringing(agent)?;
        self.set_state(now, agent, AgentState::Offline);
        self.dispatch(now);
        Ok(())
    }

    /// Ready (also ends wrap-up early).
    pub fn set_ready(&mut self, now: UnixMillis, agent: &str) -> Result<(), AcdError> {
        let a = self.agent(agent)?;
        match a.state {
            AgentState::Ready => return Ok(()),
            AgentState::NotReady { .. } | AgentState::WrapUp { .. } => {}
            ref s => {
                return Err(AcdError::AgentBusy {
                    agent: agent.into(),
                    state: state_name(s),
                });
            }
        }
        self.agents.get_mut(agent).expect("checked").idle_since = now;
        self.set_state(now, agent, AgentState::Ready);
        self.dispatch(now);
        Ok(())
    }

    /// Not ready with a reason (break, meeting, …). A ringing call goes to the next agent;
    /// during wrap-up it replaces the automatic return to ready.
    pub fn set_not_ready(
        &mut self,
        now: UnixMillis,
        agent: &str,
        reason: &str,
    ) -> Result<(), AcdError> {
        self.leave_ringing(agent)?;
        self.set_state(
            now,
            agent,
            AgentState::NotReady {
                reason: reason.into(),
            },
        );
        // The call this agent was ringing for goes to someone else.
        self.dispatch(now);
        Ok(())
    }

    /// An agent stops ringing because of their own action (not-ready, logout); the caller
    /// sets the new state and dispatches.
    fn leave_ringing(&mut self, agent: &str) -> Result<(), AcdError> {
        let a = self.agent(agent)?;
        match &a.state {
            AgentState::Busy { .. } => Err(AcdError::AgentBusy {
                agent: agent.into(),
                state: state_name(&a.state),
            }),
            AgentState::Ringing { call_id } => {
                let call_id = call_id.clone();
                self.stop_ringing_agent(&call_id, agent);
                self.commands.push_back(AcdCommand::CancelRing {
                    call_id,
                    agent: agent.into(),
                });
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn agent(&self, agent: &str) -> Result<&Agent, AcdError> {
        self.agents
            .get(agent)
            .ok_or_else(|| AcdError::UnknownAgent(agent.into()))
    }

    fn set_state(&mut self, now: UnixMillis, agent: &str, state: AgentState) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if a.state == state {
            return;
        }
        a.state = state.clone();
        self.events.push_back(AcdEvent::AgentStateChanged {
            at: now,
            agent: agent.into(),
            state,
        });
    }

    // ---- administration -----------------------------------------------------------------

    /// Replaces one queue's settings while it runs (an administrator's edit). Waiting calls
    /// stay where they are, in the same order; what changed takes effect from now: the next
    /// dispatch uses the new strategy, a changed announcement period restarts each waiting
    /// call's announcement timer, the maximum wait still counts from when each call entered
    /// the queue (so a shorter one may send callers to a callback at the next timeout), and
    /// a new music-on-hold prompt is for calls that enter later. Returns the old settings.
    pub fn replace_queue_config(
        &mut self,
        now: UnixMillis,
        config: QueueConfig,
    ) -> Result<QueueConfig, AcdError> {
        config.validate()?;
        let q = self
            .queues
            .get_mut(&config.name)
            .ok_or_else(|| AcdError::UnknownQueue(config.name.clone()))?;
        let old = std::mem::replace(&mut q.config, config);
        let (every, max) = (q.config.announce_every_ms, q.config.max_wait_ms);
        for w in &mut q.waiting {
            if every != old.announce_every_ms {
                w.next_announce = (every > 0).then(|| now + every as i64);
            }
            w.max_wait_at = (max > 0).then(|| w.enqueued_at + max as i64);
        }
        if let Some(c) = self.config.queues.iter_mut().find(|c| c.name == old.name) {
            *c = q.config.clone();
        }
        self.dispatch(now);
        Ok(old)
    }

    /// One queue's settings as they run now.
    pub fn queue_config(&self, queue: &str) -> Option<&QueueConfig> {
        self.queues.get(queue).map(|q| &q.config)
    }

    // ---- calls --------------------------------------------------------------------------

    /// A call enters a queue (from an IVR `Enqueue` command).
    pub fn enqueue(
        &mut self,
        now: UnixMillis,
        call_id: &str,
        caller_id: &str,
        queue: &str,
        priority: i32,
    ) -> Result<(), AcdError> {
        self.enqueue_for(now, call_id, caller_id, queue, priority, None)
    }

    /// An agent hands the connected call to a colleague (`agent`, who must be ready): the
    /// transferring agent's part ends (wrap-up follows), the caller waits in `queue` offered
    /// to `agent` alone, ahead of everyone ([`TRANSFER_PRIORITY`]), and joins the queue
    /// normally when `agent` does not take it (no answer, unreachable, no longer ready).
    /// Nothing changes when the transfer is refused.
    pub fn transfer_to_agent(
        &mut self,
        now: UnixMillis,
        call_id: &str,
        caller_id: &str,
        queue: &str,
        agent: &str,
    ) -> Result<(), AcdError> {
        let from = self
            .connected
            .get(call_id)
            .ok_or_else(|| AcdError::UnknownCall(call_id.into()))?;
        let state = self
            .agents
            .get(agent)
            .map(|a| &a.state)
            .ok_or_else(|| AcdError::UnknownAgent(agent.into()))?;
        if from.agent == agent {
            return Err(AcdError::AgentBusy {
                agent: agent.into(),
                state: "on this call".into(),
            });
        }
        if *state != AgentState::Ready {
            return Err(AcdError::AgentBusy {
                agent: agent.into(),
                state: state_name(state),
            });
        }
        if !self.queues.contains_key(queue) {
            return Err(AcdError::UnknownQueue(queue.into()));
        }
        self.end_connected(now, call_id, EndedBy::Transfer);
        self.enqueue_for(
            now,
            call_id,
            caller_id,
            queue,
            TRANSFER_PRIORITY,
            Some(agent.into()),
        )
    }

    fn enqueue_for(
        &mut self,
        now: UnixMillis,
        call_id: &str,
        caller_id: &str,
        queue: &str,
        priority: i32,
        target: Option<String>,
    ) -> Result<(), AcdError> {
        if self.find(call_id).is_some() || self.connected.contains_key(call_id) {
            return Err(AcdError::DuplicateCall(call_id.into()));
        }
        let q = self
            .queues
            .get_mut(queue)
            .ok_or_else(|| AcdError::UnknownQueue(queue.into()))?;
        self.seq += 1;
        let every = q.config.announce_every_ms;
        let max = q.config.max_wait_ms;
        let w = Waiting {
            call_id: call_id.into(),
            caller_id: caller_id.into(),
            priority,
            enqueued_at: now,
            seq: self.seq,
            ringing: Vec::new(),
            ring_deadline: None,
            next_announce: (every > 0).then(|| now + every as i64),
            max_wait_at: (max > 0).then(|| now + max as i64),
            target,
        };
        let pos = q
            .waiting
            .iter()
            .position(|o| o.priority < priority)
            .unwrap_or(q.waiting.len());
        q.waiting.insert(pos, w);
        q.stats.offered += 1;
        let moh = q.config.moh.clone();
        self.commands.push_back(AcdCommand::StartMusicOnHold {
            call_id: call_id.into(),
            prompt: moh,
        });
        self.events.push_back(AcdEvent::CallQueued {
            at: now,
            call_id: call_id.into(),
            queue: queue.into(),
            priority,
        });
        self.dispatch(now);
        Ok(())
    }

    /// The agent answered the ring for this call.
    pub fn handle_agent_answered(
        &mut self,
        now: UnixMillis,
        call_id: &str,
        agent: &str,
    ) -> Result<(), AcdError> {
        let not_ringing = || AcdError::NotRinging {
            agent: agent.into(),
            call_id: call_id.into(),
        };
        let (qname, idx) = self.find(call_id).ok_or_else(not_ringing)?;
        let q = self.queues.get_mut(&qname).expect("found");
        if !q.waiting[idx].ringing.iter().any(|a| a == agent) {
            return Err(not_ringing());
        }
        let w = q.waiting.remove(idx);
        let wait = wait_ms(now, w.enqueued_at);
        let within = wait <= self.config.service_level_ms;
        q.stats.answered += 1;
        q.stats.answered_wait_ms += wait;
        if within {
            q.stats.answered_within_sl += 1;
        }
        // Ring-all: the others stop ringing and are free again (they did nothing wrong).
        for other in w.ringing.iter().filter(|a| *a != agent) {
            self.commands.push_back(AcdCommand::CancelRing {
                call_id: call_id.into(),
                agent: other.clone(),
            });
            self.set_state(now, other, AgentState::Ready);
        }
        self.set_state(
            now,
            agent,
            AgentState::Busy {
                call_id: call_id.into(),
            },
        );
        self.connected.insert(
            call_id.into(),
            Connected {
                agent: agent.into(),
                answered_at: now,
            },
        );
        self.commands.push_back(AcdCommand::Bridge {
            call_id: call_id.into(),
            agent: agent.into(),
        });
        self.events.push_back(AcdEvent::CallAnswered {
            at: now,
            call_id: call_id.into(),
            queue: qname,
            agent: agent.into(),
            wait_ms: wait,
            within_service_level: within,
        });
        self.dispatch(now);
        Ok(())
    }

    /// The seat rejected or could not be reached: like a ring timeout, the agent is set
    /// not-ready with `reason` and the call goes on to the next agent.
    pub fn handle_ring_failed(
        &mut self,
        now: UnixMillis,
        call_id: &str,
        agent: &str,
        reason: &str,
    ) -> Result<(), AcdError> {
        let (qname, idx) = self.find(call_id).ok_or_else(|| AcdError::NotRinging {
            agent: agent.into(),
            call_id: call_id.into(),
        })?;
        if !self.queues[&qname].waiting[idx]
            .ringing
            .iter()
            .any(|a| a == agent)
        {
            return Err(AcdError::NotRinging {
                agent: agent.into(),
                call_id: call_id.into(),
            });
        }
        self.no_answer(now, &qname, call_id, agent, reason, false);
        self.after_ring_ended(now, call_id);
        self.dispatch(now);
        Ok(())
    }

    /// The caller hung up: abandoned if waiting, or the end of a connected call.
    pub fn handle_caller_hangup(&mut self, now: UnixMillis, call_id: &str) -> Result<(), AcdError> {
        if self.connected.contains_key(call_id) {
            self.end_connected(now, call_id, EndedBy::Caller);
            return Ok(());
        }
        let (qname, idx) = self
            .find(call_id)
            .ok_or_else(|| AcdError::UnknownCall(call_id.into()))?;
        let q = self.queues.get_mut(&qname).expect("found");
        let w = q.waiting.remove(idx);
        let wait = wait_ms(now, w.enqueued_at);
        q.stats.abandoned += 1;
        q.stats.abandoned_wait_ms += wait;
        for agent in &w.ringing {
            self.commands.push_back(AcdCommand::CancelRing {
                call_id: call_id.into(),
                agent: agent.clone(),
            });
            self.set_state(now, agent, AgentState::Ready);
        }
        self.events.push_back(AcdEvent::CallAbandoned {
            at: now,
            call_id: call_id.into(),
            queue: qname,
            wait_ms: wait,
        });
        self.dispatch(now);
        Ok(())
    }

    /// The agent hung up a connected call first: the caller gets the survey.
    pub fn handle_agent_hangup(&mut self, now: UnixMillis, call_id: &str) -> Result<(), AcdError> {
        if !self.connected.contains_key(call_id) {
            return Err(AcdError::UnknownCall(call_id.into()));
        }
        self.end_connected(now, call_id, EndedBy::Agent);
        Ok(())
    }

    /// The agent transferred the call away: it leaves the ACD, the agent wraps up.
    pub fn handle_transferred(&mut self, now: UnixMillis, call_id: &str) -> Result<(), AcdError> {
        if !self.connected.contains_key(call_id) {
            return Err(AcdError::UnknownCall(call_id.into()));
        }
        self.end_connected(now, call_id, EndedBy::Transfer);
        Ok(())
    }

    /// A DTMF digit from a waiting caller: the callback key leaves the queue with a
    /// callback request. Other digits are ignored.
    pub fn handle_digit(
        &mut self,
        now: UnixMillis,
        call_id: &str,
        digit: char,
    ) -> Result<(), AcdError> {
        let (qname, idx) = self
            .find(call_id)
            .ok_or_else(|| AcdError::UnknownCall(call_id.into()))?;
        let q = &self.queues[&qname];
        if q.config.callback_key.starts_with(digit) && !q.waiting[idx].caller_id.is_empty() {
            self.callback(now, &qname, call_id, CallbackReason::Key);
            self.dispatch(now);
        }
        Ok(())
    }

    pub fn handle_timeout(&mut self, now: UnixMillis) {
        // Wrap-up ends.
        let done: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, a)| matches!(a.state, AgentState::WrapUp { until } if until <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in done {
            self.agents.get_mut(&id).expect("listed").idle_since = now;
            self.set_state(now, &id, AgentState::Ready);
        }
        // Ring timeouts: RONA.
        let mut rona = Vec::new();
        let mut max_wait = Vec::new();
        let mut announce = Vec::new();
        for (qname, q) in &self.queues {
            for w in &q.waiting {
                if w.ring_deadline.is_some_and(|d| d <= now) {
                    rona.push((qname.clone(), w.call_id.clone(), w.ringing.clone()));
                }
            }
        }
        for (qname, call_id, agents) in rona {
            for agent in agents {
                self.no_answer(now, &qname, &call_id, &agent, "no answer", true);
            }
            self.after_ring_ended(now, &call_id);
        }
        for (qname, q) in &self.queues {
            for w in &q.waiting {
                if w.ring_deadline.is_none() && w.max_wait_at.is_some_and(|d| d <= now) {
                    max_wait.push((qname.clone(), w.call_id.clone()));
                } else if w.next_announce.is_some_and(|d| d <= now) {
                    announce.push(w.call_id.clone());
                }
            }
        }
        for (qname, call_id) in max_wait {
            self.callback(now, &qname, &call_id, CallbackReason::MaxWait);
        }
        for call_id in announce {
            self.announce(now, &call_id);
        }
        self.dispatch(now);
    }

    // ---- internals ----------------------------------------------------------------------

    fn find(&self, call_id: &str) -> Option<(String, usize)> {
        self.queues.iter().find_map(|(name, q)| {
            q.waiting
                .iter()
                .position(|w| w.call_id == call_id)
                .map(|i| (name.clone(), i))
        })
    }

    fn waiting_mut(&mut self, call_id: &str) -> Option<&mut Waiting> {
        self.queues
            .values_mut()
            .flat_map(|q| q.waiting.iter_mut())
            .find(|w| w.call_id == call_id)
    }

    /// One agent did not take the call: cancel their ring, not-ready(reason).
    fn no_answer(
        &mut self,
        now: UnixMillis,
        _queue: &str,
        call_id: &str,
        agent: &str,
        reason: &str,
        cancel: bool,
    ) {
        self.stop_ringing_agent(call_id, agent);
        if cancel {
            self.commands.push_back(AcdCommand::CancelRing {
                call_id: call_id.into(),
                agent: agent.into(),
            });
        }
        self.set_state(
            now,
            agent,
            AgentState::NotReady {
                reason: reason.into(),
            },
        );
        self.events.push_back(AcdEvent::RingNoAnswer {
            at: now,
            call_id: call_id.into(),
            agent: agent.into(),
            reason: reason.into(),
        });
    }

    /// Removes `agent` from the call's ringing set and clears the ring timer when nobody
    /// rings any more. The caller sends `CancelRing` if needed and sets the agent's new state
    /// (this leaves it `Ready` without an event, to be overridden at once).
    fn stop_ringing_agent(&mut self, call_id: &str, agent: &str) {
        if let Some(w) = self.waiting_mut(call_id) {
            w.ringing.retain(|a| a != agent);
            if w.ringing.is_empty() {
                w.ring_deadline = None;
            }
        }
        if let Some(a) = self.agents.get_mut(agent)
            && matches!(&a.state, AgentState::Ringing { call_id: c } if c == call_id)
        {
            // Back to ready for a voluntary stop; callers that penalise override it.
            a.state = AgentState::Ready;
        }
    }

    /// After a ring ended without answer: a call past its maximum wait leaves now.
    fn after_ring_ended(&mut self, now: UnixMillis, call_id: &str) {
        let Some((qname, idx)) = self.find(call_id) else {
            return;
        };
        let w = &mut self.queues.get_mut(&qname).expect("found").waiting[idx];
        // The colleague it was transferred to did not take it: it is the queue's now.
        w.target = None;
        if w.ringing.is_empty() && w.max_wait_at.is_some_and(|d| d <= now) {
            self.callback(now, &qname, call_id, CallbackReason::MaxWait);
        }
    }

    fn callback(&mut self, now: UnixMillis, qname: &str, call_id: &str, reason: CallbackReason) {
        let Some((_, idx)) = self.find(call_id) else {
            return;
        };
        let q = self.queues.get_mut(qname).expect("queue of a waiting call");
        let w = q.waiting.remove(idx);
        q.stats.callbacks += 1;
        for agent in &w.ringing {
            self.commands.push_back(AcdCommand::CancelRing {
                call_id: call_id.into(),
                agent: agent.clone(),
            });
            self.set_state(now, agent, AgentState::Ready);
        }
        let prompt = match reason {
            CallbackReason::MaxWait => "q/max_wait",
            CallbackReason::Key => "msg/callback_recorded",
        };
        self.commands.push_back(AcdCommand::Release {
            call_id: call_id.into(),
            prompts: vec![prompt.into(), "msg/goodbye".into()],
        });
        self.events.push_back(AcdEvent::CallbackRequested {
            at: now,
            call_id: call_id.into(),
            queue: qname.into(),
            number: w.caller_id,
            wait_ms: wait_ms(now, w.enqueued_at),
            reason,
        });
    }

    /// 您前面还有3位，预计等待2分钟。如需我们稍后回电，请按1。
    fn announce(&mut self, now: UnixMillis, call_id: &str) {
        let Some((qname, idx)) = self.find(call_id) else {
            return;
        };
        let ready_or_busy = self
            .agents
            .values()
            .filter(|a| a.queues.contains(&qname) && a.state != AgentState::Offline)
            .count()
            .max(1) as u64;
        let handle = self.handle_time_ms;
        let q = self.queues.get_mut(&qname).expect("found");
        let every = q.config.announce_every_ms as i64;
        let offer_callback = !q.config.callback_key.is_empty();
        let w = &mut q.waiting[idx];
        w.next_announce = Some(now + every);
        if !w.ringing.is_empty() {
            return; // an agent's phone is ringing: do not talk over it
        }
        let has_number = !w.caller_id.is_empty();
        let ahead = idx as u64;
        let mut u = Utterance::new();
        if ahead == 0 {
            u.push_phrase("q/please_hold", &default_text("q/please_hold"));
        } else {
            u.push_phrase("q/ahead", &default_text("q/ahead"));
            u.extend(say_count(ahead));
            u.push("word/wei");
        }
        let expected_min = ((ahead + 1) * handle / ready_or_busy)
            .div_ceil(60_000)
            .max(1);
        u.push_phrase("q/expected_wait", &default_text("q/expected_wait"));
        u.extend(say_count(expected_min));
        u.push("word/minutes");
        if offer_callback && has_number && q.config.callback_key == "1" {
            u.push_phrase("q/callback_option", &default_text("q/callback_option"));
        }
        self.commands.push_back(AcdCommand::Announce {
            call_id: call_id.into(),
            prompts: u.prompts,
        });
    }

    fn end_connected(&mut self, now: UnixMillis, call_id: &str, by: EndedBy) {
        let Some(c) = self.connected.remove(call_id) else {
            return;
        };
        let talk = wait_ms(now, c.answered_at);
        // Exponential moving average (1/8) of talk + wrap-up: smooth, no history kept.
        let sample = talk + self.config.wrap_up_ms;
        self.handle_time_ms = (self.handle_time_ms * 7 + sample) / 8;
        if by == EndedBy::Agent {
            self.commands.push_back(AcdCommand::StartSurvey {
                call_id: call_id.into(),
                agent: c.agent.clone(),
            });
        }
        self.events.push_back(AcdEvent::CallEnded {
            at: now,
            call_id: call_id.into(),
            agent: c.agent.clone(),
            by,
            talk_ms: talk,
        });
        // Wrap-up after every call, transfers included, unless the agent already went
        // offline or not-ready meanwhile (those stick).
        if matches!(
            self.agents.get(&c.agent).map(|a| &a.state),
            Some(AgentState::Busy { .. })
        ) {
            let until = now + self.config.wrap_up_ms as i64;
            self.set_state(now, &c.agent, AgentState::WrapUp { until });
        }
    }

    /// Offers waiting calls to ready agents: highest priority first, then arrival, across
    /// all queues (an agent serving two queues takes the more urgent call).
    fn dispatch(&mut self, now: UnixMillis) {
        let mut order: Vec<(bool, i32, u64, String, String, Option<String>)> = self
            .queues
            .iter()
            .flat_map(|(qn, q)| {
                q.waiting
                    .iter()
                    .filter(|w| w.ringing.is_empty())
                    .map(move |w| {
                        let targeted = w.target.is_some();
                        let (prio, seq, call) = (w.priority, w.seq, w.call_id.clone());
                        (targeted, prio, seq, qn.clone(), call, w.target.clone())
                    })
            })
            .collect();
        // Transfers to a named agent first: that agent was checked ready a moment ago and
        // must not be taken by another queue's caller meanwhile.
        order.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        for (_, _, _, qname, call_id, target) in order {
            let picked = match target {
                Some(agent)
                    if self
                        .agents
                        .get(&agent)
                        .is_some_and(|a| a.state == AgentState::Ready) =>
                {
                    vec![agent]
                }
                Some(_) => {
                    // No longer ready: the call is the queue's.
                    if let Some(w) = self.waiting_mut(&call_id) {
                        w.target = None;
                    }
                    self.pick_agents(&qname)
                }
                None => self.pick_agents(&qname),
            };
            if picked.is_empty() {
                continue;
            }
            let deadline = now + self.config.ring_timeout_ms as i64;
            if let Some(w) = self.waiting_mut(&call_id) {
                w.ringing = picked.clone();
                w.ring_deadline = Some(deadline);
            }
            for agent in picked {
                self.set_state(
                    now,
                    &agent,
                    AgentState::Ringing {
                        call_id: call_id.clone(),
                    },
                );
                self.commands.push_back(AcdCommand::Ring {
                    call_id: call_id.clone(),
                    agent: agent.clone(),
                });
                self.events.push_back(AcdEvent::AgentRinging {
                    at: now,
                    call_id: call_id.clone(),
                    agent,
                });
            }
        }
    }

    fn pick_agents(&mut self, qname: &str) -> Vec<String> {
        let ready: Vec<(&String, &Agent)> = self
            .agents
            .iter()
            .filter(|(_, a)| a.state == AgentState::Ready && a.queues.iter().any(|q| q == qname))
            .collect();
        if ready.is_empty() {
            return Vec::new();
        }
        let q = self
            .queues
            .get_mut(qname)
            .expect("dispatching a known queue");
        match q.config.strategy {
            Strategy::LongestIdle => {
                let (id, _) = ready
                    .iter()
                    .min_by(|a, b| a.1.idle_since.cmp(&b.1.idle_since).then(a.0.cmp(b.0)))
                    .expect("non-empty");
                vec![(*id).clone()]
            }
            Strategy::RoundRobin => {
                // BTreeMap order is by id: the first ready agent after the last one offered,
                // wrapping around.
                let next = q
                    .rr_last
                    .as_ref()
                    .and_then(|last| ready.iter().find(|(id, _)| *id > last))
                    .unwrap_or(&ready[0]);
                let id = next.0.clone();
                q.rr_last = Some(id.clone());
                vec![id]
            }
            Strategy::RingAll => ready.iter().map(|(id, _)| (*id).clone()).collect(),
        }
    }

    // ---- observation --------------------------------------------------------------------

    pub fn agent_state(&self, agent: &str) -> Option<&AgentState> {
        self.agents.get(agent).map(|a| &a.state)
    }

    pub fn stats(&self, queue: &str) -> Option<QueueStats> {
        self.queues.get(queue).map(|q| q.stats)
    }

    /// Waiting calls of a queue in service order.
    pub fn waiting(&self, queue: &str) -> Vec<&str> {
        self.queues
            .get(queue)
            .map(|q| q.waiting.iter().map(|w| w.call_id.as_str()).collect())
            .unwrap_or_default()
    }

    pub fn queues_snapshot(&self, now: UnixMillis) -> Vec<QueueSnapshot> {
        self.queues
            .values()
            .map(|q| {
                let members = || {
                    self.agents
                        .values()
                        .filter(|a| a.queues.contains(&q.config.name))
                };
                QueueSnapshot {
                    name: q.config.name.clone(),
                    waiting: q.waiting.len(),
                    longest_wait_ms: q
                        .waiting
                        .iter()
                        .map(|w| wait_ms(now, w.enqueued_at))
                        .max()
                        .unwrap_or(0),
                    agents_ready: members().filter(|a| a.state == AgentState::Ready).count(),
                    agents_logged_in: members().filter(|a| a.state != AgentState::Offline).count(),
                    stats: q.stats,
                    service_level_percent: q.stats.service_level_percent(),
                }
            })
            .collect()
    }

    pub fn agents_snapshot(&self) -> Vec<AgentSnapshot> {
        self.agents
            .iter()
            .map(|(id, a)| AgentSnapshot {
                agent: id.clone(),
                queues: a.queues.clone(),
                state: a.state.clone(),
            })
            .collect()
    }

    /// Writes the queue counters and gauges into the shared metrics registry (call it when
    /// `/metrics` is scraped, or after each event batch).
    pub fn export_metrics(&self, registry: &Registry, now: UnixMillis) {
        let c = |name: &str, help: &str| registry.counter(name, help);
        let offered = c(
            "hotline_acd_calls_offered_total",
            "Calls that entered an ACD queue",
        );
        let answered = c(
            "hotline_acd_calls_answered_total",
            "Queued calls answered by an agent",
        );
        let in_sl = c(
            "hotline_acd_calls_answered_within_sl_total",
            "Queued calls answered within the service-level threshold (20 s)",
        );
        let abandoned = c(
            "hotline_acd_calls_abandoned_total",
            "Callers who hung up while queued",
        );
        let callbacks = c(
            "hotline_acd_callbacks_requested_total",
            "Callers who left a queue with a callback request",
        );
        let waiting = registry.gauge("hotline_acd_calls_waiting", "Calls waiting in a queue");
        let longest = registry.gauge(
            "hotline_acd_longest_wait_seconds",
            "Wait of the longest-waiting call in a queue",
        );
        for s in self.queues_snapshot(now) {
            let l = [("queue", s.name.as_str())];
            offered.with(&l).set(s.stats.offered as i64);
            answered.with(&l).set(s.stats.answered as i64);
            in_sl.with(&l).set(s.stats.answered_within_sl as i64);
            abandoned.with(&l).set(s.stats.abandoned as i64);
            callbacks.with(&l).set(s.stats.callbacks as i64);
            waiting.with(&l).set(s.waiting as i64);
            longest.with(&l).set((s.longest_wait_ms / 1000) as i64);
        }
        let agents = registry.gauge("hotline_acd_agents", "Agents by state");
        for state in [
            "offline",
            "ready",
            "not_ready",
            "ringing",
            "busy",
            "wrap_up",
        ] {
            let n = self
                .agents
                .values()
                .filter(|a| {
                    state
                        == match a.state {
                            AgentState::Offline => "offline",
                            AgentState::Ready => "ready",
                            AgentState::NotReady { .. } => "not_ready",
                            AgentState::Ringing { .. } => "ringing",
                            AgentState::Busy { .. } => "busy",
                            AgentState::WrapUp { .. } => "wrap_up",
                        }
                })
                .count();
            agents.with(&[("state", state)]).set(n as i64);
        }
    }
}
