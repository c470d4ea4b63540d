"""Geometry for the console's server-rendered SVG: the sortie graph and the write chart.

Only numbers and the resources' own fields come out of here; the templates write the
SVG, so every text in it is escaped like the rest of the page.
"""

from __future__ import annotations

from typing import Any

NODE_W, NODE_H = 180, 54
GAP_X, GAP_Y = 60, 24
PAD = 12

# Fill colours per sortie status (with text readable on each): one for each of the domain's
# SORTIE_STATUSES, in their order (tests/unit/test_vocabulary.py holds the keys to them).
STATUS_COLOURS = {
    "pending": "#d0d4da",
    "assigned": "#b9d3f5",
    "in_progress": "#5b9bf0",
    "blocked": "#f0a35b",
    "review": "#c59bf0",
    "completed": "#5fbf77",
    "failed": "#e0605a",
    "cancelled": "#8d939c",
}


def depths(sorties: list[dict[str, Any]]) -> dict[str, int]:
    """Each sortie's column: the longest chain of its dependencies inside the mission."""
    known = {s["id"]: s for s in sorties}
    depth: dict[str, int] = {}

    def visit(sortie_id: str, trail: frozenset[str]) -> int:
        if sortie_id in depth:
            return depth[sortie_id]
        inside = [d for d in known[sortie_id]["dependencies"] if d in known and d not in trail]
        value = 1 + max((visit(d, trail | {d}) for d in inside), default=-1)
        depth[sortie_id] = value
        return value

    for sortie in sorties:
        visit(sortie["id"], frozenset({sortie["id"]}))
    return depth


def sortie_graph(sorties: list[dict[str, Any]]) -> dict[str, Any]:
    """Nodes in columns by dependency depth, edges from each dependency to its dependent."""
    depth = depths(sorties)
    rows: dict[int, int] = {}
    nodes: dict[str, dict[str, Any]] = {}
    for sortie in sorties:
        column = depth[sortie["id"]]
        row = rows.get(column, 0)
        rows[column] = row + 1
        nodes[sortie["id"]] = {
            "sortie": sortie,
            "x": PAD + column * (NODE_W + GAP_X),
            "y": PAD + row * (NODE_H + GAP_Y),
            "fill": STATUS_COLOURS.get(sortie["status"], "#ffffff"),
        }
    edges = []
    for node in nodes.values():
        for dependency in node["sortie"]["dependencies"]:
            source = nodes.get(dependency)
            if source is None:
                continue
            edges.append(
                {
                    "x1": source["x"] + NODE_W,
                    "y1": source["y"] + NODE_H // 2,
                    "x2": node["x"],
                    "y2": node["y"] + NODE_H // 2,
                    "done": source["sortie"]["status"] == "completed",
                }
            )
    columns = max(depth.values(), default=0) + 1
    height_rows = max(rows.values(), default=1)
    return {
        "nodes": list(nodes.values()),
        "edges": edges,
        "width": 2 * PAD + columns * NODE_W + (columns - 1) * GAP_X,
        "height": 2 * PAD + height_rows * NODE_H + (height_rows - 1) * GAP_Y,
        "node_w": NODE_W,
        "node_h": NODE_H,
    }


def bar_chart(points: list[dict[str, Any]], width: int = 600, height: int = 120) -> dict[str, Any]:
    """Bars for the writes-per-minute chart, scaled to the busiest minute."""
    top = max((p["events"] for p in points), default=0) or 1
    slot = width / max(len(points), 1)
    bars = []
    for index, point in enumerate(points):
        bar_height = round((height - 20) * point["events"] / top, 1)
        bars.append(
            {
                "x": round(index * slot, 1),
                "y": round(height - 16 - bar_height, 1),
                "w": round(max(slot - 1, 1), 1),
                "h": bar_height,
                "minute": point["minute"][11:16],
                "events": point["events"],
            }
        )
    return {"bars": bars, "width": width, "height": height, "top": top}
