DROP TABLE IF EXISTS fleet_event_counts;
DROP TABLE IF EXISTS fleet_event_index;
DROP TRIGGER IF EXISTS fleet_events_no_truncate ON fleet_events;
DROP TRIGGER IF EXISTS fleet_events_immutable ON fleet_events;
DROP FUNCTION IF EXISTS fleet_refuse_change();
