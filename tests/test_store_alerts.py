"""The store's side of alert policies, on SQLite and PostgreSQL: the policy and the streak
are stored, the streak moves in the transaction that ends a run, and a quiet run's outbox
rows wait as `held` until its outcome releases or skips them
(docs/architecture.md#alert-policy)."""

from __future__ import annotations

import pytest

from bot.lifecycle import decide
from bot.vendors import JobSnapshot, State
from bot.vendors.zoho_analytics_sync import SPEC
from storage import (
    AlertPolicy,
    Event,
    NewWatch,
    OutboxKind,
    ScheduleRun,
    Store,
    TransitionDraft,
    decide_alert,
)
from storage.alerts import RunOutcome

REF = "2480011000000498001/2480011000000630011"
T0 = 1_767_335_400.0
DAY = 86400.0


def draft() -> NewWatch:
    return NewWatch("zoho-analytics-sync", REF, "default", "C1", "U1", 0, T0 + DAY)


def start_run(store: Store, schedule_id: str, due: float) -> str:
    watch = store.record_schedule_run(
        schedule_id, due, due + DAY, draft(), None, due, skipped_note="skipped"
    )
    assert watch is not None
    return watch.id


def end_run(store: Store, watch_id: str, state: State, now: float) -> None:
    store.claim_due(now + 10**9, "p", 120, 100)
    snap = JobSnapshot(state, state.value.upper())
    result = decide(store.get_watch(watch_id), snap, SPEC, now, lambda: 0.0)
    assert store.apply_poll(watch_id, "p", result, now)


def statuses(store: Store, watch_id: str) -> list[tuple[str, str]]:
    return [(r.kind, r.status) for r in store.outbox_rows(watch_id)]


def test_policy_is_stored_with_the_schedule_and_changed_later(any_store):
    s = any_store.create_schedule(
        draft(), "30 6 * * *", "UTC", T0, T0, alert_policy="smart", alert_every=3
    )
    assert (s.alert_policy, s.alert_every, s.streak_kind, s.streak_count) == ("smart", 3, None, 0)
    assert any_store.set_alert_policy(s.id, AlertPolicy.FAILURES, 5)
    assert any_store.get_schedule(s.id).alert_policy == "failures"
    any_store.stop_schedule(s.id, "U1", T0)
    assert not any_store.set_alert_policy(s.id, AlertPolicy.EVERY, 5)  # stopped: unchanged
    plain = any_store.create_schedule(draft(), "0 7 * * *", "UTC", T0, T0)
    assert (plain.alert_policy, plain.alert_every) == ("every", 5)


def test_a_quiet_run_is_held_then_released_when_it_fails(any_store):
    s = any_store.create_schedule(draft(), "30 6 * * *", "UTC", T0, T0, alert_policy="failures")
    run = start_run(any_store, s.id, T0)
    assert statuses(any_store, run) == [(OutboxKind.PARENT, "held")]
    assert any_store.due_outbox(T0 + 10) == []
    end_run(any_store, run, State.RUNNING, T0 + 10)
    assert any_store.claim_outbox(T0 + 20, "n", 60) == []
    end_run(any_store, run, State.FAILED, T0 + 60)
    assert statuses(any_store, run) == [
        (OutboxKind.PARENT, "pending"),
        (OutboxKind.PARENT, "pending"),
        (OutboxKind.REPLY, "skipped"),  # "sync is running", told after the fact: dropped
        (OutboxKind.PARENT, "pending"),
        (OutboxKind.REPLY, "pending"),  # the failure
    ]
    s = any_store.get_schedule(s.id)
    assert (s.streak_kind, s.streak_count, s.streak_since) == ("failed", 1, T0)
    assert any_store.run_of(run) == ScheduleRun(s.id, T0, run, "failed", 1, T0, 0)


def test_a_quiet_run_that_succeeds_is_skipped_and_counted(any_store):
    s = any_store.create_schedule(draft(), "30 6 * * *", "UTC", T0, T0, alert_policy="failures")
    run = start_run(any_store, s.id, T0)
    end_run(any_store, run, State.SUCCEEDED, T0 + 60)
    assert {status for _, status in statuses(any_store, run)} == {"skipped"}
    assert any_store.claim_outbox(T0 + 70, "n", 60) == []
    s = any_store.get_schedule(s.id)
    assert (s.streak_kind, s.streak_count) == ("ok", 1)


