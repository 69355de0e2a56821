"""Zoho OAuth: data-centre hosts, connection settings, and the shared access-token cache."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from .base import AuthError, RateLimitedError, TransientError, VendorContext, status_key
from .common import account_key, json_object, retry_after_from
from .tokens import TokenCache, post_form, shared_auth

T = TypeVar("T")


@dataclass(frozen=True)
class ZohoHosts:
    accounts: str
    analytics: str
    crm: str


# docs/vendors.md#zoho-data-centres. uk is left out on purpose: its Analytics and CRM hosts are
# unconfirmed.
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
    `rate_per_minute` is the operator's token-bucket rate (None: each vendor's default).
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
    rate_per_minute: float | None = None

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return f"ZohoConnection(name={self.name!r}, dc={self.dc!r})"

    @cached_property
    def rate_key(self) -> str:
        """The Zoho account this connection spends requests of, safe to print: a hash of the
        accounts host (the data centre) and the organization id, or of the OAuth client when
        no org id is set. Connection names for one account share one token bucket."""
        who = (
            f"org:{self.analytics_org_id}" if self.analytics_org_id else f"client:{self.client_id}"
        )
        return account_key("zoho", self.accounts_url, who)

    @property
    def secrets(self) -> tuple[str, str, str]:
        """What vendor text quoted to users must never carry (besides the access token)."""
        return (self.client_secret, self.refresh_token, self.client_id)


# --- Access-token cache (docs/vendors.md#zoho-token-refresh) --------------------------------------

log = logging.getLogger(__name__)

REFRESH_MARGIN_S = 300.0  # refresh this long before Zoho's expiry, so no poll uses a dying token
MINT_PAUSE_S = 600.0  # Zoho blocks minting for 10 min after the "Access Denied" throttle
DEFAULT_EXPIRES_IN_S = 3600.0  # Zoho's documented lifetime, used when `expires_in` is unreadable
_DC_HINT = (
    "check ZOHO_DC (or ZOHO_ACCOUNTS_URL): the accounts host must be the account's data centre"
)


class ZohoAuth(TokenCache):
    """One cached access token per (accounts host, client, refresh token), refreshed single-flight
    within 5 minutes of expiry (the `TokenCache`), plus Zoho's mint-throttle pause.

    Zoho lets a refresh token mint only 10 access tokens per 10 minutes, so every Zoho vendor of
    a connection shares one instance (see `auth_for`) and callers never mint per request.
    """

    def __init__(self, conn: ZohoConnection, ctx: VendorContext) -> None:
        super().__init__(
            self._refresh,
            ctx.clock,
            REFRESH_MARGIN_S,
            on_mint=lambda token: ctx.redactor.remember(("zoho", conn.name), token),
        )
        self._conn = conn
        self._ctx = ctx
        self._paused_until = 0.0  # mint throttle: no refresh request before this time
        self.api_domain: str | None = None  # CRM host from the token reply; unchecked, unused here

    def __repr__(self) -> str:  # keep the token and the connection's secrets out of any repr
        return f"ZohoAuth(connection={self._conn.name!r})"

    def with_token(self, attempt: Callable[[str], T], rejected: Callable[[str | None], str]) -> T:
        """`attempt(token)` with the shared token. When Zoho refuses the token (AuthError), it is
        refreshed once and the attempt made once more (docs/vendors.md#auth-refresh); a second
        refusal becomes AuthError(`rejected(code)`), the message users see."""
        token = self.access_token()
        for n in (1, 2):
            try:
                return attempt(token)
            except AuthError as exc:  # the token, not the job, was refused
                if n == 2:
                    raise AuthError(rejected(exc.code), code=exc.code) from None
                self.invalidate(token)  # only if no sibling already replaced it
                token = self.access_token()
        raise AssertionError("unreachable")

    def _refresh(self, now: float) -> tuple[str, float]:
        if now < self._paused_until:
            # RateLimitedError is transient: the cache still hands out a token Zoho accepts.
            remaining = self._paused_until - now
            raise RateLimitedError(
                f"Zoho token minting is paused for another {remaining:.0f} s "
                "(Zoho Accounts answered Access Denied)",
                retry_after=remaining,
            )
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._conn.refresh_token,
            "client_id": self._conn.client_id,
            "client_secret": self._conn.client_secret,
        }
        response = post_form(
            self._ctx.http,
            f"{self._conn.accounts_url}/oauth/v2/token",
            form,
            timeout="Zoho Accounts did not answer the token refresh in time",
            unreachable="could not reach Zoho Accounts for a token refresh",
        )
        status = response.status_code
        if status >= 500 or status == 408:
            raise TransientError(f"Zoho Accounts answered HTTP {status} to the token refresh")
        body = json_object(response)
        if body is None:
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
            domain = body.get("api_domain")
            self.api_domain = domain if isinstance(domain, str) else None
            log.info("refreshed the Zoho access token for connection %r", self._conn.name)
            return token, _lifetime(body)
        if status < 300 or status == 429 or status_key(error or "") == "accessdenied":
            # "Access Denied" (or any 200 without a token) is Zoho's mint throttle: asking
            # again inside the window only extends it, so stop asking for 10 minutes.
            wait = retry_after_from(response.headers, now) or MINT_PAUSE_S
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


def _lifetime(body: dict[str, Any]) -> float:
    """`expires_in` in seconds; Zoho's documented hour when it is missing or unreadable."""
    try:
        lifetime = float(body.get("expires_in", DEFAULT_EXPIRES_IN_S))
    except (TypeError, ValueError):
        lifetime = DEFAULT_EXPIRES_IN_S
    return lifetime if lifetime > 0 else DEFAULT_EXPIRES_IN_S  # NaN fails the test too


def auth_for(conn: ZohoConnection, ctx: VendorContext) -> ZohoAuth:
    """The one ZohoAuth of this connection's credentials, shared by every Zoho vendor in `ctx`."""
    return shared_auth(
        ZohoAuth,
        lambda: ZohoAuth(conn, ctx),
        ctx,
        "zoho-auth",
        conn.accounts_url,
        conn.client_id,
        conn.refresh_token,
    )
