"""Micro Prism imports end to end: the real app over HTTP against the Micro simulator."""

from __future__ import annotations

import csv
import io
import json

import pytest

from bot.budget import MonthlyBudget
from bot.runtime import BotProcess
from bot.simulators.micro import steps_partial
from tests.conftest import SlackDriver, bot_env
from tests.test_integration import parents, replies, wait_until

JOB = "imp_8QmZ2vK4tR"


@pytest.fixture
def running(start_bot, tmp_path, fake_slack, zoho_sim, micro_sim) -> tuple[BotProcess, SlackDriver]:
    return start_bot(bot_env(tmp_path, fake_slack, zoho_sim, micro_sim=micro_sim))


def test_partial_import_posts_the_per_row_csv_and_counts(running, fake_slack, micro_sim):
    bot, slack = running
    micro_sim.add_job(JOB, steps_partial(JOB))
    slack.slash(f"watch micro {JOB}", user="U8")
    wait_until(lambda: fake_slack.calls_for("files.completeUploadExternal"), what="the CSV")
    (parent,) = parents(fake_slack)
    assert "Partially succeeded" in parent.text
    thread = replies(fake_slack)
    terminal = next(m for m in thread if "<@U8>" in (m.text or ""))
    assert "completed with problems" in terminal.text
    (shared,) = [m for m in thread if m.files]
    file_id, _, filename = shared.files[0]
    assert filename == f"micro-import-{JOB}.csv"
    rows = list(csv.DictReader(io.StringIO(fake_slack.uploads[file_id].decode())))
    assert [r["error_code"] for r in rows] == ["", "", "invalid_email"]
    assert rows[2]["id"] == "" and rows[0]["created"] in ("true", "True")
    assert "2 succeeded, 1 failed" in shared.text
    assert all(r[2].get("x-api-key") == micro_sim.api_key for r in micro_sim.requests)
    used = MonthlyBudget(bot.store, bot.clock).used(_budget_key(micro_sim.api_key))
    assert used == len(micro_sim.requests) > 0  # every request to Micro is on the tally


def test_first_poll_404_fails_with_the_retention_hint(running, fake_slack, micro_sim):
    _, slack = running
    slack.slash("watch micro imp_doesnotexist")
    wait_until(
        lambda: any(":x:" in (m.text or "") for m in replies(fake_slack)), what="failure reply"
    )
    failure = next(m for m in replies(fake_slack) if ":x:" in (m.text or ""))
    assert "7 days" in json.dumps(failure.blocks)


def _budget_key(api_key: str) -> str:
    import hashlib

    return "micro:" + hashlib.sha256(api_key.encode()).hexdigest()[:16]
