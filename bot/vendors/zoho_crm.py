"""Zoho CRM bulk write jobs: poll one job, normalize its state, fetch and summarize the result."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import re
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from .archives import ArchiveError, extract_single_csv, size_text
from .base import (
    AuthError,
    FileRef,
    JobNotFoundError,
    JobSnapshot,
    RateLimitedError,
    RefError,
    RequestRejectedError,
    ResultFile,
    State,
    TransientError,
    VendorContext,
    VendorSpec,
    parse_retry_after,
    status_key,
)
from .zoho_auth import ZOHO_DCS, ZohoConnection, auth_for

log = logging.getLogger(__name__)

_ID = re.compile(r"[0-9]{1,20}")  # ASCII only: \d would admit other scripts' digits
_AUTH_HINT = (
    "check ZOHO_DC (the token must come from the CRM account's data centre), or the token was "
    "evicted: Zoho keeps at most 15 live access tokens per refresh token"
)
_NOT_FOUND_HINT = "check the job id and ZOHO_DC; Zoho does not document how long it keeps jobs"
_REJECT_HINTS = {"OAUTH_SCOPE_MISMATCH": "the refresh token needs the ZohoCRM.bulk.ALL scope"}
_STATES = {"added": State.QUEUED, "inprogress": State.RUNNING, "failed": State.FAILED}
# vendors.md §6.6; Zoho gives only the names, so the meanings are our reading of them.
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
_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
EXTRACT_FACTOR = 4  # the CSV may unpack past the upload cap, so that its failed rows can go
MAX_LINK_CHARS = 2048
CHUNK = 64 * 1024
# §6.6 DC suffix rule, derived from ZOHO_DCS: the §2.1 hosts, and `.zoho.<tld>` /
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
_seen_unknown: set[str] = set()
_seen_lock = threading.Lock()


def parse_ref(text: str) -> str:
    """Validate a bulk write job id (1-20 ASCII digits) and return it stripped; else RefError."""
    cleaned = text.strip()
    if _ID.fullmatch(cleaned):
        return cleaned
    digits = cleaned.isascii() and cleaned.isdigit()
    why = "got nothing" if not cleaned else "at most 20 digits" if digits else "digits only"
    shown = cleaned[:60].replace("`", "'") + ("…" if len(cleaned) > 60 else "")
    raise RefError(
        f"`{shown}` is not a Zoho CRM bulk write job: expected <job-id>, {why} "
        f"(e.g. {SPEC.example_ref})"
    )


def _count(value: object) -> int | None:
    """A count from an int or a numeric string (§1.2.4); None when not a whole number."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if text.isascii() and text.isdigit() else None


