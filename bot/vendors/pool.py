"""Vendor clients by (vendor, connection), built once per process and shared by all watches,
and each connection's request budget (token-bucket key and rate)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from .base import Clock, SyncOptions, Vendor, VendorContext, VendorSpec

ConnectionLookup = Callable[[str], Mapping[str, Any]]


class UnknownConnectionError(LookupError):
    """A watch names a connection the operator has not configured (or has since removed)."""


class VendorPool:
    def __init__(
        self,
        connections: ConnectionLookup,
        ctx: VendorContext,
        sync_options: Callable[[str], SyncOptions | None] = lambda ref: None,
    ) -> None:
        self._connections = connections
        self.ctx = ctx
        self.sync_options = sync_options  # the operator's options for a "ws/ds" target
        self._clients: dict[tuple[str, str], Vendor] = {}
        self._budgets: dict[tuple[str, str], tuple[tuple[str, ...], float]] = {}
        self._lock = threading.Lock()

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    def get(self, spec: VendorSpec, connection: str) -> Vendor:
        key = (spec.key, connection)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = spec.build(
                    self._connection(spec, connection), self.ctx
                )
            return client

    def budget(self, spec: VendorSpec, connection: str) -> tuple[tuple[str, ...], float]:
        """The token bucket a poll of `spec` on `connection` takes from: its key and its rate
        a minute. Raises UnknownConnectionError like `get`.

        The key names the vendor account (`conn.rate_key`), not the connection, so several
        names for one account share one bucket instead of each getting the vendor's limit.
        The rate is the lowest `rate_per_minute` set on any connection of that account (one
        bucket has one rate, and the lowest is the one that keeps every setting true), else
        the vendor's default (`spec.rate_per_minute`)."""
        found = self._budgets.get((spec.key, connection))
        if found is not None:
            return found
        with self._lock:
            conn = self._connection(spec, connection)
            account = conn.rate_key
            set_rates = [
                other.rate_per_minute
                for other in self._connections(spec.family).values()
                if other.rate_key == account and other.rate_per_minute
            ]
            rate = min(set_rates) if set_rates else spec.rate_per_minute
            found = self._budgets[(spec.key, connection)] = ((spec.key, account), rate)
            return found

    def _connection(self, spec: VendorSpec, connection: str) -> Any:
        conn = self._connections(spec.family).get(connection)
        if conn is None:
            raise UnknownConnectionError(
                f"no {spec.family} connection named {connection!r} is configured"
            )
        return conn

    def close(self) -> None:
        self.ctx.http.close()
