"""Block Kit rendering: parent, thread replies, command answers, App Home
(docs/slack.md#escaping-and-formatting, docs/slack.md#block-kit-limits)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot import blocks
from bot.blocks import (
    WATCH_REFRESH,
    WATCH_STOP,
    duration,
    esc,
    esc_clip,
    render_created,
    render_duplicate,
    render_help,
    render_home,
    render_list,
    render_parent,
    render_reply,
    render_usage_error,
)
from bot.grammar import COMMAND, CommandError, parse
from bot.vendors import JobSnapshot, State
from storage import Transition, Watch
from storage.progress import ProgressPoint, encode_points

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
REF = "2480011000000498001/2480011000000512007"
HOSTILE = "<!channel> <@U999> <https://evil|click> & ``` tail"


def make_watch(**changes: Any) -> Watch:
    values: dict[str, Any] = {
        "id": "w7k2",
        "vendor": "zoho-analytics",
        "ref": REF,
        "connection": "default",
        "team_id": "T1",
        "channel_id": "C1",
        "requester_id": "U1",
        "status": "active",
        "state": State.RUNNING,
        "raw_status": "1002 JOB IN PROGRESS",
        "snapshot": None,
        "interval_s": 10.0,
        "created_at": T0,
        "updated_at": T0,
        "next_poll_at": T0 + 10,
        "lease_until": None,
        "lease_owner": None,
        "attempts": 0,
        "polls": 1,
        "last_error": None,
        "deadline": T0 + 86400,
        "finished_at": None,
        "stopped_by": None,
        "pause_reason": None,
    }
    values.update(changes)
    return Watch(**values)


def make_transition(**changes: Any) -> Transition:
    values: dict[str, Any] = {
        "id": 1,
        "watch_id": "w7k2",
        "at": T0 + 125,
        "event": "state",
        "from_state": State.QUEUED,
        "to_state": State.RUNNING,
        "raw_status": "1002 JOB IN PROGRESS",
        "error_code": None,
        "error_message": None,
        "actor": None,
        "note": None,
    }
    values.update(changes)
    return Transition(**values)


def snapshot(state: State = State.RUNNING, **changes: Any) -> str:
    values: dict[str, Any] = {"raw_status": "1002 JOB IN PROGRESS"}
    values.update(changes)
    return JobSnapshot(state, **values).to_json()


def all_text(message: blocks.Message) -> str:
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


def texts(block_list: list[dict[str, Any]]) -> list[str]:
    """Every mrkdwn/plain text string in the blocks, nested ones included."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text"):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(block_list)
    return found


def assert_valid(block_list: list[dict[str, Any]], max_blocks: int = 50) -> None:
    """Slack's limits: the SDK's own validation plus the ones it doesn't check
    (docs/slack.md#block-kit-limits)."""
    assert 0 < len(block_list) <= max_blocks
    for block in block_list:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()
        assert parsed.to_dict() == block
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "context":
            assert len(block["elements"]) <= 10


def assert_message_fits(message: blocks.Message) -> None:
    assert_valid(message.blocks)
    assert message.text and len(message.text) <= 4000
    assert len(json.dumps(message.blocks)) < 12_000  # msg_blocks_too_long was seen near 13k


def buttons(message: blocks.Message) -> dict[str, dict[str, Any]]:
    actions = [b for b in message.blocks if b["type"] == "actions"]
    return {e["action_id"]: e for a in actions for e in a["elements"]}


# -- parent message --------------------------------------------------------------------------


def test_parent_shows_vendor_job_watch_id_requester_and_state() -> None:
    message = render_parent(make_watch(), T0 + 30)
    text = all_text(message)
    assert "Zoho Analytics import" in text
    assert f"`{REF}`" in text
    assert "`w7k2`" in text
    assert "<@U1>" in text
    assert "*Running*" in text
    assert "1002 JOB IN PROGRESS" in text
    assert message.text == f"Zoho Analytics import {REF}: Running"
    assert_message_fits(message)


