"""What `GET /healthz` says: one check per link the bot depends on, each `True` or a short
reason, and 200 only when every one is `True` (docs/operations.md#health).

The loops keep a `Heartbeat`; the Socket Mode link is read from the Slack SDK's own client.
Everything here is pure apart from reading the clocks and objects it is handed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

Check = bool | str  # True, or why the link does not work

# Order of the keys in the body: the links from Slack inwards.
ORDER = ("slack", "socket", "database", "poller", "notifier")


class Heartbeat:
    """When a loop last showed progress, on the monotonic clock. The loop beats after every
    round, busy or idle (and the notifier within long rounds too), so a beat older than
    `stuck_after` seconds means the loop is stuck, not merely idle."""

    def __init__(self, stuck_after: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.stuck_after = stuck_after
        self._monotonic = monotonic
        self._last = monotonic()
        self._lock = threading.Lock()

    def beat(self) -> None:
        now = self._monotonic()
        with self._lock:
            self._last = max(self._last, now)

    def age(self) -> float:
        with self._lock:
            return self._monotonic() - self._last

    def problem(self) -> str | None:
        age = self.age()
        return stuck_for(age) if age > self.stuck_after else None


def stuck_for(seconds: float) -> str:
    return f"stuck for {seconds:.0f} s"


def slack_token_rejected(code: str) -> str:
    return f"token rejected ({code})"


def socket_problem(client: Any, now: float, ping_interval: float) -> str | None:
    """Is the Socket Mode link alive? `client` is slack_sdk's built-in SocketModeClient:
    `is_connected()` is false once its socket is gone (closed by either side, or dropped by
    the SDK as stale); `current_session.last_ping_pong_time` is the send time, on the wall
    clock, of the last ping Slack answered. The SDK pings every `ping_interval` seconds, so
    a pong older than two intervals means the link went quiet (a TCP loss sends no close:
    only the missing pongs show it). Before the first pong, the first ping's time counts."""
    if getattr(client, "closed", False):
        return "closed"
    if not client.is_connected():
        return "not connected"
    session = client.current_session
    since = getattr(session, "last_ping_pong_time", None)
    if since is None:
        since = getattr(session, "_first_ping_time", None)
    if since is not None and now - since > 2 * ping_interval:
        return f"no pong from Slack for {now - since:.0f} s"
    return None


def check(problem: str | None) -> Check:
    """A check from a `problem()` answer: True when there is none."""
    return True if problem is None else problem


def render(checks: Mapping[str, Check]) -> tuple[bool, bytes]:
    """(ok, JSON body) for /healthz: ok only when every check is True."""
    ordered = {k: checks[k] for k in ORDER if k in checks} | {
        k: v for k, v in checks.items() if k not in ORDER
    }
    ok = all(v is True for v in ordered.values())
    body = json.dumps({"ok": ok, "checks": ordered}, ensure_ascii=False)
    return ok, body.encode("utf-8") + b"\n"
