"""Small parsing and safety helpers every vendor module shares."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

import httpx

from .base import RefError, SeenKeys, TransientError, parse_retry_after

T = TypeVar("T")

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


# --- vendor values ----------------------------------------------------------------------------


def as_count(value: object) -> int | None:
    """A count or code from an int or a numeric string (docs/vendors.md#counts-and-codes); None when
    not a whole number."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if text.isascii() and text.isdigit() else None


def as_text(value: object, *, ensure_ascii: bool = False) -> str:
    """Vendor text as a string: None is "", other non-strings become compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=ensure_ascii, separators=(",", ":"))


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines too) as one space, trimmed."""
    return " ".join(text.split())


def as_code(value: object) -> str:
    """A vendor code as text: 1004, "1004" and " 1004 " all become "1004"."""
    return str(n) if (n := as_count(value)) is not None else as_text(value).strip()


# --- what reaches users -----------------------------------------------------------------------


def redact(text: str, secrets: Iterable[str]) -> str:
    """Vendor text is quoted to users; make sure it can't carry one of our secrets along."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def safe_cell(value: str) -> str:
    """Stop spreadsheets from running vendor text as a formula (CSV injection)."""
    return "'" + value if value.startswith(FORMULA_LEADS) else value


def csv_bytes(rows: Iterable[Iterable[object]]) -> bytes:
    """UTF-8 CSV of `rows` (header included); every cell goes through `safe_cell`, and cells
    that are not strings through `as_text` first."""
    buf = io.StringIO()
    csv.writer(buf).writerows([safe_cell(as_text(cell)) for cell in row] for row in rows)
    return buf.getvalue().encode("utf-8")


def ref_error(cleaned: str, what: str, expected: str, why: str, example: str) -> RefError:
    """The RefError for a job reference that failed validation, quoting (the start of) it."""
    shown = cleaned[:60].replace("`", "'") + ("…" if len(cleaned) > 60 else "")
    return RefError(f"`{shown}` is not {what}: expected {expected}, {why} (e.g. {example})")


def warn_once(
    log: logging.Logger, seen: SeenKeys | None, key: Hashable, message: str, *args: object
) -> None:
    """Log `message` the first time `key` shows up in `seen` (the vendor context's): an
    unknown vendor status is said once per value, not once per poll. Without `seen` (a
    parser called on its own) it is said each time."""
    if seen is None or seen.first(key):
        log.warning(message, *args)


# --- HTTP -------------------------------------------------------------------------------------


def guarded(call: Callable[[], T], *, timeout: str, unreachable: str, chain: bool = True) -> T:
    """`call()`, with httpx timeouts and transport failures as TransientError: `timeout` as it
    stands, `unreachable` followed by the error's type name. With `chain=False` the httpx
    error is not attached at all (not even as __context__): it holds the request, URL and all."""
    try:
        return call()
    except httpx.TransportError as exc:  # timeouts are transport errors too
        if isinstance(exc, httpx.TimeoutException):
            why = timeout
        else:
            why = f"{unreachable} ({type(exc).__name__})"
        if chain:
            raise TransientError(why) from exc
    raise TransientError(why)  # outside the handler, so nothing rides along


def send(
    http: httpx.Client,
    method: str,
    url: str | httpx.URL,
    *,
    vendor: str,
    chain: bool = True,
    **kwargs: Any,
) -> httpx.Response:
    """One request; a timeout or transport failure becomes a TransientError naming `vendor`."""
    return guarded(
        lambda: http.request(method, url, **kwargs),
        timeout=f"{vendor} did not answer in time",
        unreachable=f"could not reach {vendor}",
        chain=chain,
    )


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The reply's body when it is a JSON object; else None, which every caller treats as a
    garbage reply (docs/vendors.md#counts-and-codes): not JSON, not in a Unicode encoding,
    nested deeper than Python's decoder goes (RecursionError), or not an object."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return body if isinstance(body, dict) else None


def unreadable(response: httpx.Response, vendor: str) -> TransientError:
    """The error for a reply whose body we can't use, naming its content type."""
    kind = response.headers.get("content-type", "").split(";")[0].strip()[:40]
    detail = (kind or "no type") if response.content else "empty body"
    return TransientError(
        f"{vendor} sent an unreadable reply (HTTP {response.status_code}, {detail})"
    )


def retry_after_from(
    headers: httpx.Headers, now: float, *, ms: bool = False, reset: bool = False
) -> float | None:
    """Seconds to wait from `Retry-After` (delta seconds or HTTP date). With `ms`, Micro's
    `retry-after-ms` comes first (the more precise of the two); with `reset`, Zuora's
    `ratelimit-reset` (delta seconds) is the fallback. None when nothing usable was sent."""
    if ms:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except (KeyError, ValueError):
            pass
    wait = parse_retry_after(headers.get("Retry-After"), now)
    if wait is not None or not reset:
        return wait
    try:
        seconds = float(headers.get("ratelimit-reset", ""))
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86_400 else None  # also rejects NaN and epoch-style values


def account_key(vendor: str, *parts: str) -> str:
    """A short, printable name for the vendor account that `parts` identify (a hash: the
    parts may include a secret's hash, never to be shown). Connections with the same key
    share one token bucket (VendorPool.budget)."""
    return hashlib.sha256("\0".join((vendor, *parts)).encode()).hexdigest()[:16]
