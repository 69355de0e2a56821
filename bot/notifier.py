"""Delivers outbox rows to Slack in order (parent post/edit, thread replies, files); the only
code that writes to channels. A row is marked sent only after Slack confirms it."""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot import blocks, texts
from bot.dbwait import DatabaseWait
from bot.health import Heartbeat, slack_token_rejected
from bot.metrics import Metrics
from bot.ratelimit import Pace, RateLedger, SharedPace
from bot.slack import UPLOAD_TIMEOUT_S, UploadSource, build_upload_client
from storage import DatabaseUnavailable, Digest, OutboxKind, OutboxRow, Store

log = logging.getLogger(__name__)

CHANNEL_GONE = {"not_in_channel", "channel_not_found", "is_archived"}
MESSAGE_GONE = {"message_not_found"}
NOT_EDITABLE = {"cant_update_message", "edit_window_closed"}
OUR_BUG = {"invalid_blocks", "msg_too_long", "msg_blocks_too_long", "invalid_arguments"}
CREDENTIALS = {"invalid_auth", "token_revoked", "account_inactive", "not_authed"}
FILE_POLICY = {
    "file_uploads_disabled",
    "file_upload_size_restricted",
    "file_type_not_allowed",
    "storage_limit_reached",
}
METADATA_EVENT = "syncwatch_outbox"  # message metadata that names the outbox row it came from
MAX_ATTEMPTS = 25  # about two days of capped backoff; then the row is kept as dead
# How far a look-up before a re-post reads: pages of history after the post's time. Slack
# may answer with far fewer messages than asked (15 a page for apps outside its
# Marketplace, docs/slack.md#posting-exactly-once), so a busy channel needs several pages.
LOOKUP_PAGES = 40

# Our own pace for Slack writes, under Slack's limits so that the notifier doesn't provoke
# 429s (docs/slack.md#rate-limits): a row that must wait is postponed to its turn instead of being
# sent to be refused. Each pace allows its burst at once, then refills so that no 60 s window
# holds more than its per-minute figure.
# chat.postMessage: about one post a second per channel, short bursts allowed. A file shared
# into a channel is a message there too, so it waits for the same turn. A burst of 4 lets a
# watch caught up in one round (its parent and the queued, running and done replies) post
# at once.
CHANNEL_POSTS_PER_MIN = 50
CHANNEL_BURST = 4
# chat.update: Tier 3 (50+ a minute) per workspace, and one process serves one workspace.
UPDATES_PER_MIN = 50
UPDATE_BURST = 5
WORKSPACE = "workspace"  # the update pace's only key
# /healthz calls the notifier stuck when it showed no progress for this long. It beats
# after every round (at least one a second when idle), every row, every page of a look-up
# and every chunk of an upload; the longest a single step may wait is one read or write of
# an upload (UPLOAD_TIMEOUT_S; Web API calls time out after 15 s), so a working notifier
# never comes near it (docs/operations.md#health).
STUCK_AFTER_S = UPLOAD_TIMEOUT_S + 30


