DROP TRIGGER IF EXISTS fleet_events_immutable ON fleet_events;

CREATE TRIGGER fleet_events_immutable
BEFORE UPDATE OR DELETE ON fleet_events
FOR EACH ROW EXECUTE FUNCTION fleet_refuse_change();

DROP FUNCTION IF EXISTS fleet_events_guard();
DROP TABLE IF EXISTS fleet_archive_permit;
