"""``application.periodic``: the loop and the thread of the sweeper and the compactor."""

from __future__ import annotations

import threading

from application.periodic import PeriodicThread, repeat


def test_repeat_runs_at_once_then_after_each_wait_until_stopped() -> None:
    stop = threading.Event()
    calls: list[int] = []

    def task() -> None:
        calls.append(1)
        if len(calls) == 3:
            stop.set()

    repeat(stop, 0.001, task)
    assert len(calls) == 3


def test_repeat_waits_first_when_asked_and_a_stop_during_that_wait_runs_nothing() -> None:
    stop = threading.Event()
    stop.set()
    calls: list[int] = []
    repeat(stop, 10, lambda: calls.append(1), wait_first=True)
    assert calls == []
    repeat(stop, 10, lambda: calls.append(1))  # not waiting first: a set stop still wins
    assert calls == []


def test_the_thread_is_a_named_daemon_that_stops_and_is_joined() -> None:
    ran = threading.Event()
    periodic = PeriodicThread("fleet-test", lambda stop: repeat(stop, 60, ran.set))
    thread = periodic.start()
    assert thread.name == "fleet-test" and thread.daemon
    assert ran.wait(5)
    periodic.stop(5)  # ends the 60 s wait at once
    assert not thread.is_alive()


def test_a_loop_may_stop_its_own_thread_without_joining_itself() -> None:
    holder: list[PeriodicThread] = []
    done = threading.Event()

    def loop(stop: threading.Event) -> None:
        holder[0].stop(5)  # a join here would raise RuntimeError
        done.set()

    periodic = PeriodicThread("fleet-test", loop)
    holder.append(periodic)
    periodic.start().join(5)
    assert done.is_set() and periodic.stop_event.is_set()
