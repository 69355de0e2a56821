"""Time left for a job, from its last few progress samples (docs/architecture.md#eta). Pure.

The rate is the average over the stored window (storage/progress.py keeps the last six
polls' samples): units gained from the first sample to the last, over the time between
them. Poll intervals may be irregular (backoff, "Refresh now", a restart): only the end
points' times count, so a late or an early poll moves nothing but the window. The
estimate is the time left at the last sample, for the units not yet done at that rate.

It is shown only when it can be believed, and otherwise not at all:

- two samples at least, at two different times;
- units gained within the window (a stall over the whole window hides it: no rate);
- `done` not past `total`, and a positive total;
- at most `MAX_SECONDS_LEFT` (a day): a longer estimate from a few polls says more about
  the noise than about the job, and a watch gives up after a day unless told otherwise.

It is never negative, and never shown for a finished job (the caller asks only while the
watch is active, and a finished job's samples are dropped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from storage.progress import ProgressPoint, decode_points, encode_points, with_point

MAX_SECONDS_LEFT = 24 * 3600.0


def seconds_left(points: Sequence[ProgressPoint]) -> float | None:
    """Seconds until `total` at the window's average rate, or None when not believable
    (see the module docstring)."""
    if len(points) < 2 or not _one_series(points):
        return None
    first, last = points[0], points[-1]
    if last.total <= 0 or last.done > last.total:
        return None
    elapsed, gained = last.t - first.t, last.done - first.done
    if not (elapsed > 0 and gained > 0):  # also False for NaN
        return None
    # left / rate, with rate = gained / elapsed, without dividing by a rate that may
    # underflow to zero
    try:
        left = float(last.total - last.done) * elapsed / gained
    except OverflowError:  # counts no float holds: not from a vendor (the boundary bounds them)
        return None
    if not math.isfinite(left) or left > MAX_SECONDS_LEFT:
        return None
    return max(0.0, left)


def _one_series(points: Sequence[ProgressPoint]) -> bool:
    """The samples could follow one another: times rising, units never dropping, one total
    (what `with_point` keeps; anything else read from the column is not trusted)."""
    return all(
        b.t > a.t and b.done >= a.done and b.total == a.total
        for a, b in zip(points, points[1:], strict=False)
    )


def shown_minutes(seconds: float) -> int:
    """The estimate as people read it: 0 below a minute ("<1 min"), whole minutes below an
    hour, then to the nearest 10 minutes ("~2 h 10 min"): finer would pretend to a
    precision a few polls don't have, and change the message on every poll."""
    minutes = seconds / 60
    if minutes < 1:
        return 0
    whole = math.floor(minutes + 0.5)
    if whole < 60:
        return whole
    return 10 * math.floor(minutes / 10 + 0.5)


def shown(points: Sequence[ProgressPoint]) -> int | None:
    """What the parent message shows, in `shown_minutes` (None: nothing)."""
    left = seconds_left(points)
    return None if left is None else shown_minutes(left)


def next_points(
    stored: str | None, done: int | None, total: int | None, now: float, *, finished: bool
) -> str | None:
    """The watch's `progress_points` column after a poll that read `done` of `total` at
    `now`: the sample added to the series, or no samples when the job finished or the
    vendor gave no counts."""
    if finished or done is None or total is None:
        return None
    return encode_points(with_point(decode_points(stored), ProgressPoint(now, done, total)))
