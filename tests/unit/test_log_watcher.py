"""The watcher wakes exactly the waiters whose interest an event matches, from this
process's writes (``notify``) and from rows it reads itself (other processes' writes)."""

from __future__ import annotations

import threading
import time

from application.waits import Interest, LogWatcher, Seen

ROWS = [
    (11, "squawk_sent", "box-a", "c1"),
    (12, "mission_created", "m-1", "c2"),
]


def watcher(log: list[tuple[int, str, str, str]]) -> LogWatcher:
    def read_after(position: int, limit: int) -> list[Seen]:
        return [Seen(*row) for row in log if row[0] > position][:limit]

    return LogWatcher(lambda: 10, read_after, poll=0.01)


INTERESTS = {
    "box-a": Interest(stream_id="box-a"),
    "box-b": Interest(stream_id="box-b"),
    "missions": Interest(types=frozenset({"mission_created", "mission_cancelled"})),
    "cancelled": Interest(types=frozenset({"mission_cancelled"})),
    "c2": Interest(correlation_id="c2"),
    "sent-to-b": Interest(types=frozenset({"squawk_sent"}), stream_id="box-b"),
    "everything": Interest(),
}
WOKEN = {"box-a": 11, "missions": 12, "c2": 12, "everything": 12}


def woken_by(deliver: str) -> dict[str, int]:
    log: list[tuple[int, str, str, str]] = []
    subject = watcher(log)
    found: dict[str, int] = {}
    entered = threading.Barrier(len(INTERESTS) + 1)

    def wait(name: str) -> None:
        with subject.watching(INTERESTS[name]) as waiter:
            entered.wait(5)
            if waiter.wait(1.0):
                found[name] = waiter.position

    threads = [threading.Thread(target=wait, args=(name,)) for name in INTERESTS]
    for thread in threads:
        thread.start()
    entered.wait(5)
    if deliver == "notify":
        log.extend(ROWS)
        subject.notify(ROWS)
    else:
        log.extend(ROWS)  # another process wrote them: the watcher reads them itself
    for thread in threads:
        thread.join(5)
    subject.close()
    return found


def test_a_write_of_this_process_wakes_exactly_the_interested() -> None:
    assert woken_by("notify") == WOKEN


def test_rows_read_from_the_log_wake_exactly_the_interested() -> None:
    assert woken_by("poll") == WOKEN


def test_announced_rows_are_not_announced_again_and_the_index_empties() -> None:
    log: list[tuple[int, str, str, str]] = []
    subject = watcher(log)
    with subject.watching(Interest(stream_id="box-a")) as waiter:
        log.extend(ROWS)
        subject.notify(ROWS)
        assert waiter.wait(1) and waiter.position == 11
        time.sleep(0.1)  # polls read rows 11-12: already announced, no second wake
        assert not waiter.wait(0.1)
    assert subject.waiting == 0 and subject._index == {}
    subject.close()
