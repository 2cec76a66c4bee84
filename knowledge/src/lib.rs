//! `hotline-knowledge`: the knowledge base. Versioned articles in the database, a derived
//! tantivy index with Chinese analysis (jieba words + character bigrams, synonyms), search
//! with highlights, filters and paging, import/export (Markdown with TOML front matter, and
//! JSON), the built-in content (auction FAQ and the agents' service handbook), and the
//! confident [`KnowledgeBase::best_answer`] used by WeChat auto-reply.
//!
//! May depend on: `hotline-core` only among hotline's crates (no sibling domain crate); the
//! binary `hotline` wires it in (HTTP routes with role checks, `hotline kb reindex`, loading
//! the built-in content at `hotline init`).
//!
//! Drive contract: the database is the source of truth; the index is derived. Open with
//! [`KnowledgeBase::open`], which rebuilds the index when it is missing or older than the
//! database. Every write through [`KnowledgeBase`] updates the database in one transaction,
//! then the index (commit) before returning, so a publish is searchable at once. Writes
//! through [`ArticleStore`] alone leave the index stale until
//! [`KnowledgeBase::refresh_if_stale`] or [`KnowledgeBase::reindex`].

pub mod analysis;
pub mod content;
pub mod diff;
pub mod error;
pub mod index;
pub mod model;
pub mod portable;
pub mod store;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use hotline_core::{Clock, Rng};
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

pub use diff::{DiffLine, FieldChange, LineChange, VersionDiff};
pub use error::{ErrorClass, ImportProblem, KnowledgeError, Result};
pub use index::{Answer, AnswerPolicy, SearchHit, SearchIndex, SearchQuery, SearchResults};
pub use model::{
    Article, ArticleInput, ArticlePage, ArticleStatus, ArticleSummary, ArticleVersion, ListFilter,
    VersionAction,
};
pub use store::{ArticleStore, ImportReport};

/// What a reindex did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReindexReport {
    pub articles: usize,
    pub revision: i64,
    pub millis: u64,
}

/// The knowledge base: store + index kept in step. Share it behind an `Arc`.
#[derive(Debug)]
pub struct KnowledgeBase {
    store: ArticleStore,
    index: Arc<SearchIndex>,
    clock: Arc<dyn Clock>,
    policy: AnswerPolicy,
    /// Serializes writers so that the index is updated in database order.
    writes: tokio::sync::Mutex<()>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| KnowledgeError::Task(e.to_string()))?
}

impl KnowledgeBase {
    /// Opens the index in `index_dir` (created when missing) and rebuilds it when it is
    /// missing, of another schema, or older than the database.
    pub async fn open(
        pool: AnyPool,
        index_dir: &Path,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
    ) -> Result<Self> {
        let dir = index_dir.to_path_buf();
        let index = blocking(move || SearchIndex::open_or_create(&dir)).await?;
        Self::with_index(pool, index, clock, rng).await
    }

    /// With an index in memory (tests).
    pub async fn in_memory(
        pool: AnyPool,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
    ) -> Result<Self> {
        Self::with_index(pool, SearchIndex::in_memory()?, clock, rng).await
    }

    async fn with_index(
        pool: AnyPool,
        index: SearchIndex,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
    ) -> Result<Self> {
        let kb = Self {
            store: ArticleStore::new(pool, clock.clone(), rng),
            index: Arc::new(index),
            clock,
            policy: AnswerPolicy::default(),
            writes: tokio::sync::Mutex::new(()),
        };
        kb.refresh_if_stale().await?;
        Ok(kb)
    }

