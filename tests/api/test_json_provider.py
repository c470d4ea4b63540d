"""Response bodies are written by orjson, and read back as the values Flask's encoder wrote."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from web.json_provider import OrjsonProvider


@dataclasses.dataclass
class Point:
    x: int
    label: str


def bodies(value: Any, sort_keys: bool = False) -> tuple[str, str]:
    """The body Flask's encoder writes for the value, and ours."""
    app = Flask(__name__)  # the providers hold it weakly: kept alive here
    app.json.sort_keys = sort_keys  # type: ignore[attr-defined]  # create_app sets False
    ours = OrjsonProvider(app)
    ours.sort_keys = sort_keys
    return app.json.response(value).get_data(as_text=True), ours.response(value).get_data(
        as_text=True
    )


def both(value: Any) -> tuple[Any, Any]:
    """The value as Flask's encoder writes it and as ours does, each read back."""
    theirs, mine = bodies(value)
    return json.loads(theirs), json.loads(mine)


SPECIAL = [
    {"at": datetime(2026, 12, 6, 10, 30, 1, 250, tzinfo=UTC), "day": date(2026, 12, 6)},
    {"id": uuid.UUID("9f1c0b1e-0000-4000-8000-000000000000"), "price": Decimal("1.10")},
    {"point": Point(3, "ñ"), "text": "Zoë — 東京 \u2028"},
    {"nested": [{"a": [1, 2.5, None, True]}, []], "empty": {}},
]


@pytest.mark.parametrize("value", SPECIAL, ids=["times", "uuid-decimal", "dataclass", "nested"])
def test_values_read_back_as_flask_wrote_them(value: Any) -> None:
    theirs, mine = both(value)
    assert mine == theirs


def test_what_orjson_refuses_falls_back_to_flasks_encoder() -> None:
    for value in ({1: "int key"}, {"big": 2**70}):
        theirs, mine = both(value)
        assert mine == theirs


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_any_json_value_reads_back_the_same(value: Any) -> None:
    theirs, mine = both(value)
    assert mine == theirs


def test_sort_keys_is_honoured() -> None:
    value = {"b": 1, "a": {"d": 2, "c": 3}}
    assert bodies(value, sort_keys=True) == (
        '{"a":{"c":3,"d":2},"b":1}\n',
        '{"a":{"c":3,"d":2},"b":1}\n',
    )
    assert bodies(value)[1] == '{"b":1,"a":{"d":2,"c":3}}\n'  # create_app's: as given


def test_debug_output_stays_indented() -> None:
    app = Flask(__name__)
    app.debug = True
    app.json = OrjsonProvider(app)
    with app.app_context():
        body = app.json.response({"a": 1}).get_data(as_text=True)
    assert body == '{\n  "a": 1\n}\n'
