"""API tokens and callback keys: minted, hashed, compared (pure, no I/O).

A token is `swt_` and 43 URL-safe characters (32 random bytes); its callback key is `swh_`
and 32 characters derived from the token's SHA-256, so the database and the config file
hold only hashes and the key can still be printed again (`syncwatch hook-url`). The key is
not the token: a vendor that logs a callback URL gives away the power to nudge polls and
start watches in the token's channels, not the API (docs/architecture.md#api-tokens).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

TOKEN_PREFIX = "swt_"
HOOK_PREFIX = "swh_"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
TOKEN_SHAPE = re.compile(r"^swt_[A-Za-z0-9_-]{43}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
# A token's key is derived under this label, so it is no other hash of the token.
_HOOK_LABEL = b"syncwatch callback key\x00"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """SHA-256 of a token or a key, hex: what is stored and looked up."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def hook_key(token_digest: str) -> str:
    """The callback key of the token whose SHA-256 is `token_digest`."""
    raw = hashlib.sha256(_HOOK_LABEL + token_digest.encode("ascii")).digest()
    return HOOK_PREFIX + base64.b32encode(raw).decode("ascii").lower().rstrip("=")[:32]


def same(a: str, b: str) -> bool:
    """Compare two digests in constant time."""
    return hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))
