"""Zoho Analytics import jobs: ref parsing, state mapping, error mapping, result CSV
(docs/vendors.md#zoho-analytics-import-jobs)."""

from __future__ import annotations

import logging
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from bot.vendors import lookup
from bot.vendors import zoho_analytics as za
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
from bot.vendors.zoho_analytics import SPEC, ZohoAnalytics, parse_ref
from bot.vendors.zoho_auth import ZohoConnection
from tests.fakes import FakeClock, Reply, ScriptedTransport, zoho_accounts, zoho_connection

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"
REFRESH_TOKEN = "test-refresh-token"
ORG = "55522777"
WS = "2480011000000498001"
JOB = "2480011000000512007"
REF = f"{WS}/{JOB}"
API = "https://analytics.zoho.test"
JOB_URL = f"{API}/restapi/v2/bulk/workspaces/{WS}/importjobs/{JOB}"
NOW = 1_700_000_000.0


def make_conn(org: str = ORG) -> ZohoConnection:
    return zoho_connection(analytics_org_id=org, analytics_api_url=API)


class Zoho:
    """Mock Accounts + Analytics: token POSTs mint `test-access-token-<n>`; GETs play `replies`."""

    def __init__(self, *replies: Reply) -> None:
        transport = ScriptedTransport(*replies, token_requests=zoho_accounts)
        self.replies, self.gets = transport.replies, transport.requests
        self.token_posts = transport.token_posts
        self.clock = FakeClock(NOW)
        self.ctx = VendorContext(http=build_http_client(transport), clock=self.clock)

    def vendor(self, org: str = ORG) -> ZohoAnalytics:
        return ZohoAnalytics(make_conn(org), self.ctx)


def ok(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        200, json={"status": "success", "summary": "Fetch import job info", "data": data}
    )


def job(code: object, status: str = "JOB COMPLETED", **extra: Any) -> httpx.Response:
    return ok({"jobId": JOB, "jobCode": code, "jobStatus": status, **extra})


def info(
    total: object = 1200, success: object = 1200, warnings: object = 0, errors: object = ""
) -> dict[str, Any]:
    return {
        "viewId": "2480011000000498003",
        "importSummary": {
            "importType": "APPEND",
            "totalColumnCount": 2,
            "selectedColumnCount": 2,
            "totalRowCount": total,
            "successRowCount": success,
            "warnings": warnings,
            "importOperation": "created",
        },
        "columnDetails": {"Order Id": "Plain Text", "Amount": "Currency"},
        "importErrors": errors,
    }


def failure(code: object, message: str = "Zoho says no", status: int = 400) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "status": "failure",
            "summary": "SOME_SYMBOL",
            "data": {"errorCode": code, "errorMessage": message},
        },
    )


def fetch(*replies: Reply) -> JobSnapshot:
    return Zoho(*replies).vendor().fetch(REF)


# --- parse_ref ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (REF, REF),
        (f"  {REF}\n", REF),
        ("1/2", "1/2"),
        ("1" * 20 + "/" + "2" * 20, "1" * 20 + "/" + "2" * 20),
    ],
)
def test_parse_ref_accepts(text: str, expected: str) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        JOB,
        f"{WS}/../{JOB}",
        f"../{JOB}",
        f"{WS}/..",
        "abc/12",
        f"{WS}/{JOB}x",
        "1" * 21 + "/2",
        f"{WS}/{JOB}/",
        f"/{JOB}",
        f"{WS}/",
        f"{WS} / {JOB}",
        f"{WS}\\{JOB}",
        "١٢/٣٤",  # Arabic-Indic digits match \d but are not Zoho ids
        "-1/2",
        f"{WS}/{JOB}?x=1",
        f"https://analytics.zoho.test/{WS}/{JOB}",
    ],
)
def test_parse_ref_rejects(text: str) -> None:
    with pytest.raises(RefError):
        parse_ref(text)


def test_parse_ref_messages_are_specific() -> None:
    with pytest.raises(RefError) as err:
        parse_ref("abc/12")
    assert str(err.value) == (
        "`abc/12` is not a Zoho Analytics import job: expected <workspace-id>/<job-id>, "
        f"both digits (e.g. {SPEC.example_ref})"
    )
    with pytest.raises(RefError, match="missing `/`"):
        parse_ref(JOB)
    with pytest.raises(RefError, match="at most 20 digits"):
        parse_ref("1" * 21 + "/2")
    with pytest.raises(RefError, match="exactly one `/`"):
        parse_ref("1/2/3")


