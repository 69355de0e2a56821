"""Shared fixtures: a fake clock, a file-backed store, the local Slack and Zoho fakes, and the
real bot over HTTP against them."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import httpx
import pytest

from bot import poller
from bot.config import Settings
from bot.runtime import BotProcess
from bot.simulators.micro import MicroSimulator
from bot.simulators.slack import FakeSlackAPI
from bot.simulators.zoho import ZohoSimulator
from bot.simulators.zoho_crm import ZohoCrmSimulator
from bot.simulators.zuora import ZuoraSimulator
from storage import Store
from storage.engine import DatabaseURL, safe_dsn
from tests.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    s = Store(str(tmp_path / "syncwatch.db"))
    yield s
    s.close()


PG_SKIP = (
    "PostgreSQL tests skipped: set SYNCWATCH_TEST_PG to a DSN "
    "(e.g. postgresql://postgres@127.0.0.1/test) to run them"
)


# Read once: fixtures that clear SYNCWATCH_* for a bot's environment must not turn it off.
TEST_PG = os.environ.get("SYNCWATCH_TEST_PG", "").strip()


def pytest_report_header(config: pytest.Config) -> str:
    dsn = TEST_PG
    return f"PostgreSQL tests: {safe_dsn(dsn)}" if dsn else PG_SKIP


@pytest.fixture
def pg_url() -> Iterator[DatabaseURL]:
    """A DatabaseURL for a fresh, empty schema of the SYNCWATCH_TEST_PG database, dropped
    afterwards; each test (and each xdist worker) gets its own. Without the variable the
    test is skipped; with it, a server that can't be reached is an error, not a skip."""
    dsn = TEST_PG
    if not dsn:
        pytest.skip(PG_SKIP)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    # A URL (not key=value conninfo), so it also works as SYNCWATCH_DB for a whole bot.
    url = f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"
    try:
        yield DatabaseURL("postgresql", url)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    """The store on each engine in turn: the store's contract holds on both."""
    if request.param == "postgresql":
        url: str | DatabaseURL = request.getfixturevalue("pg_url")
    else:
        url = str(tmp_path / "syncwatch.db")
    s = Store(url)
    yield s
    s.close()


@pytest.fixture
def fake_slack() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as fake:
        yield fake


@pytest.fixture
def zoho_sim() -> Iterator[ZohoSimulator]:
    with ZohoSimulator() as sim:
        yield sim


@pytest.fixture
def zuora_sim() -> Iterator[ZuoraSimulator]:
    with ZuoraSimulator() as sim:
        yield sim


@pytest.fixture
def crm_sim(zoho_sim) -> Iterator[ZohoCrmSimulator]:
    with ZohoCrmSimulator(zoho=zoho_sim) as sim:
        yield sim


@pytest.fixture
def micro_sim() -> Iterator[MicroSimulator]:
    with MicroSimulator() as sim:
        yield sim


# -- the real app over HTTP, against the local fakes ------------------------------------------

SIGNING_SECRET = "test-signing-secret"


def bot_env(
    tmp_path,
    fake_slack: FakeSlackAPI,
    zoho_sim: ZohoSimulator,
    zuora_sim: ZuoraSimulator | None = None,
    micro_sim: MicroSimulator | None = None,
    crm_sim: ZohoCrmSimulator | None = None,
) -> dict[str, str]:
    """Environment for a bot that talks only to the local fakes."""
    extra = {"ZOHO_CRM_API_URL": crm_sim.root} if crm_sim is not None else {}
    if micro_sim is not None:
        extra |= {
            "MICRO_API_KEY": micro_sim.api_key,
            "MICRO_TEAM_ID": micro_sim.team_id,
            "MICRO_BASE_URL": micro_sim.url,
        }
    if zuora_sim is not None:
        extra |= {
            "ZUORA_CLIENT_ID": zuora_sim.client_id,
            "ZUORA_CLIENT_SECRET": zuora_sim.client_secret,
            "ZUORA_BASE_URL": zuora_sim.url,
        }
    return extra | {
        "SLACK_BOT_TOKEN": "xoxb-testtok",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "SYNCWATCH_DB": str(tmp_path / "syncwatch.db"),
        "SYNCWATCH_HOST": "127.0.0.1",
        "PORT": "0",
        "SYNCWATCH_POLL_INTERVAL": "1",
        "ZOHO_CLIENT_ID": zoho_sim.client_id,
        "ZOHO_CLIENT_SECRET": zoho_sim.client_secret,
        "ZOHO_REFRESH_TOKEN": zoho_sim.refresh_token,
        "ZOHO_ACCOUNTS_URL": zoho_sim.url,
        "ZOHO_ANALYTICS_API_URL": zoho_sim.url,
        "ZOHO_ANALYTICS_ORG_ID": zoho_sim.org_id,
    }


