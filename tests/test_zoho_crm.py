"""Zoho CRM bulk write: refs, states, errors, the result link allowlist, the result CSV
(docs/vendors.md#zoho-crm-bulk-write)."""

from __future__ import annotations

import io
import logging
import os
import zipfile
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.vendors import zoho_crm as zc
from bot.vendors import zoho_crm_results as zcr
from bot.vendors.base import (
    AuthError,
    FileRef,
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
from bot.vendors.zoho_analytics import ZohoAnalytics
from bot.vendors.zoho_auth import ZohoConnection
from bot.vendors.zoho_crm import SPEC, ZohoCrm, parse_ref
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

JOB = "6120045000001938011"
API = "https://crm.zoho.test"
JOB_URL = f"{API}/crm/bulk/v8/write/{JOB}"
LINK = f"https://download-accl.zoho.com/v2/crm/70831234/bulk-write/{JOB}/{JOB}.zip"
NOW = 1_700_000_000.0
SECRETS = (ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN, ZOHO_CLIENT_ID, "test-access-token-")


class Crm:
    """Mock Accounts + CRM + download hosts: token POSTs mint `test-access-token-<n>`; every
    other request is recorded in `requests` and answered from `replies` in order."""

    def __init__(self, *replies: Reply, spool: Path, cap: int = 50 * 1024 * 1024) -> None:
        transport = ScriptedTransport(*replies, token_requests=zoho_accounts)
        self.replies, self.requests = transport.replies, transport.requests
        self.token_posts = transport.token_posts
        self.spool = spool
        self.ctx = VendorContext(
            http=build_http_client(transport),
            clock=FakeClock(NOW),
            spool_dir=str(spool),
            max_file_bytes=cap,
        )

    def vendor(self, conn: ZohoConnection | None = None) -> ZohoCrm:
        return ZohoCrm(conn or zoho_connection(crm_api_url=API), self.ctx)

    def spooled(self) -> list[str]:
        return sorted(os.listdir(self.spool))


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    return path


def res(
    status: str = "COMPLETED",
    module: object = None,
    *,
    added: object = None,
    updated: object = None,
    skipped: object = None,
    total: object = None,
    name: str | None = "contacts.csv",
    file_status: str | None = None,
) -> dict[str, Any]:
    """One `resource[]` entry; counts only when given."""
    entry: dict[str, Any] = {
        "status": status,
        "code": status,
        "type": "data",
        "module": {"api_name": "Contacts", "id": "6120045000000002179"}
        if module is None
        else module,
    }
    counts = {"added_count": added, "updated_count": updated, "skipped_count": skipped}
    counts["total_count"] = total
    file = {k: v for k, v in counts.items() if v is not None}
    if file or name or file_status:
        file["status"] = file_status or status
        if name:
            file["name"] = name
        entry["file"] = file
    return entry


def doc(
    status: str = "COMPLETED", *resources: dict[str, Any], url: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "id": JOB, "resource": list(resources), **extra}
    if url is not None:
        body["result"] = {"download_url": url}
    return body


def ok(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=body)


def error(
    code: str, message: str = "Zoho says no", status: int = 400, **headers: str
) -> httpx.Response:
    body = {"status": "error", "code": code, "message": message, "details": {}}
    return httpx.Response(status, json=body, headers=headers)


def fetch(*replies: Reply, spool: Path) -> JobSnapshot:
    return Crm(*replies, spool=spool).vendor().fetch(JOB)


SKIPS = res(added=310, updated=52, skipped=7, total=369)


# --- parse_ref and spec ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected", [(JOB, JOB), (f"  {JOB}\n", JOB), ("1", "1"), ("9" * 20, "9" * 20)]
)
def test_parse_ref_accepts(text: str, expected: str) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "got nothing"),
        ("   ", "got nothing"),
        ("1" * 21, "at most 20 digits"),
        (f"../{JOB}", "digits only"),
        (f"{JOB}/..", "digits only"),
        ("١٢٣", "digits only"),  # Arabic-Indic digits match \d but are not Zoho ids
        ("-1", "digits only"),
        (f"{JOB}?x=1", "digits only"),
        (f"{JOB} 1", "digits only"),
        (f"https://crm.zoho.com/crm/bulk/v8/write/{JOB}", "digits only"),
    ],
)
def test_parse_ref_rejects(text: str, why: str) -> None:
    with pytest.raises(RefError, match=why) as err:
        parse_ref(text)
    assert "is not a Zoho CRM bulk write job: expected <job-id>" in str(err.value)
    assert SPEC.example_ref in str(err.value)


def test_bad_ref_never_reaches_the_network(spool: Path) -> None:
    crm = Crm(spool=spool)
    with pytest.raises(RefError):
        crm.vendor().fetch("../../etc/passwd")
    with pytest.raises(RefError):
        crm.vendor().results(
            "../1", JobSnapshot(State.SUCCEEDED, "COMPLETED", files=(FileRef(LINK, "x"),))
        )
    assert crm.requests == [] and crm.token_posts == []


def test_spec(spool: Path) -> None:
    assert SPEC.key == "zoho-crm" and SPEC.aliases == ("crm", "zoho_crm", "zohocrm")
    assert SPEC.label == "Zoho CRM bulk write" and SPEC.ref_syntax == "<job-id> (digits)"
    assert SPEC.parse_ref(SPEC.example_ref) == SPEC.example_ref == JOB
    assert SPEC.schedule == ((0, 10), (300, 30), (1800, 60))
    assert (SPEC.floor, SPEC.family, SPEC.rate_per_minute) == (10, "zoho", 30)
    vendor = SPEC.build(zoho_connection(), Crm(spool=spool).ctx)
    assert isinstance(vendor, ZohoCrm) and repr(vendor) == "ZohoCrm(connection='default')"


# --- request shape --------------------------------------------------------------------------


def test_poll_request(spool: Path) -> None:
    crm = Crm(ok(doc("ADDED", res("ADDED", name=None))), spool=spool)
    crm.vendor().fetch(JOB)
    (request,) = crm.requests
    assert request.method == "GET" and str(request.url) == JOB_URL
    assert request.headers["authorization"] == "Zoho-oauthtoken test-access-token-1"
    (token_post,) = crm.token_posts
    assert "authorization" not in token_post.headers


def test_crm_and_analytics_share_one_token(spool: Path) -> None:
    analytics_reply = httpx.Response(200, json={"status": "success", "data": {"jobCode": "1002"}})
    crm = Crm(ok(doc("ADDED")), analytics_reply, ok(doc("ADDED")), spool=spool)
    conn = zoho_connection(crm_api_url=API)
    crm.vendor(conn).fetch(JOB)
    ZohoAnalytics(conn, crm.ctx).fetch("1/2")
    crm.vendor(conn).fetch(JOB)
    assert len(crm.token_posts) == 1
    assert {r.headers["authorization"] for r in crm.requests} == {
        "Zoho-oauthtoken test-access-token-1"
    }


