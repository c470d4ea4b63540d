"""``RowJson``: a projection row's state reads back exactly as the library's transcoder would
have written it, whatever an agent put in metadata, and a resource is the same JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from hypothesis import given
from hypothesis import strategies as st

from application.projections.row_json import RowJson
from application.resources import iso
from domain.specialist import Specialist

# What a JSON request body can carry (the parser refuses NaN and infinities), with integers
# past orjson's 64 bits and text past ASCII.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)
metadata = st.dictionaries(st.text(max_size=4), json_values, max_size=4)


def transcoder() -> JSONTranscoder:
    made = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        made.register(transcoding)
    return made


def libraries(aggregate: Any, coder: JSONTranscoder) -> Any:
    """The state as the library's transcoder writes and reads it."""
    return coder.decode(coder.encode(Snapshot.take(aggregate).state))


def specialist(meta: dict[str, Any]) -> Specialist:
    made = Specialist.register("agent-1", "Agent", ["code", "review"], meta)
    made.heartbeat("busy", metrics={"tokens": 3}, metadata=meta)
    made.collect_events()
    return made


@given(metadata)
def test_a_state_reads_back_as_the_transcoders(meta: dict[str, Any]) -> None:
    coder = transcoder()
    aggregate = specialist(meta)
    assert coder.decode(RowJson(coder).state(aggregate)) == libraries(aggregate, coder)


@given(st.dictionaries(st.text(max_size=4), json_values, max_size=6))
def test_a_resource_is_the_same_json(resource: dict[str, Any]) -> None:
    assert json.loads(RowJson.resource(resource)) == json.loads(json.dumps(resource))


def test_registered_types_keep_their_form_and_others_go_to_the_transcoder() -> None:
    coder = transcoder()
    rows = RowJson(coder)
    aggregate = specialist({"big": 10**30})  # past 64 bits: the transcoder writes it
    aggregate.price = Decimal("1.10")
    aggregate.seen = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    state = rows.state(aggregate)
    assert coder.decode(state) == libraries(aggregate, coder)
    del aggregate.metadata["big"]
    assert coder.decode(rows.state(aggregate)) == libraries(aggregate, coder)
    assert b'"_type_":"decimal_str"' in rows.state(aggregate)  # written by orjson, same form

    aggregate.owner = uuid4()  # orjson would write a bare string: the transcoder writes it
    assert isinstance(coder.decode(rows.state(aggregate))["owner"], UUID)

    aggregate.when = datetime(2026, 1, 2).date()  # registered nowhere: refused, as before
    with pytest.raises(TranscodingNotRegisteredError):
        rows.state(aggregate)


# Times as the log stamps them (UTC), in other zones, and naive; with and without microseconds.
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
times = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)) | st.builds(
    lambda when, micro: when.replace(microsecond=micro), st.datetimes(), st.just(0)
)


@given(times, offsets)
def test_iso_prints_each_time_in_its_own_zone_however_often_asked(
    when: datetime, zone: timezone
) -> None:
    """``iso`` remembers UTC times. The same instant in another zone is equal to it (and
    hashes alike), yet must print with its own offset, before or after the UTC one."""
    utc = when.replace(tzinfo=UTC)
    elsewhere = utc.astimezone(zone)
    for value in (utc, elsewhere, when, utc, elsewhere):
        assert iso(value) == value.isoformat(timespec="microseconds")


@given(times, offsets)
def test_a_states_times_read_back_as_the_transcoders(when: datetime, zone: timezone) -> None:
    """Row states write times as ``iso`` does (microseconds always); the transcoder reads
    them back as the very times it would have written without them."""
    coder = transcoder()
    aggregate = specialist({})
    aggregate.seen = when.replace(tzinfo=UTC)
    aggregate.there = when.replace(tzinfo=UTC).astimezone(zone)
    aggregate.naive = when
    decoded = coder.decode(RowJson(coder).state(aggregate))
    assert decoded == libraries(aggregate, coder)
    assert [decoded[name].utcoffset() for name in ("seen", "there", "naive")] == [
        timedelta(0),
        zone.utcoffset(None),
        None,
    ]
