//! The tantivy index, derived from the database.
//!
//! Every text is indexed twice: as jieba words and as character bigrams (see
//! [`crate::analysis`]). A question becomes a `BooleanQuery` of `Should` term queries made
//! from the same analyzers' tokens, over six fields with boosts title > keywords > body —
//! never tantivy's `QueryParser`, which turns unspaced Chinese into a phrase query that
//! finds nothing. Filters (category, status, tag, validity date) are `Must` clauses.
//!
//! The index records the database revision it was built from in its commit payload, so
//! [`SearchIndex::indexed_revision`] tells whether it is stale. Writers are opened per
//! batch and dropped after the commit, which releases tantivy's lock: another process (the
//! `hotline kb reindex` command) can write while a server has the index open, and the
//! server's reader picks the commit up by itself.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hotline_core::UnixMillis;
use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::analysis::{
    BIGRAM_TOKENIZER, BigramTokenizer, WORD_TOKENIZER, WordTokenizer, expand_synonyms,
    markdown_to_text, normalize, synonyms_of,
};
use crate::error::{KnowledgeError, Result};
use crate::model::{Article, ArticleStatus};

/// Bumped whenever the schema or the analysis changes: an index with another schema
/// version is rebuilt.
pub const SCHEMA_VERSION: u32 = 1;

/// Field boosts: title > keywords > body; the bigram copy of a field counts a bit less than
/// its word copy (a bigram match is weaker evidence than a whole word).
const BOOST_TITLE: f32 = 3.0;
const BOOST_KEYWORDS: f32 = 2.0;
const BOOST_BODY: f32 = 1.0;
const BIGRAM_FACTOR: f32 = 0.6;
/// Weight of words that only come from the synonym table.
const SYNONYM_WEIGHT: f32 = 0.6;

const WRITER_MEMORY: usize = 50_000_000;
const SNIPPET_BYTES: usize = 360;

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    slug: Field,
    category: Field,
    status: Field,
    tags: Field,
    title: Field,
    title_bi: Field,
    keywords: Field,
    keywords_bi: Field,
    body: Field,
    body_bi: Field,
    valid_from: Field,
    valid_to: Field,
    updated_at: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |tokenizer: &str, stored: bool| {
        let o = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        if stored { o.set_stored() } else { o }
    };
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        slug: b.add_text_field("slug", STRING | STORED),
        category: b.add_text_field("category", STRING | STORED),
        status: b.add_text_field("status", STRING | STORED),
        tags: b.add_text_field("tags", STRING | STORED),
        title: b.add_text_field("title", text(WORD_TOKENIZER, true)),
        title_bi: b.add_text_field("title_bi", text(BIGRAM_TOKENIZER, false)),
        keywords: b.add_text_field("keywords", text(WORD_TOKENIZER, true)),
        keywords_bi: b.add_text_field("keywords_bi", text(BIGRAM_TOKENIZER, false)),
        body: b.add_text_field("body", text(WORD_TOKENIZER, true)),
        body_bi: b.add_text_field("body_bi", text(BIGRAM_TOKENIZER, false)),
        valid_from: b.add_i64_field("valid_from", INDEXED | FAST | STORED),
        valid_to: b.add_i64_field("valid_to", INDEXED | FAST | STORED),
        updated_at: b.add_i64_field("updated_at", STORED),
    };
    (b.build(), fields)
}

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    schema: u32,
    revision: i64,
}

/// A search request. `SearchQuery::published(text)` is what agents and auto-reply use.
/// Deserializes from partial input (e.g. HTTP query parameters); missing fields take the
/// defaults of [`SearchQuery::default`], which searches published articles only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchQuery {
    pub text: String,
    pub category: Option<String>,
    /// `None` = any status (editors only).
    pub status: Option<ArticleStatus>,
    pub tag: Option<String>,
    /// Only articles whose validity window contains this instant.
    pub valid_at: Option<UnixMillis>,
    pub offset: usize,
    /// Page size; 0 means 10; capped at 100.
    pub limit: usize,
}

impl SearchQuery {
    /// Published articles only, first page of 10.
    pub fn published(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            category: None,
            status: Some(ArticleStatus::Published),
            tag: None,
            valid_at: None,
            offset: 0,
            limit: 10,
        }
    }
}

