"""The Zoho CRM simulator, alone and driven by the real ZohoCrm client over local HTTP."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.simulators.zoho import ZohoSimulator
from bot.simulators.zoho_crm import (
    ZohoCrmSimulator,
    sample_result_csv,
    steps_success,
    steps_with_skips,
)
from bot.vendors.base import (
    JobNotFoundError,
    RateLimitedError,
    State,
    TransientError,
    VendorContext,
    build_http_client,
)
from bot.vendors.zoho_crm import ZohoCrm
from tests.fakes import FakeClock, zoho_connection

JOB = "6120045000001938011"


@pytest.fixture
def crm(zoho_sim: ZohoSimulator) -> Iterator[ZohoCrmSimulator]:
    with ZohoCrmSimulator(zoho=zoho_sim) as sim:
        yield sim


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with build_http_client(timeout=5) as http:
        yield http


def vendor(
    zoho_sim: ZohoSimulator, crm: ZohoCrmSimulator, http: httpx.Client, spool: Path
) -> ZohoCrm:
    conn = zoho_connection(
        client_id=zoho_sim.client_id,
        client_secret=zoho_sim.client_secret,
        refresh_token=zoho_sim.refresh_token,
        accounts_url=zoho_sim.url,
        crm_api_url=crm.url,
        overridden=frozenset({"accounts", "crm"}),
    )
    return ZohoCrm(conn, VendorContext(http=http, clock=FakeClock(), spool_dir=str(spool)))


# --- builders -------------------------------------------------------------------------------


def test_sample_result_csv() -> None:
    rows = list(csv.DictReader(io.StringIO(sample_result_csv())))
    assert list(rows[0]) == ["First_Name", "Last_Name", "Email", "ID", "STATUS", "ERRORS"]
    statuses = [r["STATUS"] for r in rows]
    assert (statuses.count("added"), statuses.count("updated"), statuses.count("skipped")) == (
        310,
        52,
        7,
    )
    errors = [r["ERRORS"] for r in rows if r["ERRORS"]]
    assert errors.count("MANDATORY_NOT_FOUND-Last_Name") == 5
    assert errors.count("DUPLICATE_DATA-Email") == 2
    assert all(r["ID"] for r in rows if r["STATUS"] != "skipped")
    small = list(csv.DictReader(io.StringIO(sample_result_csv(added=1, updated=0, skipped=1))))
    assert [r["STATUS"] for r in small] == ["added", "skipped"]


def test_steps_with_skips() -> None:
    steps = steps_with_skips(JOB, "https://download-accl.zoho.com/x.zip")
    assert [s["status"] for s in steps] == ["ADDED", "IN PROGRESS", "COMPLETED"]
    assert "result" not in steps[0] and "result" not in steps[1]
    assert steps[2]["result"] == {"download_url": "https://download-accl.zoho.com/x.zip"}
    file = steps[2]["resource"][0]["file"]
    assert (
        file["added_count"],
        file["updated_count"],
        file["skipped_count"],
        file["total_count"],
    ) == (310, 52, 7, 369)
    clean = steps_success(JOB, "u")[2]["resource"][0]["file"]
    assert (clean["added_count"], clean["skipped_count"], clean["total_count"]) == (369, 0, 369)


# --- the simulator on its own ---------------------------------------------------------------


def test_zip_download_records_the_auth_header(client: httpx.Client) -> None:
    with ZohoCrmSimulator() as sim:
        url = sim.add_zip("r1", "ID,STATUS,ERRORS\n1,added,\n", module="Deals", file_name="deals")
        assert url == f"{sim.url}/download/r1.zip"
        anonymous = client.get(url)
        with_token = client.get(url, headers={"Authorization": "Zoho-oauthtoken sim-1"})
        expired = client.get(f"{sim.url}/download/nope.zip")
    assert anonymous.status_code == with_token.status_code == 200
    with zipfile.ZipFile(io.BytesIO(anonymous.content)) as zf:
        assert zf.namelist() == ["Deals-deals.csv"]
        assert zf.read("Deals-deals.csv") == b"ID,STATUS,ERRORS\n1,added,\n"
    assert (expired.status_code, expired.headers["x-info"]) == (403, "Link not valid")
    assert sim.downloads == [("r1", False), ("r1", True), ("nope", False)]


def test_without_a_zoho_simulator_any_sim_token_is_accepted(client: httpx.Client) -> None:
    with ZohoCrmSimulator() as sim:
        sim.add_job(JOB, [{"status": "ADDED"}, {"status": "COMPLETED"}])
        good = client.get(
            f"{sim.url}/crm/bulk/v8/write/{JOB}", headers={"Authorization": "Zoho-oauthtoken sim-x"}
        )
        bad = client.get(
            f"{sim.url}/crm/bulk/v8/write/{JOB}", headers={"Authorization": "Zoho-oauthtoken other"}
        )
        none = client.get(f"{sim.url}/crm/v8/org")
        polls = sim.polls(JOB)
    assert good.json() == {"id": JOB, "status": "ADDED"}
    assert bad.status_code == none.status_code == 401
    assert bad.json()["code"] == "INVALID_TOKEN" and bad.json()["status"] == "error"
    assert polls == 1  # refused polls don't advance the script


def test_unknown_job_and_unknown_route(client: httpx.Client) -> None:
    auth = {"Authorization": "Zoho-oauthtoken sim-1"}
    with ZohoCrmSimulator() as sim:
        missing = client.get(f"{sim.url}/crm/bulk/v8/write/123", headers=auth)
        other = client.get(f"{sim.url}/crm/v8/Leads", headers=auth)
        posted = client.post(f"{sim.url}/crm/bulk/v8/write", headers=auth)
    assert missing.status_code == 400 and missing.json()["code"] == "RESOURCE_NOT_FOUND"
    assert other.status_code == 404 and posted.status_code == 405


def test_add_job_needs_steps_and_zip_names_are_checked() -> None:
    with ZohoCrmSimulator() as sim:
        with pytest.raises(ValueError):
            sim.add_job(JOB, [])
        with pytest.raises(ValueError):
            sim.add_zip("../x", "a")
    sim.close()  # idempotent


# --- the real client against the simulators --------------------------------------------------


def test_a_job_with_skipped_rows_end_to_end(
    zoho_sim: ZohoSimulator, crm: ZohoCrmSimulator, client: httpx.Client, tmp_path: Path
) -> None:
    url = crm.add_zip(JOB, sample_result_csv())
    crm.add_job(JOB, steps_with_skips(JOB, url))
    crm_vendor = vendor(zoho_sim, crm, client, tmp_path)
    states = [crm_vendor.fetch(JOB).state for _ in range(3)]
    assert states == [State.QUEUED, State.RUNNING, State.PARTIAL]
    snap = crm_vendor.fetch(JOB)
    assert snap.error_message == "7 of 369 rows skipped in Contacts; see the result file"
    upload, note = crm_vendor.results(JOB, snap)
    assert upload.filename == "Contacts-bulkwrite.csv"
    assert upload.comment == "369 rows: 310 added, 52 updated, 7 skipped"
    assert upload.path is not None and Path(upload.path).read_text() == sample_result_csv()
    assert note.note == (
        "Result: 310 added · 52 updated · 7 skipped. Top errors: MANDATORY_NOT_FOUND ×5 (a "
        "required field was empty: Last_Name), DUPLICATE_DATA ×2 (a unique field's value is "
        "already taken: Email)."
    )
    assert crm.downloads == [(JOB, True)]
    assert zoho_sim.token_requests == 1
    assert [p.name for p in tmp_path.iterdir()] == [Path(upload.path).name]


def test_revoked_token_is_refreshed_once(
    zoho_sim: ZohoSimulator, crm: ZohoCrmSimulator, client: httpx.Client, tmp_path: Path
) -> None:
    crm.add_job(JOB, steps_success(JOB, crm.download_url("gone")))
    crm_vendor = vendor(zoho_sim, crm, client, tmp_path)
    assert crm_vendor.fetch(JOB).state is State.QUEUED
    zoho_sim.revoke_tokens()
    assert crm_vendor.fetch(JOB).state is State.RUNNING
    assert zoho_sim.token_requests == 2


def test_expired_link_errors_and_check(
    zoho_sim: ZohoSimulator, crm: ZohoCrmSimulator, client: httpx.Client, tmp_path: Path
) -> None:
    crm.add_job(JOB, steps_success(JOB, crm.download_url("gone"))[2:])
    crm_vendor = vendor(zoho_sim, crm, client, tmp_path)
    snap = crm_vendor.fetch(JOB)
    assert snap.state is State.SUCCEEDED
    (note,) = crm_vendor.results(JOB, snap)
    assert (note.note or "").startswith("The result file is no longer available (Link not valid).")

    with pytest.raises(JobNotFoundError):
        crm_vendor.fetch("42")
    crm.fail_next("/crm/bulk/", 503, "<html>maintenance</html>")
    with pytest.raises(TransientError):
        crm_vendor.fetch(JOB)
    crm.fail_next(
        "/crm/bulk/",
        429,
        '{"status": "error", "code": "TOO_MANY_REQUESTS", "message": "slow"}',
        {"Retry-After": "7"},
    )
    with pytest.raises(RateLimitedError) as err:
        crm_vendor.fetch(JOB)
    assert err.value.retry_after == 7
    crm.fail_next("/download/", 500)
    with pytest.raises(TransientError):
        crm_vendor.results(JOB, snap)
    assert crm_vendor.check() == "Zoho CRM: org Demo CRM Org (70831234)"
    assert list(tmp_path.iterdir()) == []
