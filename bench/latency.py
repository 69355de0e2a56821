"""Detection latency: job turns terminal at the vendor → terminal thread reply in Slack.

N watches (1k; quick 100) of long-running Zoho Analytics jobs, already in steady state (first
poll done, parent posted), polled every SYNCWATCH_POLL_INTERVAL seconds (default 10) by the
real bot in this process (BotProcess: poller + notifier); the fake vendor (20 ms per poll) and
FakeSlackAPI run in child processes. After a warm-up, every job flips to `1004 JOB COMPLETED`
at one known moment; for each watch the bench takes the arrival time of its "Job succeeded"
reply at the fake Slack (the reply mentions the watch's own requester) and splits it into
detection (flip → the poll that saw it, `watches.finished_at`) and delivery (→ reply).

The connection's rate is set out of the way (ZOHO_RATE_PER_MINUTE=1e9; the default Zoho token
bucket, 30/min per account, would delay polls): this measures the poll schedule, not the
vendor budget (bench/budget.py does that).

Goal: p99 ≤ poll interval + 1 s.
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
    index_of_requester,
    log,
    machine,
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
    p.add_argument("--quick", action="store_true", help="100 watches")
    p.add_argument("--watches", type=int, default=1_000)
    p.add_argument("--interval", type=float, default=10.0, help="SYNCWATCH_POLL_INTERVAL")
    p.add_argument("--latency", type=float, default=0.02, help="fake vendor seconds per poll")
    p.add_argument("--per-channel", type=int, default=10, help="watches per Slack channel")
    p.add_argument("--warmup", type=float, default=None, help="seconds before the flip")
    p.add_argument("--timeout", type=float, default=None, help="max seconds after the flip")
    args = p.parse_args()
    if args.quick:
        args.watches = 100
    args.warmup = args.warmup if args.warmup is not None else 1.5 * args.interval
    args.timeout = args.timeout if args.timeout is not None else 3 * args.interval + 30
    return args


def overdue(bot: BotProcess) -> int:
    """Active watches more than 2 s past their due time."""
    return bot.store.poll_backlog(time.time() - 2)[0]


def finished_at(bot: BotProcess, watches: int) -> dict[int, float]:
    """When the poll that saw the terminal state was applied, by watch index."""
    found = {}
    for watch in bot.store.list_watches(statuses=None, limit=watches + 100):
        index = index_of_requester(f"<@{watch.requester_id}>")
        if index is not None and watch.finished_at is not None:
            found[index] = watch.finished_at
    return found


def measure(bot: BotProcess, vendor: FakeVendor, slack: SlackFake, args: argparse.Namespace):
    log(f"warm-up {args.warmup:.0f}s")
    time.sleep(args.warmup)
    behind = overdue(bot)
    flip_at = vendor.flip()
    log(f"flipped every job to terminal; waiting up to {args.timeout:.0f}s for the replies")
    wait_until(
        lambda: len(terminal_replies(slack.posts())) >= args.watches, args.timeout, every=1.0
    )
    return flip_at, behind, slack.posts(), finished_at(bot, args.watches)


def report(
    args: argparse.Namespace,
    how: str,
    flip_at: float,
    behind: int,
    posts: list[dict[str, Any]],
    finished: dict[int, float],
) -> dict[str, Any]:
    replies = terminal_replies(posts)
    total = [min(ts) - flip_at for ts in replies.values()]
    detect = [finished[i] - flip_at for i in replies if i in finished]
    deliver = [min(ts) - finished[i] for i, ts in replies.items() if i in finished]
    summary = summary_s(total)
    bound = args.interval + 1
    after_flip = [
        (p["channel"], p["at"]) for p in posts if p["kind"] == "post" and p["at"] >= flip_at
    ]
    busiest, channel = max_rate_per_key(after_flip, 1.0)
    return {
        "bench": "latency",
        "quick": args.quick,
        "machine": machine(),
        "watches": args.watches,
        "poll_interval_s": args.interval,
        "vendor_latency_ms": args.latency * 1000,
        "rate_limit_handling": how,
        "overdue_watches_at_flip": behind,
        "flip_to_reply": summary,
        "flip_to_detection": summary_s(detect),
        "detection_to_reply": summary_s(deliver),
        "missing_replies": args.watches - len(replies),
        "duplicate_replies": sum(1 for ts in replies.values() if len(ts) > 1),
        "max_posts_per_channel_in_1s": busiest,
        "goal_bound_s": bound,
        "goals": {
            "p99_le_interval_plus_1s": summary["p99_s"] is not None
            and summary["p99_s"] <= bound
            and len(replies) == args.watches,
        },
        "busiest_channel": channel,
    }


def main() -> None:
    args = parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="syncwatch-bench-") as tmp,
        FakeVendor(args.latency) as vendor,
        SlackFake() as slack,
    ):
        how = f"one connection at ZOHO_RATE_PER_MINUTE={UNLIMITED_RATE:g} (bucket never the limit)"
        db_path = os.path.join(tmp, "syncwatch.db")
        channels = max(1, args.watches // args.per_channel)
        seed_store(db_path, args.watches, interval=args.interval, channels=channels)
        env = bot_env(
            db_path,
            slack.api_url,
            vendor.root,
            poll_interval=args.interval,
            rate_per_minute=UNLIMITED_RATE,
        )
        bot = BotProcess(Settings.from_env(env), authorize=fixed_bot)
        try:
            bot.start()
            flip_at, behind, posts, finished = measure(bot, vendor, slack, args)
        finally:
            bot.shutdown()
    emit(report(args, how, flip_at, behind, posts, finished))


if __name__ == "__main__":
    main()
