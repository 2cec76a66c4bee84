-- SMS notices (issue 9): approved templates, batches (audience from bidder data or an
-- uploaded list), the outbox of messages drained by the sender, delivery receipts and the
-- opt-out list. Portable between SQLite and PostgreSQL: application-made text ids, UTC
-- milliseconds in BIGINT, flags as BIGINT 0/1, JSON as text, no backend-only types.

-- A message template with `{variable}` placeholders. Only `approved` templates may be used
-- for a batch; editing an approved template makes it a `draft` again (version + 1).
CREATE TABLE sms_templates (
    id           TEXT PRIMARY KEY,
    -- deposit_notice | deposit_reminder | deposit_correction | activation |
    -- activation_reminder | payment | payment_reminder | refund_failure | other
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    body         TEXT NOT NULL,
    -- draft | approved
    status       TEXT NOT NULL,
    version      BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    updated_by   TEXT NOT NULL,
    approved_by  TEXT NOT NULL,
    approved_at  BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- A batch: made as a `draft` with its messages `held` (the preview), then `confirmed`
-- (messages queued) or `cancelled`. Counters are computed from sms_messages.
CREATE TABLE sms_batches (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    template_id       TEXT NOT NULL,
    template_version  BIGINT NOT NULL,
    -- JSON: {"kind":"bidders","period":"2025-11","filter":"deposit_unpaid"} or {"kind":"upload",…}
    audience          TEXT NOT NULL,
    -- draft | confirmed | cancelled
    status            TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    confirmed_by      TEXT NOT NULL,
    confirmed_at      BIGINT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX sms_batches_created ON sms_batches (created_at);

-- The outbox: one row per message. `id` is also the idempotency key given to the provider
-- (its client message id). Status: held (draft batch) | queued | sending (claimed: handed to
-- the provider, outcome not yet recorded) | sent (accepted by the provider) | delivered |
-- undelivered (receipt) | failed (retries exhausted or refused) | excluded_opt_out |
-- invalid_mobile | cancelled | unknown (in doubt after a crash, provider cannot tell).
CREATE TABLE sms_messages (
    id               TEXT PRIMARY KEY,
    -- '' for single notices (e.g. the deposit-review notice)
    batch_id         TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    mobile           TEXT NOT NULL,
    body             TEXT NOT NULL,
    segments         BIGINT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    claimed_at       BIGINT NOT NULL,
    provider_id      TEXT NOT NULL,
    last_error       TEXT NOT NULL,
    sent_at          BIGINT NOT NULL,
    receipt_at       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX sms_messages_due ON sms_messages (status, next_attempt_at);
CREATE INDEX sms_messages_batch ON sms_messages (batch_id, status);

-- Mobiles that asked not to get notices (回复TD退订, or added by staff).
CREATE TABLE sms_opt_outs (
    mobile      TEXT PRIMARY KEY,
    -- reply | staff
    source      TEXT NOT NULL,
    note        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
