-- Back to one tracking table a projection, as the library's recorder creates them.
CREATE TABLE IF NOT EXISTS fleet_specialists_tracking (
    application_name TEXT, notification_id INTEGER, PRIMARY KEY (application_name)
) WITHOUT ROWID;
INSERT OR REPLACE INTO fleet_specialists_tracking
SELECT application_name, notification_id FROM fleet_projection_tracking WHERE projection = 'specialists';

CREATE TABLE IF NOT EXISTS fleet_work_tracking (
    application_name TEXT, notification_id INTEGER, PRIMARY KEY (application_name)
) WITHOUT ROWID;
INSERT OR REPLACE INTO fleet_work_tracking
SELECT application_name, notification_id FROM fleet_projection_tracking WHERE projection = 'work';

CREATE TABLE IF NOT EXISTS fleet_checkpoints_tracking (
    application_name TEXT, notification_id INTEGER, PRIMARY KEY (application_name)
) WITHOUT ROWID;
INSERT OR REPLACE INTO fleet_checkpoints_tracking
SELECT application_name, notification_id FROM fleet_projection_tracking WHERE projection = 'checkpoints';

CREATE TABLE IF NOT EXISTS fleet_messages_tracking (
    application_name TEXT, notification_id INTEGER, PRIMARY KEY (application_name)
) WITHOUT ROWID;
INSERT OR REPLACE INTO fleet_messages_tracking
SELECT application_name, notification_id FROM fleet_projection_tracking WHERE projection = 'messages';

CREATE TABLE IF NOT EXISTS fleet_locks_tracking (
    application_name TEXT, notification_id INTEGER, PRIMARY KEY (application_name)
) WITHOUT ROWID;
INSERT OR REPLACE INTO fleet_locks_tracking
SELECT application_name, notification_id FROM fleet_projection_tracking WHERE projection = 'locks';

DROP TABLE fleet_projection_tracking;
