"""Local stand-ins for Slack and the vendors on 127.0.0.1, used by `syncwatch demo` and tests."""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class HttpRequest:
    """One request as a simulator sees it; header keys are lowercase."""

    method: str
    target: str  # path and query string, as sent
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        """Query string merged with a urlencoded body (the body wins on a clash)."""
        params = dict(self.query)
        if "application/x-www-form-urlencoded" in self.headers.get("content-type", ""):
            params.update(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        return params

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Self:
        merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(data).encode("utf-8"), merged)

    @classmethod
    def of_text(cls, text: str, status: int = 200, headers: dict[str, str] | None = None) -> Self:
        merged = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        return cls(status, text.encode("utf-8"), merged)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so close() never waits on an idle keep-alive socket.
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the demo prints the channel, not an access log."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        request = HttpRequest(
            method=self.command,
            target=self.path,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            reply = self.server.owner.route(request)
        except Exception:  # a simulator bug must show up as a 500, not a hung client
            logger.exception("simulator failed on %s %s", request.method, request.path)
            reply = HttpReply.of_text("simulator error", status=500)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:  # the client went away; nothing to tell it
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: LocalServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection-level errors (resets, timeouts) are normal for a fake; keep stderr clean."""


class LocalServer:
    """An HTTP server on 127.0.0.1:<free port> served from a daemon thread.

    Subclasses implement `route(request) -> HttpReply`; it runs on the server's request
    threads, so subclasses guard their own state with a lock. `close()` is idempotent.
    """

    def __init__(self) -> None:
        self._server = _Server(self)
        self.root = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # close() waits for one poll; keep it short
            name=f"{type(self).__name__}:{self._server.server_port}",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    def route(self, request: HttpRequest) -> HttpReply:
        raise NotImplementedError

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class _Scripted:
    path_contains: str
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class VendorServer(LocalServer):
    """A vendor stand-in on one local origin (`url`): records every request in `requests`,
    answers queued `fail_next` replies first, and hands the rest to `serve`.

    Subclasses set up their own state, then call `super().__init__()` (that starts serving),
    and implement `serve`; it runs with `_lock` held, the lock that guards all their state.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, target, headers)
        self._scripted: list[_Scripted] = []
        super().__init__()
        self.url = self.root

    def fail_next(
        self,
        path_contains: str,
        status: int,
        body: str | bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request whose path (with query) contains `path_contains` verbatim.

        Queued replies are used in order. Without a Content-Type header one is guessed
        from the body (see `_content_type`).
        """
        raw = body.encode("utf-8") if isinstance(body, str) else body
        given = dict(headers or {})
        if not any(k.lower() == "content-type" for k in given):
            kind = self._content_type(raw)
            if kind is not None:
                given["Content-Type"] = kind
        with self._lock:
            self._scripted.append(_Scripted(path_contains, status, raw, given))

    def _content_type(self, body: bytes) -> str | None:
        """The Content-Type `fail_next` gives `body`: JSON, HTML (starts with `<`) or text."""
        if body.lstrip().startswith(b"<"):
            return "text/html; charset=utf-8"
        try:
            json.loads(body)
        except ValueError:
            return "text/plain; charset=utf-8"
        return "application/json"

    def route(self, request: HttpRequest) -> HttpReply:
        with self._lock:
            self.requests.append((request.method, request.target, dict(request.headers)))
            scripted = next((s for s in self._scripted if s.path_contains in request.target), None)
            if scripted is not None:
                self._scripted.remove(scripted)
                return HttpReply(scripted.status, scripted.body, scripted.headers)
            return self.serve(request)

    def serve(self, request: HttpRequest) -> HttpReply:
        """Answer `request` (no `fail_next` reply was queued for it); `_lock` is held."""
        raise NotImplementedError


class ScriptedJobs(Generic[K]):
    """Scripted job documents by key: poll n of a job answers its step n, the last one forever.

    Not locked itself: the simulator that owns it holds its own lock around every call.
    """

    def __init__(self, what: str = "a job") -> None:
        self._what = what  # for the error message: "a job needs at least one step"
        self._steps: dict[K, list[dict[str, Any]]] = {}
        self._polls: dict[K, int] = {}

    def add(self, key: K, steps: list[dict[str, Any]]) -> None:
        """Script `key` with a copy of `steps`, starting over at the first step."""
        if not steps:
            raise ValueError(f"{self._what} needs at least one step")
        self._steps[key] = copy.deepcopy(steps)
        self._polls[key] = 0

    def poll(self, key: K) -> dict[str, Any] | None:
        """The step this poll of `key` answers, counted as a poll; None for an unknown job."""
        steps = self._steps.get(key)
        if steps is None:
            return None
        n = self._polls[key]
        self._polls[key] = n + 1
        return steps[min(n, len(steps) - 1)]

    def polls(self, key: K) -> int:
        """How many polls of `key` got a job answer."""
        return self._polls.get(key, 0)