def test_parent_elapsed_time_is_rendered_by_the_client_while_active() -> None:
    text = all_text(render_parent(make_watch(), T0 + 30))
    assert "started <!date^1767225600^{ago}|2026-01-01 00:00 UTC>" in text


def test_parent_shows_progress_fields() -> None:
    snap = snapshot(progress=(("Rows", "1,187 of 1,200 imported"), ("Warnings", "3")))
    message = render_parent(make_watch(snapshot=snap), T0)
    fields = [b for b in message.blocks if "fields" in b][0]["fields"]
    assert [f["text"] for f in fields] == ["*Rows*\n1,187 of 1,200 imported", "*Warnings*\n3"]


def test_parent_of_a_first_check_says_checking() -> None:
    message = render_parent(make_watch(state=None, raw_status=None), T0)
    assert "*Checking*" in all_text(message)


def test_active_parent_has_refresh_and_stop_buttons_carrying_the_watch_id() -> None:
    found = buttons(render_parent(make_watch(), T0))
    assert set(found) == {WATCH_REFRESH, WATCH_STOP}
    assert (WATCH_REFRESH, WATCH_STOP) == ("watch.refresh", "watch.stop")
    refresh, stop = found[WATCH_REFRESH], found[WATCH_STOP]
    assert refresh["text"]["text"] == "Refresh now"
    assert stop["text"]["text"] == "Stop watching"
    assert refresh["value"] == stop["value"] == "w7k2"
    assert stop["style"] == "danger"
    assert stop["confirm"]["title"]["text"]
    assert stop["confirm"]["confirm"]["text"] == "Stop watching"
    assert "w7k2" in stop["confirm"]["text"]["text"]


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "done", "state": State.SUCCEEDED, "finished_at": T0 + 90},
        {"status": "stopped", "stopped_by": "U2", "finished_at": T0 + 90},
        {"status": "paused", "pause_reason": "not_in_channel"},
    ],
)
def test_parent_has_no_buttons_once_not_active(changes: dict[str, Any]) -> None:
    message = render_parent(make_watch(**changes), T0 + 100)
    assert not buttons(message)
    assert_message_fits(message)


def test_stopped_parent_names_who_stopped_it() -> None:
    message = render_parent(make_watch(status="stopped", stopped_by="U2"), T0 + 60)
    assert "*Stopped* by <@U2>" in all_text(message)
    assert "last state: Running" in all_text(message)
    assert message.text.endswith(": stopped")


def test_paused_parent_says_why() -> None:
    message = render_parent(make_watch(status="paused", pause_reason="not_in_channel"), T0)
    assert "*Paused* (not_in_channel)" in all_text(message)


def test_failed_parent_quotes_the_vendors_code_and_message() -> None:
    snap = snapshot(
        State.FAILED,
        raw_status="1003 ERROR OCCURRED",
        error_code="1003",
        error_message="Column 'Amount' has invalid values",
    )
    watch = make_watch(
        status="done", state=State.FAILED, raw_status="1003 ERROR OCCURRED", snapshot=snap
    )
    text = all_text(render_parent(watch, T0))
    assert "*Failed*" in text
    assert "`1003`" in text
    assert "```Column 'Amount' has invalid values```" in text


def test_parent_of_a_succeeded_job_does_not_quote_an_error() -> None:
    snap = snapshot(State.SUCCEEDED, error_message="stale text")
    watch = make_watch(status="done", state=State.SUCCEEDED, snapshot=snap, finished_at=T0 + 5)
    assert "Vendor said" not in all_text(render_parent(watch, T0))


def test_active_parent_shows_the_last_poll_error() -> None:
    watch = make_watch(last_error="Zoho Analytics answered 503", attempts=3)
    text = all_text(render_parent(watch, T0))
    assert "Last check failed (3×): Zoho Analytics answered 503" in text


def test_finished_parent_hides_the_last_poll_error() -> None:
    watch = make_watch(status="done", state=State.SUCCEEDED, last_error="timeout", finished_at=T0)
    assert "Last check failed" not in all_text(render_parent(watch, T0))


