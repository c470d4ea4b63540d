"""The queries of ``fleet_idempotency`` (see ``application.idempotency``), for both backends.

Templates name the table ``{keys}`` and bind values with ``{p}``, like the event index's.
"""

from __future__ import annotations

IDEMPOTENCY_TABLE = "fleet_idempotency"

SELECT_KEY = (
    "SELECT fingerprint, position, answer, created_at FROM {keys} "
    "WHERE scope = {p} AND idempotency_key = {p} AND created_at >= {p}"
)
# In the write's transaction: an expired row of the same key (not purged yet) makes way,
# then the insert fails on the primary key if the key is live, and the database aborts the
# whole write. (The failure must come from the database: on PostgreSQL the library
# commits its transaction before it re-raises an error raised in Python.)
DROP_STALE_KEY = (
    "DELETE FROM {keys} WHERE scope = {p} AND idempotency_key = {p} AND created_at < {p}"
)
INSERT_KEY = (
    "INSERT INTO {keys} (scope, idempotency_key, fingerprint, position, answer, created_at) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p})"
)
INSERT_KEY_IF_NEW = INSERT_KEY + " ON CONFLICT (scope, idempotency_key) DO NOTHING"
DELETE_KEY = "DELETE FROM {keys} WHERE scope = {p} AND idempotency_key = {p}"
PURGE_KEYS = "DELETE FROM {keys} WHERE created_at < {p}"
# SQLite has no index on created_at (one page less in every keyed write's commit): rows
# are in insertion order, so the purge deletes the rows before the first unexpired one,
# scanning the expired ones only. A row out of order waits for a later pass.
PURGE_KEYS_IN_ORDER = (
    "DELETE FROM {keys} WHERE rowid < coalesce("
    "(SELECT rowid FROM {keys} WHERE created_at >= {p} ORDER BY rowid LIMIT 1), "
    "(SELECT max(rowid) + 1 FROM {keys}))"
)
