"""Zoho CRM bulk write results: the result link check, the zip download, the CSV summary."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from .archives import CHUNK, ArchiveError, extract_single_csv, remove_quietly, size_text, spool
from .base import (
    FileRef,
    JobSnapshot,
    RateLimitedError,
    ResultFile,
    TransientError,
    VendorContext,
    status_key,
)
from .common import as_count, guarded, one_line, retry_after_from, safe_cell
from .tokens import TokenSource
from .zoho_auth import ZOHO_DCS, ZohoConnection

# docs/vendors.md#crm-result-file; Zoho gives only the names, so the meanings are our reading of
# them.
ROW_ERROR_CODES: dict[str, str] = {
    "MANDATORY_NOT_FOUND": "a required field was empty",
    "INVALID_DATA": "a value had the wrong type or format",
    "DUPLICATE_DATA": "a unique field's value is already taken",
    "NOT_APPROVED": "the record is waiting for approval",
    "BLOCKED_RECORD": "the record is locked",
    "CANNOT_PROCESS": "Zoho could not process the row",
    "LIMIT_EXCEEDED": "a Zoho CRM limit was reached",
    "RESOURCE_NOT_FOUND": "a referenced record does not exist",
}
_ROW_STATUSES = ("added", "updated", "skipped", "unprocessed")
EXTRACT_FACTOR = 4  # the CSV may unpack past the upload cap, so that its failed rows can go
MAX_LINK_CHARS = 2048
# docs/vendors.md#crm-result-file DC suffix rule, derived from ZOHO_DCS: the
# docs/vendors.md#zoho-data-centres hosts, and `.zoho.<tld>` /
# `.zohoapis.<tld>` of every DC (`ca` has zohocloud.ca where the others have zoho.<tld>).
_ZOHO_HOSTS = frozenset(
    {h for d in ZOHO_DCS.values() for h in (d.accounts, d.analytics, d.crm)}
    | {"download-accl.zoho.com", "upload.zohocloud.ca", "files.zoho.sa"}
)
_ZOHO_SUFFIXES = tuple(
    sorted({"." + d.accounts.removeprefix("accounts.") for d in ZOHO_DCS.values()})
    + sorted({"." + d.crm.removeprefix("www.") for d in ZOHO_DCS.values()})
)
_GET_IT = "Download the result in Zoho CRM."
_NO_FETCH = f"so I didn't fetch it (no credentials were sent). {_GET_IT}"


def parse_errors(cell: str) -> list[tuple[str, list[str]]]:
    """`CODE-col1,col2:CODE2-col3` → [(CODE, [col1, col2]), (CODE2, [col3])]. If any part
    does not parse, the whole cell (clipped) is one entry without columns
    (docs/vendors.md#crm-result-file: keep raw)."""
    out: list[tuple[str, list[str]]] = []
    for part in filter(None, (p.strip() for p in cell.split(":"))):
        code, dash, cols = (x.strip() for x in part.partition("-"))
        # With a dash any word is a code; alone, only an upper-case CODE (not "Something").
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*" if dash else r"[A-Z][A-Z0-9_]*", code):
            raw = one_line(cell)[:1000]
            return [(raw[:60] + ("…" if len(raw) > 60 else ""), [])]
        out.append((code.upper(), [c.strip() for c in cols.split(",") if c.strip()]))
    return out


class _CappedSink:
    """What csv.writer writes to: UTF-8 into `fh` until `cap` bytes would be passed."""

    def __init__(self, fh: Any, cap: int) -> None:
        self.fh, self.cap, self.size = fh, cap, 0

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.size += len(data)
        if self.size <= self.cap:
            self.fh.write(data)


@dataclass
class ResultSummary:
    """What the result CSV says: rows by STATUS, error codes with the columns they name."""

    rows: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    columns: dict[str, Counter[str]] = field(default_factory=dict)
    failed_rows: int = 0
    failed_bytes: int = 0

    def _ordered(self) -> list[tuple[str, int]]:
        known = [(s, self.statuses[s]) for s in _ROW_STATUSES if self.statuses[s]]
        return known + [(s, n) for s, n in self.statuses.items() if s not in _ROW_STATUSES]

    def comment(self) -> str:
        shown = [(s, self.statuses[s]) for s in _ROW_STATUSES[:3]]
        shown += [(s, n) for s, n in self._ordered() if s not in _ROW_STATUSES[:3]]
        return f"{self.rows:,} rows: " + ", ".join(f"{n:,} {s}" for s, n in shown)

    def note(self) -> str:
        counts = " · ".join(f"{n:,} {s}" for s, n in self._ordered())
        text = f"Result: {counts or 'no rows'}."
        top = []
        for code, n in self.errors.most_common(5):
            cols = ", ".join(c for c, _ in self.columns[code].most_common(3))
            meaning = ROW_ERROR_CODES.get(code, "")
            detail = f"{meaning}: {cols}" if meaning and cols else meaning or cols
            shown = code if re.fullmatch(r"[A-Z][A-Z0-9_]*", code) else f"“{code}”"  # raw text
            top.append(f"{shown} ×{n:,}" + (f" ({detail})" if detail else ""))
        more = f", and {len(self.errors) - 5} more" if len(self.errors) > 5 else ""
        return text + (f" Top errors: {', '.join(top)}{more}." if top else "")


def read_result_csv(path: str, failed_path: str | None = None, cap: int = 0) -> ResultSummary:
    """Count a result CSV (headers in any case). With `failed_path`, its
    failed rows go there, formulas neutralized, up to `cap` bytes (`failed_bytes` tells if
    they fit). Raises ValueError or csv.Error when it can't be read."""
    summary = ResultSummary()
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return summary
        names = [h.strip().lower() for h in header]
        if "status" not in names:
            raise ValueError("it has no STATUS column")
        at_status = names.index("status")
        at_errors = names.index("errors") if "errors" in names else len(header) + 1
        with open(failed_path or os.devnull, "wb") as out:
            sink = _CappedSink(out, cap if failed_path else 0)
            writer = csv.writer(sink)
            writer.writerow([safe_cell(c) for c in header])
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                summary.rows += 1
                raw = row[at_status].strip() if at_status < len(row) else ""
                key = status_key(raw)
                summary.statuses[key if key in _ROW_STATUSES else (raw[:40] or "(blank)")] += 1
                cell = row[at_errors] if at_errors < len(row) else ""
                for code, cols in parse_errors(cell):
                    summary.errors[code] += 1
                    summary.columns.setdefault(code, Counter()).update(cols)
                if key not in ("added", "updated") or cell.strip():
                    summary.failed_rows += 1
                    writer.writerow([safe_cell(c) for c in row])
            summary.failed_bytes = sink.size
    return summary


# --- download links (docs/vendors.md#links-in-vendor-replies, docs/vendors.md#crm-result-file) ----


class _Skip(Exception):
    """No file to post; `note` says why (it goes to the thread)."""

    def __init__(self, note: str) -> None:
        super().__init__(note)
        self.note = note


def is_zoho_host(host: str) -> bool:
    """docs/vendors.md#crm-result-file DC suffix rule: a docs/vendors.md#zoho-data-centres host, or
    under `.zoho.<tld>`/`.zohoapis.<tld>` of a DC."""
    host = host.lower()
    return host in _ZOHO_HOSTS or host.endswith(_ZOHO_SUFFIXES)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host.lower(), url.port or {"http": 80, "https": 443}.get(url.scheme)


def _shown(host: str) -> str:
    return re.sub(r"[^A-Za-z0-9.:\[\]-]", "?", host)[:80] or "an empty host"


def checked_link(raw: str, conn: ZohoConnection) -> httpx.URL:
    """The result link, when credentials may go to it (docs/vendors.md#links-in-vendor-replies);
    else _Skip with the note.
    The object checked is the object requested, so no two URL parsers can disagree."""
    bad = f"The result file link from Zoho CRM is not a usable URL, {_NO_FETCH}"
    if len(raw) > MAX_LINK_CHARS or not raw.isascii() or re.search(r"[\x00-\x20\x7f\\]", raw):
        raise _Skip(bad)
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError):
        raise _Skip(bad) from None
    if not url.host:
        raise _Skip(bad)
    host = _shown(url.host)
    if url.userinfo:
        raise _Skip(f"The result file link to {host} carries a user name or password, {_NO_FETCH}")
    configured = {
        "accounts": conn.accounts_url,
        "analytics": conn.analytics_api_url,
        "crm": conn.crm_api_url,
    }
    for short in sorted(conn.overridden & configured.keys()):
        with contextlib.suppress(httpx.InvalidURL, ValueError):
            if _origin(url) == _origin(httpx.URL(configured[short])):
                return url  # exactly an operator-configured override origin (tests, demo)
    if not is_zoho_host(url.host):
        raise _Skip(
            f"The result file link points at {host}, which is not a Zoho download host, {_NO_FETCH}"
        )
    if url.scheme != "https":
        raise _Skip(f"The result file link to {host} is not https, {_NO_FETCH}")
    if url.port is not None:
        raise _Skip(f"The result file link to {host} uses port {url.port}, {_NO_FETCH}")
    return url


