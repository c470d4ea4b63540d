DROP TABLE IF EXISTS fleet_event_blocks;
