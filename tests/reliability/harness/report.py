"""The figures of a run, for people: printed, and kept as JSON with the run's requests.

A passing reliability test says little about how hard it pushed; its figures (requests
sent, writes acknowledged, connections refused, requests cut off and whether they
landed, seconds down, ...) say it. ``publish`` prints them (``pytest -s``, as `make soak`
runs) and writes them to var/reliability/<name>.json, beside the path of the run's
journal (one JSON line per request), so a failed or surprising run can be read back.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.reliability.harness.journal import Journal
from tests.servers import ROOT

FIGURES_DIR = ROOT / "var" / "reliability"


def publish(name: str, figures: dict[str, Any], journal: Journal | None, workdir: Path) -> Path:
    """Print the figures (``pytest -s``) and write them to var/reliability/<name>.json."""
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    if journal is not None:
        requests_log = workdir / "requests.jsonl"
        journal.dump(requests_log)
        figures = {**figures, "request_log": str(requests_log)}
    figures = {"test": name, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **figures}
    path = FIGURES_DIR / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(f"\n[reliability] {name}: {json.dumps(figures, default=str)}")
    return path
