"""Hostile bodies: concurrent 20 MB unsigned bodies against the bot, its RSS and ack latency.

Starts `python -m bot.cli run` (what `syncwatch run` runs) in HTTP mode as a subprocess,
against FakeSlackAPI and the fake vendor in child processes, so that the process measured is
the bot alone. A sender in another child process streams a steady, open-loop series of
signed slash commands (`watch za <ws>/<job>` 40 %, `help` 30 %, `list` 30 %, signed as
`ack.py` signs them; one connection each, raw socket, timed connect → full response) for
the whole run: alone for the first `--baseline` seconds (the ack latency with no attack),
then during the attack.

The attack (a third process; `--senders` threads, `--seconds` long): each sender, over and
over, opens a connection and streams a `--body-mb` form body as fast as the server takes
it, in 64 KiB pieces (the sender never holds a body), stopping as soon as an answer or a
close arrives (the expected defence: 413 without reading on). Each sender rotates through
the kinds: unsigned or with a wrong signature, times each of `--framings`: by default with
`Content-Length`, or chunked (no length: the server has to count what it reads); on demand
chunked with a chunk-size line, or a trailer, that never ends. Recorded per request: the
status (or `reset` / `timeout` / `connect-error` when no answer came) and how much was
written before the server stopped it (the kernel's socket buffers included).

The bot's VmRSS is sampled every `--sample-ms` from /proc/<pid>/status; VmHWM (its peak
since start) is read before and after; CPU is utime + stime from /proc/<pid>/stat.

Goals (docs/slack.md#request-signatures): peak RSS (VmHWM) within +50 MB of the idle RSS;
signed commands' ack p99 < 100 ms during the attack.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from typing import Any
from urllib.parse import urlencode

import httpx
from common import (
    UNLIMITED_RATE,
    FakeVendor,
    SlackFake,
    bot_env,
    command_form,
    emit,
    log,
    machine,
    percentile,
    signed_headers,
    summary_ms,
    timed_exchange,
    wait_until,
)

import bot

# The checkout whose `bot` package this process imported (PYTHONPATH=<checkout> to measure
# another one, bench/README.md): the bot subprocess is given the same.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(bot.__file__)))
CHANNEL = "CBENCH01"
PATH = "/slack/events"
PIECE = 64 * 1024
RSS_GOAL_MB = 50.0
P99_GOAL_MS = 100.0
SIGNINGS = ("unsigned", "bad-signature")
FRAMINGS = ("content-length", "chunked", "chunked-endless-size", "chunked-endless-trailer")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="8 s attack, 3 s baseline")
    p.add_argument("--senders", type=int, default=20, help="concurrent hostile senders")
    p.add_argument("--body-mb", type=float, default=20.0, help="size of each hostile body")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the attack")
    p.add_argument("--rate", type=float, default=20.0, help="signed commands per second")
    p.add_argument("--baseline", type=float, default=5.0, help="seconds of signed traffic alone")
    p.add_argument(
        "--framings",
        default="content-length,chunked",
        help=f"comma-separated, each sent unsigned and wrongly signed; from {','.join(FRAMINGS)}",
    )
    p.add_argument("--sample-ms", type=float, default=100.0, help="RSS sampling period")
    args = p.parse_args()
    framings = args.framings.split(",")
    if not set(framings) <= set(FRAMINGS):
        p.error(f"--framings: unknown {sorted(set(framings) - set(FRAMINGS))}")
    args.variants = [f"{signing}/{framing}" for framing in framings for signing in SIGNINGS]
    if args.quick:
        args.seconds, args.baseline = 8.0, 3.0
    return args


# -- the bot process ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status_mb(pid: int, field: str) -> float:
    """VmRSS / VmHWM of `pid` in MB (the kernel reports kB)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no {field} for pid {pid}")


