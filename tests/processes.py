"""Real `syncwatch run` processes, for the tests that kill or signal one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from storage import Store


def wait_until(
    condition: Callable[[], object],
    timeout: float = 15.0,
    what: str = "condition",
    meanwhile: Callable[[], object] | None = None,
):
    """Poll a condition with a deadline (no fixed sleeps); `meanwhile()` runs between checks
    (e.g. to move an injected clock on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if meanwhile is not None:
            meanwhile()
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def clean_env(overrides: dict[str, str]) -> dict[str, str]:
    """This process's environment without any syncwatch, Slack or vendor setting, plus
    `overrides` (the fakes' URLs and credentials)."""
    prefixes = ("SLACK_", "SYNCWATCH_", "ZOHO_", "ZUORA_", "MICRO_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)} | overrides


@dataclass
class BotRun:
    """One `syncwatch run` in its own process group, its log in a file."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGKILL, timeout: float = 20.0) -> int:
        """Send `sig` to the whole process group and wait; returns the exit code."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def spawn_bot(env: dict[str, str], log_dir: Path) -> BotRun:
    """Start `syncwatch run` over HTTP on a free port and wait until it is healthy. Its log
    goes to a file (a pipe nobody reads could fill and stall it)."""
    port = free_port()
    log = log_dir / f"bot-{port}.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            env={**env, "PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,
        )
    run = BotRun(proc, port, log)
    try:
        wait_until(lambda: healthy(port) or proc.poll() is not None, what="bot health")
    except AssertionError:
        run.stop()
        raise
    assert proc.poll() is None, f"syncwatch run exited at start:\n{run.output()[-2000:]}"
    return run


def outbox_settled(db_path: Path) -> bool:
    """No outbox row is left to deliver in the database at `db_path`."""
    store = Store(str(db_path))
    try:
        return store.outbox_backlog(0)[0] == 0
    finally:
        store.close()
