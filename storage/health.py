"""Can the database file take writes, and is it still the file the bot opened?

A SQLite connection holds its file open. When the file is deleted (or another file put in
its place) under a running bot, the connections go on reading and writing the unlinked
inode: every write "succeeds" and is gone at the next restart. So health is judged against
the *path*, by the file's identity (st_dev, st_ino) recorded at open, and by the writes
that fail (docs/operations.md#the-database-goes-away).

Reasons are short and human and never name the path: they are shown to Slack users.
"""

from __future__ import annotations

import os
import sqlite3

# SQLite's primary result codes for "this database can't be used right now", and what to
# tell people. Others (busy, constraint, a bad statement) are ordinary errors, not health.
_REASONS = {
    8: "the database is read-only",  # SQLITE_READONLY
    10: "the disk reports an I/O error on the database",  # SQLITE_IOERR
    11: "the database file is damaged",  # SQLITE_CORRUPT
    13: "the disk holding the database is full",  # SQLITE_FULL
    14: "the database file can't be opened",  # SQLITE_CANTOPEN
    26: "the file is not a SQLite database",  # SQLITE_NOTADB
}
_READONLY_DBMOVED = 8 | (4 << 8)  # SQLite noticed the file was unlinked under it


class DatabaseUnavailable(Exception):
    """The database can't be used right now; `reason` says why, for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def classify(err: sqlite3.Error) -> str | None:
    """The reason to give when `err` means the database itself is unusable, else None."""
    code = getattr(err, "sqlite_errorcode", None)
    if code == _READONLY_DBMOVED:
        return "the database file was deleted or moved"
    if code is not None and code & 0xFF in _REASONS:
        return _REASONS[code & 0xFF]
    if str(err).startswith("no such table"):  # a fresh, empty file where ours was
        return "the database file has lost its tables"
    return None


def identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def file_problem(path: str, opened: tuple[int, int]) -> str | None:
    """Is the file at `path` still the one opened (identity `opened`), and writable?"""
    try:
        now = identity(path)
    except FileNotFoundError:
        return "the database file was deleted or moved"
    except OSError as err:
        return f"the database file can't be reached ({err.strerror or type(err).__name__})"
    if now != opened:
        return "another file was put in place of the database file"
    if not os.access(path, os.W_OK):  # also EROFS: a file system remounted read-only
        return "the database file is read-only"
    return None


def start_problem(path: str) -> str | None:
    """Before the first open: what would stop SQLite from creating or writing `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return "its directory does not exist"
    if os.path.isdir(path):
        return "it is a directory"
    if os.path.exists(path) and not os.access(path, os.R_OK):
        return "the database file can't be read"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return "the database file is read-only"
    if not os.access(directory, os.W_OK | os.X_OK):
        # WAL mode keeps <db>-wal and <db>-shm beside the file, created at open.
        return "its directory is not writable"
    return None
