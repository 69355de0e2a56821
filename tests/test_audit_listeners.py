"""Audit rows written by the slash command and the buttons, through the listeners as Bolt
calls them: one row per change that happened, none for a refusal, each naming who acted
and how; and the thread saying who did it."""

from __future__ import annotations

from typing import Any

import pytest

from bot import blocks
from bot.config import Settings
from bot.listeners import actions, commands, deps, events
from bot.service import Service
from bot.vendors import JobSnapshot, State
from storage import PollResult, Via
from tests.test_listeners import FakeClient, InlineAfterAck, Recorder, click_body
from tests.test_service import SYNC, ZOHO


@pytest.fixture
def context(store, clock) -> dict[str, Any]:
    service = Service(store, Settings.from_env(ZOHO), clock=clock)
    return {deps.SERVICE: service, deps.AFTER_ACK: InlineAfterAck()}


def slash(context, text: str, user: str = "U1", channel: str = "C1") -> str:
    ack, respond = Recorder(), Recorder()
    typed = {"text": text, "user_id": user, "channel_id": channel, "team_id": "T1"}
    commands.answer(ack, typed, respond, FakeClient(), context)
    return ack.text + respond.text


def click(context, action_id: str, value: str, user: str = "U1", **extra: Any) -> str:
    respond = Recorder()
    body = click_body(action_id, value, **extra) | {"user": {"id": user}}
    actions.click(Recorder(), body, respond, FakeClient(), context)
    return respond.text


def trail(store) -> list[tuple[str, str, str, str | None]]:
    """(action, actor, via, watch or schedule), oldest first."""
    rows = reversed(store.audit_entries())
    return [(e.action, e.actor, e.via.value, e.watch_id or e.schedule_id) for e in rows]


def thread(store, watch_id: str) -> list[str]:
    """The thread replies as the channel reads them."""
    watch = store.get_watch(watch_id)
    return [
        blocks.render_reply(watch, t).blocks[0]["text"]["text"] for t in store.transitions(watch_id)
    ]


def test_a_slash_watch_and_its_stop_are_recorded_with_who_and_how(context, store, clock):
    slash(context, "watch za 1/2 3/4")
    w1, w2 = sorted(store.list_watches(), key=lambda w: w.ref)
    assert "Stopped watching" in slash(context, f"stop {w1.id}")
    clock.advance(5)
    assert "Stopped watching" in click(context, blocks.WATCH_STOP, w2.id)
    assert trail(store) == [
        ("watch.create", "U1", "slash", w1.id),
        ("watch.create", "U1", "slash", w2.id),
        ("watch.stop", "U1", "slash", w1.id),
        ("watch.stop", "U1", "button", w2.id),
    ]
    stop = store.audit_entries(watch_id=w2.id)[0]
    assert (stop.team_id, stop.channel_id, stop.at) == ("T1", "C1", clock.now)
    assert stop.detail == {"vendor": "zoho-analytics", "ref": "3/4"}
    assert "Stopped watching at <@U1>'s request" in thread(store, w2.id)[-1]


def test_refusals_and_no_ops_are_not_recorded(context, store):
    slash(context, "watch za 1/2", user="U1")
    (w,) = store.list_watches()
    before = trail(store)
    assert "can stop this watch" in click(context, blocks.WATCH_STOP, w.id, user="U2")
    assert "already watching" in slash(context, "watch za 1/2").lower()
    assert "nosuchvendor" in slash(context, "watch nosuchvendor 1/2")
    assert "There's no sync" in click(context, blocks.SYNC_RETRY, w.id)
    assert "There's no watch `w9999` here" in slash(context, "stop w9999")
    assert "There's no watch" in slash(context, f"stop {w.id}", channel="C2")
    slash(context, f"stop {w.id}")
    assert "already stopped" in slash(context, f"stop {w.id}")  # again: nothing changes
    assert "has ended" in click(context, blocks.WATCH_REFRESH, w.id)
    assert trail(store) == [*before, ("watch.stop", "U1", "slash", w.id)]


