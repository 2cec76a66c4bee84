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

use hotline_ivr::flow::{SpecialDay, default_flow};
use hotline_ivr::queue::{AcdError, QueueConfig, Strategy};
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

impl Library {
    /// This library with the administrators' special days merged into the flow's hours (a
    /// day in `days` overrides the flow file's entry for the same date).
    pub fn with_service_days(mut self, days: &[SpecialDay]) -> Library {
        if !days.is_empty() {
            self.flow = Arc::new(self.flow.with_special_days(days));
        }
        self
    }
}

/// [`Library::load`] off the async threads (it decodes every prompt), then the
/// administrators' special days merged in: what start, `POST /api/v1/ivr/reload`, SIGHUP and
/// every calendar change load.
///
/// `custom` is the directory of uploaded prompts; `change` a prompt upload or revert not yet
/// on disk (the library is checked before the file is written).
pub async fn load_library(
    cfg: &IvrConfig,
    custom: std::path::PathBuf,
    change: Option<prompts::PromptChange>,
    days: Vec<SpecialDay>,
) -> Result<Library, LibraryError> {
    let cfg = cfg.clone();
    tokio::task::spawn_blocking(move || {
        Library::load_with(&cfg, Path::new("."), &custom, change.as_ref())
            .map(|lib| lib.with_service_days(&days))
    })
    .await
    .map_err(|e| LibraryError::Flow(format!("loading the flow failed: {e}")))?
}

/// The rules for a queue's settings as the hotline runs them, with zh-CN messages for the
/// console: [`QueueConfig::validate`] (the config file's rules), no ring-all while seats are
/// SIP phones (as the config check says), and, given the running prompts, a music-on-hold
/// prompt that exists.
pub fn check_queue_settings(q: &QueueConfig, library: Option<&Library>) -> Result<(), String> {
    if let Err(e) = q.validate() {
        return Err(match e {
            AcdError::InvalidConfig { field, .. } => match field.as_str() {
                "name" => "队列名只能包含小写字母、数字、_ 和 -".to_string(),
                "callback_key" => "回拨按键须为一个按键（0-9、* 或 #），留空表示不提供回拨".into(),
                "announce_every_ms" => "播报间隔最长 24 小时（86400000 毫秒），0 表示不播报".into(),
                "max_wait_ms" => "最长等待最长 24 小时（86400000 毫秒），0 表示不限".into(),
                "moh" => "请填写等待音乐的提示音名称".into(),
                other => format!("队列设置无效：{other}"),
            },
            other => other.to_string(),
        });
    }
    if q.strategy == Strategy::RingAll {
        return Err("分机为 SIP 话机时暂不支持同时振铃，请选择最长空闲或轮流分配".into());
    }
    if let Some(lib) = library
        && !lib.clips.contains_key(&q.moh)
    {
        return Err(format!("提示音 {:?} 不存在，请先在提示音目录中添加", q.moh));
    }
    Ok(())
}

/// Applies the stored queue edits over the configuration's queues at start. An edit that
/// no longer fits — its queue left the configuration, or its prompt is gone — is skipped
/// with a warning rather than stopping the hotline; the returned lines say which.
pub fn apply_queue_overrides(
    acd: &mut AcdConfig,
    overrides: &[crate::db::admin_settings::QueueOverride],
    library: &Library,
) -> Vec<String> {
    let mut skipped = Vec::new();
    for o in overrides {
        let Some(q) = acd.queues.iter_mut().find(|q| q.name == o.queue) else {
            skipped.push(format!("queue {:?} is not in the configuration", o.queue));
            continue;
        };
        let edited = o.apply(q);
        match check_queue_settings(&edited, Some(library)) {
            Ok(()) => *q = edited,
            Err(why) => skipped.push(format!("queue {:?}: {why}", o.queue)),
        }
    }
    skipped
}

/// Where an agent transfers a connected call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    Queue(String),
    /// An agent id (the seat number they are logged in at).
    Agent(String),
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
    Transfer {
        call_id: String,
        to: TransferTarget,
        reply: oneshot::Sender<Result<(), AgentError>>,
    },
    Hold {
        call_id: String,
        on: bool,
        reply: oneshot::Sender<Result<bool, AgentError>>,
    },
    Reload {
        library: Library,
        reply: oneshot::Sender<()>,
    },
    QueueSettings {
        reply: oneshot::Sender<Vec<QueueConfig>>,
    },
    SetQueue {
        settings: QueueConfig,
        reply: oneshot::Sender<Result<QueueConfig, QueueRefused>>,
    },
}

/// Why the running ACD did not take a queue's new settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueRefused {
    #[error("队列 {0} 不存在")]
    UnknownQueue(String),
    /// The settings break a rule; the text (zh-CN) says which.
    #[error("{0}")]
    Invalid(String),
    #[error("呼叫中心服务已停止")]
    Stopped,
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
    /// Or to one colleague (`TransferTarget::Agent`, who must be ready): rung alone, and
    /// the caller joins the queue first in line when the colleague does not answer.
    pub async fn transfer(&self, call_id: &str, to: TransferTarget) -> Result<(), AgentError> {
        let call_id = call_id.to_string();
        self.ask(|reply| Request::Transfer { call_id, to, reply })
            .await
            .unwrap_or_else(|| Err(stopped()))
    }

    /// Puts the caller of a connected call on hold (music on hold; the agent hears
    /// silence) or takes it back. `Ok(false)` when it already was in that state.
    pub async fn hold(&self, call_id: &str, on: bool) -> Result<bool, AgentError> {
        let call_id = call_id.to_string();
        self.ask(|reply| Request::Hold { call_id, on, reply })
            .await
            .unwrap_or_else(|| Err(stopped()))
    }

    /// Every queue's settings as the ACD runs them now.
    pub async fn queue_settings(&self) -> Option<Vec<QueueConfig>> {
        self.ask(|reply| Request::QueueSettings { reply }).await
    }

    /// Replaces one queue's settings in the running ACD (waiting calls stay; see
    /// [`hotline_ivr::Acd::replace_queue_config`]) after [`check_queue_settings`] with the
    /// running prompts. Returns the settings it had.
    pub async fn set_queue(&self, settings: QueueConfig) -> Result<QueueConfig, QueueRefused> {
        self.ask(|reply| Request::SetQueue { settings, reply })
            .await
            .unwrap_or(Err(QueueRefused::Stopped))
    }

    /// Switches new calls to `library`.
    pub async fn reload(&self, library: Library) -> bool {
        self.ask(|reply| Request::Reload { library, reply })
            .await
            .is_some()
    }
}