def _text(value: object, clip: int = 300) -> str:
    """Vendor text on one line, clipped; non-strings become compact JSON."""
    if value is None:
        return ""
    raw = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return " ".join(raw.split())[:clip]


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class _Tally:
    """Counts and resource outcomes summed over `resource[]` (§6.2 bot rule)."""

    added: int = 0
    updated: int = 0
    skipped: int = 0
    total: int = 0
    counted: bool = False
    resources: int = 0
    modules: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped_res: list[str] = field(default_factory=list)
    file_names: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.added + self.updated

    @property
    def left(self) -> int:
        return max(0, self.total - self.ok - self.skipped)

    def add(self, res: dict[str, Any]) -> None:
        self.resources += 1
        raw_module = res.get("module")  # a string in v2 samples, `{api_name, id}` later (§6.3)
        module = _text(
            _dict(raw_module).get("api_name") if isinstance(raw_module, dict) else raw_module, 60
        )
        if module and module not in self.modules:
            self.modules.append(module)
        file = _dict(res.get("file"))
        keys = {
            status_key(_text(res.get("status") or res.get("code"))),
            status_key(_text(file.get("status"))),
        }
        if "failed" in keys:
            self.failed.append(module or "a resource")
        elif "skipped" in keys:
            self.skipped_res.append(module or "a resource")
        if file.get("name"):
            self.file_names.append(_text(file["name"], 80))
        a, u, s, t = (
            _count(file.get(f"{k}_count")) for k in ("added", "updated", "skipped", "total")
        )
        if any(n is not None for n in (a, u, s, t)):
            self.counted = True
            self.added, self.updated, self.skipped = (
                self.added + (a or 0),
                self.updated + (u or 0),
                self.skipped + (s or 0),
            )
            self.total += t if t is not None else (a or 0) + (u or 0) + (s or 0)

    def completed(self, has_file: bool) -> tuple[State, str | None, str | None]:
        """§6.2 bot rule for COMPLETED, with design.md §6: a job that wrote nothing failed."""
        if self.resources and len(self.failed) == self.resources:
            state = State.FAILED
        elif not (self.skipped or self.left or self.failed or self.skipped_res):
            return State.SUCCEEDED, None, None
        else:
            state = State.PARTIAL if self.ok > 0 else State.FAILED
        rows = [f"{self.skipped:,} of {self.total:,} rows skipped"] if self.skipped else []
        rows += [f"{self.left:,} of {self.total:,} rows unprocessed"] if self.left else []
        where = f" in {', '.join(self.modules)}" if self.modules else ""
        parts = [", ".join(rows) + where] if rows else []
        parts += [f"resource FAILED: {', '.join(self.failed)}"] if self.failed else []
        parts += [f"resource SKIPPED: {', '.join(self.skipped_res)}"] if self.skipped_res else []
        parts += ["see the result file"] if has_file else []
        skipped = self.skipped or self.skipped_res
        code = "FAILED" if self.failed else "SKIPPED" if skipped else "UNPROCESSED"
        return state, code, "; ".join(parts)


def snapshot_from(doc: dict[str, Any], job: str) -> JobSnapshot:
    """Normalize a bulk write job document (§6.2, §6.3)."""
    raw = _text(doc.get("status"), 80)
    if not raw:
        raise TransientError("Zoho CRM sent a bulk write job reply without a status")
    key = status_key(raw)
    t = _Tally()
    for res in doc.get("resource") if isinstance(doc.get("resource"), list) else []:
        if isinstance(res, dict):
            t.add(res)
    keys = ("id", "operation", "created_time", "character_encoding", "ignore_empty")
    facts = [(k, _text(doc[k])) for k in keys if doc.get(k) is not None]
    if _dict(doc.get("created_by")).get("name"):
        facts.append(("created_by", _text(doc["created_by"]["name"])))
    if t.modules:
        facts.append(("modules", ", ".join(t.modules)))
    progress: list[tuple[str, str]] = []
    if t.counted:
        counts = [
            ("Added", t.added),
            ("Updated", t.updated),
            ("Skipped", t.skipped),
            ("Total", t.total),
        ]
        if key == "completed" and t.left:  # while running, rows not yet done are not "left"
            counts.append(("Unprocessed", t.left))
        progress += [(label, f"{n:,}") for label, n in counts]
        facts += [(f"{label.lower()}_count", str(n)) for label, n in counts]
    if t.modules:
        progress.append(("Module" if len(t.modules) == 1 else "Modules", ", ".join(t.modules)))

    url = _dict(doc.get("result")).get("download_url")
    files: tuple[FileRef, ...] = ()
    if isinstance(url, str) and url.strip():
        stem = re.sub(r"(?i)\.csv$", "", t.file_names[0]) if len(t.file_names) == 1 else ""
        name = f"{t.modules[0]}-{stem}" if len(t.modules) == 1 and stem else f"bulk-write-{job}"
        # Kept only to be re-validated in results(); clipped so a huge value can't bloat the row.
        link = url.strip()[: MAX_LINK_CHARS + 1]
        files = (FileRef(link, name, t.total if t.counted else None, "zip"),)

    error_code = error_message = None
    if key == "completed":
        state, error_code, error_message = t.completed(bool(files))
    elif key in _STATES:
        state = _STATES[key]
        if state is State.FAILED:  # top-level FAILED is unconfirmed (§6.2): accepted as failed
            error_code = "FAILED"
            extra = f"; resource FAILED: {', '.join(t.failed)}" if t.failed else ""
            said = _text(doc.get("message")) or "Zoho CRM marked the bulk write job FAILED"
            error_message = said + extra
    else:
        state = State.UNKNOWN
        with _seen_lock:  # once per value, not once per poll
            first_time = key not in _seen_unknown
            _seen_unknown.add(key)
        if first_time:
            log.warning("zoho-crm: unknown bulk write status %r; polling on", raw)
    return JobSnapshot(
        state=state,
        raw_status=raw,
        progress=tuple(progress),
        facts=tuple(facts),
        error_code=error_code,
        error_message=error_message,
        files=files,
    )


