"""Poll throughput: N active Zoho Analytics watches (30 s interval) against a fake vendor.

Measures, for the real Poller (APScheduler 1 s tick, SQLite claims, vendor module, httpx)
in this process, with the fake vendor (20 ms per poll) in a child process:
- sustained phase: watches due evenly over the interval → polls/s served vs the demand
  (watches / interval), CPU share of this process (process time / wall), RSS, DB size, and
  how far behind schedule the watches are at the end;
- drain phase: every watch due at once → the most polls/s the poller can do;
- a bare httpx loop (same shared-client settings, same concurrency as the poller's workers,
  same server, as many requests as the drain phase served) → the ratio poller / bare.

The Zoho Analytics token bucket (30/min per account by default) would hold the watches to
0.5 polls/s; the fake vendor has no limit, so the connection's rate is set out of the way
(ZOHO_RATE_PER_MINUTE=1e9, see bench/README.md).

Goals: 10,000 active watches in one process within ≤ 50 % of one core and ≤ 250 MB RSS;
poller / bare ratio ≥ 0.8.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from typing import Any

from common import (
    ORG_ID,
    UNLIMITED_RATE,
    FakeVendor,
    RssSampler,
    SlackFake,
    bot_env,
    db_size_mb,
    emit,
    fixed_bot,
    job_id,
    log,
    machine,
    peak_rss_mb,
    rss_mb,
    seed_store,
    wait_until,
)

from bot.config import Settings
from bot.runtime import BotProcess
from bot.vendors import build_http_client


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1k watches, 20 s + 10 s phases")
    p.add_argument("--watches", type=int, default=10_000)
    p.add_argument("--interval", type=float, default=30.0, help="poll interval of every watch")
    p.add_argument("--latency", type=float, default=0.02, help="fake vendor seconds per poll")
    p.add_argument("--sustain", type=float, default=90.0, help="sustained phase, seconds")
    p.add_argument("--drain", type=float, default=30.0, help="drain phase, seconds (max)")
    args = p.parse_args()
    if args.quick:
        args.watches, args.sustain, args.drain = 1_000, 20.0, 10.0
    return args


def poll_outcomes(bot: BotProcess) -> dict[str, float]:
    """Poller-side counts by outcome from the bot's own metrics registry."""
    found = {}
    for metric in bot.metrics.registry.collect():
        if metric.name == "syncwatch_polls":
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    found[sample.labels["outcome"]] = sample.value
    return found


def behind_schedule(bot: BotProcess, now: float) -> dict[str, Any]:
    """Active watches whose poll is more than 2 s overdue, and the worst delay."""
    count, oldest = bot.store.poll_backlog(now - 2)
    return {"overdue_watches": count, "max_overdue_s": round(now - oldest, 1) if oldest else 0.0}


def sustained_phase(bot: BotProcess, vendor: FakeVendor, args: argparse.Namespace) -> dict:
    log(f"sustained phase: {args.sustain:.0f}s")
    sampler = RssSampler()
    polls0, cpu0, wall0 = vendor.stats()["polls"], time.process_time(), time.monotonic()
    bot.poller.start()
    time.sleep(args.sustain)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    polls = vendor.stats()["polls"] - polls0
    peak = sampler.stop()
    return {
        "seconds": round(wall, 1),
        "demand_polls_per_s": round(args.watches / args.interval, 1),
        "polls_per_s": round(polls / wall, 1),
        "polls": polls,
        "cpu_share_of_one_core": round(cpu / wall, 3),
        "cpu_ms_per_poll": round(cpu * 1000 / polls, 2) if polls else None,
        "rss_mb_end": rss_mb(),
        "rss_mb_peak_sampled": peak,
        **behind_schedule(bot, time.time()),
    }


def not_polled_since(bot: BotProcess, since: float) -> int:
    """Active watches still due at or before `since` (not yet polled in the drain)."""
    return bot.store.poll_backlog(since)[0]


def drain_phase(bot: BotProcess, vendor: FakeVendor, args: argparse.Namespace) -> dict:
    """Every watch due now: how fast does the poller work through them (until each has been
    polled once, or the phase's time limit)?"""
    log(f"drain phase: up to {args.drain:.0f}s")
    now = time.time()
    bot.store.poll_all_soon(now)
    polls0, cpu0, wall0 = vendor.stats()["polls"], time.process_time(), time.monotonic()
    drained = wait_until(lambda: not_polled_since(bot, now) == 0, args.drain, every=0.05)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    polls = vendor.stats()["polls"] - polls0
    times = vendor.poll_times(since=now)
    # Throughput over the span of the polls themselves: the wait for the next 1 s tick
    # after the watches became due is latency, not throughput.
    span = times[-1] - times[0] if len(times) > 1 else wall
    return {
        "seconds": round(wall, 2),
        "all_polled_once": drained,
        "polls": polls,
        "first_to_last_poll_s": round(span, 2),
        "polls_per_s": round(len(times) / span, 1) if span > 0 else None,
        "cpu_share_of_one_core": round(cpu / wall, 3),
        "cpu_ms_per_poll": round(cpu * 1000 / polls, 2) if polls else None,
    }


