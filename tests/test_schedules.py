"""Scheduled syncs: parsing, the stored next run, exactly one run per due time, late runs."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from bot.lifecycle import PollPolicy
from bot.schedules import (
    NeverFires,
    ScheduleRunner,
    TooFrequent,
    first_run,
    next_run,
    parse_schedule,
)
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


# -- the floor: SYNCWATCH_MIN_SCHEDULE_MINUTES -------------------------------------------------

HOUR = 3600.0
NOW = epoch(2026, 1, 5, 12)


@pytest.mark.parametrize(
    "cron, tz, floor, gap_minutes",
    [
        ("* * * * *", "UTC", HOUR, 1),
        ("*/5 9 * * *", "UTC", HOUR, 5),  # once a day, but every 5 minutes within its hour
        ("0,30 6 * * *", "Europe/Berlin", HOUR, 30),
        ("0 * * * *", "UTC", 2 * HOUR, 60),
        ("0 0,23 1,2 * *", "UTC", 2 * HOUR, 60),  # 23:00 on the 1st, then 00:00 on the 2nd
        ("0,5 0 29 2 *", "UTC", HOUR, 5),  # two runs 5 minutes apart, every fourth year
        ("0 6 * * 0,1", "UTC", 7 * 24 * HOUR, 24 * 60),
    ],
)
def test_a_schedule_running_more_often_than_the_floor_is_refused(cron, tz, floor, gap_minutes):
    with pytest.raises(TooFrequent) as err:
        first_run(cron, tz, NOW, floor)
    assert err.value.gap_s == gap_minutes * 60


@pytest.mark.parametrize(
    "cron, tz, floor",
    [
        ("0 * * * *", "UTC", HOUR),  # hourly: exactly the default floor
        ("30 6 * * *", "UTC", HOUR),
        ("0 6 * * 1-5", "Europe/Berlin", 12 * HOUR),
        ("0 */2 * * *", "UTC", 2 * HOUR),
        ("0 0,23 1,2 * *", "UTC", HOUR),
        # New York repeats 01:00-02:00 in November: APScheduler fires 01:30 twice, an hour
        # apart. Not the schedule's frequency; the runner spaces those runs by the floor.
        ("30 1 * * *", "America/New_York", 2 * HOUR),
    ],
)
def test_a_schedule_within_the_floor_is_accepted_with_its_first_run(cron, tz, floor):
    assert first_run(cron, tz, NOW, floor) == next_run(cron, tz, NOW)


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"])
def test_a_cron_that_matches_no_date_is_refused_at_once(cron):
    started = time.perf_counter()
    with pytest.raises(NeverFires):
        first_run(cron, "UTC", NOW, HOUR)
    assert time.perf_counter() - started < 1  # not a search to the year 9999


@pytest.mark.parametrize("zone", ["Europe", "Etc", "a" * 300, "Europe/Berlin/", "\x00"])
def test_a_zone_that_is_a_directory_or_too_long_is_not_a_time_zone(zone):
    with pytest.raises(ValueError) as err:
        parse_schedule("06:30", zone)
    assert "is not a time zone" in str(err.value) and len(str(err.value)) < 200


def test_a_stored_schedule_above_the_floor_runs_at_most_once_per_floor(store, clock):
    """A schedule stored before the floor (or before it was raised) keeps running, spaced
    by the floor, and its run's thread says why."""
    runner = ScheduleRunner(store, PollPolicy(), clock=clock, min_gap=HOUR)
    clock.now = epoch(2026, 1, 5, 9, 0)
    s = store.create_schedule(draft(), "*/5 * * * *", "UTC", clock.now, clock.now)
    first = runner.run(s.id)
    assert store.get_schedule(s.id).next_run_at == epoch(2026, 1, 5, 10, 0)
    notes = [t.note or "" for t in store.transitions(first) if t.event == "note"]
    assert any("more often than the minimum of 60 minutes" in n for n in notes)
    clock.now = epoch(2026, 1, 5, 9, 5)  # the cron's next fire: not due
    assert runner.run(s.id) is None
    clock.now = epoch(2026, 1, 5, 10, 0)
    store.stop_watch(first, "U1", clock.now)
    assert runner.run(s.id) is not None
    assert store.get_schedule(s.id).next_run_at == epoch(2026, 1, 5, 11, 0)


def test_a_schedule_within_the_floor_runs_at_every_fire_without_a_note(store, clock):
    runner = ScheduleRunner(store, PollPolicy(), clock=clock, min_gap=HOUR)
    clock.now = epoch(2026, 1, 5, 9, 0)
    s = store.create_schedule(draft(), "0 * * * *", "UTC", clock.now, clock.now)
    first = runner.run(s.id)
    assert store.get_schedule(s.id).next_run_at == epoch(2026, 1, 5, 10, 0)
    assert [t for t in store.transitions(first) if t.event == "note"] == []


def _fires(cron: str, count: int) -> list[str]:
    import datetime as dt

    from bot.schedules import next_run

    at = dt.datetime(2026, 12, 3, tzinfo=dt.UTC).timestamp()  # a Thursday
    days = []
    for _ in range(count):
        at = next_run(cron, "UTC", at)
        days.append(dt.datetime.fromtimestamp(at, dt.UTC).strftime("%a"))
    return days


@pytest.mark.parametrize(
    ("cron", "days"),
    [
        ("0 6 * * 1-5", ["Thu", "Fri", "Mon", "Tue", "Wed", "Thu", "Fri", "Mon"]),
        ("0 6 * * 0", ["Sun"] * 3),
        ("0 6 * * 7", ["Sun"] * 3),
        ("0 6 * * 6,0", ["Sat", "Sun", "Sat", "Sun"]),
        ("0 6 * * */2", ["Thu", "Sat", "Sun", "Tue", "Thu"]),
        ("0 6 * * 1-5/2", ["Fri", "Mon", "Wed", "Fri"]),
        ("0 6 * * mon-fri", ["Thu", "Fri", "Mon", "Tue"]),
    ],
)
def test_days_of_the_week_are_counted_as_crontab_counts_them(cron, days):
    """crontab: 0 and 7 are Sunday, 1 is Monday (APScheduler alone counts 0 as Monday)."""
    assert _fires(cron, len(days)) == days


@pytest.mark.parametrize("field", ["8", "5-1", "mon-xyz", "1/0"])
def test_a_malformed_day_of_week_is_refused(field):
    from bot.schedules import cron_weekdays

    with pytest.raises(ValueError):
        cron_weekdays(field)
