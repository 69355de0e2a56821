"""Faults seen from outside: vendor garbage, Slack storms and a channel that goes away.
Each asserts what the channel ends up showing: nothing lost, nothing doubled, truthful state."""

from __future__ import annotations

import json

from bot.simulators.zoho import steps_success
from storage import PollResult
from tests.fakes import SkippingClock
from tests.test_integration import parents, replies, wait_until

WS, JOB = "2480011000000498001", "2480011000000512007"
IMPORTS = "/importjobs/"


def time_passes(bot, clock: SkippingClock, seconds: float):
    """Moves the bot's clock on by `seconds` each call, and lets the notifier see it."""

    def step() -> None:
        clock.advance(seconds)
        bot.notifier.wake()

    return step


def test_vendor_garbage_is_survived_and_the_job_still_ends_truthfully(
    start_bot, fake_slack, zoho_sim
):
    clock = SkippingClock()
    bot, slack = start_bot(clock=clock)
    zoho_sim.add_import_job(WS, JOB, steps_success(total_rows=10, polls_queued=0))
    for status, body, kind in (
        (502, "<html>Bad Gateway</html>", "text/html"),
        (200, '{"status": "success", "data": {"jobCo', "application/json"),
        (200, "", "application/json"),
        (503, "unavailable", "text/plain"),
    ):
        zoho_sim.fail_next(IMPORTS, status, body, {"Content-Type": kind})
    slack.slash(f"watch za {WS}/{JOB}", user="U5")
    (w,) = wait_until(lambda: bot.store.list_watches(statuses=None), what="the watch")

    # Backoff after each fault waits seconds to minutes (and Zoho's budget a few seconds):
    # let that time pass on the bot's clock until the watch ends.
    wait_until(
        lambda: bot.store.get_watch(w.id).status == "done",
        timeout=30,
        what="the watch to end",
        meanwhile=time_passes(bot, clock, 5),
    )
    wait_until(
        lambda: any("<@U5>" in (m.text or "") for m in replies(fake_slack)),
        what="the terminal reply",
    )
    texts = [m.text or "" for m in replies(fake_slack)]
    assert sum("succeeded" in t for t in texts) == 1
    assert "Succeeded" in parents(fake_slack)[0].text
    assert len(parents(fake_slack)) == 1


def test_slack_rate_limit_storm_delays_but_loses_and_doubles_nothing(
    start_bot, fake_slack, zoho_sim
):
    clock = SkippingClock()
    bot, slack = start_bot(clock=clock)
    for _ in range(6):
        fake_slack.fail_next("chat.postMessage", "ratelimited", 429, {"Retry-After": "0"})
    zoho_sim.add_import_job(WS, JOB, steps_success(total_rows=5, polls_queued=0, polls_running=1))
    slack.slash(f"watch za {WS}/{JOB}", user="U6")
    # each 429 holds the row back for (at least) a second of the bot's clock
    wait_until(
        lambda: (
            any("<@U6>" in (m.text or "") for m in replies(fake_slack))
            and fake_slack.calls_for("files.completeUploadExternal")
        ),
        timeout=30,
        what="the terminal reply and the file",
        meanwhile=time_passes(bot, clock, 1),
    )
    assert len(fake_slack.calls_for("chat.postMessage")) > 6  # the storm happened
    assert len(parents(fake_slack)) == 1
    texts = [m.text or "" for m in replies(fake_slack)]
    assert len(texts) == len(set(texts))  # every reply once


def test_bot_removed_from_the_channel_pauses_the_watch(running, fake_slack, zoho_sim):
    bot, slack = running
    zoho_sim.add_import_job(WS, JOB, [{"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"}])
    slack.slash(f"watch za {WS}/{JOB}")
    wait_until(lambda: replies(fake_slack), what="first reply")
    (w,) = bot.store.list_watches()
    fake_slack.set_channel("C1", is_member=False)
    # Force a visible change, as a poll would: lease the watch away from the running poller
    # (which may hold it for a moment) and apply a result under that lease.
    wait_until(lambda: bot.store.claim_due(bot.clock() + 10**6, "test", 1, 10), what="the lease")
    assert bot.store.apply_poll(
        w.id,
        "test",
        PollResult({"last_error": "x"}, None, True),
        bot.clock(),
    ), "the result was not applied"
    bot.notifier.wake()
    wait_until(lambda: bot.store.get_watch(w.id).status == "paused", what="paused")
    paused = bot.store.get_watch(w.id)
    assert "removed from this channel" in paused.pause_reason
    calls_before = len(fake_slack.calls)
    bot.notifier.deliver_due()
    assert len(fake_slack.calls) == calls_before  # no retry loop
    home = json.dumps(bot.service.home_view(paused.requester_id))
    assert "Paused" in home
