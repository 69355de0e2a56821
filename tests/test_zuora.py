"""Zuora AQuA: ref parsing, OAuth, state mapping, error mapping, result files
(docs/vendors.md#zuora-aqua)."""

from __future__ import annotations

import gzip
import io
import logging
import os
import threading
import zipfile
from collections.abc import Callable, Iterator
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from bot.vendors import zuora as zu
from bot.vendors import zuora_files as zf
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
from bot.vendors.zuora import (
    API_SANDBOX_HOSTS,
    ERROR_CODES,
    SPEC,
    ZUORA_ENVS,
    ZuoraAqua,
    ZuoraConnection,
    parse_ref,
)
from tests.fakes import FakeClock, Reply, ScriptedTransport

CLIENT_ID = "zuora-test-client-id"
CLIENT_SECRET = "zuora-test-client-secret-0123456789"
BASE = "https://rest.zuora.test"
HOST = "rest.zuora.test"
JOB = "5f0c2a9e41d7b3c8e6a1f4d290b7c3e1"
F1 = "5f0c2a9e41d7b3c8e6a1f4d290b7c3f0"
F2 = "5f0c2a9e41d7b3c8e6a1f4d290b7c3f1"
JOB_URL = f"{BASE}/v1/batch-query/jobs/{JOB}"
NOW = 1_700_000_000.0
MB = 1024 * 1024


def make_conn(base_url: str = BASE, **overrides: Any) -> ZuoraConnection:
    values: dict[str, Any] = {
        "name": "default",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": base_url,
    }
    return ZuoraConnection(**(values | overrides))


def zuora_token(n: int) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": f"test-token-{n}", "expires_in": 3600, "token_type": "bearer"}
    )


class Zuora:
    """Mock Zuora: `/oauth/token` plays `tokens` (default: mint `test-token-<n>`, 1 h);
    every other request plays `replies` in order."""

    def __init__(
        self,
        *replies: Reply,
        tokens: list[Reply] | None = None,
        spool: str | None = None,
        max_bytes: int = 50 * MB,
    ) -> None:
        transport = ScriptedTransport(
            *replies,
            token_requests=lambda request: request.url.path == "/oauth/token",
            tokens=tokens or (),
            mint=zuora_token,
        )
        self.replies, self.calls = transport.replies, transport.requests
        self.tokens, self.token_posts = transport.tokens, transport.token_posts
        self.clock = FakeClock(NOW)
        self.http = build_http_client(transport)
        extra = {"spool_dir": spool} if spool else {}
        self.ctx = VendorContext(
            http=self.http, clock=self.clock, max_file_bytes=max_bytes, **extra
        )

    def vendor(self, base_url: str = BASE, **overrides: Any) -> ZuoraAqua:
        return ZuoraAqua(make_conn(base_url, **overrides), self.ctx)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.calls]

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def zuora_factory() -> Iterator[Callable[..., Zuora]]:
    made: list[Zuora] = []

    def make(*replies: Reply, **kw: Any) -> Zuora:
        made.append(Zuora(*replies, **kw))
        return made[-1]

    yield make
    for z in made:
        z.close()


def job(status: object = "completed", batches: list[Any] | None = None, **extra: Any) -> dict:
    body = {"id": JOB, "status": status, "format": "CSV", "encrypted": "none", "version": "1.1"}
    return body | {"batches": batches or []} | extra


def batch(name: str, status: str = "completed", records: object = 0, **extra: Any) -> dict:
    return {"name": name, "status": status, "recordCount": records, **extra}


def ok(body: dict) -> httpx.Response:
    return httpx.Response(200, json=body)


def fetch(*replies: Reply) -> JobSnapshot:
    z = Zuora(*replies)
    try:
        return z.vendor().fetch(JOB)
    finally:
        z.close()


# --- spec, refs, environments ---------------------------------------------------------------


def test_spec() -> None:
    assert SPEC.key == "zuora" and SPEC.aliases == ("aqua", "zuora-aqua")
    assert SPEC.family == "zuora" and SPEC.rate_per_minute == 600
    assert SPEC.schedule == ((0, 10), (120, 30), (1800, 60))
    assert SPEC.floor == 10
    assert SPEC.parse_ref(SPEC.example_ref) == SPEC.example_ref
    z = Zuora()
    assert isinstance(SPEC.build(make_conn(), z.ctx), ZuoraAqua)
    z.close()


@pytest.mark.parametrize(
    "text, expected",
    [
        (JOB, JOB),
        (f"  {JOB.upper()}\n", JOB),
        ("0" * 32, "0" * 32),
        ("aBcDeF" + "1" * 26, "abcdef" + "1" * 26),
    ],
)
def test_parse_ref_accepts(text: str, expected: str) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        JOB[:31],
        JOB + "a",
        "g" * 32,
        f"../{JOB[:29]}",
        f"{JOB[:16]}/../{JOB[:12]}",
        f"{JOB[:31]}/",
        f"{JOB[:16]} {JOB[16:]}",
        f"https://rest.zuora.com/v1/batch-query/jobs/{JOB}",
        "٣" * 32,  # Arabic-Indic digits are not hex
        "2c92c0f9-6abc-17de-016a-bd62bd0c4b2a",
    ],
)
def test_parse_ref_rejects(text: str) -> None:
    with pytest.raises(RefError):
        parse_ref(text)


def test_parse_ref_messages_are_specific() -> None:
    with pytest.raises(RefError) as err:
        parse_ref(JOB[:31])
    assert str(err.value) == (
        f"`{JOB[:31]}` is not a Zuora AQuA job id: expected 32 hex characters, got 31 characters "
        f"(e.g. {SPEC.example_ref})"
    )
    with pytest.raises(RefError, match="only 0-9 and a-f allowed"):
        parse_ref("g" * 32)
    with pytest.raises(RefError, match="got nothing"):
        parse_ref(" ")
    with pytest.raises(RefError) as err:
        parse_ref("`rm -rf`" + "x" * 100)
    assert "`'rm -rf'" in str(err.value) and "…" in str(err.value)
    assert len(str(err.value)) < 200


def test_bad_ref_never_reaches_the_network(zuora_factory: Callable[..., Zuora]) -> None:
    z = zuora_factory()
    with pytest.raises(RefError):
        z.vendor().fetch("../../etc/passwd")
    assert z.calls == [] and z.token_posts == []


