"""Alert policy for recurring syncs: which scheduled runs reach the channel, the streak on a
failed run's parent, and the one recovery message (docs/architecture.md#alert-policy).

Runs are driven as in production (the schedule runner starts each, a poll decides its
outcome, the notifier delivers) on a fake clock, and the fake Slack shows what people see.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.lifecycle import PollPolicy, decide
from bot.notifier import Notifier
from bot.schedules import ScheduleRunner
from bot.vendors import JobSnapshot, State
from bot.vendors.zoho_analytics_sync import SPEC
from storage import AlertPolicy, NewWatch, Store
from tests.fakes import FakeClock

REF = "2480011000000498001/2480011000000630011"
RUNNING = JobSnapshot(State.RUNNING, "RUNNING")
OK = JobSnapshot(State.SUCCEEDED, "SUCCESS", (("Rows", "1,200 imported"),))
FAIL = JobSnapshot(
    State.FAILED, "FAILURE", error_code="7005", error_message="Datasource password expired"
)
START = 1_767_335_400.0  # 2026-01-02 06:30 UTC, a run's due time
DAY = 86400.0


def draft() -> NewWatch:
    return NewWatch("zoho-analytics-sync", REF, "default", "C1", "U1", 0, 0)


class Harness:
    """One schedule in channel C1, run after run, with Slack deliveries after each."""

    def __init__(self, store: Store, fake_slack: Any, clock: FakeClock) -> None:
        self.store = store
        self.fake = fake_slack
        self.clock = clock
        self.runner = ScheduleRunner(store, PollPolicy(), clock=clock)
        client = WebClient(token="xoxb-test", base_url=fake_slack.api_url, retry_handlers=[])
        self.notifier = Notifier(store, client, clock=clock, paced=False)
        self.runs: list[str] = []

    def close(self) -> None:
        self.notifier.shutdown()
        self.runner.shutdown()

    def schedule(self, policy: str = "every", every: int = 5) -> str:
        self.clock.now = START
        made = self.store.create_schedule(
            draft(), "30 6 * * *", "UTC", START, START, alert_policy=policy, alert_every=every
        )
        return made.id

    def run(self, schedule_id: str, *outcomes: str) -> list[str]:
        """Each outcome (`ok` or `fail`) is one run: started when due, seen running, then
        ended; Slack deliveries happen while it runs and after it ends."""
        started = []
        for outcome in outcomes:
            due = self.store.get_schedule(schedule_id).next_run_at
            self.clock.now = due
            watch_id = self.runner.run(schedule_id)
            assert watch_id is not None
            self.poll(watch_id, RUNNING)
            self.notifier.deliver_due()
            self.clock.advance(120)
            self.poll(watch_id, OK if outcome == "ok" else FAIL)
            self.notifier.deliver_due()
            started.append(watch_id)
        self.runs += started
        return started

    def poll(self, watch_id: str, snap: JobSnapshot) -> None:
        self.store.claim_due(self.clock.now + 10**9, "test-poller", 120, 1000)
        watch = self.store.get_watch(watch_id)
        result = decide(watch, snap, SPEC, self.clock.now, lambda: 0.0)
        assert self.store.apply_poll(watch_id, "test-poller", result, self.clock.now)

    # -- what the channel shows ---------------------------------------------------------------

    def parent(self, watch_id: str) -> str | None:
        """The run's top-level message as text and blocks, or None if it never posted."""
        ref = self.store.parent_ref(watch_id)
        if ref is None:
            return None
        (message,) = [m for m in self.fake.messages("C1") if m.ts == ref.ts]
        return message.text + json.dumps(message.blocks)

    def thread(self, watch_id: str) -> list[str]:
        ref = self.store.parent_ref(watch_id)
        if ref is None:
            return []
        return [m.text + json.dumps(m.blocks) for m in self.fake.thread("C1", ref.ts)]

    def thread_texts(self, watch_id: str) -> list[str]:
        ref = self.store.parent_ref(watch_id)
        return [m.text for m in self.fake.thread("C1", ref.ts)] if ref else []

    def posted(self) -> list[bool]:
        """For each run so far: did it post anything to the channel?"""
        return [self.parent(w) is not None for w in self.runs]


@pytest.fixture
def slack(store, fake_slack, clock) -> Iterator[Harness]:
    harness = Harness(store, fake_slack, clock)
    yield harness
    harness.close()


