"""Micro Prism imports: ref parsing, state mapping, errors, the monthly budget, result CSV
(docs/vendors.md#micro-prism-imports)."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import replace
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.budget import MonthlyBudget
from bot.lifecycle import PollPolicy, decide, start_interval
from bot.vendors import micro
from bot.vendors.base import (
    AuthError,
    JobNotFoundError,
    JobSnapshot,
    RateLimitedError,
    RefError,
    RequestRejectedError,
    State,
    TransientError,
    VendorContext,
    VendorError,
    build_http_client,
)
from bot.vendors.micro import SPEC, MicroConnection, MicroImports, parse_ref
from storage import ACTIVE, Store, Watch
from tests.fakes import FakeClock, Reply, ScriptedTransport

KEY = "mk_test_9f8e7d6c5b4a3f2e1d0c"
BUDGET_KEY = "micro:" + hashlib.sha256(KEY.encode()).hexdigest()[:16]
TEAM = "3b9e6f0a-2c4d-4e8b-9a71-5d0c2e8f1a64"
OTHER_TEAM = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
JOB = "imp_8QmZ2vK4tR"
API = "https://micro.test"
JOB_URL = f"{API}/v2/prism/{TEAM}/imports/{JOB}"


def epoch(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


NOW = epoch(2026, 1, 15, 12)
MONTH_END = epoch(2026, 2, 1)


class FakeBudget:
    """An in-memory `RequestBudget`: one tally per key, a fixed month end."""

    def __init__(self, used: int = 0) -> None:
        self.tally: dict[str, int] = {BUDGET_KEY: used} if used else {}

    def spend(self, key: str, count: int = 1) -> int:
        self.tally[key] = self.tally.get(key, 0) + count
        return self.tally[key]

    def used(self, key: str) -> int:
        return self.tally.get(key, 0)

    def month_ends_at(self) -> float:
        return MONTH_END


class Micro:
    """Mock Micro: every request is recorded and answered from `replies`, in order."""

    def __init__(self, *replies: Reply, used: int = 0, budget: bool = True) -> None:
        transport = ScriptedTransport(*replies)
        self.replies, self.requests = transport.replies, transport.requests
        self.clock = FakeClock(NOW)
        self.budget = FakeBudget(used) if budget else None
        self.ctx = VendorContext(
            http=build_http_client(transport), clock=self.clock, budget=self.budget
        )

    def vendor(self, team: str = TEAM, **kw: Any) -> MicroImports:
        return MicroImports(conn(team), self.ctx, **kw)

    @property
    def spent(self) -> int:
        return self.budget.used(BUDGET_KEY) if self.budget else 0


def conn(team: str = TEAM) -> MicroConnection:
    return MicroConnection(name="default", api_key=KEY, team_id=team, base_url=API, overridden=True)


def ok(**body: Any) -> httpx.Response:
    return httpx.Response(200, json={"job_id": JOB, **body})


def err(status: int, message: str = "Micro says no", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"message": message}, headers=headers)


PROCESSING = {
    "status": "processing",
    "total": 5000,
    "processed": 1850,
    "succeeded": 1843,
    "failed": 7,
    "expires_at": "2025-03-21T09:20:11.402Z",
}
ROWS = [
    {"id": "3b9e6f0a-2c4d-4e8b-9a71-5d0c2e8f1a64", "created": True, "existing": False},
    {"id": "a17c4d92-8e3b-4f65-b0d2-9c6e1f3a7b58", "created": False, "existing": True},
    {
        "id": None,
        "created": False,
        "existing": False,
        "error": {"code": "invalid_email", "message": "email is not a valid address"},
    },
]
COMPLETE = {
    "status": "complete",
    "total": 3,
    "processed": 3,
    "succeeded": 2,
    "failed": 1,
    "created_at": "2025-03-14T09:20:11.402Z",
    "expires_at": "2025-03-21T09:20:11.402Z",
    "results": ROWS,
}
FAILED = {
    "status": "failed",
    "total": 5000,
    "processed": 0,
    "error": {"code": "invalid_payload", "message": "The payload could not be parsed"},
}


def fetch(*replies: Reply) -> JobSnapshot:
    return Micro(*replies).vendor().fetch(JOB)


# --- parse_ref ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (JOB, JOB),
        (f"  {JOB}\n", JOB),
        (f"{TEAM}/{JOB}", f"{TEAM}/{JOB}"),
        (f"{TEAM.upper()}/{JOB}", f"{TEAM}/{JOB}"),
        ("a", "a"),
        ("-_-", "-_-"),
        ("x" * 128, "x" * 128),
    ],
)
def test_parse_ref_accepts(text: str, expected: str) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "got nothing"),
        ("   ", "got nothing"),
        ("x" * 129, "at most 128 characters"),
        (f"{TEAM}/{'x' * 129}", "at most 128 characters"),
        ("../x", "the team must be a UUID"),
        (f"{TEAM}/../{JOB}", "at most one `/`"),
        (f"{TEAM}/..", "only letters, digits"),
        ("not-a-uuid/imp_1", "the team must be a UUID"),
        (f"{TEAM[:-1]}g/{JOB}", "the team must be a UUID"),
        (f"{TEAM[:-1]}/{JOB}", "the team must be a UUID"),
        (f"{TEAM}/", "only letters, digits"),
        (f"/{JOB}", "the team must be a UUID"),
        ("imp 1", "only letters, digits"),
        ("impé", "only letters, digits"),
        (f"{JOB}?x=1", "only letters, digits"),
        (f"{JOB}\n", None),  # stripped: accepted, see above
        (f"https://micro.test/{JOB}", "at most one `/`"),
    ],
)
def test_parse_ref_rejects(text: str, why: str | None) -> None:
    if why is None:
        assert parse_ref(text) == JOB
        return
    with pytest.raises(RefError) as exc:
        parse_ref(text)
    assert why in str(exc.value)


def test_parse_ref_message_is_specific_and_safe() -> None:
    with pytest.raises(RefError) as exc:
        parse_ref("bad team/`x`")
    assert str(exc.value) == (
        "`bad team/'x'` is not a Micro Prism import job: expected [<team-id>/]<job-id>, "
        "the team must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) (e.g. imp_8QmZ2vK4tR)"
    )
    with pytest.raises(RefError) as exc:
        parse_ref("y" * 200)
    assert f"`{'y' * 60}…`" in str(exc.value)


def test_bad_ref_never_reaches_the_network_or_the_budget() -> None:
    fake = Micro()
    with pytest.raises(RefError):
        fake.vendor().fetch("../../etc/passwd")
    assert fake.requests == [] and fake.spent == 0


def test_spec() -> None:
    assert SPEC.key == "micro" and SPEC.aliases == ("prism", "micro-prism")
    assert SPEC.label == "Micro Prism import" and SPEC.family == "micro"
    assert SPEC.ref_syntax == "[<team-id>/]<job-id>" and SPEC.example_ref == JOB
    assert SPEC.schedule == ((0, 60), (600, 300), (3600, 600))
    assert (SPEC.floor, SPEC.rate_per_minute) == (60, 600)
    assert SPEC.parse_ref(SPEC.example_ref) == SPEC.example_ref
    built = SPEC.build(conn(), Micro().ctx)
    assert isinstance(built, MicroImports) and built.monthly_limit == micro.MONTHLY_LIMIT == 1000


def test_every_5s_is_clamped_to_the_60s_floor() -> None:
    assert start_interval(SPEC, 5, PollPolicy()) == 60
    assert start_interval(SPEC, None, PollPolicy()) == 60


# --- request shape and team -----------------------------------------------------------------


def test_poll_sends_the_key_to_the_configured_host_only() -> None:
    fake = Micro(ok(**PROCESSING))
    fake.vendor().fetch(JOB)
    (request,) = fake.requests
    assert request.method == "GET" and str(request.url) == JOB_URL
    assert request.url.host == "micro.test"
    assert request.headers["x-api-key"] == KEY
    assert "authorization" not in request.headers


def test_team_from_the_ref_wins_over_the_config() -> None:
    fake = Micro(ok(**PROCESSING))
    fake.vendor(team=TEAM).fetch(f"{OTHER_TEAM.upper()}/{JOB}")
    assert fake.requests[0].url.path == f"/v2/prism/{OTHER_TEAM}/imports/{JOB}"


def test_no_team_anywhere_is_rejected_before_any_request() -> None:
    fake = Micro()
    with pytest.raises(RequestRejectedError) as exc:
        fake.vendor(team="").fetch(JOB)
    assert exc.value.message == "no team: set MICRO_TEAM_ID or write <team-id>/<job-id>"
    assert fake.requests == [] and fake.spent == 0


def test_team_given_in_the_ref_needs_no_config() -> None:
    fake = Micro(ok(**PROCESSING))
    assert fake.vendor(team="").fetch(f"{TEAM}/{JOB}").state is State.RUNNING


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_never_followed(status: int) -> None:
    fake = Micro(httpx.Response(status, headers={"Location": f"https://evil.test/x?k={KEY}"}))
    with pytest.raises(RequestRejectedError) as exc:
        fake.vendor().fetch(JOB)
    assert len(fake.requests) == 1 and fake.requests[0].url.host == "micro.test"
    assert "evil.test" in exc.value.message and "micro.test" in exc.value.message
    assert "MICRO_BASE_URL" in exc.value.message and exc.value.code == str(status)


# --- states ---------------------------------------------------------------------------------


def test_processing_example_from_the_docs() -> None:
    snap = fetch(ok(**PROCESSING))
    assert snap == JobSnapshot(
        state=State.RUNNING,
        raw_status="processing",
        progress=(("Processed", "1,850 of 5,000"), ("Succeeded", "1,843"), ("Failed", "7")),
        facts=(("expires_at", "2025-03-21T09:20:11.402Z"), ("job_id", JOB)),
        expires_at=epoch(2025, 3, 21, 9, 20, 11) + 0.402,
        done=1850,
        total=5000,
    )
    assert JobSnapshot.from_json(snap.to_json()) == snap


def test_complete_example_from_the_docs_is_partial() -> None:
    snap = fetch(ok(**COMPLETE, updated_at="2025-03-14T09:25:00Z"))
    assert snap == JobSnapshot(
        state=State.PARTIAL,
        raw_status="complete",
        progress=(("Processed", "3 of 3"), ("Succeeded", "2"), ("Failed", "1")),
        facts=(
            ("created_at", "2025-03-14T09:20:11.402Z"),
            ("updated_at", "2025-03-14T09:25:00Z"),
            ("expires_at", "2025-03-21T09:20:11.402Z"),
            ("job_id", JOB),
        ),
        error_message="1 row failed (first: invalid_email: email is not a valid address)",
        expires_at=epoch(2025, 3, 21, 9, 20, 11) + 0.402,
        done=3,
        total=3,
    )


# --- counts behind the time-left estimate (docs/vendors.md#micro-import-fields) ---------------


def test_processed_of_total_feeds_the_estimate() -> None:
    snap = fetch(ok(**PROCESSING))
    assert (snap.done, snap.total) == (1850, 5000)


def test_processed_missing_is_succeeded_plus_failed() -> None:
    body = {k: v for k, v in PROCESSING.items() if k != "processed"}
    snap = fetch(ok(**body))
    assert (snap.done, snap.total) == (1850, 5000)


@pytest.mark.parametrize("dropped", [("total",), ("processed", "failed")])
def test_without_a_total_or_a_done_count_there_are_no_counts(dropped: tuple[str, ...]) -> None:
    body = {k: v for k, v in PROCESSING.items() if k not in dropped}
    snap = fetch(ok(**body))
    assert (snap.done, snap.total) == (None, None)


def row(error: bool = False) -> dict[str, Any]:
    if error:
        return {"id": None, "created": False, "existing": False, "error": {"code": "x"}}
    return {"id": TEAM, "created": True, "existing": False}


@pytest.mark.parametrize(
    "counts, state",
    [
        ({"total": 3, "succeeded": 3, "failed": 0}, State.SUCCEEDED),
        ({"total": 3, "succeeded": 2, "failed": 1}, State.PARTIAL),
        ({"total": 3, "succeeded": 0, "failed": 3}, State.FAILED),
        ({"total": 3, "succeeded": 0, "failed": 0}, State.FAILED),
        ({"total": 0, "succeeded": 0, "failed": 0}, State.SUCCEEDED),
        ({"total": "3", "succeeded": "2", "failed": " 1 "}, State.PARTIAL),
        ({"total": "3", "succeeded": "3", "failed": "0"}, State.SUCCEEDED),
        ({"total": 3.0, "succeeded": 0.0, "failed": 3}, State.FAILED),
        ({"total": 3, "results": [row(), row(), row(True)]}, State.PARTIAL),
        ({"total": 2, "results": [row(True), row(True)]}, State.FAILED),
        ({"total": 2, "results": [row(), row()]}, State.SUCCEEDED),
        ({"total": 0, "results": []}, State.SUCCEEDED),
        ({"total": 2, "succeeded": 1, "results": [row(), row(True)]}, State.PARTIAL),
        ({"total": 2}, State.SUCCEEDED),
    ],
    ids=[
        "clean",
        "failed-rows",
        "none-succeeded",
        "none-processed",
        "zero-total",
        "string-counts",
        "string-counts-clean",
        "float-counts",
        "rows-partial",
        "rows-all-failed",
        "rows-clean",
        "rows-empty",
        "failed-count-from-rows",
        "no-counts-no-rows",
    ],
)
def test_complete_is_decided_by_counts(counts: dict[str, Any], state: State) -> None:
    assert fetch(ok(status="complete", **counts)).state is state


def test_counts_from_results_are_shown() -> None:
    snap = fetch(ok(status="complete", total=3, results=[row(), row(), row(True)]))
    assert snap.progress == (("Processed", "3 of 3"), ("Succeeded", "2"), ("Failed", "1"))
    assert snap.error_message == "1 row failed (first: x:)"


def test_failed_job_carries_the_error() -> None:
    snap = fetch(ok(**FAILED))
    assert snap.state is State.FAILED and snap.raw_status == "failed"
    assert snap.error_code == "invalid_payload"
    assert snap.error_message == "The payload could not be parsed"
    assert snap.progress == (("Processed", "0 of 5,000"),)


def test_failed_job_without_error_details() -> None:
    snap = fetch(ok(status="failed"))
    assert snap.state is State.FAILED
    assert snap.error_code is None and snap.error_message == "Micro says it failed"


def test_job_id_null_is_left_out_of_the_facts() -> None:
    snap = fetch(httpx.Response(200, json={**COMPLETE, "job_id": None}))
    assert snap.state is State.PARTIAL
    assert "job_id" not in dict(snap.facts)


@pytest.mark.parametrize(
    "raw, state",
    [
        ("PROCESSING", State.RUNNING),
        (" Processing ", State.RUNNING),
        ("Complete", State.SUCCEEDED),
        ("COMP_LETE", State.SUCCEEDED),
        ("Fail-ed", State.FAILED),
    ],
)
def test_status_in_odd_case_or_spelling(raw: str, state: State) -> None:
    snap = fetch(ok(status=raw, total=1, succeeded=1, failed=0))
    assert snap.state is state and snap.raw_status == raw.strip()


def test_unknown_status_polls_on_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=micro.__name__)
    fake = Micro(ok(status="queued"), ok(status="Queued"), ok(status="paused"))
    vendor = fake.vendor()
    first = vendor.fetch(JOB)
    assert first.state is State.UNKNOWN and not first.state.terminal
    assert first.raw_status == "queued"
    vendor.fetch(JOB)
    vendor.fetch(JOB)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "micro: unknown import status 'queued'; polling on",
        "micro: unknown import status 'paused'; polling on",
    ]


@pytest.mark.parametrize("body", [{"job_id": JOB}, {"message": "hm"}, {"status": None}])
def test_reply_without_status_is_transient(body: dict[str, Any]) -> None:
    with pytest.raises(TransientError, match="without a status"):
        fetch(httpx.Response(200, json=body))


def test_unreadable_expiry_is_ignored() -> None:
    assert fetch(ok(status="processing", expires_at="next week")).expires_at is None
    naive = fetch(ok(status="processing", expires_at="2026-01-20T00:00:00")).expires_at
    assert naive == epoch(2026, 1, 20)


# --- not found ------------------------------------------------------------------------------


def make_watch(**kw: Any) -> Watch:
    base = Watch(
        id="wmic",
        vendor="micro",
        ref=JOB,
        connection="default",
        team_id=None,
        channel_id="C1",
        requester_id="U1",
        status=ACTIVE,
        state=None,
        raw_status=None,
        snapshot=None,
        interval_s=60.0,
        created_at=NOW,
        updated_at=NOW,
        next_poll_at=NOW,
        lease_until=None,
        lease_owner=None,
        attempts=0,
        polls=0,
        last_error=None,
        deadline=NOW + 86400,
        finished_at=None,
        stopped_by=None,
        pause_reason=None,
    )
    return replace(base, **kw)


def test_404_is_job_not_found_with_the_retention_hint() -> None:
    with pytest.raises(JobNotFoundError) as exc:
        fetch(err(404, "Import job not found"))
    assert exc.value.code == "404"
    assert exc.value.message == f"Micro does not know import job {JOB} in team {TEAM} (404)"
    assert exc.value.hint == (
        "Micro keeps import jobs for 7 days and then answers 404; "
        "check the job id and the team (MICRO_TEAM_ID, or write <team-id>/<job-id>)"
    )


def test_404_on_the_first_poll_fails_and_mid_watch_expires() -> None:
    with pytest.raises(JobNotFoundError) as exc:
        fetch(err(404))
    first = decide(make_watch(), exc.value, SPEC, NOW, lambda: 0.0)
    later = decide(make_watch(polls=3, state="running"), exc.value, SPEC, NOW, lambda: 0.0)
    assert first.changes["state"] == "failed" and later.changes["state"] == "expired"
    for result in (first, later):
        assert "7 days" in JobSnapshot.from_json(result.changes["snapshot"]).error_message


def test_404_after_expires_at_says_when_the_job_expired() -> None:
    expires = dt.datetime.fromtimestamp(NOW + 86400, dt.UTC).isoformat()
    fake = Micro(ok(status="processing", expires_at=expires), err(404), err(404))
    vendor = fake.vendor()
    vendor.fetch(JOB)
    with pytest.raises(JobNotFoundError) as before:
        vendor.fetch(JOB)
    assert "expired" not in before.value.message
    fake.clock.advance(2 * 86400)
    with pytest.raises(JobNotFoundError) as after:
        vendor.fetch(JOB)
    assert after.value.message.endswith("(404) (it expired on 16 Jan 2026)")


def test_404_is_not_found_even_when_micro_says_not_to_retry() -> None:
    with pytest.raises(JobNotFoundError):
        fetch(err(404, **{"x-should-retry": "false"}))


# --- auth and rejections --------------------------------------------------------------------


def test_401_is_an_auth_error_without_a_retry() -> None:
    fake = Micro(err(401, "Missing API key"), ok(**PROCESSING))
    with pytest.raises(AuthError) as exc:
        fake.vendor().fetch(JOB)
    assert exc.value.message == "Micro says the API key is missing (401): check MICRO_API_KEY"
    assert len(fake.requests) == 1 and fake.spent == 1


def test_403_is_an_auth_error_naming_the_team_without_a_retry() -> None:
    fake = Micro(err(403, "Invalid API key"), ok(**PROCESSING))
    with pytest.raises(AuthError) as exc:
        fake.vendor().fetch(f"{OTHER_TEAM}/{JOB}")
    assert exc.value.message == (
        "Micro refused the API key (403): it is invalid, revoked, or has no access to "
        f"team {OTHER_TEAM}"
    )
    assert len(fake.requests) == 1


def test_auth_error_ends_the_watch_saying_the_job_may_still_run() -> None:
    with pytest.raises(AuthError) as exc:
        fetch(err(401))
    result = decide(make_watch(), exc.value, SPEC, NOW, lambda: 0.0)
    assert result.changes["state"] == "failed"
    assert "may still be running" in result.transition.error_message


@pytest.mark.parametrize("status", [400, 422, 405, 410])
def test_4xx_rejections_quote_micro(status: int) -> None:
    with pytest.raises(RequestRejectedError) as exc:
        fetch(err(status, "total:  must be\n<= 10000"))
    assert exc.value.message == (
        f"Micro rejected the request (HTTP {status}: total: must be <= 10000)"
    )
    assert exc.value.code == str(status)


def test_rejection_without_a_message() -> None:
    with pytest.raises(RequestRejectedError) as exc:
        fetch(httpx.Response(400, text="nope"))
    assert exc.value.message == "Micro rejected the request (HTTP 400)"


# --- transient failures and throttling ------------------------------------------------------


@pytest.mark.parametrize(
    "reply, message",
    [
        (err(409, "import is being updated"), "Micro answered HTTP 409: import is being updated"),
        (httpx.Response(500), "Micro answered HTTP 500"),
        (httpx.Response(502, text="<html>bad gateway</html>"), "Micro answered HTTP 502"),
        (err(503, "maintenance"), "Micro answered HTTP 503: maintenance"),
        (httpx.Response(408), "Micro answered HTTP 408"),
        # transport failures and unreadable replies in general: test_vendor_http.py
        (httpx.ConnectError("connection refused"), "could not reach Micro (ConnectError)"),
        (
            httpx.Response(
                200, text='{"status": "compl', headers={"content-type": "application/json"}
            ),
            "Micro sent an unreadable reply (HTTP 200, application/json)",
        ),
    ],
    ids=["409", "500", "502-html", "503", "408", "connect-error", "truncated-json"],
)
def test_transient_failures(reply: Reply, message: str) -> None:
    with pytest.raises(TransientError) as exc:
        fetch(reply)
    assert not isinstance(exc.value, RateLimitedError)
    assert exc.value.message.startswith(message)


@pytest.mark.parametrize(
    "headers, wait",
    [
        ({"Retry-After": "120"}, 120.0),
        ({"Retry-After": formatdate(NOW + 90, usegmt=True)}, 90.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "2500", "Retry-After": "3"}, 2.5),
        ({"retry-after-ms": "soon", "Retry-After": "3"}, 3.0),
        ({}, None),
    ],
    ids=["seconds", "http-date", "ms", "ms-wins", "bad-ms", "none"],
)
def test_429_waits_as_micro_says(headers: dict[str, str], wait: float | None) -> None:
    with pytest.raises(RateLimitedError) as exc:
        fetch(err(429, "Too many requests", **headers))
    assert exc.value.retry_after == (pytest.approx(wait) if wait is not None else None)
    assert exc.value.message == "Micro rate limit (429: Too many requests)"
    assert exc.value.notice is None


@pytest.mark.parametrize("status", [408, 409, 429])
def test_should_retry_false_turns_a_retryable_4xx_into_a_verdict(status: int) -> None:
    fake = Micro(err(status, "duplicate", **{"x-should-retry": "false", "Retry-After": "5"}))
    with pytest.raises(RequestRejectedError) as exc:
        fake.vendor().fetch(JOB)
    assert exc.value.message == (
        f"Micro refused the request (HTTP {status}: duplicate) and marked it not worth "
        "retrying (x-should-retry: false)"
    )
    assert len(fake.requests) == 1


def test_should_retry_false_on_a_server_error_stays_transient_but_says_so() -> None:
    with pytest.raises(TransientError) as exc:
        fetch(err(503, "overloaded", **{"X-Should-Retry": " FALSE "}))
    assert not isinstance(exc.value, RateLimitedError)
    assert exc.value.message == (
        "Micro answered HTTP 503: overloaded; Micro asked not to retry it at once"
    )


def test_should_retry_true_changes_nothing() -> None:
    with pytest.raises(RateLimitedError):
        fetch(err(429, **{"x-should-retry": "true"}))


# --- the monthly budget ---------------------------------------------------------------------


def test_each_request_spends_one_under_a_hashed_key() -> None:
    fake = Micro(ok(**PROCESSING), err(503), ok(**PROCESSING))
    vendor = fake.vendor()
    vendor.fetch(JOB)
    with pytest.raises(TransientError):
        vendor.fetch(JOB)
    vendor.fetch(JOB)
    assert fake.budget is not None and fake.budget.tally == {BUDGET_KEY: 3}
    assert KEY not in BUDGET_KEY and len(BUDGET_KEY) == len("micro:") + 16


def test_transport_failures_still_count() -> None:
    fake = Micro(httpx.ConnectError("refused"))
    with pytest.raises(TransientError):
        fake.vendor().fetch(JOB)
    assert fake.spent == 1


def test_used_up_budget_sends_nothing() -> None:
    fake = Micro(ok(**PROCESSING), used=1000)
    with pytest.raises(RateLimitedError) as exc:
        fake.vendor().fetch(JOB)
    assert fake.requests == [] and fake.spent == 1000
    assert exc.value.retry_after == MONTH_END - NOW
    assert exc.value.message == (
        "Micro's monthly request budget for this key is used up (1,000/1,000); "
        "checks resume 1 Feb 2026"
    )
    assert exc.value.notice == (
        "Micro's monthly request budget for this API key is used up (1,000 of 1,000 "
        "requests), so I can't check this import again until it resets on 1 Feb 2026. "
        "The import itself is unaffected: it keeps running at Micro."
    )


def test_the_last_request_of_the_month_is_still_sent() -> None:
    fake = Micro(ok(**PROCESSING), used=999)
    fake.vendor().fetch(JOB)
    assert len(fake.requests) == 1 and fake.spent == 1000


def test_a_sibling_taking_the_last_request_is_refused_too() -> None:
    fake = Micro(ok(**PROCESSING), used=999)
    assert fake.budget is not None
    real_spend = fake.budget.spend
    fake.budget.spend = lambda key, count=1: real_spend(key, count + 1)  # type: ignore[method-assign]
    with pytest.raises(RateLimitedError):
        fake.vendor().fetch(JOB)
    assert fake.requests == []


def test_without_a_budget_nothing_is_limited() -> None:
    fake = Micro(*(ok(**PROCESSING) for _ in range(3)), budget=False)
    vendor = fake.vendor(monthly_limit=1)
    snaps = [vendor.fetch(JOB) for _ in range(3)]
    assert len(fake.requests) == 3
    assert vendor.min_interval is None and all(s.notice is None for s in snaps)


@pytest.mark.parametrize(
    "used, interval",
    [
        (0, None),
        (499, None),
        (500, 300.0),
        (799, 300.0),
        (800, 900.0),
        (949, 900.0),
        (950, 3600.0),
        (1000, 3600.0),
        (1200, 3600.0),
    ],
)
def test_min_interval_widens_as_the_budget_goes(used: int, interval: float | None) -> None:
    assert Micro(used=used).vendor().min_interval == interval


def test_min_interval_follows_a_smaller_limit() -> None:
    fake = Micro(used=5)
    assert fake.vendor(monthly_limit=10).min_interval == 300.0
    assert fake.vendor(monthly_limit=11).min_interval is None


def test_budget_notice_is_stable_within_a_step_and_changes_between_steps() -> None:
    fake = Micro(*(ok(**PROCESSING) for _ in range(6)), used=797)
    vendor = fake.vendor()
    notices = [vendor.fetch(JOB).notice for _ in range(6)]  # used 798 … 803
    assert notices[:2] == [None, None]
    assert (
        notices[2]
        == notices[3]
        == notices[4]
        == notices[5]
        == (
            "Heads-up: this Micro API key has used over 80 % of its 1,000 requests this month; "
            "I'm checking less often (every 15 min) so the budget lasts until it resets on "
            "1 Feb 2026."
        )
    )
    assert fake.budget is not None
    fake.budget.tally[BUDGET_KEY] = 949
    fake.replies += [ok(**PROCESSING)]
    high = vendor.fetch(JOB).notice
    assert high is not None and high != notices[2]
    assert "over 95 %" in high and "(every hour)" in high


def test_budget_notice_is_said_once_per_step_in_the_thread() -> None:
    fake = Micro(*(ok(**PROCESSING) for _ in range(3)), used=800)
    vendor = fake.vendor()
    watch, said = make_watch(), []
    for _ in range(3):
        result = decide(watch, vendor.fetch(JOB), SPEC, NOW, lambda: 0.0)
        said += result.notes
        watch = replace(watch, polls=watch.polls + 1, snapshot=result.changes["snapshot"])
    assert len(said) == 1 and "over 80 %" in said[0]


def test_budget_with_the_real_store(store: Store, tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    transport = ScriptedTransport(*[ok(**PROCESSING) for _ in range(3)])
    http = build_http_client(transport)
    budget = MonthlyBudget(store, clock)
    vendor = MicroImports(
        conn(), VendorContext(http=http, clock=clock, budget=budget), monthly_limit=2
    )
    vendor.fetch(JOB)
    assert vendor.fetch(JOB).notice is not None  # 2 of 2: over 95 %
    with pytest.raises(RateLimitedError) as exc:
        vendor.fetch(JOB)
    assert exc.value.retry_after == MONTH_END - NOW and len(transport.replies) == 1
    assert store.budget_used(BUDGET_KEY, "2026-01") == 2
    clock.now = epoch(2026, 2, 1, 0, 0, 1)  # a new month, a new allowance
    assert vendor.min_interval is None and vendor.fetch(JOB).notice is None
    store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert KEY.encode() not in stored and BUDGET_KEY.encode() in stored


# --- check ----------------------------------------------------------------------------------


def test_check_spends_one_request_and_takes_404_as_accepted() -> None:
    fake = Micro(err(404, "Import job not found"), used=122)
    text = fake.vendor().check()
    assert text == (
        f"Micro: API key accepted for team {TEAM} at {API}; 123 of 1,000 requests used this month"
    )
    (request,) = fake.requests
    assert request.url.path == f"/v2/prism/{TEAM}/imports/syncwatch-key-check"
    assert request.headers["x-api-key"] == KEY and fake.spent == 123


def test_check_without_a_budget() -> None:
    fake = Micro(ok(status="complete"), budget=False)
    assert fake.vendor().check() == f"Micro: API key accepted for team {TEAM} at {API}"


@pytest.mark.parametrize("status", [401, 403])
def test_check_reports_a_refused_key(status: int) -> None:
    fake = Micro(err(status))
    with pytest.raises(AuthError):
        fake.vendor().check()
    assert len(fake.requests) == 1


def test_check_needs_a_team_and_a_budget() -> None:
    fake = Micro()
    with pytest.raises(RequestRejectedError, match="no team"):
        fake.vendor(team="").check()
    with pytest.raises(RateLimitedError):
        Micro(used=1000).vendor().check()
    assert fake.requests == [] and fake.spent == 0


def test_check_maps_other_errors() -> None:
    with pytest.raises(TransientError):
        Micro(httpx.Response(502)).vendor().check()


# --- result file ----------------------------------------------------------------------------

EXAMPLE_CSV = (
    b"position,id,created,existing,error_code,error_message\r\n"
    b"0,3b9e6f0a-2c4d-4e8b-9a71-5d0c2e8f1a64,true,false,,\r\n"
    b"1,a17c4d92-8e3b-4f65-b0d2-9c6e1f3a7b58,false,true,,\r\n"
    b"2,,false,false,invalid_email,email is not a valid address\r\n"
)


def test_results_csv_from_the_cached_reply() -> None:
    fake = Micro(ok(**COMPLETE))
    vendor = fake.vendor()
    snap = vendor.fetch(JOB)
    (result,) = vendor.results(JOB, snap)
    assert len(fake.requests) == 1 and fake.spent == 1  # no second request
    assert result.filename == f"micro-import-{JOB}.csv"
    assert result.title == f"Import results for {JOB}"
    assert result.comment == "3 rows: 2 succeeded, 1 failed"
    assert result.content == EXAMPLE_CSV and result.note is None


def test_results_are_fetched_once_more_when_not_cached() -> None:
    fake = Micro(ok(**COMPLETE), ok(**COMPLETE))
    snap = fake.vendor().fetch(JOB)
    restarted = fake.vendor()  # a new client: nothing in memory
    (result,) = restarted.results(JOB, snap)
    assert result.content == EXAMPLE_CSV
    assert len(fake.requests) == 2 and fake.spent == 2
    assert str(fake.requests[1].url) == JOB_URL


def test_results_cache_is_bounded() -> None:
    jobs = [f"imp_{n}" for n in range(micro._CACHE_SIZE + 1)]
    fake = Micro(*(ok(**COMPLETE) for _ in jobs), ok(**COMPLETE))
    vendor = fake.vendor()
    snaps = [vendor.fetch(job) for job in jobs]
    vendor.results(jobs[-1], snaps[-1])
    assert len(fake.requests) == len(jobs)  # the newest is still cached
    vendor.results(jobs[0], snaps[0])
    assert len(fake.requests) == len(jobs) + 1  # the oldest was dropped


def test_results_csv_neutralizes_formulas_and_odd_rows() -> None:
    rows = [
        {"id": '=HYPERLINK("https://evil.test")', "created": True},
        {"id": None, "existing": "yes", "error": {"code": "+1", "message": "-2"}},
        {"id": "@SUM(A1)", "error": {"code": "\tcmd", "message": "\rcmd"}},
        {"id": "a=b", "error": {"message": f"key {KEY} refused"}},
        "not a row",
    ]
    fake = Micro(ok(status="complete", total=5, results=rows))
    vendor = fake.vendor()
    (result,) = vendor.results(JOB, vendor.fetch(JOB))
    assert result.content is not None
    assert result.content.decode() == (
        "position,id,created,existing,error_code,error_message\r\n"
        '0,"\'=HYPERLINK(""https://evil.test"")",true,,,\r\n'
        "1,,,yes,'+1,'-2\r\n"
        "2,'@SUM(A1),,,'\tcmd,\"'\rcmd\"\r\n"
        "3,a=b,,,,key [redacted] refused\r\n"
        "4,,,,,\r\n"
    )
    assert result.comment == "5 rows: 2 succeeded, 3 failed"


def test_job_id_null_still_names_the_file_after_the_ref() -> None:
    fake = Micro(httpx.Response(200, json={**COMPLETE, "job_id": None}))
    vendor = fake.vendor()
    (result,) = vendor.results(JOB, vendor.fetch(JOB))
    assert result.filename == f"micro-import-{JOB}.csv" and result.content == EXAMPLE_CSV


@pytest.mark.parametrize(
    "body",
    [FAILED, {"status": "complete", "total": 0}, {"status": "complete", "results": []}],
    ids=["failed", "complete-no-rows", "complete-empty-rows"],
)
def test_no_rows_gives_a_note(body: dict[str, Any]) -> None:
    vendor = Micro(ok(**body)).vendor()
    (result,) = vendor.results(JOB, vendor.fetch(JOB))
    assert result.note == "Micro returned no per-row results for this job."
    assert result.content is None and result.filename == f"micro-import-{JOB}.csv"


def test_no_results_for_running_or_lifecycle_made_snapshots() -> None:
    fake = Micro()
    vendor = fake.vendor()
    assert vendor.results(JOB, JobSnapshot(State.RUNNING, "processing")) == []
    assert vendor.results(JOB, JobSnapshot(State.EXPIRED, "processing")) == []
    assert vendor.results(JOB, JobSnapshot(State.FAILED, "404")) == []
    assert fake.requests == []


# --- secrets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        err(400, f"bad key {KEY}"),
        err(401, f"missing {KEY}"),
        err(403, f"key {KEY} revoked"),
        err(404, KEY),
        err(409, KEY, **{"x-should-retry": "false"}),
        err(429, KEY),
        err(503, KEY),
        httpx.Response(302, headers={"Location": f"https://{KEY}.evil.test/"}),
        httpx.Response(200, text=f"<html>{KEY}</html>"),
        httpx.ConnectError(KEY),
        ok(status=f"odd {KEY}"),
        ok(status="failed", error={"code": KEY, "message": KEY}),
        ok(status="complete", failed=1, results=[{"error": {"code": KEY, "message": KEY}}]),
    ],
    ids=[
        "400",
        "401",
        "403",
        "404",
        "409-final",
        "429",
        "503",
        "redirect",
        "html",
        "connect",
        "unknown-status",
        "failed",
        "row-error",
    ],
)
def test_no_secret_in_errors_snapshots_or_logs(
    reply: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = Micro(reply)
    vendor = fake.vendor()
    shown = repr(vendor) + repr(conn())
    try:
        snap = vendor.fetch(JOB)
        shown += snap.to_json()
    except VendorError as exc:
        shown += f"{exc.message} {exc} {exc!r} {exc.code} {exc.notice}"
        shown += getattr(exc, "hint", "")
    shown += caplog.text
    assert KEY not in shown
