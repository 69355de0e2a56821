"""No configured secret ever reaches a log line, a Slack call, the database or the spool."""

from __future__ import annotations

import json
import logging
import os

from bot import redaction
from bot.config import Settings
from bot.simulators.micro import steps_partial
from bot.simulators.zoho import steps_failure, sync_outcome_success
from bot.simulators.zoho_crm import sample_result_csv, steps_with_skips
from bot.simulators.zuora import FILE_IDS, steps_two_batches
from tests.conftest import SIGNING_SECRET, bot_env
from tests.test_integration import wait_until

WS = "2480011000000498001"
SYNC_PASSWORD = "datasource-pw-never-shown"


def test_secrets_stay_out_of_logs_slack_database_and_files(
    start_bot, tmp_path, fake_slack, zoho_sim, zuora_sim, micro_sim, crm_sim, caplog
):
    caplog.set_level(logging.INFO)
    config = tmp_path / "syncwatch.toml"
    config.write_text(f'[syncs."{WS}/77"]\nuser_name = "reporting"\npassword = "{SYNC_PASSWORD}"\n')
    env = bot_env(tmp_path, fake_slack, zoho_sim, zuora_sim, micro_sim, crm_sim)
    env["SYNCWATCH_CONFIG"] = str(config)
    settings = Settings.from_env(env)
    secrets = settings.secrets() + [SYNC_PASSWORD]
    assert SYNC_PASSWORD in settings.secrets()

    zoho_sim.add_import_job(WS, "11", steps_failure(error_text="bad row", polls_running=0))
    zoho_sim.add_datasource(WS, "77", after_sync=sync_outcome_success())
    zuora_sim.add_job("ab" * 16, steps_two_batches("ab" * 16))
    zuora_sim.add_file(FILE_IDS[0], b"a\n1\n")
    zuora_sim.add_file(FILE_IDS[1], b"b\n2\n")
    micro_sim.add_job("imp_1", steps_partial("imp_1"))
    crm_sim.add_job("61", steps_with_skips("61", crm_sim.add_zip("r", sample_result_csv())))

    bot, slack = start_bot(env)
    for text in (
        f"watch za {WS}/11",
        "watch zuora " + "ab" * 16,
        "watch micro imp_1",
        "watch crm 61",
        f"sync {WS}/77",
    ):
        slack.slash(text)
    # and someone pastes a token by mistake
    slack.slash("watch za 1/2 token=" + settings.slack_bot_token + "abcdef")
    wait_until(
        lambda: (
            len(bot.store.list_watches(statuses=("done",))) == 5
            and bot.store.outbox_backlog(bot.clock())[0] == 0
        ),
        timeout=30,
        what="every watch to finish",
    )
    start_bot.stop(bot)  # what shutting down logs is checked too

    slack_text = json.dumps([c.params for c in fake_slack.calls]) + json.dumps(
        [c.headers.get("content-type", "") for c in fake_slack.calls]
    )
    stored = b"".join(
        (tmp_path / name).read_bytes()
        for name in os.listdir(tmp_path)
        if name.startswith("syncwatch.db") and (tmp_path / name).is_file()
    )
    for secret in secrets:
        assert secret not in caplog.text, "a secret reached the logs"
        assert secret not in slack_text, "a secret reached Slack"
        assert secret.encode() not in stored, "a secret reached the database"
    assert not os.listdir(bot.spool_dir), "result files were left behind"


# -- vendors that echo a credential back ------------------------------------------------------

ZOHO_TOKEN = "sim-access-1"  # the first token each simulator mints: live, never configured
ZUORA_TOKEN = "sim-zuora-token-1"
ECHO_PASSWORD = "pa$$.w0rd*(x)+?"  # regex metacharacters: matched as plain text
OTHER_SECRET = "eu-team-client-secret"  # a second TOML connection's, never used by a watch
ZUORA_JOB = "cd" * 16


def _analytics_partial(*quoted: str) -> list[dict]:
    """An import that ends partial, quoting `quoted` in its status, summary and errors."""
    summary = {"importType": f"APPEND {quoted[0]}", "totalRowCount": 10, "successRowCount": 9}
    done = {
        "jobCode": "1004",
        "jobStatus": f"JOB COMPLETED ({quoted[1]})",
        "jobInfo": {"importSummary": summary, "importErrors": "row 3: " + " ".join(quoted)},
    }
    return [{"jobCode": "1002", "jobStatus": f"JOB IN PROGRESS {quoted[2]}"}, done]


def _crm_with_skips(job: str, link: str, *quoted: str) -> list[dict]:
    steps = steps_with_skips(job, link, module=f"Contacts{quoted[0]}")
    steps[0]["status"] = f"QUEUED-{quoted[1]}"  # an unknown status is shown raw
    return steps


def _zuora_partial(job: str, *quoted: str) -> list[dict]:
    batches = [
        {
            "name": f"Invoices-{quoted[0]}",
            "status": "completed",
            "recordCount": 1,
            "fileId": FILE_IDS[0],
        },
        {"name": "Payments", "status": "aborted", "message": "refused for " + quoted[1]},
    ]
    return [{"id": job, "status": "completed", "name": f"q {quoted[2]}", "batches": batches}]