def test_terminal_parent_states_how_long_the_job_took() -> None:
    watch = make_watch(status="done", state=State.SUCCEEDED, finished_at=T0 + 3725)
    text = all_text(render_parent(watch, T0 + 9999))
    assert "took 1h 02m" in text
    assert "{ago}" not in text


def test_parent_names_a_non_default_connection() -> None:
    assert "connection `eu-team`" in all_text(render_parent(make_watch(connection="eu-team"), T0))
    assert "connection" not in all_text(render_parent(make_watch(), T0))


# -- thread replies --------------------------------------------------------------------------


def reply_text(watch: Watch | None = None, **changes: Any) -> str:
    message = render_reply(watch or make_watch(), make_transition(**changes))
    assert_message_fits(message)
    return message.blocks[0]["text"]["text"]


def test_first_state_reply_says_what_the_first_check_found() -> None:
    text = reply_text(from_state=None, to_state=State.QUEUED, raw_status="1001 JOB NOT INITIATED")
    assert "First check: job is *queued*" in text
    assert "I'll post here when it changes" in text
    assert "<@U1>" not in text


def test_running_reply_has_no_mention() -> None:
    text = reply_text()
    assert "Job is now *running*" in text
    assert "(`1002 JOB IN PROGRESS`)" in text
    assert "<@" not in text


def test_succeeded_reply_mentions_the_requester_with_duration_and_progress() -> None:
    watch = make_watch(snapshot=snapshot(State.SUCCEEDED, progress=(("Rows", "1,200 of 1,200"),)))
    text = reply_text(watch, to_state=State.SUCCEEDED, from_state=State.RUNNING)
    assert text.startswith(":white_check_mark: <@U1> Job succeeded in 2m 05s")
    assert "Rows: 1,200 of 1,200" in text


def test_partial_reply_mentions_the_requester_and_quotes_the_vendor() -> None:
    text = reply_text(
        to_state=State.PARTIAL,
        raw_status="1004 JOB COMPLETED",
        error_message="Row 17: Amount is not a number",
    )
    assert "<@U1>" in text
    assert "completed with problems" in text
    assert "```Row 17: Amount is not a number```" in text


def test_failed_reply_mentions_the_requester_and_quotes_code_and_message() -> None:
    text = reply_text(
        to_state=State.FAILED,
        raw_status="1003 ERROR OCCURRED",
        error_code="1003",
        error_message="Invalid column",
    )
    assert text.startswith(":x: <@U1> Job failed after 2m 05s")
    assert "Vendor said `1003`:" in text
    assert "```Invalid column```" in text


def test_cancelled_reply_mentions_the_requester() -> None:
    text = reply_text(to_state=State.CANCELLED, raw_status="cancelled")
    assert "<@U1>" in text
    assert "cancelled at the vendor" in text


def test_expired_reply_says_the_vendor_forgot_the_job() -> None:
    text = reply_text(to_state=State.EXPIRED, raw_status=None, note="Zoho keeps details 1 hour.")
    assert "<@U1>" in text
    assert "Zoho Analytics import no longer has this job's details" in text
    assert "Zoho keeps details 1 hour." in text


def test_unknown_status_reply_shows_it_and_keeps_watching() -> None:
    text = reply_text(to_state=State.UNKNOWN, raw_status="9999 MYSTERY")
    assert "`9999 MYSTERY`" in text
    assert "I'll keep checking" in text
    assert "<@" not in text


def test_requester_stopping_their_own_watch_is_not_pinged_twice() -> None:
    text = reply_text(event="stopped", actor="U1", to_state=None)
    assert text.startswith(":octagonal_sign: Stopped watching at <@U1>'s request after 2m 05s")
    assert text.count("<@U1>") == 1
    assert "not touched at the vendor" in text


def test_someone_else_stopping_a_watch_pings_the_requester() -> None:
    text = reply_text(event="stopped", actor="U2", to_state=None)
    assert text.startswith(":octagonal_sign: <@U1> Stopped watching at <@U2>'s request")


