"""One side of ``bench.paired``: ``python bench/paired_worker.py TREE OP WRITES CORE CLOCK``.

Run as a script, not as part of the ``bench`` package, so that it imports Fleet from
``TREE`` (an older revision may have no ``bench.paired``). The store's settings come from
the environment. Prints the µs a command took, in wall or CPU time (``CLOCK``).

An ``http-`` op sends the command through the web app (``web.create_app``) as gunicorn
would call it, without a server or a socket: the command plus Fleet's whole web layer.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

THREADED = {"wsgi.multithread": True}  # as gunicorn's gthread workers serve


def wsgi_caller(app: Any) -> Callable[[str, str, dict[str, Any]], None]:
    """Calls ``app`` with one JSON request, as a WSGI server would; fails on a non-2xx.
    (Werkzeug's environ builder costs about 17 µs a request, on both sides alike.)"""
    from werkzeug.test import create_environ

    def call(method: str, path: str, body: dict[str, Any]) -> None:
        environ = create_environ(
            path, "http://127.0.0.1:8000", method=method, json=body, environ_overrides=THREADED
        )
        answer: list[str] = []
        chunks = app(environ, lambda status, headers, exc_info=None: answer.append(status))
        b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        if not answer[0].startswith("2"):
            raise SystemExit(f"{method} {path} answered {answer[0]}")

    return call


def main() -> None:
    tree, op, writes, core, clock = sys.argv[1:6]
    os.sched_setaffinity(0, {int(core)})
    sys.path[0] = tree  # this script's folder out, the tree's packages in
    from application.fleet import Fleet

    count = int(writes)
    population = min(200, count)  # specialists heartbeating, sorties reporting progress
    web = op.startswith("http-")
    op = op.removeprefix("http-")
    if web:  # as wsgi.py serves it, the access lines written to /dev/null
        import gc

        from web import create_app, logs

        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
        logs.configure()
        app = create_app({"FLEET_SWEEP_INTERVAL": 0})
        gc.freeze()
        fleet = app.extensions["fleet"]
        call = wsgi_caller(app)
    else:
        fleet = Fleet(env={"FLEET_SWEEP_INTERVAL": "0"})
    try:
        specialists = [
            fleet.register_specialist(f"w-{i}", f"W {i}", ["code"])["id"] for i in range(population)
        ]
        sorties = []
        if op == "patch":
            for i, specialist in enumerate(specialists):
                sortie = fleet.create_sortie(f"sortie {i}")["id"]
                fleet.update_sortie(sortie, status="assigned", assigned_to=specialist)
                fleet.update_sortie(sortie, status="in_progress")
                sorties.append(sortie)

        def run(count: int, first: int) -> None:
            for i in range(first, first + count):
                if web and op == "register":
                    body = {"specialist_id": f"c-{i}", "name": f"C {i}", "capabilities": ["code"]}
                    call("POST", "/api/v1/specialists/register", body)
                elif web and op == "heartbeat":
                    path = f"/api/v1/specialists/{specialists[i % population]}/heartbeat"
                    call("PATCH", path, {"status": "active", "metrics": {"tokens": i}})
                elif web:
                    call(
                        "PATCH", f"/api/v1/sorties/{sorties[i % population]}", {"progress": i % 100}
                    )
                elif op == "register":
                    fleet.register_specialist(f"c-{i}", f"C {i}", ["code", "review"])
                elif op == "heartbeat":
                    fleet.heartbeat(specialists[i % population])
                else:
                    fleet.update_sortie(sorties[i % population], progress=i % 100)

        run(population, 10**6)  # warm-up, ids of its own
        took = time.process_time if clock == "cpu" else time.perf_counter
        began = took()
        run(count, 0)
        print(f"{(took() - began) / count * 1e6:.1f}")
    finally:
        fleet.close()


if __name__ == "__main__":
    main()
