"""Fleet's commands behind bare Flask routes: ``gunicorn bench.bare_route:app``.

The same ``Fleet`` (configured from the environment, as ``make run``'s is: embedded
projections on the same store) and the same gunicorn command, with none of Fleet's web
layer: no flask-smorest or webargs, no request ids, guards, ETag or write headers, no
metrics and no access line. The body is parsed with ``request.get_json()`` and the answer
written with Flask's ``jsonify``, as the ceiling's routes do.

Measured beside Fleet's own routes (``bench.http_commands``), it splits what separates
Fleet from the ceiling into the command (this app against the ceiling) and the web layer
(Fleet's routes against this app). Bad input is not this app's concern: the bench sends
only valid requests.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

from application.fleet import Fleet

app = Flask(__name__)
fleet = Fleet()


@app.get("/health")
def health() -> Any:
    return {"status": "ok"}


@app.post("/api/v1/specialists/register")
def register() -> Any:
    body = request.get_json()
    written = fleet.register_specialist(
        body["specialist_id"], body["name"], body.get("capabilities"), body.get("metadata")
    )
    return jsonify(dict(written)), 201 if written.created else 200


@app.patch("/api/v1/specialists/<specialist_id>/heartbeat")
def heartbeat(specialist_id: str) -> Any:
    body = request.get_json()
    written = fleet.heartbeat(specialist_id, status=body.get("status"), metrics=body.get("metrics"))
    return jsonify(dict(written))
