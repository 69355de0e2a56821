"""This process as one replica among several on one database (docs/architecture.md#replicas).

Every poll lease and every claim on a watch's Slack deliveries carries the replica's id.
A heartbeat renews them every `BEAT_SECONDS`; they last `LEASE_SECONDS`, so a replica that
dies (kill -9, lost host) loses its work within that time and the others pick it up. No
process frees another live process's work: at start only processes of this host that no
longer exist are freed at once (a restart after a crash doesn't wait for their leases).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from storage import Store

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0  # default: a dead replica's watches wait at most this long for another one
BEAT_SECONDS = 10.0  # three beats a lease: one late beat (a slow database) loses nothing
FORGET_AFTER = 86400.0  # replica rows silent this long are deleted (their leases lapsed long ago)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (signal 0 checks, sends nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class Replica:
    """Registers this process, beats while it runs, and gives everything back at the end."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float],
        host: str | None = None,
        pid: int | None = None,
        alive: Callable[[int], bool] = pid_alive,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        """`lease_seconds` (SYNCWATCH_REPLICA_LEASE_SECONDS): how long this replica's
        leases last without a beat; it beats every third of that."""
        self.store = store
        self.lease_seconds = lease_seconds
        self.beat_seconds = lease_seconds * BEAT_SECONDS / LEASE_SECONDS
        self.clock = clock
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.id = f"{self.host}:{self.pid}:{secrets.token_hex(3)}"
        self._alive = alive
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_beat: float | None = None  # monotonic time of the last successful beat

    def join(self) -> int:
        """Register; free what dead processes of this host held. Returns what was freed."""
        now = self.clock()
        freed = self.store.free_dead_replicas(
            self.host,
            lambda pid: pid != self.pid and self._alive(pid),
            stale_before=now - FORGET_AFTER,
        )
        self.store.join(self.id, self.host, self.pid, now)
        self.last_beat = time.monotonic()
        if freed:
            log.info("freed %d leases held by a process of this host that no longer runs", freed)
        return freed

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        self.store.beat(self.id, self.clock(), self.lease_seconds)
        self.last_beat = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.beat_seconds):
            try:
                self.beat()
            except Exception as err:  # the database is away: keep trying, say so once a beat
                log.warning("heartbeat failed (%s): leases lapse if this lasts", err)

    def leave(self) -> None:
        """Stop beating and give back every lease and claim (a clean shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.beat_seconds)
        try:
            self.store.leave(self.id)
        except Exception as err:  # leases then lapse on their own
            log.warning("couldn't give back leases at shutdown (%s)", err)
