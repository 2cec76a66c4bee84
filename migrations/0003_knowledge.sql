-- Knowledge base (issue 6): articles, every edit kept as a version, and a revision counter
-- that tells whether the derived search index is older than the database.
-- Portable between SQLite and PostgreSQL: application-made text ids, UTC milliseconds in
-- BIGINT, list fields (tags, keywords) as JSON array text, no backend-only types.

CREATE TABLE kb_articles (
    id          TEXT PRIMARY KEY,
    -- Stable human-readable key: file name on export/import, label in the question set.
    slug        TEXT NOT NULL UNIQUE,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    category    TEXT NOT NULL,
    tags        TEXT NOT NULL,
    keywords    TEXT NOT NULL,
    -- draft | published | archived
    status      TEXT NOT NULL,
    -- Validity window [valid_from, valid_to); NULL means open-ended.
    valid_from  BIGINT,
    valid_to    BIGINT,
    author      TEXT NOT NULL,
    -- Number of the newest row in kb_article_versions; also the optimistic-lock token.
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX kb_articles_category ON kb_articles (category);
CREATE INDEX kb_articles_status ON kb_articles (status);

-- A full snapshot of the article after each edit (create, update, status change, restore).
CREATE TABLE kb_article_versions (
    id          TEXT PRIMARY KEY,
    article_id  TEXT NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    category    TEXT NOT NULL,
    tags        TEXT NOT NULL,
    keywords    TEXT NOT NULL,
    status      TEXT NOT NULL,
    valid_from  BIGINT,
    valid_to    BIGINT,
    author      TEXT NOT NULL,
    -- What the edit was: create | update | publish | archive | unpublish | restore | import
    action      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (article_id, version)
);

-- One row; bumped in the same transaction as every write to the tables above. The search
-- index stores the revision it was built from (tantivy commit payload).
CREATE TABLE kb_meta (
    id        TEXT PRIMARY KEY,
    revision  BIGINT NOT NULL
);
INSERT INTO kb_meta (id, revision) VALUES ('kb', 0);
