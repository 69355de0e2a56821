"""Zoho Analytics bulk import jobs: poll one job, normalize its state, write the import summary."""

from __future__ import annotations

import logging
import re
from typing import Any, Final

import httpx

from .base import (
    AuthError,
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
    as_code,
    as_count,
    as_text,
    csv_bytes,
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

log = logging.getLogger(__name__)

_ID = re.compile(r"[0-9]{1,20}")  # ASCII only: \d would admit other scripts' digits
_AUTH_CODES = frozenset({"8535", "8518"})
_NOT_FOUND_CODES = frozenset({"1005", "7103", "7104", "8137", "8138"})
_NOT_FOUND_HINT = (
    "check the workspace and job ids, ZOHO_ANALYTICS_ORG_ID and ZOHO_DC; "
    "Zoho keeps import details for 1 hour after completion"
)
_REJECT_HINTS = {
    "8083": "ZANALYTICS-ORGID missing: set ZOHO_ANALYTICS_ORG_ID",
    "7301": "the refresh token's user lacks permission on this workspace",
    "7387": "the workspace is not in this organization: check ZOHO_ANALYTICS_ORG_ID",
}
# jobCode → (jobStatus key, state). jobStatus is only read when jobCode is absent
# (docs/vendors.md#analytics-import-states).
_JOB_CODES = {
    "1001": ("jobnotinitiated", State.QUEUED),
    "1002": ("jobinprogress", State.RUNNING),
    "1003": ("erroroccurred", State.FAILED),
    "1004": ("jobcompleted", State.SUCCEEDED),  # refined by the counts, see _completed_state
}
_CODE_BY_STATUS = {key: code for code, (key, _) in _JOB_CODES.items()} | {"jobnotfound": "1005"}


def parse_ref(text: str) -> str:
    """Validate `<workspace-id>/<job-id>` (digits only) and return it canonical; else RefError."""
    cleaned = text.strip()
    parts = cleaned.split("/")
    if len(parts) == 2 and all(_ID.fullmatch(p) for p in parts):
        return f"{parts[0]}/{parts[1]}"
    if not cleaned:
        why = "got nothing"
    elif len(parts) != 2:
        why = "missing `/`" if len(parts) == 1 else "exactly one `/` allowed"
    elif any(len(p) > 20 and p.isascii() and p.isdigit() for p in parts):
        why = "ids have at most 20 digits"
    else:
        why = "both digits"
    raise ref_error(
        cleaned, "a Zoho Analytics import job", "<workspace-id>/<job-id>", why, SPEC.example_ref
    )


def _completed_state(s: int | None, t: int | None, errors: str) -> State:
    """docs/vendors.md#analytics-import-states bot rule for jobCode 1004; the first matching line
    wins."""
    if t == 0 or (s is not None and s == t and not errors):
        return State.SUCCEEDED
    if s == 0 and t is not None and t > 0:
        return State.FAILED
    if (s is not None and t is not None and s < t) or errors:
        return State.PARTIAL
    return State.SUCCEEDED  # counts missing or odd (s > t) with no error text: nothing failed


def snapshot_from(data: dict[str, Any], seen: SeenKeys | None = None) -> JobSnapshot:
    """Normalize the `data` object of a successful import-job reply
    (docs/vendors.md#analytics-import-states, docs/vendors.md#analytics-import-fields); `seen`
    keeps an unknown status from being logged more than once."""
    job_status = as_text(data.get("jobStatus")).strip()
    raw_code = data.get("jobCode")
    code = as_code(raw_code) or _CODE_BY_STATUS.get(status_key(job_status), "")
    if not code and not job_status:
        raise TransientError("Zoho Analytics sent an import job reply without jobCode")
    raw_status = f"{code} {job_status}".strip()
    if code == "1005":
        raise JobNotFoundError(
            "Zoho Analytics does not know this import job (1005 JOB NOT FOUND)",
            code="1005",
            hint=_NOT_FOUND_HINT,
        )
    info = data.get("jobInfo") if isinstance(data.get("jobInfo"), dict) else {}
    summary = info.get("importSummary") if isinstance(info.get("importSummary"), dict) else {}
    errors = as_text(info.get("importErrors")).strip()
    s, t = as_count(summary.get("successRowCount")), as_count(summary.get("totalRowCount"))
    warnings = as_count(summary.get("warnings"))

    progress: list[tuple[str, str]] = []
    if t is not None:
        progress.append(("Rows", f"{s:,} of {t:,} imported" if s is not None else f"{t:,} rows"))
    if warnings:
        progress.append(("Warnings", f"{warnings:,}"))
    kind = " · ".join(
        as_text(summary.get(k)).strip()
        for k in ("importType", "importOperation")
        if as_text(summary.get(k)).strip()
    )
    if kind:
        progress.append(("Import", kind))
    facts = [(str(k), as_text(v)) for k, v in summary.items()]
    if info.get("viewId") is not None:
        facts.append(("viewId", as_text(info["viewId"])))

    error_code = error_message = None
    state = _JOB_CODES[code][1] if code in _JOB_CODES else State.UNKNOWN
    if state is State.UNKNOWN:
        warn_once(
            log,
            seen,
            ("zoho-analytics", code or job_status),
            "zoho-analytics: unknown import status %r; polling on",
            raw_status[:80],
        )
    elif code == "1003":
        error_code = "1003"
        error_message = (
            errors or as_text(data.get("errorMessage")).strip() or job_status or "ERROR OCCURRED"
        )
    elif code == "1004":
        state = _completed_state(s, t, errors)
        error_message = errors or None
    return JobSnapshot(
        state=state,
        raw_status=raw_status,
        progress=tuple(progress),
        facts=tuple(facts),
        error_code=error_code,
        error_message=error_message,
        expires_at=ms / 1000 if (ms := as_count(data.get("expiryTime"))) else None,
        # rows imported of all rows, when Zoho gives both (docs/vendors.md#analytics-import-fields)
        done=s if t is not None else None,
        total=t if s is not None else None,
    )


def summary_csv(snapshot: JobSnapshot) -> bytes:
    """`field,value` rows: importSummary facts, then the raw error text
    (docs/vendors.md#analytics-import-result-file)."""
    rows = [("field", "value"), *snapshot.facts]
    if snapshot.error_message:
        # For 1003 the text may come from errorMessage/jobStatus, so don't call it importErrors.
        label = "error" if snapshot.error_code == "1003" else "importErrors"
        rows.append((label, snapshot.error_message))
    return csv_bytes(rows)


def _summary_line(snapshot: JobSnapshot) -> str:
    facts = dict(snapshot.facts)
    s, t = as_count(facts.get("successRowCount")), as_count(facts.get("totalRowCount"))
    if s is not None and t is not None:
        return f"{s:,} of {t:,} rows imported"
    if snapshot.error_message:
        first = " ".join(snapshot.error_message.split())
        return f"import failed: {first[:120]}" if snapshot.error_code else first[:120]
    return f"import {snapshot.state.value}"


class ZohoAnalytics:
    """Client for one Zoho connection's Analytics import jobs (the `Vendor` protocol)."""

    kind: Final = "job"
    min_interval: Final[float | None] = None  # the token bucket is enough pacing

    def __init__(self, conn: ZohoConnection, ctx: VendorContext) -> None:
        self._conn = conn
        self._ctx = ctx
        self._auth = auth_for(conn, ctx)

    def __repr__(self) -> str:
        return f"ZohoAnalytics(connection={self._conn.name!r})"

    def fetch(self, ref: str) -> JobSnapshot:
        ws, job = parse_ref(ref).split("/")  # re-validated: only digits reach the path
        body = self._get(f"/restapi/v2/bulk/workspaces/{ws}/importjobs/{job}", org=True)
        data = body.get("data")
        if not isinstance(data, dict):
            raise TransientError("Zoho Analytics sent an import job reply without data")
        return snapshot_from(data, self._ctx.seen)

    def results(self, ref: str, snapshot: JobSnapshot) -> list[ResultFile]:
        if not snapshot.state.terminal or not (snapshot.facts or snapshot.error_message):
            return []
        job = parse_ref(ref).split("/")[1]  # the filename takes our validated id, not vendor text
        return [
            ResultFile(
                filename=f"import-summary-{job}.csv",
                title=f"Import summary for job {job}",
                comment=_summary_line(snapshot),
                content=summary_csv(snapshot),
            )
        ]

    def check(self) -> str:
        data = self._get("/restapi/v2/orgs", org=False).get("data")
        orgs = data.get("orgs") if isinstance(data, dict) else None
        ids = [as_text(o.get("orgId")) for o in orgs or [] if isinstance(o, dict)]
        head = f"Zoho Analytics: {len(ids)} organization{'s' if len(ids) != 1 else ''} visible"
        org = self._conn.analytics_org_id
        if not org:
            return f"{head}; ZOHO_ANALYTICS_ORG_ID is not set (visible: {', '.join(ids[:5])})"
        if org in ids:
            return f"{head}; org {org} found"
        return (
            f"{head}; org {org} is NOT among them: check ZOHO_ANALYTICS_ORG_ID and ZOHO_DC "
            f"(visible: {', '.join(ids[:5]) or 'none'})"
        )

    def _get(self, path: str, *, org: bool) -> dict[str, Any]:
        """GET with the shared token; on 8535/8518 refresh once and retry once
        (docs/vendors.md#auth-refresh)."""
        return self._auth.with_token(
            lambda token: _read(
                self._send(path, token, org), self._ctx.clock(), (token, *self._conn.secrets)
            ),
            lambda code: (
                f"credentials rejected by Zoho Analytics ({code}); the job may still be running "
                "(check ZOHO_DC and the refresh token's scopes)"
            ),
        )

    def _send(self, path: str, token: str, org: bool) -> httpx.Response:
        headers = {"Authorization": f"Zoho-oauthtoken {token}"}
        if org and self._conn.analytics_org_id:
            headers["ZANALYTICS-ORGID"] = self._conn.analytics_org_id
        url = f"{self._conn.analytics_api_url}{path}"
        return send(self._ctx.http, "GET", url, vendor="Zoho Analytics", headers=headers)


def _read(response: httpx.Response, now: float, secrets: tuple[str, ...]) -> dict[str, Any]:
    """The JSON body of a usable reply; every other outcome becomes the matching error
    (docs/vendors.md#analytics-import-errors)."""
    status = response.status_code
    retry_after = retry_after_from(response.headers, now)
    body = json_object(response)
    data = body.get("data") if body else None
    raw_code = data.get("errorCode") if isinstance(data, dict) else None
    if raw_code is None and body:
        raw_code = body.get("errorCode")
    # The envelope decides first: Zoho sends some errors (6045, 8535) with HTTP 200.
    if raw_code is not None:
        code = redact(as_code(raw_code), secrets)[:20]
        text = as_text(data.get("errorMessage") if isinstance(data, dict) else "").strip()
        text = redact(one_line(text), secrets)
        _raise_for_code(code, text, retry_after)
    if status == 401:
        raise AuthError("HTTP 401", code="401")
    if status == 429:
        raise RateLimitedError("Zoho Analytics rate limit (HTTP 429)", retry_after=retry_after)
    if status >= 500 or status == 408:
        raise TransientError(f"Zoho Analytics answered HTTP {status}")
    if 300 <= status < 400:
        raise RequestRejectedError(
            f"Zoho Analytics answered with a redirect (HTTP {status}); check ZOHO_DC",
            code=str(status),
        )
    if body is None:
        raise unreadable(response, "Zoho Analytics")
    symbol = redact(as_text(body.get("summary")).strip(), secrets)[:80]
    symbol = f": {symbol}" if symbol else ""
    if status >= 400:
        raise RequestRejectedError(
            f"Zoho Analytics refused the request (HTTP {status}{symbol})", code=str(status)
        )
    if status_key(body.get("status", "")) == "failure":
        # A failure envelope without a code is not definitive enough to fail the watch.
        raise TransientError(f"Zoho Analytics reported a failure without an error code{symbol}")
    return body


def _raise_for_code(code: str, text: str, retry_after: float | None) -> None:
    quoted = f"{code}: {text[:300]}" if text else code
    if code in _AUTH_CODES:
        raise AuthError(code, code=code)
    if code == "6045":
        raise RateLimitedError(
            f"Zoho Analytics rate limit ({quoted})", code=code, retry_after=retry_after
        )
    if code == "7005":
        raise TransientError(f"Zoho Analytics internal error ({quoted})", code=code)
    if code in _NOT_FOUND_CODES:
        raise JobNotFoundError(
            f"Zoho Analytics does not know this job ({quoted})", code=code, hint=_NOT_FOUND_HINT
        )
    hint = _REJECT_HINTS.get(code)
    raise RequestRejectedError(
        f"Zoho Analytics rejected the request ({quoted}){'; ' + hint if hint else ''}", code=code
    )


SPEC = VendorSpec(
    key="zoho-analytics",
    aliases=("za", "zoho_analytics", "zohoanalytics"),
    label="Zoho Analytics import",
    ref_syntax="<workspace-id>/<job-id>",
    example_ref="2480011000000498001/2480011000000512007",
    parse_ref=parse_ref,
    schedule=((0, 10), (300, 30), (1800, 60)),
    floor=10,
    family="zoho",
    rate_per_minute=30,
    build=lambda conn, ctx: ZohoAnalytics(connection_of(conn, ZohoConnection), ctx),
)
