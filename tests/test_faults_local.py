"""Local faults: a busy database, a disk that can't take the result file, query strings in logs."""

from __future__ import annotations

import sqlite3
import threading
import time

import httpx

from bot.cli import RedactingFilter
from bot.config import Settings
from bot.lifecycle import PollPolicy
from bot.poller import Poller
from bot.vendors import VendorContext, build_http_client
from bot.vendors.pool import VendorPool
from storage import NewWatch

ENV = {
    "ZOHO_CLIENT_ID": "test-client-id",
    "ZOHO_CLIENT_SECRET": "test-client-secret",
    "ZOHO_REFRESH_TOKEN": "test-refresh-token",
    "ZOHO_ANALYTICS_ORG_ID": "55522777",
    "ZOHO_ACCOUNTS_URL": "https://accounts.zoho.test",
    "ZOHO_ANALYTICS_API_URL": "https://analytics.zoho.test",
}


def test_a_writer_waits_for_a_busy_database_instead_of_failing(store, clock, tmp_path):
    other = sqlite3.connect(
        str(tmp_path / "syncwatch.db"), isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock for a moment
    releaser = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    releaser.start()
    started = time.monotonic()
    try:
        draft = NewWatch("zoho-analytics", "1/2", "default", "C1", "U1", 10, clock.now + 60)
        (w,) = store.create_watches([draft], clock.now)
    finally:
        releaser.join()
        other.close()
    assert store.get_watch(w.id) is not None
    assert time.monotonic() - started >= 0.25  # it waited rather than erroring


def test_a_result_file_that_cannot_be_stored_is_retried_not_lost(store, clock, tmp_path):
    big_errors = "row failed: bad value\n" * 5000  # >64 KB summary: goes to the spool
    done = {
        "status": "success",
        "data": {
            "jobCode": "1004",
            "jobStatus": "JOB COMPLETED",
            "jobInfo": {
                "importSummary": {"totalRowCount": 10, "successRowCount": 5},
                "importErrors": big_errors,
            },
        },
    }

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return httpx.Response(200, json=done)

    ctx = VendorContext(
        http=build_http_client(httpx.MockTransport(vendor)),
        clock=clock,
        spool_dir=str(tmp_path / "missing" / "spool"),  # can't be written: like a full disk
    )
    poller = Poller(
        store,
        VendorPool(Settings.from_env(ENV).connections, ctx),
        PollPolicy(),
        clock=clock,
        rand=lambda: 0.0,
    )
    try:
        draft = NewWatch("zoho-analytics", "1/2", "default", "C1", "U1", 10, clock.now + 3600)
        (w,) = store.create_watches([draft], clock.now)
        poller.run_once()
        kept = store.get_watch(w.id)
        assert kept.status == "active" and kept.attempts == 1
        assert "couldn't save the result file here" in kept.last_error
        assert [t.event for t in store.transitions(w.id)] == []  # no ending announced yet
        (tmp_path / "missing" / "spool").mkdir(parents=True)  # space again
        clock.advance(600)
        poller.run_once()
        finished = store.get_watch(w.id)
        assert (finished.status, finished.state) == ("done", "partial")
        assert [r.kind for r in store.outbox_rows(w.id)].count("upload") == 1
    finally:
        poller.shutdown()
        ctx.http.close()


def test_query_strings_never_reach_the_log():
    line = (
        "HTTP Request: POST https://analyticsapi.zoho.com/restapi/v2/workspaces/1/datasources/2"
        '/sync?CONFIG=%7B%22password%22%3A%22pw%22%7D "HTTP/1.1 204 No Content"'
    )
    clean = RedactingFilter([]).redact(line)
    assert "password" not in clean and "/datasources/2/sync?[redacted]" in clean
