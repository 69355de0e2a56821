"""A reply Python can't use is a garbage reply for every vendor: a TransientError that backs
off like a 5xx (docs/vendors.md#counts-and-codes), never an internal error."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from bot.vendors import SPECS, TransientError, VendorContext, build_http_client
from bot.vendors.base import FileRef, JobSnapshot, State, VendorSpec
from bot.vendors.micro import MicroConnection
from bot.vendors.zuora_auth import ZuoraConnection
from bot.vendors.zuora_files import ResultDownloader
from tests.fakes import FakeClock, zoho_connection

DEPTH = 10_000
GARBAGE = {
    "deep-array": b"[" * DEPTH + b"]" * DEPTH,
    "deep-inside-an-object": b'{"data": ' + b'{"a": ' * DEPTH + b"1" + b"}" * DEPTH + b"}",
    "not-unicode": b'{"status": "\xff\xfe\xfa"}',
    "a-string": b'"completed"',
    "a-list": b'[{"status": "completed"}]',
}
CONNECTIONS = {
    "zoho": zoho_connection(crm_api_url="https://crm.zoho.test"),
    "zuora": ZuoraConnection("default", "zuora-client", "zuora-secret", "https://rest.zuora.test"),
    "micro": MicroConnection(
        "default", "micro-api-key", "3b9e6f0a-2c4d-4e8b-9a71-5d0c2e8f1a64", "https://micro.test"
    ),
}


def client_answering(spec: VendorSpec, body: bytes, tmp_path):
    """`spec`'s client, whose vendor answers every call but the token request with `body`."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path in ("/oauth/v2/token", "/oauth/token"):
            return httpx.Response(200, json={"access_token": "live-token-1", "expires_in": 3600})
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    http = build_http_client(httpx.MockTransport(handler))
    ctx = VendorContext(http=http, clock=FakeClock(), spool_dir=str(tmp_path))
    return spec.build(CONNECTIONS[spec.family], ctx), http


@pytest.mark.parametrize("body", GARBAGE.values(), ids=GARBAGE.keys())
@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_every_vendor_calls_an_unusable_reply_a_transient_failure(spec, body, tmp_path):
    client, http = client_answering(spec, body, tmp_path)
    try:
        with pytest.raises(TransientError) as err:
            client.fetch(spec.example_ref)
    finally:
        http.close()
    assert "unreadable" in err.value.message or "without" in err.value.message


def test_a_refused_download_with_a_deep_body_is_a_note(tmp_path):
    """Zuora's download refusals are read for their reasons: too deep to read is no reason."""
    deep = b"[" * 8_000 + b"]" * 8_000  # within the 16 KB of an error body that is read

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=deep, headers={"Content-Type": "application/json"})

    http = build_http_client(httpx.MockTransport(handler))
    ctx = VendorContext(http=http, clock=FakeClock(), spool_dir=str(tmp_path))

    class Token:
        def access_token(self) -> str:
            return "live-token-1"

        def invalidate(self, token: str) -> None:
            pass

    snap = JobSnapshot(State.SUCCEEDED, "completed", files=(FileRef("ab" * 16, "Invoices"),))
    try:
        (note,) = ResultDownloader(ctx, "https://rest.zuora.test", Token(), str).results(
            "cd" * 16, snap
        )
    finally:
        http.close()
    assert note.note == "Invoices: Zuora refused the download (HTTP 400)"


def poll_once(tmp_path, clock: FakeClock, body: Callable[[httpx.Request], httpx.Response]):
    """One poll of a Zoho Analytics watch through the real poller, the vendor answering
    `body`; the watch and its history afterwards."""
    from bot.lifecycle import PollPolicy
    from bot.poller import Poller
    from bot.vendors.pool import VendorPool
    from storage import NewWatch, Store

    spec = SPECS["zoho-analytics"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "live-token-1", "expires_in": 3600})
        return body(request)

    ctx = VendorContext(http=build_http_client(httpx.MockTransport(handler)), clock=clock)
    pool = VendorPool(lambda family: {"default": CONNECTIONS["zoho"]}, ctx)
    store = Store(str(tmp_path / "syncwatch.db"))
    poller = Poller(store, pool, PollPolicy(), clock=clock, rand=lambda: 0.0)
    new = NewWatch(
        vendor=spec.key,
        ref=spec.example_ref,
        connection="default",
        channel_id="C1",
        requester_id="U1",
        interval_s=10.0,
        deadline=clock.now + 86400,
    )
    try:
        (w,) = store.create_watches([new], clock.now)
        poller.run_once()
        return store.get_watch(w.id), store.transitions(w.id)
    finally:
        poller.shutdown()
        pool.close()
        store.close()


