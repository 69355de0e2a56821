"""Several processes on one database: heartbeats keep leases and delivery claims alive,
a dead process's work passes on, a live one's never does, and a schedule occurrence runs
once whoever fires it. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from storage import NewWatch, Store
from tests.test_store import NOW, draft, make


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


@pytest.fixture
def second(store: Store, tmp_path) -> Store:
    """Another process's view of the same database (its own connections)."""
    other = Store(store.url)
    yield other
    other.close()


def test_a_beat_keeps_a_replicas_leases_and_claims_alive(store, second):
    (w,) = make(store)
    store.join("r1", "host-a", 101, NOW)
    assert store.claim_due(NOW, "r1", 30, 10)
    assert [r.watch_id for r in store.claim_outbox(NOW, "r1", 30)] == [w.id]
    for beat_at in (NOW + 10, NOW + 20, NOW + 30, NOW + 40):
        assert store.beat("r1", beat_at, 30) == 2  # one lease, one delivery claim
    # long past the first lease's end, the other replica still can't take either
    assert second.claim_due(NOW + 60, "r2", 30, 10) == []
    assert second.claim_outbox(NOW + 60, "r2", 30) == []


def test_a_replica_that_stops_beating_loses_its_work_within_the_lease(store, second):
    (w,) = make(store)
    store.join("r1", "host-a", 101, NOW)
    store.claim_due(NOW, "r1", 30, 10)
    store.claim_outbox(NOW, "r1", 30)
    store.beat("r1", NOW + 10, 30)  # then it is killed: no more beats
    assert second.claim_due(NOW + 39, "r2", 30, 10) == []
    taken = second.claim_due(NOW + 40.5, "r2", 30, 10)
    assert [(x.id, x.lease_owner) for x in taken] == [(w.id, "r2")]
    assert [r.watch_id for r in second.claim_outbox(NOW + 40.5, "r2", 30)] == [w.id]


def test_at_start_only_dead_processes_on_this_host_are_freed(store):
    make(store, draft(ref="1/1"), draft(ref="1/2"), draft(ref="1/3"))
    for replica, host, pid in (("dead", "h", 1), ("alive", "h", 2), ("elsewhere", "g", 1)):
        store.join(replica, host, pid, NOW)
        assert len(store.claim_due(NOW, replica, 30, 1)) == 1
    freed = store.free_dead_replicas("h", alive=lambda pid: pid == 2, stale_before=NOW - 3600)
    assert freed == 1
    taken = store.claim_due(NOW + 1, "new", 30, 10)
    assert len(taken) == 1  # the dead one's watch only: the others are still held
    assert {r["id"] for r in store.replicas(since=NOW - 1)} == {"alive", "elsewhere"}


def test_replicas_silent_for_long_are_forgotten(store):
    store.join("old", "h", 7, NOW - 7200)
    store.join("new", "h", 8, NOW)
    store.free_dead_replicas("other-host", alive=lambda pid: True, stale_before=NOW - 3600)
    assert [r["id"] for r in store.replicas(since=0)] == ["new"]


def test_leaving_gives_everything_back(store, second):
    (w,) = make(store)
    store.join("r1", "h", 1, NOW)
    store.claim_due(NOW, "r1", 30, 10)
    store.claim_outbox(NOW, "r1", 30)
    store.leave("r1")
    assert [x.id for x in second.claim_due(NOW, "r2", 30, 10)] == [w.id]
    assert [r.watch_id for r in second.claim_outbox(NOW, "r2", 30)] == [w.id]
    assert store.replicas(since=0) == []


def test_one_watchs_deliveries_belong_to_one_replica_at_a_time(store, second):
    first, other = make(store, draft(ref="1/1"), draft(ref="1/2"))
    mine = store.claim_outbox(NOW, "r1", 30, limit=1)
    assert len(mine) == 1
    theirs = second.claim_outbox(NOW, "r2", 30)
    assert {r.watch_id for r in theirs} == {first.id, other.id} - {mine[0].watch_id}
    for row in theirs:
        second.mark_sent(row.id, NOW)
    # nothing is due for r2 any more: its loop must not spin on r1's rows
    assert second.next_outbox_at(NOW, "r2") is None
    assert store.next_outbox_at(NOW, "r1") == NOW
    store.release_outbox("r1", mine[0].watch_id)
    assert [r.watch_id for r in second.claim_outbox(NOW, "r2", 30)] == [mine[0].watch_id]


