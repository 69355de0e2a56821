"""Every button and the App Home tab, as Slack sends them: signed requests to the real app."""

from __future__ import annotations

import json
import time

import httpx

from bot.simulators.zoho import steps_failure
from tests.conftest import SlackDriver, signed_headers, wait_for_ticks
from tests.test_integration import parents, replies, wait_until

WS, JOB = "2480011000000498001", "2480011000000512007"
RUNNING = [{"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"}]


def post_event(slack: SlackDriver, event: dict) -> httpx.Response:
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event": event,
            "event_id": f"Ev{time.monotonic_ns()}",
            "event_time": int(time.time()),
        }
    )
    headers = signed_headers(body) | {"Content-Type": "application/json"}
    return httpx.post(f"{slack.base_url}/slack/events", content=body, headers=headers)


def home_click(slack: SlackDriver, action_id: str, value: str, user: str = "U1") -> httpx.Response:
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": user},
        "container": {"type": "view", "view_id": "V1"},
        "view": {"id": "V1", "type": "home"},
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
    return slack.post({"payload": json.dumps(payload)})


def test_refresh_polls_sooner_and_only_the_clicker_hears_about_problems(
    start_bot, fake_slack, zoho_sim
):
    # An hour between polls: within this test, only the click can bring the next poll.
    bot, slack = start_bot(poll_interval=3600)
    zoho_sim.add_import_job(WS, JOB, RUNNING)
    slack.slash(f"watch za {WS}/{JOB}")
    wait_until(lambda: replies(fake_slack), what="first reply")
    (w,) = bot.store.list_watches()
    before = zoho_sim.polls(WS, JOB)
    wait_for_ticks(bot, 2)
    assert zoho_sim.polls(WS, JOB) == before  # not due by itself
    parent = parents(fake_slack)[0]
    assert slack.click("watch.refresh", w.id, parent.ts).status_code == 200
    wait_until(lambda: zoho_sim.polls(WS, JOB) > before, timeout=5, what="the refreshed poll")
    other = slack.click("watch.refresh", w.id, parent.ts, channel="C2", key="elsewhere")
    assert other.status_code == 200
    assert "no watch" in fake_slack.wait_for("respond/elsewhere")[0].params["text"]


def test_show_errors_posts_the_full_list_once(running, fake_slack, zoho_sim):
    bot, slack = running
    long_error = "\n".join(f"Row {i}: 'twelve' is not a number" for i in range(30))
    zoho_sim.add_import_job(WS, JOB, steps_failure(error_text=long_error, polls_running=0))
    slack.slash(f"watch za {WS}/{JOB}")
    wait_until(
        lambda: parents(fake_slack) and "Failed" in parents(fake_slack)[0].text,
        what="failed parent",
    )
    (w,) = bot.store.list_watches(statuses=None)
    parent = parents(fake_slack)[0]
    buttons = [
        e["action_id"] for b in parent.blocks if b["type"] == "actions" for e in b["elements"]
    ]
    assert buttons == ["watch.errors"]
    slack.click("watch.errors", w.id, parent.ts, user="U9")
    slack.click("watch.errors", w.id, parent.ts, user="U9", key="twice")
    wait_until(
        lambda: any("full error list" in (m.text or "") for m in replies(fake_slack)),
        what="the error list",
    )
    assert "already in the thread" in fake_slack.wait_for("respond/twice")[0].params["text"]
    listing = next(m for m in replies(fake_slack) if "full error list" in (m.text or ""))
    assert "Row 29" in json.dumps(listing.blocks)
    assert sum("full error list" in (m.text or "") for m in replies(fake_slack)) == 1


def test_app_home_lists_the_users_watches_and_its_stop_button_works(running, fake_slack, zoho_sim):
    bot, slack = running
    zoho_sim.add_import_job(WS, JOB, RUNNING)
    slack.slash(f"watch za {WS}/{JOB}", user="U1")
    wait_until(lambda: bot.store.list_watches(), what="the watch")
    (w,) = bot.store.list_watches()
    assert (
        post_event(
            slack, {"type": "app_home_opened", "user": "U1", "tab": "home", "channel": "D1"}
        ).status_code
        == 200
    )
    (published,) = fake_slack.wait_for("views.publish")
    view = (
        json.loads(published.params["view"])
        if isinstance(published.params["view"], str)
        else published.params["view"]
    )
    assert published.params["user_id"] == "U1" and view["type"] == "home"
    assert w.id in json.dumps(view["blocks"])
    # someone else's click from their Home can't stop it
    home_click(slack, "watch.stop", w.id, user="U2")
    fake_slack.wait_for("views.publish", count=2)
    assert bot.store.get_watch(w.id).status == "active"
    home_click(slack, "watch.stop", w.id, user="U1")
    wait_until(lambda: bot.store.get_watch(w.id).status == "stopped", what="stopped from Home")
    fake_slack.wait_for("views.publish", count=3)


def test_schedule_stop_button_from_list(running, fake_slack):
    bot, slack = running
    assert "Scheduled" in slack.ask("sync 1/2 at 06:30")
    (schedule,) = bot.store.list_schedules()
    listing, _ = slack.slash("list")
    buttons = [b["accessory"] for b in listing.json()["blocks"] if "accessory" in b]
    assert [(b["action_id"], b["value"]) for b in buttons] == [("schedule.stop", schedule.id)]
    slack.click("schedule.stop", schedule.id, "1.1", key="unschedule")
    assert "Stopped schedule" in fake_slack.wait_for("respond/unschedule")[0].params["text"]
    assert bot.store.list_schedules() == []


def test_an_unknown_button_from_an_older_release_is_still_acked(running):
    _, slack = running
    assert slack.click("watch.snooze", "w123", "1.1").status_code == 200
