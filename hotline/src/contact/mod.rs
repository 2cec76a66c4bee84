//! The contact-centre runtime: one task that drives the `ivr` crate's engines — an
//! [`IvrSession`] per caller, the [`Acd`] for queues and agents, a [`Survey`] after the
//! agent hangs up — on the calls the SIP gateway answers for it ([`AppEvent`]s in, gateway
//! commands out), and stores what happened (call facts, callbacks, surveys) in the CRM.
//!
//! The engines are sans-IO; this task is their driver: it feeds them events with `now`,
//! drains their commands after every input, and sleeps until the earliest engine deadline.
//! A call's phase decides which engine hears its digits and playback completions:
//! `Ivr` → (enqueue) `Queued` → (agent answers) `Bridged` → (agent hangs up) `Survey`.
//! Playback ids carry the phase's generation in their upper 32 bits, so a completion that
//! arrives after a phase change is recognised as stale and ignored.

pub mod data;
pub mod prompts;
mod runtime;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use hotline_ivr::flow::default_flow;
use hotline_ivr::{AcdConfig, Flow, SurveyConfig};
use hotline_sip_gateway::MediaClip;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use runtime::{ContactDeps, start};

/// `[ivr]`: the call flow, its prompts, the queues and the survey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IvrConfig {
    /// The flow file (TOML, docs/ivr.md); empty: the built-in default hotline flow.
    pub flow: String,
    /// Prompt directory holding `<name>.wav` (or MP3/OGG/FLAC) per prompt; empty: the
    /// built-in Mandarin set.
    pub prompts_dir: String,
    /// The trunk peer (by name) whose calls are 12345 transfers: they skip the menu and
    /// queue with priority.
    pub transfer_peer: String,
    pub acd: AcdConfig,
    pub survey: SurveyConfig,
}

impl Default for IvrConfig {
    fn default() -> Self {
        Self {
            flow: String::new(),
            prompts_dir: String::new(),
            transfer_peer: "12345".into(),
            acd: AcdConfig::default(),
            survey: SurveyConfig::default(),
        }
    }
}

/// The flow and the prompts it plays, loaded and checked together; replaced as a unit on
/// reload (calls in progress keep the flow they started with).
#[derive(Clone)]
pub struct Library {
    pub flow: Arc<Flow>,
    pub clips: Arc<HashMap<String, MediaClip>>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("flow", &self.flow.name())
            .field("prompts", &self.clips.len())
            .finish()
    }
}

/// Why the flow or the prompts could not be loaded (the message names the file).
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("{0}")]
    Flow(String),
    #[error("{0}")]
    Prompts(String),
}

impl Library {
    /// Loads the prompts (every one decoded and encoded once; the uploaded replacements in
    /// `custom` over the built-in set) and the flow, validated against the prompts that
    /// exist. `base` resolves relative paths.
    pub fn load(cfg: &IvrConfig, base: &Path, custom: &Path) -> Result<Library, LibraryError> {
        Self::load_with(cfg, base, custom, None)
    }

