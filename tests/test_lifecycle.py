"""Pure lifecycle: start intervals, age steps, backoff, and what each poll outcome changes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.lifecycle import (
    PollPolicy,
    decide,
    interval_at,
    rate_limit_delay,
    start_interval,
    timed_out,
    transient_delay,
)
from bot.vendors import (
    AuthError,
    JobNotFoundError,
    JobSnapshot,
    RateLimitedError,
    RequestRejectedError,
    State,
    TransientError,
)
from bot.vendors.zoho_analytics import SPEC
from storage import ACTIVE, DONE, Watch
from storage.progress import ProgressPoint, decode_points, encode_points

NOW = 1_767_225_600.0
MIN = 60.0


def zero() -> float:
    return 0.0


def make_watch(**kw) -> Watch:
    base = Watch(
        id="wabc",
        vendor="zoho-analytics",
        ref="1/2",
        connection="default",
        team_id=None,
        channel_id="C1",
        requester_id="U1",
        status=ACTIVE,
        state=None,
        raw_status=None,
        snapshot=None,
        interval_s=10.0,
        created_at=NOW,
        updated_at=NOW,
        next_poll_at=NOW,
        lease_until=None,
        lease_owner=None,
        attempts=0,
        polls=0,
        last_error=None,
        deadline=NOW + 86400,
        finished_at=None,
        stopped_by=None,
        pause_reason=None,
    )
    return replace(base, **kw)


RUNNING = JobSnapshot(State.RUNNING, "1002 JOB IN PROGRESS")
SUCCEEDED = JobSnapshot(
    State.SUCCEEDED, "1004 JOB COMPLETED", progress=(("Rows", "1,200 of 1,200 imported"),)
)


def seen(snap: JobSnapshot, **kw) -> Watch:
    """A watch whose last good poll returned `snap`."""
    return make_watch(
        state=snap.state.value, raw_status=snap.raw_status, snapshot=snap.to_json(), polls=1, **kw
    )


# -- intervals ----------------------------------------------------------------------------


def test_start_interval_defaults_to_the_vendor_schedule():
    assert start_interval(SPEC, None, PollPolicy()) == 10


def test_start_interval_uses_the_operator_interval():
    assert start_interval(SPEC, None, PollPolicy(poll_interval=1)) == 1
    assert start_interval(SPEC, None, PollPolicy(poll_interval=45)) == 45


@pytest.mark.parametrize(
    ("every", "operator", "expected"),
    [
        (30, None, 30),
        (2, None, 10),  # clamped to the vendor floor
        (2, 1, 2),  # the operator allowed faster polling
        (0.5, 1, 1),  # …but not below the operator's interval
        (2, 45, 10),  # an operator value above the floor doesn't raise the floor
    ],
)
def test_every_is_clamped_to_the_floor_or_operator_interval(every, operator, expected):
    assert start_interval(SPEC, every, PollPolicy(poll_interval=operator)) == expected


@pytest.mark.parametrize(
    ("start", "age", "expected"),
    [
        (10, 0, 10),
        (10, 5 * MIN - 1, 10),
        (10, 5 * MIN, 30),
        (10, 30 * MIN, 60),
        (10, 24 * 60 * MIN, 60),
        (1, 0, 1),
        (1, 5 * MIN, 30),
        (45, 5 * MIN, 45),  # never below the start interval
    ],
)
def test_interval_steps_with_job_age(start, age, expected):
    assert interval_at(SPEC, start, age) == expected


@pytest.mark.parametrize(
    ("interval", "failures", "expected"),
    [(10, 1, 10), (10, 2, 10), (10, 3, 20), (10, 5, 80), (10, 8, 600), (60, 2, 60), (1, 1, 5)],
)
def test_transient_delay_formula(interval, failures, expected):
    assert transient_delay(interval, failures, zero) == expected


def test_transient_delay_jitter_is_at_most_ten_percent():
    assert transient_delay(10, 3, lambda: 0.999) == pytest.approx(22, abs=0.01)


def test_rate_limit_delay_honours_retry_after():
    assert rate_limit_delay(120, 1, zero) == pytest.approx(120, abs=0.1)
    assert 120 <= rate_limit_delay(120, 1, lambda: 0.999) <= 132.1


def test_rate_limit_delay_without_header_doubles_to_ten_minutes():
    highest = [rate_limit_delay(None, n, lambda: 0.999) for n in (1, 2, 3, 9)]
    assert highest == pytest.approx([60, 120, 240, 600], rel=0.001)
    lowest = [rate_limit_delay(None, n, zero) for n in (1, 2, 3, 9)]
    assert lowest == [30, 60, 120, 300]  # jittered, so throttled watches don't return in step


# -- snapshots ----------------------------------------------------------------------------


def test_first_snapshot_records_a_transition_from_nothing():
    r = decide(make_watch(), RUNNING, SPEC, NOW + 1, zero)
    assert (r.transition.event, r.transition.from_state, r.transition.to_state) == (
        "state",
        None,
        "running",
    )
    assert r.transition.raw_status == "1002 JOB IN PROGRESS"
    assert r.update_parent
    assert r.changes["state"] == "running" and r.changes["polls"] == 1
    assert r.changes["next_poll_at"] == NOW + 11
    assert "status" not in r.changes


def test_same_state_again_is_quiet():
    r = decide(seen(RUNNING), RUNNING, SPEC, NOW + 20, zero)
    assert r.transition is None
    assert r.update_parent is False
    assert r.changes["polls"] == 2


def test_same_state_with_new_progress_updates_the_parent_only():
    moved = replace(RUNNING, progress=(("Rows", "600 of 1,200"),))
    r = decide(seen(RUNNING), moved, SPEC, NOW + 20, zero)
    assert r.transition is None and r.update_parent


def test_same_state_with_new_raw_status_updates_the_parent_only():
    odd = JobSnapshot(State.UNKNOWN, "1009 SOMETHING")
    r = decide(seen(odd), replace(odd, raw_status="1010 OTHER"), SPEC, NOW + 20, zero)
    assert r.transition is None and r.update_parent


def test_recovery_after_an_error_clears_it_from_the_parent():
    r = decide(seen(RUNNING, attempts=3, last_error="HTTP 503"), RUNNING, SPEC, NOW + 20, zero)
    assert r.transition is None and r.update_parent
    assert (r.changes["attempts"], r.changes["last_error"]) == (0, None)


def test_success_ends_the_watch_and_queues_uploads():
    upload = {"filename": "import-summary-2.csv", "content_b64": "eA=="}
    r = decide(seen(RUNNING), SUCCEEDED, SPEC, NOW + 90, zero, uploads=[upload])
    assert (r.transition.from_state, r.transition.to_state) == ("running", "succeeded")
    assert r.changes["status"] == DONE
    assert r.changes["finished_at"] == NOW + 90
    assert r.changes["next_poll_at"] is None
    assert r.update_parent and list(r.uploads) == [upload]


def test_partial_transition_carries_the_vendor_error():
    partial = JobSnapshot(State.PARTIAL, "1004 JOB COMPLETED", error_message="Row 17: bad")
    r = decide(seen(RUNNING), partial, SPEC, NOW + 90, zero)
    assert r.transition.error_message == "Row 17: bad"


def test_unknown_status_keeps_polling():
    odd = JobSnapshot(State.UNKNOWN, "1009 SOMETHING NEW")
    r = decide(seen(RUNNING), odd, SPEC, NOW + 20, zero)
    assert r.transition.to_state == "unknown"
    assert "status" not in r.changes
    assert r.changes["next_poll_at"] == NOW + 30


def test_next_poll_follows_the_age_step():
    r = decide(seen(RUNNING), RUNNING, SPEC, NOW + 31 * MIN, zero)
    assert r.changes["next_poll_at"] == NOW + 31 * MIN + 60


def test_next_poll_is_never_after_the_deadline():
    w = seen(RUNNING, deadline=NOW + 25)
    assert decide(w, RUNNING, SPEC, NOW + 20, zero).changes["next_poll_at"] == NOW + 25
    slow = RateLimitedError("slow down", retry_after=3600)
    assert decide(w, slow, SPEC, NOW + 20, zero).changes["next_poll_at"] == NOW + 25
    flaky = TransientError("HTTP 503")
    assert decide(w, flaky, SPEC, NOW + 20, zero).changes["next_poll_at"] == NOW + 25


# -- definitive errors --------------------------------------------------------------------


def test_not_found_on_first_poll_fails_with_a_hint():
    err = JobNotFoundError("Zoho does not know this job", code="1005", hint="check the ids")
    r = decide(make_watch(), err, SPEC, NOW + 1, zero)
    assert r.changes["status"] == DONE and r.changes["state"] == "failed"
    assert r.transition.to_state == "failed" and r.transition.error_code == "1005"
    assert "check the ids" in r.transition.error_message
    assert "check the ids" in JobSnapshot.from_json(r.changes["snapshot"]).error_message
    assert r.update_parent


def test_not_found_after_a_good_poll_expires():
    err = JobNotFoundError("gone", code="1005", hint="kept 1 hour")
    r = decide(seen(RUNNING), err, SPEC, NOW + 4000, zero)
    assert r.changes["state"] == "expired"
    assert (r.transition.from_state, r.transition.to_state) == ("running", "expired")
    # the last known progress stays visible on the parent
    assert JobSnapshot.from_json(r.changes["snapshot"]).raw_status == "1002 JOB IN PROGRESS"


def test_auth_error_fails_and_says_the_job_may_still_run():
    r = decide(seen(RUNNING), AuthError("credentials rejected", code="8535"), SPEC, NOW, zero)
    assert r.changes["state"] == "failed" and r.changes["status"] == DONE
    assert "may still be running" in r.transition.error_message
    assert r.changes["next_poll_at"] is None


def test_rejected_request_fails_quoting_the_code():
    err = RequestRejectedError("Zoho Analytics rejected the request (7301: no)", code="7301")
    r = decide(make_watch(), err, SPEC, NOW, zero)
    assert r.changes["state"] == "failed"
    assert (r.transition.error_code, r.transition.error_message) == ("7301", err.message)


# -- transient errors ---------------------------------------------------------------------


def test_transient_error_counts_and_keeps_the_state():
    r = decide(seen(RUNNING), TransientError("Zoho Analytics answered HTTP 503"), SPEC, NOW, zero)
    assert r.changes == {
        "attempts": 1,
        "last_error": "Zoho Analytics answered HTTP 503",
        "next_poll_at": NOW + 10,
    }
    assert r.transition is None


@pytest.mark.parametrize(
    ("before", "told"), [(0, True), (1, False), (3, False), (4, True), (9, True)]
)
def test_channel_hears_of_the_first_and_every_fifth_failure(before, told):
    r = decide(seen(RUNNING, attempts=before), TransientError("503"), SPEC, NOW, zero)
    assert r.changes["attempts"] == before + 1
    assert r.update_parent is told


def test_transient_backoff_grows_with_failures():
    r = decide(seen(RUNNING, attempts=4), TransientError("503"), SPEC, NOW, zero)
    assert r.changes["next_poll_at"] == NOW + 80  # 5·2^4


def test_transient_backoff_is_never_faster_than_the_age_interval():
    w = seen(RUNNING, created_at=NOW - 40 * MIN)  # normal polling is every 60 s by now
    r = decide(w, TransientError("503"), SPEC, NOW, zero)
    assert r.changes["next_poll_at"] == NOW + 60


def test_rate_limit_waits_for_retry_after():
    r = decide(seen(RUNNING), RateLimitedError("rate limit", retry_after=90), SPEC, NOW, zero)
    assert r.changes["next_poll_at"] == pytest.approx(NOW + 90, abs=0.1)
    assert r.changes["attempts"] == 1
    assert "waiting 90s" in r.changes["last_error"]


@pytest.mark.parametrize("retry_after", [0.0, -5.0, 0.001, float("nan")])
def test_a_retry_after_of_nothing_waits_at_least_the_backoff_of_a_failed_poll(retry_after):
    """`Retry-After: 0` at every poll must not mean a poll a second: the wait is at least
    the transient backoff, `min(600, max(interval, 5·2^(n-1)))`, and doubles like it."""
    young = decide(seen(RUNNING), RateLimitedError("429", retry_after=retry_after), SPEC, NOW, zero)
    assert young.changes["next_poll_at"] == pytest.approx(NOW + 10, abs=0.1)  # the interval
    old = seen(RUNNING, created_at=NOW - 40 * MIN, attempts=5)  # 60 s interval, 6th failure
    r = decide(old, RateLimitedError("429", retry_after=retry_after), SPEC, NOW, zero)
    assert r.changes["next_poll_at"] == pytest.approx(NOW + 160, abs=0.1)  # 5·2^5
    assert rate_limit_delay(retry_after, 9, zero, 10) == pytest.approx(600, abs=0.1)


def test_a_longer_retry_after_than_the_floor_is_kept():
    assert rate_limit_delay(45, 1, zero, 10) == pytest.approx(45, abs=0.1)
    assert rate_limit_delay(3, 1, zero, 10) == pytest.approx(10, abs=0.1)


# -- timeout ------------------------------------------------------------------------------


def test_timeout_expires_with_the_last_raw_status():
    w = seen(RUNNING, deadline=NOW + 100)
    r = timed_out(w, NOW + 100)
    assert r.changes["status"] == DONE and r.changes["state"] == "expired"
    assert r.changes["finished_at"] == NOW + 100 and r.changes["next_poll_at"] is None
    t = r.transition
    assert (t.event, t.from_state, t.to_state, t.raw_status) == (
        "timeout",
        "running",
        "expired",
        "1002 JOB IN PROGRESS",
    )
    assert r.update_parent


def test_timeout_before_any_good_poll():
    r = timed_out(make_watch(), NOW + 86400)
    assert r.transition.from_state is None and r.transition.to_state == "expired"
    assert JobSnapshot.from_json(r.changes["snapshot"]).state is State.EXPIRED


# -- notices ------------------------------------------------------------------------------


def test_a_snapshot_notice_is_said_once():
    warned = JobSnapshot(State.RUNNING, "processing", notice="80% of the monthly budget used")
    first = decide(make_watch(), warned, SPEC, NOW + 1, zero)
    assert first.notes == ("80% of the monthly budget used",)
    seen = make_watch(state="running", snapshot=warned.to_json(), polls=1)
    assert decide(seen, warned, SPEC, NOW + 20, zero).notes == ()


def test_an_error_notice_is_said_once_per_streak():
    err = RateLimitedError("budget used up", retry_after=3600, notice="Budget used up")
    assert decide(make_watch(), err, SPEC, NOW + 1, zero).notes == ("Budget used up",)
    streak = make_watch(attempts=1, last_error="budget used up")
    assert decide(streak, err, SPEC, NOW + 2, zero).notes == ()


# -- progress points and the time-left estimate (docs/architecture.md#eta) --------------------


def counted(done: int, total: int = 1000, progress: str | None = None) -> JobSnapshot:
    shown = progress or f"{done:,} of {total:,} imported"
    return JobSnapshot(
        State.RUNNING, "1002 JOB IN PROGRESS", (("Rows", shown),), done=done, total=total
    )


def test_each_counted_poll_adds_a_point_written_with_the_poll():
    first = decide(seen(counted(100)), counted(200), SPEC, NOW, zero)
    assert decode_points(first.changes["progress_points"]) == (ProgressPoint(NOW, 200, 1000),)
    watch = seen(counted(200), progress_points=first.changes["progress_points"])
    second = decide(watch, counted(300), SPEC, NOW + MIN, zero)
    assert [p.done for p in decode_points(second.changes["progress_points"])] == [200, 300]


def test_the_parent_is_edited_when_only_the_estimate_changes():
    # the counts shown stay the same text, but a stall moves the estimate
    points = encode_points(
        (ProgressPoint(NOW - 2 * MIN, 100, 1000), ProgressPoint(NOW - MIN, 200, 1000))
    )
    watch = seen(counted(200, progress="200 rows"), progress_points=points)
    r = decide(watch, counted(200, progress="200 rows"), SPEC, NOW, zero)
    assert r.update_parent is True


def test_polls_that_change_nothing_shown_stay_quiet():
    watch = seen(RUNNING)
    r = decide(watch, RUNNING, SPEC, NOW, zero)
    assert "progress_points" not in r.changes and r.update_parent is False


def test_a_finished_job_forgets_its_points():
    points = encode_points((ProgressPoint(NOW - MIN, 100, 1200),))
    r = decide(seen(counted(100, 1200), progress_points=points), SUCCEEDED, SPEC, NOW, zero)
    assert r.changes["progress_points"] is None
    failed = decide(
        seen(counted(100, 1200), progress_points=points),
        RequestRejectedError("no"),
        SPEC,
        NOW,
        zero,
    )
    assert failed.changes["progress_points"] is None
    expired = timed_out(seen(counted(100, 1200), progress_points=points), NOW)
    assert expired.changes["progress_points"] is None
