//! The prompt catalogue: which prompt names exist and what they say.
//!
//! The default Mandarin set is described by `prompts/zh-CN.tsv` (one `name<TAB>text` per
//! line), rendered to `prompts/zh-CN/<name>.wav` by `prompts/generate.sh`. The catalogue is
//! embedded here so that flow validation and the engines know every name and its text
//! without touching the disk; a deployment with its own recordings builds a catalogue from
//! its own list ([`PromptCatalog::parse`] or [`PromptCatalog::from_names`]). Decoding the
//! audio is the media engine's job, not this crate's.

use std::collections::BTreeMap;

/// The manifest of the default set, as committed.
pub const DEFAULT_ZH_CN_TSV: &str = include_str!("../prompts/zh-CN.tsv");

// The default set's WAV files, embedded: `DEFAULT_ZH_CN_FILES: &[(name, bytes)]`.
include!(concat!(env!("OUT_DIR"), "/default_prompts.rs"));

/// Prompts that are audio but not speech (no text line in the manifest).
pub const MUSIC_ON_HOLD: &str = "moh/default";

/// Known prompt names with their text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PromptCatalog {
    entries: BTreeMap<String, String>,
}

/// A malformed manifest line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prompt manifest line {line}: {reason}")]
pub struct ManifestError {
    pub line: usize,
    pub reason: String,
}

impl PromptCatalog {
    /// The default zh-CN set shipped in `ivr/prompts/`.
    pub fn default_zh_cn() -> Self {
        let mut c = Self::parse(DEFAULT_ZH_CN_TSV).expect("the committed manifest parses");
        c.entries.insert(MUSIC_ON_HOLD.to_string(), String::new());
        c
    }

    /// Parses a `name<TAB>text` manifest; `#` starts a comment line.
    pub fn parse(tsv: &str) -> Result<Self, ManifestError> {
        let mut entries = BTreeMap::new();
        for (i, line) in tsv.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: &str| ManifestError {
                line: i + 1,
                reason: reason.to_string(),
            };
            let (name, text) = line.split_once('\t').ok_or_else(|| err("no tab"))?;
            if !valid_name(name) {
                return Err(err("name must be dir/name in [a-z0-9_/]"));
            }
            if entries.insert(name.to_string(), text.to_string()).is_some() {
                return Err(err(&format!("duplicate prompt {name}")));
            }
        }
        Ok(Self { entries })
    }

    /// A catalogue of names only (e.g. the WAV files found in an operator's directory).
    pub fn from_names<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Self {
            entries: names
                .into_iter()
                .map(|n| (n.into(), String::new()))
                .collect(),
        }
    }

    /// The prompts present as `*.wav` files under `dir` (an operator's own recordings), named
    /// by their relative path without extension. Whether they decode is the media engine's
    /// check at start; this only answers "which names exist" for flow validation.
    pub fn from_dir(dir: &std::path::Path) -> std::io::Result<Self> {
        fn walk(
            base: &std::path::Path,
            dir: &std::path::Path,
            out: &mut Vec<String>,
        ) -> std::io::Result<()> {
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                if path.is_dir() {
                    walk(base, &path, out)?;
                } else if path.extension().is_some_and(|e| e == "wav")
                    && let Ok(rel) = path.with_extension("").strip_prefix(base)
                {
                    let name = rel.to_string_lossy().replace('\\', "/");
                    if valid_name(&name) {
                        out.push(name);
                    }
                }
            }
            Ok(())
        }
        let mut names = Vec::new();
        walk(dir, dir, &mut names)?;
        Ok(Self::from_names(names))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The spoken text of a prompt, if known.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.entries.get(name).map(String::as_str)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The relative file of a prompt: `num/2` → `num/2.wav`.
    pub fn relative_path(name: &str) -> String {
        format!("{name}.wav")
    }
}

/// Prompt names are relative paths without extension; no `..`, no absolute paths.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.contains("//")
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'/' || b == b'-'
        })
}

/// The text of a prompt in the default set ("" when unknown), for utterance text.
pub fn default_text(name: &str) -> String {
    thread_local! {
        static DEFAULT: PromptCatalog = PromptCatalog::default_zh_cn();
    }
    DEFAULT.with(|c| c.text(name).unwrap_or("").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_has_every_say_fragment() {
        let c = PromptCatalog::default_zh_cn();
        for f in crate::say::fragment_names() {
            assert!(c.contains(f), "missing fragment {f}");
            assert_eq!(c.text(f), crate::say::fragment_text(f), "{f}");
        }
        assert_eq!(c.text("num/yao"), Some("幺"));
        assert!(c.contains(MUSIC_ON_HOLD));
    }

    #[test]
    fn every_manifest_prompt_has_a_wav() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/zh-CN");
        let c = PromptCatalog::default_zh_cn();
        let mut total = 0;
        for name in c.names() {
            let p = dir.join(PromptCatalog::relative_path(name));
            let meta = std::fs::metadata(&p).unwrap_or_else(|_| panic!("missing {}", p.display()));
            // 8 kHz mono 16-bit: the canonical 44-byte header says so.
            let head = std::fs::read(&p).unwrap();
            assert_eq!(&head[0..4], b"RIFF", "{name}");
            assert_eq!(
                u16::from_le_bytes([head[22], head[23]]),
                1,
                "{name} channels"
            );
            assert_eq!(
                u32::from_le_bytes([head[24], head[25], head[26], head[27]]),
                8000,
                "{name} rate"
            );
            assert_eq!(u16::from_le_bytes([head[34], head[35]]), 16, "{name} bits");
            // Not silent: at least 0.1 s of audio with a real peak (sox writes the canonical
            // 44-byte header, so samples start at 44).
            assert_eq!(&head[36..40], b"data", "{name} header layout");
            let samples: Vec<i16> = head[44..]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            assert!(samples.len() >= 800, "{name} is too short");
            let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
            assert!(peak > 4_000, "{name} peak {peak}");
            total += meta.len();
        }
        assert!(total < 3_200_000, "prompt set is {total} bytes");
        // Scanning the directory finds the same names.
        let scanned = PromptCatalog::from_dir(&dir).unwrap();
        assert_eq!(
            scanned.names().collect::<Vec<_>>(),
            c.names().collect::<Vec<_>>()
        );
    }

    #[test]
    fn manifest_errors() {
        assert_eq!(PromptCatalog::parse("a/b\tx\na/b\ty").unwrap_err().line, 2);
        assert!(PromptCatalog::parse("A/B\tx").is_err());
        assert!(PromptCatalog::parse("a/b x").is_err());
        assert!(!valid_name("../x"));
        assert!(!valid_name("/x"));
    }
}
