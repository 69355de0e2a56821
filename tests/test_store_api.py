"""The store's part of the watch API, on SQLite and PostgreSQL alike: tokens kept as
hashes, idempotency keys, the token a watch was started by."""

from __future__ import annotations

import pytest

from storage import ApiToken, NewWatch, TokenNameTaken, token_actor


def _token(name: str = "etl", n: str = "1") -> ApiToken:
    return ApiToken(name, n * 64, f"h{n}" * 32, ("C0DATA", "C0OPS"), "U1", 5.0)


def test_tokens_are_found_by_hash_and_revoked_whole(any_store):
    any_store.add_token(_token())
    with pytest.raises(TokenNameTaken):
        any_store.add_token(_token(n="2"))
    found = any_store.token_by_digest("1" * 64)
    assert found == _token()
    assert any_store.token_by_hook("1" * 64) is None
    assert any_store.token_by_hook("h1" * 32) == found
    any_store.idempotency_reserve("etl", "k", "d", 10.0, 100)
    assert any_store.revoke_token("etl") is True
    assert any_store.token_by_digest("1" * 64) is None
    assert any_store.idempotency_record("etl", "k") is None
    assert any_store.revoke_token("etl") is False


def test_an_idempotency_key_is_reserved_once_then_replayed(any_store):
    assert any_store.idempotency_reserve("etl", "k1", "body", 10.0, 100) is None
    pending = any_store.idempotency_reserve("etl", "k1", "body", 11.0, 100)
    assert (pending.body_digest, pending.watch_id) == ("body", None)
    any_store.idempotency_settle("etl", "k1", "w234", 201)
    done = any_store.idempotency_reserve("etl", "k1", "other", 12.0, 100)
    assert (done.body_digest, done.watch_id, done.status) == ("body", "w234", 201)
    assert any_store.idempotency_reserve("other-token", "k1", "body", 12.0, 100) is None
    # A key older than the keep time is forgotten; a refused request frees its key.
    assert any_store.idempotency_reserve("etl", "k1", "new", 200.0, 100) is None
    any_store.idempotency_release("etl", "k1")
    assert any_store.idempotency_record("etl", "k1") is None


def test_a_watch_remembers_its_token_and_callbacks_find_it_by_channel(any_store):
    draft = NewWatch(
        vendor="zuora",
        ref="ab" * 16,
        connection="default",
        channel_id="C0OPS",
        requester_id=token_actor("etl"),
        interval_s=30,
        deadline=1e10,
        token_name="etl",
        requested_by="airflow nightly",
    )
    (watch,) = any_store.create_watches([draft], 1.0)
    assert (watch.token_name, watch.requested_by) == ("etl", "airflow nightly")
    assert any_store.find_active_in("zuora", "ab" * 16, ["C0DATA", "C0OPS"]) == [watch]
    assert any_store.find_active_in("zuora", "ab" * 16, ["C0DATA"]) == []
    assert any_store.result_file_names(watch.id) == []
