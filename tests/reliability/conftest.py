"""Fixtures of the reliability suite: real multi-worker servers on a fresh store.

``cluster_factory`` builds ``Cluster``s (gunicorn with several gthread workers, plus a
``fleet projector`` when external) on the test's store: a SQLite file in ``tmp_path`` or a
fresh PostgreSQL schema (the root conftest's ``backend`` fixture). Every cluster is
stopped after the test, whatever happened.

The suite is bounded in `make test`; `make soak` sets ``FLEET_SOAK_SECONDS`` (and
``FLEET_SOAK_CLIENTS``, ``FLEET_SOAK_CRASHES``) to run the same tests longer and harder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The harness asserts the suite's invariants (``assert_nothing_lost``): show their operands.
# Registering the package covers all its modules.
pytest.register_assert_rewrite("tests.reliability.harness")

from tests.reliability.harness.cluster import Cluster  # noqa: E402 - after the rewrite hook
from tests.reliability.harness.store import is_postgres  # noqa: E402


@pytest.fixture
def cluster_factory(backend: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    clusters: list[Cluster] = []

    def make(**options: Any) -> Cluster:
        cluster = Cluster(store=backend, workdir=tmp_path, **options)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop()


@pytest.fixture
def backend_name(backend: dict[str, str]) -> str:
    return "postgres" if is_postgres(backend) else "sqlite"
