-- Recording (issue 5): one row per recorded call, QA reviews, annotations at timestamps,
-- versions of the call summary (proofreading keeps the original), the review queue.
-- Portable between SQLite and PostgreSQL: application-made text ids, UTC milliseconds in
-- BIGINT, scores in hundredths of a point in BIGINT, JSON as text, no backend-only types.

CREATE TABLE recordings (
    id            TEXT PRIMARY KEY,
    call_id       TEXT NOT NULL UNIQUE,
    caller        TEXT NOT NULL,
    -- Username of the agent who took the call ('' for IVR-only calls).
    agent         TEXT NOT NULL,
    seat          TEXT NOT NULL,
    queue         TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    bytes         BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    -- YYYY/MM/DD/<call-id>.wav relative to the archive root (and the backup root).
    path          TEXT NOT NULL,
    -- recording | finished | recovered | failed | deleted
    state         TEXT NOT NULL,
    error         TEXT NOT NULL,
    -- pending | done | failed | none
    backup_state  TEXT NOT NULL,
    backed_up_at  BIGINT,
    -- The complaint (CRM ticket id) this recording is evidence for, if any.
    complaint_id  TEXT,
    -- JSON array of [start_ms, end_ms] pauses.
    pauses        TEXT NOT NULL,
    dropped_frames BIGINT NOT NULL,
    -- Latest review's score in hundredths (0..=10000); NULL when not reviewed.
    score         BIGINT,
    reviewed      BIGINT NOT NULL,
    -- none | confirmed | corrected
    proofread     TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX recordings_started_at ON recordings (started_at);
CREATE INDEX recordings_agent ON recordings (agent, started_at);
CREATE INDEX recordings_state ON recordings (state);

-- One review per reviewer and recording; a second submission replaces the first.
CREATE TABLE recording_reviews (
    id           TEXT PRIMARY KEY,
    recording_id TEXT NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    reviewer     TEXT NOT NULL,
    -- JSON object criterion key -> points 0..=100, and the form (keys, labels, weights) used.
    scores       TEXT NOT NULL,
    form         TEXT NOT NULL,
    score        BIGINT NOT NULL,
    comment      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (recording_id, reviewer)
);

CREATE TABLE recording_annotations (
    id           TEXT PRIMARY KEY,
    recording_id TEXT NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    at_ms        BIGINT NOT NULL,
    text         TEXT NOT NULL,
    tag          TEXT NOT NULL,
    author       TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX recording_annotations_recording ON recording_annotations (recording_id, at_ms);

-- The agent's call summary and every proofreading step, never overwritten.
CREATE TABLE recording_summaries (
    id           TEXT PRIMARY KEY,
    recording_id TEXT NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    version      BIGINT NOT NULL,
    -- original | confirmed | corrected
    kind         TEXT NOT NULL,
    summary      TEXT NOT NULL,
    note         TEXT NOT NULL,
    author       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (recording_id, version)
);

CREATE TABLE recording_review_queue (
    recording_id TEXT PRIMARY KEY REFERENCES recordings (id) ON DELETE CASCADE,
    -- sample | manual | complaint
    reason       TEXT NOT NULL,
    -- ISO week of the sample, e.g. 2026-W48; '' for manual entries.
    week         TEXT NOT NULL,
    added_at     BIGINT NOT NULL,
    done_at      BIGINT
);
CREATE INDEX recording_review_queue_open ON recording_review_queue (done_at, added_at);
