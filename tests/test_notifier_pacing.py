"""Notifier pacing: Slack writes wait their turn per channel (posts, file shares) and per
workspace (edits) instead of provoking 429s; waiting rows lose nothing and stay in order."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.notifier import (
    CHANNEL_BURST,
    CHANNEL_POSTS_PER_MIN,
    UPDATE_BURST,
    UPDATES_PER_MIN,
    Notifier,
)
from storage import NewWatch, PollResult, Store

CHANNEL_GAP = 60.0 / (CHANNEL_POSTS_PER_MIN - CHANNEL_BURST)  # one refill
UPDATE_GAP = 60.0 / (UPDATES_PER_MIN - UPDATE_BURST)


def make_notifier(store, fake_slack, clock, workers: int = 4, shared: bool = False) -> Notifier:
    client = WebClient(token="xoxb-test", base_url=fake_slack.api_url, retry_handlers=[])
    return Notifier(store, client, clock=clock, workers=workers, shared=store if shared else None)


@pytest.fixture(params=["in-process", "shared"])
def notifier(request, store, fake_slack, clock) -> Iterator[Notifier]:
    """Each pacing rule holds with the paces in memory and with them in the database (as
    replicas share them)."""
    n = make_notifier(store, fake_slack, clock, shared=request.param == "shared")
    yield n
    n.shutdown()


@pytest.fixture
def posted_at(fake_slack, clock) -> list[tuple[str, float, str]]:
    """(channel, fake-clock time, kind) of every post and file share the fake accepted."""
    seen: list[tuple[str, float, str]] = []
    fake_slack.on_change(lambda kind, m: seen.append((m.channel, clock.now, kind)))
    return seen


def watch(store: Store, clock, n: int, channel: str = "C1"):
    ref = f"2480011000000498001/{2480011000000512000 + n}"
    new = NewWatch("zoho-analytics", ref, "default", channel, "U1", 10.0, clock.now + 86400)
    (w,) = store.create_watches([new], clock.now)
    return w


def apply(store: Store, clock, watch_id: str, result: PollResult) -> None:
    store.claim_due(clock.now + 10**9, "test-poller", 120, 1000)
    assert store.apply_poll(watch_id, "test-poller", result, clock.now)


def notes(store: Store, clock, watch_id: str, *texts: str) -> None:
    """Queue one thread reply per text, as a poll's notes would."""
    apply(store, clock, watch_id, PollResult({}, notes=texts))


def drain(notifier: Notifier, store: Store, clock, rounds: int = 2000) -> int:
    """Deliver, moving the fake clock to each next due row, until the outbox is empty.
    Returns the rounds it took."""
    for n in range(rounds):
        notifier.deliver_due()
        next_at = store.next_outbox_at(clock.now)
        if next_at is None:
            return n + 1
        clock.now = max(clock.now, next_at)
    raise AssertionError("the outbox never emptied")


def quiet_channels(notifier: Notifier, store: Store, clock) -> None:
    """Post whatever is queued, then wait long enough for every pace to be full again."""
    drain(notifier, store, clock)
    clock.advance(600)


def most_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)


def paced_count(notifier: Notifier, kind: str) -> float:
    labels = {"kind": kind, "outcome": "paced"}
    return notifier.metrics.registry.get_sample_value("syncwatch_slack_deliveries_total", labels)


def thread_texts(fake_slack, store: Store, watch_id: str, channel: str = "C1") -> list[str]:
    return [m.text for m in fake_slack.thread(channel, store.parent_ref(watch_id).ts)]


# -- per channel --------------------------------------------------------------------------


def test_a_busy_channel_posts_a_burst_then_one_post_per_turn_in_order(
    notifier, store, clock, fake_slack, posted_at
):
    watches = [watch(store, clock, n) for n in range(10)]
    quiet_channels(notifier, store, clock)
    posted_at.clear()
    for w in watches:
        notes(store, clock, w.id, *(f"{w.id} news {i}" for i in range(6)))
    due = clock.now

    notifier.deliver_due()
    assert len(posted_at) == CHANNEL_BURST  # the rest wait their turn
    waiting = sorted(
        r.next_attempt_at
        for w in watches
        for r in store.outbox_rows(w.id)
        if r.status == "pending" and r.next_attempt_at > due
    )
    # Each watch's next row has a turn of its own, one refill apart: they don't all come
    # back at once to be refused again.
    assert len(waiting) == len(watches)
    assert waiting[0] == pytest.approx(due + CHANNEL_GAP)
    gaps = [b - a for a, b in zip(waiting, waiting[1:], strict=False)]
    assert gaps == pytest.approx([CHANNEL_GAP] * len(gaps))

    rounds = drain(notifier, store, clock)
    assert rounds >= 60 - CHANNEL_BURST  # one post per turn after the burst
    for w in watches:  # every reply once, in its watch's order
        assert thread_texts(fake_slack, store, w.id) == [f"{w.id} news {i}" for i in range(6)]
    times = [t for channel, t, _ in posted_at if channel == "C1"]
    assert len(times) == 60
    assert most_in_window(times, 60.0) <= CHANNEL_POSTS_PER_MIN
    assert most_in_window(times, 1.0) <= CHANNEL_BURST
    assert len(fake_slack.calls_for("chat.postMessage")) == 10 + 60  # parents + replies, once


