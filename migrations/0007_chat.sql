-- Online chat (issue 9): conversations of the WeChat Official Account and of the website
-- widget, and their messages. Portable between SQLite and PostgreSQL: application-made text
-- ids, UTC milliseconds in BIGINT, flags as BIGINT 0/1, no backend-only types.

-- One conversation per (channel, user) at a time: `open_key` is 'channel:user_id' while the
-- conversation is open and NULL once closed, so the unique index allows one open
-- conversation per user and any number of closed ones (both backends let NULLs repeat in a
-- unique index).
CREATE TABLE chat_conversations (
    id            TEXT PRIMARY KEY,
    -- wechat | web
    channel       TEXT NOT NULL,
    -- the WeChat openid or the website visitor id
    user_id       TEXT NOT NULL,
    -- bot | queued | assigned | closed
    state         TEXT NOT NULL,
    -- username of the agent who took it ('' when none)
    agent         TEXT NOT NULL,
    -- the CRM contact ('' for anonymous website visitors)
    contact_id    TEXT NOT NULL,
    open_key      TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    -- the user's last message (WeChat's 48-hour reply window runs from it)
    last_user_at  BIGINT NOT NULL,
    queued_at     BIGINT NOT NULL,
    taken_at      BIGINT NOT NULL,
    closed_at     BIGINT NOT NULL,
    -- 1..5 once the user rated the conversation, 0 before
    rating        BIGINT NOT NULL,
    -- 1 after the closing message asked for a rating
    rating_asked  BIGINT NOT NULL
);
CREATE UNIQUE INDEX chat_conversations_open ON chat_conversations (open_key);
CREATE INDEX chat_conversations_state ON chat_conversations (state, queued_at);
CREATE INDEX chat_conversations_user ON chat_conversations (channel, user_id, created_at);

-- Messages in both directions. `seq` numbers a user's messages across conversations
-- (1, 2, 3 …): the website widget polls with it as its cursor. `external_id` is WeChat's
-- MsgId (or openid + CreateTime for events), so WeChat's retries are stored once.
CREATE TABLE chat_messages (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES chat_conversations (id),
    channel          TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    -- user | bot | agent | system
    sender           TEXT NOT NULL,
    -- the agent's username for agent messages, '' otherwise
    agent            TEXT NOT NULL,
    body             TEXT NOT NULL,
    external_id      TEXT,
    at               BIGINT NOT NULL
);
CREATE UNIQUE INDEX chat_messages_seq ON chat_messages (channel, user_id, seq);
CREATE UNIQUE INDEX chat_messages_external ON chat_messages (external_id);
CREATE INDEX chat_messages_conversation ON chat_messages (conversation_id, seq);