def test_timeout_reply_mentions_the_requester_and_the_last_status() -> None:
    watch = make_watch()
    text = reply_text(watch, event="timeout", at=T0 + 86400, to_state=State.EXPIRED)
    assert text.startswith(":hourglass: <@U1> Gave up after 24h 00m")
    assert "Last vendor status: `1002 JOB IN PROGRESS`" in text


def test_note_reply_is_escaped_text() -> None:
    assert reply_text(event="note", note="a < b & c") == "a &lt; b &amp; c"


def test_reply_notification_text_is_its_first_line() -> None:
    message = render_reply(
        make_watch(), make_transition(to_state=State.FAILED, error_message="details")
    )
    assert message.text.startswith(":x: <@U1> Job failed")
    assert "\n" not in message.text and "details" not in message.text


# -- hostile vendor text ---------------------------------------------------------------------


def assert_disarmed(text: str) -> None:
    for raw in ("<!channel>", "<@U999>", "<https://evil", "<!here>"):
        assert raw not in text
    assert "&amp;amp;" not in text
    assert "&lt;!channel&gt;" in text  # shown, not swallowed
    # every '<' that is left opens one of our own tokens: the requester, a date, a channel
    for match in re.finditer(r"<([^>]*)>", text):
        assert re.fullmatch(
            r"@U1|@U2|!date\^\d+\^[^|]+\|[^<>]+|#C1|https://slack\.com/.*", match[1]
        )


def hostile_snapshot(state: State) -> str:
    return snapshot(
        state,
        raw_status=HOSTILE,
        progress=(("Rows", HOSTILE), ("Import", HOSTILE)),
        error_code=HOSTILE,
        error_message=HOSTILE,
    )


@pytest.mark.parametrize("state", [State.FAILED, State.PARTIAL, State.RUNNING])
@pytest.mark.parametrize("status", ["active", "done", "paused"])
def test_hostile_vendor_text_is_inert_in_the_parent(state: State, status: str) -> None:
    watch = make_watch(
        state=state,
        status=status,
        raw_status=HOSTILE,
        snapshot=hostile_snapshot(state),
        last_error=HOSTILE,
        pause_reason=HOSTILE,
    )
    message = render_parent(watch, T0)
    assert_disarmed(all_text(message))
    assert_message_fits(message)


@pytest.mark.parametrize(
    "changes",
    [
        {"to_state": State.FAILED},
        {"to_state": State.PARTIAL},
        {"to_state": State.SUCCEEDED},
        {"to_state": State.CANCELLED},
        {"to_state": State.EXPIRED},
        {"to_state": State.UNKNOWN},
        {"to_state": State.RUNNING},
        {"event": "timeout"},
        {"event": "note"},
    ],
)
def test_hostile_vendor_text_is_inert_in_replies(changes: dict[str, Any]) -> None:
    watch = make_watch(snapshot=hostile_snapshot(State.PARTIAL))
    transition = make_transition(
        raw_status=HOSTILE, error_code=HOSTILE, error_message=HOSTILE, note=HOSTILE, **changes
    )
    message = render_reply(watch, transition)
    assert_disarmed(all_text(message))
    assert_message_fits(message)


def test_ampersand_in_vendor_text_is_escaped_exactly_once() -> None:
    watch = make_watch(raw_status="A & B", snapshot=snapshot(progress=(("Rows", "1 & 2"),)))
    text = all_text(render_parent(watch, T0))
    assert "A &amp; B" in text and "1 &amp; 2" in text
    assert "&amp;amp;" not in text


def test_backticks_in_vendor_errors_cannot_close_the_code_block() -> None:
    text = reply_text(to_state=State.FAILED, error_message="before ``` *after*")
    quoted = text[text.index("```") :]
    assert quoted.count("```") == 2
    assert quoted.endswith("```")


def test_hostile_pause_reason_is_inert_in_app_home() -> None:
    watch = make_watch(status="paused", pause_reason=HOSTILE)
    stopped = make_watch(id="w8k3", status="stopped")
    home = render_home([watch, stopped], T0)
    assert_disarmed(json.dumps(home, ensure_ascii=False))
    assert_valid(home["blocks"], max_blocks=100)


# -- worst-case sizes ------------------------------------------------------------------------


