"""`/syncwatch settings` through the real app: the form Slack is asked to open, what a
submission saves or refuses (inside the form), who may change settings, and the effect of
saved settings on what the channel sees."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bot.settings_form import (
    BROADCAST,
    CC_GROUPS,
    CC_USERS,
    MENTION,
    QUIET_END,
    QUIET_START,
    QUIET_TZ,
    VALUE,
)
from storage import ChannelSettings, MentionPolicy
from tests.conftest import SlackDriver, bot_env

ROUTE_ZOHO = "route.vendor:zoho-analytics"


@pytest.fixture
def bot(start_bot, fake_slack, zoho_sim, tmp_path):
    fake_slack.usergroups = [{"id": "S0ONCALL", "handle": "oncall", "name": "On-call"}]
    fake_slack.user_tz["U1"] = "Europe/Berlin"
    return start_bot(bot_env(tmp_path, fake_slack, zoho_sim))


def open_form(slack: SlackDriver, fake_slack, user: str = "U1") -> dict[str, Any]:
    before = len(fake_slack.calls_for("views.open"))
    response, _ = slack.slash("settings", user=user)
    assert response.status_code == 200 and response.text == ""
    call = fake_slack.wait_for("views.open", count=before + 1)[-1]
    assert call.params["trigger_id"].startswith("trigger-")
    view = call.params["view"]
    return json.loads(view) if isinstance(view, str) else view


def submit(slack: SlackDriver, values: dict[str, Any], user: str = "U1", channel: str = "C1"):
    payload = {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": user},
        "api_app_id": "A1",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": "settings.save",
            "private_metadata": channel,
            "state": {"values": {k: {VALUE: v} for k, v in values.items()}},
        },
    }
    return slack.post({"payload": json.dumps(payload)})


def form_errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    return body["errors"]


GOOD = {
    MENTION: {"selected_option": {"value": "failures"}},
    BROADCAST: {"selected_options": [{"value": "broadcast"}]},
    CC_USERS: {"selected_users": ["U7"]},
    CC_GROUPS: {"selected_options": [{"value": "S0ONCALL"}]},
    ROUTE_ZOHO: {"selected_conversation": None},
    QUIET_START: {"selected_time": "22:00"},
    QUIET_END: {"selected_time": "07:00"},
    QUIET_TZ: {"value": "Europe/Berlin"},
}


def test_the_form_opens_prefilled_and_a_good_submission_is_saved_and_announced(bot, fake_slack):
    process, slack = bot
    view = open_form(slack, fake_slack)
    assert view["private_metadata"] == "C1" and view["callback_id"] == "settings.save"
    by_id = {b.get("block_id"): b for b in view["blocks"]}
    assert by_id[MENTION]["element"]["initial_option"]["value"] == "always"
    assert by_id[CC_GROUPS]["element"]["options"][0]["value"] == "S0ONCALL"
    assert by_id[QUIET_TZ]["element"]["initial_value"] == "Europe/Berlin"  # the person's zone
    assert by_id[ROUTE_ZOHO]["element"]["type"] == "conversations_select"
    response = submit(slack, GOOD)
    assert response.status_code == 200 and response.text == ""
    saved = process.store.channel_settings("C1")
    assert saved.mention == MentionPolicy.FAILURES and saved.broadcast_failures
    assert saved.cc_users == ("U7",) and saved.cc_groups == ("S0ONCALL",)
    assert saved.quiet is not None and saved.quiet.tz == "Europe/Berlin"
    assert saved.updated_by == "U1"
    (entry,) = process.store.audit_entries(actor="U1")  # who changed what, from the form
    assert (entry.action, entry.via, entry.channel_id) == ("settings.change", "modal", "C1")
    assert "quiet hours 22:00–07:00 Europe/Berlin" in entry.detail["settings"]
    note = fake_slack.wait_for(
        "chat.postMessage", where=lambda c: "changed this channel's settings" in c.params["text"]
    )[0]
    assert note.params["channel"] == "C1"
    assert note.params["text"].startswith(":gear: <@U1> changed this channel's settings:")
    assert "quiet hours 22:00–07:00 Europe/Berlin" in note.params["text"]
    reopened = {b.get("block_id"): b for b in open_form(slack, fake_slack)["blocks"]}
    assert reopened[MENTION]["element"]["initial_option"]["value"] == "failures"
    assert reopened[QUIET_START]["element"]["initial_time"] == "22:00"


@pytest.mark.parametrize(
    "changes, block_id, says",
    [
        ({QUIET_END: {"selected_time": "22:00"}}, QUIET_END, "different start and end"),
        ({QUIET_TZ: {"value": "Mars/Olympus"}}, QUIET_TZ, "isn't a time zone"),
        ({QUIET_TZ: {"value": "../../etc/passwd"}}, QUIET_TZ, "isn't a time zone"),
        ({QUIET_TZ: {"value": ""}}, QUIET_TZ, "need a time zone"),
        ({QUIET_END: {"selected_time": None}}, QUIET_END, "both start and end"),
        ({ROUTE_ZOHO: {"selected_conversation": "C0NOTIN"}}, ROUTE_ZOHO, "not in that channel"),
        ({ROUTE_ZOHO: {"selected_conversation": "C0GONE"}}, ROUTE_ZOHO, "channel_not_found"),
    ],
)
def test_bad_input_is_answered_inside_the_form_and_nothing_is_saved(
    bot, fake_slack, changes, block_id, says
):
    process, slack = bot
    fake_slack.set_channel("C0NOTIN", is_member=False)
    fake_slack.set_channel("C0GONE", exists=False)
    errors = form_errors(submit(slack, GOOD | changes))
    assert list(errors) == [block_id] and says in errors[block_id]
    assert process.store.channel_settings("C1") == ChannelSettings.default("C1")
    assert not [c for c in fake_slack.calls_for("chat.postMessage")]
    assert process.store.audit_entries() == []  # a refused form changed nothing


def test_a_route_to_a_channel_the_bot_is_in_is_saved(bot, fake_slack):
    process, slack = bot
    fake_slack.set_channel("C0ALERTS")
    response = submit(slack, GOOD | {ROUTE_ZOHO: {"selected_conversation": "C0ALERTS"}})
    assert response.text == ""
    assert process.store.channel_settings("C1").routes == (("vendor:zoho-analytics", "C0ALERTS"),)
    assert "Watching in <#C0ALERTS>" in slack.ask("watch za 1/2")


def test_without_user_groups_the_form_says_so_and_people_still_work(bot, fake_slack):
    _, slack = bot
    fake_slack.fail_next("usergroups.list", "missing_scope")
    view = open_form(slack, fake_slack)
    ids = [b.get("block_id") for b in view["blocks"]]
    assert CC_GROUPS not in ids and CC_USERS in ids
    assert "User groups can't be listed" in json.dumps(view["blocks"])


def test_with_admins_only_they_may_change_settings(start_bot, fake_slack, zoho_sim, tmp_path):
    config = tmp_path / "syncwatch.toml"
    config.write_text('admins = ["U0OPS"]\n')
    env = bot_env(tmp_path, fake_slack, zoho_sim) | {"SYNCWATCH_CONFIG": str(config)}
    process, slack = start_bot(env)
    assert "Only syncwatch admins" in slack.ask("settings", user="U1")
    assert fake_slack.calls_for("views.open") == []
    errors = form_errors(submit(slack, GOOD, user="U1"))  # a form opened before, resubmitted
    assert "Only syncwatch admins" in errors[MENTION]
    assert process.store.channel_settings("C1") == ChannelSettings.default("C1")
    open_form(slack, fake_slack, user="U0OPS")
    assert submit(slack, GOOD, user="U0OPS").text == ""
    assert "Only syncwatch admins (the `admins` of its config) may change" in slack.ask(
        "help settings"
    )


def test_settings_in_a_dm_is_answered_clearly(bot, fake_slack):
    _, slack = bot
    text = slack.ask("settings", channel="D0ME", channel_name="directmessage")
    assert "Settings are per channel" in text
    assert fake_slack.calls_for("views.open") == []


def test_help_settings_says_anyone_in_the_channel_when_no_admins(bot):
    _, slack = bot
    text = slack.ask("help settings")
    assert "anyone in the channel may change them" in text
    for word in ("Mention the requester", "Broadcast failures", "Routes", "Quiet hours"):
        assert word in text
