-- Integrations (issue 8): auction bidder records, Bohai Bank deposit-flow and refund-failure
-- files, the monthly auction calendar, 12345 work orders and the outbox of replies to 12345.
-- Portable between SQLite and PostgreSQL: application-made text ids, UTC milliseconds in
-- BIGINT, money in BIGINT cents (fen), flags as BIGINT 0/1, dates as 'YYYY-MM-DD' text
-- ('' when unknown), no backend-only types.

-- One row per application code and auction period ('YYYY-MM'), upserted by imports of the
-- auction system's export. `import_hash` is the SHA-256 of the imported fields: an import of
-- the same row leaves it alone (idempotent imports, "unchanged" counts).
CREATE TABLE auction_bidders (
    period            TEXT NOT NULL,
    application_code  TEXT NOT NULL,
    -- person | company
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    id_number         TEXT NOT NULL,
    mobile            TEXT NOT NULL,
    -- unpaid | paid | refunded | forfeited
    deposit_status    TEXT NOT NULL,
    deposit_date      TEXT NOT NULL,
    deposit_cents     BIGINT NOT NULL,
    activated         BIGINT NOT NULL,
    -- pending | won | lost
    result            TEXT NOT NULL,
    price_cents       BIGINT NOT NULL,
    -- none | unpaid | paid | defaulted
    payment_status    TEXT NOT NULL,
    -- none | pending | refunded | failed
    refund_status     TEXT NOT NULL,
    refund_date       TEXT NOT NULL,
    refund_failure    TEXT NOT NULL,
    import_hash       TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (period, application_code)
);
-- (code, period) and (mobile, period): both filter and "newest period first" from one index,
-- so the planner never prefers a backward scan of the primary key (seen on PostgreSQL).
CREATE INDEX auction_bidders_code ON auction_bidders (application_code, period);
CREATE INDEX auction_bidders_mobile ON auction_bidders (mobile, period);

-- Every import of a file (bidders, deposit flow, refund failures), dry runs included.
CREATE TABLE auction_imports (
    id          TEXT PRIMARY KEY,
    -- bidders | deposits | refund_failures
    kind        TEXT NOT NULL,
    period      TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    dry_run     BIGINT NOT NULL,
    -- ok | rejected
    outcome     TEXT NOT NULL,
    rows_total  BIGINT NOT NULL,
    inserted    BIGINT NOT NULL,
    updated     BIGINT NOT NULL,
    unchanged   BIGINT NOT NULL,
    bad_rows    BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX auction_imports_period ON auction_imports (period, kind);

-- Lines of the bank's deposit-flow files (到账流水). A line is `matched` to a bidder or a
-- `mismatch` that staff resolve by hand (手工勾兑): resolution accepted (credited to
-- `application_code`) or returned (退回付款人). The bank's serial number makes re-imports
-- idempotent.
CREATE TABLE bank_deposits (
    id                TEXT PRIMARY KEY,
    period            TEXT NOT NULL,
    import_id         TEXT NOT NULL,
    bank_serial       TEXT NOT NULL,
    payer_name        TEXT NOT NULL,
    payer_account     TEXT NOT NULL,
    amount_cents      BIGINT NOT NULL,
    arrived_at        BIGINT NOT NULL,
    memo              TEXT NOT NULL,
    application_code  TEXT NOT NULL,
    -- matched | mismatch
    outcome           TEXT NOT NULL,
    -- '' | unknown_code | late | duplicate | wrong_amount | name_differs
    mismatch_kind     TEXT NOT NULL,
    -- '' | accepted | returned
    resolution        TEXT NOT NULL,
    resolved_by       TEXT NOT NULL,
    resolved_at       BIGINT NOT NULL,
    resolution_note   TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    UNIQUE (period, bank_serial)
);
CREATE INDEX bank_deposits_open ON bank_deposits (period, outcome, resolution);

-- The monthly calendar approved by the transport authority.
CREATE TABLE auction_calendar (
    period               TEXT PRIMARY KEY,
    deposit_start        TEXT NOT NULL,
    deposit_end          TEXT NOT NULL,
    -- 17:00 Beijing time of deposit_end, in UTC milliseconds: later arrivals are late.
    deposit_deadline_at  BIGINT NOT NULL,
    activation_start     TEXT NOT NULL,
    activation_end       TEXT NOT NULL,
    bidding_date         TEXT NOT NULL,
    bidding_start        TEXT NOT NULL,
    bidding_end          TEXT NOT NULL,
    payment_start        TEXT NOT NULL,
    payment_end          TEXT NOT NULL,
    quota_persons        BIGINT NOT NULL,
    quota_companies      BIGINT NOT NULL,
    reserve_price_cents  BIGINT NOT NULL,
    deposit_cents        BIGINT NOT NULL,
    note                 TEXT NOT NULL,
    updated_by           TEXT NOT NULL,
    updated_at           BIGINT NOT NULL
);

-- Work orders pushed by the 12345 platform; one per order number (idempotent pushes).
CREATE TABLE workorders_12345 (
    order_no      TEXT PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    title         TEXT NOT NULL,
    content       TEXT NOT NULL,
    caller_name   TEXT NOT NULL,
    caller_phone  TEXT NOT NULL,
    category      TEXT NOT NULL,
    deadline_at   BIGINT NOT NULL,
    -- open | replied | closed
    status        TEXT NOT NULL,
    -- The CRM ticket made from it, once wired ('' until then).
    ticket_id     TEXT NOT NULL,
    received_at   BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Nonces of accepted 12345 requests, kept for the signature window so a replay is refused
-- also after a restart.
CREATE TABLE workorder_nonces (
    nonce    TEXT PRIMARY KEY,
    seen_at  BIGINT NOT NULL
);
CREATE INDEX workorder_nonces_seen ON workorder_nonces (seen_at);

-- Replies and results to push back to 12345, delivered at least once with backoff.
CREATE TABLE outbox_12345 (
    id               TEXT PRIMARY KEY,
    order_no         TEXT NOT NULL,
    -- reply | result
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT NOT NULL,
    -- 0 until acknowledged by the platform
    delivered_at     BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX outbox_12345_due ON outbox_12345 (delivered_at, next_attempt_at);
