"""Store: migrations, duplicate rule, leases, poll application, stop/pause, outbox ordering."""

from __future__ import annotations

import re
import threading

import pytest

from storage import (
    ACTIVE,
    DONE,
    PAUSED,
    STOPPED,
    DuplicateWatchError,
    NewWatch,
    PollResult,
    Store,
    TransitionDraft,
)
from storage.migrations import migrations

NOW = 1_767_225_600.0


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every test here runs on SQLite and on PostgreSQL (skipped without SYNCWATCH_TEST_PG)."""
    return any_store


REF = "2480011000000498001/2480011000000512007"
WATCH_ID = re.compile(r"^w[abcdefghijkmnpqrstuvwxyz23456789]{3,}$")


def draft(ref: str = REF, channel: str = "C1", **kw) -> NewWatch:
    values = {
        "vendor": "zoho-analytics",
        "ref": ref,
        "connection": "default",
        "channel_id": channel,
        "requester_id": "U1",
        "interval_s": 10.0,
        "deadline": NOW + 86400,
    }
    return NewWatch(**{**values, **kw})


def make(store: Store, *drafts: NewWatch, now: float = NOW):
    return store.create_watches(list(drafts) or [draft()], now)


def rows(store: Store, watch_id: str) -> list[tuple[str, str]]:
    return [(r.kind, r.status) for r in store.outbox_rows(watch_id)]


def running(now: float = NOW) -> PollResult:
    return PollResult(
        {"state": "running", "raw_status": "1002 JOB IN PROGRESS", "next_poll_at": now + 10},
        TransitionDraft(event="state", from_state=None, to_state="running"),
        update_parent=True,
    )


# -- schema -------------------------------------------------------------------------------


def test_migrations_are_idempotent_across_reopen(tmp_path):
    path = str(tmp_path / "a.db")
    first = Store(path)
    (w,) = make(first)
    first.close()
    second = Store(path)
    try:
        assert second.get_watch(w.id) == w
        db = second.engine.pool.get()
        applied = db.execute("SELECT name FROM _sqlite_migrations").fetchall()
        names = [name for (name,) in applied]
        assert names[0] == "m001_initial" and len(names) == len(set(names))  # each once
        assert migrations.pending(db) == []
    finally:
        second.close()


def test_database_runs_in_wal_mode(tmp_path):
    store = Store(str(tmp_path / "wal.db"))
    try:
        (mode,) = store.engine.row("PRAGMA journal_mode")
    finally:
        store.close()
    assert mode == "wal"


# -- creating watches ---------------------------------------------------------------------


def test_create_watch_stores_it_with_a_pending_parent_post(store):
    (w,) = make(store)
    assert WATCH_ID.match(w.id)
    assert (w.status, w.state, w.next_poll_at, w.attempts, w.polls) == (ACTIVE, None, NOW, 0, 0)
    assert (w.vendor, w.ref, w.channel_id, w.requester_id) == ("zoho-analytics", REF, "C1", "U1")
    assert rows(store, w.id) == [("parent", "pending")]


def test_duplicate_active_watch_is_refused_and_nothing_created(store):
    (w,) = make(store)
    with pytest.raises(DuplicateWatchError) as info:
        make(store)
    assert info.value.existing.id == w.id
    assert [x.id for x in store.list_watches()] == [w.id]
    assert store.outbox_backlog(NOW)[0] == 1


def test_duplicate_second_in_a_batch_creates_none_of_the_batch(store):
    (w,) = make(store)
    with pytest.raises(DuplicateWatchError):
        make(store, draft(ref="1/2"), draft())  # the 2nd duplicates w
    assert [x.id for x in store.list_watches()] == [w.id]
    assert store.find_active("zoho-analytics", "1/2", "C1") is None
    assert store.outbox_backlog(NOW)[0] == 1


def test_duplicate_within_one_batch_is_refused(store):
    with pytest.raises(DuplicateWatchError):
        make(store, draft(), draft())
    assert store.list_watches() == []


def test_same_job_in_another_channel_is_allowed(store):
    a, b = make(store, draft(channel="C1"), draft(channel="C2"))
    assert a.id != b.id
    assert {w.channel_id for w in store.list_watches()} == {"C1", "C2"}


def test_job_can_be_watched_again_after_stop(store):
    (first,) = make(store)
    store.stop_watch(first.id, "U1", NOW + 1)
    (second,) = make(store, now=NOW + 2)
    assert second.id != first.id
    assert store.find_active("zoho-analytics", REF, "C1").id == second.id


def test_a_taken_id_is_drawn_again_and_nothing_is_lost(store, monkeypatch):
    # The random id is the only thing that clashes: the second watch gets another id, the
    # first keeps its row (an id clash must never read as "already watched").
    (first,) = make(store)
    letters = iter(first.id[1:] + "zzz")
    monkeypatch.setattr("storage.store.secrets.choice", lambda alphabet: next(letters, "y"))
    (second,) = make(store, draft(ref=REF + "9"))
    assert second.id == "wzzz" and first.id != second.id
    assert store.get_watch(first.id).ref == REF
    assert store.get_watch(second.id).ref == REF + "9"
    assert rows(store, second.id) == [("parent", "pending")]


def test_a_new_watch_is_one_write_transaction_of_few_statements(tmp_path):
    # The API's p99 under a burst is the sum of every creation's statements (README,
    # benchmarks): a creation that grows a look-up should have to say so here.
    store = Store(str(tmp_path / "syncwatch.db"))
    seen: list[str] = []
    store.engine.pool.get().conn.set_trace_callback(seen.append)
    (watch,) = make(store)
    store.engine.pool.get().conn.set_trace_callback(None)
    verbs = [sql.split()[0].upper() for sql in seen]
    assert verbs.count("BEGIN") == 1 and verbs[-1] == "COMMIT"
    assert len(seen) <= 6, seen  # BEGIN, the channel's routes, watch, parent row, COMMIT
    assert store.get_watch(watch.id).status == ACTIVE
    store.close()


# -- claiming -----------------------------------------------------------------------------


def set_next_poll(store: Store, watch_id: str, at: float) -> None:
    store.engine.execute("UPDATE watches SET next_poll_at = ? WHERE id = ?", [at, watch_id])


def test_claim_due_takes_only_active_due_watches(store):
    due, later, stopped = make(store, draft(ref="1/1"), draft(ref="1/2"), draft(ref="1/3"))
    set_next_poll(store, later.id, NOW + 60)
    store.stop_watch(stopped.id, "U1", NOW)
    claimed = store.claim_due(NOW, "p1", lease_s=120, limit=10)
    assert [w.id for w in claimed] == [due.id]
    assert (claimed[0].lease_owner, claimed[0].lease_until) == ("p1", NOW + 120)


def test_claim_due_respects_limit(store):
    make(store, *(draft(ref=f"1/{i}") for i in range(5)))
    assert store.claim_due(NOW, "p1", 120, limit=0) == []
    assert len(store.claim_due(NOW, "p1", 120, limit=2)) == 2
    assert len(store.claim_due(NOW, "p2", 120, limit=10)) == 3


def test_claim_due_early_reaches_polls_due_just_after_now(store):
    (w,) = make(store)
    set_next_poll(store, w.id, NOW + 0.4)
    assert store.claim_due(NOW, "p1", 120, 10, early=0.0) == []
    assert [x.id for x in store.claim_due(NOW, "p1", 120, 10, early=0.5)] == [w.id]


def test_lease_blocks_a_second_claim_until_it_expires(store):
    (w,) = make(store)
    assert [x.id for x in store.claim_due(NOW, "p1", 120, 10)] == [w.id]
    assert store.claim_due(NOW + 60, "p2", 120, 10) == []
    reclaimed = store.claim_due(NOW + 121, "p2", 120, 10)
    assert [(x.id, x.lease_owner) for x in reclaimed] == [(w.id, "p2")]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_concurrent_claims_never_share_a_watch(engine, tmp_path, request):
    path = request.getfixturevalue("pg_url") if engine == "postgresql" else str(tmp_path / "r.db")
    setup = Store(path)
    make(setup, *(draft(ref=f"1/{i}") for i in range(60)))
    setup.close()
    stores = [Store(path), Store(path)]  # separate connections, as two processes would have
    got: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claim(name: str, s: Store) -> None:
        start.wait()
        while batch := s.claim_due(NOW, name, 120, limit=3):
            got[name] += [w.id for w in batch]

    threads = [
        threading.Thread(target=claim, args=(n, s)) for n, s in zip(got, stores, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for s in stores:
        s.close()
    assert not set(got["a"]) & set(got["b"])
    assert len(got["a"]) + len(got["b"]) == 60


# -- applying polls -----------------------------------------------------------------------


def test_apply_poll_needs_the_lease_owner(store):
    (w,) = make(store)
    store.claim_due(NOW, "p1", 120, 10)
    assert store.apply_poll(w.id, "p2", running(), NOW + 1) is False
    assert store.get_watch(w.id).state is None
    assert store.apply_poll(w.id, "p1", running(), NOW + 1) is True
    after = store.get_watch(w.id)
    assert (after.state, after.lease_owner, after.lease_until) == ("running", None, None)
    assert [t.to_state for t in store.transitions(w.id)] == ["running"]
    assert rows(store, w.id) == [("parent", "pending"), ("parent", "pending"), ("reply", "pending")]


def test_stop_during_a_poll_wins(store):
    (w,) = make(store)
    store.claim_due(NOW, "p1", 120, 10)
    store.stop_watch(w.id, "U2", NOW + 1)
    assert store.apply_poll(w.id, "p1", running(), NOW + 2) is False
    after = store.get_watch(w.id)
    assert (after.status, after.state) == (STOPPED, None)
    assert [t.event for t in store.transitions(w.id)] == ["stopped"]


def test_apply_poll_queues_uploads(store):
    (w,) = make(store)
    store.claim_due(NOW, "p1", 120, 10)
    done = PollResult(
        {"status": DONE, "state": "succeeded", "next_poll_at": None},
        TransitionDraft(event="state", from_state=None, to_state="succeeded"),
        True,
        ({"filename": "a.csv", "content_b64": "YQ=="},),
    )
    assert store.apply_poll(w.id, "p1", done, NOW + 1)
    uploads = [r.payload for r in store.outbox_rows(w.id) if r.kind == "upload"]
    assert uploads == [{"filename": "a.csv", "content_b64": "YQ=="}]


# -- stop and pause -----------------------------------------------------------------------


def test_stop_records_transition_and_queues_parent_and_reply(store):
    (w,) = make(store)
    stopped = store.stop_watch(w.id, "U2", NOW + 5)
    assert (stopped.status, stopped.stopped_by, stopped.finished_at) == (STOPPED, "U2", NOW + 5)
    assert stopped.next_poll_at is None
    (t,) = store.transitions(w.id)
    assert (t.event, t.actor) == ("stopped", "U2")
    assert rows(store, w.id)[1:] == [("parent", "pending"), ("reply", "pending")]
    assert store.outbox_rows(w.id)[-1].transition_id == t.id


def test_stop_is_a_noop_on_a_done_watch(store):
    (w,) = make(store)
    store.claim_due(NOW, "p1", 120, 10)
    assert store.apply_poll(w.id, "p1", PollResult({"status": DONE, "state": "succeeded"}), NOW)
    before = rows(store, w.id)
    assert store.stop_watch(w.id, "U2", NOW + 1) is None
    assert store.get_watch(w.id).status == DONE
    assert store.transitions(w.id) == []
    assert rows(store, w.id) == before


def test_pause_marks_pending_rows_dead_and_stops_polling(store):
    (w,) = make(store)
    store.pause_watch(w.id, "I was removed from this channel", NOW + 1)
    paused = store.get_watch(w.id)
    assert (paused.status, paused.pause_reason, paused.next_poll_at) == (
        PAUSED,
        "I was removed from this channel",
        None,
    )
    assert rows(store, w.id) == [("parent", "dead")]
    assert store.due_outbox(NOW + 10) == []
    assert store.claim_due(NOW + 10, "p1", 120, 10) == []


# -- outbox -------------------------------------------------------------------------------


def test_due_outbox_is_oldest_first(store):
    a, b = make(store, draft(ref="1/1"), draft(ref="1/2"))
    store.claim_due(NOW, "p1", 120, 10)
    assert store.apply_poll(a.id, "p1", running(), NOW + 1)
    due = store.due_outbox(NOW + 1)
    assert [(r.watch_id, r.kind) for r in due] == [
        (a.id, "parent"),
        (b.id, "parent"),
        (a.id, "parent"),
        (a.id, "reply"),
    ]
    assert [r.id for r in due] == sorted(r.id for r in due)
    assert store.due_outbox(NOW - 1) == []  # not yet due


def test_deferred_row_holds_back_its_watch_only(store):
    a, b = make(store, draft(ref="1/1"), draft(ref="1/2"))
    store.claim_due(NOW, "p1", 120, 10)
    assert store.apply_poll(a.id, "p1", running(), NOW)
    first = store.outbox_rows(a.id)[0]
    store.defer(first.id, NOW + 30, "ratelimited")
    assert [r.watch_id for r in store.due_outbox(NOW + 1)] == [b.id]
    assert [r.kind for r in store.due_outbox(NOW + 31) if r.watch_id == a.id] == [
        "parent",
        "parent",
        "reply",
    ]
    deferred = store.outbox_rows(a.id)[0]
    assert (deferred.attempts, deferred.next_attempt_at) == (1, NOW + 30)


def test_deferred_reply_does_not_hold_back_a_later_parent_row(store):
    (w,) = make(store)
    store.claim_due(NOW, "p1", 120, 10)
    assert store.apply_poll(w.id, "p1", running(), NOW)
    first_parent, parent, reply = store.outbox_rows(w.id)
    store.mark_sent(first_parent.id, NOW)
    store.defer(reply.id, NOW + 30, "waiting for the parent message")
    store.claim_due(NOW + 10, "p1", 120, 10)
    assert store.apply_poll(w.id, "p1", PollResult({}, update_parent=True), NOW + 1)
    later_parent = store.outbox_rows(w.id)[-1]
    assert [r.id for r in store.due_outbox(NOW + 1)] == [parent.id, later_parent.id]
    store.defer(parent.id, NOW + 30, "ratelimited")  # a deferred parent still holds parents
    assert store.due_outbox(NOW + 1) == []


def test_parent_rows_coalesce_up_to_the_newest(store):
    (w,) = make(store)
    store.claim_due(NOW, "p1", 120, 10)
    assert store.apply_poll(w.id, "p1", running(), NOW)
    parents = [r.id for r in store.outbox_rows(w.id) if r.kind == "parent"]
    upto, watch = store.pending_parent_upto(w.id)
    assert upto == max(parents) and watch.state == "running"
    store.mark_parent_rows_sent(w.id, upto, NOW + 1)
    assert rows(store, w.id) == [("parent", "sent"), ("parent", "sent"), ("reply", "pending")]
    assert store.pending_parent_upto(w.id)[0] == 0


def test_mark_parent_rows_sent_leaves_newer_rows_pending(store):
    (w,) = make(store)
    upto, _ = store.pending_parent_upto(w.id)
    store.claim_due(NOW, "p1", 120, 10)
    assert store.apply_poll(w.id, "p1", running(), NOW)  # a newer parent row after the render
    store.mark_parent_rows_sent(w.id, upto, NOW + 1)
    assert rows(store, w.id) == [("parent", "sent"), ("parent", "pending"), ("reply", "pending")]


def test_parent_posted_stores_ref_and_marks_rows_sent(store):
    (w,) = make(store)
    assert store.parent_ref(w.id) is None
    upto, _ = store.pending_parent_upto(w.id)
    store.parent_posted(w.id, "C1", "1700000000.000001", upto, NOW)
    ref = store.parent_ref(w.id)
    assert (ref.watch_id, ref.channel_id, ref.ts) == (w.id, "C1", "1700000000.000001")
    assert rows(store, w.id) == [("parent", "sent")]
    store.parent_posted(w.id, "C1", "1700000000.000009", 0, NOW)  # a replacement parent
    assert store.parent_ref(w.id).ts == "1700000000.000009"
    store.forget_parent(w.id)
    assert store.parent_ref(w.id) is None


def test_mark_sent_and_dead(store):
    (w,) = make(store)
    row = store.outbox_rows(w.id)[0]
    store.mark_dead(row.id, "gave up")
    assert rows(store, w.id) == [("parent", "dead")]
    assert store.next_outbox_at(NOW) is None


def test_poll_soon_makes_an_active_watch_due_now(store):
    (w,) = make(store)
    store.claim_due(NOW, "p1", 120, 10)
    assert store.apply_poll(w.id, "p1", running(), NOW)  # next poll at NOW + 10
    store.poll_soon(w.id, NOW + 2)
    assert store.get_watch(w.id).next_poll_at == NOW + 2
    assert [x.id for x in store.claim_due(NOW + 2, "p1", 120, 10)] == [w.id]
    store.stop_watch(w.id, "U1", NOW + 3)
    store.poll_soon(w.id, NOW + 4)
    assert store.get_watch(w.id).next_poll_at is None


def test_poll_soon_during_a_poll_makes_the_next_one_at_once(store):
    """A vendor callback (or Refresh) while the job is being polled: that poll may have
    asked before the job ended, so the one after it must not wait a whole interval."""
    (w,) = make(store)
    store.claim_due(NOW, "p1", 120, 10)  # the poll is in flight
    store.poll_soon(w.id, NOW + 1)
    assert store.apply_poll(w.id, "p1", running(NOW + 2), NOW + 2)  # would be NOW + 12
    assert store.get_watch(w.id).next_poll_at == NOW + 2
    (again,) = store.claim_due(NOW + 2, "p1", 120, 10)
    assert store.apply_poll(again.id, "p1", running(NOW + 3), NOW + 3)  # once: then as usual
    assert store.get_watch(w.id).next_poll_at == NOW + 13


def test_poll_all_soon_and_the_poll_backlog(store):
    a, b, c = make(store, draft(ref="1/1"), draft(ref="1/2"), draft(ref="1/3"))
    store.claim_due(NOW, "p1", 120, 10)
    for w in (a, b):
        store.apply_poll(w.id, "p1", running(), NOW)  # next poll at NOW + 10
    store.apply_poll(c.id, "p1", PollResult({"next_poll_at": NOW + 1}), NOW)
    assert store.poll_backlog(NOW) == (0, None)
    assert store.poll_backlog(NOW + 5) == (1, NOW + 1)
    store.stop_watch(b.id, "U1", NOW + 2)
    assert store.poll_all_soon(NOW + 3) == 2  # the stopped one stays as it is
    assert store.poll_backlog(NOW + 3) == (2, NOW + 1)  # an earlier due time is kept
    assert store.get_watch(a.id).next_poll_at == NOW + 3
    assert store.get_watch(b.id).next_poll_at is None


def test_outbox_backlog_counts_pending_and_ages_oldest(store):
    assert store.outbox_backlog(NOW) == (0, 0.0)
    make(store, draft(ref="1/1"))
    make(store, draft(ref="1/2"), now=NOW + 30)
    assert store.outbox_backlog(NOW + 100) == (2, 100.0)


def test_count_by_status(store):
    a, b, c = make(store, draft(ref="1/1"), draft(ref="1/2"), draft(ref="1/3"))
    store.stop_watch(a.id, "U1", NOW)
    store.pause_watch(b.id, "the channel is archived", NOW)
    assert store.count_by_status() == {STOPPED: 1, PAUSED: 1, ACTIVE: 1}


def test_poll_notes_become_their_own_thread_replies(store, clock):
    (w,) = make(store)
    store.claim_due(clock.now, "p", 60, 10)
    result = PollResult(
        {"state": "running"}, TransitionDraft("state", None, "running"), True, notes=("heads up",)
    )
    assert store.apply_poll(w.id, "p", result, clock.now)
    history = store.transitions(w.id)
    assert [(t.event, t.note) for t in history] == [("state", None), ("note", "heads up")]
    assert [r.kind for r in store.outbox_rows(w.id)] == ["parent", "parent", "reply", "reply"]


def test_postpone_moves_a_row_without_counting_a_failed_attempt(store):
    (w,) = make(store)
    (row,) = store.outbox_rows(w.id)
    store.defer(row.id, NOW + 5, "HTTP 503")
    for step in range(30):  # pacing many times never brings a row nearer to giving up
        store.postpone(row.id, NOW + 10 + step)
    (after,) = store.outbox_rows(w.id)
    assert (after.attempts, after.next_attempt_at) == (1, NOW + 39)
    last_error = store.engine.row("SELECT last_error FROM outbox WHERE id = ?", [row.id])
    assert last_error[0] == "HTTP 503"  # the last real error stays visible
    store.mark_dead(row.id, "gave up")
    store.postpone(row.id, NOW + 100)  # a finished row stays as it was
    assert store.outbox_rows(w.id)[0].next_attempt_at == NOW + 39


def test_next_outbox_at_skips_rows_blocked_behind_a_deferred_row(store):
    """Rows due long ago but waiting behind their watch's deferred row are not "due now":
    the notifier would spin on them until the blocker's time."""
    (w,) = make(store)
    store.claim_due(NOW, "p1", 120, 10)
    assert store.apply_poll(w.id, "p1", running(), NOW)  # a reply row and a parent edit row
    first, *later = store.outbox_rows(w.id)
    assert len(later) >= 1 and all(r.next_attempt_at <= NOW for r in later)
    store.postpone(first.id, NOW + 30)
    assert store.due_outbox(NOW + 1) == []
    assert store.next_outbox_at(NOW + 1) == NOW + 30


def test_a_waiting_edit_of_the_top_message_does_not_hold_back_the_thread(store):
    """Once the top message exists, a paced edit of it must not delay the reply that tells
    the person their job ended; before it exists, replies wait for it."""
    (w,) = make(store)
    (first,) = store.outbox_rows(w.id)
    store.claim_due(NOW, "p1", 120, 10)
    assert store.apply_poll(w.id, "p1", running(), NOW)  # queues a parent edit and a reply
    edit = next(r for r in store.outbox_rows(w.id) if r.kind == "parent" and r.id != first.id)
    reply = next(r for r in store.outbox_rows(w.id) if r.kind == "reply")
    store.postpone(first.id, NOW + 30)
    assert [r.id for r in store.due_outbox(NOW + 1)] == []  # no top message yet: all wait
    store.parent_posted(w.id, "C1", "1700000000.000001", first.id, NOW + 2)
    store.postpone(edit.id, NOW + 60)  # the edit is paced
    assert [r.id for r in store.due_outbox(NOW + 3)] == [reply.id]
    assert store.next_outbox_at(NOW + 3) <= NOW + 3
