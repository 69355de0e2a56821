"""Vendor clients by (vendor, connection), built once per process and shared by all watches."""

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
        self._lock = threading.Lock()

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    def get(self, spec: VendorSpec, connection: str) -> Vendor:
        key = (spec.key, connection)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                conn = self._connections(spec.family).get(connection)
                if conn is None:
                    raise UnknownConnectionError(
                        f"no {spec.family} connection named {connection!r} is configured"
                    )
                client = self._clients[key] = spec.build(conn, self.ctx)
            return client

    def close(self) -> None:
        self.ctx.http.close()
