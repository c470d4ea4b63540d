"""The event archive: where ``fleet compact --archive`` moves old events out of the live log.

Only events that no reader needs from the live log move: versions 2 to the stream's latest
snapshot, never version 1 (the create guard), never the stream's newest event nor the newest
row of the table (SQLite would reuse its rowid), never past the slowest projection's position,
and only events older than the retention age. Each archived row keeps its position
(``notification_id``), so archive plus live is the whole log, in order.

- SQLite: a second database file (``FLEET_ARCHIVE_DBNAME``). SQLite does not make a
  transaction over two WAL database files atomic as a set, so a batch is moved in two
  steps: the rows are copied into the archive and committed there, then one transaction
  on the live file deletes exactly those rows that the archive holds byte for byte. A
  crash between the two leaves a row in both places, which readers see once.
- PostgreSQL: a schema of its own in the same database (``FLEET_ARCHIVE_SCHEMA``); a batch
  is copied and deleted in one transaction.

The live table's trigger lets a DELETE through only while the archive transaction holds
a permit row for that stream (written and removed inside the transaction: no other
transaction ever sees it); every other UPDATE and DELETE is refused (migration 0005).
"""

from application.store.archive.common import DEFAULT_BATCH, Archive
from application.store.archive.postgres import PostgresArchive
from application.store.archive.sqlite import SQLiteArchive

__all__ = ["DEFAULT_BATCH", "Archive", "PostgresArchive", "SQLiteArchive"]
