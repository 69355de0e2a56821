"""Local stand-ins for Slack and the vendors on 127.0.0.1, used by `syncwatch demo` and tests."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

logger = logging.getLogger(__name__)


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