def test_bad_ref_never_reaches_the_network() -> None:
    zoho = Zoho()
    with pytest.raises(RefError):
        zoho.vendor().fetch("../../etc/passwd")
    assert zoho.gets == [] and zoho.token_posts == []


def test_spec_is_registered() -> None:
    assert lookup("za") is SPEC and lookup("Zoho-Analytics") is SPEC
    assert lookup("zohoanalytics") is SPEC and lookup("zoho_analytics") is SPEC
    assert SPEC.parse_ref(SPEC.example_ref) == SPEC.example_ref
    assert isinstance(SPEC.build(make_conn(), Zoho().ctx), ZohoAnalytics)


# --- request shape --------------------------------------------------------------------------


def test_poll_sends_token_and_org_headers() -> None:
    zoho = Zoho(job("1002", "JOB IN PROGRESS"))
    zoho.vendor().fetch(REF)

    (request,) = zoho.gets
    assert request.method == "GET"
    assert str(request.url) == JOB_URL
    assert request.headers["authorization"] == "Zoho-oauthtoken test-access-token-1"
    assert request.headers["zanalytics-orgid"] == ORG
    (token_post,) = zoho.token_posts
    assert "authorization" not in token_post.headers
    assert token_post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert token_post.url.query == b""


def test_two_vendors_on_one_context_share_one_token() -> None:
    zoho = Zoho(*(job("1002", "JOB IN PROGRESS") for _ in range(4)))
    first, second = zoho.vendor(), zoho.vendor()
    for vendor in (first, second, first, second):
        vendor.fetch(REF)
    assert len(zoho.token_posts) == 1
    tokens = {r.headers["authorization"] for r in zoho.gets}
    assert tokens == {"Zoho-oauthtoken test-access-token-1"}


# --- job states -----------------------------------------------------------------------------


@pytest.mark.parametrize("as_int", [False, True], ids=["str", "int"])
@pytest.mark.parametrize(
    "code, status, state",
    [
        ("1001", "JOB NOT INITIATED", State.QUEUED),
        ("1002", "JOB IN PROGRESS", State.RUNNING),
        ("1003", "ERROR OCCURRED", State.FAILED),
        ("1004", "JOB COMPLETED", State.SUCCEEDED),
    ],
)
def test_job_codes(code: str, status: str, state: State, as_int: bool) -> None:
    extra = {"jobInfo": info()} if code == "1004" else {}
    snap = fetch(job(int(code) if as_int else code, status, **extra))
    assert snap.state is state
    assert snap.raw_status == f"{code} {status}"


@pytest.mark.parametrize("code", ["1005", 1005])
def test_job_not_found_in_a_success_envelope(code: object) -> None:
    with pytest.raises(JobNotFoundError) as err:
        fetch(job(code, "JOB NOT FOUND"))
    assert err.value.code == "1005"
    assert "ZOHO_ANALYTICS_ORG_ID" in err.value.hint and "1 hour" in err.value.hint


def test_completed_example_from_the_docs() -> None:
    snap = fetch(
        job("1004", jobInfo=info(success=1187, errors="(vendor text)"), expiryTime="1767225600000")
    )
    assert snap == JobSnapshot(
        state=State.PARTIAL,
        raw_status="1004 JOB COMPLETED",
        progress=(("Rows", "1,187 of 1,200 imported"), ("Import", "APPEND · created")),
        facts=(
            ("importType", "APPEND"),
            ("totalColumnCount", "2"),
            ("selectedColumnCount", "2"),
            ("totalRowCount", "1200"),
            ("successRowCount", "1187"),
            ("warnings", "0"),
            ("importOperation", "created"),
            ("viewId", "2480011000000498003"),
        ),
        error_code=None,
        error_message="(vendor text)",
        expires_at=1767225600.0,
        done=1187,
        total=1200,
    )
    assert JobSnapshot.from_json(snap.to_json()) == snap


