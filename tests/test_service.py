"""Service use cases: what the person who typed the command is told, and what is stored."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot import grammar
from bot.config import Allowlist, Settings, SyncTarget
from bot.service import Requester, Service
from bot.vendors import JobSnapshot, State
from storage import PollResult

ZOHO = {
    "ZOHO_CLIENT_ID": "test-client",
    "ZOHO_CLIENT_SECRET": "test-client-secret",
    "ZOHO_REFRESH_TOKEN": "test-refresh-token",
    "ZOHO_ANALYTICS_ORG_ID": "55522777",
    "ZOHO_ACCOUNTS_URL": "https://accounts.zoho.test",
    "ZOHO_ANALYTICS_API_URL": "https://analytics.zoho.test",
}
ALICE = Requester("U1", "C1", "T1")


@pytest.fixture
def service(store, clock) -> Service:
    woke = []
    svc = Service(store, Settings.from_env(ZOHO), clock=clock, on_change=lambda: woke.append(1))
    svc.woke = woke  # type: ignore[attr-defined]
    return svc


def watch(service: Service, text: str, who: Requester = ALICE):
    return service.handle(grammar.parse(text), who)


def test_watch_creates_one_row_per_ref_and_wakes_the_notifier(service, store):
    reply = watch(service, "watch za 1/2 1/3 every 45s")
    rows = store.list_watches()
    assert sorted(w.ref for w in rows) == ["1/2", "1/3"]
    assert all(w.interval_s == 45 and w.requester_id == "U1" for w in rows)
    assert "Started 2 watches" in reply.text and rows[0].id in reply.text
    assert service.woke


def test_every_below_the_vendor_floor_is_clamped(service, store):
    watch(service, "watch za 1/2 every 1s")
    assert store.list_watches()[0].interval_s == 10


def test_watch_deadline_follows_the_configured_timeout(store, clock):
    svc = Service(store, Settings.from_env({**ZOHO, "SYNCWATCH_WATCH_TIMEOUT": "600"}), clock=clock)
    svc.handle(grammar.parse("watch za 1/2"), ALICE)
    assert store.list_watches()[0].deadline == clock.now + 600


def test_unknown_connection_is_refused_and_nothing_stored(service, store):
    reply = watch(service, "watch za 1/2 as eu-team")
    assert "no Zoho connection named `eu-team`" in reply.text
    assert "`default`" in reply.text
    assert store.list_watches(statuses=None) == []


def test_unconfigured_vendor_is_refused_and_nothing_stored(store, clock):
    svc = Service(store, Settings.from_env({}), clock=clock)
    reply = svc.handle(grammar.parse("watch za 1/2"), ALICE)
    assert "isn't set up on this syncwatch" in reply.text
    assert store.list_watches(statuses=None) == []


def test_duplicate_in_the_same_channel_is_refused(service, store):
    watch(service, "watch za 1/2")
    reply = watch(service, "watch za 1/2 1/3")
    assert "already watching" in reply.text
    assert len(store.list_watches()) == 1  # the batch is all-or-none
    watch(service, "watch za 1/2", Requester("U1", "C2"))
    assert len(store.list_watches()) == 2


def test_stop_only_from_the_watch_channel_and_only_by_who_may(service, store):
    watch(service, "watch za 1/2")
    (w,) = store.list_watches()
    assert "no watch" in watch(service, f"stop {w.id}", Requester("U2", "C9")).text
    refused = watch(service, f"stop {w.id}", Requester("U2", "C1"))
    assert "Only the person who started it" in refused.text
    assert store.get_watch(w.id).status == "active"
    assert "Stopped watching" in watch(service, f"stop {w.id}", ALICE).text
    stopped = store.get_watch(w.id)
    assert stopped.status == "stopped" and stopped.stopped_by == "U1"
    assert "already stopped" in watch(service, f"stop {w.id}").text


def test_admins_and_allowlisted_users_may_stop_others_watches(store, clock):
    settings = replace(
        Settings.from_env(ZOHO),
        admins=frozenset({"U0ADMIN"}),
        sync_allow={"default": Allowlist(channels=frozenset({"C1"}))},
    )
    svc = Service(store, settings, clock=clock)
    svc.handle(grammar.parse("watch za 1/2 1/3"), ALICE)
    first, second = store.list_watches()
    assert (
        "Stopped" in svc.handle(grammar.parse(f"stop {first.id}"), Requester("U0ADMIN", "C1")).text
    )
    assert "Stopped" in svc.handle(grammar.parse(f"stop {second.id}"), Requester("U7", "C1")).text


def test_show_errors_posts_the_full_text_once(service, store, clock):
    watch(service, "watch za 1/2")
    (w,) = store.list_watches()
    store.claim_due(clock.now, "p", 60, 10)
    snap = JobSnapshot(State.FAILED, "1003", error_code="1003", error_message="row 1\nrow 2")
    assert store.apply_poll(
        w.id,
        "p",
        PollResult({"status": "done", "state": "failed", "snapshot": snap.to_json()}),
        clock.now,
    )
    assert service.show_errors(w.id, Requester("U2", "C1")) is None  # anyone in the channel
    assert "already in the thread" in service.show_errors(w.id, ALICE).text
    (entry,) = [t for t in store.transitions(w.id) if t.event == "errors"]
    assert entry.error_message == "row 1\nrow 2" and entry.actor == "U2"


def test_long_error_lists_are_attached_as_csv(service, store, clock):
    watch(service, "watch za 1/2")
    (w,) = store.list_watches()
    store.claim_due(clock.now, "p", 60, 10)
    long_text = "\n".join(f"=row {i}: bad value" for i in range(400))
    snap = JobSnapshot(State.PARTIAL, "1004", error_message=long_text)
    assert store.apply_poll(
        w.id,
        "p",
        PollResult({"status": "done", "state": "partial", "snapshot": snap.to_json()}),
        clock.now,
    )
    service.show_errors(w.id, ALICE)
    (upload,) = [r for r in store.outbox_rows(w.id) if r.kind == "upload"]
    import base64

    csv_text = base64.b64decode(upload.payload["content_b64"]).decode()
    assert upload.payload["filename"] == f"errors-{w.id}.csv"
    assert csv_text.splitlines()[1] == "1,'=row 0: bad value"  # formulas neutralized


def test_refresh_makes_the_watch_due_now(service, store, clock):
    watch(service, "watch za 1/2")
    (w,) = store.list_watches()
    store.claim_due(clock.now, "p", 1, 10)
    assert store.apply_poll(w.id, "p", PollResult({"next_poll_at": clock.now + 600}), clock.now)
    clock.advance(5)
    assert service.refresh(w.id, ALICE) is None
    assert store.get_watch(w.id).next_poll_at == clock.now
    assert "no watch" in service.refresh(w.id, Requester("U1", "C2")).text


def test_list_shows_only_this_channels_active_watches(service):
    watch(service, "watch za 1/2")
    watch(service, "watch za 1/3", Requester("U1", "C2"))
    listing = service.handle(grammar.ListRequest(), ALICE)
    body = str(listing.blocks)
    assert "1/2" in body and "1/3" not in body


def test_list_of_a_busy_channel_counts_all_and_reads_only_what_it_shows(store, clock):
    """`list` is answered in the ack: in a channel with 150 watches it shows the first 20,
    says there are 150, and reads only those 20 from the database."""
    settings = Settings.from_env({**ZOHO})
    service = Service(
        store, replace(settings, quota_per_channel=500, quota_per_user=500), clock=clock
    )
    for n in range(150):
        watch(service, f"watch za 1/{n + 10}")
    read: list[int] = []
    list_watches = store.list_watches

    def counting(**kw):
        found = list_watches(**kw)
        read.append(len(found))
        return found

    store.list_watches = counting  # type: ignore[method-assign]
    listing = service.handle(grammar.ListRequest(), ALICE)
    assert listing.text.startswith("150 active watches")
    assert "*Active watches in this channel (150)*" in str(listing.blocks)
    assert "…and 130 more" in str(listing.blocks)
    assert read == [20]


SYNC = "2480011000000498001/2480011000000630011"


def test_sync_creates_a_watch_that_triggers_on_its_first_poll(service, store):
    reply = watch(service, f"sync {SYNC}")
    (w,) = store.list_watches()
    assert (w.vendor, w.ref, w.trigger_pending) == ("zoho-analytics-sync", SYNC, 1)
    assert "Started a watch" in reply.text


def test_sync_refused_off_the_allowlist_and_nothing_stored(store, clock):
    settings = replace(
        Settings.from_env(ZOHO), sync_allow={"default": Allowlist(users=frozenset({"U9"}))}
    )
    svc = Service(store, settings, clock=clock)
    refused = svc.handle(grammar.parse(f"sync {SYNC}"), ALICE)
    assert "not on the sync allowlist" in refused.text
    assert store.list_watches(statuses=None) == []
    allowed = svc.handle(grammar.parse(f"sync {SYNC}"), Requester("U9", "C1"))
    assert "Started a watch" in allowed.text


def test_sync_of_a_datasource_tied_to_another_connection_is_refused(store, clock):
    target = SyncTarget("2480011000000498001", "2480011000000630011", "eu-team")
    settings = replace(Settings.from_env(ZOHO), syncs={SYNC: target})
    svc = Service(store, settings, clock=clock)
    reply = svc.handle(grammar.parse(f"sync {SYNC} as other"), ALICE)
    assert "set up for connection `eu-team`" in reply.text
    # without `as`, the datasource's own connection is used (here: not configured)
    implicit = svc.handle(grammar.parse(f"sync {SYNC}"), ALICE)
    assert "no Zoho connection named `eu-team`" in implicit.text
    assert store.list_watches(statuses=None) == []


def test_schedule_is_stored_with_its_next_run_listed_and_stoppable(store, clock):
    reloaded = []
    service = Service(
        store, Settings.from_env(ZOHO), clock=clock, on_schedules_changed=lambda: reloaded.append(1)
    )
    reply = watch(service, f"sync {SYNC} at 06:30 tz Europe/Berlin")
    (schedule,) = store.list_schedules()
    assert (schedule.cron, schedule.tz) == ("30 6 * * *", "Europe/Berlin")
    assert schedule.next_run_at > clock.now and schedule.id in reply.text
    assert store.list_watches(statuses=None) == []  # nothing runs until it is due
    listing = service.handle(grammar.ListRequest(), ALICE)
    assert schedule.id in str(listing.blocks) and "30 6 * * *" in str(listing.blocks)
    stopped = watch(service, f"stop {schedule.id}")
    assert "Stopped schedule" in stopped.text
    assert store.list_schedules() == [] and len(reloaded) == 2


def test_bad_schedule_says_what_is_wrong_and_stores_nothing(service, store):
    reply = watch(service, f"sync {SYNC} at 06:30 tz Mars/Olympus")
    assert "not a time zone" in reply.text
    assert store.list_schedules(statuses=None) == []


@pytest.mark.parametrize(
    "at, says",
    [
        ("*/5 9 * * *", "`*/5 9 * * *` runs as often as every 5 minutes"),
        ("0,30 * * * *", "runs as often as every 30 minutes"),
        ("* * * * *", "runs as often as every 1 minute"),
    ],
)
def test_a_schedule_more_frequent_than_the_floor_is_refused_saying_the_minimum(
    service, store, at, says
):
    reply = watch(service, f"sync {SYNC} at {at}")
    assert says in reply.text
    assert "at most once every 60 minutes" in reply.text
    assert "SYNCWATCH_MIN_SCHEDULE_MINUTES" in reply.text and "Nothing was scheduled" in reply.text
    assert store.list_schedules(statuses=None) == [] and store.list_watches(statuses=None) == []


def test_the_floor_follows_the_setting(store, clock):
    env = {**ZOHO, "SYNCWATCH_MIN_SCHEDULE_MINUTES": "15"}
    svc = Service(store, Settings.from_env(env), clock=clock)
    assert "Scheduled" in watch(svc, f"sync {SYNC} at */15 * * * *").text
    assert "every 10 minutes" in watch(svc, f"sync {SYNC} at */10 * * * *").text
    assert "at most once every 15 minutes" in watch(svc, f"sync {SYNC} at */10 * * * *").text
    assert "at least 15 minutes apart" in watch(svc, "help schedules").text
    assert len(store.list_schedules()) == 1


@pytest.mark.parametrize("at", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4 *"])
def test_a_cron_that_never_runs_is_refused_clearly(service, store, at):
    reply = watch(service, f"sync {SYNC} at {at}")
    assert f"`{at}` matches no date, so it would never run" in reply.text
    assert store.list_schedules(statuses=None) == []


def test_retry_sync_restarts_a_failed_sync_in_the_same_watch(service, store, clock):
    watch(service, f"sync {SYNC}")
    (w,) = store.list_watches()
    store.claim_due(clock.now, "p", 60, 10)
    failed = PollResult({"status": "done", "state": "failed", "trigger_pending": 0})
    assert store.apply_poll(w.id, "p", failed, clock.now)
    assert "can't be retried" not in str(service.retry_sync(w.id, ALICE))
    again = store.get_watch(w.id)
    assert (again.status, again.trigger_pending) == ("active", 1)
    assert any("run the sync again" in (t.note or "") for t in store.transitions(w.id))
    assert "can't be retried" in service.retry_sync(w.id, ALICE).text  # still running


def test_pasted_links_create_watches_for_each_vendor(service, store):
    reply = watch(
        service,
        "watch https://www.zohoapis.com/crm/bulk/v8/write/61 "
        "https://analyticsapi.zoho.com/restapi/v2/bulk/workspaces/1/importjobs/2",
    )
    assert "Started 2 watches" in reply.text
    assert sorted((w.vendor, w.ref) for w in store.list_watches()) == [
        ("zoho-analytics", "1/2"),
        ("zoho-crm", "61"),
    ]


def test_links_all_or_none_when_one_vendor_is_not_configured(service, store):
    reply = watch(
        service,
        "watch https://analyticsapi.zoho.com/restapi/v2/bulk/workspaces/1/importjobs/2 "
        "https://rest.zuora.com/v1/batch-query/jobs/" + "a" * 32,
    )
    assert "Zuora AQuA query isn't set up" in reply.text
    assert store.list_watches(statuses=None) == []


def test_quotas_refuse_clearly_and_start_nothing(store, clock):
    settings = replace(Settings.from_env(ZOHO), quota_per_channel=3, quota_per_user=2)
    svc = Service(store, settings, clock=clock)
    assert "Started 2" in svc.handle(grammar.parse("watch za 1/1 1/2"), ALICE).text
    mine = svc.handle(grammar.parse("watch za 1/3"), ALICE)
    assert "You already have 2 active watches; the limit is 2" in mine.text
    assert (
        "Started a watch" in svc.handle(grammar.parse("watch za 1/3"), Requester("U2", "C1")).text
    )
    full = svc.handle(grammar.parse("watch za 1/4"), Requester("U3", "C1"))
    assert "This channel already has 3 active watches" in full.text
    assert len(store.list_watches()) == 3


# -- alert policy (docs/architecture.md#alert-policy) --------------------------------------------


def test_a_quiet_schedule_says_what_it_posts_and_list_and_home_show_it(service, store):
    reply = watch(service, f"sync {SYNC} at 06:30 alert smart every 3")
    (schedule,) = store.list_schedules()
    assert (schedule.alert_policy, schedule.alert_every) == ("smart", 3)
    assert "posts the 1st failed run, then every 3 more in a row (the 4th, 7th, …)" in reply.text
    assert "a run that goes well posts nothing here" in reply.text
    listing = str(service.handle(grammar.ListRequest(), ALICE).blocks)
    assert "Alerts: posts the 1st failed run" in listing
    home = str(service.home_view("U1"))
    assert schedule.id in home and "Alerts: posts the 1st failed run" in home
    plain = watch(service, f"sync {SYNC} at 07:30")
    assert "Each run gets its own message here" in plain.text
    assert "Alerts: posts every run" in str(service.handle(grammar.ListRequest(), ALICE).blocks)


def test_the_owner_changes_a_schedules_alerts_and_others_may_not(store, clock):
    settings = replace(Settings.from_env(ZOHO), admins=frozenset({"U9"}))
    service = Service(store, settings, clock=clock)
    watch(service, f"sync {SYNC} at 06:30")
    (schedule,) = store.list_schedules()
    bob = Requester("U2", "C1", "T1")
    refused = watch(service, f"schedule {schedule.id} alert failures", bob)
    assert "Only the person who started it" in refused.text
    assert store.get_schedule(schedule.id).alert_policy == "every"
    changed = watch(service, f"schedule {schedule.id} alert failures")
    assert f"Schedule `{schedule.id}` now posts failed runs only" in changed.text
    assert store.get_schedule(schedule.id).alert_policy == "failures"
    again = watch(service, f"schedule {schedule.id} alert failed")
    assert "already posts failed runs only; nothing changed" in again.text
    admin = watch(service, f"schedule {schedule.id} alert smart", Requester("U9", "C1"))
    assert "now posts the 1st failed run, then every 5 more" in admin.text
    elsewhere = watch(service, f"schedule {schedule.id} alert every", Requester("U1", "C2"))
    assert f"no schedule `{schedule.id}` here" in elsewhere.text
    watch(service, f"stop {schedule.id}")
    stopped = watch(service, f"schedule {schedule.id} alert every")
    assert f"no schedule `{schedule.id}` here" in stopped.text
    assert store.get_schedule(schedule.id).alert_policy == "smart"
    # Each change is in the audit trail, with who made it; refusals are not.
    changes = [
        (e.actor, e.detail) for e in reversed(store.audit_entries()) if e.action == "schedule.alert"
    ]
    assert changes == [("U1", {"alert": "failures"}), ("U9", {"alert": "smart", "every": 5})]


def test_help_schedules_explains_the_alert_policies(service):
    text = watch(service, "help schedules").text
    assert "alert failures" in text and "alert smart every 3" in text
    assert "schedule s3xq alert" in text