impl Default for SearchQuery {
    /// Published only: a caller must opt in to drafts and archived articles.
    fn default() -> Self {
        Self::published("")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub id: String,
    pub slug: String,
    pub title: String,
    /// The title with matches in `<b>…</b>`, HTML-escaped.
    pub title_html: String,
    pub category: String,
    pub status: ArticleStatus,
    pub score: f32,
    /// A fragment of the body with matches in `<b>…</b>`, HTML-escaped.
    pub snippet_html: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Number of matching articles (all pages).
    pub total: usize,
    pub hits: Vec<SearchHit>,
}

/// A confident answer for auto-reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub id: String,
    pub slug: String,
    pub title: String,
    /// The article body as plain text (Markdown marks removed).
    pub text: String,
    pub score: f32,
    /// Score of the runner-up (0 when there is none).
    pub runner_up_score: f32,
    /// Share of the question's content words found in the article (with synonyms).
    pub coverage: f32,
}

/// The rule behind [`SearchIndex::best_answer`]. The top published, currently valid
/// article is returned only when all three hold:
/// 1. `score >= min_score` (the match is not incidental),
/// 2. `score >= min_ratio × runner_up` (it clearly beats the second),
/// 3. `coverage >= min_coverage`: that share of the question's content words (jieba words
///    after stop words; a word counts when it or a synonym occurs in the article) is found
///    in the article, so a question about something else does not get a near miss.
///
/// The defaults were chosen on the labelled question set (tests/questions.toml).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnswerPolicy {
    pub min_score: f32,
    pub min_ratio: f32,
    pub min_coverage: f32,
}

impl Default for AnswerPolicy {
    fn default() -> Self {
        Self {
            min_score: 8.0,
            min_ratio: 1.2,
            min_coverage: 0.5,
        }
    }
}

/// The search index. Share it behind an `Arc`; all methods take `&self`.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// Serializes writers of this process (tantivy allows one writer per index).
    write_lock: Mutex<()>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("path", &self.path)
            .finish()
    }
}

fn register_tokenizers(index: &Index) {
    index
        .tokenizers()
        .register(WORD_TOKENIZER, TextAnalyzer::from(WordTokenizer::default()));
    index
        .tokenizers()
        .register(BIGRAM_TOKENIZER, TextAnalyzer::from(BigramTokenizer));
}

