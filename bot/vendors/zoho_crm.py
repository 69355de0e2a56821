"""Zoho CRM bulk write jobs: poll one job and normalize its state (results: zoho_crm_results)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Final

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
    redact,
    ref_error,
    retry_after_from,
    send,
    unreadable,
    warn_once,
)
from .zoho_auth import ZohoConnection, auth_for
from .zoho_crm_results import MAX_LINK_CHARS, BulkWriteResults

log = logging.getLogger(__name__)

_ID = re.compile(r"[0-9]{1,20}")  # ASCII only: \d would admit other scripts' digits
_AUTH_HINT = (
    "check ZOHO_DC (the token must come from the CRM account's data centre), or the token was "
    "evicted: Zoho keeps at most 15 live access tokens per refresh token"
)
_NOT_FOUND_HINT = "check the job id and ZOHO_DC; Zoho does not document how long it keeps jobs"
_REJECT_HINTS = {"OAUTH_SCOPE_MISMATCH": "the refresh token needs the ZohoCRM.bulk.ALL scope"}
_STATES = {"added": State.QUEUED, "inprogress": State.RUNNING, "failed": State.FAILED}


def parse_ref(text: str) -> str:
    """Validate a bulk write job id (1-20 ASCII digits) and return it stripped; else RefError."""
    cleaned = text.strip()
    if _ID.fullmatch(cleaned):
        return cleaned
    digits = cleaned.isascii() and cleaned.isdigit()
    why = "got nothing" if not cleaned else "at most 20 digits" if digits else "digits only"
    raise ref_error(cleaned, "a Zoho CRM bulk write job", "<job-id>", why, SPEC.example_ref)


def _text(value: object, clip: int = 300) -> str:
    """Vendor text on one line, clipped; non-strings become compact (ASCII-only) JSON."""
    return one_line(as_text(value, ensure_ascii=True))[:clip]


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class _Tally:
    """Counts and resource outcomes summed over `resource[]` (docs/vendors.md#crm-bulk-write-states
    bot rule)."""

    added: int = 0
    updated: int = 0
    skipped: int = 0
    total: int = 0
    counted: bool = False
    # every counted resource said its total_count: `total` is Zoho's, not our sum of the others
    totals_given: bool = True
    resources: int = 0
    modules: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped_res: list[str] = field(default_factory=list)
    file_names: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.added + self.updated

    @property
    def counts(self) -> tuple[int | None, int | None]:
        """Rows written or skipped of all rows, for the time-left estimate; (None, None)
        unless Zoho gave a total_count for every counted resource (no invented totals)."""
        if not (self.counted and self.totals_given):
            return None, None
        return self.ok + self.skipped, self.total

    @property
    def left(self) -> int:
        return max(0, self.total - self.ok - self.skipped)

    def add(self, res: dict[str, Any]) -> None:
        self.resources += 1
        # a string in v2 samples, `{api_name, id}` later (docs/vendors.md#crm-bulk-write-fields)
        raw_module = res.get("module")
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
            as_count(file.get(f"{k}_count")) for k in ("added", "updated", "skipped", "total")
        )
        if any(n is not None for n in (a, u, s, t)):
            self.counted = True
            self.added, self.updated, self.skipped = (
                self.added + (a or 0),
                self.updated + (u or 0),
                self.skipped + (s or 0),
            )
            self.total += t if t is not None else (a or 0) + (u or 0) + (s or 0)
            self.totals_given = self.totals_given and t is not None

    def completed(self, has_file: bool) -> tuple[State, str | None, str | None]:
        """docs/vendors.md#crm-bulk-write-states bot rule for COMPLETED, with
        docs/architecture.md#no-row-succeeded: a job that wrote nothing failed."""
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