def _micro_failed_rows(job: str, *quoted: str) -> list[dict]:
    steps = steps_partial(job, polls_processing=0)
    steps[-1]["results"][2]["error"]["message"] = "bad header: " + " ".join(quoted)
    steps[-1]["status"] = "complete"
    return steps


def test_a_vendor_that_echoes_a_credential_never_gets_it_posted_or_stored(
    start_bot, tmp_path, fake_slack, zoho_sim, zuora_sim, micro_sim, crm_sim, monkeypatch
):
    monkeypatch.setattr(redaction, "_CHUNK", 7)  # secrets in result files cross chunk borders
    config = tmp_path / "syncwatch.toml"
    config.write_text(
        f'[syncs."{WS}/77"]\nuser_name = "reporting"\npassword = "{ECHO_PASSWORD}"\n\n'
        f'[zoho.eu-team]\nclient_id = "eu-team-client-id"\nclient_secret = "{OTHER_SECRET}"\n'
        'refresh_token = "eu-team-refresh-token"\ndc = "eu"\n'
    )
    env = bot_env(tmp_path, fake_slack, zoho_sim, zuora_sim, micro_sim, crm_sim)
    env["SYNCWATCH_CONFIG"] = str(config)
    settings = Settings.from_env(env)
    configured = settings.secrets()
    assert ECHO_PASSWORD in configured and OTHER_SECRET in configured
    zoho = (zoho_sim.client_id, zoho_sim.client_secret, zoho_sim.refresh_token)
    zuora = (zuora_sim.client_id, zuora_sim.client_secret)

    zoho_sim.add_import_job(WS, "11", _analytics_partial(*zoho, ZOHO_TOKEN, OTHER_SECRET))
    zoho_sim.add_datasource(
        WS,
        "77",
        name=f"Billing {ZOHO_TOKEN}",
        after_sync=[
            {
                "last_time": "later",
                "status": f"Failed: login {ECHO_PASSWORD} refused",
                "tables": ((f"t-{OTHER_SECRET}", f"Failed {ECHO_PASSWORD}"),),
            }
        ],
    )
    link = crm_sim.add_zip("r", sample_result_csv() + f"X,{ZOHO_TOKEN},{zoho[1]},,skipped,\n")
    crm_sim.add_job("61", _crm_with_skips("61", link, ZOHO_TOKEN, zoho[2]))
    zuora_sim.add_job(ZUORA_JOB, _zuora_partial(ZUORA_JOB, zuora[1], zuora[0], ZUORA_TOKEN))
    zuora_sim.add_file(FILE_IDS[0], b"a,b\n" + f"1,{ZUORA_TOKEN}\n".encode() * 3)
    micro_sim.add_job(
        "imp_1", _micro_failed_rows("imp_1", micro_sim.api_key, SIGNING_SECRET, "xoxb-testtok")
    )

    bot, slack = start_bot(env)
    for text in (
        f"watch za {WS}/11",
        f"watch zuora {ZUORA_JOB}",
        "watch micro imp_1",
        "watch crm 61",
        f"sync {WS}/77",
    ):
        slack.slash(text)
    wait_until(
        lambda: (
            len(bot.store.list_watches(statuses=("done",))) == 5
            and bot.store.outbox_backlog(bot.clock())[0] == 0
        ),
        timeout=30,
        what="every watch to finish",
    )
    start_bot.stop(bot)
    posted = json.dumps([c.params for c in fake_slack.calls])
    uploaded = b"\n".join(fake_slack.uploads.values())
    stored = b"".join(
        (tmp_path / name).read_bytes()
        for name in os.listdir(tmp_path)
        if name.startswith("syncwatch.db") and (tmp_path / name).is_file()
    )
    leaks = [
        (secret, where)
        for secret in [*configured, ZOHO_TOKEN, ZUORA_TOKEN]
        for where, found in (
            ("Slack", secret in posted),
            ("an upload", secret.encode() in uploaded),
            ("the database", secret.encode() in stored),
        )
        if found
    ]
    assert leaks == [], "; ".join(f"{s!r} reached {w}" for s, w in leaks)
    # ... and each was replaced where it stood
    assert posted.count("[redacted]") >= 10
    assert b"[redacted]" in stored
    files = {
        f[2]: fake_slack.uploads[f[0]]
        for m in fake_slack.messages("C1", include_replies=True)
        for f in m.files
    }
    # (the vendor builds file names from names already redacted, in its own safe characters)
    assert b"1,[redacted]\n" * 3 in files["Invoices-_redacted.csv"]
    assert b"X,[redacted],[redacted],,skipped" in files["Contacts_redacted_-bulkwrite.csv"]
    assert b"[redacted] [redacted]" in files["micro-import-imp_1.csv"]
    assert b"[redacted]" in files["import-summary-11.csv"] and b"[redacted]" in files["sync-77.csv"]
    assert not os.listdir(bot.spool_dir), "result files were left behind"
    live = bot.redactor.values() - set(configured)
    assert {ZOHO_TOKEN, ZUORA_TOKEN} <= live, "minted tokens are registered for redaction"
