"""Zoho OAuth: data-centre hosts, connection settings, and the shared access-token cache."""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from .base import (
    AuthError,
    RateLimitedError,
    TransientError,
    VendorContext,
    parse_retry_after,
    status_key,
)


@dataclass(frozen=True)
class ZohoHosts:
    accounts: str
    analytics: str
    crm: str


# vendors.md §2.1. uk is left out on purpose: its Analytics and CRM hosts are unconfirmed.
ZOHO_DCS: dict[str, ZohoHosts] = {
    "us": ZohoHosts("accounts.zoho.com", "analyticsapi.zoho.com", "www.zohoapis.com"),
    "eu": ZohoHosts("accounts.zoho.eu", "analyticsapi.zoho.eu", "www.zohoapis.eu"),
    "in": ZohoHosts("accounts.zoho.in", "analyticsapi.zoho.in", "www.zohoapis.in"),
    "au": ZohoHosts("accounts.zoho.com.au", "analyticsapi.zoho.com.au", "www.zohoapis.com.au"),
    "jp": ZohoHosts("accounts.zoho.jp", "analyticsapi.zoho.jp", "www.zohoapis.jp"),
    "cn": ZohoHosts("accounts.zoho.com.cn", "analyticsapi.zoho.com.cn", "www.zohoapis.com.cn"),
    "ca": ZohoHosts("accounts.zohocloud.ca", "analyticsapi.zohocloud.ca", "www.zohoapis.ca"),
    "sa": ZohoHosts("accounts.zoho.sa", "analyticsapi.zoho.sa", "www.zohoapis.sa"),
}


@dataclass(frozen=True)
class ZohoConnection:
    """One Zoho account as the operator configured it (env vars = connection `default`).

    `*_url` fields are origins (`scheme://host[:port]`), already resolved: an operator
    override when given, else the data centre's default host over https.
    `overridden` lists which of `accounts`, `analytics`, `crm` came from an override.
    """

    name: str
    client_id: str
    client_secret: str
    refresh_token: str
    dc: str
    analytics_org_id: str
    accounts_url: str
    analytics_api_url: str
    crm_api_url: str
    overridden: frozenset[str] = frozenset()

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return f"ZohoConnection(name={self.name!r}, dc={self.dc!r})"


# --- Access-token cache (vendors.md §2.2) -------------------------------------------------

log = logging.getLogger(__name__)

REFRESH_MARGIN_S = 300.0  # refresh this long before Zoho's expiry, so no poll uses a dying token
MINT_PAUSE_S = 600.0  # Zoho blocks minting for 10 min after the "Access Denied" throttle
DEFAULT_EXPIRES_IN_S = 3600.0  # Zoho's documented lifetime, used when `expires_in` is unreadable
_DC_HINT = (
    "check ZOHO_DC (or ZOHO_ACCOUNTS_URL): the accounts host must be the account's data centre"
)