def test_a_poll_whose_reply_is_too_deep_backs_off_and_says_so(tmp_path, caplog):
    """Through the poller: the watch keeps its state, counts a failed check, shows why, and
    nothing is logged as an internal error."""
    clock = FakeClock()
    deep = GARBAGE["deep-inside-an-object"]
    caplog.set_level(logging.WARNING)
    failing, history = poll_once(
        tmp_path,
        clock,
        lambda _: httpx.Response(200, content=deep, headers={"Content-Type": "application/json"}),
    )
    assert (failing.status, failing.state, failing.attempts, history) == ("active", None, 1, [])
    assert "unreadable reply" in (failing.last_error or "")
    assert failing.next_poll_at == pytest.approx(clock.now + 10)  # the backoff, not at once
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_retry_after_zero_does_not_mean_a_poll_a_second(tmp_path):
    clock = FakeClock()
    throttled, _ = poll_once(
        tmp_path, clock, lambda _: httpx.Response(429, headers={"Retry-After": "0"})
    )
    assert throttled.attempts == 1 and "rate limit" in (throttled.last_error or "")
    assert throttled.next_poll_at == pytest.approx(clock.now + 10, abs=0.1)


# -- huge text, many statuses ---------------------------------------------------------------


def test_a_ten_megabyte_status_is_stored_clipped(tmp_path):
    """A vendor's 10 MB unknown status reaches the watch, its snapshot and its history
    clipped to the documented limit."""
    from bot.vendors.boundary import STATUS_CHARS

    huge = "NEW STATUS " + "x" * 10_000_000
    polled, (history,) = poll_once(
        tmp_path,
        FakeClock(),
        lambda _: httpx.Response(200, json={"status": "success", "data": {"jobStatus": huge}}),
    )
    assert polled.state == "unknown"
    shown = polled.raw_status or ""
    assert len(shown) == STATUS_CHARS
    assert shown.startswith("NEW STATUS xxx") and shown.endswith("…")
    assert len(polled.snapshot or "") < 2 * STATUS_CHARS
    assert history.raw_status == shown
    stored = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name.startswith("syncwatch.db"))
    assert stored < 2_000_000


def test_unknown_statuses_are_remembered_in_a_bounded_window(caplog):
    """5,000 made-up statuses: each is warned about once while it is in the window, and the
    window holds at most SEEN_KEYS_KEPT keys (a 10 MB status costs no more than a short one)."""
    from bot.vendors.base import SEEN_KEYS_KEPT, SeenKeys
    from bot.vendors.zoho_analytics import snapshot_from

    seen = SeenKeys()
    caplog.set_level(logging.WARNING, logger="bot.vendors.zoho_analytics")
    statuses = [f"STATUS {n}" for n in range(5_000)]
    for status in statuses:
        snapshot_from({"jobStatus": status}, seen)
        snapshot_from({"jobStatus": status}, seen)  # the next poll: not said again
    assert len(seen) == SEEN_KEYS_KEPT
    assert len(caplog.records) == 5_000
    caplog.clear()
    for status in statuses[-SEEN_KEYS_KEPT:]:  # still in the window
        snapshot_from({"jobStatus": status}, seen)
    assert caplog.records == []
    snapshot_from({"jobStatus": statuses[0]}, seen)  # long gone: said again
    assert len(caplog.records) == 1
    assert seen.first("x" * 10_000_000) and len(seen) == SEEN_KEYS_KEPT