def test_every_zuora_env_is_an_https_zuora_host() -> None:
    assert len(ZUORA_ENVS) == 11
    for key, url in ZUORA_ENVS.items():
        assert url.startswith("https://") and url.endswith("zuora.com"), key
    hosts = {httpx.URL(u).host for u in ZUORA_ENVS.values()}
    assert API_SANDBOX_HOSTS <= hosts


@pytest.mark.parametrize("env", sorted(ZUORA_ENVS))
def test_each_env_key_resolves_and_polls_there(
    env: str, zuora_factory: Callable[..., Zuora]
) -> None:
    url = ZUORA_ENVS[env]
    z = zuora_factory(ok(job("executing")))
    vendor = z.vendor(url, env=env)
    assert vendor.fetch(JOB).state is State.RUNNING
    assert str(z.calls[0].url) == f"{url}/v1/batch-query/jobs/{JOB}"
    assert str(z.token_posts[0].url) == f"{url}/oauth/token"
    sandbox = httpx.URL(url).host in API_SANDBOX_HOSTS
    assert vendor.min_interval == (30.0 if sandbox else None)


def test_api_sandbox_min_interval_and_check(zuora_factory: Callable[..., Zuora]) -> None:
    z = zuora_factory()
    sandbox = z.vendor(ZUORA_ENVS["us-sandbox"], env="us-sandbox")
    prod = z.vendor(ZUORA_ENVS["eu-prod"], env="eu-prod")
    assert sandbox.min_interval == 30.0 and prod.min_interval is None
    assert prod.check() == "Zuora: token OK at https://rest.eu.zuora.com (EU Cloud Production)"
    assert sandbox.check() == (
        "Zuora: token OK at https://rest.apisandbox.zuora.com (US API Sandbox) "
        "(API Sandbox: polls every 30 s or slower)"
    )
    assert z.vendor(overridden=True).check() == f"Zuora: token OK at {BASE} (ZUORA_BASE_URL)"
    assert z.calls == []  # check() only mints a token


def test_check_reports_rejected_client(zuora_factory: Callable[..., Zuora]) -> None:
    z = zuora_factory(tokens=[httpx.Response(401, json={"error": "invalid_client"})])
    with pytest.raises(AuthError) as err:
        z.vendor().check()
    assert "invalid_client" in err.value.message and "ZUORA_ENV" in err.value.message


# --- OAuth ----------------------------------------------------------------------------------


def test_token_request_shape_and_bearer_use(zuora_factory: Callable[..., Zuora]) -> None:
    z = zuora_factory(ok(job("executing")))
    z.vendor().fetch(JOB)
    (post,) = z.token_posts
    assert post.method == "POST" and str(post.url) == f"{BASE}/oauth/token"
    assert "authorization" not in post.headers
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(post.content.decode()) == {
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
        "grant_type": ["client_credentials"],
    }
    (get,) = z.calls
    assert str(get.url) == JOB_URL
    assert get.headers["authorization"] == "Bearer test-token-1"
    assert get.headers["accept"] == "application/json"


def test_token_is_cached_and_shared(zuora_factory: Callable[..., Zuora]) -> None:
    z = zuora_factory(*(ok(job("executing")) for _ in range(6)))
    first, second = z.vendor(), z.vendor()
    for vendor in (first, second) * 3:
        vendor.fetch(JOB)
    assert len(z.token_posts) == 1
    assert {r.headers["authorization"] for r in z.calls} == {"Bearer test-token-1"}
    assert [k for k in z.ctx.shared if k[0] == "zuora-auth"]
    assert all(CLIENT_SECRET not in repr(k) and CLIENT_ID not in repr(k) for k in z.ctx.shared)


def test_other_client_or_base_url_gets_its_own_cache(zuora_factory: Callable[..., Zuora]) -> None:
    z = zuora_factory(*(ok(job("executing")) for _ in range(3)))
    z.vendor().fetch(JOB)
    z.vendor(client_id="other-client").fetch(JOB)
    z.vendor("https://rest.eu.zuora.test").fetch(JOB)
    assert len(z.token_posts) == 3


def test_token_is_refreshed_before_expiry(zuora_factory: Callable[..., Zuora]) -> None:
    z = zuora_factory(*(ok(job("executing")) for _ in range(3)))
    vendor = z.vendor()
    vendor.fetch(JOB)
    z.clock.advance(3299)
    vendor.fetch(JOB)
    assert len(z.token_posts) == 1
    z.clock.advance(1)  # expires_in − 300 s
    vendor.fetch(JOB)
    assert len(z.token_posts) == 2
    assert z.calls[-1].headers["authorization"] == "Bearer test-token-2"


@pytest.mark.parametrize("expires_in", [-5, 0, "soon", None])
def test_odd_token_lifetime_falls_back_to_an_hour(
    expires_in: object, zuora_factory: Callable[..., Zuora]
) -> None:
    token = httpx.Response(200, json={"access_token": "t", "expires_in": expires_in})
    z = zuora_factory(ok(job("executing")), ok(job("executing")), tokens=[token])
    vendor = z.vendor()
    vendor.fetch(JOB)
    z.clock.advance(3000)
    vendor.fetch(JOB)
    assert len(z.token_posts) == 1


def test_failed_proactive_refresh_keeps_the_old_token(zuora_factory: Callable[..., Zuora]) -> None:
    token = httpx.Response(200, json={"access_token": "first", "expires_in": 3600})
    z = zuora_factory(
        ok(job("executing")), ok(job("executing")), tokens=[token, httpx.Response(503)]
    )
    vendor = z.vendor()
    vendor.fetch(JOB)
    z.clock.advance(3400)
    assert vendor.fetch(JOB).state is State.RUNNING
    assert z.calls[-1].headers["authorization"] == "Bearer first"