    /// [`Library::load`] as it will be after `change`, which is not yet on disk: the
    /// library is built and checked first, the file written only when it loads.
    pub fn load_with(
        cfg: &IvrConfig,
        base: &Path,
        custom: &Path,
        change: Option<&prompts::PromptChange>,
    ) -> Result<Library, LibraryError> {
        let resolve = |p: &str| {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let source = prompts::PromptSource::new(cfg, base)?;
        let mut overrides =
            prompts::CustomPrompts::new(custom.to_path_buf()).load(source.catalog())?;
        match change {
            Some(prompts::PromptChange::Replace { name, pcm }) => {
                overrides.insert(name.clone(), pcm.clone());
            }
            Some(prompts::PromptChange::Revert { name }) => {
                overrides.remove(name);
            }
            None => {}
        }
        let catalog = source.catalog();
        let audio = source.builtin_audio()?;
        let flow = if cfg.flow.is_empty() {
            default_flow()
        } else {
            hotline_ivr::load_flow_file(&resolve(&cfg.flow), Some(catalog))
                .map_err(|e| LibraryError::Flow(e.to_string()))?
        };
        let pcm_of = |n: &str| overrides.get(n).cloned().or_else(|| audio.get(n));
        // The queue and survey prompts must exist too.
        let mut missing: Vec<String> = hotline_ivr::queue::ACD_PROMPTS
            .iter()
            .copied()
            .chain(cfg.survey.prompt_names())
            .chain(cfg.acd.queues.iter().map(|q| q.moh.as_str()))
            .filter(|n| pcm_of(n).is_none())
            .map(str::to_string)
            .collect();
        missing.dedup();
        if !missing.is_empty() {
            return Err(LibraryError::Prompts(format!(
                "prompts used by the queues or the survey are missing: {}",
                missing.join(", ")
            )));
        }
        let clips = audio
            .names()
            .filter_map(|n| Some((n.to_string(), MediaClip::from_pcm(n, pcm_of(n)?))))
            .collect();
        Ok(Library {
            flow: Arc::new(flow),
            clips: Arc::new(clips),
        })
    }
}

/// An agent action refused by the ACD (unknown agent or queue, wrong state).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AgentError(pub String);

pub(crate) enum Request {
    Login {
        agent: String,
        queues: Vec<String>,
        reply: oneshot::Sender<Result<(), AgentError>>,
    },
    Ready {
        agent: String,
        reply: oneshot::Sender<Result<(), AgentError>>,
    },
    NotReady {
        agent: String,
        reason: String,
        reply: oneshot::Sender<Result<(), AgentError>>,
    },
    Logout {
        agent: String,
        reply: oneshot::Sender<Result<(), AgentError>>,
    },
    Snapshot {
        reply: oneshot::Sender<serde_json::Value>,
    },
    TransferToQueue {
        call_id: String,
        queue: String,
        reply: oneshot::Sender<Result<(), AgentError>>,
    },
    Reload {
        library: Library,
        reply: oneshot::Sender<()>,
    },
}

/// A handle on the running contact centre (cheap to clone).
#[derive(Debug, Clone)]
pub struct ContactCentre {
    tx: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Request")
    }
}

fn stopped() -> AgentError {
    AgentError("呼叫中心服务已停止".into())
}

impl ContactCentre {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// The agent logs in to `queues` and is ready at once (the ACD's rule).
    pub async fn login(&self, agent: &str, queues: Vec<String>) -> Result<(), AgentError> {
        let agent = agent.to_string();
        self.ask(|reply| Request::Login {
            agent,
            queues,
            reply,
        })
        .await
        .unwrap_or_else(|| Err(stopped()))
    }

    pub async fn ready(&self, agent: &str) -> Result<(), AgentError> {
        let agent = agent.to_string();
        self.ask(|reply| Request::Ready { agent, reply })
            .await
            .unwrap_or_else(|| Err(stopped()))
    }

    pub async fn not_ready(&self, agent: &str, reason: &str) -> Result<(), AgentError> {
        let (agent, reason) = (agent.to_string(), reason.to_string());
        self.ask(|reply| Request::NotReady {
            agent,
            reason,
            reply,
        })
        .await
        .unwrap_or_else(|| Err(stopped()))
    }

    pub async fn logout(&self, agent: &str) -> Result<(), AgentError> {
        let agent = agent.to_string();
        self.ask(|reply| Request::Logout { agent, reply })
            .await
            .unwrap_or_else(|| Err(stopped()))
    }

    /// Queues and agents now: `{"queues": [...], "agents": [...], "calls": n}`.
    pub async fn snapshot(&self) -> Option<serde_json::Value> {
        self.ask(|reply| Request::Snapshot { reply }).await
    }

    /// The agent hands a connected caller to `queue` (转接): the agent's leg is released and
    /// wraps up, the caller waits in that queue (music on hold) for the next agent.
    pub async fn transfer_to_queue(&self, call_id: &str, queue: &str) -> Result<(), AgentError> {
        let (call_id, queue) = (call_id.to_string(), queue.to_string());
        self.ask(|reply| Request::TransferToQueue {
            call_id,
            queue,
            reply,
        })
        .await
        .unwrap_or_else(|| Err(stopped()))
    }

    /// Switches new calls to `library`.
    pub async fn reload(&self, library: Library) -> bool {
        self.ask(|reply| Request::Reload { library, reply })
            .await
            .is_some()
    }
}
