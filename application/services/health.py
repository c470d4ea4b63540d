"""Health: can the store be read, and how is it configured."""

from __future__ import annotations

import logging
from typing import Any

from application.services.base import Service

log = logging.getLogger(__name__)


class HealthService(Service):
    def health(self) -> dict[str, Any]:
        database: dict[str, Any] = {"backend": self.app.backend, "status": "ok", "wal_mode": None}
        try:
            head = self._head()
            if self.app.backend == "sqlite":
                database["wal_mode"] = self._sqlite_journal_mode() == "wal"
        except Exception:  # noqa: BLE001 - any failure to reach the store means unhealthy
            log.exception("health check could not reach the database")
            database["status"] = "unavailable"
            return {"status": "unavailable", "database": database, "projections": {}}
        projections = {
            row["name"]: {"position": row["position"], "lag": row["lag"], "version": row["version"]}
            for row in self.projector.status()  # type: ignore[attr-defined]
        }
        return {"status": "ok", "database": database, "position": head, "projections": projections}

    def _sqlite_journal_mode(self) -> str:
        with self.app.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode")
            return str(cursor.fetchone()[0]).lower()
