"""Acks are given in the request thread; the slow part runs after the ack (Bolt lazy
listeners), and a failure there still reaches the person who typed or clicked."""

from __future__ import annotations

import threading
import time

from bot.simulators.zoho import steps_success

WS, JOB = "2480011000000498001", "2480011000000512007"


def test_a_watch_is_acked_before_the_slow_part_runs(running, fake_slack, zoho_sim, monkeypatch):
    bot, slack = running
    zoho_sim.add_import_job(WS, JOB, steps_success())
    release = threading.Event()
    started = threading.Event()
    handle = bot.service.handle

    def slow_handle(request, who):
        started.set()
        release.wait(10)  # the "slow Slack read" of the work after the ack
        return handle(request, who)

    monkeypatch.setattr(bot.service, "handle", slow_handle)
    began = time.monotonic()
    response, key = slack.slash(f"watch za {WS}/{JOB}")
    acked_in = time.monotonic() - began
    assert response.status_code == 200 and response.content == b""  # acked, empty
    assert started.wait(5)
    assert acked_in < 5  # the ack did not wait for the work (which waits up to 10 s)
    release.set()
    answer = fake_slack.wait_for(f"respond/{key}")[0].params
    assert answer["response_type"] == "ephemeral" and "Started a watch" in answer["text"]


def test_help_is_answered_in_the_ack_body(running, fake_slack):
    _, slack = running
    response, key = slack.slash("help")
    assert response.status_code == 200
    assert "/syncwatch watch" in response.json()["text"]
    assert not fake_slack.calls_for(f"respond/{key}")


def test_a_failure_after_the_ack_tells_the_user_with_a_reference(
    running, fake_slack, zoho_sim, monkeypatch, caplog
):
    bot, slack = running
    zoho_sim.add_import_job(WS, JOB, steps_success())

    def broken(request, who):
        raise RuntimeError("database exploded")

    monkeypatch.setattr(bot.service, "handle", broken)
    response, key = slack.slash(f"watch za {WS}/{JOB}")
    assert response.status_code == 200
    answer = fake_slack.wait_for(f"respond/{key}")[0].params
    assert answer["text"].startswith("Something went wrong (ref ")
    assert "Nothing was changed" in answer["text"]
    assert "database exploded" not in answer["text"]  # internals stay in the log
    assert answer["response_type"] == "ephemeral"
    assert bot.store.list_watches() == []


def test_a_click_that_fails_after_the_ack_tells_the_clicker(running, fake_slack, monkeypatch):
    bot, slack = running

    def broken(watch_id):
        raise RuntimeError("boom")

    monkeypatch.setattr(bot.store, "get_watch", broken)  # what Refresh reads first
    response = slack.click("watch.refresh", "w-missing", "1.0", key="clicked")
    assert response.status_code == 200
    params = fake_slack.wait_for("respond/clicked")[0].params
    assert params["text"].startswith("Something went wrong (ref ")