class Notifier:
    def __init__(
        self,
        store: Store,
        client: WebClient,
        *,
        clock: Callable[[], float],
        metrics: Metrics | None = None,
        workers: int = 4,
        paced: bool = True,
        owner: str | None = None,
        claim_seconds: float = 120.0,
        shared: RateLedger | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        requests_answered: Callable[[], object] = lambda: None,
    ) -> None:
        """`paced=False` only for a Slack with no limits (the demo's local stand-in).
        `owner` names this process's claims on watches' deliveries (its replica id); a
        claim lasts `claim_seconds` unless the replica's heartbeat renews it. With `shared`
        (the store), the paces live in the database and hold for every replica together.
        `requests_answered` waits (briefly, bounded) while the server answers a burst of
        requests, so a round woken by a burst posts after the burst is answered."""
        self.store = store
        self.client = client
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.credentials_ok = True
        self.owner = owner or f"notifier-{secrets.token_hex(4)}"
        self.claim_seconds = claim_seconds
        self.credentials_error = ""  # Slack's code when it last rejected the bot token
        self.heartbeat = Heartbeat(STUCK_AFTER_S, monotonic)
        self.requests_answered = requests_answered
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="notify")
        self._upload_http = build_upload_client()
        # Striped locks: one watch is never delivered by two threads at once.
        self._locks = [threading.Lock() for _ in range(64)]
        self._channel_pace: Pace | SharedPace | None = None
        self._update_pace: Pace | SharedPace | None = None
        if paced and shared is not None:
            self._channel_pace = SharedPace(
                shared, "slack-post", CHANNEL_POSTS_PER_MIN, CHANNEL_BURST, clock
            )
            self._update_pace = SharedPace(
                shared, "slack-update", UPDATES_PER_MIN, UPDATE_BURST, clock
            )
        elif paced:
            self._channel_pace = Pace(CHANNEL_POSTS_PER_MIN, CHANNEL_BURST, clock)
            self._update_pace = Pace(UPDATES_PER_MIN, UPDATE_BURST, clock)
        # While the database can't take writes nothing is sent: a post whose row can't be
        # marked would be posted again. Rows wait in the outbox, in flight or pending.
        self.database = DatabaseWait(store, "deliveries")

    # -- loop ------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self.heartbeat.beat()
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()

    def problem(self) -> str | None:
        """For /healthz: None while the delivery loop runs and makes progress."""
        if self._thread is None or not self._thread.is_alive():
            return "not running"
        return self.heartbeat.problem()

    def slack_problem(self) -> str | None:
        """For /healthz: why Slack refuses our writes, if it does (the bot token)."""
        if self.credentials_ok:
            return None
        return slack_token_rejected(self.credentials_error or "unknown error")

    def shutdown(self, timeout: float = 20.0) -> None:
        """Stop delivering; a round in progress finishes (up to `timeout`). A row cut short
        stays in the outbox, marked in flight, and is looked up before it is sent again."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._thread is None or not self._thread.is_alive():
            self._upload_http.close()  # else the round still running may be uploading

    def _run(self) -> None:
        while not self._stop.is_set():
            # New work most often comes from a request that is still being answered, with
            # others behind it: the people (and scripts) waiting on those answers go first,
            # the posts follow within QUIET_WAIT_S (docs/architecture.md#watch-api).
            self.requests_answered()
            delay = self._round()
            self._wake.wait(delay)
            self._wake.clear()

    def _round(self) -> float:
        """One delivery round; returns how long to wait before the next one. Nothing that
        goes wrong here may end the loop: an exception would leave the outbox unsent."""
        if not self.database.ready():
            self.heartbeat.beat()  # waiting for the database is not being stuck
            return self.database.seconds_left()
        try:
            self.deliver_due()
            next_at = self.store.next_outbox_at(self.clock(), self.owner)
        except DatabaseUnavailable as err:  # rows stay as they are: retried once it's back
            self.database.failed(err.reason)
            self.heartbeat.beat()
            return self.database.seconds_left()
        except Exception:
            log.exception("outbox delivery round failed")
            return 1.0
        self.heartbeat.beat()  # a whole round, with or without rows
        return 1.0 if next_at is None else min(1.0, max(0.0, next_at - self.clock()))

    def deliver_due(self) -> int:
        """Send every row that is due now, one thread per watch at a time. Returns rows tried.
        Each watch is claimed first: with several replicas, one writes a thread at a time."""
        rows = self.store.claim_outbox(self.clock(), self.owner, self.claim_seconds)
        by_watch: dict[str, list[OutboxRow]] = defaultdict(list)
        for row in rows:
            by_watch[row.watch_id].append(row)
        futures = [self._pool.submit(self._deliver_watch, rs) for rs in by_watch.values()]
        for future in futures:
            future.result()
        return len(rows) + self._deliver_digests()

    # -- digests of quiet scheduled runs (docs/architecture.md#alert-digest) -------------------

    def _deliver_digests(self) -> int:
        """Post the digests that are due, each exactly once: claimed by one replica, marked
        in flight before the post, and looked up by its metadata before a re-post."""
        digests = self.store.claim_digests(self.clock(), self.owner, self.claim_seconds)
        for digest in digests:
            self._deliver_digest(digest)
            self.heartbeat.beat()
        return len(digests)

    def _deliver_digest(self, digest: Digest) -> None:
        key = digest.key
        mark = _InFlight(
            f"digest {key}",
            digest.in_flight_at,
            lambda now: self.store.digest_in_flight(key, now),
            lambda: self.store.digest_clear_in_flight(key),
        )
        try:
            _, ts, posted = self._post_marked(
                mark, 0, {"digest": key}, digest.channel_id, None, blocks.render_digest(digest)
            )
            self.store.digest_sent(key, ts, self.clock())
            if posted:
                self.metrics.slack_calls.labels("digest", "sent").inc()
        except SlackApiError as err:
            code = str(err.response.get("error", "")) if err.response is not None else ""
            self.metrics.slack_calls.labels("digest", code or "error").inc()
            if code in CHANNEL_GONE or digest.attempts + 1 >= MAX_ATTEMPTS:
                log.warning("digest %s given up: %s", digest.key, code)
                self.store.digest_dead(digest.key, code or "gave up")
            elif _rate_limited(err):
                self.store.digest_retry(
                    digest.key, self.clock() + _retry_after(err), code, counts=False
                )
            else:
                delay = min(300.0, 2.0 ** (digest.attempts + 1))
                self.store.digest_retry(digest.key, self.clock() + delay, code or "error")
        except (SlackClientError, OSError) as err:
            delay = min(300.0, 2.0 ** (digest.attempts + 1))
            self.store.digest_retry(digest.key, self.clock() + delay, f"{type(err).__name__}")

    def _deliver_watch(self, rows: list[OutboxRow]) -> None:
        # Two queues per watch, as in Store.due_outbox: edits of the top message, and the
        # thread (replies, files). A row that must wait holds back the rest of its own
        # queue; a held-back edit holds back the thread only while there is no top message.
        # While the channel's quiet hours are on, thread rows are held instead (they stay in
        # the outbox); the first thread row delivered after them releases them as one digest
        # (docs/architecture.md#channel-settings).
        held: set[str] = set()
        watch_id = rows[0].watch_id
        try:
            with self._locks[hash(watch_id) % len(self._locks)]:
                quiet = _Quiet(self, watch_id)
                for row in rows:
                    queue = "parent" if row.kind == OutboxKind.PARENT else "thread"
                    if queue in held or row.id in quiet.released:
                        continue
                    if queue == "thread":
                        until = quiet.until()
                        if until is not None:
                            self.store.hold_outbox(row.id, until)
                            continue
                        if not quiet.release():
                            held.add(queue)
                            continue
                        if row.id in quiet.released:
                            continue
                    delivered = self._deliver(row)
                    self.heartbeat.beat()  # progress within a long round
                    if not delivered:
                        held.add(queue)
                        if queue == "parent" and self.store.parent_ref(watch_id) is None:
                            held.add("thread")
        finally:
            self.store.release_outbox(self.owner, watch_id)

    def _release_held(self, watch_id: str) -> tuple[bool, set[int]]:
        """Deliver what quiet hours held for a watch: its replies and notes as one digest
        reply, then its files. Returns (whether all went, the rows that went)."""
        rows = self.store.held_rows(watch_id)
        if not rows:
            return True, set()
        first = rows[0]
        # A held row waits for exactly its window's end; any other time is a failed or paced
        # earlier attempt at the digest, whose wait holds the thread back.
        if first.next_attempt_at != first.held_until and self.clock() < first.next_attempt_at:
            return False, set()
        done: set[int] = set()
        lines = [r for r in rows if r.kind == OutboxKind.REPLY or "note" in r.payload]
        if lines:
            if not self._deliver(lines[0], lambda: self._post_digest(watch_id, lines)):
                return False, done
            done.update(r.id for r in lines)
        for row in rows:
            if row.id in done:
                continue
            if not self._deliver(row):
                return False, done
            done.add(row.id)
        return True, done

    def _post_digest(self, watch_id: str, rows: list[OutboxRow]) -> None:
        """One reply for the held rows, posted exactly once: it carries the first row's
        marker (found by the look-up after a crash) and every row is marked sent together."""
        watch = self.store.get_watch(watch_id)
        if watch is None:
            for row in rows:
                self.store.mark_dead(row.id, "watch missing")
            return
        channel, parent_ts = self._parent_ts(watch_id)
        settings = self.store.channel_settings(watch.channel_id)
        lines = []
        for row in rows:
            if row.kind == OutboxKind.REPLY:
                transition = self.store.get_transition(row.transition_id or 0)
                if transition is not None:
                    reply = blocks.render_reply(watch, transition, settings)
                    lines.append(reply.blocks[0]["text"]["text"] if reply.blocks else reply.text)
            else:
                icon = ":warning:" if row.payload.get("warning") else ":information_source:"
                lines.append(f"{icon} {blocks.esc(str(row.payload['note']))}")
        message = blocks.render_quiet_digest(lines, settings.quiet)
        marker = {"outbox_id": rows[0].id, "kind": "digest"}
        _, ts = self._post_once(rows[0].id, marker, channel, parent_ts, message)
        self.store.mark_rows_sent([r.id for r in rows], self.clock(), ts)

    # -- one row ---------------------------------------------------------------------------

    def _deliver(self, row: OutboxRow, send: Callable[[], None] | None = None) -> bool:
        """Deliver one row (or do `send` on its behalf: a digest of held rows). Returns False
        when it was deferred (later rows must wait)."""
        try:
            if send is not None:
                send()
            elif row.kind == OutboxKind.PARENT:
                self._sync_parent(row)
            elif row.kind == OutboxKind.REPLY:
                self._send_reply(row)
            elif row.kind == OutboxKind.UPLOAD:
                self._upload(row)
            else:
                self.store.mark_dead(row.id, f"unknown outbox kind {row.kind!r}")
            self.metrics.slack_calls.labels(row.kind, "sent").inc()
            self.credentials_ok = True
            self.credentials_error = ""
            return True
        except _Paced as paced:
            # Our own pace, not a failure: no attempt counted, no warning; the row's turn
            # comes at `until`, and the watch's later rows wait behind it.
            self.store.postpone(row.id, paced.until)
            self.metrics.slack_calls.labels(row.kind, "paced").inc()
            return False
        except _NoParentYet:
            # Normally the parent row is just ahead; if it died, queue a fresh one.
            self.store.ensure_parent_row(row.watch_id, self.clock())
            self.store.defer(row.id, self.clock() + 5, "waiting for the parent message")
            return False
        except SlackApiError as err:
            return self._on_slack_error(row, err)
        except (SlackClientError, OSError) as err:  # connection failures after retries
            self._retry_later(row, f"{type(err).__name__}: {err}")
            return False

    def _on_slack_error(self, row: OutboxRow, err: SlackApiError) -> bool:
        code = str(err.response.get("error", "")) if err.response is not None else ""
        status = getattr(err.response, "status_code", 0)
        self.metrics.slack_calls.labels(row.kind, code or f"http_{status}").inc()
        if code in CHANNEL_GONE:
            log.warning("watch %s paused: Slack says %s", row.watch_id, code)
            self.store.pause_watch(row.watch_id, texts.pause_reason(code), self.clock())
            return False
        if code in CREDENTIALS:
            self.credentials_error = code
            self.credentials_ok = False
            log.error("Slack rejected the bot token (%s); deliveries wait", code)
            self.store.defer(row.id, self.clock() + 60, code)
            return False
        if _rate_limited(err):  # Slack did nothing: wait, without counting an attempt
            self.store.postpone(row.id, self.clock() + _retry_after(err))
            return False
        self._retry_later(row, code or f"HTTP {status}")
        return False

    def _retry_later(self, row: OutboxRow, error: str) -> None:
        attempts = row.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            log.error("outbox row %s for watch %s gave up: %s", row.id, row.watch_id, error)
            self.store.mark_dead(row.id, error)
            return
        delay = min(300.0, 2.0**attempts)
        log.warning(
            "outbox row %s (watch %s) retry in %.0fs: %s", row.id, row.watch_id, delay, error
        )
        self.store.defer(row.id, self.clock() + delay, error[:300])

    # -- kinds -----------------------------------------------------------------------------

    def _sync_parent(self, row: OutboxRow) -> None:
        """Bring the parent up to date with the watch as it is now (rows coalesce)."""
        upto, watch = self.store.pending_parent_upto(row.watch_id)
        if upto < row.id or watch is None:
            return  # an earlier render already covered this row
        message = blocks.render_parent(watch, self.clock(), self.store.run_of(watch.id))
        ref = self.store.parent_ref(watch.id)
        if ref is not None and not ref.editable:  # Slack won't take edits: thread only
            self.store.mark_parent_rows_sent(watch.id, upto, self.clock())
            return
        if ref is not None:
            try:
                with self._turn(self._update_pace, WORKSPACE, row.id):
                    self._call_with_fallback(
                        self.client.chat_update,
                        message,
                        channel=ref.channel_id,
                        ts=ref.ts,
                        parse="none",
                    )
                self.store.mark_parent_rows_sent(watch.id, upto, self.clock())
                return
            except SlackApiError as err:
                code = err.response.get("error", "")
                if code in MESSAGE_GONE:  # someone deleted it: start a new parent
                    self.store.forget_parent(watch.id)
                elif code in NOT_EDITABLE:  # keep going in the thread only
                    log.warning("watch %s: parent can no longer be edited (%s)", watch.id, code)
                    self.store.parent_not_editable(watch.id)
                    self.store.mark_parent_rows_sent(watch.id, upto, self.clock())
                    return
                else:
                    raise
        channel, ts = self._post_once(
            row.id,
            {"watch_id": watch.id, "kind": OutboxKind.PARENT.value},
            watch.channel_id,
            None,
            message,
        )
        self.store.parent_posted(watch.id, channel, ts, upto, self.clock())

    @contextlib.contextmanager
    def _turn(self, pace: Pace | SharedPace | None, key: str, row_id: int) -> Iterator[None]:
        """Wrap one Slack write: wait for this row's turn under `pace` (raises _Paced when it
        isn't yet: nothing was sent), and after a 429 hold the key back for Retry-After so
        the key's other rows are paced instead of refused one by one. No pace: just go."""
        until = pace.take(key, row_id) if pace is not None else None
        if until is not None:
            raise _Paced(until)
        try:
            yield
        except SlackApiError as err:
            if pace is not None and _rate_limited(err):
                pace.hold(key, self.clock() + _retry_after(err))
            raise

    def _call_with_fallback(
        self, method: Callable[..., Any], message: blocks.Message, **kwargs: Any
    ) -> Any:
        """Call with blocks; if Slack calls them invalid (our bug), send plain text instead
        of leaving the channel without the news."""
        try:
            return method(text=message.text, blocks=message.blocks, **kwargs)
        except SlackApiError as err:
            if err.response.get("error") not in OUR_BUG:
                raise
            log.error("Slack refused our blocks (%s); sending text only", err.response["error"])
            return method(text=message.text[:3000], blocks=[], **kwargs)

    def _parent_ts(self, watch_id: str) -> tuple[str, str]:
        ref = self.store.parent_ref(watch_id)
        if ref is None:
            raise _NoParentYet()
        return ref.channel_id, ref.ts

    def _send_reply(self, row: OutboxRow) -> None:
        watch = self.store.get_watch(row.watch_id)
        transition = self.store.get_transition(row.transition_id or 0)
        if watch is None or transition is None:
            self.store.mark_dead(row.id, "watch or transition missing")
            return
        channel, parent_ts = self._parent_ts(watch.id)
        # The channel's settings as they are at delivery (docs/architecture.md#channel-settings).
        settings = self.store.channel_settings(watch.channel_id)
        message = blocks.render_reply(watch, transition, settings)
        broadcast = settings.broadcast_failures and blocks.is_failure(transition)
        _, ts = self._post_once(
            row.id, {"outbox_id": row.id}, channel, parent_ts, message, broadcast=broadcast
        )
        self.store.mark_sent(row.id, self.clock(), slack_ref=ts)

    def _upload(self, row: OutboxRow) -> None:
        """Post a result file into the thread, exactly once even across a crash: the Slack
        file id is stored before the bytes go, and a row that has one is first looked up
        in the thread (a crash may have fallen after Slack shared it)."""
        channel, parent_ts = self._parent_ts(row.watch_id)
        payload = row.payload
        if "note" in payload:
            icon = ":warning:" if payload.get("warning") else ":information_source:"
            self._post_thread_note(row, f"{icon} {blocks.esc(payload['note'])}")
            self.store.mark_sent(row.id, self.clock())
            return
        source = UploadSource.from_payload(payload, self.store)
        name = payload.get("filename", "result")
        if source is None:
            self._post_thread_note(
                row,
                texts.result_file_lost(blocks.esc(name)),
            )
            self.store.mark_sent(row.id, self.clock())
            return
        if source.size == 0:  # Slack refuses zero-length uploads: say so instead
            self._post_thread_note(row, texts.result_file_empty(blocks.esc(name)))
            self.store.mark_sent(row.id, self.clock())
            source.discard()
            return
        earlier = self.store.upload_file_id(row.id)
        if earlier and self._shared_in_thread(channel, parent_ts, earlier):
            self.store.mark_sent(row.id, self.clock(), slack_ref=earlier)
            source.discard()
            return
        try:
            with self._turn(self._channel_pace, channel, row.id):
                file_id = self._send_file(row, channel, parent_ts, payload, source)
        except SlackApiError as err:
            code = str(err.response.get("error", ""))
            if code not in FILE_POLICY:
                raise
            # Permanent for this workspace: tell the thread instead of retrying forever. The
            # refused file posted nothing, so the note goes on its turn (were it paced, the
            # row would come back and upload again first).
            self._post_thread_note(
                row,
                texts.result_file_refused(blocks.esc(code)),
                paced=False,
            )
            self.store.mark_sent(row.id, self.clock(), slack_ref=code)
            source.discard()
            return
        self.store.mark_sent(row.id, self.clock(), slack_ref=file_id)
        source.discard()

    def _send_file(
        self,
        row: OutboxRow,
        channel: str,
        parent_ts: str,
        payload: dict[str, Any],
        source: UploadSource,
    ) -> str:
        """Slack's three upload steps, done here rather than by files_upload_v2 so the file
        id can be recorded before the upload and the bytes stream from disk."""
        filename = payload["filename"]
        step = self.client.files_getUploadURLExternal(filename=filename, length=source.size)
        file_id = str(step["file_id"])
        self.store.note_upload(row.id, file_id, self.clock())
        source.post_to(self._upload_http, str(step["upload_url"]), progress=self.heartbeat.beat)
        self.client.files_completeUploadExternal(
            files=[{"id": file_id, "title": payload.get("title") or filename}],
            channel_id=channel,
            thread_ts=parent_ts,
            initial_comment=blocks.esc(payload.get("comment", "")) or None,
        )
        return file_id

    def _shared_in_thread(self, channel: str, parent_ts: str, file_id: str) -> bool:
        """Did an earlier attempt share this file into the thread? (Only asked after an
        interrupted upload: conversations.replies is rate-limited hard.)"""
        args = {"channel": channel, "ts": parent_ts, "limit": 200}
        for message in self._history(self.client.conversations_replies, args):
            if any(f.get("id") == file_id for f in message.get("files") or []):
                return True
        return False

    def _post_thread_note(self, row: OutboxRow, text: str, *, paced: bool = True) -> None:
        channel, parent_ts = self._parent_ts(row.watch_id)
        note = blocks.Message(text)
        marker = {"outbox_id": row.id, "kind": "note"}
        self._post_once(row.id, marker, channel, parent_ts, note, paced=paced)

    def _post_once(
        self,
        row_id: int,
        marker: dict[str, Any],
        channel: str,
        thread_ts: str | None,
        message: blocks.Message,
        *,
        paced: bool = True,
        broadcast: bool = False,
    ) -> tuple[str, str]:
        """chat.postMessage exactly once. The message carries `marker` in its metadata; a
        row already in flight (a crash, a timeout, a 5xx: Slack may have posted it) is first
        looked up by that marker, and only a post actually sent waits for the channel's
        pace (`paced`). A `broadcast` reply is also sent to the channel; it stays in the
        thread too, where the look-up finds it. Returns (channel, ts)."""
        mark = _InFlight(
            f"outbox row {row_id}",
            self.store.in_flight_since(row_id),
            lambda now: self.store.mark_in_flight(row_id, now),
            lambda: self.store.clear_in_flight(row_id),
        )
        channel, ts, _ = self._post_marked(
            mark, row_id, marker, channel, thread_ts, message, paced=paced, broadcast=broadcast
        )
        return channel, ts

    def _post_marked(
        self,
        mark: _InFlight,
        turn: int,
        marker: dict[str, Any],
        channel: str,
        thread_ts: str | None,
        message: blocks.Message,
        *,
        paced: bool = False,
        broadcast: bool = False,
    ) -> tuple[str, str, bool]:
        """`_post_once` for anything that records its own in-flight mark (an outbox row, a
        digest). Returns (channel, ts, whether this call posted it)."""
        extra = {"reply_broadcast": True} if broadcast and thread_ts else {}
        if mark.since is not None:
            found = self._find_posted(channel, thread_ts, marker, mark.since)
            if found is not None:
                log.info("%s was already in Slack (%s); not posting again", mark.name, found)
                return channel, found, False
        with self._turn(self._channel_pace if paced else None, channel, turn):
            mark.mark(self.clock())
            try:
                response = self._call_with_fallback(
                    self.client.chat_postMessage,
                    message,
                    channel=channel,
                    thread_ts=thread_ts,
                    metadata={"event_type": METADATA_EVENT, "event_payload": marker},
                    unfurl_links=False,
                    unfurl_media=False,
                    **extra,
                )
            except SlackApiError as err:
                if getattr(err.response, "status_code", 200) < 500:
                    mark.clear()  # Slack answered: it posted nothing
                raise
        return str(response.get("channel") or channel), str(response["ts"]), True

    def _find_posted(
        self, channel: str, thread_ts: str | None, marker: dict[str, Any], since: float
    ) -> str | None:
        """The ts of our message tagged `marker`, posted since `since`, if Slack has it.
        Reads history (Tier 1 for most apps), so it runs only for rows found in flight."""
        args: dict[str, Any] = {
            "channel": channel,
            "oldest": f"{since - 60:.6f}",
            "include_all_metadata": True,
            "limit": 200,
        }
        if thread_ts is None:
            messages = self._history(self.client.conversations_history, args)
        else:
            messages = self._history(self.client.conversations_replies, {**args, "ts": thread_ts})
        for message in messages:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == METADATA_EVENT and all(
                str(payload.get(k)) == str(v) for k, v in marker.items()
            ):
                return str(message["ts"])
        return None

    def _history(
        self, method: Callable[..., Any], args: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """The messages of a history or thread look-up, following `next_cursor` for up to
        LOOKUP_PAGES pages. A 429 or 5xx propagates: we can't tell *yet*, so the row waits
        and asks again rather than risk a second post. Any other refusal (no history
        scope?) means we can never tell: then posting again beats losing the message."""
        cursor = None
        for _ in range(LOOKUP_PAGES):
            try:
                page = method(**args, cursor=cursor) if cursor else method(**args)
            except SlackApiError as err:
                if _rate_limited(err) or getattr(err.response, "status_code", 0) >= 500:
                    raise
                log.warning("can't look for an earlier post: %s", err.response.get("error"))
                return
            self.heartbeat.beat()  # a look-up may read many pages
            yield from page.get("messages") or []
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return
        log.warning("look-up stopped after %d pages of history; sending again", LOOKUP_PAGES)


@dataclass(frozen=True)
class _InFlight:
    """Where a post records that it may already be in Slack: set before the call, cleared
    when Slack answers that it posted nothing, and left set by a crash or a 5xx so that the
    next attempt looks the message up first (docs/architecture.md#delivery-exactly-once)."""

    name: str  # for the log
    since: float | None  # an earlier attempt's mark
    mark: Callable[[float], None]
    clear: Callable[[], None]


class _Quiet:
    """One watch's quiet hours within one delivery round: whether its thread rows are held
    now (read once, lazily), and the held rows released this round."""

    def __init__(self, notifier: Notifier, watch_id: str) -> None:
        self.notifier = notifier
        self.watch_id = watch_id
        self.released: set[int] = set()
        self._until: float | None = None
        self._read = False
        self._done = False

    def until(self) -> float | None:
        """When the quiet window holding this watch's thread ends; None when not quiet.
        Once a watch has failed, nothing of its thread is held any more."""
        if not self._read:
            self._read = True
            self._until = self._compute()
        return self._until

    def _compute(self) -> float | None:
        store = self.notifier.store
        watch = store.get_watch(self.watch_id)
        if watch is None:
            return None
        quiet = store.channel_settings(watch.channel_id).quiet
        until = quiet.until(self.notifier.clock()) if quiet is not None else None
        if until is None:
            return None
        if any(blocks.is_failure(t) for t in store.transitions(self.watch_id)):
            return None
        return until

    def release(self) -> bool:
        """Release the held rows once per round, before the first thread row that goes."""
        if self._done:
            return True
        ok, sent = self.notifier._release_held(self.watch_id)
        self.released |= sent
        self._done = ok
        return ok


class _NoParentYet(Exception):
    """A reply or file whose parent message has not been posted yet."""


class _Paced(Exception):
    """Our own pace says not yet: nothing was sent; the row's turn comes at `until`."""

    def __init__(self, until: float) -> None:
        super().__init__(until)
        self.until = until


def _rate_limited(err: SlackApiError) -> bool:
    if err.response is None:
        return False
    return err.response.get("error") == "ratelimited" or err.response.status_code == 429


def _retry_after(err: SlackApiError) -> float:
    headers = getattr(err.response, "headers", {}) or {}
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(1.0, float(value[0] if isinstance(value, list) else value))
            except ValueError:
                break
    return 30.0
