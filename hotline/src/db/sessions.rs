//! Web sessions. The cookie carries a random token; the table keeps its SHA-256 only. A
//! session ends when idle too long or too old, on logout, or when its user is disabled.

use hotline_core::{IdGenerator, Rng, UnixMillis};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::users::User;
use super::{Db, StoreError};

#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    pub expires_at: UnixMillis,
}

/// Lifetimes in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_ms: i64,
    pub max_ms: i64,
}

/// Writing `last_seen_at` on every request would make every read a write; once a minute is
/// precise enough for an idle timeout counted in minutes.
const TOUCH_EVERY_MS: i64 = 60_000;

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A freshly issued session: the cookie token (shown once) and the CSRF token.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub csrf_token: String,
    pub expires_at: UnixMillis,
}

impl Db {
    pub async fn create_session(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        user_id: &str,
        policy: SessionPolicy,
        remote_addr: &str,
    ) -> Result<Issued, StoreError> {
        let token = IdGenerator::token(rng, 32);
        let csrf_token = IdGenerator::token(rng, 32);
        let expires_at = now + policy.max_ms;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, \
             expires_at, remote_addr) VALUES ($1, $2, $3, $4, $4, $5, $6)",
        )
        .bind(hash_token(&token))
        .bind(user_id)
        .bind(&csrf_token)
        .bind(now)
        .bind(expires_at)
        .bind(remote_addr)
        .execute(&self.pool)
        .await?;
        Ok(Issued {
            token,
            csrf_token,
            expires_at,
        })
    }

    /// The live session for a cookie token and its (enabled) user; expired sessions are
    /// deleted on sight.
    pub async fn session_user(
        &self,
        now: UnixMillis,
        token: &str,
        policy: SessionPolicy,
    ) -> Result<Option<(Session, User)>, StoreError> {
        let token_hash = hash_token(token);
        let row = sqlx::query(
            "SELECT user_id, csrf_token, created_at, last_seen_at, expires_at \
             FROM sessions WHERE token_hash = $1",
        )
        .bind(&token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let session = Session {
            token_hash,
            user_id: row.try_get("user_id")?,
            csrf_token: row.try_get("csrf_token")?,
            created_at: row.try_get("created_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            expires_at: row.try_get("expires_at")?,
        };
        if now >= session.expires_at || now - session.last_seen_at >= policy.idle_ms {
            self.delete_session(&session.token_hash).await?;
            return Ok(None);
        }
        let Some(user) = self.user_by_id(&session.user_id).await? else {
            return Ok(None);
        };
        if user.disabled {
            return Ok(None);
        }
        if now - session.last_seen_at >= TOUCH_EVERY_MS {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(&session.token_hash)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some((session, user)))
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_sessions_of(&self, user_id: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Removes expired sessions (run periodically by the server).
    pub async fn purge_sessions(
        &self,
        now: UnixMillis,
        policy: SessionPolicy,
    ) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
                .bind(now)
                .bind(now - policy.idle_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::users::NewUser;
    use hotline_core::{Role, SystemRng};

    const POLICY: SessionPolicy = SessionPolicy {
        idle_ms: 60 * 60_000,
        max_ms: 12 * 3_600_000,
    };

    hotline_testkit::db_test!(session_lifecycle, |t| async move {
        let db = Db::from_pool(t.pool.clone(), &t.url);
        let u = db
            .create_user(
                0,
                &SystemRng,
                NewUser {
                    username: "bob",
                    display_name: "Bob",
                    role: Role::Supervisor,
                    password_hash: "x",
                },
            )
            .await?;
        let s = db
            .create_session(1_000, &SystemRng, &u.id, POLICY, "127.0.0.1")
            .await?;
        assert_eq!(s.token.len(), 64);
        let (sess, user) = db
            .session_user(2_000, &s.token, POLICY)
            .await?
            .expect("live");
        assert_eq!(user.username, "bob");
        assert_eq!(sess.csrf_token, s.csrf_token);
        assert!(db.session_user(2_000, "forged", POLICY).await?.is_none());
        // idle: touched at 2 min, so alive at 2 min + 59 min, dead after 60 min idle
        let t1 = 1_000 + 2 * 60_000;
        assert!(db.session_user(t1, &s.token, POLICY).await?.is_some());
        assert!(
            db.session_user(t1 + 59 * 60_000, &s.token, POLICY)
                .await?
                .is_some()
        );
        assert!(
            db.session_user(t1 + 59 * 60_000 + 61 * 60_000, &s.token, POLICY)
                .await?
                .is_none()
        );
        // absolute expiry
        let s2 = db
            .create_session(0, &SystemRng, &u.id, POLICY, "127.0.0.1")
            .await?;
        let mut now = 0;
        while now < POLICY.max_ms - 30 * 60_000 {
            now += 30 * 60_000;
            assert!(db.session_user(now, &s2.token, POLICY).await?.is_some());
        }
        assert!(
            db.session_user(POLICY.max_ms, &s2.token, POLICY)
                .await?
                .is_none()
        );
        // disabling the user ends sessions
        let s3 = db
            .create_session(0, &SystemRng, &u.id, POLICY, "127.0.0.1")
            .await?;
        db.set_disabled(1, "bob", true).await?;
        assert!(db.session_user(2, &s3.token, POLICY).await?.is_none());
        Ok(())
    });
}
