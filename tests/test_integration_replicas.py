"""Two real `syncwatch run` processes on one database, one of them killed with SIGKILL in the
middle of the work: every watch still ends with one parent message, one terminal reply and
each of its files once, and the survivor takes the dead one's share over within its lease.
On PostgreSQL (replicas) and on one SQLite file (a rolling deploy on one host)."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from bot.simulators.zoho import steps_success
from bot.simulators.zuora import FILE_IDS, steps_two_batches
from storage import DONE, NewWatch, Store
from tests.conftest import bot_env
from tests.processes import clean_env, spawn_bot, wait_until

WS = "2480011000000498001"
NOW = time.time()
CHANNELS = [f"C{n}" for n in range(1, 9)]
LEASE_S = 10  # SYNCWATCH_REPLICA_LEASE_SECONDS: a third of the default, to keep the test short


def _seed(url: str, zoho_sim, zuora_sim, zoho_jobs: int, zuora_jobs: int) -> dict[str, str]:
    """Watches of two vendors over eight channels, as if people had asked for them; each
    job runs for a few polls, then succeeds with its result files. Returns watch → person."""
    drafts, people = [], []
    for n in range(zoho_jobs):
        job = str(2480011000000600000 + n)
        zoho_sim.add_import_job(WS, job, steps_success(10, polls_queued=0, polls_running=2 + n % 5))
        drafts.append(("zoho-analytics", f"{WS}/{job}", n))
    for n in range(zuora_jobs):
        job = f"2c92c0f96abc17de016abd62bd0c{n:04x}"
        zuora_sim.add_job(job, steps_two_batches(job))
        drafts.append(("zuora", job, zoho_jobs + n))
    zuora_sim.add_file(FILE_IDS[0], b"Invoice: Number\nINV-1\n")
    zuora_sim.add_file(FILE_IDS[1], b"Payment: Number\nP-1\n")
    store = Store(url)
    try:
        watches = store.create_watches(
            [
                NewWatch(vendor, ref, "default", CHANNELS[n % 8], f"U{n}", 1.0, NOW + 3600)
                for vendor, ref, n in drafts
            ],
            time.time(),
        )
        people = [w.requester_id for w in watches]
        return {w.id: person for w, person in zip(watches, people, strict=True)}
    finally:
        store.close()


def _done(url: str) -> int:
    store = Store(url)
    try:
        return store.count_by_status().get(DONE, 0)
    finally:
        store.close()


def _settled(url: str) -> bool:
    store = Store(url)
    try:
        return store.outbox_backlog(0)[0] == 0
    finally:
        store.close()


@pytest.mark.slow  # real processes, the real one-second tick, and a lease to run out
@pytest.mark.parametrize("engine", ["postgresql", "sqlite"])
def test_a_replica_killed_mid_run_loses_and_doubles_nothing(
    engine, request, tmp_path, fake_slack, zoho_sim, zuora_sim
):
    url = (
        request.getfixturevalue("pg_url").target
        if engine == "postgresql"
        else str(tmp_path / "syncwatch.db")
    )
    env = clean_env(
        bot_env(tmp_path, fake_slack, zoho_sim, zuora_sim)
        | {
            "SYNCWATCH_DB": url,
            "SYNCWATCH_SLACK_PACE": "off",  # the local Slack has no limits; the test is the lease
            "ZOHO_RATE_PER_MINUTE": "100000",
            "ZUORA_RATE_PER_MINUTE": "100000",
            "SYNCWATCH_REPLICA_LEASE_SECONDS": str(LEASE_S),
        }
    )
    people = _seed(url, zoho_sim, zuora_sim, zoho_jobs=160, zuora_jobs=40)
    doomed = spawn_bot(env, tmp_path)
    survivor = spawn_bot(env, tmp_path)
    try:
        wait_until(lambda: _done(url) >= 50, timeout=60, what="a quarter of the jobs done")
        doomed.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: _done(url) == 200, timeout=60, what="every job done")
        wait_until(lambda: _settled(url), timeout=60, what="every Slack message sent")
        took_over_in = time.monotonic() - killed_at
    finally:
        doomed.stop(signal.SIGKILL)
        code = survivor.stop(signal.SIGTERM)
    assert code == 0, survivor.output()[-2000:]
    assert took_over_in < LEASE_S + 15, f"took {took_over_in:.0f} s after the kill"

    parents: Counter[str] = Counter()
    for channel in CHANNELS:
        for message in fake_slack.messages(channel):
            payload = (message.metadata or {}).get("event_payload") or {}
            watch_id = payload.get("watch_id")
            parents[watch_id] += 1
            thread = fake_slack.thread(channel, message.ts)
            mentions = [m for m in thread if f"<@{people.get(watch_id)}>" in (m.text or "")]
            assert len(mentions) == 1, f"{watch_id}: {len(mentions)} terminal replies"
            names = Counter(f[2] for m in thread for f in m.files)
            assert all(n == 1 for n in names.values()), f"{watch_id}: files {names}"
            assert len(names) >= 1, f"{watch_id}: no result file"
    assert set(parents) == set(people) and set(parents.values()) == {1}