# --- counts behind the time-left estimate (docs/vendors.md#analytics-import-fields) -----------


def test_rows_imported_of_the_total_feed_the_estimate() -> None:
    snap = fetch(job("1002", "JOB IN PROGRESS", jobInfo=info(total=1200, success=300)))
    assert (snap.state, snap.done, snap.total) == (State.RUNNING, 300, 1200)


@pytest.mark.parametrize(
    "extra",
    [
        {},  # Zoho's own running sample has no jobInfo
        {"jobInfo": info(total=None, success=300)},
        {"jobInfo": info(total=1200, success=None)},
        {"jobInfo": info(total="many", success=300)},
    ],
    ids=["no-summary", "no-total", "no-success", "odd-total"],
)
def test_without_both_row_counts_there_are_no_counts(extra: dict[str, Any]) -> None:
    snap = fetch(job("1002", "JOB IN PROGRESS", **extra))
    assert (snap.done, snap.total) == (None, None)


@pytest.mark.parametrize(
    "summary, state",
    [
        (info(), State.SUCCEEDED),
        (info(success=1187), State.PARTIAL),
        (info(errors="row 7: bad date"), State.PARTIAL),
        (info(success=0), State.FAILED),
        (info(success=0, errors="every row failed"), State.FAILED),
        (info(total=0, success=0), State.SUCCEEDED),
        (info(warnings=3), State.SUCCEEDED),
        (info(total="1200", success="1187"), State.PARTIAL),
        (info(total="1200", success="1200", warnings="3"), State.SUCCEEDED),
        (info(total=" 0 ", success="0"), State.SUCCEEDED),
        ({}, State.SUCCEEDED),
        ({"importErrors": "something"}, State.PARTIAL),
    ],
    ids=[
        "clean",
        "rows-rejected",
        "import-errors",
        "zero-success",
        "zero-success-with-errors",
        "zero-total",
        "warnings-only",
        "string-counts",
        "string-counts-clean",
        "string-zero-total",
        "no-summary",
        "errors-no-counts",
    ],
)
def test_completed_is_decided_by_counts(summary: dict[str, Any], state: State) -> None:
    assert fetch(job("1004", jobInfo=summary)).state is state


def test_completed_without_job_info_or_expiry() -> None:
    snap = fetch(job(1004))
    assert snap.state is State.SUCCEEDED
    assert snap.progress == snap.facts == ()
    assert snap.expires_at is None and snap.error_message is None


def test_warnings_shown_only_when_positive() -> None:
    snap = fetch(job("1004", jobInfo=info(warnings="3")))
    assert ("Warnings", "3") in snap.progress
    assert all(name != "Warnings" for name, _ in fetch(job("1004", jobInfo=info())).progress)


def test_import_errors_text_is_the_error_message() -> None:
    snap = fetch(job("1004", jobInfo=info(success=1199, errors="Row 12: invalid date")))
    assert snap.error_message == "Row 12: invalid date"
    assert snap.error_code is None


@pytest.mark.parametrize(
    "extra, message",
    [
        ({}, "ERROR OCCURRED"),
        ({"jobInfo": {}}, "ERROR OCCURRED"),
        ({"errorMessage": "The file is not a CSV"}, "The file is not a CSV"),
        (
            {"jobInfo": info(success=0, errors="Column mismatch"), "errorMessage": "other"},
            "Column mismatch",
        ),
        ({"jobInfo": {"importErrors": ["a", "b"]}}, '["a","b"]'),
    ],
    ids=["no-job-info", "empty-job-info", "error-message", "import-errors-first", "list"],
)
def test_error_occurred(extra: dict[str, Any], message: str) -> None:
    snap = fetch(job("1003", "ERROR OCCURRED", **extra))
    assert snap.state is State.FAILED
    assert snap.error_code == "1003"
    assert snap.error_message == message


def test_error_occurred_without_any_text() -> None:
    snap = fetch(ok({"jobCode": "1003"}))
    assert snap.state is State.FAILED and snap.error_message == "ERROR OCCURRED"


def test_job_code_wins_over_job_status() -> None:
    snap = fetch(job("1002", "JOB COMPLETED", jobInfo=info()))
    assert snap.state is State.RUNNING
    assert snap.raw_status == "1002 JOB COMPLETED"
    assert fetch(job(" 1001 ", "ERROR OCCURRED")).state is State.QUEUED


