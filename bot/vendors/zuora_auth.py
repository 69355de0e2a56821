"""Zuora OAuth client credentials: connection settings and the shared bearer-token cache."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cached_property

from .base import AuthError, RateLimitedError, TransientError, VendorContext
from .common import account_key, as_count, as_text, json_object, one_line, retry_after_from
from .tokens import TokenCache, post_form, shared_auth

log = logging.getLogger(__name__)

REFRESH_MARGIN_S = 300.0  # refresh this long before expiry, so no poll uses a dying token
DEFAULT_EXPIRES_IN_S = 3600.0
CLIENT_HINT = "check ZUORA_ENV / ZUORA_BASE_URL (the tenant's environment) and the OAuth client"


@dataclass(frozen=True)
class ZuoraConnection:
    """One Zuora tenant as configured. `base_url` is an origin: ZUORA_BASE_URL when set,
    else the ZUORA_ENV entry. `overridden` is True when it came from ZUORA_BASE_URL.
    `rate_per_minute` is the operator's token-bucket rate (None: the vendor's default)."""

    name: str
    client_id: str
    client_secret: str
    base_url: str
    env: str | None = None
    overridden: bool = False
    rate_per_minute: float | None = None

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return f"ZuoraConnection(name={self.name!r}, base_url={self.base_url!r})"

    @cached_property
    def rate_key(self) -> str:
        """The Zuora tenant this connection spends requests of, safe to print: a hash of the
        base URL and the OAuth client. Connection names for one client share one bucket."""
        return account_key("zuora", self.base_url, self.client_id)


class ZuoraAuth(TokenCache):
    """One cached bearer token per (base URL, OAuth client), minted single-flight
    (docs/vendors.md#zuora-auth).

    The token endpoint allows 100 calls/min per IP, so every Zuora vendor of a client shares
    one instance (see `auth_for`) and callers never mint per request.
    """

    def __init__(self, conn: ZuoraConnection, ctx: VendorContext) -> None:
        super().__init__(
            self._mint_token,
            ctx.clock,
            REFRESH_MARGIN_S,
            on_mint=lambda token: ctx.redactor.remember(("zuora", conn.name), token),
        )
        self._conn = conn
        self._ctx = ctx

    def __repr__(self) -> str:
        return f"ZuoraAuth(connection={self._conn.name!r})"

    def _mint_token(self, now: float) -> tuple[str, float]:
        form = {
            "client_id": self._conn.client_id,
            "client_secret": self._conn.client_secret,
            "grant_type": "client_credentials",
        }
        response = post_form(  # a form body, no Authorization header (docs/vendors.md#zuora-auth)
            self._ctx.http,
            f"{self._conn.base_url}/oauth/token",
            form,
            timeout="Zuora did not answer the token request in time",
            unreachable="could not reach Zuora for a token",
        )
        status = response.status_code
        if status >= 500 or status == 408:
            raise TransientError(f"Zuora answered HTTP {status} to the token request")
        if status == 429:
            raise RateLimitedError(
                "Zuora rate limit on the token endpoint (HTTP 429)",
                code="429",
                retry_after=retry_after_from(response.headers, now, reset=True),
            )
        body = json_object(response)
        token = body.get("access_token") if body else None
        if status == 200 and isinstance(token, str) and token:
            lifetime = as_count((body or {}).get("expires_in")) or 0
            log.info("minted a Zuora access token for connection %r", self._conn.name)
            return token, lifetime if lifetime > 0 else DEFAULT_EXPIRES_IN_S
        if status < 300:
            raise TransientError(f"Zuora sent an unreadable token reply (HTTP {status})")
        error = one_line(as_text(body.get("error"))) if body else ""
        why = error if re.fullmatch(r"[a-z_]{1,40}", error) else f"HTTP {status}"
        raise AuthError(f"Zuora refused the OAuth client ({why}); {CLIENT_HINT}", code=why)


def auth_for(conn: ZuoraConnection, ctx: VendorContext) -> ZuoraAuth:
    """The one ZuoraAuth of this base URL and client, shared by every Zuora vendor in `ctx`."""
    return shared_auth(
        ZuoraAuth,
        lambda: ZuoraAuth(conn, ctx),
        ctx,
        "zuora-auth",
        conn.base_url,
        conn.client_id,
        conn.client_secret,
    )
