"""The time-left estimate as the channel sees it (docs/architecture.md#eta): the real app
over HTTP against the vendor simulators, on a clock the test moves, so each poll happens at
a known time."""

from __future__ import annotations

import json
from typing import Any

from bot.simulators.zoho import sync_outcome_success
from tests.conftest import bot_env
from tests.fakes import FakeClock
from tests.test_integration import parents, wait_until
from tests.test_integration_sync import CONFIG, DS, WS

JOB = "imp_8QmZ2vK4tR"


def processing(processed: int, total: int = 5000) -> dict[str, Any]:
    return {
        "job_id": JOB,
        "status": "processing",
        "total": total,
        "processed": processed,
        "succeeded": processed,
        "failed": 0,
    }


def parent_shows(fake_slack) -> str:
    found = parents(fake_slack)
    return json.dumps(found[0].blocks, ensure_ascii=False) if found else ""


def polled(bot, times: int):
    def check() -> bool:
        watches = bot.store.list_watches(statuses=None)
        return bool(watches) and watches[0].polls >= times

    return check


def test_after_two_polls_the_parent_shows_the_time_left(
    start_bot, tmp_path, fake_slack, zoho_sim, micro_sim
):
    clock = FakeClock()  # stands still between the polls the test lets happen
    bot, slack = start_bot(
        bot_env(tmp_path, fake_slack, zoho_sim, micro_sim=micro_sim), clock=clock
    )
    micro_sim.add_job(JOB, [processing(1000), processing(1600), processing(2200)])
    slack.slash(f"watch micro {JOB}")
    wait_until(lambda: "1,000 of 5,000" in parent_shows(fake_slack), what="the first poll")
    assert "left" not in parent_shows(fake_slack)  # one point: no rate yet

    clock.advance(60)  # 600 rows a minute; 3,400 left: 5 min 40 s
    wait_until(lambda: "1,600 of 5,000" in parent_shows(fake_slack), what="the second poll")
    wait_until(lambda: "~6 min left" in parent_shows(fake_slack), what="the estimate")

    clock.advance(90)  # 1,200 rows in 150 s; 2,800 left: 5 min 50 s
    wait_until(lambda: "2,200 of 5,000" in parent_shows(fake_slack), what="the third poll")
    wait_until(lambda: "~6 min left" in parent_shows(fake_slack), what="the estimate")
    assert len(parents(fake_slack)) == 1  # the one parent message, edited


def test_a_sync_never_shows_one(start_bot, tmp_path, fake_slack, zoho_sim):
    clock = FakeClock()
    path = tmp_path / "syncwatch.toml"
    path.write_text(CONFIG)
    env = bot_env(tmp_path, fake_slack, zoho_sim) | {"SYNCWATCH_CONFIG": str(path)}
    bot, slack = start_bot(env, clock=clock)
    zoho_sim.add_datasource(WS, DS, after_sync=sync_outcome_success(polls_waiting=5))
    slack.slash(f"sync {WS}/{DS}")
    wait_until(polled(bot, 1), what="the trigger")
    for polls in (2, 3):
        clock.advance(60)
        wait_until(polled(bot, polls), what=f"poll {polls}")
    bot.notifier.wake()
    wait_until(lambda: "Running" in parent_shows(fake_slack), what="the parent")
    assert "left" not in parent_shows(fake_slack)
