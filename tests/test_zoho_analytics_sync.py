"""Zoho Analytics datasource syncs: trigger, baseline comparison, outcome mapping, errors
(docs/vendors.md#zoho-analytics-datasource-sync)."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from bot.vendors import zoho_analytics_sync as zs
from bot.vendors.base import (
    AuthError,
    JobNotFoundError,
    JobSnapshot,
    RateLimitedError,
    RefError,
    RequestRejectedError,
    State,
    SyncOptions,
    TransientError,
    VendorContext,
    VendorError,
    build_http_client,
)
from bot.vendors.zoho_analytics_sync import SPEC, ZohoAnalyticsSync, parse_ref
from tests.fakes import (
    ZOHO_CLIENT_ID,
    ZOHO_CLIENT_SECRET,
    ZOHO_REFRESH_TOKEN,
    FakeClock,
    Reply,
    ScriptedTransport,
    zoho_accounts,
    zoho_connection,
)

ORG = "55522777"
WS = "2480011000000498001"
DS = "2480011000000630011"
REF = f"{WS}/{DS}"
API = "https://analytics.zoho.test"
LIST_URL = f"{API}/restapi/v2/workspaces/{WS}/datasources"
SYNC_URL = f"{API}/restapi/v2/workspaces/{WS}/datasources/{DS}/sync"
T0 = "14 March, 2025 08:50:02 AM CET"
T1 = "14 March, 2025 09:05:41 AM CET"
NOW = 1_767_225_600.0  # 2026-01-01 00:00 UTC
PASSWORD = "Pw-Zx9!q7#unlikely-4711"
TWO_OK = (("invoices", "Success"), ("credits", "Success"))


class Zoho:
    """Mock Accounts + Analytics: token POSTs mint `test-access-token-<n>`; the rest play
    `replies` in order and are recorded in `calls`."""

    def __init__(self, *replies: Reply) -> None:
        transport = ScriptedTransport(*replies, token_requests=zoho_accounts)
        self.replies, self.calls = transport.replies, transport.requests
        self.token_posts = transport.token_posts
        self.clock = FakeClock(NOW)
        self.ctx = VendorContext(http=build_http_client(transport), clock=self.clock)

    def vendor(self) -> ZohoAnalyticsSync:
        return ZohoAnalyticsSync(zoho_connection(analytics_org_id=ORG), self.ctx)

    def shape(self) -> list[tuple[str, str]]:
        return [(r.method, str(r.url.copy_with(query=None))) for r in self.calls]


def source(
    time: str = T0,
    status: str = "Success",
    tables: tuple[tuple[str, str], ...] = TWO_OK,
    ds: object = DS,
    **extra: Any,
) -> dict[str, Any]:
    details = [
        {"viewName": name, "viewId": f"248001100000063{n:04d}", "syncStatus": table_status}
        for n, (name, table_status) in enumerate(tables)
    ]
    return {
        "datasourceName": "Billing Postgres",
        "datasourceId": ds,
        "source": "relmodel",
        "lastDataSyncStatus": status,
        "lastDataSyncTime": time,
        "syncUsed": "2",
        "totalSyncAllowed": "5",
        "tableDetails": details,
        **extra,
    }


def listing(*sources: dict[str, Any]) -> httpx.Response:
    data = {"dataSources": list(sources)}
    return httpx.Response(
        200, json={"status": "success", "summary": "Fetch Datasources", "data": data}
    )


def failure(code: object, message: str = "Zoho says no", status: int = 400) -> httpx.Response:
    body = {
        "status": "failure",
        "summary": "SYMBOL",
        "data": {"errorCode": code, "errorMessage": message},
    }
    return httpx.Response(status, json=body)


def accepted() -> httpx.Response:
    return httpx.Response(204)


def started(*replies: Reply) -> tuple[Zoho, JobSnapshot]:
    """A triggered sync (baseline T0), plus `replies` queued for the polls that follow."""
    zoho = Zoho(listing(source()), accepted(), *replies)
    return zoho, zoho.vendor().trigger(REF, None)


def poll(snapshot_source: dict[str, Any]) -> JobSnapshot:
    zoho, first = started(listing(snapshot_source))
    return zoho.vendor().fetch(REF, first)


# --- ref and spec -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [REF, f"  {REF}\n", "1/2", "1" * 20 + "/" + "2" * 20])
def test_parse_ref_accepts(text: str) -> None:
    assert parse_ref(text) == text.strip()


@pytest.mark.parametrize(
    "text", ["", DS, f"{WS}/{DS}/x", f"{WS}/../{DS}", "1" * 21 + "/2", "١٢/3", f"{WS}/ab", "1 /2"]
)
def test_parse_ref_rejects(text: str) -> None:
    with pytest.raises(RefError) as err:
        parse_ref(text)
    assert "<workspace-id>/<datasource-id>" in str(err.value)


def test_bad_ref_never_reaches_the_network() -> None:
    zoho = Zoho()
    with pytest.raises(RefError):
        zoho.vendor().trigger(f"{WS}/../../orgs", None)
    with pytest.raises(RefError):
        zoho.vendor().fetch("x/y")
    assert zoho.calls == [] and zoho.token_posts == []


def test_spec() -> None:
    assert (SPEC.key, SPEC.aliases, SPEC.kind, SPEC.family) == (
        "zoho-analytics-sync",
        ("za-sync",),
        "sync",
        "zoho",
    )
    assert (SPEC.schedule, SPEC.floor, SPEC.rate_per_minute) == (((0, 30), (600, 120)), 30, 45)
    assert SPEC.parse_ref(SPEC.example_ref) == SPEC.example_ref
    assert isinstance(SPEC.build(zoho_connection(), Zoho().ctx), ZohoAnalyticsSync)


# --- trigger ----------------------------------------------------------------------------------


def test_trigger_reads_the_baseline_then_posts_the_sync() -> None:
    zoho, snap = started()
    assert zoho.shape() == [("GET", LIST_URL), ("POST", SYNC_URL)]
    for request in zoho.calls:
        assert request.headers["authorization"] == "Zoho-oauthtoken test-access-token-1"
        assert request.headers["zanalytics-orgid"] == ORG
    assert "CONFIG" not in zoho.calls[1].url.params  # no options: no CONFIG at all
    assert snap.state is State.RUNNING and snap.raw_status == "sync requested"
    assert dict(snap.facts) == {
        "baseline_time": T0,
        "baseline_status": "Success",
        "datasource": "Billing Postgres",
        "triggered_at": "2026-01-01T00:00:00+00:00",
        "view_id": "2480011000000630000",
    }
    assert snap.progress == (
        ("Datasource", "Billing Postgres"),
        ("Last sync before", f"{T0} · Success"),
    )
    assert snap.notice is None


@pytest.mark.parametrize(
    "options, expected",
    [
        (SyncOptions(), None),
        (SyncOptions(schedule_id="1767024000004595194"), {"scheduleId": "1767024000004595194"}),
        (
            SyncOptions(user_name="etl", password=PASSWORD),
            {"userName": "etl", "password": PASSWORD},
        ),
        (
            SyncOptions(user_name="etl", password=PASSWORD, schedule_id="7"),
            {"userName": "etl", "password": PASSWORD, "scheduleId": "7"},
        ),
        (SyncOptions(user_name="", password="", schedule_id=""), None),
    ],
    ids=["none", "schedule", "credentials", "all", "empty"],
)
def test_config_holds_exactly_the_given_options(
    options: SyncOptions, expected: dict[str, str] | None
) -> None:
    zoho = Zoho(listing(source()), accepted())
    zoho.vendor().trigger(REF, options)
    params = zoho.calls[1].url.params
    assert (json.loads(params["CONFIG"]) if "CONFIG" in params else None) == expected
    assert list(params) == (["CONFIG"] if expected else [])
    assert zoho.calls[1].content == b""  # CONFIG is a query parameter, not a body


def test_trigger_accepts_a_200_success_envelope() -> None:
    ok = httpx.Response(200, json={"status": "success", "summary": "Sync data", "data": {}})
    snap = Zoho(listing(source()), ok).vendor().trigger(REF, None)
    assert snap.state is State.RUNNING


@pytest.mark.parametrize(
    "used, allowed, warned",
    [("5", "5", True), (" 6 ", "5", True), (5, 5, True), ("2", "5", False), ("x", "5", False)],
)
def test_quota_notice(used: object, allowed: object, warned: bool) -> None:
    zoho = Zoho(listing(source(syncUsed=used, totalSyncAllowed=allowed)), accepted())
    snap = zoho.vendor().trigger(REF, None)
    assert len(zoho.calls) == 2  # warned or not, the sync is still requested
    if warned:
        assert snap.notice is not None
        assert "manual syncs used; this one may be refused" in snap.notice
    else:
        assert snap.notice is None


def test_quota_notice_text() -> None:
    snap = Zoho(listing(source(syncUsed="5")), accepted()).vendor().trigger(REF, None)
    assert snap.notice == "Zoho reports 5 of 5 manual syncs used; this one may be refused."


def test_datasource_missing_from_the_list_is_not_found() -> None:
    zoho = Zoho(listing(source(ds="2480011000000630099")))
    with pytest.raises(JobNotFoundError) as err:
        zoho.vendor().trigger(REF, None)
    assert DS in err.value.message
    assert "ZOHO_ANALYTICS_ORG_ID" in err.value.hint and "ZOHO_DC" in err.value.hint
    assert zoho.shape() == [("GET", LIST_URL)]  # nothing triggered


def test_datasource_id_may_be_a_json_number() -> None:
    snap = Zoho(listing(source(ds=int(DS))), accepted()).vendor().trigger(REF, None)
    assert dict(snap.facts)["baseline_time"] == T0


@pytest.mark.parametrize(
    "code, meaning",
    [
        (18011, "source unreachable"),
        (18040, "login failed"),
        ("18041", "database missing"),
        (18042, "S3 output location"),
        (18043, "region"),
        (7925, ""),
        (8060, ""),
        (8078, ""),
        (8079, ""),
    ],
)
def test_sync_refusals_quote_code_meaning_and_text(code: object, meaning: str) -> None:
    zoho = Zoho(listing(source()), failure(code, "Unable to connect to datasource"))
    with pytest.raises(RequestRejectedError) as err:
        zoho.vendor().trigger(REF, None)
    assert err.value.code == str(code)
    assert str(code) in err.value.message and meaning in err.value.message
    assert "Unable to connect to datasource" in err.value.message
    assert len(zoho.calls) == 2  # refused once, never retried


@pytest.mark.parametrize("http_status", [400, 401, 200])
def test_8535_on_the_sync_refreshes_once_and_succeeds(http_status: int) -> None:
    zoho = Zoho(listing(source()), failure(8535, "Invalid Oauthtoken", http_status), accepted())
    snap = zoho.vendor().trigger(REF, None)
    assert snap.state is State.RUNNING
    assert len(zoho.token_posts) == 2
    assert [r.headers["authorization"] for r in zoho.calls] == [
        "Zoho-oauthtoken test-access-token-1",
        "Zoho-oauthtoken test-access-token-1",
        "Zoho-oauthtoken test-access-token-2",
    ]


def test_8535_on_the_baseline_read_refreshes_once() -> None:
    zoho = Zoho(failure(8535, "Invalid Oauthtoken", 401), listing(source()), accepted())
    assert zoho.vendor().trigger(REF, None).state is State.RUNNING
    assert len(zoho.token_posts) == 2 and len(zoho.calls) == 3


def test_second_8535_is_an_auth_error() -> None:
    zoho = Zoho(listing(source()), failure(8535, "x"), failure("8535", "x"))
    with pytest.raises(AuthError) as err:
        zoho.vendor().trigger(REF, None)
    assert err.value.code == "8535" and "ZOHO_DC" in err.value.message


@pytest.mark.parametrize("code", [7103, 7104, "8138"])
def test_not_found_codes_on_the_sync(code: object) -> None:
    zoho = Zoho(listing(source()), failure(code, "Workspace not found"))
    with pytest.raises(JobNotFoundError) as err:
        zoho.vendor().trigger(REF, None)
    assert err.value.code == str(code)
    assert "workspace or datasource" in err.value.message
    assert "Workspace not found" in err.value.message
    assert "ZOHO_ANALYTICS_ORG_ID" in err.value.hint


def test_7103_on_the_baseline_read_is_not_found() -> None:
    zoho = Zoho(failure(7103, "Workspace not found"))
    with pytest.raises(JobNotFoundError) as err:
        zoho.vendor().trigger(REF, None)
    assert err.value.code == "7103" and len(zoho.calls) == 1


@pytest.mark.parametrize(
    "reply", [failure(7104, "View not found"), httpx.Response(404, text="<html>nope</html>")]
)
def test_missing_workspace_list_without_a_view_id_is_reported(reply: httpx.Response) -> None:
    zoho = Zoho(reply)
    with pytest.raises(JobNotFoundError) as err:
        zoho.vendor().trigger(REF, None)
    assert "needs a view id" in err.value.message
    assert zoho.shape() == [("GET", LIST_URL)]  # no guessed view path, no sync


def test_view_path_fallback_when_a_view_id_is_known() -> None:
    zoho, first = started(failure(7104, "View not found"), listing(source(time=T1)))
    snap = zoho.vendor().fetch(REF, first)
    assert snap.state is State.SUCCEEDED
    view_url = f"{API}/restapi/v2/workspaces/{WS}/views/2480011000000630000/datasources"
    assert zoho.shape()[2:] == [("GET", LIST_URL), ("GET", view_url)]


@pytest.mark.parametrize("http_status", [200, 400, 429])
def test_6045_is_rate_limited(http_status: int) -> None:
    zoho = Zoho(listing(source()), failure(6045, "Too many requests", http_status))
    with pytest.raises(RateLimitedError) as err:
        zoho.vendor().trigger(REF, None)
    assert err.value.code == "6045"


def test_429_retry_after_on_the_sync() -> None:
    zoho = Zoho(listing(source()), httpx.Response(429, headers={"Retry-After": "30"}))
    with pytest.raises(RateLimitedError) as err:
        zoho.vendor().trigger(REF, None)
    assert err.value.retry_after == 30


@pytest.mark.parametrize(
    "reply",
    [
        # transport failures and unreadable replies in general: test_vendor_http.py
        httpx.Response(200, text='{"status": "success", "data": {"dataSou'),
        httpx.Response(500, text="oops"),
        httpx.Response(502),
        httpx.Response(503, json={"status": "failure"}),
        failure(7005, "Internal error"),
        httpx.Response(200, json={"status": "success", "data": {}}),
        httpx.ConnectError("refused"),
    ],
    ids=["truncated", "500", "502", "503", "7005", "no-list", "connect"],
)
def test_transient_failures_of_the_list(reply: Reply) -> None:
    zoho = Zoho(reply)
    with pytest.raises(TransientError):
        zoho.vendor().trigger(REF, None)
    assert len(zoho.calls) == 1  # no sync without a baseline


@pytest.mark.parametrize(
    "reply",
    [httpx.Response(503, text="down"), httpx.Response(200, text="<html>"), httpx.ReadTimeout("x")],
    ids=["503", "html", "timeout"],
)
def test_transient_failures_of_the_sync(reply: Reply) -> None:
    with pytest.raises(TransientError):
        Zoho(listing(source()), reply).vendor().trigger(REF, None)


@pytest.mark.parametrize(
    "replies",
    [
        [accepted()],
        [failure(18040, f"Login failed for user etl with password {PASSWORD}")],
        [httpx.Response(403, json={"status": "failure", "summary": f"bad {PASSWORD}"})],
        [failure(8535, "x"), failure(8535, PASSWORD)],
        [httpx.Response(500, text=PASSWORD)],
        [httpx.ConnectError(f"could not connect {PASSWORD}")],
        [httpx.ReadTimeout(f"timed out {PASSWORD}")],
        [failure(7103, f"no such workspace {PASSWORD}")],
    ],
    ids=["ok", "18040", "403", "auth", "500", "connect", "timeout", "7103"],
)
def test_password_never_in_messages_or_logs(
    replies: list[Reply], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    zoho = Zoho(listing(source()), *replies)
    vendor = zoho.vendor()
    options = SyncOptions(user_name="etl", password=PASSWORD, schedule_id="7")
    shown = repr(vendor) + repr(options)
    try:
        shown += vendor.trigger(REF, options).to_json()
    except VendorError as exc:
        shown += f"{exc.message} {exc} {exc!r} {exc.__cause__!r} {exc.__context__!r}"
    shown += caplog.text + " ".join(r.getMessage() for r in caplog.records)
    assert "CONFIG" in str(zoho.calls[1].url)  # it was sent...
    for secret in (PASSWORD, quote(PASSWORD), quote_plus(PASSWORD), "CONFIG"):
        assert secret not in shown  # ...and never shown
    for secret in (ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN, ZOHO_CLIENT_ID, "test-access-token-"):
        assert secret not in shown


def test_httpx_request_log_drops_the_config(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    Zoho(listing(source()), accepted()).vendor().trigger(REF, SyncOptions(password=PASSWORD))
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any(f"POST {SYNC_URL} " in line for line in lines)  # still logged, minus CONFIG
    assert not any("CONFIG" in line or PASSWORD in line for line in lines)


# --- fetch ------------------------------------------------------------------------------------


def test_time_unchanged_is_running() -> None:
    zoho, first = started(listing(source(status="Failed")))  # old time: status is stale
    snap = zoho.vendor().fetch(REF, first)
    assert snap.state is State.RUNNING
    assert snap.raw_status == "waiting for Zoho to record the sync"
    assert snap.progress == first.progress  # no parent edit per poll
    assert snap.facts == first.facts


def test_success_with_every_table_ok() -> None:
    snap = poll(source(time=T1, tables=(("a", "Success"), ("b", " SUCCESS "), ("c", "success"))))
    assert snap.state is State.SUCCEEDED and snap.raw_status == "Success"
    assert snap.progress == (
        ("Datasource", "Billing Postgres"),
        ("Last sync", f"{T1} · Success"),
        ("Tables", "3 of 3 OK"),
    )
    assert snap.error_message is None


def test_a_sync_gives_no_counts_for_a_time_left_estimate() -> None:
    # "Tables: 3 of 3 OK" is an outcome read once the sync ended, not progress on the way
    # (docs/vendors.md#sync-fields): a sync never shows an estimate.
    zoho, first = started(listing(source()))
    waiting = zoho.vendor().fetch(REF, first)
    ended = poll(source(time=T1, tables=(("a", "Success"), ("b", "Failed"))))
    assert [(s.done, s.total) for s in (first, waiting, ended)] == [(None, None)] * 3


def test_success_without_table_details() -> None:
    assert poll(source(time=T1, tables=())).state is State.SUCCEEDED


def test_one_table_failed_is_partial() -> None:
    tables = (("invoices", "Success"), ("credits", "Failed"), ("refunds", "Success"))
    snap = poll(source(time=T1, tables=tables))
    assert snap.state is State.PARTIAL
    assert snap.error_message == "1 of 3 tables not synced: credits (Failed)"
    assert ("Tables", "2 of 3 OK") in snap.progress


@pytest.mark.parametrize("status", ["Failed", "FAILURE", "Sync Error", "error_occurred"])
def test_failed_like_status_is_failed(status: str) -> None:
    snap = poll(source(time=T1, status=status, tables=(("invoices", "Failed"),)))
    assert snap.state is State.FAILED
    assert snap.error_message == f"{status}; failed tables: invoices (Failed)"


def test_every_table_failed_under_success_is_failed() -> None:
    snap = poll(source(time=T1, tables=(("a", "Failed"), ("b", "Error"))))
    assert snap.state is State.FAILED and "a (Failed), b (Error)" in (snap.error_message or "")


def test_not_applicable_is_unknown_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=zs.__name__)
    moved = source(time=T1, status="Not Applicable", tables=())
    zoho, first = started(listing(moved), listing(moved))
    vendor = zoho.vendor()
    snap = vendor.fetch(REF, first)
    again = vendor.fetch(REF, snap)
    assert snap.state is State.UNKNOWN and not snap.state.terminal
    assert snap.raw_status == "Not Applicable" and again.state is State.UNKNOWN
    assert dict(again.facts)["baseline_time"] == T0
    assert caplog.text.count("unknown sync status 'Not Applicable'") == 1


def test_baseline_survives_polls_and_storage() -> None:
    moved = listing(source(time=T1, tables=(("a", "Success"), ("b", "Failed"))))
    zoho, snap = started(listing(source()), listing(source()), moved)
    vendor = zoho.vendor()
    for _ in range(2):
        zoho.clock.advance(30)
        snap = vendor.fetch(REF, JobSnapshot.from_json(snap.to_json()))  # as the poller does
        assert snap.state is State.RUNNING
        assert dict(snap.facts)["baseline_time"] == T0
        assert dict(snap.facts)["triggered_at"] == "2026-01-01T00:00:00+00:00"
    final = vendor.fetch(REF, JobSnapshot.from_json(snap.to_json()))
    assert final.state is State.PARTIAL
    assert dict(final.facts)["baseline_time"] == T0


def test_fetch_without_a_baseline_starts_one() -> None:
    zoho = Zoho(listing(source(time=T1)), listing(source(time=T1)))
    vendor = zoho.vendor()
    snap = vendor.fetch(REF, None)
    assert snap.state is State.RUNNING
    assert dict(snap.facts)["baseline_time"] == T1
    assert vendor.fetch(REF, JobSnapshot(State.RUNNING, "x")).state is State.RUNNING


def test_datasource_gone_after_trigger_is_not_found() -> None:
    zoho, first = started(listing())
    with pytest.raises(JobNotFoundError):
        zoho.vendor().fetch(REF, first)


def test_schedule_id_reads_its_sync_interval() -> None:
    intervals = [
        {"syncIntervalId": "111", "lastDataSyncTime": T0, "lastDataSyncStatus": "Success"},
        {
            "syncIntervalId": 222,
            "lastDataSyncTime": "13 March, 2025 06:00:00 PM CET",
            "lastDataSyncStatus": "Failed",
            "syncUsed": "3",
            "totalSyncAllowed": "3",
        },
    ]
    top = source(syncIntervals=intervals)
    moved = source(syncIntervals=[intervals[0], {**intervals[1], "lastDataSyncTime": T1}])
    moved["lastDataSyncStatus"] = "Failed"  # the top level must not decide for interval 222
    moved["syncIntervals"][1]["lastDataSyncStatus"] = "Success"
    zoho = Zoho(listing(top), accepted(), listing(top), listing(moved))
    vendor = zoho.vendor()
    first = vendor.trigger(REF, SyncOptions(schedule_id="222"))
    assert json.loads(zoho.calls[1].url.params["CONFIG"]) == {"scheduleId": "222"}
    facts = dict(first.facts)
    assert facts["baseline_time"] == "13 March, 2025 06:00:00 PM CET"
    assert (facts["baseline_status"], facts["schedule_id"]) == ("Failed", "222")
    assert first.notice == "Zoho reports 3 of 3 manual syncs used; this one may be refused."
    assert vendor.fetch(REF, first).state is State.RUNNING  # T0 on the top level is not 222's
    assert vendor.fetch(REF, first).state is State.SUCCEEDED


def test_fetch_errors_map_like_trigger() -> None:
    zoho, first = started(failure(6045, "slow down", 200), failure(8535, "x"), listing(source()))
    vendor = zoho.vendor()
    with pytest.raises(RateLimitedError):
        vendor.fetch(REF, first)
    assert vendor.fetch(REF, first).state is State.RUNNING  # 8535 refreshed once
    assert all(r.method == "GET" for r in zoho.calls[2:])  # polls never re-trigger


# --- results and check ------------------------------------------------------------------------


def test_results_csv() -> None:
    details = [
        {"viewName": "invoices", "viewId": "11", "syncStatus": "Success", "lastSyncTime": T1},
        {"viewName": '=HYPERLINK("x")', "viewId": 12, "syncStatus": "Failed", "lastSyncTime": T1},
    ]
    moved = source(time=T1, tableDetails=details)
    zoho, first = started(listing(moved))
    vendor = zoho.vendor()
    snap = vendor.fetch(REF, first)
    assert snap.state is State.PARTIAL
    [result] = vendor.results(REF, JobSnapshot.from_json(snap.to_json()))
    assert result.filename == f"sync-{DS}.csv"
    assert result.comment == "1 of 2 tables synced OK"
    assert (result.content or b"").decode().splitlines() == [
        "table,view_id,status,last_sync_time",
        f'invoices,11,Success,"{T1}"',
        f'"\'=HYPERLINK(""x"")",12,Failed,"{T1}"',
    ]


def test_no_results_before_the_end_or_without_tables() -> None:
    zoho, first = started(listing(source(time=T1, tables=())))
    vendor = zoho.vendor()
    assert vendor.results(REF, first) == []
    done = vendor.fetch(REF, first)
    assert done.state is State.SUCCEEDED and vendor.results(REF, done) == []


def test_check_uses_the_orgs_call() -> None:
    orgs = {"status": "success", "data": {"orgs": [{"orgId": ORG}]}}
    zoho = Zoho(httpx.Response(200, json=orgs))
    assert "org 55522777 found" in zoho.vendor().check()
    assert zoho.shape() == [("GET", f"{API}/restapi/v2/orgs")]


def test_a_table_list_cut_at_the_vendor_boundary_is_a_note_not_a_crash() -> None:
    """Thousands of tables, or a huge cell: each cell is clipped by the vendor, and a list the
    boundary still had to cut (no longer JSON) gives a note instead of the CSV."""
    from bot.redaction import Redactor
    from bot.vendors.boundary import FACT_CHARS, VALUE_CHARS, VendorBoundary

    details = [
        {"viewName": f"t{n}", "viewId": n, "syncStatus": "S" * 10_000, "lastSyncTime": T1}
        for n in range(400)
    ]
    zoho, first = started(listing(source(time=T1, tableDetails=details)))
    vendor = zoho.vendor()
    snap = VendorBoundary(Redactor()).snapshot(vendor.fetch(REF, first))
    tables = dict(snap.facts)["tables"]
    assert len(tables) == FACT_CHARS and snap.state is State.FAILED
    assert f'"{"S" * (VALUE_CHARS - 1)}…"' in tables
    [note] = vendor.results(REF, snap)
    assert note.note == (
        "The table list was too long to keep; see the datasource in Zoho Analytics."
    )