def test_concurrent_callers_mint_once(zuora_factory: Callable[..., Zuora]) -> None:
    gate = threading.Event()

    def slow_token(request: httpx.Request) -> httpx.Response:
        gate.wait(2)
        return httpx.Response(200, json={"access_token": "shared", "expires_in": 3600})

    z = zuora_factory(*(ok(job("executing")) for _ in range(5)), tokens=[slow_token])
    vendor = z.vendor()
    threads = [threading.Thread(target=vendor.fetch, args=(JOB,)) for _ in range(5)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(5)
    assert len(z.token_posts) == 1 and len(z.calls) == 5


@pytest.mark.parametrize("message", ["Authentication error", None])
def test_401_mints_a_new_token_and_retries_once(
    message: str | None, zuora_factory: Callable[..., Zuora]
) -> None:
    refused = httpx.Response(401, json={"message": message} if message else None)
    z = zuora_factory(refused, ok(job("executing")))
    assert z.vendor().fetch(JOB).state is State.RUNNING
    assert len(z.token_posts) == 2
    assert [r.headers["authorization"] for r in z.calls] == [
        "Bearer test-token-1",
        "Bearer test-token-2",
    ]


def test_second_401_is_an_auth_error(zuora_factory: Callable[..., Zuora]) -> None:
    refused = {"message": "Authentication error"}
    z = zuora_factory(httpx.Response(401, json=refused), httpx.Response(401, json=refused))
    with pytest.raises(AuthError) as err:
        z.vendor().fetch(JOB)
    assert err.value.message.startswith(
        "credentials rejected by Zuora; the job may still be running"
    )
    assert len(z.calls) == 2 and len(z.token_posts) == 2


def test_failed_to_get_user_info_is_transient(zuora_factory: Callable[..., Zuora]) -> None:
    z = zuora_factory(httpx.Response(401, json={"message": "Failed to get user info"}))
    with pytest.raises(TransientError) as err:
        z.vendor().fetch(JOB)
    assert "Failed to get user info" in err.value.message
    assert len(z.token_posts) == 1  # no new token: the token was fine


@pytest.mark.parametrize(
    "reply, kind, fragment",
    [
        (httpx.Response(401, json={"error": "invalid_client"}), AuthError, "invalid_client"),
        (httpx.Response(400, json={"error": "invalid_request"}), AuthError, "invalid_request"),
        (httpx.Response(403, text="<html>no</html>"), AuthError, "HTTP 403"),
        (httpx.Response(302, headers={"Location": "https://x.test/"}), AuthError, "HTTP 302"),
        (httpx.Response(500), TransientError, "HTTP 500"),
        (httpx.Response(503, text="down"), TransientError, "HTTP 503"),
        (httpx.Response(429, headers={"Retry-After": "7"}), RateLimitedError, "HTTP 429"),
        (httpx.Response(200, json={"token_type": "bearer"}), TransientError, "unreadable"),
        (httpx.Response(200, text="<html>login</html>"), TransientError, "unreadable"),
        (httpx.ConnectError("refused"), TransientError, "could not reach Zuora"),
    ],
)
def test_token_endpoint_failures(
    reply: Reply, kind: type[VendorError], fragment: str, zuora_factory: Callable[..., Zuora]
) -> None:
    z = zuora_factory(tokens=[reply])
    with pytest.raises(kind) as err:
        z.vendor().fetch(JOB)
    assert fragment in err.value.message
    if kind is AuthError:
        assert "ZUORA_ENV / ZUORA_BASE_URL" in err.value.message
    assert z.calls == []


# --- job states -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, state",
    [
        ("submitted", State.QUEUED),
        ("pending", State.QUEUED),
        ("executing", State.RUNNING),
        ("completed", State.SUCCEEDED),
        ("cancelled", State.CANCELLED),
        ("error", State.FAILED),
        ("failed", State.FAILED),
        ("aborted", State.FAILED),
        ("Completed ", State.SUCCEEDED),
        ("EXECUTING", State.RUNNING),
        (" Submitted", State.QUEUED),
        ("CANCELLED", State.CANCELLED),
    ],
)
def test_job_statuses(status: str, state: State) -> None:
    snap = fetch(ok(job(status)))
    assert snap.state is state
    assert snap.raw_status == status.strip()


def test_unknown_job_status_polls_on_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=zu.__name__)
    z = Zuora(ok(job("paused")), ok(job("paused")))
    vendor = z.vendor()
    first = vendor.fetch(JOB)
    vendor.fetch(JOB)
    z.close()
    assert first.state is State.UNKNOWN and not first.state.terminal
    assert first.raw_status == "paused"
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("zuora: unknown job status 'paused'; polling on") == 1


def test_reply_without_status_or_error_is_transient() -> None:
    with pytest.raises(TransientError, match="without a status"):
        fetch(ok({"id": JOB, "batches": []}))


@pytest.mark.parametrize(
    "status, ok_batch, done",
    [
        ("pending", False, False),
        ("submitted", False, False),
        ("executing", False, False),
        ("completed", True, True),
        ("aborted", False, True),
        ("cancelled", False, True),
        ("deleted_notallowed", False, True),
        ("Deleted_NotAllowed", False, True),
        ("COMPLETED", True, True),
    ],
)
def test_batch_statuses(status: str, ok_batch: bool, done: bool) -> None:
    running = fetch(ok(job("executing", [batch("Invoices", status, 4, fileId=F1)])))
    assert running.state is State.RUNNING
    assert ("Batches", f"{int(done)} of 1 done") in running.progress
    assert ("Invoices", f"4 records · {status}") in running.progress
    assert running.files == ()  # nothing to download before the job ends

    finished = fetch(
        ok(
            job(
                "completed",
                [batch("Payments", records=1, fileId=F2), batch("Invoices", status, 4, fileId=F1)],
            )
        )
    )
    assert finished.state is (State.SUCCEEDED if ok_batch else State.PARTIAL)
    assert [f.file_id for f in finished.files] == ([F2, F1] if ok_batch else [F2])


def test_unknown_batch_status_in_a_completed_job_is_not_ok(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=zu.__name__)
    snap = fetch(ok(job("completed", [batch("A", records=1, fileId=F1), batch("B", "paused")])))
    assert snap.state is State.PARTIAL
    assert snap.error_message == "B: paused"
    assert "zuora: unknown batch status 'paused'" in caplog.messages


@pytest.mark.parametrize(
    "batches, state",
    [
        ([], State.SUCCEEDED),
        ([batch("A", records=2, fileId=F1), batch("B", records=0)], State.SUCCEEDED),
        ([batch("A", records=2, fileId=F1), batch("B", "aborted", message="bad")], State.PARTIAL),
        ([batch("A", "aborted"), batch("B", "cancelled")], State.FAILED),
        ([batch("A", "deleted_notallowed")], State.FAILED),
        ([batch("A", records=5)], State.FAILED),  # records but no file
        ([batch("A", records="5", fileId="not-a-hex-id")], State.FAILED),
        ([batch("A", records=1, fileId=F1), batch("B", records=5)], State.PARTIAL),
    ],
    ids=["none", "all-ok", "mixed", "none-ok", "deleted", "no-file", "bad-id", "ok-and-no-file"],
)
def test_completed_is_decided_by_batches(batches: list[dict], state: State) -> None:
    assert fetch(ok(job("completed", batches))).state is state


