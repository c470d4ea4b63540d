-- The next start rebuilds both projections from the log (their tables changed).
DELETE FROM fleet_projection_versions WHERE name IN ('locks', 'specialists');
DROP INDEX IF EXISTS specialists_projection_last_seen;
ALTER TABLE specialists_projection DROP COLUMN last_seen;
DROP TABLE IF EXISTS locks_projection;
DROP TABLE IF EXISTS lock_paths;
