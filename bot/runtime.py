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

from bot import health
from bot.api.http import ApiHttp, TokenRate
from bot.api.tokens import TokenAdmin, TokenBook
from bot.api.watches import WatchApi
from bot.app import HTTP_THREADS, create_app, make_wsgi
from bot.budget import MonthlyBudget
from bot.config import Settings
from bot.framing import bound_chunked_framing
from bot.inbound import MAX_BODY_BYTES
from bot.lifecycle import PollPolicy
from bot.listeners.background import AfterAck
from bot.metrics import Metrics
from bot.notifier import Notifier
from bot.poller import Poller
from bot.ratelimit import SharedBuckets
from bot.redaction import Redactor
from bot.replica import Replica
from bot.schedules import ScheduleRunner
from bot.service import Service
from bot.slack import MembershipCache, build_slack_client
from bot.vendors import SyncOptions, VendorContext, build_http_client
from bot.vendors.pool import VendorPool
from storage import Store
from storage.engine import DatabaseURL

log = logging.getLogger(__name__)

# SIGTERM to exit: the whole shutdown fits in this, leaving room under the 10 s that
# process managers commonly allow before they send SIGKILL (docs/operations.md#shutdown).
SHUTDOWN_GRACE_S = 7.0

# Seconds between the Socket Mode client's pings to Slack (docs/slack.md#socket-mode). A
# TCP link lost without a close shows only as missing pongs: /healthz reports it after two
# intervals without one, and the SDK itself drops and reopens a link after four. Bolt's
# handler defaults to 10 s (no 503 for 20 s, a new link after 41-50 s).
SOCKET_PING_INTERVAL_S = 3.0


# A spool file younger than this may belong to a download another process on this host
# (the old one, during a rolling deploy) has not yet recorded: the start-up sweep spares it.
SWEEP_SPARES_S = 900.0


