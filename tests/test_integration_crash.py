"""kill -9 in the worst gap: Slack has done the post (or shared the file) but the bot never
heard back. The next process finds it instead of sending it again: exactly once."""

from __future__ import annotations

import signal

import pytest

from bot.simulators.zoho import steps_success
from tests.conftest import SlackDriver, bot_env
from tests.processes import clean_env, outbox_settled, spawn_bot, wait_until
from tests.test_integration import parents, replies

WS, JOB = "2480011000000498001", "2480011000000512007"
RUNNING = [{"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"}]


@pytest.mark.slow  # real `syncwatch run` processes, on the real one-second tick
@pytest.mark.parametrize("gap", ["chat.postMessage", "files.completeUploadExternal"])
def test_kill_after_slack_acted_but_before_the_bot_heard_sends_nothing_twice(
    tmp_path, fake_slack, zoho_sim, gap
):
    env = clean_env(bot_env(tmp_path, fake_slack, zoho_sim))
    zoho_sim.add_import_job(WS, JOB, RUNNING)
    first = spawn_bot(env, tmp_path)
    try:
        SlackDriver(first.url, fake_slack).slash(f"watch za {WS}/{JOB}", user="U5")
        wait_until(lambda: replies(fake_slack), what="the first reply")
        before = len(fake_slack.calls_for(gap))
        fake_slack.hang_after_next(gap, 30)  # Slack does it; the answer never arrives
        zoho_sim.add_import_job(WS, JOB, steps_success(10, polls_queued=0, polls_running=0))
        fake_slack.wait_for(gap, count=before + 1, timeout=15)
    finally:
        first.stop(signal.SIGKILL)

    second = spawn_bot(env, tmp_path)
    try:
        wait_until(
            lambda: (
                fake_slack.calls_for("files.completeUploadExternal")
                and any("<@U5>" in (m.text or "") for m in replies(fake_slack))
                and len(fake_slack.calls_for(gap)) >= before + 1
            ),
            timeout=30,
            what="the second process to finish the job",
        )
        wait_until(
            lambda: outbox_settled(tmp_path / "syncwatch.db"), timeout=15, what="an empty outbox"
        )
    finally:
        second.stop(signal.SIGTERM)
    thread = replies(fake_slack)
    assert len(parents(fake_slack)) == 1
    assert sum("<@U5>" in (m.text or "") for m in thread) == 1  # the terminal reply, once
    assert sum(1 for m in thread if m.files) == 1  # the summary file, once
