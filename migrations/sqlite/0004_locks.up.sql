-- File locks (application/projections/locks.py). lock_paths keeps each path's aggregate
-- state (its current lock) for the next event; locks_projection has one row per lock id,
-- so ended locks stay listable and a lock id finds its path's stream. Times are UTC text.
CREATE TABLE IF NOT EXISTS lock_paths (
    stream_id TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    lock_id TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    state BLOB NOT NULL,
    resource TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS locks_projection (
    id TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL,
    normalized_path TEXT NOT NULL,
    reserved_by TEXT NOT NULL,
    status TEXT NOT NULL,
    reserved_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    resource TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS locks_projection_status ON locks_projection (status, reserved_at, id);
CREATE INDEX IF NOT EXISTS locks_projection_holder ON locks_projection (reserved_by, status, reserved_at, id);
CREATE INDEX IF NOT EXISTS locks_projection_expiry ON locks_projection (status, expires_at);

-- The heartbeat sweep selects live specialists by when they were last seen (UTC text);
-- the specialists projection (version 2) fills the column when it rebuilds.
ALTER TABLE specialists_projection ADD COLUMN last_seen TEXT;
CREATE INDEX IF NOT EXISTS specialists_projection_last_seen ON specialists_projection (status, last_seen);
