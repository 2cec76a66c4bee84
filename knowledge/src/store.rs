//! Articles and their versions in the database (the source of truth).
//!
//! Portable SQL through `AnyPool` (SQLite and PostgreSQL): `$1` placeholders, text ids from
//! [`IdGenerator`], BIGINT unix milliseconds, list fields as JSON text. Every write runs in
//! one transaction that also stores the new version and bumps `kb_meta.revision`, so the
//! index can tell whether it is older than the database.

use std::sync::Arc;

use hotline_core::{Clock, IdGenerator, Rng, UnixMillis};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Row};

use crate::diff::{VersionDiff, diff_versions};
use crate::error::{KnowledgeError, Result};
use crate::model::{
    Article, ArticleInput, ArticlePage, ArticleStatus, ArticleSummary, ArticleVersion, ListFilter,
    VersionAction,
};

/// What an import did, by slug.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
}

impl ImportReport {
    /// Whether anything was written (and so the index needs an update).
    pub fn changed(&self) -> bool {
        !self.created.is_empty() || !self.updated.is_empty()
    }
}

/// Database access for articles. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ArticleStore {
    pool: AnyPool,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
}

/// `SELECT <all article columns> FROM kb_articles <tail>` as a static string (sqlx wants
/// SQL that is not built at run time unless asserted safe).
macro_rules! select_articles {
    ($tail:literal) => {
        concat!(
            "SELECT id, slug, title, body, category, tags, keywords, status, valid_from, \
             valid_to, author, version, created_at, updated_at FROM kb_articles ",
            $tail
        )
    };
}

const ARTICLE_COLUMNS: &str = "id, slug, title, body, category, tags, keywords, status, \
     valid_from, valid_to, author, version, created_at, updated_at";

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_string())
}

fn from_json(field: &str, text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text)
        .map_err(|e| KnowledgeError::Corrupt(format!("{field} is not a JSON list: {e}")))
}

fn status_of(text: &str) -> Result<ArticleStatus> {
    text.parse()
        .map_err(|_| KnowledgeError::Corrupt(format!("unknown status {text}")))
}

fn content_from_row(row: &AnyRow, slug: String) -> Result<ArticleInput> {
    Ok(ArticleInput {
        slug,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        category: row.try_get("category")?,
        tags: from_json("tags", &row.try_get::<String, _>("tags")?)?,
        keywords: from_json("keywords", &row.try_get::<String, _>("keywords")?)?,
        status: status_of(&row.try_get::<String, _>("status")?)?,
        valid_from: row.try_get("valid_from")?,
        valid_to: row.try_get("valid_to")?,
    })
}

fn article_from_row(row: &AnyRow) -> Result<Article> {
    Ok(Article {
        id: row.try_get("id")?,
        content: content_from_row(row, row.try_get("slug")?)?,
        author: row.try_get("author")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn version_from_row(row: &AnyRow, slug: &str) -> Result<ArticleVersion> {
    Ok(ArticleVersion {
        article_id: row.try_get("article_id")?,
        version: row.try_get("version")?,
        content: content_from_row(row, slug.to_string())?,
        author: row.try_get("author")?,
        action: VersionAction::parse(&row.try_get::<String, _>("action")?)?,
        created_at: row.try_get("created_at")?,
    })
}

fn map_unique(e: sqlx::Error, slug: &str) -> KnowledgeError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            KnowledgeError::DuplicateSlug(slug.to_string())
        }
        _ => KnowledgeError::Database(e),
    }
}

