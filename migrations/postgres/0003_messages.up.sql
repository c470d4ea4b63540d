-- Squawks (application/projections/messages.py). A mailbox row keeps the mailbox's state for
-- the next event; each message gets a row of its own, derived from that state, so mailboxes
-- are listed by status without decoding the whole mailbox. message_directory maps a message
-- id to its mailbox and the position of its squawk_sent event: it is insert-only, because a
-- message never changes mailbox.
CREATE TABLE IF NOT EXISTS mailboxes_projection (
    stream_id TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    position BIGINT NOT NULL,
    state BYTEA NOT NULL,
    resource TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS message_directory (
    message_id TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL,
    mailbox_id TEXT NOT NULL,
    sent_position BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS messages_projection (
    message_id TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL,
    mailbox_id TEXT NOT NULL,
    status TEXT NOT NULL,
    sent_position BIGINT NOT NULL,
    resource TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_projection_mailbox ON messages_projection (mailbox_id, sent_position);
CREATE INDEX IF NOT EXISTS messages_projection_status ON messages_projection (mailbox_id, status, sent_position);
CREATE INDEX IF NOT EXISTS messages_projection_stream ON messages_projection (stream_id);
