"""Poller: claims due watches, polls Zoho Analytics over MockTransport, records outcomes."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.lifecycle import PollPolicy
from bot.poller import Poller
from bot.simulators.zoho import steps_success
from bot.vendors import VendorContext, build_http_client
from bot.vendors.pool import VendorPool
from storage import ACTIVE, DONE, NewWatch, Store

WS = "2480011000000498001"
ENV = {
    "ZOHO_CLIENT_ID": "1000.TESTCLIENTID7F3A",
    "ZOHO_CLIENT_SECRET": "test-client-secret-9c1d",
    "ZOHO_REFRESH_TOKEN": "1000.testrefresh2b8e.cafe",
    "ZOHO_ACCOUNTS_URL": "https://accounts.zoho.test",
    "ZOHO_ANALYTICS_API_URL": "https://analytics.zoho.test",
    "ZOHO_ANALYTICS_ORG_ID": "55522777",
}
ACCESS_TOKEN = "1000.testaccess5e6f.beef"

Reply = httpx.Response | dict[str, Any] | Exception


def ok(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"status": "success", "summary": "job", "data": data})


class FakeZoho:
    """Zoho Accounts + Analytics as a MockTransport handler; each job plays its script, one
    reply per poll, repeating the last."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def job(self, job: str, *replies: Reply) -> None:
        self.scripts[job] = list(replies)

    def polls(self, job: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if "/importjobs/" in r.url.path and (job is None or r.url.path.endswith(f"/{job}"))
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            if request.url.path == "/oauth/v2/token":
                return httpx.Response(200, json={"access_token": ACCESS_TOKEN, "expires_in": 3600})
            script = self.scripts[request.url.path.rsplit("/", 1)[1]]
            reply = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(reply, Exception):
            raise reply
        return ok(reply) if isinstance(reply, dict) else reply


@pytest.fixture
def zoho() -> FakeZoho:
    return FakeZoho()


@pytest.fixture
def make_poller(clock, zoho, store) -> Iterator[Callable[[Store], Poller]]:
    settings = Settings.from_env(ENV)
    made: list[tuple[Poller, VendorPool]] = []

    def make(store: Store) -> Poller:
        ctx = VendorContext(http=build_http_client(httpx.MockTransport(zoho)), clock=clock)
        vendors = VendorPool(settings.connections, ctx)
        poller = Poller(store, vendors, PollPolicy(), clock=clock, rand=lambda: 0.0)
        made.append((poller, vendors))
        return poller

    yield make
    for poller, vendors in made:
        poller.shutdown()
        vendors.close()


@pytest.fixture
def poller(make_poller, store) -> Poller:
    return make_poller(store)


def watch(store: Store, clock, job: str = "2480011000000512007", **kw: Any):
    values = {
        "vendor": "zoho-analytics",
        "ref": f"{WS}/{job}",
        "connection": "default",
        "channel_id": "C1",
        "requester_id": "U1",
        "interval_s": 10.0,
        "deadline": clock.now + 86400,
        **kw,
    }
    (w,) = store.create_watches([NewWatch(**values)], clock.now)
    return w


def states(store: Store, watch_id: str) -> list[tuple[str | None, str | None]]:
    return [(t.from_state, t.to_state) for t in store.transitions(watch_id)]


# -- a job's life -------------------------------------------------------------------------


SUMMARY_CSV = (
    b"field,value\r\nimportType,APPEND\r\ntotalColumnCount,2\r\nselectedColumnCount,2\r\n"
    b"totalRowCount,1200\r\nsuccessRowCount,1200\r\nwarnings,0\r\nimportOperation,created\r\n"
    b"viewId,2480011000000498003\r\n"
)


def test_job_from_queued_to_succeeded(poller, store, clock, zoho):
    zoho.job("2480011000000512007", *steps_success(1200, 1, 1, now=clock.now))
    w = watch(store, clock)
    changes = []
    poller.on_change = lambda: changes.append(clock.now)
    for _ in range(3):
        assert poller.run_once() == 1
        clock.advance(10)

    assert states(store, w.id) == [
        (None, "queued"),
        ("queued", "running"),
        ("running", "succeeded"),
    ]
    assert [r.kind for r in store.outbox_rows(w.id)] == [
        "parent",  # created
        *("parent", "reply") * 3,
        "upload",
    ]
    upload = store.outbox_rows(w.id)[-1].payload
    assert upload["filename"] == "import-summary-2480011000000512007.csv"
    assert base64.b64decode(upload["content_b64"]) == SUMMARY_CSV
    assert upload["comment"] == "1,200 of 1,200 rows imported"
    done = store.get_watch(w.id)
    assert (done.status, done.state, done.next_poll_at, done.polls) == (DONE, "succeeded", None, 3)
    assert len(changes) == 3

    clock.advance(600)
    assert poller.run_once() == 0
    assert zoho.polls() == 3


def test_watch_that_is_not_due_is_not_polled(poller, store, clock, zoho):
    zoho.job("2480011000000512007", {"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"})
    w = watch(store, clock)
    poller.run_once()
    clock.advance(5)
    assert poller.run_once() == 0
    assert zoho.polls() == 1
    clock.advance(5)
    assert poller.run_once() == 1
    assert zoho.polls() == 2
    assert store.get_watch(w.id).polls == 2


def test_server_error_backs_off_then_success_resets_attempts(poller, store, clock, zoho):
    zoho.job(
        "2480011000000512007",
        httpx.Response(503, text="busy"),
        {"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"},
    )
    w = watch(store, clock)
    poller.run_once()
    failing = store.get_watch(w.id)
    assert (failing.status, failing.state, failing.attempts) == (ACTIVE, None, 1)
    assert "HTTP 503" in failing.last_error
    assert failing.next_poll_at == clock.now + 10

    clock.advance(10)
    poller.run_once()
    recovered = store.get_watch(w.id)
    assert (recovered.state, recovered.attempts, recovered.last_error) == ("running", 0, None)
    assert states(store, w.id) == [(None, "running")]


def test_429_waits_for_retry_after(poller, store, clock, zoho):
    zoho.job("2480011000000512007", httpx.Response(429, headers={"Retry-After": "120"}))
    w = watch(store, clock)
    poller.run_once()
    throttled = store.get_watch(w.id)
    assert throttled.next_poll_at == pytest.approx(clock.now + 120, abs=1)
    assert "rate limit" in throttled.last_error
    clock.advance(60)
    assert poller.run_once() == 0
    assert zoho.polls() == 1


def test_watch_past_its_deadline_expires_without_a_request(poller, store, clock, zoho):
    w = watch(store, clock, deadline=clock.now + 5)
    clock.advance(10)
    poller.run_once()
    expired = store.get_watch(w.id)
    assert (expired.status, expired.state) == (DONE, "expired")
    assert [t.event for t in store.transitions(w.id)] == ["timeout"]
    assert zoho.requests == []


def test_token_bucket_reschedules_without_counting_a_failure(poller, store, clock, zoho):
    zoho.job("1", {"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"})
    watches = [watch(store, clock, job="1", channel_id=f"C{i}") for i in range(8)]
    poller.run_once()
    assert zoho.polls() == 5  # za: 30/min with a burst of 5
    held = [store.get_watch(w.id) for w in watches if store.get_watch(w.id).polls == 0]
    assert len(held) == 3
    for w in held:
        assert (w.attempts, w.last_error, w.state, w.lease_owner) == (0, None, None, None)
        assert [r.kind for r in store.outbox_rows(w.id)] == ["parent"]
    # refill is 25/min (the limit less the burst), one token every 2.4 s: the held watches
    # come back one token apart, not all at once
    waits = sorted(w.next_poll_at - clock.now for w in held)
    assert waits == pytest.approx([2.4, 4.8, 7.2], abs=0.01)
    clock.advance(2.4)
    poller.run_once()
    assert zoho.polls() == 6
    clock.advance(2.4)
    poller.run_once()
    assert zoho.polls() == 7


def test_unexpected_exception_in_vendor_keeps_the_watch_polling(poller, store, clock, zoho):
    zoho.job("2480011000000512007", RuntimeError("bug in a vendor module"))
    w = watch(store, clock)
    poller.run_once()
    after = store.get_watch(w.id)
    assert (after.status, after.attempts) == (ACTIVE, 1)
    assert "internal error" in after.last_error
    assert "bug in a vendor module" not in after.last_error  # no internals shown to users
    assert (after.lease_owner, after.lease_until) == (None, None)
    clock.advance(10)
    assert poller.run_once() == 1


def test_unknown_connection_fails_the_watch_clearly(poller, store, clock, zoho):
    w = watch(store, clock, connection="eu-team")
    poller.run_once()
    failed = store.get_watch(w.id)
    assert (failed.status, failed.state) == (DONE, "failed")
    (t,) = store.transitions(w.id)
    assert t.to_state == "failed"
    assert (
        t.error_message == "no zoho connection named 'eu-team' is configured in syncwatch's config"
    )
    assert zoho.requests == []


def test_watch_leased_by_another_poller_is_left_alone(poller, store, clock, zoho):
    zoho.job("2480011000000512007", {"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"})
    w = watch(store, clock)
    store.claim_due(clock.now, "poller-elsewhere", 120, 10)
    assert poller.run_once() == 0
    assert zoho.requests == []
    clock.advance(121)  # the other poller died: its lease runs out
    assert poller.run_once() == 1
    assert store.get_watch(w.id).state == "running"


def test_shutdown_finishes_in_flight_polls(poller, store, clock, zoho):
    zoho.job("2480011000000512007", {"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"})
    w = watch(store, clock)
    poller.start(paused=True)  # a running scheduler ticks at once and would race this tick
    assert poller.tick() == 1  # started, not awaited
    deadline = time.monotonic() + 5
    while not zoho.requests and time.monotonic() < deadline:  # the poll is in flight
        time.sleep(0.005)
    poller.shutdown()
    after = store.get_watch(w.id)
    assert (after.state, after.lease_owner) == ("running", None)
    assert not [t for t in threading.enumerate() if t.name.startswith(("poll_", "APScheduler"))]


# -- restart ------------------------------------------------------------------------------


def test_restart_resumes_and_ends_the_job_once(make_poller, clock, zoho, tmp_path):
    path = str(tmp_path / "restart.db")
    zoho.job("2480011000000512007", *steps_success(1200, 1, 1, now=clock.now))
    first_store = Store(path)
    w = watch(first_store, clock)
    first = make_poller(first_store)
    first.run_once()
    first.shutdown()
    first_store.close()

    second_store = Store(path)
    try:
        second = make_poller(second_store)
        for _ in range(4):
            clock.advance(10)
            second.run_once()
        assert states(second_store, w.id) == [
            (None, "queued"),
            ("queued", "running"),
            ("running", "succeeded"),
        ]
        terminal = [r for r in second_store.outbox_rows(w.id) if r.kind == "upload"]
        assert len(terminal) == 1
        assert second_store.get_watch(w.id).status == DONE
        assert zoho.polls() == 3
    finally:
        second.shutdown()
        second_store.close()


# -- secrets at rest ----------------------------------------------------------------------


def test_database_never_holds_configured_secrets(poller, store, clock, zoho, tmp_path):
    # Vendor error text that quotes our credentials must not carry them into the database
    # (stored snapshots, history and outbox rows are shown in Slack and kept on disk).
    leaky = {
        "errorCode": 7301,
        "errorMessage": f"denied for {ACCESS_TOKEN} / {ENV['ZOHO_CLIENT_SECRET']} "
        f"/ {ENV['ZOHO_REFRESH_TOKEN']} / {ENV['ZOHO_CLIENT_ID']}",
    }
    zoho.job("1", httpx.Response(400, json={"status": "failure", "data": leaky}))
    zoho.job("2", *steps_success(10, 1, 1, now=clock.now))
    a = watch(store, clock, job="1")
    b = watch(store, clock, job="2")
    for _ in range(4):
        poller.run_once()
        clock.advance(10)
    assert store.get_watch(a.id).state == "failed"
    assert "[redacted]" in store.transitions(a.id)[-1].error_message
    assert store.get_watch(b.id).state == "succeeded"

    raw = b"".join(p.read_bytes() for p in Path(tmp_path).glob("syncwatch.db*"))
    for secret in [*Settings.from_env(ENV).secrets(), ACCESS_TOKEN]:
        assert secret.encode() not in raw


def test_a_tick_claims_nothing_while_a_burst_of_requests_is_answered(poller, store, clock, zoho):
    zoho.job("2480011000000512007", *steps_success(1200, 1, 1, now=clock.now))
    w = watch(store, clock)
    answered = threading.Event()
    asked = threading.Event()

    def requests_answered() -> bool:
        asked.set()
        return answered.wait(10)

    poller.requests_answered = requests_answered
    ticking = threading.Thread(target=poller.tick)
    ticking.start()
    try:
        assert asked.wait(5)
        assert store.get_watch(w.id).lease_owner is None  # not claimed: the answers go first
        assert zoho.polls() == 0
    finally:
        answered.set()
        ticking.join(10)
    assert poller.drain()
    assert zoho.polls() == 1 and store.get_watch(w.id).polls == 1