def every_post_belongs_to_a_posted_run(h: Harness) -> None:
    """Nothing reached Slack for a quiet run: each post is a posted run's parent or reply."""
    posted = {h.store.parent_ref(w).ts for w in h.runs if h.store.parent_ref(w) is not None}
    everything = h.fake.messages("C1", include_replies=True)
    assert {m.ts for m in everything if m.thread_ts is None} == posted
    assert {m.thread_ts for m in everything if m.thread_ts is not None} <= posted


def test_every_posts_each_run_and_shows_the_streak_and_the_recovery(slack):
    s = slack.schedule("every")
    runs = slack.run(s, "ok", "fail", "fail", "fail", "ok", "ok")
    assert slack.posted() == [True] * 6
    assert "First failed run after 1 good run" in slack.parent(runs[1])
    assert "2nd failure in a row since <!date^" in slack.parent(runs[2])
    third = slack.parent(runs[3])
    assert f"3rd failure in a row since <!date^{int(START + DAY)}^" in third
    assert "Back to normal after 3 failures" in slack.parent(runs[4])
    recovery = [r for r in slack.thread(runs[4]) if "Back to normal" in r]
    assert len(recovery) == 1
    assert "Back to normal" not in slack.parent(runs[5]) + "".join(slack.thread(runs[5]))
    assert "in a row" not in slack.parent(runs[0])
    # Each run's thread reads as before: running, then the outcome mentioning the requester.
    assert any("is *running*" in r for r in slack.thread(runs[0]))
    assert any("<@U1>" in r and "failed" in r for r in slack.thread(runs[3]))
    assert slack.thread_texts(runs[3]) == [
        ":arrows_counterclockwise: First check: sync is *running* (`RUNNING`). "
        "I'll post here when it changes.",
        ":x: <@U1> Sync failed after 2m 00s (`FAILURE`).",
    ]


def test_failures_posts_only_failed_runs_with_their_mention(slack, fake_slack):
    s = slack.schedule("failures")
    runs = slack.run(s, "ok", "fail", "fail", "fail", "ok", "ok")
    assert slack.posted() == [False, True, True, True, False, False]
    every_post_belongs_to_a_posted_run(slack)
    for quiet in (runs[0], runs[4], runs[5]):
        assert slack.parent(quiet) is None and slack.thread(quiet) == []
    assert "3rd failure in a row since" in slack.parent(runs[3])
    thread = slack.thread(runs[3])
    # Posted after the run ended: its outcome, not "now running" as if it were news.
    assert not any("running" in r for r in thread)
    (ending,) = [r for r in thread if "failed" in r]
    assert "<@U1>" in ending and "Datasource password expired" in ending
    # The parent posts before its thread, and the thread hangs under it.
    posts = [c.params for c in fake_slack.calls_for("chat.postMessage")]
    parents = [i for i, p in enumerate(posts) if "thread_ts" not in p]
    assert parents and posts[parents[0] + 1].get("thread_ts")
    # The quiet runs are still there for people who look (list, App Home, the API).
    assert [slack.store.get_watch(w).state for w in runs] == [
        "succeeded",
        "failed",
        "failed",
        "failed",
        "succeeded",
        "succeeded",
    ]


def test_smart_posts_the_first_and_every_nth_failure_then_recovers_once(slack):
    s = slack.schedule("smart", every=2)
    runs = slack.run(s, "ok", "fail", "fail", "fail", "fail", "fail", "ok", "ok", "fail")
    assert slack.posted() == [False, True, False, True, False, True, True, False, True]
    every_post_belongs_to_a_posted_run(slack)
    assert "First failed run after 1 good run" in slack.parent(runs[1])
    assert "3rd failure in a row since" in slack.parent(runs[3])
    assert "5th failure in a row since" in slack.parent(runs[5])
    assert any("<@U1>" in r and "failed" in r for r in slack.thread(runs[5]))
    # Recovery: on the recovering run's parent and once in its thread.
    assert "Back to normal after 5 failures" in slack.parent(runs[6])
    assert sum("Back to normal" in r for r in slack.thread(runs[6])) == 1
    # Exactly what each posted thread holds: the outcome with its mention (and the
    # recovery), nothing that narrated the run while it was quiet.
    for failed in (runs[1], runs[3], runs[5], runs[8]):
        assert slack.thread_texts(failed) == [":x: <@U1> Sync failed after 2m 00s (`FAILURE`)."]
    assert slack.thread_texts(runs[6]) == [
        ":white_check_mark: <@U1> Sync succeeded in 2m 00s (`SUCCESS`). Rows: 1,200 imported.",
        ":white_check_mark: Back to normal after 5 failures.",
    ]
    assert "First failed run after 2 good runs" in slack.parent(runs[8])