# --- job states -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, state",
    [
        ("ADDED", State.QUEUED),
        ("added", State.QUEUED),
        ("IN PROGRESS", State.RUNNING),
        ("INPROGRESS", State.RUNNING),
        ("in_progress", State.RUNNING),
        ("In-Progress", State.RUNNING),
        ("FAILED", State.FAILED),
    ],
)
def test_top_level_statuses(status: str, state: State, spool: Path) -> None:
    snap = fetch(ok(doc(status, res(status, name=None))), spool=spool)
    assert snap.state is state and snap.raw_status == status


def test_in_progress_example_from_the_docs(spool: Path) -> None:
    body = {
        "status": "IN PROGRESS",
        "id": JOB,
        "resource": [
            {
                "status": "IN PROGRESS",
                "code": "IN PROGRESS",
                "type": "data",
                "module": {"api_name": "Contacts"},
            }
        ],
    }
    snap = fetch(ok(body), spool=spool)
    assert snap == JobSnapshot(
        state=State.RUNNING,
        raw_status="IN PROGRESS",
        progress=(("Module", "Contacts"),),
        facts=(("id", JOB), ("modules", "Contacts")),
    )


# --- counts behind the time-left estimate (docs/vendors.md#crm-bulk-write-fields) -------------


def test_rows_written_or_skipped_of_the_total_feed_the_estimate(spool: Path) -> None:
    body = doc(
        "IN PROGRESS",
        res("IN PROGRESS", added=100, updated=20, skipped=5, total=500),
        res("IN PROGRESS", "Leads", added=10, total=100),
    )
    snap = fetch(ok(body), spool=spool)
    assert (snap.state, snap.done, snap.total) == (State.RUNNING, 135, 600)


def test_without_every_total_count_there_are_no_counts(spool: Path) -> None:
    # Zoho gave no total for Leads: the bot's own sum would count Leads as finished.
    body = doc(
        "IN PROGRESS",
        res("IN PROGRESS", added=100, total=500),
        res("IN PROGRESS", "Leads", added=10),
    )
    snap = fetch(ok(body), spool=spool)
    assert (snap.done, snap.total) == (None, None)
    assert ("Total", "510") in snap.progress  # the parent still shows what Zoho counted


def test_in_progress_without_counts_has_none(spool: Path) -> None:
    snap = fetch(ok(doc("IN PROGRESS", res("IN PROGRESS", name=None))), spool=spool)
    assert (snap.done, snap.total) == (None, None)


def test_completed_with_skipped_rows_example_from_the_docs(spool: Path) -> None:
    body = doc(
        "COMPLETED",
        SKIPS,
        url=LINK,
        operation="upsert",
        created_time="2025-03-14T09:12:03+01:00",
        character_encoding="UTF-8",
        created_by={"id": "1", "name": "Ada"},
    )
    snap = fetch(ok(body), spool=spool)
    assert snap == JobSnapshot(
        state=State.PARTIAL,
        raw_status="COMPLETED",
        progress=(
            ("Added", "310"),
            ("Updated", "52"),
            ("Skipped", "7"),
            ("Total", "369"),
            ("Module", "Contacts"),
        ),
        facts=(
            ("id", JOB),
            ("operation", "upsert"),
            ("created_time", "2025-03-14T09:12:03+01:00"),
            ("character_encoding", "UTF-8"),
            ("created_by", "Ada"),
            ("modules", "Contacts"),
            ("added_count", "310"),
            ("updated_count", "52"),
            ("skipped_count", "7"),
            ("total_count", "369"),
        ),
        error_code="SKIPPED",
        error_message="7 of 369 rows skipped in Contacts; see the result file",
        files=(FileRef(LINK, "Contacts-contacts", 369, "zip"),),
        done=369,
        total=369,
    )
    assert JobSnapshot.from_json(snap.to_json()) == snap


@pytest.mark.parametrize(
    "resources, state, code, message",
    [
        ([res(added=369, updated=0, skipped=0, total=369)], State.SUCCEEDED, None, None),
        ([res(added="300", updated="69", skipped="0", total="369")], State.SUCCEEDED, None, None),
        ([SKIPS], State.PARTIAL, "SKIPPED", "7 of 369 rows skipped in Contacts"),
        (
            [res(added=300, updated=0, skipped=0, total=369)],
            State.PARTIAL,
            "UNPROCESSED",
            "69 of 369 rows unprocessed in Contacts",
        ),
        (
            [res(added=300, updated=0, skipped=9, total=369)],
            State.PARTIAL,
            "SKIPPED",
            "9 of 369 rows skipped, 60 of 369 rows unprocessed in Contacts",
        ),
        (
            [res(added=0, updated=0, skipped=369, total=369)],
            State.FAILED,
            "SKIPPED",
            "369 of 369 rows skipped in Contacts",
        ),
        (
            [res(added=0, updated=0, skipped=0, total=369)],
            State.FAILED,
            "UNPROCESSED",
            "369 of 369 rows unprocessed in Contacts",
        ),
        (
            [res("FAILED", {"api_name": "Deals"}, name=None)],
            State.FAILED,
            "FAILED",
            "resource FAILED: Deals",
        ),
        ([res("SKIPPED", name=None)], State.FAILED, "SKIPPED", "resource SKIPPED: Contacts"),
        (
            [
                res(added=10, updated=0, skipped=0, total=10),
                res("SKIPPED", {"api_name": "Deals"}, name=None),
            ],
            State.PARTIAL,
            "SKIPPED",
            "resource SKIPPED: Deals",
        ),
        (
            [
                res(added=10, updated=0, skipped=0, total=10),
                res("FAILED", {"api_name": "Deals"}, name=None),
            ],
            State.PARTIAL,
            "FAILED",
            "resource FAILED: Deals",
        ),
        (
            [res("COMPLETED", file_status="FAILED", added=0, updated=0, skipped=0, total=0)],
            State.FAILED,
            "FAILED",
            "resource FAILED: Contacts",
        ),
        ([res(added=0, updated=0, skipped=0, total=0)], State.SUCCEEDED, None, None),
        ([], State.SUCCEEDED, None, None),
        ([res(name=None)], State.SUCCEEDED, None, None),
    ],
    ids=[
        "clean",
        "clean-string-counts",
        "skipped",
        "unprocessed-remainder",
        "skipped-and-unprocessed",
        "all-skipped",
        "nothing-processed",
        "resource-failed",
        "resource-skipped-alone",
        "resource-skipped-with-ok",
        "one-of-two-failed",
        "file-status-failed",
        "zero-total",
        "no-resources",
        "no-counts",
    ],
)
def test_completed_is_decided_by_counts(
    resources: list[dict[str, Any]],
    state: State,
    code: str | None,
    message: str | None,
    spool: Path,
) -> None:
    snap = fetch(ok(doc("COMPLETED", *resources)), spool=spool)
    assert (snap.state, snap.error_code, snap.error_message) == (state, code, message)


