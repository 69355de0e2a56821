"""Recurring syncs: reading `at 06:30` / cron with a zone, the next fire time, and the
runner that starts one sync watch per due occurrence.

APScheduler only decides *when* a schedule's job fires; the database decides whether a run
is due: each schedule row stores `next_run_at`, moved on in the same transaction that
starts the run, so a restart or a double fire never doubles a run
(docs/architecture.md#schedules).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import zoneinfo
from collections.abc import Callable

from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot import digests, lifecycle, texts
from bot.vendors import lookup
from storage import DatabaseUnavailable, ScheduleStatus, Store

log = logging.getLogger(__name__)

DIGEST_JOB = "digests"  # not a schedule's id (those start with `s`)
LATE_AFTER = 120.0  # a scheduled run this far past its time says so in its thread
FIRE_EARLY = 1.0  # APScheduler may fire a little before the stored time: still that run
# How far a new schedule's runs are read to find its shortest gap: the next SAMPLE_RUNS runs
# within SAMPLE_DAYS of the first. A year holds every month length, weekday and DST change;
# 1,000 runs of an hourly cron (the floor's default) take ~35 ms to list.
SAMPLE_RUNS = 1000
SAMPLE_DAYS = 366
# A cron with no run within this many years never runs (`0 0 31 2 *`); without an end date
# APScheduler searches up to the year 9999 first.
NEVER_YEARS = 50
MAX_ZONE_CHARS = 64  # the longest IANA name is 32; a longer key only makes zoneinfo open files


class NeverFires(ValueError):
    """A cron that matches no date (`0 0 31 2 *`)."""


class TooFrequent(ValueError):
    """A cron whose runs come closer together than the operator's floor."""

    def __init__(self, gap_s: float) -> None:
        super().__init__(f"runs {gap_s:g} s apart")
        self.gap_s = gap_s


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_weekdays(field: str) -> str:
    """A crontab day-of-week field in APScheduler's terms. crontab counts 0 (or 7) as
    Sunday and 1 as Monday; APScheduler's CronTrigger counts 0 as Monday and
    `from_crontab` passes the numbers through, so `1-5` meant Tuesday to Saturday
    (docs/architecture.md#schedules). The field is expanded to the days it names and
    given back as names, which both read alike. Raises ValueError on a malformed field."""
    if field == "*":
        return field
    days: set[int] = set()
    for item in field.lower().split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in day of week {item!r}")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            low, high = base.split("-", 1)
            first, last = _cron_day(low), _cron_day(high)
        else:
            first = _cron_day(base)
            last = 6 if step_text else first
        if last < first:
            raise ValueError(f"day of week range {item!r} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def _cron_day(text: str) -> int:
    if text in _CRON_DAYS:
        return _CRON_DAYS.index(text)
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text)
    raise ValueError(f"day of week {text!r} is not 0-7 or a day name")


def cron_trigger(cron: str, tz: str, end: dt.datetime | None = None) -> CronTrigger:
    fields = cron.split()
    if len(fields) == 5:
        fields[4] = cron_weekdays(fields[4])
    trigger = CronTrigger.from_crontab(" ".join(fields), timezone=tz)
    trigger.end_date = end  # from_crontab takes no end date; the search stops there
    return trigger


def next_run(cron: str, tz: str, after: float, *, end: dt.datetime | None = None) -> float:
    """Epoch seconds of the first fire strictly after `after` (and by `end`, if given)."""
    start = dt.datetime.fromtimestamp(after, dt.UTC)
    trigger = cron_trigger(cron, tz, end)
    fire = trigger.get_next_fire_time(None, start)
    if fire is not None and fire.timestamp() <= after:
        fire = trigger.get_next_fire_time(fire, start + dt.timedelta(seconds=1))
    if fire is None:
        raise ValueError("that schedule never fires")
    return fire.timestamp()


