"""Channel settings at delivery: who a terminal reply mentions, failure broadcast and cc,
and quiet hours (held replies, one digest, failures at once), as Slack receives them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from slack_sdk import WebClient

from bot.notifier import Notifier
from bot.vendors import JobSnapshot, State
from storage import ChannelSettings, MentionPolicy, QuietHours, Store
from tests.test_notifier import (
    RUNNING,
    SUCCEEDED,
    as_text,
    metadata_for,
    parent_of,
    poll,
    posts,
    statuses,
    upload,
    watch,
)

FAILED = JobSnapshot(State.FAILED, "1003 JOB FAILED", error_message="bad row 7")
BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = QuietHours("22:00", "07:00", "Europe/Berlin")


@pytest.fixture
def notifier(store, fake_slack, clock) -> Iterator[Notifier]:
    client = WebClient(token="xoxb-test", base_url=fake_slack.api_url, retry_handlers=[])
    n = Notifier(store, client, clock=clock)
    yield n
    n.shutdown()


def configure(store: Store, **values) -> None:
    store.save_channel_settings(ChannelSettings("C1", **values))


def thread_texts(fake_slack, store, watch_id: str) -> list[str]:
    return [m.text for m in fake_slack.thread("C1", parent_of(store, watch_id))]


def finish(notifier, store, clock, snap) -> str:
    w = watch(store, clock)
    notifier.deliver_due()
    poll(store, clock, w.id, snap)
    notifier.deliver_due()
    return w.id


# -- mention, broadcast, cc ---------------------------------------------------------------


def test_by_default_a_success_mentions_the_requester_and_nothing_is_broadcast(
    notifier, store, clock, fake_slack
):
    w = finish(notifier, store, clock, SUCCEEDED)
    (reply,) = posts(fake_slack, thread_ts=parent_of(store, w))
    assert "<@U1>" in reply["text"] and "reply_broadcast" not in reply


def test_mention_only_on_failures_leaves_a_success_quiet(notifier, store, clock, fake_slack):
    configure(store, mention=MentionPolicy.FAILURES)
    ok = finish(notifier, store, clock, SUCCEEDED)
    assert "<@U1>" not in as_text(posts(fake_slack, thread_ts=parent_of(store, ok))[0])
    bad = finish(notifier, store, clock, JobSnapshot(State.FAILED, "x", error_message="e"))
    assert "<@U1>" in posts(fake_slack, thread_ts=parent_of(store, bad))[0]["text"]


def test_mention_never_leaves_a_failure_unmentioned(notifier, store, clock, fake_slack):
    configure(store, mention=MentionPolicy.NEVER)
    w = finish(notifier, store, clock, FAILED)
    (reply,) = posts(fake_slack, thread_ts=parent_of(store, w))
    assert "<@U1>" not in as_text(reply) and ":x:" in reply["text"]


def test_a_failure_is_broadcast_with_its_cc_and_a_success_is_not(
    notifier, store, clock, fake_slack
):
    configure(store, broadcast_failures=True, cc_users=("U7",), cc_groups=("S0ONCALL",))
    bad = finish(notifier, store, clock, FAILED)
    (reply,) = posts(fake_slack, thread_ts=parent_of(store, bad))
    assert reply["reply_broadcast"] in (True, "true", "1", 1)
    assert "cc <!subteam^S0ONCALL> <@U7>" in as_text(reply)
    (shown,) = fake_slack.thread("C1", parent_of(store, bad))
    assert shown.broadcast
    ok = finish(notifier, store, clock, SUCCEEDED)
    (reply,) = posts(fake_slack, thread_ts=parent_of(store, ok))
    assert "reply_broadcast" not in reply and "cc " not in as_text(reply)


def test_a_broadcast_failure_posted_before_a_crash_is_found_not_posted_again(
    notifier, store, clock, fake_slack
):
    configure(store, broadcast_failures=True)
    w = watch(store, clock)
    notifier.deliver_due()
    poll(store, clock, w.id, FAILED)
    row = next(r for r in store.outbox_rows(w.id) if r.kind == "reply")
    store.mark_in_flight(row.id, clock.now)  # the dead process: Slack posted, then it died
    notifier.client.chat_postMessage(
        channel="C1",
        thread_ts=parent_of(store, w.id),
        reply_broadcast=True,
        text="failed",
        metadata=metadata_for({"outbox_id": row.id}),
    )
    notifier.deliver_due()
    assert len(fake_slack.thread("C1", parent_of(store, w.id))) == 1
    assert set(statuses(store, w.id)) == {"sent"}


# -- quiet hours --------------------------------------------------------------------------


def berlin(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=BERLIN).timestamp()


def test_a_quiet_window_crossing_midnight_in_berlin():
    # 2026-01-01 00:00 UTC is 01:00 in Berlin: inside 22:00-07:00, which began yesterday.
    assert NIGHT.until(1_767_225_600.0) == berlin(2026, 1, 1, 7)
    assert NIGHT.until(berlin(2026, 1, 1, 23, 30)) == berlin(2026, 1, 2, 7)
    assert NIGHT.until(berlin(2026, 1, 1, 7)) is None
    assert NIGHT.until(berlin(2026, 1, 1, 21, 59)) is None
    # The night the clocks go forward (29 March 2026): still 07:00 on the wall, 8 h later.
    assert NIGHT.until(berlin(2026, 3, 28, 23)) == berlin(2026, 3, 29, 7)
    assert berlin(2026, 3, 29, 7) - berlin(2026, 3, 28, 23) == 7 * 3600
    day = QuietHours("12:00", "13:00", "America/New_York")
    noon = dt.datetime(2026, 7, 1, 12, 30, tzinfo=ZoneInfo("America/New_York")).timestamp()
    assert day.until(noon) == noon + 1800


def test_quiet_hours_hold_replies_then_post_one_digest_and_the_files(
    notifier, store, clock, fake_slack
):
    configure(store, quiet=NIGHT)  # the fake clock starts at 01:00 in Berlin
    w = watch(store, clock)
    notifier.deliver_due()
    poll(store, clock, w.id, RUNNING)
    clock.advance(600)
    poll(store, clock, w.id, SUCCEEDED, uploads=[upload(b"a,b\r\n1,2\r\n")])
    notifier.deliver_due()
    assert thread_texts(fake_slack, store, w.id) == []  # nothing in the thread yet
    assert "Succeeded" in fake_slack.messages("C1")[0].text  # the parent still updates
    clock.now = berlin(2026, 1, 1, 6, 59)
    notifier.deliver_due()
    assert thread_texts(fake_slack, store, w.id) == []
    clock.now = berlin(2026, 1, 1, 7)
    notifier.deliver_due()
    thread = fake_slack.thread("C1", parent_of(store, w.id))
    assert len(thread) == 2
    digest, shared = thread
    assert digest.text.startswith(":zzz: 2 updates held during quiet hours")
    body = str(digest.blocks)
    assert "running" in body and "succeeded" in body and "<@U1>" in body
    assert [f[2] for f in shared.files] == ["import-summary-1.csv"]
    assert set(statuses(store, w.id)) == {"sent"}
    notifier.deliver_due()
    assert len(fake_slack.thread("C1", parent_of(store, w.id))) == 2


def test_a_failure_in_quiet_hours_posts_at_once_after_what_was_held(
    notifier, store, clock, fake_slack
):
    configure(store, quiet=NIGHT)
    w = watch(store, clock)
    notifier.deliver_due()
    poll(store, clock, w.id, RUNNING)
    notifier.deliver_due()
    assert thread_texts(fake_slack, store, w.id) == []
    clock.advance(60)
    poll(store, clock, w.id, FAILED)
    notifier.deliver_due()
    texts = thread_texts(fake_slack, store, w.id)
    assert len(texts) == 2
    assert texts[0].startswith(":zzz: 1 update held") and texts[1].startswith(":x:")
    assert set(statuses(store, w.id)) == {"sent"}


def test_a_crash_between_the_digest_and_marking_its_rows_does_not_double_it(
    notifier, store, clock, fake_slack, monkeypatch
):
    configure(store, quiet=NIGHT)
    w = watch(store, clock)
    notifier.deliver_due()
    poll(store, clock, w.id, RUNNING)
    poll(store, clock, w.id, QUEUED_AGAIN)
    notifier.deliver_due()
    clock.now = berlin(2026, 1, 1, 7, 5)

    def crash(*args, **kwargs):
        raise RuntimeError("process died")

    monkeypatch.setattr(store, "mark_rows_sent", crash)
    with pytest.raises(RuntimeError):
        notifier.deliver_due()
    monkeypatch.undo()
    assert len(thread_texts(fake_slack, store, w.id)) == 1  # posted, not marked
    notifier.deliver_due()
    assert len(thread_texts(fake_slack, store, w.id)) == 1
    assert set(statuses(store, w.id)) == {"sent"}


QUEUED_AGAIN = JobSnapshot(State.QUEUED, "1001 JOB NOT INITIATED")
