"""The Zoho simulator's datasource list and sync routes, alone and driven by the sync vendor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.simulators.zoho import (
    ZohoSimulator,
    sync_outcome_failure,
    sync_outcome_partial,
    sync_outcome_success,
)
from bot.vendors.base import (
    JobNotFoundError,
    RequestRejectedError,
    State,
    SyncOptions,
    VendorContext,
    build_http_client,
)
from bot.vendors.zoho_analytics_sync import ZohoAnalyticsSync
from tests.fakes import FakeClock, zoho_connection

WS, DS = "1001", "3003"
LIST = f"/restapi/v2/workspaces/{WS}/datasources"
SYNC = f"{LIST}/{DS}/sync"
T0 = "14 March, 2025 08:50:02 AM CET"
T1 = "14 March, 2025 09:05:41 AM CET"
TOKEN_FORM = {
    "grant_type": "refresh_token",
    "client_id": "sim-client",
    "client_secret": "sim-secret",
    "refresh_token": "sim-refresh",
}


@pytest.fixture
def http(zoho_sim: ZohoSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=zoho_sim.url, timeout=5) as c:
        yield c


def headers(http: httpx.Client, org: str | None = "55522777") -> dict[str, str]:
    token = http.post("/oauth/v2/token", data=TOKEN_FORM).json()["access_token"]
    found = {"Authorization": f"Zoho-oauthtoken {token}"}
    return found | ({"ZANALYTICS-ORGID": org} if org else {})


def only_source(http: httpx.Client, h: dict[str, str]) -> dict[str, Any]:
    reply = http.get(LIST, headers=h)
    assert reply.status_code == 200 and reply.json()["status"] == "success"
    [found] = reply.json()["data"]["dataSources"]
    return found


def test_list_has_the_documented_fields(zoho_sim: ZohoSimulator, http: httpx.Client) -> None:
    zoho_sim.add_datasource(WS, DS)
    found = only_source(http, headers(http))
    assert found["datasourceId"] == DS and found["datasourceName"] == "Billing Postgres"
    assert (found["lastDataSyncTime"], found["lastDataSyncStatus"]) == (T0, "Success")
    assert (found["syncUsed"], found["totalSyncAllowed"]) == ("2", "5")  # numeric strings
    assert [(t["viewName"], t["syncStatus"]) for t in found["tableDetails"]] == [
        ("invoices", "Success"),
        ("credits", "Success"),
    ]
    assert all(t["viewId"].isdigit() for t in found["tableDetails"])


def test_list_checks_token_and_org(zoho_sim: ZohoSimulator, http: httpx.Client) -> None:
    zoho_sim.add_datasource(WS, DS)
    no_token = http.get(LIST, headers={"ZANALYTICS-ORGID": "55522777"})
    assert (no_token.status_code, no_token.json()["data"]["errorCode"]) == (401, 8535)
    missing, wrong = (
        http.get(LIST, headers=headers(http, None)),
        http.get(LIST, headers=headers(http, "999")),
    )
    assert (missing.json()["data"]["errorCode"], wrong.json()["data"]["errorCode"]) == (8083, 7387)


def test_unknown_workspace_is_7103(http: httpx.Client) -> None:
    reply = http.get(LIST, headers=headers(http))
    assert (reply.status_code, reply.json()["data"]["errorCode"]) == (400, 7103)


def test_sync_is_204_and_recorded(zoho_sim: ZohoSimulator, http: httpx.Client) -> None:
    zoho_sim.add_datasource(WS, DS)
    h = headers(http)
    first = http.post(SYNC, headers=h)
    config = {"userName": "etl", "password": "pw", "scheduleId": "7"}
    second = http.post(SYNC, headers=h, params={"CONFIG": json.dumps(config)})
    assert (first.status_code, first.content, second.status_code) == (204, b"", 204)
    assert zoho_sim.sync_requests == [
        {"ws": WS, "ds": DS, "config": None},
        {"ws": WS, "ds": DS, "config": config},
    ]
    assert only_source(http, h)["syncUsed"] == "4"


@pytest.mark.parametrize(
    "path, params, code",
    [
        (f"/restapi/v2/workspaces/9/datasources/{DS}/sync", None, 7103),
        (f"{LIST}/4004/sync", None, 7104),
        (SYNC, {"CONFIG": "{not json"}, 8504),
    ],
    ids=["workspace", "datasource", "config"],
)
def test_sync_refusals(
    zoho_sim: ZohoSimulator,
    http: httpx.Client,
    path: str,
    params: dict[str, str] | None,
    code: int,
) -> None:
    zoho_sim.add_datasource(WS, DS)
    reply = http.post(path, headers=headers(http), params=params)
    assert (reply.status_code, reply.json()["data"]["errorCode"]) == (400, code)
    assert zoho_sim.sync_requests == []


def test_sync_needs_a_token(zoho_sim: ZohoSimulator, http: httpx.Client) -> None:
    zoho_sim.add_datasource(WS, DS)
    reply = http.post(SYNC, headers={"ZANALYTICS-ORGID": "55522777"})
    assert reply.json()["data"]["errorCode"] == 8535 and zoho_sim.sync_requests == []


def test_states_advance_per_read_after_a_sync(zoho_sim: ZohoSimulator, http: httpx.Client) -> None:
    zoho_sim.add_datasource(WS, DS, after_sync=sync_outcome_partial(T1, polls_waiting=1))
    h = headers(http)
    before = [only_source(http, h)["lastDataSyncTime"] for _ in range(2)]
    assert before == [T0, T0]  # nothing moves until a sync is requested
    http.post(SYNC, headers=h)
    reads = [only_source(http, h) for _ in range(3)]
    assert [r["lastDataSyncTime"] for r in reads] == [T0, T1, T1]
    assert [t["syncStatus"] for t in reads[2]["tableDetails"]] == ["Success", "Failed"]
    assert reads[2]["tableDetails"][0]["lastSyncTime"] == T1


def test_a_new_sync_restarts_the_states(zoho_sim: ZohoSimulator, http: httpx.Client) -> None:
    zoho_sim.add_datasource(WS, DS, after_sync=sync_outcome_success(T1, polls_waiting=1))
    h = headers(http)
    http.post(SYNC, headers=h)
    assert [only_source(http, h)["lastDataSyncTime"] for _ in range(2)] == [T0, T1]
    http.post(SYNC, headers=h)
    assert only_source(http, h)["lastDataSyncTime"] == T0


def test_builders() -> None:
    assert sync_outcome_success(T1, polls_waiting=2) == [
        {},
        {},
        {"last_time": T1, "status": "Success"},
    ]
    assert sync_outcome_partial(T1, polls_waiting=0)[-1]["tables"][1] == ("credits", "Failed")
    failed = sync_outcome_failure(T1)[-1]
    assert failed["status"] == "Failed" and {s for _, s in failed["tables"]} == {"Failed"}


def test_fail_next_answers_a_sync(zoho_sim: ZohoSimulator, http: httpx.Client) -> None:
    zoho_sim.add_datasource(WS, DS)
    body = {"status": "failure", "summary": "X", "data": {"errorCode": 18040, "errorMessage": "no"}}
    zoho_sim.fail_next("/sync", 400, json.dumps(body))
    assert http.post(SYNC, headers=headers(http)).json() == body
    assert zoho_sim.sync_requests == []


# --- the sync vendor against the simulator ---------------------------------------------------


@pytest.fixture
def vendor(zoho_sim: ZohoSimulator) -> Iterator[ZohoAnalyticsSync]:
    conn = zoho_connection(
        client_id="sim-client",
        client_secret="sim-secret",
        refresh_token="sim-refresh",
        accounts_url=zoho_sim.url,
        analytics_api_url=zoho_sim.url,
        overridden=frozenset({"accounts", "analytics"}),
    )
    ctx = VendorContext(http=build_http_client(timeout=5), clock=FakeClock())
    yield ZohoAnalyticsSync(conn, ctx)
    ctx.http.close()


@pytest.mark.parametrize(
    "outcome, state",
    [
        (sync_outcome_success, State.SUCCEEDED),
        (sync_outcome_partial, State.PARTIAL),
        (sync_outcome_failure, State.FAILED),
    ],
)
def test_vendor_end_to_end(
    zoho_sim: ZohoSimulator, vendor: ZohoAnalyticsSync, outcome: Any, state: State
) -> None:
    zoho_sim.add_datasource(WS, DS, after_sync=outcome(T1, polls_waiting=2))
    options = SyncOptions(user_name="etl", password="s3cret-pw")
    snap = vendor.trigger(f"{WS}/{DS}", options)
    assert snap.state is State.RUNNING
    assert zoho_sim.sync_requests == [
        {"ws": WS, "ds": DS, "config": {"userName": "etl", "password": "s3cret-pw"}}
    ]
    states = []
    for _ in range(3):
        snap = vendor.fetch(f"{WS}/{DS}", snap)
        states.append(snap.state)
    assert states == [State.RUNNING, State.RUNNING, state]
    [csv_file] = vendor.results(f"{WS}/{DS}", snap)
    assert csv_file.filename == f"sync-{DS}.csv"


def test_vendor_sees_a_refused_sync_and_a_missing_datasource(
    zoho_sim: ZohoSimulator, vendor: ZohoAnalyticsSync
) -> None:
    zoho_sim.add_datasource(WS, DS)
    body = {"status": "failure", "summary": "X", "data": {"errorCode": 18040, "errorMessage": "no"}}
    zoho_sim.fail_next("/sync", 400, json.dumps(body))
    with pytest.raises(RequestRejectedError) as err:
        vendor.trigger(f"{WS}/{DS}", None)
    assert "18040 datasource login failed: no" in err.value.message
    with pytest.raises(JobNotFoundError):
        vendor.trigger(f"{WS}/4004", None)