def test_partial_example_from_the_docs() -> None:
    body = {
        "id": JOB,
        "status": "completed",
        "format": "CSV",
        "encrypted": "none",
        "batches": [
            {
                "batchId": "5f0c2a9e41d7b3c8e6a1f4d290b7c3e2",
                "name": "Invoices",
                "status": "completed",
                "recordCount": 48211,
                "fileId": F1,
            },
            {
                "batchId": "5f0c2a9e41d7b3c8e6a1f4d290b7c3e3",
                "name": "Payments",
                "status": "aborted",
                "recordCount": 0,
                "message": "line 1: unknown field Amout",
            },
        ],
    }
    snap = fetch(ok(body))
    assert snap == JobSnapshot(
        state=State.PARTIAL,
        raw_status="completed (1/2 batches OK)",
        progress=(
            ("Batches", "2 of 2 done"),
            ("Records", "48,211"),
            ("Invoices", "48,211 records · completed"),
            ("Payments", "0 records · aborted"),
        ),
        facts=(("format", "csv"), ("encrypted", "none")),
        error_code=None,
        error_message="Payments: line 1: unknown field Amout",
        files=(FileRef(F1, "Invoices", 48211, "csv", None),),
        done=2,
        total=2,
    )
    assert JobSnapshot.from_json(snap.to_json()) == snap


# --- counts behind the time-left estimate (docs/vendors.md#zuora-aqua-fields) -----------------


def test_batches_finished_of_all_batches_feed_the_estimate() -> None:
    batches = [
        batch("Invoices", "completed", 10, fileId=F1),
        batch("Payments", "aborted"),
        batch("Accounts", "executing"),
        batch("Usage", "pending"),
    ]
    snap = fetch(ok(job("executing", batches)))
    assert (snap.state, snap.done, snap.total) == (State.RUNNING, 2, 4)


def test_a_job_without_batches_has_no_counts() -> None:
    snap = fetch(ok(job("submitted", [])))
    assert (snap.done, snap.total) == (None, None)


def test_none_ok_lists_every_failed_batch() -> None:
    snap = fetch(
        ok(
            job(
                "completed",
                [
                    batch("Invoices", "aborted", message="90005 syntax error near FROM"),
                    batch("Payments", "cancelled"),
                    batch("Refunds", records=7),
                ],
            )
        )
    )
    assert snap.state is State.FAILED
    assert snap.error_code == "90005"
    assert snap.error_message == (
        "Invoices: 90005 syntax error near FROM — one of the queries has a syntax error\n"
        "Payments: cancelled\n"
        "Refunds: 7 records but no result file"
    )
    assert snap.files == ()


def test_segments_become_numbered_parts() -> None:
    segs = [F1, "../../etc/passwd", F2.upper()]
    snap = fetch(
        ok(job("completed", [batch("Account", records=731402, segments=segs)], format="GZIP"))
    )
    assert snap.state is State.SUCCEEDED
    assert snap.files == (
        FileRef(F1, "Account", 731402, "gzip", 1),
        FileRef(F2, "Account", 731402, "gzip", 2),
    )


def test_single_segment_and_file_id_examples_from_the_seed() -> None:
    snap = fetch(
        ok(job("completed", [batch("AccountingPeriod", records=132, segments=[F1])], format="Csv"))
    )
    assert snap.files == (FileRef(F1, "AccountingPeriod", 132, "csv", 1),)
    snap = fetch(ok(job("completed", [batch("AccountingPeriod", records=1, fileId=F1)])))
    assert snap.files == (FileRef(F1, "AccountingPeriod", 1, "csv", None),)


@pytest.mark.parametrize("version, shown", [("1.1", "1.1"), (1.1, "1.1"), (1, "1"), ("1.2", "1.2")])
def test_facts_and_numeric_version(version: object, shown: str) -> None:
    snap = fetch(
        ok(
            job(
                "executing",
                version=version,
                name="Nightly",
                format="GZip",
                startTime="2026-01-01 08:20:07",
            )
        )
    )
    assert snap.facts == (
        ("format", "gzip"),
        ("encrypted", "none"),
        ("version", shown),
        ("name", "Nightly"),
        ("startTime", "2026-01-01 08:20:07"),
    )


def test_missing_optional_fields() -> None:
    snap = fetch(ok({"status": "completed", "batches": [{"status": "completed"}, {}, "junk"]}))
    assert snap.state is State.PARTIAL  # the status-less batch is not OK
    assert snap.facts == ()
    assert ("Batch 1", "completed") in snap.progress and ("Batch 2", "no status") in snap.progress


def test_many_batches_are_summarized() -> None:
    batches = [batch(f"Q{i}", records=i, fileId=F1) for i in range(1, 11)]
    snap = fetch(ok(job("completed", batches)))
    assert snap.progress[:2] == (("Batches", "10 of 10 done"), ("Records", "55"))
    assert len(snap.progress) == 2 + 8 + 1
    assert snap.progress[-1] == ("…", "and 2 more batches")
    assert len(snap.files) == 10


@pytest.mark.parametrize("status", ["error", "failed", "aborted"])
def test_job_error_with_90029(status: str) -> None:
    body = job(status, [], errorCode="90029", message="Job exceeded limit")
    snap = fetch(ok(body))
    assert snap.state is State.FAILED
    assert snap.error_code == "90029"
    assert snap.error_message == (
        "Job exceeded limit — the job exceeded Zuora's maximum processing time"
    )


def test_job_error_without_text_and_failed_batch() -> None:
    snap = fetch(
        ok(job("error", [batch("Invoices", "aborted", message="query timed out")], errorCode=90029))
    )
    assert snap.error_code == "90029"
    assert snap.error_message == (
        "90029 — the job exceeded Zuora's maximum processing time\nInvoices: query timed out"
    )


def test_failed_job_quotes_only_finished_batches() -> None:
    batches = [batch("A", "executing"), batch("B", "aborted", message="bad query"), batch("C")]
    snap = fetch(ok(job("error", batches, message="stopped")))
    assert snap.state is State.FAILED and snap.files == ()
    assert snap.error_message == "stopped\nB: bad query"
    assert snap.error_code is None


def test_cancelled_job_keeps_finished_files() -> None:
    snap = fetch(ok(job("cancelled", [batch("A", records=3, fileId=F1), batch("B", "cancelled")])))
    assert snap.state is State.CANCELLED
    assert [f.file_id for f in snap.files] == [F1]


