"""Fake Slack Web API on 127.0.0.1: records calls, scripts failures and models the channels."""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.simulators import HttpReply, HttpRequest, LocalServer

logger = logging.getLogger(__name__)

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T1"
BOT_NAME = "syncwatch"
_TS_EPOCH = 1_700_000_000  # every fake ts is 1700000000.000001, .000002, …
APP_TOKEN = "xapp-1-A0FAKE-1-fakeapptoken"  # the app-level token the fake accepts
DEFAULT_TZ = "America/Los_Angeles"  # users.info's `tz` for a user the test didn't set


@dataclass(frozen=True)
class Call:
    """One request the fake received: a Web API method, `upload/<file_id>` or `respond/<key>`.

    `params` merges the query string with the JSON or form body; form values stay strings
    (`files`, for instance, is the raw JSON string the SDK sent). Header keys are lowercase.
    """

    method: str
    params: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Message:
    """A message as the fake's channel model holds it (`thread_ts` is None at top level)."""

    ts: str
    channel: str
    text: str
    blocks: list[Any] = field(default_factory=list)
    thread_ts: str | None = None
    edits: int = 0
    files: list[tuple[str, str, str]] = field(default_factory=list)  # (file_id, title, filename)
    metadata: dict[str, Any] | None = None
    broadcast: bool = False  # a thread reply also sent to the channel (reply_broadcast)


@dataclass(frozen=True)
class _Failure:
    error: str
    status: int
    headers: dict[str, str]


@dataclass
class Hold:
    """A call the fake keeps waiting, before doing it, until `release()` (or the fake
    closes): a Slack that doesn't answer. `arrived` is set once the call is waiting."""

    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


@dataclass(frozen=True)
class _ChannelState:
    is_member: bool = True
    is_archived: bool = False
    exists: bool = True
    kind: str = "channel"  # channel | private | im | mpim
    creator: str = ""  # the user who made the channel ("" for the unset default)


ChangeCallback = Callable[[str, Message], None]
_Changes = list[tuple[str, Message]]