def test_the_streak_counts_runs_of_one_kind_and_remembers_the_one_it_broke(any_store):
    s = any_store.create_schedule(draft(), "30 6 * * *", "UTC", T0, T0)
    outcomes = [State.FAILED, State.PARTIAL, State.EXPIRED, State.SUCCEEDED]
    runs = []
    for day, state in enumerate(outcomes):
        due = T0 + day * DAY
        runs.append(start_run(any_store, s.id, due))
        end_run(any_store, runs[-1], state, due + 60)
    shown = [any_store.run_of(r) for r in runs]
    assert [(r.outcome, r.streak_count, r.streak_since) for r in shown] == [
        ("failed", 1, T0),
        ("failed", 2, T0),
        ("failed", 3, T0),
        ("ok", 1, T0 + 3 * DAY),
    ]
    assert shown[-1].recovered_after == 3
    # Under `every` nothing is held, and the recovery is one reply in the run's thread.
    assert "held" not in {status for _, status in statuses(any_store, runs[-1])}
    assert [t.event for t in any_store.transitions(runs[-1])][-1] == "recovered"


def test_a_stop_skips_held_rows_and_leaves_the_streak(any_store):
    s = any_store.create_schedule(draft(), "30 6 * * *", "UTC", T0, T0, alert_policy="smart")
    first = start_run(any_store, s.id, T0)
    end_run(any_store, first, State.FAILED, T0 + 60)
    second = start_run(any_store, s.id, T0 + DAY)
    assert any_store.stop_watch(second, "U2", T0 + DAY + 5) is not None
    assert {status for _, status in statuses(any_store, second)} == {"skipped"}
    assert any_store.run_of(second).outcome == "stopped"
    s = any_store.get_schedule(s.id)
    assert (s.streak_kind, s.streak_count) == ("failed", 1)


def test_a_retried_run_does_not_count_again(any_store):
    s = any_store.create_schedule(draft(), "30 6 * * *", "UTC", T0, T0)
    run = start_run(any_store, s.id, T0)
    end_run(any_store, run, State.FAILED, T0 + 60)
    assert any_store.restart_sync(run, "U1", T0 + 100, T0 + DAY, note="again") is not None
    end_run(any_store, run, State.SUCCEEDED, T0 + 200)
    s = any_store.get_schedule(s.id)
    assert (s.streak_kind, s.streak_count) == ("failed", 1)


def test_held_result_files_are_kept_until_decided(any_store):
    s = any_store.create_schedule(draft(), "30 6 * * *", "UTC", T0, T0, alert_policy="failures")
    run = start_run(any_store, s.id, T0)
    file_id = any_store.put_file([b"a,b\n"], T0)
    any_store.claim_due(T0 + 10**9, "p", 120, 100)
    result = decide(
        any_store.get_watch(run),
        JobSnapshot(State.RUNNING, "RUNNING"),
        SPEC,
        T0 + 5,
        lambda: 0.0,
    )
    assert any_store.apply_poll(run, "p", result, T0 + 5)
    note = TransitionDraft(event=Event.NOTE, note="the result file")
    any_store.add_to_thread_once(run, note, [{"file_id": file_id, "filename": "x.csv"}], T0)
    assert any_store.sweep_files(T0 + DAY) == 0  # a held upload still needs its file


@pytest.mark.parametrize(
    "policy, every, outcome, count, broke, alert, recovery",
    [
        ("every", 5, RunOutcome.OK, 1, 0, True, False),
        ("every", 5, RunOutcome.OK, 1, 2, True, True),
        ("failures", 5, RunOutcome.OK, 1, 2, False, False),
        ("failures", 5, RunOutcome.FAILED, 7, 0, True, False),
        ("smart", 5, RunOutcome.FAILED, 1, 3, True, False),
        ("smart", 5, RunOutcome.FAILED, 5, 0, False, False),
        ("smart", 5, RunOutcome.FAILED, 6, 0, True, False),
        ("smart", 1, RunOutcome.FAILED, 2, 0, True, False),
        ("smart", 5, RunOutcome.OK, 1, 4, True, True),
        ("smart", 5, RunOutcome.OK, 2, 0, False, False),
    ],
)
def test_which_runs_alert(policy, every, outcome, count, broke, alert, recovery):
    decision = decide_alert(policy, every, outcome, count, broke)
    assert (decision.alert, decision.recovery) == (alert, recovery)
