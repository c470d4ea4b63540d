-- Fewer indexes for a write to change. No query of Fleet's filters the event index by
-- stream type: fleet_event_index_stream_type only cost every event one index insert more.
-- (SQLite's 0009 also keys specialist_capabilities without a rowid; PostgreSQL's tables
-- have no rowid to drop.)
DROP INDEX IF EXISTS fleet_event_index_stream_type;
