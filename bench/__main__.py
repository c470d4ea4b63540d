"""``python -m bench [--quick] [--only NAME ...] [--render]``: the benchmark suite.

Runs every benchmark (or those named), writes ``bench/results.json``, renders ``BENCHMARKS.md``
from it and draws ``bench/plots/*.png``. ``--quick`` runs the same suite with small sizes and
writes everything under ``bench/out/quick/`` instead, leaving the committed figures alone.
``--render`` only redraws the markdown and plots from an existing results file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    compaction,
    console,
    history,
    http_commands,
    idempotency,
    plots,
    projections,
    reads,
    report,
    work_loop,
    writes,
)
from bench.common import (
    BENCH,
    FULL,
    QUICK,
    ROOT,
    SCRATCH,
    environment,
    git,
    interpreter_probe,
    log,
    scale_dict,
)

BENCHMARKS = {
    "writes": writes,
    "http_commands": http_commands,
    "reads": reads,
    "history": history,
    "projections": projections,
    "compaction": compaction,
    "work_loop": work_loop,
    "idempotency": idempotency,
    "console": console,
}


def outputs(quick: bool) -> tuple[Path, Path, Path]:
    """results.json, BENCHMARKS.md and the plots folder of this kind of run."""
    if quick:
        folder = SCRATCH / "quick"
        return folder / "results.json", folder / "BENCHMARKS.md", folder / "plots"
    return BENCH / "results.json", ROOT / "BENCHMARKS.md", BENCH / "plots"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (under two minutes)")
    parser.add_argument(
        "--only", nargs="+", choices=list(BENCHMARKS), help="run these benchmarks only"
    )
    parser.add_argument("--render", action="store_true", help="only re-render from results.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    results_path, markdown_path, plot_folder = outputs(options.quick)
    rendering = options.render
    if rendering:
        # The targets are judged from the figures again: a target added since the run is
        # judged on the run's own figures.
        results = json.loads(results_path.read_text())
        results["targets"] = report.judge(results["sections"])
        results_path.write_text(json.dumps(results, indent=2) + "\n")
    else:
        results = run(options, results_path)
    made = plots.draw(results["sections"], plot_folder)
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    prefix = plot_folder.relative_to(markdown_path.parent).as_posix()
    markdown_path.write_text(report.render(results, prefix))
    log(f"wrote {results_path}, {markdown_path} and {len(made)} plots in {plot_folder}")
    for row in results["targets"]:
        log(f"  {'met    ' if row['met'] else 'NOT MET'} {row['ratio']:7.2f}  {row['target']}")
    return 0


def run(options: argparse.Namespace, results_path: Path) -> dict[str, Any]:
    scale = QUICK if options.quick else FULL
    names = options.only or list(BENCHMARKS)
    began = time.perf_counter()
    meta = {
        "command": "make bench-quick" if options.quick else "make bench",
        "argv": " ".join(["python -m bench", *(sys.argv[1:])]),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": scale_dict(scale),
        "environment": environment(),
        "interpreter_probe_s": [interpreter_probe()],
    }
    # Which commit each section's figures come from: a run with --only keeps the others'.
    measured_at: dict[str, str] = {}
    if options.only and results_path.exists():  # keep the other sections' latest figures
        earlier = json.loads(results_path.read_text())
        sections = earlier["sections"]
        before = earlier["meta"].get("measured_at") or {}
        measured_at = {name: before.get(name, earlier["meta"]["commit"]) for name in sections}
    else:
        sections = {}
    measured_at.update({name: meta["commit"] for name in names})
    meta["measured_at"] = measured_at
    partial = results_path.with_suffix(".partial.json")  # a late failure loses no figures
    for number, name in enumerate(names, 1):
        log(f"== {number}/{len(names)} {name} ({scale.name} scale)")
        section_began = time.perf_counter()
        sections[name] = BENCHMARKS[name].run(scale)
        # Not "seconds": http_commands and work_loop name their runs' length so.
        sections[name]["elapsed_seconds"] = round(time.perf_counter() - section_began, 1)
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps({"meta": meta, "sections": sections}, indent=2) + "\n")
    meta["interpreter_probe_s"].append(interpreter_probe())
    meta["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    meta["seconds"] = round(time.perf_counter() - began, 1)
    results = {"meta": meta, "sections": sections, "targets": report.judge(sections)}
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    partial.unlink(missing_ok=True)
    return results


if __name__ == "__main__":
    raise SystemExit(main())
