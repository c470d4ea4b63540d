-- Idempotent writes (application/idempotency.py). One row per Idempotency-Key, written in the
-- same transaction as the events of the write it names, so a write and its key commit or fail
-- together. scope is a hash of the caller's token (empty without auth); fingerprint is a hash
-- of the request (method, path, parsed body) or of the Python command and its arguments;
-- answer is the JSON of what the write produced; created_at is epoch seconds (the TTL and the
-- sweep's purge read it).
CREATE TABLE IF NOT EXISTS fleet_idempotency (
    scope TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    position BIGINT NOT NULL,
    answer TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX IF NOT EXISTS fleet_idempotency_created ON fleet_idempotency (created_at);
