"""How a background loop waits out a database that can't take writes
(docs/operations.md#the-database-goes-away)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from storage import Store

log = logging.getLogger(__name__)

FIRST_WAIT_S = 1.0
MAX_WAIT_S = 10.0  # how late, at worst, a loop notices that the database is back


class DatabaseWait:
    """For a loop that writes on its own (the poll tick, the outbox rounds). While the
    store has a problem, `ready()` is False: the loop skips its work and looks again after
    1 s, then 2, 4 … up to MAX_WAIT_S, neither spinning nor logging a traceback a second.
    One line is logged when the database goes and one when it is back; `on_back` runs
    then (on the loop's thread)."""

    def __init__(
        self,
        store: Store,
        what: str,
        *,
        on_back: Callable[[], None] = lambda: None,
        first: float | None = None,
        most: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.what = what
        self.on_back = on_back
        self.first = FIRST_WAIT_S if first is None else first
        self.most = MAX_WAIT_S if most is None else most
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._wait = 0.0
        self._until = float("-inf")  # monotonic
        self._down: str | None = None

    def ready(self) -> bool:
        """May the loop work now? Asks the store at most once per wait."""
        with self._lock:
            if self.monotonic() < self._until:
                return False
        reason = self.store.problem()
        if reason is not None:
            self.failed(reason)
            return False
        with self._lock:
            was_down, self._down, self._wait = self._down, None, 0.0
        if was_down is not None:
            log.info("the database takes writes again: %s resume", self.what)
            self.on_back()
        return True

    def failed(self, reason: str) -> None:
        """The store refused a write of this loop (or `ready` found a problem): wait."""
        with self._lock:
            now = self.monotonic()
            if self._down is not None and now < self._until:
                return  # polls failing together count as one failure, not one each
            if self._down is None:
                log.warning(
                    "the database can't take writes (%s): %s wait until it can", reason, self.what
                )
            self._down = reason
            self._wait = min(self.most, max(self.first, self._wait * 2))
            self._until = now + self._wait

    def seconds_left(self) -> float:
        """Until the next look (0 when the loop may work)."""
        with self._lock:
            return max(0.0, self._until - self.monotonic())
