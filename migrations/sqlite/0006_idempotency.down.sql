DROP INDEX IF EXISTS fleet_idempotency_created;
DROP TABLE IF EXISTS fleet_idempotency;