# --- result CSV (§6.6) ----------------------------------------------------------------------


def parse_errors(cell: str) -> list[tuple[str, list[str]]]:
    """`CODE-col1,col2:CODE2-col3` → [(CODE, [col1, col2]), (CODE2, [col3])]. If any part
    does not parse, the whole cell (clipped) is one entry without columns (§6.6: keep raw)."""
    out: list[tuple[str, list[str]]] = []
    for part in filter(None, (p.strip() for p in cell.split(":"))):
        code, dash, cols = (x.strip() for x in part.partition("-"))
        # With a dash any word is a code; alone, only an upper-case CODE (not "Something").
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*" if dash else r"[A-Z][A-Z0-9_]*", code):
            raw = _text(cell, 1000)
            return [(raw[:60] + ("…" if len(raw) > 60 else ""), [])]
        out.append((code.upper(), [c.strip() for c in cols.split(",") if c.strip()]))
    return out


def safe_cell(value: str) -> str:
    """Stop spreadsheets from running vendor text as a formula (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_LEADS) else value


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
    id_column: str | None = None
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
    """Count a result CSV (headers in any case; `ID` or `RECORD_ID`). With `failed_path`, its
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
        summary.id_column = next(
            (header[names.index(n)] for n in ("id", "record_id") if n in names), None
        )
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


# --- download links (§1.5.2, §6.6) ----------------------------------------------------------


class _Skip(Exception):
    """No file to post; `note` says why (it goes to the thread)."""

    def __init__(self, note: str) -> None:
        super().__init__(note)
        self.note = note


def is_zoho_host(host: str) -> bool:
    """§6.6 DC suffix rule: a §2.1 host, or under `.zoho.<tld>`/`.zohoapis.<tld>` of a DC."""
    host = host.lower()
    return host in _ZOHO_HOSTS or host.endswith(_ZOHO_SUFFIXES)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host.lower(), url.port or {"http": 80, "https": 443}.get(url.scheme)


def _shown(host: str) -> str:
    return re.sub(r"[^A-Za-z0-9.:\[\]-]", "?", host)[:80] or "an empty host"


