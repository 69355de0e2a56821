"""Rate limits we keep ourselves: token buckets per vendor account (`Buckets`) and the
notifier's pace for Slack writes per channel and per workspace (`Pace`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol


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
                burst, refill = _bucket_shape(rate_per_minute)
                bucket = self._buckets[key] = TokenBucket(refill, burst, self.clock)
            wait = bucket.take()
            if wait <= 0:
                return 0.0
            now = self.clock()
            slot = max(now + wait, self._queue_end.get(key, 0.0))
            self._queue_end[key] = slot + 1 / bucket.rate
            return slot - now


SLACK_S = 1e-3  # seconds: clock arithmetic is floating point
NO_TURN = -1.0  # `Turns.due` for a caller that holds no turn


class Turns:
    """Turns given to callers that must wait, per key, in the order given (ascending). A
    turn unclaimed one `interval` after it falls due lapses: its caller queues anew. Not
    thread-safe: its owner holds its own lock."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._by_key: dict[str, dict[int, float]] = {}  # key -> {caller: turn}

    def due(self, key: str, caller: int, now: float) -> float | None:
        """For a caller holding a turn: None when it has come (and is used up), else its
        time. NO_TURN when the caller holds none."""
        turns = self._by_key.setdefault(key, {})
        while turns:  # drop lapsed turns (they are in ascending order)
            first, turn = next(iter(turns.items()))
            if turn + self.interval >= now:
                break
            del turns[first]
        turn = turns.get(caller)
        if turn is None:
            return NO_TURN
        if now + SLACK_S < turn:
            return turn
        del turns[caller]
        return None

    def give(self, key: str, caller: int, at: float) -> None:
        self._by_key.setdefault(key, {})[caller] = at

    def drop(self, key: str) -> None:
        self._by_key.pop(key, None)


class Pace:
    """Paces calls per key (a channel, or the workspace): `burst` at once, then one per
    refill, refilling at `per_minute - burst` a minute so that no 60 s window holds more
    than `per_minute` (as `Buckets` does). Thread-safe: the notifier's workers
    share it, and several watches share a channel.

    A caller (an outbox row id) that must wait is given a turn of its own, one refill after
    the previous turn, and that call is set aside for it: when it comes back at its turn it
    goes at once, and callers asking meanwhile queue behind it. Rows refused together thus
    come back one at a time, in the order they asked, instead of all at the same moment to
    be refused again. A turn unclaimed one refill after it falls due lapses (its row went
    another way, or the round ran late); its caller then queues anew."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float]) -> None:
        self.interval = 60.0 / (per_minute - burst)
        self.tolerance = (burst - 1) * self.interval
        self.clock = clock
        self._lock = threading.Lock()
        # Per key, GCRA's theoretical time of the next call: a call may go at that time
        # less `tolerance` (the burst), and each call, granted or given a turn, moves it on.
        self._next: dict[str, float] = {}
        self._turns = Turns(self.interval)
        self._held: dict[str, float] = {}  # key -> nothing before this (Slack's Retry-After)

    def take(self, key: str, caller: int) -> float | None:
        """None: go now. Otherwise the time of `caller`'s turn; ask again then."""
        with self._lock:
            now = self.clock()
            held_turn = self._turns.due(key, caller, now)
            if held_turn != NO_TURN:
                return held_turn
            theoretical = max(self._next.get(key, now), now)
            self._next[key] = theoretical + self.interval
            at = max(theoretical - self.tolerance, self._held.get(key, 0.0))
            if at <= now + SLACK_S:
                return None
            self._turns.give(key, caller, at)
            return at

    def hold(self, key: str, until: float) -> None:
        """Slack said 429: nothing for `key` before `until`, then a burst again. Turns
        already given lapse: their callers queue anew, behind `until`."""
        with self._lock:
            self._held[key] = max(self._held.get(key, until), until)
            self._next[key] = max(self._next.get(key, until), until)
            self._turns.drop(key)


class RateLedger(Protocol):
    """Where shared limits keep their state: the database (`storage.Store`), so that every
    replica on it draws from the same limits (docs/architecture.md#rate-limits)."""

    def rate_take(self, key: str, interval: float, tolerance: float, now: float) -> float: ...

    def rate_reserve(self, key: str, interval: float, now: float) -> tuple[float, float]: ...

    def rate_hold(self, key: str, until: float) -> None: ...