@pytest.fixture
def cli_env(monkeypatch, tmp_path, fake_slack, zoho_sim, crm_sim) -> dict[str, str]:
    """An operator's shell for `syncwatch` commands run in-process: none of this machine's
    syncwatch, Slack or vendor settings, the fakes' instead, the working directory a fresh
    folder. Returns the settings made."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "SYNCWATCH_", "ZOHO_", "ZUORA_", "MICRO_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    values = bot_env(tmp_path, fake_slack, zoho_sim, crm_sim=crm_sim)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def signed_headers(body: str, ts: int | None = None, secret: str = SIGNING_SECRET) -> dict:
    stamp = str(int(time.time()) if ts is None else ts)
    sig = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={sig}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


class SlackDriver:
    """Sends what Slack would send to the bot's HTTP endpoint, signed."""

    def __init__(self, base_url: str, fake_slack: FakeSlackAPI) -> None:
        self.base_url = base_url
        self.fake = fake_slack
        self._n = 0

    def post(self, form: dict[str, str], **kw):
        body = urlencode(form)
        return httpx.post(
            f"{self.base_url}/slack/events",
            content=body,
            headers=signed_headers(body, **kw),
            timeout=10,
        )

    def slash(
        self,
        text: str,
        *,
        user: str = "U1",
        channel: str = "C1",
        key: str | None = None,
        channel_name: str | None = None,
    ):
        self._n += 1
        key = key or f"cmd{self._n}"
        form = {
            "command": "/syncwatch",
            "text": text,
            "team_id": "T1",
            "user_id": user,
            "channel_id": channel,
            "response_url": self.fake.response_url(key),
            "trigger_id": f"trigger-{self._n}",
        }
        if channel_name is not None:
            form["channel_name"] = channel_name
        return self.post(form), key

    def ask(self, text: str, **kw) -> str:
        """The private answer to a command as the person sees it: the ack's body, or what
        was sent to `response_url` after an empty ack (a watch or a sync)."""
        response, key = self.slash(text, **kw)
        assert response.status_code == 200
        return response.text or self.fake.wait_for(f"respond/{key}")[0].params["text"]

    def click(
        self,
        action_id: str,
        value: str,
        message_ts: str,
        *,
        user: str = "U1",
        channel: str = "C1",
        key: str = "click",
    ):
        payload = {
            "type": "block_actions",
            "team": {"id": "T1"},
            "user": {"id": user},
            "channel": {"id": channel},
            "response_url": self.fake.response_url(key),
            "container": {"type": "message", "channel_id": channel, "message_ts": message_ts},
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "value": value,
                    "block_id": "b1",
                    "action_ts": "1",
                }
            ],
        }
        return self.post({"payload": json.dumps(payload)})


# The real bot ticks once a second and polls a watch at most once a second
# (SYNCWATCH_POLL_INTERVAL's minimum), and paces its Slack posts as Slack's limits ask. A
# test about what the channel ends up showing needs neither: it runs the same code on a
# 50 ms tick, with 50 ms between polls and unpaced posts (the fakes have no limits). A test
# that needs otherwise passes `poll_interval=` or `pace_slack=True` to start_bot; pacing
# itself is tested against a fake clock (test_notifier_pacing.py).
FAST_TICK = 0.05
FAST_POLL = 0.05


def fast_settings(env: dict[str, str], poll_interval: float | None = FAST_POLL) -> Settings:
    """Settings from `env`, with a poll interval below what the environment may ask for."""
    return dataclasses.replace(Settings.from_env(env), poll_interval=poll_interval)


class BotStarter:
    """Starts the real bot (BotProcess over HTTP) against the fakes; `stop` shuts one down
    (those still running are shut down after the test)."""

    def __init__(self, default_env: Callable[[], dict[str, str]], fake_slack) -> None:
        self._default_env = default_env
        self._fake_slack = fake_slack
        self._running: list[BotProcess] = []

    def __call__(
        self,
        env: dict[str, str] | None = None,
        *,
        poll_interval: float | None = FAST_POLL,
        **kwargs,
    ) -> tuple[BotProcess, SlackDriver]:
        """`env` defaults to Slack and Zoho Analytics only; BotProcess's own arguments
        (`pace_slack=`, `clock=`, ...) pass through."""
        kwargs.setdefault("pace_slack", False)
        bot = BotProcess(fast_settings(env or self._default_env(), poll_interval), **kwargs)
        self._running.append(bot)
        bot.start()
        port = bot.serve_http(background=True)
        return bot, SlackDriver(f"http://127.0.0.1:{port}", self._fake_slack)

    def stop(self, bot: BotProcess) -> None:
        self._running.remove(bot)
        bot.shutdown()

    def stop_all(self) -> None:
        while self._running:
            self.stop(self._running[-1])


@pytest.fixture
def start_bot(tmp_path, fake_slack, zoho_sim, monkeypatch) -> Iterator[BotStarter]:
    """Starts real bots on the fast tick, and shuts them down after the test."""
    monkeypatch.setattr(poller, "TICK_SECONDS", FAST_TICK)
    starter = BotStarter(lambda: bot_env(tmp_path, fake_slack, zoho_sim), fake_slack)
    yield starter
    starter.stop_all()


@pytest.fixture
def running(start_bot) -> tuple[BotProcess, SlackDriver]:
    """The real bot (BotProcess over HTTP) against the Slack and Zoho fakes, and a driver
    that sends it what Slack would."""
    return start_bot()


def wait_for_ticks(bot: BotProcess, count: int, timeout: float = 10.0) -> None:
    """Return once the poller has run `count` more whole ticks (so anything due was claimed)."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

    done = threading.Semaphore(0)

    def on_event(event) -> None:
        if event.job_id == "poll-tick":
            done.release()

    scheduler = bot.poller._scheduler
    scheduler.add_listener(on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    try:
        deadline = time.monotonic() + timeout
        for _ in range(count + 1):  # the tick running now may have started before
            assert done.acquire(timeout=max(0.0, deadline - time.monotonic())), "no poll tick"
    finally:
        scheduler.remove_listener(on_event)
