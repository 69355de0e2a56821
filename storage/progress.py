"""Progress points: the last few (time, done, total) samples of a watch's job, kept in the
watch's `progress_points` column as JSON (docs/architecture.md#eta).

A poll writes the column in the same statement as the rest of its outcome
(`Store.apply_poll`), so the samples survive a restart and move with `syncwatch copy-db`.
What a new sample does to the series (`with_point`) is decided here, once, for every
caller: the time-left estimate in `bot/eta.py` reads the result.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .engine import Engine

MAX_POINTS = 6  # enough for a rate over the last few polls, small enough to rewrite each poll
MAX_COUNT = 10**15  # far above any real job's units, far below what a float holds


@dataclass(frozen=True)
class ProgressPoint:
    """At epoch second `t` the vendor counted `done` of `total` units (rows, batches)."""

    t: float
    done: int
    total: int


def with_point(
    points: Sequence[ProgressPoint], point: ProgressPoint, keep: int = MAX_POINTS
) -> tuple[ProgressPoint, ...]:
    """The series after `point`: the last `keep` samples. A sample that can't continue the
    series starts a new one: fewer units done than before (the job restarted, or another
    job was counted), another total (the job grew or was re-planned: the old rate measured
    a different job), or a time not after the last one (clocks of two replicas disagree)."""
    if points:
        last = points[-1]
        if point.done < last.done or point.total != last.total or point.t <= last.t:
            return (point,)
    return (*points[-(keep - 1) :], point) if keep > 1 else (point,)


def encode_points(points: Sequence[ProgressPoint]) -> str | None:
    """The column's value: `[[t, done, total], …]`, or NULL for no points."""
    if not points:
        return None
    return json.dumps([[p.t, p.done, p.total] for p in points], separators=(",", ":"))


def decode_points(text: str | None) -> tuple[ProgressPoint, ...]:
    """The points in the column; anything unreadable reads as no points (the estimate is
    then simply not shown until two new samples exist), never as an error."""
    if not text:
        return ()
    try:
        raw = json.loads(text)
    except ValueError:
        return ()
    points: list[ProgressPoint] = []
    for item in raw if isinstance(raw, list) else ():
        if not (isinstance(item, list) and len(item) == 3):
            return ()
        t, done, total = item
        counts = all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_COUNT
            for n in (done, total)
        )
        if not (counts and isinstance(t, int | float) and not isinstance(t, bool)):
            return ()
        try:
            when = float(t)
        except OverflowError:
            return ()
        if not math.isfinite(when):
            return ()
        points.append(ProgressPoint(when, done, total))
    return tuple(points)


class ProgressPointsStore:
    """Store methods for progress points (a mixin of `Store`)."""

    engine: Engine

    def progress_points(self, watch_id: str) -> tuple[ProgressPoint, ...]:
        """The watch's stored samples, oldest first (empty for an unknown watch)."""
        row = self.engine.row("SELECT progress_points FROM watches WHERE id = ?", [watch_id])
        return decode_points(row[0]) if row else ()