def test_unprocessed_shown_only_once_completed(spool: Path) -> None:
    done = fetch(ok(doc("COMPLETED", res(added=300, updated=0, skipped=0, total=369))), spool=spool)
    assert ("Unprocessed", "69") in done.progress and ("unprocessed_count", "69") in done.facts
    running = fetch(
        ok(doc("IN PROGRESS", res("IN PROGRESS", added=300, updated=0, skipped=0, total=369))),
        spool=spool,
    )
    assert all(k != "Unprocessed" for k, _ in running.progress)


def test_several_resources_are_summed(spool: Path) -> None:
    body = doc(
        "COMPLETED",
        res(module="Accounts", added=1000, updated=200, skipped=3, total=1203, name="accounts.csv"),
        res(module={"api_name": "Contacts"}, added="5", updated="0", skipped="2", total="7"),
        url=LINK,
    )
    snap = fetch(ok(body), spool=spool)
    assert snap.state is State.PARTIAL
    assert snap.progress == (
        ("Added", "1,005"),
        ("Updated", "200"),
        ("Skipped", "5"),
        ("Total", "1,210"),
        ("Modules", "Accounts, Contacts"),
    )
    assert (
        snap.error_message == "5 of 1,210 rows skipped in Accounts, Contacts; see the result file"
    )
    assert snap.files == (FileRef(LINK, f"bulk-write-{JOB}", 1210, "zip"),)


@pytest.mark.parametrize(
    "module", ["Contacts", {"api_name": "Contacts", "id": "1"}], ids=["string", "object"]
)
def test_module_as_string_or_object(module: object, spool: Path) -> None:
    snap = fetch(
        ok(doc("COMPLETED", res(module=module, added=3, updated=0, skipped=0, total=3), url=LINK)),
        spool=spool,
    )
    assert ("Module", "Contacts") in snap.progress
    assert snap.files[0].name == "Contacts-contacts"


def test_top_level_failed(spool: Path) -> None:
    snap = fetch(ok(doc("FAILED", res("FAILED", {"api_name": "Deals"}, name=None))), spool=spool)
    assert (snap.state, snap.error_code) == (State.FAILED, "FAILED")
    assert snap.error_message == "Zoho CRM marked the bulk write job FAILED; resource FAILED: Deals"
    said = fetch(ok(doc("FAILED", message="The uploaded file is empty")), spool=spool)
    assert said.error_message == "The uploaded file is empty"


def test_no_files_without_a_download_url(spool: Path) -> None:
    assert fetch(ok(doc("COMPLETED", SKIPS)), spool=spool).files == ()
    assert fetch(ok(doc("COMPLETED", SKIPS, url="  ")), spool=spool).files == ()
    assert fetch(ok(doc("COMPLETED", SKIPS, result=["x"])), spool=spool).files == ()


def test_huge_download_url_is_clipped_for_storage(spool: Path) -> None:
    snap = fetch(ok(doc("COMPLETED", SKIPS, url=LINK + "x" * 10_000)), spool=spool)
    assert len(snap.files[0].file_id) == zc.MAX_LINK_CHARS + 1


def test_unknown_status_polls_on_and_logs_once(
    caplog: pytest.LogCaptureFixture, spool: Path
) -> None:
    caplog.set_level(logging.WARNING, logger=zc.__name__)
    crm = Crm(ok(doc("PAUSED")), ok(doc("Paused")), spool=spool)
    first = crm.vendor().fetch(JOB)
    crm.vendor().fetch(JOB)
    assert (
        first.state is State.UNKNOWN and not first.state.terminal and first.raw_status == "PAUSED"
    )
    assert [r.getMessage() for r in caplog.records] == [
        "zoho-crm: unknown bulk write status 'PAUSED'; polling on"
    ]


@pytest.mark.parametrize("body", [{"id": JOB}, {"status": "", "id": JOB}, {"status": None}])
def test_reply_without_status_is_transient(body: dict[str, Any], spool: Path) -> None:
    with pytest.raises(TransientError, match="without a status"):
        fetch(ok(body), spool=spool)


def test_odd_resource_entries_are_ignored(spool: Path) -> None:
    body = {"status": "COMPLETED", "resource": ["x", None, {"module": 5, "file": "nope"}]}
    assert fetch(ok(body), spool=spool).state is State.SUCCEEDED
    assert (
        fetch(ok({"status": "COMPLETED", "resource": {"a": 1}}), spool=spool).state
        is State.SUCCEEDED
    )


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404, 200])
def test_resource_not_found(status: int, spool: Path) -> None:
    with pytest.raises(JobNotFoundError) as err:
        fetch(
            error("RESOURCE_NOT_FOUND", "the requested resource is not found", status), spool=spool
        )
    assert err.value.code == "RESOURCE_NOT_FOUND"
    assert err.value.message == (
        "Zoho CRM does not know this bulk write job "
        "(RESOURCE_NOT_FOUND: the requested resource is not found)"
    )
    assert (
        "job id" in err.value.hint and "ZOHO_DC" in err.value.hint and "document" in err.value.hint
    )


@pytest.mark.parametrize("status", [401, 400, 200])
@pytest.mark.parametrize("code", ["INVALID_TOKEN", "INVALID_OAUTHTOKEN"])
def test_rejected_token_is_refreshed_and_retried_once(status: int, code: str, spool: Path) -> None:
    crm = Crm(error(code, "invalid oauth token", status), ok(doc("ADDED")), spool=spool)
    assert crm.vendor().fetch(JOB).state is State.QUEUED
    assert len(crm.token_posts) == 2
    assert [r.headers["authorization"] for r in crm.requests] == [
        "Zoho-oauthtoken test-access-token-1",
        "Zoho-oauthtoken test-access-token-2",
    ]


@pytest.mark.parametrize(
    "first", [error("INVALID_TOKEN", status=401), httpx.Response(401)], ids=["code", "bare"]
)
def test_second_rejection_is_an_auth_error(first: httpx.Response, spool: Path) -> None:
    crm = Crm(first, error("INVALID_OAUTHTOKEN", status=400), spool=spool)
    with pytest.raises(AuthError) as err:
        crm.vendor().fetch(JOB)
    message = err.value.message
    assert message.startswith(
        "credentials rejected by Zoho CRM (INVALID_OAUTHTOKEN); the job may still be running"
    )
    assert "ZOHO_DC" in message and "15 live access tokens" in message
    assert len(crm.requests) == 2 and len(crm.token_posts) == 2


