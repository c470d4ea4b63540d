"""Property-based contract test: schemathesis fuzzes every operation of the OpenAPI document.

It runs in-process on the WSGI app (no server, no network). Each operation gets a small,
fixed number of generated cases in each mode (positive: valid by the document; negative:
invalid), so the whole run stays well under a minute. Checks: no 5xx, and every answer
conforms to the document (status code, content type, headers, body schema); negative
cases must be refused. The one 5xx the document promises, 503 when ``min_position`` is
not reached in time, is accepted only when ``min_position`` was sent.

A second test runs schemathesis' coverage phase in negative mode: for each operation, a
fixed set of boundary violations (a string one past ``maxLength``, a value off its
``pattern``, a missing required body, a wrong type, ...) that must each be refused.

The hypothesis loop is driven here rather than by ``schemathesis.pytest.from_fixture``:
with pytest 9.2 that loader fails (``'Function' object has no attribute '_nodeid'``).
The count of cases is printed (``schemathesis: ...``; see it with ``-s``).

Making the cases is most of the work (hypothesis and schemathesis, not our code), so each
case is made once and sent to the app on every backend, and under ``--cov`` the tracer is
on only while an app answers: the app's code is measured as before, the case-making is not
slowed by a tracer that records nothing of it.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance, unsupported_method

from tests.api.support import API, make_app
from tests.conftest import postgres_required, postgres_unavailable
from tests.reliability.hostile_support import seed
from web import get_fleet

# Per operation and mode; FLEET_FUZZ_EXAMPLES=200 makes a longer, deeper run.
MAX_EXAMPLES = int(os.environ.get("FLEET_FUZZ_EXAMPLES", "15"))
# Valid JSON Schema data that only the store can refuse, as the contract says: ids in a
# body that name nothing (422), a stale If-Match (412), a lifecycle conflict (409), ...
POSITIVE_STATUSES = {200, 201, 404, 409, 412, 422}
# The words the id converter keeps out of ids: each names a route of its own.
ROUTE_WORDS = {"register", "acquire", "advance", "reset", "claim"}


def seeded_app(env: dict[str, str]) -> Flask:
    """An app with some real resources, so that ids like "s1" and the first positions exist."""
    app = make_app(env)
    app.config["TESTING"] = False  # a bug must answer 500 (and fail the check), not raise
    client = app.test_client()
    client.post(f"{API}/specialists/register", json={"specialist_id": "s1", "name": "S"})
    mission = client.post(f"{API}/missions", json={"title": "M"}).get_json()["mission"]
    client.post(f"{API}/sorties", json={"description": "d", "mission_id": mission["id"]})
    client.post(f"{API}/checkpoints", json={"stream_id": mission["id"]})
    # As a stopping server does: every ?wait= answers at once, and the live feed
    # (GET /events/stream) ends after what it has instead of following the log forever.
    get_fleet(app).stop_waits()
    return app


@pytest.fixture
def fuzz_apps(
    sqlite_env: dict[str, str], request: pytest.FixtureRequest
) -> Iterator[dict[str, Flask]]:
    """The app on each backend, by name (PostgreSQL refuses NUL in text: SQLite alone would
    not tell). Without a PostgreSQL server, SQLite alone, unless ``FLEET_TEST_POSTGRES=1``."""
    envs = {"sqlite": sqlite_env}
    if postgres_required() or postgres_unavailable() is None:
        envs["postgres"] = request.getfixturevalue("postgres_env")
    apps: dict[str, Flask] = {}
    try:
        for name, env in envs.items():
            apps[name] = seeded_app(env)
        yield apps
    finally:
        for app in apps.values():
            get_fleet(app).close()


Tracing = Callable[[], AbstractContextManager[None]]


@contextmanager
def traced_only_in_apps() -> Iterator[Tracing]:
    """Switch the coverage tracer (if any) off; the yielded ``tracing()`` switches it back on
    for one app call. Without ``--cov`` there is no tracer and both change nothing."""
    tracer = sys.gettrace()

    @contextmanager
    def tracing() -> Iterator[None]:
        sys.settrace(tracer)
        try:
            yield
        finally:
            sys.settrace(None)

    sys.settrace(None)
    try:
        yield tracing
    finally:
        sys.settrace(tracer)


def check(
    case: schemathesis.Case, app: Flask, tracing: Tracing, excluded: tuple[Any, ...] = ()
) -> None:
    with tracing():
        response = case.call(app=app)
    status = response.status_code
    if status == 503 and "min_position" in (case.query or {}):
        return  # documented: projections did not reach min_position in time
    assert status < 500, f"{status}: {response.text[:500]}"
    case.validate_response(response, excluded_checks=[positive_data_acceptance, *excluded])
    if case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE:
        assert status in POSITIVE_STATUSES, f"valid input refused, {status}: {response.text[:500]}"


# One test per mode (rather than both in one) so that pytest-xdist can run them side by side;
# each case goes to every backend's app.
@pytest.mark.slow
@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value
)
def test_every_operation_conforms(fuzz_apps: dict[str, Flask], mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", fuzz_apps["sqlite"])
    cases: Counter[str] = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    with traced_only_in_apps() as tracing:
        for operation in operations:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                cases[f"{case.method.upper()} {case.path}"] += 1
                for name, app in fuzz_apps.items():
                    try:
                        check(case, app, tracing)
                    except Exception as exc:
                        exc.add_note(f"backend: {name}")
                        raise

            try:
                run()
            except Exception as exc:  # noqa: BLE001 - collect every operation's failure
                notes = "; ".join(getattr(exc, "__notes__", ()))
                failures.append(f"{operation.label} [{mode.value}]: {exc} ({notes})")
    total = sum(cases.values())
    print(
        f"\nschemathesis ({mode.value}): {total} cases over {len(operations)} operations, "
        f"each on {', '.join(fuzz_apps)}, {len(failures)} failed"
    )
    assert not failures, "\n\n".join(failures)
    assert len(cases) == len(operations) >= 20


@pytest.mark.slow
def test_boundary_violations_are_refused(sqlite_env: dict[str, str]) -> None:
    """The coverage phase, negative mode, on SQLite (what it sends is the web layer's to
    refuse). It found a mailbox id off its documented pattern listed as an empty mailbox,
    and a compaction body documented as required though none is needed, and
    ``OPTIONS /cursors/advance`` allowing GET (the word matched ``/cursors/{cursor_id}``).

    Excluded only where an id is a route word (refused by the document's ``not: enum``):
    the undeclared-method check, since ``POST /specialists/register`` is another route.
    """
    app = make_app(sqlite_env)
    app.config["TESTING"] = False
    try:
        seed(app.test_client())
        schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", app)
        cases: Counter[str] = Counter()
        failures: list[str] = []
        with traced_only_in_apps() as tracing:
            for result in schema.get_all_operations():
                operation = result.ok()
                generation = schema.config.generation_for(operation=operation)
                for case in schema.iter_coverage_cases(
                    operation,
                    generation_modes=[GenerationMode.NEGATIVE],
                    generation_config=generation,
                ):
                    cases[f"{case.method.upper()} {case.path}"] += 1
                    # A route word as an id (``/specialists/register``) means another route,
                    # where the "undeclared" method may well be declared.
                    words = ROUTE_WORDS & {str(v) for v in (case.path_parameters or {}).values()}
                    try:
                        check(case, app, tracing, (unsupported_method,) if words else ())
                    except (AssertionError, BaseExceptionGroup) as exc:  # a 5xx; its report
                        failures.append(f"{operation.label}: {str(exc)[:600]}")
        print(f"\nschemathesis coverage: {sum(cases.values())} cases, {len(failures)} failed")
        assert not failures, "\n\n".join(failures[:20])
        assert sum(cases.values()) >= 1000
    finally:
        get_fleet(app).close()


def test_the_route_words_are_the_converters(app: Flask) -> None:
    """``ROUTE_WORDS`` must follow the routes: a new ``<id(word):...>`` joins it."""
    reserved = {
        word.strip()
        for rule in app.url_map.iter_rules()
        for words in re.findall(r"<id\(([^)]*)\):", rule.rule)
        for word in words.split(",")
    }
    assert reserved == ROUTE_WORDS
