-- Idempotent writes (application/idempotency.py). One row per Idempotency-Key, written in the
-- same transaction as the events of the write it names, so a write and its key commit or fail
-- together. scope is a hash of the caller's token (empty without auth); fingerprint is a hash
-- of the request (method, path, parsed body) or of the Python command and its arguments;
-- answer is the JSON of what the write produced; created_at is epoch seconds (the TTL and the
-- sweep's purge read it). No index on created_at: every index is one more page in each
-- write's commit; rows are in insertion order (rowid), which the purge follows instead.
CREATE TABLE IF NOT EXISTS fleet_idempotency (
    scope TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    position INTEGER NOT NULL,
    answer TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
