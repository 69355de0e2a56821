"""How the bot talks to Slack's Web API: the WebClient factory, the token checks for
`syncwatch check` and the start of `syncwatch run`, and the upload of a result file's bytes to
Slack's pre-signed URL.

Listeners and the notifier get their clients from here; nothing else builds one.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

UPLOAD_TIMEOUT_S = 120.0  # a large result file on a slow link
UPLOAD_CHUNK = 64 * 1024


def build_slack_client(token: str, base_url: str, *, for_writes: bool = False) -> WebClient:
    """A WebClient that honours SLACK_API_URL. The listeners' client retries 429s, 5xx and
    connection errors. The notifier's (`for_writes`) retries nothing itself: a resent post
    after a 5xx or a dropped connection could be a duplicate, so the outbox decides, after
    looking the message up; and it paces its writes, so a 429 is rare and simply postpones
    the row by Retry-After instead of sleeping a worker thread (which shutdown waits for)."""
    if for_writes:
        handlers: list[RetryHandler] = []
    else:
        handlers = [
            ConnectionErrorRetryHandler(),
            RateLimitErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(1),
        ]
    return WebClient(token=token, base_url=base_url, timeout=15, retry_handlers=handlers)


def describe_bot(client: WebClient) -> str:
    """auth.test, for `syncwatch check`: who the token belongs to. Raises the SDK's errors."""
    info = client.auth_test()
    return f"bot {info.get('user')} in team {info.get('team')}"


@dataclass(frozen=True)
class TokenCheck:
    """What Slack said about one token: `problem` is None when it took it."""

    name: str  # the setting that holds the token
    detail: str  # what it is, when it works
    problem: str | None = None


def check_tokens(bot_token: str, app_token: str, base_url: str) -> list[TokenCheck]:
    """Try every token the process will use, before it uses any: the bot token with
    `auth.test`, and in Socket Mode (an app token set) the app-level token with
    `apps.connections.open`, the call the Socket Mode client makes to get its WebSocket URL
    (the URL issued here is simply not used). Without this a revoked app token passed
    `syncwatch check`, and `syncwatch run` died with a traceback after polling began."""
    client = build_slack_client(bot_token, base_url)
    checks = [_ask("SLACK_BOT_TOKEN", base_url, lambda: describe_bot(client))]
    if app_token:

        def open_link() -> str:
            client.apps_connections_open(app_token=app_token)
            return "SLACK_APP_TOKEN opens a Socket Mode link"

        checks.append(_ask("SLACK_APP_TOKEN", base_url, open_link))
    return checks


def _ask(name: str, base_url: str, call: Callable[[], str]) -> TokenCheck:
    try:
        return TokenCheck(name, call())
    except SlackApiError as err:
        return TokenCheck(name, "", f"Slack rejected {name} ({err.response.get('error')})")
    except (SlackClientError, OSError) as err:
        why = type(err).__name__
        return TokenCheck(name, "", f"can't reach {base_url} to check {name} ({why})")


@dataclass(frozen=True)
class ChannelFacts:
    """What `conversations.info` says about a conversation, for the bot's purposes:
    `error` is Slack's code when it would not say (`channel_not_found`, `missing_scope`)."""

    channel_id: str
    error: str | None = None
    is_member: bool = False
    is_archived: bool = False
    is_direct: bool = False  # a DM or group DM: the bot only posts in channels
    creator: str | None = None

    @property
    def problem(self) -> str | None:
        """Why the bot can't post there, as a stable code, or None."""
        if self.error is not None:
            return "not_in_channel" if self.error == "channel_not_found" else self.error
        if self.is_direct:
            return "not_a_channel"
        if self.is_archived:
            return "channel_archived"
        if not self.is_member:
            return "not_in_channel"
        return None


def channel_facts(client: WebClient, channel_id: str) -> ChannelFacts:
    """Ask Slack about one conversation. A refusal is a fact too (`error`); only a Slack
    that can't be reached raises (the SDK's SlackClientError)."""
    try:
        info = client.conversations_info(channel=channel_id)
    except SlackApiError as err:
        return ChannelFacts(channel_id, error=str(err.response.get("error") or "unknown"))
    channel = info.get("channel") or {}
    if channel.get("is_im") or channel.get("is_mpim"):
        return ChannelFacts(channel_id, is_direct=True)
    return ChannelFacts(
        channel_id,
        is_member=bool(channel.get("is_member")),
        is_archived=bool(channel.get("is_archived")),
        creator=channel.get("creator") or None,
    )


