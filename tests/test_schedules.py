"""Scheduled syncs: parsing, the stored next run, exactly one run per due time, late runs."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.lifecycle import PollPolicy
from bot.schedules import ScheduleRunner, next_run, parse_schedule
from storage import NewWatch

REF = "2480011000000498001/2480011000000630011"


def epoch(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


def draft(**kw) -> NewWatch:
    values = dict(
        vendor="zoho-analytics-sync",
        ref=REF,
        connection="default",
        channel_id="C1",
        requester_id="U1",
        interval_s=0,
        deadline=0,
    )
    return NewWatch(**(values | kw))


@pytest.fixture
def runner(store, clock):
    r = ScheduleRunner(store, PollPolicy(), clock=clock)
    yield r
    r.shutdown()


@pytest.mark.parametrize(
    "at, tz, cron, zone",
    [
        ("06:30", None, "30 6 * * *", "UTC"),
        ("6:05", "Europe/Berlin", "5 6 * * *", "Europe/Berlin"),
        ("0 6 * * 1-5", "America/New_York", "0 6 * * 1-5", "America/New_York"),
    ],
)
def test_times_and_crons_are_read_in_the_given_zone(at, tz, cron, zone):
    assert parse_schedule(at, tz) == (cron, zone)


@pytest.mark.parametrize(
    "at, tz, says",
    [
        ("25:00", None, "a time like `06:30`"),
        ("0 6 * *", None, "5-field cron"),
        ("0 99 * * *", None, "not a valid cron"),
        ("06:30", "Mars/Olympus", "not a time zone"),
    ],
)
def test_bad_schedules_say_what_is_wrong(at, tz, says):
    with pytest.raises(ValueError) as err:
        parse_schedule(at, tz)
    assert says in str(err.value)


def test_next_run_honours_the_zone():
    # 06:30 in Berlin is 05:30 UTC in winter
    assert next_run("30 6 * * *", "Europe/Berlin", epoch(2026, 1, 5, 12)) == epoch(
        2026, 1, 6, 5, 30
    )
    assert next_run("30 6 * * *", "UTC", epoch(2026, 1, 5, 6, 30)) == epoch(2026, 1, 6, 6, 30)


def test_a_due_run_starts_one_sync_watch_and_moves_the_schedule_on(store, clock, runner):
    clock.now = epoch(2026, 1, 5, 6, 0)
    s = store.create_schedule(draft(), "30 6 * * *", "UTC", epoch(2026, 1, 5, 6, 30), clock.now)
    clock.now = epoch(2026, 1, 5, 6, 30)
    watch_id = runner.run(s.id)
    watch = store.get_watch(watch_id)
    assert watch.trigger_pending == 1 and watch.ref == REF and watch.requester_id == "U1"
    assert store.get_schedule(s.id).next_run_at == epoch(2026, 1, 6, 6, 30)
    assert runner.run(s.id) is None  # a second fire for the same time does nothing
    assert len(store.list_watches(statuses=None)) == 1


def test_a_run_missed_while_down_runs_once_and_says_it_was_late(store, clock, runner):
    clock.now = epoch(2026, 1, 5, 6, 0)
    s = store.create_schedule(draft(), "30 6 * * *", "UTC", epoch(2026, 1, 5, 6, 30), clock.now)
    clock.now = epoch(2026, 1, 7, 9, 0)  # down for two days: two runs missed
    watch_id = runner.run(s.id)
    notes = [t.note for t in store.transitions(watch_id) if t.event == "note"]
    assert notes and "ran late" in notes[0] and "2026-01-05 06:30 UTC" in notes[0]
    assert store.get_schedule(s.id).next_run_at == epoch(2026, 1, 8, 6, 30)
    assert runner.run(s.id) is None
    assert len(store.list_watches(statuses=None)) == 1


def test_a_run_while_the_last_is_still_syncing_is_skipped_with_a_note(store, clock, runner):
    clock.now = epoch(2026, 1, 5, 6, 30)
    s = store.create_schedule(draft(), "30 6 * * *", "UTC", clock.now, clock.now)
    first = runner.run(s.id)
    clock.now = epoch(2026, 1, 6, 6, 30)
    assert runner.run(s.id) is None
    assert any("skipped" in (t.note or "") for t in store.transitions(first))


def test_stopped_schedules_never_run(store, clock, runner):
    s = store.create_schedule(draft(), "30 6 * * *", "UTC", clock.now, clock.now)
    assert store.stop_schedule(s.id, "U2", clock.now).status == "stopped"
    assert runner.run(s.id) is None
    assert store.stop_schedule(s.id, "U2", clock.now) is None


def test_scheduler_jobs_are_rebuilt_from_the_stored_next_run(store, clock, runner):
    s = store.create_schedule(draft(), "30 6 * * *", "UTC", epoch(2026, 1, 5, 6, 30), clock.now)
    stopped = store.create_schedule(
        draft(channel_id="C2"), "0 7 * * *", "UTC", clock.now, clock.now
    )
    store.stop_schedule(stopped.id, "U1", clock.now)
    runner.start(paused=True)
    job = runner.job(s.id)
    assert job is not None and job.next_run_time.timestamp() == epoch(2026, 1, 5, 6, 30)
    assert job.coalesce is True and job.misfire_grace_time is None
    assert runner.job(stopped.id) is None
    store.stop_schedule(s.id, "U1", clock.now)
    runner.reload()
    assert runner.job(s.id) is None
