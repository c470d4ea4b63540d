"""PostgreSQL's one statement for a write's index rows, counters and blocks."""

from __future__ import annotations

import pytest

from application.store.query import ADD_COUNTS, _rows_of, index_statement


@pytest.mark.parametrize(("events", "types", "blocks"), [(1, 1, 1), (3, 2, 3), (5, 1, 2)])
def test_it_has_a_placeholder_for_each_parameter_of_the_three(
    events: int, types: int, blocks: int
) -> None:
    statement = index_statement(events, types, blocks)
    # index rows have 5 values, counters 2, blocks 3; the upserts' SET clauses bind none
    assert statement.count("{p}") == 5 * events + 2 * types + 3 * blocks
    assert statement.startswith("WITH indexed AS (INSERT INTO {index} ")


def test_a_template_that_is_not_a_one_row_insert_is_refused() -> None:
    with pytest.raises(ValueError, match="not a one-row VALUES insert"):
        _rows_of(ADD_COUNTS.replace("VALUES ({p}, {p})", "SELECT 1"), 2)