@pytest.mark.parametrize(
    "status, state",
    [("Job_In-Progress", State.RUNNING), ("job not initiated", State.QUEUED)],
)
def test_status_in_odd_case_when_job_code_is_missing(status: str, state: State) -> None:
    assert fetch(ok({"jobId": JOB, "jobStatus": status})).state is state


def test_reply_without_code_or_status_is_transient() -> None:
    with pytest.raises(TransientError):
        fetch(ok({"jobId": JOB}))
    with pytest.raises(TransientError):
        fetch(httpx.Response(200, json={"status": "success"}))


def test_unknown_job_code_polls_on_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=za.__name__)
    zoho = Zoho(job("1042", "JOB PAUSED"), job(1042, "JOB PAUSED"))
    vendor = zoho.vendor()
    first = vendor.fetch(REF)
    vendor.fetch(REF)
    assert first.state is State.UNKNOWN and not first.state.terminal
    assert first.raw_status == "1042 JOB PAUSED"
    assert [r.getMessage() for r in caplog.records].count(
        "zoho-analytics: unknown import status '1042 JOB PAUSED'; polling on"
    ) == 1


# --- token rejection ------------------------------------------------------------------------


@pytest.mark.parametrize("http_status", [400, 401, 200])
@pytest.mark.parametrize("code", [8535, "8518"])
def test_rejected_token_is_refreshed_and_retried_once(http_status: int, code: object) -> None:
    zoho = Zoho(failure(code, "Invalid Oauthtoken", http_status), job("1002", "JOB IN PROGRESS"))
    assert zoho.vendor().fetch(REF).state is State.RUNNING
    assert len(zoho.token_posts) == 2
    assert [r.headers["authorization"] for r in zoho.gets] == [
        "Zoho-oauthtoken test-access-token-1",
        "Zoho-oauthtoken test-access-token-2",
    ]


@pytest.mark.parametrize("http_status", [400, 401, 200])
def test_second_rejection_is_an_auth_error(http_status: int) -> None:
    zoho = Zoho(failure(8535, "Invalid Oauthtoken", http_status), failure(8535, "x", http_status))
    with pytest.raises(AuthError) as err:
        zoho.vendor().fetch(REF)
    assert "credentials rejected by Zoho Analytics" in err.value.message
    assert "the job may still be running" in err.value.message
    assert "ZOHO_DC" in err.value.message
    assert err.value.code == "8535"
    assert len(zoho.gets) == 2 and len(zoho.token_posts) == 2


def test_bare_401_is_treated_as_a_rejected_token() -> None:
    zoho = Zoho(httpx.Response(401), job("1001", "JOB NOT INITIATED"))
    assert zoho.vendor().fetch(REF).state is State.QUEUED
    assert len(zoho.token_posts) == 2


# --- throttling and transient failures ------------------------------------------------------


@pytest.mark.parametrize("http_status", [200, 400, 429])
def test_6045_is_rate_limited(http_status: int) -> None:
    with pytest.raises(RateLimitedError) as err:
        fetch(failure(6045, "Too many requests", http_status))
    assert err.value.code == "6045" and err.value.retry_after is None


def test_6045_honours_retry_after() -> None:
    reply = failure("6045", "Too many requests", 429)
    reply.headers["Retry-After"] = "45"
    with pytest.raises(RateLimitedError) as err:
        fetch(reply)
    assert err.value.retry_after == 45


@pytest.mark.parametrize(
    "header, expected",
    [("120", 120.0), (formatdate(NOW + 90, usegmt=True), 90.0), (None, None)],
    ids=["seconds", "http-date", "none"],
)
def test_429_without_zoho_body(header: str | None, expected: float | None) -> None:
    headers = {"Retry-After": header} if header else {}
    with pytest.raises(RateLimitedError) as err:
        fetch(httpx.Response(429, text="slow down", headers=headers))
    assert err.value.retry_after == (pytest.approx(expected) if expected else None)


