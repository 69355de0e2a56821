"""Per-channel notification settings (docs/architecture.md#channel-settings): the record,
its quiet-hours arithmetic, and the store methods that read and write it.

A channel without a row gets `ChannelSettings.default(channel)`, which is how syncwatch
behaved before settings existed: the requester is mentioned on every terminal reply, no
broadcast, no cc, no routes, no quiet hours.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .records import NewWatch, OutboxRow

if TYPE_CHECKING:
    from .engine import Engine, Result


class MentionPolicy(StrEnum):
    ALWAYS = "always"  # every terminal reply mentions the requester (the default)
    FAILURES = "failures"  # only failed, partial, cancelled, expired and timed-out ones
    NEVER = "never"


# Route keys in `ChannelSettings.routes`: a vendor's key, or a connection name (any vendor).
VENDOR_ROUTE = "vendor:"
CONNECTION_ROUTE = "connection:"


@dataclass(frozen=True)
class QuietHours:
    """A daily quiet window in `tz`, from `start` to `end` ("HH:MM"); when `end` is not
    after `start` the window crosses midnight. Arithmetic is done on epoch seconds of the
    zone's wall times, so a DST change moves the window with the clock on the wall."""

    start: str
    end: str
    tz: str

    def until(self, now: float) -> float | None:
        """The end of the quiet window `now` falls in (epoch seconds), or None when `now`
        is not quiet."""
        zone = ZoneInfo(self.tz)
        today = dt.datetime.fromtimestamp(now, zone).date()
        start, end = _hhmm(self.start), _hhmm(self.end)
        for day in (today - dt.timedelta(days=1), today):
            opens = dt.datetime.combine(day, start, tzinfo=zone).timestamp()
            end_day = day if end > start else day + dt.timedelta(days=1)
            closes = dt.datetime.combine(end_day, end, tzinfo=zone).timestamp()
            if opens <= now < closes:
                return closes
        return None


