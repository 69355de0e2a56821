"""Request budget: 1k watches on ONE Zoho connection limited to 100 requests/min.

The real bot (BotProcess: poller + notifier) runs in this process; the fake vendor (20 ms per
poll) and FakeSlackAPI run in child processes. The fake Slack answers chat.postMessage with
429 (Retry-After: 1) when a channel goes over ~1 post/s (token bucket, 1/s, burst 3), as
Slack's per-channel limit does. The watches are in 100 channels (10 each;
`--channels 1` puts them all in one and stresses that limit). They start in steady state
(first poll done, parents posted); after a short warm-up every job turns terminal at once.

The budget is the connection's own setting, ZOHO_RATE_PER_MINUTE=100, so
the bot runs exactly as configured in production: one token bucket per vendor account.

Reported, for the budgeted run and for an unconstrained run (same set-up, rate 10^9/min):
- polls at the fake vendor: the most in any 60 s window (> 100 = budget violation);
- Slack: 429s answered, the most chat.postMessage per channel in any 1 s;
- detection latency (flip → terminal reply) of the watches detected before the run ended,
  how many were not; and, over the same time after the flip in both runs, how many replies
  each run delivered (the slowdown is their ratio).

Goals: zero budget violations, zero Slack 429s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

from common import (
    UNLIMITED_RATE,
    FakeVendor,
    SlackFake,
    bot_env,
    emit,
    fixed_bot,
    log,
    machine,
    max_in_window,
    max_rate_per_key,
    seed_store,
    summary_s,
    terminal_replies,
    wait_until,
)

from bot.config import Settings
from bot.runtime import BotProcess


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="35 s budgeted + 15 s unconstrained")
    p.add_argument("--watches", type=int, default=1_000)
    p.add_argument("--rate", type=float, default=100.0, help="vendor budget, requests/min")
    p.add_argument("--minutes", type=float, default=5.0, help="budgeted run length")
    p.add_argument("--baseline-seconds", type=float, default=60.0, help="unconstrained run")
    p.add_argument("--interval", type=float, default=10.0, help="watch poll interval")
    p.add_argument("--channels", type=int, default=100, help="Slack channels the watches are in")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds before the flip")
    args = p.parse_args()
    if args.quick:
        args.minutes, args.baseline_seconds, args.warmup = 35 / 60, 15.0, 5.0
    return args


def poll_outcomes(bot: BotProcess) -> dict[str, float]:
    found = {}
    for metric in bot.metrics.registry.collect():
        if metric.name == "syncwatch_polls":
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    found[sample.labels["outcome"]] = sample.value
    return found


def run(args: argparse.Namespace, rate: float, seconds: float, label: str) -> dict[str, Any]:
    """One bot, fresh fakes and database: warm up, flip, run until `seconds` have passed
    since the start or every watch has its terminal reply."""
    log(f"{label}: bucket {rate:g}/min, up to {seconds:.0f}s")
    with (
        tempfile.TemporaryDirectory(prefix="syncwatch-bench-") as tmp,
        FakeVendor() as vendor,
        SlackFake(channel_rate=1.0, channel_burst=3.0) as slack,
    ):
        db_path = os.path.join(tmp, "syncwatch.db")
        seed_store(db_path, args.watches, interval=args.interval, channels=args.channels)
        env = bot_env(
            db_path, slack.api_url, vendor.root, poll_interval=args.interval, rate_per_minute=rate
        )
        bot = BotProcess(Settings.from_env(env), authorize=fixed_bot)
        started = time.time()
        try:
            bot.start()
            time.sleep(args.warmup)
            flip_at = vendor.flip()
            wait_until(
                lambda: len(terminal_replies(slack.posts())) >= args.watches,
                max(0.0, started + seconds - time.time()),
                every=1.0,
            )
            ended = time.time()
            outcomes = poll_outcomes(bot)
            polls = [t for t in vendor.poll_times(since=started) if t <= ended]
            posts = [p for p in slack.posts() if p["at"] <= ended]
            counts = slack.counts()
        finally:
            slack.stop_rate_limiting()
            bot.shutdown()
    return summarize(args, rate, started, ended, flip_at, polls, posts, counts, outcomes)


def summarize(
    args: argparse.Namespace,
    rate: float,
    started: float,
    ended: float,
    flip_at: float,
    polls: list[float],
    posts: list[dict[str, Any]],
    counts: dict[str, Any],
    outcomes: dict[str, float],
) -> dict[str, Any]:
    busiest_minute, minute_start = max_in_window(polls, 60.0)
    replies = terminal_replies(posts)
    latency = [min(ts) - flip_at for ts in replies.values()]
    channel_posts = [(p["channel"], p["at"]) for p in posts if p["kind"] == "post"]
    per_second, _ = max_rate_per_key(channel_posts, 1.0)
    per_minute, _ = max_rate_per_key(channel_posts, 60.0)
    return {
        "bucket_rate_per_min": rate,
        "seconds": round(ended - started, 1),
        "seconds_after_flip": round(ended - flip_at, 1),
        "vendor_polls": len(polls),
        "vendor_polls_per_min_avg": round(len(polls) * 60 / (ended - started), 1),
        "vendor_polls_max_in_any_60s": busiest_minute,
        "that_window_starts_s_after_start": (
            round(minute_start - started, 1) if minute_start is not None else None
        ),
        "poll_outcomes": outcomes,
        "slack_429s": counts["ratelimited"],
        "slack_calls": counts["methods"],
        "max_posts_per_channel_in_1s": per_second,
        "max_posts_per_channel_in_60s": per_minute,
        "detected": len(replies),
        "not_detected": args.watches - len(replies),
        "duplicate_replies": sum(1 for ts in replies.values() if len(ts) > 1),
        "flip_to_reply_of_detected": summary_s(latency),
        "_latencies": latency,
    }


def main() -> None:
    args = parse_args()
    budgeted = run(args, args.rate, args.minutes * 60, "budgeted")
    baseline = run(args, UNLIMITED_RATE, args.baseline_seconds, "unconstrained")
    lat_b, lat_u = budgeted["flip_to_reply_of_detected"], baseline["flip_to_reply_of_detected"]
    # Same horizon for both runs: how many terminal replies within H seconds of the flip.
    horizon = min(budgeted["seconds_after_flip"], baseline["seconds_after_flip"])
    within_b = sum(1 for t in budgeted.pop("_latencies") if t <= horizon)
    within_u = sum(1 for t in baseline.pop("_latencies") if t <= horizon)
    emit(
        {
            "bench": "budget",
            "quick": args.quick,
            "machine": machine(),
            "watches": args.watches,
            "connection": "one (default)",
            "budget_per_min": args.rate,
            "rate_setting": f"ZOHO_RATE_PER_MINUTE={args.rate:g} (the connection's setting)",
            "poll_interval_s": args.interval,
            "slack_channels": args.channels,
            "slack_429_rule": "chat.postMessage per channel over 1/s (bucket, burst 3)",
            "min_minutes_to_poll_every_watch_once": round(args.watches / args.rate, 1),
            "budgeted": budgeted,
            "unconstrained": baseline,
            "degradation": {
                "horizon_s_after_flip": horizon,
                "replies_within_horizon_budgeted": within_b,
                "replies_within_horizon_unconstrained": within_u,
                "replies_per_s_budgeted": round(within_b / horizon, 2),
                "replies_per_s_unconstrained": round(within_u / horizon, 2),
                "slowdown": round(within_u / within_b, 1) if within_b else None,
                "p50_s_of_detected_budgeted": lat_b["p50_s"],
                "p50_s_of_detected_unconstrained": lat_u["p50_s"],
            },
            "goals": {
                "no_budget_violation": budgeted["vendor_polls_max_in_any_60s"] <= args.rate,
                "no_slack_429": budgeted["slack_429s"] == 0 and baseline["slack_429s"] == 0,
            },
        }
    )


if __name__ == "__main__":
    main()