def test_90018_on_a_completed_job_is_partial() -> None:
    snap = fetch(
        ok(
            job(
                "completed",
                [batch("A", records=3, fileId=F1)],
                errorCode="90018",
                message="skipped",
            )
        )
    )
    assert snap.state is State.PARTIAL
    assert snap.error_code == "90018" and "those queries were skipped" in (snap.error_message or "")


# --- 200 replies that carry an error (docs/vendors.md#zuora-errors-and-limits) --------------------


def test_90019_on_200_is_rejected() -> None:
    with pytest.raises(RequestRejectedError) as err:
        fetch(ok({"errorCode": "90019", "message": "partner not found"}))
    assert err.value.code == "90019"
    assert err.value.message == (
        "Zuora rejected the request (90019: partner not found — "
        "Zuora does not recognise the partner id)"
    )


def test_message_only_error_body_is_rejected() -> None:
    with pytest.raises(RequestRejectedError, match="something broke"):
        fetch(ok({"message": "something broke", "status": None}))


def test_90018_on_200_is_partial() -> None:
    snap = fetch(ok({"errorCode": 90018, "message": "no access to Payment"}))
    assert snap.state is State.PARTIAL and snap.error_code == "90018"
    assert snap.error_message == (
        "no access to Payment — the API user lacks permission on some objects, "
        "so those queries were skipped"
    )


@pytest.mark.parametrize("code", ["90002", "90001", 90002])
def test_not_found_codes(code: object) -> None:
    with pytest.raises(JobNotFoundError) as err:
        fetch(ok({"errorCode": code, "message": "Invalid Job Id."}))
    assert err.value.code == str(code)
    assert err.value.hint == "check the job id and ZUORA_ENV / tenant; Zuora keeps jobs 180 days"


@pytest.mark.parametrize("code", ["90006", "90008", "90010", "90022"])
def test_transient_codes(code: str) -> None:
    with pytest.raises(TransientError) as err:
        fetch(ok({"errorCode": code, "message": "internal"}))
    assert err.value.code == code and ERROR_CODES[code] in err.value.message


def test_error_codes_table() -> None:
    assert set(ERROR_CODES) >= {f"900{n:02d}" for n in (1, 2, 6, 7, 8, 9, 10, 18, 19, 22, 27, 29)}
    assert all(k.startswith("900") and v and "\n" not in v for k, v in ERROR_CODES.items())
    assert zu.explain("90029") == "90029 — the job exceeded Zuora's maximum processing time"
    once = zu.explain("x 90029 y")
    assert zu.explain(once) == once  # appended once
    assert zu.explain("order 1900299 ok") == "order 1900299 ok"
    assert zu.explain("no code here") == "no code here"


# --- HTTP failures --------------------------------------------------------------------------


def test_404_is_not_found() -> None:
    with pytest.raises(JobNotFoundError) as err:
        fetch(httpx.Response(404, json={"message": "Job not found"}))
    assert err.value.code == "404" and "180 days" in err.value.hint


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"Retry-After": "12"}, 12.0),
        ({"Retry-After": formatdate(NOW + 90, usegmt=True)}, 90.0),
        ({"ratelimit-reset": "37", "ratelimit-remaining": "0"}, 37.0),
        ({"Retry-After": "5", "ratelimit-reset": "37"}, 5.0),
        ({}, None),
        ({"ratelimit-reset": "soon"}, None),
    ],
    ids=["seconds", "http-date", "ratelimit-reset", "retry-after-wins", "none", "garbage"],
)
def test_429(headers: dict[str, str], expected: float | None) -> None:
    with pytest.raises(RateLimitedError) as err:
        fetch(httpx.Response(429, json={"message": "Too many requests"}, headers=headers))
    assert err.value.retry_after == (pytest.approx(expected) if expected else None)


@pytest.mark.parametrize(
    "reply, fragment",
    [
        (httpx.Response(500), "HTTP 500"),
        (httpx.Response(502, text="<html>bad gateway</html>"), "HTTP 502"),
        (httpx.Response(503, json={"message": "maintenance"}), "HTTP 503: maintenance"),
        (
            httpx.Response(500, json={"reasons": [{"code": 50000060, "message": "oops"}]}),
            "HTTP 500: 50000060: oops",
        ),
        (httpx.Response(408), "HTTP 408"),
        # transport failures and unreadable replies in general: test_vendor_http.py
        (httpx.ConnectError("connection refused"), "could not reach Zuora (ConnectError)"),
        (
            httpx.Response(
                200, text='{"status": "compl', headers={"content-type": "application/json"}
            ),
            "Zuora sent an unreadable reply (HTTP 200, application/json)",
        ),
        (
            httpx.Response(400, json={"reasons": [{"code": "53100399", "message": "retry"}]}),
            "temporary problem (HTTP 400: 53100399: retry)",
        ),
    ],
)
def test_transient_failures(reply: Reply, fragment: str) -> None:
    with pytest.raises(TransientError) as err:
        fetch(reply)
    assert not isinstance(err.value, RateLimitedError)
    assert fragment in err.value.message


def test_code_ending_70_is_rate_limited() -> None:
    reply = httpx.Response(
        400,
        json={"reasons": [{"code": "50000070", "message": "slow"}]},
        headers={"Retry-After": "3"},
    )
    with pytest.raises(RateLimitedError) as err:
        fetch(reply)
    assert err.value.retry_after == 3.0


@pytest.mark.parametrize(
    "reply, code, fragment",
    [
        (
            httpx.Response(
                400,
                json={"success": False, "reasons": [{"code": 53100320, "message": "bad field"}]},
            ),
            "53100320",
            "(HTTP 400: 53100320: bad field)",
        ),
        (httpx.Response(403, json={"message": "Forbidden"}), "403", "(HTTP 403: Forbidden)"),
        (
            httpx.Response(400, json={"errorCode": "90009", "message": "nope"}),
            "90009",
            "90009: nope — the API user is not authorized",
        ),
        (httpx.Response(302, headers={"Location": "https://evil.test/x"}), "302", "redirect"),
    ],
)
def test_definitive_http_errors(reply: Reply, code: str, fragment: str) -> None:
    z = Zuora(reply)
    with pytest.raises(RequestRejectedError) as err:
        z.vendor().fetch(JOB)
    z.close()
    assert err.value.code == code and fragment in err.value.message
    assert {r.url.host for r in z.calls + z.token_posts} == {HOST}


