//! Users of the web console and API. One role per user (a contact centre's staff have one
//! job each; a person with two jobs gets two accounts, which also keeps the audit clear).

use hotline_core::{IdGenerator, Rng, Role, UnixMillis};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, StoreError};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

const COLUMNS: &str = "id, username, display_name, role, disabled, created_at, updated_at";

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        role: role
            .parse()
            .map_err(|e: hotline_core::role::UnknownRole| StoreError::Corrupt(e.to_string()))?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Usernames: 2–32 characters of lowercase ASCII letters, digits, `.`, `_`, `-`.
pub fn validate_username(name: &str) -> Result<(), String> {
    let ok_len = (2..=32).contains(&name.len());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "invalid username `{name}`: use 2–32 characters of a–z, 0–9, '.', '_' or '-'"
        ))
    }
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
}

impl Db {
    pub async fn create_user(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        new: NewUser<'_>,
    ) -> Result<User, StoreError> {
        let id = IdGenerator::new_id(now, rng);
        sqlx::query(
            "INSERT INTO users (id, username, display_name, role, password_hash, disabled, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
        )
        .bind(&id)
        .bind(new.username)
        .bind(new.display_name)
        .bind(new.role.as_str())
        .bind(new.password_hash)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_insert(e, &format!("user `{}`", new.username)))?;
        Ok(User {
            id,
            username: new.username.to_string(),
            display_name: new.display_name.to_string(),
            role: new.role,
            disabled: false,
            created_at: now,
            updated_at: now,
        })
    }

    /// The user and their password hash.
    pub async fn user_with_hash(
        &self,
        username: &str,
    ) -> Result<Option<(User, String)>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, password_hash FROM users WHERE username = $1"
        )))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((user_from_row(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users ORDER BY username"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn count_users_with_role(&self, role: Role) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = $1")
                .bind(role.as_str())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn set_password_hash(
        &self,
        now: UnixMillis,
        username: &str,
        hash: &str,
    ) -> Result<User, StoreError> {
        let n =
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE username = $3")
                .bind(hash)
                .bind(now)
                .bind(username)
                .execute(&self.pool)
                .await?
                .rows_affected();
        self.after_update(n, username).await
    }

    /// Disables (or re-enables) an account. Disabling also ends all its sessions.
    pub async fn set_disabled(
        &self,
        now: UnixMillis,
        username: &str,
        disabled: bool,
    ) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE username = $3")
            .bind(i64::from(disabled))
            .bind(now)
            .bind(username)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if disabled {
            sqlx::query(
                "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE username = $1)",
            )
            .bind(username)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.after_update(n, username).await
    }

    async fn after_update(&self, rows: u64, username: &str) -> Result<User, StoreError> {
        if rows == 0 {
            return Err(StoreError::NotFound(format!("user `{username}`")));
        }
        self.user_with_hash(username)
            .await?
            .map(|(u, _)| u)
            .ok_or_else(|| StoreError::NotFound(format!("user `{username}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_core::SystemRng;

    #[test]
    fn usernames() {
        assert!(validate_username("agent.01").is_ok());
        assert!(validate_username("a").is_err());
        assert!(validate_username("Admin").is_err());
        assert!(validate_username("张三").is_err());
        assert!(validate_username(&"x".repeat(33)).is_err());
    }

    hotline_testkit::db_test!(user_lifecycle, |t| async move {
        let db = Db::from_pool(t.pool.clone(), &t.url);
        let u = db
            .create_user(
                1_000,
                &SystemRng,
                NewUser {
                    username: "alice",
                    display_name: "张丽",
                    role: Role::Agent,
                    password_hash: "h1",
                },
            )
            .await?;
        assert_eq!(u.role, Role::Agent);
        let dup = db
            .create_user(
                1_001,
                &SystemRng,
                NewUser {
                    username: "alice",
                    display_name: "x",
                    role: Role::Admin,
                    password_hash: "h",
                },
            )
            .await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        let (found, hash) = db.user_with_hash("alice").await?.expect("exists");
        assert_eq!((found.clone(), hash.as_str()), (u.clone(), "h1"));
        assert_eq!(db.user_by_id(&u.id).await?, Some(u.clone()));
        let changed = db.set_password_hash(2_000, "alice", "h2").await?;
        assert_eq!(changed.updated_at, 2_000);
        assert_eq!(db.user_with_hash("alice").await?.unwrap().1, "h2");
        let off = db.set_disabled(3_000, "alice", true).await?;
        assert!(off.disabled);
        assert!(matches!(
            db.set_disabled(3_000, "nobody", true).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(db.list_users().await?.len(), 1);
        assert_eq!(db.count_users_with_role(Role::Agent).await?, 1);
        assert_eq!(db.count_users_with_role(Role::Admin).await?, 0);
        Ok(())
    });
}
