"""Zuora AQuA result files: streamed downloads under a byte cap, gzip unpacking, upload names."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import urlsplit

import httpx

from . import archives
from .archives import CHUNK, ArchiveError, gunzip_stream, remove_quietly, spool
from .base import (
    FileRef,
    JobSnapshot,
    RateLimitedError,
    ResultFile,
    TransientError,
    VendorContext,
    status_key,
)
from .common import guarded, retry_after_from
from .tokens import TokenSource

ERROR_BODY_MAX = 16 * 1024  # enough of an error body to find `max-object-size` or `reasons`
NAME_MAX = 80
HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_EXT = {"csv": ".csv", "zip": ".zip", "gzip": ".csv.gz"}
_PERMISSION = 'the API user may need the "Enable DataSource Exports Reporting" permission'


class _OverCap(Exception):
    """The download passed the cap; the partial file is already gone."""


class _Refused(NamedTuple):
    """A non-200 download reply, with the start of its body."""

    status: int
    headers: httpx.Headers
    body: bytes


def extension(fmt: str | None, content_type: str = "") -> str:
    """Upload suffix: what the served Content-Type says the bytes are, else the job's `format`."""
    kind = content_type.lower()
    if "gzip" in kind:
        return ".csv.gz"
    if "zip" in kind:
        return ".zip"
    if "csv" in kind:
        return ".csv"
    return _EXT.get(fmt or "", ".csv")


