"""``FleetAggregate.__deepcopy__``: the copy the aggregate cache gives each command.

It must equal the original and share no container with it, whatever plain data an agent
put in metadata, so that a command which fails half-way leaves the cached one intact.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.base import FleetAggregate
from domain.sortie import Sortie
from domain.specialist import Specialist

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)
metadata = st.dictionaries(st.text(max_size=4), json_values, max_size=4)


def containers(value: Any) -> list[Any]:
    """Every dict, list and set inside ``value``."""
    found: list[Any] = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found += containers(item)
    elif isinstance(value, list | set | tuple):
        if not isinstance(value, tuple):
            found.append(value)
        for item in value:
            found += containers(item)
    return found


def check_copy(original: FleetAggregate) -> None:
    clone = copy.deepcopy(original)
    assert type(clone) is type(original)
    assert vars(clone) == vars(original)
    assert clone.id == original.id and clone.version == original.version
    mine = {id(c) for c in containers(list(vars(original).values()))}
    assert not mine & {id(c) for c in containers(list(vars(clone).values()))}


@given(metadata, metadata)
def test_a_copied_specialist_equals_it_and_shares_nothing(first: Any, second: Any) -> None:
    specialist = Specialist.register("agent-1", "Agent", ["code", "review"], first)
    check_copy(specialist)  # with its creation still pending
    specialist.collect_events()
    specialist.heartbeat("busy", metrics={"tokens": 3}, metadata=second)
    specialist.collect_events()
    check_copy(specialist)  # as the cache holds it: nothing pending


@given(metadata)
def test_a_copied_sortie_equals_it_and_a_change_to_the_copy_stays_there(data: Any) -> None:
    sortie = Sortie.create(description="d", metadata=data, dependencies=["a"])
    sortie.collect_events()
    check_copy(sortie)
    clone = copy.deepcopy(sortie)
    clone.metadata["added"] = [1]
    clone.dependencies.append("b")
    assert "added" not in sortie.metadata
    assert sortie.dependencies == ["a"]


def test_tuples_and_sets_in_an_aggregate_are_copied_too() -> None:
    specialist = Specialist.register("agent-1", "Agent", ["code"], {})
    specialist.collect_events()
    specialist.pair = ({"a": [1]}, "b")  # type: ignore[attr-defined]
    specialist.tags = {"x", "y"}  # type: ignore[attr-defined]
    check_copy(specialist)
    clone = copy.deepcopy(specialist)
    clone.pair[0]["a"].append(2)  # type: ignore[attr-defined]
    assert specialist.pair == ({"a": [1]}, "b")  # type: ignore[attr-defined]
    assert clone.tags == {"x", "y"} and clone.tags is not specialist.tags  # type: ignore[attr-defined]