def proc_cpu_s(pid: int) -> float:
    """utime + stime of `pid` (every thread), in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def healthy(client: httpx.Client, port: int) -> bool:
    try:
        return client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    except httpx.HTTPError:
        return False


QUEUE_DEPTH = re.compile(r"Task queue depth is (\d+)")


def queue_depth_max(log_path: str) -> int:
    """The deepest waitress task queue its warnings reported in the bot's log."""
    with open(log_path, errors="replace") as fh:
        return max((int(m.group(1)) for ln in fh if (m := QUEUE_DEPTH.search(ln))), default=0)


# -- hostile senders (their own process) -----------------------------------------------------


def hostile_head(port: int, variant: str, body_bytes: int) -> bytes:
    signing, framing = variant.split("/")
    lines = [
        f"POST {PATH} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/x-www-form-urlencoded",
    ]
    if signing == "bad-signature":
        stamp = str(int(time.time()))
        wrong = hmac.new(b"not-the-secret", f"v0:{stamp}:".encode(), hashlib.sha256).hexdigest()
        lines += [f"X-Slack-Request-Timestamp: {stamp}", f"X-Slack-Signature: v0={wrong}"]
    if framing.startswith("chunked"):
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {body_bytes}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def body_pieces(framing: str, body_bytes: int) -> Iterator[bytes]:
    """The body as it goes on the wire, 64 KiB at a time (never held whole).
    `chunked-endless-size` / `chunked-endless-trailer` never end a chunk-size line / the
    trailer: a parser that re-scans what it has buffered pays for every piece again."""
    first = b"command=%2Fsyncwatch&text="
    filler = b"A" * PIECE
    if framing == "chunked-endless-trailer":
        yield b"0\r\nX-Trailer: "
    for start in range(0, body_bytes, PIECE):
        size = min(PIECE, body_bytes - start)
        if framing == "content-length":
            yield (first + filler[len(first) :] if start == 0 else filler)[:size]
        elif framing == "chunked":
            yield f"{size:x}\r\n".encode() + filler[:size] + b"\r\n"
        elif framing == "chunked-endless-size":
            yield b"1" * size
        else:
            yield filler[:size]
    if framing == "chunked":
        yield b"0\r\n\r\n"


def answered(sock: socket.socket) -> bool:
    """Something (an answer, a close or a reset) is waiting to be read."""
    return bool(select.select([sock], [], [], 0)[0])


def read_status(sock: socket.socket) -> str:
    """The status code of the answer, or why there is none."""
    got = b""
    try:
        while b"\r\n" not in got and len(got) < 65536:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except TimeoutError:
        return "timeout" if not got else _status_of(got)
    except OSError:
        pass  # a reset after (or instead of) the answer
    return _status_of(got) if got else "reset"


def _status_of(got: bytes) -> str:
    parts = got.split(b" ", 2)
    return parts[1].decode("ascii", "replace") if got.startswith(b"HTTP/") else "garbage"


def hostile_once(port: int, variant: str, body_bytes: int) -> tuple[str, str, int, float]:
    """One hostile request; (variant, status or why none, bytes written, seconds). Stops
    writing as soon as anything can be read: the server has answered or closed."""
    written = 0
    started = time.perf_counter()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        return variant, "connect-error", 0, time.perf_counter() - started
    with sock:
        try:
            sock.sendall(hostile_head(port, variant, body_bytes))
            for piece in body_pieces(variant.split("/")[1], body_bytes):
                if answered(sock):
                    break
                sock.sendall(piece)
                written += len(piece)
        except TimeoutError:
            return variant, "timeout", written, time.perf_counter() - started
        except OSError:
            pass  # the server closed on us: the answer may still be readable
        status = read_status(sock)
    return variant, status, written, time.perf_counter() - started


