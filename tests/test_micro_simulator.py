"""The local Micro simulator (auth, scripts, fail_next) and the Micro vendor against it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bot.simulators.micro import MicroSimulator, steps_failed, steps_partial
from bot.vendors.base import (
    AuthError,
    JobNotFoundError,
    RateLimitedError,
    State,
    TransientError,
    VendorContext,
    build_http_client,
)
from bot.vendors.micro import MicroConnection, MicroImports
from tests.fakes import FakeClock

JOB = "imp_8QmZ2vK4tR"
OTHER_TEAM = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
NOW = 1_768_478_400.0  # 2026-01-15 12:00 UTC


@pytest.fixture
def sim() -> Iterator[MicroSimulator]:
    with MicroSimulator() as s:
        yield s


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def job_url(sim: MicroSimulator, job: str = JOB, team: str | None = None) -> str:
    return f"{sim.url}/v2/prism/{team or sim.team_id}/imports/{job}"


def key(sim: MicroSimulator) -> dict[str, str]:
    return {"x-api-key": sim.api_key}


def test_defaults(sim: MicroSimulator) -> None:
    assert sim.api_key == "sim-micro-key"
    assert sim.team_id == "3b9e6f0a-2c4d-4e8b-9a71-5d0c2e8f1a64"
    assert sim.url.startswith("http://127.0.0.1:")


def test_polls_need_the_key_and_the_team(sim: MicroSimulator, http: httpx.Client) -> None:
    sim.add_job(JOB, steps_partial(JOB))
    missing = http.get(job_url(sim))
    assert missing.status_code == 401 and "message" in missing.json()
    wrong = http.get(job_url(sim), headers={"x-api-key": "nope"})
    assert wrong.status_code == 403 and "message" in wrong.json()
    other_team = http.get(job_url(sim, team=OTHER_TEAM), headers=key(sim))
    assert other_team.status_code == 403
    assert sim.polls(JOB) == 0  # refused polls do not advance the script
    assert http.get(job_url(sim), headers=key(sim)).status_code == 200
    assert sim.polls(JOB) == 1


def test_unknown_job_and_unknown_route(sim: MicroSimulator, http: httpx.Client) -> None:
    gone = http.get(job_url(sim, "imp_missing"), headers=key(sim))
    assert gone.status_code == 404 and gone.json() == {
        "message": "Import job imp_missing not found"
    }
    assert http.get(f"{sim.url}/v2/other", headers=key(sim)).status_code == 404


def test_script_progresses_and_repeats_its_last_step(
    sim: MicroSimulator, http: httpx.Client
) -> None:
    sim.add_job(JOB, steps_partial(JOB, polls_processing=2, now=NOW))
    bodies = [http.get(job_url(sim), headers=key(sim)).json() for _ in range(4)]
    assert [b["status"] for b in bodies] == ["processing", "processing", "complete", "complete"]
    first, done = bodies[0], bodies[2]
    assert (first["processed"], first["total"], first["succeeded"], first["failed"]) == (
        1850,
        5000,
        1843,
        7,
    )
    assert first["job_id"] == JOB and first["expires_at"] == "2026-01-22T12:00:00.000Z"
    assert (done["total"], done["succeeded"], done["failed"]) == (3, 2, 1)
    assert [r["id"] for r in done["results"]][2] is None
    assert done["results"][2]["error"]["code"] and "error" not in done["results"][0]
    assert sim.polls(JOB) == 4


def test_steps_failed(sim: MicroSimulator, http: httpx.Client) -> None:
    sim.add_job(JOB, steps_failed(JOB, "bad_csv", "row 1 is empty", polls_processing=0))
    body = http.get(job_url(sim), headers=key(sim)).json()
    assert body["status"] == "failed"
    assert body["error"] == {"code": "bad_csv", "message": "row 1 is empty"}


def test_add_job_needs_steps(sim: MicroSimulator) -> None:
    with pytest.raises(ValueError):
        sim.add_job(JOB, [])


def test_fail_next_is_used_once_in_order(sim: MicroSimulator, http: httpx.Client) -> None:
    sim.add_job(JOB, steps_partial(JOB))
    sim.fail_next(JOB, 429, '{"message": "slow down"}', {"retry-after-ms": "1500"})
    sim.fail_next(JOB, 502, "<html>bad gateway</html>")
    sim.fail_next("imp_other", 500, "other job")
    first = http.get(job_url(sim), headers=key(sim))
    assert first.status_code == 429 and first.json() == {"message": "slow down"}
    assert first.headers["retry-after-ms"] == "1500"
    assert first.headers["content-type"] == "application/json"
    second = http.get(job_url(sim), headers=key(sim))
    assert second.status_code == 502 and second.headers["content-type"].startswith("text/html")
    assert http.get(job_url(sim), headers=key(sim)).status_code == 200
    assert sim.polls(JOB) == 1  # scripted failures do not advance the script


def test_requests_are_recorded_with_lowercase_headers(
    sim: MicroSimulator, http: httpx.Client
) -> None:
    http.get(job_url(sim) + "?x=1", headers={"X-Api-Key": sim.api_key})
    method, path, headers = sim.requests[0]
    assert (method, path) == ("GET", f"/v2/prism/{sim.team_id}/imports/{JOB}?x=1")
    assert headers["x-api-key"] == sim.api_key


# --- the vendor against the simulator -------------------------------------------------------


def vendor_for(
    sim: MicroSimulator, api_key: str | None = None, team: str | None = None
) -> tuple[MicroImports, httpx.Client]:
    conn = MicroConnection(
        name="default",
        api_key=sim.api_key if api_key is None else api_key,
        team_id=sim.team_id if team is None else team,
        base_url=sim.url,
        overridden=True,
    )
    http = build_http_client(timeout=5)
    return MicroImports(conn, VendorContext(http=http, clock=FakeClock(NOW))), http


def test_vendor_follows_a_partial_import(sim: MicroSimulator) -> None:
    sim.add_job(JOB, steps_partial(JOB, now=NOW))
    vendor, http = vendor_for(sim)
    with http:
        running = vendor.fetch(JOB)
        assert running.state is State.RUNNING
        assert running.progress[0] == ("Processed", "1,850 of 5,000")
        done = vendor.fetch(JOB)
        assert done.state is State.PARTIAL
        (result,) = vendor.results(JOB, done)
    assert result.content is not None and result.content.count(b"\r\n") == 4
    assert result.comment == "3 rows: 2 succeeded, 1 failed"
    assert all(h["x-api-key"] == sim.api_key for _, _, h in sim.requests)
    assert len(sim.requests) == 2


def test_vendor_sees_a_failed_import(sim: MicroSimulator) -> None:
    sim.add_job(JOB, steps_failed(JOB, polls_processing=0))
    vendor, http = vendor_for(sim)
    with http:
        snap = vendor.fetch(JOB)
    assert snap.state is State.FAILED and snap.error_code == "invalid_payload"


def test_vendor_maps_the_simulators_refusals(sim: MicroSimulator) -> None:
    sim.add_job(JOB, steps_partial(JOB))
    for api_key, team in (("wrong", None), ("", None), (None, OTHER_TEAM)):
        vendor, http = vendor_for(sim, api_key, team)
        with http, pytest.raises(AuthError):
            vendor.fetch(JOB)
    vendor, http = vendor_for(sim)
    with http:
        with pytest.raises(JobNotFoundError):
            vendor.fetch("imp_unknown")
        assert "accepted" in vendor.check()
        sim.fail_next(JOB, 429, '{"message": "slow down"}', {"retry-after-ms": "2000"})
        with pytest.raises(RateLimitedError) as exc:
            vendor.fetch(JOB)
        assert exc.value.retry_after == 2.0
        sim.fail_next(JOB, 200, "<html>oops</html>")
        with pytest.raises(TransientError):
            vendor.fetch(JOB)
