"""Monthly request tallies survive restarts and reset with the UTC calendar month."""

from __future__ import annotations

import datetime as dt

from bot.budget import MonthlyBudget
from storage import Store


def epoch(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


def test_spend_counts_per_key_and_month(store, clock):
    clock.now = epoch(2026, 3, 31, 23, 59)
    budget = MonthlyBudget(store, clock)
    assert budget.spend("key-a") == 1
    assert budget.spend("key-a", 2) == 3
    assert budget.spend("key-b") == 1
    assert budget.used("key-a") == 3
    assert budget.month_ends_at() == epoch(2026, 4, 1)
    clock.now = epoch(2026, 4, 1, 0, 0, 1)  # a new month starts from zero
    assert budget.used("key-a") == 0
    assert budget.spend("key-a") == 1
    assert budget.month_ends_at() == epoch(2026, 5, 1)


def test_december_rolls_into_the_next_year(store, clock):
    clock.now = epoch(2026, 12, 15)
    assert MonthlyBudget(store, clock).month_ends_at() == epoch(2027, 1, 1)


def test_tally_survives_a_restart(tmp_path, clock):
    path = str(tmp_path / "b.db")
    first = Store(path)
    MonthlyBudget(first, clock).spend("k", 41)
    first.close()
    second = Store(path)
    try:
        assert MonthlyBudget(second, clock).spend("k") == 42
    finally:
        second.close()
