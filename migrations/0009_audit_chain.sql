-- Tamper evidence (issue 12): the audit log becomes a hash chain, and every imported or
-- exported data file is recorded with its digest. Portable between SQLite and PostgreSQL.

-- seq: 1, 2, 3, … in append order; prev_hash: the previous entry's hash (64 zeros for the
-- first); hash: SHA-256 of prev_hash and the entry (hotline_core::audit_chain::entry_hash).
-- Rows written before this migration have NULLs until the binary seals them at its next
-- start (Db::seal_legacy_audit), once.
ALTER TABLE audit_log ADD COLUMN seq BIGINT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
-- A second writer that somehow read a stale head would collide here instead of forking.
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);

-- The chain head, one row: every append locks it first (serialising writers) and moves it
-- on in the same transaction, so deleting the newest entries is detected too.
-- legacy_sealed: 1 once the pre-chain rows were sealed; afterwards an unchained row is
-- reported as tampering instead of being sealed.
CREATE TABLE audit_head (
    id            BIGINT PRIMARY KEY,
    seq           BIGINT NOT NULL,
    last_hash     TEXT NOT NULL,
    legacy_sealed BIGINT NOT NULL
);
INSERT INTO audit_head (id, seq, last_hash, legacy_sealed)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);

-- Every data file that came in or went out, with the digest a notary can be given.
CREATE TABLE data_files (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    -- 'import' or 'export'
    direction   TEXT NOT NULL,
    -- bidders, bank_deposits, bank_refund_failures, workorder_12345_in,
    -- workorder_12345_reply, stats_csv, stats_xlsx, monthly_report, kb_import, kb_export,
    -- recording_export
    kind        TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL,
    sha256      TEXT NOT NULL,
    operator    TEXT NOT NULL,
    remote_addr TEXT NOT NULL,
    -- the audit entry that records the same digest (so the digest is covered by the chain)
    audit_id    TEXT NOT NULL
);
CREATE INDEX data_files_at ON data_files (at);
CREATE INDEX data_files_sha256 ON data_files (sha256);
