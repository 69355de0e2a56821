"""The settings form and the settings-aware replies, pure: valid Block Kit, read back
faithfully, and what each setting changes in a reply's text."""

from __future__ import annotations

import json

from bot import blocks
from bot.settings_form import (
    CC_GROUPS,
    CC_USERS,
    MENTION,
    QUIET_TZ,
    VALUE,
    read_submission,
    render_modal,
    route_choices,
    summary,
)
from storage import ChannelSettings, MentionPolicy, QuietHours
from tests.test_blocks import assert_valid, make_transition, make_watch

ROUTES = route_choices([("zuora", "Zuora AQuA query")], ["eu"])


def test_the_modal_is_valid_block_kit_and_prefilled():
    current = ChannelSettings(
        "C1",
        mention=MentionPolicy.NEVER,
        broadcast_failures=True,
        cc_users=("U7",),
        cc_groups=("S1",),
        routes=(("connection:eu", "C3"),),
        quiet=QuietHours("22:00", "07:00", "Europe/Berlin"),
    )
    groups = [("S1", "@oncall"), ("S2", "x" * 200)]
    view = render_modal(current, ROUTES, groups, "UTC")
    assert_valid(view["blocks"], max_blocks=100)
    by_id = {b.get("block_id"): b for b in view["blocks"]}
    assert by_id[MENTION]["element"]["initial_option"]["value"] == "never"
    assert by_id[CC_USERS]["element"]["initial_users"] == ["U7"]
    assert [o["value"] for o in by_id[CC_GROUPS]["element"]["initial_options"]] == ["S1"]
    assert by_id["route.connection:eu"]["element"]["initial_conversation"] == "C3"
    assert "initial_conversation" not in by_id["route.vendor:zuora"]["element"]
    assert by_id[QUIET_TZ]["element"]["initial_value"] == "Europe/Berlin"


def test_an_untouched_form_reads_back_as_the_defaults():
    view = render_modal(ChannelSettings("C1"), ROUTES, None, "UTC")
    assert_valid(view["blocks"], max_blocks=100)
    values = {b["block_id"]: {VALUE: {}} for b in view["blocks"] if b["type"] == "input"}
    values[QUIET_TZ] = {VALUE: {"value": "UTC"}}  # the prefilled zone alone sets nothing
    form = read_submission(values, ChannelSettings("C1", cc_groups=("S1",)))
    assert form.errors == {} and form.route_channels == {}
    # user groups weren't in the form (Slack wouldn't list them): the stored ones stay
    assert form.settings == ChannelSettings("C1", cc_groups=("S1",))


def test_a_route_to_this_same_channel_is_no_route():
    values = {"route.vendor:zuora": {VALUE: {"selected_conversation": "C1"}}}
    form = read_submission(values, ChannelSettings("C1"))
    assert form.settings.routes == () and form.route_channels == {}


def reply(settings: ChannelSettings | None, **transition) -> str:
    watch = make_watch(status="done", state=transition.get("to_state", "succeeded"))
    message = blocks.render_reply(watch, make_transition(**transition), settings)
    return message.text + json.dumps(message.blocks)


def test_replies_follow_the_mention_setting_and_cc_only_failures():
    failures = ChannelSettings("C1", mention=MentionPolicy.FAILURES, cc_users=("U7",))
    assert "<@U1>" not in reply(failures, to_state="succeeded")
    assert "cc <@U7>" not in reply(failures, to_state="succeeded")
    failed = reply(failures, to_state="failed")
    assert "<@U1>" in failed and "cc <@U7>" in failed
    timed_out = reply(failures, event="timeout")
    assert "<@U1>" in timed_out and "cc <@U7>" in timed_out
    assert "<@U1>" in reply(None, to_state="succeeded")  # no settings: as before


def test_the_settings_summary_escapes_and_names_everything():
    line = summary(
        ChannelSettings(
            "C1",
            broadcast_failures=True,
            cc_groups=("S1",),
            routes=(("vendor:zuora", "C2"),),
            quiet=QuietHours("22:00", "07:00", "Europe/Berlin"),
        )
    )
    assert line == (
        "mention the requester on every outcome; failures are sent to the channel; failures "
        "also mention <!subteam^S1>; routes: Zuora AQuA query → <#C2>; quiet hours "
        "22:00–07:00 Europe/Berlin."
    )