def test_huge_error_message_and_fifty_progress_pairs_fit_the_parent() -> None:
    progress = tuple((f"Figure {i}", "9" * 5000 + " &<>") for i in range(50))
    huge = "Bad row & <x>; " * 700  # ~10,000 characters
    snap = snapshot(
        State.FAILED,
        raw_status="x" * 5000,
        progress=progress,
        error_code="E" * 500,
        error_message=huge,
    )
    watch = make_watch(
        state=State.FAILED, raw_status="x" * 5000, snapshot=snap, last_error="y & " * 3000
    )
    message = render_parent(watch, T0)
    assert_message_fits(message)
    assert "…" in all_text(message)
    assert buttons(message)  # the clipped content didn't push the buttons out


@pytest.mark.parametrize("to_state", [State.FAILED, State.PARTIAL, State.EXPIRED])
def test_huge_error_message_fits_a_reply(to_state: State) -> None:
    progress = tuple((f"Figure {i}", "9" * 5000) for i in range(50))
    watch = make_watch(snapshot=snapshot(to_state, progress=progress))
    huge = ("Bad row & <x>; " * 700)[:10_000]
    message = render_reply(
        watch,
        make_transition(
            to_state=to_state, raw_status="r" * 5000, error_code="E" * 500, error_message=huge
        ),
    )
    assert_message_fits(message)
    text = message.blocks[0]["text"]["text"]
    assert text.rstrip().endswith("```")  # the quote is clipped inside, never cut open
    assert not re.search(r"&[a-z]*…", text)  # no entity split by the clip


def test_sixty_watches_fit_the_list() -> None:
    watches = [make_watch(id=f"w{i:03d}", ref=f"{10**19 + i}/{10**19 + i}") for i in range(60)]
    message = render_list(watches, T0 + 7200)
    assert_message_fits(message)
    text = all_text(message)
    assert "(60)" in text
    assert "`w000`" in text and "`w019`" in text and "`w020`" not in text
    assert "…and 40 more; stop any with `/syncwatch stop <id>`." in text


def test_a_hundred_and_fifty_watches_fit_app_home() -> None:
    watches = [make_watch(id=f"w{i:03d}") for i in range(140)] + [
        make_watch(id=f"d{i:03d}", status="done", state=State.SUCCEEDED) for i in range(10)
    ]
    view = render_home(watches, T0 + 60)
    assert view["type"] == "home"
    assert_valid(view["blocks"], max_blocks=100)
    text = json.dumps(view, ensure_ascii=False)
    assert "…and 100 more." in text
    assert "*Recent outcomes*" in text


def test_app_home_with_nothing_running_says_how_to_start() -> None:
    view = render_home([], T0)
    assert_valid(view["blocks"], max_blocks=100)
    assert "Nothing running" in json.dumps(view)
    assert view["blocks"][0]["text"]["text"] == "Your syncwatch watches"


def test_app_home_shows_stopped_watches_as_recent_outcomes() -> None:
    view = render_home([make_watch(status="stopped", stopped_by="U1")], T0)
    text = json.dumps(view, ensure_ascii=False)
    assert "Nothing running" in text
    assert ":octagonal_sign: *Zoho Analytics import*" in text
    assert "Stopped in <#C1>" in text


# -- command answers -------------------------------------------------------------------------


def test_usage_error_shows_message_and_escaped_example() -> None:
    message = render_usage_error(CommandError("`list` takes no arguments.", "/syncwatch a<b"))
    assert message.text.startswith(":warning: `list` takes no arguments.")
    assert "Example: `/syncwatch a&lt;b`" in message.text
    assert f"`{COMMAND} help`" in message.text
    assert not message.blocks
    assert message.as_kwargs() == {"text": message.text}


def test_usage_error_from_the_parser_carries_no_raw_user_text() -> None:
    with pytest.raises(CommandError) as info:
        parse("watch za <!channel>")
    assert "<!channel>" not in render_usage_error(info.value).text


