"""DatabaseWait: how the poll tick and the outbox rounds wait out a database that can't take
writes (docs/operations.md#the-database-goes-away)."""

from __future__ import annotations

import logging

import pytest

from bot.dbwait import DatabaseWait


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FlakyStore:
    """A store whose problem() is whatever the test says, counting the looks."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.looks = 0

    def problem(self) -> str | None:
        self.looks += 1
        return self.reason


@pytest.fixture
def clock() -> Monotonic:
    return Monotonic()


def test_waits_longer_each_time_up_to_the_cap_and_looks_only_when_a_wait_ends(clock, caplog):
    store, back = FlakyStore(), []
    wait = DatabaseWait(store, "polls", on_back=lambda: back.append(True), monotonic=clock)
    caplog.set_level(logging.INFO)
    store.reason = "the database is read-only"
    waits = []
    for _ in range(7):
        assert not wait.ready()
        waits.append(wait.seconds_left())
        looks = store.looks
        assert not wait.ready()  # within the wait: no look at all (no spinning)
        assert store.looks == looks
        clock.now += wait.seconds_left()
    assert waits == [1, 2, 4, 8, 10, 10, 10]
    store.reason = None
    assert wait.ready() and back == [True]
    assert wait.ready() and back == [True]  # on_back once per outage
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "the database can't take writes (the database is read-only): polls wait until it can",
        "the database takes writes again: polls resume",
    ]
    assert wait.seconds_left() == 0


def test_failures_reported_together_count_once(clock):
    wait = DatabaseWait(FlakyStore(), "polls", monotonic=clock)
    for _ in range(16):  # sixteen polls failing at once
        wait.failed("the database is read-only")
    assert wait.seconds_left() == 1
