"""Vendor callbacks at /hooks/<vendor>/<key>: each vendor's shape, unknown jobs and keys,
revocation, and a flood of forged callbacks held to the vendor's budget."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from bot.api import credentials
from bot.simulators.zoho import steps_success
from bot.simulators.zuora import steps_two_batches
from tests.conftest import bot_env
from tests.test_api import call, make_token

WS, JOB = "2480011000000498001", "2480011000000512007"
AQUA = "2c92c0f86f3a5b0e016f3f0e8a3b1234"
CRM_JOB = "6120045000001938011"


def key_of(token: str) -> str:
    return credentials.hook_key(credentials.digest(token))


@pytest.fixture
def hooked(start_bot, fake_slack, zoho_sim, zuora_sim, crm_sim, tmp_path):
    """A bot with Zoho (Analytics and CRM) and Zuora, polling only when told (an hour's
    interval): what a callback does shows in the vendor's poll count."""
    fake_slack.set_channel("C1", creator="U1")
    env = bot_env(tmp_path, fake_slack, zoho_sim, zuora_sim=zuora_sim, crm_sim=crm_sim)
    bot, slack = start_bot(env, poll_interval=3600)
    token = make_token(slack, fake_slack)
    return bot, slack, token


def hook(slack, vendor: str, key: str, query: str = "", **kw) -> httpx.Response:
    method = "POST" if ("json" in kw or "content" in kw or "data" in kw) else "GET"
    url = f"{slack.base_url}/hooks/{vendor}/{key}" + (f"?{query}" if query else "")
    return httpx.request(method, url, timeout=10, **kw)


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_zuora_callback_for_an_unwatched_job_starts_a_watch_named_for_the_token(
    hooked, fake_slack, zuora_sim
):
    bot, slack, token = hooked
    zuora_sim.add_job(AQUA, steps_two_batches(AQUA))
    answer = hook(slack, "zuora", key_of(token), f"job={AQUA.upper()}&status=Completed")
    assert answer.status_code == 202
    assert answer.json()["status"] == "watching"
    [watch] = bot.store.list_watches(statuses=None)
    assert (watch.vendor, watch.ref, watch.channel_id) == ("zuora", AQUA, "C1")
    parent = fake_slack.wait_for("chat.postMessage")[0]
    assert "Started by *nightly-etl*" in json.dumps(parent.params["blocks"])


def test_a_callback_for_a_watched_job_polls_it_at_once(hooked, zoho_sim):
    bot, slack, token = hooked
    zoho_sim.add_import_job(WS, JOB, steps_success(polls_queued=1, polls_running=5))
    created = call(
        slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": f"{WS}/{JOB}"}
    )
    assert created.status_code == 201
    wait_until(lambda: zoho_sim.polls(WS, JOB) == 1)  # the first poll, then an hour's wait
    # Zoho's payload is undocumented: the id is found in whatever field holds it.
    answer = hook(
        slack,
        "zoho-analytics",
        key_of(token),
        f"workspace={WS}",
        json={"result": {"jobId": JOB, "jobStatus": "JOB COMPLETED"}},
    )
    assert (answer.status_code, answer.json()) == (
        202,
        {"status": "polling", "watches": [created.json()["id"]]},
    )
    wait_until(lambda: zoho_sim.polls(WS, JOB) == 2)
    assert len(bot.store.list_watches(statuses=None)) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"json": {"job_id": CRM_JOB, "operation": "insert", "state": "COMPLETED"}},
        {"data": {"job_id": CRM_JOB, "state": "COMPLETED"}},
        {
            "content": f'details={{"job":{{"id":"{CRM_JOB}"}}}}'.encode(),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
    ],
    ids=["json", "form", "json-in-a-form-field"],
)
def test_a_zoho_crm_callback_body_names_the_job(hooked, body):
    bot, slack, token = hooked
    answer = hook(slack, "crm", key_of(token), **body)
    assert answer.status_code == 202, answer.text
    [watch] = bot.store.list_watches(statuses=None)
    assert (watch.vendor, watch.ref, watch.token_name) == ("zoho-crm", CRM_JOB, "nightly-etl")


