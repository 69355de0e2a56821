"""`syncwatch audit`'s pure parts: reading `--since`/`--until`, and the audit rows as a
table or as JSON (docs/operations.md#audit)."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import re
from collections.abc import Sequence
from typing import Any

from storage import ActorKind, AuditEntry

RELATIVE = re.compile(r"^(\d{1,6})\s*(s|m|h|d|w)$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# The keys of one `--json` line, in order. Stable: scripts read them.
JSON_KEYS = (
    "id",
    "at",
    "actor_kind",
    "actor",
    "action",
    "via",
    "team",
    "channel",
    "watch",
    "schedule",
    "detail",
)


class BadTime(ValueError):
    """A `--since`/`--until` value that names no time; the message says what would."""


def parse_when(text: str, now: float, option: str = "--since") -> float:
    """Epoch seconds for `2d` / `12h` / `30m` / `90s` / `1w` (that long before `now`), a
    date `2026-12-01` (its midnight UTC), or an ISO 8601 time `2026-12-01T09:30`, with
    `Z` or an offset (without one: UTC)."""
    value = text.strip()
    relative = RELATIVE.match(value.lower())
    if relative:
        return now - int(relative.group(1)) * UNIT_SECONDS[relative.group(2)]
    try:
        if DATE.match(value):
            day = dt.date.fromisoformat(value)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
        if "T" in value or " " in value:
            when = dt.datetime.fromisoformat(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return when.timestamp()
    except ValueError:
        pass
    raise BadTime(
        f"{option} {text!r} is not a time: use a span back from now (30m, 12h, 2d, 1w), "
        "a date (2026-12-01, midnight UTC) or an ISO time (2026-12-01T09:30Z)"
    )


def operator_name() -> str:
    """Who runs a `syncwatch` command that changes something: the OS user (the audit
    trail's operator)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        return f"uid {os.getuid()}"


def iso(epoch: float) -> str:
    """UTC, to the second, with a `Z`: what the table and the JSON show."""
    when = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def actor_label(entry: AuditEntry) -> str:
    """`U0ALICE` for a person, `token:nightly-etl`, `operator:root`."""
    if entry.actor_kind == ActorKind.PERSON:
        return entry.actor
    return f"{entry.actor_kind.value}:{entry.actor}"


def as_json(entry: AuditEntry) -> dict[str, Any]:
    """One row as `--json` prints it (keys: JSON_KEYS; absent values are null)."""
    return {
        "id": entry.id,
        "at": iso(entry.at),
        "actor_kind": entry.actor_kind.value,
        "actor": entry.actor,
        "action": entry.action,
        "via": entry.via.value,
        "team": entry.team_id,
        "channel": entry.channel_id,
        "watch": entry.watch_id,
        "schedule": entry.schedule_id,
        "detail": dict(entry.detail),
    }


def _detail_text(entry: AuditEntry) -> str:
    parts = []
    for key, value in sorted(entry.detail.items()):
        shown = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{key}={shown}")
    return " ".join(parts)


HEADER = ("at (UTC)", "actor", "via", "action", "watch", "channel", "detail")


def table(entries: Sequence[AuditEntry]) -> list[str]:
    """A readable table, one row per entry, columns as wide as their widest value (the
    last, detail, unpadded)."""
    rows = [
        (
            iso(e.at).replace("T", " ").rstrip("Z"),
            actor_label(e),
            e.via.value,
            e.action,
            e.watch_id or e.schedule_id or "-",
            e.channel_id or "-",
            _detail_text(e),
        )
        for e in entries
    ]
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER) - 1)]
    lines = []
    for row in [HEADER, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines
