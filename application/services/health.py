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
                database["wal_mode"] = self.app.sqlite_journal_mode() == "wal"
        except Exception:
            log.exception("health check could not reach the database")
            database["status"] = "unavailable"
            return {"status": "unavailable", "database": database, "projections": {}}
        projections = {
            row["name"]: {"position": row["position"], "lag": row["lag"], "version": row["version"]}
            for row in self.projector.status()
        }
        with self.projector.read() as tx:
            rows = tx.fetchall("SELECT COUNT(*) AS n FROM locks_projection WHERE status = 'active'")
        return {
            "status": "ok",
            "database": database,
            "position": head,
            "projections": projections,
            # Recorded active; one past its expiry counts until the sweep records lock_timeout.
            "locks": {"active": int(rows[0]["n"])},
        }
