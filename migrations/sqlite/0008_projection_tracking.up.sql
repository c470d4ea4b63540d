-- Every projection's position in one table, keyed by projection and upstream application
-- (application/projections/view.py): a write that moves them all does it with one statement
-- and one page. Before, each projection had a table of its own, which the library's tracking
-- recorder created at start-up. A store that never had one of those gets it empty first, so
-- that the copy runs on any store.
CREATE TABLE IF NOT EXISTS fleet_projection_tracking (
    projection TEXT NOT NULL,
    application_name TEXT NOT NULL,
    notification_id INTEGER,
    PRIMARY KEY (projection, application_name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS fleet_specialists_tracking (
    application_name TEXT, notification_id INTEGER, PRIMARY KEY (application_name)
) WITHOUT ROWID;
INSERT INTO fleet_projection_tracking
SELECT 'specialists', application_name, notification_id FROM fleet_specialists_tracking WHERE true
ON CONFLICT (projection, application_name)
DO UPDATE SET notification_id = max(notification_id, excluded.notification_id);
DROP TABLE fleet_specialists_tracking;

CREATE TABLE IF NOT EXISTS fleet_work_tracking (
    application_name TEXT, notification_id INTEGER, PRIMARY KEY (application_name)
) WITHOUT ROWID;
INSERT INTO fleet_projection_tracking
SELECT 'work', application_name, notification_id FROM fleet_work_tracking WHERE true
ON CONFLICT (projection, application_name)
DO UPDATE SET notification_id = max(notification_id, excluded.notification_id);
DROP TABLE fleet_work_tracking;

CREATE TABLE IF NOT EXISTS fleet_checkpoints_tracking (
    application_name TEXT, notification_id INTEGER, PRIMARY KEY (application_name)
) WITHOUT ROWID;
INSERT INTO fleet_projection_tracking
SELECT 'checkpoints', application_name, notification_id FROM fleet_checkpoints_tracking WHERE true
ON CONFLICT (projection, application_name)
DO UPDATE SET notification_id = max(notification_id, excluded.notification_id);
DROP TABLE fleet_checkpoints_tracking;

CREATE TABLE IF NOT EXISTS fleet_messages_tracking (
    application_name TEXT, notification_id INTEGER, PRIMARY KEY (application_name)
) WITHOUT ROWID;
INSERT INTO fleet_projection_tracking
SELECT 'messages', application_name, notification_id FROM fleet_messages_tracking WHERE true
ON CONFLICT (projection, application_name)
DO UPDATE SET notification_id = max(notification_id, excluded.notification_id);
DROP TABLE fleet_messages_tracking;

CREATE TABLE IF NOT EXISTS fleet_locks_tracking (
    application_name TEXT, notification_id INTEGER, PRIMARY KEY (application_name)
) WITHOUT ROWID;
INSERT INTO fleet_projection_tracking
SELECT 'locks', application_name, notification_id FROM fleet_locks_tracking WHERE true
ON CONFLICT (projection, application_name)
DO UPDATE SET notification_id = max(notification_id, excluded.notification_id);
DROP TABLE fleet_locks_tracking;
