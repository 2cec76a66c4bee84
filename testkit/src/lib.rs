//! `hotline-testkit`: test support shared by every crate that stores data.
//!
//! Every storage test runs on both backends: SQLite in a temporary directory, and PostgreSQL
//! when `TEST_DATABASE_URL` is set (each test in its own fresh database, dropped afterwards).
//! When `TEST_DATABASE_URL` is set but the server cannot be reached, the PostgreSQL variant
//! fails: a silent skip would hide a broken CI.
//!
//! Use [`db_test!`] to write one test body that runs on both backends:
//! ```ignore
//! hotline_testkit::db_test!(users_round_trip, |db| async move {
//!     sqlx::query("SELECT 1").execute(&db.pool).await?;
//!     Ok(())
//! });
//! ```
//!
//! May depend on: nothing of hotline's (it only runs the workspace's migration set). Only
//! dev-dependencies point at it. Also: [`mutate`], the input mutator of the stable fuzz driver.

pub mod mutate;

use std::future::Future;

use anyhow::{Context, Result};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Connection};

/// The workspace's one migration set (also embedded by the `hotline` binary).
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated database for one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub pool: AnyPool,
    pub url: String,
    pub backend: Backend,
}

/// Keeps what must be cleaned up after the test.
enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

fn random_suffix() -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).expect("os random");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `postgres://u@h:5432/test?x=y` with the database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

async fn open(url: &str, backend: Backend) -> Result<AnyPool> {
    install_default_drivers();
    let mut opts = AnyPoolOptions::new().max_connections(5);
    if backend == Backend::Sqlite {
        opts = opts.after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query("PRAGMA journal_mode=WAL")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("PRAGMA foreign_keys=ON")
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        });
    }
    let pool = opts
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    MIGRATOR.run(&pool).await.context("running migrations")?;
    Ok(pool)
}

async fn create(backend: Backend) -> Result<Option<(TestDb, Guard)>> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            let pool = open(&url, backend).await?;
            Ok(Some((TestDb { pool, url, backend }, Guard::Sqlite(dir))))
        }
        Backend::Postgres => {
            let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
                eprintln!("PostgreSQL variant skipped: TEST_DATABASE_URL is not set");
                return Ok(None);
            };
            let name = format!("hotline_t_{}", random_suffix());
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .with_context(|| format!("TEST_DATABASE_URL={admin_url} is set but unreachable"))?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await?;
            admin.close().await?;
            let url = with_database(&admin_url, &name);
            let pool = open(&url, backend).await?;
            Ok(Some((
                TestDb { pool, url, backend },
                Guard::Postgres { admin_url, name },
            )))
        }
    }
}

async fn drop_guard(guard: Guard) -> Result<()> {
    if let Guard::Postgres { admin_url, name } = guard {
        let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
    }
    Ok(())
}

/// A fresh database URL on `backend` that the caller owns (for tests that start the real
/// binary against it). The returned guard drops the database when `release` is called.
pub struct ExternalDb {
    pub db: TestDb,
    guard: Option<Guard>,
}

impl std::fmt::Debug for ExternalDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalDb").field("db", &self.db).finish()
    }
}

impl ExternalDb {
    pub async fn create(backend: Backend) -> Result<Option<Self>> {
        Ok(create(backend)
            .await?
            .map(|(db, g)| Self { db, guard: Some(g) }))
    }
    pub async fn release(mut self) -> Result<()> {
        self.db.pool.close().await;
        match self.guard.take() {
            Some(g) => drop_guard(g).await,
            None => Ok(()),
        }
    }
}

/// Runs `body` against a fresh database on `backend`, then removes the database, also when
/// the body fails or panics.
pub async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let (db, guard) = match create(backend).await {
        Ok(Some(x)) => x,
        Ok(None) => return,
        Err(e) => panic!("could not create the {backend:?} test database: {e:#}"),
    };
    let pool = db.pool.clone();
    let outcome = tokio::spawn(body(db)).await;
    pool.close().await;
    if let Err(e) = drop_guard(guard).await {
        eprintln!("warning: could not drop the test database: {e:#}");
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{backend:?}: {e:#}"),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// One storage test, run on SQLite and on PostgreSQL: generates a module `$name` with the
/// tests `sqlite` and `postgres`.
#[macro_export]
macro_rules! db_test {
    ($name:ident, |$db:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::run($crate::Backend::Sqlite, |$db: $crate::TestDb| $body).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::run($crate::Backend::Postgres, |$db: $crate::TestDb| $body).await
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "y"),
            "postgres://u:p@h/y?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "z"), "postgres://h:1/z");
    }

    db_test!(migrations_apply, |db| async move {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&db.pool)
            .await?;
        assert_eq!(n, 0);
        Ok(())
    });
}