def test_paced_rows_gain_no_attempts_never_die_and_log_nothing(
    notifier, store, clock, fake_slack, caplog
):
    caplog.set_level(logging.INFO, logger="bot.notifier")
    watches = [watch(store, clock, n) for n in range(5)]
    for w in watches:  # 65 posts into one channel: most rows wait for a turn
        notes(store, clock, w.id, *(f"note {i}" for i in range(12)))
    drain(notifier, store, clock)
    rows = [r for w in watches for r in store.outbox_rows(w.id)]
    assert {r.status for r in rows} == {"sent"}
    assert {r.attempts for r in rows} == {0}
    assert paced_count(notifier, "reply") > 0 and paced_count(notifier, "parent") > 0
    assert caplog.records == []
    assert fake_slack.calls_for("chat.postMessage") and not any(
        c.method.startswith("conversations.") for c in fake_slack.calls
    )


def test_rows_back_long_after_their_turn_queue_anew_and_go_once(
    notifier, store, clock, fake_slack, posted_at
):
    watches = [watch(store, clock, n) for n in range(3 * CHANNEL_BURST)]
    quiet_channels(notifier, store, clock)
    posted_at.clear()
    for w in watches:
        notes(store, clock, w.id, "news")
    notifier.deliver_due()
    clock.advance(3600)  # every turn lapsed (a stalled process, a suspended laptop)

    notifier.deliver_due()
    assert len(posted_at) == 2 * CHANNEL_BURST  # a fresh burst, not everyone at once
    drain(notifier, store, clock)
    assert [len(thread_texts(fake_slack, store, w.id)) for w in watches] == [1] * len(watches)
    assert most_in_window([t for _, t, _ in posted_at], 1.0) <= CHANNEL_BURST


def test_other_channels_are_not_slowed_by_a_busy_one(notifier, store, clock, fake_slack):
    busy = [watch(store, clock, n, channel="C1") for n in range(8)]
    calm = watch(store, clock, 99, channel="C2")
    quiet_channels(notifier, store, clock)
    for w in busy:
        notes(store, clock, w.id, "busy", "busier")
    notes(store, clock, calm.id, "calm")

    notifier.deliver_due()
    assert thread_texts(fake_slack, store, calm.id, "C2") and all(
        r.status == "sent" for r in store.outbox_rows(calm.id)
    )
    c1_replies = [m for m in fake_slack.messages("C1", include_replies=True) if m.thread_ts]
    assert len(c1_replies) == CHANNEL_BURST


def test_file_shares_take_the_channel_turn_before_asking_for_an_upload_url(
    notifier, store, clock, fake_slack
):
    watches = [watch(store, clock, n) for n in range(CHANNEL_BURST + 2)]
    quiet_channels(notifier, store, clock)
    content = base64.b64encode(b"a,b\r\n1,2\r\n").decode()
    for w in watches:
        upload = {"filename": f"{w.id}.csv", "title": "Result", "content_b64": content}
        apply(store, clock, w.id, PollResult({}, uploads=[upload]))

    notifier.deliver_due()
    assert len(fake_slack.calls_for("files.getUploadURLExternal")) == CHANNEL_BURST
    assert len(fake_slack.calls_for("files.completeUploadExternal")) == CHANNEL_BURST
    drain(notifier, store, clock)
    for w in watches:
        shared = [m for m in fake_slack.thread("C1", store.parent_ref(w.id).ts) if m.files]
        assert [m.files[0][2] for m in shared] == [f"{w.id}.csv"]
    assert len(fake_slack.calls_for("files.getUploadURLExternal")) == len(watches)


# -- a message found already posted spends nothing ------------------------------------------


def metadata_for(payload: dict[str, Any]) -> dict[str, Any]:
    return {"event_type": "syncwatch_outbox", "event_payload": payload}


def test_a_reply_found_already_posted_spends_no_turn(notifier, store, clock, fake_slack):
    found = watch(store, clock, 0)
    others = [watch(store, clock, n) for n in range(1, CHANNEL_BURST + 1)]
    quiet_channels(notifier, store, clock)
    notes(store, clock, found.id, "posted by the dead process")
    (row,) = [r for r in store.outbox_rows(found.id) if r.status == "pending"]
    # The dead process: marked the row in flight, Slack posted it, the process died.
    store.mark_in_flight(row.id, clock.now)
    notifier.client.chat_postMessage(
        channel="C1",
        thread_ts=store.parent_ref(found.id).ts,
        text="posted by the dead process",
        metadata=metadata_for({"outbox_id": row.id}),
    )
    for w in others:
        notes(store, clock, w.id, "fresh news")
    posts_before = len(fake_slack.calls_for("chat.postMessage"))

    notifier.deliver_due()  # one round: the burst for the others, nothing for the found one
    assert {r.status for w in [found, *others] for r in store.outbox_rows(w.id)} == {"sent"}
    assert len(fake_slack.calls_for("chat.postMessage")) - posts_before == CHANNEL_BURST
    assert len(thread_texts(fake_slack, store, found.id)) == 1