def test_concurrent_delivery_claims_never_share_a_watch(store):
    make(store, *(draft(ref=f"1/{i}") for i in range(40)))
    stores = [Store(store.url), Store(store.url)]
    got: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claim(name: str, s: Store) -> None:
        start.wait()
        while batch := s.claim_outbox(NOW, name, 30, limit=3):
            got[name] += sorted({r.watch_id for r in batch})
            for row in batch:  # delivered
                s.mark_sent(row.id, NOW)

    threads = [
        threading.Thread(target=claim, args=(n, s)) for n, s in zip(got, stores, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    for s in stores:
        s.close()
    assert not set(got["a"]) & set(got["b"])
    assert len(got["a"]) + len(got["b"]) == 40


def _sync_draft() -> NewWatch:
    return NewWatch(
        vendor="zoho-analytics-sync",
        ref="111/222",
        connection="default",
        channel_id="C1",
        requester_id="U1",
        interval_s=10.0,
        deadline=NOW + 86400,
        trigger=True,
    )


def test_a_schedule_occurrence_runs_once_whichever_replica_fires_it(store):
    schedule = store.create_schedule(_sync_draft(), "0 6 * * *", "UTC", NOW, NOW - 60)
    stores = [Store(store.url) for _ in range(4)]
    started: list[object] = []
    start = threading.Barrier(len(stores))

    def fire(s: Store) -> None:
        start.wait()
        watch = s.record_schedule_run(
            schedule.id, NOW, NOW + 86400, _sync_draft(), None, NOW, skipped_note="busy"
        )
        if watch is not None:
            started.append(watch)

    threads = [threading.Thread(target=fire, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    for s in stores:
        s.close()
    assert len(started) == 1
    runs = store.engine.query("SELECT schedule_id, due_at, watch_id FROM schedule_runs")
    assert runs == [{"schedule_id": schedule.id, "due_at": NOW, "watch_id": started[0].id}]  # type: ignore[attr-defined]
    assert len(store.list_watches()) == 1


def test_two_replicas_together_stay_within_one_vendor_budget(store, second):
    from bot.ratelimit import SharedBuckets
    from tests.fakes import FakeClock

    clock = FakeClock()
    replicas = [SharedBuckets(store, clock), SharedBuckets(second, clock)]
    granted: list[float] = []
    for _ in range(3000):  # each replica tries every 100 ms for 300 s
        for buckets in replicas:
            if buckets.take(("zoho-analytics", "acct"), 60) == 0:
                granted.append(clock.now)
        clock.advance(0.1)
    worst = max(sum(1 for t in granted if s <= t < s + 60) for s in granted)
    assert worst <= 60  # one account's budget, not one per replica
    assert len(granted) >= 300 * 60 / 60 * 0.8


class _LandsSecond:
    """A replica's ledger whose statement reaches the shared row only after `first` ran
    and `elapsed` seconds passed: two callers' clock readings crossing on their way to the
    database (each reads the clock, then waits its turn for the row)."""

    def __init__(self, store: Store, clock, elapsed: float, first) -> None:
        self.store, self.clock, self.elapsed, self.first = store, clock, elapsed, [first]
        self.asks = 0

    def rate_take(self, key: str, interval: float, tolerance: float, now: float) -> float:
        self.asks += 1
        if self.first:
            self.clock.advance(self.elapsed)
            self.first.pop()()
        return self.store.rate_take(key, interval, tolerance, now)


@pytest.mark.parametrize("per_minute", [1e9, 1e6])
def test_a_poll_is_not_held_back_when_another_replicas_later_reading_lands_first(
    store, second, per_minute
):
    """The budget has room; replica B read the clock after replica A but reached the row
    first. A's refusal names a moment that had come before the refusal arrived: A asks again
    instead of sending its poll back to the next tick (which cost a claim, a write and a
    tick for a third to half of all polls with two replicas at an unlimited rate)."""
    from bot.ratelimit import SharedBuckets
    from tests.fakes import FakeClock

    clock = FakeClock()
    key = ("zoho-analytics", "acct")
    b = SharedBuckets(second, clock)
    b_granted: list[float] = []
    ledger = _LandsSecond(store, clock, 0.002, lambda: b_granted.append(b.take(key, per_minute)))
    a = SharedBuckets(ledger, clock)
    assert a.take(key, per_minute) == 0  # polled now, not throttled
    assert b_granted == [0]
    assert ledger.asks == 2


def test_a_refusal_for_a_moment_still_ahead_is_not_asked_again(store):
    from bot.ratelimit import SharedBuckets
    from tests.fakes import FakeClock

    clock = FakeClock()
    ledger = _LandsSecond(store, clock, 0.002, lambda: None)
    buckets = SharedBuckets(ledger, clock)
    while buckets.take(("micro", "k"), 60) == 0:  # 60 a minute: burst 10, then 1 a 1.2 s
        pass
    asks = ledger.asks
    assert buckets.take(("micro", "k"), 60) > 0
    assert ledger.asks == asks + 1  # one look at the ledger: the wait was real


def test_two_replicas_post_into_one_channel_at_one_replicas_pace(store, second):
    from bot.ratelimit import SharedPace
    from tests.fakes import FakeClock

    clock = FakeClock()
    paces = [SharedPace(s, "slack-post", 50, 4, clock) for s in (store, second)]
    sent: list[float] = []
    waiting: dict[tuple[int, int], float] = {}  # (replica, row) -> when it asks again
    row = 0
    for step in range(1200):  # 120 s; each replica has a new row to post every 0.5 s
        if step % 5 == 0:
            for n in range(len(paces)):
                row += 1
                waiting[(n, row)] = clock.now
        for (n, r), at in list(waiting.items()):
            if at <= clock.now:
                turn = paces[n].take("C1", r)
                if turn is None:
                    sent.append(clock.now)
                    del waiting[(n, r)]
                else:
                    waiting[(n, r)] = turn
        clock.advance(0.1)
    worst = max(sum(1 for t in sent if s <= t < s + 60) for s in sent)
    assert worst <= 50
    assert len(sent) >= 80  # and the pace is used, not starved


def test_a_429_holds_a_channel_for_every_replica(store, second):
    from bot.ratelimit import SharedPace

    now = [NOW]
    first = SharedPace(store, "slack-post", 50, 4, lambda: now[0])
    other = SharedPace(second, "slack-post", 50, 4, lambda: now[0])
    first.hold("C1", NOW + 30)
    assert other.take("C1", 1) == NOW + 30
    now[0] = NOW + 30
    assert other.take("C1", 1) is None


def test_a_stored_file_comes_back_byte_for_byte_in_its_chunks(store, second):
    pieces = [bytes(range(256)) * 4, b"", b"\x00tail"]
    file_id = store.put_file(iter(pieces), NOW)
    assert second.file_size(file_id) == sum(map(len, pieces))
    assert b"".join(second.file_chunks(file_id)) == b"".join(pieces)
    second.delete_file(file_id)
    assert store.file_size(file_id) is None and list(store.file_chunks(file_id)) == []


def test_sweeping_keeps_files_a_pending_upload_names_and_young_ones(store):
    (w,) = make(store)
    named = store.put_file(iter([b"a"]), NOW - 3600)
    orphan = store.put_file(iter([b"b"]), NOW - 3600)
    young = store.put_file(iter([b"c"]), NOW)
    with store.engine.transaction():
        store._queue(w.id, "upload", NOW, payload={"file_id": named, "filename": "x.csv"})
    assert store.sweep_files(before=NOW - 60) == 1
    assert store.file_size(orphan) is None
    assert store.file_size(named) == 1 and store.file_size(young) == 1
