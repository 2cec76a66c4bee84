//! The audit log's hash chain (tamper evidence, issue 12).
//!
//! Every audit entry stores `seq` (1, 2, 3, … without gaps), `prev_hash` (the previous entry's
//! `hash`, [`GENESIS_HASH`] for the first) and `hash` = SHA-256 over `prev_hash` and the
//! entry's canonical content ([`entry_hash`]). Changing, inserting or deleting a row breaks
//! the chain at that row; deleting the newest rows is caught by the chain head (the last
//! `seq` and `hash`, kept in a one-row table updated in the same transaction).
//!
//! This module is the storage-free half: hashing and the verifier. Writers (the binary's
//! `Db::audit`, the CRM's store) append with the SQL in [`sql`], inside one transaction that
//! first takes the head's row lock, so concurrent writers never fork the chain.

use sha2::{Digest, Sha256};

/// The `prev_hash` of entry 1: a fixed value, so that the first entry is checked too.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The SQL every writer runs, in this order, in one transaction (portable: SQLite and
/// PostgreSQL). Taking the head's row lock first (an UPDATE, not a SELECT) serialises
/// appends: on PostgreSQL the second writer waits for the first to commit and then reads the
/// new head; on SQLite the UPDATE takes the database's write lock before anything is read,
/// so the transaction never has to upgrade a stale read snapshot.
pub mod sql {
    /// Takes the head's lock and moves it on by one.
    pub const LOCK_HEAD: &str = "UPDATE audit_head SET seq = seq + 1 WHERE id = 1";
    /// The new entry's `seq` and the previous entry's hash.
    pub const READ_HEAD: &str = "SELECT seq, last_hash FROM audit_head WHERE id = 1";
    /// `$1`…`$7` as in the table, then `$8` seq, `$9` prev_hash, `$10` hash.
    pub const INSERT_ENTRY: &str = "INSERT INTO audit_log \
        (id, at, actor, action, target, detail, remote_addr, seq, prev_hash, hash) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    /// `$1` the new entry's hash.
    pub const SET_HEAD_HASH: &str = "UPDATE audit_head SET last_hash = $1 WHERE id = 1";
}

/// The content of one entry that the hash covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainFields<'a> {
    pub seq: i64,
    pub id: &'a str,
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
    pub remote_addr: &'a str,
}

/// SHA-256 (lower-case hex) of `prev_hash` and the entry's canonical content: a version tag,
/// then each field as `<byte length>:<bytes>\n`, so that no two different entries share an
/// encoding (a field cannot swallow its neighbour).
pub fn entry_hash(prev_hash: &str, e: &ChainFields<'_>) -> String {
    let mut h = Sha256::new();
    h.update(b"hotline-audit-v1\n");
    let seq = e.seq.to_string();
    let at = e.at.to_string();
    for field in [
        prev_hash,
        &seq,
        e.id,
        &at,
        e.actor,
        e.action,
        e.target,
        e.detail,
        e.remote_addr,
    ] {
        h.update(field.len().to_string().as_bytes());
        h.update(b":");
        h.update(field.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// One stored row as read back for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub remote_addr: String,
    pub seq: Option<i64>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

impl StoredEntry {
    fn fields(&self, seq: i64) -> ChainFields<'_> {
        ChainFields {
            seq,
            id: &self.id,
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            detail: &self.detail,
            remote_addr: &self.remote_addr,
        }
    }
}

/// What is wrong at the first broken entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainProblem {
    #[error("entry is not part of the chain (no seq/hash): inserted outside the audit writer")]
    NotChained,
    #[error("seq {found} where {expected} was expected: an entry is missing before it")]
    SeqGap { expected: i64, found: i64 },
    #[error(
        "prev_hash does not match the hash of entry {prev_seq}: an entry before it was removed or replaced"
    )]
    PrevHashMismatch { prev_seq: i64 },
    #[error(
        "content does not match its hash: a field (time, actor, action, target, detail or address) was changed"
    )]
    ContentChanged,
    #[error(
        "the chain head says {head_seq} entries (last hash {head_hash}) but the chain ends at {last_seq}: newest entries were removed, or the head was changed"
    )]
    HeadMismatch {
        head_seq: i64,
        head_hash: String,
        last_seq: i64,
    },
}

/// The first broken entry: its id (empty for a head mismatch), its seq and what differs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit entry {id} (seq {seq}): {problem}")]
pub struct ChainBreak {
    pub id: String,
    pub seq: i64,
    pub problem: ChainProblem,
}