def checked_link(raw: str, conn: ZohoConnection) -> httpx.URL:
    """The result link, when credentials may go to it (§1.5.2); else _Skip with the note.
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


def _unlink(path: str | None) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _job_counts(snap: JobSnapshot) -> str:
    """What the job document said, for notes that come without the file."""
    facts = dict(snap.facts)
    total = _count(facts.get("total_count"))
    shown = [f"{n:,} {k}" for k in _ROW_STATUSES if (n := _count(facts.get(f"{k}_count")))]
    return (
        ""
        if total is None
        else f" The job reports {' · '.join(shown) or 'nothing written'} of {total:,} rows."
    )


class ZohoCrm:
    """Client for one Zoho connection's CRM bulk write jobs (the `Vendor` protocol)."""

    def __init__(self, conn: ZohoConnection, ctx: VendorContext) -> None:
        self._conn = conn
        self._ctx = ctx
        self._auth = auth_for(conn, ctx)  # the same cached token as Zoho Analytics (§2.2)

    def __repr__(self) -> str:
        return f"ZohoCrm(connection={self._conn.name!r})"

    def fetch(self, ref: str) -> JobSnapshot:
        job = parse_ref(ref)  # re-validated: only digits reach the path
        return snapshot_from(self._get(f"/crm/bulk/v8/write/{job}", "this bulk write job"), job)

    def check(self) -> str:
        orgs = self._get("/crm/v8/org", "this organization").get("org")
        org = _dict(orgs[0]) if isinstance(orgs, list) and orgs else {}
        name = _text(org.get("company_name"), 80) or "(no name)"
        return f"Zoho CRM: org {name} ({_text(org.get('id'), 24) or 'no id'})"

    def _get(self, path: str, what: str) -> dict[str, Any]:
        """GET with the shared token; on a token error refresh once and retry once (§1.2.7)."""
        token = self._auth.access_token()
        for attempt in (1, 2):
            headers = {"Authorization": f"Zoho-oauthtoken {token}"}
            try:
                response = self._ctx.http.get(f"{self._conn.crm_api_url}{path}", headers=headers)
            except httpx.TimeoutException as exc:
                raise TransientError("Zoho CRM did not answer in time") from exc
            except httpx.TransportError as exc:
                raise TransientError(f"could not reach Zoho CRM ({type(exc).__name__})") from exc
            try:
                return _read(response, self._ctx.clock(), self._secrets(token), what)
            except AuthError as exc:
                if attempt == 2:
                    raise AuthError(
                        f"credentials rejected by Zoho CRM ({exc.code}); the job may still be "
                        f"running ({_AUTH_HINT})",
                        code=exc.code,
                    ) from None
                self._auth.invalidate(token)  # only if no sibling already replaced it
                token = self._auth.access_token()
        raise AssertionError("unreachable")

    def _secrets(self, token: str) -> tuple[str, ...]:
        conn = self._conn
        return (token, conn.client_secret, conn.refresh_token, conn.client_id)

    # ----- result file (§6.6) -----

    def results(self, ref: str, snapshot: JobSnapshot) -> list[ResultFile]:
        job = parse_ref(ref)
        done: list[ResultFile] = []
        try:
            for fref in snapshot.files:
                done += self._result(job, fref, snapshot)
        except BaseException:
            for rf in done:  # the caller retries the whole job later: leave nothing behind
                _unlink(rf.path)
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
                _unlink(zip_path)
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
                why = f"I couldn't read the rows of the result file ({_text(str(exc), 120)})"
                if failed_path:
                    raise _Skip(f"{over}, and {why}. {_GET_IT}") from None
                note = ResultFile(f"{base}.csv", title, note=f"{why}, so there is no summary.")
                return [ResultFile(f"{base}.csv", title, path=csv_path), note]
            if not failed_path:
                return [
                    ResultFile(f"{base}.csv", title, summary.comment(), path=csv_path),
                    ResultFile(f"{base}.csv", title, note=summary.note()),
                ]
            _unlink(csv_path)
            if not summary.failed_rows or summary.failed_bytes > cap:
                _unlink(failed_path)
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
            _unlink(csv_path)
            _unlink(failed_path)
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
        try:
            # Never follow a redirect: the token would ride along to the next host (§1.5.3).
            with self._ctx.http.stream("GET", url, headers=headers, follow_redirects=False) as resp:
                if resp.status_code == 401:
                    return None
                if resp.status_code != 200:
                    raise _refused(resp, self._ctx.clock())
                return self._spool(resp)
        except httpx.TimeoutException as exc:
            raise TransientError("Zoho did not send the bulk write result in time") from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"could not download the bulk write result ({type(exc).__name__})"
            ) from exc

    def _spool(self, resp: httpx.Response) -> str:
        cap = self._ctx.max_file_bytes
        declared = resp.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            size = size_text(int(declared))
            raise _Skip(f"The result file is {size}, over the {size_text(cap)} limit. {_GET_IT}")
        fd, path = tempfile.mkstemp(dir=self._ctx.spool_dir, prefix="zoho-crm-", suffix=".zip")
        try:
            with os.fdopen(fd, "wb") as fh:
                written = 0
                for chunk in resp.iter_bytes(CHUNK):
                    written += len(chunk)
                    if written > cap:
                        raise _Skip(
                            f"The result file is over the {size_text(cap)} limit. {_GET_IT}"
                        )
                    fh.write(chunk)
        except BaseException:
            _unlink(path)
            raise
        return path


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
        wait = parse_retry_after(resp.headers.get("Retry-After"), now)
        return RateLimitedError(
            "Zoho rate limit on the result download (HTTP 429)", retry_after=wait
        )
    if status >= 500 or status == 408:
        return TransientError(f"Zoho answered HTTP {status} to the result download")
    if status in (403, 404, 410):  # 403 with `x-info: Link not valid` when the link expired
        said = _text(resp.headers.get("x-info"), 80)
        return _Skip(
            f"The result file is no longer available ({said or f'HTTP {status}'}). {_GET_IT}"
        )
    return _Skip(f"Zoho answered HTTP {status} to the result download. {_GET_IT}")


