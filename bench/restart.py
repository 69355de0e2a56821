"""Restart after kill -9: time to resume, and terminal notifications lost or duplicated.

N Zoho Analytics watches (10k; quick 1k) are created in a fresh database (each with its
parent post queued, nothing polled yet). `python -m bot.cli run` is started as a subprocess
against the fake vendor (20 ms per poll) and FakeSlackAPI, both in child processes of this
bench. While it is busy (posting parents, first polls) it is killed with SIGKILL. Every job
then turns terminal, and a second `bot.cli run` starts on the same database. Measured:
- restart → /healthz 200, and restart → the first poll the vendor serves;
- per watch, how many terminal "Job succeeded" replies reached Slack (0 = lost,
  >1 = duplicated; the reply mentions the watch's own requester), with the database's view of
  every watch that has none when the run ends (still leased by the killed process, not yet
  polled, reply queued, or reply marked sent: lost);
- duplicated parent messages (a known gap for messages, README "Known gaps").

The connection's rate is set out of the way (ZOHO_RATE_PER_MINUTE=1e9; the default Zoho token
bucket, 30/min per account, would be what delays them).

Goals: < 2 s from restart to polling again; 0 lost, 0 duplicated.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

import httpx
from common import (
    FIRST_JOB,
    UNLIMITED_RATE,
    FakeVendor,
    SlackFake,
    bot_env,
    emit,
    log,
    machine,
    seed_store,
    summary_s,
    terminal_replies,
    wait_until,
)

from storage import Store

JOB_IN_TEXT = re.compile(r"/(\d{19})\b")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1k watches, 40 s after the restart")
    p.add_argument("--watches", type=int, default=10_000)
    p.add_argument("--interval", type=float, default=30.0, help="poll interval of every watch")
    p.add_argument("--first-run", type=float, default=15.0, help="seconds before the kill")
    p.add_argument("--timeout", type=float, default=600.0, help="max seconds after restart")
    p.add_argument("--per-channel", type=int, default=10, help="watches per Slack channel")
    args = p.parse_args()
    if args.quick:
        args.watches, args.first_run, args.timeout = 1_000, 5.0, 40.0
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_HTTP = httpx.Client(timeout=0.5)  # one client: httpx.get() builds one (~25 ms CPU) per call


def healthy(port: int) -> bool:
    try:
        return _HTTP.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def start_bot(env: dict[str, str], tmp: str, name: str) -> tuple[subprocess.Popen, int, Any]:
    port = free_port()
    stderr = open(os.path.join(tmp, f"{name}.log"), "wb")  # closed by the caller
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        env={**env, "PORT": str(port)},
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )
    return proc, port, stderr


def stop_bot(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def log_tail(tmp: str, name: str, lines: int = 15) -> str:
    with open(os.path.join(tmp, f"{name}.log"), errors="replace") as fh:
        return "".join(fh.readlines()[-lines:])


def first_process(env: dict[str, str], tmp: str, slack: SlackFake, args: argparse.Namespace):
    """Run the first bot until it is busy, then SIGKILL it. Returns what it had done."""
    proc, port, err = start_bot(env, tmp, "first")
    try:
        if not wait_until(lambda: healthy(port), 60, every=0.1):
            raise RuntimeError("first bot never became healthy:\n" + log_tail(tmp, "first"))
        log(f"first bot up; killing it with SIGKILL in {args.first_run:.0f}s")
        time.sleep(args.first_run)
    finally:
        stop_bot(proc, signal.SIGKILL)
        err.close()
    posts = slack.posts()
    return {
        "ran_s": args.first_run,
        "parents_posted": sum(1 for p in posts if p["kind"] == "post" and not p["thread_ts"]),
        "replies_posted": sum(1 for p in posts if p["kind"] == "post" and p["thread_ts"]),
    }


def second_process(
    env: dict[str, str], tmp: str, vendor: FakeVendor, slack: SlackFake, args: argparse.Namespace
) -> dict[str, Any]:
    """Flip every job, restart, time the way back, wait for every terminal reply."""
    vendor.flip()
    vendor.mark()
    started = time.time()
    proc, port, err = start_bot(env, tmp, "second")
    try:
        wait_until(lambda: healthy(port) or proc.poll() is not None, 60, every=0.01)
        health_s = time.time() - started
        log(f"second bot healthy after {health_s:.2f}s; waiting for terminal replies")
        done = wait_until(
            lambda: len(terminal_replies(slack.posts())) >= args.watches or proc.poll() is not None,
            args.timeout,
            every=2.0,
        )
        all_in_s = time.time() - started if done and proc.poll() is None else None
        time.sleep(3)  # a few more ticks: anything sent twice shows up now
        first_poll = vendor.stats()["first_after_mark"]
        alive = proc.poll() is None
    finally:
        stop_bot(proc, signal.SIGTERM)
        err.close()
    return {
        "restart_to_healthz_s": round(health_s, 2),
        "restart_to_first_poll_s": round(first_poll - started, 2) if first_poll else None,
        "restart_to_all_terminal_replies_s": round(all_in_s, 1) if all_in_s else None,
        "second_bot_alive_at_end": alive,
        "started_at": started,
    }


def count_messages(posts: list[dict[str, Any]]) -> dict[str, Any]:
    """Terminal replies and parents per watch (by requester mention and job id)."""
    terminal = terminal_replies(posts)
    parents: Counter[int] = Counter()
    for post in posts:
        if post["kind"] == "post" and not post["thread_ts"]:
            match = JOB_IN_TEXT.search(post["text"])
            if match:
                parents[int(match.group(1)) - FIRST_JOB] += 1
    return {"terminal": terminal, "parents": parents}


def explain_missing(db_path: str, missing: list[int], killed_at: float) -> dict[str, int]:
    """What the database says about watches without a terminal reply."""
    if not missing:
        return {}
    store = Store(db_path)
    reasons: Counter[str] = Counter()
    try:
        for index in missing:
            found = store.list_watches(requester_id=f"UB{index:07d}", statuses=None, limit=1)
            if not found:
                reasons["no such watch"] += 1
                continue
            watch = found[0]
            succeeded = {t.id for t in store.transitions(watch.id) if t.to_state == "succeeded"}
            reply = next(
                (
                    row.status
                    for row in store.outbox_rows(watch.id)
                    if row.kind == "reply" and row.transition_id in succeeded
                ),
                None,
            )
            leased = watch.lease_owner and watch.lease_until and watch.lease_until > killed_at
            if watch.status == "active" and leased:
                reasons["active, still leased by the killed process"] += 1
            elif watch.status == "active":
                reasons["active, not polled since the flip"] += 1
            elif reply is None:
                reasons[f"{watch.status}, no terminal reply queued"] += 1
            elif reply == "sent":
                reasons["reply marked sent but never arrived (lost)"] += 1
            else:
                reasons[f"reply {reply} in the outbox"] += 1
    finally:
        store.close()
    return dict(reasons)


def main() -> None:
    args = parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="syncwatch-bench-") as tmp,
        FakeVendor() as vendor,
        SlackFake() as slack,
    ):
        db_path = os.path.join(tmp, "syncwatch.db")
        channels = max(1, args.watches // args.per_channel)
        seed_store(
            db_path,
            args.watches,
            interval=args.interval,
            channels=channels,
            primed=False,
        )
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "SYNCWATCH_", "ZOHO_"))
        }
        env = clean | bot_env(db_path, slack.api_url, vendor.root, rate_per_minute=UNLIMITED_RATE)
        first = first_process(env, tmp, slack, args)
        killed_at = time.time()
        second = second_process(env, tmp, vendor, slack, args)
        posts = slack.posts()
        counted = count_messages(posts)
        terminal, parents = counted["terminal"], counted["parents"]
        missing = [i for i in range(args.watches) if i not in terminal]
        reasons = explain_missing(db_path, missing, killed_at)
        tail = log_tail(tmp, "second") if not second["second_bot_alive_at_end"] else None
    started = second.pop("started_at")
    latencies = [min(ts) - started for ts in terminal.values()]
    duplicated = sum(1 for ts in terminal.values() if len(ts) > 1)
    lost = sum(n for why, n in reasons.items() if not why.startswith(("active", "reply pending")))
    emit(
        {
            "bench": "restart",
            "quick": args.quick,
            "machine": machine(),
            "watches": args.watches,
            "interval_s": args.interval,
            "connections": f"one, at ZOHO_RATE_PER_MINUTE={UNLIMITED_RATE:g}",
            "first_process": first,
            "second_process": second,
            "restart_to_terminal_reply": summary_s(latencies),
            "missing_at_end": len(missing),
            "missing_explained_by_database": reasons,
            "lost": lost,
            "duplicated_terminal_replies": duplicated,
            "watches_with_duplicate_parents": sum(1 for n in parents.values() if n > 1),
            "second_bot_log_tail": tail,
            "goals": {
                "resume_polling_lt_2s": (second["restart_to_first_poll_s"] or 99) < 2,
                "none_lost": lost == 0,
                "all_delivered_before_timeout": not missing,
                "none_duplicated": duplicated == 0,
            },
        }
    )


if __name__ == "__main__":
    main()
