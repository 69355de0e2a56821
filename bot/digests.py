"""The optional digest of quiet scheduled runs (docs/architecture.md#alert-digest): when a
digest is due, and the tick that makes the due ones.

A digest goes out at DIGEST_HOUR local time in its schedules' zone: every day (`daily`) or
on Mondays (`weekly`). The tick runs every minute on every replica; the database decides
who makes each one (storage/digests.py), so it fires once, and after a restart the slot
missed while down is made when the process is back.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Callable

from storage import DatabaseUnavailable, Store

log = logging.getLogger(__name__)

DIGEST_HOUR = 9  # local time of the digest message, in the schedule's zone
TICK_SECONDS = 60.0


def digest_slot(cadence: str, tz: str, now: float) -> float:
    """The latest digest time at or before `now` (epoch seconds): today's (or the last
    Monday's, for `weekly`) DIGEST_HOUR:00 in `tz`, else the one before it."""
    zone = zoneinfo.ZoneInfo(tz)
    local = dt.datetime.fromtimestamp(now, zone).replace(tzinfo=None)
    day = local.date()
    step = 1
    if cadence == "weekly":
        day -= dt.timedelta(days=local.weekday())
        step = 7
    slot = dt.datetime.combine(day, dt.time(DIGEST_HOUR))
    if slot > local:
        slot -= dt.timedelta(days=step)
    return slot.replace(tzinfo=zone).timestamp()


def make_due_digests(store: Store, clock: Callable[[], float]) -> int:
    """Make the digest of the current slot of every (channel, cadence, zone) that has none
    yet. Returns how many this process made with something to post."""
    now = clock()
    made = 0
    try:
        for channel_id, cadence, tz in store.digest_groups():
            digest = store.make_digest(channel_id, cadence, tz, digest_slot(cadence, tz, now), now)
            if digest is not None and digest.status == "pending":
                made += 1
    except DatabaseUnavailable as err:  # the next tick tries again: the slot is still due
        log.warning("digests not made (%s)", err.reason)
    return made
