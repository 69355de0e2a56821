"""No configured secret ever reaches a log line, a Slack call, the database or the spool."""

from __future__ import annotations

import json
import logging
import os

from bot.config import Settings
from bot.simulators.micro import steps_partial
from bot.simulators.zoho import steps_failure, sync_outcome_success
from bot.simulators.zoho_crm import sample_result_csv, steps_with_skips
from bot.simulators.zuora import FILE_IDS, steps_two_batches
from tests.conftest import bot_env
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
