"""GET /healthz: one JSON check per link, 200 only when every one is true
(docs/operations.md#health)."""

from __future__ import annotations

import sqlite3
import threading
import time
from types import SimpleNamespace

import httpx
import pytest

from bot import health, poller
from bot.runtime import BotProcess
from bot.simulators.slack_socket import FakeSocketModeServer
from bot.simulators.zoho import steps_success
from tests.conftest import FAST_TICK, bot_env, fast_settings
from tests.fakes import FakeClock, GatedTransport
from tests.processes import wait_until

WS, JOB = "2480011000000498001", "2480011000000512007"


def healthz(base_url: str) -> tuple[int, dict]:
    response = httpx.get(f"{base_url}/healthz", timeout=5)
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()


def checks_of(base_url: str) -> dict:
    return healthz(base_url)[1]["checks"]


ALL_TRUE = {"slack": True, "database": True, "poller": True, "notifier": True}


# -- the pieces ---------------------------------------------------------------------------


def test_render_is_ok_only_when_every_check_is_true() -> None:
    ok, body = health.render({"notifier": True, "slack": True, "database": True})
    assert ok is True
    assert body == b'{"ok": true, "checks": {"slack": true, "database": true, "notifier": true}}\n'
    ok, body = health.render({"slack": "token rejected (invalid_auth)", "database": True})
    assert ok is False
    assert b'"slack": "token rejected (invalid_auth)"' in body


def test_heartbeat_is_stuck_only_after_its_threshold() -> None:
    mono = FakeClock(100.0)
    beat = health.Heartbeat(30.0, mono)
    mono.advance(30)
    assert beat.problem() is None
    mono.advance(1.4)
    assert beat.problem() == "stuck for 31 s"
    beat.beat()
    assert beat.problem() is None


def session(pong: float | None, first_ping: float | None = None) -> SimpleNamespace:
    return SimpleNamespace(last_ping_pong_time=pong, _first_ping_time=first_ping)


def socket_client(connected: bool, current_session=None, closed: bool = False):
    """The attributes of slack_sdk.socket_mode.builtin.SocketModeClient that health reads."""
    return SimpleNamespace(
        closed=closed, is_connected=lambda: connected, current_session=current_session
    )


@pytest.mark.parametrize(
    "client, expected",
    [
        (socket_client(True, session(pong=996.0)), None),  # a pong one interval ago
        (socket_client(True, session(pong=None, first_ping=None)), None),  # just connected
        (socket_client(True, session(pong=993.0)), "no pong from Slack for 7 s"),
        (socket_client(True, session(pong=None, first_ping=990.0)), "no pong from Slack for 10 s"),
        (socket_client(False, session(pong=999.0)), "not connected"),
        (socket_client(False, None), "not connected"),
        (socket_client(False, None, closed=True), "closed"),
    ],
)
def test_socket_problem_reads_the_sdk_client(client, expected) -> None:
    assert health.socket_problem(client, now=1000.0, ping_interval=3.0) == expected


# -- the real bot over HTTP ------------------------------------------------------------------


def test_healthz_is_json_with_every_link(running) -> None:
    _, slack = running
    status, body = healthz(slack.base_url)
    assert (status, body) == (200, {"ok": True, "checks": ALL_TRUE})  # no socket over HTTP


def test_a_rejected_bot_token_is_named(running, fake_slack, zoho_sim) -> None:
    _, slack = running
    zoho_sim.add_import_job(WS, JOB, steps_success())
    fake_slack.fail_next("chat.postMessage", "token_revoked")
    slack.slash(f"watch za {WS}/{JOB}")
    status, body = wait_until(
        lambda: (r := healthz(slack.base_url))[0] == 503 and r, what="503 from /healthz"
    )
    assert body == {"ok": False, "checks": ALL_TRUE | {"slack": "token rejected (token_revoked)"}}


def test_a_poll_that_never_ends_makes_the_poller_unhealthy_until_it_does(
    start_bot, zoho_sim
) -> None:
    mono = FakeClock(1000.0)
    vendor = GatedTransport(hold=f"/importjobs/{JOB}")
    bot, slack = start_bot(vendor_transport=vendor, monotonic=mono)
    zoho_sim.add_import_job(WS, JOB, steps_success())
    slack.slash(f"watch za {WS}/{JOB}")
    assert vendor.entered.wait(10), "the poll never reached the vendor"
    assert healthz(slack.base_url)[0] == 200  # a poll in progress is fine
    mono.advance(
        121
    )  # past the 120 s a poll may take (the ticks' heartbeat catches up at the next tick)
    checks = wait_until(
        lambda: str((c := checks_of(slack.base_url))["poller"]).startswith("a poll") and c,
        what="the poller reported",
    )
    assert checks == ALL_TRUE | {"poller": "a poll has run for 121 s (more than 120 s)"}
    assert healthz(slack.base_url)[0] == 503
    vendor.release()
    wait_until(lambda: healthz(slack.base_url) == (200, {"ok": True, "checks": ALL_TRUE}))


