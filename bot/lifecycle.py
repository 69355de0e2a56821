"""Pure watch lifecycle: poll intervals, backoff, and what one poll outcome changes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot import eta
from bot.config import Settings
from bot.vendors import (
    AuthError,
    JobNotFoundError,
    JobSnapshot,
    RateLimitedError,
    State,
    TransientError,
    VendorError,
    VendorSpec,
)
from storage import DONE, Event, NewWatch, PollResult, TransitionDraft, Watch
from storage.progress import decode_points

Random = Callable[[], float]  # uniform in [0, 1)


@dataclass(frozen=True)
class PollPolicy:
    """Operator settings that shape every watch's schedule."""

    poll_interval: float | None = None  # SYNCWATCH_POLL_INTERVAL; None = vendor defaults
    watch_timeout: float = 86400.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PollPolicy:
        return cls(settings.poll_interval, settings.watch_timeout)


def start_interval(spec: VendorSpec, every: float | None, policy: PollPolicy) -> float:
    """A new watch's first interval (docs/architecture.md#intervals)."""
    base = policy.poll_interval if policy.poll_interval is not None else spec.schedule[0][1]
    if every is None:
        return base
    floor = spec.floor if policy.poll_interval is None else min(spec.floor, policy.poll_interval)
    return max(every, floor)


def new_watch(
    spec: VendorSpec,
    ref: str,
    *,
    connection: str,
    channel_id: str,
    requester_id: str,
    team_id: str | None,
    policy: PollPolicy,
    now: float,
    every: float | None = None,
    trigger: bool = False,
    token_name: str | None = None,
    requested_by: str | None = None,
) -> NewWatch:
    """The one way a watch is drafted, for a typed command, a scheduled run, an API call and
    a vendor callback alike: its first interval, its deadline and, for a sync, that its
    first poll triggers the sync. `token_name` names the API token that started it."""
    return NewWatch(
        vendor=spec.key,
        ref=ref,
        connection=connection,
        channel_id=channel_id,
        requester_id=requester_id,
        team_id=team_id,
        interval_s=start_interval(spec, every, policy),
        deadline=now + policy.watch_timeout,
        trigger=trigger,
        token_name=token_name,
        requested_by=requested_by,
    )


def interval_at(spec: VendorSpec, start: float, age: float) -> float:
    """Interval for a job `age` seconds old: the watch's start interval, then the vendor's
    later age steps, never below the start interval."""
    step = None
    for from_age, interval in spec.schedule[1:]:
        if age >= from_age:
            step = interval
    if step is None:
        return start
    return max(start, step)


def transient_delay(interval: float, failures: int, rand: Random) -> float:
    """5xx/timeouts/garbage: min(600, max(interval, 5·2^(n-1))) plus 0–10 % jitter."""
    base = min(600.0, max(interval, 5.0 * 2 ** (failures - 1)))
    return base * (1 + 0.1 * rand())


def rate_limit_delay(
    retry_after: float | None, failures: int, rand: Random, interval: float = 0.0
) -> float:
    """Vendor throttling: its Retry-After plus 0–10 %, else 60 s doubling to 10 min.

    A Retry-After of 0 (or negative, or tiny) would mean a poll a second at a vendor that
    just refused one: the wait is at least what any failed poll waits, the transient
    backoff from `interval` (docs/vendors.md#backoff)."""
    if retry_after is not None:
        floor = min(600.0, max(interval, 5.0 * 2 ** (failures - 1)))
        return max(floor, retry_after) * (1 + 0.1 * rand()) + 0.05  # floor first: NaN loses
    base = min(600.0, 60.0 * 2 ** (failures - 1))
    # Equal jitter rather than full jitter: throttled watches spread out, yet none comes
    # back within seconds to hit the same throttle again.
    return base / 2 + base / 2 * rand()


Outcome = JobSnapshot | VendorError


def decide(
    watch: Watch,
    outcome: Outcome,
    spec: VendorSpec,
    now: float,
    rand: Random,
    uploads: Sequence[dict[str, Any]] = (),
) -> PollResult:
    """What one poll outcome does to a watch: new columns, history entry, messages to send.

    `uploads` are the result files (already prepared) to queue when the job ends.
    """
    if isinstance(outcome, JobSnapshot):
        return _on_snapshot(watch, outcome, spec, now, uploads)
    if isinstance(outcome, TransientError):
        return _on_transient(watch, outcome, spec, now, rand)
    return failed(watch, outcome, now)


def timed_out(watch: Watch, now: float) -> PollResult:
    """The watch outlived SYNCWATCH_WATCH_TIMEOUT: end it as `expired`."""
    snap = JobSnapshot.from_json(watch.snapshot)
    expired = JobSnapshot(
        state=State.EXPIRED,
        raw_status=watch.raw_status or "",
        progress=snap.progress if snap else (),
        facts=snap.facts if snap else (),
    )
    return PollResult(
        changes={
            "status": DONE,
            "state": State.EXPIRED.value,
            "snapshot": expired.to_json(),
            "finished_at": now,
            "next_poll_at": None,
            **_points(watch, None),
        },
        transition=TransitionDraft(
            event=Event.TIMEOUT,
            from_state=watch.state,
            to_state=State.EXPIRED.value,
            raw_status=watch.raw_status,
        ),
        update_parent=True,
    )