def parse_schedule(at: str, tz: str | None) -> tuple[str, str]:
    """`HH:MM` or a 5-field cron, read in `tz` (default UTC) -> (cron, tz). Raises
    ValueError with a message for the user."""
    zone = tz or "UTC"
    try:
        if len(zone) > MAX_ZONE_CHARS:
            raise ValueError(zone)
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a key zoneinfo opens as a path (`Europe` is a directory, a long one
        # is too long a file name). Quote at most the start of what was typed.
        shown = zone if len(zone) <= MAX_ZONE_CHARS else zone[:MAX_ZONE_CHARS] + "…"
        raise ValueError(
            f"`{shown}` is not a time zone; use an IANA name like Europe/Berlin"
        ) from None
    clock = re.fullmatch(r"([01]?[0-9]|2[0-3]):([0-5][0-9])", at.strip())
    cron = f"{int(clock.group(2))} {int(clock.group(1))} * * *" if clock else " ".join(at.split())
    if len(cron.split()) != 5:
        raise ValueError("give a time like `06:30` or a 5-field cron like `0 6 * * 1-5`")
    try:
        cron_trigger(cron, zone)
    except ValueError as err:
        raise ValueError(f"`{cron}` is not a valid cron schedule ({err})") from None
    return cron, zone


def first_run(cron: str, tz: str, after: float, min_gap: float) -> float:
    """When a new schedule first runs (epoch seconds, strictly after `after`). Raises
    NeverFires when it matches no date, and TooFrequent when two of its runs come less
    than `min_gap` seconds apart (SYNCWATCH_MIN_SCHEDULE_MINUTES): `*/5 9 * * *` fires
    every 5 minutes within its hour although it starts once a day, so the gaps between
    actual runs are measured, over SAMPLE_RUNS runs within SAMPLE_DAYS of the first."""
    never = dt.datetime.fromtimestamp(after, dt.UTC) + dt.timedelta(days=366 * NEVER_YEARS)
    try:
        first = next_run(cron, tz, after, end=never)
    except ValueError:
        raise NeverFires(cron) from None
    zone = zoneinfo.ZoneInfo(tz)
    previous = dt.datetime.fromtimestamp(first, zone)
    trigger = cron_trigger(cron, tz, end=previous + dt.timedelta(days=SAMPLE_DAYS))
    shortest = math.inf
    for _ in range(SAMPLE_RUNS):
        fire = trigger.get_next_fire_time(previous, previous)
        if fire is None:
            break
        # The hour a DST change repeats fires twice at one wall-clock time: not the
        # schedule's doing, and the runner spaces those runs by the floor anyway.
        if fire.replace(tzinfo=None) != previous.replace(tzinfo=None):
            # In real time: aware datetimes of one zone subtract as wall-clock times.
            shortest = min(shortest, fire.timestamp() - previous.timestamp())
        if shortest <= 60:  # cron's unit: none comes closer
            break
        previous = fire
    if shortest < min_gap:
        raise TooFrequent(shortest)
    return first


class ScheduleRunner:
    """Keeps one APScheduler cron job per active schedule and starts each due run as a
    sync watch, through the same `lifecycle.new_watch` as a typed command."""

    def __init__(
        self,
        store: Store,
        policy: lifecycle.PollPolicy,
        *,
        clock: Callable[[], float],
        on_change: Callable[[], None] = lambda: None,
        min_gap: float = 0.0,
    ) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        # SYNCWATCH_MIN_SCHEDULE_MINUTES in seconds: no schedule runs more often, including
        # one stored before the floor was set or raised (docs/architecture.md#schedules).
        self.min_gap = min_gap
        self.on_change = on_change  # wakes the notifier after a run is recorded
        self._scheduler: BackgroundScheduler | None = None

    def start(self, *, paused: bool = False) -> None:
        """Build the cron jobs from the database and start firing them. `paused` builds
        the jobs without running them (tests inspect them)."""
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.start(paused=paused)
        self._scheduler = scheduler
        # Digests of quiet runs (docs/architecture.md#alert-digest): checked every minute;
        # the database makes each one once, whichever replica asks first.
        scheduler.add_job(
            self.digest_tick,
            "interval",
            seconds=digests.TICK_SECONDS,
            id=DIGEST_JOB,
            coalesce=True,
            max_instances=1,
            next_run_time=dt.datetime.now(dt.UTC),
        )
        self.reload()

    def shutdown(self) -> None:
        """Stop firing; a run being recorded finishes first. Safe to call twice."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None

    def job(self, schedule_id: str) -> Job | None:
        return self._scheduler.get_job(schedule_id) if self._scheduler else None

    def reload(self) -> None:
        """Make the cron jobs match the active schedules in the database. Each job starts
        from the stored `next_run_at`, so a run missed while down fires once (coalesce) and
        none is doubled (APScheduler 3 would otherwise skip missed runs)."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        wanted = {s.id: s for s in self.store.list_schedules()}
        for job in scheduler.get_jobs():
            if job.id not in wanted and job.id != DIGEST_JOB:
                job.remove()
        for schedule in wanted.values():
            if scheduler.get_job(schedule.id) is not None or schedule.next_run_at is None:
                continue
            scheduler.add_job(
                self.run,
                cron_trigger(schedule.cron, schedule.tz),
                args=[schedule.id],
                id=schedule.id,
                next_run_time=dt.datetime.fromtimestamp(schedule.next_run_at, dt.UTC),
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
            )

    def digest_tick(self) -> int:
        """Make the digests that are due; wake the notifier when one has news."""
        made = digests.make_due_digests(self.store, self.clock)
        if made:
            self.on_change()
        return made

    def run(self, schedule_id: str) -> str | None:
        """One scheduled sync: a new sync watch, recorded with the schedule's next time.
        Returns the new watch's id, or None when nothing was due (or it was still running)."""
        schedule = self.store.get_schedule(schedule_id)
        if schedule is None or schedule.status != ScheduleStatus.ACTIVE:
            return None
        due = schedule.next_run_at
        now = self.clock()
        if due is None or due > now + FIRE_EARLY:
            return None  # not yet (a reload raced the scheduler): the job fires again later
        spec = lookup(schedule.vendor)
        if spec is None:  # a schedule of a vendor this version no longer has
            log.warning("schedule %s: vendor %s is not supported", schedule.id, schedule.vendor)
            return None
        notes = []
        if now - due > LATE_AFTER:
            notes.append(texts.schedule_ran_late(schedule.id, _utc(due)))
        # The next run is the first at least the floor after this one: a schedule stored
        # before the floor keeps running, at most once per floor, rather than stopping
        # unannounced (or hammering the vendor at its old pace).
        following = next_run(schedule.cron, schedule.tz, max(now, due + self.min_gap - 1))
        if following != next_run(schedule.cron, schedule.tz, max(now, due)):
            notes.append(texts.schedule_runs_spaced(schedule.id, round(self.min_gap / 60)))
        draft = lifecycle.new_watch(
            spec,
            schedule.ref,
            connection=schedule.connection,
            channel_id=schedule.channel_id,
            requester_id=schedule.requester_id,
            team_id=schedule.team_id,
            policy=self.policy,
            now=now,
            trigger=True,
        )
        try:
            watch = self.store.record_schedule_run(
                schedule.id,
                due,
                following,
                draft,
                " ".join(notes) or None,
                now,
                skipped_note=texts.schedule_run_skipped(schedule.id),
            )
        except DatabaseUnavailable as err:
            # Not lost: next_run_at still holds this run, so the job's next firing (or the
            # next start) runs it, late and saying so.
            log.warning("schedule %s: run not started (%s)", schedule.id, err.reason)
            return None
        self.on_change()
        return watch.id if watch else None


def _utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