def _read(
    response: httpx.Response, now: float, secrets: tuple[str, ...], what: str
) -> dict[str, Any]:
    """The JSON body of a usable reply; every other outcome becomes the matching error (§6.5)."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else None
    # The envelope decides first, whatever the HTTP status (§6.5: branch on `code`).
    if body is not None and status_key(_text(body.get("status"))) == "error":
        code, text = (_redact(_text(body.get(k)), secrets) for k in ("code", "message"))
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        raise _for_code(code[:40], text, status, retry_after, what)
    if status == 401:
        raise AuthError("HTTP 401", code="401")
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        raise RateLimitedError(
            "Zoho CRM rate limit (HTTP 429)", code="429", retry_after=retry_after
        )
    if status >= 500 or status == 408:
        raise TransientError(f"Zoho CRM answered HTTP {status}", code=str(status))
    if 300 <= status < 400:
        raise RequestRejectedError(
            f"Zoho CRM answered with a redirect (HTTP {status}); check ZOHO_DC", code=str(status)
        )
    if body is None:
        kind = response.headers.get("content-type", "").split(";")[0].strip()[:40]
        detail = (kind or "no type") if response.content else "empty body"
        raise TransientError(f"Zoho CRM sent an unreadable reply (HTTP {status}, {detail})")
    if status >= 400:
        raise RequestRejectedError(
            f"Zoho CRM refused the request (HTTP {status})", code=str(status)
        )
    return body


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    """Vendor text is quoted to users; make sure it can't carry one of our secrets along."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def _for_code(code: str, text: str, status: int, retry_after: float | None, what: str) -> Exception:
    key = code.upper() or str(status)
    quoted = f"{code or f'HTTP {status}'}: {text}" if text else code or f"HTTP {status}"
    if key in ("INVALID_TOKEN", "INVALID_OAUTHTOKEN", "401"):
        return AuthError(code or "401", code=code or "401")
    if key == "RESOURCE_NOT_FOUND":
        return JobNotFoundError(
            f"Zoho CRM does not know {what} ({quoted})", code=code, hint=_NOT_FOUND_HINT
        )
    if key == "TOO_MANY_REQUESTS" or status == 429:
        return RateLimitedError(
            f"Zoho CRM rate limit ({quoted})", code=key, retry_after=retry_after
        )
    if key == "INTERNAL_ERROR" or status >= 500 or status == 408:
        return TransientError(f"Zoho CRM internal error ({quoted})", code=key)
    hint = _REJECT_HINTS.get(key)
    return RequestRejectedError(
        f"Zoho CRM rejected the request ({quoted}){'; ' + hint if hint else ''}", code=key
    )


SPEC = VendorSpec(
    key="zoho-crm",
    aliases=("crm", "zoho_crm", "zohocrm"),
    label="Zoho CRM bulk write",
    ref_syntax="<job-id> (digits)",
    example_ref="6120045000001938011",
    parse_ref=parse_ref,
    schedule=((0, 10), (300, 30), (1800, 60)),
    floor=10,
    ceiling=60,
    family="zoho",
    rate_per_minute=30,
    build=lambda conn, ctx: ZohoCrm(conn, ctx),
)
