//! What one sample reads, and the pure checks that turn readings into conditions. Each
//! source is read with a time limit; a source that cannot be read (the gateway or the
//! contact centre not running, a call timing out) is left out of the sample, which changes
//! nothing in the engine (see [`super::AlertEngine::handle_sample`]) — except the database,
//! whose failure to answer is itself the condition.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hotline_core::UnixMillis;
use hotline_core::metrics::Registry;
use hotline_sip_gateway::{GatewayHandle, GatewayHealth};
use serde::Deserialize;

use super::engine::Rule;
use super::store;
use crate::config::Config;
use crate::contact::ContactCentre;
use crate::db::Db;

/// How long one source may take to answer.
const READ_LIMIT: Duration = Duration::from_secs(3);

/// What one round of sampling found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Level rules that were read: every subject whose condition holds, with its message.
    pub levels: Vec<(Rule, Vec<(String, String)>)>,
    /// Failures of event rules since the previous sample: (rule, subject, message).
    pub occurrences: Vec<(Rule, String, String)>,
}

/// A queue as the contact centre's snapshot shows it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct QueueView {
    pub name: String,
    pub waiting: usize,
    pub longest_wait_ms: u64,
    pub agents_ready: usize,
}

/// An agent as the snapshot shows it; the agent's id is the seat number.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AgentView {
    pub agent: String,
    pub state: AgentStateView,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AgentStateView {
    pub state: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
struct Snapshot {
    #[serde(default)]
    queues: Vec<QueueView>,
    #[serde(default)]
    agents: Vec<AgentView>,
}

/// Queues where callers have waited at least `min_wait_ms` and no agent is ready.
pub fn waiting_without_agents(queues: &[QueueView], min_wait_ms: u64) -> Vec<(String, String)> {
    queues
        .iter()
        .filter(|q| q.waiting > 0 && q.agents_ready == 0 && q.longest_wait_ms >= min_wait_ms)
        .map(|q| {
            (
                q.name.clone(),
                format!(
                    "队列“{}”有 {} 位来电人在等待（最长 {} 秒），没有空闲坐席",
                    q.name,
                    q.waiting,
                    q.longest_wait_ms / 1000
                ),
            )
        })
        .collect()
}

/// Seats of logged-in agents (any state but offline) that have no reachable registration.
/// Seats without a logged-in agent are not watched: an empty seat after a shift is normal.
pub fn unreachable_seats(agents: &[AgentView], health: &GatewayHealth) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = agents
        .iter()
        .filter(|a| a.state.state != "offline")
        .filter(|a| {
            !health
                .seats
                .iter()
                .any(|s| s.seat == a.agent && s.reachable)
        })
        .map(|a| {
            let registered = health.seats.iter().any(|s| s.seat == a.agent);
            let why = if registered {
                "话机不响应 OPTIONS 探测"
            } else {
                "话机未注册"
            };
            (
                a.agent.clone(),
                format!("坐席 {} 已签入，但分机不可达（{why}）", a.agent),
            )
        })
        .collect();
    out.sort();
    out
}

/// Trunk peers whose latest keepalive went unanswered.
pub fn peers_down(health: &GatewayHealth) -> Vec<(String, String)> {
    health
        .peers
        .iter()
        .filter(|p| p.up == Some(false))
        .map(|p| {
            (
                p.name.clone(),
                format!("中继 {} 不响应 OPTIONS 保活探测", p.name),
            )
        })
        .collect()
}

/// Whether a file system with `available` of `total` bytes free is below a threshold (a
/// zero threshold is not checked); the message says how much is left.
pub fn disk_low(
    path: &str,
    available: u64,
    total: u64,
    min_percent: u32,
    min_mb: u64,
) -> Option<String> {
    const MIB: u64 = 1024 * 1024;
    let percent_low = min_percent > 0
        && total > 0
        && u128::from(available) * 100 < u128::from(total) * u128::from(min_percent);
    let mb_low = min_mb > 0 && available < min_mb.saturating_mul(MIB);
    (percent_low || mb_low).then(|| {
        let pct = if total > 0 {
            available as f64 * 100.0 / total as f64
        } else {
            0.0
        };
        format!(
            "{path} 所在磁盘剩余 {} MB（{pct:.1}%），低于阈值",
            available / MIB
        )
    })
}

/// Counts failures from a counter kept by someone else: the increase since the last look.
#[derive(Debug, Default, Clone, Copy)]
pub struct CounterWatch {
    last: i64,
}

