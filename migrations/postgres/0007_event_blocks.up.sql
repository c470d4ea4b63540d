-- Events per type and block of 4096 positions (application/store/query.py, BLOCK), kept in
-- the events' transaction beside fleet_event_counts: the total of a type filter past `after=`
-- is the blocks after after's block plus at most 4095 index entries, however deep `after` is.
CREATE TABLE IF NOT EXISTS fleet_event_blocks (
    event_type TEXT NOT NULL,
    block BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (event_type, block)
);
-- The index never loses a row (it refuses UPDATE and DELETE): counting it once is exact.
INSERT INTO fleet_event_blocks (event_type, block, n)
SELECT event_type, position / 4096, COUNT(*) FROM fleet_event_index
GROUP BY event_type, position / 4096;