def test_help_names_every_subcommand_with_an_example() -> None:
    message = render_help()
    assert_message_fits(message)
    text = all_text(message)
    for sub in ("watch", "sync", "list", "stop", "help"):
        assert f"`{COMMAND} {sub}" in text
    assert f"`{COMMAND} watch zoho-analytics {REF}`" in text


def test_help_vendors_lists_each_vendor_with_a_working_example() -> None:
    message = render_help("vendors")
    assert_message_fits(message)
    text = all_text(message)
    assert "`zoho-analytics` (alias `za`" in text
    example = re.search(rf"`{COMMAND} (watch [^`]+)`", text)
    assert example is not None
    parse(example[1])


def test_help_for_a_vendor_alias_shows_the_vendors_topic() -> None:
    assert render_help("za").text == render_help("vendors").text


@pytest.mark.parametrize("topic", ["watch", "sync", "list", "stop"])
def test_help_topic_explains_its_subcommand(topic: str) -> None:
    message = render_help(topic)
    assert_message_fits(message)
    assert f"{COMMAND} {topic}" in message.text


def test_duplicate_links_to_the_existing_parent_message() -> None:
    message = render_duplicate(make_watch(channel_id="C0123"), "1767225600.123456")
    assert "<https://slack.com/archives/C0123/p1767225600123456|its message>" in message.text
    assert "`w7k2`" in message.text
    assert "Nothing new was started" in message.text


def test_duplicate_without_a_parent_yet_still_explains() -> None:
    message = render_duplicate(make_watch(), None)
    assert "its message in this channel" in message.text
    assert "https://" not in message.text


def test_created_names_each_watch_and_how_to_stop() -> None:
    one = render_created([make_watch()])
    assert "Started a watch: `w7k2`" in one.text
    assert f"`{COMMAND} stop w7k2`" in one.text
    two = render_created([make_watch(), make_watch(id="w8k3", ref="1/2")])
    assert "Started 2 watches" in two.text
    assert "`w8k3`" in two.text


def test_empty_list_says_how_to_start() -> None:
    message = render_list([], T0)
    assert "No active watches or schedules in this channel" in message.text
    assert not message.blocks


def test_list_shows_each_watch_with_state_requester_and_age() -> None:
    watches = [make_watch(), make_watch(id="w8k3", state=State.QUEUED, requester_id="U2")]
    message = render_list(watches, T0 + 125)
    assert_message_fits(message)
    text = all_text(message)
    assert "`w7k2`" in text and "`w8k3`" in text
    assert "Running, asked by <@U1>, for 2m 05s" in text
    assert "Queued, asked by <@U2>" in text
    assert message.text == "2 active watches and 0 schedules in this channel"
    stops = [b["accessory"]["value"] for b in message.blocks if "accessory" in b]
    assert stops == ["w7k2", "w8k3"]


# -- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a & b", "a &amp; b"),
        ("<!channel>", "&lt;!channel&gt;"),
        ("&amp;", "&amp;amp;"),  # input is text, not markup: its '&' is escaped too
        ("\"quotes\" and 'ticks'", "\"quotes\" and 'ticks'"),
        ("*bold* `code`", "*bold* `code`"),
    ],
)
def test_esc_escapes_only_the_three_control_characters(raw: str, escaped: str) -> None:
    assert esc(raw) == escaped


def test_esc_clip_keeps_short_text_whole() -> None:
    assert esc_clip("a & b", 9) == "a &amp; b"


