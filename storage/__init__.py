"""SQLite storage: the only package that names tables or writes SQL."""

from .store import (
    ACTIVE,
    DONE,
    PAUSED,
    STOPPED,
    DuplicateWatchError,
    NewWatch,
    OutboxRow,
    ParentRef,
    PollResult,
    Schedule,
    Store,
    Transition,
    TransitionDraft,
    Watch,
)

__all__ = [
    "ACTIVE",
    "DONE",
    "PAUSED",
    "STOPPED",
    "DuplicateWatchError",
    "NewWatch",
    "OutboxRow",
    "ParentRef",
    "PollResult",
    "Schedule",
    "Store",
    "Transition",
    "TransitionDraft",
    "Watch",
]