def snapshot_from(doc: dict[str, Any], job: str, seen: SeenKeys | None = None) -> JobSnapshot:
    """Normalize a bulk write job document (docs/vendors.md#crm-bulk-write-states,
    docs/vendors.md#crm-bulk-write-fields); `seen` keeps an unknown status from
    being logged more than once."""
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
        # top-level FAILED is unconfirmed (docs/vendors.md#crm-bulk-write-states): accepted as
        # failed
        if state is State.FAILED:
            error_code = "FAILED"
            extra = f"; resource FAILED: {', '.join(t.failed)}" if t.failed else ""
            said = _text(doc.get("message")) or "Zoho CRM marked the bulk write job FAILED"
            error_message = said + extra
    else:
        state = State.UNKNOWN
        warn_once(
            log, seen, ("zoho-crm", key), "zoho-crm: unknown bulk write status %r; polling on", raw
        )
    return JobSnapshot(
        state=state,
        raw_status=raw,
        progress=tuple(progress),
        facts=tuple(facts),
        error_code=error_code,
        error_message=error_message,
        files=files,
        done=t.counts[0],
        total=t.counts[1],
    )


class ZohoCrm:
    """Client for one Zoho connection's CRM bulk write jobs (the `Vendor` protocol)."""

    kind: Final = "job"
    min_interval: Final[float | None] = None  # the token bucket is enough pacing

    def __init__(self, conn: ZohoConnection, ctx: VendorContext) -> None:
        self._conn = conn
        self._ctx = ctx
        # the same cached token as Zoho Analytics (docs/vendors.md#zoho-token-refresh)
        self._auth = auth_for(conn, ctx)

    def __repr__(self) -> str:
        return f"ZohoCrm(connection={self._conn.name!r})"

    def fetch(self, ref: str) -> JobSnapshot:
        job = parse_ref(ref)  # re-validated: only digits reach the path
        doc = self._get(f"/crm/bulk/v8/write/{job}", "this bulk write job")
        return snapshot_from(doc, job, self._ctx.seen)

    def check(self) -> str:
        orgs = self._get("/crm/v8/org", "this organization").get("org")
        org = _dict(orgs[0]) if isinstance(orgs, list) and orgs else {}
        name = _text(org.get("company_name"), 80) or "(no name)"
        return f"Zoho CRM: org {name} ({_text(org.get('id'), 24) or 'no id'})"

    def _get(self, path: str, what: str) -> dict[str, Any]:
        """GET with the shared token; on a token error refresh once and retry once
        (docs/vendors.md#auth-refresh)."""

        def attempt(token: str) -> dict[str, Any]:
            headers = {"Authorization": f"Zoho-oauthtoken {token}"}
            url = f"{self._conn.crm_api_url}{path}"
            response = send(self._ctx.http, "GET", url, vendor="Zoho CRM", headers=headers)
            return _read(response, self._ctx.clock(), (token, *self._conn.secrets), what)

        return self._auth.with_token(
            attempt,
            lambda code: (
                f"credentials rejected by Zoho CRM ({code}); the job may still be running "
                f"({_AUTH_HINT})"
            ),
        )

    # ----- result file (docs/vendors.md#crm-result-file) -----

    def results(self, ref: str, snapshot: JobSnapshot) -> list[ResultFile]:
        return BulkWriteResults(self._conn, self._ctx, self._auth).results(parse_ref(ref), snapshot)


def _read(
    response: httpx.Response, now: float, secrets: tuple[str, ...], what: str
) -> dict[str, Any]:
    """The JSON body of a usable reply; every other outcome becomes the matching error
    (docs/vendors.md#crm-errors-and-limits)."""
    status = response.status_code
    body = json_object(response)
    # The envelope decides first, whatever the HTTP status (docs/vendors.md#crm-errors-and-limits:
    # branch on `code`).
    if body is not None and status_key(_text(body.get("status"))) == "error":
        code, text = (redact(_text(body.get(k)), secrets) for k in ("code", "message"))
        retry_after = retry_after_from(response.headers, now)
        raise _for_code(code[:40], text, status, retry_after, what)
    if status == 401:
        raise AuthError("HTTP 401", code="401")
    if status == 429:
        retry_after = retry_after_from(response.headers, now)
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
        raise unreadable(response, "Zoho CRM")
    if status >= 400:
        raise RequestRejectedError(
            f"Zoho CRM refused the request (HTTP {status})", code=str(status)
        )
    return body


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
    family="zoho",
    rate_per_minute=30,
    build=lambda conn, ctx: ZohoCrm(connection_of(conn, ZohoConnection), ctx),
)
