"""A database that refuses writes, as a read-only file does, for tests that may run as root."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

import pytest

import storage.db
from storage import Store


class ReadOnlyDatabase:
    """Makes `store`'s database refuse every write with SQLite's own SQLITE_READONLY, the
    error a file that turned read-only under the bot gives. chmod alone can't show it: root
    ignores file permissions, and connections already open keep the write access they had.
    So every connection of the store, and every one it opens later, is switched to
    `PRAGMA query_only` while `on` (reads still work, as they would)."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.store = store
        self.on = False
        real = storage.db.open_database

        def opening(*args: Any, **kwargs: Any):
            db = real(*args, **kwargs)
            if self.on:
                db.conn.execute("PRAGMA query_only = ON")
            return db

        monkeypatch.setattr(storage.db, "open_database", opening)

    def set(self, on: bool) -> None:
        self.on = on
        with self.store.engine.pool._lock:
            connections = list(self.store.engine.pool._all)
        for db in connections:
            with contextlib.suppress(sqlite3.ProgrammingError):  # dropped meanwhile
                db.conn.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}")
