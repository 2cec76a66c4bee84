-- SIP gateway: seats (agent SIP accounts), registrar bindings, call detail records.
-- Portable between SQLite and PostgreSQL: text ids, UTC milliseconds in BIGINT, flags as
-- BIGINT 0/1, no backend-only types.

-- Only the digest HA1 values H(number:realm:password) are kept, for MD5 (RFC 2617) and
-- SHA-256 (RFC 8760); never the password. Changing the realm needs new passwords.
CREATE TABLE sip_seats (
    number       TEXT PRIMARY KEY,
    realm        TEXT NOT NULL,
    ha1_md5      TEXT NOT NULL,
    ha1_sha256   TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    enabled      BIGINT NOT NULL DEFAULT 1,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- One row per registered contact of a seat (RFC 3261 §10.3). `source` is where the
-- REGISTER came from (ip:port) and where requests are sent, so seats behind NAT work.
CREATE TABLE sip_bindings (
    id            TEXT PRIMARY KEY,
    seat          TEXT NOT NULL REFERENCES sip_seats (number) ON DELETE CASCADE,
    contact       TEXT NOT NULL,
    source        TEXT NOT NULL,
    transport     TEXT NOT NULL,
    call_id       TEXT NOT NULL,
    cseq          BIGINT NOT NULL,
    user_agent    TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    UNIQUE (seat, contact)
);
CREATE INDEX sip_bindings_expires_at ON sip_bindings (expires_at);

-- Call detail records: one row per call (both B2BUA legs).
CREATE TABLE sip_calls (
    id           TEXT PRIMARY KEY,
    direction    TEXT NOT NULL,
    caller       TEXT NOT NULL,
    callee       TEXT NOT NULL,
    trunk        TEXT,
    seat         TEXT,
    a_call_id    TEXT NOT NULL,
    b_call_id    TEXT,
    offered_at   BIGINT NOT NULL,
    answered_at  BIGINT,
    bridged_at   BIGINT,
    ended_at     BIGINT,
    end_cause    TEXT,
    hangup_side  TEXT,
    a_final_code BIGINT,
    b_final_code BIGINT,
    a_codec        TEXT,
    b_codec        TEXT,
    transferred_to TEXT
);
CREATE INDEX sip_calls_offered_at ON sip_calls (offered_at);
CREATE INDEX sip_calls_seat ON sip_calls (seat);
