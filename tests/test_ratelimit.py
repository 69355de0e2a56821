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
