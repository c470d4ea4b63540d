CREATE INDEX IF NOT EXISTS fleet_event_index_stream_type ON fleet_event_index (stream_type, position);
