-- Archiving (`fleet compact --archive`) is the one path that may remove stored events.
-- The archive transaction writes a permit naming one stream and the highest version and
-- position it may remove, deletes those rows (after copying them to the archive), and
-- deletes the permit again before it commits, so no other transaction ever sees a permit.
-- Even with a permit, version 1 (the create guard) and the newest row (SQLite would reuse
-- its rowid) are refused. UPDATE stays refused without exception.
CREATE TABLE IF NOT EXISTS fleet_archive_permit (
    originator_id TEXT PRIMARY KEY,
    max_version INTEGER NOT NULL,
    max_position INTEGER NOT NULL
);

DROP TRIGGER IF EXISTS stored_events_no_delete;

CREATE TRIGGER stored_events_no_delete
BEFORE DELETE ON stored_events
WHEN NOT EXISTS (
    SELECT 1 FROM fleet_archive_permit p
    WHERE p.originator_id = OLD.originator_id
      AND OLD.originator_version BETWEEN 2 AND p.max_version
      AND OLD.rowid <= p.max_position
      AND OLD.rowid < (SELECT MAX(rowid) FROM stored_events)
)
BEGIN
    SELECT RAISE(ABORT, 'stored events are immutable: DELETE refused');
END;
