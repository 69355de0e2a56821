"""Storage: the only package that names tables or writes SQL.

`records` holds the vocabulary (dataclasses and statuses) every layer imports; `Store` is
the one door to the database.
"""

from .alerts import (
    DEFAULT_ALERT_EVERY,
    MAX_ALERT_EVERY,
    AlertPolicy,
    RunOutcome,
    ScheduleRun,
    decide_alert,
)
from .audit import ActorKind, AuditEntry, Via
from .db import check_database
from .digests import DIGEST_CADENCES, Digest, DigestLine
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
from .settings import ChannelSettings, MentionPolicy, QuietHours
from .store import DuplicateWatchError, IdempotencyRecord, Store, TokenNameTaken

__all__ = [
    "DIGEST_CADENCES",
    "Digest",
    "DigestLine",
    "DEFAULT_ALERT_EVERY",
    "MAX_ALERT_EVERY",
    "AlertPolicy",
    "RunOutcome",
    "ScheduleRun",
    "decide_alert",
    "ACTIVE",
    "DEFAULT_CONNECTION",
    "DONE",
    "PAUSED",
    "STOPPED",
    "ActorKind",
    "ApiToken",
    "ChannelSettings",
    "AuditEntry",
    "DatabaseUnavailable",
    "DuplicateWatchError",
    "Event",
    "IdempotencyRecord",
    "MentionPolicy",
    "NewWatch",
    "OutboxKind",
    "OutboxRow",
    "ParentRef",
    "PollResult",
    "QuietHours",
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