def _job_counts(snap: JobSnapshot) -> str:
    """What the job document said, for notes that come without the file."""
    facts = dict(snap.facts)
    total = as_count(facts.get("total_count"))
    shown = [f"{n:,} {k}" for k in _ROW_STATUSES if (n := as_count(facts.get(f"{k}_count")))]
    return (
        ""
        if total is None
        else f" The job reports {' · '.join(shown) or 'nothing written'} of {total:,} rows."
    )


class BulkWriteResults:
    """Fetches one terminal bulk write job's result files into the spool directory
    (docs/vendors.md#crm-result-file)."""

    def __init__(self, conn: ZohoConnection, ctx: VendorContext, auth: TokenSource) -> None:
        self._conn = conn
        self._ctx = ctx
        self._auth = auth

    def results(self, job: str, snapshot: JobSnapshot) -> list[ResultFile]:
        done: list[ResultFile] = []
        try:
            for fref in snapshot.files:
                done += self._result(job, fref, snapshot)
        except BaseException:
            for rf in done:  # the caller retries the whole job later: leave nothing behind
                remove_quietly(rf.path)
            raise
        return done

    def _result(self, job: str, fref: FileRef, snap: JobSnapshot) -> list[ResultFile]:
        title = f"Bulk write result ({dict(snap.facts).get('modules') or f'job {job}'})"
        base = re.sub(r"[^A-Za-z0-9._ -]+", "_", fref.name).strip(" .")[:80].rstrip(" .")
        base = base or f"bulk-write-{job}"
        try:
            zip_path = self._download(checked_link(fref.file_id, self._conn))
            try:
                cap = self._ctx.max_file_bytes * EXTRACT_FACTOR
                csv_path = extract_single_csv(zip_path, self._ctx.spool_dir, max_total_bytes=cap)
            except ArchiveError as exc:
                raise _Skip(f"I didn't open the result file: {exc.message}. {_GET_IT}") from None
            finally:
                remove_quietly(zip_path)
            return self._publish(csv_path, base, title)
        except _Skip as skip:
            return [ResultFile(f"{base}.csv", title, note=skip.note + _job_counts(snap))]

    def _publish(self, csv_path: str, base: str, title: str) -> list[ResultFile]:
        """The CSV and a summary note; over the cap, the failed rows only if they fit."""
        cap, size = self._ctx.max_file_bytes, os.path.getsize(csv_path)
        over = f"The result CSV is {size_text(size)}, over the {size_text(cap)} limit for Slack"
        failed_path = None
        try:
            if size > cap:
                fd, failed_path = tempfile.mkstemp(
                    dir=self._ctx.spool_dir, prefix="zoho-crm-", suffix=".csv"
                )
                os.close(fd)
            try:
                summary = read_result_csv(csv_path, failed_path, cap)
            except (csv.Error, ValueError) as exc:
                why = f"I couldn't read the rows of the result file ({one_line(str(exc))[:120]})"
                if failed_path:
                    raise _Skip(f"{over}, and {why}. {_GET_IT}") from None
                note = ResultFile(f"{base}.csv", title, note=f"{why}, so there is no summary.")
                return [ResultFile(f"{base}.csv", title, path=csv_path), note]
            if not failed_path:
                return [
                    ResultFile(f"{base}.csv", title, summary.comment(), path=csv_path),
                    ResultFile(f"{base}.csv", title, note=summary.note()),
                ]
            remove_quietly(csv_path)
            if not summary.failed_rows or summary.failed_bytes > cap:
                remove_quietly(failed_path)
                return [
                    ResultFile(f"{base}.csv", title, note=f"{summary.note()} {over}. {_GET_IT}")
                ]
            n = f"{summary.failed_rows:,}"
            note = f"{summary.note()} {over}, so only its {n} failed rows are attached."
            comment = f"{n} failed rows of {summary.rows:,}"
            return [
                ResultFile(
                    f"{base}-failed-rows.csv", f"{title}: failed rows", comment, path=failed_path
                ),
                ResultFile(f"{base}.csv", title, note=note),
            ]
        except BaseException:
            remove_quietly(csv_path)
            remove_quietly(failed_path)
            raise

    def _download(self, url: httpx.URL) -> str:
        """Stream the zip into the spool and return its path; _Skip or TransientError if not."""
        token = self._auth.access_token()
        for attempt in (1, 2):
            path = self._stream(url, token)
            if path is not None:
                return path
            if attempt == 1:  # 401: the token, maybe evicted; one fresh try as for polls
                self._auth.invalidate(token)
                token = self._auth.access_token()
        raise _Skip(
            f"Zoho refused the result download (HTTP 401) even with a fresh token. {_GET_IT}"
        )

    def _stream(self, url: httpx.URL, token: str) -> str | None:
        headers = {
            "Authorization": f"Zoho-oauthtoken {token}",
            "Accept-Encoding": "identity",  # so Content-Length is the file's size
        }

        def fetch() -> str | None:
            # Never follow a redirect: the token would ride along to the next host
            # (docs/vendors.md#redirects).
            with self._ctx.http.stream("GET", url, headers=headers, follow_redirects=False) as resp:
                if resp.status_code == 401:
                    return None
                if resp.status_code != 200:
                    raise _refused(resp, self._ctx.clock())
                return self._spool(resp)

        return guarded(
            fetch,
            timeout="Zoho did not send the bulk write result in time",
            unreachable="could not download the bulk write result",
        )

    def _spool(self, resp: httpx.Response) -> str:
        cap = self._ctx.max_file_bytes
        declared = resp.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            size = size_text(int(declared))
            raise _Skip(f"The result file is {size}, over the {size_text(cap)} limit. {_GET_IT}")
        return spool(
            resp.iter_bytes(CHUNK),
            self._ctx.spool_dir,
            prefix="zoho-crm-",
            suffix=".zip",
            cap=cap,
            over=lambda: _Skip(f"The result file is over the {size_text(cap)} limit. {_GET_IT}"),
        )


def _refused(resp: httpx.Response, now: float) -> Exception:
    """What a download reply other than 200 and 401 means."""
    status = resp.status_code
    if 300 <= status < 400:
        try:
            target = _shown(httpx.URL(resp.headers.get("location", "")).host)
        except (httpx.InvalidURL, ValueError):
            target = "an unreadable address"
        return _Skip(f"The result file link redirected to {target}: not followed. {_GET_IT}")
    if status == 429:
        wait = retry_after_from(resp.headers, now)
        return RateLimitedError(
            "Zoho rate limit on the result download (HTTP 429)", retry_after=wait
        )
    if status >= 500 or status == 408:
        return TransientError(f"Zoho answered HTTP {status} to the result download")
    if status in (403, 404, 410):  # 403 with `x-info: Link not valid` when the link expired
        said = one_line(resp.headers.get("x-info") or "")[:80]
        return _Skip(
            f"The result file is no longer available ({said or f'HTTP {status}'}). {_GET_IT}"
        )
    return _Skip(f"Zoho answered HTTP {status} to the result download. {_GET_IT}")
