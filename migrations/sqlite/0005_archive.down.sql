DROP TRIGGER IF EXISTS stored_events_no_delete;

CREATE TRIGGER stored_events_no_delete
BEFORE DELETE ON stored_events
BEGIN
    SELECT RAISE(ABORT, 'stored events are immutable: DELETE refused');
END;

DROP TABLE IF EXISTS fleet_archive_permit;
