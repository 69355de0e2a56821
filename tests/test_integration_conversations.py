"""Where a command is typed, through the real app over HTTP: a group DM, a DM with someone
else, a private channel the bot isn't in, a channel it was never invited to. Each gets a
clear private answer saying what to do (never Slack's bare `missing_scope`), nothing is
stored, triggered or posted."""

from __future__ import annotations

import pytest

LINK = "https://analyticsapi.zoho.com/restapi/v2/bulk/workspaces/1/importjobs/2"
POSTING = ["watch za 1/2", f"watch {LINK}", "sync 1/2", "sync 1/2 at 06:30"]


def assert_nothing_happened(bot, fake_slack, zoho_sim) -> None:
    assert bot.store.list_watches(statuses=None) == []
    assert bot.store.list_schedules(statuses=None) == []
    assert fake_slack.calls_for("chat.postMessage") == []
    assert zoho_sim.sync_requests == []


@pytest.mark.parametrize("text", POSTING)
@pytest.mark.parametrize(
    "channel, kind, name, said",
    [
        ("G0GROUP", "mpim", "mpdm-ann--bob--cy-1", "I don't work in group DMs"),
        # no channel_name to go by: conversations.info says missing_scope
        ("C0GROUP", "mpim", None, "I can't see this conversation"),
        ("D0OTHER", "im", "directmessage", "Run this in a channel"),
        ("C0PRIV", "private", "privategroup", "I'm not in this channel yet"),
    ],
)
def test_a_conversation_the_bot_cant_post_in_gets_a_clear_private_answer(
    running, fake_slack, zoho_sim, text, channel, kind, name, said
):
    bot, slack = running
    fake_slack.set_channel(channel, kind=kind, is_member=False)
    answer = slack.ask(text, channel=channel, channel_name=name)
    assert said in answer and "/invite @syncwatch" in answer
    assert "Nothing was started" in answer and "missing_scope" not in answer
    assert_nothing_happened(bot, fake_slack, zoho_sim)


@pytest.mark.parametrize("text", ["sync 1/2", "sync 1/2 at 06:30"])
def test_a_sync_in_a_channel_without_the_bot_is_refused_before_it_starts(
    running, fake_slack, zoho_sim, text
):
    """It used to start, trigger the sync at Zoho, and then pause when it could not post."""
    bot, slack = running
    fake_slack.set_channel("C0OUT", is_member=False)
    answer = slack.ask(text, channel="C0OUT", channel_name="general")
    assert "I'm not in this channel yet" in answer
    assert_nothing_happened(bot, fake_slack, zoho_sim)


def test_help_and_list_still_answer_in_a_group_dm(running, fake_slack):
    _, slack = running
    fake_slack.set_channel("G0GROUP", kind="mpim", is_member=False)
    where = {"channel": "G0GROUP", "channel_name": "mpdm-ann--bob-1"}
    assert "watch" in slack.ask("help", **where)
    assert "No active watches or schedules" in slack.ask("list", **where)
