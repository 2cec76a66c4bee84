//! The audit log: who did what to which target, when, from which address. Written for
//! logins (successful and failed), user changes and, in later features, every sensitive
//! action (listening to a recording, exports, imports).
//!
//! The log is hash-chained (`hotline_core::audit_chain`): [`append`] is the one writer here
//! (the CRM has its own, running the same SQL inside its transactions), [`Db::verify_audit`]
//! walks the chain for `hotline audit verify`, and [`Db::seal_legacy_audit`] chains the rows
//! written before migration 0009, once, at the first start.

use hotline_core::audit_chain::{
    self, ChainBreak, ChainFields, ChainVerifier, GENESIS_HASH, StoredEntry,
};
use hotline_core::{IdGenerator, Rng, UnixMillis};
use serde::Serialize;
use sqlx::Row;

use super::{Db, StoreError};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    pub id: String,
    pub at: UnixMillis,
    /// The username, or `cli` / `system` for actions outside the web.
    pub actor: String,
    /// A dotted verb: `auth.login`, `auth.login_failed`, `user.create`, …
    pub action: String,
    pub target: String,
    pub detail: String,
    pub remote_addr: String,
}

/// What to record; the id and time are added by [`Db::audit`].
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
    pub remote_addr: &'a str,
}

/// Appends one entry to the chain on `conn`, which must be inside a transaction (the head's
/// lock is held until it commits). Returns the entry's id.
pub async fn append(
    conn: &mut sqlx::AnyConnection,
    now: UnixMillis,
    rng: &dyn Rng,
    a: Audit<'_>,
) -> Result<String, StoreError> {
    let id = IdGenerator::new_id(now, rng);
    sqlx::query(audit_chain::sql::LOCK_HEAD)
        .execute(&mut *conn)
        .await?;
    let head = sqlx::query(audit_chain::sql::READ_HEAD)
        .fetch_one(&mut *conn)
        .await?;
    let seq: i64 = head.try_get("seq")?;
    let prev: String = head.try_get("last_hash")?;
    let hash = audit_chain::entry_hash(
        &prev,
        &ChainFields {
            seq,
            id: &id,
            at: now,
            actor: a.actor,
            action: a.action,
            target: a.target,
            detail: a.detail,
            remote_addr: a.remote_addr,
        },
    );
    sqlx::query(audit_chain::sql::INSERT_ENTRY)
        .bind(&id)
        .bind(now)
        .bind(a.actor)
        .bind(a.action)
        .bind(a.target)
        .bind(a.detail)
        .bind(a.remote_addr)
        .bind(seq)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    sqlx::query(audit_chain::sql::SET_HEAD_HASH)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

/// The outcome of `hotline audit verify`.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainReport {
    /// Every entry links; this many.
    Intact(i64),
    /// The first broken entry, after this many good ones.
    Broken { good: i64, first: ChainBreak },
}

/// The columns [`stored`] reads (a macro, so that queries stay literal strings for sqlx).
macro_rules! chain_columns {
    () => {
        "id, at, actor, action, target, detail, remote_addr, seq, prev_hash, hash"
    };
}