def hostile_attack(
    port: int,
    senders: int,
    variants: Sequence[str],
    body_bytes: int,
    start_at: float,
    seconds: float,
) -> list[tuple[str, str, int, float]]:
    """`senders` threads, from `start_at` (time.monotonic, shared by the processes of one
    machine) for `seconds`, each sending hostile requests back to back, rotating kinds."""
    deadline = start_at + seconds

    def sender(index: int) -> list[tuple[str, str, int, float]]:
        done: list[tuple[str, str, int, float]] = []
        time.sleep(max(0.0, start_at - time.monotonic()))
        while time.monotonic() < deadline:
            variant = variants[(index + len(done)) % len(variants)]
            done.append(hostile_once(port, variant, body_bytes))
        return done

    if senders < 1:  # a control run: the same traffic without the attack
        return []
    with ThreadPoolExecutor(senders) as pool:
        return [r for rs in pool.map(sender, range(senders)) for r in rs]


# -- the signed stream (its own process) -----------------------------------------------------


def signed_request(port: int, form: dict[str, str]) -> bytes:
    body = urlencode(form)
    head = "".join(f"{k}: {v}\r\n" for k, v in signed_headers(body).items())
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    ).encode()


def signed_once(port: int, request: bytes) -> tuple[int, float]:
    """(HTTP status or 0, seconds from connect to the full response)."""
    return timed_exchange("127.0.0.1", port, request)


def signed_stream(
    port: int, respond_root: str, first: int, start_at: float, seconds: float, rate: float
) -> list[tuple[float, str, int, float]]:
    """Open loop: command i leaves at start_at + i/rate whatever the earlier ones are doing
    (a slow answer must not hold the next command back and hide its own delay).
    Returns (offset from start_at, kind, status, seconds) per command."""
    count = int(seconds * rate)
    done: list[tuple[float, str, int, float]] = []
    lock = threading.Lock()

    def send(i: int, request: bytes, kind: str) -> None:
        offset = time.monotonic() - start_at
        status, took = signed_once(port, request)
        with lock:
            done.append((offset, kind, status, took))

    with ThreadPoolExecutor(64) as pool:
        for i in range(count):
            form = command_form(first + i, respond_root, CHANNEL)
            request = signed_request(port, form)  # built before its time comes
            time.sleep(max(0.0, start_at + i / rate - time.monotonic()))
            pool.submit(send, i, request, form["text"].split()[0])
    return sorted(done)


# -- the run --------------------------------------------------------------------------------


def warm_up(port: int, respond_root: str) -> None:
    """One of each command before measuring: first-use imports and caches are not idle cost
    and not attack cost."""
    for k in (1_000_000, 1_000_004, 1_000_007):
        status, _ = signed_once(port, signed_request(port, command_form(k, respond_root, CHANNEL)))
        if status != 200:
            raise RuntimeError(f"warm-up command answered {status}")


def sample_rss(pid: int, until: float, every: float) -> list[tuple[float, float]]:
    """(time.monotonic, VmRSS MB) every `every` seconds until `until`."""
    samples = []
    while (now := time.monotonic()) < until:
        samples.append((now, proc_status_mb(pid, "VmRSS")))
        time.sleep(max(0.0, now + every - time.monotonic()))
    return samples