    /// Replaces the confidence rule of [`Self::best_answer`].
    pub fn with_answer_policy(mut self, policy: AnswerPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn store(&self) -> &ArticleStore {
        &self.store
    }

    pub fn index(&self) -> &SearchIndex {
        &self.index
    }

    /// Rebuilds the index when its revision differs from the database's. Returns whether
    /// it rebuilt.
    pub async fn refresh_if_stale(&self) -> Result<bool> {
        let _w = self.writes.lock().await;
        let db = self.store.revision().await?;
        if self.index.indexed_revision()? == Some(db) {
            return Ok(false);
        }
        self.rebuild_locked().await?;
        Ok(true)
    }

    /// Rebuilds the index from the database (`hotline kb reindex`).
    pub async fn reindex(&self) -> Result<ReindexReport> {
        let _w = self.writes.lock().await;
        self.rebuild_locked().await
    }

    async fn rebuild_locked(&self) -> Result<ReindexReport> {
        let started = Instant::now();
        // Revision first: a write that lands in between makes the index look stale (and
        // be rebuilt again), never fresh with missing content.
        let revision = self.store.revision().await?;
        let articles = self.store.all().await?;
        let n = articles.len();
        let index = self.index.clone();
        blocking(move || index.rebuild(&articles, revision)).await?;
        tracing::info!(articles = n, revision, "knowledge index rebuilt");
        Ok(ReindexReport {
            articles: n,
            revision,
            millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    async fn index_articles(&self, articles: Vec<Article>) -> Result<()> {
        let revision = self.store.revision().await?;
        let index = self.index.clone();
        blocking(move || index.upsert(&articles, revision)).await
    }

    pub async fn create(&self, input: &ArticleInput, author: &str) -> Result<Article> {
        let _w = self.writes.lock().await;
        let a = self.store.create(input, author).await?;
        self.index_articles(vec![a.clone()]).await?;
        Ok(a)
    }

    /// Saves new content; `expected_version` (from the editor's copy) guards against
    /// overwriting someone else's edit.
    pub async fn update(
        &self,
        id: &str,
        input: &ArticleInput,
        expected_version: Option<i64>,
        author: &str,
    ) -> Result<Article> {
        let _w = self.writes.lock().await;
        let a = self
            .store
            .update(id, input, expected_version, author)
            .await?;
        self.index_articles(vec![a.clone()]).await?;
        Ok(a)
    }

    /// Publish, unpublish (draft) or archive; searchable in the new state on return.
    pub async fn set_status(
        &self,
        id: &str,
        status: ArticleStatus,
        author: &str,
    ) -> Result<Article> {
        let _w = self.writes.lock().await;
        let a = self.store.set_status(id, status, author).await?;
        self.index_articles(vec![a.clone()]).await?;
        Ok(a)
    }

    pub async fn publish(&self, id: &str, author: &str) -> Result<Article> {
        self.set_status(id, ArticleStatus::Published, author).await
    }

    pub async fn archive(&self, id: &str, author: &str) -> Result<Article> {
        self.set_status(id, ArticleStatus::Archived, author).await
    }

    pub async fn restore(&self, id: &str, version: i64, author: &str) -> Result<Article> {
        let _w = self.writes.lock().await;
        let a = self.store.restore(id, version, author).await?;
        self.index_articles(vec![a.clone()]).await?;
        Ok(a)
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        let _w = self.writes.lock().await;
        self.store.delete(id).await?;
        let revision = self.store.revision().await?;
        let index = self.index.clone();
        let id = id.to_string();
        blocking(move || index.remove(&id, revision)).await
    }

    pub async fn get(&self, id: &str) -> Result<Article> {
        self.store.get(id).await
    }

    pub async fn get_by_slug(&self, slug: &str) -> Result<Article> {
        self.store.get_by_slug(slug).await
    }

    pub async fn list(&self, filter: &ListFilter) -> Result<ArticlePage> {
        self.store.list(filter).await
    }

    /// Versions, newest first.
    pub async fn versions(&self, id: &str) -> Result<Vec<ArticleVersion>> {
        self.store.versions(id).await
    }

    pub async fn diff(&self, id: &str, from: i64, to: i64) -> Result<VersionDiff> {
        self.store.diff(id, from, to).await
    }

    /// Ranked search. The caller enforces roles: agents get `status = Some(Published)`.
    pub async fn search(&self, query: SearchQuery) -> Result<SearchResults> {
        let index = self.index.clone();
        blocking(move || index.search(&query)).await
    }

    /// The one published, currently valid article that answers `question`, only when
    /// confident (see [`AnswerPolicy`]); `None` means "hand over to a human".
    pub async fn best_answer(&self, question: &str) -> Result<Option<Answer>> {
        let index = self.index.clone();
        let question = question.to_string();
        let now = self.clock.now_ms();
        let policy = self.policy;
        blocking(move || index.best_answer(&question, now, &policy)).await
    }

    async fn import_inputs(&self, inputs: Vec<ArticleInput>, author: &str) -> Result<ImportReport> {
        let _w = self.writes.lock().await;
        let report = self.store.import(&inputs, author).await?;
        if report.changed() {
            let mut changed = Vec::new();
            for slug in report.created.iter().chain(&report.updated) {
                changed.push(self.store.get_by_slug(slug).await?);
            }
            self.index_articles(changed).await?;
        }
        Ok(report)
    }

    /// Imports every `*.md` file of `dir`: all or nothing, idempotent by slug.
    pub async fn import_dir(&self, dir: &Path, author: &str) -> Result<ImportReport> {
        let files = portable::read_markdown_dir(dir)?;
        self.import_markdown(&files, author).await
    }

    /// Imports `(file name, text)` Markdown files (e.g. uploaded through HTTP).
    pub async fn import_markdown(
        &self,
        files: &[(String, String)],
        author: &str,
    ) -> Result<ImportReport> {
        let inputs = portable::parse_markdown_set(files)?;
        self.import_inputs(inputs, author).await
    }

    /// Imports the JSON export format: all or nothing, idempotent by slug.
    pub async fn import_json(&self, json: &str, author: &str) -> Result<ImportReport> {
        let inputs = portable::parse_json(json)?;
        self.import_inputs(inputs, author).await
    }

    /// Loads the built-in content (for `hotline init`); running it again changes nothing
    /// unless the shipped content changed.
    pub async fn load_builtin(&self, author: &str) -> Result<ImportReport> {
        self.import_markdown(&content::builtin_files(), author)
            .await
    }

    /// Writes every article as `<slug>.md` into `dir`.
    pub async fn export_dir(&self, dir: &Path) -> Result<usize> {
        let articles = self.store.all().await?;
        portable::write_markdown_dir(dir, &articles)
    }

    pub async fn export_json(&self) -> Result<String> {
        portable::render_json(&self.store.all().await?)
    }
}