def spool_dir_for(database: DatabaseURL) -> str:
    """Where result files wait for their upload: beside a SQLite database (same disk, same
    lifetime); for PostgreSQL, `./syncwatch-files` in the working directory."""
    if database.dialect == "sqlite":
        path = f"{os.path.abspath(database.target)}.files"
    else:
        path = os.path.abspath("syncwatch-files")
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
        redactor: Redactor | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        socket_ping_interval: float = SOCKET_PING_INTERVAL_S,
    ) -> None:
        """`clock` is the wall clock the watches live by; `monotonic` times the loops'
        heartbeats for /healthz. Tests move either on by hand."""
        self.settings = settings
        # The log filter's, when `syncwatch run` made one: then logs also learn the tokens.
        self.redactor = redactor or Redactor(settings.secrets())
        self.clock = clock
        self.socket_ping_interval = socket_ping_interval
        self.metrics = Metrics()
        self.store = Store(settings.database, pool_size=settings.db_pool_size)
        self.spool_dir = spool_dir_for(settings.database)
        ctx = VendorContext(
            http=build_http_client(vendor_transport),
            clock=clock,
            spool_dir=self.spool_dir,
            max_file_bytes=int(settings.max_file_mb * 1024 * 1024),
            budget=MonthlyBudget(self.store, clock),
            redactor=self.redactor,
        )
        self.vendors = VendorPool(settings.connections, ctx, self._sync_options)
        self.slack = slack_client or build_slack_client(
            settings.slack_bot_token, settings.slack_api_url
        )
        writer = slack_client or build_slack_client(
            settings.slack_bot_token, settings.slack_api_url, for_writes=True
        )
        if settings.slack_pace == "off" and "slack.com" in settings.slack_api_url:
            log.warning("SYNCWATCH_SLACK_PACE=off against Slack itself: expect 429s")
        self.replica = Replica(
            self.store, clock=clock, lease_seconds=settings.replica_lease_seconds
        )
        self.metrics.name_replica(self.replica.id)
        self.after_ack = AfterAck()  # acks first, then the work after them
        self.notifier = Notifier(
            self.store,
            writer,
            clock=clock,
            metrics=self.metrics,
            paced=pace_slack and settings.slack_pace != "off",
            owner=self.replica.id,
            claim_seconds=settings.replica_lease_seconds,
            shared=self.store,
            monotonic=monotonic,
            requests_answered=self.after_ack.gate.wait_quiet,
        )
        policy = PollPolicy.from_settings(settings)
        self.schedules = ScheduleRunner(
            self.store,
            policy,
            clock=clock,
            on_change=self.notifier.wake,
            min_gap=settings.min_schedule_minutes * 60,
        )
        self.service = Service(
            self.store,
            settings,
            clock=clock,
            policy=policy,
            on_change=self.notifier.wake,
            on_schedules_changed=self.schedules.reload,
        )
        self.poller = Poller(
            self.store,
            self.vendors,
            policy,
            clock=clock,
            on_change=self.notifier.wake,
            metrics=self.metrics,
            owner=self.replica.id,
            lease_seconds=settings.replica_lease_seconds,
            buckets=SharedBuckets(self.store, clock),
            files_in_database=settings.database.dialect == "postgresql",
            monotonic=monotonic,
            requests_answered=self.after_ack.gate.wait_quiet,
        )
        # The watch API and vendor callbacks (docs/architecture.md#watch-api).
        self.tokens = TokenBook(self.store, settings.tokens)
        self.token_admin = TokenAdmin(
            self.store, settings, self.tokens, clock=clock, redactor=self.redactor
        )
        self.watch_api = WatchApi(
            self.store,
            settings,
            clock=clock,
            policy=policy,
            membership=MembershipCache(self.slack, clock).problem,
            on_change=self.notifier.wake,
            on_due=self.poller.wake,
        )
        self.api_http = ApiHttp(
            self.watch_api,
            self.tokens,
            TokenRate(self.store.rate_take, settings.api_rate_per_minute, clock),
        )
        self.app = create_app(
            settings,
            self.service,
            client=self.slack,
            metrics=self.metrics,
            authorize=authorize,
            after=self.after_ack,
            tokens=self.token_admin,
        )
        self.metrics.watch_store(self._store_figures)
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._stop_serving = threading.Event()
        # Held while the serve loop closes its sockets: the wake-up pipe must never be
        # written after it is closed (its descriptor number may already belong to another
        # file by then).
        self._trigger_lock = threading.Lock()
        self._trigger_closed = False
        self._socket_handler: Any = None
        self._shut_down = False

    def _sync_options(self, ref: str) -> SyncOptions | None:
        target = self.settings.syncs.get(ref)
        return target.options if target else None

    def _store_figures(self) -> tuple[dict[str, int], int, float]:
        backlog, age = self.store.outbox_backlog(self.clock())
        return self.store.count_by_status(), backlog, age

    def health(self) -> dict[str, health.Check]:
        """The /healthz checks, each True or a short reason (docs/operations.md#health)."""
        checks: dict[str, health.Check] = {"slack": health.check(self.notifier.slack_problem())}
        if self.settings.socket_mode:
            checks["socket"] = health.check(self._socket_problem())
        checks["database"] = health.check(self.store.problem())
        checks["poller"] = health.check(self.poller.problem())
        checks["notifier"] = health.check(self.notifier.problem())
        return checks

    def _socket_problem(self) -> str | None:
        handler = self._socket_handler
        if handler is None:
            return "not connected"
        # The SDK stamps pings with the wall clock (time.time), not with self.clock.
        return health.socket_problem(handler.client, time.time(), self.socket_ping_interval)

    def start(self) -> None:
        """Start polling and delivering (rows left by a previous process resume here)."""
        self.replica.join()
        self.replica.start()
        self._sweep_spool()
        self.notifier.start()
        self.poller.start()
        self.schedules.start()
        self.notifier.wake()

    def _sweep_spool(self) -> None:
        """Delete result files no pending upload refers to (left by a crash mid-download,
        or by rows that died). Files of pending uploads stay: they are posted after start."""
        keep = self.store.pending_upload_paths()
        spare_after = time.time() - SWEEP_SPARES_S
        with os.scandir(self.spool_dir) as entries:
            stale = [
                e.path
                for e in entries
                if e.is_file() and e.path not in keep and e.stat().st_mtime < spare_after
            ]
        for path in stale:
            with contextlib.suppress(OSError):
                os.remove(path)
        self.store.sweep_files(before=time.time() - SWEEP_SPARES_S)

    def serve_http(self, *, background: bool = False) -> int:
        """Serve /slack/events, /healthz and /metrics on SYNCWATCH_HOST:PORT with waitress.
        Returns the bound port (useful with PORT=0)."""
        return self._serve(self.app, background)

    def serve_socket_mode(self, *, background: bool = False) -> int:
        """Connect to Slack over Socket Mode; /healthz and /metrics still served over HTTP."""
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        self._socket_handler = SocketModeHandler(
            self.app, self.settings.slack_app_token, ping_interval=self.socket_ping_interval
        )
        self._socket_handler.connect()
        return self._serve(None, background)

    def _serve(self, app: Any, background: bool) -> int:
        wsgi = make_wsgi(
            app,
            render_metrics=self.metrics.render,
            health=self.health,
            gate=self.after_ack.gate,
            signing_secret=self.settings.slack_signing_secret,
            api=self.api_http,
        )
        self._server = create_server(
            wsgi,
            host=self.settings.host,
            port=self.settings.port,
            threads=HTTP_THREADS,
            backlog=1024,  # a burst of commands waits in the kernel queue, not refused
            connection_limit=1000,
            max_request_body_size=MAX_BODY_BYTES,  # waitress refuses more with a 413
            ident="syncwatch",
        )
        # A chunk-size line or trailer that never ends: 400, not 1 MiB of re-scans.
        bound_chunked_framing(self._server)
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
        try:
            while not self._stop_serving.is_set():
                wasyncore.loop(
                    timeout=0.5, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1
                )
        finally:
            with self._trigger_lock:
                self._trigger_closed = True
            server.task_dispatcher.shutdown(timeout=5)  # requests being answered finish
            wasyncore.close_all(server._map)

    def stop_serving(self) -> None:
        """Ask the HTTP loop to end. Safe from a signal handler and from any thread, before,
        during or after the loop's own clean-up."""
        self._stop_serving.set()
        if self._server is None:
            return
        # Non-blocking: a signal handler runs on the thread that may hold this lock while it
        # closes the sockets; then there is nothing left to wake anyway.
        if not self._trigger_lock.acquire(blocking=False):
            return
        try:
            if not self._trigger_closed:
                self._server.pull_trigger()  # wake select() now rather than at its timeout
        finally:
            self._trigger_lock.release()

    def shutdown(self, grace: float = SHUTDOWN_GRACE_S) -> None:
        """Stop in order, within `grace` seconds in all: no new requests; commands already
        acked get their answer; polls in flight finish or give their lease back; deliveries
        in flight finish (a post cut short is looked up before it is sent again); then the
        store closes. Safe to call twice."""
        if self._shut_down:
            return
        self._shut_down = True
        deadline = time.monotonic() + grace

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        self.stop_serving()
        if (
            self._server_thread is not None
            and self._server_thread is not threading.current_thread()
        ):
            self._server_thread.join(timeout=left())
        if self._socket_handler is not None:
            with contextlib.suppress(Exception):  # already gone is fine: we are stopping
                self._socket_handler.close()
        self.after_ack.shutdown(timeout=left())
        self.schedules.shutdown()
        self.poller.shutdown(timeout=left())
        self.notifier.shutdown(timeout=left())
        self.replica.leave()
        self.vendors.close()
        self.store.close()
        log.info("shut down cleanly")
