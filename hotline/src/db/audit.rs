//! The audit log: who did what to which target, when, from which address. Written for
//! logins (successful and failed), user changes and, in later features, every sensitive
//! action (listening to a recording, exports, imports).

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

impl Db {
    pub async fn audit(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        a: Audit<'_>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, action, target, detail, remote_addr) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(IdGenerator::new_id(now, rng))
        .bind(now)
        .bind(a.actor)
        .bind(a.action)
        .bind(a.target)
        .bind(a.detail)
        .bind(a.remote_addr)
        .execute(&self.pool)
        .await?;
        Ok(())
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
}