def run(args: argparse.Namespace) -> dict[str, Any]:
    body_bytes = int(args.body_mb * 1024 * 1024)
    with (
        tempfile.TemporaryDirectory(prefix="syncwatch-bench-") as tmp,
        FakeVendor() as vendor,
        SlackFake() as slack,
        httpx.Client(timeout=0.5) as client,
    ):
        port = free_port()
        env = bot_env(
            os.path.join(tmp, "syncwatch.db"),
            slack.api_url,
            vendor.url,
            rate_per_minute=UNLIMITED_RATE,
            port=port,
        )
        env["PYTHONPATH"] = CHECKOUT  # the bot runs the code this bench imported
        log_path = os.path.join(tmp, "bot.log")
        with open(log_path, "wb") as err:
            bot = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run"],
                env=env,
                cwd=tmp,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        try:
            if not wait_until(lambda: healthy(client, port) or bot.poll() is not None, 60, 0.1):
                raise RuntimeError("the bot never became healthy")
            if bot.poll() is not None:
                with open(log_path, errors="replace") as fh:
                    raise RuntimeError("the bot exited:\n" + fh.read()[-3000:])
            warm_up(port, slack.root)
            time.sleep(1.0)
            idle_rss = proc_status_mb(bot.pid, "VmRSS")
            idle_hwm = proc_status_mb(bot.pid, "VmHWM")
            log(f"bot pid {bot.pid} on port {port}: idle RSS {idle_rss} MB (HWM {idle_hwm} MB)")
            result = attack(bot.pid, port, slack.root, body_bytes, (idle_rss, idle_hwm), args)
            result["bot_alive_after"] = bot.poll() is None
            result["healthy_after"] = healthy(client, port)
        finally:
            stop(bot)
        result["waitress_queue_depth_max"] = queue_depth_max(log_path)
    return result


def attack(
    pid: int,
    port: int,
    respond_root: str,
    body_bytes: int,
    idle: tuple[float, float],
    args: argparse.Namespace,
) -> dict[str, Any]:
    spawn = get_context("spawn")
    with (
        ProcessPoolExecutor(1, mp_context=spawn) as signer,
        ProcessPoolExecutor(1, mp_context=spawn) as hostile,
    ):
        # Both children exist (spawned, imported) before the clock starts.
        signer.submit(time.sleep, 0).result()
        hostile.submit(time.sleep, 0).result()
        t0 = time.monotonic() + 0.5
        attack_at, attack_end = t0 + args.baseline, t0 + args.baseline + args.seconds
        total = args.baseline + args.seconds
        log(f"{args.baseline:g}s signed commands alone, then {args.seconds:g}s of attack")
        signed = signer.submit(signed_stream, port, respond_root, 0, t0, total, args.rate)
        hostile_done = hostile.submit(
            hostile_attack, port, args.senders, args.variants, body_bytes, attack_at, args.seconds
        )
        time.sleep(max(0.0, t0 - time.monotonic()))
        cpu0 = proc_cpu_s(pid)
        samples = sample_rss(pid, attack_at, args.sample_ms / 1000)
        cpu_attack0 = proc_cpu_s(pid)
        samples += sample_rss(pid, attack_end, args.sample_ms / 1000)
        cpu_attack1 = proc_cpu_s(pid)
        log("attack over; waiting for the senders")
        sent = hostile_done.result(timeout=120)
        commands = signed.result(timeout=120)
    after_rss = proc_status_mb(pid, "VmRSS")
    peak_hwm = proc_status_mb(pid, "VmHWM")
    return report(
        args,
        idle=idle,
        samples=samples,
        attack_at=attack_at,
        cpu=(cpu0, cpu_attack0, cpu_attack1),
        hostile=sent,
        commands=commands,
        after_rss=after_rss,
        peak_hwm=peak_hwm,
    )


def stop(bot: subprocess.Popen) -> None:
    try:
        os.killpg(bot.pid, signal.SIGTERM)
        bot.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(bot.pid, signal.SIGKILL)
        bot.wait(timeout=10)


