"""One side of ``bench.paired``: ``python bench/paired_worker.py TREE OP WRITES CORE CLOCK``.

Run as a script, not as part of the ``bench`` package, so that it imports Fleet from
``TREE`` (an older revision may have no ``bench.paired``). The store's settings come from
the environment. Prints the µs a command took, in wall or CPU time (``CLOCK``).
"""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    tree, op, writes, core, clock = sys.argv[1:6]
    os.sched_setaffinity(0, {int(core)})
    sys.path[0] = tree  # this script's folder out, the tree's packages in
    from application.fleet import Fleet

    count = int(writes)
    population = min(200, count)  # specialists heartbeating, sorties reporting progress
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
                if op == "register":
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
