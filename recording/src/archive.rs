//! The archive on disk: `<root>/YYYY/MM/DD/<call-id>.wav` (UTC date of the answer), the
//! repair of files a crash left unfinished, SHA-256 checksums, the backup copy (written to a
//! temporary name, fsynced, re-hashed, then renamed), verification of archive and backup
//! against the stored hashes, and deletion for retention.
//!
//! Everything here is blocking file I/O: async callers run it in `spawn_blocking`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use hotline_core::UnixMillis;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{RecordingError, Result};
use crate::wav;

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The UTC date of a timestamp.
pub fn civil_date(ms: UnixMillis) -> (i64, u32, u32) {
    civil_from_days(ms.div_euclid(86_400_000))
}

/// `YYYY/MM/DD/<call-id>.wav`.
pub fn relative_path(started_at: UnixMillis, call_id: &str) -> String {
    let (y, m, d) = civil_date(started_at);
    format!("{y:04}/{m:02}/{d:02}/{call_id}.wav")
}

/// Call ids become file names: only a safe alphabet, no leading dot, no separators.
pub fn validate_call_id(id: &str) -> Result<()> {
    let ok = (1..=128).contains(&id.len())
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(RecordingError::InvalidCallId(id.to_string()))
    }
}

/// A relative path as stored must stay inside the root.
pub fn resolve(root: &Path, rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    let safe = !rel.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if safe {
        Ok(root.join(p))
    } else {
        Err(RecordingError::Corrupt(format!(
            "unsafe archive path `{rel}`"
        )))
    }
}

/// Size and lowercase-hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((n, hex(&h.finalize())))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A recording found unfinished and made whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Repaired {
    pub call_id: String,
    pub relative_path: String,
    pub bytes: u64,
    pub duration_ms: u64,
    pub sha256: String,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk(&entry.path(), out)?;
        } else if ft.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// Repairs one cut-off `.wav.part`: the header is rewritten from the file's size (whole
/// frames only), the file synced and renamed to `.wav`.
pub fn repair_file(part: &Path) -> std::io::Result<(PathBuf, u64, String)> {
    let f = OpenOptions::new().read(true).write(true).open(part)?;
    let len = f.metadata()?.len();
    let (header, new_len) = wav::repaired_header(len);
    if len < wav::HEADER_LEN {
        f.set_len(0)?;
    }
    f.set_len(new_len)?;
    f.write_all_at(&header, 0)?;
    f.sync_all()?;
    drop(f);
    let done = part.with_extension("");
    std::fs::rename(part, &done)?;
    if let Some(dir) = done.parent() {
        File::open(dir)?.sync_all()?;
    }
    let (size, hash) = sha256_file(&done)?;
    Ok((done, size, hash))
}

/// Finds every `.wav.part` under `root` (left by a crash) and repairs it. Run at start,
/// before the recorder takes new calls; then mark the rows `recovered` in the store.
pub fn repair_unfinished(root: &Path) -> Result<Vec<Repaired>> {
    let mut files = Vec::new();
    walk(root, &mut files).map_err(|e| RecordingError::disk(root, e))?;
    let mut out = Vec::new();
    for part in files {
        let Some(name) = part.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(call_id) = name.strip_suffix(".wav.part") else {
            continue;
        };
        let call_id = call_id.to_string();
        let (done, bytes, sha256) =
            repair_file(&part).map_err(|e| RecordingError::disk(&part, e))?;
        let rel = done
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        tracing::warn!(call_id = %call_id, path = %done.display(), bytes, "unfinished recording repaired");
        out.push(Repaired {
            call_id,
            relative_path: rel,
            bytes,
            duration_ms: wav::duration_ms(wav::data_len_from_size(bytes)),
            sha256,
        });
    }
    out.sort_by(|a, b| a.relative_path.cmp(&b.relative_path));
    Ok(out)
}

/// Copies `<root>/<rel>` to `<backup>/<rel>`: written under a temporary name, fsynced,
/// re-read and hashed, and only renamed into place when the hash is `expected_sha256`.
pub fn backup_file(root: &Path, backup: &Path, rel: &str, expected_sha256: &str) -> Result<()> {
    let src = resolve(root, rel)?;
    let dst = resolve(backup, rel)?;
    let tmp = dst.with_extension("wav.tmp");
    let copy = || -> std::io::Result<()> {
        if let Some(dir) = dst.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut from = File::open(&src)?;
        let mut to = File::create(&tmp)?;
        std::io::copy(&mut from, &mut to)?;
        to.flush()?;
        to.sync_all()?;
        Ok(())
    };
    copy().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        RecordingError::disk(&dst, e)
    })?;
    let (_, got) = sha256_file(&tmp).map_err(|e| RecordingError::disk(&tmp, e))?;
    if got != expected_sha256 {
        let _ = std::fs::remove_file(&tmp);
        return Err(RecordingError::Corrupt(format!(
            "backup of {rel}: hash {got} differs from the recorded {expected_sha256}"
        )));
    }
    std::fs::rename(&tmp, &dst).map_err(|e| RecordingError::disk(&dst, e))?;
    if let Some(dir) = dst.parent() {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// One file that is not as the store says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyIssue {
    pub recording_id: String,
    pub relative_path: String,
    /// `archive` or `backup`.
    pub location: &'static str,
    /// `missing` or `mismatch`.
    pub problem: &'static str,
    pub expected: String,
    pub actual: String,
}

/// What verify looks at: a stored recording.
#[derive(Debug, Clone)]
pub struct Expected {
    pub recording_id: String,
    pub relative_path: String,
    pub sha256: String,
    /// Whether the backup should hold a copy.
    pub backed_up: bool,
}

