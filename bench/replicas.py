"""Replicas: polls/s and CPU a poll for one process on SQLite, one on PostgreSQL and two on
one PostgreSQL database; and how long a killed replica's watches wait for the survivor.

Each configuration gets a fresh database seeded with N Zoho Analytics watches in steady
state (first poll done, parent posted), each polled every `--interval` s, and real
`python -m bot.cli run` processes (what `syncwatch run` runs) against the fake vendor (20 ms
a poll) and FakeSlackAPI, both in child processes of this bench:
- sqlite: 1 process on a SQLite file;
- pg1:    1 process on a PostgreSQL database;
- pg2:    2 processes on one PostgreSQL database (replicas: leases with a heartbeat,
          claims that skip rows another replica has locked, one shared vendor budget).
For each, two phases:
- drain: the watches start parked (due a year ahead) so the processes start idle; then every
  watch is made due at once (`Store.poll_all_soon`) → polls/s from the first to the last
  poll the vendor sees, and CPU a poll: utime + stime of the bot processes (/proc/<pid>/stat)
  over the drain ÷ the polls the vendor saw. Each watch must be polled exactly once in the
  round (per-watch request counts at the vendor: 0 = lost, two within half an interval =
  doubled). The PostgreSQL server's backends for the bench's database, the fakes, the
  bench itself and the whole machine (/proc/stat) are reported beside it: the machine has
  2 cores and the fakes and the database server compete with the bots for them;
- steady: the next round spread evenly over one interval, `--seconds` long → polls/s
  against the demand (watches ÷ interval), CPU share of the bot processes, watches overdue.
- takeover: 2 processes on PostgreSQL polling steadily; one is killed with SIGKILL. The
  watches it held (its leases at the kill) wait for the lease (30 s, renewed every 10 s)
  to lapse; measured: kill → each one's next poll at the vendor (goal < 35 s), and over
  the round after the kill, every watch polled (0 lost) and none twice within half an
  interval (a watch polled by both replicas at once; a poll the victim had sent but not
  recorded, redone by the survivor, is counted apart).

Ratios from the same run: pg_vs_sqlite = pg1 ÷ sqlite drain polls/s (goal ≥ 0.8 at equal
CPU: polls per CPU-second are reported for each), two_vs_one = pg2 ÷ pg1 (goal ≥ 1.8).

The bots run this checkout's code (PYTHONPATH = the checkout whose `bot` this bench
imported; the JSON's `code` says which, at which commit). The bench creates its own
PostgreSQL databases (`bench_replicas_…`) through `--pg-dsn` and drops them at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from common import (
    FIRST_JOB,
    UNLIMITED_RATE,
    FakeVendor,
    SlackFake,
    again,
    bot_env,
    emit,
    log,
    machine,
    percentile,
    seed_store,
    spread_due,
    summary_s,
    wait_until,
)
from psycopg import sql

import bot
from bot.replica import BEAT_SECONDS, LEASE_SECONDS
from storage import Store

# The checkout whose `bot` this bench imported (PYTHONPATH=<checkout> to measure another,
# bench/README.md): every bot process is given the same.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(bot.__file__)))
CONFIGS = ("sqlite", "pg1", "pg2", "takeover")
PARKED_S = 365 * 86400.0  # seeded watches are due this far ahead until a phase starts
TAKEOVER_GOAL_S = 35.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="1k watches, 20 s interval, 10 s steady phases (about 4 minutes)",
    )
    p.add_argument(
        "--watches",
        type=int,
        nargs="+",
        default=None,
        help="watch counts, each measured in every configuration (default: 10000 20000)",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=60.0,
        help="poll interval of every watch (60 s: a 20k drain at ≥ 333 polls/s ends within "
        "one interval, so each watch's one poll in the round is unambiguous)",
    )
    p.add_argument("--seconds", type=float, default=30.0, help="steady phase, seconds")
    p.add_argument("--latency", type=float, default=0.02, help="fake vendor seconds per poll")
    p.add_argument("--drain-timeout", type=float, default=300.0, help="max seconds a drain")
    p.add_argument(
        "--pg-dsn",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a PostgreSQL URL whose server the bench creates (and drops) its databases on",
    )
    p.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help=f"comma-separated subset of {','.join(CONFIGS)}",
    )
    p.add_argument(
        "--takeover-watches",
        type=int,
        default=None,
        help="watches in the takeover run (default: the smallest of --watches)",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        default=None,
        help="record each bot's drain with py-spy (raw collapsed stacks) into DIR; slows "
        "the bots: don't compare those figures with unprofiled runs",
    )
    p.add_argument(
        "--profile-mode",
        choices=("gil", "wall"),
        default="gil",
        help="gil: samples of the thread holding the GIL (where CPU goes); wall: every "
        "thread, idle ones too (where a poll waits)",
    )
    args = p.parse_args()
    args.configs = [c for c in args.configs.split(",") if c]
    if not set(args.configs) <= set(CONFIGS):
        p.error(f"--configs: unknown {sorted(set(args.configs) - set(CONFIGS))}")
    if args.quick:
        args.watches = args.watches or [1_000]
        args.interval, args.seconds = 20.0, 10.0
    args.watches = args.watches or [10_000, 20_000]
    args.takeover_watches = args.takeover_watches or min(args.watches)
    return args


# -- /proc ----------------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of `pid` (every thread) in seconds; None once it has gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()  # the name may hold spaces
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_pids() -> list[int]:
    """Every process of the PostgreSQL server on this machine (its backends for other
    databases, other sessions' ones too, and its background workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                name = fh.read().split("(", 1)[1].rsplit(")", 1)[0]
        except (OSError, IndexError):
            continue
        if name == "postgres":
            found.append(int(entry))
    return found


def machine_busy_s() -> float:
    """CPU seconds every core of the machine has spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- databases ------------------------------------------------------------------------------


class PgServer:
    """An admin connection to `--pg-dsn`'s server: creates and drops the bench's databases
    and finds the backends serving one of them."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn = psycopg.connect(dsn, autocommit=True)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def database(self, name: str) -> Iterator[str]:
        """A fresh database; yields its URL, drops it (and any session left on it) after."""
        self.conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        self.conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        parts = urlsplit(self.dsn)
        try:
            yield urlunsplit(parts._replace(path="/" + name))
        finally:
            self.conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def backends(self, database: str, exclude: set[int]) -> list[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [database]
        ).fetchall()
        return [int(r[0]) for r in rows if int(r[0]) not in exclude]


# -- the bot processes ----------------------------------------------------------------------


class Bot:
    """One `python -m bot.cli run` (HTTP mode) on this checkout's code, in its own working
    directory (PostgreSQL's result-file spool is ./syncwatch-files)."""

    def __init__(self, env: dict[str, str], tmp: str, name: str) -> None:
        self.name = name
        self.workdir = os.path.join(tmp, name)
        os.makedirs(self.workdir, exist_ok=True)
        self.port = free_port()
        self.log_path = os.path.join(tmp, f"{name}.log")
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run"],
                env={**env, "PORT": str(self.port), "PYTHONPATH": CHECKOUT},
                cwd=self.workdir,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        self.pid = self.proc.pid

    def cpu(self) -> float:
        return proc_cpu_s(self.pid) or 0.0

    def healthy(self, client: httpx.Client) -> bool:
        try:
            return client.get(f"http://127.0.0.1:{self.port}/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def polls(self, client: httpx.Client) -> dict[str, float]:
        """Polls this process counted itself (syncwatch_polls_total), by outcome: `ok` went
        to the vendor, `throttled` was held back by the shared vendor budget."""
        try:
            text = client.get(f"http://127.0.0.1:{self.port}/metrics").text
        except httpx.HTTPError:
            return {}
        found: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("syncwatch_polls_total{"):
                labels, value = line.rsplit(" ", 1)
                outcome = labels.split('outcome="', 1)[1].split('"', 1)[0]
                found[outcome] = found.get(outcome, 0.0) + float(value)
        return found

    def interruptions(self) -> int:
        """Log lines saying the database could not be reached (another user of the
        server cutting connections, say): a figure measured meanwhile is not clean."""
        with open(self.log_path, errors="replace") as fh:
            return sum(
                1 for line in fh if "can't take writes" in line or "heartbeat failed" in line
            )

    def log_tail(self, lines: int = 20) -> str:
        with open(self.log_path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (a clean shutdown gives its leases back), SIGKILL if it hangs."""
        if self.proc.poll() is not None:
            return
        with _suppress_gone():
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        with _suppress_gone():
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@contextmanager
def _suppress_gone() -> Iterator[None]:
    try:
        yield
    except ProcessLookupError:
        pass


def start_bots(env: dict[str, str], tmp: str, names: list[str], client: httpx.Client) -> list[Bot]:
    bots = [Bot(env, tmp, name) for name in names]
    for b in bots:
        up = wait_until(lambda b=b: b.healthy(client) or b.proc.poll() is not None, 60, 0.1)
        if not up or b.proc.poll() is not None:
            tails = "\n".join(f"--- {x.name}\n{x.log_tail()}" for x in bots)
            for x in bots:
                x.stop()
            raise RuntimeError(f"{b.name} did not become healthy:\n{tails}")
    return bots


class Profiler:
    """py-spy on each bot for one phase (`--profile`): raw GIL-holding samples."""

    def __init__(self, directory: str | None, mode: str, label: str, bots: list[Bot]) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.files: list[Any] = []
        if directory is None:
            return
        os.makedirs(directory, exist_ok=True)
        for b in bots:
            out = os.path.join(directory, f"{label.replace('/', '-')}-{b.name}.txt")
            self.procs.append(
                subprocess.Popen(
                    [
                        shutil.which("py-spy")
                        or os.path.join(os.path.dirname(sys.executable), "py-spy"),
                        "record",
                        "--pid",
                        str(b.pid),
                        "--gil" if mode == "gil" else "--idle",
                        "--nonblocking",
                        "-r",
                        "100",
                        "-f",
                        "raw",
                        "-o",
                        out,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=self._stderr(out + ".err"),
                )
            )

    def _stderr(self, path: str) -> Any:
        fh = open(path, "wb")  # noqa: SIM115 (closed in stop())
        self.files.append(fh)
        return fh

    def stop(self) -> None:
        for fh in self.files:
            fh.close()
        for p in self.procs:
            p.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


# -- CPU accounting -------------------------------------------------------------------------


class Meter:
    """CPU seconds between two moments, per party: the bot processes, the fakes, this
    bench, the PostgreSQL backends serving the bench's database (and the whole server,
    which other users of the machine may share), and the machine."""

    def __init__(
        self,
        bots: list[Bot],
        vendor: FakeVendor,
        slack: SlackFake,
        pg: PgServer | None,
        database: str | None,
        exclude: set[int],
    ) -> None:
        self.bots, self.vendor, self.slack = bots, vendor, slack
        self.pg, self.database, self.exclude = pg, database, exclude

    def read(self) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "wall": time.monotonic(),
            "bots": {b.name: b.cpu() for b in self.bots},
            "vendor": proc_cpu_s(self.vendor.pid) or 0.0,
            "slack": proc_cpu_s(self.slack.pid) or 0.0,
            "bench": time.process_time(),
            "machine": machine_busy_s(),
            "pg_server": {pid: proc_cpu_s(pid) or 0.0 for pid in postgres_pids()},
        }
        if self.pg is not None and self.database is not None:
            pids = self.pg.backends(self.database, self.exclude)
            snap["pg_backends"] = {pid: proc_cpu_s(pid) or 0.0 for pid in pids}
        return snap

    @staticmethod
    def delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        def grown(before: dict[int, float], after: dict[int, float]) -> float:
            # A process that started in between counts whole; one that ended is lost.
            return sum(v - before.get(pid, 0.0) for pid, v in after.items())

        wall = b["wall"] - a["wall"]
        bots = {name: round(b["bots"][name] - a["bots"][name], 2) for name in b["bots"]}
        out: dict[str, Any] = {
            "wall_s": round(wall, 2),
            "bots_cpu_s": round(sum(bots.values()), 2),
            "per_bot_cpu_s": bots,
            "vendor_fake_cpu_s": round(b["vendor"] - a["vendor"], 2),
            "slack_fake_cpu_s": round(b["slack"] - a["slack"], 2),
            "bench_cpu_s": round(b["bench"] - a["bench"], 2),
            "pg_server_all_cpu_s": round(grown(a["pg_server"], b["pg_server"]), 2),
            "machine_busy_cpu_s": round(b["machine"] - a["machine"], 2),
        }
        if "pg_backends" in b:
            out["pg_backends_cpu_s"] = round(grown(a.get("pg_backends", {}), b["pg_backends"]), 2)
        ours = (
            out["bots_cpu_s"]
            + out["vendor_fake_cpu_s"]
            + out["slack_fake_cpu_s"]
            + out["bench_cpu_s"]
            + out["pg_server_all_cpu_s"]
        )
        # Whatever else ran on the machine meanwhile (other users of it).
        out["others_cpu_s"] = round(out["machine_busy_cpu_s"] - ours, 2)
        out["machine_busy_cores"] = round(out["machine_busy_cpu_s"] / wall, 2) if wall else None
        return out


def counted_between(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, dict[str, int]]:
    """Per bot, per outcome: polls it counted between two reads of its /metrics."""
    return {
        name: {
            outcome: int(n - before.get(name, {}).get(outcome, 0.0))
            for outcome, n in sorted(outcomes.items())
            if n - before.get(name, {}).get(outcome, 0.0)
        }
        for name, outcomes in after.items()
    }


# -- per-watch analysis ---------------------------------------------------------------------


def by_job(polls: list[tuple[float, int]], lo: float, hi: float) -> dict[int, list[float]]:
    found: dict[int, list[float]] = {}
    for at, job in polls:
        if lo <= at <= hi:
            found.setdefault(job, []).append(at)
    return found


def close_pairs(times: list[float], within: float) -> list[tuple[float, float]]:
    ordered = sorted(times)
    return [(x, y) for x, y in zip(ordered, ordered[1:], strict=False) if y - x < within]


def round_check(
    jobs: dict[int, list[float]], watches: int, interval: float, *, expect_every: bool
) -> dict[str, Any]:
    """Lost: a watch with no poll (when every one should have had one); doubled: a watch
    polled twice within half an interval (its polls are an interval apart, so two that close
    are two pollers on one watch)."""
    doubled = sorted(j for j, ts in jobs.items() if close_pairs(ts, interval / 2))
    lost = [j for j in range(watches) if j not in jobs] if expect_every else []
    counts = Counter(min(len(ts), 3) for ts in jobs.values())
    return {
        "watches_polled": len(jobs),
        "polls_per_watch": {("3+" if k == 3 else str(k)): v for k, v in sorted(counts.items())},
        "lost": len(lost) if expect_every else None,
        "lost_examples": lost[:5],
        "doubled": len(doubled),
        "doubled_examples": doubled[:5],
    }


# -- phases ---------------------------------------------------------------------------------


class Run:
    """One configuration's live pieces: its database, the bench's own Store on it (a
    single connection, for the drain's one statement and progress reads), the bots."""

    def __init__(
        self,
        args: argparse.Namespace,
        watches: int,
        database: str,
        bots: list[Bot],
        vendor: FakeVendor,
        slack: SlackFake,
        pg: PgServer | None,
        client: httpx.Client,
    ) -> None:
        self.args, self.watches, self.bots = args, watches, bots
        self.vendor, self.slack, self.client = vendor, slack, client
        self.store = Store(database, pool_size=1)
        exclude: set[int] = set()
        db_name = None
        if pg is not None and self.store.engine.dialect == "postgresql":
            exclude = {int(again(self.store.engine.row, "SELECT pg_backend_pid()")[0])}
            db_name = urlsplit(database).path.lstrip("/")
        self.meter = Meter(bots, vendor, slack, pg if db_name else None, db_name, exclude)

    def close(self) -> None:
        self.store.close()

    def bot_polls(self) -> dict[str, dict[str, float]]:
        return {b.name: b.polls(self.client) for b in self.bots}

    def drain(self, label: str) -> dict[str, Any]:
        """Every watch due at once: how fast do the processes get through them?"""
        log(f"{label}: drain of {self.watches} watches")
        self.vendor.mark()
        counted0 = self.bot_polls()
        cpu0 = self.meter.read()
        profiler = Profiler(self.args.profile, self.args.profile_mode, label, self.bots)
        t0 = time.time()
        again(self.store.poll_all_soon, t0)
        all_seen = wait_until(
            lambda: self.vendor.stats()["jobs_since_mark"] >= self.watches,
            self.args.drain_timeout,
            every=0.1,
        )
        applied = wait_until(lambda: again(self.store.poll_backlog, t0)[0] == 0, 30, every=0.05)
        t1 = time.time()
        cpu1 = self.meter.read()
        profiler.stop()
        counted1 = self.bot_polls()
        polls = self.vendor.polls(since=t0)
        window = [at for at, _ in polls if at <= t1]
        jobs = by_job(polls, t0, t1)
        first_polls = [min(ts) for ts in jobs.values()]
        span = (max(first_polls) - min(window)) if first_polls else 0.0
        in_span = sum(1 for at in window if at <= max(first_polls, default=t0))
        cpu = Meter.delta(cpu0, cpu1)
        n = len(window)
        per_bot = counted_between(counted0, counted1)
        result = {
            "all_polled": all_seen and applied,
            "seconds": round(t1 - t0, 2),
            "vendor_requests": n,
            "first_to_last_poll_s": round(span, 2),
            "polls_per_s": round(in_span / span, 1) if span > 0 else None,
            "bot_counted_polls": per_bot,
            "cpu": cpu,
            "bot_cpu_ms_per_poll": round(cpu["bots_cpu_s"] * 1000 / n, 3) if n else None,
            "polls_per_bot_cpu_s": round(n / cpu["bots_cpu_s"], 1) if cpu["bots_cpu_s"] else None,
            "round": round_check(jobs, self.watches, self.args.interval, expect_every=True),
        }
        if "pg_backends_cpu_s" in cpu:
            both = cpu["bots_cpu_s"] + cpu["pg_backends_cpu_s"]
            result["polls_per_bot_and_pg_backend_cpu_s"] = round(n / both, 1) if both else None
        return result

    def spread(self, start: float) -> None:
        """The next round: due evenly over one interval from `start`."""
        again(spread_due, self.store, start, self.args.interval)

    def steady(self, label: str) -> dict[str, Any]:
        """The watches due evenly over one interval: does it keep up, at what CPU?"""
        seconds, interval = self.args.seconds, self.args.interval
        log(f"{label}: steady phase, {seconds:g}s")
        self.spread(time.time())
        counted0 = self.bot_polls()
        cpu0 = self.meter.read()
        t0 = time.time()
        time.sleep(max(0.0, seconds - (time.time() - t0)))
        t1 = time.time()
        cpu1 = self.meter.read()
        counted1 = self.bot_polls()
        backlog, oldest = again(self.store.poll_backlog, t1 - 2)
        polls = self.vendor.polls(since=t0)
        jobs = by_job(polls, t0, t1)
        n = sum(len(ts) for ts in jobs.values())
        cpu = Meter.delta(cpu0, cpu1)
        wall = cpu["wall_s"]
        return {
            "seconds": round(t1 - t0, 1),
            "demand_polls_per_s": round(self.watches / interval, 1),
            "polls_per_s": round(n / (t1 - t0), 1),
            "vendor_requests": n,
            "bot_counted_polls": counted_between(counted0, counted1),
            "overdue_watches": backlog,
            "max_overdue_s": round(t1 - oldest, 1) if oldest else 0.0,
            "cpu": cpu,
            "bots_cpu_share_of_one_core": round(cpu["bots_cpu_s"] / wall, 3) if wall else None,
            "bot_cpu_ms_per_poll": round(cpu["bots_cpu_s"] * 1000 / n, 3) if n else None,
            # Every watch comes round only in a phase that lasts an interval.
            "round": round_check(jobs, self.watches, interval, expect_every=seconds >= interval),
        }


def _leases(store: Store, owner: str | None) -> int:
    row = again(store.engine.row, "SELECT COUNT(*) FROM watches WHERE lease_owner = ?", [owner])
    return int(row[0]) if row else 0


def bot_environment(database: str, vendor: FakeVendor, slack: SlackFake) -> dict[str, str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SYNCWATCH_", "ZOHO_"))
    }
    clean.pop("PYTHONPATH", None)
    return clean | bot_env(database, slack.api_url, vendor.root, rate_per_minute=UNLIMITED_RATE)


@contextmanager
def configuration(
    name: str,
    replicas: int,
    watches: int,
    args: argparse.Namespace,
    tmp: str,
    vendor: FakeVendor,
    slack: SlackFake,
    pg: PgServer | None,
    client: httpx.Client,
) -> Iterator[Run]:
    """A fresh database of `watches` parked watches and `replicas` bot processes on it."""
    run_dir = os.path.join(tmp, f"{name}-{watches}")
    os.makedirs(run_dir)
    with _database(name, watches, run_dir, pg) as database:
        seed_store(database, watches, interval=args.interval, due_from=time.time() + PARKED_S)
        env = bot_environment(database, vendor, slack)
        bots = start_bots(env, run_dir, [f"bot{i + 1}" for i in range(replicas)], client)
        run = None
        try:
            run = Run(args, watches, database, bots, vendor, slack, pg, client)
            yield run
        finally:
            if run is not None:
                run.close()
            for b in bots:
                b.stop()


@contextmanager
def _database(name: str, watches: int, run_dir: str, pg: PgServer | None) -> Iterator[str]:
    if name == "sqlite":
        yield os.path.join(run_dir, "syncwatch.db")
        return
    assert pg is not None
    with pg.database(f"bench_replicas_{os.getpid()}_{name}_{watches}") as url:
        yield url


def measure(
    name: str,
    replicas: int,
    watches: int,
    args: argparse.Namespace,
    tmp: str,
    fakes: tuple[FakeVendor, SlackFake],
    pg: PgServer | None,
    client: httpx.Client,
) -> dict[str, Any]:
    vendor, slack = fakes
    load = os.getloadavg()
    with configuration(name, replicas, watches, args, tmp, vendor, slack, pg, client) as run:
        drain = run.drain(f"{name}/{watches}")
        steady = run.steady(f"{name}/{watches}")
        alive = all(b.proc.poll() is None for b in run.bots)
        interrupted = {b.name: b.interruptions() for b in run.bots}
    return {
        "processes": replicas,
        "database": "sqlite" if name == "sqlite" else "postgresql",
        "loadavg_before": [round(x, 2) for x in load],
        "drain": drain,
        "steady": steady,
        "bots_alive_at_end": alive,
        "database_interruptions_in_bot_logs": interrupted,
    }


def takeover(
    watches: int,
    args: argparse.Namespace,
    tmp: str,
    fakes: tuple[FakeVendor, SlackFake],
    pg: PgServer,
    client: httpx.Client,
) -> dict[str, Any]:
    """2 replicas polling steadily; SIGKILL one; how long do its watches wait?"""
    vendor, slack = fakes
    interval = args.interval
    load = os.getloadavg()
    with configuration("takeover", 2, watches, args, tmp, vendor, slack, pg, client) as run:
        survivor, victim = run.bots
        begin = time.time()
        run.spread(begin)
        # Both replicas poll for a while (at least one beat, so leases have been renewed).
        warm = max(args.seconds, BEAT_SECONDS + 2)
        log(f"takeover/{watches}: {warm:g}s of steady polling by 2 replicas, then SIGKILL")
        time.sleep(warm)
        counted_before = run.bot_polls()
        ids = {int(r["pid"]): r["id"] for r in again(run.store.replicas, 0)}
        victim_id = ids.get(victim.pid)
        # In steady state a replica holds leases only while it polls (a few at a time, for
        # tens of ms): kill it at such a moment, or there is nothing to take over.
        wait_until(lambda: _leases(run.store, victim_id) > 0, 10, every=0.002)
        killed_at = time.time()
        victim.kill()
        held = again(
            run.store.engine.query,
            "SELECT ref, lease_until FROM watches WHERE lease_owner = ?",
            [victim_id],
        )
        held_jobs = {int(r["ref"].rsplit("/", 1)[1]) - FIRST_JOB for r in held}
        lease_ends = [float(r["lease_until"]) - killed_at for r in held if r["lease_until"]]
        log(f"killed {victim.name} ({victim_id}) holding {len(held_jobs)} leases")
        limit = LEASE_SECONDS + interval + 60

        def retaken() -> bool:
            seen = {job for at, job in vendor.polls(since=killed_at)}
            return held_jobs <= seen

        all_back = wait_until(retaken, limit, every=0.5)
        # Then on until every watch has come round once after the kill: none lost.
        until = killed_at + max(interval, LEASE_SECONDS) + 5
        time.sleep(max(0.0, until - time.time()))
        end = time.time()
        survivor_alive = survivor.proc.poll() is None
        interrupted = {b.name: b.interruptions() for b in run.bots}
        counted_after = run.bot_polls()
        backlog, oldest = again(run.store.poll_backlog, end - 2)
    polls = vendor.polls(since=begin)
    after = by_job(polls, killed_at, end)
    retake = [min(after[j]) - killed_at for j in held_jobs if j in after]
    whole = by_job(polls, begin, end)
    # A poll the victim sent but never recorded is redone once its lease lapses: that pair
    # straddles the kill and is not two pollers at once.
    redone = {
        j
        for j in held_jobs
        if any(x < killed_at < y for x, y in close_pairs(whole.get(j, []), interval / 2))
    }
    doubled = sorted(
        j for j, ts in whole.items() if j not in redone and close_pairs(ts, interval / 2)
    )
    lost = [j for j in range(watches) if j not in after]
    worst = max(retake) if retake else None
    return {
        "watches": watches,
        "processes": 2,
        "loadavg_before": [round(x, 2) for x in load],
        "lease_s": LEASE_SECONDS,
        "heartbeat_s": BEAT_SECONDS,
        "steady_before_kill_s": round(killed_at - begin, 1),
        "bot_counted_polls_before_kill": counted_before,
        "victim": victim.name,
        "victim_held_leases": len(held_jobs),
        "victim_leases_lapse_after_kill_s": summary_s(lease_ends),
        "all_held_polled_again": all_back and len(retake) == len(held_jobs),
        "kill_to_held_polled_again": summary_s(retake),
        "kill_to_held_polled_again_p50_s": (
            round(percentile(retake, 50) or 0, 2) if retake else None
        ),
        "watched_after_kill_s": round(end - killed_at, 1),
        "survivor_counted_polls_after_kill": counted_between(counted_before, counted_after)[
            survivor.name
        ],
        "survivor_alive": survivor_alive,
        "database_interruptions_in_bot_logs": interrupted,
        "overdue_watches_at_end": backlog,
        "max_overdue_s_at_end": round(end - oldest, 1) if oldest else 0.0,
        "lost": len(lost),
        "lost_examples": lost[:5],
        "doubled": len(doubled),
        "doubled_examples": doubled[:5],
        "redone_after_kill": len(redone),
        "goals": {
            "takeover_lt_35s": worst is not None and worst < TAKEOVER_GOAL_S,
            "none_lost": not lost,
            "none_doubled": not doubled,
        },
    }


def code_version() -> dict[str, Any]:
    """Which checkout the bots ran, at which commit (and whether it had changes on top)."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", CHECKOUT, *argv], capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "checkout": CHECKOUT,
        "commit": git("rev-parse", "--short", "HEAD"),
        "changed_files": len(git("status", "--porcelain", "--untracked-files=no").splitlines()),
    }


def failed_or(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """One configuration's result, or why it could not be measured: a long run keeps the
    others (another user of the PostgreSQL server may cut connections past every retry)."""
    try:
        return fn(*args)
    except Exception as err:
        log(f"{fn.__name__} failed: {type(err).__name__}: {err}")
        return {"error": f"{type(err).__name__}: {err}"}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def summary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per watch count: the ratios the goals are about, from this run's figures."""
    out: dict[str, Any] = {}
    for size, configs in results.items():

        def drain(name: str, key: str, configs: dict[str, Any] = configs) -> Any:
            return configs.get(name, {}).get("drain", {}).get(key)

        pg_vs_sqlite = ratio(drain("pg1", "polls_per_s"), drain("sqlite", "polls_per_s"))
        two_vs_one = ratio(drain("pg2", "polls_per_s"), drain("pg1", "polls_per_s"))
        measured = [c for c in configs.values() if "drain" in c]
        rounds_clean = len(measured) == len(configs) and all(
            c["drain"]["round"]["lost"] == 0 and c["drain"]["round"]["doubled"] == 0
            for c in measured
        )
        # A bot that had to wait for the database (connections cut by another user of the
        # server) polled less and may poll a watch again: that configuration isn't clean.
        interrupted = sorted(
            n
            for n, c in configs.items()
            if any(c.get("database_interruptions_in_bot_logs", {}).values())
        )
        out[size] = {
            "drain_polls_per_s": {n: drain(n, "polls_per_s") for n in configs},
            "polls_per_bot_cpu_s": {n: drain(n, "polls_per_bot_cpu_s") for n in configs},
            "polls_per_bot_and_pg_backend_cpu_s": {
                n: drain(n, "polls_per_bot_and_pg_backend_cpu_s") for n in configs if n != "sqlite"
            },
            "pg_vs_sqlite": pg_vs_sqlite,
            "pg_vs_sqlite_per_bot_cpu_s": ratio(
                drain("pg1", "polls_per_bot_cpu_s"), drain("sqlite", "polls_per_bot_cpu_s")
            ),
            "two_vs_one": two_vs_one,
            "configs_with_database_interruptions": interrupted,
            "configs_failed": sorted(n for n, c in configs.items() if "error" in c),
            "goals": {
                "pg_vs_sqlite_ge_0.8": pg_vs_sqlite is not None and pg_vs_sqlite >= 0.8,
                "two_vs_one_ge_1.8": two_vs_one is not None and two_vs_one >= 1.8,
                "every_drain_once_per_watch": rounds_clean,
            },
        }
    return out


def main() -> None:
    args = parse_args()
    started = time.time()
    uses_pg = any(c != "sqlite" for c in args.configs)
    replicas = {"sqlite": 1, "pg1": 1, "pg2": 2}
    results: dict[str, dict[str, Any]] = {}
    taken: dict[str, Any] | None = None
    with (
        tempfile.TemporaryDirectory(prefix="syncwatch-bench-") as tmp,
        FakeVendor(args.latency) as vendor,
        SlackFake() as slack,
        httpx.Client(timeout=2.0) as client,
    ):
        pg = PgServer(args.pg_dsn) if uses_pg else None
        try:
            for size in args.watches:
                for name in (c for c in args.configs if c != "takeover"):
                    results.setdefault(str(size), {})[name] = failed_or(
                        measure, name, replicas[name], size, args, tmp, (vendor, slack), pg, client
                    )
            if "takeover" in args.configs:
                assert pg is not None
                taken = failed_or(
                    takeover, args.takeover_watches, args, tmp, (vendor, slack), pg, client
                )
        finally:
            if pg is not None:
                pg.close()
        vendor_stats = vendor.stats()
    emit(
        {
            "bench": "replicas",
            "quick": args.quick,
            "machine": machine(),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            "code": code_version(),
            "params": {
                "watches": args.watches,
                "interval_s": args.interval,
                "steady_s": args.seconds,
                "vendor_latency_ms": args.latency * 1000,
                "configs": args.configs,
                "connections": f"one, at ZOHO_RATE_PER_MINUTE={UNLIMITED_RATE:g}",
                "profiled": bool(args.profile),
            },
            "summary": summary(results),
            "results": results,
            "takeover": taken,
            "vendor_totals": {k: vendor_stats[k] for k in ("polls", "token_requests")},
            "total_s": round(time.time() - started, 1),
        }
    )


if __name__ == "__main__":
    main()
