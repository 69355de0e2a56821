"""Wires one bot process from Settings: store, vendor clients, Slack client, service, poller,
notifier, Bolt app and the HTTP server. Shared by `syncwatch run`, the demo and the tests."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from slack_sdk import WebClient
from waitress import wasyncore
from waitress.server import create_server

from bot.app import HTTP_THREADS, create_app, make_wsgi
from bot.budget import MonthlyBudget
from bot.config import Settings
from bot.listeners.background import AfterAck
from bot.metrics import Metrics
from bot.notifier import Notifier, build_slack_client
from bot.poller import Poller
from bot.service import Service
from bot.vendors import SyncOptions, VendorContext, build_http_client
from bot.vendors.pool import VendorPool
from storage import Store

log = logging.getLogger(__name__)


def spool_dir_for(db_path: str) -> str:
    """Result files wait beside the database they belong to (same disk, same lifetime)."""
    path = f"{os.path.abspath(db_path)}.files"
    os.makedirs(path, exist_ok=True)
    return path


class BotProcess:
    """Everything one `syncwatch run` owns. Build, `start()`, then `serve_http()` or
    `serve_socket_mode()`; `shutdown()` stops it all."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        vendor_transport: httpx.BaseTransport | None = None,
        slack_client: WebClient | None = None,
        authorize: Callable[..., Any] | None = None,
        pace_slack: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics()
        self.store = Store(settings.db_path)
        self.spool_dir = spool_dir_for(settings.db_path)
        ctx = VendorContext(
            http=build_http_client(vendor_transport),
            clock=clock,
            spool_dir=self.spool_dir,
            max_file_bytes=int(settings.max_file_mb * 1024 * 1024),
            budget=MonthlyBudget(self.store, clock),
        )
        self.vendors = VendorPool(settings.connections, ctx, self._sync_options)
        self.slack = slack_client or build_slack_client(
            settings.slack_bot_token, settings.slack_api_url
        )
        writer = slack_client or build_slack_client(
            settings.slack_bot_token, settings.slack_api_url, for_writes=True
        )
        self.notifier = Notifier(
            self.store, writer, clock=clock, metrics=self.metrics, paced=pace_slack
        )
        self.service = Service(self.store, settings, clock=clock, on_change=self.notifier.wake)
        self.poller = Poller(
            self.store,
            self.vendors,
            self.service.policy,
            clock=clock,
            on_change=self.notifier.wake,
            metrics=self.metrics,
        )
        self.service.on_schedules_changed = self.poller.load_schedules
        self.after_ack = AfterAck()  # acks first, then the work after them
        self.app = create_app(
            settings,
            self.service,
            client=self.slack,
            metrics=self.metrics,
            authorize=authorize,
            after=self.after_ack,
        )
        self.metrics.watch_store(self._store_figures)
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._stop_serving = threading.Event()
        # Held while the trigger is pulled and while the sockets are closed: the loop closing
        # them between a stop's set() and its pull made the pull write to a closed (or
        # reused) descriptor. Re-entrant: a signal handler may stop the loop it interrupts.
        self._sockets_lock = threading.RLock()
        self._sockets_closed = False
        self._socket_handler: Any = None

    def _sync_options(self, ref: str) -> SyncOptions | None:
        target = self.settings.syncs.get(ref)
        return target.options if target else None

    def _store_figures(self) -> tuple[dict[str, int], int, float]:
        backlog, age = self.store.outbox_backlog(self.clock())
        return self.store.count_by_status(), backlog, age

    def healthy(self) -> bool:
        return self.notifier.credentials_ok

    def start(self) -> None:
        """Start polling and delivering (rows left by a previous process resume here)."""
        freed = self.store.release_all_leases()
        if freed:
            log.info("freed %d watch leases left by a previous process", freed)
        self._sweep_spool()
        self.notifier.start()
        self.poller.start()
        self.notifier.wake()

    def _sweep_spool(self) -> None:
        """Delete result files no pending upload refers to (left by a crash mid-download,
        or by rows that died). Files of pending uploads stay: they are posted after start."""
        keep = self.store.pending_upload_paths()
        for entry in os.scandir(self.spool_dir):
            if entry.is_file() and entry.path not in keep:
                with contextlib.suppress(OSError):
                    os.remove(entry.path)

    def serve_http(self, *, background: bool = False) -> int:
        """Serve /slack/events, /healthz and /metrics on SYNCWATCH_HOST:PORT with waitress.
        Returns the bound port (useful with PORT=0)."""
        return self._serve(self.app, background)

    def serve_socket_mode(self, *, background: bool = False) -> int:
        """Connect to Slack over Socket Mode; /healthz and /metrics still served over HTTP."""
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        self._socket_handler = SocketModeHandler(self.app, self.settings.slack_app_token)
        self._socket_handler.connect()
        return self._serve(None, background)

    def _serve(self, app: Any, background: bool) -> int:
        wsgi = make_wsgi(
            app, render_metrics=self.metrics.render, healthy=self.healthy, gate=self.after_ack.gate
        )
        self._server = create_server(
            wsgi,
            host=self.settings.host,
            port=self.settings.port,
            threads=HTTP_THREADS,
            backlog=1024,  # a burst of commands waits in the kernel queue, not refused
            connection_limit=1000,
            ident="syncwatch",
        )
        port = int(self._server.effective_port)
        log.info("listening on http://%s:%s", self.settings.host, port)
        if background:
            self._server_thread = threading.Thread(
                target=self._serve_loop, name="http", daemon=True
            )
            self._server_thread.start()
        else:
            self._serve_loop()
        return port

    def _serve_loop(self) -> None:
        """waitress's own run() can't be stopped from another thread without racing its
        select(); this loop checks a flag between rounds and closes the sockets itself."""
        server = self._server
        while not self._stop_serving.is_set():
            wasyncore.loop(
                timeout=0.5, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1
            )
        server.task_dispatcher.shutdown(timeout=5)
        with self._sockets_lock:
            self._sockets_closed = True
            wasyncore.close_all(server._map)

    def stop_serving(self) -> None:
        """Ask the HTTP loop to end (safe from a signal handler)."""
        with self._sockets_lock:
            self._stop_serving.set()
            if self._server is not None and not self._sockets_closed:
                self._server.pull_trigger()  # wake select() now rather than at its timeout

    def shutdown(self) -> None:
        self.stop_serving()
        if (
            self._server_thread is not None
            and self._server_thread is not threading.current_thread()
        ):
            self._server_thread.join(timeout=10)
        if self._socket_handler is not None:
            self._socket_handler.close()
        self.after_ack.shutdown()  # commands already acked get their answer before we stop
        self.poller.shutdown()
        self.notifier.shutdown()
        self.vendors.close()
        self.store.close()
