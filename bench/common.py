"""Shared pieces of the benchmarks: local fakes in child processes, bot wiring, seeding,
measurements and output. Not a test module (pytest only collects `tests/`).

The fakes run in child processes so that the process measured is the bot alone:
- `FakeVendor`: a minimal asyncio HTTP/1.1 (keep-alive) server answering Zoho Accounts'
  token endpoint and Zoho Analytics' import-job poll with a fixed per-request latency.
  Every job is `1002 JOB IN PROGRESS` until `flip()`, then `1004 JOB COMPLETED`. It
  records the arrival time of every poll for rate and budget analysis.
- `SlackFake`: the project's `FakeSlackAPI` (bot/simulators/slack.py) with a bench route
  that returns what was posted (with arrival times), optionally answering
  `chat.postMessage` with 429 above a per-channel rate.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import multiprocessing
import os
import platform
import resource
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bot.simulators import HttpReply, HttpRequest
from bot.simulators.slack import Call, FakeSlackAPI
from bot.vendors.zoho_analytics import snapshot_from
from storage import DatabaseUnavailable, DuplicateWatchError, NewWatch, Store

SIGNING_SECRET = "bench-signing-secret"
WORKSPACE = "2480011000000498001"
FIRST_JOB = 2480011000000600000
ZOHO_CLIENT = ("bench-client", "bench-secret", "bench-refresh")
ORG_ID = "55522777"
VENDOR = "zoho-analytics"
RUNNING = {"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"}
# ZOHO_RATE_PER_MINUTE for benches that measure the bot, not the vendor budget: the fake
# vendor has no limit, so the connection's token bucket must never be what they measure.
UNLIMITED_RATE = 1e9


# -- output -----------------------------------------------------------------------------


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries the one JSON result."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=2, sort_keys=False))


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), model
            )
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "cpu_model": model,
        "platform": platform.platform(),
    }


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolated percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """n, p50, p99, max of durations given in seconds, reported in milliseconds."""

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 1)

    return {
        "n": len(seconds),
        "p50_ms": ms(percentile(seconds, 50)),
        "p99_ms": ms(percentile(seconds, 99)),
        "max_ms": ms(max(seconds) if seconds else None),
    }


def summary_s(seconds: Sequence[float]) -> dict[str, Any]:
    def s(v: float | None) -> float | None:
        return None if v is None else round(v, 2)

    return {
        "n": len(seconds),
        "p50_s": s(percentile(seconds, 50)),
        "p99_s": s(percentile(seconds, 99)),
        "max_s": s(max(seconds) if seconds else None),
    }


def rss_mb() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def peak_rss_mb() -> float:
    """Peak RSS of this process so far (getrusage; KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def db_size_mb(path: str) -> float:
    total = sum(
        os.path.getsize(p) for p in (path, path + "-wal", path + "-shm") if os.path.exists(p)
    )
    return round(total / 1024 / 1024, 2)


def wait_until(check: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    """Poll `check` until it is true or `timeout` seconds pass; returns the last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


class RssSampler:
    """Samples this process's RSS in a daemon thread (bounded by `stop()`)."""

    def __init__(self, every: float = 0.5) -> None:
        self.every = every
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=2)
        return self.peak


# -- child processes ----------------------------------------------------------------------


class ChildServer:
    """A fake served from a child process; `root` is its http://127.0.0.1:<port> origin."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent_end, child_end = ctx.Pipe()
        self._process = ctx.Process(target=target, args=(child_end, *args), daemon=True)
        self._process.start()
        if not parent_end.poll(30):
            self._process.kill()
            raise RuntimeError(f"{target.__name__} did not start within 30 s")
        self.root: str = parent_end.recv()
        self.pid = self._process.pid
        # One client for every look-up: httpx.get() builds one per call (~25 ms of CPU in
        # the bench process, which shares the machine with what it measures).
        self._http = httpx.Client(timeout=30)

    def close(self) -> None:
        self._http.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)

    def get(self, path: str, **params: Any) -> Any:
        return self._http.get(f"{self.root}{path}", params=params).json()

    def post(self, path: str, **params: Any) -> Any:
        return self._http.post(f"{self.root}{path}", params=params).json()

    def __enter__(self) -> ChildServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the fake vendor ------------------------------------------------------------------------


class FakeVendor(ChildServer):
    """Zoho Accounts + Analytics import-job polls, `latency` seconds per poll, in a child."""

    def __init__(self, latency: float = 0.02) -> None:
        super().__init__(_serve_vendor, latency)
        self.url = self.root

    def flip(self) -> float:
        """Every job answers 1004 (terminal) from now on; returns the flip time (epoch)."""
        return float(self.post("/_control/flip")["at"])

    def flip_job(self, job: int) -> float:
        """One job answers 1004 from now on; returns when (epoch)."""
        return float(self.post("/_control/flip_job", job=job)["at"])

    def mark(self) -> float:
        """Start watching for the first poll after now (see `stats()['first_after_mark']`)."""
        return float(self.post("/_control/mark")["at"])

    def stats(self) -> dict[str, Any]:
        return dict(self.get("/_control/stats"))

    def poll_times(self, since: float = 0.0) -> list[float]:
        """Arrival times (epoch seconds) of every job poll at or after `since`."""
        return list(self.get("/_control/times", since=since)["times"])

    def polls(self, since: float = 0.0) -> list[tuple[float, int]]:
        """(arrival time, job index) of every job poll at or after `since`: which watch
        each request was for (the job id is `job_id(index)`)."""
        found = self.get("/_control/polls", since=since)
        return list(zip(found["times"], found["jobs"], strict=True))

    def job_url(self, job: int) -> str:
        return f"{self.url}/restapi/v2/bulk/workspaces/{WORKSPACE}/importjobs/{job}"


@dataclass
class _VendorState:
    latency: float
    flipped_at: float | None = None
    marked_at: float | None = None
    first_after_mark: float | None = None
    polls: int = 0
    token_requests: int = 0
    times: list[float] | None = None
    job_flips: dict[str, float] | None = None
    jobs: list[int] | None = None  # beside `times`: the job index each poll was for
    jobs_since_mark: set[str] | None = None  # distinct jobs polled since the last mark

    def route(self, method: str, target: str) -> tuple[int, Any, bool]:
        """(status, JSON body, whether to delay by `latency`)."""
        path, _, query = target.partition("?")
        if path.startswith("/restapi/v2/bulk/workspaces/"):
            return 200, self._poll(path.rsplit("/", 1)[-1]), True
        if path == "/oauth/v2/token" and method == "POST":
            self.token_requests += 1
            token = {"access_token": "bench-access", "expires_in": 3600, "token_type": "Bearer"}
            return 200, token, False
        return self._control(path, query)

    def _poll(self, job: str) -> dict[str, Any]:
        now = time.time()
        self.polls += 1
        assert self.times is not None and self.jobs is not None
        if len(self.times) < 5_000_000:  # bounded: a few hours at full speed
            self.times.append(now)
            self.jobs.append(int(job) - FIRST_JOB if job.isdigit() else -1)
        if self.marked_at is not None and self.first_after_mark is None:
            self.first_after_mark = now
        if self.jobs_since_mark is not None:
            self.jobs_since_mark.add(job)
        terminal = (self.flipped_at is not None and now >= self.flipped_at) or (
            job in (self.job_flips or {})
        )
        data = completed_job(now) if terminal else RUNNING
        return {
            "status": "success",
            "summary": "Fetch import job info",
            "data": {"jobId": job, **data},
        }

    def _control(self, path: str, query: str) -> tuple[int, Any, bool]:
        now = time.time()
        if path == "/_control/flip":
            self.flipped_at = now
            return 200, {"at": now}, False
        if path == "/_control/flip_job":
            if self.job_flips is None:
                self.job_flips = {}
            self.job_flips[query.partition("=")[2]] = now
            return 200, {"at": now}, False
        if path == "/_control/mark":
            self.marked_at, self.first_after_mark = now, None
            self.jobs_since_mark = set()
            return 200, {"at": now}, False
        if path == "/_control/stats":
            stats = {
                "polls": self.polls,
                "token_requests": self.token_requests,
                "flipped_at": self.flipped_at,
                "marked_at": self.marked_at,
                "first_after_mark": self.first_after_mark,
                "jobs_since_mark": len(self.jobs_since_mark or ()),
            }
            return 200, stats, False
        if path == "/_control/times":
            since = float(query.partition("=")[2] or 0)
            return 200, {"times": [t for t in self.times or [] if t >= since]}, False
        if path == "/_control/polls":
            since = float(query.partition("=")[2] or 0)
            found = [
                (t, j) for t, j in zip(self.times or [], self.jobs or [], strict=True) if t >= since
            ]
            return 200, {"times": [t for t, _ in found], "jobs": [j for _, j in found]}, False
        return 404, {"error": f"no route {path}"}, False


def completed_job(now: float) -> dict[str, Any]:
    """A 1004 reply's `data` (every row imported → `succeeded`)."""
    summary = {
        "importType": "APPEND",
        "totalRowCount": 100,
        "successRowCount": 100,
        "warnings": 0,
        "importOperation": "created",
    }
    return {
        "jobCode": "1004",
        "jobStatus": "JOB COMPLETED",
        "jobInfo": {"viewId": "2480011000000498003", "importSummary": summary, "importErrors": ""},
        "expiryTime": str(int((now + 3600) * 1000)),
    }


def _serve_vendor(conn: Any, latency: float) -> None:
    state = _VendorState(latency, times=[], jobs=[])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(length)
                status, body, delay = state.route(method, target)
                if delay and state.latency > 0:
                    await asyncio.sleep(state.latency)
                payload = json.dumps(body).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        conn.send(f"http://127.0.0.1:{port}")
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- the fake Slack -------------------------------------------------------------------------


class SlackFake(ChildServer):
    """`FakeSlackAPI` in a child process. `posts()` returns every accepted chat.postMessage
    and file share with its arrival time; with `channel_rate` set, chat.postMessage answers
    429 (Retry-After: 1) when a channel exceeds `channel_rate` posts/s (burst `channel_burst`)."""

    def __init__(self, channel_rate: float | None = None, channel_burst: float = 3.0) -> None:
        super().__init__(_serve_slack, channel_rate, channel_burst)
        self.api_url = self.root + "/api/"

    def posts(self) -> list[dict[str, Any]]:
        return list(self.get("/_bench/posts")["posts"])

    def counts(self) -> dict[str, Any]:
        """Calls by method (upload/<id> and respond/<key> folded into upload/*, respond/*)
        and how many chat.postMessage calls were answered 429."""
        raw = self.get("/_bench/counts")
        methods: dict[str, int] = {}
        for method, n in raw["methods"].items():
            key = method.split("/")[0] + "/*" if "/" in method else method
            methods[key] = methods.get(key, 0) + n
        return {"methods": methods, "ratelimited": raw["ratelimited"]}

    def stop_rate_limiting(self) -> None:
        """After a measured run: let queued retries through so shutdown doesn't wait."""
        self.post("/_bench/unlimit")


class _RecordingSlack(FakeSlackAPI):
    """Keeps only what the benchmarks read (methods, posts with times, 429s), not every call's
    parameters and headers: a 10k-watch run makes ~100k calls."""

    def __init__(self, channel_rate: float | None, channel_burst: float) -> None:
        self.bench_posts: list[dict[str, Any]] = []
        self.method_counts: dict[str, int] = {}
        self.ratelimited = 0
        self._channel_rate = channel_rate
        self._channel_burst = channel_burst
        self._channel_tokens: dict[str, tuple[float, float]] = {}  # channel -> (tokens, at)
        self._bench_lock = threading.Lock()
        super().__init__()
        self.on_change(self._note)

    def _record(self, call: Call) -> None:  # called with the fake's lock held
        self.method_counts[call.method] = self.method_counts.get(call.method, 0) + 1
        self._cond.notify_all()

    def _note(self, kind: str, message: Any) -> None:
        if kind not in ("post", "file"):
            return
        with self._bench_lock:
            self.bench_posts.append(
                {
                    "at": time.time(),
                    "kind": kind,
                    "channel": message.channel,
                    "ts": message.ts,
                    "thread_ts": message.thread_ts,
                    "text": message.text[:300],
                }
            )

    def route(self, request: HttpRequest) -> HttpReply:
        if request.path == "/_bench/posts":
            with self._bench_lock:
                return HttpReply.of_json({"posts": list(self.bench_posts)})
        if request.path == "/_bench/counts":
            with self._cond:
                counts = dict(self.method_counts)
            return HttpReply.of_json({"methods": counts, "ratelimited": self.ratelimited})
        if request.path == "/_bench/unlimit":
            self._channel_rate = None
            return HttpReply.of_json({"ok": True})
        if request.path == "/api/chat.postMessage" and self._over_channel_rate(request):
            with self._cond:
                self.ratelimited += 1
                self.method_counts["429 chat.postMessage"] = (
                    self.method_counts.get("429 chat.postMessage", 0) + 1
                )
            body = {"ok": False, "error": "ratelimited"}
            return HttpReply.of_json(body, status=429, headers={"Retry-After": "1"})
        return super().route(request)

    def _over_channel_rate(self, request: HttpRequest) -> bool:
        """Token bucket per channel (Slack: ~1 chat.postMessage/s per channel, short bursts)."""
        if self._channel_rate is None:
            return False
        body = request.json()
        params = body if isinstance(body, dict) else request.form()
        channel = str(params.get("channel", ""))
        now = time.monotonic()
        with self._bench_lock:
            tokens, at = self._channel_tokens.get(channel, (self._channel_burst, now))
            tokens = min(self._channel_burst, tokens + (now - at) * self._channel_rate)
            if tokens < 1:
                self._channel_tokens[channel] = (tokens, now)
                return True
            self._channel_tokens[channel] = (tokens - 1, now)
            return False


def _serve_slack(conn: Any, channel_rate: float | None, channel_burst: float) -> None:
    fake = _RecordingSlack(channel_rate, channel_burst)
    conn.send(fake.root)
    threading.Event().wait()  # until the parent terminates this process


# -- bot wiring -----------------------------------------------------------------------------


def fixed_bot(enterprise_id: str | None, team_id: str | None) -> Any:
    """Bolt `authorize=`: no auth.test traffic (docs/slack.md#testing-without-slack)."""
    from slack_bolt.authorization import AuthorizeResult

    return AuthorizeResult(
        enterprise_id=enterprise_id,
        team_id=team_id,
        bot_token="xoxb-bench",
        bot_user_id="UBOT",
        bot_id="BBOT",
    )


def bot_env(
    db_path: str,
    slack_api_url: str,
    vendor_root: str,
    *,
    config_path: str | None = None,
    poll_interval: float | None = None,
    rate_per_minute: float | None = None,
    port: int = 0,
) -> dict[str, str]:
    """Environment for a bot that talks only to the local fakes (env names: bot/config.py).
    `rate_per_minute` is the Zoho connection's token-bucket rate (ZOHO_RATE_PER_MINUTE;
    unset: Zoho Analytics' default, 30/min)."""
    env = {
        "SLACK_BOT_TOKEN": "xoxb-benchtk",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url,
        "SYNCWATCH_DB": db_path,
        "SYNCWATCH_HOST": "127.0.0.1",
        "PORT": str(port),
        "ZOHO_CLIENT_ID": ZOHO_CLIENT[0],
        "ZOHO_CLIENT_SECRET": ZOHO_CLIENT[1],
        "ZOHO_REFRESH_TOKEN": ZOHO_CLIENT[2],
        "ZOHO_ACCOUNTS_URL": vendor_root,
        "ZOHO_ANALYTICS_API_URL": vendor_root,
        "ZOHO_ANALYTICS_ORG_ID": ORG_ID,
    }
    if config_path:
        env["SYNCWATCH_CONFIG"] = config_path
    if poll_interval is not None:
        env["SYNCWATCH_POLL_INTERVAL"] = f"{poll_interval:g}"
    if rate_per_minute is not None:
        env["ZOHO_RATE_PER_MINUTE"] = repr(float(rate_per_minute))
    return env


# -- seeding --------------------------------------------------------------------------------


def command_form(k: int, respond_root: str, channel: str, mix: int | None = None) -> dict[str, str]:
    """Slash command k of the benches' mix (by `mix`, default k: 4 in 10 `watch` a job of
    their own, 3 `help`, 3 `list`), as Slack would post it."""
    kind = (k if mix is None else mix) % 10
    text = f"watch za {WORKSPACE}/{job_id(k)}" if kind < 4 else "help" if kind < 7 else "list"
    return {
        "command": "/syncwatch",
        "text": text,
        "team_id": "T1",
        "user_id": f"U{k % 7 + 1:04d}",
        "channel_id": channel,
        "response_url": f"{respond_root}/respond/r{k}",
        "trigger_id": f"trigger-{k}",
    }


def timed_exchange(host: str, port: int, request: bytes) -> tuple[int, float]:
    """Send one raw HTTP request on a fresh connection and read the whole answer: (HTTP
    status or 0, seconds from connect to the full response)."""
    import socket

    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        answer = b"".join(chunks)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    except (OSError, ValueError, IndexError):
        status = 0
    return status, time.perf_counter() - started


def job_id(index: int) -> int:
    return FIRST_JOB + index


def requester(index: int) -> str:
    """Each watch gets its own requester, so its terminal reply (which mentions the requester)
    names the watch."""
    return f"UB{index:07d}"


def index_of_requester(text: str) -> int | None:
    start = text.find("<@UB")
    if start < 0:
        return None
    digits = text[start + 4 : start + 11]
    return int(digits) if digits.isdigit() else None


def seed_watches(
    store: Store,
    count: int,
    *,
    interval: float,
    channels: int = 1,
    now: float | None = None,
    timeout: float = 86400.0,
) -> None:
    """Create `count` Zoho Analytics watches through `Store.create_watches` (each with its
    parent-post outbox row) on the `default` connection, round-robin over channels, batches of
    500."""
    now = time.time() if now is None else now
    for start in range(0, count, 500):
        drafts = [
            NewWatch(
                vendor=VENDOR,
                ref=f"{WORKSPACE}/{job_id(i)}",
                connection="default",
                channel_id=f"CB{i % channels:05d}",
                requester_id=requester(i),
                interval_s=interval,
                deadline=now + timeout,
            )
            for i in range(start, min(count, start + 500))
        ]
        again(_create_once, store, drafts, now)


def again(fn: Callable[..., Any], *args: Any, within: float = 30.0) -> Any:
    """`fn(*args)`, tried again while the database is unavailable (up to `within` s): a
    PostgreSQL server shared with other users may have our connections cut mid-seeding
    (the pool opens new ones). Only for steps that are whole or nothing, or idempotent."""
    deadline = time.monotonic() + within
    while True:
        try:
            return fn(*args)
        except DatabaseUnavailable as err:
            if time.monotonic() > deadline:
                raise
            log(f"database connection lost ({err.reason}); trying again")
            time.sleep(0.25)


def _create_once(store: Store, drafts: list[NewWatch], now: float) -> None:
    """One batch, all or none; a batch whose commit went through before the connection was
    cut is found in place when tried again."""
    try:
        store.create_watches(drafts, now)
    except DuplicateWatchError:
        pass


# Rows a seeding statement writes at once: a few thousand parameters, well within both
# SQLite's and PostgreSQL's limits on bound parameters.
SEED_BATCH = 500


def _batches(items: Sequence[Any], size: int = SEED_BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _active_ids(store: Store) -> list[str]:
    rows = store.engine.query("SELECT id FROM watches WHERE status = 'active' ORDER BY id")
    return [row["id"] for row in rows]


def spread_due(store: Store, start: float, window: float) -> None:
    """Make the active watches due evenly over [start, start + window).

    SQL that SQLite and PostgreSQL both read (`Store` rewrites placeholders for the
    latter), the times computed here: the same seeding for either engine."""
    ids = _active_ids(store)
    with store.engine.transaction():
        done = 0
        for batch in _batches(ids):
            cases = " ".join("WHEN ? THEN ?" for _ in batch)
            params: list[Any] = []
            for k, wid in enumerate(batch, start=done):
                params += [wid, start + window * k / max(len(ids), 1)]
            marks = ", ".join("?" for _ in batch)
            store.engine.execute(
                f"UPDATE watches SET next_poll_at = CASE id {cases} END WHERE id IN ({marks})",
                [*params, *batch],
            )
            done += len(batch)


def prime_running(store: Store, now: float) -> None:
    """Put every active watch in the steady state of a long-running job: first poll done
    (state `running`, the very snapshot the fake vendor's answer normalizes to), parent
    message posted (a made-up ts) and every queued outbox row sent. Polls then change
    nothing until the job ends, and the only Slack traffic is the terminal news.
    Engine-neutral SQL, as in `spread_due`."""
    snapshot = snapshot_from({"jobId": "0", **RUNNING}).to_json()
    rows = store.engine.query("SELECT id, channel_id FROM watches ORDER BY created_at, id")
    with store.engine.transaction():
        store.engine.execute(
            "UPDATE watches SET state = 'running', raw_status = ?, snapshot = ?, polls = 1 "
            "WHERE status = 'active'",
            [f"{RUNNING['jobCode']} {RUNNING['jobStatus']}", snapshot],
        )
        done = 0
        for batch in _batches(rows):
            params: list[Any] = []
            for k, row in enumerate(batch, start=done + 1):
                params += [row["id"], row["channel_id"], f"1600000000.{k:06d}", now]
            values = ", ".join("(?, ?, ?, ?, 1)" for _ in batch)
            store.engine.execute(
                "INSERT INTO slack_messages (watch_id, channel_id, ts, posted_at, editable) "
                f"VALUES {values} ON CONFLICT (watch_id) DO UPDATE SET "
                "channel_id = excluded.channel_id, ts = excluded.ts, "
                "posted_at = excluded.posted_at, editable = excluded.editable",
                params,
            )
            done += len(batch)
        store.engine.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ? WHERE status = 'pending'", [now]
        )


def seed_store(
    database: str,
    count: int,
    *,
    interval: float,
    channels: int = 1,
    primed: bool = True,
    due_from: float | None = None,
) -> None:
    """Create, spread and (optionally) prime `count` watches in a fresh database: a SQLite
    file path or a PostgreSQL URL. They fall due evenly over one interval from `due_from`
    (default: now)."""
    started = time.monotonic()
    store = Store(database)
    try:
        now = time.time()
        seed_watches(store, count, interval=interval, channels=channels)
        again(spread_due, store, now if due_from is None else due_from, interval)
        if primed:
            again(prime_running, store, now)
        engine = store.engine.dialect
    finally:
        store.close()
    size = f", {db_size_mb(database)} MB" if engine == "sqlite" else ""
    log(f"seeded {count} watches ({engine}) in {time.monotonic() - started:.1f}s{size}")


# -- terminal replies -----------------------------------------------------------------------


def terminal_replies(posts: Iterable[dict[str, Any]]) -> dict[int, list[float]]:
    """Arrival times of terminal thread replies ("Job succeeded"), by watch index."""
    found: dict[int, list[float]] = {}
    for post in posts:
        if post["kind"] != "post" or not post["thread_ts"] or "succeeded" not in post["text"]:
            continue
        index = index_of_requester(post["text"])
        if index is not None:
            found.setdefault(index, []).append(post["at"])
    return found


def max_in_window(times: Sequence[float], window: float) -> tuple[int, float | None]:
    """The most events in any `window`-second sliding window, and where that window starts."""
    ordered = sorted(times)
    best, best_start = 0, None
    start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        if end - start + 1 > best:
            best, best_start = end - start + 1, ordered[start]
    return best, best_start


def max_rate_per_key(events: Iterable[tuple[str, float]], window: float) -> tuple[int, str | None]:
    """The most events of one key in any `window`-second window (e.g. posts per channel)."""
    by_key: dict[str, deque[float]] = {}
    best, best_key = 0, None
    for key, at in sorted(events, key=lambda e: e[1]):
        recent = by_key.setdefault(key, deque())
        recent.append(at)
        while at - recent[0] >= window:
            recent.popleft()
        if len(recent) > best:
            best, best_key = len(recent), key
    return best, best_key


def signed_headers(body: str, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's request signature (docs/slack.md#request-signatures), as tests/conftest.py computes
    it."""
    stamp = str(int(time.time()))
    sig = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={sig}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
