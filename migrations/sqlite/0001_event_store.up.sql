-- The event log is append-only: the database itself refuses UPDATE and DELETE.
CREATE TRIGGER IF NOT EXISTS stored_events_no_update
BEFORE UPDATE ON stored_events
BEGIN
    SELECT RAISE(ABORT, 'stored events are immutable: UPDATE refused');
END;

CREATE TRIGGER IF NOT EXISTS stored_events_no_delete
BEFORE DELETE ON stored_events
BEGIN
    SELECT RAISE(ABORT, 'stored events are immutable: DELETE refused');
END;

-- One row per stored event, written in the same transaction, for filtered reads.
CREATE TABLE IF NOT EXISTS fleet_event_index (
    position INTEGER PRIMARY KEY,
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

CREATE TRIGGER IF NOT EXISTS fleet_event_index_no_update
BEFORE UPDATE ON fleet_event_index
BEGIN
    SELECT RAISE(ABORT, 'the event index is immutable: UPDATE refused');
END;

CREATE TRIGGER IF NOT EXISTS fleet_event_index_no_delete
BEFORE DELETE ON fleet_event_index
BEGIN
    SELECT RAISE(ABORT, 'the event index is immutable: DELETE refused');
END;
