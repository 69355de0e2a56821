"""The poll loop: a 1 s APScheduler tick claims due watches with a lease, polls them with
bounded concurrency, and applies each outcome (state, history, outbox rows) in one transaction.

APScheduler only decides *when* the tick runs; which watches are due lives in the database,
so a restart simply picks up where the rows say.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import os
import random
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler

from bot import lifecycle, texts
from bot.dbwait import DatabaseWait
from bot.health import Heartbeat
from bot.metrics import Metrics
from bot.ratelimit import Buckets, SharedBuckets
from bot.vendors import JobSnapshot, ResultFile, TransientError, VendorError, lookup
from bot.vendors.base import AnyVendor, VendorClient, VendorSpec
from bot.vendors.boundary import VendorBoundary
from bot.vendors.pool import UnknownConnectionError, VendorPool
from storage import DatabaseUnavailable, PollResult, Store, Watch

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
# A poll running this long is hung on something (a vendor call's timeouts and a result
# download fit well within it); its lease stays renewed by the heartbeat meanwhile.
STUCK_POLL_S = 120.0
INLINE_UPLOAD_BYTES = 64 * 1024  # larger generated files go to the spool, not into the row
FILE_CHUNK = 1024 * 1024  # a result file kept in the database is stored in rows this big
# /healthz calls the poller stuck when no tick has finished for 30 ticks, and never sooner
# than 30 s. A tick claims for at most 0.9 of its period, and one claim may wait SQLite's
# 5 s busy timeout, so a working poller never comes near it; the floor keeps a faster tick
# (the tests') from calling a merely busy machine stuck (docs/operations.md#health).
STUCK_AFTER_TICKS = 30
STUCK_AFTER_MIN_S = 30.0
# `wake()` starts at most one early tick this often: a flood of vendor callbacks costs a
# few extra claims a second, never a claim per callback.
WAKE_GAP_S = 0.2


class Poller:
    def __init__(
        self,
        store: Store,
        vendors: VendorPool,
        policy: lifecycle.PollPolicy,
        *,
        clock: Callable[[], float],
        on_change: Callable[[], None] = lambda: None,
        metrics: Metrics | None = None,
        max_workers: int = 16,
        lease_seconds: float = 120.0,
        rand: Callable[[], float] = random.random,
        owner: str | None = None,
        buckets: Buckets | SharedBuckets | None = None,
        files_in_database: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        requests_answered: Callable[[], object] = lambda: None,
    ) -> None:
        """`owner` names this process's leases (its replica id); a lease lasts
        `lease_seconds` unless the replica's heartbeat renews it. `requests_answered`
        waits (briefly, bounded) while the server answers a burst of requests."""
        self.store = store
        self.vendors = vendors
        self.policy = policy
        self.clock = clock
        self.on_change = on_change
        self.metrics = metrics or Metrics()
        self.max_workers = max_workers
        self.lease_seconds = lease_seconds
        self.rand = rand
        self.owner = owner or f"poller-{secrets.token_hex(4)}"
        # Vendor budgets: per process unless shared through the database (replicas).
        self.buckets = buckets or Buckets(clock)
        # PostgreSQL replicas share no disk: result files then wait in the database, so
        # whichever replica delivers the row can upload them (docs/architecture.md#replicas).
        self.files_in_database = files_in_database
        self.boundary = VendorBoundary(vendors.ctx.redactor)
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="poll")
        self._monotonic = monotonic
        self.requests_answered = requests_answered
        stuck_after = max(STUCK_AFTER_TICKS * TICK_SECONDS, STUCK_AFTER_MIN_S)
        self.heartbeat = Heartbeat(stuck_after, monotonic)
        self._in_flight: dict[Future[None], float] = {}  # each claimed poll: when it was handed out
        self._lock = threading.Lock()
        self._room = threading.Event()  # set when half the in-flight window is free
        self._scheduler: BackgroundScheduler | None = None
        self._closed = False
        # While the database can't take writes no watch is claimed; outcomes of polls that
        # could not be saved leave their leases behind, given back once it can.
        self.database = DatabaseWait(store, "polls", on_back=self._after_outage)
        self._outcomes_lost = False
        self._ticking = False
        self._last_wake = float("-inf")

    # -- scheduling ------------------------------------------------------------------------

    def start(self, *, paused: bool = False) -> None:
        """Start ticking. `paused` builds the tick job without running it (tests)."""
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(
            self.tick,
            "interval",
            seconds=TICK_SECONDS,
            id="poll-tick",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=30,
            next_run_time=dt.datetime.now(dt.UTC),  # first tick now, not one interval later
        )
        self.heartbeat.beat()
        scheduler.start(paused=paused)
        self._scheduler = scheduler

    def problem(self) -> str | None:
        """For /healthz: None while ticks keep finishing and every claimed poll ends within
        its lease (a poll past it has its outcome dropped, and its thread is hung on
        something); else a short reason."""
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running:
            return "not running"
        if stuck := self.heartbeat.problem():
            return stuck
        with self._lock:
            oldest = min(self._in_flight.values(), default=None)
        if oldest is not None:
            age = self._monotonic() - oldest
            if age > STUCK_POLL_S:
                return f"a poll has run for {age:.0f} s (more than {STUCK_POLL_S:.0f} s)"
        return None

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop ticking, let in-flight polls finish (up to `timeout`), give back every lease
        this poller holds. Safe to call twice. A poll still running after `timeout` loses
        its lease here, so its late outcome is dropped and the next process polls again."""
        if self._closed:
            return
        self._closed = True
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)  # a tick in progress stops claiming (_closed)
            self._scheduler = None
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self.drain(timeout):
            self._executor.shutdown(wait=True)  # idle now: its threads end at once
        # Polls cancelled before they started still hold leases: free them so the next
        # process polls those watches at once instead of after the lease runs out.
        try:
            self.store.release_owner(self.owner)
        except DatabaseUnavailable as err:  # they run out on their own (lease_seconds)
            log.warning("poll leases not given back: %s", err.reason)

    def tick(self) -> int:
        """Claim what is due (up to free worker capacity) and start polling it; while due
        watches remain, keep the workers fed until the next tick would start. Returns how
        many watches were claimed; does not wait for the last polls. A tick that ends,
        with or without work, beats the heartbeat; one that raised does not."""
        self._ticking = True
        try:
            claimed = self._tick()
        finally:
            self._ticking = False
        self.heartbeat.beat()
        return claimed

    def wake(self) -> None:
        """Tick now rather than within the second: a vendor callback just made watches due
        (docs/architecture.md#vendor-callbacks). Skipped while a tick runs (it ends within
        the second anyway, and the scheduler would only refuse a second one) and more
        often than WAKE_GAP_S."""
        scheduler = self._scheduler
        if scheduler is None or self._closed or self._ticking:
            return
        now = self._monotonic()
        with self._lock:
            if now - self._last_wake < WAKE_GAP_S:
                return
            self._last_wake = now
        with contextlib.suppress(JobLookupError, SchedulerNotRunningError):
            scheduler.modify_job("poll-tick", next_run_time=dt.datetime.now(dt.UTC))

    def _tick(self) -> int:
        # A burst of requests being answered (commands, API calls) goes first: a poll is
        # due within seconds, an answer within milliseconds (docs/architecture.md#watch-api).
        self.requests_answered()
        until = time.monotonic() + TICK_SECONDS * 0.9
        total = 0
        if not self.database.ready():
            return total
        while True:
            with self._lock:
                capacity = self.max_workers * 2 - len(self._in_flight)
                self._room.clear()
            claimed = []
            if self._closed:
                return total
            if capacity > 0:
                # Half a tick early: a poll due just after this tick would otherwise wait.
                try:
                    claimed = self.store.claim_due(
                        self.clock(),
                        self.owner,
                        self.lease_seconds,
                        capacity,
                        early=TICK_SECONDS / 2,
                    )
                except DatabaseUnavailable as err:
                    self.database.failed(err.reason)
                    return total
            for watch in claimed:
                future = self._executor.submit(self.poll_one, watch)
                with self._lock:
                    self._in_flight[future] = self._monotonic()
                future.add_done_callback(self._finished)
            total += len(claimed)
            remaining = until - time.monotonic()
            if remaining <= 0 or (capacity > 0 and len(claimed) < capacity) or self._closed:
                return total
            # Claim again once half the window is free, not after each poll: each claim is a
            # write transaction and a wake-up of this thread (10k watches: 1.5 -> 1.2 ms of
            # CPU a poll once claims came in batches).
            self._room.wait(remaining)

    def _finished(self, future: Future[None]) -> None:
        with self._lock:
            self._in_flight.pop(future, None)
            if len(self._in_flight) <= self.max_workers:
                self._room.set()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait for in-flight polls (tests and shutdown). True when none is left."""
        with self._lock:
            pending = set(self._in_flight)
        return not wait(pending, timeout=timeout).not_done

    def run_once(self, timeout: float = 10.0) -> int:
        """Claim and finish one round of due polls (tests, bench)."""
        count = self.tick()
        self.drain(timeout)
        return count

    # -- one poll --------------------------------------------------------------------------

    def poll_one(self, watch: Watch) -> None:
        try:
            self._poll(watch)
        except DatabaseUnavailable as err:  # e.g. a request tally that couldn't be saved
            self._not_saved(watch, err)
        except Exception:  # a bug must not kill the worker or strand the lease
            ref = secrets.token_hex(2)
            log.exception("poll of watch %s failed unexpectedly (ref %s)", watch.id, ref)
            self._apply(watch, TransientError(texts.internal_check_error(ref)))

    def _poll(self, watch: Watch) -> None:
        spec = lookup(watch.vendor)
        now = self.clock()
        if spec is None:
            err = VendorError(f"vendor {watch.vendor!r} is not supported by this version")
            self._commit(watch, lifecycle.failed(watch, err, now), "unsupported")
            return
        if now >= watch.deadline:
            self._commit(watch, lifecycle.timed_out(watch, now), "timeout")
            return
        try:  # one bucket per vendor account, at the connection's configured rate
            bucket, rate = self.vendors.budget(spec, watch.connection)
        except UnknownConnectionError as err:
            self._apply(watch, VendorError(f"{err} in syncwatch's config"))
            return
        wait_s = self.buckets.take(bucket, rate)
        if wait_s > 0:  # over the vendor's budget: come back later, not a failure
            self._commit(watch, PollResult({"next_poll_at": now + wait_s}), "throttled")
            return
        try:
            vendor = self.vendors.get(spec, watch.connection)
        except UnknownConnectionError as err:
            self._apply(watch, VendorError(f"{err} in syncwatch's config"))
            return
        # Past here vendor text is redacted and bounded (bot/vendors/boundary.py): what is
        # decided, stored and posted, and the snapshot the vendor's results() gets, too.
        try:
            outcome: JobSnapshot | VendorError = self.boundary.snapshot(self._ask(vendor, watch))
        except VendorError as err:
            outcome = self.boundary.error(err)
        except RecursionError:
            outcome = self._too_deep(watch, spec)
        uploads: list[dict[str, Any]] = []
        if isinstance(outcome, JobSnapshot) and outcome.state.terminal:
            try:
                uploads = self._result_uploads(vendor, watch, outcome)
            except TransientError as err:
                # The files are the point of the watch: end it only once they are in hand.
                outcome = self.boundary.error(err)
            except RecursionError:
                outcome = self._too_deep(watch, spec)
            except OSError as err:  # disk full, spool unwritable: ours, and worth a retry
                log.error("watch %s: can't store its result files: %s", watch.id, err)
                reason = err.strerror or type(err).__name__
                outcome = TransientError(texts.cant_save_result_file(reason))
        triggered = watch.trigger_pending and isinstance(outcome, JobSnapshot)
        self._apply(
            watch,
            outcome,
            uploads=uploads,
            min_interval=_min_interval(vendor),
            extra={"trigger_pending": 0} if triggered else None,
        )

    def _too_deep(self, watch: Watch, spec: VendorSpec) -> TransientError:
        """A vendor reply nested deeper than Python can walk (decoding is caught in
        `common.json_object`; this is the rest, e.g. a decoded value encoded again): as
        unusable as one that doesn't parse, so a garbage reply, retried later like one."""
        log.warning("watch %s: %s sent a reply nested too deeply", watch.id, spec.key)
        return TransientError(texts.vendor_reply_too_deep(spec.label))

    def _ask(self, vendor: AnyVendor, watch: Watch) -> JobSnapshot:
        """One vendor call: a job poll, or for a sync its trigger (first) or its outcome.
        The client's `kind` is its spec's (VendorPool.get checks)."""
        if vendor.kind == "job":
            return vendor.fetch(watch.ref)
        if watch.trigger_pending:
            return vendor.trigger(watch.ref, self.vendors.sync_options(watch.ref))
        return vendor.fetch(watch.ref, JobSnapshot.from_json(watch.snapshot))

    def _result_uploads(
        self, vendor: VendorClient, watch: Watch, snap: JobSnapshot
    ) -> list[dict[str, Any]]:
        """Download (via the vendor) and describe the result files. TransientError
        propagates: the whole terminal poll is retried later."""
        try:
            files: list[ResultFile] = list(vendor.results(watch.ref, snap))
        except TransientError:
            raise
        except VendorError as err:
            message = self.boundary.error(err).message
            log.warning("watch %s: result files unavailable: %s", watch.id, message)
            return [{"note": texts.result_file_unavailable(message), "warning": True}]
        try:
            return [self._upload_payload(self.boundary.result(f)) for f in files]
        except BaseException:
            for rf in files:  # the poll is retried whole: leave no download behind
                if rf.path:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(rf.path)
            raise

    def _upload_payload(self, rf: ResultFile) -> dict[str, Any]:
        """Describe one result for the outbox: a note, a spool file, or small inline bytes
        (small files travel inside the row, so the row alone can be retried)."""
        if rf.note is not None:
            return {"note": rf.note}
        described = {"filename": rf.filename, "title": rf.title, "comment": rf.comment}
        content = rf.content or b""
        if self.files_in_database and (rf.path is not None or len(content) > INLINE_UPLOAD_BYTES):
            return {**described, "file_id": self._keep_in_database(rf)}
        if rf.path is not None:
            return {**described, "path": rf.path}
        if len(content) > INLINE_UPLOAD_BYTES:
            fd, path = tempfile.mkstemp(dir=self.vendors.ctx.spool_dir, prefix="result-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
            return {**described, "path": path}
        return {**described, "content_b64": base64.b64encode(content).decode("ascii")}

    def _keep_in_database(self, rf: ResultFile) -> str:
        """Move a result's bytes into the database (the spool file goes)."""
        if rf.path is None:
            return self.store.put_file(_pieces(rf.content or b""), self.clock())
        with open(rf.path, "rb") as fh:
            file_id = self.store.put_file(iter(lambda: fh.read(FILE_CHUNK), b""), self.clock())
        with contextlib.suppress(FileNotFoundError):
            os.remove(rf.path)
        return file_id

    def _apply(
        self,
        watch: Watch,
        outcome: JobSnapshot | VendorError,
        *,
        uploads: list[dict[str, Any]] | None = None,
        min_interval: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        spec = lookup(watch.vendor)
        now = self.clock()
        if spec is None:
            result = lifecycle.failed(watch, VendorError(str(outcome)), now)
        else:
            result = lifecycle.decide(watch, outcome, spec, now, self.rand, uploads or ())
        next_at = result.changes.get("next_poll_at")
        if min_interval and next_at is not None and next_at < now + min_interval:
            # A connection with a small budget (Zuora API Sandbox) never polls faster.
            result = replace(result, changes={**result.changes, "next_poll_at": now + min_interval})
        if extra:
            result = replace(result, changes={**result.changes, **extra})
        kind = "ok" if isinstance(outcome, JobSnapshot) else type(outcome).__name__
        self._commit(watch, result, kind)

    def _not_saved(self, watch: Watch, err: DatabaseUnavailable) -> None:
        self.database.failed(err.reason)
        self._outcomes_lost = True
        log.warning(
            "watch %s: poll outcome not saved (%s); polled again once the database is back",
            watch.id,
            err.reason,
            extra={"watch_id": watch.id, "vendor": watch.vendor},
        )

    def _after_outage(self) -> None:
        """The database is back: give back the leases of polls whose outcome was lost, so
        those watches are polled now rather than when their leases run out."""
        if not self._outcomes_lost:
            return
        self._outcomes_lost = False
        try:
            self.store.release_owner(self.owner)
        except DatabaseUnavailable as err:
            self.database.failed(err.reason)

    def _commit(self, watch: Watch, result: PollResult, outcome: str | None) -> None:
        try:
            applied = self.store.apply_poll(watch.id, self.owner, result, self.clock())
        except DatabaseUnavailable as err:
            self._not_saved(watch, err)
            _discard_files(result, self.store)
            return
        if outcome is not None:
            self.metrics.count_poll(watch.vendor, outcome)
        fields = {"watch_id": watch.id, "vendor": watch.vendor, "outcome": outcome}
        if applied and result.transition is not None:
            log.info(
                "watch %s (%s %s): %s -> %s",
                watch.id,
                watch.vendor,
                watch.ref,
                result.transition.from_state,
                result.transition.to_state,
                extra=fields,
            )
        elif applied and result.changes.get("last_error"):
            log.info(
                "watch %s (%s): check failed (%s×): %s",
                watch.id,
                watch.vendor,
                result.changes.get("attempts"),
                result.changes["last_error"],
                extra=fields,
            )
        if applied and (result.transition is not None or result.update_parent or result.uploads):
            self.on_change()
        if not applied:
            log.info("watch %s changed while it was being polled; outcome dropped", watch.id)
            _discard_files(result, self.store)


def _discard_files(result: PollResult, store: Store) -> None:
    """Result files downloaded for an outcome that was not saved: the next poll downloads
    them again, so don't leave these behind."""
    for payload in result.uploads:
        if payload.get("path"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(payload["path"])
        if payload.get("file_id"):
            with contextlib.suppress(Exception):  # else swept at a later start
                store.delete_file(payload["file_id"])


def _min_interval(vendor: VendorClient) -> float | None:
    return vendor.min_interval


def _pieces(content: bytes) -> Iterator[bytes]:
    for start in range(0, len(content), FILE_CHUNK):
        yield content[start : start + FILE_CHUNK]
