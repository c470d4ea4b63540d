DROP TABLE IF EXISTS messages_projection;
DROP TABLE IF EXISTS message_directory;
DROP TABLE IF EXISTS mailboxes_projection;
