"""Micro Prism async imports: poll within Micro's small per-key monthly request budget."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
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
    account_key,
    as_count,
    as_text,
    csv_bytes,
    json_object,
    one_line,
    ref_error,
    retry_after_from,
    send,
    unreadable,
    warn_once,
)
from .common import redact as redact_secrets

# docs/vendors.md#micro-hosts-and-auth: always set explicitly
DEFAULT_BASE_URL = "https://developers.micro.so"


@dataclass(frozen=True)
class MicroConnection:
    """One Micro API key as configured. `base_url` is an origin; `team_id` (a UUID) is the
    team used when a job ref names none. `overridden` is True when MICRO_BASE_URL was set.
    `rate_per_minute` is the operator's token-bucket rate (None: the vendor's default)."""

    name: str
    api_key: str
    team_id: str
    base_url: str = DEFAULT_BASE_URL
    overridden: bool = False
    rate_per_minute: float | None = None

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return f"MicroConnection(name={self.name!r}, base_url={self.base_url!r})"

    @cached_property
    def rate_key(self) -> str:
        """The Micro key this connection spends requests of, safe to print: a hash of the
        base URL and of the key (Micro limits per key). Names for one key share one bucket."""
        key_hash = hashlib.sha256(self.api_key.encode()).hexdigest()
        return account_key("micro", self.base_url, key_hash)


log = logging.getLogger(__name__)

# Micro beta: 1,000 requests a month per key (docs/vendors.md#micro-errors-and-limits)
MONTHLY_LIMIT = 1000
# (percent of the month's budget used, least seconds between polls, as said): the poller
# never polls this key's jobs sooner than `min_interval`, so the budget lasts the month.
_STEPS = ((95, 3600.0, "every hour"), (80, 900.0, "every 15 min"), (50, 300.0, "every 5 min"))
# percent: from here on the thread hears why polls slowed (docs/vendors.md#micro-errors-and-limits)
_WARN_AT = 80
_JOB = re.compile(r"[A-Za-z0-9_-]{1,128}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PROBE_JOB = "syncwatch-key-check"  # never an import id: check() expects Micro's 404
_NOT_FOUND_HINT = (
    "Micro keeps import jobs for 7 days and then answers 404; "
    "check the job id and the team (MICRO_TEAM_ID, or write <team-id>/<job-id>)"
)
_MISSING_KEY = "Micro says the API key is missing (401): check MICRO_API_KEY"
_CACHE_SIZE = 64  # replies kept for results(): one results[] list can hold thousands of rows
Redact = Callable[[str], str]


def parse_ref(text: str) -> str:
    """Validate `<job-id>` or `<team-uuid>/<job-id>`; the canonical form lower-cases the team."""
    cleaned = text.strip()
    parts = cleaned.split("/")
    team, job = (parts[0] if len(parts) == 2 else None), parts[-1]
    team_ok = team is None or _UUID.fullmatch(team)
    if len(parts) <= 2 and team_ok and _JOB.fullmatch(job):
        return job if team is None else f"{team.lower()}/{job}"
    if not cleaned:
        why = "got nothing"
    elif len(parts) > 2:
        why = "at most one `/` allowed"
    elif not team_ok:
        why = "the team must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
    elif len(job) > 128:
        why = "job ids have at most 128 characters"
    else:
        why = "job ids use only letters, digits, `_` and `-`"
    raise ref_error(cleaned, "a Micro Prism import job", SPEC.ref_syntax, why, SPEC.example_ref)


def _text(value: object) -> str:
    """Vendor text as a string; other values as compact, ASCII-only JSON."""
    return as_text(value, ensure_ascii=True)


def _epoch(value: object) -> float | None:
    """ISO 8601 (`2025-03-21T09:20:11.402Z`) → epoch seconds; None when unreadable."""
    try:
        when = dt.datetime.fromisoformat(_text(value).strip())
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def _day(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%d %b %Y").lstrip("0")


def _rows(body: dict[str, Any]) -> list[Any] | None:
    rows = body.get("results")
    return rows if isinstance(rows, list) else None


def _row_error(row: object) -> dict[str, Any] | None:
    error = row.get("error") if isinstance(row, dict) else None
    return error if isinstance(error, dict) and error else None


def _complete_state(s: int | None, f: int | None, t: int | None) -> State:
    """docs/vendors.md#micro-import-states with docs/architecture.md#no-row-succeeded: ok == 0 <
    total is failed, not partial."""
    if s == 0 and ((t or 0) > 0 or (f or 0) > 0):
        return State.FAILED
    return State.PARTIAL if f else State.SUCCEEDED


def snapshot_from(
    body: dict[str, Any], redact: Redact = str, seen: SeenKeys | None = None
) -> JobSnapshot:
    """Normalize one import-job reply (docs/vendors.md#micro-import-states,
    docs/vendors.md#micro-import-fields); `redact` scrubs the vendor text we keep,
    `seen` keeps an unknown status from being logged more than once."""
    raw = redact(one_line(_text(body.get("status"))))[:80]
    if not raw:
        raise TransientError("Micro sent an import job reply without a status")
    key, rows = status_key(raw), _rows(body)
    s, f = as_count(body.get("succeeded")), as_count(body.get("failed"))
    t, processed = as_count(body.get("total")), as_count(body.get("processed"))
    # counts missing: count the rows (docs/vendors.md#micro-import-states)
    if key == "complete" and rows is not None:
        f = sum(_row_error(r) is not None for r in rows) if f is None else f
        s = len(rows) - f if s is None else s
    if processed is None and s is not None and f is not None:
        processed = s + f
    progress = [("Processed", f"{processed:,} of {t:,}")] if None not in (processed, t) else []
    progress += [(name, f"{n:,}") for name, n in (("Succeeded", s), ("Failed", f)) if n is not None]
    names = ("created_at", "updated_at", "expires_at", "job_id")
    facts = tuple((k, redact(_text(body.get(k)))) for k in names if _text(body.get(k)))
    error_code = error_message = None
    if key == "processing":
        state = State.RUNNING
    elif key == "complete":
        state = _complete_state(s, f, t)
        if f:
            first = next((e for r in rows or () if (e := _row_error(r))), {})
            said = one_line(f"{_text(first.get('code'))}: {_text(first.get('message'))}")
            first_text = f" (first: {redact(said)[:200]})" if first else ""
            error_message = f"{f:,} row{'s' if f != 1 else ''} failed{first_text}"
    elif key == "failed":
        state = State.FAILED
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        error_code = redact(_text(error.get("code")).strip())[:80] or None
        error_message = redact(_text(error.get("message")).strip()) or "Micro says it failed"
    else:
        state = State.UNKNOWN
        warn_once(log, seen, ("micro", key), "micro: unknown import status %r; polling on", raw)
    return JobSnapshot(
        state=state,
        raw_status=raw,
        progress=tuple(progress),
        facts=facts,
        error_code=error_code,
        error_message=error_message,
        expires_at=_epoch(body.get("expires_at")),
        # processed (succeeded plus failed) of total (docs/vendors.md#micro-import-fields)
        done=processed if t is not None else None,
        total=t if processed is not None else None,
    )


def _flag(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else _text(value)


def results_csv(rows: list[Any], redact: Redact = str) -> bytes:
    """`position,id,created,existing,error_code,error_message`, one line per `results[]` entry."""
    lines = [["position", "id", "created", "existing", "error_code", "error_message"]]
    for position, row in enumerate(rows):
        row = row if isinstance(row, dict) else {}
        error = _row_error(row) or {}
        cells = [_text(row.get("id")), _flag(row.get("created")), _flag(row.get("existing"))]
        cells += [_text(error.get("code")), _text(error.get("message"))]
        lines.append([str(position), *(redact(c) for c in cells)])
    return csv_bytes(lines)


class MicroImports:
    """Client for one Micro API key's Prism import jobs (the `Vendor` protocol)."""

    kind: Final = "job"

    def __init__(
        self, conn: MicroConnection, ctx: VendorContext, *, monthly_limit: int = MONTHLY_LIMIT
    ) -> None:
        self._conn = conn
        self._ctx = ctx
        self.monthly_limit = monthly_limit
        # The tally lives in the database: key it by a digest, never by the API key itself.
        self._budget_key = "micro:" + hashlib.sha256(conn.api_key.encode()).hexdigest()[:16]
        # Per job: the last reply's results[] (rows live there, not in the snapshot) and expiry.
        self._seen: OrderedDict[tuple[str, str], tuple[list[Any] | None, float | None]]
        self._seen = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MicroImports(connection={self._conn.name!r})"

    @property
    def min_interval(self) -> float | None:
        """The poller's lower bound for this key's polls: wider as the month's budget goes."""
        step = self._step(self._ctx.budget.used(self._budget_key) if self._ctx.budget else 0)
        return step[1] if step else None

    def fetch(self, ref: str) -> JobSnapshot:
        team, job = self._target(ref)
        body, used = self._get(team, job)
        snap = snapshot_from(body, self._redact, self._ctx.seen)
        with self._lock:
            self._seen[(team, job)] = (_rows(body), snap.expires_at)
            self._seen.move_to_end((team, job))
            while len(self._seen) > _CACHE_SIZE:
                self._seen.popitem(last=False)
        return replace(snap, notice=self._notice(used))

    def results(self, ref: str, snapshot: JobSnapshot) -> list[ResultFile]:
        if not snapshot.state.terminal or status_key(snapshot.raw_status) not in _DONE:
            return []
        team, job = self._target(ref)
        with self._lock:
            seen = self._seen.pop((team, job), None)
        # Not cached (e.g. after a restart): ask once more; that spends one request.
        rows = seen[0] if seen is not None else _rows(self._get(team, job)[0])
        name, title = f"micro-import-{job}.csv", f"Import results for {job}"
        if not rows:
            return [ResultFile(name, title, note="Micro returned no per-row results for this job.")]
        failed = sum(_row_error(r) is not None for r in rows)
        comment = f"{len(rows):,} rows: {len(rows) - failed:,} succeeded, {failed:,} failed"
        return [ResultFile(name, title, comment, content=results_csv(rows, self._redact))]

    def check(self) -> str:
        team = self._team(None)
        try:  # a made-up id: a 404 means Micro accepted the key for this team
            _, used = self._get(team, _PROBE_JOB)
        except JobNotFoundError:
            used = self._ctx.budget.used(self._budget_key) if self._ctx.budget else None
        line = f"Micro: API key accepted for team {team} at {self._conn.base_url}"
        if used is None:
            return line
        return f"{line}; {used:,} of {self.monthly_limit:,} requests used this month"

    # --- budget ---------------------------------------------------------------------------

    def _step(self, used: int) -> tuple[int, float, str] | None:
        return next((s for s in _STEPS if used * 100 >= self.monthly_limit * s[0]), None)

    def _notice(self, used: int | None) -> str | None:
        # Worded per step, never with the live count: the thread hears each step once.
        step = self._step(used) if used is not None else None
        if step is None or step[0] < _WARN_AT or self._ctx.budget is None:
            return None
        return (
            f"Heads-up: this Micro API key has used over {step[0]} % of its "
            f"{self.monthly_limit:,} requests this month; I'm checking less often ({step[2]}) "
            f"so the budget lasts until it resets on {_day(self._ctx.budget.month_ends_at())}."
        )

    def _spend(self) -> int | None:
        """Count one request before it is sent; refuse when the month's budget is gone."""
        budget, limit = self._ctx.budget, self.monthly_limit
        if budget is None:
            return None
        if budget.used(self._budget_key) < limit:
            used = budget.spend(self._budget_key)
            if used <= limit:  # else a sibling watch took the last one meanwhile
                return used
        ends = budget.month_ends_at()
        raise RateLimitedError(
            f"Micro's monthly request budget for this key is used up ({limit:,}/{limit:,}); "
            f"checks resume {_day(ends)}",
            code="monthly-budget",
            retry_after=max(0.0, ends - self._ctx.clock()),
            notice=(
                f"Micro's monthly request budget for this API key is used up ({limit:,} of "
                f"{limit:,} requests), so I can't check this import again until it resets on "
                f"{_day(ends)}. The import itself is unaffected: it keeps running at Micro."
            ),
        )

    # --- HTTP -----------------------------------------------------------------------------

    def _team(self, team: str | None) -> str:
        team = (team or self._conn.team_id or "").strip().lower()
        if not team:
            raise RequestRejectedError("no team: set MICRO_TEAM_ID or write <team-id>/<job-id>")
        if not _UUID.fullmatch(team):
            raise RequestRejectedError("MICRO_TEAM_ID is not a team UUID")
        return team

    def _target(self, ref: str) -> tuple[str, str]:
        team, _, job = parse_ref(ref).rpartition("/")  # re-validated before it nears a path
        return self._team(team or None), job

    def _redact(self, text: str) -> str:
        return redact_secrets(text, (self._conn.api_key,))

    def _get(self, team: str, job: str) -> tuple[dict[str, Any], int | None]:
        used = self._spend()
        url = f"{self._conn.base_url.rstrip('/')}/v2/prism/{team}/imports/{job}"
        headers = {"x-api-key": self._conn.api_key}
        response = send(self._ctx.http, "GET", url, vendor="Micro", headers=headers)
        return self._read(response, team, job), used

    def _read(self, response: httpx.Response, team: str, job: str) -> dict[str, Any]:
        """The JSON object of a usable reply; every other outcome becomes its error
        (docs/vendors.md#micro-errors-and-limits)."""
        status, headers, code = response.status_code, response.headers, str(response.status_code)
        body = json_object(response)
        text = self._redact(one_line(_text(body.get("message"))))[:300] if body else ""
        said = f": {text}" if text else ""
        # Micro's SDK retry hint: on a 4xx we would retry, `false` makes it a verdict.
        final = headers.get("x-should-retry", "").strip().lower() == "false"
        if 300 <= status < 400:  # never followed: x-api-key must not travel to another host
            target = self._redact(_location_host(response))
            raise RequestRejectedError(
                f"Micro ({response.request.url.host}) answered with a redirect (HTTP {status}) "
                f"to {target}; not followed: check MICRO_BASE_URL",
                code=code,
            )
        if status == 401:
            raise AuthError(_MISSING_KEY, code=code)
        if status == 403:
            raise AuthError(
                "Micro refused the API key (403): it is invalid, revoked, or has no access to "
                f"team {team}",
                code=code,
            )
        if status == 404:
            with self._lock:
                expires, now = self._seen.get((team, job), (None, None))[1], self._ctx.clock()
            gone = f" (it expired on {_day(expires)})" if expires and expires <= now else ""
            raise JobNotFoundError(
                f"Micro does not know import job {job} in team {team} (404){gone}",
                code=code,
                hint=_NOT_FOUND_HINT,
            )
        if final and status in (408, 409, 429):
            raise RequestRejectedError(
                f"Micro refused the request (HTTP {status}{said}) and marked it not worth "
                "retrying (x-should-retry: false)",
                code=code,
            )
        if status == 429:
            wait = retry_after_from(headers, self._ctx.clock(), ms=True)
            raise RateLimitedError(f"Micro rate limit (429{said})", code=code, retry_after=wait)
        if status >= 500 or status in (408, 409):
            # Says nothing about the job, and we never retry at once anyway: poll on as
            # scheduled, but show that Micro asked not to retry.
            note = "; Micro asked not to retry it at once" if final else ""
            raise TransientError(f"Micro answered HTTP {status}{said}{note}", code=code)
        if status >= 400:
            raise RequestRejectedError(
                f"Micro rejected the request (HTTP {status}{said})", code=code
            )
        if body is None:
            raise unreadable(response, "Micro")
        return body


_DONE = ("complete", "failed")  # the raw statuses whose replies may carry results[]


def _location_host(response: httpx.Response) -> str:
    """The redirect target's host, for the message only (it is never requested)."""
    try:
        host = httpx.URL(response.headers.get("location", "")).host
    except (httpx.InvalidURL, ValueError):
        host = ""
    return re.sub(r"[^A-Za-z0-9.:\[\]-]", "", host)[:80] or response.request.url.host


SPEC = VendorSpec(
    key="micro",
    aliases=("prism", "micro-prism"),
    label="Micro Prism import",
    ref_syntax="[<team-id>/]<job-id>",
    example_ref="imp_8QmZ2vK4tR",
    parse_ref=parse_ref,
    schedule=((0, 60), (600, 300), (3600, 600)),
    floor=60,
    family="micro",
    rate_per_minute=600,
    build=lambda conn, ctx: MicroImports(connection_of(conn, MicroConnection), ctx),
)
