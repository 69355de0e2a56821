"""Watch API latency: POST /api/v1/watches, 50 at once.

The real bot (BotProcess on waitress) in this process; the fake vendor and FakeSlackAPI in
child processes; a sender in another child process releases N threads at once (a barrier),
each opening its own connection and POSTing a new job's watch (201) as bytes prepared before
the barrier, on a raw socket (bench/ack.py says why). Time = connect → full response. The
token comes from the config file (its hash), its rate and the quotas are set out of the way:
this measures the API, not its limits. Then the same bursts again (the same jobs: 200, the
running watch), and a baseline of requests one at a time.

The first burst after a start is reported on its own and not counted in the goal: it is the
first request of most of the server's 16 threads, each of which opens its own SQLite
connection then (the schema read, every statement compiled once). The goal is about a bot
that has been running; a restart's first burst is a one-off, shown for what it costs.

Beside the bot, in the same run: the CPU this process (the bot: the fakes and the sender are
other processes) spent on each burst of new watches, and the same bursts answered by a bare
waitress server with the bot's server settings and an app that only answers 201 — what the
HTTP server itself costs on this machine at that moment.

Goal: p99 < 100 ms at 50 concurrent.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from urllib.parse import urlsplit

from common import (
    UNLIMITED_RATE,
    WORKSPACE,
    FakeVendor,
    SlackFake,
    bot_env,
    emit,
    fixed_bot,
    job_id,
    log,
    machine,
    summary_ms,
    timed_exchange,
)
from waitress.server import create_server

from bot.api import credentials
from bot.app import HTTP_THREADS
from bot.config import Settings
from bot.runtime import BotProcess

TOKEN = "swt_" + "b" * 43  # a bench's token: its hash goes into the config file
CHANNEL = "C0BENCH"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 bursts")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=50)
    args = p.parse_args()
    if args.quick:
        args.rounds = 2
    return args


def fire(url: str, bodies: list[bytes]) -> list[tuple[int, float]]:
    """POST every body at once; (HTTP status or 0, seconds) each."""
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
    barrier = threading.Barrier(len(bodies))

    def send(body: bytes) -> tuple[int, float]:
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + body
        barrier.wait(timeout=30)
        return timed_exchange(host, port, request)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


def body(k: int) -> bytes:
    return json.dumps({"vendor": "za", "ref": f"{WORKSPACE}/{job_id(k)}"}).encode()


def bare_waitress(sender: ProcessPoolExecutor, args: argparse.Namespace) -> list[tuple[int, float]]:
    """The same bursts against waitress alone: the bot's server settings, an app that reads
    the body and answers 201 with a small JSON object."""

    def app(environ: dict, start_response: Callable[..., object]) -> list[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("201 Created", [("Content-Type", "application/json")])
        return [b'{"id":"wbare"}']

    server = create_server(
        app, host="127.0.0.1", port=0, threads=HTTP_THREADS, backlog=1024, connection_limit=1000
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}/api/v1/watches"
    try:
        sender.submit(fire, url, [body(0)]).result()
        answers: list[tuple[int, float]] = []
        for r in range(args.rounds):
            log(f"bare waitress: burst {r + 1}/{args.rounds}")
            batch = [body(r * args.concurrency + k) for k in range(args.concurrency)]
            answers += sender.submit(fire, url, batch).result()
            time.sleep(1.0)
        return answers
    finally:
        server.close()


def main() -> None:
    args = parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="syncwatch-bench-") as tmp,
        FakeVendor() as vendor,
        SlackFake() as slack,
        ProcessPoolExecutor(1) as sender,
    ):
        config = os.path.join(tmp, "syncwatch.toml")
        with open(config, "w") as fh:
            fh.write(
                "[quotas]\nper_channel = 100000\nper_user = 100000\n"
                f'[tokens.bench]\nsha256 = "{credentials.digest(TOKEN)}"\n'
                f'channels = ["{CHANNEL}"]\n'
            )
        env = bot_env(
            os.path.join(tmp, "syncwatch.db"),
            slack.api_url,
            vendor.root,
            config_path=config,
            rate_per_minute=UNLIMITED_RATE,
        ) | {"SYNCWATCH_API_RATE_PER_MINUTE": "1e9", "SYNCWATCH_POLL_INTERVAL": "30"}
        bot = BotProcess(Settings.from_env(env), authorize=fixed_bot)
        try:
            bot.start()
            port = bot.serve_http(background=True)
            url = f"http://127.0.0.1:{port}/api/v1/watches"
            sender.submit(fire, url, [body(10_000_000)]).result()  # warm: the channel check
            log(f"first burst after the start: {args.concurrency} new watches (not counted)")
            first = sender.submit(
                fire, url, [body(11_000_000 + k) for k in range(args.concurrency)]
            ).result()
            time.sleep(1.0)
            alone = [sender.submit(fire, url, [body(9_000_000 + k)]).result()[0] for k in range(30)]
            created: list[tuple[int, float]] = []
            repeated: list[tuple[int, float]] = []
            per_round = []
            burst_cpu: list[float] = []
            for r in range(args.rounds):
                batch = [body(r * args.concurrency + k) for k in range(args.concurrency)]
                log(f"burst {r + 1}/{args.rounds}: {args.concurrency} new watches")
                cpu_before = time.process_time()
                got = sender.submit(fire, url, batch).result()
                burst_cpu.append((time.process_time() - cpu_before) * 1000)
                created += got
                per_round.append(summary_ms([s for _, s in got])["p99_ms"])
                time.sleep(1.0)
                repeated += sender.submit(fire, url, batch).result()
                time.sleep(1.0)
        finally:
            bot.shutdown()
        bare = bare_waitress(sender, args)
    p99 = summary_ms([s for _, s in created])["p99_ms"]
    bare_p99 = summary_ms([s for _, s in bare])["p99_ms"]
    emit(
        {
            "bench": "api",
            "quick": args.quick,
            "machine": machine(),
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "new_watches": summary_ms([s for _, s in created]),
            "first_burst_after_start": summary_ms([s for _, s in first]),
            "new_watch_p99_per_round_ms": per_round,
            "statuses_new": sorted({s for s, _ in created + first}),
            "same_jobs_again": summary_ms([s for _, s in repeated]),
            "statuses_again": sorted({s for s, _ in repeated}),
            "one_at_a_time": summary_ms([s for _, s in alone]),
            "bot_cpu_ms_per_burst": [round(c, 1) for c in burst_cpu],
            "bare_waitress": summary_ms([s for _, s in bare]),
            "p99_bot_over_bare_waitress": round(p99 / bare_p99, 2) if p99 and bare_p99 else None,
            "goals": {
                "p99_lt_100ms": p99 is not None
                and p99 < 100
                and {s for s, _ in created + first} == {201}
                and {s for s, _ in repeated} == {200}
            },
        }
    )


if __name__ == "__main__":
    main()
