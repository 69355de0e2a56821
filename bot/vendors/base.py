"""The vendor protocol: normalized job snapshots, result files, vendor specs and errors.

Exception tree (what the poller does with each)::

    VendorError                 base; `message` is safe to show users (no secrets)
    ├── TransientError          5xx, timeouts, HTML/malformed bodies: back off, state unchanged
    │   └── RateLimitedError    429 / vendor throttle codes: wait `retry_after` or back off longer
    ├── JobNotFoundError        vendor does not know the job: not-found rule (failed / expired)
    ├── AuthError               credentials rejected after one refresh: watch fails
    └── RequestRejectedError    any other definitive vendor error: watch fails quoting code + text
    RefError (ValueError)       a job reference that fails validation; raised before any request
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Literal, Protocol, TypeVar

import httpx

from bot.redaction import Redactor

Clock = Callable[[], float]


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {State.SUCCEEDED, State.PARTIAL, State.FAILED, State.CANCELLED, State.EXPIRED}
)


def status_key(raw: object) -> str:
    """Compare vendor statuses without case, spaces, `_` or `-` (vendors mix spellings)."""
    return re.sub(r"[\s_-]+", "", str(raw)).lower()


@dataclass(frozen=True)
class FileRef:
    """A result file the vendor holds for a job; `results()` downloads it.

    `name` is for display (e.g. the batch name); `part` numbers the segments of a batch
    that the vendor split into several files.
    """

    file_id: str
    name: str
    records: int | None = None
    fmt: str | None = None
    part: int | None = None


@dataclass(frozen=True)
class JobSnapshot:
    """What one poll learned about a job, normalized across vendors.

    `progress` holds display pairs for the parent message ("Rows", "1,187 of 1,200");
    `facts` holds the vendor's own summary fields (kept for result files);
    `error_message` may be long raw vendor text: renderers escape and clip it.
    `expires_at` (epoch seconds) is when the vendor forgets the job's details, if known.
    `done`/`total` are the vendor's own counts of units finished and of all units (rows,
    batches), both or neither, None when the vendor gives none: they feed the time-left
    estimate (docs/architecture.md#eta), never a guess.
    """

    state: State
    raw_status: str
    progress: tuple[tuple[str, str], ...] = ()
    facts: tuple[tuple[str, str], ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    expires_at: float | None = None
    files: tuple[FileRef, ...] = ()
    notice: str | None = None  # said once in the thread when it first appears or changes
    done: int | None = None
    total: int | None = None

    def to_json(self) -> str:
        # Spelled out rather than dataclasses.asdict(), which deep-copies every field
        # recursively: this runs on every poll. Same keys, same order, same JSON.
        return json.dumps(
            {
                "state": self.state,
                "raw_status": self.raw_status,
                "progress": self.progress,
                "facts": self.facts,
                "error_code": self.error_code,
                "error_message": self.error_message,
                "expires_at": self.expires_at,
                "files": [vars(f) for f in self.files],
                "notice": self.notice,
                "done": self.done,
                "total": self.total,
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> JobSnapshot | None:
        if not text:
            return None
        raw = json.loads(text)
        return cls(
            state=State(raw["state"]),
            raw_status=raw["raw_status"],
            progress=tuple(tuple(p) for p in raw.get("progress", ())),  # type: ignore[misc]
            facts=tuple(tuple(p) for p in raw.get("facts", ())),  # type: ignore[misc]
            error_code=raw.get("error_code"),
            error_message=raw.get("error_message"),
            expires_at=raw.get("expires_at"),
            files=tuple(FileRef(**f) for f in raw.get("files", ())),
            notice=raw.get("notice"),
            done=raw.get("done"),  # absent from snapshots stored before the counts existed
            total=raw.get("total"),
        )


@dataclass(frozen=True)
class ResultFile:
    """Something to post into the watch's thread when the job ends.

    Small files carry `content`; downloads carry `path` (a file in the spool directory that
    the bot owns from then on). With `note` instead, a plain-text thread reply is posted (an
    empty result, a file over the size cap, encrypted results): never an empty upload.
    """

    filename: str
    title: str
    comment: str = ""
    content: bytes | None = None
    path: str | None = None
    note: str | None = None

    @property
    def size(self) -> int:
        if self.content is not None:
            return len(self.content)
        return os.path.getsize(self.path) if self.path else 0


@dataclass(frozen=True)
class SyncOptions:
    """What the operator configured for one datasource sync (never from Slack text).

    `user_name`/`password` are the datasource's own credentials and `schedule_id` picks one
    of several sync intervals; all go into the sync call's CONFIG and nowhere else.
    """

    user_name: str | None = None
    password: str | None = None
    schedule_id: str | None = None

    def __repr__(self) -> str:
        return f"SyncOptions(user_name={'set' if self.user_name else None}, schedule_id=...)"


class Connection(Protocol):
    """One configured account of a vendor family (ZohoConnection, ZuoraConnection,
    MicroConnection): what the pool and its token buckets read from any of them."""

    @property
    def name(self) -> str: ...

    @property
    def rate_per_minute(self) -> float | None:
        """The operator's token-bucket rate; None: the vendor's default."""
        ...

    @property
    def rate_key(self) -> str:
        """The vendor account, safe to print: names for one account share one bucket."""
        ...


C = TypeVar("C")


def connection_of(conn: Connection, cls: type[C]) -> C:
    """`conn` as the family's own connection type, for a `VendorSpec.build`: a spec whose
    `family` names another family's connections is a programming error, said at once."""
    if not isinstance(conn, cls):
        raise TypeError(f"{type(conn).__name__} given where a {cls.__name__} is needed")
    return conn


class VendorClient(Protocol):
    """What the poller asks of every vendor client, whatever its kind."""

    @property
    def min_interval(self) -> float | None:
        """The shortest interval between polls this client allows now (e.g. a small
        request budget), or None. The poller never schedules a poll sooner."""
        ...

    def results(self, ref: str, snapshot: JobSnapshot) -> Iterable[ResultFile]:
        """Files to post once the job is terminal (may be empty)."""
        ...

    def check(self) -> str:
        """One cheap authenticated call; returns a short human description. Raises VendorError."""
        ...


class Vendor(VendorClient, Protocol):
    """One connection's client for a vendor's jobs: a watch names a job, the poller fetches
    its state until it ends. Built by `VendorSpec.build` for a spec of kind "job"."""

    @property
    def kind(self) -> Literal["job"]: ...

    def fetch(self, ref: str) -> JobSnapshot:
        """Poll the job once. Raises a `VendorError` subclass on anything but a readable job."""
        ...


class SyncVendor(VendorClient, Protocol):
    """A vendor whose watches start by triggering something (a datasource sync) rather than
    by naming a job. The poller calls `trigger` on a watch's first poll and `fetch` with the
    previous snapshot afterwards (the baseline to compare against lives in its facts).
    Built by `VendorSpec.build` for a spec of kind "sync"."""

    @property
    def kind(self) -> Literal["sync"]: ...

    def trigger(self, ref: str, options: SyncOptions | None) -> JobSnapshot: ...

    def fetch(self, ref: str, previous: JobSnapshot | None = None) -> JobSnapshot: ...


AnyVendor = Vendor | SyncVendor  # `kind` tells them apart, and equals the spec's kind


class RequestBudget(Protocol):
    """A persisted monthly request tally (the runtime backs it with the database)."""

    def spend(self, key: str, count: int = 1) -> int:
        """Count `count` requests for `key` this month; returns the month's total so far."""
        ...

    def used(self, key: str) -> int: ...

    def month_ends_at(self) -> float:
        """When the current (UTC calendar) month's allowance resets, epoch seconds."""
        ...


SEEN_KEYS_KEPT = 1_000


class SeenKeys:
    """Keys already seen, thread-safe: e.g. an unknown vendor status is logged the first time
    it shows up, not on every poll. Owned by a VendorContext, so each pool starts afresh.

    Bounded, since the keys are vendor text: the `limit` most recently seen keys are kept
    (least recently seen goes first), each as a digest, so a vendor that invents a new
    status on every poll (or a 10 MB one) can't grow it. A key that fell out is said again."""

    def __init__(self, limit: int = SEEN_KEYS_KEPT) -> None:
        self.limit = limit
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def first(self, key: Hashable) -> bool:
        """True the first time `key` is given (within the last `limit` keys), False after."""
        digest = hashlib.blake2b(repr(key).encode("utf-8", "replace"), digest_size=16).digest()
        with self._lock:
            if digest in self._seen:
                self._seen.move_to_end(digest)
                return False
            self._seen[digest] = None
            if len(self._seen) > self.limit:
                self._seen.popitem(last=False)
            return True


@dataclass
class VendorContext:
    """Per-process resources a vendor client shares with its siblings.

    Downloads go to `spool_dir` (created by the runtime; files there survive a restart
    until posted) and stop at `max_file_bytes` (SYNCWATCH_MAX_FILE_MB). `shared` holds the
    token caches by (kind, origin, credentials digest), created under `shared_lock`;
    `seen` remembers what was already logged once. `redactor` knows every secret to keep out
    of vendor text: the configured ones and each access token a token cache mints.
    """

    http: httpx.Client
    clock: Clock
    shared: dict[tuple[str, str, str], object] = field(default_factory=dict)
    spool_dir: str = field(default_factory=tempfile.gettempdir)
    max_file_bytes: int = 50 * 1024 * 1024
    budget: RequestBudget | None = None
    shared_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    seen: SeenKeys = field(default_factory=SeenKeys, repr=False)
    redactor: Redactor = field(default_factory=Redactor, repr=False)


@dataclass(frozen=True)
class VendorSpec:
    """Static facts about a vendor: names, job-ref syntax, poll schedule, connection family.

    `schedule` is ((from_age_s, interval_s), ...) ascending; the first entry starts at 0.
    `family` names the connection table in Settings (`zoho`, `zuora`, `micro`).
    `rate_per_minute` is the default token-bucket rate for one connection.
    `build` makes a client of `kind`: a `Vendor` for "job", a `SyncVendor` for "sync".
    """

    key: str
    aliases: tuple[str, ...]
    label: str
    ref_syntax: str
    example_ref: str
    parse_ref: Callable[[str], str]
    schedule: tuple[tuple[float, float], ...]
    floor: float
    family: str
    rate_per_minute: float
    build: Callable[[Connection, VendorContext], AnyVendor]
    kind: Literal["job", "sync"] = "job"  # "job": watch a job id; "sync": trigger, then watch


class RefError(ValueError):
    """A job reference that does not match the vendor's id syntax."""


class VendorError(Exception):
    """Base of every vendor failure. `message` is safe to show (no secrets, unescaped).
    `notice`, when set, is said once in the thread (e.g. "the monthly budget is used up")."""

    def __init__(self, message: str, *, code: str | None = None, notice: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.notice = notice


class TransientError(VendorError):
    """Worth retrying later: the job's state is unknown, not changed."""


class RateLimitedError(TransientError):
    """The vendor asked us to slow down; `retry_after` seconds when it said how long."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        notice: str | None = None,
    ) -> None:
        super().__init__(message, code=code, notice=notice)
        self.retry_after = retry_after


class JobNotFoundError(VendorError):
    """The vendor does not know this job (never did, or has forgotten it)."""

    def __init__(self, message: str, *, code: str | None = None, hint: str = "") -> None:
        super().__init__(message, code=code)
        self.hint = hint


class AuthError(VendorError):
    """Credentials rejected even after one refresh."""


class RequestRejectedError(VendorError):
    """A definitive vendor error (permission, bad org, bad config): retrying will not help."""


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def build_http_client(
    transport: httpx.BaseTransport | None = None, *, timeout: float = 20.0
) -> httpx.Client:
    """The one shared vendor HTTP client. Redirects are never followed automatically, so a
    credential header can't ride a redirect to a foreign host (docs/vendors.md#redirects)."""
    return httpx.Client(
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=10.0),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        headers={"User-Agent": "syncwatch/0.1"},
    )
