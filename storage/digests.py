"""The optional digest of quiet scheduled runs (docs/architecture.md#alert-digest): one
message per channel, cadence and zone at a fixed local time, summing up the runs that
posted nothing since the last one.

A digest is one `digests` row, keyed by (channel, cadence, zone, slot time): the first
replica to insert it sums the runs up and marks them as its own in the same transaction;
any other finds the key taken and does nothing. The row then carries its own delivery state,
as an outbox row does: claimed by one replica at a time, marked in flight before the post,
looked up in Slack before a re-post, and marked sent once Slack confirms it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .engine import Engine
from .records import ScheduleStatus

DIGEST_CADENCES = ("daily", "weekly")


@dataclass(frozen=True)
class DigestLine:
    """One schedule's quiet runs in a digest."""

    schedule_id: str
    vendor: str
    ref: str
    ok: int
    failed: int


@dataclass(frozen=True)
class Digest:
    key: str
    channel_id: str
    cadence: str
    tz: str
    slot_at: float
    lines: tuple[DigestLine, ...]
    status: str  # pending | sent | empty | dead
    attempts: int
    in_flight_at: float | None
    ts: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Digest:
        lines = tuple(DigestLine(**line) for line in json.loads(row["summary"] or "[]"))
        return cls(
            key=row["key"],
            channel_id=row["channel_id"],
            cadence=row["cadence"],
            tz=row["tz"],
            slot_at=float(row["slot_at"]),
            lines=lines,
            status=row["status"],
            attempts=int(row["attempts"] or 0),
            in_flight_at=row.get("in_flight_at"),
            ts=row.get("ts"),
        )


def digest_key(channel_id: str, cadence: str, tz: str, slot_at: float) -> str:
    return f"{channel_id}|{cadence}|{tz}|{int(slot_at)}"


# The quiet runs a digest of (channel, cadence, zone) sums up: runs of active schedules
# with that digest, not summed up before, that ended after the digest was turned on.
_UNDIGESTED = (
    "FROM schedule_runs r JOIN schedules s ON s.id = r.schedule_id "
    "WHERE s.channel_id = ? AND s.digest = ? AND s.tz = ? AND s.status = ? "
    "AND r.quiet = 1 AND r.digest_key IS NULL AND r.ended_at >= s.digest_since "
    "AND r.ended_at <= ?"
)


