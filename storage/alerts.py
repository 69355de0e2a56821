"""Alert policy for recurring syncs (docs/architecture.md#alert-policy): which scheduled runs
reach the channel, and each schedule's streak of failed or good runs.

A run of a schedule whose policy is not `every` is *held*: its outbox rows are stored as
`held` instead of `pending`, so nothing is delivered while it runs. The transaction that
moves the run to its terminal state updates the streak and then either releases the rows
(`pending`, the parent first as always) or marks them `skipped`. Rows never leave the
outbox by any other door, so delivery stays exactly-once and a released row is looked up
before a re-post like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .engine import Engine
from .records import Event, Schedule, ScheduleStatus, TransitionDraft


class AlertPolicy(StrEnum):
    EVERY = "every"  # every run posts (the behaviour before policies)
    FAILURES = "failures"  # only failed runs post
    SMART = "smart"  # the first failure, every Nth repeat, and one recovery message


class RunOutcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    STOPPED = "stopped"  # a person stopped it: not part of the streak


DEFAULT_ALERT_EVERY = 5
MAX_ALERT_EVERY = 100
# Job states that end a run well; every other terminal state (partial, failed, cancelled at
# the vendor, expired, watched past its timeout) is a failed run.
GOOD_STATES = ("succeeded",)
# Thread replies that only described a run while it was live ("Sync is now running"):
# dropped when a held run is released after it ended, where they would read as news.
_LIVE_STATES = ("queued", "running", "unknown")

# The status of a new outbox row: held while its watch is a held scheduled run.
OUTBOX_STATUS = (
    "(CASE WHEN EXISTS (SELECT 1 FROM schedule_runs WHERE watch_id = ? AND held = 1) "
    "THEN 'held' ELSE 'pending' END)"
)


@dataclass(frozen=True)
class ScheduleRun:
    """One occurrence of a schedule as its parent message shows it: the streak as it stood
    when the run ended (None while it runs), and the streak of the other kind it ended."""

    schedule_id: str
    due_at: float
    watch_id: str | None
    outcome: str | None
    streak_count: int | None
    streak_since: float | None
    broke_count: int | None

    @property
    def recovered_after(self) -> int:
        """How many failed runs in a row this good run ended (0 when it ended none)."""
        if self.outcome == RunOutcome.OK and self.broke_count:
            return int(self.broke_count)
        return 0

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ScheduleRun:
        return cls(
            schedule_id=row["schedule_id"],
            due_at=float(row["due_at"]),
            watch_id=row.get("watch_id"),
            outcome=row.get("outcome"),
            streak_count=row.get("streak_count"),
            streak_since=row.get("streak_since"),
            broke_count=row.get("broke_count"),
        )


@dataclass(frozen=True)
class AlertDecision:
    alert: bool  # the run's messages reach the channel
    recovery: bool  # it ended a failure streak, and says so once


def decide_alert(
    policy: str, every: int, outcome: RunOutcome, count: int, broke: int
) -> AlertDecision:
    """Whether a run that ended with `outcome`, the `count`th of its kind in a row (ending
    a streak of `broke` runs of the other kind), is announced. Pure."""
    recovered = outcome == RunOutcome.OK and broke > 0
    if policy == AlertPolicy.FAILURES:
        return AlertDecision(outcome == RunOutcome.FAILED, False)
    if policy == AlertPolicy.SMART:
        if outcome == RunOutcome.FAILED:
            return AlertDecision(count == 1 or (count - 1) % max(1, every) == 0, False)
        return AlertDecision(recovered, recovered)
    return AlertDecision(True, recovered)


class AlertStore:
    """Store methods for alert policies and streaks; `Store` inherits them."""

    engine: Engine
    _rows: Callable[..., list[dict[str, Any]]]
    _record: Callable[..., None]
    get_schedule: Callable[[str], Schedule | None]

    def set_alert_policy(self, schedule_id: str, policy: AlertPolicy, every: int) -> bool:
        """Change an active schedule's policy; its streak is kept. Runs already going keep
        being held or not as they started, and are decided by the new policy when they end.
        Returns whether it was changed."""
        with self.engine.transaction():
            changed = self.engine.execute(
                "UPDATE schedules SET alert_policy = ?, alert_every = ? "
                "WHERE id = ? AND status = ?",
                [policy.value, every, schedule_id, ScheduleStatus.ACTIVE.value],
            )
            return changed.rowcount == 1

    def run_of(self, watch_id: str) -> ScheduleRun | None:
        """The schedule occurrence a watch is the run of, if it is one."""
        rows = self._rows("SELECT * FROM schedule_runs WHERE watch_id = ?", [watch_id])
        return ScheduleRun.from_row(rows[0]) if rows else None

    def schedule_runs(self, schedule_id: str) -> list[ScheduleRun]:
        rows = self._rows(
            "SELECT * FROM schedule_runs WHERE schedule_id = ? ORDER BY due_at", [schedule_id]
        )
        return [ScheduleRun.from_row(r) for r in rows]

    # -- called inside Store's transactions ---------------------------------------------------

    def _hold_run(self, schedule: Schedule, due_at: float, watch_id: str) -> None:
        """A new run of a schedule that is quiet when healthy: hold its rows (the parent
        row queued with it, and all later ones) until it ends."""
        if schedule.alert_policy == AlertPolicy.EVERY:
            return
        self.engine.execute(
            "UPDATE schedule_runs SET held = 1 WHERE schedule_id = ? AND due_at = ?",
            [schedule.id, due_at],
        )
        self.engine.execute(
            "UPDATE outbox SET status = 'held' WHERE watch_id = ? AND status = 'pending'",
            [watch_id],
        )

    def _run_ended(self, watch_id: str, now: float) -> None:
        """A watch reached DONE: if it is a schedule's run (and its first ending, not a
        "Retry sync" of it), update the schedule's streak and decide the run's rows."""
        rows = self._rows(
            "SELECT r.schedule_id, r.due_at, r.outcome, r.held, w.state, s.alert_policy, "
            "s.alert_every, s.streak_kind, s.streak_count, s.streak_since "
            "FROM schedule_runs r JOIN watches w ON w.id = r.watch_id "
            "JOIN schedules s ON s.id = r.schedule_id WHERE r.watch_id = ?",
            [watch_id],
        )
        if not rows or rows[0]["outcome"] is not None:
            return  # not a scheduled run, or a retried one: a person's doing, like a stop
        run = rows[0]
        outcome = RunOutcome.OK if run["state"] in GOOD_STATES else RunOutcome.FAILED
        if run["streak_kind"] == outcome.value:
            count, since, broke = int(run["streak_count"]) + 1, run["streak_since"], 0
        else:
            count, since = 1, run["due_at"]
            broke = int(run["streak_count"] or 0) if run["streak_kind"] else 0
        self.engine.execute(
            "UPDATE schedules SET streak_kind = ?, streak_count = ?, streak_since = ? WHERE id = ?",
            [outcome.value, count, since, run["schedule_id"]],
        )
        decision = decide_alert(run["alert_policy"], int(run["alert_every"]), outcome, count, broke)
        quiet = bool(run["held"]) and not decision.alert  # what a digest sums up
        self.engine.execute(
            "UPDATE schedule_runs SET outcome = ?, streak_count = ?, streak_since = ?, "
            "broke_count = ?, held = 0, quiet = ?, ended_at = ? "
            "WHERE schedule_id = ? AND due_at = ?",
            [
                outcome.value,
                count,
                since,
                broke,
                int(quiet),
                now,
                run["schedule_id"],
                run["due_at"],
            ],
        )
        if run["held"]:
            if decision.alert:
                self._release_held(watch_id, now)
            else:
                self._skip_held(watch_id)
        if decision.alert and decision.recovery:
            # One reply in the run's thread; its parent says the same (from the run row).
            note = TransitionDraft(event=Event.RECOVERED, note=str(broke))
            self._record(watch_id, note, False, now)

    def _run_stopped(self, watch_id: str) -> None:
        """A person stopped a run: the streak is unchanged, and a held run stays quiet (the
        person who stopped it was answered)."""
        self.engine.execute(
            "UPDATE schedule_runs SET outcome = ?, held = 0 WHERE watch_id = ? AND outcome IS NULL",
            [RunOutcome.STOPPED.value, watch_id],
        )
        self._skip_held(watch_id)

    def _release_held(self, watch_id: str, now: float) -> None:
        marks = ", ".join("?" for _ in _LIVE_STATES)
        self.engine.execute(
            "UPDATE outbox SET next_attempt_at = ?, status = CASE WHEN kind = 'reply' AND "
            "transition_id IN (SELECT id FROM transitions WHERE watch_id = ? "
            f"AND event = 'state' AND to_state IN ({marks})) THEN 'skipped' ELSE 'pending' END "
            "WHERE watch_id = ? AND status = 'held'",
            [now, watch_id, *_LIVE_STATES, watch_id],
        )

    def _skip_held(self, watch_id: str) -> None:
        self.engine.execute(
            "UPDATE outbox SET status = 'skipped' WHERE watch_id = ? AND status = 'held'",
            [watch_id],
        )


__all__: Sequence[str] = (
    "AlertDecision",
    "AlertPolicy",
    "AlertStore",
    "DEFAULT_ALERT_EVERY",
    "MAX_ALERT_EVERY",
    "RunOutcome",
    "ScheduleRun",
    "decide_alert",
)