@pytest.mark.parametrize("status", [429, 400, 200])
def test_too_many_requests(status: int, spool: Path) -> None:
    with pytest.raises(RateLimitedError) as err:
        fetch(error("TOO_MANY_REQUESTS", "too many concurrent requests", status), spool=spool)
    assert err.value.code == "TOO_MANY_REQUESTS" and err.value.retry_after is None
    assert "TOO_MANY_REQUESTS: too many concurrent requests" in err.value.message


@pytest.mark.parametrize(
    "header, expected",
    [("120", 120.0), (formatdate(NOW + 90, usegmt=True), 90.0)],
    ids=["seconds", "http-date"],
)
def test_retry_after_is_honoured(header: str, expected: float, spool: Path) -> None:
    with pytest.raises(RateLimitedError) as err:
        fetch(error("TOO_MANY_REQUESTS", status=429, **{"Retry-After": header}), spool=spool)
    assert err.value.retry_after == pytest.approx(expected)
    with pytest.raises(RateLimitedError) as bare:
        fetch(httpx.Response(429, text="slow down", headers={"Retry-After": header}), spool=spool)
    assert bare.value.retry_after == pytest.approx(expected)


@pytest.mark.parametrize(
    "reply, fragment",
    [
        (httpx.Response(500), "HTTP 500"),
        (httpx.Response(502, text="<html>bad gateway</html>"), "HTTP 502"),
        (httpx.Response(503, json={"message": "maintenance"}), "HTTP 503"),
        (httpx.Response(408), "HTTP 408"),
        (
            error("INTERNAL_ERROR", "Internal Server Error", 500),
            "INTERNAL_ERROR: Internal Server Error",
        ),
        (error("INTERNAL_ERROR", "oops", 400), "INTERNAL_ERROR"),
        (error("SOMETHING", "odd", 503), "SOMETHING: odd"),
        # transport failures and unreadable replies in general: test_vendor_http.py
        (httpx.ConnectError("connection refused"), "could not reach Zoho CRM (ConnectError)"),
        (
            httpx.Response(
                200, text='{"status": "COMPL', headers={"content-type": "application/json"}
            ),
            "Zoho CRM sent an unreadable reply (HTTP 200, application/json)",
        ),
    ],
    ids=[
        "500",
        "502-html",
        "503",
        "408",
        "internal-error-500",
        "internal-error-400",
        "unknown-code-503",
        "connect-error",
        "truncated-json",
    ],
)
def test_transient_failures(reply: Reply, fragment: str, spool: Path) -> None:
    with pytest.raises(TransientError) as err:
        fetch(reply, spool=spool)
    assert not isinstance(err.value, RateLimitedError)
    assert fragment in err.value.message


@pytest.mark.parametrize(
    "reply, code, fragment",
    [
        (
            error("NO_PERMISSION", "permission denied"),
            "NO_PERMISSION",
            "(NO_PERMISSION: permission denied)",
        ),
        (
            error(
                "INVALID_URL_PATTERN",
                "Please check if the URL trying to access is a correct one",
                404,
            ),
            "INVALID_URL_PATTERN",
            "INVALID_URL_PATTERN",
        ),
        (
            error("OAUTH_SCOPE_MISMATCH", "invalid oauth scope", 401),
            "OAUTH_SCOPE_MISMATCH",
            "ZohoCRM.bulk.ALL",
        ),
        (error("", "no code at all"), "400", "(HTTP 400: no code at all)"),
        (httpx.Response(403, json={"message": "forbidden"}), "403", "HTTP 403"),
        (httpx.Response(302, headers={"Location": "https://elsewhere.test/"}), "302", "redirect"),
    ],
)
def test_definitive_errors_quote_code_and_message(
    reply: httpx.Response, code: str, fragment: str, spool: Path
) -> None:
    with pytest.raises(RequestRejectedError) as err:
        fetch(reply, spool=spool)
    assert err.value.code == code and fragment in err.value.message


def test_check(spool: Path) -> None:
    org = {"org": [{"id": "70831234", "company_name": "Acme Corp", "zgid": "1"}]}
    crm = Crm(ok(org), spool=spool)
    assert crm.vendor().check() == "Zoho CRM: org Acme Corp (70831234)"
    (request,) = crm.requests
    assert str(request.url) == f"{API}/crm/v8/org"
    assert request.headers["authorization"] == "Zoho-oauthtoken test-access-token-1"
    assert Crm(ok({"org": []}), spool=spool).vendor().check() == "Zoho CRM: org (no name) (no id)"


def test_check_maps_errors_the_same_way(spool: Path) -> None:
    with pytest.raises(AuthError):
        Crm(
            error("INVALID_TOKEN", status=401), error("INVALID_TOKEN", status=401), spool=spool
        ).vendor().check()
    with pytest.raises(RateLimitedError):
        Crm(error("TOO_MANY_REQUESTS", status=429), spool=spool).vendor().check()
    with pytest.raises(TransientError):
        Crm(httpx.Response(200, text="<html>"), spool=spool).vendor().check()


# --- result link allowlist ------------------------------------------------------------------------
# docs/vendors.md#links-in-vendor-replies, docs/vendors.md#crm-result-file


def csv_text(*rows: str, header: str = "First_Name,Last_Name,Email,ID,STATUS,ERRORS") -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


SAMPLE = csv_text(
    "Ada,Lovelace,ada@example.test,6120045000002000001,added,",
    "Alan,Turing,alan@example.test,6120045000002000002,updated,",
    "Grace,,grace@example.test,,skipped,MANDATORY_NOT_FOUND-Last_Name",
    "Edsger,Dijkstra,taken@example.test,,skipped,DUPLICATE_DATA-Email",
)


def zip_of(text: str, name: str = "Contacts-bulkwrite.csv") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, text)
    return buf.getvalue()


def zip_reply(text: str = SAMPLE, **kw: Any) -> httpx.Response:
    return httpx.Response(
        200, content=zip_of(text, **kw), headers={"content-type": "application/octet-stream"}
    )


def done(url: str = LINK, resource: dict[str, Any] | None = None) -> JobSnapshot:
    body = doc("COMPLETED", resource or res(added=1, updated=1, skipped=2, total=4), url=url)
    return zc.snapshot_from(body, JOB)


