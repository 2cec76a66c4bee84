-- CRM (issue 7): contacts and their timeline, tickets with history, comments and attachments,
-- the deposit-authorisation review, complaints about agents, callbacks, surveys, the call facts
-- and agent states that statistics are computed from, and the monthly archive.
-- Portable between SQLite and PostgreSQL: application-made text ids, UTC milliseconds in
-- BIGINT, flags as BIGINT 0/1, lists as JSON array text, no backend-only types.

-- A caller, found by phone number or WeChat openid (either may be missing, never both).
CREATE TABLE crm_contacts (
    id            TEXT PRIMARY KEY,
    phone         TEXT UNIQUE,
    wechat_openid TEXT UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Bidder application codes (申请编码) a contact has given.
CREATE TABLE crm_contact_bidders (
    contact_id       TEXT NOT NULL REFERENCES crm_contacts (id),
    application_code TEXT NOT NULL,
    linked_at        BIGINT NOT NULL,
    PRIMARY KEY (contact_id, application_code)
);
CREATE INDEX crm_contact_bidders_code ON crm_contact_bidders (application_code);

-- One entry on a contact's timeline: call | wechat | sms | work_order | ticket | survey |
-- callback. `ref_id` points at the record of that kind (call id, ticket id, ...).
CREATE TABLE crm_interactions (
    id         TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL REFERENCES crm_contacts (id),
    kind       TEXT NOT NULL,
    at         BIGINT NOT NULL,
    ref_id     TEXT NOT NULL,
    summary    TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX crm_interactions_contact_at ON crm_interactions (contact_id, at);

-- Tickets of every kind. `named_agent` is the agent a complaint is about: such tickets are
-- visible to complaint officers only. `archived_at` set means read-only for ever.
CREATE TABLE crm_tickets (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL,
    contact_id       TEXT REFERENCES crm_contacts (id),
    caller_phone     TEXT NOT NULL,
    application_code TEXT,
    call_id          TEXT,
    recording_id     TEXT,
    external_ref     TEXT,
    named_agent      TEXT,
    assignee         TEXT,
    created_by       TEXT NOT NULL,
    due_at           BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    resolved_at      BIGINT,
    closed_at        BIGINT,
    archived_at      BIGINT,
    archive_month    TEXT,
    version          BIGINT NOT NULL
);
CREATE INDEX crm_tickets_status ON crm_tickets (status);
CREATE INDEX crm_tickets_kind ON crm_tickets (kind);
CREATE INDEX crm_tickets_assignee ON crm_tickets (assignee);
CREATE INDEX crm_tickets_named_agent ON crm_tickets (named_agent);
CREATE INDEX crm_tickets_created_at ON crm_tickets (created_at);
CREATE INDEX crm_tickets_archive_month ON crm_tickets (archive_month);

-- Full change history of a ticket: every field change, transition, assignment, comment,
-- attachment and review, with who and when. `detail` is JSON.
CREATE TABLE crm_ticket_history (
    id          TEXT PRIMARY KEY,
    ticket_id   TEXT NOT NULL REFERENCES crm_tickets (id),
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT,
    detail      TEXT NOT NULL
);
CREATE INDEX crm_ticket_history_ticket ON crm_ticket_history (ticket_id, at);

CREATE TABLE crm_ticket_comments (
    id        TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES crm_tickets (id),
    at        BIGINT NOT NULL,
    author    TEXT NOT NULL,
    body      TEXT NOT NULL
);
CREATE INDEX crm_ticket_comments_ticket ON crm_ticket_comments (ticket_id, at);

-- Files are stored under the attachment directory as `<ticket id>/<attachment id>.<ext>`;
-- the client's file name is kept here only. `document` names the checklist item it proves
-- (deposit authorisation), if any.
CREATE TABLE crm_attachments (
    id           TEXT PRIMARY KEY,
    ticket_id    TEXT NOT NULL REFERENCES crm_tickets (id),
    file_name    TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    stored_path  TEXT NOT NULL,
    document     TEXT,
    uploaded_by  TEXT NOT NULL,
    uploaded_at  BIGINT NOT NULL
);
CREATE INDEX crm_attachments_ticket ON crm_attachments (ticket_id);

-- The business review of a deposit authorisation (无账户社会团体授权缴纳保证金).
CREATE TABLE crm_deposit_reviews (
    id         TEXT PRIMARY KEY,
    ticket_id  TEXT NOT NULL REFERENCES crm_tickets (id),
    checklist  TEXT NOT NULL,
    decision   TEXT NOT NULL,
    reason     TEXT NOT NULL,
    reviewer   TEXT NOT NULL,
    decided_at BIGINT NOT NULL
);
CREATE INDEX crm_deposit_reviews_ticket ON crm_deposit_reviews (ticket_id);

-- The complaint desk's findings on a complaint ticket that names an agent.
CREATE TABLE crm_complaints (
    ticket_id        TEXT PRIMARY KEY REFERENCES crm_tickets (id),
    agent            TEXT NOT NULL,
    recording_ids    TEXT NOT NULL,
    finding          TEXT,
    action_taken     TEXT,
    called_back_at   BIGINT,
    callback_note    TEXT,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX crm_complaints_agent ON crm_complaints (agent);

-- Callback tasks (回访). status: pending | done | failed | cancelled.
CREATE TABLE crm_callbacks (
    id              TEXT PRIMARY KEY,
    source          TEXT NOT NULL,
    phone           TEXT NOT NULL,
    contact_id      TEXT,
    call_id         TEXT,
    ticket_id       TEXT,
    queue           TEXT,
    note            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_outcome    TEXT,
    assignee        TEXT,
    done_by         TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    done_at         BIGINT
);
CREATE INDEX crm_callbacks_due ON crm_callbacks (status, next_attempt_at);

CREATE TABLE crm_callback_attempts (
    id          TEXT PRIMARY KEY,
    callback_id TEXT NOT NULL REFERENCES crm_callbacks (id),
    at          BIGINT NOT NULL,
    agent       TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    note        TEXT NOT NULL
);
CREATE INDEX crm_callback_attempts_cb ON crm_callback_attempts (callback_id);

-- Post-call survey results (one per call). rating: satisfied | fairly_satisfied |
-- dissatisfied | no_answer | hung_up.
CREATE TABLE crm_surveys (
    call_id TEXT PRIMARY KEY,
    agent   TEXT NOT NULL,
    queue   TEXT NOT NULL,
    rating  TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX crm_surveys_at ON crm_surveys (at);

-- One row per queued call, as statistics need it (mapped by the binary from ACD events).
CREATE TABLE crm_call_facts (
    call_id     TEXT PRIMARY KEY,
    queue       TEXT NOT NULL,
    caller      TEXT NOT NULL,
    agent       TEXT,
    offered_at  BIGINT NOT NULL,
    answered_at BIGINT,
    ended_at    BIGINT,
    wrap_up_ms  BIGINT NOT NULL,
    abandoned   BIGINT NOT NULL,
    recording_id TEXT,
    ivr_path    TEXT NOT NULL
);
CREATE INDEX crm_call_facts_offered_at ON crm_call_facts (offered_at);

-- Agent not-ready periods [from_at, to_at) for the not-ready time statistic.
CREATE TABLE crm_agent_not_ready (
    id      TEXT PRIMARY KEY,
    agent   TEXT NOT NULL,
    from_at BIGINT NOT NULL,
    to_at   BIGINT NOT NULL,
    reason  TEXT NOT NULL
);
CREATE INDEX crm_agent_not_ready_from ON crm_agent_not_ready (from_at);
