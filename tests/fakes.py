"""Test doubles shared by several test modules: clocks, a scripted HTTP transport and Zoho
connection values."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from bot.vendors.zoho_auth import ZohoConnection

ZOHO_CLIENT_ID = "test-client-id"
ZOHO_CLIENT_SECRET = "test-client-secret"
ZOHO_REFRESH_TOKEN = "test-refresh-token"
ZOHO_ACCOUNTS = "https://accounts.zoho.test"
ZOHO_ANALYTICS = "https://analytics.zoho.test"


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01 00:00 UTC
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class SkippingClock:
    """Real epoch seconds that a test can move forward. The bot's threads run as usual, and
    what it waits for on this clock (backoff, vendor budgets, Slack's Retry-After) comes as
    soon as the test skips ahead, instead of after that much real time."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


def zoho_connection(**overrides: Any) -> ZohoConnection:
    """A Zoho connection on the reserved .test domain (a missed transport fails on DNS)."""
    values: dict[str, Any] = {
        "name": "default",
        "client_id": ZOHO_CLIENT_ID,
        "client_secret": ZOHO_CLIENT_SECRET,
        "refresh_token": ZOHO_REFRESH_TOKEN,
        "dc": "us",
        "analytics_org_id": "55522777",
        "accounts_url": ZOHO_ACCOUNTS,
        "analytics_api_url": ZOHO_ANALYTICS,
        "crm_api_url": "https://crm.zoho.test",
    }
    return ZohoConnection(**(values | overrides))


# -- scripted HTTP ----------------------------------------------------------------------------

# What a scripted request gets: a response, an exception to raise (a transport failure such
# as httpx.ConnectError), or a function of the request.
Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def answer(reply: Reply, request: httpx.Request) -> httpx.Response:
    if isinstance(reply, Exception):
        raise reply
    return reply(request) if callable(reply) else reply


def zoho_token(n: int) -> httpx.Response:
    """Zoho Accounts' answer to the n-th token refresh."""
    return httpx.Response(200, json={"access_token": f"test-access-token-{n}", "expires_in": 3600})


def zoho_accounts(request: httpx.Request) -> bool:
    return request.url.host == "accounts.zoho.test"


class ScriptedTransport(httpx.MockTransport):
    """An httpx transport that answers `replies` in order and records every request in
    `requests`. Token requests (`token_requests(request)` is true) are kept apart: recorded in
    `token_posts` and answered from `tokens` first, then by `mint(n)`. Once the script is
    used up, `then(n)` answers the n-th request; without it the request fails the test."""

    def __init__(
        self,
        *replies: Reply,
        token_requests: Callable[[httpx.Request], bool] | None = None,
        tokens: Iterable[Reply] = (),
        mint: Callable[[int], Reply] = zoho_token,
        then: Callable[[int], Reply] | None = None,
    ) -> None:
        super().__init__(self._handle)
        self.replies: list[Reply] = list(replies)
        self.requests: list[httpx.Request] = []
        self.tokens: list[Reply] = list(tokens)
        self.token_posts: list[httpx.Request] = []
        self._is_token = token_requests
        self._mint = mint
        self._then = then
        self._lock = threading.Lock()

    def _handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._is_token is not None and self._is_token(request):
                self.token_posts.append(request)
                reply = self.tokens.pop(0) if self.tokens else self._mint(len(self.token_posts))
            else:
                self.requests.append(request)
                if self.replies:
                    reply = self.replies.pop(0)
                elif self._then is not None:
                    reply = self._then(len(self.requests))
                else:
                    raise AssertionError(f"no reply scripted for {request.method} {request.url}")
        return answer(reply, request)


class GatedTransport(httpx.BaseTransport):
    """Real HTTP to the local vendor fakes, except that requests whose path contains `hold`
    wait until `release()`: a vendor that never answers. `entered` is set once one waits."""

    def __init__(self, hold: str) -> None:
        self.hold = hold
        self.entered = threading.Event()
        self._gate = threading.Event()
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.hold in request.url.path:
            self.entered.set()
            self._gate.wait()
        return self._inner.handle_request(request)

    def release(self) -> None:
        self._gate.set()

    def close(self) -> None:
        self._gate.set()
        self._inner.close()
