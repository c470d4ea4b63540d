-- Archiving (`fleet compact --archive`) is the one path that may remove stored events.
-- The archive transaction writes a permit naming one stream and the highest version and
-- position it may remove, deletes those rows (after copying them to the archive schema in
-- the same transaction), and deletes the permit again before it commits, so no other
-- transaction ever sees a permit. Even with a permit, version 1 (the create guard) and the
-- newest row are refused. UPDATE and TRUNCATE stay refused without exception.
CREATE TABLE IF NOT EXISTS fleet_archive_permit (
    originator_id UUID PRIMARY KEY,
    max_version BIGINT NOT NULL,
    max_position BIGINT NOT NULL
);

CREATE OR REPLACE FUNCTION fleet_events_guard() RETURNS trigger AS $$
DECLARE
    permitted BOOLEAN;
BEGIN
    IF TG_OP = 'DELETE' AND OLD.originator_version > 1 THEN
        EXECUTE format(
            'SELECT EXISTS (SELECT 1 FROM %1$I.fleet_archive_permit p '
            'WHERE p.originator_id = $1 AND $2 <= p.max_version AND $3 <= p.max_position) '
            'AND $3 < (SELECT MAX(notification_id) FROM %1$I.%2$I)',
            TG_TABLE_SCHEMA, TG_TABLE_NAME)
        INTO permitted
        USING OLD.originator_id, OLD.originator_version, OLD.notification_id;
        IF permitted THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION '% is immutable: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS fleet_events_immutable ON fleet_events;

CREATE TRIGGER fleet_events_immutable
BEFORE UPDATE OR DELETE ON fleet_events
FOR EACH ROW EXECUTE FUNCTION fleet_events_guard();