fn dir_error(path: &Path, message: impl Into<String>) -> KnowledgeError {
    KnowledgeError::IndexDirectory {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it (and the directory) when missing. An index of
    /// another schema version, or one that cannot be read, is deleted and created empty
    /// (its revision is then unknown, so the caller rebuilds it). A directory that holds
    /// other files and no index is refused rather than wiped.
    pub fn open_or_create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| KnowledgeError::io(dir, e))?;
        let has_meta = dir.join("meta.json").exists();
        if has_meta {
            match Self::open_existing(dir) {
                Ok(Some(index)) => return Ok(index),
                Ok(None) => tracing::warn!(?dir, "search index has another schema; recreating"),
                Err(e) => tracing::warn!(?dir, error = %e, "search index unreadable; recreating"),
            }
            std::fs::remove_dir_all(dir).map_err(|e| KnowledgeError::io(dir, e))?;
            std::fs::create_dir_all(dir).map_err(|e| KnowledgeError::io(dir, e))?;
        } else {
            let mut entries = std::fs::read_dir(dir).map_err(|e| KnowledgeError::io(dir, e))?;
            if entries.next().is_some() {
                return Err(dir_error(
                    dir,
                    "not empty and not a search index; refusing to use it",
                ));
            }
        }
        let (schema, fields) = schema();
        let index = Index::create_in_dir(dir, schema)?;
        Self::from_index(index, fields, Some(dir.to_path_buf()))
    }

    fn open_existing(dir: &Path) -> Result<Option<Self>> {
        let index = Index::open_in_dir(dir)?;
        let payload = index.load_metas()?.payload;
        let schema_ok = payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<Payload>(p).ok())
            .is_some_and(|p| p.schema == SCHEMA_VERSION);
        let (expected, fields) = schema();
        if !schema_ok || index.schema() != expected {
            return Ok(None);
        }
        Self::from_index(index, fields, Some(dir.to_path_buf())).map(Some)
    }

    /// An index in memory (tests, benchmarks).
    pub fn in_memory() -> Result<Self> {
        let (schema, fields) = schema();
        Self::from_index(Index::create_in_ram(schema), fields, None)
    }

    fn from_index(index: Index, fields: Fields, path: Option<PathBuf>) -> Result<Self> {
        register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        Ok(Self {
            index,
            reader,
            fields,
            write_lock: Mutex::new(()),
            path,
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The database revision this index was last built or updated from; `None` for a new
    /// or recreated index.
    pub fn indexed_revision(&self) -> Result<Option<i64>> {
        let payload = self.index.load_metas()?.payload;
        Ok(payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<Payload>(p).ok())
            .filter(|p| p.schema == SCHEMA_VERSION)
            .map(|p| p.revision))
    }

    /// Number of indexed articles.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn with_writer(&self, revision: i64, f: impl FnOnce(&IndexWriter) -> Result<()>) -> Result<()> {
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut writer: IndexWriter = self.index.writer(WRITER_MEMORY)?;
        f(&writer)?;
        let mut commit = writer.prepare_commit()?;
        let payload = serde_json::to_string(&Payload {
            schema: SCHEMA_VERSION,
            revision,
        })
        .map_err(|e| KnowledgeError::Corrupt(e.to_string()))?;
        commit.set_payload(&payload);
        commit.commit()?;
        writer.wait_merging_threads()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Replaces the whole index with `articles`, built from database revision `revision`.
    pub fn rebuild(&self, articles: &[Article], revision: i64) -> Result<()> {
        self.with_writer(revision, |w| {
            w.delete_all_documents()?;
            for a in articles {
                w.add_document(self.document(a))?;
            }
            Ok(())
        })
    }

    /// Adds or replaces articles (after a create, edit, publish, import).
    pub fn upsert(&self, articles: &[Article], revision: i64) -> Result<()> {
        self.with_writer(revision, |w| {
            for a in articles {
                w.delete_term(Term::from_field_text(self.fields.id, &a.id));
                w.add_document(self.document(a))?;
            }
            Ok(())
        })
    }

    /// Removes an article (after a delete).
    pub fn remove(&self, id: &str, revision: i64) -> Result<()> {
        self.with_writer(revision, |w| {
            w.delete_term(Term::from_field_text(self.fields.id, id));
            Ok(())
        })
    }

    fn document(&self, a: &Article) -> TantivyDocument {
        let f = &self.fields;
        let c = &a.content;
        let mut d = TantivyDocument::new();
        d.add_text(f.id, &a.id);
        d.add_text(f.slug, &c.slug);
        d.add_text(f.category, &c.category);
        d.add_text(f.status, c.status.as_str());
        for t in &c.tags {
            d.add_text(f.tags, t);
        }
        d.add_text(f.title, &c.title);
        d.add_text(f.title_bi, &c.title);
        let keywords = c.keywords.join("，");
        d.add_text(f.keywords, &keywords);
        d.add_text(f.keywords_bi, &keywords);
        let body = markdown_to_text(&c.body);
        d.add_text(f.body_bi, &body);
        d.add_text(f.body, body);
        d.add_i64(f.valid_from, c.valid_from.unwrap_or(i64::MIN));
        d.add_i64(f.valid_to, c.valid_to.unwrap_or(i64::MAX));
        d.add_i64(f.updated_at, a.updated_at);
        d
    }

    /// The scored part of a query: `Should` term queries over the six text fields, built
    /// from the analyzers' tokens of the question and its synonym expansions. `None` when
    /// the question has no searchable token.
    pub fn text_query(&self, question: &str) -> Option<Box<dyn Query>> {
        let f = &self.fields;
        let mut weights: HashMap<(Field, String), f32> = HashMap::new();
        let mut add = |field: Field, text: String, w: f32| {
            let e = weights.entry((field, text)).or_insert(0.0);
            *e = e.max(w);
        };
        let mut words = WordTokenizer::default();
        for (text, w) in expand_synonyms(question, SYNONYM_WEIGHT) {
            let word_tokens = words.tokens(&text);
            for t in &word_tokens {
                add(f.title, t.text.clone(), w * BOOST_TITLE);
                add(f.keywords, t.text.clone(), w * BOOST_KEYWORDS);
                add(f.body, t.text.clone(), w * BOOST_BODY);
            }
            for t in BigramTokenizer.tokens(&text) {
                // Bigrams that straddle two words of the question (时候|退 → 候退) are kept
                // at full weight: down-weighting them lost more than it gained on the
                // labelled set.
                let w = w * BIGRAM_FACTOR;
                add(f.title_bi, t.text.clone(), w * BOOST_TITLE);
                add(f.keywords_bi, t.text.clone(), w * BOOST_KEYWORDS);
                add(f.body_bi, t.text, w * BOOST_BODY);
            }
        }
        if weights.is_empty() {
            return None;
        }
        // Sorted so that the query (and float summation order) is deterministic.
        let sorted: BTreeMap<(Field, String), f32> = weights.into_iter().collect();
        let clauses: Vec<(Occur, Box<dyn Query>)> = sorted
            .into_iter()
            .map(|((field, text), boost)| {
                let tq = TermQuery::new(
                    Term::from_field_text(field, &text),
                    IndexRecordOption::WithFreqs,
                );
                let q: Box<dyn Query> = Box::new(BoostQuery::new(Box::new(tq), boost));
                (Occur::Should, q)
            })
            .collect();
        Some(Box::new(BooleanQuery::new(clauses)))
    }

    fn filters(&self, q: &SearchQuery) -> Vec<(Occur, Box<dyn Query>)> {
        let f = &self.fields;
        let mut out: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let term = |field: Field, v: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, v),
                IndexRecordOption::Basic,
            ))
        };
        if let Some(c) = &q.category {
            out.push((Occur::Must, term(f.category, c)));
        }
        if let Some(s) = q.status {
            out.push((Occur::Must, term(f.status, s.as_str())));
        }
        if let Some(t) = &q.tag {
            out.push((Occur::Must, term(f.tags, t)));
        }
        if let Some(at) = q.valid_at {
            out.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Unbounded,
                    Bound::Included(Term::from_field_i64(f.valid_from, at)),
                )),
            ));
            out.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Excluded(Term::from_field_i64(f.valid_to, at)),
                    Bound::Unbounded,
                )),
            ));
        }
        out
    }

    /// Ranked, filtered, paged search with highlighted snippets. An empty question with
    /// filters lists the matching articles.
    pub fn search(&self, q: &SearchQuery) -> Result<SearchResults> {
        let limit = match q.limit {
            0 => 10,
            n => n.min(100),
        };
        let text_query = self.text_query(&q.text);
        let mut clauses = self.filters(q);
        match &text_query {
            Some(tq) => clauses.push((Occur::Must, tq.box_clone())),
            None if q.text.trim().is_empty() => clauses.push((Occur::Must, Box::new(AllQuery))),
            None => {
                return Ok(SearchResults {
                    total: 0,
                    hits: vec![],
                });
            }
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let (total, top) = searcher.search(
            &query,
            &(
                Count,
                TopDocs::with_limit(limit)
                    .and_offset(q.offset)
                    .order_by_score(),
            ),
        )?;
        let snippets = match &text_query {
            Some(tq) => Some(Highlighter::new(&searcher, tq.as_ref(), &self.fields)?),
            None => None,
        };
        let mut hits = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let get = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            };
            let title = get(self.fields.title);
            let body = get(self.fields.body);
            let (title_html, snippet_html) = match &snippets {
                Some(h) => (
                    h.title(&title).unwrap_or_else(|| escape_html(&title)),
                    h.body(&body).unwrap_or_else(|| lead(&body)),
                ),
                None => (escape_html(&title), lead(&body)),
            };
            hits.push(SearchHit {
                id: get(self.fields.id),
                slug: get(self.fields.slug),
                title,
                title_html,
                category: get(self.fields.category),
                status: get(self.fields.status)
                    .parse()
                    .map_err(|_| KnowledgeError::Corrupt("status in index".into()))?,
                score,
                snippet_html,
            });
        }
        Ok(SearchResults { total, hits })
    }

    /// The top published article valid at `at`, only when the [`AnswerPolicy`] says the
    /// match is confident; otherwise `None` (hand over to a human).
    pub fn best_answer(
        &self,
        question: &str,
        at: UnixMillis,
        policy: &AnswerPolicy,
    ) -> Result<Option<Answer>> {
        Ok(self.answer_candidate(question, at)?.filter(|a| {
            a.score >= policy.min_score
                && a.score >= policy.min_ratio * a.runner_up_score
                && a.coverage >= policy.min_coverage
        }))
    }

    /// The top published article valid at `at` with the figures the policy looks at,
    /// whether confident or not (for tuning and for the agent's "suggested answer").
    pub fn answer_candidate(&self, question: &str, at: UnixMillis) -> Result<Option<Answer>> {
        let mut q = SearchQuery::published(question);
        q.valid_at = Some(at);
        q.limit = 2;
        let Some(text_query) = self.text_query(question) else {
            return Ok(None);
        };
        let mut clauses = self.filters(&q);
        clauses.push((Occur::Must, text_query));
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(2).order_by_score(),
        )?;
        let Some(&(score, addr)) = top.first() else {
            return Ok(None);
        };
        let doc: TantivyDocument = searcher.doc(addr)?;
        let get = |field: Field| {
            doc.get_first(field)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let (title, keywords, text) = (
            get(self.fields.title),
            get(self.fields.keywords),
            get(self.fields.body),
        );
        let haystack = normalize(&format!("{title}\n{keywords}\n{text}"));
        Ok(Some(Answer {
            id: get(self.fields.id),
            slug: get(self.fields.slug),
            title,
            text,
            score,
            runner_up_score: top.get(1).map_or(0.0, |x| x.0),
            coverage: coverage(question, &haystack),
        }))
    }
}

