//! Storage: one sqlx `AnyPool` over SQLite (default, a file in the data directory) or
//! PostgreSQL (`database.url = "postgres://…"`), with one portable migration set that runs at
//! start. The SQL here is written once for both backends: `$n` placeholders, text ids,
//! BIGINT millisecond timestamps.

pub mod admin_settings;
pub mod audit;
pub mod data_files;
pub mod sessions;
pub mod users;
pub mod write_queue;

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;

use crate::config::Config;

/// The workspace's migration set, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Self {
        if url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// The database handle passed to everything that stores data.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid stored value: {0}")]
    Corrupt(String),
    /// An edit made from an old version of a record that someone else changed since
    /// (optimistic locking); the text (zh-CN) says what to do.
    #[error("stale edit: {0}")]
    Stale(String),
}

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict(what)`.
    pub fn from_insert(e: sqlx::Error, what: &str) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict(what.to_string())
            }
            _ => StoreError::Db(e),
        }
    }
}

/// Hides the password in a database URL before it is printed or logged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let host_start = rest.find('/').unwrap_or(rest.len());
    match rest[..host_start].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{}{masked}{}", &url[..scheme_end], &rest[at..])
        }
        None => url.to_string(),
    }
}

impl Db {
    /// Opens the pool (creating the data directory for SQLite) and checks that the database
    /// answers. Does not migrate.
    pub async fn connect(config: &Config) -> Result<Self, sqlx::Error> {
        let url = config.database_url();
        let backend = Backend::of_url(&url);
        if backend == Backend::Sqlite && config.database.url.is_empty() {
            std::fs::create_dir_all(&config.data_dir)?;
        }
        Self::connect_url(
            &url,
            config.database.max_connections,
            Duration::from_secs(config.database.acquire_timeout_secs.into()),
        )
        .await
    }

    pub async fn connect_url(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, sqlx::Error> {
        install_default_drivers();
        let backend = Backend::of_url(url);
        let mut opts = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout);
        if backend == Backend::Sqlite {
            // WAL lets readers proceed during a write; foreign keys are off by default in
            // SQLite and on in PostgreSQL, so turn them on for the same behaviour.
            // synchronous=NORMAL: in WAL mode a commit no longer waits for fsync (the WAL is
            // synced at checkpoints), which is what lets the call path write several rows per
            // call at hundreds of calls per second; the database stays consistent after a
            // crash or power loss, and what a power loss can take is the last commits, not
            // an application crash's (SQLite docs, "WAL mode", synchronous).
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA journal_mode=WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA synchronous=NORMAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys=ON")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout=5000")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(url).await?;
        Ok(Self { pool, backend })
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// For `/readyz`: the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Wraps a test database from `hotline-testkit`.
    pub fn from_pool(pool: AnyPool, url: &str) -> Self {
        Self {
            pool,
            backend: Backend::of_url(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("sqlite://./data/hotline.db?mode=rwc"),
            "sqlite://./data/hotline.db?mode=rwc"
        );
    }
}
