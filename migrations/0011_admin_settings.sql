-- Settings that administrators change in the web console (issue 10, "Admin"). Portable
-- between SQLite and PostgreSQL: text keys, UTC milliseconds in BIGINT, flags as BIGINT 0/1,
-- '' for "not set", no backend-only types.

-- One row per queue whose settings were edited: these values override the configuration
-- file's `ivr.acd.queues[]` entry of the same name (the file still decides which queues
-- exist). `version` starts at 1 and grows with every edit; an edit names the version it
-- was made from (optimistic locking: a stale edit is refused).
CREATE TABLE queue_settings (
    queue              TEXT PRIMARY KEY,
    -- longest_idle | round_robin | ring_all
    strategy           TEXT NOT NULL,
    announce_every_ms  BIGINT NOT NULL,
    max_wait_ms        BIGINT NOT NULL,
    callback_key       TEXT NOT NULL,
    moh                TEXT NOT NULL,
    version            BIGINT NOT NULL,
    updated_by         TEXT NOT NULL,
    updated_at         BIGINT NOT NULL
);

-- Special service days (holidays, announced closures): merged into the IVR flow's
-- `hours.special` at every load and reload; a row overrides the flow file's entry for the
-- same date. `day` is the local date YYYY-MM-DD; a day is either closed (closed = 1, no
-- times) or open at other hours (open_at < close_at, HH:MM).
CREATE TABLE service_days (
    day         TEXT PRIMARY KEY,
    closed      BIGINT NOT NULL,
    open_at     TEXT NOT NULL,
    close_at    TEXT NOT NULL,
    note        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
