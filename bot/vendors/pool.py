"""Vendor clients by (vendor, connection), built once per process and shared by all watches,
and each connection's request budget (token-bucket key and rate)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from .base import AnyVendor, Clock, Connection, SyncOptions, VendorContext, VendorSpec

ConnectionLookup = Callable[[str], Mapping[str, Connection]]


class UnknownConnectionError(LookupError):
    """A watch names a connection the operator has not configured (or has since removed)."""


class VendorPool:
    """Owns the vendor clients and their shared context (HTTP client, token caches, what
    was logged once): nothing of that lives in the vendor modules themselves."""

    def __init__(
        self,
        connections: ConnectionLookup,
        ctx: VendorContext,
        sync_options: Callable[[str], SyncOptions | None] = lambda ref: None,
    ) -> None:
        self._connections = connections
        self.ctx = ctx
        self.sync_options = sync_options  # the operator's options for a "ws/ds" target
        self._clients: dict[tuple[str, str], AnyVendor] = {}
        self._budgets: dict[tuple[str, str], tuple[tuple[str, ...], float]] = {}
        self._lock = threading.Lock()

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    def get(self, spec: VendorSpec, connection: str) -> AnyVendor:
        """The client of `spec` for `connection`: a `Vendor` or, for a spec of kind "sync",
        a `SyncVendor`; its `kind` is the spec's. Raises UnknownConnectionError."""
        key = (spec.key, connection)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = spec.build(self._connection(spec, connection), self.ctx)
                if client.kind != spec.kind:
                    raise TypeError(f"{spec.key} builds {client.kind} clients, not {spec.kind}")
                self._clients[key] = client
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

    def _connection(self, spec: VendorSpec, connection: str) -> Connection:
        conn = self._connections(spec.family).get(connection)
        if conn is None:
            raise UnknownConnectionError(
                f"no {spec.family} connection named {connection!r} is configured"
            )
        return conn

    def close(self) -> None:
        self.ctx.http.close()