def _bucket_shape(rate_per_minute: float) -> tuple[float, float]:
    """(burst, refill per minute) of a vendor account's budget. Refill at the limit less
    the burst: a full bucket spent at once plus a minute of refill then still stays within
    the limit in any 60 s window."""
    burst = max(1.0, min(10.0, rate_per_minute / 6))
    return burst, max(rate_per_minute - burst, rate_per_minute / 2)


class SharedBuckets:
    """`Buckets` with its state in the database: every replica on it draws on one budget
    per vendor account. The come-back hints (a queue of slots per key) stay per process:
    they spread this process's callers out; the budget itself is what is shared."""

    def __init__(self, ledger: RateLedger, clock: Callable[[], float]) -> None:
        self.ledger = ledger
        self.clock = clock
        self._queue_end: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        self._takes: dict[tuple[str, ...], threading.Lock] = {}  # one take of a key at a time

    # Asks of the ledger for one take: the first, and again while a refusal named a moment
    # that had already come when it arrived (see `take`).
    TRIES = 3

    def take(self, key: tuple[str, ...], rate_per_minute: float) -> float:
        """0 when granted; else the seconds until this caller should ask again.

        Callers read the clock before their statement reaches the shared row, so a caller
        whose reading came later can land first and move the bucket past an earlier
        reading: the earlier one is refused for a moment that has already come by the time
        the refusal arrives (poll workers and replicas in parallel do this all the time
        under a budget that is far from spent). Such a refusal is asked again at once with
        a fresh reading, instead of sending the poll back to the next tick (a claim and a
        write for nothing). The ledger decides every take, so the budget stays exact.

        This process's takes of one key go one at a time, clock reading included: its own
        workers then never cross, and the shared row sees one statement per replica at a
        time rather than a queue of every worker's (with two replicas, polls spent most of
        their time waiting for that row's lock, and crossed again on every try)."""
        burst, refill = _bucket_shape(rate_per_minute)
        interval = 60.0 / refill
        name = "vendor:" + "/".join(key)
        with self._lock:
            turnstile = self._takes.setdefault(key, threading.Lock())
        with turnstile:
            for _ in range(self.TRIES):
                now = self.clock()
                wait = self.ledger.rate_take(name, interval, (burst - 1) * interval, now)
                if wait <= 0:
                    return 0.0
                if now + wait > self.clock():  # a wait still ahead: a refusal for real
                    break
        with self._lock:
            slot = max(now + wait, self._queue_end.get(key, 0.0))
            self._queue_end[key] = slot + interval
        return slot - now


class SharedPace:
    """`Pace` with its state in the database, so that replicas together post into one
    channel no faster than one process would. A caller that must wait reserves its turn
    in the shared schedule; the turn is remembered here, and when the caller comes back
    at its turn it goes at once (that call was already counted)."""

    def __init__(
        self,
        ledger: RateLedger,
        name: str,
        per_minute: float,
        burst: int,
        clock: Callable[[], float],
    ) -> None:
        self.ledger = ledger
        self.name = name
        self.interval = 60.0 / (per_minute - burst)
        self.tolerance = (burst - 1) * self.interval
        self.clock = clock
        self._lock = threading.Lock()
        self._turns = Turns(self.interval)

    def take(self, key: str, caller: int) -> float | None:
        """None: go now. Otherwise the time of `caller`'s turn; ask again then."""
        now = self.clock()
        with self._lock:
            held_turn = self._turns.due(key, caller, now)
            if held_turn != NO_TURN:
                return held_turn
        theoretical, held = self.ledger.rate_reserve(f"{self.name}:{key}", self.interval, now)
        at = max(theoretical - self.tolerance, held)
        if at <= now + SLACK_S:
            return None
        with self._lock:
            self._turns.give(key, caller, at)
        return at

    def hold(self, key: str, until: float) -> None:
        """Slack said 429: nothing for `key` before `until`, for every replica."""
        self.ledger.rate_hold(f"{self.name}:{key}", until)
        with self._lock:
            self._turns.drop(key)
