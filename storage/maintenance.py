"""Operator work on a database: inspect it (for `syncwatch check`), migrate it, and copy
one database into another (`syncwatch copy-db`, e.g. SQLite → PostgreSQL)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from .db import check_database
from .engine import DatabaseURL, parse_database_url
from .migrations import DATA_TABLES, IDENTITY_TABLES, names
from .store import Store


@dataclass(frozen=True)
class DatabaseReport:
    ok: bool
    detail: str


def inspect(url: DatabaseURL) -> DatabaseReport:
    """Can `syncwatch run` use this database, and what will it do to it? Changes nothing:
    a SQLite file that doesn't exist yet is not created, migrations are not applied."""
    known = names()
    if url.dialect == "sqlite":
        return _inspect_sqlite(url.target, known)
    return _inspect_postgres(url, known)


def _inspect_sqlite(path: str, known: list[str]) -> DatabaseReport:
    problem = check_database(path)  # writable, a SQLite file, its directory there
    if problem is not None:
        return DatabaseReport(False, f"SQLite {path}: {problem}")
    if not os.path.exists(path):
        return DatabaseReport(True, f"SQLite {path}: will be created at start")
    try:
        conn = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
        try:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = '_sqlite_migrations'"
            ).fetchone()
            applied = (
                {n for (n,) in conn.execute("SELECT name FROM _sqlite_migrations")}
                if exists
                else set()
            )
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        return DatabaseReport(False, f"SQLite {path}: can't be read ({err})")
    return _schema_report(f"SQLite {path}", applied, known)


def _inspect_postgres(url: DatabaseURL, known: list[str]) -> DatabaseReport:
    import psycopg

    from .engine import redact
    from .postgres import libpq_reason

    try:
        with psycopg.connect(url.target, connect_timeout=10, autocommit=True) as conn:
            exists = conn.execute("SELECT to_regclass('syncwatch_migrations')").fetchone()
            applied: set[str] = set()
            if exists and exists[0]:
                applied = {n for (n,) in conn.execute("SELECT name FROM syncwatch_migrations")}
    except psycopg.Error as err:
        return DatabaseReport(False, f"PostgreSQL {url}: {redact(libpq_reason(err), url.target)}")
    return _schema_report(f"PostgreSQL {url}", applied, known)


def _schema_report(where: str, applied: set[str], known: list[str]) -> DatabaseReport:
    newer = sorted(applied - set(known))
    if newer:
        return DatabaseReport(
            False, f"{where}: migrated by a newer syncwatch ({', '.join(newer)}); upgrade first"
        )
    pending = [n for n in known if n not in applied]
    if not applied:
        return DatabaseReport(True, f"{where}: empty; the schema is created at start")
    if pending:
        return DatabaseReport(
            True, f"{where}: {len(pending)} migration(s) to apply at start ({pending[-1]})"
        )
    return DatabaseReport(True, f"{where}: schema up to date ({known[-1]})")


def migrate(url: DatabaseURL) -> None:
    """Apply pending migrations and close (what `syncwatch run` also does at start)."""
    Store(url).close()


class CopyError(Exception):
    """The copy can't go ahead (destination not empty, same database...)."""


def copy_database(
    source: str | DatabaseURL,
    destination: str | DatabaseURL,
    *,
    progress: Callable[[str, int], None] = lambda table, count: None,
) -> dict[str, int]:
    """Copy every row of every table from `source` into an empty `destination` in one
    transaction (all or nothing), keeping ids, so watches, their threads, pending Slack
    work, schedules and request budgets carry over. Both are migrated to this version
    first. Returns rows copied per table. Stop the bot before copying."""
    src_url = source if isinstance(source, DatabaseURL) else parse_database_url(source)
    dst_url = (
        destination if isinstance(destination, DatabaseURL) else parse_database_url(destination)
    )
    if src_url == dst_url:
        raise CopyError("source and destination are the same database")
    src = Store(src_url)
    try:
        dst = Store(dst_url)
        try:
            return _copy(src, dst, progress)
        finally:
            dst.close()
    finally:
        src.close()


def _copy(src: Store, dst: Store, progress: Callable[[str, int], None]) -> dict[str, int]:
    for table in DATA_TABLES:
        row = dst.engine.row(f"SELECT COUNT(*) FROM {table}")
        if row and row[0]:
            raise CopyError(
                f"the destination already holds {row[0]} row(s) in {table}: "
                "copy into an empty database"
            )
    copied: dict[str, int] = {}
    with src.engine.transaction(), dst.engine.transaction():  # one consistent read, one write
        for table in DATA_TABLES:
            rows = src.engine.query(f"SELECT * FROM {table}")
            for row in rows:
                columns = ", ".join(f"[{c}]" for c in row)
                marks = ", ".join("?" for _ in row)
                dst.engine.execute(
                    f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values())
                )
            copied[table] = len(rows)
            progress(table, len(rows))
        if dst.engine.dialect == "postgresql":
            for table in IDENTITY_TABLES:  # new ids go on after the copied ones
                dst.engine.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                )
    return copied
