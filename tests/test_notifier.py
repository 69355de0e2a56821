"""Notifier: outbox rows reach the fake Slack Web API in order, with Slack's failures handled."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.lifecycle import decide
from bot.notifier import Notifier
from bot.slack import build_slack_client
from bot.vendors import JobSnapshot, State, TransientError
from bot.vendors.zoho_analytics import SPEC
from storage import ACTIVE, PAUSED, NewWatch, PollResult, Store, TransitionDraft

REF = "2480011000000498001/2480011000000512007"
QUEUED = JobSnapshot(State.QUEUED, "1001 JOB NOT INITIATED")
RUNNING = JobSnapshot(State.RUNNING, "1002 JOB IN PROGRESS")
SUCCEEDED = JobSnapshot(
    State.SUCCEEDED, "1004 JOB COMPLETED", progress=(("Rows", "1,200 of 1,200 imported"),)
)


@pytest.fixture
def notifier(store, fake_slack, clock) -> Iterator[Notifier]:
    client = WebClient(token="xoxb-test", base_url=fake_slack.api_url, retry_handlers=[])
    n = Notifier(store, client, clock=clock)
    yield n
    n.shutdown()


def watch(store: Store, clock, ref: str = REF, channel: str = "C1"):
    new = NewWatch("zoho-analytics", ref, "default", channel, "U1", 10.0, clock.now + 86400)
    (w,) = store.create_watches([new], clock.now)
    return w


def poll(store: Store, clock, watch_id: str, outcome: Any, uploads=()) -> None:
    """Record one poll outcome as the poller would (lease, decide, apply)."""
    store.claim_due(clock.now + 10**9, "test-poller", 120, 1000)
    result = decide(store.get_watch(watch_id), outcome, SPEC, clock.now, lambda: 0.0, uploads)
    assert store.apply_poll(watch_id, "test-poller", result, clock.now)


def upload(content: bytes, filename: str = "import-summary-1.csv") -> dict[str, Any]:
    b64 = base64.b64encode(content).decode()
    return {"filename": filename, "title": "Import summary", "comment": "", "content_b64": b64}


def posts(fake_slack, **match: Any) -> list[dict[str, Any]]:
    found = [c.params for c in fake_slack.calls_for("chat.postMessage")]
    return [p for p in found if all(p.get(k) == v for k, v in match.items())]


def statuses(store: Store, watch_id: str) -> list[str]:
    return [r.status for r in store.outbox_rows(watch_id)]


def parent_of(store: Store, watch_id: str) -> str:
    return store.parent_ref(watch_id).ts


def as_text(params: dict[str, Any]) -> str:
    return params.get("text", "") + json.dumps(params.get("blocks") or [])


# -- parent -------------------------------------------------------------------------------


def test_parent_is_posted_once_and_its_ts_stored(notifier, store, clock, fake_slack):
    w = watch(store, clock)
    assert notifier.deliver_due() == 1
    (post,) = posts(fake_slack)
    assert post["channel"] == "C1" and "thread_ts" not in post
    assert REF in post["text"] and REF in json.dumps(post["blocks"])
    assert f"watch `{w.id}`" in json.dumps(post["blocks"])
    (message,) = fake_slack.messages("C1")
    assert parent_of(store, w.id) == message.ts
    assert notifier.deliver_due() == 0
    assert len(fake_slack.calls) == 1


def test_pending_parent_rows_coalesce_into_one_update(notifier, store, clock, fake_slack):
    w = watch(store, clock)
    poll(store, clock, w.id, RUNNING)
    notifier.deliver_due()
    for done in ("300", "600", "900"):
        clock.advance(10)
        poll(store, clock, w.id, JobSnapshot(State.RUNNING, RUNNING.raw_status, (("Rows", done),)))
    assert statuses(store, w.id)[-3:] == ["pending"] * 3

    notifier.deliver_due()
    (update,) = fake_slack.calls_for("chat.update")
    assert update.params["ts"] == parent_of(store, w.id)
    assert update.params["parse"] == "none"
    assert "900" in json.dumps(update.params["blocks"])
    assert set(statuses(store, w.id)) == {"sent"}
    assert len(fake_slack.messages("C1")) == 1


def test_replies_thread_under_the_parent_in_order(notifier, store, clock, fake_slack):
    w = watch(store, clock)
    for snap in (QUEUED, RUNNING, SUCCEEDED):
        poll(store, clock, w.id, snap)
        clock.advance(30)
    notifier.deliver_due()
    ts = parent_of(store, w.id)
    thread = fake_slack.thread("C1", ts)
    assert [m.text.split(" ", 1)[0] for m in thread] == [
        ":hourglass_flowing_sand:",
        ":arrows_counterclockwise:",
        ":white_check_mark:",
    ]
    assert "<@U1>" in thread[-1].text
    assert all("<@U1>" not in m.text for m in thread[:-1])
    assert [p["thread_ts"] for p in posts(fake_slack) if "thread_ts" in p] == [ts] * 3
    assert "Succeeded" in fake_slack.messages("C1")[0].text


# -- files --------------------------------------------------------------------------------


def test_result_file_is_uploaded_into_the_thread(notifier, store, clock, fake_slack):
    w = watch(store, clock)
    csv = b"field,value\r\ntotalRowCount,1200\r\n"
    poll(store, clock, w.id, SUCCEEDED, uploads=[upload(csv)])
    notifier.deliver_due()
    (complete,) = fake_slack.calls_for("files.completeUploadExternal")
    file_id = json.loads(complete.params["files"])[0]["id"]
    assert fake_slack.uploads[file_id] == csv
    assert complete.params["channel_id"] == "C1"
    assert complete.params["thread_ts"] == parent_of(store, w.id)
    shared = [m for m in fake_slack.thread("C1", parent_of(store, w.id)) if m.files]
    assert [m.files[0][2] for m in shared] == ["import-summary-1.csv"]
    assert store.outbox_rows(w.id)[-1].status == "sent"


def test_empty_file_becomes_a_note(notifier, store, clock, fake_slack):
    w = watch(store, clock)
    poll(store, clock, w.id, SUCCEEDED, uploads=[upload(b"")])
    notifier.deliver_due()
    assert fake_slack.calls_for("files.getUploadURLExternal") == []
    last = fake_slack.thread("C1", parent_of(store, w.id))[-1]
    assert "`import-summary-1.csv` is empty" in last.text
    assert set(statuses(store, w.id)) == {"sent"}


def test_note_payload_is_posted_in_the_thread(notifier, store, clock, fake_slack):
    w = watch(store, clock)
    note = {"note": "The result file could not be fetched: link <expired>", "warning": True}
    poll(store, clock, w.id, SUCCEEDED, uploads=[note])
    notifier.deliver_due()
    last = fake_slack.thread("C1", parent_of(store, w.id))[-1]
    assert last.text == ":warning: The result file could not be fetched: link &lt;expired&gt;"
    assert fake_slack.calls_for("files.getUploadURLExternal") == []


# -- ordering and deferral ----------------------------------------------------------------


def test_reply_waits_for_a_deferred_parent(notifier, store, clock, fake_slack):
    fake_slack.fail_next("chat.postMessage", "ratelimited", 429, {"Retry-After": "30"})
    w = watch(store, clock)
    notifier.deliver_due()
    poll(store, clock, w.id, RUNNING)
    clock.advance(10)
    notifier.deliver_due()
    assert fake_slack.messages("C1", include_replies=True) == []
    clock.advance(21)
    notifier.deliver_due()
    ts = parent_of(store, w.id)
    assert [m.thread_ts for m in fake_slack.messages("C1", include_replies=True)] == [None, ts]


def test_reply_without_a_parent_is_deferred_and_a_new_parent_is_queued(
    notifier, store, clock, fake_slack
):
    w = watch(store, clock)
    store.mark_dead(store.outbox_rows(w.id)[0].id, "gave up")  # the first post never made it
    store.claim_due(clock.now, "test-poller", 120, 10)
    note = PollResult({}, TransitionDraft(event="note", note="first news"))
    assert store.apply_poll(w.id, "test-poller", note, clock.now)
    notifier.deliver_due()
    assert fake_slack.calls == []
    reply = next(r for r in store.outbox_rows(w.id) if r.kind == "reply")
    assert (reply.status, reply.next_attempt_at) == ("pending", clock.now + 5)
    assert store.outbox_rows(w.id)[-1].kind == "parent"  # recovery queued at once

    for _ in range(3):
        notifier.deliver_due()
        clock.advance(5)
    thread = fake_slack.thread("C1", parent_of(store, w.id))
    assert [m.text.split(" ")[0] for m in thread] == ["first"]
    assert len(fake_slack.messages("C1")) == 1
    assert set(statuses(store, w.id)) == {"dead", "sent"}


def test_ratelimited_row_is_deferred_then_sent_once(notifier, store, clock, fake_slack):
    fake_slack.fail_next("chat.postMessage", "ratelimited", 429, {"Retry-After": "30"})
    w = watch(store, clock)
    notifier.deliver_due()
    (row,) = store.outbox_rows(w.id)
    assert (row.status, row.next_attempt_at) == ("pending", clock.now + 30)
    clock.advance(20)
    assert notifier.deliver_due() == 0
    clock.advance(10)
    notifier.deliver_due()
    assert len(fake_slack.calls_for("chat.postMessage")) == 2
    assert len(fake_slack.messages("C1")) == 1
    assert statuses(store, w.id) == ["sent"]


def test_server_error_is_retried_with_backoff(notifier, store, clock, fake_slack):
    fake_slack.fail_next("chat.postMessage", "internal_error", status=500)
    w = watch(store, clock)
    notifier.deliver_due()
    (row,) = store.outbox_rows(w.id)
    assert row.status == "pending" and row.next_attempt_at > clock.now
    clock.advance(row.next_attempt_at - clock.now)
    notifier.deliver_due()
    assert len(fake_slack.messages("C1")) == 1
    assert statuses(store, w.id) == ["sent"]


def test_sdk_retry_handler_retries_a_429(store, clock, fake_slack):
    client = build_slack_client("xoxb-test", fake_slack.api_url)
    notifier = Notifier(store, client, clock=clock)
    try:
        fake_slack.fail_next("chat.postMessage", "ratelimited", 429, {"Retry-After": "0"})
        w = watch(store, clock)
        notifier.deliver_due()
    finally:
        notifier.shutdown()
    assert len(fake_slack.calls_for("chat.postMessage")) == 2
    assert len(fake_slack.messages("C1")) == 1
    assert statuses(store, w.id) == ["sent"]


# -- Slack says no ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "reason"),
    [
        ({"is_member": False}, "I was removed from this channel"),
        ({"exists": False}, "the channel is gone or I can't see it"),
        ({"is_archived": True}, "the channel is archived"),
    ],
)
def test_lost_channel_pauses_the_watch(notifier, store, clock, fake_slack, channel, reason):
    fake_slack.set_channel("C1", **channel)
    w = watch(store, clock)
    poll(store, clock, w.id, RUNNING)
    notifier.deliver_due()
    paused = store.get_watch(w.id)
    assert (paused.status, paused.pause_reason, paused.next_poll_at) == (PAUSED, reason, None)
    assert set(statuses(store, w.id)) == {"dead"}
    calls = len(fake_slack.calls)
    clock.advance(3600)
    assert notifier.deliver_due() == 0
    assert len(fake_slack.calls) == calls == 1


def test_deleted_parent_is_replaced_and_the_thread_moves(notifier, store, clock, fake_slack):
    w = watch(store, clock)
    notifier.deliver_due()
    old_ts = parent_of(store, w.id)
    fake_slack.fail_next("chat.update", "message_not_found")
    poll(store, clock, w.id, RUNNING)
    notifier.deliver_due()
    new_ts = parent_of(store, w.id)
    assert new_ts != old_ts
    assert [m.ts for m in fake_slack.messages("C1")] == [old_ts, new_ts]
    assert len(fake_slack.thread("C1", new_ts)) == 1
    assert fake_slack.thread("C1", old_ts) == []


def test_uneditable_parent_still_gets_thread_replies(notifier, store, clock, fake_slack):
    w = watch(store, clock)
    notifier.deliver_due()
    fake_slack.fail_next("chat.update", "edit_window_closed")
    poll(store, clock, w.id, RUNNING)
    notifier.deliver_due()
    assert set(statuses(store, w.id)) == {"sent"}
    assert len(fake_slack.messages("C1")) == 1
    (reply,) = fake_slack.thread("C1", parent_of(store, w.id))
    assert "running" in reply.text


def test_invalid_blocks_falls_back_to_text(notifier, store, clock, fake_slack):
    fake_slack.fail_next("chat.postMessage", "invalid_blocks")
    w = watch(store, clock)
    notifier.deliver_due()
    first, second = posts(fake_slack)
    assert first["blocks"] and not second.get("blocks")
    assert second["text"] == first["text"]
    (message,) = fake_slack.messages("C1")
    assert parent_of(store, w.id) == message.ts and REF in message.text


def test_invalid_auth_flags_credentials_and_defers(notifier, store, clock, fake_slack):
    fake_slack.fail_next("chat.postMessage", "invalid_auth")
    w = watch(store, clock)
    notifier.deliver_due()
    assert notifier.credentials_ok is False
    (row,) = store.outbox_rows(w.id)
    assert (row.status, row.next_attempt_at) == ("pending", clock.now + 60)
    assert fake_slack.messages("C1") == []
    clock.advance(60)
    notifier.deliver_due()
    assert len(fake_slack.messages("C1")) == 1


def test_file_uploads_disabled_posts_a_note(notifier, store, clock, fake_slack):
    fake_slack.fail_next("files.completeUploadExternal", "file_uploads_disabled")
    w = watch(store, clock)
    poll(store, clock, w.id, SUCCEEDED, uploads=[upload(b"a,b\r\n")])
    notifier.deliver_due()
    last = fake_slack.thread("C1", parent_of(store, w.id))[-1]
    assert "couldn't attach the result file" in last.text and "file_uploads_disabled" in last.text
    assert set(statuses(store, w.id)) == {"sent"}
    clock.advance(3600)
    assert notifier.deliver_due() == 0


def test_vendor_text_cannot_ping_the_channel(notifier, store, clock, fake_slack):
    w = watch(store, clock)
    poll(store, clock, w.id, TransientError("Zoho said <!channel> & <@U999>"))
    failed = JobSnapshot(
        State.FAILED,
        "1003 ERROR OCCURRED",
        error_code="1003",
        error_message="<!channel> row 17 is bad",
    )
    clock.advance(10)
    notifier.deliver_due()  # parent shows the transient error
    poll(store, clock, w.id, failed)
    notifier.deliver_due()
    sent = [as_text(c.params) for c in fake_slack.calls if c.method.startswith("chat.")]
    assert any("&lt;!channel&gt; row 17" in s for s in sent)  # the failure reply
    assert any("Zoho said &lt;!channel&gt; &amp; &lt;@U999&gt;" in s for s in sent)  # parent
    assert not any("<!channel>" in s or "<@U999>" in s for s in sent)


# -- background loop ----------------------------------------------------------------------


def test_started_notifier_delivers_when_woken(notifier, store, clock, fake_slack):
    notifier.start()
    w = watch(store, clock)
    notifier.wake()
    (call,) = fake_slack.wait_for("chat.postMessage")
    assert REF in call.params["text"]
    poll(store, clock, w.id, RUNNING)
    notifier.wake()
    fake_slack.wait_for("chat.postMessage", count=2)
    fake_slack.wait_for("chat.update")
    notifier.shutdown()
    assert store.get_watch(w.id).status == ACTIVE
    assert set(statuses(store, w.id)) == {"sent"}


def test_uneditable_parent_is_not_edited_again(notifier, store, clock, fake_slack):
    w = watch(store, clock)
    notifier.deliver_due()
    fake_slack.fail_next("chat.update", "edit_window_closed")
    poll(store, clock, w.id, RUNNING)
    notifier.deliver_due()
    poll(store, clock, w.id, SUCCEEDED)
    notifier.deliver_due()
    assert len(fake_slack.calls_for("chat.update")) == 1  # the refused one only
    replies = fake_slack.thread("C1", parent_of(store, w.id))
    assert len(replies) == 2  # the news still reaches the thread


def test_credentials_recover_after_a_good_delivery(notifier, store, clock, fake_slack):
    fake_slack.fail_next("chat.postMessage", "invalid_auth")
    watch(store, clock)
    notifier.deliver_due()
    assert notifier.credentials_ok is False
    clock.advance(61)
    notifier.deliver_due()
    assert notifier.credentials_ok is True
    assert len(fake_slack.messages("C1")) == 1


# -- uploads exactly once -----------------------------------------------------------------


def spool_upload(tmp_path, content: bytes, name: str = "Invoices.csv") -> dict[str, Any]:
    path = tmp_path / f"spool-{name}"
    path.write_bytes(content)
    return {"filename": name, "title": "Invoices", "comment": "3 records", "path": str(path)}


def test_spool_file_is_streamed_into_the_thread_and_then_deleted(
    notifier, store, clock, fake_slack, tmp_path
):
    w = watch(store, clock)
    payload = spool_upload(tmp_path, b"id,amount\n1,10\n2,20\n3,30\n")
    poll(store, clock, w.id, SUCCEEDED, uploads=[payload])
    notifier.deliver_due()
    (shared,) = [m for m in fake_slack.thread("C1", parent_of(store, w.id)) if m.files]
    file_id, title, filename = shared.files[0]
    assert (title, filename) == ("Invoices", "Invoices.csv")
    assert fake_slack.uploads[file_id] == b"id,amount\n1,10\n2,20\n3,30\n"
    assert shared.text == "3 records"
    assert not (tmp_path / "spool-Invoices.csv").exists()


def test_upload_interrupted_after_slack_shared_it_is_not_posted_again(
    notifier, store, clock, fake_slack, tmp_path
):
    """A crash between Slack sharing the file and the row being marked sent."""
    w = watch(store, clock)
    notifier.deliver_due()
    payload = spool_upload(tmp_path, b"a,b\n1,2\n")
    poll(store, clock, w.id, SUCCEEDED, uploads=[payload])
    row = next(r for r in store.outbox_rows(w.id) if r.kind == "upload")
    # What the dead process did: shared the file, recorded its id, never marked the row.
    done = notifier.client.files_upload_v2(
        channel="C1",
        thread_ts=parent_of(store, w.id),
        content=b"a,b\n1,2\n",
        filename="Invoices.csv",
    )
    store.note_upload(row.id, done["files"][0]["id"], clock.now)
    notifier.deliver_due()
    shared = [m for m in fake_slack.thread("C1", parent_of(store, w.id)) if m.files]
    assert len(shared) == 1
    assert len(fake_slack.calls_for("files.completeUploadExternal")) == 1
    assert store.outbox_rows(w.id)[-1].status == "sent"


def test_upload_interrupted_before_it_was_shared_is_posted_once(
    notifier, store, clock, fake_slack, tmp_path
):
    w = watch(store, clock)
    notifier.deliver_due()
    poll(store, clock, w.id, SUCCEEDED, uploads=[spool_upload(tmp_path, b"a,b\n1,2\n")])
    row = next(r for r in store.outbox_rows(w.id) if r.kind == "upload")
    store.note_upload(row.id, "F-never-shared", clock.now)
    notifier.deliver_due()
    shared = [m for m in fake_slack.thread("C1", parent_of(store, w.id)) if m.files]
    assert len(shared) == 1 and fake_slack.uploads[shared[0].files[0][0]] == b"a,b\n1,2\n"


def test_missing_spool_file_is_reported_not_retried_forever(
    notifier, store, clock, fake_slack, tmp_path
):
    w = watch(store, clock)
    payload = spool_upload(tmp_path, b"x\n")
    (tmp_path / "spool-Invoices.csv").unlink()
    poll(store, clock, w.id, SUCCEEDED, uploads=[payload])
    notifier.deliver_due()
    last = fake_slack.thread("C1", parent_of(store, w.id))[-1]
    assert "was lost before I could post it" in last.text
    assert set(statuses(store, w.id)) == {"sent"}


# -- messages exactly once ----------------------------------------------------------------


def metadata_for(payload: dict[str, Any]) -> dict[str, Any]:
    return {"event_type": "syncwatch_outbox", "event_payload": payload}


def test_every_post_names_its_outbox_row_in_metadata(notifier, store, clock, fake_slack):
    w = watch(store, clock)
    notifier.deliver_due()
    poll(store, clock, w.id, RUNNING)
    notifier.deliver_due()
    parent_post, reply_post = fake_slack.calls_for("chat.postMessage")
    assert parent_post.params["metadata"]["event_payload"] == {"watch_id": w.id, "kind": "parent"}
    reply_row = next(r for r in store.outbox_rows(w.id) if r.kind == "reply")
    assert reply_post.params["metadata"]["event_payload"] == {"outbox_id": reply_row.id}


def test_parent_posted_before_a_crash_is_found_not_posted_again(notifier, store, clock, fake_slack):
    w = watch(store, clock)
    (row,) = store.outbox_rows(w.id)
    # The dead process: marked the row in flight, Slack posted, the process died.
    store.mark_in_flight(row.id, clock.now)
    posted = notifier.client.chat_postMessage(
        channel="C1", text="parent", metadata=metadata_for({"watch_id": w.id, "kind": "parent"})
    )
    notifier.deliver_due()
    assert len(fake_slack.calls_for("chat.postMessage")) == 1  # only the dead process's
    assert store.parent_ref(w.id).ts == posted["ts"]
    assert statuses(store, w.id) == ["sent"]


def test_reply_posted_before_a_crash_is_found_not_posted_again(notifier, store, clock, fake_slack):
    w = watch(store, clock)
    notifier.deliver_due()
    poll(store, clock, w.id, RUNNING)
    reply_row = next(r for r in store.outbox_rows(w.id) if r.kind == "reply")
    store.mark_in_flight(reply_row.id, clock.now)
    notifier.client.chat_postMessage(
        channel="C1",
        thread_ts=parent_of(store, w.id),
        text="reply",
        metadata=metadata_for({"outbox_id": reply_row.id}),
    )
    notifier.deliver_due()
    assert len(fake_slack.thread("C1", parent_of(store, w.id))) == 1
    assert set(statuses(store, w.id)) == {"sent"}


def test_a_5xx_keeps_the_row_in_flight_and_the_retry_looks_first(
    notifier, store, clock, fake_slack
):
    fake_slack.fail_next("chat.postMessage", "internal_error", status=500)
    w = watch(store, clock)
    notifier.deliver_due()
    (row,) = store.outbox_rows(w.id)
    assert store.in_flight_since(row.id) is not None
    clock.advance(10)
    notifier.deliver_due()
    assert len(fake_slack.calls_for("conversations.history")) == 1
    assert len(fake_slack.messages("C1")) == 1


def test_a_rate_limit_means_nothing_was_posted_so_no_lookup(notifier, store, clock, fake_slack):
    fake_slack.fail_next("chat.postMessage", "ratelimited", 429, {"Retry-After": "3"})
    w = watch(store, clock)
    notifier.deliver_due()
    (row,) = store.outbox_rows(w.id)
    assert store.in_flight_since(row.id) is None
    clock.advance(5)
    notifier.deliver_due()
    assert fake_slack.calls_for("conversations.history") == []
    assert len(fake_slack.messages("C1")) == 1


def test_the_notifier_client_never_resends_a_write_on_its_own():
    client = build_slack_client("xoxb-test", "http://127.0.0.1:9/api/", for_writes=True)
    assert client.retry_handlers == []  # a 429 postpones the row (tests/test_notifier_pacing.py)


@pytest.mark.parametrize(
    ("error", "status", "headers"),
    [("ratelimited", 429, {"Retry-After": "7"}), ("internal_error", 500, None)],
)
def test_a_lookup_that_fails_for_now_asks_again_later_instead_of_posting_again(
    notifier, store, clock, fake_slack, error, status, headers
):
    """A row found in flight may already be in the channel: if the lookup is refused for
    now (rate limit, Slack error), posting again could make a duplicate; wait and look."""
    w = watch(store, clock)
    (row,) = store.outbox_rows(w.id)
    store.mark_in_flight(row.id, clock.now)
    notifier.client.chat_postMessage(  # the dead process had posted it
        channel="C1", text="parent", metadata=metadata_for({"watch_id": w.id, "kind": "parent"})
    )
    fake_slack.fail_next("conversations.history", error, status, headers)
    notifier.deliver_due()
    assert len(fake_slack.calls_for("chat.postMessage")) == 1  # not posted a second time
    assert statuses(store, w.id) == ["pending"]
    clock.advance(400)
    notifier.deliver_due()
    assert len(fake_slack.calls_for("chat.postMessage")) == 1
    assert len(fake_slack.calls_for("conversations.history")) == 2
    assert statuses(store, w.id) == ["sent"]


def test_upload_url_refusing_the_bytes_retries_the_row_and_shares_once(
    notifier, store, clock, fake_slack, tmp_path
):
    """Slack's pre-signed URL answers 500: nothing is shared, the row waits for a retry,
    and the retry shares the file once."""
    w = watch(store, clock)
    notifier.deliver_due()
    poll(store, clock, w.id, SUCCEEDED, uploads=[spool_upload(tmp_path, b"a,b\n1,2\n")])
    fake_slack.fail_next("upload/F1", "upload failed", status=500)
    notifier.deliver_due()
    row = next(r for r in store.outbox_rows(w.id) if r.kind == "upload")
    assert row.status == "pending" and row.attempts == 1
    assert not [m for m in fake_slack.thread("C1", parent_of(store, w.id)) if m.files]
    clock.advance(600)
    notifier.deliver_due()
    shared = [m for m in fake_slack.thread("C1", parent_of(store, w.id)) if m.files]
    assert len(shared) == 1 and fake_slack.uploads[shared[0].files[0][0]] == b"a,b\n1,2\n"


def chatter(client: WebClient, count: int, thread_ts: str | None = None) -> None:
    """People talk after the bot's post: `count` messages with no metadata of ours."""
    for n in range(count):
        client.chat_postMessage(channel="C1", text=f"person {n}", thread_ts=thread_ts)


