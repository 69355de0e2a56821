"""Zoho Analytics datasource syncs: trigger one, then read the datasource list until it moves."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from .base import (
    JobNotFoundError,
    JobSnapshot,
    RequestRejectedError,
    ResultFile,
    State,
    SyncOptions,
    TransientError,
    VendorContext,
    VendorError,
    VendorSpec,
    connection_of,
    status_key,
)
from .boundary import VALUE_CHARS, clip
from .common import (
    as_code,
    as_count,
    as_text,
    csv_bytes,
    json_object,
    one_line,
    redact,
    ref_error,
    send,
    warn_once,
)
from .zoho_analytics import ZohoAnalytics, _read
from .zoho_auth import ZohoConnection, auth_for

log = logging.getLogger(__name__)

_ID = re.compile(r"[0-9]{1,20}")  # ASCII only: \d would admit other scripts' digits
_HINT = "check the workspace and datasource ids, ZOHO_ANALYTICS_ORG_ID and ZOHO_DC"
_NOT_FOUND_CODES = frozenset({"7103", "7104", "8137", "8138"})
# docs/vendors.md#sync-errors-and-limits: refusals of the sync itself. Meanings of the 79xx/80xx
# codes are unconfirmed,
# so those are quoted raw; retrying will not help either way (the user gets `Retry sync`).
_SYNC_REFUSALS = dict.fromkeys(("7925", "8060", "8078", "8079"), "") | {
    "18011": "source unreachable",
    "18040": "datasource login failed",
    "18041": "database missing",
    "18042": "S3 output location problem",
    "18043": "region problem",
}
_WAITING = "waiting for Zoho to record the sync"


class _HideSyncConfig(logging.Filter):
    """httpx logs every request URL at INFO, and the sync URL's CONFIG may hold the
    datasource password (docs/vendors.md#never-logged): drop that parameter from the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(_has_config(a) for a in record.args):
            record.args = tuple(
                a.copy_remove_param("CONFIG") if _has_config(a) else a for a in record.args
            )
        return True


def _has_config(arg: object) -> bool:
    return isinstance(arg, httpx.URL) and "CONFIG" in arg.params


def _hide_sync_config_in_httpx_log() -> None:
    """Install the filter on httpx's logger once, before the first sync request is sent."""
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _HideSyncConfig) for f in httpx_log.filters):
        httpx_log.addFilter(_HideSyncConfig())


def parse_ref(text: str) -> str:
    """Validate `<workspace-id>/<datasource-id>` (digits only) and return it canonical."""
    cleaned = text.strip()
    parts = cleaned.split("/")
    if len(parts) == 2 and all(_ID.fullmatch(p) for p in parts):
        return f"{parts[0]}/{parts[1]}"
    raise ref_error(
        cleaned,
        "a Zoho Analytics datasource",
        "<workspace-id>/<datasource-id>",
        "both up to 20 digits",
        SPEC.example_ref,
    )


def _find(sources: object, ds: str, schedule_id: str | None) -> dict[str, Any] | None:
    """The datasource entry (docs/vendors.md#sync-datasource-list); a configured sync interval's own
    fields win over it, since each interval keeps its own last sync time, status and quota."""
    found = next((e for e in _dicts(sources) if as_code(e.get("datasourceId")) == ds), None)
    if found is None or not schedule_id:
        return found
    intervals = _dicts(found.get("syncIntervals"))
    item = next((i for i in intervals if as_code(i.get("syncIntervalId")) == schedule_id), {})
    return {**found, **item}


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _tables(entry: dict[str, Any]) -> list[list[str]]:
    """[name, view id, status, last sync time] per table, as vendor text, each clipped like a
    name at the vendor boundary: the list travels as one fact, which must stay whole JSON."""
    return [
        [
            clip(cell, VALUE_CHARS)
            for cell in (
                as_text(t.get("viewName") or t.get("sourceName")).strip(),
                as_code(t.get("viewId")),
                as_text(t.get("syncStatus")).strip(),
                as_text(t.get("lastSyncTime")).strip(),
            )
        ]
        for t in _dicts(entry.get("tableDetails"))
    ]


def _failedish(status: str) -> bool:
    # heuristic (docs/vendors.md#sync-outcome): the status vocabulary is unconfirmed
    key = status_key(status)
    return "fail" in key or "error" in key


