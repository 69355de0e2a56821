"""The audit trail: who changed what, when, from where (docs/operations.md#audit).

One `audit_log` row per change that succeeded: a watch started or stopped, a sync run
again, a refresh, a schedule made or stopped, a token made or revoked, a watch started by
the API or a vendor callback. Refusals are not recorded: the log says what happened, and
a refused attempt changed nothing. Rows are only ever added.

`Store.audit(entry)` writes one row; inside `Store.audited()` it commits in the same
transaction as the change it records, so the log can't claim a change that rolled back
nor miss one that committed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import Engine


class ActorKind(StrEnum):
    """Who acted: a Slack user (their id), an API token (its name), or an operator at the
    command line (the OS user name)."""

    PERSON = "person"
    TOKEN = "token"
    OPERATOR = "operator"


class Via(StrEnum):
    """How the change arrived."""

    SLASH = "slash"  # /syncwatch …
    BUTTON = "button"  # a button on a message, a `list` answer or the App Home tab
    API = "api"  # the watch API (/api/v1/…)
    CLI = "cli"  # a `syncwatch` command
    CALLBACK = "callback"  # a vendor callback (/hooks/…)
    MODAL = "modal"  # a form submitted in Slack (a view_submission: channel settings)


# Detail keys that would hold a secret: refused outright, whatever the caller meant.
SECRET_KEYS = ("secret", "password", "token_value", "digest", "key", "authorization")
MAX_DETAIL_CHARS = 2000


@dataclass(frozen=True)
class AuditEntry:
    """One audit row. `action` is a stable name (`watch.stop`, `token.create`, …; the list
    is in docs/operations.md#audit). `detail` is a small JSON object of facts that help a
    reader (vendor, ref, cron, channels…), never a secret. `id` is set on rows read back."""

    action: str
    actor_kind: ActorKind
    actor: str
    via: Via
    at: float
    team_id: str | None = None
    channel_id: str | None = None
    watch_id: str | None = None
    schedule_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None

    def __post_init__(self) -> None:
        for name in self.detail:
            if any(word in name.lower() for word in SECRET_KEYS):
                raise ValueError(f"audit detail {name!r} could hold a secret")

    def detail_json(self) -> str:
        text = json.dumps(dict(self.detail), sort_keys=True, separators=(",", ":"))
        if len(text) > MAX_DETAIL_CHARS:  # a bounded row: keep the keys, drop the values
            text = json.dumps({"clipped": sorted(self.detail)[:20]}, separators=(",", ":"))
        return text

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AuditEntry:
        return cls(
            id=int(row["id"]),
            at=float(row["at"]),
            action=row["action"],
            actor_kind=ActorKind(row["actor_kind"]),
            actor=row["actor"],
            via=Via(row["via"]),
            team_id=row.get("team_id"),
            channel_id=row.get("channel_id"),
            watch_id=row.get("watch_id"),
            schedule_id=row.get("schedule_id"),
            detail=json.loads(row.get("detail") or "{}"),
        )


class AuditStore:
    """Store methods for the audit trail (mixed into `storage.store.Store`)."""

    engine: Engine

    @contextmanager
    def audited(self) -> Iterator[None]:
        """One transaction for a change and its audit row: store methods called inside
        join it (docs/architecture.md#audit-trail)."""
        with self.engine.transaction():
            yield

    def audit(self, entry: AuditEntry) -> int:
        """Record `entry`; returns its id. Joins the caller's transaction if one is open."""
        with self.engine.transaction():
            inserted = self.engine.execute(
                "INSERT INTO audit_log (at, actor_kind, actor, action, via, team_id, "
                "channel_id, watch_id, schedule_id, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [
                    entry.at,
                    entry.actor_kind.value,
                    entry.actor,
                    entry.action,
                    entry.via.value,
                    entry.team_id,
                    entry.channel_id,
                    entry.watch_id,
                    entry.schedule_id,
                    entry.detail_json(),
                ],
            )
        return int(inserted.rows[0]["id"])

    def audit_entries(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        actor: str | None = None,
        actor_kind: ActorKind | None = None,
        watch_id: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Rows matching every filter given, newest first, at most `limit`. `since` is
        inclusive, `until` exclusive; `actor` is a Slack user id, a token's name or an
        operator's name (`actor_kind` tells them apart); `watch_id` matches a watch id or
        a schedule id."""
        where, params = [], []
        if since is not None:
            where.append("at >= ?")
            params.append(since)
        if until is not None:
            where.append("at < ?")
            params.append(until)
        if actor is not None:
            where.append("actor = ?")
            params.append(actor)
        if actor_kind is not None:
            where.append("actor_kind = ?")
            params.append(actor_kind.value)
        if watch_id is not None:
            where.append("(watch_id = ? OR schedule_id = ?)")
            params += [watch_id, watch_id]
        sql = "SELECT * FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at DESC, id DESC LIMIT ?"
        rows = self.engine.query(sql, [*params, max(0, limit)])
        return [AuditEntry.from_row(r) for r in rows]