def sniff(path: str) -> str | None:
    """Suffix from the file's magic bytes (the truth, whatever the headers said); None if empty."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head:
        return None
    if head.startswith(b"\x1f\x8b"):
        return ".csv.gz"
    return ".zip" if head in (b"PK\x03\x04", b"PK\x05\x06") else ".csv"


def upload_name(name: str, file_id: str, part: int | None, ext: str) -> str:
    """A Slack filename from vendor text: safe characters only, no leading dots, ≤80 chars."""
    base = _UNSAFE.sub("_", name).strip(" ._")[:NAME_MAX].rstrip(" ._") or file_id
    return f"{base}-part{part}{ext}" if part else f"{base}{ext}"


def gunzip_capped(src: BinaryIO, dst: BinaryIO, cap: int) -> bool:
    """`archives.gunzip_stream` on open files, where damaged gzip is just False: the file is
    then posted as served."""
    try:
        return gunzip_stream(src, dst, cap)
    except ArchiveError:
        return False


def header_only(path: str) -> bool:
    """True for a CSV with at most one non-blank line (Zuora writes the header for 0 rows)."""
    with open(path, "rb") as fh:
        head = fh.read(CHUNK + 1)
    return len(head) <= CHUNK and sum(1 for line in head.splitlines() if line.strip()) <= 1


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:g}"


class ResultDownloader:
    """Downloads one terminal job's result files into the spool directory
    (docs/vendors.md#zuora-result-files)."""

    def __init__(
        self, ctx: VendorContext, base_url: str, auth: TokenSource, redact: Callable[[str], str]
    ) -> None:
        self._ctx = ctx
        self._base = base_url
        self._auth = auth
        self._redact = redact

    def results(self, job_id: str, snapshot: JobSnapshot) -> list[ResultFile]:
        if not snapshot.files:
            return []
        encrypted = dict(snapshot.facts).get("encrypted", "")
        if encrypted and status_key(encrypted) != "none":
            how = "PGP-encrypted" if status_key(encrypted) == "pgp" else f"encrypted ({encrypted})"
            note = f"The results of AQuA job {job_id} are {how}; download them in Zuora."
            return [ResultFile(filename=job_id, title=f"AQuA job {job_id}", note=note)]
        parts = Counter(f.name for f in snapshot.files if f.part is not None)
        done: list[ResultFile] = []
        try:
            for ref in snapshot.files:
                done.append(self._one(ref, parts[ref.name]))
        except BaseException:
            # The caller retries the whole job later: leave nothing behind in the spool.
            for rf in done:
                if rf.path:
                    remove_quietly(rf.path)
            raise
        return done

    def _one(self, ref: FileRef, parts: int) -> ResultFile:
        label = f"{ref.name} (part {ref.part} of {parts})" if ref.part else ref.name
        records = f"{ref.records:,} records" if ref.records is not None else "records unknown"
        ext = extension(ref.fmt)
        name = upload_name(ref.name, ref.file_id, ref.part, ext)
        if not HEX32.fullmatch(ref.file_id):  # snapshots come back from the store: re-check
            return ResultFile(name, ref.name, note=f"{label}: the result file id is not valid")
        try:
            got = self._fetch(ref.file_id, ext)
        except _OverCap:
            note = (
                f"{label}: {records}; the file is over the {_mb(self._ctx.max_file_bytes)} MB "
                f"limit for Slack (file id {ref.file_id}); download it in Zuora"
            )
            return ResultFile(name, ref.name, note=note)
        if isinstance(got, str):
            return ResultFile(name, ref.name, note=f"{label}: {got}")
        path, served_type = got
        try:
            ext = sniff(path) or extension(ref.fmt, served_type)
            if ext == ".csv.gz":
                path, ext = self._maybe_gunzip(path)
            empty = os.path.getsize(path) == 0 or (
                ext == ".csv" and ref.records == 0 and header_only(path)
            )
        except BaseException:
            remove_quietly(path)
            raise
        if empty:
            remove_quietly(path)
            return ResultFile(name, ref.name, note=f"{label}: no records")
        comment = records + (f" · part {ref.part} of {parts}" if ref.part else "")
        return ResultFile(
            upload_name(ref.name, ref.file_id, ref.part, ext), ref.name, comment, path=path
        )

    def _fetch(self, file_id: str, ext: str) -> tuple[str, str] | str:
        """(spool path, content type), or a note saying why there is no file."""
        paths = [f"/v1/files/{file_id}", f"/v1/file/{file_id}"]  # plural documented; singular once
        token = self._auth.access_token()
        refreshed = False
        while True:
            got = self._stream(paths[0], token, ext)
            if not isinstance(got, _Refused):
                return got
            if got.status == 401 and not refreshed:
                refreshed = True
                self._auth.invalidate(token)
                token = self._auth.access_token()
            elif got.status == 404 and len(paths) > 1:
                paths.pop(0)
            else:
                return self._refusal(got, file_id)

    def _stream(self, path: str, token: str, ext: str) -> tuple[str, str] | _Refused:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "*/*",
            "Accept-Encoding": "identity",  # so Content-Length is the file's size
        }
        url = f"{self._base}{path}"

        def fetch() -> tuple[str, str] | _Refused:
            with self._ctx.http.stream("GET", url, headers=headers) as resp:
                if resp.status_code != 200:
                    return _Refused(resp.status_code, resp.headers, _read_capped(resp))
                kind = resp.headers.get("content-type", "")
                if kind.lower().startswith("text/html"):
                    raise TransientError("Zuora sent an HTML page instead of the result file")
                size = resp.headers.get("content-length", "").strip()
                if size.isdigit() and int(size) > self._ctx.max_file_bytes:
                    raise _OverCap
                return self._spool(resp, ext), kind

        return guarded(
            fetch,
            timeout="Zuora did not send the result file in time",
            unreachable="could not download the result file from Zuora",
        )

    def _spool(self, resp: httpx.Response, ext: str) -> str:
        return spool(
            resp.iter_bytes(CHUNK),
            self._ctx.spool_dir,
            prefix="zuora-",
            suffix=ext,
            cap=self._ctx.max_file_bytes,
            over=_OverCap,
        )

    def _maybe_gunzip(self, gz_path: str) -> tuple[str, str]:
        """Post the CSV inside a gzip when it fits under the cap; else the .gz as served."""
        fd, csv_path = tempfile.mkstemp(dir=self._ctx.spool_dir, prefix="zuora-", suffix=".csv")
        os.close(fd)
        try:
            fits = archives.gunzip_capped(gz_path, csv_path, self._ctx.max_file_bytes)
        except ArchiveError:  # damaged or truncated: posted as served
            fits = False
        if not fits:
            remove_quietly(csv_path)
            return gz_path, ".csv.gz"
        remove_quietly(gz_path)
        return csv_path, ".csv"

    def _refusal(self, resp: _Refused, file_id: str) -> str:
        status, body = resp.status, resp.body
        if status == 429:
            raise RateLimitedError(
                "Zuora rate limit on a result download (HTTP 429)",
                code="429",
                retry_after=retry_after_from(resp.headers, self._ctx.clock(), reset=True),
            )
        if status >= 500 or status == 408:
            raise TransientError(f"Zuora answered HTTP {status} to a result download")
        if status == 404:
            return (
                f"the result file is no longer available: Zuora keeps result files for 3 days "
                f"(file id {file_id})"
            )
        if status == 403 and b"max-object-size" in body.lower():
            return (
                f"the file is over Zuora's 2,047 MB download limit (file id {file_id}); "
                "split the query to get smaller files"
            )
        if status == 403:
            return f"Zuora refused the download (HTTP 403); {_PERMISSION} (file id {file_id})"
        if status == 401:
            return f"Zuora rejected the credentials for the download (HTTP 401, file id {file_id})"
        if 300 <= status < 400:
            host = urlsplit(resp.headers.get("location", "")).hostname or "an unknown host"
            return (
                f"Zuora redirected the download to {host[:80]}, which is not followed "
                f"(file id {file_id}); download it in Zuora"
            )
        detail = self._redact(_reasons_of(body))
        return f"Zuora refused the download (HTTP {status}{': ' + detail if detail else ''})"


def _read_capped(resp: httpx.Response) -> bytes:
    got = b""
    for chunk in resp.iter_bytes(CHUNK):
        got += chunk
        if len(got) >= ERROR_BODY_MAX:
            break
    return got[:ERROR_BODY_MAX]


def _reasons_of(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # garbage, as in common.json_object
        return ""
    return reasons_text(data) if isinstance(data, dict) else ""


def reasons_text(data: dict[str, Any]) -> str:
    """`code: message` pairs of a Zuora error body (`reasons[]`), else its `message`."""
    reasons = data.get("reasons")
    pairs = []
    for r in reasons if isinstance(reasons, list) else ():
        if isinstance(r, dict):
            pair = [str(r[k]) for k in ("code", "message") if r.get(k) not in (None, "")]
            pairs.append(": ".join(pair))
    if not any(pairs):  # AQuA's own shape: `errorCode` + `message`
        pairs = [": ".join(str(data[k]) for k in ("errorCode", "message") if data.get(k))]
    text = "; ".join(p for p in pairs if p)
    return " ".join(text.split())[:300]
