"""The real app over HTTP (waitress, Bolt, SQLite, APScheduler) against the local fakes."""

from __future__ import annotations

import json
import signal
import time

import httpx
import pytest

from bot.simulators.zoho import steps_failure, steps_partial, steps_success
from storage import Store
from tests.conftest import SlackDriver, bot_env, wait_for_ticks
from tests.processes import clean_env, outbox_settled, spawn_bot, wait_until

WS, JOB = "2480011000000498001", "2480011000000512007"


def responded(fake_slack, key: str) -> dict:
    return fake_slack.wait_for(f"respond/{key}")[0].params


def parents(fake_slack, channel: str = "C1"):
    return fake_slack.messages(channel)


def replies(fake_slack, channel: str = "C1"):
    found = parents(fake_slack, channel)
    assert len(found) <= 1, "more than one parent message"
    return fake_slack.thread(channel, found[0].ts) if found else []


def test_healthz_and_metrics(running):
    bot, slack = running
    assert httpx.get(f"{slack.base_url}/healthz").json()["ok"] is True
    metrics = httpx.get(f"{slack.base_url}/metrics").text
    assert 'syncwatch_watches{status="active"} 0.0' in metrics


def test_a_second_shutdown_is_harmless(start_bot):
    bot, slack = start_bot()
    start_bot.stop(bot)
    bot.shutdown()  # e.g. a signal during shutdown: the sockets are already closed
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{slack.base_url}/healthz")


def test_bad_signature_is_401_and_changes_nothing(running, fake_slack):
    bot, slack = running
    response = slack.post({"command": "/syncwatch", "text": "list"}, secret="wrong-secret")
    assert response.status_code == 401
    stale = slack.post({"command": "/syncwatch", "text": "list"}, ts=int(time.time()) - 301)
    assert stale.status_code == 401
    assert parents(fake_slack) == []


def test_help_is_answered_in_the_ack(running, fake_slack):
    _, slack = running
    response, _ = slack.slash("help")
    assert response.status_code == 200
    body = response.json()
    text = body["text"] + json.dumps(body.get("blocks", []))
    for word in ("watch", "sync", "list", "stop"):
        assert word in text
    assert parents(fake_slack) == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("watch nonsense 123", "Unknown vendor `nonsense`"),
        ("watch za 12/abc", "not a Zoho Analytics import job"),
        ("", "Tell me what to do"),
        ("watch za 1/2 token=xoxb-FAKE-98", "looks like it contains a password"),
    ],
)
def test_bad_input_gets_an_ephemeral_error_and_nothing_is_stored(
    running, fake_slack, text, expected
):
    bot, slack = running
    response, _ = slack.slash(text)
    assert response.status_code == 200
    assert expected in response.text
    assert "xoxb-FAKE-98" not in response.text
    assert bot.store.list_watches(statuses=None) == []
    assert [c.method for c in fake_slack.calls if c.method.startswith("chat.")] == []


def test_watch_end_to_end_posts_parent_edits_it_and_threads_every_change(
    running, fake_slack, zoho_sim
):
    bot, slack = running
    zoho_sim.add_import_job(WS, JOB, steps_success(total_rows=1200))
    response, key = slack.slash(f"watch za {WS}/{JOB}", user="U42")
    assert response.status_code == 200
    confirmation = responded(fake_slack, key)
    assert confirmation["response_type"] == "ephemeral"
    assert "Started a watch" in confirmation["text"]

    wait_until(
        lambda: len(fake_slack.calls_for("files.completeUploadExternal")) == 1,
        what="the result file",
    )
    (parent,) = parents(fake_slack)
    assert parent.thread_ts is None
    assert JOB in parent.text + json.dumps(parent.blocks)
    assert "Succeeded" in parent.text
    assert parent.edits >= 2
    updates = fake_slack.calls_for("chat.update")
    assert all(u.params["ts"] == parent.ts and u.params["parse"] == "none" for u in updates)

    texts = [m.text for m in replies(fake_slack)]
    assert "queued" in texts[0] and "running" in texts[1]
    assert texts[2].startswith(":white_check_mark: <@U42> Job succeeded")
    assert sum("<@U42>" in t for t in texts) == 1  # only the terminal reply mentions
    (file_id, title, filename) = replies(fake_slack)[3].files[0]
    assert filename == f"import-summary-{JOB}.csv"
    csv_text = fake_slack.uploads[file_id].decode()
    assert "totalRowCount,1200" in csv_text and "successRowCount,1200" in csv_text

    polls = [r for r in zoho_sim.requests if "/importjobs/" in r[1]]
    assert polls and all(
        r[2]["authorization"].startswith("Zoho-oauthtoken ")
        and r[2]["zanalytics-orgid"] == zoho_sim.org_id
        for r in polls
    )


