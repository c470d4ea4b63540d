"""``python -m bench <benchmark> [options]``; with no benchmark named, runs them all."""

from __future__ import annotations

import argparse
import sys

from bench import compaction, projections, snapshots, type_query

BENCHMARKS = {
    "type-query": type_query,
    "projections": projections,
    "snapshots": snapshots,
    "compaction": compaction,
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for name, module in BENCHMARKS.items():
        module.add_arguments(commands.add_parser(name, help=module.__doc__.splitlines()[0]))
    if not args:
        return max(int(main([name]) or 0) for name in BENCHMARKS)
    if args[0].startswith("-") and args[0] not in ("-h", "--help"):
        args = ["type-query", *args]
    options = parser.parse_args(args)
    return int(BENCHMARKS[options.benchmark].run(options) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
