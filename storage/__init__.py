"""Storage: the only package that names tables or writes SQL.

`records` holds the vocabulary (dataclasses and statuses) every layer imports; `Store` is
the one door to the database.
"""

from .db import check_database
from .health import DatabaseUnavailable
from .records import (
    ACTIVE,
    DEFAULT_CONNECTION,
    DONE,
    PAUSED,
    STOPPED,
    Event,
    NewWatch,
    OutboxKind,
    OutboxRow,
    ParentRef,
    PollResult,
    Schedule,
    ScheduleStatus,
    Transition,
    TransitionDraft,
    Watch,
    WatchStatus,
)
from .store import DuplicateWatchError, Store

__all__ = [
    "ACTIVE",
    "DEFAULT_CONNECTION",
    "DONE",
    "PAUSED",
    "STOPPED",
    "DatabaseUnavailable",
    "DuplicateWatchError",
    "Event",
    "NewWatch",
    "OutboxKind",
    "OutboxRow",
    "ParentRef",
    "PollResult",
    "Schedule",
    "ScheduleStatus",
    "Store",
    "Transition",
    "TransitionDraft",
    "Watch",
    "WatchStatus",
    "check_database",
]