/// Share of the question's content words that occur (themselves or a synonym) in
/// `haystack` (normalized text).
pub fn coverage(question: &str, haystack: &str) -> f32 {
    let words: HashSet<String> = WordTokenizer::default()
        .tokens(question)
        .into_iter()
        .map(|t| t.text)
        .collect();
    if words.is_empty() {
        return 0.0;
    }
    let found = words
        .iter()
        .filter(|w| {
            haystack.contains(&w[..]) || synonyms_of(w).iter().any(|s| haystack.contains(s))
        })
        .count();
    found as f32 / words.len() as f32
}

/// Highlights with the word fields first (whole words read better), falling back to the
/// bigram fields when no whole word matched.
struct Highlighter {
    title: [SnippetGenerator; 2],
    body: [SnippetGenerator; 2],
}

impl Highlighter {
    fn new(searcher: &tantivy::Searcher, query: &dyn Query, f: &Fields) -> Result<Self> {
        let bigrams = |field: Field, bytes: usize| -> Result<SnippetGenerator> {
            let mut g = SnippetGenerator::create(searcher, query, field)?;
            g.set_max_num_chars(bytes);
            Ok(g)
        };
        // Word fields: the query's terms, highlighted with the non-overlapping segmenter
        // (see `WordTokenizer::segmenting`), weighted like `SnippetGenerator::create` does.
        let words = |field: Field, bytes: usize| -> Result<SnippetGenerator> {
            let mut terms: Vec<Term> = Vec::new();
            query.query_terms(&mut |term, _| {
                if term.field() == field {
                    terms.push(term.clone());
                }
            });
            let mut weights = BTreeMap::new();
            for term in terms {
                let doc_freq = searcher.doc_freq(&term)?;
                if let (Some(text), true) = (term.value().as_str(), doc_freq > 0) {
                    weights.insert(text.to_string(), 1.0 / (1.0 + doc_freq as f32));
                }
            }
            let analyzer = TextAnalyzer::from(WordTokenizer::segmenting());
            Ok(SnippetGenerator::new(weights, analyzer, field, bytes))
        };
        Ok(Self {
            title: [words(f.title, 1_000)?, bigrams(f.title_bi, 1_000)?],
            body: [
                words(f.body, SNIPPET_BYTES)?,
                bigrams(f.body_bi, SNIPPET_BYTES)?,
            ],
        })
    }