class FakeSlackAPI(LocalServer):
    """Slack Web API stand-in for `WebClient(base_url=fake.api_url)`; records every call.

    Unknown channels exist and have the bot as a member until `set_channel()` says otherwise;
    posts, updates, ephemerals and file shares into a missing, archived or non-member
    channel fail as Slack does (`channel_not_found`, `is_archived`, `not_in_channel`).
    `set_channel(kind=...)` makes a conversation a private channel, a DM (`im`) or a group
    DM (`mpim`), answered as for a bot with syncwatch's scopes: `conversations.info` on a DM
    or group DM is `missing_scope` (no `im:read`/`mpim:read`), on a private channel the bot
    isn't in `channel_not_found`, and posts into any of those it isn't in `channel_not_found`.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()  # guards all state below; notified on every call
        self.calls: list[Call] = []
        self.uploads: dict[str, bytes] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._channels: dict[str, _ChannelState] = {}
        self._messages: dict[str, list[Message]] = {}  # per channel, in post order
        self._file_names: dict[str, str] = {}
        self._callbacks: list[ChangeCallback] = []
        self._callback_lock = threading.Lock()  # callbacks run one at a time, in call order
        self._ts_seq = 0
        self._file_seq = 0
        self._view_seq = 0
        self._hangs: dict[str, list[float]] = {}
        self._holds: dict[str, list[Hold]] = {}  # not yet used, per method
        self._all_holds: list[Hold] = []  # released on close
        self._hung_up = threading.Event()  # set on close: hung replies end at once
        self.page_cap: int | None = None  # history pages hold at most this many messages
        # usergroups.list answers these; users.info answers each user's `tz` from here
        # (else DEFAULT_TZ).
        self.usergroups: list[dict[str, Any]] = []
        self.user_tz: dict[str, str] = {}
        # apps.connections.open: the app-level token it accepts (others get invalid_auth),
        # and the WebSocket URL it hands out (bot/simulators/slack_socket.py serves one;
        # by default nothing listens there).
        self.app_token = APP_TOKEN
        self.socket_url = "ws://127.0.0.1:9/link/"
        super().__init__()
        self.api_url = self.root + "/api/"

    # ----- configuration and inspection -----

    def response_url(self, key: str) -> str:
        """A `response_url` served by the fake; POSTs to it are recorded as `respond/<key>`."""
        return f"{self.root}/respond/{key}"

    def fail_next(
        self, method: str, error: str, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next call of `method` with `{"ok": false, "error": error}`.

        Queued failures are used in order. For `upload/<file_id>` and `respond/<key>` the
        body is the plain-text `error`, as those URLs answer in text.
        """
        with self._cond:
            self._failures.setdefault(method, []).append(_Failure(error, status, headers or {}))

    def hang_after_next(self, method: str, seconds: float) -> None:
        """Do the next `method` call (post the message, share the file) but hold its answer
        for `seconds`: Slack did it, the bot hasn't heard yet (a kill lands in that gap)."""
        with self._cond:
            self._hangs.setdefault(method, []).append(seconds)

    def hold_next(self, method: str) -> Hold:
        """Keep the next `method` call waiting, unanswered and not yet done, until the
        returned hold is released."""
        hold = Hold()
        with self._cond:
            self._holds.setdefault(method, []).append(hold)
            self._all_holds.append(hold)
        return hold

    def close(self) -> None:
        self._hung_up.set()
        with self._cond:
            for hold in self._all_holds:
                hold.release()
        super().close()

    def set_channel(
        self,
        channel_id: str,
        *,
        is_member: bool = True,
        is_archived: bool = False,
        exists: bool = True,
        kind: str = "channel",
        creator: str = "",
    ) -> None:
        if kind not in ("channel", "private", "im", "mpim"):
            raise ValueError(f"unknown conversation kind {kind!r}")
        with self._cond:
            self._channels[channel_id] = _ChannelState(
                is_member, is_archived, exists, kind, creator
            )

    def on_change(self, callback: ChangeCallback) -> ChangeCallback:
        """Call `callback(kind, message)` after each "post", "update" and "file" share.

        The message is a snapshot. Callbacks run on the server's request threads, one at a
        time, before the client gets its answer; an exception in one is logged and ignored.
        """
        with self._cond:
            self._callbacks.append(callback)
        return callback

    def calls_for(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Block until `count` calls of `method` (passing `where`) exist; return all of them.

        Raises AssertionError after `timeout` seconds, listing the methods seen so far.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [
                    c for c in self.calls if c.method == method and (where is None or where(c))
                ]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.1))
            seen = Counter(c.method for c in self.calls)
        if len(found) >= count:
            return found
        listing = ", ".join(f"{m} x{n}" for m, n in seen.items()) or "none"
        matching = " matching the filter" if where is not None else ""
        raise AssertionError(
            f"expected {count} call(s) of {method}{matching} within {timeout:g}s, "
            f"got {len(found)}; calls seen: {listing}"
        )

    def messages(self, channel_id: str, *, include_replies: bool = False) -> list[Message]:
        """Snapshots of the channel's messages, oldest first; top-level only unless asked."""
        with self._cond:
            held = self._messages.get(channel_id, [])
            return [copy.deepcopy(m) for m in held if include_replies or m.thread_ts is None]

    def thread(self, channel_id: str, parent_ts: str) -> list[Message]:
        """Snapshots of the replies to `parent_ts`, oldest first (the parent excluded)."""
        with self._cond:
            return [copy.deepcopy(m) for m in self._replies(channel_id, parent_ts)]

    # ----- HTTP -----

    def route(self, request: HttpRequest) -> HttpReply:
        path = request.path
        if path.startswith("/api/"):
            return self._api(path.removeprefix("/api/"), request)
        if path.startswith("/upload/"):
            return self._upload(path.removeprefix("/upload/"), request)
        if path.startswith("/respond/"):
            return self._respond(path.removeprefix("/respond/"), request)
        return HttpReply.of_json({"ok": False, "error": "unknown_url"}, status=404)

    def _api(self, method: str, request: HttpRequest) -> HttpReply:
        params: dict[str, Any] = dict(request.form())
        body = request.json()
        if "application/json" in request.headers.get("content-type", "") and isinstance(body, dict):
            params.update(body)
        changes: _Changes = []
        with self._cond:
            holds = self._holds.get(method)
            held = holds.pop(0) if holds else None
        if held is not None:
            held.arrived.set()
            held.released.wait()  # close() releases every hold
        with self._cond:
            failure = self._pop_failure(method)
            if failure:
                reply = HttpReply.of_json(
                    {"ok": False, "error": failure.error}, failure.status, failure.headers
                )
            else:
                token = request.headers.get("authorization", "").removeprefix("Bearer ")
                reply = HttpReply.of_json(self._answer(method, params, changes, token))
            self._record(Call(method, params, request.headers))
            hangs = self._hangs.get(method)
            hang = hangs.pop(0) if hangs and not failure else 0.0
        self._notify(changes)
        if hang:
            self._hung_up.wait(hang)
        return reply

    def _upload(self, file_id: str, request: HttpRequest) -> HttpReply:
        with self._cond:
            method = f"upload/{file_id}"
            failure = self._pop_failure(method)
            if failure:
                reply = HttpReply.of_text(failure.error, failure.status, failure.headers)
            elif file_id not in self._file_names:
                reply = HttpReply.of_text("file_not_found", status=404)
            else:
                self.uploads[file_id] = request.body
                reply = HttpReply.of_text(f"OK - {len(request.body)}")
            params = {"filename": self._file_names.get(file_id, ""), "length": len(request.body)}
            self._record(Call(method, params, request.headers))
        return reply

    def _respond(self, key: str, request: HttpRequest) -> HttpReply:
        body = request.json()
        params: dict[str, Any] = body if isinstance(body, dict) else dict(request.form())
        with self._cond:
            method = f"respond/{key}"
            failure = self._pop_failure(method)
            if failure:
                reply = HttpReply.of_text(failure.error, failure.status, failure.headers)
            else:
                reply = HttpReply.of_text("ok")
            self._record(Call(method, params, request.headers))
        return reply

    # ----- state (callers hold self._cond) -----

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._cond.notify_all()

    def _pop_failure(self, method: str) -> _Failure | None:
        queued = self._failures.get(method)
        return queued.pop(0) if queued else None

    def _notify(self, changes: _Changes) -> None:
        if not changes:
            return
        with self._cond:
            callbacks = list(self._callbacks)
        with self._callback_lock:
            for kind, message in changes:
                for callback in callbacks:
                    try:
                        callback(kind, message)
                    except Exception:
                        logger.exception("on_change callback failed for %s %s", kind, message.ts)

    def _next_ts(self) -> str:
        self._ts_seq += 1
        return f"{_TS_EPOCH + self._ts_seq // 1_000_000}.{self._ts_seq % 1_000_000:06d}"

    def _channel_error(self, channel: str, *, writing: bool = True) -> str | None:
        state = self._channels.get(channel, _ChannelState())
        if not channel or not state.exists:
            return "channel_not_found"
        if state.kind != "channel" and not state.is_member:  # not visible to the bot
            return "channel_not_found"
        if writing and state.is_archived:
            return "is_archived"
        if not state.is_member:
            return "not_in_channel"
        return None

    def _find(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self._messages.get(channel, []) if m.ts == ts), None)

    def _replies(self, channel: str, parent_ts: str) -> list[Message]:
        return [m for m in self._messages.get(channel, []) if m.thread_ts == parent_ts]

    def _store(self, message: Message, kind: str, changes: _Changes) -> None:
        self._messages.setdefault(message.channel, []).append(message)
        changes.append((kind, copy.deepcopy(message)))

    def _render(self, m: Message, *, with_metadata: bool) -> dict[str, Any]:
        """The message as the Web API returns it in history, replies and post answers."""
        out: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": m.ts,
            "text": m.text,
        }
        if m.blocks:
            out["blocks"] = m.blocks
        replies = self._replies(m.channel, m.ts) if m.thread_ts is None else []
        if m.thread_ts is not None:
            out["thread_ts"] = m.thread_ts
            if m.broadcast:
                out["subtype"] = "thread_broadcast"
        elif replies:  # Slack marks a parent with replies with its own ts
            out["thread_ts"] = m.ts
            out["reply_count"] = len(replies)
        if m.files:
            out["files"] = [{"id": fid, "title": t, "name": n} for fid, t, n in m.files]
        if m.edits:
            out["edited"] = {"user": BOT_USER_ID, "ts": m.ts}
        if with_metadata and m.metadata is not None:
            out["metadata"] = m.metadata
        return out

    def _connections_open(self, token: str) -> dict[str, Any]:
        if token != self.app_token:  # a bot token, or a wrong or revoked app token
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": self.socket_url}

    def _answer(
        self, method: str, p: dict[str, Any], changes: _Changes, token: str = ""
    ) -> dict[str, Any]:
        match method:
            case "auth.test":
                return {
                    "ok": True,
                    "url": "https://syncwatch-demo.slack.com/",
                    "team": "syncwatch demo",
                    "user": BOT_NAME,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "bot_id": BOT_ID,
                    "is_enterprise_install": False,
                }
            case "chat.postMessage":
                return self._post_message(p, changes)
            case "chat.update":
                return self._update_message(p, changes)
            case "chat.postEphemeral":
                if error := self._channel_error(str(p.get("channel", ""))):
                    return {"ok": False, "error": error}
                return {"ok": True, "message_ts": self._next_ts()}
            case "conversations.info":
                return self._channel_info(str(p.get("channel", "")))
            case "conversations.history":
                return self._history(p)
            case "conversations.replies":
                return self._thread_history(p)
            case "views.publish" | "views.update":
                self._view_seq += 1
                view = _as_dict(p.get("view")) or {}
                return {"ok": True, "view": {**view, "id": f"V{self._view_seq}"}}
            case "views.open":
                if not p.get("trigger_id"):
                    return {"ok": False, "error": "invalid_trigger_id"}
                self._view_seq += 1
                view = _as_dict(p.get("view")) or {}
                return {"ok": True, "view": {**view, "id": f"V{self._view_seq}"}}
            case "usergroups.list":
                return {"ok": True, "usergroups": copy.deepcopy(self.usergroups)}
            case "users.info":
                user = str(p.get("user", ""))
                tz = self.user_tz.get(user, DEFAULT_TZ)
                return {"ok": True, "user": {"id": user, "tz": tz}}
            case "files.getUploadURLExternal":
                self._file_seq += 1
                file_id = f"F{self._file_seq}"
                self._file_names[file_id] = str(p.get("filename", ""))
                return {
                    "ok": True,
                    "file_id": file_id,
                    "upload_url": f"{self.root}/upload/{file_id}",
                }
            case "files.completeUploadExternal":
                return self._complete_upload(p, changes)
            case "apps.connections.open":
                return self._connections_open(token)
        return {"ok": True}

    def _post_message(self, p: dict[str, Any], changes: _Changes) -> dict[str, Any]:
        channel = str(p.get("channel", ""))
        if error := self._channel_error(channel):
            return {"ok": False, "error": error}
        message = Message(
            ts=self._next_ts(),
            channel=channel,
            text=str(p.get("text") or ""),
            blocks=_as_list(p.get("blocks")),
            thread_ts=_as_str(p.get("thread_ts")),
            metadata=_as_dict(p.get("metadata")),
            broadcast=bool(p.get("thread_ts")) and _truthy(p.get("reply_broadcast")),
        )
        self._store(message, "post", changes)
        return {
            "ok": True,
            "channel": channel,
            "ts": message.ts,
            "message": self._render(message, with_metadata=True),
        }

    def _update_message(self, p: dict[str, Any], changes: _Changes) -> dict[str, Any]:
        channel, ts = str(p.get("channel", "")), str(p.get("ts", ""))
        if error := self._channel_error(channel):
            return {"ok": False, "error": error}
        message = self._find(channel, ts)
        if message is None:  # not posted through this fake: answer ok, nothing to model
            return {"ok": True, "channel": channel, "ts": ts, "text": str(p.get("text") or "")}
        if p.get("text") is not None:
            message.text = str(p["text"])
        # omitted blocks stay; [] clears (docs/slack.md#editing-the-parent-message)
        if p.get("blocks") is not None:
            message.blocks = _as_list(p["blocks"])
        if p.get("metadata") is not None:
            message.metadata = _as_dict(p["metadata"])
        message.edits += 1
        changes.append(("update", copy.deepcopy(message)))
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": message.text,
            "message": self._render(message, with_metadata=False),
        }

    def _channel_info(self, channel: str) -> dict[str, Any]:
        state = self._channels.get(channel, _ChannelState())
        if not channel or not state.exists:
            return {"ok": False, "error": "channel_not_found"}
        if state.kind in ("im", "mpim"):  # the bot has channels:read and groups:read only
            return {"ok": False, "error": "missing_scope", "needed": f"{state.kind}:read"}
        if state.kind == "private" and not state.is_member:
            return {"ok": False, "error": "channel_not_found"}
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "is_member": state.is_member,
                "is_archived": state.is_archived,
                "is_private": state.kind == "private",
                "creator": state.creator,
            },
        }

    def _history(self, p: dict[str, Any]) -> dict[str, Any]:
        # `oldest`/`latest` are ignored: fake ts values are not wall-clock times.
        channel = str(p.get("channel", ""))
        if error := self._channel_error(channel, writing=False):
            return {"ok": False, "error": error}
        # A broadcast reply shows in the channel too, as in Slack's own history.
        top = [
            m
            for m in reversed(self._messages.get(channel, []))
            if m.thread_ts is None or m.broadcast
        ]
        return self._page(top, p)

    def _thread_history(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = str(p.get("channel", ""))
        if error := self._channel_error(channel, writing=False):
            return {"ok": False, "error": error}
        message = self._find(channel, str(p.get("ts", "")))
        if message is None:
            return {"ok": False, "error": "thread_not_found"}
        parent = self._find(channel, message.thread_ts) if message.thread_ts else message
        parent = parent or message
        return self._page([parent, *self._replies(channel, parent.ts)], p)

    def _page(self, found: list[Message], p: dict[str, Any]) -> dict[str, Any]:
        """One page of `found`, from `cursor` on: at most `limit` messages, and at most
        `page_cap` when set (Slack may return fewer than asked, e.g. 15 for apps outside
        its Marketplace); `next_cursor` names the rest."""
        start = _as_int(str(p.get("cursor") or "").removeprefix("page:") or 0)
        size = _as_int(p.get("limit")) or len(found) or 1
        if self.page_cap:
            size = min(size, self.page_cap)
        page = found[start : start + size]
        more = start + size < len(found)
        with_metadata = _truthy(p.get("include_all_metadata"))
        return {
            "ok": True,
            "messages": [self._render(m, with_metadata=with_metadata) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": f"page:{start + size}" if more else ""},
        }

    def _complete_upload(self, p: dict[str, Any], changes: _Changes) -> dict[str, Any]:
        entries = _as_list(p.get("files"))
        if not entries or not all(isinstance(f, dict) and f.get("id") for f in entries):
            return {"ok": False, "error": "invalid_arguments"}
        if p.get("channel_id"):
            channels = [str(p["channel_id"])]
        else:
            channels = [c for c in str(p.get("channels") or "").split(",") if c]
        for channel in channels:
            if error := self._channel_error(channel):
                return {"ok": False, "error": error}
        shared: list[tuple[str, str, str]] = []
        for f in entries:
            file_id = str(f["id"])
            filename = self._file_names.get(file_id, "")
            shared.append((file_id, str(f.get("title") or filename), filename))
        for channel in channels:
            message = Message(
                ts=self._next_ts(),
                channel=channel,
                text=str(p.get("initial_comment") or ""),
                thread_ts=_as_str(p.get("thread_ts")),
                files=list(shared),
            )
            self._store(message, "file", changes)
        files = [
            {"id": fid, "title": title, "name": name, "size": len(self.uploads.get(fid, b""))}
            for fid, title, name in shared
        ]
        return {"ok": True, "files": files}


def _decode(value: Any) -> Any:
    """Form bodies carry lists and objects as JSON strings; JSON bodies carry them as-is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _as_list(value: Any) -> list[Any]:
    decoded = _decode(value)
    return list(decoded) if isinstance(decoded, list) else []


def _as_dict(value: Any) -> dict[str, Any] | None:
    decoded = _decode(value)
    return dict(decoded) if isinstance(decoded, dict) else None


def _as_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _as_int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() not in ("", "0", "false", "none")
