"""The watch API's use cases: start, read and stop a watch for a token, and a vendor
callback (docs/architecture.md#watch-api). No HTTP here: each answers with a status and a
JSON-able body, or raises ApiError with the status, a stable code and a message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot import blocks, grammar, lifecycle, texts
from bot.api import hooks
from bot.config import SLACK_CHANNEL, SLACK_USER, Settings
from bot.service import watch_facts
from bot.vendors import SPECS, JobSnapshot, RefError, VendorSpec, lookup
from storage import (
    ACTIVE,
    DEFAULT_CONNECTION,
    PAUSED,
    ActorKind,
    ApiToken,
    AuditEntry,
    DatabaseUnavailable,
    DuplicateWatchError,
    Store,
    Via,
    Watch,
    token_actor,
)

log = logging.getLogger(__name__)

FIELDS = ("vendor", "ref", "channel", "connection", "every", "requested_by")
MAX_REQUESTED_BY = 80
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
IDEMPOTENCY_KEEP_S = 86400.0  # a retry a day later is a new request
IDEMPOTENCY_WAIT_S = 5.0  # a twin request still being answered: wait this long for it
QUOTA_RETRY_S = 60


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return (
        dt.datetime.fromtimestamp(epoch, dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


class WatchApi:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Callable[[], float],
        policy: lifecycle.PollPolicy,
        membership: Callable[[str], str | None],
        on_change: Callable[[], None] = lambda: None,
        on_due: Callable[[], None] = lambda: None,
    ) -> None:
        """`membership(channel)` is None when the bot may post there, else a code
        (`not_in_channel`, `channel_archived`, …); it raises when Slack can't be asked.
        `on_due` wakes the poller after a callback made watches due."""
        self.store = store
        self.settings = settings
        self.clock = clock
        self.policy = policy
        self.membership = membership
        self.on_change = on_change
        self.on_due = on_due

    # -- the watch object -------------------------------------------------------------------

    def view(self, watch: Watch, *, fresh: bool = False) -> dict[str, Any]:
        """The watch as the API shows it (docs/architecture.md#watch-api). A `fresh` watch,
        created by this request, has no parent message or file yet: nothing to look up."""
        snap = JobSnapshot.from_json(watch.snapshot)
        parent = None if fresh else self.store.parent_ref(watch.id)
        return {
            "id": watch.id,
            "vendor": watch.vendor,
            "ref": watch.ref,
            "channel": watch.channel_id,
            "status": str(watch.status),
            "state": watch.state,
            "vendor_status": watch.raw_status,
            "progress": {str(k): str(v) for k, v in (snap.progress if snap else ())},
            "started_at": _iso(watch.created_at),
            "finished_at": _iso(watch.finished_at),
            "files": [] if fresh else self.store.result_file_names(watch.id),
            "permalink": blocks.archive_link(parent.channel_id, parent.ts) if parent else None,
        }

    # -- use cases --------------------------------------------------------------------------

    def create(
        self, token: ApiToken, body: Any, idempotency_key: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/watches: 201 with a new watch, 200 with the active one of the same
        job in that channel (a retry is safe), or the same answer again for a repeated
        Idempotency-Key."""
        if idempotency_key is None:
            status, watch = self._create(token, body)
            return status, self.view(watch, fresh=status == 201)
        if not IDEMPOTENCY_KEY.match(idempotency_key):
            raise ApiError(400, "invalid_idempotency_key", texts.API_BAD_IDEMPOTENCY_KEY)
        body_digest = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        replay = self._reserve(token, idempotency_key, body_digest)
        if replay is not None:
            return replay
        try:
            status, watch = self._create(token, body)
        except BaseException:
            self._guard(lambda: self.store.idempotency_release(token.name, idempotency_key))
            raise
        self._guard(
            lambda: self.store.idempotency_settle(token.name, idempotency_key, watch.id, status)
        )
        return status, self.view(watch, fresh=status == 201)

    def _reserve(
        self, token: ApiToken, key: str, body_digest: str
    ) -> tuple[int, dict[str, Any]] | None:
        """None when this request is the first with `key`; else the first one's answer."""
        deadline = time.monotonic() + IDEMPOTENCY_WAIT_S
        while True:
            record = self._guard(
                lambda: self.store.idempotency_reserve(
                    token.name, key, body_digest, self.clock(), IDEMPOTENCY_KEEP_S
                )
            )
            if record is None:
                return None
            if record.body_digest != body_digest:
                raise ApiError(400, "idempotency_key_reused", texts.API_IDEMPOTENCY_REUSED)
            if record.watch_id is not None and record.status is not None:
                watch = self.store.get_watch(record.watch_id)
                if watch is not None:
                    return record.status, self.view(watch)
            if time.monotonic() >= deadline:
                raise ApiError(409, "idempotency_in_progress", texts.API_IDEMPOTENCY_BUSY)
            time.sleep(0.02)  # the twin request is being answered right now

    def get(self, token: ApiToken, watch_id: str) -> dict[str, Any]:
        return self.view(self._visible(token, watch_id))

    def delete(self, token: ApiToken, watch_id: str) -> dict[str, Any]:
        """Stop a watch; its thread says the token stopped it. Stopping an ended watch
        changes nothing and answers it as it is."""
        watch = self._visible(token, watch_id)
        if watch.status in (ACTIVE, PAUSED):
            stopped = self._guard(lambda: self._stop(token, watch))
            if stopped is not None:
                log.info("watch %s stopped by token %s", watch.id, token.name)
                self.on_change()
                watch = stopped
        return self.view(self.store.get_watch(watch.id) or watch)

    def _stop(self, token: ApiToken, watch: Watch) -> Watch | None:
        now = self.clock()
        with self.store.audited():
            stopped = self.store.stop_watch(watch.id, token_actor(token.name), now)
            if stopped is not None:
                self.store.audit(_token_entry("api.watch.delete", token, Via.API, watch, now))
        return stopped

    def callback(
        self, token: ApiToken, spec: VendorSpec, query: str, body: bytes, content_type: str
    ) -> dict[str, Any]:
        """A vendor says a job changed: poll its watches in the token's channels now, or
        start one in the token's first channel (docs/architecture.md#vendor-callbacks)."""
        ref = hooks.job_ref(spec, query, body, content_type)
        if ref is None:
            raise ApiError(400, "no_job_id", texts.API_NO_JOB_ID)
        watched = self._guard(lambda: self.store.find_active_in(spec.key, ref, token.channels))
        if watched:
            now = self.clock()
            for watch in watched:
                self._guard(lambda w=watch: self.store.poll_soon(w.id, now))
            self.on_due()
            log.info(
                "callback for %s %s: polling %s", spec.key, ref, ", ".join(w.id for w in watched)
            )
            return {"status": "polling", "watches": [w.id for w in watched]}
        status, watch = self._start(
            token, spec, ref, token.channels[0], DEFAULT_CONNECTION, None, None, Via.CALLBACK
        )
        if status == 200:  # already watched where the channel routes it: check it now
            self._guard(lambda: self.store.poll_soon(watch.id, self.clock()))
        self.on_due()
        log.info("callback for %s %s: started %s", spec.key, ref, watch.id)
        return {"status": "watching", "watches": [watch.id]}

    # -- helpers ----------------------------------------------------------------------------

    def _visible(self, token: ApiToken, watch_id: str) -> Watch:
        watch = self._guard(lambda: self.store.get_watch(watch_id))
        # A watch the token started stays its own when its channel routed it elsewhere
        # (docs/architecture.md#channel-settings).
        if watch is None or (
            watch.channel_id not in token.channels and watch.token_name != token.name
        ):
            raise ApiError(404, "not_found", texts.API_NOT_FOUND)
        return watch

    def _create(self, token: ApiToken, body: Any) -> tuple[int, Watch]:
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_body", texts.API_NOT_AN_OBJECT)
        unknown = sorted(set(body) - set(FIELDS))
        if unknown:
            names = ", ".join(repr(n[:40]) for n in unknown[:5])
            raise ApiError(400, "unknown_field", texts.api_unknown_field(names))
        spec = self._vendor(body)
        ref = self._ref(spec, body)
        channel = self._channel(token, body)
        connection = self._connection(spec, body)
        every = self._every(body)
        requested_by = self._requested_by(body)
        return self._start(token, spec, ref, channel, connection, every, requested_by, Via.API)

    def _start(
        self,
        token: ApiToken,
        spec: VendorSpec,
        ref: str,
        channel: str,
        connection: str,
        every: float | None,
        requested_by: str | None,
        via: Via,
    ) -> tuple[int, Watch]:
        existing = self._guard(lambda: self.store.find_active(spec.key, ref, channel))
        if existing is not None:  # the same job again: safe to retry, nothing new
            return 200, existing
        if connection not in self.settings.connections(spec.family):
            self._connection(spec, {"connection": connection})
        self._check_channel(channel)
        if requested_by is not None and SLACK_USER.match(requested_by):
            requester = requested_by  # the terminal reply mentions that person
        else:
            requester = token_actor(token.name)
        self._check_quota(channel, requester, token.name)
        now = self.clock()
        draft = lifecycle.new_watch(
            spec,
            ref,
            connection=connection,
            channel_id=channel,
            requester_id=requester,
            team_id=None,
            policy=self.policy,
            now=now,
            every=every,
            token_name=token.name,
            requested_by=requested_by,
        )
        action = "api.watch.create" if via == Via.API else "callback.watch.create"

        def audit(watch: Watch) -> AuditEntry:
            entry = _token_entry(action, token, via, watch, now)
            if requested_by is None:
                return entry
            return dataclasses.replace(entry, detail={**entry.detail, "requested_by": requested_by})

        try:
            (watch,) = self._guard(lambda: self.store.create_watches([draft], now, audit=audit))
        except DuplicateWatchError as dup:  # a twin request got there first
            return 200, dup.existing
        log.info(
            "watch created: %s %s %s in %s by token %s",
            watch.id,
            spec.key,
            ref,
            channel,
            token.name,
        )
        self.on_change()
        return 201, watch

    def _guard(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except DatabaseUnavailable as err:
            raise ApiError(503, "unavailable", texts.api_unavailable(err.reason)) from None

    def _check_channel(self, channel: str) -> None:
        try:
            problem = self.membership(channel)
        except Exception as err:  # Slack can't be reached: nothing was started
            log.warning("conversations.info for %s failed: %s", channel, type(err).__name__)
            raise ApiError(502, "slack_unavailable", texts.API_SLACK_UNAVAILABLE) from None
        if problem == "channel_archived":
            raise ApiError(409, "channel_archived", texts.API_CHANNEL_ARCHIVED)
        if problem is not None:
            raise ApiError(409, "not_in_channel", texts.API_NOT_IN_CHANNEL)

    def _check_quota(self, channel: str, requester: str, token_name: str) -> None:
        retry = {"Retry-After": str(QUOTA_RETRY_S)}
        in_channel, theirs = self._guard(
            lambda: self.store.count_active_of(channel_id=channel, requester_id=requester)
        )
        if in_channel + 1 > self.settings.quota_per_channel:
            message = texts.api_quota(in_channel, self.settings.quota_per_channel, "This channel")
            raise ApiError(429, "quota_exceeded", message, retry)
        if theirs + 1 > self.settings.quota_per_user:
            whose = f"Token {token_name}" if requester.startswith("token:") else requester
            message = texts.api_quota(theirs, self.settings.quota_per_user, whose)
            raise ApiError(429, "quota_exceeded", message, retry)

    # -- fields -----------------------------------------------------------------------------

    @staticmethod
    def _text(body: Mapping[str, Any], name: str, required: bool = False) -> str | None:
        value = body.get(name)
        if value is None:
            if required:
                raise ApiError(400, "missing_field", texts.api_missing_field(name))
            return None
        if not isinstance(value, str):
            raise ApiError(400, "invalid_field", texts.api_invalid_field(name, "a string"))
        return value

    def _vendor(self, body: Mapping[str, Any]) -> VendorSpec:
        name = self._text(body, "vendor", required=True) or ""
        spec = lookup(name) if len(name) <= 40 else None
        if spec is None or spec.kind != "job":
            known = ", ".join(s.key for s in SPECS.values() if s.kind == "job")
            raise ApiError(400, "unknown_vendor", texts.api_unknown_vendor(name[:40], known))
        return spec

    def _ref(self, spec: VendorSpec, body: Mapping[str, Any]) -> str:
        raw = self._text(body, "ref", required=True) or ""
        try:
            return spec.parse_ref(raw[:200])
        except RefError as err:
            raise ApiError(400, "malformed_ref", str(err).replace("`", "")) from None

    def _channel(self, token: ApiToken, body: Mapping[str, Any]) -> str:
        channel = self._text(body, "channel")
        if channel is None:
            if len(token.channels) == 1:
                return token.channels[0]
            raise ApiError(400, "channel_required", texts.API_CHANNEL_REQUIRED)
        if not SLACK_CHANNEL.match(channel):
            raise ApiError(
                400, "invalid_field", texts.api_invalid_field("channel", "a channel id (C…)")
            )
        if channel not in token.channels:
            raise ApiError(403, "channel_not_allowed", texts.api_channel_not_allowed(channel))
        return channel

    def _connection(self, spec: VendorSpec, body: Mapping[str, Any]) -> str:
        name = self._text(body, "connection")
        if name is None:
            name = DEFAULT_CONNECTION
        configured = self.settings.connections(spec.family)
        if not configured:
            raise ApiError(
                400, "vendor_not_configured", texts.api_vendor_not_configured(spec.label)
            )
        if name not in configured:
            names = ", ".join(sorted(configured))
            raise ApiError(
                400,
                "unknown_connection",
                texts.api_unknown_connection(spec.family, name[:40], names),
            )
        return name

    def _every(self, body: Mapping[str, Any]) -> float | None:
        value = body.get("every")
        if value is None:
            return None
        expected = 'a duration such as "30s", "2m" or a number of seconds, 1 s to 24 h'
        if isinstance(value, bool):
            raise ApiError(400, "invalid_field", texts.api_invalid_field("every", expected))
        if isinstance(value, int | float):
            if not 1 <= value <= 86400:
                raise ApiError(400, "invalid_field", texts.api_invalid_field("every", expected))
            return float(value)
        if isinstance(value, str) and len(value) <= 20:
            try:
                return grammar.parse_duration(value, "")
            except grammar.CommandError:
                pass
        raise ApiError(400, "invalid_field", texts.api_invalid_field("every", expected))

    def _requested_by(self, body: Mapping[str, Any]) -> str | None:
        value = self._text(body, "requested_by")
        if value is None:
            return None
        expected = f"a Slack user id or a short name (1 to {MAX_REQUESTED_BY} characters)"
        if (
            not value.strip()
            or len(value) > MAX_REQUESTED_BY
            or not value.isprintable()
            or grammar.looks_like_credential(value)
        ):
            raise ApiError(400, "invalid_field", texts.api_invalid_field("requested_by", expected))
        return value.strip()


def _token_entry(action: str, token: ApiToken, via: Via, watch: Watch, now: float) -> AuditEntry:
    """An audit row for a token's change to `watch` (docs/operations.md#audit)."""
    return AuditEntry(
        action=action,
        actor_kind=ActorKind.TOKEN,
        actor=token.name,
        via=via,
        at=now,
        channel_id=watch.channel_id,
        watch_id=watch.id,
        detail=watch_facts(watch),
    )
