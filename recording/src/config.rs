//! The recording configuration: where recordings and their backups live, how long they are
//! kept, how often the WAV header is rewritten, how much the writer may queue, who may hear
//! what, and the QA review form.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::qa::Criterion;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Record every answered call. Off only where recording is not allowed (or to measure
    /// what it costs); playback and QA of earlier recordings keep working.
    pub enabled: bool,
    /// Archive root; recordings go to `<root>/YYYY/MM/DD/<call-id>.wav`. Empty: the
    /// `recordings` directory inside the data directory.
    pub root: PathBuf,
    /// Second copy of every finished recording, same layout. Empty: no backup.
    pub backup_path: PathBuf,
    /// Recordings older than this many days are deleted (with an audit entry). 0: keep all.
    pub retention_days: u32,
    /// The WAV header is rewritten after at most this many milliseconds of audio, so that a
    /// crash leaves a playable file.
    pub header_interval_ms: u32,
    /// Frames (20 ms each) queued per call between the RTP path and the writer; beyond that
    /// frames are dropped and counted, never waited for.
    pub queue_frames: usize,
    /// How long a media position waits for late audio before it is written.
    pub jitter_window_ms: u32,
    /// Agents may list and hear recordings of their own calls.
    pub agents_see_own: bool,
    /// Percentage of each agent's calls put into the review queue every week.
    pub weekly_sample_percent: u32,
    /// The review form: weighted criteria scored 0–100.
    pub criteria: Vec<Criterion>,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            root: PathBuf::new(),
            backup_path: PathBuf::new(),
            retention_days: 0,
            header_interval_ms: 2_000,
            queue_frames: 500,
            jitter_window_ms: 200,
            agents_see_own: true,
            weekly_sample_percent: 5,
            criteria: crate::qa::default_criteria(),
        }
    }
}

impl RecordingConfig {
    /// Fills in the paths that default to places inside the data directory.
    pub fn resolved(mut self, data_dir: &Path) -> Self {
        if self.root.as_os_str().is_empty() {
            self.root = data_dir.join("recordings");
        }
        self
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(100..=2_000).contains(&self.header_interval_ms) {
            return Err(format!(
                "recording.header_interval_ms = {} must be between 100 and 2000",
                self.header_interval_ms
            ));
        }
        if !(10..=100_000).contains(&self.queue_frames) {
            return Err(format!(
                "recording.queue_frames = {} must be between 10 and 100000",
                self.queue_frames
            ));
        }
        if self.jitter_window_ms > 2_000 {
            return Err("recording.jitter_window_ms must be at most 2000".into());
        }
        if self.weekly_sample_percent > 100 {
            return Err("recording.weekly_sample_percent must be at most 100".into());
        }
        if !self.backup_path.as_os_str().is_empty()
            && !self.root.as_os_str().is_empty()
            && self.backup_path == self.root
        {
            return Err("recording.backup_path must differ from recording.root".into());
        }
        crate::qa::validate_criteria(&self.criteria)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_resolve_under_the_data_dir() {
        let c = RecordingConfig::default();
        c.validate().unwrap();
        let r = c.resolved(Path::new("/data"));
        assert_eq!(r.root, PathBuf::from("/data/recordings"));
        r.validate().unwrap();
    }

    #[test]
    fn rejects_bad_values() {
        let mut c = RecordingConfig {
            header_interval_ms: 5_000,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().contains("header_interval_ms"));
        c.header_interval_ms = 1_000;
        c.root = "/a".into();
        c.backup_path = "/a".into();
        assert!(c.validate().is_err());
        c.backup_path = "/b".into();
        c.criteria[0].weight = 0;
        c.criteria.iter_mut().for_each(|x| x.weight = 0);
        assert!(c.validate().is_err());
    }

    #[test]
    fn parses_from_toml_like_json() {
        let c: RecordingConfig =
            serde_json::from_str(r#"{"root":"/rec","retention_days":180}"#).unwrap();
        assert_eq!(c.retention_days, 180);
        assert_eq!(c.header_interval_ms, 2_000);
        assert!(serde_json::from_str::<RecordingConfig>(r#"{"nope":1}"#).is_err());
    }
}
