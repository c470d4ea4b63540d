-- Fewer B-trees for a write to change (on SQLite each is a page of its commit, WAL frames
-- counted per table over 20 registrations: 22.6 pages a registration before).
--
-- No query of Fleet's filters the event index by stream type: fleet_event_index_stream_type
-- only cost every event one index insert more (1.1 pages a registration).
DROP INDEX IF EXISTS fleet_event_index_stream_type;

-- A specialist's capabilities without a rowid: the primary key is the table, where a rowid
-- table kept the rows, the key's index and the capability index apart (one page less a
-- registration; the rows are two short strings, as WITHOUT ROWID suits).
CREATE TABLE specialist_capabilities_keyed (
    specialist_id TEXT NOT NULL,
    capability TEXT NOT NULL,
    PRIMARY KEY (specialist_id, capability)
) WITHOUT ROWID;
INSERT INTO specialist_capabilities_keyed (specialist_id, capability)
SELECT specialist_id, capability FROM specialist_capabilities;
DROP TABLE specialist_capabilities;
ALTER TABLE specialist_capabilities_keyed RENAME TO specialist_capabilities;
CREATE INDEX specialist_capabilities_capability ON specialist_capabilities (capability, specialist_id);
