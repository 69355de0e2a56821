"""Token buckets: keep each vendor connection below its published request rate."""

from __future__ import annotations

import threading
from collections.abc import Callable


class TokenBucket:
    """`rate_per_minute` tokens a minute, holding at most `burst`. Thread-safe."""

    def __init__(self, rate_per_minute: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.updated = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token. Returns 0 when granted, else the seconds until one is available
        (nothing is taken then)."""
        with self._lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


class Buckets:
    """One bucket per key, created on first use.

    A denied caller is told when to come back, and callers denied together are told
    different times, one refill apart (a queue of slots per key): 1,000 watches over a
    100/min budget then come back one at a time as tokens appear, instead of all of them
    returning after the same short wait and being denied again, tick after tick. A slot is
    a hint, not a reservation: the token still goes to whoever asks first."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}
        self._queue_end: dict[tuple[str, ...], float] = {}  # the next free slot, per key
        self._lock = threading.Lock()

    def take(self, key: tuple[str, ...], rate_per_minute: float) -> float:
        """0 when granted; else the seconds until this caller should ask again."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                burst = max(1.0, min(10.0, rate_per_minute / 6))
                # Refill at the limit less the burst: a full bucket spent at once plus a
                # minute of refill then still stays within the limit in any 60 s window.
                refill = max(rate_per_minute - burst, rate_per_minute / 2)
                bucket = self._buckets[key] = TokenBucket(refill, burst, self.clock)
            wait = bucket.take()
            if wait <= 0:
                return 0.0
            now = self.clock()
            slot = max(now + wait, self._queue_end.get(key, 0.0))
            self._queue_end[key] = slot + 1 / bucket.rate
            return slot - now
