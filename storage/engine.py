"""The two databases the store runs on, behind one small interface.

SQLite (a file, the embedded default) and PostgreSQL (several replicas on one database).
`Store` writes its SQL once, with `?` / `:name` placeholders and `[column]` quoting as
SQLite reads them; the PostgreSQL engine rewrites each statement once (cached) for psycopg.
What is really different between the two (claims that skip locked rows, migrations) is
asked of `Engine.dialect` in the few places it matters (docs/architecture.md#storage).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol
from urllib.parse import quote, unquote, urlsplit

Params = Sequence[Any] | dict[str, Any]
Dialect = Literal["sqlite", "postgresql"]

DEFAULT_DATABASE = "./syncwatch.db"


class DatabaseURLError(ValueError):
    """SYNCWATCH_DB can't be used as written. The message never quotes a password."""


@dataclass(frozen=True)
class DatabaseURL:
    """Where the store lives: a SQLite file or a PostgreSQL DSN."""

    dialect: Dialect
    target: str  # a file path (SQLite) or the conninfo/URL psycopg connects with

    def __str__(self) -> str:
        """For logs and `syncwatch check`: the PostgreSQL password is never shown."""
        return self.target if self.dialect == "sqlite" else safe_dsn(self.target)


def parse_database_url(value: str | None) -> DatabaseURL:
    """SYNCWATCH_DB as written: a file path, `sqlite:///relative.db`, `sqlite:////abs.db`
    (SQLAlchemy's spelling: the path follows the third slash), or `postgresql://…` /
    `postgres://…` (libpq's URI). Anything else with a scheme is refused."""
    text = (value or "").strip() or DEFAULT_DATABASE
    scheme, sep, rest = text.partition("://")
    if not sep or os.sep in scheme or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return DatabaseURL("sqlite", text)  # a plain path (may contain "://" further on)
    scheme = scheme.lower()
    if scheme == "sqlite":
        path = rest[1:] if rest.startswith("/") else rest
        if not path:
            raise DatabaseURLError("SYNCWATCH_DB: sqlite:/// needs a file path after it")
        return DatabaseURL("sqlite", path)
    if scheme in ("postgresql", "postgres"):
        _check_postgres(text)
        return DatabaseURL("postgresql", text)
    raise DatabaseURLError(
        f"SYNCWATCH_DB: unsupported database {scheme!r}; use a file path, sqlite:///path "
        "or postgresql://user@host/db"
    )


def _check_postgres(dsn: str) -> None:
    try:
        parts = urlsplit(dsn)
        parts.port  # noqa: B018 (raises ValueError on a port that isn't a number)
    except ValueError as err:
        raise DatabaseURLError(f"SYNCWATCH_DB: malformed PostgreSQL URL ({err})") from None
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(dsn)
    except Exception as err:  # psycopg.ProgrammingError: libpq's own parse
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DatabaseURLError(
            f"SYNCWATCH_DB: malformed PostgreSQL URL {safe_dsn(dsn)} ({redact(reason, dsn)})"
        ) from None


def safe_dsn(dsn: str) -> str:
    """The DSN without its password, for anything a person reads."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "postgresql://…"
    if parts.password is None:
        return dsn.split("?", 1)[0]
    host = parts.hostname or ""
    port = f":{parts.port}" if _port_or_none(parts) else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _port_or_none(parts: Any) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def database_password(value: str) -> str:
    """The password a PostgreSQL URL or conninfo carries ("" if none): a secret like any
    other, redacted from logs."""
    url = value.strip()
    if not url.lower().startswith(("postgresql://", "postgres://")):
        return ""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        return unquote(password)
    from urllib.parse import parse_qs

    query = parse_qs(urlsplit(url).query)
    return (query.get("password") or [""])[0]


def redact(text: str, dsn: str) -> str:
    """`text` with the DSN's password taken out, as written or decoded (libpq errors may
    quote the conninfo)."""
    password = database_password(dsn)
    for form in (password, quote(password, safe="")) if password else ():
        text = text.replace(form, "***")
    return text


class Engine(Protocol):
    """One database, shared by every thread of the process.

    A write made inside `transaction()` joins that thread's open transaction; outside one,
    it runs alone (and commits) — reads likewise see the thread's own transaction."""

    dialect: Dialect

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]: ...

    def row(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None: ...

    def execute(self, sql: str, params: Params = ()) -> Result: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def problem(self) -> str | None: ...

    def close(self) -> None: ...


@dataclass
class Result:
    """What a write statement did: rows changed and any rows it returned (RETURNING)."""

    rowcount: int
    rows: list[dict[str, Any]]


# Errors that mean "a unique key said no" on either database.
def integrity_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [sqlite3.IntegrityError]
    try:
        import psycopg

        errors.append(psycopg.IntegrityError)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    return tuple(errors)


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_QUOTED = re.compile(r"\[(\w+)\]")


@lru_cache(maxsize=512)
def to_postgres(sql: str) -> str:
    """SQLite spelling → psycopg's: `?` → `%s`, `:name` → `%(name)s`, `[col]` → `"col"`.
    The store's SQL has no string literal holding these characters (its tests run on
    both engines); a literal `%` is doubled so psycopg doesn't read it as a placeholder."""
    sql = sql.replace("%", "%%")
    sql = _NAMED.sub(r"%(\1)s", sql)
    sql = sql.replace("?", "%s")
    return _QUOTED.sub(r'"\1"', sql)


def rows_of(cursor: Any) -> Iterator[dict[str, Any]]:
    if cursor.description is None:
        return iter(())
    names = [d[0] for d in cursor.description]
    return (dict(zip(names, row, strict=True)) for row in cursor.fetchall())