def test_failed_job_quotes_the_vendor_error_and_mentions_the_requester(
    running, fake_slack, zoho_sim
):
    _, slack = running
    zoho_sim.add_import_job(WS, JOB, steps_failure(error_text="Row 17: <!channel> 'twelve'"))
    slack.slash(f"watch zoho-analytics {WS}/{JOB}")
    wait_until(
        lambda: any(":x:" in m.text for m in replies(fake_slack) if m.text),
        what="the failure reply",
    )
    failure = next(m for m in replies(fake_slack) if ":x:" in m.text)
    body = json.dumps(failure.blocks)
    assert "<@U1>" in failure.text
    assert "Row 17" in body and "&lt;!channel&gt;" in body and "<!channel>" not in body
    (parent,) = parents(fake_slack)
    assert "Failed" in parent.text
    assert "&lt;!channel&gt;" in json.dumps(parent.blocks)


def test_partial_import_is_reported_as_partial(running, fake_slack, zoho_sim):
    _, slack = running
    zoho_sim.add_import_job(WS, JOB, steps_partial(total_rows=1200, rejected=13))
    slack.slash(f"watch za {WS}/{JOB}")
    wait_until(
        lambda: "Partially" in parents(fake_slack)[0].text if parents(fake_slack) else 0,
        what="partial parent",
    )
    wait_until(
        lambda: any("completed with problems" in (m.text or "") for m in replies(fake_slack)),
        what="partial reply",
    )
    (parent,) = parents(fake_slack)
    assert "1,187 of 1,200" in json.dumps(parent.blocks)


def test_duplicate_watch_links_the_existing_message(running, fake_slack, zoho_sim):
    bot, slack = running
    zoho_sim.add_import_job(WS, JOB, [{"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"}])
    slack.slash(f"watch za {WS}/{JOB}")
    wait_until(lambda: parents(fake_slack), what="the parent")
    _, key = slack.slash(f"watch za {WS}/{JOB}")
    answer = responded(fake_slack, key)["text"]
    assert "already watching" in answer
    assert f"https://slack.com/archives/C1/p{parents(fake_slack)[0].ts.replace('.', '')}" in answer
    assert len(bot.store.list_watches(statuses=None)) == 1


def test_bot_not_in_channel_says_invite_and_stores_nothing(running, fake_slack, zoho_sim):
    bot, slack = running
    fake_slack.set_channel("C9", is_member=False)
    _, key = slack.slash(f"watch za {WS}/{JOB}", channel="C9")
    answer = responded(fake_slack, key)
    assert "/invite @syncwatch" in answer["text"]
    assert answer["response_type"] == "ephemeral"
    assert bot.store.list_watches(statuses=None) == []
    assert fake_slack.calls_for("chat.postMessage") == []


def test_stop_button_stops_polling_and_says_so_in_the_thread(running, fake_slack, zoho_sim):
    bot, slack = running
    zoho_sim.add_import_job(WS, JOB, [{"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"}])
    slack.slash(f"watch za {WS}/{JOB}", user="U1")
    wait_until(lambda: parents(fake_slack) and replies(fake_slack), what="first reply")
    (watch,) = bot.store.list_watches()
    (parent,) = parents(fake_slack)
    stop = next(
        e
        for b in parent.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "watch.stop"
    )
    assert stop["value"] == watch.id
    # someone else may not stop it: told privately, nothing changes
    assert slack.click("watch.stop", watch.id, parent.ts, user="U7", key="other").status_code == 200
    refusal = fake_slack.wait_for("respond/other")[0].params
    assert "Only the person who started it" in refusal["text"]
    assert refusal["response_type"] == "ephemeral" and refusal["replace_original"] is False
    assert bot.store.get_watch(watch.id).status == "active"
    # the requester may; a double click does one thing
    assert slack.click("watch.stop", watch.id, parent.ts, user="U1").status_code == 200
    assert slack.click("watch.stop", watch.id, parent.ts, user="U1", key="again").status_code == 200
    wait_until(
        lambda: any("Stopped watching" in (m.text or "") for m in replies(fake_slack)),
        what="stop reply",
    )
    wait_until(lambda: "stopped" in parents(fake_slack)[0].text, what="parent shows stopped")
    assert "<@U1>" in json.dumps(parents(fake_slack)[0].blocks)
    fake_slack.wait_for("respond/again")
    assert sum("Stopped watching" in (m.text or "") for m in replies(fake_slack)) == 1
    bot.poller.drain()  # a poll claimed just before the stop may still be under way
    polls_at_stop = zoho_sim.polls(WS, JOB)
    wait_for_ticks(bot, 3)  # a stopped watch must not be polled again
    assert zoho_sim.polls(WS, JOB) == polls_at_stop
    assert bot.store.get_watch(watch.id).status == "stopped"