class MembershipCache:
    """Whether the bot may post in a channel, asked of Slack at most once per `keep_s` per
    channel while the answer is yes: the watch API asks it for every request, and
    `conversations.info` is limited (Tier 3, about 50 a minute). A "no" is asked again
    next time, so an invitation takes effect at once. A channel the bot is removed from
    after a "yes" is found by the notifier, which pauses its watches."""

    def __init__(
        self, client: WebClient, clock: Callable[[], float], keep_s: float = 300.0
    ) -> None:
        self.client = client
        self.clock = clock
        self.keep_s = keep_s
        self._yes: dict[str, float] = {}

    def problem(self, channel_id: str) -> str | None:
        now = self.clock()
        if self._yes.get(channel_id, float("-inf")) > now:
            return None
        facts = channel_facts(self.client, channel_id)
        if facts.problem is None:
            self._yes[channel_id] = now + self.keep_s
        else:
            self._yes.pop(channel_id, None)
        return facts.problem


def build_upload_client() -> httpx.Client:
    """The client that sends result-file bytes to the pre-signed URL Slack hands out
    (docs/slack.md#file-uploads). httpx, like every other HTTP call the bot makes itself;
    it carries no token (the URL is the credential) and follows no redirect."""
    return httpx.Client(
        timeout=httpx.Timeout(UPLOAD_TIMEOUT_S, connect=10.0),
        follow_redirects=False,
        headers={"User-Agent": "syncwatch/0.1"},
    )


class StoredFiles(Protocol):
    """Result files kept in the database (PostgreSQL replicas share no disk)."""

    def file_size(self, file_id: str) -> int | None: ...

    def file_chunks(self, file_id: str) -> Iterator[bytes]: ...

    def delete_file(self, file_id: str) -> None: ...


class UploadSource:
    """The bytes of one upload: a spool file the bot owns, a file kept in the database,
    or small inline content."""

    def __init__(
        self,
        path: str | None,
        content: bytes | None,
        *,
        stored: tuple[StoredFiles, str, int] | None = None,
    ) -> None:
        self.path = path
        self.content = content
        self.stored = stored
        if stored is not None:
            self.size = stored[2]
        else:
            self.size = os.path.getsize(path) if path else len(content or b"")

    @classmethod
    def from_payload(
        cls, payload: dict[str, Any], files: StoredFiles | None = None
    ) -> UploadSource | None:
        """The source an outbox upload row names; None when its file is gone."""
        file_id = payload.get("file_id")
        if file_id:
            size = files.file_size(file_id) if files is not None else None
            if files is None or size is None:
                return None
            return cls(None, None, stored=(files, file_id, size))
        path = payload.get("path")
        if path:
            return cls(path, None) if os.path.isfile(path) else None
        return cls(None, base64.b64decode(payload.get("content_b64", "")))

    def post_to(
        self, http: httpx.Client, url: str, *, progress: Callable[[], None] = lambda: None
    ) -> None:
        """Stream the bytes to Slack's pre-signed upload URL, calling `progress()` as each
        chunk goes (a long upload is not a stuck one). Raises OSError when the upload did
        not go through (the outbox retries the row)."""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(self.size)}
        try:
            if self.stored is not None:
                files, file_id, _ = self.stored
                chunks = _progressing(files.file_chunks(file_id), progress)
                response = http.post(url, content=chunks, headers=headers)
            elif self.path:
                with open(self.path, "rb") as fh:
                    response = http.post(url, content=_chunks(fh, progress), headers=headers)
            else:
                response = http.post(url, content=self.content or b"", headers=headers)
        except httpx.HTTPError as err:  # its text may quote the URL, which is a credential
            raise OSError(f"file upload failed ({type(err).__name__})") from None
        if response.status_code != 200:
            raise OSError(f"file upload answered HTTP {response.status_code}")

    def discard(self) -> None:
        if self.stored is not None:
            self.stored[0].delete_file(self.stored[1])
        if self.path:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)


def _progressing(chunks: Iterator[bytes], progress: Callable[[], None]) -> Iterator[bytes]:
    for chunk in chunks:
        progress()
        yield chunk


def _chunks(fh: Any, progress: Callable[[], None]) -> Iterator[bytes]:
    while chunk := fh.read(UPLOAD_CHUNK):
        progress()
        yield chunk