class DigestStore:
    """Store methods for digests; `Store` inherits them."""

    engine: Engine
    _rows: Callable[..., list[dict[str, Any]]]
    _skip_locked: str

    def set_digest(self, schedule_id: str, cadence: str | None, now: float) -> bool:
        """Turn an active schedule's digest on (`daily`/`weekly`, counting runs that end
        from now) or off (None). Returns whether it was changed."""
        with self.engine.transaction():
            changed = self.engine.execute(
                "UPDATE schedules SET digest = ?, digest_since = ? WHERE id = ? AND status = ?",
                [cadence, now if cadence else None, schedule_id, ScheduleStatus.ACTIVE.value],
            )
            return changed.rowcount == 1

    def digest_groups(self) -> list[tuple[str, str, str]]:
        """(channel, cadence, zone) of every active schedule with a digest."""
        rows = self._rows(
            "SELECT DISTINCT channel_id, digest, tz FROM schedules "
            "WHERE status = ? AND digest IS NOT NULL ORDER BY channel_id, digest, tz",
            [ScheduleStatus.ACTIVE.value],
        )
        return [(r["channel_id"], r["digest"], r["tz"]) for r in rows]

    def make_digest(
        self, channel_id: str, cadence: str, tz: str, slot_at: float, now: float
    ) -> Digest | None:
        """The digest of this slot, made once across replicas and restarts: None when it
        was already made (by anyone). A slot with no quiet runs is recorded as `empty` and
        posts nothing."""
        key = digest_key(channel_id, cadence, tz, slot_at)
        # Asked every minute by every replica: a read answers "already made" without
        # taking the write lock; the insert below still decides a race.
        if self.engine.row("SELECT 1 FROM digests WHERE key = ?", [key]):
            return None
        with self.engine.transaction():
            first = self.engine.execute(
                "INSERT INTO digests (key, channel_id, cadence, tz, slot_at, summary, status, "
                "created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, '[]', 'empty', ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING key",
                [key, channel_id, cadence, tz, slot_at, now, now],
            )
            if not first.rows:
                return None
            scope = [channel_id, cadence, tz, ScheduleStatus.ACTIVE.value, now]
            counts = self._rows(
                "SELECT r.schedule_id, s.vendor, s.ref, "
                "SUM(CASE WHEN r.outcome = 'ok' THEN 1 ELSE 0 END) AS ok, "
                "SUM(CASE WHEN r.outcome = 'ok' THEN 0 ELSE 1 END) AS failed "
                f"{_UNDIGESTED} GROUP BY r.schedule_id, s.vendor, s.ref ORDER BY r.schedule_id",
                scope,
            )
            if counts:
                lines = [
                    {
                        "schedule_id": c["schedule_id"],
                        "vendor": c["vendor"],
                        "ref": c["ref"],
                        "ok": int(c["ok"]),
                        "failed": int(c["failed"]),
                    }
                    for c in counts
                ]
                self.engine.execute(
                    "UPDATE schedule_runs SET digest_key = ? WHERE (schedule_id, due_at) IN "
                    f"(SELECT r.schedule_id, r.due_at {_UNDIGESTED})",
                    [key, *scope],
                )
                self.engine.execute(
                    "UPDATE digests SET summary = ?, status = 'pending' WHERE key = ?",
                    [json.dumps(lines), key],
                )
            rows = self._rows("SELECT * FROM digests WHERE key = ?", [key])
        return Digest.from_row(rows[0])

    def claim_digests(self, now: float, owner: str, lease_s: float) -> list[Digest]:
        """Pending digests due now that no other replica is posting, claimed for `owner`
        until `now + lease_s`."""
        # Every delivery round asks; nearly always there is nothing, and a read says so
        # without a write transaction.
        if not self.engine.row(
            "SELECT 1 FROM digests WHERE status = 'pending' AND next_attempt_at <= ? LIMIT 1", [now]
        ):
            return []
        with self.engine.transaction():
            rows = self._rows(
                "UPDATE digests SET owner = :owner, owner_until = :until WHERE key IN "
                "(SELECT key FROM digests WHERE status = 'pending' AND next_attempt_at <= :now "
                "AND (owner_until IS NULL OR owner_until < :now OR owner = :owner) "
                f"ORDER BY created_at LIMIT 20{self._skip_locked}) RETURNING *",
                {"owner": owner, "until": now + lease_s, "now": now},
            )
        return sorted((Digest.from_row(r) for r in rows), key=lambda d: d.slot_at)

    def digest_in_flight(self, key: str, now: float) -> None:
        with self.engine.transaction():
            self.engine.execute("UPDATE digests SET in_flight_at = ? WHERE key = ?", [now, key])

    def digest_sent(self, key: str, ts: str, now: float) -> None:
        with self.engine.transaction():
            self.engine.execute(
                "UPDATE digests SET status = 'sent', ts = ?, sent_at = ?, owner = NULL, "
                "owner_until = NULL WHERE key = ?",
                [ts, now, key],
            )

    def digest_retry(
        self, key: str, next_attempt_at: float, error: str, *, counts: bool = True
    ) -> None:
        """Try again at `next_attempt_at`; `counts` when Slack failed (not when it only
        asked us to wait, or answered that it posted nothing)."""
        with self.engine.transaction():
            self.engine.execute(
                "UPDATE digests SET next_attempt_at = ?, attempts = attempts + ?, "
                "last_error = ?, owner = NULL, owner_until = NULL WHERE key = ?",
                [next_attempt_at, int(counts), error[:300], key],
            )

    def digest_clear_in_flight(self, key: str) -> None:
        with self.engine.transaction():
            self.engine.execute("UPDATE digests SET in_flight_at = NULL WHERE key = ?", [key])

    def digest_dead(self, key: str, error: str) -> None:
        with self.engine.transaction():
            self.engine.execute(
                "UPDATE digests SET status = 'dead', last_error = ?, owner = NULL, "
                "owner_until = NULL WHERE key = ?",
                [error[:300], key],
            )

    def digests(self, channel_id: str) -> list[Digest]:
        rows = self._rows(
            "SELECT * FROM digests WHERE channel_id = ? ORDER BY slot_at, key", [channel_id]
        )
        return [Digest.from_row(r) for r in rows]