def test_a_file_found_already_shared_spends_no_turn(notifier, store, clock, fake_slack):
    found = watch(store, clock, 0)
    others = [watch(store, clock, n) for n in range(1, CHANNEL_BURST + 1)]
    quiet_channels(notifier, store, clock)
    content = base64.b64encode(b"a,b\n1,2\n").decode()
    payload = {"filename": "Invoices.csv", "title": "Invoices", "content_b64": content}
    apply(store, clock, found.id, PollResult({}, uploads=[payload]))
    (row,) = [r for r in store.outbox_rows(found.id) if r.status == "pending"]
    done = notifier.client.files_upload_v2(
        channel="C1",
        thread_ts=store.parent_ref(found.id).ts,
        content=b"a,b\n1,2\n",
        filename="Invoices.csv",
    )
    store.note_upload(row.id, done["files"][0]["id"], clock.now)
    for w in others:
        notes(store, clock, w.id, "fresh news")

    notifier.deliver_due()
    assert {r.status for w in [found, *others] for r in store.outbox_rows(w.id)} == {"sent"}
    assert len(fake_slack.calls_for("files.completeUploadExternal")) == 1  # the dead one's


# -- per workspace ------------------------------------------------------------------------


def test_parent_edits_are_paced_per_workspace_across_channels(notifier, store, clock, fake_slack):
    watches = [watch(store, clock, n, channel=f"C{n}") for n in range(UPDATE_BURST + 4)]
    quiet_channels(notifier, store, clock)
    edited_at: list[float] = []
    fake_slack.on_change(lambda kind, m: kind == "update" and edited_at.append(clock.now))
    for w in watches:
        apply(
            store,
            clock,
            w.id,
            PollResult({"raw_status": "1002 JOB IN PROGRESS"}, update_parent=True),
        )
    due = clock.now

    notifier.deliver_due()
    assert len(edited_at) == UPDATE_BURST  # separate channels, one workspace
    drain(notifier, store, clock)
    assert len(fake_slack.calls_for("chat.update")) == len(watches)  # each edited once
    assert sorted(edited_at)[UPDATE_BURST:] == pytest.approx(
        [due + UPDATE_GAP * (i + 1) for i in range(len(watches) - UPDATE_BURST)]
    )
    assert {r.attempts for w in watches for r in store.outbox_rows(w.id)} == {0}


# -- Slack's 429 as the fallback ----------------------------------------------------------


def test_a_429_postpones_by_retry_after_without_an_attempt_and_holds_the_channel(
    store, clock, fake_slack
):
    notifier = make_notifier(store, fake_slack, clock, workers=1)  # a deterministic order
    try:
        first, second = watch(store, clock, 1), watch(store, clock, 2)
        quiet_channels(notifier, store, clock)
        notes(store, clock, first.id, "first")
        notes(store, clock, second.id, "second")
        fake_slack.fail_next("chat.postMessage", "ratelimited", 429, {"Retry-After": "30"})
        posts_before = len(fake_slack.calls_for("chat.postMessage"))

        notifier.deliver_due()
        assert len(fake_slack.calls_for("chat.postMessage")) - posts_before == 1  # the 429
        (refused,) = [r for r in store.outbox_rows(first.id) if r.status == "pending"]
        (held,) = [r for r in store.outbox_rows(second.id) if r.status == "pending"]
        assert refused.next_attempt_at == clock.now + 30 and refused.attempts == 0
        assert held.next_attempt_at >= clock.now + 30 and held.attempts == 0  # not refused
        assert store.in_flight_since(refused.id) is None  # Slack did nothing: no lookup

        clock.advance(29)
        assert notifier.deliver_due() == 0
        drain(notifier, store, clock)
    finally:
        notifier.shutdown()
    assert len(fake_slack.calls_for("chat.postMessage")) - posts_before == 3
    assert thread_texts(fake_slack, store, first.id) == ["first"]
    assert thread_texts(fake_slack, store, second.id) == ["second"]
    rows = store.outbox_rows(first.id) + store.outbox_rows(second.id)
    assert {(r.status, r.attempts) for r in rows} == {("sent", 0)}
    assert fake_slack.calls_for("conversations.history") == []


def test_an_unpaced_notifier_posts_everything_at_once(store, fake_slack, clock):
    """For a Slack with no limits (the demo's stand-in) the notifier can be built unpaced:
    a busy channel then gets every reply in one round."""
    client = WebClient(token="xoxb-test", base_url=fake_slack.api_url, retry_handlers=[])
    unpaced = Notifier(store, client, clock=clock, paced=False)
    try:
        busy = [watch(store, clock, n, channel="C1") for n in range(8)]
        unpaced.deliver_due()  # the parents
        for w in busy:
            notes(store, clock, w.id, "busy", "busier")
        unpaced.deliver_due()
        c1_replies = [m for m in fake_slack.messages("C1", include_replies=True) if m.thread_ts]
        assert len(c1_replies) == 16 > CHANNEL_BURST
    finally:
        unpaced.shutdown()
