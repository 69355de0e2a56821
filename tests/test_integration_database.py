"""The database goes away under the running bot (real app over HTTP, fake Slack): its file
deleted, or made read-only. /healthz says so, commands are refused privately with nothing
started, no new file appears, and once the database takes writes again everything resumes
with the watches from before (docs/operations.md#the-database-goes-away)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import httpx

from bot import dbwait
from bot.simulators.zoho import steps_success
from tests.conftest import bot_env, wait_for_ticks
from tests.dbfaults import ReadOnlyDatabase
from tests.processes import wait_until
from tests.test_integration import WS, parents, responded

JOB, OTHER = "2480011000000512007", "2480011000000512008"
REFUSED = "I can't save anything right now"


def health(slack) -> int:
    return httpx.get(f"{slack.base_url}/healthz", timeout=5).status_code


def refused(text: str) -> bool:
    return REFUSED in text and "nothing was started" in text and "Started" not in text


def refused_privately(answer: dict) -> bool:
    """An answer through response_url: only the person who typed the command sees it."""
    return answer["response_type"] == "ephemeral" and refused(answer["text"])


def test_a_deleted_database_is_unhealthy_refuses_commands_and_is_not_recreated(
    running, fake_slack, zoho_sim
):
    bot, slack = running
    zoho_sim.add_import_job(WS, JOB, steps_success(total_rows=5))
    _, key = slack.slash(f"watch za {WS}/{JOB}")
    assert "Started a watch" in responded(fake_slack, key)["text"]
    wait_until(lambda: len(parents(fake_slack)) == 1, what="the parent message")
    path = Path(bot.settings.db_path)

    os.remove(path)

    wait_until(lambda: health(slack) == 503, what="/healthz to say 503")
    zoho_sim.add_import_job(WS, OTHER, steps_success(total_rows=5))
    _, key = slack.slash(f"watch za {WS}/{OTHER}")
    assert refused_privately(responded(fake_slack, key))
    response, _ = slack.slash("stop wabc")  # answered in the ack (private): refused too
    assert refused(response.text)
    wait_for_ticks(bot, 3)
    assert len(parents(fake_slack)) == 1  # nothing new in the channel
    assert zoho_sim.polls(WS, OTHER) == 0
    assert not path.exists()  # no fresh, empty database in its place


def test_a_read_only_database_refuses_commands_and_all_resumes_once_it_is_writable(
    start_bot, fake_slack, zoho_sim, monkeypatch, caplog, tmp_path
):
    """Read-only is the file chmod-ed 0444 (enough for a non-root bot) *and* its
    connections switched to PRAGMA query_only (what SQLite then does to root's writes too:
    tests/dbfaults.py)."""
    monkeypatch.setattr(dbwait, "MAX_WAIT_S", 1.0)  # resume fast (the backoff: test_dbwait.py)
    # Zoho's 30 polls a minute would make the end wait for a token: not what this is about.
    bot, slack = start_bot(
        bot_env(tmp_path, fake_slack, zoho_sim) | {"ZOHO_RATE_PER_MINUTE": "6000"}
    )
    read_only = ReadOnlyDatabase(bot.store, monkeypatch)
    zoho_sim.add_import_job(WS, JOB, steps_success(total_rows=5)[:1])  # queued until told
    _, key = slack.slash(f"watch za {WS}/{JOB}", user="U7")
    assert "Started a watch" in responded(fake_slack, key)["text"]
    (watch,) = bot.store.list_watches()
    wait_until(lambda: zoho_sim.polls(WS, JOB) >= 2, what="the watch to be polled")
    path = Path(bot.settings.db_path)
    caplog.set_level(logging.INFO)
    caplog.clear()

    os.chmod(path, 0o444)
    read_only.set(True)

    wait_until(lambda: health(slack) == 503, what="/healthz to say 503")
    _, key = slack.slash(f"watch za {WS}/{OTHER}")
    assert refused_privately(responded(fake_slack, key))
    response, _ = slack.slash(f"stop {watch.id}", user="U7")
    assert refused(response.text)
    polls = zoho_sim.polls(WS, JOB)
    wait_for_ticks(bot, 5)
    assert zoho_sim.polls(WS, JOB) <= polls + 1  # a poll in flight may end; none starts
    assert len(parents(fake_slack)) == 1
    # One line says the polls wait; no traceback a tick.
    assert [r for r in caplog.records if r.exc_info] == []
    assert sum("polls wait" in r.getMessage() for r in caplog.records) == 1

    os.chmod(path, 0o644)
    read_only.set(False)

    wait_until(lambda: health(slack) == 200, what="/healthz to say 200 again")
    (parent,) = parents(fake_slack)
    ts = parent.ts
    listing, _ = slack.slash("list")
    assert watch.id in listing.text  # the watch from before is still there
    zoho_sim.add_import_job(WS, OTHER, steps_success(total_rows=5))
    _, key = slack.slash(f"watch za {WS}/{OTHER}")
    assert "Started a watch" in responded(fake_slack, key)["text"]
    zoho_sim.add_import_job(WS, JOB, steps_success(total_rows=5, polls_queued=0, polls_running=0))
    wait_until(  # polling and delivery resumed on their own
        lambda: any("<@U7> Job succeeded" in (m.text or "") for m in fake_slack.thread("C1", ts)),
        what="the first job's end in its thread",
    )