def test_busy_channel_short_pages_parent_found_not_posted_again(notifier, store, clock, fake_slack):
    """The post's answer was lost, then 250 people's messages came, and Slack serves 15
    a page: the look-up follows the cursor and finds the parent instead of posting a
    second one."""
    fake_slack.page_cap = 15
    w = watch(store, clock)
    (row,) = store.outbox_rows(w.id)
    store.mark_in_flight(row.id, clock.now)
    posted = notifier.client.chat_postMessage(
        channel="C1", text="parent", metadata=metadata_for({"watch_id": w.id, "kind": "parent"})
    )
    chatter(notifier.client, 250)
    notifier.deliver_due()
    ours = [m for m in fake_slack.messages("C1") if m.text != "parent" and "person" not in m.text]
    assert ours == [] and store.parent_ref(w.id).ts == posted["ts"]
    assert len(fake_slack.calls_for("conversations.history")) >= 17  # 251 / 15 pages


def test_busy_thread_short_pages_reply_found_not_posted_again(notifier, store, clock, fake_slack):
    fake_slack.page_cap = 15
    w = watch(store, clock)
    notifier.deliver_due()
    poll(store, clock, w.id, RUNNING)
    reply_row = next(r for r in store.outbox_rows(w.id) if r.kind == "reply")
    store.mark_in_flight(reply_row.id, clock.now)
    # Replies come oldest first: people talking in the thread just before ours (inside the
    # look-up's window) push it off the first page.
    chatter(notifier.client, 200, thread_ts=parent_of(store, w.id))
    notifier.client.chat_postMessage(
        channel="C1",
        thread_ts=parent_of(store, w.id),
        text="reply",
        metadata=metadata_for({"outbox_id": reply_row.id}),
    )
    notifier.deliver_due()
    thread = fake_slack.thread("C1", parent_of(store, w.id))
    assert sum(1 for m in thread if "person" not in (m.text or "")) == 1
    assert set(statuses(store, w.id)) == {"sent"}


