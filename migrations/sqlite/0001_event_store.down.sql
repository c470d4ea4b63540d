DROP TRIGGER IF EXISTS fleet_event_index_no_delete;
DROP TRIGGER IF EXISTS fleet_event_index_no_update;
DROP TABLE IF EXISTS fleet_event_counts;
DROP TABLE IF EXISTS fleet_event_index;
DROP TRIGGER IF EXISTS stored_events_no_delete;
DROP TRIGGER IF EXISTS stored_events_no_update;
