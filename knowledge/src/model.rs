//! Article types shared by storage, index, import/export and the HTTP layer.

use hotline_core::UnixMillis;
use serde::{Deserialize, Serialize};

use crate::error::{KnowledgeError, Result};

/// Publication state. Agents and auto-reply see only `Published`; editors (`business`,
/// `supervisor`) see all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArticleStatus {
    Draft,
    Published,
    Archived,
}

impl ArticleStatus {
    pub const ALL: [ArticleStatus; 3] = [Self::Draft, Self::Published, Self::Archived];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Archived => "archived",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Draft => "草稿",
            Self::Published => "已发布",
            Self::Archived => "已归档",
        }
    }
}

impl std::fmt::Display for ArticleStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ArticleStatus {
    type Err = KnowledgeError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "draft" => Ok(Self::Draft),
            "published" => Ok(Self::Published),
            "archived" => Ok(Self::Archived),
            other => Err(KnowledgeError::invalid(
                "status",
                format!("`{other}` is not one of draft, published, archived"),
            )),
        }
    }
}

/// The editable content of an article: what create and update take, what import reads and
/// export writes. Identity (`id`), bookkeeping (`version`, timestamps) live in [`Article`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleInput {
    /// Lowercase ASCII letters, digits and `-`; unique.
    pub slug: String,
    pub title: String,
    /// Markdown.
    pub body: String,
    pub category: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Extra search words and synonyms (boosted between title and body).
    #[serde(default)]
    pub keywords: Vec<String>,
    pub status: ArticleStatus,
    /// Start of validity, inclusive (e.g. this month's calendar); `None` = always.
    #[serde(default)]
    pub valid_from: Option<UnixMillis>,
    /// End of validity, exclusive; `None` = open-ended.
    #[serde(default)]
    pub valid_to: Option<UnixMillis>,
}

pub(crate) const MAX_TITLE_CHARS: usize = 200;
pub(crate) const MAX_BODY_BYTES: usize = 200_000;

impl ArticleInput {
    /// Checks every field; the first problem is returned with the field's name.
    pub fn validate(&self) -> Result<()> {
        validate_slug(&self.slug)?;
        if self.title.trim().is_empty() {
            return Err(KnowledgeError::invalid("title", "must not be empty"));
        }
        if self.title.chars().count() > MAX_TITLE_CHARS {
            return Err(KnowledgeError::invalid(
                "title",
                format!("longer than {MAX_TITLE_CHARS} characters"),
            ));
        }
        if self.body.trim().is_empty() {
            return Err(KnowledgeError::invalid("body", "must not be empty"));
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(KnowledgeError::invalid(
                "body",
                format!("longer than {MAX_BODY_BYTES} bytes"),
            ));
        }
        if self.category.trim().is_empty() {
            return Err(KnowledgeError::invalid("category", "must not be empty"));
        }
        for (field, list) in [("tags", &self.tags), ("keywords", &self.keywords)] {
            if list.iter().any(|t| t.trim().is_empty()) {
                return Err(KnowledgeError::invalid(field, "contains an empty entry"));
            }
        }
        if let (Some(from), Some(to)) = (self.valid_from, self.valid_to)
            && from >= to
        {
            return Err(KnowledgeError::invalid(
                "valid_to",
                "must be later than valid_from",
            ));
        }
        Ok(())
    }
}

pub(crate) fn validate_slug(slug: &str) -> Result<()> {
    let ok = !slug.is_empty()
        && slug.len() <= 100
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(KnowledgeError::invalid(
            "slug",
            format!("`{slug}` must be 1–100 of a-z, 0-9 and inner `-`"),
        ))
    }
}

/// An article as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    pub id: String,
    #[serde(flatten)]
    pub content: ArticleInput,
    pub author: String,
    /// Number of the newest version; pass it back to `update` as the optimistic lock.
    pub version: i64,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl Article {
    /// Whether the article is valid at `at` (its validity window contains it).
    pub fn is_valid_at(&self, at: UnixMillis) -> bool {
        self.content.valid_from.is_none_or(|f| f <= at)
            && self.content.valid_to.is_none_or(|t| at < t)
    }
}

/// What an edit did; kept with each version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionAction {
    Create,
    Update,
    Publish,
    Unpublish,
    Archive,
    Restore,
    Import,
}

impl VersionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Publish => "publish",
            Self::Unpublish => "unpublish",
            Self::Archive => "archive",
            Self::Restore => "restore",
            Self::Import => "import",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "create" => Self::Create,
            "update" => Self::Update,
            "publish" => Self::Publish,
            "unpublish" => Self::Unpublish,
            "archive" => Self::Archive,
            "restore" => Self::Restore,
            "import" => Self::Import,
            other => return Err(KnowledgeError::Corrupt(format!("unknown action {other}"))),
        })
    }
}

/// A full snapshot of an article after one edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleVersion {
    pub article_id: String,
    pub version: i64,
    /// The slug is not versioned (it is the article's identity); this is the current one.
    #[serde(flatten)]
    pub content: ArticleInput,
    pub author: String,
    pub action: VersionAction,
    pub created_at: UnixMillis,
}

/// A list row (no body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleSummary {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub category: String,
    pub status: ArticleStatus,
    pub valid_from: Option<UnixMillis>,
    pub valid_to: Option<UnixMillis>,
    pub author: String,
    pub version: i64,
    pub updated_at: UnixMillis,
}

/// Filters for listing articles from the database (the editor's table view).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListFilter {
    pub category: Option<String>,
    pub status: Option<ArticleStatus>,
    /// Page start (0-based row offset).
    #[serde(default)]
    pub offset: u32,
    /// Page size; 0 means the default (50), capped at 500.
    #[serde(default)]
    pub limit: u32,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticlePage {
    pub total: u64,
    pub items: Vec<ArticleSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ArticleInput {
        ArticleInput {
            slug: "deposit-amount".into(),
            title: "保证金金额".into(),
            body: "每个申请编码 2000 元。".into(),
            category: "保证金".into(),
            tags: vec![],
            keywords: vec![],
            status: ArticleStatus::Draft,
            valid_from: None,
            valid_to: None,
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert!(input().validate().is_ok());
        let mut a = input();
        a.slug = "Bad Slug".into();
        assert!(
            matches!(a.validate(), Err(KnowledgeError::Invalid { field, .. }) if field == "slug")
        );
        let mut a = input();
        a.title = " ".into();
        assert!(
            matches!(a.validate(), Err(KnowledgeError::Invalid { field, .. }) if field == "title")
        );
        let mut a = input();
        a.valid_from = Some(10);
        a.valid_to = Some(10);
        assert!(
            matches!(a.validate(), Err(KnowledgeError::Invalid { field, .. }) if field == "valid_to")
        );
    }

    #[test]
    fn status_round_trips() {
        for s in ArticleStatus::ALL {
            assert_eq!(s.as_str().parse::<ArticleStatus>().unwrap(), s);
        }
        assert!("deleted".parse::<ArticleStatus>().is_err());
    }
}
