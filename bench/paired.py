"""``python -m bench.paired --base REV --op heartbeat``: one in-process command, the code at
``REV`` against the working tree's, both at once, one on each core.

On these shared 2-core machines the host's speed drifts by tens of percent within minutes,
so alternating runs cannot show a 5 % change (an A/A comparison of alternating runs spread
0.8-1.2). Run at the same time, the two variants meet the same host; pinned to one core
each and swapping cores every round, they also cancel the difference between the cores
(15-20 % here). Each round prints both figures and the ratio new / base; each pair of
rounds (one per core order) gives a geometric mean, and the median of those is the result.
This is how the fifth session's before/after figures in ``bench/findings.md`` were taken.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from io import BytesIO
from pathlib import Path

from bench.common import ROOT

WORKER = Path(__file__).with_name("paired_worker.py")
COMMANDS = ("register", "heartbeat", "patch")
# http-<command>: the same command through the web app, in process (paired_worker.py).
OPS = (*COMMANDS, *(f"http-{command}" for command in COMMANDS))


@contextmanager
def tree_at(revision: str) -> Iterator[Path]:
    """The project's files at ``revision``, in a temporary folder."""
    archive = subprocess.run(  # noqa: S603 - git with a revision the caller names
        ["git", "archive", "--format=tar", revision],  # noqa: S607 - git from PATH
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tempfile.TemporaryDirectory(prefix="paired-") as folder:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        yield Path(folder)


@contextmanager
def store_env(backend: str, label: str) -> Iterator[dict[str, str]]:
    """A fresh store's settings: a SQLite file, or a new PostgreSQL schema."""
    if backend == "postgres":
        from bench.server import postgres_schema

        with postgres_schema(label) as env:
            yield env
        return
    with tempfile.TemporaryDirectory(prefix=f"paired-{label}-") as folder:
        yield {"SQLITE_DBNAME": str(Path(folder) / "store.sqlite3")}


def one_round(
    trees: dict[str, Path], cores: dict[str, int], args: argparse.Namespace
) -> dict[str, float]:
    """Both trees at once, each pinned to its core: µs a command, by name."""
    with ExitStack() as stack:
        running = {}
        for name, tree in trees.items():
            env = stack.enter_context(store_env(args.backend, name))
            command = [
                sys.executable,
                str(WORKER),
                str(tree),
                args.op,
                str(args.writes),
                str(cores[name]),
                "cpu" if args.cpu else "wall",
            ]
            running[name] = subprocess.Popen(  # noqa: S603 - our own worker script
                command, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True
            )
        figures = {}
        for name, process in running.items():
            out, _ = process.communicate()
            if process.returncode != 0:
                raise SystemExit(f"the {name} worker failed (exit {process.returncode})")
            figures[name] = float(out.split()[-1])
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__)
    parser.add_argument("--base", required=True, help="the revision to compare with")
    parser.add_argument("--op", choices=OPS, default="heartbeat")
    parser.add_argument("--rounds", type=int, default=6, help="an even number: both orders")
    parser.add_argument("--writes", type=int, default=2000, help="commands a round, each side")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--cpu", action="store_true", help="CPU time instead of wall time")
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores: one for each side")
    with tree_at(args.base) as base:
        trees = {"base": base, "new": ROOT}
        ratios = []
        for number in range(args.rounds):
            cores = {"base": number % 2, "new": 1 - number % 2}
            figures = one_round(trees, cores, args)
            ratios.append(figures["new"] / figures["base"])
            print(
                f"round {number + 1}: base {figures['base']:,.0f} µs (core {cores['base']}), "
                f"new {figures['new']:,.0f} µs (core {cores['new']}), new / base {ratios[-1]:.3f}"
            )
    pairs = [math.sqrt(a * b) for a, b in zip(ratios[::2], ratios[1::2], strict=False)]
    if pairs:
        shown = ", ".join(f"{pair:.3f}" for pair in pairs)
        print(f"pairs of rounds (geometric means): {shown}; median {statistics.median(pairs):.3f}")


if __name__ == "__main__":
    main()
