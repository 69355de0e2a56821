"""SQLite: one connection per thread, WAL, busy timeout, explicit transactions, and whether
the database can take writes at all (`ConnectionPool.problem`)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import quote

from sqlite_utils import Database

from .engine import Params, Result, rows_of
from .health import DatabaseUnavailable, classify, file_problem, identity, start_problem

BUSY_TIMEOUT_MS = 5000
# How long a look at the file (stat, access) is trusted: `problem()` runs before every
# write and on every command and /healthz, a stat a second is nothing.
FILE_CHECK_S = 1.0
# While a failed write is on record, at most one probe write this often tells when the
# database takes writes again.
PROBE_EVERY_S = 1.0


def open_database(path: str, *, create: bool = True) -> Database:
    """A sqlite-utils Database on a fresh connection with our pragmas.

    isolation_level=None puts transaction control in our hands: `immediate()` opens
    BEGIN IMMEDIATE, so a read-then-write unit never fails with "database is locked"
    half-way (a deferred BEGIN can't upgrade its lock while another writer commits).
    `create=False` opens the file only if it exists (SQLite's `mode=rw`): a connection
    opened after start must never put a new, empty database where the bot's vanished.
    """
    target, uri = path, False
    if path != ":memory:":
        target, uri = f"file:{quote(os.path.abspath(path))}?mode={'rwc' if create else 'rw'}", True
    conn = sqlite3.connect(
        target,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
        uri=uri,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return Database(conn, execute_plugins=False)


def probe_write(conn: sqlite3.Connection, *, commit: bool = True) -> None:
    """One real write: BEGIN IMMEDIATE alone succeeds on a file SQLite opened read-only,
    and a statement that changes nothing may never touch the disk. `user_version` is
    rewritten with the value it has (nothing of ours reads it). Raises sqlite3.Error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT" if commit else "ROLLBACK")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def check_database(path: str) -> str | None:
    """For `syncwatch check`: why `path` could not serve as the database, or None. Creates
    nothing; an existing file is opened, read, and written in a transaction rolled back."""
    problem = start_problem(path)
    if problem is not None or not os.path.exists(path):
        return problem
    try:
        db = open_database(path, create=False)
    except sqlite3.Error as err:
        return classify(err) or f"SQLite refused it ({err})"
    try:
        db.conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        probe_write(db.conn, commit=False)
    except sqlite3.Error as err:
        return classify(err) or f"SQLite refused it ({err})"
    finally:
        db.conn.close()
    return None


class ConnectionPool:
    """One Database per thread (sqlite3 connections must not be shared across threads).

    The file is created, if missing, by the first connection only, at start; its identity
    is recorded then. Every later connection opens the file only if it exists."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = os.path.abspath(path) if path != ":memory:" else path
        self._local = threading.local()
        self._all: list[Database] = []
        self._lock = threading.Lock()
        # Writers of this process queue here rather than in SQLite: a BEGIN IMMEDIATE that
        # finds the write lock taken is retried by SQLite's busy handler after sleeping 1,
        # 2, 5, 10 … ms however soon the lock is free again (16 poll threads draining 10k
        # due watches: 0.72-0.74 of bare httpx's rate without this lock, 0.81-0.82 with
        # it). Other processes (the CLI) are still waited for by busy_timeout.
        self._write_lock = threading.Lock()
        self._memory: Database | None = open_database(path) if path == ":memory:" else None
        self._failure: str | None = None  # the last write failure, until a write works
        self._file_problem: str | None = None
        self._file_checked = float("-inf")  # monotonic
        self._probed = float("-inf")
        self._identity = (0, 0)
        if self._memory is None:
            self._open_at_start()

    def _open_at_start(self) -> None:
        """Create or open the file, remember which file it is, and make sure it takes
        writes: a read-only database would otherwise fail only at the first command."""
        problem = start_problem(self.path)
        if problem is not None:
            raise DatabaseUnavailable(problem)
        db = self._connect(create=True)
        try:
            self._identity = identity(self._file)
            probe_write(db.conn)
        except sqlite3.Error as err:
            db.conn.close()
            raise DatabaseUnavailable(classify(err) or f"SQLite refused it ({err})") from err
        except BaseException:
            db.conn.close()
            raise
        self._adopt(db)

    def _connect(self, *, create: bool) -> Database:
        try:
            return open_database(self.path, create=create)
        except sqlite3.Error as err:
            reason = classify(err) or f"SQLite refused it ({err})"
            self._failure = reason
            raise DatabaseUnavailable(reason) from err

    def _adopt(self, db: Database) -> None:
        self._local.db = db
        with self._lock:
            self._all.append(db)

    def _drop(self, db: Database) -> None:
        """Forget this thread's connection after it failed (SQLite may have opened the file
        read-only, or hit an I/O error): the next use opens a fresh one."""
        if db is self._memory or db.conn.in_transaction:
            return
        if getattr(self._local, "db", None) is db:
            del self._local.db
        with self._lock:
            if db in self._all:
                self._all.remove(db)
        db.conn.close()

    def get(self) -> Database:
        if self._memory is not None:  # tests: one shared in-memory connection
            return self._memory
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._connect(create=False)
            self._adopt(db)
        return db

    # -- health ----------------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why the database can't take writes now, or None: the file at the path is gone,
        is another file, or is read-only, or the last write failed and a probe write still
        does. Cheap: a stat at most once a FILE_CHECK_S, a probe at most once a
        PROBE_EVERY_S and only after a failure."""
        if self._memory is not None:
            return None
        now = time.monotonic()
        if now - self._file_checked >= FILE_CHECK_S:
            self._file_problem = file_problem(self._file, self._identity)
            self._file_checked = now
        if self._file_problem is not None:
            return self._file_problem
        if self._failure is not None and now - self._probed >= PROBE_EVERY_S:
            self._probed = now
            self._probe()
        return self._failure

    def _probe(self) -> None:
        try:
            db = self.get()
        except DatabaseUnavailable:
            return  # recorded by _connect
        if db.conn.in_transaction:  # asked from inside a write: can't probe from here
            return
        with self._write_lock:
            try:
                probe_write(db.conn)
            except sqlite3.Error as err:
                reason = classify(err)
                if reason is not None:  # else (busy): no news either way
                    self._failure = reason
                    self._drop(db)
                return
        self._failure = None

    def _refuse_if_unavailable(self) -> None:
        # A write into a file that was deleted would "succeed" and be lost: refuse it.
        reason = self.problem()
        if reason is not None:
            raise DatabaseUnavailable(reason)

    def _unavailable(self, db: Database, err: sqlite3.Error) -> DatabaseUnavailable | None:
        """Record a failure that means the database is unusable, and return the error to
        raise instead of `err`; None for ordinary errors."""
        reason = classify(err)
        if reason is None:
            return None
        self._failure = reason
        self._drop(db)
        return DatabaseUnavailable(reason)

    # -- writes ----------------------------------------------------------------------------

    @contextmanager
    def immediate(self) -> Iterator[Database]:
        """A write transaction that takes the write lock up front (BEGIN IMMEDIATE).
        Raises DatabaseUnavailable, with nothing written, while `problem()` has a reason
        or when the database refuses the write."""
        db = self.get()
        if db.conn.in_transaction:  # nested unit: join the outer transaction
            yield db
            return
        self._refuse_if_unavailable()
        with self._write_lock:
            try:
                db.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as err:
                gone = self._unavailable(db, err)
                if gone is not None:
                    raise gone from err
                raise
            try:
                yield db
            except BaseException as exc:
                _rollback(db)
                gone = self._unavailable(db, exc) if isinstance(exc, sqlite3.Error) else None
                if gone is not None:
                    raise gone from exc
                raise
            try:
                db.conn.execute("COMMIT")
            except sqlite3.Error as err:
                _rollback(db)
                gone = self._unavailable(db, err)
                if gone is not None:
                    raise gone from err
                raise

    def write(self, sql: str, params: Params = ()) -> Result:
        """One write statement: inside this thread's open transaction if there is one,
        else on its own in SQLite's implicit transaction (no BEGIN and COMMIT round trips),
        queued like any other writer. Raises DatabaseUnavailable as `immediate` does."""
        db = self.get()
        if db.conn.in_transaction:
            return _result(db.conn.execute(sql, params))
        self._refuse_if_unavailable()
        with self._write_lock:
            try:
                return _result(db.conn.execute(sql, params))
            except sqlite3.Error as err:
                gone = self._unavailable(db, err)
                if gone is not None:
                    raise gone from err
                raise

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.conn.close()
            self._all.clear()
        if self._memory is not None:
            self._memory.conn.close()


def _rollback(db: Database) -> None:
    """Roll back what is left: SQLite has already rolled back after some errors (I/O,
    full disk), and a second error here must not hide the first."""
    if db.conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.conn.execute("ROLLBACK")


class SqliteEngine:
    """The store's `Engine` on one SQLite file (or `:memory:` in tests)."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self.pool = ConnectionPool(path)

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        return list(rows_of(self.pool.get().conn.execute(sql, params)))

    def row(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        return self.pool.get().conn.execute(sql, params).fetchone()

    def execute(self, sql: str, params: Params = ()) -> Result:
        return self.pool.write(sql, params)

    def transaction(self) -> AbstractContextManager[None]:
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self.pool.immediate():
            yield

    def problem(self) -> str | None:
        return self.pool.problem()

    def close(self) -> None:
        self.pool.close()


def _result(cursor: sqlite3.Cursor) -> Result:
    rows = list(rows_of(cursor))  # a RETURNING statement finishes only once read
    return Result(len(rows) if rows else cursor.rowcount, rows)
