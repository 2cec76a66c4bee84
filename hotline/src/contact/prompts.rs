//! The prompt set as administrators manage it: the built-in recordings (the Mandarin set
//! compiled into the binary, or `ivr.prompts_dir`) with uploaded replacements on top.
//!
//! A replacement is an 8 kHz mono WAV at `<data_dir>/prompts/custom/<name>.wav`, written
//! whole to a temporary file, synced and renamed into place, so a reader (a reload, a
//! restart after a crash) finds the old file or the new one, never a part. The files are
//! the truth: there is no table to disagree with them; who uploaded what is in the audit
//! log. [`super::Library::load`] lays them over the built-in set.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hotline_core::Rng;
use hotline_ivr::audio::{PromptAudio, decode_to_8k_mono, wav_bytes, wav_duration_ms};
use hotline_ivr::prompts::{DEFAULT_ZH_CN_FILES, PromptCatalog};
use serde::Serialize;

use super::{IvrConfig, LibraryError};

/// Where uploaded prompt recordings live under the data directory.
pub fn custom_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("prompts").join("custom")
}

/// Where the built-in recordings come from.
#[derive(Debug, Clone)]
enum BuiltIn {
    /// The default set compiled into the binary.
    Embedded,
    /// `ivr.prompts_dir`, resolved.
    Dir(PathBuf),
}

/// The prompt names of the configured set and where their built-in audio is.
#[derive(Debug, Clone)]
pub struct PromptSource {
    catalog: PromptCatalog,
    builtin: BuiltIn,
}

impl PromptSource {
    /// The configured set (`base` resolves a relative `prompts_dir`).
    pub fn new(cfg: &IvrConfig, base: &Path) -> Result<Self, LibraryError> {
        if cfg.prompts_dir.is_empty() {
            return Ok(Self {
                catalog: PromptCatalog::default_zh_cn(),
                builtin: BuiltIn::Embedded,
            });
        }
        let p = Path::new(&cfg.prompts_dir);
        let dir = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        };
        let catalog = PromptCatalog::from_dir(&dir)
            .map_err(|e| LibraryError::Prompts(format!("{}: {e}", dir.display())))?;
        Ok(Self {
            catalog,
            builtin: BuiltIn::Dir(dir),
        })
    }

    pub fn catalog(&self) -> &PromptCatalog {
        &self.catalog
    }

    /// Every built-in prompt decoded (what [`super::Library::load`] plays when nothing is
    /// uploaded).
    pub fn builtin_audio(&self) -> Result<PromptAudio, LibraryError> {
        match &self.builtin {
            BuiltIn::Embedded => PromptAudio::load_default_zh_cn(),
            BuiltIn::Dir(dir) => PromptAudio::load(dir, &self.catalog),
        }
        .map_err(|e| LibraryError::Prompts(e.to_string()))
    }

    /// The built-in recording of `name` as a WAV file a browser plays: the embedded file as
    /// it is (already 8 kHz mono), a file of `prompts_dir` as callers hear it (decoded).
    pub fn builtin_wav(&self, name: &str) -> Result<Vec<u8>, LibraryError> {
        match &self.builtin {
            BuiltIn::Embedded => embedded(name)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| LibraryError::Prompts(format!("no built-in prompt {name}"))),
            BuiltIn::Dir(dir) => {
                let path = dir.join(PromptCatalog::relative_path(name));
                decode_to_8k_mono(&path)
                    .map(|pcm| wav_bytes(&pcm))
                    .map_err(|e| LibraryError::Prompts(e.to_string()))
            }
        }
    }

    /// The built-in recording's length, from the WAV header (no decoding).
    fn builtin_ms(&self, name: &str) -> Option<u64> {
        match &self.builtin {
            BuiltIn::Embedded => embedded(name).and_then(wav_duration_ms),
            BuiltIn::Dir(dir) => std::fs::read(dir.join(PromptCatalog::relative_path(name)))
                .ok()
                .and_then(|b| wav_duration_ms(&b)),
        }
    }
}

fn embedded(name: &str) -> Option<&'static [u8]> {
    DEFAULT_ZH_CN_FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
}

/// One prompt as the console lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PromptEntry {
    pub name: String,
    /// What the prompt says ("" for music and for sets without a manifest).
    pub text: String,
    /// The length of what callers hear now.
    pub duration_ms: Option<u64>,
    /// `builtin` or `uploaded`.
    pub source: &'static str,
    /// When the replacement was stored (ms since the epoch); `None` for the built-in one.
    pub updated_at: Option<i64>,
    /// The built-in recording's length (shown beside a replacement).
    pub builtin_duration_ms: Option<u64>,
}

/// A change a reload is to see before it is written (so that a library that would not load
/// is refused before anything on disk changes).
#[derive(Debug, Clone)]
pub enum PromptChange {
    /// `name` plays this 8 kHz PCM.
    Replace { name: String, pcm: Arc<[i16]> },
    /// `name` plays its built-in recording again.
    Revert { name: String },
}

/// The uploaded replacements in one directory.
#[derive(Debug, Clone)]
pub struct CustomPrompts {
    dir: PathBuf,
}

