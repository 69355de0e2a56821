"""Store.problem(): the database file deleted, replaced or read-only under a running store,
and a database that can't be used at start (docs/operations.md#the-database-goes-away)."""

from __future__ import annotations

import os
import threading

import pytest

import storage.db
from storage import DatabaseUnavailable, PollResult, Store, check_database
from tests.dbfaults import ReadOnlyDatabase
from tests.test_store import NOW, draft, make


def _permissions_apply() -> bool:
    """Does a read-only file stop this process? (Not for root, nor anyone with
    CAP_DAC_OVERRIDE.)"""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        probe = os.path.join(scratch, "probe")
        with open(probe, "w"):
            pass
        os.chmod(probe, 0o444)
        return not os.access(probe, os.W_OK)


IGNORES_PERMISSIONS = not _permissions_apply()


@pytest.fixture(autouse=True)
def no_caching(monkeypatch):
    """Look at the file on every call (the store trusts a look for a second)."""
    monkeypatch.setattr(storage.db, "FILE_CHECK_S", 0.0)
    monkeypatch.setattr(storage.db, "PROBE_EVERY_S", 0.0)


def in_another_thread(work):
    """Run `work` on a new thread (a connection the store opens after start); its result
    or exception."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(work())
        except Exception as err:
            out.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    return out[0]


def test_a_healthy_store_has_no_problem(store):
    assert store.problem() is None
    make(store)
    assert store.problem() is None


def test_a_deleted_file_is_a_problem_and_no_write_or_new_connection_recreates_it(tmp_path):
    path = tmp_path / "syncwatch.db"
    store = Store(str(path))
    try:
        make(store)
        os.remove(path)
        assert store.problem() == "the database file was deleted or moved"
        # Without the check these would land in the unlinked file and be lost.
        with pytest.raises(DatabaseUnavailable):
            make(store, draft(ref="1/2"))
        result = in_another_thread(lambda: store.count_active())
        assert isinstance(result, DatabaseUnavailable)  # not a fresh, empty database
        assert not path.exists()
    finally:
        store.close()


def test_a_file_moved_away_and_back_is_the_same_database_again(tmp_path):
    path = tmp_path / "syncwatch.db"
    store = Store(str(path))
    try:
        (watch,) = make(store)
        os.rename(path, tmp_path / "elsewhere.db")
        assert store.problem() == "the database file was deleted or moved"
        os.rename(tmp_path / "elsewhere.db", path)
        assert store.problem() is None
        make(store, draft(ref="1/2"))
        assert {w.ref for w in store.list_watches()} == {watch.ref, "1/2"}
    finally:
        store.close()


def test_another_file_put_in_place_is_not_adopted(tmp_path):
    path = tmp_path / "syncwatch.db"
    store = Store(str(path))
    try:
        make(store)
        os.remove(path)
        Store(str(path)).close()  # a new, empty database where ours was
        assert store.problem() == "another file was put in place of the database file"
        with pytest.raises(DatabaseUnavailable):
            make(store, draft(ref="1/2"))
    finally:
        store.close()


def test_refused_writes_are_a_problem_until_a_write_works_again(store, monkeypatch):
    (watch,) = make(store)
    read_only = ReadOnlyDatabase(store, monkeypatch)
    read_only.set(True)
    with pytest.raises(DatabaseUnavailable) as refused:
        make(store, draft(ref="1/2"))
    assert refused.value.reason == "the database is read-only"
    assert store.problem() == "the database is read-only"
    assert [w.id for w in store.list_watches()] == [watch.id]  # reads still work
    read_only.set(False)
    assert store.problem() is None  # a probe write got through
    make(store, draft(ref="1/2"))
    assert len(store.list_watches()) == 2


def test_a_poll_write_refused_alone_is_a_problem_too(store, monkeypatch):
    (watch,) = make(store)
    (claimed,) = store.claim_due(NOW, "p1", 120, 10)
    ReadOnlyDatabase(store, monkeypatch).set(True)
    with pytest.raises(DatabaseUnavailable):  # the one-statement path of a quiet poll
        store.apply_poll(claimed.id, "p1", PollResult({"next_poll_at": NOW + 5}), NOW)
    assert store.problem() == "the database is read-only"


@pytest.mark.skipif(IGNORES_PERMISSIONS, reason="file permissions don't stop this user")
def test_a_file_made_read_only_is_a_problem(tmp_path):
    path = tmp_path / "syncwatch.db"
    store = Store(str(path))
    try:
        os.chmod(path, 0o444)
        assert store.problem() == "the database file is read-only"
        with pytest.raises(DatabaseUnavailable):
            make(store)
        os.chmod(path, 0o644)
        assert store.problem() is None
        make(store)
    finally:
        store.close()


# -- at start -------------------------------------------------------------------------------


def test_a_missing_directory_is_refused_at_start_and_not_created(tmp_path):
    path = tmp_path / "nowhere" / "syncwatch.db"
    with pytest.raises(DatabaseUnavailable) as refused:
        Store(str(path))
    assert refused.value.reason == "its directory does not exist"
    assert not path.parent.exists()
    assert check_database(str(path)) == "its directory does not exist"


def test_a_file_that_is_not_sqlite_is_refused_at_start(tmp_path):
    path = tmp_path / "syncwatch.db"
    path.write_bytes(b"these are not the rows you are looking for\n" * 200)
    with pytest.raises(DatabaseUnavailable) as refused:
        Store(str(path))
    assert refused.value.reason == "the file is not a SQLite database"
    assert check_database(str(path)) == "the file is not a SQLite database"


def test_a_database_that_refuses_writes_is_refused_at_start(tmp_path, monkeypatch):
    """What a read-only file does to root too (see tests/dbfaults.py)."""
    path = tmp_path / "syncwatch.db"
    Store(str(path)).close()  # migrated: opening it again writes nothing by itself
    real = storage.db.open_database

    def opening(p, *, create=True):
        db = real(p, create=create)
        db.conn.execute("PRAGMA query_only = ON")
        return db

    monkeypatch.setattr(storage.db, "open_database", opening)
    with pytest.raises(DatabaseUnavailable) as refused:
        Store(str(path))
    assert refused.value.reason == "the database is read-only"
    assert check_database(str(path)) == "the database is read-only"


@pytest.mark.skipif(IGNORES_PERMISSIONS, reason="file permissions don't stop this user")
def test_a_read_only_file_is_refused_at_start(tmp_path):
    path = tmp_path / "syncwatch.db"
    Store(str(path)).close()
    os.chmod(path, 0o444)
    with pytest.raises(DatabaseUnavailable) as refused:
        Store(str(path))
    assert refused.value.reason == "the database file is read-only"


def test_check_creates_nothing_and_passes_a_usable_database(tmp_path):
    path = tmp_path / "syncwatch.db"
    assert check_database(str(path)) is None
    assert not path.exists()
    Store(str(path)).close()
    assert check_database(str(path)) is None
