"""Zoho Accounts and Analytics simulator on 127.0.0.1: tokens, import jobs, datasource syncs."""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.simulators import HttpReply, HttpRequest, ScriptedJobs, VendorServer

_JOB_PATH = re.compile(r"^/restapi/v2/bulk/workspaces/(?P<ws>[^/]+)/importjobs/(?P<job>[^/]+)/?$")
_SOURCES_PATH = re.compile(r"^/restapi/v2/workspaces/(?P<ws>[^/]+)/datasources/?$")
_SYNC_PATH = re.compile(r"^/restapi/v2/workspaces/(?P<ws>[^/]+)/datasources/(?P<ds>[^/]+)/sync/?$")
_FIRST_TABLE_VIEW = 2480011000000630020  # view ids of a datasource's tables count up from here
_VIEW_ID = "2480011000000498003"
_COLUMNS = {"Order Id": "Plain Text", "Amount": "Currency"}
_JOB_SUMMARY = "Fetch import job info"


@dataclass
class _Datasource:
    """One datasource's state: what it shows before a sync, and after each one."""

    name: str
    initial: dict[str, Any]  # last_time, status, tables
    after_sync: list[dict[str, Any]]
    sync_used: int
    sync_allowed: int
    synced: bool = False
    reads_since_sync: int = 0

    def current(self) -> dict[str, Any]:
        if not self.synced or not self.after_sync:
            return self.initial
        step = self.after_sync[min(self.reads_since_sync, len(self.after_sync) - 1)]
        self.reads_since_sync += 1
        return {**self.initial, **step}  # a step may leave keys out: they stay as they were


def _failure(status: int, summary: str, code: int, message: str) -> HttpReply:
    """Analytics' error envelope (docs/vendors.md#analytics-import-errors)."""
    body = {
        "status": "failure",
        "summary": summary,
        "data": {"errorCode": code, "errorMessage": message},
    }
    return HttpReply.of_json(body, status=status)


