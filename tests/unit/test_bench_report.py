"""The benchmark's verdicts: each backend's throughput against its own share of the ceiling."""

from __future__ import annotations

from typing import Any

from bench.report import COMMAND_LABELS, judge


def http_run(rate: float) -> dict[str, Any]:
    latency = {"p99_ms": 5.0}
    return {
        "max": {"requests_per_s": rate},
        "half": {"latency": latency, "achieved_per_s": rate / 2, "requests": 5000},
    }


def sections(sqlite_rate: float, postgres_rate: float) -> dict[str, Any]:
    def backend(rate: float) -> dict[str, Any]:
        return {
            "ceiling": {"insert": {"requests_per_s": 1000.0}},
            "fleet": {command: http_run(rate) for command in COMMAND_LABELS},
        }

    return {"http_commands": {"sqlite": backend(sqlite_rate), "postgres": backend(postgres_rate)}}


def throughput(rows: list[dict[str, Any]], backend: str) -> set[bool]:
    return {
        row["met"]
        for row in rows
        if row["target"].startswith("command throughput") and row["target"].endswith(backend)
    }


def test_sqlite_needs_half_the_ceiling_and_one_postgres_worker_0_35_of_it() -> None:
    """As the targets read: SQLite under `make run` 0.5, PostgreSQL's one worker 0.35."""
    rows = judge(sections(sqlite_rate=490, postgres_rate=360))
    assert throughput(rows, "sqlite") == {False}
    assert throughput(rows, "postgres") == {True}
    rows = judge(sections(sqlite_rate=510, postgres_rate=340))
    assert throughput(rows, "sqlite") == {True}
    assert throughput(rows, "postgres") == {False}
