"""Storage: the only package that names tables or writes SQL.

`records` holds the vocabulary (dataclasses and statuses) every layer imports; `Store` is
the one door to the database.
"""

from .audit import ActorKind, AuditEntry, Via
from .db import check_database
from .health import DatabaseUnavailable
from .records import (
    ACTIVE,
    DEFAULT_CONNECTION,
    DONE,
    PAUSED,
    STOPPED,
    ApiToken,
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
    actor_token,
    token_actor,
)
from .store import DuplicateWatchError, IdempotencyRecord, Store, TokenNameTaken

__all__ = [
    "ACTIVE",
    "DEFAULT_CONNECTION",
    "DONE",
    "PAUSED",
    "STOPPED",
    "ActorKind",
    "ApiToken",
    "AuditEntry",
    "DatabaseUnavailable",
    "DuplicateWatchError",
    "Event",
    "IdempotencyRecord",
    "NewWatch",
    "OutboxKind",
    "OutboxRow",
    "ParentRef",
    "PollResult",
    "Schedule",
    "ScheduleStatus",
    "Store",
    "TokenNameTaken",
    "Transition",
    "TransitionDraft",
    "Via",
    "Watch",
    "WatchStatus",
    "actor_token",
    "check_database",
    "token_actor",
]
