"""The listeners alone, called as Bolt calls them, with a fake ack/respond/client: what the
person sees in the ack and in the answer after it."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot import blocks
from bot.config import Settings
from bot.listeners import actions, commands, deps, events
from bot.service import Service
from tests.test_service import ZOHO


class Recorder:
    """A fake `ack` or `respond`: remembers what it was called with."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(kwargs or {"text": args[0] if args else None})

    @property
    def text(self) -> str:
        return " ".join(str(c.get("text") or "") + str(c.get("blocks") or "") for c in self.calls)


class InlineAfterAck:
    """Runs the work after the ack at once, on the test's thread."""

    def submit(self, work, body, respond, client) -> None:
        work(body, respond, client)


class FakeClient:
    def __init__(self, channel: dict[str, Any] | None = None, error: str | None = None) -> None:
        self.channel = channel if channel is not None else {"is_member": True}
        self.error = error
        self.published: list[dict[str, Any]] = []

    def conversations_info(self, channel: str) -> dict[str, Any]:
        if self.error:
            response = SlackResponse(
                client=None,
                http_verb="POST",
                api_url="conversations.info",
                req_args={},
                data={"ok": False, "error": self.error},
                headers={},
                status_code=200,
            )
            raise SlackApiError(self.error, response)
        return {"ok": True, "channel": self.channel}

    def views_publish(self, user_id: str, view: dict[str, Any]) -> None:
        self.published.append({"user_id": user_id, "view": view})


@pytest.fixture
def context(store, clock) -> dict[str, Any]:
    service = Service(store, Settings.from_env(ZOHO), clock=clock)
    return {deps.SERVICE: service, deps.AFTER_ACK: InlineAfterAck()}


def command(text: str, channel: str = "C1") -> dict[str, Any]:
    return {"text": text, "user_id": "U1", "channel_id": channel, "team_id": "T1"}


def test_a_usage_error_is_the_ack_itself(context):
    ack, respond = Recorder(), Recorder()
    commands.answer(ack, command("watch nosuchvendor 1/2"), respond, FakeClient(), context)
    assert len(ack.calls) == 1 and "nosuchvendor" in ack.text
    assert respond.calls == []


def test_list_is_answered_in_the_ack(context):
    ack, respond = Recorder(), Recorder()
    commands.answer(ack, command("list"), respond, FakeClient(), context)
    assert "No active watches or schedules in this channel" in ack.text
    assert respond.calls == []


def test_a_watch_is_acked_empty_then_answered_privately(context, store):
    ack, respond = Recorder(), Recorder()
    commands.answer(ack, command("watch za 1/2"), respond, FakeClient(), context)
    assert ack.calls == [{"text": None}]
    assert "Started a watch" in respond.text and respond.calls[0]["response_type"] == "ephemeral"
    assert [w.ref for w in store.list_watches()] == ["1/2"]


@pytest.mark.parametrize(
    "client, said",
    [
        (FakeClient({"is_member": False}), "Invite me"),
        (FakeClient({"is_member": True, "is_archived": True}), "archived"),
        (FakeClient(error="channel_not_found"), "Invite me"),
        (FakeClient(error="internal_error"), "`internal_error`"),
    ],
)
def test_a_channel_the_bot_cant_post_in_starts_nothing(context, store, client, said):
    ack, respond = Recorder(), Recorder()
    commands.answer(ack, command("watch za 1/2"), respond, client, context)
    assert said in respond.text and "Nothing was started" in respond.text
    assert store.list_watches() == []


LINK = "https://analyticsapi.zoho.com/restapi/v2/bulk/workspaces/1/importjobs/2"
POSTING = ["watch za 1/2", f"watch {LINK}", "sync 1/2", "sync 1/2 at 06:30"]


def assert_nothing_started(store) -> None:
    assert store.list_watches(statuses=None) == [] and store.list_schedules(statuses=None) == []


@pytest.mark.parametrize("text", POSTING)
@pytest.mark.parametrize(
    "channel, name, said",
    [
        ("D1", None, "Run this in a channel"),
        ("D1", "directmessage", "Run this in a channel"),
        ("G1", "mpdm-alice--bob--carol-1", "I don't work in group DMs"),
        ("C1", "mpdm-alice--bob-1", "I don't work in group DMs"),
    ],
)
def test_a_dm_or_group_dm_is_refused_in_the_ack_without_asking_slack(
    context, store, text, channel, name, said
):
    ack, respond = Recorder(), Recorder()
    typed = command(text, channel=channel) | ({"channel_name": name} if name else {})
    commands.answer(ack, typed, respond, None, context)  # no client: Slack is not asked
    assert said in ack.text and "invite me" in ack.text.lower()
    assert respond.calls == []
    assert_nothing_started(store)