/// Walks the chain entry by entry in `seq` order (so a caller can page through millions of
/// rows): feed every chained row to [`check`](Self::check), then call
/// [`finish`](Self::finish) with the head.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    last_seq: i64,
    last_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            last_seq: 0,
            last_hash: GENESIS_HASH.to_string(),
        }
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries checked so far.
    pub fn count(&self) -> i64 {
        self.last_seq
    }

    pub fn check(&mut self, e: &StoredEntry) -> Result<(), ChainBreak> {
        let broken = |seq: i64, problem| ChainBreak {
            id: e.id.clone(),
            seq,
            problem,
        };
        let (Some(seq), Some(prev), Some(hash)) = (e.seq, &e.prev_hash, &e.hash) else {
            return Err(broken(e.seq.unwrap_or(0), ChainProblem::NotChained));
        };
        let expected = self.last_seq + 1;
        if seq != expected {
            return Err(broken(
                seq,
                ChainProblem::SeqGap {
                    expected,
                    found: seq,
                },
            ));
        }
        if *prev != self.last_hash {
            return Err(broken(
                seq,
                ChainProblem::PrevHashMismatch {
                    prev_seq: self.last_seq,
                },
            ));
        }
        if entry_hash(prev, &e.fields(seq)) != *hash {
            return Err(broken(seq, ChainProblem::ContentChanged));
        }
        self.last_seq = seq;
        self.last_hash = hash.clone();
        Ok(())
    }

    /// Compares the end of the walk with the stored head; the number of entries when whole.
    pub fn finish(self, head_seq: i64, head_hash: &str) -> Result<i64, ChainBreak> {
        if head_seq != self.last_seq || head_hash != self.last_hash {
            return Err(ChainBreak {
                id: String::new(),
                seq: head_seq,
                problem: ChainProblem::HeadMismatch {
                    head_seq,
                    head_hash: head_hash.to_string(),
                    last_seq: self.last_seq,
                },
            });
        }
        Ok(self.last_seq)
    }
}

/// Builds the stored form of a chain in memory (for tests and the start-up sealing of rows
/// written before the chain existed): sets `seq`, `prev_hash` and `hash` on each entry in
/// order, continuing from `(last_seq, last_hash)`. Returns the new head.
pub fn seal(entries: &mut [StoredEntry], last_seq: i64, last_hash: &str) -> (i64, String) {
    let (mut seq, mut prev) = (last_seq, last_hash.to_string());
    for e in entries {
        seq += 1;
        let hash = entry_hash(&prev, &e.fields(seq));
        e.seq = Some(seq);
        e.prev_hash = Some(std::mem::replace(&mut prev, hash.clone()));
        e.hash = Some(hash);
    }
    (seq, prev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: i64) -> StoredEntry {
        StoredEntry {
            id: format!("id{i}"),
            at: 1_000 + i,
            actor: "admin".into(),
            action: "user.create".into(),
            target: format!("user:u{i}"),
            detail: String::new(),
            remote_addr: "127.0.0.1".into(),
            seq: None,
            prev_hash: None,
            hash: None,
        }
    }

    fn chain(n: i64) -> (Vec<StoredEntry>, i64, String) {
        let mut v: Vec<_> = (1..=n).map(entry).collect();
        let (seq, hash) = seal(&mut v, 0, GENESIS_HASH);
        (v, seq, hash)
    }

    fn verify(v: &[StoredEntry], seq: i64, hash: &str) -> Result<i64, ChainBreak> {
        let mut w = ChainVerifier::new();
        for e in v {
            w.check(e)?;
        }
        w.finish(seq, hash)
    }

    #[test]
    fn whole_chain_verifies() {
        let (v, seq, hash) = chain(5);
        assert_eq!(verify(&v, seq, &hash), Ok(5));
        assert_eq!(verify(&[], 0, GENESIS_HASH), Ok(0));
    }

    #[test]
    fn changed_field_is_named_by_entry() {
        let (mut v, seq, hash) = chain(5);
        v[2].detail = "edited".into();
        let b = verify(&v, seq, &hash).unwrap_err();
        assert_eq!((b.id.as_str(), b.seq), ("id3", 3));
        assert_eq!(b.problem, ChainProblem::ContentChanged);
    }

    #[test]
    fn field_boundaries_matter() {
        // "ab"+"c" and "a"+"bc" must not hash alike.
        let mut a = entry(1);
        a.actor = "ab".into();
        a.action = "c".into();
        let mut b = entry(1);
        b.actor = "a".into();
        b.action = "bc".into();
        assert_ne!(
            entry_hash(GENESIS_HASH, &a.fields(1)),
            entry_hash(GENESIS_HASH, &b.fields(1))
        );
    }

    #[test]
    fn removed_entries_are_found() {
        let (mut v, seq, hash) = chain(5);
        v.remove(1);
        let b = verify(&v, seq, &hash).unwrap_err();
        assert_eq!(b.id, "id3");
        assert_eq!(
            b.problem,
            ChainProblem::SeqGap {
                expected: 2,
                found: 3
            }
        );
        // The newest removed: only the head can tell.
        let (mut v, seq, hash) = chain(5);
        v.pop();
        let b = verify(&v, seq, &hash).unwrap_err();
        assert!(matches!(
            b.problem,
            ChainProblem::HeadMismatch { last_seq: 4, .. }
        ));
    }

    #[test]
    fn rehashed_entry_breaks_the_next_link() {
        let (mut v, seq, hash) = chain(4);
        // A forger who recomputes the changed entry's own hash still breaks entry 3's link.
        v[1].detail = "forged".into();
        v[1].hash = Some(entry_hash(
            v[1].prev_hash.as_deref().unwrap(),
            &v[1].fields(2),
        ));
        let b = verify(&v, seq, &hash).unwrap_err();
        assert_eq!(b.id, "id3");
        assert_eq!(b.problem, ChainProblem::PrevHashMismatch { prev_seq: 2 });
    }

    #[test]
    fn unchained_row_is_reported() {
        let (mut v, seq, hash) = chain(2);
        v.push(entry(9));
        let b = verify(&v, seq, &hash).unwrap_err();
        assert_eq!(
            (b.id.as_str(), b.problem),
            ("id9", ChainProblem::NotChained)
        );
    }
}