impl CounterWatch {
    pub fn delta(&mut self, value: i64) -> i64 {
        let d = (value - self.last).max(0);
        self.last = value;
        d
    }
}

/// The sources of one server.
#[derive(Debug)]
pub struct Sources {
    pub config: Arc<Config>,
    pub db: Db,
    pub metrics: Registry,
    pub gateway: Option<GatewayHandle>,
    pub contact: Option<ContactCentre>,
    recording_failures: CounterWatch,
    backup_failures: CounterWatch,
}

impl Sources {
    pub fn new(
        config: Arc<Config>,
        db: Db,
        metrics: Registry,
        gateway: Option<GatewayHandle>,
        contact: Option<ContactCentre>,
    ) -> Self {
        Self {
            config,
            db,
            metrics,
            gateway,
            contact,
            recording_failures: CounterWatch::default(),
            backup_failures: CounterWatch::default(),
        }
    }

    /// The directories whose file systems are watched: data, recordings, backup.
    pub fn watched_dirs(&self) -> Vec<PathBuf> {
        let rec = self.config.recording();
        let mut dirs = vec![self.config.data_dir.clone(), rec.root.clone()];
        if !rec.backup_path.as_os_str().is_empty() {
            dirs.push(rec.backup_path.clone());
        }
        dirs.dedup();
        dirs
    }