def test_aqua_codes_on_4xx() -> None:
    with pytest.raises(JobNotFoundError) as err:
        fetch(httpx.Response(400, json={"errorCode": "90002", "message": "Invalid Job Id."}))
    assert err.value.code == "90002"
    with pytest.raises(TransientError) as transient:
        fetch(httpx.Response(400, json={"errorCode": "90010", "message": "Internal"}))
    assert transient.value.code == "90010"
    with pytest.raises(TransientError, match="90010: busy — Zuora hit an internal server error"):
        fetch(httpx.Response(500, json={"errorCode": "90010", "message": "busy"}))


# --- secrets --------------------------------------------------------------------------------


def test_no_secret_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"client {CLIENT_ID} secret {CLIENT_SECRET} token test-token-1"
    replies: list[Reply] = [
        ok({"errorCode": "90019", "message": echo}),
        httpx.Response(400, json={"reasons": [{"code": 1, "message": echo}]}),
        httpx.Response(500, json={"message": echo}),
        ok(job("error", [batch("A", "aborted", message=echo)], message=echo)),
    ]
    z = Zuora(
        *replies,
        httpx.Response(401, json={"message": echo}),
        httpx.Response(401, json={"message": echo}),
    )
    vendor = z.vendor()
    texts = []
    for _ in range(3):
        with pytest.raises(VendorError) as err:
            vendor.fetch(JOB)
        texts += [err.value.message, str(err.value), repr(err.value)]
    snap = vendor.fetch(JOB)
    texts += [snap.error_message or "", snap.to_json()]
    with pytest.raises(AuthError) as auth:
        vendor.fetch(JOB)
    texts += [auth.value.message, repr(vendor), repr(make_conn()), repr(z.ctx.shared)]
    z.close()
    texts += [r.getMessage() for r in caplog.records]
    blob = "\n".join(texts)
    assert "[redacted]" in blob
    for secret in (CLIENT_SECRET, CLIENT_ID, "test-token-1", "test-token-2"):
        assert secret not in blob


# --- result files ---------------------------------------------------------------------------


CSV = b"Invoice: Id,Invoice: Amount\r\nINV-1,10.00\r\nINV-2,20.50\r\n"


def served(
    content: bytes, content_type: str = "text/csv;charset=UTF-8", **headers: str
) -> httpx.Response:
    return httpx.Response(200, content=content, headers={"Content-Type": content_type, **headers})


def snap_with(
    *files: FileRef, encrypted: str = "none", state: State = State.SUCCEEDED
) -> JobSnapshot:
    return JobSnapshot(
        state=state,
        raw_status="completed",
        facts=(
            ("format", files[0].fmt or "") if files else ("format", "csv"),
            ("encrypted", encrypted),
        ),
        files=files,
    )


def spool(tmp_path: Any) -> list[str]:
    return sorted(os.listdir(tmp_path))


def results(
    tmp_path: Any, snap: JobSnapshot, *replies: Reply, max_bytes: int = 50 * MB
) -> tuple[list, Zuora]:
    z = Zuora(*replies, spool=str(tmp_path), max_bytes=max_bytes)
    try:
        return list(z.vendor().results(JOB, snap)), z
    finally:
        z.close()


def read(path: str | None) -> bytes:
    assert path is not None
    with open(path, "rb") as fh:
        return fh.read()


def test_csv_is_streamed_to_the_spool(tmp_path: Any) -> None:
    (rf,), z = results(tmp_path, snap_with(FileRef(F1, "Invoices", 2, "csv")), served(CSV))
    assert rf.filename == "Invoices.csv" and rf.title == "Invoices"
    assert rf.comment == "2 records" and rf.note is None and rf.content is None
    assert read(rf.path) == CSV
    assert os.path.dirname(rf.path or "") == str(tmp_path)
    assert os.path.basename(rf.path or "").startswith("zuora-")
    (get,) = z.calls
    assert str(get.url) == f"{BASE}/v1/files/{F1}"
    assert get.headers["authorization"] == "Bearer test-token-1"


def test_whole_job_from_fetch_to_files(tmp_path: Any) -> None:
    z = Zuora(
        ok(
            job(
                "completed",
                [batch("Invoices", records=2, fileId=F1), batch("Payments", records=1, fileId=F2)],
            )
        ),
        served(CSV),
        served(b"Id\r\nP-1\r\n"),
        spool=str(tmp_path),
    )
    vendor = z.vendor()
    snap = vendor.fetch(JOB)
    files = vendor.results(JOB, snap)
    z.close()
    assert [f.filename for f in files] == ["Invoices.csv", "Payments.csv"]
    assert [read(f.path) for f in files] == [CSV, b"Id\r\nP-1\r\n"]
    assert len(z.token_posts) == 1


def test_zip_is_posted_as_served(tmp_path: Any) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf_:
        zf_.writestr("Invoices.csv", CSV)
    (rf,), _ = results(
        tmp_path,
        snap_with(FileRef(F1, "Invoices", 2, "zip")),
        served(buf.getvalue(), "application/zip"),
    )
    assert rf.filename == "Invoices.zip" and read(rf.path) == buf.getvalue()


def test_small_gzip_is_posted_as_csv(tmp_path: Any) -> None:
    (rf,), _ = results(
        tmp_path,
        snap_with(FileRef(F1, "Invoices", 2, "gzip")),
        served(gzip.compress(CSV), "application/x-gzip"),
    )
    assert rf.filename == "Invoices.csv" and read(rf.path) == CSV
    assert spool(tmp_path) == [os.path.basename(rf.path or "")]  # the .gz is gone


def test_big_gzip_is_posted_as_served(tmp_path: Any) -> None:
    big = os.urandom(3000).hex().encode() * 100  # 600 KB decompressed, compresses well
    packed = gzip.compress(big)
    assert len(packed) < 200_000
    (rf,), _ = results(
        tmp_path,
        snap_with(FileRef(F1, "Invoices", 9, "gzip")),
        served(packed, "application/x-gzip"),
        max_bytes=200_000,
    )
    assert rf.filename == "Invoices.csv.gz" and read(rf.path) == packed
    assert spool(tmp_path) == [os.path.basename(rf.path or "")]


def test_gzip_bomb_stops_at_the_cap(tmp_path: Any) -> None:
    bomb = gzip.compress(b"\0" * (20 * MB), compresslevel=9)
    (rf,), _ = results(
        tmp_path,
        snap_with(FileRef(F1, "Invoices", 9, "gzip")),
        served(bomb, "application/x-gzip"),
        max_bytes=MB,
    )
    assert rf.filename == "Invoices.csv.gz" and read(rf.path) == bomb
    assert spool(tmp_path) == [os.path.basename(rf.path or "")]


