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

With `--callbacks`, the vendor also calls back when each job ends, as Zuora's `notifyUrl`
or Zoho's `callbackUrl` would (`/hooks/za/<key>?…` over HTTP, to a token covering every
channel), and the jobs end one after another over `--spread` seconds (default: one poll
interval; 1k jobs → 100 a second) instead of all at one moment: each job turns terminal at
the vendor and its callback is sent at once, and its latency is counted from that moment.
The poll interval is unchanged. Goal: p99 ≤ 2 s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from common import (
    UNLIMITED_RATE,
    WORKSPACE,
    FakeVendor,
    SlackFake,
    bot_env,
    emit,
    fixed_bot,
    index_of_requester,
    job_id,
    log,
    machine,
    max_rate_per_key,
    seed_store,
    summary_s,
    terminal_replies,
    wait_until,
)

from bot.api import credentials
from bot.config import Settings
from bot.runtime import BotProcess

TOKEN = "swt_" + "c" * 43  # the bench's token: its hash goes into the config file
CALLBACK_SENDERS = 16


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="100 watches")
    p.add_argument("--watches", type=int, default=1_000)
    p.add_argument("--interval", type=float, default=10.0, help="SYNCWATCH_POLL_INTERVAL")
    p.add_argument("--latency", type=float, default=0.02, help="fake vendor seconds per poll")
    p.add_argument("--per-channel", type=int, default=10, help="watches per Slack channel")
    p.add_argument("--warmup", type=float, default=None, help="seconds before the flip")
    p.add_argument("--timeout", type=float, default=None, help="max seconds after the flip")
    p.add_argument("--callbacks", action="store_true", help="vendors call back as jobs end")
    p.add_argument("--spread", type=float, default=None, help="--callbacks: seconds jobs end over")
    args = p.parse_args()
    args.spread = args.spread if args.spread is not None else args.interval
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
    if args.callbacks:
        flips = end_with_callbacks(vendor, args)
    else:
        at = vendor.flip()
        flips = dict.fromkeys(range(args.watches), at)
        log(f"flipped every job to terminal; waiting up to {args.timeout:.0f}s for the replies")
    wait_until(
        lambda: len(terminal_replies(slack.posts())) >= args.watches, args.timeout, every=1.0
    )
    return flips, behind, slack.posts(), finished_at(bot, args.watches)


def end_with_callbacks(vendor: FakeVendor, args: argparse.Namespace) -> dict[int, float]:
    """End the jobs one after another over `args.spread` seconds, each with its callback
    sent as it ends; returns when each job ended (epoch), by index."""
    key = credentials.hook_key(credentials.digest(TOKEN))
    url = f"{args.bot_url}/hooks/za/{key}"
    local = threading.local()
    clients: list[httpx.Client] = []
    flips: dict[int, float] = {}
    late: list[float] = []

    def end(index: int, due: float) -> int:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=10)
            clients.append(client)
        late.append(time.time() - due)
        job = str(job_id(index))
        flips[index] = float(
            client.post(f"{vendor.root}/_control/flip_job", params={"job": job}).json()["at"]
        )
        return client.get(url, params={"workspace": WORKSPACE, "jobId": job}).status_code

    log(f"ending {args.watches} jobs over {args.spread:g}s, each with its callback")
    gap = args.spread / max(1, args.watches)
    start = time.time()
    with ThreadPoolExecutor(CALLBACK_SENDERS) as pool:
        futures = []
        for index in range(args.watches):
            due = start + index * gap
            time.sleep(max(0.0, due - time.time()))
            futures.append(pool.submit(end, index, due))
        statuses = [f.result() for f in futures]
    for client in clients:
        client.close()
    args.callback_statuses = sorted(set(statuses))
    args.callback_sender_late_p99_s = summary_s(late)["p99_s"]
    log(f"{len(statuses)} jobs ended, callbacks answered {args.callback_statuses}")
    return flips


def report(
    args: argparse.Namespace,
    how: str,
    flips: dict[int, float],
    behind: int,
    posts: list[dict[str, Any]],
    finished: dict[int, float],
) -> dict[str, Any]:
    replies = terminal_replies(posts)
    flip_at = min(flips.values())
    total = [min(ts) - flips[i] for i, ts in replies.items()]
    detect = [finished[i] - flips[i] for i in replies if i in finished]
    deliver = [min(ts) - finished[i] for i, ts in replies.items() if i in finished]
    summary = summary_s(total)
    bound = 2.0 if args.callbacks else args.interval + 1
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
            ("p99_le_2s" if args.callbacks else "p99_le_interval_plus_1s"): summary["p99_s"]
            is not None
            and summary["p99_s"] <= bound
            and len(replies) == args.watches,
        },
        "busiest_channel": channel,
        "callbacks": args.callbacks,
        **(
            {
                "jobs_end_over_s": args.spread,
                "callback_statuses": args.callback_statuses,
                "callback_sender_late_p99_s": args.callback_sender_late_p99_s,
            }
            if args.callbacks
            else {}
        ),
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
        config = None
        if args.callbacks:
            config = os.path.join(tmp, "syncwatch.toml")
            listed = ", ".join(f'"CB{c:05d}"' for c in range(channels))
            with open(config, "w") as fh:
                fh.write(
                    f'[tokens.bench]\nsha256 = "{credentials.digest(TOKEN)}"\n'
                    f"channels = [{listed}]\n"
                )
        env = bot_env(
            db_path,
            slack.api_url,
            vendor.root,
            config_path=config,
            poll_interval=args.interval,
            rate_per_minute=UNLIMITED_RATE,
        ) | {"SYNCWATCH_API_RATE_PER_MINUTE": "1e9"}
        bot = BotProcess(Settings.from_env(env), authorize=fixed_bot)
        try:
            bot.start()
            if args.callbacks:
                args.bot_url = f"http://127.0.0.1:{bot.serve_http(background=True)}"
            flips, behind, posts, finished = measure(bot, vendor, slack, args)
        finally:
            bot.shutdown()
    emit(report(args, how, flips, behind, posts, finished))


if __name__ == "__main__":
    main()
