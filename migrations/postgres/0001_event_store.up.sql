-- The event log is append-only: the database itself refuses UPDATE, DELETE and TRUNCATE.
CREATE OR REPLACE FUNCTION fleet_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is immutable: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER fleet_events_immutable
BEFORE UPDATE OR DELETE ON fleet_events
FOR EACH ROW EXECUTE FUNCTION fleet_refuse_change();

CREATE TRIGGER fleet_events_no_truncate
BEFORE TRUNCATE ON fleet_events
FOR EACH STATEMENT EXECUTE FUNCTION fleet_refuse_change();

-- One row per stored event, written in the same transaction, for filtered reads.
CREATE TABLE IF NOT EXISTS fleet_event_index (
    position BIGINT PRIMARY KEY,
    event_type TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    stream_type TEXT NOT NULL,
    correlation_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fleet_event_index_type ON fleet_event_index (event_type, position);
CREATE INDEX IF NOT EXISTS fleet_event_index_stream ON fleet_event_index (stream_id, position);
CREATE INDEX IF NOT EXISTS fleet_event_index_correlation ON fleet_event_index (correlation_id, position);
-- Events per type, kept in the same transaction, so totals of type filters cost nothing.
CREATE TABLE IF NOT EXISTS fleet_event_counts (
    event_type TEXT PRIMARY KEY,
    n BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS fleet_event_index_stream_type ON fleet_event_index (stream_type, position);

CREATE TRIGGER fleet_event_index_immutable
BEFORE UPDATE OR DELETE ON fleet_event_index
FOR EACH ROW EXECUTE FUNCTION fleet_refuse_change();

CREATE TRIGGER fleet_event_index_no_truncate
BEFORE TRUNCATE ON fleet_event_index
FOR EACH STATEMENT EXECUTE FUNCTION fleet_refuse_change();
