"""Monthly request allowances (Micro's 1,000 requests a month per key), kept in the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from storage import Store


class MonthlyBudget:
    """The `RequestBudget` the vendors see: a tally per key and UTC calendar month."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    def _month(self) -> dt.datetime:
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    def _period(self) -> str:
        return self._month().strftime("%Y-%m")

    def spend(self, key: str, count: int = 1) -> int:
        return self.store.spend_budget(key, self._period(), count)

    def used(self, key: str) -> int:
        return self.store.budget_used(key, self._period())

    def month_ends_at(self) -> float:
        start = self._month()
        following = (start + dt.timedelta(days=32)).replace(day=1)
        return following.timestamp()
