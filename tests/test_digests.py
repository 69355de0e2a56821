"""The optional digest of quiet scheduled runs (docs/architecture.md#alert-digest): one
message per channel at the digest's local time, made once across replicas and restarts, and
delivered exactly once."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import pytest

from bot import grammar
from bot.blocks import render_digest
from bot.config import Settings
from bot.digests import digest_slot, make_due_digests
from bot.notifier import METADATA_EVENT
from bot.service import Requester, Service
from bot.vendors import State
from storage import NewWatch, Store
from tests.test_alerts import DAY, START, Harness
from tests.test_store_alerts import end_run, start_run

REF = "2480011000000498001/2480011000000630011"


def local(tz: str, *args: int) -> float:
    return dt.datetime(*args, tzinfo=zoneinfo.ZoneInfo(tz)).timestamp()


@pytest.mark.parametrize(
    "cadence, tz, now, slot",
    [
        # before 09:00 local: yesterday's; from 09:00: today's (Berlin is UTC+1 in January)
        ("daily", "Europe/Berlin", ("Europe/Berlin", 2026, 1, 6, 8, 59), (2026, 1, 5, 9)),
        ("daily", "Europe/Berlin", ("Europe/Berlin", 2026, 1, 6, 9, 0), (2026, 1, 6, 9)),
        ("daily", "America/New_York", ("UTC", 2026, 1, 6, 13, 0), (2026, 1, 5, 9)),
        # weekly: Mondays (2026-01-05 is a Monday)
        ("weekly", "UTC", ("UTC", 2026, 1, 8, 12, 0), (2026, 1, 5, 9)),
        ("weekly", "UTC", ("UTC", 2026, 1, 5, 8, 0), (2025, 12, 29, 9)),
        # across the spring DST change, 09:00 stays 09:00 local
        ("daily", "Europe/Berlin", ("UTC", 2026, 3, 29, 7, 30), (2026, 3, 29, 9)),
    ],
)
def test_the_digest_goes_out_at_nine_local_time(cadence, tz, now, slot):
    assert digest_slot(cadence, tz, local(now[0], *now[1:])) == local(tz, *slot)


def draft(channel: str = "C1") -> NewWatch:
    return NewWatch("zoho-analytics-sync", REF, "default", channel, "U1", 0, 0)


def digest_posts(h: Harness) -> list[str]:
    """Top-level messages in C1 that are digests, as text and blocks."""
    return [
        m.text + json.dumps(m.blocks)
        for m in h.fake.messages("C1")
        if (m.metadata or {}).get("event_payload", {}).get("digest")
    ]


def nine_am(day: float) -> float:
    """09:00 UTC on the day of `day` (a run's 06:30 due time)."""
    return day - 6.5 * 3600 + 9 * 3600


@pytest.fixture
def slack(store, fake_slack, clock):
    harness = Harness(store, fake_slack, clock)
    yield harness
    harness.close()


def test_a_digest_sums_up_the_quiet_runs_since_the_last_one(slack):
    s = slack.schedule("smart")
    slack.store.set_digest(s, "daily", START)
    slack.run(s, "ok")
    slack.clock.now = nine_am(START)
    assert slack.runner.digest_tick() == 1
    slack.notifier.deliver_due()
    (first,) = digest_posts(slack)
    assert f"`{s}` Zoho Analytics" in first and "1 run, succeeded" in first
    # No digest on the next days (nobody asked): the next one covers all of them.
    slack.run(s, "ok", "fail", "fail", "ok")  # ok quiet, fail alerts, fail quiet, recovery
    slack.clock.now = nine_am(START + 4 * DAY)
    slack.runner.digest_tick()
    slack.notifier.deliver_due()
    assert len(digest_posts(slack)) == 2
    second = digest_posts(slack)[1]
    assert "2 runs, 1 ok, 1 failed" in second and "Daily digest of quiet scheduled runs" in second
    # Nothing quiet since: the next slot posts nothing.
    slack.clock.now = nine_am(START + 5 * DAY)
    assert slack.runner.digest_tick() == 0
    slack.notifier.deliver_due()
    assert len(digest_posts(slack)) == 2


def test_one_message_per_channel_for_its_schedules(slack):
    first = slack.schedule("failures")
    second = slack.store.create_schedule(
        draft(), "0 5 * * *", "UTC", START, START, alert_policy="failures", digest="daily"
    ).id
    slack.store.set_digest(first, "daily", START)
    slack.run(first, "ok", "ok")
    slack.run(second, "ok")
    slack.clock.now = nine_am(START + 2 * DAY)
    slack.runner.digest_tick()
    slack.notifier.deliver_due()
    (post,) = digest_posts(slack)
    assert f"`{first}`" in post and "2 runs, all succeeded" in post
    assert f"`{second}`" in post and "1 run, succeeded" in post


def test_a_digest_is_made_and_posted_once_across_replicas_and_restarts(tmp_path, fake_slack, clock):
    path = str(tmp_path / "syncwatch.db")
    one, two = Store(path), Store(path)
    a, b = Harness(one, fake_slack, clock), Harness(two, fake_slack, clock)
    try:
        s = a.schedule("failures")
        one.set_digest(s, "daily", START)
        a.run(s, "ok")
        clock.now = nine_am(START)
        assert a.runner.digest_tick() + b.runner.digest_tick() == 1  # one replica made it
        # The first replica's post went out but it died before recording it: still in flight.
        (digest,) = one.claim_digests(clock.now, a.notifier.owner, 60)
        one.digest_in_flight(digest.key, clock.now)
        a.notifier.client.chat_postMessage(
            channel="C1",
            text=render_digest(digest).text,
            metadata={"event_type": METADATA_EVENT, "event_payload": {"digest": digest.key}},
        )
        a.close()
        one.close()
        clock.advance(120)  # its claim lapses; another replica (or a restart) takes over
        three = Store(path)
        c = Harness(three, fake_slack, clock)
        try:
            assert c.runner.digest_tick() == 0
            c.notifier.deliver_due()
            b.notifier.deliver_due()
            assert len(digest_posts(c)) == 1  # looked up by its metadata, not posted again
            assert three.digests("C1")[-1].status == "sent"
        finally:
            c.close()
            three.close()
    finally:
        b.close()
        two.close()


def test_digests_on_both_engines(any_store):
    s = any_store.create_schedule(
        draft(), "30 6 * * *", "UTC", START, START, alert_policy="failures", digest="weekly"
    )
    assert any_store.get_schedule(s.id).digest == "weekly"
    run = start_run(any_store, s.id, START)
    end_run(any_store, run, State.SUCCEEDED, START + 60)
    slot = digest_slot("weekly", "UTC", START + DAY)
    made = any_store.make_digest("C1", "weekly", "UTC", slot, START + DAY)
    assert made is not None and made.status == "pending"
    assert [(line.ok, line.failed) for line in made.lines] == [(1, 0)]
    assert any_store.make_digest("C1", "weekly", "UTC", slot, START + DAY) is None
    assert make_due_digests(any_store, lambda: START + DAY) == 0  # this slot is made
    (claimed,) = any_store.claim_digests(START + DAY, "r1", 60)
    assert any_store.claim_digests(START + DAY, "r2", 60) == []  # claimed by r1
    any_store.digest_sent(claimed.key, "1.0001", START + DAY)
    assert any_store.claim_digests(START + DAY + 120, "r2", 60) == []
    assert any_store.set_digest(s.id, None, START + DAY)
    assert any_store.digest_groups() == []


def test_the_digest_is_set_and_changed_by_whoever_may_stop_the_schedule(store, clock):
    env = {
        "ZOHO_CLIENT_ID": "c",
        "ZOHO_CLIENT_SECRET": "client-secret",
        "ZOHO_REFRESH_TOKEN": "refresh-token",
        "ZOHO_ANALYTICS_ORG_ID": "1",
    }
    service = Service(store, Settings.from_env(env), clock=clock)
    alice = Requester("U1", "C1", "T1")
    reply = service.handle(
        grammar.parse(f"sync {REF} at 06:30 tz Europe/Berlin alert failures digest daily"), alice
    )
    assert "Digest: quiet runs summed up here every day at 09:00 (Europe/Berlin)" in reply.text
    (schedule,) = store.list_schedules()
    assert schedule.digest == "daily"
    listing = str(service.handle(grammar.ListRequest(), alice).blocks)
    assert "summed up here every day at 09:00 (Europe/Berlin)" in listing
    bob = Requester("U2", "C1", "T1")
    refused = service.handle(grammar.parse(f"schedule {schedule.id} digest off"), bob)
    assert "Only the person who started it" in refused.text
    weekly = service.handle(grammar.parse(f"schedule {schedule.id} digest weekly"), alice)
    assert "every Monday at 09:00" in weekly.text
    off = service.handle(grammar.parse(f"schedule {schedule.id} digest off"), alice)
    assert "no longer has a digest" in off.text
    assert store.get_schedule(schedule.id).digest is None
    digests = [e.detail for e in reversed(store.audit_entries()) if e.action == "schedule.digest"]
    assert digests == [{"cadence": "weekly"}, {"cadence": "off"}]  # bob's refusal is not there
