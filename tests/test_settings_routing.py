"""Routes: a new watch started in a channel with a route posts into the routed channel,
whichever way it was started (command, schedule run, API), and the person is told where."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bot import grammar
from bot.config import Settings
from bot.lifecycle import PollPolicy
from bot.schedules import ScheduleRunner
from bot.service import Service
from bot.simulators.zuora import steps_two_batches
from storage import ChannelSettings, MentionPolicy, NewWatch, QuietHours
from tests.conftest import bot_env
from tests.test_api import REF, call, make_token
from tests.test_api_callbacks import AQUA, hook, key_of, wait_until
from tests.test_service import ALICE, ZOHO


def route_zoho_here(store, target: str = "C0ALERTS", key: str = "vendor:zoho-analytics"):
    store.save_channel_settings(ChannelSettings("C1", routes=((key, target),)))


def test_a_routed_watch_posts_elsewhere_and_the_answer_says_where(store, clock):
    service = Service(store, Settings.from_env(ZOHO), clock=clock)
    route_zoho_here(store)
    reply = service.handle(grammar.parse("watch za 1/2"), ALICE)
    (watch,) = store.list_watches()
    assert watch.channel_id == "C0ALERTS"
    assert "Watching in <#C0ALERTS> (this channel routes Zoho Analytics import there)" in reply.text
    again = service.handle(grammar.parse("watch za 1/2"), ALICE)  # found in the routed channel
    assert f"already watching *Zoho Analytics import* `1/2` in <#C0ALERTS> as `{watch.id}`" in (
        again.text
    )
    assert len(store.list_watches()) == 1


def test_a_connection_route_is_named_in_the_answer(store, clock):
    env = {**ZOHO, "SYNCWATCH_CONFIG": ""}
    service = Service(store, Settings.from_env(env), clock=clock)
    route_zoho_here(store, "C0EU", "connection:default")
    reply = service.handle(grammar.parse("watch za 1/2"), ALICE)
    assert "Watching in <#C0EU> (this channel routes connection `default` there)" in reply.text


def test_an_unrouted_vendor_stays_in_the_channel(store, clock):
    service = Service(store, Settings.from_env(ZOHO), clock=clock)
    route_zoho_here(store, key="vendor:zuora")
    reply = service.handle(grammar.parse("watch za 1/2"), ALICE)
    assert store.list_watches()[0].channel_id == "C1"
    assert "Watching in" not in reply.text


def test_a_schedule_run_is_routed(store, clock):
    route_zoho_here(store, key="vendor:zoho-analytics-sync")
    runner = ScheduleRunner(store, PollPolicy(), clock=clock)
    try:
        at = dt.datetime(2026, 1, 5, 6, 30, tzinfo=dt.UTC).timestamp()
        clock.now = at - 60
        draft = NewWatch("zoho-analytics-sync", "1/2", "default", "C1", "U1", 0, 0)
        schedule = store.create_schedule(draft, "30 6 * * *", "UTC", at, clock.now)
        clock.now = at
        watch = store.get_watch(runner.run(schedule.id))
        assert watch.channel_id == "C0ALERTS"
    finally:
        runner.shutdown()


def test_a_watch_started_through_the_api_is_routed(start_bot, fake_slack, zoho_sim, tmp_path):
    fake_slack.set_channel("C1", creator="U1")
    bot, slack = start_bot(bot_env(tmp_path, fake_slack, zoho_sim))
    token = make_token(slack, fake_slack)
    route_zoho_here(bot.store)
    created = call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": REF})
    assert created.status_code == 201, created.text
    assert created.json()["channel"] == "C0ALERTS"
    parent = fake_slack.wait_for("chat.postMessage")[0]
    assert parent.params["channel"] == "C0ALERTS"
    seen = call(slack, "GET", f"/api/v1/watches/{created.json()['id']}", token)
    assert seen.status_code == 200 and seen.json()["channel"] == "C0ALERTS"


def test_app_home_shows_the_settings_of_the_channels_the_person_watches_in(store, clock):
    service = Service(store, Settings.from_env(ZOHO), clock=clock)
    service.handle(grammar.parse("watch za 1/2"), ALICE)
    home = json.dumps(service.home_view("U1"))
    assert "Channel settings" not in home  # C1 has none: nothing to show
    store.save_channel_settings(
        ChannelSettings(
            "C1", mention=MentionPolicy.NEVER, quiet=QuietHours("22:00", "07:00", "UTC")
        )
    )
    store.save_channel_settings(ChannelSettings("C0ELSE", broadcast_failures=True))
    home = json.dumps(service.home_view("U1"))
    assert "Channel settings" in home
    assert "<#C1> \\u2014 never mention the requester" in home
    assert "quiet hours 22:00\\u201307:00 UTC" in home
    assert "C0ELSE" not in home  # not a channel of theirs


@pytest.fixture
def zuora_bot(start_bot, fake_slack, zoho_sim, zuora_sim, tmp_path):
    """A bot with Zuora that polls a watch again only when told (an hour's interval)."""
    fake_slack.set_channel("C1", creator="U1")
    env = bot_env(tmp_path, fake_slack, zoho_sim, zuora_sim=zuora_sim)
    bot, slack = start_bot(env, poll_interval=3600)
    return bot, slack, make_token(slack, fake_slack)


def test_a_vendor_callback_starts_its_watch_where_the_channel_routes_it(
    zuora_bot, fake_slack, zuora_sim
):
    bot, slack, token = zuora_bot
    bot.store.save_channel_settings(ChannelSettings("C1", routes=(("vendor:zuora", "C0FIN"),)))
    zuora_sim.add_job(AQUA, steps_two_batches(AQUA))
    answer = hook(slack, "zuora", key_of(token), f"job={AQUA}&status=Completed")
    assert answer.status_code == 202 and answer.json()["status"] == "watching"
    [watch] = bot.store.list_watches(statuses=None)
    assert watch.channel_id == "C0FIN"
    parent = fake_slack.wait_for("chat.postMessage")[0]
    assert parent.params["channel"] == "C0FIN"
    wait_until(lambda: zuora_sim.polls(AQUA) == 1)
    # Called back again: the watch is found in the routed channel and checked now.
    again = hook(slack, "zuora", key_of(token), f"job={AQUA}&status=Completed")
    assert again.status_code == 202 and again.json()["watches"] == [watch.id]
    wait_until(lambda: zuora_sim.polls(AQUA) == 2)
    assert len(bot.store.list_watches(statuses=None)) == 1
