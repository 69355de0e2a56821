"""Token buckets never let more than the limit through in any 60 s window."""

from __future__ import annotations

from bot.ratelimit import Buckets


def test_no_sixty_second_window_exceeds_the_limit(clock):
    buckets = Buckets(clock)
    granted: list[float] = []
    for _ in range(20_000):  # try every 50 ms for 1,000 s, from a full (idle) bucket
        if buckets.take(("zoho-analytics", "default"), 100) == 0:
            granted.append(clock.now)
        clock.advance(0.05)
    worst = max(sum(1 for t in granted if start <= t < start + 60) for start in granted)
    assert worst <= 100
    assert len(granted) >= 1000 * 100 / 60 * 0.85  # and most of the budget is used


def test_a_denied_take_says_how_long_to_wait(clock):
    buckets = Buckets(clock)
    while (wait := buckets.take(("micro", "default"), 60)) == 0:
        pass
    assert 0 < wait <= 2


def test_callers_denied_together_come_back_one_refill_apart(clock):
    """1,000 watches due at once on a 100/min budget: each is denied about once, not on
    every tick until its turn comes."""
    buckets = Buckets(clock)
    key = ("zoho-analytics", "default")
    start = clock.now
    due = {n: start for n in range(1000)}  # watch -> when it asks next
    granted: list[float] = []
    denials = 0
    while due and clock.now < start + 1200:
        for n, at in list(due.items()):
            if at > clock.now:
                continue
            wait = buckets.take(key, 100)
            if wait == 0:
                granted.append(clock.now)
                del due[n]
            else:
                denials += 1
                due[n] = clock.now + wait
        clock.advance(1.0)  # the poller's tick
    assert not due  # everyone got through
    assert denials <= 1000 * 1.2
    worst = max(sum(1 for t in granted if start <= t < start + 60) for start in granted)
    assert worst <= 100


def test_a_processes_takes_of_one_shared_budget_reach_the_database_one_at_a_time():
    """Poll workers of one process taking at once queue here, not on the shared row's lock
    (where every worker's statement waited behind the others', and readings crossed)."""
    import threading
    import time

    from bot.ratelimit import SharedBuckets

    class Ledger:
        def __init__(self) -> None:
            self.inside = 0
            self.most = 0
            self.lock = threading.Lock()

        def rate_take(self, key: str, interval: float, tolerance: float, now: float) -> float:
            with self.lock:
                self.inside += 1
                self.most = max(self.most, self.inside)
            time.sleep(0.005)  # a round trip to the database
            with self.lock:
                self.inside -= 1
            return 0.0

        def rate_reserve(self, key: str, interval: float, now: float) -> tuple[float, float]:
            raise NotImplementedError

        def rate_hold(self, key: str, until: float) -> None:
            raise NotImplementedError

    ledger = Ledger()
    buckets = SharedBuckets(ledger, time.time)
    start = threading.Barrier(8)

    def worker(account: str) -> None:
        start.wait()
        for _ in range(5):
            assert buckets.take(("zoho-analytics", account), 1e9) == 0

    threads = [threading.Thread(target=worker, args=("acct",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert ledger.most == 1
    # Another account's budget is another row: its takes don't wait for these. Each take
    # here waits inside the ledger until the other account's is inside too.
    meet = threading.Barrier(2, timeout=10)
    ledger.rate_take = lambda *args: meet.wait() * 0.0  # type: ignore[method-assign]
    done: list[float] = []
    threads = [
        threading.Thread(target=lambda a=a: done.append(buckets.take(("zoho", a), 1e9)))
        for a in ("a", "b")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)
    assert done == [0.0, 0.0]
