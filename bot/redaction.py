"""One way to keep secrets out of what the bot says, stores and logs.

A `Redactor` knows the configured secrets (`Settings.secrets()`) and the access tokens the
bot minted at run time (the token caches register each one), and replaces any of them with
`[redacted]`. The vendor boundary (`bot/vendors/boundary.py`) runs every vendor string and
result file through it, and the log filter (`bot/cli.py`) every log line
(docs/vendors.md#vendor-text-boundary).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections import deque
from collections.abc import Hashable, Iterable
from typing import BinaryIO
from urllib.parse import quote, quote_plus

MARK = "[redacted]"
# Shorter values are ignored: they match ordinary words and ids (and a credential that short
# is not worth hiding). The command refusal (`Service.known_secrets`) uses the same floor.
MIN_SECRET_CHARS = 8
LIVE_TOKENS_KEPT = 4  # per token cache: the current token and the few before it
_CHUNK = 1024 * 1024


def spellings(secret: str) -> set[str]:
    """`secret` as a vendor may echo it: as is, inside a JSON string, inside a quoted CSV cell,
    and URL-encoded (a request URL quoted back carries its query that way)."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        secret.replace('"', '""'),
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }


class _Patterns:
    """The compiled matchers for one set of secrets (immutable: swapped whole on a change)."""

    def __init__(self, values: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted({v for s in values for v in spellings(s)}, key=len, reverse=True)
        encoded = sorted({v.encode("utf-8") for v in ordered}, key=len, reverse=True)
        self.text = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self.data = re.compile(b"|".join(map(re.escape, encoded))) if encoded else None
        self.encoded = tuple(encoded)
        self.longest = max(map(len, encoded), default=0)
        self.longest_chars = max(map(len, ordered), default=0)


class Redactor:
    """Replaces every known secret with `[redacted]`: exact substrings (regex metacharacters
    in a secret mean nothing), one linear pass. Thread-safe: `remember` swaps in new patterns
    under a lock, readers use whichever set was current when they started."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._static = frozenset(s for s in secrets if len(s) >= MIN_SECRET_CHARS)
        self._live: dict[Hashable, deque[str]] = {}
        self._lock = threading.Lock()
        self._patterns = _Patterns(self._static)

    def __repr__(self) -> str:  # never the values
        return f"Redactor({len(self._static)} configured, {len(self._live)} token caches)"

    def remember(self, cache: Hashable, token: str) -> None:
        """Redact `token` from now on: an access token `cache` minted. Only the last
        LIVE_TOKENS_KEPT of each cache are kept (older ones no longer work anyway)."""
        if len(token) < MIN_SECRET_CHARS:
            return
        with self._lock:
            kept = self._live.setdefault(cache, deque(maxlen=LIVE_TOKENS_KEPT))
            if token in kept:
                return
            kept.append(token)
            live = {t for tokens in self._live.values() for t in tokens}
            self._patterns = _Patterns(self._static | live)

    def values(self) -> frozenset[str]:
        """Every value redacted now (for tests that look for leaks)."""
        with self._lock:
            return self._static | {t for tokens in self._live.values() for t in tokens}

    def redact(self, text: str) -> str:
        pattern = self._patterns.text
        return pattern.sub(MARK, text) if pattern is not None else text

    def head_for(self, limit: int) -> int:
        """How much of a long text to redact when only its first `limit` characters are
        kept: every secret that could reach those characters once the ones before it are
        replaced (a secret of n characters becomes 10) is whole within it."""
        longest = self._patterns.longest_chars
        return limit * max(1, -(-longest // len(MARK))) + longest

    def redact_bytes(self, data: bytes) -> bytes:
        """`data` with every secret's UTF-8 bytes replaced; the same bytes when none occurs."""
        pattern = self._patterns.data
        return pattern.sub(MARK.encode(), data) if pattern is not None else data

    def redact_file(self, path: str) -> bool:
        """Redact the file at `path` in place; True when it held a secret. A file without
        one is not rewritten (its bytes stay exactly as they were). Read in chunks that
        overlap by the longest secret, so a secret across a chunk boundary is found too."""
        patterns = self._patterns
        if patterns.data is None or not _contains(path, patterns):
            return False
        directory = os.path.dirname(os.path.abspath(path))
        fd, scratch = tempfile.mkstemp(dir=directory, prefix="redacted-")
        try:
            with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
                _copy_redacted(src, dst, patterns)
            os.replace(scratch, path)
        except BaseException:
            if os.path.exists(scratch):
                os.unlink(scratch)
            raise
        return True


def _contains(path: str, patterns: _Patterns) -> bool:
    keep = patterns.longest - 1
    tail = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            window = tail + chunk
            if any(value in window for value in patterns.encoded):
                return True
            tail = window[-keep:] if keep else b""
    return False


def _copy_redacted(src: BinaryIO, dst: BinaryIO, patterns: _Patterns) -> None:
    """Copy `src` to `dst` with secrets replaced. A match is replaced only once it starts
    early enough in the window to be whole whatever follows (at least `longest` bytes
    before the window's end); the rest of the window carries over to the next read."""
    assert patterns.data is not None
    mark = MARK.encode()
    carry = b""
    while True:
        chunk = src.read(_CHUNK)
        window = carry + chunk
        final = not chunk
        safe = len(window) if final else max(0, len(window) - patterns.longest + 1)
        pos = 0
        for match in patterns.data.finditer(window):
            if match.start() >= safe:
                break
            dst.write(window[pos : match.start()])
            dst.write(mark)
            pos = match.end()
        if final:
            dst.write(window[pos:])
            return
        cut = max(pos, safe)
        dst.write(window[pos:cut])
        carry = window[cut:]
