"""Channel settings in the store, on both engines: saved and read back, routes applied where
every watch is made, quiet-hours rows held without blocking the thread."""

from __future__ import annotations

import pytest

from storage import (
    ChannelSettings,
    MentionPolicy,
    NewWatch,
    OutboxKind,
    QuietHours,
    Store,
    TransitionDraft,
)
from storage.store import DuplicateWatchError

NOW = 1_767_225_600.0
REF = "2480011000000498001/2480011000000512007"


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


def draft(channel: str = "C1", vendor: str = "zuora", connection: str = "default") -> NewWatch:
    return NewWatch(vendor, REF, connection, channel, "U1", 10.0, NOW + 86400)


def test_a_channel_without_settings_gets_todays_behaviour(store):
    got = store.channel_settings("C9")
    assert got == ChannelSettings.default("C9")
    assert got.mention == MentionPolicy.ALWAYS and got.is_default
    assert got.mentions_requester(failure=False)


def test_settings_are_saved_replaced_and_listed(store):
    first = ChannelSettings(
        "C1",
        mention=MentionPolicy.FAILURES,
        broadcast_failures=True,
        cc_users=("U7", "U8"),
        cc_groups=("S1",),
        routes=(("connection:eu", "C3"), ("vendor:zuora", "C2")),
        quiet=QuietHours("22:00", "07:00", "Europe/Berlin"),
        updated_by="U1",
        updated_at=NOW,
    )
    store.save_channel_settings(first)
    assert store.channel_settings("C1") == first
    second = ChannelSettings("C1", mention=MentionPolicy.NEVER, updated_by="U2", updated_at=NOW + 1)
    store.save_channel_settings(second)
    assert store.channel_settings("C1") == second
    store.save_channel_settings(ChannelSettings("C5", broadcast_failures=True, updated_at=NOW))
    assert [s.channel_id for s in store.settings_of_channels()] == ["C1", "C5"]
    assert [s.channel_id for s in store.settings_of_channels(["C5", "C7"])] == ["C5"]
    assert store.settings_of_channels([]) == []


def test_a_route_moves_the_new_watch_and_duplicates_are_found_there(store):
    store.save_channel_settings(ChannelSettings("C1", routes=(("vendor:zuora", "C2"),)))
    (watch,) = store.create_watches([draft()], NOW)
    assert watch.channel_id == "C2"
    with pytest.raises(DuplicateWatchError):  # same job again from C1: already in C2
        store.create_watches([draft()], NOW)
    (other,) = store.create_watches([draft(vendor="zoho-analytics")], NOW)
    assert other.channel_id == "C1"  # no route for that vendor


def test_a_connection_route_wins_over_the_vendor_route(store):
    routes = (("vendor:zuora", "C2"), ("connection:eu", "C3"))
    store.save_channel_settings(ChannelSettings("C1", routes=routes))
    (watch,) = store.create_watches([draft(connection="eu")], NOW)
    assert watch.channel_id == "C3"


def test_a_held_row_does_not_hold_back_the_rows_after_it(store):
    (watch,) = store.create_watches([draft()], NOW)
    store.parent_posted(watch.id, "C1", "1.0", 10**9, NOW)
    first = store.add_to_thread_once(watch.id, TransitionDraft(event="note", note="one"), [], NOW)
    assert first
    (held,) = [r for r in store.outbox_rows(watch.id) if r.kind == OutboxKind.REPLY]
    store.hold_outbox(held.id, NOW + 3600)
    store.add_to_thread_once(watch.id, TransitionDraft(event="errors", note="two"), [], NOW)
    due = store.claim_outbox(NOW, "me", 60)
    assert [r.id for r in due] != [] and held.id not in [r.id for r in due]
    store.release_outbox("me", watch.id)
    assert [r.id for r in store.held_rows(watch.id)] == [held.id]
    store.mark_rows_sent([held.id], NOW, "9.9")
    assert store.held_rows(watch.id) == []
    assert {r.status for r in store.outbox_rows(watch.id) if r.id == held.id} == {"sent"}


def test_held_rows_count_in_the_backlog_but_not_toward_its_age(store):
    (watch,) = store.create_watches([draft()], NOW)
    store.parent_posted(watch.id, "C1", "1.0", 10**9, NOW)
    store.add_to_thread_once(watch.id, TransitionDraft(event="note", note="one"), [], NOW)
    (row,) = [r for r in store.outbox_rows(watch.id) if r.kind == OutboxKind.REPLY]
    store.hold_outbox(row.id, NOW + 3600)
    assert store.outbox_backlog(NOW + 600) == (1, 0.0)
