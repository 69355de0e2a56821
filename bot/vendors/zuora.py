"""Zuora AQuA batch-query jobs: job and batch states, errors, the client (auth and files apart)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from .base import (
    AuthError,
    FileRef,
    JobNotFoundError,
    JobSnapshot,
    RateLimitedError,
    RequestRejectedError,
    ResultFile,
    SeenKeys,
    State,
    TransientError,
    VendorContext,
    VendorSpec,
    connection_of,
    status_key,
)
from .common import (
    as_count,
    as_text,
    json_object,
    one_line,
    ref_error,
    retry_after_from,
    send,
    unreadable,
    warn_once,
)
from .common import redact as redact_secrets
from .zuora_auth import CLIENT_HINT, ZuoraConnection, auth_for
from .zuora_files import HEX32, ResultDownloader, reasons_text

# docs/vendors.md#zuora-environments: ZUORA_ENV name -> base URL. API Sandbox hosts have a far
# smaller budget.
ZUORA_ENVS: dict[str, str] = {
    "us-prod": "https://rest.zuora.com",
    "us-sandbox": "https://rest.apisandbox.zuora.com",
    "us-pt1": "https://rest.pt1.zuora.com",
    "us-cloud-prod": "https://rest.na.zuora.com",
    "us-cloud-sandbox": "https://rest.sandbox.na.zuora.com",
    "us-central-sandbox": "https://rest.test.zuora.com",
    "eu-prod": "https://rest.eu.zuora.com",
    "eu-sandbox": "https://rest.sandbox.eu.zuora.com",
    "eu-central-sandbox": "https://rest.test.eu.zuora.com",
    "ap-prod": "https://rest.ap.zuora.com",
    "ap-central-sandbox": "https://rest.test.ap.zuora.com",
}
API_SANDBOX_HOSTS = frozenset(
    {"rest.apisandbox.zuora.com", "rest.sandbox.na.zuora.com", "rest.sandbox.eu.zuora.com"}
)


# --- job ids and AQuA error codes -------------------------------------------------------------

log = logging.getLogger(__name__)

_ENV_LABELS = {
    "us-prod": "US Production",
    "us-sandbox": "US API Sandbox",
    "us-pt1": "US Performance Test",
    "us-cloud-prod": "US Cloud Production",
    "us-cloud-sandbox": "US Cloud API Sandbox",
    "us-central-sandbox": "US Central Sandbox",
    "eu-prod": "EU Cloud Production",
    "eu-sandbox": "EU Cloud API Sandbox",
    "eu-central-sandbox": "EU Central Sandbox",
    "ap-prod": "APAC Production",
    "ap-central-sandbox": "APAC test sandbox",
}
# docs/vendors.md#zuora-errors-and-limits, in our words. Codes missing from Zuora's list are missing
# here too.
ERROR_CODES: dict[str, str] = {
    "90001": "the batch id is not valid",
    "90002": "Zuora does not know this job id",
    "90003": "the job id given for cancelling is not valid",
    "90004": "the job asks for more than 50 queries",
    "90005": "one of the queries has a syntax error",
    "90006": "Zuora hit an internal storage error",
    "90007": "the query execution was aborted",
    "90008": "Zuora lost its internal database connection",
    "90009": "the API user is not authorized for this",
    "90010": "Zuora hit an internal server error",
    "90012": "stateless AQuA cannot return deleted columns",
    "90014": "the notify URL is longer than 5,000 characters",
    "90015": "the incremental timestamp is not valid",
    "90016": "the request holds no queries",
    "90017": "an object in the queries cannot return deleted records",
    "90018": "the API user lacks permission on some objects, so those queries were skipped",
    "90019": "Zuora does not recognise the partner id",
    "90020": "the request's query settings are not valid",
    "90021": "the request's query settings are not valid",
    "90022": "Zuora hit an internal error and asks to retry",
    "90027": "a query exceeded Zuora's maximum processing time",
    "90028": "the tenant already runs the most concurrent AQuA jobs allowed",
    "90029": "the job exceeded Zuora's maximum processing time",
}
_NOT_FOUND_CODES = frozenset({"90001", "90002"})
_TRANSIENT_CODES = frozenset({"90006", "90008", "90010", "90022"})
_NOT_FOUND_HINT = "check the job id and ZUORA_ENV / tenant; Zuora keeps jobs 180 days"
_CODE_IN_TEXT = re.compile(r"(?<!\d)900\d\d(?!\d)")
_MAX_BATCH_ROWS = 8

_JOB_STATES = {
    "submitted": State.QUEUED,
    "pending": State.QUEUED,
    "executing": State.RUNNING,
    "cancelled": State.CANCELLED,
    "canceled": State.CANCELLED,
    "error": State.FAILED,
    "failed": State.FAILED,
    "aborted": State.FAILED,
    "completed": State.SUCCEEDED,  # refined by the batches, see _completed
}
_BATCH_RUNNING = frozenset({"pending", "submitted", "executing"})
_BATCH_FAILED = frozenset({"aborted", "cancelled", "canceled", "deletednotallowed"})


def parse_ref(text: str) -> str:
    """Validate an AQuA job id (32 hex characters) and return it lower-case; else RefError."""
    cleaned = text.strip()
    if HEX32.fullmatch(cleaned):
        return cleaned.lower()
    if not cleaned:
        why = "got nothing"
    elif len(cleaned) != 32 and cleaned.isascii() and cleaned.isalnum():
        why = f"got {len(cleaned)} characters"
    else:
        why = "only 0-9 and a-f allowed"
    raise ref_error(cleaned, "a Zuora AQuA job id", "32 hex characters", why, SPEC.example_ref)


def explain(text: str, code: str | None = None) -> str:
    """Append the meaning of an AQuA 900xx code (given, or quoted in `text`) once."""
    if code not in ERROR_CODES:
        code = next((c for c in _CODE_IN_TEXT.findall(text) if c in ERROR_CODES), None)
    if code is None or ERROR_CODES[code] in text:
        return text
    return f"{text or code} — {ERROR_CODES[code]}"


def _text(value: object) -> str:
    """Vendor text; strings on one line (JSON of other values is left as it is)."""
    return one_line(value) if isinstance(value, str) else as_text(value)


def _log_unknown(kind: str, raw: str, seen: SeenKeys | None) -> None:
    # An unknown job status keeps the watch polling; a batch's only shows.
    tail = "; polling on" if kind == "job" else ""
    warn_once(
        log, seen, ("zuora", kind, raw), "zuora: unknown %s status %r%s", kind, raw[:80], tail
    )


# --- job documents --------------------------------------------------------------------------------
# docs/vendors.md#zuora-aqua-states, docs/vendors.md#zuora-aqua-fields;
# docs/architecture.md#zuora-states


@dataclass(frozen=True)
class _Batch:
    name: str
    raw_status: str
    records: int | None
    file_ids: tuple[str, ...]
    segmented: bool  # the ids came from `segments[]`: one upload per part
    ok: bool
    done: bool  # in a terminal batch state
    why: str  # for a batch that is not OK: what to quote


def _batch(raw: dict[str, Any], index: int, seen: SeenKeys | None) -> _Batch:
    name = _text(raw.get("name")) or _text(raw.get("batchId")) or f"Batch {index}"
    raw_status = _text(raw.get("status")) or "no status"
    key = status_key(raw_status)
    records = as_count(raw.get("recordCount"))
    segmented = not raw.get("fileId") and isinstance(raw.get("segments"), list)
    given = raw["segments"] if segmented else [raw.get("fileId")]
    # Vendor data is untrusted and file ids go into URL paths: keep only well-formed ones.
    ids = tuple(i.lower() for i in given if isinstance(i, str) and HEX32.fullmatch(i))
    if key == "completed":
        if records and not ids:  # Zuora counted rows but gave nothing to download
            why = f"{records:,} records but no result file"
            return _Batch(name, raw_status, records, (), False, False, True, why)
        return _Batch(name, raw_status, records, ids, segmented, True, True, "")
    if key not in _BATCH_FAILED | _BATCH_RUNNING:
        _log_unknown("batch", raw_status, seen)
    why = explain(_text(raw.get("message"))) or raw_status
    return _Batch(name, raw_status, records, (), False, False, key in _BATCH_FAILED, why)


def _progress(batches: list[_Batch]) -> list[tuple[str, str]]:
    if not batches:
        return []
    done = sum(b.done for b in batches)
    pairs = [("Batches", f"{done} of {len(batches)} done")]
    counts = [b.records for b in batches if b.records is not None]
    if counts:
        pairs.append(("Records", f"{sum(counts):,}"))
    for b in batches[:_MAX_BATCH_ROWS]:
        shown = f"{b.records:,} records · {b.raw_status}" if b.records is not None else b.raw_status
        pairs.append((b.name, shown))
    if len(batches) > _MAX_BATCH_ROWS:
        pairs.append(("…", f"and {len(batches) - _MAX_BATCH_ROWS} more batches"))
    return pairs


def _facts(body: dict[str, Any]) -> list[tuple[str, str]]:
    facts = [
        ("format", _text(body.get("format")).lower()),
        ("encrypted", _text(body.get("encrypted")).lower()),
        ("version", _text(body.get("version"))),
        ("name", _text(body.get("name"))),
        ("startTime", _text(body.get("startTime"))),
    ]
    return [(k, v) for k, v in facts if v]


def _files(batches: list[_Batch], fmt: str | None) -> tuple[FileRef, ...]:
    return tuple(
        FileRef(fid, b.name, b.records, fmt, n if b.segmented else None)
        for b in batches
        if b.ok
        for n, fid in enumerate(b.file_ids, start=1)
    )


def snapshot_from(
    body: dict[str, Any], redact: Callable[[str], str] = str, seen: SeenKeys | None = None
) -> JobSnapshot:
    """Normalize a job document; 200-with-error bodies become the matching error
    (docs/vendors.md#zuora-errors-and-limits).
    `seen` keeps an unknown status from being logged more than once."""
    raw_status = _text(body.get("status"))
    key = status_key(raw_status)
    code = _text(body.get("errorCode"))
    message = redact(_text(body.get("message")))
    if key not in _JOB_STATES and (code or message):
        return _error_body(code, message)
    if not raw_status:
        raise TransientError("Zuora sent a job reply without a status")
    raw_batches = body.get("batches") if isinstance(body.get("batches"), list) else []
    batches = [_batch(b, i, seen) for i, b in enumerate(raw_batches, 1) if isinstance(b, dict)]
    fmt = _text(body.get("format")).lower() or None
    state = _JOB_STATES.get(key, State.UNKNOWN)
    if state is State.UNKNOWN:
        _log_unknown("job", raw_status, seen)
    bad = [b for b in batches if not b.ok]
    error_code, error_message = code or None, explain(message, code) or None
    files: tuple[FileRef, ...] = ()
    if key == "completed":
        ok = len(batches) - len(bad)
        state = _completed(ok, len(bad), code)
        raw_status = f"{raw_status} ({ok}/{len(batches)} batches OK)" if batches else raw_status
        files = _files(batches, fmt)
    elif state is State.CANCELLED:
        files = _files(batches, fmt)  # batches finished before the cancel keep their files
    # A completed job quotes every batch that is not OK; a failed job only the finished ones.
    quoted = [b for b in bad if b.done or key == "completed"]
    if state in (State.FAILED, State.PARTIAL) and quoted:
        listed = "\n".join(f"{b.name}: {redact(b.why)}" for b in quoted)
        error_message = f"{error_message}\n{listed}" if error_message else listed
        found = (c for b in quoted for c in _CODE_IN_TEXT.findall(b.why) if c in ERROR_CODES)
        error_code = error_code or next(found, None)
    return JobSnapshot(
        state=state,
        raw_status=raw_status,
        progress=tuple(_progress(batches)),
        facts=tuple(_facts(body)),
        error_code=error_code,
        error_message=error_message,
        files=files,
        # batches finished (in any end state) of all batches (docs/vendors.md#zuora-aqua-fields)
        done=sum(b.done for b in batches) if batches else None,
        total=len(batches) if batches else None,
    )


def _completed(ok: int, bad: int, code: str) -> State:
    """All batches OK → succeeded; mixed → partial; none OK of some → failed
    (docs/vendors.md#zuora-aqua-states)."""
    if code == "90018":  # some queries were skipped for lack of permission
        return State.PARTIAL if ok else State.FAILED
    if not bad:
        return State.SUCCEEDED
    return State.PARTIAL if ok else State.FAILED


def _error_body(code: str, message: str) -> JobSnapshot:
    """A reply with `errorCode`/`message` and no recognised status
    (docs/vendors.md#zuora-errors-and-limits code table)."""
    quoted = explain(f"{code}: {message}" if code and message else code or message, code)
    if code in _NOT_FOUND_CODES:
        raise JobNotFoundError(
            f"Zuora does not know this job ({quoted})", code=code, hint=_NOT_FOUND_HINT
        )
    if code in _TRANSIENT_CODES:
        raise TransientError(f"Zuora reported a temporary problem ({quoted})", code=code)
    if code == "90018":
        return JobSnapshot(
            state=State.PARTIAL,
            raw_status=code,
            error_code=code,
            error_message=explain(message, code),
        )
    raise RequestRejectedError(f"Zuora rejected the request ({quoted})", code=code or None)


# --- the client --------------------------------------------------------------------------------


class ZuoraAqua:
    """Client for one Zuora connection's AQuA jobs (the `Vendor` protocol)."""

    kind: Final = "job"

    def __init__(self, conn: ZuoraConnection, ctx: VendorContext) -> None:
        self._conn = conn
        self._ctx = ctx
        self._auth = auth_for(conn, ctx)
        # API Sandbox allows 5,000 calls/hour: the poller clamps intervals to this.
        sandbox = urlsplit(conn.base_url).hostname in API_SANDBOX_HOSTS
        self.min_interval: float | None = 30.0 if sandbox else None

    def __repr__(self) -> str:
        return f"ZuoraAqua(connection={self._conn.name!r})"

    def fetch(self, ref: str) -> JobSnapshot:
        job_id = parse_ref(ref)  # re-validated: only 32 hex characters reach the path
        body = self._get(f"/v1/batch-query/jobs/{job_id}")
        return snapshot_from(body, self._redact, self._ctx.seen)

    def results(self, ref: str, snapshot: JobSnapshot) -> list[ResultFile]:
        downloader = ResultDownloader(self._ctx, self._conn.base_url, self._auth, self._redact)
        return downloader.results(parse_ref(ref), snapshot)

    def check(self) -> str:
        self._auth.access_token()
        env = self._conn.env if not self._conn.overridden else None
        where = _ENV_LABELS.get(env or "") or next(
            (_ENV_LABELS[k] for k, url in ZUORA_ENVS.items() if url == self._conn.base_url),
            "ZUORA_BASE_URL",
        )
        line = f"Zuora: token OK at {self._conn.base_url} ({where})"
        if self.min_interval:
            line += f" (API Sandbox: polls every {self.min_interval:.0f} s or slower)"
        return line

    def _redact(self, text: str) -> str:
        # The context's redactor knows the tokens this client's cache minted.
        secrets = (self._conn.client_secret, self._conn.client_id)
        return self._ctx.redactor.redact(redact_secrets(text, secrets))

    def _get(self, path: str) -> dict[str, Any]:
        """GET with the shared token; on a 401 mint once and retry once
        (docs/vendors.md#auth-refresh, docs/vendors.md#zuora-auth)."""
        token = self._auth.access_token()
        for attempt in (1, 2):
            response = self._send(path, token)
            if response.status_code != 401:
                return _read(response, self._ctx.clock(), self._redact)
            said = self._redact(_text((json_object(response) or {}).get("message")))
            if "failedtogetuserinfo" in status_key(said):
                raise TransientError(
                    "Zuora could not load the API user (401 Failed to get user info)", code="401"
                )
            if attempt == 2:
                raise AuthError(
                    "credentials rejected by Zuora; the job may still be running "
                    f"(HTTP 401{': ' + said[:120] if said else ''}; {CLIENT_HINT})",
                    code="401",
                )
            self._auth.invalidate(token)  # only if no sibling already replaced it
            token = self._auth.access_token()
        raise AssertionError("unreachable")

    def _send(self, path: str, token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        url = f"{self._conn.base_url}{path}"
        return send(self._ctx.http, "GET", url, vendor="Zuora", headers=headers)


def _read(response: httpx.Response, now: float, redact: Callable[[str], str]) -> dict[str, Any]:
    """The JSON object of a usable reply; every other outcome becomes the matching error."""
    status = response.status_code
    body = json_object(response)
    detail = explain(redact(reasons_text(body))) if body else ""
    said = f": {detail}" if detail else ""
    if status == 429:
        wait = retry_after_from(response.headers, now, reset=True)
        raise RateLimitedError("Zuora rate limit (HTTP 429)", code="429", retry_after=wait)
    if status >= 500 or status == 408:
        raise TransientError(f"Zuora answered HTTP {status}{said}")
    if 300 <= status < 400:
        raise RequestRejectedError(
            f"Zuora answered with a redirect (HTTP {status}); check ZUORA_ENV / ZUORA_BASE_URL",
            code=str(status),
        )
    if status == 404:
        raise JobNotFoundError(
            f"Zuora does not know this job (HTTP 404{said})", code="404", hint=_NOT_FOUND_HINT
        )
    if status >= 400:
        code = _text((body or {}).get("errorCode"))
        if code in _NOT_FOUND_CODES | _TRANSIENT_CODES:  # else quoted as a rejection below
            _error_body(code, redact(_text((body or {}).get("message"))))
        codes = [
            _text(r.get("code")) for r in (body or {}).get("reasons") or [] if isinstance(r, dict)
        ]
        # REST codes ending 50/61/70/99 are Zuora's "retry later" family
        # (docs/vendors.md#zuora-errors-and-limits).
        if any(c[-2:] == "70" for c in codes):
            wait = retry_after_from(response.headers, now, reset=True)
            raise RateLimitedError(
                f"Zuora asked to slow down (HTTP {status}{said})", retry_after=wait
            )
        if any(c[-2:] in ("50", "61", "99") for c in codes):
            raise TransientError(f"Zuora reported a temporary problem (HTTP {status}{said})")
        raise RequestRejectedError(
            f"Zuora refused the request (HTTP {status}{said})",
            code=code or (codes or [str(status)])[0],
        )
    if body is None:
        raise unreadable(response, "Zuora")
    return body


SPEC = VendorSpec(
    key="zuora",
    aliases=("aqua", "zuora-aqua"),
    label="Zuora AQuA query",
    ref_syntax="<job-id> (32 hex characters)",
    example_ref="2c92c0f96abc17de016abd62bd0c4b2a",
    parse_ref=parse_ref,
    schedule=((0, 10), (120, 30), (1800, 60)),
    floor=10,
    family="zuora",
    rate_per_minute=600,
    build=lambda conn, ctx: ZuoraAqua(connection_of(conn, ZuoraConnection), ctx),
)
