"""The store's records: the vocabulary every layer imports.

Frozen dataclasses for what the store hands out (`Watch`, `Transition`, `OutboxRow`,
`Schedule`, `ParentRef`) and takes in (`NewWatch`, `TransitionDraft`, `PollResult`), and
the named values that live in their columns. Nothing here touches the database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

DEFAULT_CONNECTION = "default"  # the connection a command uses when it names none


class WatchStatus(StrEnum):
    """Where a watch is in its life (docs/architecture.md#watch-statuses). Only
    `Store` moves a watch between them, in `Store.change_status` (see its table)."""

    ACTIVE = "active"  # polled until the job ends, the deadline passes or someone stops it
    DONE = "done"  # the job reached a terminal state (or the watch timed out)
    STOPPED = "stopped"  # a person stopped watching; the job itself may still run
    PAUSED = "paused"  # Slack won't let us post into the channel any more


ACTIVE = WatchStatus.ACTIVE
DONE = WatchStatus.DONE
STOPPED = WatchStatus.STOPPED
PAUSED = WatchStatus.PAUSED


class ScheduleStatus(StrEnum):
    ACTIVE = "active"
    STOPPED = "stopped"


class Event(StrEnum):
    """What a thread entry (a `transitions` row) records."""

    STATE = "state"  # the job moved between normalized states
    STOPPED = "stopped"  # someone stopped the watch
    TIMEOUT = "timeout"  # the watch ran out of time before the job ended
    NOTE = "note"  # anything else worth a reply (budget warnings, a late schedule run)
    ERRORS = "errors"  # the vendor's full error list, asked for with "Show errors"
    # A scheduled run ended a streak of failed runs; `note` holds how many
    # (docs/architecture.md#alert-policy).
    RECOVERED = "recovered"


class OutboxKind(StrEnum):
    """One row of Slack work: create or edit the parent, a thread reply, a file."""

    PARENT = "parent"
    REPLY = "reply"
    UPLOAD = "upload"


@dataclass(frozen=True)
class Watch:
    id: str
    vendor: str
    ref: str
    connection: str
    team_id: str | None
    channel_id: str
    requester_id: str
    status: WatchStatus
    state: str | None
    raw_status: str | None
    snapshot: str | None
    interval_s: float
    created_at: float
    updated_at: float
    next_poll_at: float | None
    lease_until: float | None
    lease_owner: str | None
    attempts: int
    polls: int
    last_error: str | None
    deadline: float
    finished_at: float | None
    stopped_by: str | None
    pause_reason: str | None
    trigger_pending: int = 0
    # Started through the watch API or a vendor callback: the token's name, and what the
    # script said it runs for (docs/architecture.md#watch-api). None for slash commands.
    token_name: str | None = None
    requested_by: str | None = None
    # The job's last few progress samples as JSON (storage/progress.py), for the time-left
    # estimate on the parent (docs/architecture.md#eta). None without counts.
    progress_points: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any] | sqlite3.Row) -> Watch:
        data = row if isinstance(row, dict) else dict(row)
        values = {name: data.get(name) for name in _WATCH_COLUMNS}
        values["status"] = _STATUS_OF[values["status"]]  # a dict look-up: one per claimed row
        return cls(**values)


_WATCH_COLUMNS = tuple(f.name for f in fields(Watch))
_STATUS_OF = {status.value: status for status in WatchStatus}


@dataclass(frozen=True)
class NewWatch:
    vendor: str
    ref: str
    connection: str
    channel_id: str
    requester_id: str
    interval_s: float
    deadline: float
    team_id: str | None = None
    trigger: bool = False  # a sync: the first poll starts it
    token_name: str | None = None  # started through the API, with this token
    requested_by: str | None = None  # the API body's `requested_by`, as given


# Who did something, as stored in `requester_id`, `stopped_by` and a transition's `actor`:
# a Slack user id, or an API token (a script, a vendor callback) as `token:<name>`. Only a
# Slack user is mentioned; a token is named (docs/architecture.md#watch-api).
TOKEN_ACTOR = "token:"


def token_actor(name: str) -> str:
    return TOKEN_ACTOR + name


def actor_token(actor: str | None) -> str | None:
    """The token's name when `actor` is a token, else None (a Slack user, or nobody)."""
    if actor and actor.startswith(TOKEN_ACTOR):
        return actor[len(TOKEN_ACTOR) :]
    return None


@dataclass(frozen=True)
class ApiToken:
    """A bearer token for the watch API and its vendor callbacks. Only hashes are kept:
    `digest` is the SHA-256 (hex) of the token, `hook_digest` that of its hook key.
    `source` is `slack` (made with `/syncwatch token create`) or `config` (the TOML file)."""

    name: str
    digest: str
    hook_digest: str
    channels: tuple[str, ...]
    created_by: str | None
    created_at: float
    source: str = "slack"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ApiToken:
        return cls(
            name=row["name"],
            digest=row["digest"],
            hook_digest=row["hook_digest"],
            channels=tuple(json.loads(row["channels"] or "[]")),
            created_by=row.get("created_by"),
            created_at=float(row.get("created_at") or 0),
            source="slack",
        )


@dataclass(frozen=True)
class Transition:
    id: int
    watch_id: str
    at: float
    event: str
    from_state: str | None
    to_state: str | None
    raw_status: str | None
    error_code: str | None
    error_message: str | None
    actor: str | None
    note: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Transition:
        return cls(**{f.name: row.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class TransitionDraft:
    """A history entry to record; `event` is state | stopped | timeout | note."""

    event: str
    from_state: str | None = None
    to_state: str | None = None
    raw_status: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    actor: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class PollResult:
    """Everything one poll changes, applied in one transaction by `Store.apply_poll`.

    `changes` are watch columns to set. With `transition`, a thread reply is queued for it;
    each of `notes` becomes a further `note` entry with its own reply (budget warnings and
    the like); `update_parent` queues an edit of the parent; each of `uploads` (JSON-able
    payloads) queues a file for the thread.
    """

    changes: dict[str, Any]
    transition: TransitionDraft | None = None
    update_parent: bool = False
    uploads: Sequence[dict[str, Any]] = field(default_factory=tuple)
    notes: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    watch_id: str
    kind: str
    transition_id: int | None
    payload: dict[str, Any]
    status: str
    attempts: int
    created_at: float
    next_attempt_at: float
    held_until: float | None = None  # held for quiet hours until then

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> OutboxRow:
        return cls(
            id=row["id"],
            watch_id=row["watch_id"],
            kind=row["kind"],
            transition_id=row["transition_id"],
            payload=json.loads(row["payload"] or "{}"),
            status=row["status"],
            attempts=row["attempts"] or 0,
            created_at=row["created_at"],
            next_attempt_at=row["next_attempt_at"],
            held_until=row.get("held_until"),
        )


@dataclass(frozen=True)
class Schedule:
    id: str
    vendor: str
    ref: str
    connection: str
    team_id: str | None
    channel_id: str
    requester_id: str
    cron: str
    tz: str
    status: ScheduleStatus
    next_run_at: float | None
    last_run_at: float | None
    created_at: float
    stopped_by: str | None
    # Which runs reach the channel and the current streak (docs/architecture.md#alert-policy).
    alert_policy: str = "every"  # every | failures | smart
    alert_every: int = 5  # smart: after the first failure, every Nth one in a row alerts
    streak_kind: str | None = None  # ok | failed; None before the first run ended
    streak_count: int = 0
    streak_since: float | None = None  # due time of the streak's first run
    digest: str | None = None  # daily | weekly: quiet runs summed up in one message
    digest_since: float | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Schedule:
        values = {f.name: row.get(f.name) for f in fields(cls)}
        values["status"] = ScheduleStatus(values["status"])
        for name in ("alert_policy", "alert_every", "streak_count"):
            if values[name] is None:  # a row read without the columns keeps the defaults
                del values[name]
        return cls(**values)


@dataclass(frozen=True)
class ParentRef:
    watch_id: str
    channel_id: str
    ts: str
    editable: bool = True
