CREATE TABLE specialist_capabilities_rows (
    specialist_id TEXT NOT NULL,
    capability TEXT NOT NULL,
    PRIMARY KEY (specialist_id, capability)
);
INSERT INTO specialist_capabilities_rows (specialist_id, capability)
SELECT specialist_id, capability FROM specialist_capabilities;
DROP TABLE specialist_capabilities;
ALTER TABLE specialist_capabilities_rows RENAME TO specialist_capabilities;
CREATE INDEX specialist_capabilities_capability ON specialist_capabilities (capability, specialist_id);

CREATE INDEX IF NOT EXISTS fleet_event_index_stream_type ON fleet_event_index (stream_type, position);