@pytest.mark.parametrize(
    "url",
    [
        LINK,
        "https://DOWNLOAD-ACCL.ZOHO.COM/v2/crm/1/bulk-write/1/1.zip",
        "https://download-accl.zoho.com:443/x.zip",
        "https://download.zoho.eu/v2/crm/1/bulk-write/1/1.zip",
        "https://download-accl.zoho.in/x.zip",
        "https://x.zohoapis.com.au/x.zip",
        "https://download.zoho.jp/x.zip",
        "https://download.zoho.com.cn/x.zip",
        "https://download.zohocloud.ca/x.zip",
        "https://content.zohoapis.ca/x.zip",
        "https://files.zoho.sa/x.zip",
        "https://www.zohoapis.com/x.zip",
        "https://accounts.zoho.eu/x.zip",
        "https://analyticsapi.zoho.com.au/x.zip",
    ],
)
def test_zoho_download_hosts_get_the_token(url: str, spool: Path) -> None:
    crm = Crm(zip_reply(), spool=spool)
    files = crm.vendor().results(JOB, done(url))
    (request,) = crm.requests
    assert str(request.url) == str(httpx.URL(url))
    assert request.headers["authorization"] == "Zoho-oauthtoken test-access-token-1"
    assert files[0].path is not None and files[1].note is not None


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("https://evil.example/x.zip", "points at evil.example, which is not a Zoho download host"),
        ("https://zoho.com.evil.example/x.zip", "points at zoho.com.evil.example, which is not"),
        (
            "https://download-accl.zoho.com.evil.test/x.zip",
            "points at download-accl.zoho.com.evil.test",
        ),
        ("https://evilzoho.com/x.zip", "points at evilzoho.com"),
        ("https://zoho.com/x.zip", "points at zoho.com"),
        ("https://zohoapis.com/x.zip", "points at zohoapis.com"),
        ("https://download.zoho.uk/x.zip", "points at download.zoho.uk"),
        ("https://download-accl.zoho.com./x.zip", "points at download-accl.zoho.com."),
        ("https://127.0.0.1/x.zip", "points at 127.0.0.1"),
        ("https://[::1]/x.zip", "points at ::1"),
        ("https://evil.test#@download-accl.zoho.com/x.zip", "points at evil.test"),
        ("https://evil.test?@download-accl.zoho.com/x.zip", "points at evil.test"),
        ("http://download-accl.zoho.com/x.zip", "to download-accl.zoho.com is not https"),
        ("ftp://download-accl.zoho.com/x.zip", "is not https"),
        ("https://user:pw@download-accl.zoho.com/x.zip", "carries a user name or password"),
        ("https://user@download-accl.zoho.com/x.zip", "carries a user name or password"),
        ("https://download-accl.zoho.com:8443/x.zip", "uses port 8443"),
        ("https://download-accl.zoho.com\\@evil.test/x.zip", "not a usable URL"),
        ("https://download-accl.zoho.com/x y.zip", "not a usable URL"),
        ("https://dównload.zoho.com/x.zip", "not a usable URL"),
        ("https://download-accl.zoho.com:99999/x.zip", "uses port 99999"),
        ("not a url at all", "not a usable URL"),
        ("https:///x.zip", "not a usable URL"),
        ("/v2/crm/1/x.zip", "not a usable URL"),
        (LINK + "x" * 3000, "not a usable URL"),
    ],
)
def test_other_links_get_no_request_at_all(url: str, fragment: str, spool: Path) -> None:
    crm = Crm(spool=spool)
    (note,) = crm.vendor().results(JOB, done(url))
    assert crm.requests == [] and crm.token_posts == [] and crm.spooled() == []
    assert note.note is not None and fragment in note.note
    assert (
        "so I didn't fetch it (no credentials were sent). Download the result in Zoho CRM."
        in note.note
    )
    assert note.note.endswith("The job reports 1 added · 1 updated · 2 skipped of 4 rows.")


def test_foreign_host_note_text(spool: Path) -> None:
    (note,) = Crm(spool=spool).vendor().results(JOB, done("https://evil.example/x.zip"))
    assert note.filename == "Contacts-contacts.csv" and note.title == "Bulk write result (Contacts)"
    assert note.note == (
        "The result file link points at evil.example, which is not a Zoho download host, so I "
        "didn't fetch it (no credentials were sent). Download the result in Zoho CRM. "
        "The job reports 1 added · 1 updated · 2 skipped of 4 rows."
    )


@pytest.mark.parametrize(
    "url, allowed",
    [
        ("http://127.0.0.1:8765/download/x.zip", True),
        ("http://127.0.0.1:8765/other/path.zip?q=1", True),
        ("http://127.0.0.1:8766/download/x.zip", False),
        ("https://127.0.0.1:8765/download/x.zip", False),
        ("http://localhost:8765/download/x.zip", False),
        ("http://127.0.0.1/download/x.zip", False),
        ("http://user@127.0.0.1:8765/download/x.zip", False),
    ],
)
@pytest.mark.parametrize("which", ["crm", "analytics"])
def test_override_origin_must_match_exactly(
    url: str, allowed: bool, which: str, spool: Path
) -> None:
    urls = {"crm_api_url": API, f"{which}_api_url": "http://127.0.0.1:8765"}
    conn = zoho_connection(**urls, overridden=frozenset({which}))
    crm = Crm(zip_reply(), spool=spool)
    files = crm.vendor(conn).results(JOB, done(url))
    hosts = [r.url.host for r in crm.requests]
    if allowed:
        assert hosts == ["127.0.0.1"] and files[0].path is not None
    else:
        assert hosts == [] and files[0].note is not None and "didn't fetch it" in files[0].note


def test_a_configured_url_is_not_an_override_unless_marked(spool: Path) -> None:
    conn = zoho_connection(crm_api_url="http://127.0.0.1:8765", overridden=frozenset())
    crm = Crm(spool=spool)
    (note,) = crm.vendor(conn).results(JOB, done("http://127.0.0.1:8765/download/x.zip"))
    assert crm.requests == [] and "points at 127.0.0.1" in (note.note or "")


def test_https_default_port_override(spool: Path) -> None:
    conn = zoho_connection(crm_api_url="https://crm-proxy.test", overridden=frozenset({"crm"}))
    crm = Crm(zip_reply(), spool=spool)
    files = crm.vendor(conn).results(JOB, done("https://crm-proxy.test:443/x.zip"))
    assert [r.url.host for r in crm.requests] == ["crm-proxy.test"] and files[0].path


@pytest.mark.parametrize(
    "host, allowed",
    [
        ("download-accl.zoho.com", True),
        ("download.zoho.eu", True),
        ("x.zohoapis.com.au", True),
        ("a.b.zoho.in", True),
        ("download.zohocloud.ca", True),
        ("www.zohoapis.sa", True),
        ("download.zoho.ca", False),  # ca uses zohocloud.ca
        ("zoho.com", False),
        ("notzoho.com", False),
        ("zoho.com.evil.example", False),
        ("download-accl.zoho.com.evil.test", False),
        ("zohoapis.com.au.evil.test", False),
        ("download.zoho.co", False),
    ],
)
def test_is_zoho_host(host: str, allowed: bool) -> None:
    assert zcr.is_zoho_host(host) is allowed


# --- download replies -----------------------------------------------------------------------


