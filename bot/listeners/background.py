"""Work that runs after the ack.

The app runs with `process_before_response=True`: each listener runs in the HTTP request's
own thread and its ack is the HTTP answer, so an ack costs no thread hop and no wait (Bolt
otherwise polls for the ack every 10 ms, which was most of a lone command's latency).
Anything slower than SQLite (a Slack read, `respond()`, `views.publish`) is handed to
`AfterAck`, which runs it on its own threads once the acks in flight are given.

Not Bolt's lazy listeners: Bolt deep-copies the whole request for them in the request
thread (about half of the CPU of a `list` ack, measured), and for every command, also
those that need no work after the ack.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient

from bot import texts

log = logging.getLogger(__name__)

Work = Callable[[dict[str, Any], Respond, WebClient], None]

# How long work after an ack may wait for the acks in flight to finish. Short: the person
# is waiting for it too; it only has to let a burst of acks go first.
QUIET_WAIT_S = 0.5
# ...and how long no request must have been answered for a burst of them to be over. A
# burst reaches the request threads one request at a time (the server reads them in turn),
# so "none in flight" alone is true between two acks of the same burst: measured, half of
# a burst's work after the ack started before its last ack and delayed it. A request that
# came alone (none in the QUIET_GAP_S before it) has its work go at once, as before.
QUIET_GAP_S = 0.03
# Few threads: under a burst of commands they compete with the acks for the interpreter,
# and an ack is what Slack times. Each runs one Slack read, a few SQLite writes, respond().
WORKERS = 8


class AckGate:
    """Counts the Slack requests being answered right now. Work after an ack waits until
    none are, and when several came close together (a burst), until none has been for
    QUIET_GAP_S (at most QUIET_WAIT_S in all), so that under a burst the acks get the
    interpreter first and the slower work follows."""

    def __init__(self) -> None:
        self._answering = 0
        self._streak = 0  # requests since the last quiet spell of QUIET_GAP_S
        self._last_answered = float("-inf")  # monotonic time the last answer was given
        self._lock = threading.Lock()

    @contextmanager
    def answering(self) -> Iterator[None]:
        with self._lock:
            if not self._answering and time.monotonic() - self._last_answered >= QUIET_GAP_S:
                self._streak = 0
            self._streak += 1
            self._answering += 1
        try:
            yield
        finally:
            with self._lock:
                self._answering -= 1
                self._last_answered = time.monotonic()

    def wait_quiet(self, timeout: float = QUIET_WAIT_S) -> bool:
        """True when no request is being answered and either the last one came alone or
        none was answered in the last QUIET_GAP_S (waits up to `timeout`). Waiters look
        again after a gap rather than being woken by each answer: under a burst that would
        wake them all between any two acks."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                busy, streak, last = self._answering, self._streak, self._last_answered
            now = time.monotonic()
            idle = now - last
            if not busy and (streak <= 1 or idle >= QUIET_GAP_S):
                return True
            if now >= deadline:
                return False
            time.sleep(min(QUIET_GAP_S if busy else QUIET_GAP_S - idle, deadline - now))


class AfterAck:
    """Runs `work(body, respond, client)` after the ack, on its own threads."""

    def __init__(self, gate: AckGate | None = None, workers: int = WORKERS) -> None:
        self.gate = gate or AckGate()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="after-ack")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def submit(self, work: Work, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        future = self._pool.submit(self._run, work, body, respond, client)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def shutdown(self, timeout: float | None = None) -> None:
        """Take no more work and wait (up to `timeout`) for the work already acked: those
        people were told "ok" and are waiting for the answer."""
        self._pool.shutdown(wait=False)
        with self._lock:
            pending = set(self._pending)
        _, unfinished = wait(pending, timeout=timeout)
        if unfinished:
            log.warning("%d answers after an ack were still running at shutdown", len(unfinished))

    def _run(self, work: Work, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        """A failure here happens after Slack got its ack, so nobody else would tell the
        person: log it with a short ref (the type only: a vendor's or Slack's message may
        carry a request detail) and tell them, privately, that nothing was changed."""
        self.gate.wait_quiet()
        try:
            work(body, respond, client)
        except Exception as error:
            ref = secrets.token_hex(2)
            log.error("listener failed (ref %s): %s", ref, type(error).__name__, exc_info=error)
            if respond is None or not body.get("response_url"):
                return
            try:
                respond(
                    text=texts.something_went_wrong(ref),
                    response_type="ephemeral",
                    replace_original=False,
                )
            except Exception as err:  # Slack unreachable too: the log line is all we have
                log.warning("could not tell the user about ref %s: %s", ref, type(err).__name__)