    fn pick(generators: &[SnippetGenerator; 2], text: &str) -> Option<String> {
        generators.iter().find_map(|g| {
            let s = g.snippet(text);
            (!s.highlighted().is_empty()).then(|| s.to_html().replace("</b><b>", ""))
        })
    }

    fn title(&self, text: &str) -> Option<String> {
        Self::pick(&self.title, text)
    }

    fn body(&self, text: &str) -> Option<String> {
        Self::pick(&self.body, text)
    }
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The first ~100 characters of a body, escaped: the snippet when nothing is highlighted.
fn lead(body: &str) -> String {
    let mut s: String = body.chars().take(100).collect();
    if body.chars().count() > 100 {
        s.push('…');
    }
    escape_html(&s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ArticleInput;

    fn article(id: &str, title: &str, keywords: &[&str], body: &str) -> Article {
        Article {
            id: id.into(),
            content: ArticleInput {
                slug: id.into(),
                title: title.into(),
                body: body.into(),
                category: "测试".into(),
                tags: vec![],
                keywords: keywords.iter().map(|k| k.to_string()).collect(),
                status: ArticleStatus::Published,
                valid_from: None,
                valid_to: None,
            },
            author: "t".into(),
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn terms(index: &SearchIndex, q: &str) -> Vec<(String, String)> {
        let query = index.text_query(q).expect("tokens");
        let schema = index.index.schema();
        let mut out = Vec::new();
        query.query_terms(&mut |term, _| {
            let field = schema.get_field_name(term.field()).to_string();
            out.push((field, term.value().as_str().unwrap_or_default().to_string()));
        });
        out.sort();
        out
    }

    #[test]
    fn query_is_built_from_analyzer_tokens_and_synonyms() {
        let index = SearchIndex::in_memory().unwrap();
        let t = terms(&index, "押金啥时候退");
        let has = |f: &str, v: &str| t.contains(&(f.to_string(), v.to_string()));
        assert!(has("title", "押金") && has("keywords", "押金") && has("body", "押金"));
        assert!(has("title_bi", "押金") && has("body_bi", "押金"));
        // Synonyms of 押金 and of 退.
        assert!(has("title", "保证金") && has("body", "退款"), "{t:?}");
        // Stop words never become terms.
        assert!(!t.iter().any(|(_, v)| v == "啥" || v == "时候"), "{t:?}");
        assert!(index.text_query("？？ 的 了").is_none());
    }

    /// jieba's search mode emits 手机, 号码 and then 手机号码: offsets go backwards, which
    /// made tantivy's snippet code slice out of bounds (found by the benchmark).
    #[test]
    fn snippets_survive_overlapping_words_in_long_texts() {
        let index = SearchIndex::in_memory().unwrap();
        // Padding so that a snippet fragment boundary (SNIPPET_BYTES) falls between 手机
        // and 号码 for one of the articles.
        let docs: Vec<Article> = (50..70)
            .map(|k| {
                let body = format!("{}手机号码，申请编码。", "转账".repeat(k));
                article(&format!("a{k}"), "变更", &[], &body)
            })
            .collect();
        index.rebuild(&docs, 1).unwrap();
        let mut q = SearchQuery::published("手机号码");
        q.limit = 100;
        let res = index.search(&q).unwrap();
        assert_eq!(res.hits.len(), 20);
        for h in &res.hits {
            assert!(h.snippet_html.contains("<b>"), "{}", h.snippet_html);
        }
    }

    #[test]
    fn title_beats_keywords_beats_body() {
        let index = SearchIndex::in_memory().unwrap();
        index
            .rebuild(
                &[
                    article("body", "其他事项", &[], "这里提到激活。"),
                    article("title", "激活", &[], "见正文说明。"),
                    article("kw", "其他说明", &["激活"], "见正文说明。"),
                ],
                1,
            )
            .unwrap();
        let hits = index.search(&SearchQuery::published("激活")).unwrap().hits;
        let order: Vec<&str> = hits.iter().map(|h| h.slug.as_str()).collect();
        assert_eq!(order, ["title", "kw", "body"]);
    }

    #[test]
    fn unspaced_chinese_matches_through_bigrams_and_pages() {
        let index = SearchIndex::in_memory().unwrap();
        let docs: Vec<Article> = (0..15)
            .map(|i| article(&format!("a{i:02}"), "退款说明", &[], "保证金原路退还。"))
            .collect();
        index.rebuild(&docs, 3).unwrap();
        assert_eq!(index.indexed_revision().unwrap(), Some(3));
        // 退款说明 is one jieba word sequence; 款说 only exists as a bigram.
        let mut q = SearchQuery::published("款说");
        q.limit = 10;
        let first = index.search(&q).unwrap();
        assert_eq!((first.total, first.hits.len()), (15, 10));
        q.offset = 10;
        let second = index.search(&q).unwrap();
        assert_eq!(second.hits.len(), 5);
        assert!(
            first.hits[0].title_html.contains("<b>"),
            "{}",
            first.hits[0].title_html
        );
        index.remove("a00", 4).unwrap();
        assert_eq!(index.num_docs(), 14);
    }
}