@pytest.mark.parametrize("limit", range(1, 30))
def test_esc_clip_never_splits_an_entity_or_exceeds_the_limit(limit: int) -> None:
    out = esc_clip("a&b<c>d&&e" * 3, limit)
    assert len(out) <= limit
    assert not re.search(r"&(?!amp;|lt;|gt;)", out)
    assert out.endswith("…") or out == esc("a&b<c>d&&e" * 3)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "0s"),
        (0, "0s"),
        (59.9, "59s"),
        (60, "1m 00s"),
        (125, "2m 05s"),
        (3599, "59m 59s"),
        (3600, "1h 00m"),
        (86400, "24h 00m"),
        (47 * 3600 + 59 * 60, "47h 59m"),
        (48 * 3600, "2d 0h"),
        (3 * 86400 + 5 * 3600, "3d 5h"),
    ],
)
def test_duration_is_short_and_readable(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_help_placeholders_are_escaped_for_mrkdwn() -> None:
    import json

    for topic in (None, "watch", "sync", "vendors"):
        body = json.dumps(render_help(topic).blocks)
        assert "<vendor>" not in body and "<workspace-id>" not in body
    assert "&lt;vendor&gt;" in json.dumps(render_help("watch").blocks)


def test_a_note_with_an_actor_mentions_them_and_escapes_the_rest() -> None:
    note = make_transition(event="note", actor="U2", note="asked to run <!channel> again.")
    text = render_reply(make_watch(), note).blocks[0]["text"]["text"]
    assert text.startswith("<@U2> asked to run &lt;!channel&gt; again.")


def test_sync_replies_say_sync_and_a_failed_sync_offers_retry() -> None:
    sync = make_watch(vendor="zoho-analytics-sync", status="done", state="failed")
    failed = make_transition(from_state="running", to_state="failed")
    assert "Sync failed" in render_reply(sync, failed).blocks[0]["text"]["text"]
    actions = [b for b in render_parent(sync, T0).blocks if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == ["sync.retry"]


@pytest.mark.parametrize("topic", ["links", "schedules", "permissions", "list", "sync"])
def test_each_help_topic_has_its_own_page(topic: str) -> None:
    message = render_help(topic)
    assert_valid(message.blocks)
    assert ("/syncwatch" in message.text) or ("allowlist" in message.text)
    if topic == "links":
        assert "analyticsapi.zoho.com/restapi/v2/bulk/workspaces/&lt;ws&gt;" in message.text


# -- the time-left estimate (docs/architecture.md#eta) -----------------------------------------

# 100 rows a minute; 900 of 1,200 left at the last poll: 9 minutes
STEADY = encode_points((ProgressPoint(T0, 200, 1200), ProgressPoint(T0 + 60, 300, 1200)))
ROWS = snapshot(progress=(("Rows", "300 of 1,200 imported"), ("Import", "APPEND")))


def fields_of(message: blocks.Message) -> list[str]:
    return [f["text"] for b in message.blocks for f in b.get("fields", [])]


def test_a_running_job_shows_the_time_left_beside_its_count():
    message = render_parent(make_watch(snapshot=ROWS, progress_points=STEADY), T0 + 60)
    assert fields_of(message) == [
        "*Rows*\n300 of 1,200 imported",
        "*Estimate*\n~9 min left",
        "*Import*\nAPPEND",
    ]
    assert_valid(message.blocks)


@pytest.mark.parametrize(
    "changes",
    [
        {"progress_points": None},  # a vendor without counts
        {"progress_points": encode_points((ProgressPoint(T0, 200, 1200),))},  # one poll so far
        {"status": "stopped", "stopped_by": "U2"},
        {"status": "paused", "pause_reason": "removed"},
        {"status": "done", "state": State.SUCCEEDED, "finished_at": T0 + 120},
        {"state": State.SUCCEEDED},  # ended, before the row's status says so
    ],
    ids=["no-counts", "one-point", "stopped", "paused", "done", "terminal-state"],
)
def test_no_estimate_unless_running_with_two_points(changes):
    watch = make_watch(snapshot=ROWS, **({"progress_points": STEADY} | changes))
    assert "left" not in all_text(render_parent(watch, T0 + 60))


def test_the_estimate_keeps_its_field_when_the_progress_fills_the_section():
    many = snapshot(progress=tuple((f"Batch {i}", "done") for i in range(12)))
    message = render_parent(make_watch(snapshot=many, progress_points=STEADY), T0 + 60)
    shown = fields_of(message)
    assert len(shown) == 10 and shown[1] == "*Estimate*\n~9 min left"
    assert shown[-1] == "*…*\n4 more"
    assert_valid(message.blocks)


def test_help_watch_says_when_the_time_left_is_shown():
    shown = all_text(render_help("watch"))
    assert "~4 min left" in shown and "two" in shown and "more than a day" in shown