def _hhmm(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


@dataclass(frozen=True)
class ChannelSettings:
    channel_id: str
    mention: MentionPolicy = MentionPolicy.ALWAYS
    broadcast_failures: bool = False
    cc_users: tuple[str, ...] = ()
    cc_groups: tuple[str, ...] = ()
    # `vendor:<key>` or `connection:<name>` -> the channel those watches post into.
    routes: tuple[tuple[str, str], ...] = ()
    quiet: QuietHours | None = None
    updated_by: str | None = None
    updated_at: float = 0.0

    @classmethod
    def default(cls, channel_id: str) -> ChannelSettings:
        return cls(channel_id)

    @property
    def is_default(self) -> bool:
        return self == ChannelSettings(
            self.channel_id, updated_by=self.updated_by, updated_at=self.updated_at
        )

    def route_for(self, vendor: str, connection: str) -> tuple[str, str] | None:
        """(channel, why) for a new watch of `vendor` on `connection` started here, when it
        belongs in another channel: a connection's route wins over its vendor's."""
        routes = dict(self.routes)
        for key in (CONNECTION_ROUTE + connection, VENDOR_ROUTE + vendor):
            target = routes.get(key)
            if target and target != self.channel_id:
                return target, key
        return None

    def mentions_requester(self, failure: bool) -> bool:
        if self.mention == MentionPolicy.NEVER:
            return False
        return failure or self.mention == MentionPolicy.ALWAYS

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ChannelSettings:
        quiet = None
        if row.get("quiet_start") and row.get("quiet_end") and row.get("quiet_tz"):
            quiet = QuietHours(row["quiet_start"], row["quiet_end"], row["quiet_tz"])
        return cls(
            channel_id=row["channel_id"],
            mention=MentionPolicy(row["mention"]),
            broadcast_failures=bool(row["broadcast_failures"]),
            cc_users=tuple(json.loads(row["cc_users"] or "[]")),
            cc_groups=tuple(json.loads(row["cc_groups"] or "[]")),
            routes=tuple(sorted(json.loads(row["routes"] or "{}").items())),
            quiet=quiet,
            updated_by=row.get("updated_by"),
            updated_at=row.get("updated_at") or 0.0,
        )

    def as_row(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "mention": self.mention.value,
            "broadcast_failures": int(self.broadcast_failures),
            "cc_users": json.dumps(list(self.cc_users)),
            "cc_groups": json.dumps(list(self.cc_groups)),
            "routes": json.dumps(dict(self.routes), sort_keys=True),
            "quiet_start": self.quiet.start if self.quiet else None,
            "quiet_end": self.quiet.end if self.quiet else None,
            "quiet_tz": self.quiet.tz if self.quiet else None,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at,
        }


class ChannelSettingsStore:
    """Store methods for channel settings and the outbox rows quiet hours hold. Mixed into
    `Store`, whose engine and helpers they use."""

    if TYPE_CHECKING:
        engine: Engine

        def _rows(
            self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
        ) -> list[dict[str, Any]]: ...

        def _insert(
            self,
            table: str,
            values: dict[str, Any],
            *,
            on_conflict: str = "",
            returning: str = "",
        ) -> Result: ...

    def channel_settings(self, channel_id: str) -> ChannelSettings:
        rows = self._rows("SELECT * FROM channel_settings WHERE channel_id = ?", [channel_id])
        return ChannelSettings.from_row(rows[0]) if rows else ChannelSettings.default(channel_id)

    def save_channel_settings(self, settings: ChannelSettings) -> None:
        """Replace the channel's settings (one row per channel)."""
        row = settings.as_row()
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "channel_id")
        with self.engine.transaction():
            self.engine.execute(
                f"INSERT INTO channel_settings ({columns}) VALUES ({marks}) "
                f"ON CONFLICT (channel_id) DO UPDATE SET {updates}",
                list(row.values()),
            )

    def settings_of_channels(
        self, channel_ids: Sequence[str] | None = None, limit: int = 20
    ) -> list[ChannelSettings]:
        """Stored settings of `channel_ids` (or of every channel that has any), newest
        change first, at most `limit`."""
        if channel_ids is not None and not channel_ids:
            return []
        sql, params = "SELECT * FROM channel_settings", []
        if channel_ids is not None:
            sql += f" WHERE channel_id IN ({', '.join('?' for _ in channel_ids)})"
            params = list(channel_ids)
        sql += " ORDER BY updated_at DESC, channel_id LIMIT ?"
        return [ChannelSettings.from_row(r) for r in self._rows(sql, [*params, limit])]

    def routed(self, draft: NewWatch) -> NewWatch:
        """The draft as it will be made: in the channel its channel's routes name for its
        vendor or connection (docs/architecture.md#channel-settings). Every new watch is made
        through `Store.create_watches`, which calls this inside its transaction."""
        route = self.channel_settings(draft.channel_id).route_for(draft.vendor, draft.connection)
        if route is None:
            return draft
        return replace(draft, channel_id=route[0])

    # -- quiet hours: held outbox rows --------------------------------------------------------

    def hold_outbox(self, row_id: int, until: float) -> None:
        """Hold a thread row until quiet hours end: it stays pending (so a crash loses
        nothing) and, unlike a deferred row, doesn't hold back the rows after it."""
        with self.engine.transaction():
            self.engine.execute(
                "UPDATE outbox SET held_until = ?, next_attempt_at = ? "
                "WHERE id = ? AND status = 'pending'",
                [until, until, row_id],
            )

    def held_rows(self, watch_id: str) -> list[OutboxRow]:
        """The watch's pending thread rows held for quiet hours, oldest first."""
        rows = self._rows(
            "SELECT * FROM outbox WHERE watch_id = ? AND status = 'pending' "
            "AND held_until IS NOT NULL ORDER BY id",
            [watch_id],
        )
        return [OutboxRow.from_row(r) for r in rows]

    def mark_rows_sent(self, row_ids: Sequence[int], now: float, slack_ref: str | None) -> None:
        """Mark every row a digest covered sent, together."""
        if not row_ids:
            return
        marks = ", ".join("?" for _ in row_ids)
        with self.engine.transaction():
            self.engine.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, slack_ref = ? "
                f"WHERE id IN ({marks}) AND status = 'pending'",
                [now, slack_ref, *row_ids],
            )