def test_gunzip_capped_reads_little_of_a_bomb() -> None:
    bomb = gzip.compress(b"\0" * (20 * MB), compresslevel=9)

    class Counting(io.BytesIO):
        consumed = 0

        def read(self, size: int | None = -1) -> bytes:
            got = super().read(size)
            self.consumed += len(got)
            return got

    src, dst = Counting(bomb), io.BytesIO()
    assert zf.gunzip_capped(src, dst, MB) is False
    assert len(dst.getvalue()) <= MB
    assert src.consumed < len(bomb)


def test_gunzip_capped_edge_cases() -> None:
    two_members = gzip.compress(b"a,b\n") + gzip.compress(b"1,2\n")
    out = io.BytesIO()
    assert zf.gunzip_capped(io.BytesIO(two_members), out, 100) and out.getvalue() == b"a,b\n1,2\n"
    assert not zf.gunzip_capped(io.BytesIO(b"not gzip at all"), io.BytesIO(), 100)
    assert not zf.gunzip_capped(io.BytesIO(gzip.compress(CSV)[:-12]), io.BytesIO(), 1000)
    exact = io.BytesIO()
    assert zf.gunzip_capped(io.BytesIO(gzip.compress(CSV)), exact, len(CSV))
    assert not zf.gunzip_capped(io.BytesIO(gzip.compress(CSV)), io.BytesIO(), len(CSV) - 1)


def test_file_type_comes_from_its_bytes(tmp_path: Any) -> None:
    # A "gzip" job whose file is plain CSV is posted as .csv; a broken gzip as served.
    broken = gzip.compress(CSV)[:-12]
    files, _ = results(
        tmp_path,
        snap_with(FileRef(F1, "Invoices", 2, "gzip"), FileRef(F2, "Payments", 2, "csv")),
        served(CSV, "application/x-gzip"),
        served(broken, "text/csv"),
    )
    assert [f.filename for f in files] == ["Invoices.csv", "Payments.csv.gz"]
    assert [read(f.path) for f in files] == [CSV, broken]


def test_over_cap_by_content_length(tmp_path: Any) -> None:
    pulled = []

    def body() -> Iterator[bytes]:
        pulled.append(True)
        yield b"x" * 100

    reply = httpx.Response(
        200, headers={"Content-Length": str(5 * MB), "Content-Type": "text/csv"}, content=body()
    )
    (rf,), _ = results(
        tmp_path, snap_with(FileRef(F1, "Invoices", 48211, "csv")), reply, max_bytes=MB
    )
    assert rf.path is None and rf.content is None
    assert rf.note == (
        f"Invoices: 48,211 records; the file is over the 1 MB limit for Slack (file id {F1}); "
        "download it in Zuora"
    )
    assert spool(tmp_path) == [] and pulled == []


def test_over_cap_while_streaming(tmp_path: Any) -> None:
    sent = []

    def body() -> Iterator[bytes]:
        for _ in range(100):
            sent.append(64 * 1024)
            yield b"x" * 64 * 1024

    reply = httpx.Response(200, headers={"Content-Type": "text/csv"}, content=body())
    assert "content-length" not in reply.headers
    (rf,), _ = results(
        tmp_path, snap_with(FileRef(F1, "Invoices", None, "csv")), reply, max_bytes=MB
    )
    assert rf.note and "over the 1 MB limit" in rf.note and "records unknown" in rf.note
    assert spool(tmp_path) == []
    assert sum(sent) <= MB + 128 * 1024  # stopped soon after the cap


def test_404_falls_back_to_the_singular_path(tmp_path: Any) -> None:
    (rf,), z = results(
        tmp_path,
        snap_with(FileRef(F1, "Invoices", 2, "csv")),
        httpx.Response(404, json={"reasons": [{"code": "50000040", "message": "not found"}]}),
        served(CSV),
    )
    assert read(rf.path) == CSV
    assert z.paths() == [f"/v1/files/{F1}", f"/v1/file/{F1}"]
    assert {r.headers["authorization"] for r in z.calls} == {"Bearer test-token-1"}
    assert {r.url.host for r in z.calls} == {HOST}


def test_404_twice_means_the_file_expired(tmp_path: Any) -> None:
    (rf,), z = results(
        tmp_path,
        snap_with(FileRef(F1, "Invoices", 2, "csv")),
        httpx.Response(404),
        httpx.Response(404),
    )
    assert rf.note == (
        "Invoices: the result file is no longer available: Zuora keeps result files for 3 days "
        f"(file id {F1})"
    )
    assert len(z.calls) == 2 and spool(tmp_path) == []


def test_403_with_the_size_marker(tmp_path: Any) -> None:
    body = b"<Error><security:max-object-size>2047MB</security:max-object-size></Error>"
    (rf,), _ = results(
        tmp_path, snap_with(FileRef(F1, "Invoices", 2, "csv")), httpx.Response(403, content=body)
    )
    assert rf.note and "over Zuora's 2,047 MB download limit" in rf.note


def test_403_without_the_size_marker(tmp_path: Any) -> None:
    (rf,), _ = results(
        tmp_path,
        snap_with(FileRef(F1, "Invoices", 2, "csv")),
        httpx.Response(403, json={"message": "Forbidden"}),
    )
    assert rf.note and "Enable DataSource Exports Reporting" in rf.note


def test_other_download_refusals_quote_zuora(tmp_path: Any) -> None:
    reasons = {"reasons": [{"code": 50000020, "message": "Invalid file id"}]}
    (rf,), _ = results(
        tmp_path, snap_with(FileRef(F1, "Invoices", 2, "csv")), httpx.Response(400, json=reasons)
    )
    assert rf.note == "Invoices: Zuora refused the download (HTTP 400: 50000020: Invalid file id)"


def test_401_on_download_refreshes_once(tmp_path: Any) -> None:
    files, z = results(
        tmp_path,
        snap_with(FileRef(F1, "Invoices", 2, "csv"), FileRef(F2, "Payments", 2, "csv")),
        httpx.Response(401, json={"message": "Authentication error"}),
        served(CSV),
        httpx.Response(401),
        httpx.Response(401),
    )
    assert read(files[0].path) == CSV
    assert files[1].note and "rejected the credentials" in files[1].note
    assert len(z.token_posts) == 3
    assert [r.headers["authorization"] for r in z.calls] == [
        "Bearer test-token-1",
        "Bearer test-token-2",
        "Bearer test-token-2",
        "Bearer test-token-3",
    ]


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(500),
        httpx.Response(503),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("down"),
    ],
)
def test_download_failure_is_transient_and_cleans_up(tmp_path: Any, reply: Reply) -> None:
    snap = snap_with(FileRef(F1, "Invoices", 2, "csv"), FileRef(F2, "Payments", 2, "csv"))
    z = Zuora(served(CSV), reply, spool=str(tmp_path))
    with pytest.raises(TransientError):
        z.vendor().results(JOB, snap)
    z.close()
    assert spool(tmp_path) == []


