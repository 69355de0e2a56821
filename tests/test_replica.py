"""This process as a replica: it registers, beats, frees only dead predecessors of its own
host, gives everything back when it stops, and spares files another live process just
downloaded."""

from __future__ import annotations

import os
import shutil
import time

from bot.replica import LEASE_SECONDS, Replica
from storage import Store
from tests.test_integration import parents, wait_until
from tests.test_store import NOW, draft, make


def test_joining_frees_a_dead_predecessor_of_this_host_only(store):
    (w,) = make(store)
    store.join("h:41:aa", "h", 41, NOW)
    assert store.claim_due(NOW, "h:41:aa", LEASE_SECONDS, 10)
    replica = Replica(store, clock=lambda: NOW + 1, host="h", pid=99, alive=lambda pid: False)
    assert replica.join() == 1
    assert [x.id for x in store.claim_due(NOW + 1, replica.id, LEASE_SECONDS, 10)] == [w.id]


def test_a_live_process_keeps_its_work_when_another_one_starts(store):
    make(store)
    store.join("h:41:aa", "h", 41, NOW)
    assert store.claim_due(NOW, "h:41:aa", LEASE_SECONDS, 10)
    replica = Replica(store, clock=lambda: NOW + 1, host="h", pid=99, alive=lambda pid: True)
    assert replica.join() == 0
    assert store.claim_due(NOW + 1, replica.id, LEASE_SECONDS, 10) == []


def test_a_predecessor_that_had_our_pid_is_dead(store):
    """Containers reuse pids across restarts: the old process with our pid is gone."""
    make(store)
    store.join("h:1:aa", "h", 1, NOW)
    store.claim_due(NOW, "h:1:aa", LEASE_SECONDS, 10)
    replica = Replica(store, clock=lambda: NOW + 1, host="h", pid=1, alive=lambda pid: True)
    assert replica.join() == 1


def test_a_beat_renews_and_leaving_gives_back(store):
    (w,) = make(store)
    now = [NOW]
    replica = Replica(store, clock=lambda: now[0], host="h", pid=5)
    replica.join()
    store.claim_due(NOW, replica.id, LEASE_SECONDS, 10)
    now[0] = NOW + 25
    replica.beat()
    assert store.claim_due(NOW + LEASE_SECONDS + 5, "other", LEASE_SECONDS, 10) == []
    replica.leave()
    assert [x.id for x in store.claim_due(NOW + 26, "other", LEASE_SECONDS, 10)] == [w.id]


def test_two_processes_on_one_database_post_each_watch_once(start_bot, fake_slack, tmp_path):
    """A rolling deploy: old and new process overlap on one SQLite file."""
    old, old_driver = start_bot()
    new, _ = start_bot()
    assert old.replica.id != new.replica.id
    for i in range(6):
        response, _ = old_driver.slash(f"watch za 2480011000000498001/{i}")
        assert response.status_code == 200
    wait_until(lambda: len(parents(fake_slack)) == 6, what="six parent messages")
    start_bot.stop(old)  # the old one leaves; the new one carries on alone
    replicas = new.store.replicas(since=0)
    assert [r["id"] for r in replicas] == [new.replica.id]
    assert len(parents(fake_slack)) == 6  # each watch has exactly one parent


def test_start_up_sweep_spares_a_file_another_process_just_downloaded(running, tmp_path):
    bot, _ = running
    fresh = os.path.join(bot.spool_dir, "result-fresh")
    old = os.path.join(bot.spool_dir, "result-old")
    for path in (fresh, old):
        with open(path, "wb") as fh:
            fh.write(b"x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    bot._sweep_spool()
    assert os.path.exists(fresh) and not os.path.exists(old)


def test_two_stores_see_one_replica_list(tmp_path):
    path = str(tmp_path / "r.db")
    a, b = Store(path), Store(path)
    try:
        a.join("one", "h", 1, NOW)
        assert [r["id"] for r in b.replicas(since=0)] == ["one"]
        make(a, draft(ref="1/9"))
    finally:
        a.close()
        b.close()


def test_a_file_a_dead_replica_downloaded_is_uploaded_by_another_once(
    pg_url, start_bot, tmp_path, fake_slack, zoho_sim, zuora_sim
):
    """PostgreSQL replicas share no disk: the files wait in the database."""
    from bot import grammar
    from bot.runtime import BotProcess
    from bot.service import Requester
    from bot.simulators.zuora import FILE_IDS, steps_two_batches
    from storage import DONE
    from tests.conftest import bot_env, fast_settings
    from tests.test_integration import replies
    from tests.test_integration_zuora import INVOICES, JOB, PAYMENTS

    env = bot_env(tmp_path, fake_slack, zoho_sim, zuora_sim) | {"SYNCWATCH_DB": pg_url.target}
    zuora_sim.add_job(JOB, steps_two_batches(JOB))
    zuora_sim.add_file(FILE_IDS[0], INVOICES)
    zuora_sim.add_file(FILE_IDS[1], PAYMENTS)
    doomed = BotProcess(fast_settings(env), pace_slack=False)  # polls; never delivers
    try:
        doomed.service.handle(grammar.parse(f"watch zuora {JOB}"), Requester("U3", "C1"))
        (watch,) = doomed.store.list_watches()

        def finished() -> bool:
            doomed.poller.run_once()
            current = doomed.store.get_watch(watch.id)
            return current is not None and current.status == DONE

        wait_until(finished, what="the job done, its files downloaded")
    finally:  # it dies: no clean shutdown, and its disk goes with it
        doomed.vendors.close()
        doomed.store.close()
        shutil.rmtree(doomed.spool_dir, ignore_errors=True)

    survivor, _ = start_bot(env)
    wait_until(
        lambda: len(fake_slack.calls_for("files.completeUploadExternal")) == 2, what="two files"
    )
    shared = {f[2]: fake_slack.uploads[f[0]] for m in replies(fake_slack) for f in m.files}
    assert shared == {"Invoices.csv": INVOICES, "Payments.csv": PAYMENTS}
    wait_until(
        lambda: survivor.store.engine.row("SELECT COUNT(*) FROM result_files")[0] == 0,
        what="stored files deleted once Slack has them",
    )
    assert len(fake_slack.calls_for("files.completeUploadExternal")) == 2  # each once


def test_metrics_name_the_replica(running):
    import httpx

    bot, slack = running
    body = httpx.get(f"{slack.base_url}/metrics", timeout=5).text
    assert f'syncwatch_replica_info{{replica="{bot.replica.id}"}} 1.0' in body


def test_a_configured_lease_is_what_the_beat_renews(store):
    (w,) = make(store)
    now = [NOW]
    replica = Replica(store, clock=lambda: now[0], host="h", pid=7, lease_seconds=12)
    replica.join()
    assert replica.beat_seconds == 4  # a third of the lease
    assert store.claim_due(NOW, replica.id, 12, 10)
    now[0] = NOW + 10
    replica.beat()  # renewed to NOW + 22: another replica can't take it before then
    assert store.claim_due(NOW + 21, "other", 12, 10) == []
    assert [x.id for x in store.claim_due(NOW + 23, "other", 12, 10)] == [w.id]