class ZohoAuth:
    """One cached access token per (accounts host, client, refresh token), refreshed single-flight.

    Zoho lets a refresh token mint only 10 access tokens per 10 minutes, so every Zoho vendor of
    a connection shares one instance (see `auth_for`) and callers never mint per request.
    """

    def __init__(self, conn: ZohoConnection, ctx: VendorContext) -> None:
        self._conn = conn
        self._ctx = ctx
        self._lock = threading.Lock()  # held across the refresh POST: that is the single flight
        self._token: str | None = None
        self._refresh_at = 0.0  # clock time after which we refresh proactively
        self._expires_at = 0.0  # clock time after which Zoho rejects the token
        self._paused_until = 0.0  # mint throttle: no refresh request before this time
        self.api_domain: str | None = None  # CRM host from the token reply; unchecked, unused here

    def __repr__(self) -> str:  # keep the token and the connection's secrets out of any repr
        return f"ZohoAuth(connection={self._conn.name!r})"

    def access_token(self) -> str:
        """A valid access token, refreshing it when missing or within 5 minutes of expiry."""
        with self._lock:
            now = self._ctx.clock()
            if self._token is not None and now < self._refresh_at:
                return self._token
            if now < self._paused_until:
                # A token Zoho still accepts beats none while minting is blocked.
                if self._token is not None and now < self._expires_at:
                    return self._token
                remaining = self._paused_until - now
                raise RateLimitedError(
                    f"Zoho token minting is paused for another {remaining:.0f} s "
                    "(Zoho Accounts answered Access Denied)",
                    retry_after=remaining,
                )
            try:
                return self._refresh(now)
            except TransientError:
                # A failed proactive refresh need not fail the caller: the old token still works.
                if self._token is not None and now < self._expires_at:
                    return self._token
                raise

    def invalidate(self, token: str) -> None:
        """Forget `token` if it is still current, so several rejecting callers cause one refresh."""
        with self._lock:
            if self._token is not None and self._token == token:
                self._token = None
                self._refresh_at = self._expires_at = 0.0

    def _refresh(self, now: float) -> str:
        # Form body, not query params: secrets never sit in a URL (access logs, proxies).
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._conn.refresh_token,
            "client_id": self._conn.client_id,
            "client_secret": self._conn.client_secret,
        }
        request = self._ctx.http.build_request(
            "POST", f"{self._conn.accounts_url}/oauth/v2/token", data=form
        )
        request.headers.pop("Authorization", None)  # the token endpoint gets no bearer token
        try:
            response = self._ctx.http.send(request)
        except httpx.TimeoutException as exc:
            raise TransientError("Zoho Accounts did not answer the token refresh in time") from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"could not reach Zoho Accounts for a token refresh ({type(exc).__name__})"
            ) from exc
        status = response.status_code
        if status >= 500 or status == 408:
            raise TransientError(f"Zoho Accounts answered HTTP {status} to the token refresh")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            kind = response.headers.get("content-type", "no content type").split(";")[0][:40]
            raise TransientError(
                f"Zoho Accounts sent an unreadable token reply (HTTP {status}, {kind or 'empty'})"
            )
        error = body.get("error")
        if error == "invalid_code":
            raise AuthError(
                "Zoho rejected the refresh token (invalid_code): it is wrong or revoked"
            )
        if error == "invalid_client":
            raise AuthError(f"Zoho rejected the client id or secret (invalid_client); {_DC_HINT}")
        token = body.get("access_token")
        if 200 <= status < 300 and isinstance(token, str) and token and error is None:
            return self._store(body, token, now)
        if status < 300 or status == 429 or status_key(error or "") == "accessdenied":
            # "Access Denied" (or any 200 without a token) is Zoho's mint throttle: asking
            # again inside the window only extends it, so stop asking for 10 minutes.
            wait = parse_retry_after(response.headers.get("Retry-After"), now) or MINT_PAUSE_S
            self._paused_until = now + wait
            log.warning(
                "Zoho Accounts throttled the token refresh for connection %r; pausing %.0f s",
                self._conn.name,
                wait,
            )
            raise RateLimitedError(
                "Zoho Accounts is throttling token refreshes (Access Denied); "
                f"no refresh for {wait / 60:.0f} min",
                retry_after=wait,
            )
        raise AuthError(f"Zoho Accounts refused the token refresh (HTTP {status}); {_DC_HINT}")

    def _store(self, body: dict[str, Any], token: str, now: float) -> str:
        try:
            lifetime = float(body.get("expires_in", DEFAULT_EXPIRES_IN_S))
        except (TypeError, ValueError):
            lifetime = DEFAULT_EXPIRES_IN_S
        if not lifetime > 0:  # also catches NaN
            lifetime = DEFAULT_EXPIRES_IN_S
        # Short-lived tokens refresh at half-life rather than on every call (mint limit).
        self._refresh_at = now + max(lifetime - REFRESH_MARGIN_S, lifetime / 2)
        self._expires_at = now + lifetime
        self._token = token
        domain = body.get("api_domain")
        self.api_domain = domain if isinstance(domain, str) else None
        log.info("refreshed the Zoho access token for connection %r", self._conn.name)
        return token


_SHARED_LOCK = threading.Lock()  # guards creation of cache entries in ctx.shared


def auth_for(conn: ZohoConnection, ctx: VendorContext) -> ZohoAuth:
    """The one ZohoAuth of this connection's credentials, shared by every Zoho vendor in `ctx`."""
    # Hash the secrets so the key is safe to print; equal credentials still map to one cache.
    digest = hashlib.sha256(f"{conn.client_id}\0{conn.refresh_token}".encode()).hexdigest()
    key = ("zoho-auth", conn.accounts_url, digest)
    with _SHARED_LOCK:
        auth = ctx.shared.get(key)
        if not isinstance(auth, ZohoAuth):
            auth = ctx.shared[key] = ZohoAuth(conn, ctx)
        return auth