def bare_loop(vendor: FakeVendor, count: int, workers: int, limit_s: float) -> dict:
    """`count` polls from `workers` threads on one shared client built like the bot's."""
    log(f"bare httpx loop: {count} requests, {workers} threads")
    client = build_http_client()
    headers = {"Authorization": "Zoho-oauthtoken bench-access", "ZANALYTICS-ORGID": ORG_ID}
    lock, next_index, done = threading.Lock(), [0], [0]
    deadline = time.monotonic() + limit_s

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                if next_index[0] >= count:
                    return
                n = next_index[0]
                next_index[0] += 1
            client.get(vendor.job_url(job_id(n % 100_000)), headers=headers).json()
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    cpu0, wall0 = time.process_time(), time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=limit_s + 30)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    client.close()
    return {
        "requests": done[0],
        "seconds": round(wall, 2),
        "polls_per_s": round(done[0] / wall, 1) if wall else None,
        "cpu_ms_per_request": round(cpu * 1000 / done[0], 2) if done[0] else None,
    }


def build_bot(tmp: str, vendor: FakeVendor, slack: SlackFake, args: argparse.Namespace) -> tuple:
    db_path = os.path.join(tmp, "syncwatch.db")
    seed_store(db_path, args.watches, interval=args.interval)
    env = bot_env(db_path, slack.api_url, vendor.root, rate_per_minute=UNLIMITED_RATE)
    bot = BotProcess(Settings.from_env(env), authorize=fixed_bot)
    how = (
        f"one connection at ZOHO_RATE_PER_MINUTE={UNLIMITED_RATE:g}: its bucket is never the limit"
    )
    return bot, db_path, how


def main() -> None:
    args = parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="syncwatch-bench-") as tmp,
        FakeVendor(args.latency) as vendor,
        SlackFake() as slack,
    ):
        bot, db_path, how = build_bot(tmp, vendor, slack, args)
        try:
            sustained = sustained_phase(bot, vendor, args)
            peak_after_sustained = peak_rss_mb()
            drain = drain_phase(bot, vendor, args)
            outcomes = poll_outcomes(bot)
        finally:
            bot.poller.shutdown()
        db_mb = db_size_mb(db_path)
        bare = bare_loop(vendor, max(drain["polls"], 100), bot.poller.max_workers, args.drain * 3)
        bot.shutdown()
    ratio = (
        drain["polls_per_s"] / bare["polls_per_s"]
        if drain["polls_per_s"] and bare["polls_per_s"]
        else None
    )
    emit(
        {
            "bench": "poll",
            "quick": args.quick,
            "machine": machine(),
            "watches": args.watches,
            "interval_s": args.interval,
            "vendor_latency_ms": args.latency * 1000,
            "poller_workers": bot.poller.max_workers,
            "rate_limit_handling": how,
            "sustained": sustained,
            "drain": drain,
            "bare_httpx": bare,
            "ratio_poller_to_bare": round(ratio, 3) if ratio is not None else None,
            # CPU a poll (sustained) over CPU a bare request, both measured in this run.
            "cpu_per_poll_over_bare": (
                round(sustained["cpu_ms_per_poll"] / bare["cpu_ms_per_request"], 2)
                if sustained["cpu_ms_per_poll"] and bare["cpu_ms_per_request"]
                else None
            ),
            "poll_outcomes": outcomes,
            "peak_rss_mb": peak_after_sustained,
            "db_mb": db_mb,
            "goals": {
                # CPU share only counts while the poller keeps up with the demand.
                "cpu_share_le_0.5_keeping_up": sustained["cpu_share_of_one_core"] <= 0.5
                and sustained["overdue_watches"] == 0,
                "peak_rss_le_250mb": peak_after_sustained <= 250,
                "keeps_up_with_demand": sustained["overdue_watches"] == 0,
                "ratio_ge_0.8": ratio is not None and ratio >= 0.8,
            },
        }
    )


if __name__ == "__main__":
    main()
