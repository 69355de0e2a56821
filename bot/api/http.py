"""The watch API and vendor callbacks over WSGI: routes, bearer auth, the 64 KB body
limit, the per-token rate, JSON in and out (docs/operations.md#http-endpoints).

Served by `bot/app.py`'s `make_wsgi` beside /slack/events, so in Socket Mode too.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from bot import texts
from bot.api.openapi import document
from bot.api.tokens import TokenBook
from bot.api.watches import ApiError, WatchApi
from bot.vendors import lookup
from storage import ApiToken, DatabaseUnavailable

log = logging.getLogger(__name__)

MAX_API_BODY = 64 * 1024
WATCHES = "/api/v1/watches"
OPENAPI = "/api/v1/openapi.json"
WATCH_PATH = re.compile(r"^/api/v1/watches/([^/]{1,64})$")
WATCH_ID = re.compile(r"^w[a-z0-9]{3,12}$")
HOOK_PATH = re.compile(r"^/hooks/([a-z0-9_-]{1,40})/([^/]{1,100})$")
NOT_FOUND_TEXT = b"not found\n"  # what any unknown address gets: a bad hook key says no more

Ledger = Callable[[str, float, float, float], float]  # Store.rate_take


class TokenRate:
    """Requests a minute per token, shared by every replica (GCRA in the database, as the
    vendors' budgets: docs/architecture.md#rate-limits). A burst of half a minute's worth
    may go at once."""

    def __init__(self, take: Ledger, per_minute: float, clock: Callable[[], float]) -> None:
        self.take = take
        self.interval = 60.0 / per_minute
        self.tolerance = max(0.0, (max(1.0, per_minute / 2) - 1) * self.interval)
        self.clock = clock

    def wait(self, token: ApiToken) -> float:
        """0 when the request may go; else seconds until one may."""
        return self.take(f"api:{token.name}", self.interval, self.tolerance, self.clock())


class ApiHttp:
    def __init__(self, api: WatchApi, book: TokenBook, rate: TokenRate) -> None:
        self.api = api
        self.book = book
        self.rate = rate
        self._openapi = json.dumps(document()).encode()

    @staticmethod
    def serves(path: str) -> bool:
        return path.startswith("/api/") or path.startswith("/hooks/")

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        try:
            if path.startswith("/hooks/"):
                return self._hook(environ, method, path, start_response)
            status, body = self._route(environ, method, path)
        except ApiError as err:
            return _json(start_response, err.status, err.body(), err.headers)
        except DatabaseUnavailable as err:
            failure = ApiError(503, "unavailable", texts.api_unavailable(err.reason))
            return _json(start_response, 503, failure.body())
        except Exception as error:  # a bug: say so with a ref, never with its text
            ref = secrets.token_hex(2)
            log.error("API request failed (ref %s): %s", ref, type(error).__name__, exc_info=error)
            failure = ApiError(500, "internal_error", texts.api_internal_error(ref))
            return _json(start_response, 500, failure.body())
        return _json(start_response, status, body)

    # -- the API ----------------------------------------------------------------------------

    def _route(self, environ: dict[str, Any], method: str, path: str) -> tuple[int, Any]:
        if path == OPENAPI:
            _allow(method, ("GET",))
            return 200, json.loads(self._openapi)
        if path == WATCHES:
            _allow(method, ("POST",))
            token = self._authorized(environ)
            body = _read_json(environ)
            key = environ.get("HTTP_IDEMPOTENCY_KEY")
            return self.api.create(token, body, key)
        match = WATCH_PATH.match(path)
        if match is None:
            raise ApiError(404, "not_found", texts.API_NO_ROUTE)
        _allow(method, ("GET", "DELETE"))
        token = self._authorized(environ)
        watch_id = match.group(1)
        if not WATCH_ID.match(watch_id):
            raise ApiError(404, "not_found", texts.API_NOT_FOUND)
        if method == "DELETE":
            return 200, self.api.delete(token, watch_id)
        return 200, self.api.get(token, watch_id)

    def _authorized(self, environ: dict[str, Any]) -> ApiToken:
        """The request's token, within its rate; 401 says nothing of what was wrong."""
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        token = self.book.authenticate(value.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            raise ApiError(
                401, "unauthorized", texts.API_UNAUTHORIZED, {"WWW-Authenticate": "Bearer"}
            )
        self._within_rate(token)
        return token

    def _within_rate(self, token: ApiToken) -> None:
        wait = self.rate.wait(token)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429, "rate_limited", texts.api_rate_limited(seconds), {"Retry-After": str(seconds)}
            )

    # -- vendor callbacks -------------------------------------------------------------------

    def _hook(
        self, environ: dict[str, Any], method: str, path: str, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        match = HOOK_PATH.match(path)
        spec = lookup(match.group(1)) if match else None
        token = self.book.by_hook_key(match.group(2)) if match and spec else None
        if match is None or spec is None or spec.kind != "job" or token is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [NOT_FOUND_TEXT]
        _allow(method, ("GET", "POST"))
        self._within_rate(token)
        body = _read_body(environ) if method == "POST" else b""
        answer = self.api.callback(
            token,
            spec,
            environ.get("QUERY_STRING", ""),
            body,
            environ.get("CONTENT_TYPE", ""),
        )
        return _json(start_response, 202, answer)


def _allow(method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise ApiError(
            405,
            "method_not_allowed",
            texts.api_method_not_allowed(" or ".join(allowed)),
            {"Allow": ", ".join(allowed)},
        )


def _read_body(environ: dict[str, Any]) -> bytes:
    """At most 64 KB: a larger declared length is refused unread, a longer stream at the
    first byte past the limit."""
    try:
        declared = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        declared = -1
    if declared > MAX_API_BODY:
        raise ApiError(413, "body_too_large", texts.API_BODY_TOO_LARGE)
    stream = environ.get("wsgi.input")
    if stream is None or declared == 0:
        return b""
    data = stream.read(declared if declared >= 0 else MAX_API_BODY + 1)
    if len(data) > MAX_API_BODY:
        raise ApiError(413, "body_too_large", texts.API_BODY_TOO_LARGE)
    return data


def _read_json(environ: dict[str, Any]) -> Any:
    raw = _read_body(environ)
    try:
        data = json.loads(raw.decode("utf-8"))
        # A lone surrogate (`"\ud800"`) is valid JSON but no text: refuse it here, before
        # it reaches the database or an answer (docs/slack.md#requests-at-the-door).
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError):
        raise ApiError(400, "invalid_json", texts.API_INVALID_JSON) from None
    return data


def _json(
    start_response: Callable[..., Any],
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
) -> list[bytes]:
    data = json.dumps(body).encode("ascii")
    start_response(
        f"{status} {_REASONS.get(status, 'OK')}",
        [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Content-Length", str(len(data))),
            *(headers or {}).items(),
        ],
    )
    return [data]


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
