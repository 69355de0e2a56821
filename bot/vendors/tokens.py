"""OAuth access tokens: a single-flight cache per set of credentials, shared by vendor clients."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

import httpx

from .base import Clock, TransientError, VendorContext
from .common import guarded

A = TypeVar("A")
Mint = Callable[[float], tuple[str, float]]  # now -> (access token, lifetime in seconds)


def post_form(
    http: httpx.Client, url: str, form: dict[str, str], *, timeout: str, unreachable: str
) -> httpx.Response:
    """POST `form` to a token endpoint as the body, never as query params (secrets would sit
    in a URL: access logs, proxies), and with no Authorization header. Timeouts and transport
    failures become TransientError, as `guarded` words them."""
    request = http.build_request("POST", url, data=form)
    request.headers.pop("Authorization", None)  # the token endpoint gets no bearer token
    return guarded(lambda: http.send(request), timeout=timeout, unreachable=unreachable)


class TokenSource(Protocol):
    """What a download needs from a vendor's auth: the token, and a way to refuse it."""

    def access_token(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


def _ignore(token: str) -> None:
    pass


class TokenCache:
    """One cached access token, minted single-flight: the lock is held across `mint`, so
    callers that find the token missing or due wait for one request instead of each sending
    their own.

    A token is refreshed `margin` seconds before it expires, or at half-life when it lives
    shorter than that. When a refresh fails transiently (RateLimitedError included), the
    current token is still handed out until it expires. Vendor auth classes subclass this
    and pass their own token request as `mint`.
    """

    def __init__(
        self, mint: Mint, clock: Clock, margin: float, on_mint: Callable[[str], None] = _ignore
    ) -> None:
        self._mint = mint
        self._on_mint = on_mint  # told each new token (the redactor: vendors may echo it)
        self._clock = clock
        self._margin = margin
        self._lock = threading.Lock()  # held across the mint: that is the single flight
        self._token: str | None = None
        self._refresh_at = 0.0  # clock time after which we refresh proactively
        self._expires_at = 0.0  # clock time after which the vendor rejects the token

    def __repr__(self) -> str:  # never the token
        return f"{type(self).__name__}(cached={self._token is not None})"

    def access_token(self) -> str:
        """A valid access token, minting one when missing or due for a refresh."""
        with self._lock:
            now = self._clock()
            if self._token is not None and now < self._refresh_at:
                return self._token
            try:
                token, lifetime = self._mint(now)
            except TransientError:
                # A failed proactive refresh need not fail the caller: the old token still works.
                if self._token is not None and now < self._expires_at:
                    return self._token
                raise
            self._on_mint(token)  # before any request can carry it, so any echo is redacted
            self._refresh_at = now + max(lifetime - self._margin, lifetime / 2)
            self._expires_at = now + lifetime
            self._token = token
            return token

    def invalidate(self, token: str) -> None:
        """Forget `token` if it is still current, so several rejecting callers cause one mint."""
        with self._lock:
            if self._token is not None and self._token == token:
                self._token = None
                self._refresh_at = self._expires_at = 0.0


def shared_auth(
    cls: type[A],
    make: Callable[[], A],
    ctx: VendorContext,
    kind: str,
    origin: str,
    *credentials: str,
) -> A:
    """The one `cls` made by `make()` per (`kind`, `origin`, credentials) in `ctx.shared`, so
    every vendor client of those credentials uses one token cache. The credentials are hashed
    into the key, so it is safe to print; equal credentials still map to one cache."""
    digest = hashlib.sha256("\0".join(credentials).encode()).hexdigest()
    key = (kind, origin, digest)
    with ctx.shared_lock:
        auth = ctx.shared.get(key)
        if not isinstance(auth, cls):
            auth = make()
            ctx.shared[key] = auth
        return auth