impl CustomPrompts {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(PromptCatalog::relative_path(name))
    }

    /// Whether `name` has a replacement, and when it was stored.
    pub fn stored_at(&self, name: &str) -> Option<i64> {
        let meta = std::fs::metadata(self.path(name)).ok()?;
        let at = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Some(at)
    }

    /// The stored WAV of `name`'s replacement, if any.
    pub fn read(&self, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Decodes the replacement of every name in `catalog` that has one. Files for names
    /// the catalogue does not know (a prompt set changed since) are left alone and ignored.
    pub fn load(
        &self,
        catalog: &PromptCatalog,
    ) -> Result<BTreeMap<String, Arc<[i16]>>, LibraryError> {
        let mut out = BTreeMap::new();
        if !self.dir.exists() {
            return Ok(out);
        }
        for name in catalog.names() {
            let path = self.path(name);
            if path.exists() {
                let pcm = decode_to_8k_mono(&path)
                    .map_err(|e| LibraryError::Prompts(format!("uploaded prompt: {e}")))?;
                out.insert(name.to_string(), pcm.into());
            }
        }
        Ok(out)
    }

    /// Stores `wav` as `name`'s replacement, atomically: a temporary file in the same
    /// directory, written and synced, then renamed over the old one, then the directory
    /// synced so that the rename survives a power cut.
    pub fn store(&self, name: &str, wav: &[u8], rng: &dyn Rng) -> std::io::Result<()> {
        let path = self.path(name);
        let dir = path.parent().unwrap_or(&self.dir).to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Not `*.wav`, so that a load never mistakes it for a prompt.
        let mut salt = [0u8; 8];
        rng.fill(&mut salt);
        let tmp = dir.join(format!(
            ".{file_name}.{:016x}.tmp",
            u64::from_le_bytes(salt)
        ));
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(wav)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            sync_dir(&dir)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Removes `name`'s replacement; `false` when there was none.
    pub fn remove(&self, name: &str) -> std::io::Result<bool> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(path.parent().unwrap_or(&self.dir))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The console's list: every prompt of `source` with what callers hear now.
    pub fn list(&self, source: &PromptSource) -> Vec<PromptEntry> {
        source
            .catalog()
            .names()
            .map(|name| {
                let builtin_ms = source.builtin_ms(name);
                let uploaded = self.stored_at(name);
                let uploaded_ms = uploaded.and_then(|_| {
                    std::fs::read(self.path(name))
                        .ok()
                        .and_then(|b| wav_duration_ms(&b))
                });
                PromptEntry {
                    name: name.to_string(),
                    text: source.catalog().text(name).unwrap_or("").to_string(),
                    duration_ms: if uploaded.is_some() {
                        uploaded_ms
                    } else {
                        builtin_ms
                    },
                    source: if uploaded.is_some() {
                        "uploaded"
                    } else {
                        "builtin"
                    },
                    updated_at: uploaded,
                    builtin_duration_ms: builtin_ms,
                }
            })
            .collect()
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_core::SystemRng;

    #[test]
    fn store_replaces_atomically_and_remove_reverts() {
        let dir = tempfile::tempdir().unwrap();
        let custom = CustomPrompts::new(dir.path().join("custom"));
        let source = PromptSource::new(&IvrConfig::default(), Path::new(".")).unwrap();
        assert!(custom.load(source.catalog()).unwrap().is_empty());

        let pcm: Vec<i16> = (0..8000).map(|i| ((i % 16) * 1000) as i16).collect();
        custom
            .store("msg/welcome", &wav_bytes(&pcm), &SystemRng)
            .unwrap();
        custom
            .store("msg/welcome", &wav_bytes(&pcm[..4000]), &SystemRng)
            .unwrap();
        // Only the file itself is left (no temporary files).
        let names: Vec<_> = std::fs::read_dir(dir.path().join("custom/msg"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["welcome.wav"]);
        let loaded = custom.load(source.catalog()).unwrap();
        assert_eq!(loaded["msg/welcome"].len(), 4000, "the second upload won");

        let list = custom.list(&source);
        let welcome = list.iter().find(|e| e.name == "msg/welcome").unwrap();
        assert_eq!(welcome.source, "uploaded");
        assert_eq!(welcome.duration_ms, Some(500));
        assert!(welcome.builtin_duration_ms.unwrap() > 1000);
        assert!(welcome.text.contains("欢迎"));
        let goodbye = list.iter().find(|e| e.name == "msg/goodbye").unwrap();
        assert_eq!((goodbye.source, goodbye.updated_at), ("builtin", None));

        assert!(custom.remove("msg/welcome").unwrap());
        assert!(!custom.remove("msg/welcome").unwrap());
        assert!(custom.load(source.catalog()).unwrap().is_empty());
    }

    #[test]
    fn a_replacement_for_an_unknown_name_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let custom = CustomPrompts::new(dir.path().to_path_buf());
        custom
            .store("old/gone", &wav_bytes(&[1000; 8000]), &SystemRng)
            .unwrap();
        let source = PromptSource::new(&IvrConfig::default(), Path::new(".")).unwrap();
        assert!(custom.load(source.catalog()).unwrap().is_empty());
    }

    #[test]
    fn builtin_wav_is_the_embedded_file() {
        let source = PromptSource::new(&IvrConfig::default(), Path::new(".")).unwrap();
        let wav = source.builtin_wav("msg/welcome").unwrap();
        assert_eq!(&wav[0..4], b"RIFF");
        assert!(wav_duration_ms(&wav).unwrap() > 1000);
        assert!(source.builtin_wav("msg/nope").is_err());
    }
}
