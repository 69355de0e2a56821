"""The local Zuora simulator (token, auth, scripts, files, fail_next) and the vendor against it."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.simulators.zuora import FILE_IDS, ZuoraSimulator, steps_failed, steps_two_batches
from bot.vendors.base import State, TransientError, VendorContext, build_http_client
from bot.vendors.zuora import ZuoraAqua, ZuoraConnection
from tests.fakes import FakeClock

JOB = "2c92c0f96abc17de016abd62bd0c4b2a"
F1, F2 = FILE_IDS
CSV = b"Invoice: Id,Invoice: Amount\r\nINV-1,10.00\r\nINV-2,20.50\r\nINV-3,1.00\r\n"


@pytest.fixture
def sim() -> Iterator[ZuoraSimulator]:
    with ZuoraSimulator() as s:
        yield s


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def token(sim: ZuoraSimulator, http: httpx.Client, **form: str) -> httpx.Response:
    data = {
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "grant_type": "client_credentials",
    }
    return http.post(f"{sim.url}/oauth/token", data=data | form)


def bearer(sim: ZuoraSimulator, http: httpx.Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sim, http).json()['access_token']}"}


def test_token_minting(sim: ZuoraSimulator, http: httpx.Client) -> None:
    first, second = token(sim, http), token(sim, http)
    assert first.status_code == 200
    assert first.json()["access_token"] == "sim-zuora-token-1"
    assert first.json()["expires_in"] == 3600 and first.json()["token_type"] == "bearer"
    assert second.json()["access_token"] == "sim-zuora-token-2"
    assert sim.token_requests == 2
    method, path, headers = sim.requests[0]
    assert (method, path) == ("POST", "/oauth/token")
    assert headers["content-type"] == "application/x-www-form-urlencoded"


def test_token_refusals(sim: ZuoraSimulator, http: httpx.Client) -> None:
    wrong = token(sim, http, client_secret="nope")
    assert wrong.status_code == 401 and wrong.json() == {"error": "invalid_client"}
    assert token(sim, http, client_id="other").status_code == 401
    assert token(sim, http, grant_type="password").status_code == 400
    assert http.get(f"{sim.url}/oauth/token").status_code == 405
    assert sim.token_requests == 0


def test_polls_need_a_valid_bearer(sim: ZuoraSimulator, http: httpx.Client) -> None:
    sim.add_job(JOB, steps_two_batches(JOB))
    url = f"{sim.url}/v1/batch-query/jobs/{JOB}"
    for headers in ({}, {"Authorization": "Bearer made-up"}, {"Authorization": "Basic eDp5"}):
        refused = http.get(url, headers=headers)
        assert refused.status_code == 401
        assert refused.json() == {"message": "Authentication error"}
    auth = bearer(sim, http)
    assert http.get(url, headers=auth).status_code == 200
    sim.revoke_tokens()
    assert http.get(url, headers=auth).status_code == 401
    assert sim.polls(JOB) == 1  # refused polls do not advance the script


def test_script_progression(sim: ZuoraSimulator, http: httpx.Client) -> None:
    sim.add_job(JOB, steps_two_batches(JOB, records=(3, 0)))
    auth = bearer(sim, http)
    url = f"{sim.url}/v1/batch-query/jobs/{JOB}"
    seen = [http.get(url, headers=auth).json() for _ in range(4)]
    assert [s["status"] for s in seen] == ["submitted", "executing", "completed", "completed"]
    assert all(s["id"] == JOB for s in seen)
    done = seen[-1]["batches"]
    assert [(b["name"], b["recordCount"], b["fileId"]) for b in done] == [
        ("Invoices", 3, F1),
        ("Payments", 0, F2),
    ]
    assert sim.polls(JOB) == 4


def test_add_job_fills_in_the_id(sim: ZuoraSimulator, http: httpx.Client) -> None:
    sim.add_job(JOB, [{"status": "executing"}])
    reply = http.get(f"{sim.url}/v1/batch-query/jobs/{JOB}", headers=bearer(sim, http))
    assert reply.json() == {"id": JOB, "status": "executing"}
    with pytest.raises(ValueError):
        sim.add_job(JOB, [])


def test_unknown_job_is_404(sim: ZuoraSimulator, http: httpx.Client) -> None:
    reply = http.get(f"{sim.url}/v1/batch-query/jobs/{'0' * 32}", headers=bearer(sim, http))
    assert reply.status_code == 404 and "message" in reply.json()


def test_steps_failed(sim: ZuoraSimulator, http: httpx.Client) -> None:
    steps = steps_failed(JOB)
    assert [s["status"] for s in steps] == ["executing", "error"]
    assert steps[-1]["errorCode"] == "90029" and steps[-1]["message"]
    custom = steps_failed(JOB, code="90007", message="aborted")
    assert (custom[-1]["errorCode"], custom[-1]["message"]) == ("90007", "aborted")


def test_files_plural_and_singular(sim: ZuoraSimulator, http: httpx.Client) -> None:
    sim.add_file(F1, CSV)
    sim.add_file(F2, b"zipped", content_type="application/zip", singular_only=True)
    auth = bearer(sim, http)
    got = http.get(f"{sim.url}/v1/files/{F1}", headers=auth)
    assert got.status_code == 200 and got.content == CSV
    assert got.headers["content-type"].startswith("text/csv")
    assert http.get(f"{sim.url}/v1/file/{F1}", headers=auth).status_code == 404
    assert http.get(f"{sim.url}/v1/files/{F2}", headers=auth).status_code == 404
    singular = http.get(f"{sim.url}/v1/file/{F2}", headers=auth)
    assert singular.status_code == 200 and singular.content == b"zipped"
    assert singular.headers["content-type"].startswith("application/zip")
    assert http.get(f"{sim.url}/v1/files/{'0' * 32}", headers=auth).status_code == 404
    assert http.get(f"{sim.url}/v1/files/{F1}").status_code == 401


def test_fail_next(sim: ZuoraSimulator, http: httpx.Client) -> None:
    sim.add_job(JOB, steps_two_batches(JOB))
    auth = bearer(sim, http)
    url = f"{sim.url}/v1/batch-query/jobs/{JOB}"
    sim.fail_next("/batch-query/", 429, '{"message": "slow down"}', {"ratelimit-reset": "9"})
    sim.fail_next("/batch-query/", 502, "<html>bad gateway</html>")
    sim.fail_next("/nowhere/", 500, "never used")
    first, second, third = (http.get(url, headers=auth) for _ in range(3))
    assert first.status_code == 429 and first.headers["ratelimit-reset"] == "9"
    assert first.headers["content-type"] == "application/json"
    assert second.status_code == 502 and second.headers["content-type"].startswith("text/html")
    assert third.status_code == 200 and third.json()["status"] == "submitted"
    token_fail = "/oauth/token"
    sim.fail_next(token_fail, 503, "maintenance")
    assert token(sim, http).status_code == 503
    assert token(sim, http).status_code == 200
    paths = [p for _, p, _ in sim.requests]
    assert paths.count(f"/v1/batch-query/jobs/{JOB}") == 3


# --- the vendor module against the simulator, over real HTTP ---------------------------------


def vendor_for(sim: ZuoraSimulator, http: httpx.Client, spool: str, **kw: Any) -> ZuoraAqua:
    conn = ZuoraConnection(
        name="default",
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        base_url=sim.url,
        overridden=True,
    )
    ctx = VendorContext(http=http, clock=FakeClock(), spool_dir=spool, **kw)
    return ZuoraAqua(conn, ctx)


def test_vendor_watches_a_job_and_downloads_its_files(sim: ZuoraSimulator, tmp_path: Any) -> None:
    sim.add_job(JOB, steps_two_batches(JOB, records=(3, 0)))
    sim.add_file(F1, gzip.compress(CSV), content_type="application/x-gzip")
    sim.add_file(F2, b"Id,Amount\r\n", singular_only=True)
    with build_http_client() as http:
        vendor = vendor_for(sim, http, str(tmp_path))
        assert vendor.min_interval is None
        states = [vendor.fetch(JOB).state for _ in range(3)]
        assert states == [State.QUEUED, State.RUNNING, State.SUCCEEDED]
        snap = vendor.fetch(JOB)
        first, second = vendor.results(JOB, snap)
    assert snap.raw_status == "completed (2/2 batches OK)"
    assert first.filename == "Invoices.csv" and first.comment == "3 records"
    with open(first.path or "", "rb") as fh:
        assert fh.read() == CSV
    assert second.note == "Payments: no records"
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(first.path or "")]
    assert sim.token_requests == 1
    assert [p for _, p, _ in sim.requests if "/file" in p] == [
        f"/v1/files/{F1}",
        f"/v1/files/{F2}",
        f"/v1/file/{F2}",
    ]


def test_vendor_recovers_from_a_revoked_token(sim: ZuoraSimulator, tmp_path: Any) -> None:
    sim.add_job(JOB, steps_failed(JOB))
    with build_http_client() as http:
        vendor = vendor_for(sim, http, str(tmp_path))
        assert vendor.fetch(JOB).state is State.RUNNING
        sim.revoke_tokens()
        snap = vendor.fetch(JOB)
        sim.fail_next("/batch-query/", 503, '{"reasons": [{"code": 1, "message": "busy"}]}')
        with pytest.raises(TransientError, match="HTTP 503: 1: busy"):
            vendor.fetch(JOB)
    assert snap.state is State.FAILED and snap.error_code == "90029"
    assert "maximum processing time" in (snap.error_message or "")
    assert sim.token_requests == 2
    for _, _, headers in sim.requests:
        assert sim.client_secret not in str(headers)