@pytest.mark.parametrize(
    "reply, fragment",
    [
        (httpx.Response(500), "HTTP 500"),
        (httpx.Response(502, text="<html>bad gateway</html>"), "HTTP 502"),
        (httpx.Response(503, json={"message": "maintenance"}), "HTTP 503"),
        (httpx.Response(408), "HTTP 408"),
        # transport failures and unreadable replies in general: test_vendor_http.py
        (httpx.ConnectError("connection refused"), "could not reach Zoho Analytics (ConnectError)"),
        (
            httpx.Response(
                200, text='{"status": "success", "da', headers={"content-type": "application/json"}
            ),
            "Zoho Analytics sent an unreadable reply (HTTP 200, application/json)",
        ),
        (failure(7005, "Internal error", 400), "internal error (7005: Internal error)"),
        (failure(7005, "Internal error", 500), "7005"),
        (
            httpx.Response(200, json={"status": "failure", "summary": "ODD"}),
            "without an error code",
        ),
    ],
    ids=[
        "500",
        "502",
        "503",
        "408",
        "connect-error",
        "truncated-json",
        "7005",
        "7005-on-500",
        "failure-no-code",
    ],
)
def test_transient_failures(reply: Reply, fragment: str) -> None:
    with pytest.raises(TransientError) as err:
        fetch(reply)
    assert not isinstance(err.value, RateLimitedError)
    assert fragment in err.value.message


# --- definitive errors ----------------------------------------------------------------------


@pytest.mark.parametrize("code", ["7103", "7104", "8137", "8138", "1005"])
def test_not_found_codes(code: str) -> None:
    with pytest.raises(JobNotFoundError) as err:
        fetch(failure(int(code), "Workspace not found"))
    assert err.value.code == code
    assert err.value.hint == (
        "check the workspace and job ids, ZOHO_ANALYTICS_ORG_ID and ZOHO_DC; "
        "Zoho keeps import details for 1 hour after completion"
    )


@pytest.mark.parametrize(
    "code, fragment",
    [
        (8083, "ZOHO_ANALYTICS_ORG_ID"),
        (8504, "8504: Zoho says no"),
        (7301, "permission"),
        (7387, "ZOHO_ANALYTICS_ORG_ID"),
        (7232, "7232: Zoho says no"),
        (7111, "7111: Zoho says no"),
        ("8002", "8002: Zoho says no"),
    ],
)
def test_rejected_codes(code: object, fragment: str) -> None:
    with pytest.raises(RequestRejectedError) as err:
        fetch(failure(code))
    assert err.value.code == str(code)
    assert fragment in err.value.message
    assert f"({code}: Zoho says no)" in err.value.message


def test_other_http_errors_without_a_code_are_rejections() -> None:
    with pytest.raises(RequestRejectedError, match="HTTP 403"):
        fetch(httpx.Response(403, json={"status": "failure", "summary": "FORBIDDEN"}))
    with pytest.raises(RequestRejectedError, match="redirect"):
        fetch(httpx.Response(302, headers={"Location": "https://elsewhere.test/"}))


# --- result file ----------------------------------------------------------------------------


def test_results_csv_for_a_partial_import() -> None:
    zoho = Zoho(job("1004", jobInfo=info(success=1187, errors="Row 12: bad date\nRow 40: empty")))
    vendor = zoho.vendor()
    snap = vendor.fetch(REF)
    (result,) = vendor.results(REF, snap)
    assert result.filename == f"import-summary-{JOB}.csv"
    assert result.title == f"Import summary for job {JOB}"
    assert result.comment == "1,187 of 1,200 rows imported"
    assert result.content == (
        b"field,value\r\n"
        b"importType,APPEND\r\n"
        b"totalColumnCount,2\r\n"
        b"selectedColumnCount,2\r\n"
        b"totalRowCount,1200\r\n"
        b"successRowCount,1187\r\n"
        b"warnings,0\r\n"
        b"importOperation,created\r\n"
        b"viewId,2480011000000498003\r\n"
        b'importErrors,"Row 12: bad date\nRow 40: empty"\r\n'
    )