@pytest.mark.parametrize("text", POSTING)
@pytest.mark.parametrize(
    "client, said",
    [
        (FakeClient(error="missing_scope"), "I can't see this conversation"),
        (FakeClient({"is_mpim": True, "is_member": True}), "I don't work in group DMs"),
        (FakeClient({"is_im": True, "is_member": True}), "Run this in a channel"),
        (FakeClient({"is_member": False}), "Invite me"),
        (FakeClient(error="channel_not_found"), "Invite me"),
    ],
)
def test_every_command_that_posts_checks_the_conversation_first(context, store, text, client, said):
    """Syncs, schedules and pasted links too, not only `watch <vendor>`: a sync started
    where the bot can't post would trigger the vendor and then pause."""
    ack, respond = Recorder(), Recorder()
    commands.answer(ack, command(text), respond, client, context)
    assert ack.calls == [{"text": None}]
    assert said in respond.text and "Nothing was started" in respond.text
    assert "missing_scope" not in respond.text
    assert_nothing_started(store)


@pytest.mark.parametrize("text", ["help", "list", "stop w7k2"])
def test_help_list_and_stop_work_in_a_group_dm(context, text):
    ack = Recorder()
    typed = command(text, channel="G1") | {"channel_name": "mpdm-alice--bob-1"}
    commands.answer(ack, typed, Recorder(), None, context)
    assert ack.text and "group DMs" not in ack.text


def click_body(action_id: str, value: str, **extra: Any) -> dict[str, Any]:
    return {
        "user": {"id": "U1"},
        "channel": {"id": "C1"},
        "team": {"id": "T1"},
        "response_url": "https://hooks.slack.test/x",
        "actions": [{"action_id": action_id, "value": value}],
        **extra,
    }


def test_stop_button_acks_then_tells_only_the_clicker(context, store):
    commands.answer(Recorder(), command("watch za 1/2"), Recorder(), FakeClient(), context)
    (watch,) = store.list_watches()
    ack, respond = Recorder(), Recorder()
    actions.click(ack, click_body(blocks.WATCH_STOP, watch.id), respond, FakeClient(), context)
    assert ack.calls == [{"text": None}]
    assert "Stopped watching" in respond.text and respond.calls[0]["replace_original"] is False
    assert store.get_watch(watch.id).status == "stopped"


def test_a_click_on_app_home_republishes_the_tab(context, store):
    commands.answer(Recorder(), command("watch za 1/2"), Recorder(), FakeClient(), context)
    (watch,) = store.list_watches()
    client, respond = FakeClient(), Recorder()
    body = click_body(blocks.WATCH_STOP, watch.id, container={"type": "view"}, channel=None)
    del body["response_url"]
    actions.click(Recorder(), body, respond, client, context)
    assert respond.calls == [] and client.published[0]["user_id"] == "U1"
    assert store.get_watch(watch.id).status == "stopped"


def test_app_home_opened_publishes_the_persons_watches(context):
    client = FakeClient()
    body = {"event": {"type": "app_home_opened", "tab": "home", "user": "U1"}}
    events.home_opened(body, Recorder(), client, context)
    assert client.published and client.published[0]["view"]["type"] == "home"
    other = FakeClient()
    events.home_opened({"event": {"tab": "messages", "user": "U1"}}, Recorder(), other, context)
    assert other.published == []


def test_a_command_quoting_a_configured_secret_is_refused_even_in_a_ref_shape(store, clock):
    """`watch micro <MICRO_API_KEY>` fits Micro's job-ref shape: it must still be refused,
    privately, without echoing the key, storing anything or posting."""
    key = "mk_live_7f3a9c2e41b8"
    env = {**ZOHO, "MICRO_API_KEY": key, "MICRO_TEAM_ID": "3b9e6f0a-2c4d-4e8b-9a71-5d0c2e8f1a64"}
    service = Service(store, Settings.from_env(env), clock=clock)
    context = {deps.SERVICE: service, deps.AFTER_ACK: InlineAfterAck()}
    ack, respond = Recorder(), Recorder()
    commands.answer(ack, command(f"watch micro {key}"), respond, FakeClient(), context)
    assert "looks like it contains a password or token" in ack.text
    assert key not in ack.text and respond.calls == []
    assert store.list_watches(statuses=None) == []