def _next_poll(watch: Watch, spec: VendorSpec, now: float, delay: float | None = None) -> float:
    if delay is None:
        delay = interval_at(spec, watch.interval_s, now - watch.created_at)
    # Never sleep past the deadline: the timeout must fire on time.
    return min(now + delay, max(watch.deadline, now))


def _on_snapshot(
    watch: Watch,
    snap: JobSnapshot,
    spec: VendorSpec,
    now: float,
    uploads: Sequence[dict[str, Any]],
) -> PollResult:
    previous = JobSnapshot.from_json(watch.snapshot)
    changes: dict[str, Any] = {
        "state": snap.state.value,
        "raw_status": snap.raw_status,
        "snapshot": snap.to_json(),
        "polls": watch.polls + 1,
        "attempts": 0,
        "last_error": None,
    }
    points = eta.next_points(
        watch.progress_points, snap.done, snap.total, now, finished=snap.state.terminal
    )
    changes.update(_points(watch, points))
    changed_state = watch.state != snap.state.value
    transition = None
    if changed_state:
        transition = TransitionDraft(
            event=Event.STATE,
            from_state=watch.state,
            to_state=snap.state.value,
            raw_status=snap.raw_status,
            error_code=snap.error_code if snap.state in (State.FAILED, State.PARTIAL) else None,
            error_message=snap.error_message
            if snap.state in (State.FAILED, State.PARTIAL)
            else None,
        )
    visible_change = (
        changed_state
        or previous is None
        or previous.progress != snap.progress
        or previous.raw_status != snap.raw_status
        or watch.last_error is not None
        or _shown_eta(watch.progress_points) != _shown_eta(points)
    )
    notes = _new_notice(snap.notice, previous.notice if previous else None)
    if snap.state.terminal:
        changes.update({"status": DONE, "finished_at": now, "next_poll_at": None})
        return PollResult(changes, transition, True, tuple(uploads), notes)
    changes["next_poll_at"] = _next_poll(watch, spec, now)
    return PollResult(changes, transition, visible_change, notes=notes)


def _points(watch: Watch, points: str | None) -> dict[str, Any]:
    """The `progress_points` column when it changes (most polls of most vendors: never, and
    the poll's UPDATE stays as short as it was)."""
    return {} if points == watch.progress_points else {"progress_points": points}


def _shown_eta(points: str | None) -> int | None:
    return eta.shown(decode_points(points))


def _new_notice(notice: str | None, before: str | None) -> tuple[str, ...]:
    return (notice,) if notice and notice != before else ()


def _on_transient(
    watch: Watch, err: TransientError, spec: VendorSpec, now: float, rand: Random
) -> PollResult:
    failures = watch.attempts + 1
    # Back off from the interval the job's age calls for, not the (shorter) start one.
    interval = interval_at(spec, watch.interval_s, now - watch.created_at)
    if isinstance(err, RateLimitedError):
        delay = rate_limit_delay(err.retry_after, failures, rand, interval)
        shown = f"{err.message} (waiting {int(delay)}s before the next check)"
    else:
        delay = transient_delay(interval, failures, rand)
        shown = err.message
    changes = {
        "attempts": failures,
        "last_error": shown[:500],
        "next_poll_at": _next_poll(watch, spec, now, delay),
    }
    # Tell the channel on the first failure and then now and again, not on every retry.
    tell = failures == 1 or failures % 5 == 0
    notes = (err.notice,) if err.notice and failures == 1 else ()  # once per streak
    return PollResult(changes, None, tell, notes=notes)


def failed(watch: Watch, err: VendorError, now: float) -> PollResult:
    """A definitive vendor answer that ends the watch (not found, auth, rejected)."""
    previous = JobSnapshot.from_json(watch.snapshot)
    message = err.message
    if isinstance(err, JobNotFoundError):
        # Not-found rule (docs/vendors.md#not-found-rule): on the first poll the id is likely wrong;
        # after a good poll the vendor has forgotten a job we saw.
        state = State.FAILED if watch.polls == 0 else State.EXPIRED
        if err.hint:
            message = f"{message} — {err.hint}"
    else:
        state = State.FAILED
        if isinstance(err, AuthError) and "may still be running" not in message:
            message = f"{message} The job may still be running at the vendor."
    snap = JobSnapshot(
        state=state,
        raw_status=watch.raw_status or (err.code or ""),
        progress=previous.progress if previous else (),
        facts=previous.facts if previous else (),
        error_code=err.code,
        error_message=message,
    )
    return PollResult(
        changes={
            "status": DONE,
            "state": state.value,
            "snapshot": snap.to_json(),
            "finished_at": now,
            "next_poll_at": None,
            "attempts": 0,
            "last_error": None,
            **_points(watch, None),
        },
        transition=TransitionDraft(
            event=Event.STATE,
            from_state=watch.state,
            to_state=state.value,
            raw_status=watch.raw_status,
            error_code=err.code,
            error_message=message,
        ),
        update_parent=True,
    )
