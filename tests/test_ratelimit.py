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
    while buckets.take(("micro", "default"), 60) == 0:
        pass
    assert 0 < buckets.take(("micro", "default"), 60) <= 2
