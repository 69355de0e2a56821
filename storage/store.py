"""The store API: watches, their transitions, the Slack outbox and parent message refs.

Every write is one `BEGIN IMMEDIATE` transaction; a poll's state change and the outbox
rows that announce it commit together, so a crash never leaves one without the other.
Times are epoch seconds passed in by the caller (the store has no clock of its own).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .alerts import OUTBOX_STATUS, AlertStore
from .audit import AuditEntry, AuditStore
from .db import SqliteEngine
from .digests import DigestStore
from .engine import DatabaseURL, Engine, Result, integrity_errors, parse_database_url
from .migrations import apply as apply_migrations
from .migrations import apply_postgres
from .progress import ProgressPointsStore
from .records import (
    ACTIVE,
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
)
from .settings import ChannelSettingsStore

INTEGRITY_ERRORS = integrity_errors()

# next_poll_at moved up to a time (two parameters, both that time), never pushed back.
_DUE_BY = "CASE WHEN next_poll_at IS NULL OR next_poll_at > ? THEN ? ELSE next_poll_at END"

_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o/1/l: ids are read aloud and typed

# The one table of a watch's life: each status, and the statuses it may be reached from.
# Every status change goes through `Store._move`, which enforces this in its WHERE clause,
# so a stop that lands mid-poll, or a retry racing a stop, can't undo the other.
MOVES: dict[WatchStatus, tuple[WatchStatus, ...]] = {
    DONE: (ACTIVE,),  # the job ended, or the watch ran out of time (a poll decided)
    STOPPED: (ACTIVE, PAUSED),  # a person stopped watching
    PAUSED: (ACTIVE,),  # Slack closed the channel to us
    ACTIVE: (DONE,),  # "Retry sync" runs a finished sync again, same message and thread
}


class DuplicateWatchError(Exception):
    """An active watch of the same job already exists in that channel."""

    def __init__(self, existing: Watch) -> None:
        super().__init__(f"already watching as {existing.id}")
        self.existing = existing


class TokenNameTaken(Exception):
    """A token of that name already exists."""


@dataclass(frozen=True)
class IdempotencyRecord:
    """What an `Idempotency-Key` already stands for: the request's body digest, and once
    it is answered, the watch and the status it was answered with (None while the first
    request with that key is still being answered)."""

    body_digest: str
    watch_id: str | None
    status: int | None


class Store(AuditStore, ChannelSettingsStore, AlertStore, DigestStore, ProgressPointsStore):
    """The only door to the database. Safe to share across threads."""

    def __init__(self, database: str | DatabaseURL, *, pool_size: int | None = None) -> None:
        """Open (and migrate) the database `database` names: a SQLite path or URL, or a
        PostgreSQL DSN (see `engine.parse_database_url`). Raises DatabaseUnavailable, with
        a reason for the operator, when it can't be written."""
        url = database if isinstance(database, DatabaseURL) else parse_database_url(database)
        self.url = url
        self.engine: Engine
        if url.dialect == "postgresql":
            from .postgres import DEFAULT_POOL_SIZE, PostgresEngine

            self.engine = PostgresEngine(url.target, pool_size=pool_size or DEFAULT_POOL_SIZE)
            try:
                with self.engine.transaction():
                    apply_postgres(lambda sql: [tuple(r.values()) for r in self.engine.query(sql)])
            except BaseException:
                self.engine.close()
                raise
        else:
            engine = SqliteEngine(url.target)
            self.engine = engine
            try:
                with engine.pool.immediate() as db:
                    apply_migrations(db)
            except BaseException:
                engine.close()
                raise
        # Claims on PostgreSQL skip rows another replica's claim has locked, instead of
        # queueing behind it (SQLite serializes writers anyway).
        self._skip_locked = " FOR UPDATE SKIP LOCKED" if url.dialect == "postgresql" else ""
        # A budget row is written on every poll (and every Slack post) by every replica,
        # and each write held the row's lock until its commit had reached the disk (0.3 ms
        # here, far more on a busy disk): one account's polls, all replicas together, went
        # no faster than that. These writes alone commit without waiting for the disk; a
        # server crash may then forget its last fraction of a second of takes, letting a
        # few more calls through once, which the vendor's 429 handling absorbs.
        self._no_flush = (
            "set_config('synchronous_commit', 'off', true) = 'off'"
            if url.dialect == "postgresql"
            else "1 = 1"
        )

    def close(self) -> None:
        self.engine.close()

    def problem(self) -> str | None:
        """None while the database takes writes; else a short reason for people ("the
        database file was deleted or moved", "the database is read-only", "PostgreSQL
        can't be reached"). Cheap enough for every command and every /healthz. While there
        is one, every write raises DatabaseUnavailable and changes nothing
        (docs/operations.md#the-database-goes-away)."""
        return self.engine.problem()

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        return self.engine.query(sql, params)

    def _insert(
        self, table: str, values: dict[str, Any], *, on_conflict: str = "", returning: str = ""
    ) -> Result:
        columns = ", ".join(f"[{c}]" for c in values)
        marks = ", ".join("?" for _ in values)
        tail = f" ON CONFLICT {on_conflict}" if on_conflict else ""
        tail += f" RETURNING {returning}" if returning else ""
        return self.engine.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks}){tail}", list(values.values())
        )

    def _update(self, table: str, row_id: Any, values: dict[str, Any]) -> int:
        assignments = ", ".join(f"[{c}] = ?" for c in values)
        return self.engine.execute(
            f"UPDATE {table} SET {assignments} WHERE id = ?", [*values.values(), row_id]
        ).rowcount

    # -- watches ---------------------------------------------------------------------------

    def create_watches(
        self,
        drafts: Iterable[NewWatch],
        now: float,
        audit: Callable[[Watch], AuditEntry] | None = None,
    ) -> list[Watch]:
        """Create watches, each with its parent-post outbox row, all or none; with `audit`,
        each one's audit row too, in the same transaction (docs/architecture.md#audit-trail).

        Raises DuplicateWatchError (nothing created) if any job is already actively
        watched in its channel.
        """
        drafts = list(drafts)
        created = []
        try:
            created = self._create_watches(drafts, now, audit)
        except INTEGRITY_ERRORS:
            # Two replicas created the same watch at once: the unique index let one through.
            for draft in map(self.routed, drafts):
                existing = self.find_active(draft.vendor, draft.ref, draft.channel_id)
                if existing is not None:
                    raise DuplicateWatchError(existing) from None
            raise
        return created

    def _create_watches(
        self,
        drafts: list[NewWatch],
        now: float,
        audit: Callable[[Watch], AuditEntry] | None = None,
    ) -> list[Watch]:
        created: dict[tuple[str, str, str], Watch] = {}
        with self.engine.transaction():
            for draft in map(self.routed, drafts):
                job = (draft.vendor, draft.ref, draft.channel_id)
                if job in created:  # the same job twice in one batch: all or none
                    raise DuplicateWatchError(created[job])
                # No look-up first: the unique index on the active job refuses a second one
                # (create_watches turns that into DuplicateWatchError), one statement fewer
                # on every creation (docs/architecture.md#watch-api).
                row = self._insert_new_id(
                    "w",
                    "watches",
                    {
                        "vendor": draft.vendor,
                        "ref": draft.ref,
                        "connection": draft.connection,
                        "team_id": draft.team_id,
                        "channel_id": draft.channel_id,
                        "requester_id": draft.requester_id,
                        "status": ACTIVE,
                        "interval_s": draft.interval_s,
                        "created_at": now,
                        "updated_at": now,
                        "next_poll_at": now,
                        "attempts": 0,
                        "polls": 0,
                        "deadline": draft.deadline,
                        "trigger_pending": int(draft.trigger),
                        "token_name": draft.token_name,
                        "requested_by": draft.requested_by,
                    },
                )
                watch = Watch.from_row(row)
                self._queue(watch.id, OutboxKind.PARENT, now)
                created[job] = watch
                if audit is not None:
                    self.audit(audit(watch))
        return list(created.values())

    def _insert_new_id(self, prefix: str, table: str, values: dict[str, Any]) -> dict[str, Any]:
        """Insert a row under a new short random id; the stored row. A taken id changes
        nothing (ON CONFLICT on the id alone: any other unique key still raises) and another
        is drawn, longer once the short ones are crowded."""
        length = 3
        while True:
            for _ in range(8):
                candidate = prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))
                inserted = self._insert(
                    table,
                    {"id": candidate, **values},
                    on_conflict="(id) DO NOTHING",
                    returning="*",
                )
                if inserted.rows:
                    return inserted.rows[0]
            length += 1

    def get_watch(self, watch_id: str) -> Watch | None:
        rows = self._rows("SELECT * FROM watches WHERE id = ?", [watch_id])
        return Watch.from_row(rows[0]) if rows else None

    def find_active(self, vendor: str, ref: str, channel_id: str) -> Watch | None:
        rows = self._rows(
            "SELECT * FROM watches WHERE vendor = ? AND ref = ? AND channel_id = ? "
            "AND status = 'active'",
            [vendor, ref, channel_id],
        )
        return Watch.from_row(rows[0]) if rows else None

    def find_active_in(self, vendor: str, ref: str, channels: Sequence[str]) -> list[Watch]:
        """Active watches of one job in any of `channels` (a vendor callback's scope)."""
        if not channels:
            return []
        marks = ", ".join("?" for _ in channels)
        rows = self._rows(
            "SELECT * FROM watches WHERE vendor = ? AND ref = ? AND status = 'active' "
            f"AND channel_id IN ({marks}) ORDER BY created_at",
            [vendor, ref, *channels],
        )
        return [Watch.from_row(r) for r in rows]

    def result_file_names(self, watch_id: str) -> list[str]:
        """The names of the result files queued for a watch's thread, in order (notes
        instead of files are not named)."""
        rows = self._rows(
            "SELECT payload FROM outbox WHERE watch_id = ? AND kind = 'upload' ORDER BY id",
            [watch_id],
        )
        names = (json.loads(r["payload"] or "{}").get("filename") for r in rows)
        return [str(n) for n in names if n]

    def list_watches(
        self,
        *,
        channel_id: str | None = None,
        requester_id: str | None = None,
        statuses: Sequence[str] | None = (ACTIVE,),
        limit: int = 100,
    ) -> list[Watch]:
        where, params = [], []
        if channel_id is not None:
            where.append("channel_id = ?")
            params.append(channel_id)
        if requester_id is not None:
            where.append("requester_id = ?")
            params.append(requester_id)
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        sql = "SELECT * FROM watches"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id LIMIT ?"
        return [Watch.from_row(r) for r in self._rows(sql, [*params, limit])]

    def claim_due(
        self, now: float, owner: str, lease_s: float, limit: int, early: float = 0.0
    ) -> list[Watch]:
        """Lease up to `limit` active watches whose poll is due by `now + early`. One
        statement, so two pollers never claim the same watch; an expired lease (crashed
        poller) is reclaimable."""
        if limit <= 0:
            return []
        with self.engine.transaction():
            rows = self._rows(
                "UPDATE watches SET lease_until = :lease, lease_owner = :owner "
                "WHERE id IN (SELECT id FROM watches WHERE status = 'active' "
                "AND next_poll_at <= :due AND (lease_until IS NULL OR lease_until < :now) "
                f"ORDER BY next_poll_at LIMIT :limit{self._skip_locked}) RETURNING *",
                {
                    "lease": now + lease_s,
                    "owner": owner,
                    "now": now,
                    "due": now + early,
                    "limit": limit,
                },
            )
        return sorted((Watch.from_row(r) for r in rows), key=lambda w: w.next_poll_at or 0)

    def poll_soon(self, watch_id: str, now: float) -> None:
        """Make an active watch due now (the Refresh button, a vendor callback). While it is
        being polled, that poll may have asked before the news: the next one then goes at
        once when it is applied (`poll_again`), instead of an interval later."""
        with self.engine.transaction():
            self.engine.execute(
                f"UPDATE watches SET next_poll_at = {_DUE_BY}, poll_again = CASE WHEN "
                "lease_owner IS NULL THEN poll_again ELSE 1 END "
                "WHERE id = ? AND status = 'active'",
                [now, now, watch_id],
            )

    def poll_all_soon(self, now: float) -> int:
        """Make every active watch due now, in one statement (`poll_soon` for all of them:
        an operator's "check everything", a benchmark's drain). Returns how many."""
        with self.engine.transaction():
            cursor = self.engine.execute(
                f"UPDATE watches SET next_poll_at = {_DUE_BY} WHERE status = 'active'",
                [now, now],
            )
            return cursor.rowcount

    def poll_backlog(self, before: float) -> tuple[int, float | None]:
        """(active watches due at or before `before`, the earliest due time among them):
        how far behind the poller is (a leased watch counts until its poll is applied)."""
        count, oldest = self.engine.row(
            "SELECT COUNT(*), MIN(next_poll_at) FROM watches "
            "WHERE status = 'active' AND next_poll_at <= ?",
            [before],
        )
        return int(count), oldest

    def apply_poll(self, watch_id: str, owner: str, result: PollResult, now: float) -> bool:
        """Apply one poll's outcome if this poller still holds the lease and the watch is
        still active (a stop that landed mid-poll wins). Returns whether it was applied."""
        changes = {
            **result.changes,
            "updated_at": now,
            "lease_until": None,
            "lease_owner": None,
        }
        to = changes.pop("status", ACTIVE)
        # One conditional UPDATE instead of a read and sqlite-utils' update() (which reads
        # the row and the schema again): this runs thousands of times a minute.
        assignments = [f"[{column}] = ?" for column in changes]
        values = list(changes.values())
        next_poll = changes.get("next_poll_at")
        if next_poll is not None:  # asked for again during this poll: the next one at once
            at = assignments.index("[next_poll_at] = ?")
            assignments[at] = "[next_poll_at] = CASE WHEN poll_again = 1 THEN ? ELSE ? END"
            values[at : at + 1] = [min(next_poll, now), next_poll]
        stay_active = (
            f"UPDATE watches SET {', '.join(assignments)}, poll_again = 0 "
            "WHERE id = ? AND status = ? AND lease_owner = ?",
            [*values, watch_id, ACTIVE, owner],
        )
        quiet = not (result.transition or result.update_parent or result.notes or result.uploads)
        if to == ACTIVE and quiet:  # most polls: nothing to announce, one statement alone
            return self.engine.execute(*stay_active).rowcount == 1
        with self.engine.transaction():
            if to != ACTIVE:
                applied = self._move(watch_id, WatchStatus(to), changes, owner=owner)
            else:
                applied = self.engine.execute(*stay_active).rowcount == 1
            if not applied:
                return False
            self._record(watch_id, result.transition, result.update_parent, now)
            for note in result.notes:
                self._record(watch_id, TransitionDraft(event=Event.NOTE, note=note), False, now)
            for payload in result.uploads:
                self._queue(watch_id, OutboxKind.UPLOAD, now, payload=payload)
            if to == DONE:  # a scheduled run's streak moves with its end, in this transaction
                self._run_ended(watch_id, now)
            return True

    def _move(
        self,
        watch_id: str,
        to: WatchStatus,
        columns: dict[str, Any],
        *,
        owner: str | None = None,
    ) -> bool:
        """The one place a watch's status changes: to `to`, only from a status MOVES allows
        (and, for a poll, only while `owner` holds the lease), with `columns` set alongside.
        Returns whether the watch moved."""
        sources = MOVES[to]
        values = {**columns, "status": to.value}
        assignments = ", ".join(f"[{column}] = ?" for column in values)
        sql = (
            f"UPDATE watches SET {assignments} "
            f"WHERE id = ? AND status IN ({', '.join('?' for _ in sources)})"
        )
        params = [*values.values(), watch_id, *(s.value for s in sources)]
        if owner is not None:
            sql += " AND lease_owner = ?"
            params.append(owner)
        return self.engine.execute(sql, params).rowcount == 1

    def stop_watch(self, watch_id: str, by: str, now: float) -> Watch | None:
        """Stop an active or paused watch. Returns the stopped watch, or None if it was not
        running (already done or stopped)."""
        with self.engine.transaction():
            current = self.get_watch(watch_id)
            if current is None:
                return None
            moved = self._move(
                watch_id,
                STOPPED,
                {
                    "stopped_by": by,
                    "finished_at": now,
                    "updated_at": now,
                    "next_poll_at": None,
                    "lease_until": None,
                    "lease_owner": None,
                },
            )
            if not moved:
                return None
            draft = TransitionDraft(
                event=Event.STOPPED, from_state=current.state, to_state=current.state, actor=by
            )
            self._record(watch_id, draft, True, now)
            self._run_stopped(watch_id)
        return self.get_watch(watch_id)

    def restart_sync(
        self, watch_id: str, by: str, now: float, deadline: float, *, note: str
    ) -> Watch | None:
        """ "Retry sync": make a finished sync watch active again, to trigger on its next
        poll, in the same message and thread (with `note`, by `by`). None if it isn't a
        finished watch or the same datasource is already being synced in that channel."""
        with self.engine.transaction():
            current = self.get_watch(watch_id)
            if current is None or current.status != DONE:
                return None
            if self.find_active(current.vendor, current.ref, current.channel_id) is not None:
                return None
            moved = self._move(
                watch_id,
                ACTIVE,
                {
                    "trigger_pending": 1,
                    "polls": 0,
                    "attempts": 0,
                    "last_error": None,
                    "finished_at": None,
                    "next_poll_at": now,
                    "deadline": deadline,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if not moved:
                return None
            draft = TransitionDraft(event=Event.NOTE, actor=by, note=note)
            self._record(watch_id, draft, True, now)
        return self.get_watch(watch_id)

    def add_to_thread_once(
        self,
        watch_id: str,
        draft: TransitionDraft,
        uploads: Sequence[dict[str, Any]],
        now: float,
    ) -> bool:
        """Post something extra into a watch's thread (a reply for `draft`, then `uploads`)
        unless an entry of the same event is already there: a double click does one thing."""
        with self.engine.transaction():
            seen = self.engine.row(
                "SELECT 1 FROM transitions WHERE watch_id = ? AND event = ?",
                [watch_id, draft.event],
            )
            if seen:
                return False
            self._record(watch_id, draft, False, now)
            for payload in uploads:
                self._queue(watch_id, OutboxKind.UPLOAD, now, payload=payload)
            return True

    def pause_watch(self, watch_id: str, reason: str, now: float) -> None:
        """Stop polling and delivering: Slack says the channel is gone or closed to us."""
        with self.engine.transaction():
            self._move(
                watch_id,
                PAUSED,
                {
                    "pause_reason": reason,
                    "updated_at": now,
                    "next_poll_at": None,
                    "lease_until": None,
                    "lease_owner": None,
                },
            )
            self.engine.execute(
                "UPDATE outbox SET status = 'dead', last_error = ? "
                "WHERE watch_id = ? AND status IN ('pending', 'held')",
                [reason, watch_id],
            )

    def _record(
        self,
        watch_id: str,
        draft: TransitionDraft | None,
        update_parent: bool,
        now: float,
    ) -> None:
        # Parent edit before the reply: the thread then never runs ahead of the message.
        if update_parent:
            self._queue(watch_id, OutboxKind.PARENT, now)
        if draft is not None:
            inserted = self._insert(
                "transitions", {"watch_id": watch_id, "at": now, **draft.__dict__}, returning="id"
            )
            transition_id = inserted.rows[0]["id"]
            self._queue(watch_id, OutboxKind.REPLY, now, transition_id=transition_id)

    # -- transitions -----------------------------------------------------------------------

    def get_transition(self, transition_id: int) -> Transition | None:
        rows = self._rows("SELECT * FROM transitions WHERE id = ?", [transition_id])
        return Transition.from_row(rows[0]) if rows else None

    def transitions(self, watch_id: str) -> list[Transition]:
        rows = self._rows("SELECT * FROM transitions WHERE watch_id = ? ORDER BY id", [watch_id])
        return [Transition.from_row(r) for r in rows]

    # -- outbox ----------------------------------------------------------------------------

    def _queue(
        self,
        watch_id: str,
        kind: str,
        now: float,
        *,
        transition_id: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        # `held` instead of `pending` while the watch is a held scheduled run
        # (docs/architecture.md#alert-policy); one statement either way.
        self.engine.execute(
            "INSERT INTO outbox (watch_id, kind, transition_id, payload, status, created_at, "
            f"next_attempt_at, attempts) VALUES (?, ?, ?, ?, {OUTBOX_STATUS}, ?, ?, 0)",
            [watch_id, kind, transition_id, json.dumps(payload or {}), watch_id, now, now],
        )

    # A row waits while an earlier row of the same watch is deferred past `now`, so each
    # thread reads in order. Parent rows (edits of the top message) and thread rows are two
    # queues: a parent row waits only for earlier parent rows (a reply waiting for a parent
    # must not block that parent), and a thread row waits for an earlier parent row only
    # while the parent message doesn't exist yet. A paced or throttled edit of the top
    # message must not hold back the reply that tells the person their job ended. A row held
    # for quiet hours (`held_until`) holds back nothing: a failure after it posts at once
    # (docs/architecture.md#channel-settings).
    _NOT_BLOCKED = (
        "NOT EXISTS (SELECT 1 FROM outbox p WHERE p.watch_id = o.watch_id "
        "AND p.status = 'pending' AND p.id < o.id AND p.next_attempt_at > :now "
        "AND p.held_until IS NULL "
        "AND (CASE WHEN o.kind = 'parent' THEN p.kind = 'parent' "
        "ELSE p.kind != 'parent' OR NOT EXISTS "
        "(SELECT 1 FROM slack_messages m WHERE m.watch_id = o.watch_id) END))"
    )

    def due_outbox(self, now: float, limit: int = 200) -> list[OutboxRow]:
        """Pending rows that may go now, oldest first, each thread read in order."""
        rows = self._rows(
            "SELECT * FROM outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= :now "
            f"AND {self._NOT_BLOCKED} ORDER BY o.id LIMIT :limit",
            {"now": now, "limit": limit},
        )
        return [OutboxRow.from_row(r) for r in rows]

    # A watch's Slack deliveries belong to one replica at a time (its claim lapses unless
    # renewed by that replica's heartbeat), so each thread is written in order by one writer.
    _FREE_FOR = "(w.outbox_until IS NULL OR w.outbox_until < :now OR w.outbox_owner = :owner)"

    def claim_outbox(
        self, now: float, owner: str, lease_s: float, limit: int = 200
    ) -> list[OutboxRow]:
        """Claim up to `limit` watches that have rows due now (and no other live claim),
        and return those watches' due rows, oldest first, each thread read in order. The
        claim is given back with `release_outbox` or lapses after `lease_s`."""
        with self.engine.transaction():
            claimed = self.engine.execute(
                "UPDATE watches SET outbox_owner = :owner, outbox_until = :until "
                "WHERE id IN (SELECT w.id FROM watches w WHERE w.id IN ("
                "SELECT o.watch_id FROM outbox o WHERE o.status = 'pending' "
                f"AND o.next_attempt_at <= :now AND {self._NOT_BLOCKED}) "
                f"AND {self._FREE_FOR} LIMIT :limit{self._skip_locked}) RETURNING id",
                {"owner": owner, "until": now + lease_s, "now": now, "limit": limit},
            )
            ids = [r["id"] for r in claimed.rows]
            if not ids:
                return []
            marks = ", ".join("?" for _ in ids)
            rows = self._rows(
                f"SELECT * FROM outbox o WHERE o.watch_id IN ({marks}) AND o.status = 'pending' "
                f"AND o.next_attempt_at <= ? AND {self._NOT_BLOCKED.replace(':now', '?')} "
                "ORDER BY o.id",
                [*ids, now, now],
            )
        return [OutboxRow.from_row(r) for r in rows]

    def release_outbox(self, owner: str, watch_id: str) -> None:
        """Give back the claim on a watch's deliveries (its round is over)."""
        self.engine.execute(
            "UPDATE watches SET outbox_owner = NULL, outbox_until = NULL "
            "WHERE id = ? AND outbox_owner = ?",
            [watch_id, owner],
        )

    def next_outbox_at(self, now: float, owner: str = "") -> float | None:
        """When the next row may go. Rows blocked behind a deferred row don't count (their
        blocker does), nor rows of watches another replica is delivering: neither may make
        the notifier's loop spin until their time comes."""
        row = self.engine.row(
            "SELECT MIN(o.next_attempt_at) FROM outbox o JOIN watches w ON w.id = o.watch_id "
            f"WHERE o.status = 'pending' AND {self._NOT_BLOCKED} AND {self._FREE_FOR}",
            {"now": now, "owner": owner},
        )
        return row[0] if row else None

    def pending_parent_upto(self, watch_id: str) -> tuple[int, Watch | None]:
        """The newest pending parent row id and the watch as of the same read, so a render
        from this watch covers every row up to that id (later rows stay pending)."""
        with self.engine.transaction():
            row = self.engine.row(
                "SELECT MAX(id) FROM outbox WHERE watch_id = ? AND kind = 'parent' "
                "AND status = 'pending'",
                [watch_id],
            )
            return (row[0] or 0), self.get_watch(watch_id)

    def mark_sent(self, row_id: int, now: float, slack_ref: str | None = None) -> None:
        with self.engine.transaction():
            self._update(
                "outbox", row_id, {"status": "sent", "sent_at": now, "slack_ref": slack_ref}
            )

    def note_upload(self, row_id: int, file_id: str, now: float) -> None:
        """Record the Slack file id before its bytes are sent (see `upload_file_id`)."""
        with self.engine.transaction():
            self._update("outbox", row_id, {"upload_file_id": file_id, "upload_started_at": now})

    def pending_upload_paths(self) -> set[str]:
        """Spool files that pending upload rows still need."""
        return self._pending_upload_refs("path")

    def _pending_upload_refs(self, field: str) -> set[str]:
        """The `field` (a spool path, a stored file id) of every pending or held upload row
        (a held one may still be released: docs/architecture.md#alert-policy)."""
        rows = self._rows(
            "SELECT payload FROM outbox WHERE kind = 'upload' AND status IN ('pending', 'held')"
        )
        refs = (json.loads(r["payload"] or "{}").get(field) for r in rows)
        return {ref for ref in refs if ref}

    def mark_in_flight(self, row_id: int, now: float) -> None:
        with self.engine.transaction():
            self._update("outbox", row_id, {"in_flight_at": now})

    def clear_in_flight(self, row_id: int) -> None:
        """Slack answered that it did nothing (e.g. rate limited): no lookup needed."""
        with self.engine.transaction():
            self._update("outbox", row_id, {"in_flight_at": None})

    def in_flight_since(self, row_id: int) -> float | None:
        row = self.engine.row("SELECT in_flight_at FROM outbox WHERE id = ?", [row_id])
        return row[0] if row else None

    def upload_file_id(self, row_id: int) -> str | None:
        """The file id of an earlier, interrupted attempt at this upload row, if any."""
        row = self.engine.row("SELECT upload_file_id FROM outbox WHERE id = ?", [row_id])
        return row[0] if row else None

    def mark_parent_rows_sent(self, watch_id: str, upto_id: int, now: float) -> None:
        with self.engine.transaction():
            self.engine.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ? WHERE watch_id = ? "
                "AND kind = 'parent' AND status = 'pending' AND id <= ?",
                [now, watch_id, upto_id],
            )

    def postpone(self, row_id: int, next_attempt_at: float) -> None:
        """Move a pending row's next attempt without counting a failed one: for waits where
        Slack did nothing (our own pacing, a 429). `last_error` keeps the last real error."""
        with self.engine.transaction():
            self.engine.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND status = 'pending'",
                [next_attempt_at, row_id],
            )

    def defer(self, row_id: int, next_attempt_at: float, error: str) -> None:
        """Retry a row later after a failed attempt (counts toward giving up)."""
        with self.engine.transaction():
            self.engine.execute(
                "UPDATE outbox SET next_attempt_at = ?, attempts = attempts + 1, last_error = ? "
                "WHERE id = ?",
                [next_attempt_at, error, row_id],
            )

    def mark_dead(self, row_id: int, error: str) -> None:
        with self.engine.transaction():
            self._update("outbox", row_id, {"status": "dead", "last_error": error})

    def outbox_rows(self, watch_id: str) -> list[OutboxRow]:
        rows = self._rows("SELECT * FROM outbox WHERE watch_id = ? ORDER BY id", [watch_id])
        return [OutboxRow.from_row(r) for r in rows]

    def outbox_backlog(self, now: float) -> tuple[int, float]:
        """(pending rows, age in seconds of the oldest) for metrics. Rows held for quiet
        hours count, but not toward the age: they are waiting on purpose."""
        count, oldest = self.engine.row(
            "SELECT COUNT(*), MIN(CASE WHEN held_until IS NULL THEN created_at END) "
            "FROM outbox WHERE status = 'pending'"
        )
        return count, (now - oldest) if oldest is not None else 0.0

    # -- parent messages -------------------------------------------------------------------

    def parent_ref(self, watch_id: str) -> ParentRef | None:
        rows = self._rows("SELECT * FROM slack_messages WHERE watch_id = ?", [watch_id])
        if not rows:
            return None
        row = rows[0]
        return ParentRef(row["watch_id"], row["channel_id"], row["ts"], bool(row["editable"]))

    def parent_posted(
        self, watch_id: str, channel_id: str, ts: str, upto_id: int, now: float
    ) -> None:
        """Store the parent's ts and mark the parent rows it covers sent, in one transaction,
        so replies can never be sent before the ts they thread under is known."""
        with self.engine.transaction():
            self.engine.execute(
                "INSERT INTO slack_messages (watch_id, channel_id, ts, posted_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (watch_id) DO UPDATE SET "
                "channel_id = excluded.channel_id, ts = excluded.ts, "
                "posted_at = excluded.posted_at",
                [watch_id, channel_id, ts, now],
            )
            self.mark_parent_rows_sent(watch_id, upto_id, now)

    def parent_not_editable(self, watch_id: str) -> None:
        with self.engine.transaction():
            self.engine.execute(
                "UPDATE slack_messages SET editable = 0 WHERE watch_id = ?", [watch_id]
            )

    def ensure_parent_row(self, watch_id: str, now: float) -> bool:
        """Queue a parent post/edit unless one is already pending (a reply whose parent row
        died must not wait forever). Returns whether a row was added."""
        with self.engine.transaction():
            pending = self.engine.row(
                "SELECT 1 FROM outbox WHERE watch_id = ? AND kind = 'parent' "
                "AND status = 'pending'",
                [watch_id],
            )
            if pending:
                return False
            self._queue(watch_id, OutboxKind.PARENT, now)
            return True

    # -- replicas --------------------------------------------------------------------------

    def join(self, replica: str, host: str, pid: int, now: float) -> None:
        """Register a process that is about to poll and deliver (see `beat`)."""
        self.engine.execute(
            "INSERT INTO replicas (id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)",
            [replica, host, pid, now, now],
        )

    def beat(self, replica: str, now: float, lease_s: float) -> int:
        """The replica is alive: renew its poll leases and delivery claims to `now +
        lease_s`. Returns how many it holds. A replica that stops beating loses them all
        within `lease_s`, and the others pick its watches up."""
        until = now + lease_s
        with self.engine.transaction():
            seen = self.engine.execute(
                "UPDATE replicas SET heartbeat_at = ? WHERE id = ?", [now, replica]
            ).rowcount
            if not seen:  # forgotten as stale after a long stall: it is back
                self.engine.execute(
                    "INSERT INTO replicas (id, heartbeat_at, started_at) VALUES (?, ?, ?)",
                    [replica, now, now],
                )
            leases = self.engine.execute(
                "UPDATE watches SET lease_until = ? WHERE lease_owner = ? "
                "AND lease_until IS NOT NULL",
                [until, replica],
            ).rowcount
            claims = self.engine.execute(
                "UPDATE watches SET outbox_until = ? WHERE outbox_owner = ?", [until, replica]
            ).rowcount
        return leases + claims

    def leave(self, replica: str) -> None:
        """A replica shutting down gives back everything it holds and unregisters."""
        with self.engine.transaction():
            self._free(replica)
            self.engine.execute("DELETE FROM replicas WHERE id = ?", [replica])

    def _free(self, replica: str) -> int:
        leases = self.engine.execute(
            "UPDATE watches SET lease_until = NULL, lease_owner = NULL WHERE lease_owner = ?",
            [replica],
        ).rowcount
        claims = self.engine.execute(
            "UPDATE watches SET outbox_until = NULL, outbox_owner = NULL WHERE outbox_owner = ?",
            [replica],
        ).rowcount
        return leases + claims

    def free_dead_replicas(
        self, host: str, alive: Callable[[int], bool], *, stale_before: float
    ) -> int:
        """At start: free what processes on this host that no longer exist held (a killed
        predecessor), at once instead of after their leases lapse, and forget replicas
        silent since `stale_before` (their leases have long lapsed). A process that is
        alive, here or elsewhere, is never touched. Returns leases and claims freed."""
        freed = 0
        with self.engine.transaction():
            here = self._rows("SELECT id, pid FROM replicas WHERE host = ?", [host])
            for replica in here:
                if replica["pid"] is not None and not alive(int(replica["pid"])):
                    freed += self._free(replica["id"])
                    self.engine.execute("DELETE FROM replicas WHERE id = ?", [replica["id"]])
            self.engine.execute("DELETE FROM replicas WHERE heartbeat_at < ?", [stale_before])
        return freed

    def replicas(self, since: float) -> list[dict[str, Any]]:
        """Replicas that have beaten since `since` (operators, /metrics)."""
        return self._rows(
            "SELECT id, host, pid, started_at, heartbeat_at FROM replicas "
            "WHERE heartbeat_at >= ? ORDER BY started_at",
            [since],
        )

    def release_owner(self, owner: str) -> None:
        """Give back every poll lease `owner` holds (a poller shutting down)."""
        with self.engine.transaction():
            self.engine.execute(
                "UPDATE watches SET lease_until = NULL, lease_owner = NULL WHERE lease_owner = ?",
                [owner],
            )

    def forget_parent(self, watch_id: str) -> None:
        """The parent was deleted in Slack: the next parent row posts a new one."""
        with self.engine.transaction():
            self.engine.execute("DELETE FROM slack_messages WHERE watch_id = ?", [watch_id])

    # -- schedules -------------------------------------------------------------------------

    def create_schedule(
        self,
        draft: NewWatch,
        cron: str,
        tz: str,
        next_run_at: float,
        now: float,
        *,
        alert_policy: str = "every",
        alert_every: int = 5,
        digest: str | None = None,
    ) -> Schedule:
        with self.engine.transaction():
            row = self._insert_new_id(
                "s",
                "schedules",
                {
                    "vendor": draft.vendor,
                    "ref": draft.ref,
                    "connection": draft.connection,
                    "team_id": draft.team_id,
                    "channel_id": draft.channel_id,
                    "requester_id": draft.requester_id,
                    "cron": cron,
                    "tz": tz,
                    "status": ScheduleStatus.ACTIVE.value,
                    "next_run_at": next_run_at,
                    "created_at": now,
                    "alert_policy": alert_policy,
                    "alert_every": alert_every,
                    "digest": digest,
                    "digest_since": now if digest else None,
                },
            )
        return Schedule.from_row(row)

    def get_schedule(self, schedule_id: str) -> Schedule | None:
        rows = self._rows("SELECT * FROM schedules WHERE id = ?", [schedule_id])
        return Schedule.from_row(rows[0]) if rows else None

    def list_schedules(
        self,
        *,
        channel_id: str | None = None,
        requester_id: str | None = None,
        statuses: Sequence[str] | None = (ScheduleStatus.ACTIVE,),
    ) -> list[Schedule]:
        where, params = [], []
        for column, value in (("channel_id", channel_id), ("requester_id", requester_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        sql = "SELECT * FROM schedules" + (" WHERE " + " AND ".join(where) if where else "")
        return [Schedule.from_row(r) for r in self._rows(sql + " ORDER BY id", params)]

    def stop_schedule(self, schedule_id: str, by: str, now: float) -> Schedule | None:
        with self.engine.transaction():
            current = self.get_schedule(schedule_id)
            if current is None or current.status != ScheduleStatus.ACTIVE:
                return None
            self._update(
                "schedules",
                schedule_id,
                {"status": ScheduleStatus.STOPPED.value, "stopped_by": by, "next_run_at": None},
            )
        return self.get_schedule(schedule_id)

    def record_schedule_run(
        self,
        schedule_id: str,
        due_at: float,
        next_run_at: float,
        draft: NewWatch,
        note: str | None,
        now: float,
        *,
        skipped_note: str,
    ) -> Watch | None:
        """Start the run due at `due_at` and move the schedule to `next_run_at`, in one
        transaction. A run already recorded (its due time has passed on) returns None, so a
        restart or a double fire never doubles a run. `note` goes into the new run's thread;
        `skipped_note` into the running one's when the last run is still going."""
        with self.engine.transaction():
            current = self.get_schedule(schedule_id)
            if (
                current is None
                or current.status != ScheduleStatus.ACTIVE
                or current.next_run_at != due_at
            ):
                return None
            # The occurrence's own row decides, whichever replica fired: its primary key
            # lets one insert through; the others find it taken and do nothing.
            first = self.engine.execute(
                "INSERT INTO schedule_runs (schedule_id, due_at, ran_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING schedule_id",
                [schedule_id, due_at, now],
            )
            if not first.rows:
                return None
            self.engine.execute(
                "UPDATE schedules SET next_run_at = ?, last_run_at = ? WHERE id = ?",
                [next_run_at, now, schedule_id],
            )
            # The run's watch goes where its channel routes it (create_watches routes it).
            where = self.routed(draft).channel_id
            running = self.find_active(draft.vendor, draft.ref, where)
            if running is not None:  # still syncing from before: say so where people look
                skipped = TransitionDraft(event=Event.NOTE, note=skipped_note)
                self._record(running.id, skipped, False, now)
                return None
            (watch,) = self.create_watches([draft], now)
            self.engine.execute(
                "UPDATE schedule_runs SET watch_id = ? WHERE schedule_id = ? AND due_at = ?",
                [watch.id, schedule_id, due_at],
            )
            self._hold_run(current, due_at, watch.id)
            if note:
                self._record(watch.id, TransitionDraft(event=Event.NOTE, note=note), False, now)
            return watch

    # -- API tokens --------------------------------------------------------------------------
    # Only hashes are stored (docs/architecture.md#api-tokens): the SHA-256 of the token and
    # of its callback key. Look-ups are by hash; the caller compares in constant time.

    def add_token(self, token: ApiToken) -> ApiToken:
        """Store a new token. Raises TokenNameTaken when the name is in use."""
        try:
            with self.engine.transaction():
                if self.engine.row("SELECT 1 FROM api_tokens WHERE name = ?", [token.name]):
                    raise TokenNameTaken(token.name)
                self._insert(
                    "api_tokens",
                    {
                        "name": token.name,
                        "digest": token.digest,
                        "hook_digest": token.hook_digest,
                        "channels": json.dumps(list(token.channels)),
                        "created_by": token.created_by,
                        "created_at": token.created_at,
                    },
                )
        except INTEGRITY_ERRORS:  # two creations of one name raced: one got in
            raise TokenNameTaken(token.name) from None
        return token

    def _token_where(self, column: str, value: str) -> ApiToken | None:
        rows = self._rows(f"SELECT * FROM api_tokens WHERE {column} = ?", [value])
        return ApiToken.from_row(rows[0]) if rows else None

    def token_by_digest(self, digest: str) -> ApiToken | None:
        return self._token_where("digest", digest)

    def token_by_hook(self, hook_digest: str) -> ApiToken | None:
        return self._token_where("hook_digest", hook_digest)

    def token_named(self, name: str) -> ApiToken | None:
        return self._token_where("name", name)

    def list_tokens(self) -> list[ApiToken]:
        return [ApiToken.from_row(r) for r in self._rows("SELECT * FROM api_tokens ORDER BY name")]

    def revoke_token(self, name: str) -> bool:
        """Delete a token (and with it its callback key and its idempotency keys). Returns
        whether there was one."""
        with self.engine.transaction():
            self.engine.execute("DELETE FROM api_idempotency WHERE token_name = ?", [name])
            return (
                self.engine.execute("DELETE FROM api_tokens WHERE name = ?", [name]).rowcount == 1
            )

    # -- idempotency keys ----------------------------------------------------------------------

    def idempotency_reserve(
        self, token_name: str, key: str, body_digest: str, now: float, keep_s: float
    ) -> IdempotencyRecord | None:
        """Claim `key` for a request: None when this request is the first with it (answer
        it, then `idempotency_settle`); else what the key already stands for. Keys older
        than `keep_s` are forgotten."""
        with self.engine.transaction():
            self.engine.execute("DELETE FROM api_idempotency WHERE created_at < ?", [now - keep_s])
            taken = self.engine.execute(
                "INSERT INTO api_idempotency (token_name, key, body_digest, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING key",
                [token_name, key, body_digest, now],
            )
            if taken.rows:
                return None
            return self.idempotency_record(token_name, key)

    def idempotency_record(self, token_name: str, key: str) -> IdempotencyRecord | None:
        row = self.engine.row(
            "SELECT body_digest, watch_id, status FROM api_idempotency "
            "WHERE token_name = ? AND key = ?",
            [token_name, key],
        )
        if row is None:
            return None
        return IdempotencyRecord(str(row[0]), row[1], None if row[2] is None else int(row[2]))

    def idempotency_settle(self, token_name: str, key: str, watch_id: str, status: int) -> None:
        with self.engine.transaction():
            self.engine.execute(
                "UPDATE api_idempotency SET watch_id = ?, status = ? "
                "WHERE token_name = ? AND key = ?",
                [watch_id, status, token_name, key],
            )

    def idempotency_release(self, token_name: str, key: str) -> None:
        """The request with `key` made nothing (it was refused): a retry may use the key."""
        with self.engine.transaction():
            self.engine.execute(
                "DELETE FROM api_idempotency WHERE token_name = ? AND key = ?", [token_name, key]
            )

    # -- result files held in the database ------------------------------------------------

    def put_file(self, chunks: Iterable[bytes], now: float) -> str:
        """Keep a result file's bytes (in the order given) until it is uploaded; returns
        its id. All or nothing: a failure leaves no partial file."""
        file_id = "f" + secrets.token_hex(8)
        size = 0
        with self.engine.transaction():
            self.engine.execute(
                "INSERT INTO result_files (id, size, created_at) VALUES (?, 0, ?)", [file_id, now]
            )
            for seq, chunk in enumerate(chunks):
                self.engine.execute(
                    "INSERT INTO result_chunks (file_id, seq, data) VALUES (?, ?, ?)",
                    [file_id, seq, chunk],
                )
                size += len(chunk)
            self.engine.execute("UPDATE result_files SET size = ? WHERE id = ?", [size, file_id])
        return file_id

    def file_size(self, file_id: str) -> int | None:
        row = self.engine.row("SELECT size FROM result_files WHERE id = ?", [file_id])
        return int(row[0]) if row else None

    def file_chunks(self, file_id: str) -> Iterator[bytes]:
        """The file's bytes, one stored chunk at a time (never the whole file in memory)."""
        seq = 0
        while True:
            row = self.engine.row(
                "SELECT data FROM result_chunks WHERE file_id = ? AND seq = ?", [file_id, seq]
            )
            if row is None:
                return
            yield bytes(row[0])
            seq += 1

    def delete_file(self, file_id: str) -> None:
        with self.engine.transaction():
            self.engine.execute("DELETE FROM result_chunks WHERE file_id = ?", [file_id])
            self.engine.execute("DELETE FROM result_files WHERE id = ?", [file_id])

    def sweep_files(self, before: float) -> int:
        """Delete stored files older than `before` that no pending upload row names (left
        by a replica that died between download and record). Returns how many."""
        keep = self._pending_upload_refs("file_id")
        stale = [
            r["id"]
            for r in self._rows("SELECT id FROM result_files WHERE created_at < ?", [before])
            if r["id"] not in keep
        ]
        for file_id in stale:
            self.delete_file(file_id)
        return len(stale)

    # -- shared rate limits -----------------------------------------------------------------
    # GCRA (docs/architecture.md#rate-limits): per key, the theoretical time `tat` of the
    # next call; a call may go once `tat - tolerance` has come, and each call moves `tat` on
    # by `interval`. One conditional statement each, so replicas share a limit exactly.

    _TAT = "(CASE WHEN tat > :now THEN tat ELSE :now END)"

    def rate_take(self, key: str, interval: float, tolerance: float, now: float) -> float:
        """Take a call under `key` if one may go now (0.0); else nothing is taken and the
        seconds until one may go are returned."""
        for _ in range(2):
            taken = self.engine.execute(
                f"UPDATE rate_limits SET tat = {self._TAT} + :interval WHERE key = :key "
                f"AND {self._TAT} - :tolerance <= :now AND held_until <= :now "
                f"AND {self._no_flush} RETURNING tat",
                {"key": key, "interval": interval, "tolerance": tolerance, "now": now},
            )
            if taken.rows:
                return 0.0
            row = self.engine.row("SELECT tat, held_until FROM rate_limits WHERE key = ?", [key])
            if row is not None:
                tat, held = row
                return max(max(tat, now) - tolerance, held) - now
            self.engine.execute(
                "INSERT INTO rate_limits (key, tat, held_until) VALUES (?, ?, 0) "
                "ON CONFLICT DO NOTHING",
                [key, now],
            )
        return interval  # pragma: no cover - the row exists after the insert

    def rate_reserve(self, key: str, interval: float, now: float) -> tuple[float, float]:
        """Reserve the next call under `key` whenever it may go: moves `tat` on and returns
        (the reserved call's theoretical time, held_until). The caller goes at
        `max(time - tolerance, held_until)`."""
        result = self.engine.execute(
            "INSERT INTO rate_limits (key, tat, held_until) VALUES (:key, :now + :interval, 0) "
            "ON CONFLICT (key) DO UPDATE SET tat = (CASE WHEN rate_limits.tat > :now "
            f"THEN rate_limits.tat ELSE :now END) + :interval WHERE {self._no_flush} "
            "RETURNING tat, held_until",
            {"key": key, "interval": interval, "now": now},
        )
        row = result.rows[0]
        return float(row["tat"]) - interval, float(row["held_until"])

    def rate_hold(self, key: str, until: float) -> None:
        """Nothing under `key` before `until` (Slack said 429), then a burst again."""
        self.engine.execute(
            "INSERT INTO rate_limits (key, tat, held_until) VALUES (:key, :until, :until) "
            "ON CONFLICT (key) DO UPDATE SET "
            "tat = CASE WHEN rate_limits.tat > :until THEN rate_limits.tat ELSE :until END, "
            "held_until = CASE WHEN rate_limits.held_until > :until "
            "THEN rate_limits.held_until ELSE :until END",
            {"key": key, "until": until},
        )

    # -- request budgets -------------------------------------------------------------------

    def spend_budget(self, key: str, period: str, count: int = 1) -> int:
        """Add `count` requests to `key`'s tally for `period`; returns the new total."""
        with self.engine.transaction():
            result = self.engine.execute(
                "INSERT INTO request_budgets (key, period, used) VALUES (?, ?, ?) "
                "ON CONFLICT (key, period) DO UPDATE "
                "SET used = request_budgets.used + excluded.used RETURNING used",
                [key, period, count],
            )
        return int(result.rows[0]["used"])

    def budget_used(self, key: str, period: str) -> int:
        row = self.engine.row(
            "SELECT used FROM request_budgets WHERE key = ? AND period = ?", [key, period]
        )
        return int(row[0]) if row else 0

    # -- operators -------------------------------------------------------------------------

    def count_active(
        self, *, channel_id: str | None = None, requester_id: str | None = None
    ) -> int:
        column, value = ("channel_id", channel_id) if channel_id else ("requester_id", requester_id)
        row = self.engine.row(
            f"SELECT COUNT(*) FROM watches WHERE status = 'active' AND {column} = ?", [value]
        )
        return int(row[0])

    def count_active_of(self, *, channel_id: str, requester_id: str) -> tuple[int, int]:
        """(active watches in the channel, active watches of the requester): both quotas'
        counts in one statement."""
        in_channel, theirs = self.engine.row(
            "SELECT (SELECT COUNT(*) FROM watches WHERE channel_id = ? AND status = 'active'), "
            "(SELECT COUNT(*) FROM watches WHERE requester_id = ? AND status = 'active')",
            [channel_id, requester_id],
        )
        return int(in_channel), int(theirs)

    def count_by_status(self) -> dict[str, int]:
        rows = self._rows("SELECT status, COUNT(*) AS n FROM watches GROUP BY status")
        return {r["status"]: int(r["n"]) for r in rows}