class ZohoSimulator(VendorServer):
    """Zoho Accounts (`/oauth/v2/token`) and Analytics (`/restapi/v2/…`) on one local origin.

    Point `ZOHO_ACCOUNTS_URL` and `ZOHO_ANALYTICS_API_URL` at `url`. Every minted access
    token stays valid until `revoke_tokens()`. An import job answers its script one step per
    poll and repeats the last step; polls refused for auth or org do not advance it.
    """

    def __init__(
        self,
        client_id: str = "sim-client",
        client_secret: str = "sim-secret",
        refresh_token: str = "sim-refresh",
        org_id: str = "55522777",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.org_id = org_id
        self.token_requests = 0  # tokens minted so far
        self._valid_tokens: set[str] = set()
        self._jobs: ScriptedJobs[tuple[str, str]] = ScriptedJobs("an import job")
        self._datasources: dict[tuple[str, str], _Datasource] = {}
        self.sync_requests: list[dict[str, Any]] = []  # accepted syncs: ws, ds, config (or None)
        super().__init__()

    # ----- configuration -----

    def add_import_job(self, ws: str, job: str, steps: list[dict[str, Any]]) -> None:
        """Script job `ws/job`: poll n returns steps[n] (the last one forever) as `data`."""
        with self._lock:
            self._jobs.add((ws, job), steps)

    def add_datasource(
        self,
        ws: str,
        ds: str,
        *,
        name: str = "Billing Postgres",
        last_time: str = "14 March, 2025 08:50:02 AM CET",
        status: str = "Success",
        tables: Sequence[tuple[str, str]] = (("invoices", "Success"), ("credits", "Success")),
        sync_used: int = 2,
        sync_allowed: int = 5,
        after_sync: list[dict[str, Any]] | None = None,
    ) -> None:
        """Register datasource `ws/ds` for the datasource list and the sync trigger.

        `after_sync` holds the states (dicts with any of `last_time`, `status`, `tables`) that
        reads of the list show after a sync: one per read, the last repeating. Every accepted
        sync restarts them and counts one more `syncUsed`. Without it nothing changes.
        """
        initial = {"last_time": last_time, "status": status, "tables": tuple(tables)}
        with self._lock:
            self._datasources[(ws, ds)] = _Datasource(
                name, initial, copy.deepcopy(after_sync or []), sync_used, sync_allowed
            )

    def polls(self, ws: str, job: str) -> int:
        """How many polls of `ws/job` got a job answer (refused ones not counted)."""
        with self._lock:
            return self._jobs.polls((ws, job))

    def token_valid(self, token: str) -> bool:
        """Whether this simulator minted `token` and hasn't revoked it (sibling simulators
        of the same Zoho account ask this)."""
        with self._lock:
            return token in self._valid_tokens

    def revoke_tokens(self) -> None:
        """Invalidate every access token minted so far; the next poll gets 8535."""
        with self._lock:
            self._valid_tokens.clear()

    # ----- HTTP -----

    def serve(self, request: HttpRequest) -> HttpReply:
        if request.path == "/oauth/v2/token":
            if request.method != "POST":
                return HttpReply.of_json({"error": "invalid_request"}, status=405)
            return self._token(request.form())
        if request.method == "GET" and request.path.rstrip("/") == "/restapi/v2/orgs":
            return self._authorized(request) or self._orgs()
        match = _JOB_PATH.match(request.path)
        if request.method == "GET" and match:
            refused = self._authorized(request) or self._org_checked(request)
            return refused or self._poll(match["ws"], match["job"])
        match = _SOURCES_PATH.match(request.path)
        if request.method == "GET" and match:
            refused = self._authorized(request) or self._org_checked(request)
            return refused or self._list_datasources(match["ws"])
        match = _SYNC_PATH.match(request.path)
        if request.method == "POST" and match:
            refused = self._authorized(request) or self._org_checked(request)
            return refused or self._sync(match["ws"], match["ds"], request.query.get("CONFIG"))
        return HttpReply.of_text(f"no simulator route for {request.method} {request.path}", 404)

    # ----- handlers (callers hold self._lock) -----

    def _token(self, form: dict[str, str]) -> HttpReply:
        # Zoho answers refresh failures on HTTP 200 with an `error` field
        # (docs/vendors.md#zoho-token-refresh).
        if form.get("grant_type") != "refresh_token":
            return HttpReply.of_json({"error": "unsupported_grant_type"})
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return HttpReply.of_json({"error": "invalid_client"})
        if form.get("refresh_token") != self.refresh_token:
            return HttpReply.of_json({"error": "invalid_code"})
        self.token_requests += 1
        token = f"sim-access-{self.token_requests}"
        self._valid_tokens.add(token)
        return HttpReply.of_json(
            {
                "access_token": token,
                "expires_in": 3600,
                "api_domain": self.root,
                "token_type": "Bearer",
            }
        )

    def _authorized(self, request: HttpRequest) -> HttpReply | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme == "Zoho-oauthtoken" and token in self._valid_tokens:
            return None
        return _failure(401, "INVALID_OAUTHTOKEN", 8535, "Invalid Oauthtoken")

    def _org_checked(self, request: HttpRequest) -> HttpReply | None:
        org = request.headers.get("zanalytics-orgid")
        if not org:
            return _failure(400, "INVALID_INPUT", 8083, "ZANALYTICS-ORGID header is missing")
        if org != self.org_id:
            return _failure(
                400, "NO_PERMISSION", 7387, "Workspace does not belong to this organization"
            )
        return None

    def _orgs(self) -> HttpReply:
        orgs = [{"orgId": self.org_id, "orgName": "Demo Org"}]
        return _success("Get organizations", {"orgs": orgs})

    def _poll(self, ws: str, job: str) -> HttpReply:
        step = self._jobs.poll((ws, job))
        if step is None:
            return _success(
                _JOB_SUMMARY, {"jobId": job, "jobCode": "1005", "jobStatus": "JOB NOT FOUND"}
            )
        return _success(_JOB_SUMMARY, {"jobId": job, **step})

    def _list_datasources(self, ws: str) -> HttpReply:
        found = [(ds, source) for (w, ds), source in self._datasources.items() if w == ws]
        if not found:
            return _failure(400, "WORKSPACE_NOT_FOUND", 7103, "Workspace not found")
        return _success(
            "Fetch Datasources",
            {"dataSources": [_datasource_json(ds, source) for ds, source in found]},
        )

    def _sync(self, ws: str, ds: str, config: str | None) -> HttpReply:
        source = self._datasources.get((ws, ds))
        if source is None and not any(w == ws for w, _ in self._datasources):
            return _failure(400, "WORKSPACE_NOT_FOUND", 7103, "Workspace not found")
        if source is None:
            return _failure(400, "VIEW_NOT_FOUND", 7104, "Datasource not found")
        try:
            parsed = json.loads(config) if config is not None else None
        except ValueError:
            return _failure(400, "INVALID_CONFIG", 8504, "CONFIG is not valid JSON")
        self.sync_requests.append({"ws": ws, "ds": ds, "config": parsed})
        source.synced, source.reads_since_sync = True, 0
        source.sync_used += 1
        return HttpReply(204, b"")


def _datasource_json(ds: str, source: _Datasource) -> dict[str, Any]:
    """One `data.dataSources[]` entry with docs/vendors.md#sync-fields field names (counts as
    strings)."""
    state = source.current()
    tables = [
        {
            "viewName": table,
            "viewId": str(_FIRST_TABLE_VIEW + 2 * n),
            "sourceName": f"public.{table}",
            "lastSyncTime": state["last_time"],
            "syncStatus": table_status,
        }
        for n, (table, table_status) in enumerate(state["tables"])
    ]
    return {
        "datasourceName": source.name,
        "datasourceId": ds,
        "source": "relmodel",
        "lastDataSyncStatus": state["status"],
        "lastDataSyncTime": state["last_time"],
        "schedule": "Every 3 hours",
        "nextScheduleTime": "14 March, 2025 11:50:00 AM CET",
        "syncUsed": str(source.sync_used),
        "totalSyncAllowed": str(source.sync_allowed),
        "tableDetails": tables,
    }


def _success(summary: str, data: dict[str, Any]) -> HttpReply:
    return HttpReply.of_json({"status": "success", "summary": summary, "data": data})


# ----- script builders: each returns the `data` objects for add_import_job() -----


def _queued() -> dict[str, Any]:
    return {"jobCode": "1001", "jobStatus": "JOB NOT INITIATED"}


def _running() -> dict[str, Any]:
    return {"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"}


def _expiry(now: float | None) -> str:
    """Zoho keeps job details one hour after completion; epoch milliseconds, as a string."""
    return str(int(((time.time() if now is None else now) + 3600) * 1000))


def _completed(total: int, succeeded: int, errors: str, now: float | None) -> dict[str, Any]:
    summary = {
        "importType": "APPEND",
        "totalColumnCount": len(_COLUMNS),
        "selectedColumnCount": len(_COLUMNS),
        "totalRowCount": total,
        "successRowCount": succeeded,
        "warnings": 0,
        "importOperation": "created",
    }
    return {
        "jobCode": "1004",
        "jobStatus": "JOB COMPLETED",
        "jobInfo": {
            "viewId": _VIEW_ID,
            "importSummary": summary,
            "columnDetails": dict(_COLUMNS),
            "importErrors": errors,
        },
        "expiryTime": _expiry(now),
    }


def steps_success(
    total_rows: int = 1200,
    polls_queued: int = 1,
    polls_running: int = 2,
    *,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """Queued, running, then completed with every row imported (normalizes to succeeded)."""
    return [
        *(_queued() for _ in range(polls_queued)),
        *(_running() for _ in range(polls_running)),
        _completed(total_rows, total_rows, "", now),
    ]


def steps_partial(
    total_rows: int = 1200,
    rejected: int = 13,
    error_text: str = "Row 17: Column 'Amount' expects a number; found 'twelve'",
    *,
    polls_queued: int = 1,
    polls_running: int = 2,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """Queued, running, then completed with `rejected` rows refused (normalizes to partial)."""
    return [
        *(_queued() for _ in range(polls_queued)),
        *(_running() for _ in range(polls_running)),
        _completed(total_rows, total_rows - rejected, error_text, now),
    ]


def steps_failure(
    error_text: str = "Column 'Amount' expects a number; row 17 has 'twelve'",
    polls_running: int = 2,
    *,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """Running, then 1003 ERROR OCCURRED with the reason in `jobInfo.importErrors`."""
    failed = {
        "jobCode": "1003",
        "jobStatus": "ERROR OCCURRED",
        "jobInfo": {"viewId": _VIEW_ID, "importErrors": error_text},
        "expiryTime": _expiry(now),
    }
    return [*(_running() for _ in range(polls_running)), failed]


# ----- sync builders: each returns the `after_sync` states for add_datasource() -----


def sync_outcome_success(
    later_time: str = "14 March, 2025 09:05:41 AM CET", polls_waiting: int = 1
) -> list[dict[str, Any]]:
    """`polls_waiting` reads with the old time, then the sync recorded with every table OK."""
    return [*({} for _ in range(polls_waiting)), {"last_time": later_time, "status": "Success"}]


def sync_outcome_partial(
    later_time: str = "14 March, 2025 09:05:41 AM CET",
    polls_waiting: int = 1,
    failed_table: str = "credits",
) -> list[dict[str, Any]]:
    """Like `sync_outcome_success`, but `failed_table` reports "Failed" (the example in
    docs/vendors.md#sync-outcome)."""
    tables = (("invoices", "Success"), (failed_table, "Failed"))
    done = {"last_time": later_time, "status": "Success", "tables": tables}
    return [*({} for _ in range(polls_waiting)), done]


def sync_outcome_failure(
    later_time: str = "14 March, 2025 09:05:41 AM CET", polls_waiting: int = 1
) -> list[dict[str, Any]]:
    """The sync recorded as failed, every table with it."""
    tables = (("invoices", "Failed"), ("credits", "Failed"))
    done = {"last_time": later_time, "status": "Failed", "tables": tables}
    return [*({} for _ in range(polls_waiting)), done]