def test_results_csv_neutralizes_formulas() -> None:
    data = {
        "importSummary": {
            "importType": '=HYPERLINK("https://evil.test")',
            "+sum": "+1",
            "warnings": -2,
            "@note": "@SUM(A1)",
            "tab": "\tcmd",
            "cr": "\rcmd",
            "plain": "a=b",
        },
        "importErrors": "=cmd|'/C calc'!A0",
    }
    vendor = Zoho().vendor()
    snap = za.snapshot_from({"jobCode": "1004", "jobStatus": "JOB COMPLETED", "jobInfo": data})
    (result,) = vendor.results(REF, snap)
    assert result.content is not None
    assert result.content.decode() == (
        "field,value\r\n"
        'importType,"\'=HYPERLINK(""https://evil.test"")"\r\n'
        "'+sum,'+1\r\n"
        "warnings,'-2\r\n"
        "'@note,'@SUM(A1)\r\n"
        "tab,'\tcmd\r\n"
        'cr,"\'\rcmd"\r\n'
        "plain,a=b\r\n"
        "importErrors,'=cmd|'/C calc'!A0\r\n"
    )


def test_results_for_a_failed_job_without_summary() -> None:
    vendor = Zoho().vendor()
    snap = za.snapshot_from({"jobCode": "1003", "errorMessage": "The file is not a CSV"})
    (result,) = vendor.results(REF, snap)
    assert result.content == b"field,value\r\nerror,The file is not a CSV\r\n"
    assert result.comment == "import failed: The file is not a CSV"


def test_no_results_for_unfinished_or_empty_jobs() -> None:
    vendor = Zoho().vendor()
    running = za.snapshot_from({"jobCode": "1002", "jobInfo": info()})
    assert vendor.results(REF, running) == []
    bare = za.snapshot_from({"jobCode": "1004", "jobStatus": "JOB COMPLETED"})
    assert bare.state.terminal and vendor.results(REF, bare) == []


# --- check ----------------------------------------------------------------------------------


def orgs(*ids: str) -> httpx.Response:
    body = {"orgs": [{"orgId": i, "orgName": f"Org {i}", "isDefault": False} for i in ids]}
    return httpx.Response(200, json={"status": "success", "summary": "Get orgs", "data": body})


def test_check_finds_the_org() -> None:
    zoho = Zoho(orgs("11111111", ORG))
    assert zoho.vendor().check() == f"Zoho Analytics: 2 organizations visible; org {ORG} found"
    (request,) = zoho.gets
    assert str(request.url) == f"{API}/restapi/v2/orgs"
    assert request.headers["authorization"] == "Zoho-oauthtoken test-access-token-1"
    assert "zanalytics-orgid" not in request.headers


def test_check_says_when_the_org_is_missing() -> None:
    text = Zoho(orgs("11111111")).vendor().check()
    assert text.startswith("Zoho Analytics: 1 organization visible; org 55522777 is NOT among them")
    assert "ZOHO_ANALYTICS_ORG_ID" in text and "11111111" in text


def test_check_maps_errors_the_same_way() -> None:
    with pytest.raises(AuthError):
        Zoho(failure(8535, status=401), failure(8535, status=401)).vendor().check()
    with pytest.raises(RateLimitedError):
        Zoho(failure(6045, status=200)).vendor().check()


# --- secrets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "replies",
    [
        [failure(8535, "Invalid Oauthtoken test-access-token-1"), failure(8535, "x")],
        [failure(8083, f"org header missing; got test-access-token-1 {CLIENT_SECRET}")],
        [failure(7387, f"echo {REFRESH_TOKEN} {CLIENT_ID}")],
        [failure(6045, "test-access-token-1", 429)],
        [httpx.Response(200, text="<html>test-access-token-1</html>")],
        [httpx.Response(403, json={"status": "failure", "summary": "test-access-token-1"})],
        [httpx.ConnectError("test-access-token-1")],
        [job("1099", "JOB PAUSED")],
    ],
    ids=["auth", "8083", "7387", "6045", "html", "403", "connect", "unknown-code"],
)
def test_no_secret_in_errors_or_logs(
    replies: list[Reply], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    zoho = Zoho(*replies)
    vendor = zoho.vendor()
    shown = repr(vendor)
    try:
        snap = vendor.fetch(REF)
        shown += snap.to_json()
    except VendorError as exc:
        shown += f"{exc.message} {exc} {exc!r}"
    shown += caplog.text
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, CLIENT_ID, "test-access-token-"):
        assert secret not in shown
