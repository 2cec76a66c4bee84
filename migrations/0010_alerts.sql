-- System health alerts (issue 10): one row per alert, from raised to cleared, with who
-- acknowledged it and what was sent. Portable between SQLite and PostgreSQL: application-made
-- text ids, UTC milliseconds in BIGINT, no backend-only types.

CREATE TABLE alerts (
    id                 TEXT PRIMARY KEY,
    -- trunk_down | seat_unreachable | recording_failed | backup_failed | disk_low |
    -- database | callers_waiting
    rule               TEXT NOT NULL,
    -- What the rule is about: a peer name, a seat, a queue, a path, 'database', 'recordings'.
    subject            TEXT NOT NULL,
    -- critical | warning
    severity           TEXT NOT NULL,
    -- The latest description (zh-CN), e.g. how many callers wait.
    message            TEXT NOT NULL,
    raised_at          BIGINT NOT NULL,
    -- NULL while active.
    cleared_at         BIGINT,
    -- '' until acknowledged.
    acked_by           TEXT NOT NULL,
    acked_at           BIGINT,
    -- Reminders sent while active.
    reminders          BIGINT NOT NULL,
    last_notified_at   BIGINT NOT NULL,
    -- SMS messages queued (one per technician and notice) and webhook deliveries.
    sms_queued         BIGINT NOT NULL,
    webhook_delivered  BIGINT NOT NULL,
    webhook_failed     BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX alerts_raised_at ON alerts (raised_at);
CREATE INDEX alerts_open ON alerts (cleared_at, rule, subject);

-- One row the watcher rewrites on every sample: a database that answers SELECT but refuses
-- writes (disk full, read-only) is found by this write failing.
CREATE TABLE health_probe (
    id  BIGINT PRIMARY KEY,
    at  BIGINT NOT NULL
);
INSERT INTO health_probe (id, at) VALUES (1, 0);

-- Staff notices (alerts to the on-duty technician) are sent during the SMS quiet hours,
-- which exist for the public's notices.
ALTER TABLE sms_messages ADD COLUMN urgent BIGINT NOT NULL DEFAULT 0;
