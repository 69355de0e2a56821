"""`syncwatch run` tries every Slack token before it starts anything: a refused one ends the
start with one line naming the token and Slack's error, before any vendor is polled."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
import pytest

from bot import grammar
from bot.config import Settings
from bot.service import Requester, Service
from bot.simulators.slack_socket import FakeSocketModeServer
from storage import Store
from tests.conftest import bot_env
from tests.processes import clean_env, spawn_bot

WS, JOB = "2480011000000498001", "2480011000000512007"


def run_until_exit(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def with_a_due_watch(env: dict[str, str]) -> None:
    """A watch due now: a process that started polling would ask the vendor at once."""
    store = Store(env["SYNCWATCH_DB"])
    try:
        service = Service(store, Settings.from_env(env), clock=lambda: 1_767_225_600.0)
        service.handle(grammar.parse(f"watch za {WS}/{JOB}"), Requester("U1", "C1"))
    finally:
        store.close()


@pytest.mark.parametrize(
    "setting, expected",
    [
        (
            {"SLACK_APP_TOKEN": "xapp-1-A0FAKE-1-revokedtoken"},
            "syncwatch: can't start: Slack rejected SLACK_APP_TOKEN (invalid_auth)",
        ),
        (
            {},  # HTTP mode; the fake refuses the bot token below
            "syncwatch: can't start: Slack rejected SLACK_BOT_TOKEN (invalid_auth)",
        ),
    ],
)
def test_a_refused_token_stops_the_start_with_one_line_before_any_poll(
    tmp_path, fake_slack, zoho_sim, setting, expected
):
    env = clean_env(bot_env(tmp_path, fake_slack, zoho_sim) | setting | {"PORT": "0"})
    with_a_due_watch(env)
    if not setting:
        fake_slack.fail_next("auth.test", "invalid_auth")
    done = run_until_exit(env)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [expected]
    assert "revokedtoken" not in done.stderr + done.stdout
    assert zoho_sim.requests == []  # no token refresh, no poll: nothing started


@pytest.mark.slow  # a real `syncwatch run`, on the real one-second tick
def test_run_in_socket_mode_with_a_good_app_token_is_healthy(tmp_path, fake_slack, zoho_sim):
    with FakeSocketModeServer() as server:
        fake_slack.socket_url = server.url
        env = clean_env(bot_env(tmp_path, fake_slack, zoho_sim))
        bot = spawn_bot(env | {"SLACK_APP_TOKEN": fake_slack.app_token}, tmp_path)
        try:
            server.wait_opened(1)
            # the link is open on the server's side a moment before the client says so
            deadline = time.monotonic() + 10
            while True:
                body = httpx.get(f"{bot.url}/healthz", timeout=5).json()
                if body["ok"] or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert body["checks"]["socket"] is True and body["ok"] is True, body
        finally:
            assert bot.stop(signal.SIGTERM) == 0, bot.output()[-2000:]
