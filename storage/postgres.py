"""PostgreSQL: a psycopg 3 connection pool shared by every thread of the process.

Connections run in autocommit; `transaction()` borrows one connection for the thread and
opens a transaction on it, and every statement the thread runs meanwhile goes there (the
store reads inside its own write transactions). Statements are rewritten from the store's
SQLite spelling once each (`engine.to_postgres`) and prepared by psycopg after a few uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from .engine import Params, Result, redact, rows_of, safe_dsn, to_postgres
from .health import DatabaseUnavailable

# Enough for the poll workers, the notifier, the HTTP threads and the schedule runner of
# one process to each hold a connection at the busiest moment; the server's default
# max_connections (100) then allows several replicas (docs/operations.md#scaling-out).
DEFAULT_POOL_SIZE = 20
CONNECT_TIMEOUT_S = 10.0
PROBLEM_CHECK_S = 1.0
APPLICATION_NAME = "syncwatch"  # how operators find our sessions in pg_stat_activity


class DatabaseUnavailableError(Exception):
    """The PostgreSQL server can't be reached or refused us. Never quotes a password."""


class PostgresEngine:
    """The store's `Engine` on a PostgreSQL database."""

    dialect = "postgresql"

    def __init__(self, dsn: str, *, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.dsn = dsn
        self._local = threading.local()
        self._failure: str | None = None  # why the server last failed us, until it answers
        self._checked = float("-inf")  # monotonic time of the last look
        # One direct attempt first: a wrong password or a server that isn't there is then
        # one clear error at once, instead of the pool's retries and their warnings.
        try:
            psycopg.connect(dsn, connect_timeout=int(CONNECT_TIMEOUT_S)).close()
        except psycopg.Error as err:
            raise DatabaseUnavailableError(
                f"can't connect to PostgreSQL at {safe_dsn(dsn)}: {redact(libpq_reason(err), dsn)}"
            ) from None
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={
                "autocommit": True,
                "connect_timeout": int(CONNECT_TIMEOUT_S),
                "application_name": APPLICATION_NAME,
            },
            open=False,
            name="syncwatch",
            timeout=30.0,  # a borrower waits this long for a free connection
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except PoolTimeout:
            self._pool.close()
            raise DatabaseUnavailableError(
                f"can't connect to PostgreSQL at {safe_dsn(dsn)}: timed out"
            ) from None

    def _conn(self) -> psycopg.Connection[Any] | None:
        return getattr(self._local, "conn", None)

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        with self._connection() as conn:
            return list(rows_of(conn.execute(to_postgres(sql), params)))

    def row(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        with self._connection() as conn:
            return conn.execute(to_postgres(sql), params).fetchone()

    def execute(self, sql: str, params: Params = ()) -> Result:
        with self._connection() as conn:
            return _result(conn.execute(to_postgres(sql), params))

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """This thread's transaction's connection, or one borrowed for one statement. A
        lost server is DatabaseUnavailable, as a vanished SQLite file is: callers wait for
        it instead of failing (docs/operations.md#the-database-goes-away)."""
        conn = self._conn()
        if conn is not None:
            with self._unavailable_on_loss():
                yield conn
            return
        with self._unavailable_on_loss(), self._pool.connection() as conn:
            yield conn

    @contextmanager
    def _unavailable_on_loss(self) -> Iterator[None]:
        try:
            yield
        except PoolTimeout:
            self._failure = "PostgreSQL can't be reached (no connection within 30 s)"
            raise DatabaseUnavailable(self._failure) from None
        except psycopg.OperationalError as err:
            self._failure = f"PostgreSQL can't be reached ({redact(libpq_reason(err), self.dsn)})"
            raise DatabaseUnavailable(self._failure) from None

    def transaction(self) -> AbstractContextManager[None]:
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._conn() is not None:  # nested unit: join the outer transaction
            yield
            return
        with self._unavailable_on_loss(), self._pool.connection() as conn, conn.transaction():
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    def problem(self) -> str | None:
        """None while the server answers; else why not. One `SELECT 1` at most a second
        (every command and /healthz ask); a failure on record is looked at again then."""
        if self._conn() is not None:  # asked from inside a working transaction
            return None
        now = time.monotonic()
        if now - self._checked < PROBLEM_CHECK_S:
            return self._failure
        self._checked = now
        try:
            with self._pool.connection(timeout=PROBLEM_CHECK_S * 2) as conn:
                conn.execute("SELECT 1")
        except PoolTimeout:
            self._failure = "PostgreSQL can't be reached (no free connection)"
        except psycopg.Error as err:
            self._failure = f"PostgreSQL can't be reached ({redact(libpq_reason(err), self.dsn)})"
        else:
            self._failure = None
        return self._failure

    def close(self) -> None:
        self._pool.close()


def libpq_reason(err: BaseException) -> str:
    """libpq's multi-line error as one short line: `connection to server at "h", port 1
    failed: Connection refused` → `Connection refused`; `… failed: FATAL:  database "x"
    does not exist` → `database "x" does not exist`."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    line = next((x for x in lines if "failed: " in x), lines[0])
    reason = line.rsplit("failed: ", 1)[1] if "failed: " in line else line
    for prefix in ("FATAL:", "ERROR:"):
        if reason.startswith(prefix):
            reason = reason[len(prefix) :].strip()
    return reason


def _result(cursor: psycopg.Cursor[Any]) -> Result:
    rows = list(rows_of(cursor))
    return Result(cursor.rowcount, rows)