def test_smart_defaults_to_every_fifth_failure_after_the_first(slack):
    s = slack.schedule("smart")
    slack.run(s, *["fail"] * 7)
    assert slack.posted() == [True, False, False, False, False, True, False]


def test_a_stopped_quiet_run_posts_nothing_and_keeps_the_streak(slack):
    s = slack.schedule("failures")
    slack.run(s, "fail", "fail")
    before = slack.store.get_schedule(s)
    slack.clock.now = before.next_run_at
    stopped = slack.runner.run(s)
    slack.poll(stopped, RUNNING)
    slack.store.stop_watch(stopped, "U2", slack.clock.now)
    slack.notifier.deliver_due()
    assert slack.store.parent_ref(stopped) is None
    after = slack.store.get_schedule(s)
    assert (after.streak_kind, after.streak_count) == ("failed", 2)
    (third,) = slack.run(s, "fail")
    assert "3rd failure in a row since" in slack.parent(third)


def test_the_streak_survives_a_restart(tmp_path, fake_slack, clock):
    path = str(tmp_path / "syncwatch.db")
    first = Store(path)
    h = Harness(first, fake_slack, clock)
    s = h.schedule("smart", every=2)
    h.run(s, "fail", "fail")
    h.close()
    first.close()

    second = Store(path)  # a new process on the same database
    h = Harness(second, fake_slack, clock)
    try:
        (third,) = h.run(s, "fail")
        assert f"3rd failure in a row since <!date^{int(START)}^" in h.parent(third)
        (recovered,) = h.run(s, "ok")
        assert "Back to normal after 3 failures" in h.parent(recovered)
        assert sum("Back to normal" in r for r in h.thread(recovered)) == 1
    finally:
        h.close()
        second.close()


def test_a_quiet_run_that_alerts_posts_its_parent_before_its_replies(slack, fake_slack):
    s = slack.schedule("failures")
    (run,) = slack.run(s, "fail")
    calls = [c.params for c in fake_slack.calls_for("chat.postMessage")]
    assert "thread_ts" not in calls[0]  # the parent first
    parent_ts = slack.store.parent_ref(run).ts
    assert [c.get("thread_ts") for c in calls[1:]] == [parent_ts] * (len(calls) - 1)
    # Its "now running" reply was dropped, not left waiting; everything else was sent.
    assert {r.status for r in slack.store.outbox_rows(run)} == {"sent", "skipped"}


def test_changing_the_policy_applies_to_the_next_run_and_keeps_the_streak(slack):
    s = slack.schedule("every")
    slack.run(s, "fail")
    assert slack.store.set_alert_policy(s, AlertPolicy.FAILURES, 5)
    runs = slack.run(s, "ok", "fail")
    assert slack.posted() == [True, False, True]
    assert "First failed run after 1 good run" in slack.parent(runs[1])


def test_a_retried_failed_run_that_succeeds_no_longer_shows_the_failure_streak(slack):
    s = slack.schedule("failures")
    (run,) = slack.run(s, "fail")
    assert "First failed run" in slack.parent(run)
    now = slack.clock.advance(60)
    assert slack.store.restart_sync(run, "U1", now, now + DAY, note="asked again") is not None
    slack.poll(run, OK)
    slack.notifier.deliver_due()
    assert "First failed run" not in slack.parent(run) and "Succeeded" in slack.parent(run)


def test_list_shows_a_schedules_failure_streak_and_policy(slack):
    from bot.blocks import render_home, render_list

    s = slack.schedule("smart", every=2)
    slack.run(s, "fail", "fail")
    schedules = slack.store.list_schedules(channel_id="C1")
    listing = json.dumps(render_list([], slack.clock.now, schedules).blocks)
    assert f":rotating_light: 2 failed runs in a row since <!date^{int(START)}^" in listing
    assert "Alerts: posts the 1st failed run, then every 2 more in a row" in listing
    home = json.dumps(render_home([], slack.clock.now, schedules)["blocks"])
    assert "2 failed runs in a row" in home
    slack.run(s, "ok")
    schedules = slack.store.list_schedules(channel_id="C1")
    assert "failed runs in a row" not in json.dumps(
        render_list([], slack.clock.now, schedules).blocks
    )