fn stored(r: &sqlx::any::AnyRow) -> Result<StoredEntry, StoreError> {
    Ok(StoredEntry {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        detail: r.try_get("detail")?,
        remote_addr: r.try_get("remote_addr")?,
        seq: r.try_get("seq")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

impl Db {
    /// Appends one entry (its own transaction).
    pub async fn audit(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        a: Audit<'_>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        append(&mut tx, now, rng, a).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Walks the whole chain in `seq` order, a page at a time, then looks for rows outside
    /// the chain and compares the end with the head.
    pub async fn verify_audit(&self) -> Result<ChainReport, StoreError> {
        const PAGE: i64 = 1_000;
        let mut v = ChainVerifier::new();
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(concat!(
                "SELECT ",
                chain_columns!(),
                " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
            ))
            .bind(after)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                let e = stored(r)?;
                after = e.seq.unwrap_or(after);
                if let Err(first) = v.check(&e) {
                    return Ok(ChainReport::Broken {
                        good: v.count(),
                        first,
                    });
                }
            }
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
        let loose = sqlx::query(concat!(
            "SELECT ",
            chain_columns!(),
            " FROM audit_log WHERE seq IS NULL ORDER BY at, id LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = loose {
            let e = stored(&r)?;
            if let Err(first) = v.clone().check(&e) {
                return Ok(ChainReport::Broken {
                    good: v.count(),
                    first,
                });
            }
        }
        let head = sqlx::query(audit_chain::sql::READ_HEAD)
            .fetch_one(&self.pool)
            .await?;
        let good = v.count();
        match v.finish(
            head.try_get("seq")?,
            &head.try_get::<String, _>("last_hash")?,
        ) {
            Ok(n) => Ok(ChainReport::Intact(n)),
            Err(first) => Ok(ChainReport::Broken { good, first }),
        }
    }

    /// Chains the rows written before migration 0009 (oldest first), once: afterwards the
    /// head is marked sealed and a row without a hash is tampering, not history. Runs at
    /// every start (cheap after the first). Returns how many rows were sealed.
    pub async fn seal_legacy_audit(&self) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Lock the head (a no-op update) so that no append runs meanwhile.
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        let head = sqlx::query("SELECT seq, last_hash, legacy_sealed FROM audit_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let (seq, last_hash, sealed): (i64, String, i64) = (
            head.try_get("seq")?,
            head.try_get("last_hash")?,
            head.try_get("legacy_sealed")?,
        );
        if sealed != 0 {
            return Ok(0);
        }
        let mut sealed_rows = 0;
        // Only before the first chained append: legacy rows are older than any chained one.
        // (A database migrated by other tools and written since keeps its loose rows, which
        // `verify` then reports.)
        if seq == 0 && last_hash == GENESIS_HASH {
            let rows = sqlx::query(concat!(
                "SELECT ",
                chain_columns!(),
                " FROM audit_log WHERE seq IS NULL ORDER BY at, id"
            ))
            .fetch_all(&mut *tx)
            .await?;
            let mut entries = rows.iter().map(stored).collect::<Result<Vec<_>, _>>()?;
            let (new_seq, new_hash) = audit_chain::seal(&mut entries, 0, GENESIS_HASH);
            for e in &entries {
                sqlx::query(
                    "UPDATE audit_log SET seq = $1, prev_hash = $2, hash = $3 WHERE id = $4",
                )
                .bind(e.seq)
                .bind(&e.prev_hash)
                .bind(&e.hash)
                .bind(&e.id)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE audit_head SET seq = $1, last_hash = $2 WHERE id = 1")
                .bind(new_seq)
                .bind(&new_hash)
                .execute(&mut *tx)
                .await?;
            sealed_rows = new_seq;
        }
        sqlx::query("UPDATE audit_head SET legacy_sealed = 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(sealed_rows)
    }

    /// The newest entries first, optionally only one action.
    pub async fn audit_entries(
        &self,
        action: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, detail, remote_addr FROM audit_log \
             WHERE ($1 = '' OR action = $1) ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(action.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                    remote_addr: r.try_get("remote_addr")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_core::SystemRng;

    hotline_testkit::db_test!(audit_round_trip, |t| async move {
        let db = Db::from_pool(t.pool.clone(), &t.url);
        for (i, action) in ["auth.login", "user.create", "auth.login"]
            .iter()
            .enumerate()
        {
            db.audit(
                i as i64,
                &SystemRng,
                Audit {
                    actor: "admin",
                    action,
                    target: "user:alice",
                    detail: "",
                    remote_addr: "127.0.0.1",
                },
            )
            .await?;
        }
        let all = db.audit_entries(None, 10).await?;
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].at, 2, "newest first");
        let logins = db.audit_entries(Some("auth.login"), 10).await?;
        assert_eq!(logins.len(), 2);
        assert!(logins.iter().all(|e| e.action == "auth.login"));
        Ok(())
    });

    fn entry<'a>(action: &'a str, target: &'a str) -> Audit<'a> {
        Audit {
            actor: "admin",
            action,
            target,
            detail: "d",
            remote_addr: "127.0.0.1",
        }
    }

    hotline_testkit::db_test!(audit_chain_detects_a_changed_row, |t| async move {
        let db = Db::from_pool(t.pool.clone(), &t.url);
        assert_eq!(db.verify_audit().await?, ChainReport::Intact(0));
        for i in 0..5 {
            db.audit(i, &SystemRng, entry("user.create", &format!("user:u{i}")))
                .await?;
        }
        assert_eq!(db.verify_audit().await?, ChainReport::Intact(5));
        let victim: String = sqlx::query_scalar("SELECT id FROM audit_log WHERE seq = 3")
            .fetch_one(&t.pool)
            .await?;
        sqlx::query("UPDATE audit_log SET target = 'user:mallory' WHERE id = $1")
            .bind(&victim)
            .execute(&t.pool)
            .await?;
        let ChainReport::Broken { good, first } = db.verify_audit().await? else {
            panic!("tampering not detected");
        };
        assert_eq!(good, 2);
        assert_eq!((first.id, first.seq), (victim, 3));
        assert_eq!(first.problem, audit_chain::ChainProblem::ContentChanged);
        Ok(())
    });

    hotline_testkit::db_test!(audit_chain_detects_deleted_rows, |t| async move {
        let db = Db::from_pool(t.pool.clone(), &t.url);
        for i in 0..4 {
            db.audit(i, &SystemRng, entry("auth.login", "user:a"))
                .await?;
        }
        sqlx::query("DELETE FROM audit_log WHERE seq = 4")
            .execute(&t.pool)
            .await?;
        let ChainReport::Broken { first, .. } = db.verify_audit().await? else {
            panic!("deleting the newest entry not detected");
        };
        assert!(matches!(
            first.problem,
            audit_chain::ChainProblem::HeadMismatch { last_seq: 3, .. }
        ));
        sqlx::query("DELETE FROM audit_log WHERE seq = 2")
            .execute(&t.pool)
            .await?;
        let ChainReport::Broken { first, .. } = db.verify_audit().await? else {
            panic!("deleting a middle entry not detected");
        };
        assert_eq!(first.seq, 3);
        Ok(())
    });

    hotline_testkit::db_test!(concurrent_appends_do_not_fork, |t| async move {
        let db = Db::from_pool(t.pool.clone(), &t.url);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..24i64 {
            let db = db.clone();
            tasks.spawn(async move {
                db.audit(i, &SystemRng, entry("auth.login", &format!("user:{i}")))
                    .await
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        assert_eq!(db.verify_audit().await?, ChainReport::Intact(24));
        Ok(())
    });

    hotline_testkit::db_test!(legacy_rows_are_sealed_once, |t| async move {
        let db = Db::from_pool(t.pool.clone(), &t.url);
        let raw = |id: &'static str, at: i64| {
            sqlx::query(
                "INSERT INTO audit_log (id, at, actor, action, target, detail, remote_addr) \
                 VALUES ($1, $2, 'admin', 'user.create', 'user:x', '', '')",
            )
            .bind(id)
            .bind(at)
        };
        raw("old2", 20).execute(&t.pool).await?;
        raw("old1", 10).execute(&t.pool).await?;
        assert_eq!(db.seal_legacy_audit().await?, 2);
        db.audit(30, &SystemRng, entry("auth.login", "user:a"))
            .await?;
        assert_eq!(db.verify_audit().await?, ChainReport::Intact(3));
        let first: String = sqlx::query_scalar("SELECT id FROM audit_log WHERE seq = 1")
            .fetch_one(&t.pool)
            .await?;
        assert_eq!(first, "old1", "legacy rows are chained oldest first");
        // After the seal, a row slipped in without the writer is tampering.
        raw("sneaky", 40).execute(&t.pool).await?;
        assert_eq!(db.seal_legacy_audit().await?, 0);
        let ChainReport::Broken { first, .. } = db.verify_audit().await? else {
            panic!("unchained row not reported");
        };
        assert_eq!(first.id, "sneaky");
        assert_eq!(first.problem, audit_chain::ChainProblem::NotChained);
        Ok(())
    });
}