def test_a_callback_without_a_job_id_changes_nothing(hooked):
    bot, slack, token = hooked
    answer = hook(slack, "zuora", key_of(token), "status=Completed", json={"note": "hello"})
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "no_job_id")
    assert bot.store.list_watches(statuses=None) == []


@pytest.mark.parametrize(
    "path",
    ["/hooks/zuora/swh_" + "a" * 32, "/hooks/zuora/anything", "/hooks/nope/KEY", "/hooks/zuora"],
)
def test_an_unknown_key_or_vendor_is_a_bare_404(hooked, path):
    bot, slack, token = hooked
    path = path.replace("KEY", key_of(token))
    answer = httpx.get(f"{slack.base_url}{path}?job={AQUA}", timeout=10)
    assert (answer.status_code, answer.text) == (404, "not found\n")
    assert bot.store.list_watches(statuses=None) == []


def test_revoking_a_token_kills_its_api_access_and_its_callbacks(hooked, fake_slack):
    bot, slack, token = hooked
    assert "Revoked token *nightly-etl*" in slack.ask("token revoke nightly-etl")
    answer = hook(slack, "zuora", key_of(token), f"job={AQUA}")
    assert (answer.status_code, answer.text) == (404, "not found\n")
    api = call(slack, "POST", "/api/v1/watches", token, json={"vendor": "zuora", "ref": AQUA})
    assert api.status_code == 401
    assert bot.store.list_watches(statuses=None) == []


def test_a_flood_of_forged_callbacks_stays_within_the_vendors_budget(
    start_bot, fake_slack, zoho_sim, tmp_path
):
    """200 callbacks in a second for one watched job: each makes the watch due, but every
    poll still takes a slot of the vendor account's bucket, so Zoho sees its budget's worth
    (at 12 a minute: a burst of 2, then one each 6 s), not 200 polls."""
    fake_slack.set_channel("C1", creator="U1")
    env = bot_env(tmp_path, fake_slack, zoho_sim) | {
        "ZOHO_RATE_PER_MINUTE": "12",
        "SYNCWATCH_API_RATE_PER_MINUTE": "100000",  # the vendor budget is what holds here
    }
    bot, slack = start_bot(env, poll_interval=3600)
    token = make_token(slack, fake_slack)
    zoho_sim.add_import_job(WS, JOB, steps_success(polls_running=1000))
    call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": f"{WS}/{JOB}"})
    wait_until(lambda: zoho_sim.polls(WS, JOB) == 1)
    started = time.monotonic()
    accepted = 0
    with httpx.Client(timeout=10) as client:
        for _ in range(200):
            url = f"{slack.base_url}/hooks/za/{key_of(token)}?workspace={WS}&jobId={JOB}"
            accepted += client.get(url).status_code == 202
    elapsed = time.monotonic() - started
    time.sleep(0.5)  # let the last claims run
    assert accepted == 200
    budget = 2 + (elapsed + 0.5) * 12 / 60 + 1  # the burst, the refill, the rounding
    assert zoho_sim.polls(WS, JOB) <= budget, (zoho_sim.polls(WS, JOB), elapsed)


def test_a_callback_wakes_the_poller_instead_of_waiting_for_its_tick(
    start_bot, fake_slack, zoho_sim, tmp_path, monkeypatch
):
    """Ticks 30 s apart: the watch made due by a callback is polled within a second, not at
    the next tick (docs/architecture.md#vendor-callbacks)."""
    from bot import poller

    monkeypatch.setattr(poller, "TICK_SECONDS", 30.0)
    fake_slack.set_channel("C1", creator="U1")
    bot, slack = start_bot(bot_env(tmp_path, fake_slack, zoho_sim), poll_interval=3600)
    token = make_token(slack, fake_slack)
    zoho_sim.add_import_job(WS, JOB, steps_success(polls_running=100))
    time.sleep(0.3)  # the tick at start has run; the next one is 30 s away
    answer = hook(slack, "za", key_of(token), f"workspace={WS}&jobId={JOB}")
    assert answer.status_code == 202 and answer.json()["status"] == "watching"
    wait_until(lambda: zoho_sim.polls(WS, JOB) == 1, timeout=5)