def test_busy_thread_short_pages_file_shared_once(notifier, store, clock, fake_slack, tmp_path):
    fake_slack.page_cap = 15
    w = watch(store, clock)
    notifier.deliver_due()
    poll(store, clock, w.id, SUCCEEDED, uploads=[spool_upload(tmp_path, b"a,b\n1,2\n")])
    row = next(r for r in store.outbox_rows(w.id) if r.kind == "upload")
    done = notifier.client.files_upload_v2(
        channel="C1", thread_ts=parent_of(store, w.id), content=b"a,b\n1,2\n", filename="x.csv"
    )
    store.note_upload(row.id, done["files"][0]["id"], clock.now)
    chatter(notifier.client, 200, thread_ts=parent_of(store, w.id))
    notifier.deliver_due()
    shared = [m for m in fake_slack.thread("C1", parent_of(store, w.id)) if m.files]
    assert len(shared) == 1
    assert store.outbox_rows(w.id)[-1].status == "sent"


def test_a_thread_look_up_refused_for_now_waits_instead_of_sharing_again(
    notifier, store, clock, fake_slack, tmp_path
):
    w = watch(store, clock)
    notifier.deliver_due()
    poll(store, clock, w.id, SUCCEEDED, uploads=[spool_upload(tmp_path, b"a,b\n1,2\n")])
    row = next(r for r in store.outbox_rows(w.id) if r.kind == "upload")
    done = notifier.client.files_upload_v2(
        channel="C1", thread_ts=parent_of(store, w.id), content=b"a,b\n1,2\n", filename="x.csv"
    )
    store.note_upload(row.id, done["files"][0]["id"], clock.now)
    fake_slack.fail_next("conversations.replies", "ratelimited", 429, {"Retry-After": "5"})
    notifier.deliver_due()
    assert len([m for m in fake_slack.thread("C1", parent_of(store, w.id)) if m.files]) == 1
    assert next(r for r in store.outbox_rows(w.id) if r.id == row.id).status == "pending"
    clock.advance(10)
    notifier.deliver_due()
    assert len([m for m in fake_slack.thread("C1", parent_of(store, w.id)) if m.files]) == 1
    assert next(r for r in store.outbox_rows(w.id) if r.id == row.id).status == "sent"