def test_refresh_and_show_errors_clicks_are_recorded(context, store, clock):
    slash(context, "watch za 1/2")
    (w,) = store.list_watches()
    assert click(context, blocks.WATCH_REFRESH, w.id) == ""
    store.claim_due(clock.now, "p", 60, 10)
    snap = JobSnapshot(State.FAILED, "1003", error_code="1003", error_message="Row 2: bad date")
    failed = PollResult({"status": "done", "state": "failed", "snapshot": snap.to_json()})
    assert store.apply_poll(w.id, "p", failed, clock.now)
    click(context, blocks.WATCH_ERRORS, w.id, user="U2")
    click(context, blocks.WATCH_ERRORS, w.id, user="U2")  # already in the thread: no change
    assert trail(store)[1:] == [
        ("watch.refresh", "U1", "button", w.id),
        ("watch.errors", "U2", "button", w.id),
    ]
    assert "<@U2> asked for the full error list" in thread(store, w.id)[-1]


def test_sync_retry_and_schedules_are_recorded_and_the_thread_names_who_retried(
    context, store, clock
):
    slash(context, f"sync {SYNC}")
    (w,) = store.list_watches()
    store.claim_due(clock.now, "p", 60, 10)
    assert store.apply_poll(
        w.id,
        "p",
        PollResult({"status": "done", "state": "failed", "trigger_pending": 0}),
        clock.now,
    )
    assert "can run this sync again" in click(context, blocks.SYNC_RETRY, w.id, user="U2")
    click(context, blocks.SYNC_RETRY, w.id, user="U1")
    slash(context, f"sync {SYNC} at 06:30 tz Europe/Berlin")
    (schedule,) = store.list_schedules()
    click(context, blocks.SCHEDULE_STOP, schedule.id)
    assert trail(store) == [
        ("sync.start", "U1", "slash", w.id),
        ("watch.retry", "U1", "button", w.id),
        ("schedule.create", "U1", "slash", schedule.id),
        ("schedule.stop", "U1", "button", schedule.id),
    ]
    created = store.audit_entries(watch_id=schedule.id)[-1]
    assert created.detail == {
        "vendor": "zoho-analytics-sync",
        "ref": SYNC,
        "cron": "30 6 * * *",
        "tz": "Europe/Berlin",
    }
    assert "<@U1> asked to run the sync again." in thread(store, w.id)[-1]


def test_a_stop_from_app_home_is_a_button_in_the_watchs_channel_and_home_shows_it(context, store):
    slash(context, "watch za 1/2")
    (w,) = store.list_watches()
    store.parent_posted(w.id, "C1", "1700000000.000100", 0, 0.0)
    client = FakeClient()
    body = click_body(blocks.WATCH_STOP, w.id, container={"type": "view"}, channel=None)
    del body["response_url"]
    actions.click(Recorder(), body, Recorder(), client, context)
    (stop,) = [e for e in store.audit_entries() if e.action == "watch.stop"]
    assert (stop.via, stop.channel_id) == (Via.BUTTON, "C1")
    home = str(client.published[-1]["view"]["blocks"])
    assert "Your recent actions" in home
    assert home.index("Stopped watching") < home.index("Started watching")  # newest first
    assert "https://slack.com/archives/C1/p1700000000000100|message>" in home


def test_app_home_shows_only_the_persons_own_actions(context, store):
    slash(context, "watch za 1/2", user="U1")
    slash(context, "watch za 3/4", user="U2")
    client = FakeClient()
    body = {"event": {"type": "app_home_opened", "tab": "home", "user": "U2"}}
    events.home_opened(body, Recorder(), client, context)
    home = str(client.published[0]["view"]["blocks"])
    assert "`3/4`" in home.split("Your recent actions")[1]
    assert "`1/2`" not in home


def test_help_permissions_says_changes_are_recorded_and_where_to_read_them(context):
    answer = slash(context, "help permissions")
    assert "recorded with who made it" in answer and "`syncwatch audit`" in answer
    assert "App Home" in answer


def test_a_schedule_stopped_from_app_home_is_recorded_in_its_channel(context, store):
    slash(context, f"sync {SYNC} at 06:30", channel="C7")
    (schedule,) = store.list_schedules()
    body = click_body(blocks.SCHEDULE_STOP, schedule.id, container={"type": "view"}, channel=None)
    del body["response_url"]
    actions.click(Recorder(), body, Recorder(), FakeClient(), context)
    stop = store.audit_entries(watch_id=schedule.id)[0]
    assert (stop.action, stop.channel_id, stop.via) == ("schedule.stop", "C7", Via.BUTTON)
