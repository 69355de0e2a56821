"""ZohoAuth: cached, single-flight token refresh and its failure modes
(docs/vendors.md#zoho-token-refresh)."""

from __future__ import annotations

import logging
import threading
from urllib.parse import parse_qs

import httpx
import pytest

from bot.vendors.base import (
    AuthError,
    RateLimitedError,
    TransientError,
    VendorContext,
    VendorError,
    build_http_client,
)
from bot.vendors.zoho_auth import ZohoAuth, ZohoConnection, auth_for
from tests.fakes import FakeClock, Reply, ScriptedTransport, zoho_connection

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"
REFRESH_TOKEN = "test-refresh-token"
ACCOUNTS = "https://accounts.zoho.test"


def make_conn(refresh_token: str = REFRESH_TOKEN) -> ZohoConnection:
    return zoho_connection(refresh_token=refresh_token, accounts_url=ACCOUNTS)


class TokenServer:
    """Accounts endpoint: plays scripted replies, then mints `test-access-token-<n>`."""

    def __init__(self, *replies: Reply) -> None:
        transport = ScriptedTransport(*replies, then=minted)
        self.replies, self.requests = transport.replies, transport.requests
        self.clock = FakeClock(1_700_000_000.0)
        self.ctx = VendorContext(http=build_http_client(transport), clock=self.clock)

    def auth(self) -> ZohoAuth:
        return auth_for(make_conn(), self.ctx)


def minted(n: int, expires_in: object = 3600) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": f"test-access-token-{n}",
            "expires_in": expires_in,
            "api_domain": "https://www.zohoapis.test",
            "token_type": "Bearer",
        },
    )


def test_refresh_posts_a_form_body_without_authorization() -> None:
    server = TokenServer()
    auth = server.auth()

    assert auth.access_token() == "test-access-token-1"

    (request,) = server.requests
    assert request.method == "POST"
    assert str(request.url) == f"{ACCOUNTS}/oauth/v2/token"  # no query string: no secret in URL
    assert "authorization" not in request.headers
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH_TOKEN],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    assert auth.api_domain == "https://www.zohoapis.test"


def test_token_is_cached_until_expires_in_minus_300_then_refreshed() -> None:
    server = TokenServer()
    auth = server.auth()
    start = server.clock.now

    assert auth.access_token() == "test-access-token-1"
    server.clock.now = start + 3299
    assert auth.access_token() == "test-access-token-1"
    assert len(server.requests) == 1

    server.clock.now = start + 3300
    assert auth.access_token() == "test-access-token-2"
    assert len(server.requests) == 2


def test_expires_in_as_string_and_short_lifetimes() -> None:
    server = TokenServer(minted(1, expires_in="3600"), minted(2, expires_in=200))
    auth = server.auth()
    start = server.clock.now
    auth.access_token()
    server.clock.now = start + 3300
    assert auth.access_token() == "test-access-token-2"
    # A 200 s token refreshes at half-life, not on every call.
    server.clock.now += 99
    assert auth.access_token() == "test-access-token-2"
    server.clock.now += 1
    assert auth.access_token() == "test-access-token-3"


class CountingLock:
    """Wraps the auth lock so the test knows when every thread is waiting on it."""

    def __init__(self, inner: threading.Lock, cond: threading.Condition) -> None:
        self.inner = inner
        self.cond = cond
        self.arrived = 0

    def __enter__(self) -> None:
        with self.cond:
            self.arrived += 1
            self.cond.notify_all()
        self.inner.acquire()

    def __exit__(self, *exc: object) -> None:
        self.inner.release()


