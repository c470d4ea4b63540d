"""PNG plots from ``results.json``: latency percentiles, and load time against history length."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from bench.report import COMMAND_LABELS, READ_LABELS

PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")


def bars(axis: Any, labels: list[str], runs: list[dict[str, Any]], title: str) -> None:
    width = 0.27
    for offset, key in enumerate(PERCENTILES):
        values = [run["latency"][key] for run in runs]
        positions = [i + (offset - 1) * width for i in range(len(runs))]
        axis.bar(positions, values, width, label=key.removesuffix("_ms"))
    axis.set_xticks(range(len(runs)), labels, rotation=20, ha="right", fontsize=8)
    axis.set_ylabel("ms")
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8)


def commands_plot(data: dict[str, Any], path: Path) -> None:
    backends = [b for b in ("sqlite", "postgres") if "fleet" in data.get(b, {})]
    figure, axes = plt.subplots(len(backends), 1, figsize=(9, 3.6 * len(backends)), squeeze=False)
    for axis, backend in zip(axes[:, 0], backends, strict=True):
        fleet = data[backend]["fleet"]
        runs = [fleet[c]["half"] for c in COMMAND_LABELS]
        rates = [f"{c}\n{fleet[c]['half']['achieved_per_s']:,.0f} req/s" for c in COMMAND_LABELS]
        bars(axis, rates, runs, f"{backend}: command latency at half the maximum rate")
        axis.axhline(10, color="grey", linestyle="--", linewidth=1)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def reads_plot(data: dict[str, Any], path: Path) -> None:
    names = [n for n in READ_LABELS if n in data["http"]]
    figure, axis = plt.subplots(figsize=(9, 3.8))
    short = [n.replace("_", " ") for n in names]
    bars(
        axis, short, [data["http"][n] for n in names], f"reads, {data['store']['events']:,} events"
    )
    axis.axhline(5, color="grey", linestyle="--", linewidth=1)
    axis.axhline(10, color="grey", linestyle=":", linewidth=1)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def history_plot(data: dict[str, Any], path: Path) -> None:
    rows = data["lengths"]
    events = [r["events"] for r in rows]
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(events, [r["without_snapshots_ms"] for r in rows], "o-", label="without snapshots")
    axis.plot(events, [r["with_snapshots_ms"] for r in rows], "o-", label="with snapshots (head)")
    axis.plot(
        events,
        [r["worst_case_ms"] for r in rows],
        "o--",
        label=f"with snapshots, worst case ({data['interval'] - 1} events after one)",
    )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("events in the stream")
    axis.set_ylabel("load time, ms (median)")
    axis.set_title("aggregate load time against history length", fontsize=10)
    axis.legend(fontsize=8)
    axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def draw(sections: dict[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    if "http_commands" in sections:
        made.append(folder / "http_latency.png")
        commands_plot(sections["http_commands"], made[-1])
    if "reads" in sections:
        made.append(folder / "read_latency.png")
        reads_plot(sections["reads"], made[-1])
    if "history" in sections:
        made.append(folder / "history.png")
        history_plot(sections["history"], made[-1])
    return made
