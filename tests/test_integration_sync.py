"""Datasource syncs end to end: trigger with the operator's credentials, watch the outcome,
Retry sync, and schedules, through the real app over HTTP."""

from __future__ import annotations

import json

import pytest

from bot.runtime import BotProcess
from bot.simulators.zoho import sync_outcome_failure, sync_outcome_success
from tests.conftest import SlackDriver, bot_env
from tests.test_integration import parents, replies, wait_until

WS, DS = "2480011000000498001", "2480011000000630011"
CONFIG = f"""
[syncs."{WS}/{DS}"]
user_name = "reporting"
password = "pw-for-the-test-only"
"""


@pytest.fixture
def running(start_bot, tmp_path, fake_slack, zoho_sim) -> tuple[BotProcess, SlackDriver]:
    path = tmp_path / "syncwatch.toml"
    path.write_text(CONFIG)
    return start_bot(bot_env(tmp_path, fake_slack, zoho_sim) | {"SYNCWATCH_CONFIG": str(path)})


def test_sync_triggers_with_configured_credentials_and_reports_success(
    running, fake_slack, zoho_sim, caplog
):
    _, slack = running
    zoho_sim.add_datasource(WS, DS, after_sync=sync_outcome_success())
    slack.slash(f"sync {WS}/{DS}", user="U6")
    wait_until(
        lambda: any("<@U6>" in (m.text or "") for m in replies(fake_slack)),
        what="the outcome reply",
    )
    (parent,) = parents(fake_slack)
    assert "Zoho Analytics sync" in parent.text and "Succeeded" in parent.text
    assert zoho_sim.sync_requests == [
        {
            "ws": WS,
            "ds": DS,
            "config": {"userName": "reporting", "password": "pw-for-the-test-only"},
        }
    ]
    terminal = next(m for m in replies(fake_slack) if "<@U6>" in (m.text or ""))
    assert "succeeded" in terminal.text
    everything = json.dumps([c.params for c in fake_slack.calls]) + caplog.text
    assert "pw-for-the-test-only" not in everything


def test_failed_sync_gets_a_retry_button_that_syncs_again_in_the_same_thread(
    running, fake_slack, zoho_sim
):
    bot, slack = running
    zoho_sim.add_datasource(WS, DS, after_sync=sync_outcome_failure())
    slack.slash(f"sync {WS}/{DS}")
    wait_until(
        lambda: parents(fake_slack) and "Failed" in parents(fake_slack)[0].text,
        what="failed parent",
    )
    (parent,) = parents(fake_slack)
    retry = next(
        e
        for b in parent.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "sync.retry"
    )
    zoho_sim.add_datasource(
        WS,
        DS,
        last_time="14 March, 2025 09:05:41 AM CET",
        after_sync=sync_outcome_success("14 March, 2025 10:00:00 AM CET"),
    )
    assert slack.click("sync.retry", retry["value"], parent.ts).status_code == 200
    wait_until(lambda: "Succeeded" in parents(fake_slack)[0].text, what="retried success")
    assert len(zoho_sim.sync_requests) == 2
    assert len(parents(fake_slack)) == 1  # same message, same thread
    assert any("run the sync again" in (m.text or "") for m in replies(fake_slack))


def test_schedule_command_lists_and_stops(running, fake_slack):
    bot, slack = running
    created = slack.ask(f"sync {WS}/{DS} at 0 6 * * 1-5 tz Europe/Berlin")
    (schedule,) = bot.store.list_schedules()
    assert schedule.id in created and schedule.cron == "0 6 * * 1-5"
    assert bot.schedules.job(schedule.id) is not None
    listing, _ = slack.slash("list")
    assert schedule.id in listing.text
    stopped, _ = slack.slash(f"stop {schedule.id}")
    assert "Stopped schedule" in stopped.text
    assert bot.schedules.job(schedule.id) is None


def test_a_quiet_schedule_is_set_and_changed_over_slack(running, fake_slack):
    """docs/architecture.md#alert-policy, through the real app: the policy and digest given
    with the schedule, shown by `list`, changed with `schedule <id> alert`, refused to others."""
    bot, slack = running
    created = slack.ask(f'sync {WS}/{DS} at "0 6 * * 1-5" alert smart every 3 digest weekly')
    (schedule,) = bot.store.list_schedules()
    assert "a run that goes well posts nothing here" in created
    assert (schedule.alert_policy, schedule.alert_every, schedule.digest) == ("smart", 3, "weekly")
    listing, _ = slack.slash("list")
    assert "Alerts: posts the 1st failed run, then every 3 more" in listing.text
    refused, _ = slack.slash(f"schedule {schedule.id} alert failures", user="U2")
    assert "Only the person who started it" in refused.text
    changed, _ = slack.slash(f"schedule {schedule.id} alert failures")
    assert "now posts failed runs only" in changed.text
    bad, _ = slack.slash(f"schedule {schedule.id} alert sometimes")
    assert "is not an alert policy" in bad.text and "schedule" in bad.text
    assert bot.store.get_schedule(schedule.id).alert_policy == "failures"
    assert parents(fake_slack) == []  # nothing of this reached the channel