def test_stop_command_and_list(running, fake_slack, zoho_sim):
    bot, slack = running
    zoho_sim.add_import_job(WS, JOB, [{"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"}])
    slack.slash(f"watch za {WS}/{JOB}")
    wait_until(lambda: bot.store.list_watches(), what="watch")
    (watch,) = bot.store.list_watches()
    listing, _ = slack.slash("list")
    assert watch.id in listing.text and JOB in listing.text
    stopped, _ = slack.slash(f"stop {watch.id}")
    assert "Stopped watching" in stopped.text
    again, _ = slack.slash(f"stop {watch.id}")
    assert "already stopped" in again.text
    other, _ = slack.slash(f"stop {watch.id}", channel="C2")
    assert "no watch" in other.text


@pytest.mark.slow  # two real `syncwatch run` processes, on the real one-second tick
def test_watch_survives_a_kill_and_posts_exactly_one_terminal_reply(tmp_path, fake_slack, zoho_sim):
    """kill -9 mid-watch, start a new process on the same database: nothing lost, nothing
    doubled."""
    zoho_sim.add_import_job(
        WS,
        JOB,
        [{"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"}] * 3
        + steps_success(total_rows=50, polls_queued=0, polls_running=0),
    )
    env = clean_env(bot_env(tmp_path, fake_slack, zoho_sim))
    first = spawn_bot(env, tmp_path)
    try:
        slack = SlackDriver(first.url, fake_slack)
        slack.slash(f"watch za {WS}/{JOB}", user="U5")
        wait_until(
            lambda: parents(fake_slack) and len(replies(fake_slack)) >= 1, what="first reply"
        )
    finally:
        first.stop(signal.SIGKILL)
    assert not any("<@U5>" in (m.text or "") for m in replies(fake_slack))

    second = spawn_bot(env, tmp_path)
    try:
        wait_until(
            lambda: fake_slack.calls_for("files.completeUploadExternal"),
            timeout=20,
            what="terminal reply after restart",
        )
        # nothing left to send: a double would have to come from the outbox
        wait_until(lambda: outbox_settled(tmp_path / "syncwatch.db"), what="an empty outbox")
    finally:
        second.stop(signal.SIGTERM)
    texts = [m.text or "" for m in replies(fake_slack)]
    assert len(parents(fake_slack)) == 1
    assert sum("<@U5>" in t for t in texts) == 1
    assert sum("succeeded" in t for t in texts) == 1
    assert len(fake_slack.calls_for("files.completeUploadExternal")) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_answers_the_acked_command_then_exits_0(tmp_path, fake_slack, zoho_sim, sig):
    """A deploy stops the bot while a command is acked but not yet answered (its membership
    check is still waiting on Slack): the person still gets the answer, the watch is kept,
    and the process exits 0 with no traceback, well within 10 s."""
    zoho_sim.add_import_job(WS, JOB, steps_success(10, polls_queued=5, polls_running=5))
    bot = spawn_bot(clean_env(bot_env(tmp_path, fake_slack, zoho_sim)), tmp_path)
    try:
        fake_slack.hang_after_next("conversations.info", 1.5)
        response, key = SlackDriver(bot.url, fake_slack).slash(f"watch za {WS}/{JOB}", user="U5")
        assert response.status_code == 200  # acked: the answer comes after the ack
        fake_slack.wait_for("conversations.info")  # the answer is being worked on now
        started = time.monotonic()
        code = bot.stop(sig, timeout=15)
        took = time.monotonic() - started
    finally:
        bot.stop()
    log = bot.output()
    assert code == 0, log[-2000:]
    assert took < 10, f"shutdown took {took:.1f} s"
    assert "Traceback" not in log and "shut down cleanly" in log, log[-2000:]
    answer = fake_slack.calls_for(f"respond/{key}")
    assert len(answer) == 1 and "Started a watch" in json.dumps(answer[0].params), answer
    store = Store(str(tmp_path / "syncwatch.db"))
    try:
        watches = store.list_watches(statuses=None, limit=10)
        assert [(w.ref, w.lease_owner) for w in watches] == [(f"{WS}/{JOB}", None)]
    finally:
        store.close()
