-- No query of Fleet's filters the event index by stream type: fleet_event_index_stream_type
-- only cost every event's write one B-tree insert more (on SQLite about one page of each
-- write's commit in twenty).
DROP INDEX IF EXISTS fleet_event_index_stream_type;