impl ArticleStore {
    pub fn new(pool: AnyPool, clock: Arc<dyn Clock>, rng: Arc<dyn Rng>) -> Self {
        Self { pool, clock, rng }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The database's revision: bumped by every write. The index remembers the revision it
    /// was built from.
    pub async fn revision(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT revision FROM kb_meta WHERE id = 'kb'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn get(&self, id: &str) -> Result<Article> {
        let row = sqlx::query(select_articles!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| article_from_row(&r))
            .transpose()?
            .ok_or_else(|| KnowledgeError::NotFound(id.to_string()))
    }

    pub async fn get_by_slug(&self, slug: &str) -> Result<Article> {
        let mut conn = self.pool.acquire().await?;
        find_by_slug(&mut conn, slug)
            .await?
            .ok_or_else(|| KnowledgeError::NotFound(slug.to_string()))
    }

    /// A page of articles, newest edit first.
    pub async fn list(&self, filter: &ListFilter) -> Result<ArticlePage> {
        let mut cond = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        if let Some(c) = &filter.category {
            binds.push(c.clone());
            cond.push(format!("category = ${}", binds.len()));
        }
        if let Some(s) = filter.status {
            binds.push(s.as_str().to_string());
            cond.push(format!("status = ${}", binds.len()));
        }
        let where_sql = if cond.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", cond.join(" AND "))
        };
        let count_sql = format!("SELECT COUNT(*) FROM kb_articles{where_sql}");
        // Only placeholders and integers are formatted in; values are bound.
        let mut q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql));
        for b in &binds {
            q = q.bind(b.clone());
        }
        let total = q.fetch_one(&self.pool).await?;
        let limit = match filter.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let sql = format!(
            "SELECT {ARTICLE_COLUMNS} FROM kb_articles{where_sql} \
             ORDER BY updated_at DESC, id DESC LIMIT {limit} OFFSET {}",
            filter.offset
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            q = q.bind(b.clone());
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let a = article_from_row(r)?;
            items.push(ArticleSummary {
                id: a.id,
                slug: a.content.slug,
                title: a.content.title,
                category: a.content.category,
                status: a.content.status,
                valid_from: a.content.valid_from,
                valid_to: a.content.valid_to,
                author: a.author,
                version: a.version,
                updated_at: a.updated_at,
            });
        }
        Ok(ArticlePage {
            total: u64::try_from(total).unwrap_or(0),
            items,
        })
    }

    /// Every article (all statuses), ordered by slug: for reindex and export.
    pub async fn all(&self) -> Result<Vec<Article>> {
        let rows = sqlx::query(select_articles!("ORDER BY slug"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(article_from_row).collect()
    }

    /// The categories in use with their article counts, by name.
    pub async fn categories(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT category, COUNT(*) AS n FROM kb_articles GROUP BY category ORDER BY category",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("category")?, r.try_get("n")?)))
            .collect()
    }

    pub async fn create(&self, input: &ArticleInput, author: &str) -> Result<Article> {
        input.validate()?;
        let mut tx = self.pool.begin().await?;
        let a = self
            .insert(&mut tx, input, author, VersionAction::Create)
            .await?;
        bump_revision(&mut tx).await?;
        tx.commit().await?;
        Ok(a)
    }

    /// Replaces the content of article `id`. With `expected_version`, fails with
    /// [`KnowledgeError::Conflict`] when someone else saved in between.
    pub async fn update(
        &self,
        id: &str,
        input: &ArticleInput,
        expected_version: Option<i64>,
        author: &str,
    ) -> Result<Article> {
        input.validate()?;
        let mut tx = self.pool.begin().await?;
        let current = lock_article(&mut tx, id).await?;
        if let Some(expected) = expected_version
            && expected != current.version
        {
            return Err(KnowledgeError::Conflict {
                article_id: id.to_string(),
                expected,
                found: current.version,
            });
        }
        if current.content == *input {
            return Ok(current);
        }
        let action = if current.content.status != input.status {
            status_action(input.status)
        } else {
            VersionAction::Update
        };
        let a = self
            .replace(&mut tx, &current, input, author, action)
            .await?;
        bump_revision(&mut tx).await?;
        tx.commit().await?;
        Ok(a)
    }

    /// Publish, unpublish (back to draft) or archive. A no-op when already in `status`.
    pub async fn set_status(
        &self,
        id: &str,
        status: ArticleStatus,
        author: &str,
    ) -> Result<Article> {
        let mut tx = self.pool.begin().await?;
        let current = lock_article(&mut tx, id).await?;
        if current.content.status == status {
            return Ok(current);
        }
        let mut input = current.content.clone();
        input.status = status;
        let a = self
            .replace(&mut tx, &current, &input, author, status_action(status))
            .await?;
        bump_revision(&mut tx).await?;
        tx.commit().await?;
        Ok(a)
    }

    /// Removes the article and its history. Archiving is usually what an editor wants.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM kb_article_versions WHERE article_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM kb_articles WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(KnowledgeError::NotFound(id.to_string()));
        }
        bump_revision(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// All versions of an article, newest first.
    pub async fn versions(&self, id: &str) -> Result<Vec<ArticleVersion>> {
        let article = self.get(id).await?;
        let rows = sqlx::query(
            "SELECT * FROM kb_article_versions WHERE article_id = $1 ORDER BY version DESC",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| version_from_row(r, &article.content.slug))
            .collect()
    }

    pub async fn version(&self, id: &str, version: i64) -> Result<ArticleVersion> {
        let article = self.get(id).await?;
        let row =
            sqlx::query("SELECT * FROM kb_article_versions WHERE article_id = $1 AND version = $2")
                .bind(id)
                .bind(version)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some(r) => version_from_row(&r, &article.content.slug),
            None => Err(KnowledgeError::VersionNotFound {
                article_id: id.to_string(),
                version,
            }),
        }
    }

    /// Line diff from version `from` to version `to`.
    pub async fn diff(&self, id: &str, from: i64, to: i64) -> Result<VersionDiff> {
        let a = self.version(id, from).await?;
        let b = self.version(id, to).await?;
        Ok(diff_versions(&a, &b))
    }

    /// Makes the content of an old version current again, as a new version. The status
    /// stays what it is now (restoring text must not silently publish or unpublish).
    pub async fn restore(&self, id: &str, version: i64, author: &str) -> Result<Article> {
        let old = self.version(id, version).await?;
        let mut tx = self.pool.begin().await?;
        let current = lock_article(&mut tx, id).await?;
        let mut input = old.content;
        input.slug = current.content.slug.clone();
        input.status = current.content.status;
        let a = self
            .replace(&mut tx, &current, &input, author, VersionAction::Restore)
            .await?;
        bump_revision(&mut tx).await?;
        tx.commit().await?;
        Ok(a)
    }

    /// Creates or updates every article by slug in one transaction: all or nothing, and
    /// idempotent (an unchanged article gets no new version).
    pub async fn import(&self, inputs: &[ArticleInput], author: &str) -> Result<ImportReport> {
        for i in inputs {
            i.validate()?;
        }
        let mut report = ImportReport::default();
        let mut tx = self.pool.begin().await?;
        for input in inputs {
            match find_by_slug(&mut tx, &input.slug).await? {
                None => {
                    self.insert(&mut tx, input, author, VersionAction::Import)
                        .await?;
                    report.created.push(input.slug.clone());
                }
                Some(current) if current.content == *input => {
                    report.unchanged.push(input.slug.clone());
                }
                Some(current) => {
                    self.replace(&mut tx, &current, input, author, VersionAction::Import)
                        .await?;
                    report.updated.push(input.slug.clone());
                }
            }
        }
        if report.changed() {
            bump_revision(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(report)
    }

    async fn insert(
        &self,
        conn: &mut AnyConnection,
        input: &ArticleInput,
        author: &str,
        action: VersionAction,
    ) -> Result<Article> {
        let now = self.clock.now_ms();
        let article = Article {
            id: IdGenerator::new_id(now, self.rng.as_ref()),
            content: input.clone(),
            author: author.to_string(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let c = &article.content;
        sqlx::query(
            "INSERT INTO kb_articles (id, slug, title, body, category, tags, keywords, status, \
             valid_from, valid_to, author, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&article.id)
        .bind(&c.slug)
        .bind(&c.title)
        .bind(&c.body)
        .bind(&c.category)
        .bind(to_json(&c.tags))
        .bind(to_json(&c.keywords))
        .bind(c.status.as_str())
        .bind(c.valid_from)
        .bind(c.valid_to)
        .bind(&article.author)
        .bind(article.version)
        .bind(article.created_at)
        .bind(article.updated_at)
        .execute(&mut *conn)
        .await
        .map_err(|e| map_unique(e, &c.slug))?;
        self.insert_version(conn, &article, action, now).await?;
        Ok(article)
    }

    async fn replace(
        &self,
        conn: &mut AnyConnection,
        current: &Article,
        input: &ArticleInput,
        author: &str,
        action: VersionAction,
    ) -> Result<Article> {
        let now = self.clock.now_ms().max(current.updated_at);
        let article = Article {
            id: current.id.clone(),
            content: input.clone(),
            author: author.to_string(),
            version: current.version + 1,
            created_at: current.created_at,
            updated_at: now,
        };
        let c = &article.content;
        let n = sqlx::query(
            "UPDATE kb_articles SET slug = $1, title = $2, body = $3, category = $4, tags = $5, \
             keywords = $6, status = $7, valid_from = $8, valid_to = $9, author = $10, \
             version = $11, updated_at = $12 WHERE id = $13 AND version = $14",
        )
        .bind(&c.slug)
        .bind(&c.title)
        .bind(&c.body)
        .bind(&c.category)
        .bind(to_json(&c.tags))
        .bind(to_json(&c.keywords))
        .bind(c.status.as_str())
        .bind(c.valid_from)
        .bind(c.valid_to)
        .bind(&article.author)
        .bind(article.version)
        .bind(article.updated_at)
        .bind(&article.id)
        .bind(current.version)
        .execute(&mut *conn)
        .await
        .map_err(|e| map_unique(e, &c.slug))?
        .rows_affected();
        if n == 0 {
            // Another transaction saved first (PostgreSQL read committed).
            return Err(KnowledgeError::Conflict {
                article_id: current.id.clone(),
                expected: current.version,
                found: current.version + 1,
            });
        }
        self.insert_version(conn, &article, action, now).await?;
        Ok(article)
    }

    async fn insert_version(
        &self,
        conn: &mut AnyConnection,
        a: &Article,
        action: VersionAction,
        now: UnixMillis,
    ) -> Result<()> {
        let c = &a.content;
        sqlx::query(
            "INSERT INTO kb_article_versions (id, article_id, version, title, body, category, \
             tags, keywords, status, valid_from, valid_to, author, action, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(IdGenerator::new_id(now, self.rng.as_ref()))
        .bind(&a.id)
        .bind(a.version)
        .bind(&c.title)
        .bind(&c.body)
        .bind(&c.category)
        .bind(to_json(&c.tags))
        .bind(to_json(&c.keywords))
        .bind(c.status.as_str())
        .bind(c.valid_from)
        .bind(c.valid_to)
        .bind(&a.author)
        .bind(action.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

fn status_action(status: ArticleStatus) -> VersionAction {
    match status {
        ArticleStatus::Published => VersionAction::Publish,
        ArticleStatus::Draft => VersionAction::Unpublish,
        ArticleStatus::Archived => VersionAction::Archive,
    }
}

async fn find_by_slug(conn: &mut AnyConnection, slug: &str) -> Result<Option<Article>> {
    let row = sqlx::query(select_articles!("WHERE slug = $1"))
        .bind(slug)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| article_from_row(&r)).transpose()
}

/// Reads the article inside the transaction. The `UPDATE … WHERE version = old` in
/// `replace` is what actually guards against a concurrent writer.
async fn lock_article(conn: &mut AnyConnection, id: &str) -> Result<Article> {
    let row = sqlx::query(select_articles!("WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| article_from_row(&r))
        .transpose()?
        .ok_or_else(|| KnowledgeError::NotFound(id.to_string()))
}

async fn bump_revision(conn: &mut AnyConnection) -> Result<()> {
    sqlx::query("UPDATE kb_meta SET revision = revision + 1 WHERE id = 'kb'")
        .execute(&mut *conn)
        .await?;
    Ok(())
}
