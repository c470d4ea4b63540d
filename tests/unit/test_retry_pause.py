"""The pause after a lost write race: random, with a bound that doubles up to a cap."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from application.services import base
from application.services.base import RETRY_PAUSE_FIRST, RETRY_PAUSE_MOST, retry_pause


@given(attempt=st.integers(min_value=0, max_value=200))
def test_a_pause_stays_under_its_doubling_bound(attempt: int) -> None:
    pause = retry_pause(attempt)
    assert 0 <= pause <= min(RETRY_PAUSE_MOST, RETRY_PAUSE_FIRST * 2**attempt)


def test_the_bound_doubles_then_stops_at_the_cap(monkeypatch) -> None:
    monkeypatch.setattr(base.random, "uniform", lambda low, high: high)
    bounds = [retry_pause(attempt) for attempt in range(10)]
    assert bounds[:7] == [RETRY_PAUSE_FIRST * 2**n for n in range(7)]
    assert bounds[7:] == [RETRY_PAUSE_MOST] * 3


def test_pauses_are_spread_not_in_step() -> None:
    assert len({retry_pause(5) for _ in range(20)}) == 20