def test_ticks_that_cannot_finish_make_the_poller_unhealthy(start_bot, tmp_path) -> None:
    mono = FakeClock(1000.0)
    bot, slack = start_bot(monotonic=mono)
    assert healthz(slack.base_url)[0] == 200
    # Another process holds the write lock (an operator's sqlite3 shell, say): every tick's
    # claim waits SQLite's busy timeout and fails, and no tick finishes.
    locker = sqlite3.connect(bot.settings.db_path, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        checks = wait_until(
            lambda: (c := checks_of(slack.base_url))["poller"] != True and c,  # noqa: E712
            what="the poller reported",
            meanwhile=lambda: mono.advance(5),  # a tick that finished meanwhile beats at once
        )
        assert checks["poller"].startswith("stuck for ")
        assert checks["database"] is True  # reads still work: it is the poller that is stuck
        assert healthz(slack.base_url)[0] == 503
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    wait_until(lambda: healthz(slack.base_url) == (200, {"ok": True, "checks": ALL_TRUE}))


def test_a_slack_call_that_never_returns_makes_the_notifier_unhealthy_until_it_does(
    start_bot, fake_slack, zoho_sim
) -> None:
    mono = FakeClock(1000.0)
    bot, slack = start_bot(monotonic=mono)
    zoho_sim.add_import_job(WS, JOB, steps_success())
    hold = fake_slack.hold_next("chat.postMessage")
    slack.slash(f"watch za {WS}/{JOB}")
    assert hold.arrived.wait(10), "the parent post never reached Slack"
    mono.advance(151)  # no progress for longer than the slowest legitimate step (150 s)
    status, body = healthz(slack.base_url)
    assert status == 503
    assert body["checks"]["notifier"] == "stuck for 151 s"
    hold.release()
    wait_until(lambda: healthz(slack.base_url) == (200, {"ok": True, "checks": ALL_TRUE}))
    assert fake_slack.messages("C1"), "the held post went out once released"


def test_the_delivery_loop_survives_a_database_error_between_rounds(
    running, fake_slack, zoho_sim, monkeypatch
) -> None:
    bot, slack = running
    real = bot.store.next_outbox_at
    raised = threading.Event()

    def flaky(now: float, owner: str = ""):
        if not raised.is_set():
            raised.set()
            raise sqlite3.OperationalError("disk I/O error")
        return real(now, owner)

    monkeypatch.setattr(bot.store, "next_outbox_at", flaky)
    assert raised.wait(5), "the loop never asked"
    zoho_sim.add_import_job(WS, JOB, steps_success())
    slack.slash(f"watch za {WS}/{JOB}")
    wait_until(lambda: fake_slack.messages("C1"), what="a post after the error")
    assert healthz(slack.base_url) == (200, {"ok": True, "checks": ALL_TRUE})


# -- Socket Mode, against a local WebSocket end --------------------------------------------

PING = 0.5  # the SDK pings every PING s; /healthz reports a link quiet for 2 * PING


@pytest.fixture
def socket_bot(tmp_path, fake_slack, zoho_sim, monkeypatch):
    """The real bot in Socket Mode: its Web API calls go to the fake Slack, whose
    apps.connections.open hands out the local WebSocket end."""
    monkeypatch.setattr(poller, "TICK_SECONDS", FAST_TICK)
    with FakeSocketModeServer() as server:
        fake_slack.socket_url = server.url
        env = bot_env(tmp_path, fake_slack, zoho_sim) | {"SLACK_APP_TOKEN": fake_slack.app_token}
        bot = BotProcess(fast_settings(env), pace_slack=False, socket_ping_interval=PING)
        try:
            bot.start()
            port = bot.serve_socket_mode(background=True)
            server.wait_opened(1)
            yield f"http://127.0.0.1:{port}", server
        finally:
            bot.shutdown()


SOCKET_OK = (200, {"ok": True, "checks": ALL_TRUE | {"socket": True}})


def test_socket_mode_health_checks_the_link(socket_bot) -> None:
    base_url, _ = socket_bot
    wait_until(lambda: healthz(base_url) == SOCKET_OK, what="a healthy link")
    assert list(checks_of(base_url)) == ["slack", "socket", "database", "poller", "notifier"]


def test_a_link_that_stops_answering_pings_shows_within_two_intervals(socket_bot) -> None:
    base_url, server = socket_bot
    wait_until(lambda: healthz(base_url) == SOCKET_OK, what="a healthy link")
    server.go_silent()  # TCP lost without a close: the socket still looks open
    started = time.monotonic()
    status, body = wait_until(
        lambda: (r := healthz(base_url))[1]["checks"]["socket"] != True and r,  # noqa: E712
        what="the quiet link reported",
    )
    assert time.monotonic() - started < 2 * PING + 2  # two intervals, and scheduling slack
    assert status == 503
    assert body["checks"]["socket"].startswith("no pong from Slack for ")
    assert body["checks"] | {"socket": True} == ALL_TRUE | {"socket": True}
    server.go_silent(False)
    wait_until(lambda: healthz(base_url) == SOCKET_OK, what="healthy again")


def test_a_dropped_link_is_unhealthy_until_the_sdk_reconnects(socket_bot) -> None:
    base_url, server = socket_bot
    wait_until(lambda: healthz(base_url) == SOCKET_OK, what="a healthy link")
    server.drop_links()  # a reset, no close frame
    status, body = wait_until(
        lambda: (r := healthz(base_url))[1]["checks"]["socket"] != True and r,  # noqa: E712
        what="the dropped link reported",
    )
    assert status == 503
    server.wait_opened(2)  # the SDK opened a new link ...
    wait_until(lambda: healthz(base_url) == SOCKET_OK, what="healthy again")  # ... and it works
