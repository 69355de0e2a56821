"""Zuora AQuA end to end: the real app over HTTP against the Zuora simulator and fake Slack."""

from __future__ import annotations

import json
import os

import pytest

from bot.runtime import BotProcess
from bot.simulators.zuora import FILE_IDS, steps_failed, steps_two_batches
from tests.conftest import SlackDriver, bot_env
from tests.test_integration import parents, replies, wait_until

JOB = "2c92c0f96abc17de016abd62bd0c4b2a"
INVOICES = b"Invoice: Number,Invoice: Amount\nINV-1,10.00\nINV-2,20.00\nINV-3,=1+2\n"
PAYMENTS = b"Payment: Number,Payment: Amount\nP-1,5.00\nP-2,6.00\n"


@pytest.fixture
def running(start_bot, tmp_path, fake_slack, zoho_sim, zuora_sim) -> tuple[BotProcess, SlackDriver]:
    return start_bot(bot_env(tmp_path, fake_slack, zoho_sim, zuora_sim))


def test_batch_files_are_uploaded_byte_for_byte_into_the_thread(running, fake_slack, zuora_sim):
    bot, slack = running
    zuora_sim.add_job(JOB, steps_two_batches(JOB))
    zuora_sim.add_file(FILE_IDS[0], INVOICES)
    zuora_sim.add_file(FILE_IDS[1], PAYMENTS)
    slack.slash(f"watch zuora {JOB}", user="U3")
    wait_until(
        lambda: len(fake_slack.calls_for("files.completeUploadExternal")) == 2, what="two files"
    )
    (parent,) = parents(fake_slack)
    assert "Succeeded" in parent.text
    body = json.dumps(parent.blocks)
    assert "2 of 2 done" in body and "Invoices" in body and "Payments" in body

    thread = replies(fake_slack)
    files = {f[2]: fake_slack.uploads[f[0]] for m in thread for f in m.files}
    assert files == {"Invoices.csv": INVOICES, "Payments.csv": PAYMENTS}  # served as-is
    assert sum("<@U3>" in (m.text or "") for m in thread) == 1
    titles = [f[1] for m in thread for f in m.files]
    assert titles == ["Invoices", "Payments"]
    # the spool holds nothing once Slack has the files
    wait_until(lambda: not os.listdir(bot.spool_dir), what="spool emptied")
    assert all(
        r[2].get("authorization", "").startswith("Bearer ")
        for r in zuora_sim.requests
        if "/v1/" in r[1]
    )


def test_failed_job_quotes_the_aqua_code_and_its_meaning(running, fake_slack, zuora_sim):
    _, slack = running
    zuora_sim.add_job(JOB, steps_failed(JOB, code="90029"))
    slack.slash(f"watch aqua {JOB}")
    wait_until(
        lambda: any(":x:" in (m.text or "") for m in replies(fake_slack)), what="failure reply"
    )
    failure = next(m for m in replies(fake_slack) if ":x:" in (m.text or ""))
    body = json.dumps(failure.blocks)
    assert "90029" in body and "maximum processing time" in body
    assert fake_slack.calls_for("files.completeUploadExternal") == []


def test_expired_file_becomes_a_note_not_an_upload(running, fake_slack, zuora_sim):
    _, slack = running
    zuora_sim.add_job(JOB, steps_two_batches(JOB))
    zuora_sim.add_file(FILE_IDS[1], PAYMENTS)  # Invoices' file is gone (3-day retention)
    slack.slash(f"watch zuora {JOB}")
    wait_until(
        lambda: len(fake_slack.calls_for("files.completeUploadExternal")) == 1,
        what="the surviving file",
    )
    wait_until(
        lambda: any("3 days" in (m.text or "") for m in replies(fake_slack)), what="the expiry note"
    )
