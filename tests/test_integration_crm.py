"""Zoho CRM bulk write end to end: result CSV and its summary in the thread, link guard."""

from __future__ import annotations

import json

import pytest

from bot.runtime import BotProcess
from bot.simulators.zoho_crm import sample_result_csv, steps_with_skips
from tests.conftest import SlackDriver, bot_env
from tests.test_integration import parents, replies, wait_until

JOB = "6120045000001938011"


@pytest.fixture
def running(start_bot, tmp_path, fake_slack, zoho_sim, crm_sim) -> tuple[BotProcess, SlackDriver]:
    return start_bot(bot_env(tmp_path, fake_slack, zoho_sim, crm_sim=crm_sim))


def test_skipped_rows_make_a_partial_job_with_the_csv_and_summary(running, fake_slack, crm_sim):
    _, slack = running
    result_csv = sample_result_csv()
    url = crm_sim.add_zip("result-1", result_csv)
    crm_sim.add_job(JOB, steps_with_skips(JOB, url))
    slack.slash(f"watch crm {JOB}", user="U4")
    wait_until(lambda: fake_slack.calls_for("files.completeUploadExternal"), what="the CSV")
    wait_until(
        lambda: any("Top errors" in (m.text or "") for m in replies(fake_slack)), what="the summary"
    )
    (parent,) = parents(fake_slack)
    body = json.dumps(parent.blocks)
    assert "Partially succeeded" in parent.text
    assert "310" in body and "52" in body and "369" in body
    thread = replies(fake_slack)
    (shared,) = [m for m in thread if m.files]
    assert fake_slack.uploads[shared.files[0][0]].decode() == result_csv
    summary = next(m.text for m in thread if "Top errors" in (m.text or ""))
    assert "310 added" in summary and "52 updated" in summary and "7 skipped" in summary
    assert "MANDATORY_NOT_FOUND ×5" in summary and "DUPLICATE_DATA ×2" in summary
    assert sum("<@U4>" in (m.text or "") for m in thread) == 1
    assert crm_sim.downloads == [("result-1", True)]  # our own host: credentials went along


def test_a_foreign_download_link_is_never_fetched(running, fake_slack, crm_sim):
    _, slack = running
    crm_sim.add_job(JOB, steps_with_skips(JOB, "https://download.evil.test/result.zip"))
    slack.slash(f"watch zoho-crm {JOB}")
    wait_until(
        lambda: any("not a Zoho download host" in (m.text or "") for m in replies(fake_slack)),
        what="the refusal note",
    )
    assert fake_slack.calls_for("files.completeUploadExternal") == []
    assert crm_sim.downloads == []
