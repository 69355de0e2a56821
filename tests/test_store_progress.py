"""Progress points in the store (docs/architecture.md#eta): written by the poll's own
statement, kept across a restart and a copy, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from bot.eta import seconds_left
from bot.lifecycle import decide
from bot.vendors import JobSnapshot, State
from bot.vendors.micro import SPEC
from storage import NewWatch, PollResult, Store, TransitionDraft
from storage.maintenance import copy_database
from storage.progress import ProgressPoint, encode_points

NOW = 1_767_225_600.0


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every test here runs on SQLite and on PostgreSQL (skipped without SYNCWATCH_TEST_PG)."""
    return any_store


def new_watch(store: Store) -> str:
    draft = NewWatch(
        vendor="micro",
        ref="imp_8QmZ2vK4tR",
        connection="default",
        channel_id="C1",
        requester_id="U1",
        interval_s=10.0,
        deadline=NOW + 86400,
    )
    (watch,) = store.create_watches([draft], NOW)
    return watch.id


def processing(done: int, total: int = 5000) -> JobSnapshot:
    return JobSnapshot(
        State.RUNNING,
        "processing",
        (("Processed", f"{done:,} of {total:,}"),),
        done=done,
        total=total,
    )


def poll(store: Store, watch_id: str, snap: JobSnapshot, now: float) -> PollResult:
    """One poll as the poller makes it: claim, decide from the claimed row, apply."""
    (claimed,) = store.claim_due(now, "p1", 30, 10)
    result = decide(claimed, snap, SPEC, now, lambda: 0.0)
    assert store.apply_poll(watch_id, "p1", result, now)
    store.poll_soon(watch_id, now)
    return result


def test_each_poll_stores_its_point_and_a_restart_keeps_them(store):
    watch_id = new_watch(store)
    poll(store, watch_id, processing(1000), NOW)
    poll(store, watch_id, processing(1600), NOW + 60)
    expected = (ProgressPoint(NOW, 1000, 5000), ProgressPoint(NOW + 60, 1600, 5000))
    assert store.progress_points(watch_id) == expected

    again = Store(store.url)  # the process restarts on the same database
    try:
        assert again.progress_points(watch_id) == expected
        assert seconds_left(again.progress_points(watch_id)) == pytest.approx(340.0)
    finally:
        again.close()


def test_a_quiet_poll_writes_its_point_in_its_one_statement(store):
    watch_id = new_watch(store)
    poll(store, watch_id, processing(1000), NOW)
    assert store.claim_due(NOW + 60, "p1", 30, 10)
    quiet = PollResult({"progress_points": encode_points((ProgressPoint(NOW + 60, 1, 2),))})
    assert store.apply_poll(watch_id, "p1", quiet, NOW + 60)
    assert store.progress_points(watch_id) == (ProgressPoint(NOW + 60, 1, 2),)


def test_a_poll_refused_for_a_lost_lease_stores_no_point(store):
    watch_id = new_watch(store)
    poll(store, watch_id, processing(1000), NOW)
    store.claim_due(NOW + 1, "p1", 30, 10)
    late = PollResult(
        {"progress_points": encode_points((ProgressPoint(NOW + 1, 1, 2),))},
        TransitionDraft(event="note", note="x"),
    )
    assert not store.apply_poll(watch_id, "someone-else", late, NOW + 1)
    assert store.progress_points(watch_id) == (ProgressPoint(NOW, 1000, 5000),)


def test_points_move_with_copy_db(store, tmp_path):
    source = Store(str(tmp_path / "old.db"))
    try:
        watch_id = new_watch(source)
        poll(source, watch_id, processing(1000), NOW)
        poll(source, watch_id, processing(1600), NOW + 60)
        kept = source.progress_points(watch_id)
    finally:
        source.close()
    copy_database(str(tmp_path / "old.db"), store.url)
    assert store.progress_points(watch_id) == kept and len(kept) == 2


def test_an_unknown_watch_has_no_points(store):
    assert store.progress_points("wnope") == ()