def _outcome(status: str, tables: list[list[str]]) -> tuple[State, str | None]:
    """docs/vendors.md#sync-outcome table, first match wins. Tables without a status can't be judged
    and are skipped."""
    judged = [t for t in tables if t[2]]
    bad = [t for t in judged if status_key(t[2]) != "success"]
    ok = len(judged) - len(bad)
    listed = ", ".join(f"{t[0] or t[1] or '?'} ({t[2]})" for t in bad[:20])
    listed += f" and {len(bad) - 20} more" if len(bad) > 20 else ""
    if status_key(status) == "success" and not bad:
        return State.SUCCEEDED, None
    if ok and bad:
        return State.PARTIAL, f"{len(bad)} of {len(judged)} tables not synced: {listed}"
    # Past here no table is OK; every table failing is 0 OK units of >0, i.e. failed
    # (docs/vendors.md#normalized-states),
    # even under a "Success" or an unrecognised top-level status.
    all_bad = bool(bad) and (status_key(status) == "success" or any(_failedish(t[2]) for t in bad))
    if _failedish(status) or all_bad:
        tail = f"; failed tables: {listed}" if bad else ""
        return State.FAILED, f"{status or 'no status'}{tail}"
    return State.UNKNOWN, None


class ZohoAnalyticsSync:
    """Client for one Zoho connection's Analytics datasource syncs (the `SyncVendor` protocol)."""

    kind: Final = "sync"
    min_interval: Final[float | None] = None  # the token bucket is enough pacing

    def __init__(self, conn: ZohoConnection, ctx: VendorContext) -> None:
        self._conn = conn
        self._ctx = ctx
        self._auth = auth_for(conn, ctx)
        self._analytics = ZohoAnalytics(conn, ctx)  # same cheap check, same token cache
        self._passwords: set[str] = set()  # kept in memory only, to redact echoes later
        _hide_sync_config_in_httpx_log()

    def __repr__(self) -> str:
        return f"ZohoAnalyticsSync(connection={self._conn.name!r})"

    def trigger(self, ref: str, options: SyncOptions | None) -> JobSnapshot:
        ws, ds = parse_ref(ref).split("/")  # re-validated: only digits reach the path
        opts = options or SyncOptions()
        if opts.password:
            self._passwords.add(opts.password)
        entry = self._datasource(ws, ds, opts.schedule_id, view_id=None)
        name = as_text(entry.get("datasourceName")).strip() or ds
        time = as_text(entry.get("lastDataSyncTime")).strip()
        status = as_text(entry.get("lastDataSyncStatus")).strip()
        notice = None
        used, allowed = as_count(entry.get("syncUsed")), as_count(entry.get("totalSyncAllowed"))
        if used is not None and allowed is not None and used >= allowed:
            # Warn, don't refuse: what Zoho does with a used-up quota is unconfirmed
            # (docs/vendors.md#sync-quota).
            notice = f"Zoho reports {used} of {allowed} manual syncs used; this one may be refused."
        fields = {"userName": opts.user_name, "password": opts.password}
        config = {k: v for k, v in (fields | {"scheduleId": opts.schedule_id}).items() if v}
        params = {"CONFIG": json.dumps(config, separators=(",", ":"))} if config else None
        self._call("POST", f"/restapi/v2/workspaces/{ws}/datasources/{ds}/sync", params=params)
        log.info("zoho-analytics-sync: sync requested for %s", ref)
        now = datetime.fromtimestamp(self._ctx.clock(), UTC)
        facts = [
            ("baseline_time", time),
            ("baseline_status", status),
            ("datasource", name),
            ("triggered_at", now.isoformat(timespec="seconds")),
        ]
        if opts.schedule_id:  # fetch() has no options: it reads the same interval through this
            facts.append(("schedule_id", opts.schedule_id))
        if view := next((t[1] for t in _tables(entry) if t[1]), ""):
            facts.append(("view_id", view))  # lets a later read fall back to the view path
        return JobSnapshot(
            state=State.RUNNING,
            raw_status="sync requested",
            progress=_before(name, time, status),
            facts=tuple(facts),
            notice=notice,
        )

    def fetch(self, ref: str, previous: JobSnapshot | None = None) -> JobSnapshot:
        ws, ds = parse_ref(ref).split("/")
        # Every snapshot carries the baseline on, so each poll compares against the trigger's.
        facts = [(k, v) for k, v in previous.facts if k != "tables"] if previous else []
        kept = dict(facts)
        entry = self._datasource(ws, ds, kept.get("schedule_id"), view_id=kept.get("view_id"))
        name = as_text(entry.get("datasourceName")).strip() or ds
        time = as_text(entry.get("lastDataSyncTime")).strip()
        status = as_text(entry.get("lastDataSyncStatus")).strip()
        if "baseline_time" not in kept:
            # Should not happen (trigger() sets it); comparing against now beats guessing.
            facts += [("baseline_time", time), ("baseline_status", status), ("datasource", name)]
            kept = dict(facts)
        if time == kept["baseline_time"]:  # opaque strings: Zoho's format has ambiguous zones
            return JobSnapshot(
                state=State.RUNNING,
                raw_status=_WAITING,
                progress=_before(name, kept["baseline_time"], kept.get("baseline_status", "")),
                facts=tuple(facts),
            )
        tables = _tables(entry)
        state, error = _outcome(status, tables)
        if state is State.UNKNOWN:
            warn_once(  # once per value, not once per poll (docs/vendors.md#unknown-statuses)
                log,
                self._ctx.seen,
                ("zoho-analytics-sync", status),
                "zoho-analytics-sync: unknown sync status %r; polling on",
                status[:80],
            )
        progress = [("Datasource", name), ("Last sync", f"{time} · {status or '?'}")]
        judged = [t for t in tables if t[2]]
        if judged:
            ok = sum(status_key(t[2]) == "success" for t in judged)
            progress.append(("Tables", f"{ok} of {len(judged)} OK"))
        facts.append(("tables", json.dumps(tables, ensure_ascii=False)))  # for results()
        secrets = tuple(self._passwords)
        return JobSnapshot(
            state=state,
            raw_status=redact(status, secrets) or "no status",
            progress=tuple(progress),
            facts=tuple(facts),
            error_message=redact(error, secrets) if error else None,
        )

    def results(self, ref: str, snapshot: JobSnapshot) -> list[ResultFile]:
        # "tables" is our own fact, written by fetch() as [name, view, status, time] rows.
        try:
            tables = json.loads(dict(snapshot.facts).get("tables") or "[]")
        except ValueError:  # a list longer than the vendor boundary keeps, so cut
            tables = None
        if not snapshot.state.terminal or tables == []:
            return []
        ds = parse_ref(ref).split("/")[1]  # the filename takes our validated id, not vendor text
        if tables is None:
            note = "The table list was too long to keep; see the datasource in Zoho Analytics."
            return [ResultFile(f"sync-{ds}.csv", f"Sync result for datasource {ds}", note=note)]
        ok = sum(status_key(row[2]) == "success" for row in tables)
        return [
            ResultFile(
                filename=f"sync-{ds}.csv",
                title=f"Sync result for datasource {ds}",
                comment=f"{ok} of {len(tables)} tables synced OK",
                content=csv_bytes([["table", "view_id", "status", "last_sync_time"], *tables]),
            )
        ]

    def check(self) -> str:
        return self._analytics.check()

    # ----- HTTP -----

    def _datasource(
        self, ws: str, ds: str, schedule_id: str | None, *, view_id: str | None
    ) -> dict[str, Any]:
        """Read the datasource list (docs/vendors.md#sync-datasource-list): workspace path, the view
        path on 404/7104."""
        try:
            body = self._call("GET", f"/restapi/v2/workspaces/{ws}/datasources")
        except VendorError as exc:
            if exc.code not in ("404", "7104"):
                raise
            if not view_id or not _ID.fullmatch(view_id):
                raise JobNotFoundError(
                    f"Zoho Analytics has no datasource list for workspace {ws} ({exc.code}); "
                    "the per-view list needs a view id, which this sync does not know yet",
                    code=exc.code,
                    hint=_HINT,
                ) from None
            body = self._call("GET", f"/restapi/v2/workspaces/{ws}/views/{view_id}/datasources")
        data = body.get("data") if body else None
        sources = data.get("dataSources") if isinstance(data, dict) else None
        if not isinstance(sources, list):
            raise TransientError("Zoho Analytics sent a datasource list without dataSources")
        entry = _find(sources, ds, schedule_id)
        if entry is None:
            raise JobNotFoundError(
                f"Zoho Analytics lists no datasource {ds} in workspace {ws}", hint=_HINT
            )
        return entry

    def _call(
        self, method: str, path: str, *, params: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        """One request with the shared token; on 8535/8518 refresh once and retry once
        (docs/vendors.md#auth-refresh).
        Returns the JSON body, or None for an accepted sync (204, no body)."""
        return self._auth.with_token(
            lambda token: self._interpret(method, self._send(method, path, token, params), token),
            lambda code: (
                f"credentials rejected by Zoho Analytics ({code}); the sync may not have "
                "started (check ZOHO_DC and the refresh token's scopes: "
                "ZohoAnalytics.metadata.read and .create)"
            ),
        )

    def _send(
        self, method: str, path: str, token: str, params: dict[str, str] | None
    ) -> httpx.Response:
        headers = {"Authorization": f"Zoho-oauthtoken {token}"}
        if self._conn.analytics_org_id:
            headers["ZANALYTICS-ORGID"] = self._conn.analytics_org_id
        url = f"{self._conn.analytics_api_url}{path}"
        # chain=False: no httpx error rides along as __context__, since it holds the request,
        # and the sync request's URL holds CONFIG.
        return send(
            self._ctx.http,
            method,
            url,
            vendor="Zoho Analytics",
            chain=False,
            headers=headers,
            params=params,
        )

    def _interpret(
        self, method: str, response: httpx.Response, token: str
    ) -> dict[str, Any] | None:
        secrets = (token, *self._conn.secrets, *self._passwords)
        if method == "POST" and response.is_success and not response.content:
            return None  # 204 No Content: the sync was accepted (docs/vendors.md#sync-trigger)
        found = _envelope_error(response)
        if found is not None:
            code = redact(found[0], secrets)[:20]
            text = redact(one_line(found[1]), secrets)[:300]
            quoted = f"{code}: {text}" if text else code
            if code in _SYNC_REFUSALS:
                meaning = _SYNC_REFUSALS[code]
                raise RequestRejectedError(
                    f"Zoho Analytics refused the sync ({code}{' ' + meaning if meaning else ''}"
                    f"{': ' + text if text else ''})",
                    code=code,
                )
            if code in _NOT_FOUND_CODES:
                raise JobNotFoundError(
                    f"Zoho Analytics does not know this workspace or datasource ({quoted})",
                    code=code,
                    hint=_HINT,
                )
        elif response.status_code == 404:  # _read would call a bare 404 page transient
            raise JobNotFoundError(
                "Zoho Analytics answered HTTP 404 for this workspace or datasource",
                code="404",
                hint=_HINT,
            )
        # auth, 6045, 5xx, the rest (docs/vendors.md#analytics-import-errors)
        return _read(response, self._ctx.clock(), secrets)


def _envelope_error(response: httpx.Response) -> tuple[str, str] | None:
    """(errorCode, errorMessage) of an Analytics error envelope, whatever the HTTP status."""
    body = json_object(response)
    data = body.get("data") if body else None
    raw = data.get("errorCode") if isinstance(data, dict) else None
    if raw is None:
        return None
    return as_code(raw), as_text(data.get("errorMessage")).strip()


def _before(name: str, time: str, status: str) -> tuple[tuple[str, str], ...]:
    shown = " · ".join(p for p in (time, status) if p) or "none recorded"
    return (("Datasource", name), ("Last sync before", shown))


SPEC = VendorSpec(
    key="zoho-analytics-sync",
    aliases=("za-sync",),
    label="Zoho Analytics sync",
    ref_syntax="<workspace-id>/<datasource-id>",
    example_ref="2480011000000498001/2480011000000630011",
    parse_ref=parse_ref,
    schedule=((0, 30), (600, 120)),
    floor=30,
    family="zoho",
    rate_per_minute=45,
    build=lambda conn, ctx: ZohoAnalyticsSync(connection_of(conn, ZohoConnection), ctx),
    kind="sync",
)