def test_concurrent_callers_cause_exactly_one_refresh() -> None:
    threads_n = 8
    cond = threading.Condition()
    lock: CountingLock | None = None

    def slow_mint(request: httpx.Request) -> httpx.Response:
        # Hold the refresh open until every other thread is queued behind the lock.
        with cond:
            assert cond.wait_for(lambda: lock is not None and lock.arrived == threads_n, 5)
        return minted(1)

    server = TokenServer(slow_mint)
    auth = server.auth()
    lock = CountingLock(auth._lock, cond)
    auth._lock = lock  # type: ignore[assignment]
    results: list[str] = []
    barrier = threading.Barrier(threads_n)

    def worker() -> None:
        barrier.wait()
        results.append(auth.access_token())

    threads = [threading.Thread(target=worker) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert results == ["test-access-token-1"] * threads_n
    assert len(server.requests) == 1


def test_invalidate_forgets_only_the_current_token() -> None:
    server = TokenServer()
    auth = server.auth()
    first = auth.access_token()

    auth.invalidate(first)
    second = auth.access_token()
    assert second == "test-access-token-2"

    auth.invalidate(first)  # a second watch that also saw the old token rejected
    assert auth.access_token() == second
    assert len(server.requests) == 2


def test_auth_for_shares_one_cache_per_credentials() -> None:
    server = TokenServer()
    one = auth_for(make_conn(), server.ctx)
    assert auth_for(make_conn(), server.ctx) is one
    assert auth_for(make_conn(refresh_token="other-refresh-token"), server.ctx) is not one

    keys = list(server.ctx.shared)
    assert all(isinstance(k, tuple) and k[0] == "zoho-auth" for k in keys)
    assert not any(secret in repr(keys) for secret in (REFRESH_TOKEN, CLIENT_SECRET, CLIENT_ID))


def test_auth_for_is_thread_safe() -> None:
    server = TokenServer()
    barrier = threading.Barrier(8)
    found: list[ZohoAuth] = []

    def worker() -> None:
        barrier.wait()
        found.append(auth_for(make_conn(), server.ctx))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(found) == 8 and all(a is found[0] for a in found)


def test_invalid_code_is_an_auth_error() -> None:
    server = TokenServer(httpx.Response(200, json={"error": "invalid_code"}))
    with pytest.raises(AuthError) as info:
        server.auth().access_token()
    assert info.value.message == (
        "Zoho rejected the refresh token (invalid_code): it is wrong or revoked"
    )


def test_invalid_client_hints_at_the_data_centre() -> None:
    server = TokenServer(httpx.Response(400, json={"error": "invalid_client"}))
    with pytest.raises(AuthError) as info:
        server.auth().access_token()
    assert "invalid_client" in info.value.message
    assert "ZOHO_DC" in info.value.message


def test_other_refusals_are_auth_errors() -> None:
    server = TokenServer(httpx.Response(400, json={"error": "invalid_request"}))
    with pytest.raises(AuthError):
        server.auth().access_token()


@pytest.mark.parametrize(
    "body",
    [{"error": "Access Denied"}, {}, {"token_type": "Bearer"}, {"access_token": ""}],
    ids=["access-denied", "empty", "no-access-token", "blank-token"],
)
def test_mint_throttle_pauses_refreshes_for_ten_minutes(body: dict[str, str]) -> None:
    server = TokenServer(httpx.Response(200, json=body))
    auth = server.auth()
    start = server.clock.now

    with pytest.raises(RateLimitedError) as info:
        auth.access_token()
    assert info.value.retry_after == 600

    server.clock.now = start + 420
    with pytest.raises(RateLimitedError) as info:
        auth.access_token()
    assert info.value.retry_after == pytest.approx(180)
    server.clock.now = start + 599
    with pytest.raises(RateLimitedError):
        auth.access_token()
    assert len(server.requests) == 1  # no request at all during the pause

    server.clock.now = start + 600
    assert auth.access_token() == "test-access-token-2"
    assert len(server.requests) == 2


def test_throttle_keeps_serving_a_token_that_still_works() -> None:
    server = TokenServer(minted(1), httpx.Response(200, json={"error": "Access Denied"}))
    auth = server.auth()
    start = server.clock.now
    auth.access_token()
    server.clock.now = start + 3400  # inside the 300 s margin, before real expiry

    assert auth.access_token() == "test-access-token-1"  # refresh throttled, old token served
    assert auth.access_token() == "test-access-token-1"
    assert len(server.requests) == 2

    server.clock.now = start + 3600
    with pytest.raises(RateLimitedError):
        auth.access_token()


def test_failed_proactive_refresh_serves_the_old_token() -> None:
    server = TokenServer(minted(1), httpx.Response(503))
    auth = server.auth()
    start = server.clock.now
    auth.access_token()
    server.clock.now = start + 3400
    assert auth.access_token() == "test-access-token-1"
    assert auth.access_token() == "test-access-token-3"  # next call refreshes again


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(500),
        httpx.Response(502, text="<html>Bad gateway</html>"),
        httpx.Response(503, json={"error": "maintenance"}),
        # transport failures and unreadable replies in general: test_vendor_http.py
        httpx.ConnectError("connection refused"),
        httpx.Response(200, text='{"access_token": "test-acc'),
    ],
    ids=["500", "502", "503", "connect", "trunc"],
)
def test_transient_refresh_failures(reply: Reply) -> None:
    server = TokenServer(reply)
    auth = server.auth()
    with pytest.raises(TransientError) as info:
        auth.access_token()
    assert not isinstance(info.value, RateLimitedError)
    assert auth.access_token() == "test-access-token-2"  # no pause after a transient failure


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, json={"error": "invalid_code"}),
        httpx.Response(200, json={"error": "invalid_client"}),
        httpx.Response(200, json={"error": "Access Denied", "client_secret": CLIENT_SECRET}),
        httpx.Response(400, json={"error": "invalid_request", "echo": REFRESH_TOKEN}),
        httpx.Response(200, text=f"<html>{CLIENT_SECRET} {REFRESH_TOKEN}</html>"),
        httpx.Response(500, text=CLIENT_SECRET),
        httpx.ConnectError(f"failed for {REFRESH_TOKEN}"),
    ],
    ids=["invalid_code", "invalid_client", "throttle", "400", "html", "500", "connect"],
)
def test_no_secret_in_errors_or_logs(reply: Reply, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = TokenServer(minted(1), reply)
    auth = server.auth()
    token = auth.access_token()
    auth.invalidate(token)
    with pytest.raises(VendorError) as info:
        auth.access_token()
    shown = f"{info.value.message} {info.value} {info.value!r} {auth!r} {caplog.text}"
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, CLIENT_ID, token):
        assert secret not in shown