    pub async fn sample(&mut self, now: UnixMillis) -> Sample {
        let mut s = Sample::default();
        let a = &self.config.alerts;

        s.levels.push((Rule::Database, self.database(now).await));

        let health = match &self.gateway {
            Some(g) => match tokio::time::timeout(READ_LIMIT, g.health()).await {
                Ok(Ok(h)) => Some(h),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "alerts: gateway health not available");
                    None
                }
                Err(_) => {
                    tracing::warn!("alerts: the gateway did not answer within 3 s");
                    None
                }
            },
            None => None,
        };
        if let Some(h) = &health {
            s.levels.push((Rule::TrunkDown, peers_down(h)));
        }

        let snapshot = match &self.contact {
            Some(c) => match tokio::time::timeout(READ_LIMIT, c.snapshot()).await {
                Ok(Some(v)) => serde_json::from_value::<Snapshot>(v)
                    .map_err(|e| tracing::warn!(error = %e, "alerts: ACD snapshot not understood"))
                    .ok(),
                _ => {
                    tracing::warn!("alerts: the contact centre did not answer");
                    None
                }
            },
            None => None,
        };
        if let Some(snap) = &snapshot {
            s.levels.push((
                Rule::CallersWaiting,
                waiting_without_agents(&snap.queues, u64::from(a.waiting_secs) * 1000),
            ));
            if let Some(h) = &health {
                s.levels
                    .push((Rule::SeatUnreachable, unreachable_seats(&snap.agents, h)));
            }
        }

        if let Some(disks) = self.disks().await {
            s.levels.push((Rule::DiskLow, disks));
        }

        // Recording failures: recordings ended `failed` and disk errors while writing.
        let rec = self
            .metrics
            .sum("hotline_recording_finished_total", &[("state", "failed")])
            + self.metrics.sum("hotline_recording_disk_errors_total", &[]);
        let n = self.recording_failures.delta(rec);
        if n > 0 {
            s.occurrences.push((
                Rule::RecordingFailed,
                "recordings".into(),
                format!("录音写入失败 {n} 次（磁盘已满、目录不可写或读写错误），请检查录音目录"),
            ));
        }
        // Backup failures: copies that failed, and runs of the backup job that failed.
        let bak = self
            .metrics
            .sum("hotline_recording_backups_total", &[("result", "failed")])
            + self.metrics.sum("hotline_recording_job_errors_total", &[]);
        let n = self.backup_failures.delta(bak);
        if n > 0 {
            s.occurrences.push((
                Rule::BackupFailed,
                "backup".into(),
                format!("录音备份失败 {n} 次，请检查备份路径"),
            ));
        }
        s
    }

    /// The database answers a query and takes a write, each within the time limit.
    async fn database(&self, now: UnixMillis) -> Vec<(String, String)> {
        let problem = match tokio::time::timeout(READ_LIMIT, self.db.ping()).await {
            Err(_) => Some("数据库 3 秒内无响应".to_string()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "alerts: database ping failed");
                Some("无法连接数据库".to_string())
            }
            Ok(Ok(())) => {
                match tokio::time::timeout(READ_LIMIT, store::probe_write(&self.db.pool, now)).await
                {
                    Err(_) => Some("数据库写入 3 秒内未完成".to_string()),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "alerts: database write probe failed");
                        Some("数据库拒绝写入（磁盘已满或只读？）".to_string())
                    }
                    Ok(Ok(())) => None,
                }
            }
        };
        problem
            .map(|m| vec![("database".to_string(), m)])
            .unwrap_or_default()
    }

    async fn disks(&self) -> Option<Vec<(String, String)>> {
        let a = &self.config.alerts;
        if a.disk_min_free_percent == 0 && a.disk_min_free_mb == 0 {
            return Some(Vec::new());
        }
        let (pct, mb) = (a.disk_min_free_percent, a.disk_min_free_mb);
        let dirs = self.watched_dirs();
        let read = tokio::task::spawn_blocking(move || {
            dirs.iter()
                .filter_map(|d| {
                    let shown = d.display().to_string();
                    match fs4::statvfs(d) {
                        Ok(st) => disk_low(&shown, st.available_space(), st.total_space(), pct, mb)
                            .map(|m| (shown, m)),
                        // A missing directory is /readyz's business (recordings) or made
                        // at start (data); it is not a disk-space alert.
                        Err(e) => {
                            tracing::debug!(path = %shown, error = %e, "alerts: statvfs failed");
                            None
                        }
                    }
                })
                .collect::<Vec<_>>()
        });
        match tokio::time::timeout(READ_LIMIT, read).await {
            Ok(Ok(v)) => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_sip_gateway::{PeerHealth, SeatHealth};

    fn agent(id: &str, state: &str) -> AgentView {
        AgentView {
            agent: id.into(),
            state: AgentStateView {
                state: state.into(),
            },
        }
    }

    #[test]
    fn waiting_callers_count_only_without_ready_agents_and_after_the_threshold() {
        let q = |name: &str, waiting, longest_wait_ms, agents_ready| QueueView {
            name: name.into(),
            waiting,
            longest_wait_ms,
            agents_ready,
        };
        let got = waiting_without_agents(
            &[
                q("hotline", 2, 61_000, 0),
                q("complaints", 1, 59_000, 0),
                q("vip", 3, 120_000, 1),
                q("empty", 0, 0, 0),
            ],
            60_000,
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "hotline");
        assert!(got[0].1.contains("2 位来电人"), "{}", got[0].1);
    }

    #[test]
    fn only_seats_of_logged_in_agents_are_watched() {
        let health = GatewayHealth {
            peers: vec![],
            seats: vec![
                SeatHealth {
                    seat: "8001".into(),
                    reachable: true,
                },
                SeatHealth {
                    seat: "8002".into(),
                    reachable: false,
                },
            ],
        };
        let got = unreachable_seats(
            &[
                agent("8001", "ready"),
                agent("8002", "not_ready"),
                agent("8003", "busy"),
                agent("8004", "offline"),
            ],
            &health,
        );
        let seats: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(seats, ["8002", "8003"]);
        assert!(got[0].1.contains("OPTIONS"));
        assert!(got[1].1.contains("未注册"));
    }

    #[test]
    fn peers_down_only_after_an_unanswered_keepalive() {
        let health = GatewayHealth {
            peers: vec![
                PeerHealth {
                    name: "e1".into(),
                    up: Some(false),
                },
                PeerHealth {
                    name: "e2".into(),
                    up: None,
                },
                PeerHealth {
                    name: "e3".into(),
                    up: Some(true),
                },
            ],
            seats: vec![],
        };
        let got = peers_down(&health);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "e1");
    }

    #[test]
    fn disk_thresholds() {
        const GIB: u64 = 1 << 30;
        // 5 GiB of 100 free: under 10 %.
        assert!(disk_low("/d", 5 * GIB, 100 * GIB, 10, 1024).is_some());
        // 20 GiB of 100: fine.
        assert_eq!(disk_low("/d", 20 * GIB, 100 * GIB, 10, 1024), None);
        // 500 MiB of a small disk: under the MiB floor though above 10 %.
        let m = disk_low("/d", 500 << 20, 2 * GIB, 10, 1024).unwrap();
        assert!(m.contains("500 MB"), "{m}");
        // Zero thresholds are not checked.
        assert_eq!(disk_low("/d", 0, 100 * GIB, 0, 0), None);
    }

    #[test]
    fn counter_watch_counts_increases() {
        let mut w = CounterWatch::default();
        assert_eq!(w.delta(0), 0);
        assert_eq!(w.delta(3), 3);
        assert_eq!(w.delta(3), 0);
        assert_eq!(w.delta(4), 1);
    }
}