def code_version() -> dict[str, Any]:
    """Which checkout the bot ran, at which commit (and whether it had changes on top)."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", CHECKOUT, *argv], capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "checkout": CHECKOUT,
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted_changes": bool(git("status", "--porcelain", "--", "bot", "storage")),
    }


# -- the report -----------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    *,
    idle: tuple[float, float],
    samples: list[tuple[float, float]],
    attack_at: float,
    cpu: tuple[float, float, float],
    hostile: list[tuple[str, str, int, float]],
    commands: list[tuple[float, str, int, float]],
    after_rss: float,
    peak_hwm: float,
) -> dict[str, Any]:
    during = [rss for at, rss in samples if at >= attack_at]
    before = [rss for at, rss in samples if at < attack_at]
    by_variant: dict[str, dict[str, Any]] = {}
    for variant in args.variants:
        mine = [r for r in hostile if r[0] == variant]
        sent_mb = [r[2] / 1024 / 1024 for r in mine]
        by_variant[variant] = {
            "requests": len(mine),
            "statuses": dict(Counter(r[1] for r in mine).most_common()),
            "mb_written_p50": round(percentile(sent_mb, 50) or 0, 2),
            "mb_written_max": round(max(sent_mb, default=0), 2),
            "request_s": summary_ms([r[3] for r in mine]),
        }
    base = [c for c in commands if c[0] < args.baseline]
    under = [c for c in commands if c[0] >= args.baseline]
    base_ack, under_ack = summary_ms([c[3] for c in base]), summary_ms([c[3] for c in under])
    non_200 = sum(1 for c in commands if c[2] != 200)
    cpu0, cpu_a0, cpu_a1 = cpu
    idle_rss, idle_hwm = idle
    max_sampled = max(during, default=0.0)
    goals = {
        "peak_rss_within_50mb_of_idle": peak_hwm - idle_rss <= RSS_GOAL_MB,
        "ack_p99_under_100ms_during_attack": (under_ack["p99_ms"] or 1e9) < P99_GOAL_MS,
    }
    return {
        "bench": "hostile",
        "quick": args.quick,
        "machine": machine(),
        "code": code_version(),
        "params": {
            "senders": args.senders,
            "variants": args.variants,
            "body_mb": args.body_mb,
            "seconds": args.seconds,
            "baseline_s": args.baseline,
            "rate_per_s": args.rate,
            "sample_ms": args.sample_ms,
        },
        "bot_rss": {
            "idle_mb": idle_rss,
            "hwm_at_idle_mb": idle_hwm,
            "peak_hwm_mb": peak_hwm,
            "delta_peak_hwm_vs_idle_mb": round(peak_hwm - idle_rss, 1),
            "delta_max_sampled_vs_idle_mb": round(max_sampled - idle_rss, 1),
            "max_sampled_during_attack_mb": max_sampled,
            "max_sampled_during_baseline_mb": max(before, default=0.0),
            "after_mb": after_rss,
            "samples": len(samples),
        },
        "bot_cpu": {
            "attack_s": round(cpu_a1 - cpu_a0, 2),
            "attack_share_of_a_core": round((cpu_a1 - cpu_a0) / args.seconds, 2),
            "baseline_share_of_a_core": round((cpu_a0 - cpu0) / max(args.baseline, 1e-9), 2),
            "ms_per_hostile_request": (
                round((cpu_a1 - cpu_a0) * 1000 / len(hostile), 2) if hostile else None
            ),
        },
        "hostile": {
            "requests": len(hostile),
            "requests_per_s": round(len(hostile) / args.seconds, 1),
            "statuses": dict(Counter(r[1] for r in hostile).most_common()),
            "mb_written_total": round(sum(r[2] for r in hostile) / 1024 / 1024, 1),
            "by_variant": by_variant,
        },
        "signed": {
            "sent": len(commands),
            "baseline": base_ack,
            "during_attack": under_ack,
            "p99_during_over_baseline": (
                round(under_ack["p99_ms"] / base_ack["p99_ms"], 2)
                if under_ack["p99_ms"] and base_ack["p99_ms"]
                else None
            ),
            "statuses": dict(Counter(str(c[2]) for c in commands).most_common()),
            "non_200": non_200,
            "by_command_during_attack": {
                kind: summary_ms([c[3] for c in under if c[1] == kind])
                for kind in ("watch", "help", "list")
            },
        },
        "goals": {**goals, "no_non_200_signed": non_200 == 0},
        "goal_met": all(goals.values()),
    }


def main() -> None:
    args = parse_args()
    emit(run(args))


if __name__ == "__main__":
    main()