def test_redirect_is_not_followed(spool: Path) -> None:
    crm = Crm(httpx.Response(302, headers={"Location": "https://evil.test/steal"}), spool=spool)
    (note,) = crm.vendor().results(JOB, done())
    assert [r.url.host for r in crm.requests] == ["download-accl.zoho.com"]
    assert note.note is not None
    assert note.note.startswith("The result file link redirected to evil.test: not followed.")
    assert crm.spooled() == []


def test_redirect_to_a_zoho_host_is_not_followed_either(spool: Path) -> None:
    crm = Crm(
        httpx.Response(307, headers={"Location": "https://download.zoho.eu/x.zip"}), spool=spool
    )
    (note,) = crm.vendor().results(JOB, done())
    assert len(crm.requests) == 1 and "redirected to download.zoho.eu: not followed" in (
        note.note or ""
    )


@pytest.mark.parametrize(
    "reply, fragment",
    [
        (
            httpx.Response(403, headers={"x-info": "Link not valid"}),
            "no longer available (Link not valid)",
        ),
        (httpx.Response(403), "no longer available (HTTP 403)"),
        (httpx.Response(404), "no longer available (HTTP 404)"),
        (httpx.Response(410), "no longer available (HTTP 410)"),
        (httpx.Response(400, text="bad"), "Zoho answered HTTP 400 to the result download"),
    ],
)
def test_unavailable_result_is_a_note(reply: httpx.Response, fragment: str, spool: Path) -> None:
    crm = Crm(reply, spool=spool)
    (note,) = crm.vendor().results(JOB, done())
    assert (
        note.note is not None
        and fragment in note.note
        and "Download the result in Zoho CRM" in note.note
    )
    assert crm.spooled() == []


def test_download_401_refreshes_once(spool: Path) -> None:
    crm = Crm(httpx.Response(401), zip_reply(), spool=spool)
    files = crm.vendor().results(JOB, done())
    assert [r.headers["authorization"] for r in crm.requests] == [
        "Zoho-oauthtoken test-access-token-1",
        "Zoho-oauthtoken test-access-token-2",
    ]
    assert files[0].path is not None
    crm = Crm(httpx.Response(401), httpx.Response(401), spool=spool)
    (note,) = crm.vendor().results(JOB, done())
    assert "Zoho refused the result download (HTTP 401) even with a fresh token" in (
        note.note or ""
    )


class _Broken(httpx.SyncByteStream):
    """A body that fails after its first chunk."""

    def __iter__(self) -> Iterator[bytes]:
        yield b"PK\x03\x04" + b"\0" * 100
        raise httpx.ReadError("connection reset")


@pytest.mark.parametrize(
    "reply, kind, fragment",
    [
        (httpx.Response(500), TransientError, "HTTP 500"),
        (httpx.Response(503, text="<html>down</html>"), TransientError, "HTTP 503"),
        (httpx.Response(408), TransientError, "HTTP 408"),
        (httpx.ReadTimeout("slow"), TransientError, "in time"),
        (httpx.ConnectError("refused"), TransientError, "could not download"),
        (httpx.Response(200, stream=_Broken()), TransientError, "ReadError"),
        (httpx.Response(429, headers={"Retry-After": "30"}), RateLimitedError, "HTTP 429"),
    ],
    ids=["500", "503", "408", "timeout", "connect", "broken-stream", "429"],
)
def test_download_transient_failures_leave_nothing(
    reply: Reply, kind: type, fragment: str, spool: Path
) -> None:
    crm = Crm(reply, spool=spool)
    with pytest.raises(kind) as err:
        crm.vendor().results(JOB, done())
    assert fragment in err.value.message
    assert crm.spooled() == []
    if isinstance(err.value, RateLimitedError):
        assert err.value.retry_after == 30


def test_content_length_over_the_cap(spool: Path) -> None:
    body = zip_of(SAMPLE)
    crm = Crm(httpx.Response(200, content=body), spool=spool, cap=len(body) - 1)
    (note,) = crm.vendor().results(JOB, done())
    assert note.note is not None
    assert note.note.startswith(
        f"The result file is {len(body)} bytes, over the {len(body) - 1} bytes limit."
    )
    assert crm.spooled() == []