def test_read_error_mid_stream_deletes_the_partial_file(tmp_path: Any) -> None:
    def body() -> Iterator[bytes]:
        yield CSV
        raise httpx.ReadError("connection reset")

    z = Zuora(
        httpx.Response(200, headers={"Content-Type": "text/csv"}, content=body()),
        spool=str(tmp_path),
    )
    with pytest.raises(TransientError):
        z.vendor().results(JOB, snap_with(FileRef(F1, "Invoices", 2, "csv")))
    z.close()
    assert spool(tmp_path) == []


def test_429_on_download_is_rate_limited(tmp_path: Any) -> None:
    z = Zuora(httpx.Response(429, headers={"ratelimit-reset": "20"}), spool=str(tmp_path))
    with pytest.raises(RateLimitedError) as err:
        z.vendor().results(JOB, snap_with(FileRef(F1, "Invoices", 2, "csv")))
    z.close()
    assert err.value.retry_after == 20.0


def test_html_instead_of_a_file_is_transient(tmp_path: Any) -> None:
    z = Zuora(served(b"<html>login</html>", "text/html"), spool=str(tmp_path))
    with pytest.raises(TransientError, match="HTML"):
        z.vendor().results(JOB, snap_with(FileRef(F1, "Invoices", 2, "csv")))
    z.close()
    assert spool(tmp_path) == []


def test_redirect_is_not_followed(tmp_path: Any) -> None:
    reply = httpx.Response(302, headers={"Location": "https://files.elsewhere.test/x.csv"})
    (rf,), z = results(tmp_path, snap_with(FileRef(F1, "Invoices", 2, "csv")), reply)
    assert rf.note and "files.elsewhere.test" in rf.note
    assert {r.url.host for r in z.calls + z.token_posts} == {HOST}


@pytest.mark.parametrize(
    "content, records, fmt",
    [
        (b"Invoice: Id,Invoice: Amount\r\n", 0, "csv"),
        (b"Id\n\n", 0, "csv"),
        (b"", 0, "csv"),
        (b"", 5, "zip"),
        (gzip.compress(b"Id,Amount\n"), 0, "gzip"),
    ],
    ids=["header-only", "header-blank-line", "empty", "empty-zip", "gzip-header-only"],
)
def test_empty_results_become_notes(tmp_path: Any, content: bytes, records: int, fmt: str) -> None:
    (rf,), _ = results(tmp_path, snap_with(FileRef(F1, "Invoices", records, fmt)), served(content))
    assert rf.note == "Invoices: no records" and rf.path is None
    assert spool(tmp_path) == []


def test_header_only_with_records_is_still_posted(tmp_path: Any) -> None:
    (rf,), _ = results(tmp_path, snap_with(FileRef(F1, "Invoices", 3, "csv")), served(b"Id\r\n"))
    assert rf.path and read(rf.path) == b"Id\r\n"


def test_segments_are_named_by_part(tmp_path: Any) -> None:
    snap = snap_with(
        FileRef(F1, "Account", 731402, "csv", 1), FileRef(F2, "Account", 731402, "csv", 2)
    )
    files, _ = results(tmp_path, snap, served(CSV), served(CSV))
    assert [f.filename for f in files] == ["Account-part1.csv", "Account-part2.csv"]
    assert [f.comment for f in files] == [
        "731,402 records · part 1 of 2",
        "731,402 records · part 2 of 2",
    ]


def test_encrypted_results_are_never_downloaded(tmp_path: Any) -> None:
    snap = snap_with(
        FileRef(F1, "Invoices", 2, "zip"), FileRef(F2, "Payments", 2, "zip"), encrypted="pgp"
    )
    files, z = results(tmp_path, snap)
    (rf,) = files
    assert rf.note and "PGP-encrypted" in rf.note and "download them in Zuora" in rf.note
    assert rf.filename and rf.title and rf.path is None
    assert z.calls == [] and z.token_posts == []


def test_encrypted_job_keeps_its_state() -> None:
    snap = fetch(ok(job("completed", [batch("A", records=1, fileId=F1)], encrypted="PGP")))
    assert snap.state is State.SUCCEEDED and ("encrypted", "pgp") in snap.facts


def test_no_files_means_no_results(tmp_path: Any) -> None:
    files, z = results(tmp_path, snap_with(state=State.FAILED))
    assert files == [] and z.calls == []


def test_tampered_file_id_is_not_requested(tmp_path: Any) -> None:
    (rf,), z = results(tmp_path, snap_with(FileRef("../../v1/oauth", "Invoices", 2, "csv")))
    assert rf.note and "not valid" in rf.note and z.calls == []


@pytest.mark.parametrize(
    "name, part, ext, expected",
    [
        ("Invoices", None, ".csv", "Invoices.csv"),
        ("../../etc/passwd", None, ".csv", "etc_passwd.csv"),
        ("Rechnungen ü 2026", 2, ".zip", "Rechnungen _ 2026-part2.zip"),
        ("x" * 200, None, ".csv.gz", "x" * 80 + ".csv.gz"),
        ("...", None, ".csv", F1 + ".csv"),
        ("", 1, ".csv", F1 + "-part1.csv"),
    ],
)
def test_upload_names(name: str, part: int | None, ext: str, expected: str) -> None:
    assert zf.upload_name(name, F1, part, ext) == expected


def test_extension_prefers_the_served_type() -> None:
    assert zf.extension(None, "application/x-gzip;charset=UTF-8") == ".csv.gz"
    assert zf.extension("csv", "application/x-gzip;charset=UTF-8") == ".csv.gz"
    assert zf.extension("gzip", "application/zip") == ".zip"
    assert zf.extension("zip", "text/csv; charset=UTF-8") == ".csv"
    assert zf.extension("zip", "application/octet-stream") == ".zip"
    assert zf.extension("gzip", "") == ".csv.gz"
    assert zf.extension(None, "") == ".csv"