fn check(root: &Path, e: &Expected, location: &'static str) -> Option<VerifyIssue> {
    let issue = |problem, actual: String| VerifyIssue {
        recording_id: e.recording_id.clone(),
        relative_path: e.relative_path.clone(),
        location,
        problem,
        expected: e.sha256.clone(),
        actual,
    };
    let path = match resolve(root, &e.relative_path) {
        Ok(p) => p,
        Err(_) => return Some(issue("missing", String::new())),
    };
    match sha256_file(&path) {
        Ok((_, h)) if h == e.sha256 => None,
        Ok((_, h)) => Some(issue("mismatch", h)),
        Err(err) => Some(issue("missing", err.to_string())),
    }
}

/// Re-hashes every expected file in the archive and (when configured) the backup, and
/// reports each missing or mismatched one.
pub fn verify_files(root: &Path, backup: Option<&Path>, expected: &[Expected]) -> Vec<VerifyIssue> {
    let mut out = Vec::new();
    for e in expected {
        out.extend(check(root, e, "archive"));
        if let Some(b) = backup
            && e.backed_up
        {
            out.extend(check(b, e, "backup"));
        }
    }
    out
}

/// Removes a recording's files (archive, cached peaks, backup). Missing files are fine.
pub fn delete_files(root: &Path, backup: Option<&Path>, rel: &str) -> Result<()> {
    let mut paths = vec![resolve(root, rel)?];
    paths.push(crate::peaks::cache_path(&paths[0]));
    if let Some(b) = backup {
        paths.push(resolve(b, rel)?);
    }
    for p in paths {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RecordingError::disk(&p, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_paths() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_date(1_764_000_000_000), (2025, 11, 24));
        assert_eq!(civil_date(951_782_400_000), (2000, 2, 29));
        assert_eq!(relative_path(1_764_000_000_000, "c1"), "2025/11/24/c1.wav");
    }

    #[test]
    fn call_ids_and_paths_are_checked() {
        assert!(validate_call_id("abc-1@x.y_z").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b", "中文"] {
            assert!(validate_call_id(bad).is_err(), "{bad}");
        }
        assert!(resolve(Path::new("/r"), "2025/01/01/a.wav").is_ok());
        assert!(resolve(Path::new("/r"), "../etc/passwd").is_err());
        assert!(resolve(Path::new("/r"), "/etc/passwd").is_err());
    }

    #[test]
    fn repairs_cut_files_and_keeps_whole_ones() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("2025/11/24");
        std::fs::create_dir_all(&day).unwrap();
        // header says 0 bytes, 1 s of audio follows, plus half a frame
        let mut bytes = wav::header(0).to_vec();
        wav::encode_samples(&vec![1000i16; 16_000], &mut bytes);
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(day.join("call1.wav.part"), &bytes).unwrap();
        // a crash before the header was complete
        std::fs::write(day.join("call2.wav.part"), [b'R', b'I']).unwrap();
        std::fs::write(day.join("done.wav"), wav::header(0)).unwrap();
        let r = repair_unfinished(dir.path()).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].call_id, "call1");
        assert_eq!(r[0].duration_ms, 1_000);
        assert_eq!(r[0].relative_path, "2025/11/24/call1.wav");
        assert_eq!(r[1].bytes, 44);
        let reader = hound::WavReader::open(day.join("call1.wav")).unwrap();
        assert_eq!(reader.duration(), 8_000);
        assert!(hound::WavReader::open(day.join("call2.wav")).is_ok());
        assert!(!day.join("call1.wav.part").exists());
        assert!(
            repair_unfinished(&dir.path().join("nope"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn backup_and_verify_detect_flipped_bytes_and_deleted_files() {
        let dir = tempfile::tempdir().unwrap();
        let (root, backup) = (dir.path().join("a"), dir.path().join("b"));
        let mut expected = Vec::new();
        for (i, id) in ["x1", "x2", "x3"].iter().enumerate() {
            let rel = relative_path(1_764_000_000_000, id);
            let p = root.join(&rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let mut bytes = wav::header(8).to_vec();
            bytes.extend_from_slice(&[i as u8; 8]);
            std::fs::write(&p, &bytes).unwrap();
            let (_, sha) = sha256_file(&p).unwrap();
            backup_file(&root, &backup, &rel, &sha).unwrap();
            expected.push(Expected {
                recording_id: id.to_string(),
                relative_path: rel,
                sha256: sha,
                backed_up: true,
            });
        }
        assert!(verify_files(&root, Some(&backup), &expected).is_empty());
        // a wrong expected hash refuses the backup
        assert!(backup_file(&root, &backup, &expected[0].relative_path, "00").is_err());
        // flip one byte in the archive copy of x1, delete the backup of x2
        let p1 = root.join(&expected[0].relative_path);
        let mut b = std::fs::read(&p1).unwrap();
        b[50] ^= 0x01;
        std::fs::write(&p1, b).unwrap();
        std::fs::remove_file(backup.join(&expected[1].relative_path)).unwrap();
        let issues = verify_files(&root, Some(&backup), &expected);
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert_eq!(
            (
                issues[0].recording_id.as_str(),
                issues[0].location,
                issues[0].problem
            ),
            ("x1", "archive", "mismatch")
        );
        assert_eq!(
            (
                issues[1].recording_id.as_str(),
                issues[1].location,
                issues[1].problem
            ),
            ("x2", "backup", "missing")
        );
        delete_files(&root, Some(&backup), &expected[2].relative_path).unwrap();
        assert!(!root.join(&expected[2].relative_path).exists());
        delete_files(&root, Some(&backup), &expected[2].relative_path).unwrap();
    }
}