def test_streamed_body_over_the_cap(spool: Path) -> None:
    class Endless(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            while True:
                yield b"x" * 4096

    crm = Crm(httpx.Response(200, stream=Endless()), spool=spool, cap=10_000)
    (note,) = crm.vendor().results(JOB, done())
    assert (note.note or "").startswith("The result file is over the 9.8 KB limit.")
    assert crm.spooled() == []


# --- result file ----------------------------------------------------------------------------


def test_result_csv_and_summary(spool: Path) -> None:
    crm = Crm(zip_reply(), spool=spool)
    vendor = crm.vendor()
    snap = done(LINK, SKIPS)
    upload, note = vendor.results(JOB, snap)
    assert (upload.filename, upload.title) == (
        "Contacts-contacts.csv",
        "Bulk write result (Contacts)",
    )
    assert upload.comment == "4 rows: 1 added, 1 updated, 2 skipped"
    assert upload.path is not None and Path(upload.path).parent == spool
    assert Path(upload.path).read_bytes() == SAMPLE.encode()  # verbatim
    assert crm.spooled() == [Path(upload.path).name]  # the zip is gone
    assert note.note == (
        "Result: 1 added · 1 updated · 2 skipped. Top errors: MANDATORY_NOT_FOUND ×1 (a required "
        "field was empty: Last_Name), DUPLICATE_DATA ×1 (a unique field's value is already "
        "taken: Email)."
    )


def test_no_results_without_files(spool: Path) -> None:
    crm = Crm(spool=spool)
    assert crm.vendor().results(JOB, zc.snapshot_from(doc("COMPLETED", SKIPS), JOB)) == []
    assert crm.requests == []


def test_archive_problems_become_notes(spool: Path) -> None:
    crm = Crm(
        httpx.Response(200, content=b"<html>login</html>"),
        zip_reply(name="../Contacts-bulkwrite.csv"),
        zip_reply(name="readme.txt"),
        spool=spool,
    )
    vendor = crm.vendor()
    notes = [vendor.results(JOB, done())[0].note or "" for _ in range(3)]
    assert notes[0].startswith("I didn't open the result file: it is not a zip archive")
    assert notes[1].startswith(
        "I didn't open the result file: it has an unsafe entry name `../Contacts-bulkwrite.csv`."
    )
    assert notes[2].startswith(
        "I didn't open the result file: it holds no CSV file (1 other file)."
    )
    assert all("Download the result in Zoho CRM. The job reports" in n for n in notes)
    assert crm.spooled() == []


def test_unreadable_csv_is_still_posted(spool: Path) -> None:
    crm = Crm(zip_reply(csv_text("a,b", header="x,y")), spool=spool)
    upload, note = crm.vendor().results(JOB, done())
    assert upload.path is not None and upload.comment == ""
    assert (
        note.note == "I couldn't read the rows of the result file (it has no STATUS column), "
        "so there is no summary."
    )


def big_csv(ok_rows: int, failed: list[str]) -> str:
    rows = [
        f"First{i},Last{i},p{i}@example.test,{6120045000002000000 + i},added,"
        for i in range(ok_rows)
    ]
    return csv_text(*rows, *failed)


def test_over_the_cap_posts_only_the_failed_rows(spool: Path) -> None:
    failed = [
        '=HYPERLINK("https://evil.test"),,x@example.test,,skipped,MANDATORY_NOT_FOUND-Last_Name',
        "+1,-2,@x,,unprocessed,",
        "\tTab,Name,t@example.test,,skipped,INVALID_DATA-Email",
    ]
    text = big_csv(3000, failed)
    crm = Crm(zip_reply(text), spool=spool, cap=60_000)
    assert len(text) > 60_000 > len(zip_of(text))
    upload, note = crm.vendor().results(JOB, done(LINK, SKIPS))
    assert upload.filename == "Contacts-contacts-failed-rows.csv"
    assert upload.title == "Bulk write result (Contacts): failed rows"
    assert upload.comment == "3 failed rows of 3,003"
    assert upload.path is not None and crm.spooled() == [Path(upload.path).name]
    assert Path(upload.path).read_bytes().decode() == (
        "First_Name,Last_Name,Email,ID,STATUS,ERRORS\r\n"
        '"\'=HYPERLINK(""https://evil.test"")",,x@example.test,,skipped,MANDATORY_NOT_FOUND-Last_Name\r\n'
        "'+1,'-2,'@x,,unprocessed,\r\n"
        "'\tTab,Name,t@example.test,,skipped,INVALID_DATA-Email\r\n"
    )
    assert note.note is not None
    assert note.note.startswith("Result: 3,000 added · 2 skipped · 1 unprocessed. Top errors: ")
    assert note.note.endswith(
        f"The result CSV is {zcr.size_text(len(text))}, over the 58.6 KB limit for Slack, "
        "so only its 3 failed rows are attached."
    )


def test_over_the_cap_with_too_many_failed_rows_is_a_note(spool: Path) -> None:
    failed = [
        f"F{i},,f{i}@example.test,,skipped,MANDATORY_NOT_FOUND-Last_Name" for i in range(3000)
    ]
    crm = Crm(zip_reply(big_csv(10, failed)), spool=spool, cap=50_000)
    (note,) = crm.vendor().results(JOB, done())
    assert note.note is not None and note.note.startswith("Result: 10 added · 3,000 skipped.")
    assert "over the 48.8 KB limit for Slack. Download the result in Zoho CRM." in note.note
    assert crm.spooled() == []


def test_over_the_cap_without_failed_rows_is_a_note(spool: Path) -> None:
    crm = Crm(zip_reply(big_csv(3000, [])), spool=spool, cap=60_000)
    (note,) = crm.vendor().results(JOB, done())
    assert (note.note or "").startswith("Result: 3,000 added. The result CSV is")
    assert crm.spooled() == []


def test_over_the_cap_and_unreadable_is_a_note(spool: Path) -> None:
    text = "x,y\r\n" + "a,b\r\n" * 20_000
    crm = Crm(zip_reply(text), spool=spool, cap=60_000)
    (note,) = crm.vendor().results(JOB, done())
    assert "I couldn't read the rows of the result file (it has no STATUS column)" in (
        note.note or ""
    )
    assert crm.spooled() == []


def test_unpacked_past_the_extraction_limit_is_a_note(spool: Path) -> None:
    text = big_csv(20_000, [])
    crm = Crm(zip_reply(text), spool=spool, cap=len(text) // zcr.EXTRACT_FACTOR - 1000)
    (note,) = crm.vendor().results(JOB, done())
    assert (note.note or "").startswith("I didn't open the result file: it would unpack to")
    assert crm.spooled() == []


def test_a_failure_after_the_first_file_cleans_up(
    spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm = Crm(zip_reply(), httpx.Response(500), spool=spool)
    snap = done()
    two = JobSnapshot(snap.state, snap.raw_status, facts=snap.facts, files=snap.files * 2)
    with pytest.raises(TransientError):
        crm.vendor().results(JOB, two)
    assert crm.spooled() == []


def test_a_crash_while_reading_cleans_up(spool: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(zcr, "read_result_csv", boom)
    crm = Crm(zip_reply(), spool=spool)
    with pytest.raises(OSError):
        crm.vendor().results(JOB, done())
    assert crm.spooled() == []


# --- the result CSV itself ------------------------------------------------------------------


def summary_of(tmp_path: Path, text: str) -> zcr.ResultSummary:
    path = tmp_path / "r.csv"
    path.write_bytes(text.encode("utf-8"))
    return zcr.read_result_csv(str(path))


@pytest.mark.parametrize(
    "header",
    [
        "First_Name,Last_Name,Email,ID,STATUS,ERRORS",
        "First_Name,Last_Name,Email,RECORD_ID,STATUS,ERRORS",
        "first_name,last_name,email,record_id,status,errors",
        "\ufeffFirst_Name,Last_Name,Email,Id,Status,Errors",
        " First_Name , Last_Name , Email , ID , STATUS , ERRORS ",
    ],
    ids=["ID", "RECORD_ID", "lowercase", "bom-mixed-case", "padded"],
)
def test_headers_in_any_case_and_either_id_column(header: str, tmp_path: Path) -> None:
    summary = summary_of(tmp_path, SAMPLE.replace(SAMPLE.split("\r\n")[0], header))
    assert summary.rows == 4
    assert dict(summary.statuses) == {"added": 1, "updated": 1, "skipped": 2}
    assert dict(summary.errors) == {"MANDATORY_NOT_FOUND": 1, "DUPLICATE_DATA": 1}


def test_statuses_include_unprocessed_and_odd_values(tmp_path: Path) -> None:
    text = csv_text(
        "a,b,c,1,ADDED,",
        "a,b,c,,Unprocessed,",
        "a,b,c,,unprocessed,",
        "a,b,c,,Weird,",
        "a,b,c,,,",
        ",,,,,",
    )
    summary = summary_of(tmp_path, text)
    assert summary.rows == 5  # the blank line is not a row
    assert dict(summary.statuses) == {"added": 1, "unprocessed": 2, "Weird": 1, "(blank)": 1}
    assert summary.failed_rows == 4
    assert summary.note() == "Result: 1 added · 2 unprocessed · 1 Weird · 1 (blank)."
    assert (
        summary.comment()
        == "5 rows: 1 added, 0 updated, 0 skipped, 2 unprocessed, 1 Weird, 1 (blank)"
    )


def test_no_rows(tmp_path: Path) -> None:
    assert summary_of(tmp_path, "").note() == "Result: no rows."
    assert summary_of(tmp_path, csv_text()).comment() == "0 rows: 0 added, 0 updated, 0 skipped"


@pytest.mark.parametrize(
    "cell, parsed",
    [
        ("", []),
        ("MANDATORY_NOT_FOUND-Company", [("MANDATORY_NOT_FOUND", ["Company"])]),
        (
            "MANDATORY_NOT_FOUND-Company,Last_Name",
            [("MANDATORY_NOT_FOUND", ["Company", "Last_Name"])],
        ),
        (
            "MANDATORY_NOT_FOUND-Company,Last_Name:DUPLICATE_DATA-Email",
            [("MANDATORY_NOT_FOUND", ["Company", "Last_Name"]), ("DUPLICATE_DATA", ["Email"])],
        ),
        ("INVALID_DATA-Close-Date", [("INVALID_DATA", ["Close-Date"])]),  # split on the first `-`
        ("invalid_data-Amount", [("INVALID_DATA", ["Amount"])]),
        ("LIMIT_EXCEEDED", [("LIMIT_EXCEEDED", [])]),
        ("NEW_CODE", [("NEW_CODE", [])]),
        ("NEW_CODE-Field", [("NEW_CODE", ["Field"])]),
        ("Something", [("Something", [])]),
        (" CANNOT_PROCESS - Owner , Tag : ", [("CANNOT_PROCESS", ["Owner", "Tag"])]),
        ("Something went wrong", [("Something went wrong", [])]),
        ("Error: value too long", [("Error: value too long", [])]),
        ("DUPLICATE_DATA-Email:oops", [("DUPLICATE_DATA-Email:oops", [])]),
        ("x" * 100, [("x" * 60 + "…", [])]),
    ],
    ids=[
        "empty",
        "single",
        "multi-column",
        "multi-error",
        "dash-in-column",
        "lowercase-code",
        "code-only",
        "unknown-code-only",
        "unknown-code",
        "word-only",
        "spaces",
        "unparseable",
        "colon-text",
        "half-parseable",
        "clipped",
    ],
)
def test_parse_errors(cell: str, parsed: list[tuple[str, list[str]]]) -> None:
    assert zcr.parse_errors(cell) == parsed


def test_all_eight_codes_are_described(tmp_path: Path) -> None:
    assert set(zcr.ROW_ERROR_CODES) == {
        "MANDATORY_NOT_FOUND",
        "INVALID_DATA",
        "DUPLICATE_DATA",
        "NOT_APPROVED",
        "BLOCKED_RECORD",
        "CANNOT_PROCESS",
        "LIMIT_EXCEEDED",
        "RESOURCE_NOT_FOUND",
    }
    assert all(meaning and "\n" not in meaning for meaning in zcr.ROW_ERROR_CODES.values())
    rows = [f"a,b,c,,skipped,{code}-Col{i}" for i, code in enumerate(zcr.ROW_ERROR_CODES)]
    summary = summary_of(tmp_path, csv_text(*rows, "a,b,c,,skipped,MANDATORY_NOT_FOUND-Other"))
    assert summary.errors["MANDATORY_NOT_FOUND"] == 2 and len(summary.errors) == 8
    assert summary.note() == (
        "Result: 9 skipped. Top errors: MANDATORY_NOT_FOUND ×2 (a required field was empty: "
        "Col0, Other), INVALID_DATA ×1 (a value had the wrong type or format: Col1), "
        "DUPLICATE_DATA ×1 (a unique field's value is already taken: Col2), NOT_APPROVED ×1 "
        "(the record is waiting for approval: Col3), BLOCKED_RECORD ×1 (the record is locked: "
        "Col4), and 3 more."
    )


def test_unknown_and_raw_errors_in_the_note(tmp_path: Path) -> None:
    text = csv_text(
        "a,b,c,,skipped,NEW_CODE-Field",
        'a,b,c,,skipped,"Error: value, too long"',
        "a,b,c,,skipped,NEW_CODE",
    )
    assert summary_of(tmp_path, text).note() == (
        "Result: 3 skipped. Top errors: NEW_CODE ×2 (Field), “Error: value, too long” ×1."
    )


def test_errors_on_added_rows_make_them_failed_rows(tmp_path: Path) -> None:
    summary = summary_of(tmp_path, csv_text("a,b,c,1,added,NOT_APPROVED-Stage"))
    assert summary.failed_rows == 1 and summary.errors["NOT_APPROVED"] == 1


# --- secrets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "replies",
    [
        [
            error("INVALID_TOKEN", "invalid test-access-token-1"),
            error("INVALID_TOKEN", "test-access-token-2", 401),
        ],
        [
            error(
                "NO_PERMISSION", f"echo {ZOHO_CLIENT_SECRET} {ZOHO_REFRESH_TOKEN} {ZOHO_CLIENT_ID}"
            )
        ],
        [error("TOO_MANY_REQUESTS", "test-access-token-1", 429)],
        [error("RESOURCE_NOT_FOUND", "test-access-token-1")],
        [error("INTERNAL_ERROR", f"{ZOHO_CLIENT_SECRET}", 500)],
        [httpx.Response(200, text="<html>test-access-token-1</html>")],
        [httpx.Response(403, json={"message": "test-access-token-1"})],
        [httpx.ConnectError("test-access-token-1")],
        [ok(doc("WEIRD"))],
    ],
    ids=[
        "auth",
        "rejected",
        "429",
        "not-found",
        "internal",
        "html",
        "403",
        "connect",
        "unknown-status",
    ],
)
def test_no_secret_in_errors_or_logs(
    replies: list[Reply],
    caplog: pytest.LogCaptureFixture,
    spool: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    vendor = Crm(*replies, spool=spool).vendor()
    shown = repr(vendor)
    try:
        shown += vendor.fetch(JOB).to_json()
    except VendorError as exc:
        shown += f"{exc.message} {exc} {exc!r} {getattr(exc, 'hint', '')}"
    shown += caplog.text
    for secret in SECRETS:
        assert secret not in shown


def test_no_secret_in_result_notes_or_logs(caplog: pytest.LogCaptureFixture, spool: Path) -> None:
    caplog.set_level(logging.DEBUG)
    crm = Crm(
        httpx.Response(302, headers={"Location": "https://evil.test/"}), zip_reply(), spool=spool
    )
    vendor = crm.vendor()
    text = " ".join(
        f.note or f.comment
        for url in ("https://evil.test/x.zip", LINK, LINK)
        for f in vendor.results(JOB, done(url))
    )
    for secret in SECRETS:
        assert secret not in text and secret not in caplog.text
