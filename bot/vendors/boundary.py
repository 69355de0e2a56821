"""Where vendor-derived data enters the rest of the bot (docs/vendors.md#vendor-text-boundary).

The poller passes every snapshot, error and result file a vendor client hands it through
`VendorBoundary` before anything is decided, stored or posted. Two rules hold past it:

- no secret the process knows (configured, or an access token it minted) is in any string,
  and none is in a text result file: each is replaced with `[redacted]`;
- every string has a bound (the limits below), clipped with an ellipsis, so a vendor reply
  can't fill the database, the process's memory or a Slack message;
- a snapshot's `done`/`total` counts are whole numbers from 0 to `MAX_COUNT`, both or
  neither, so the time-left arithmetic never meets a bool, a negative or a number too big
  for a float.

Vendor modules may scrub and clip their own text as well; this is the one place that makes
sure of it for all of them.
"""

from __future__ import annotations

from dataclasses import replace

from bot.redaction import Redactor

from .base import FileRef, JobNotFoundError, JobSnapshot, ResultFile, VendorError

# Limits in characters (docs/vendors.md#vendor-text-boundary).
STATUS_CHARS = 500  # raw status: shown on the parent (clipped further there), stored 3 times
CODE_CHARS = 100  # an error code
MESSAGE_CHARS = 2_000  # an error's message, a notice, a hint, a file's comment or note
ERROR_TEXT_CHARS = 100_000  # a snapshot's error text: the full list behind "Show errors"
LABEL_CHARS = 100  # a progress label, a fact's name
VALUE_CHARS = 500  # a progress value, a file's title or name
FACT_CHARS = 100_000  # one fact's value (a sync's table list is one fact)
FACTS_TOTAL_CHARS = 200_000  # all facts of a snapshot together; later facts are dropped
FILE_ID_CHARS = 4_096  # above the 2,048 a CRM result link may have, so that check still sees it
MAX_PROGRESS = 20  # the parent message shows 10 at most
MAX_FACTS = 100
MAX_FILES = 1_000
MAX_COUNT = 10**15  # done/total: far above any real job, far below a float's limit (as stored)
ELLIPSIS = "…"
TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".json")  # result files redacted byte by byte


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, the last one an ellipsis when cut. Clipping
    twice changes nothing more."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def _counts(done: object, total: object) -> dict[str, int | None]:
    """`done` and `total` kept only when both are plausible counts (see the module docstring)."""
    plausible = all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_COUNT
        for n in (done, total)
    )
    return {"done": done, "total": total} if plausible else {"done": None, "total": None}


class VendorBoundary:
    """Redacts and bounds what a vendor client returns (see the module docstring)."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def text(self, value: str, limit: int) -> str:
        # Redact before clipping: a clip must not cut a secret in two and keep its first half.
        # Of a long value only the head that can reach the kept part is redacted: a 10 MB
        # status costs no more than one at the limit.
        if len(value) > limit:
            value = value[: self.redactor.head_for(limit)]
        return clip(self.redactor.redact(value), limit)

    def optional(self, value: str | None, limit: int) -> str | None:
        return None if value is None else self.text(value, limit)

    def snapshot(self, snap: JobSnapshot) -> JobSnapshot:
        return replace(
            snap,
            raw_status=self.text(snap.raw_status, STATUS_CHARS),
            progress=tuple(
                (self.text(k, LABEL_CHARS), self.text(v, VALUE_CHARS))
                for k, v in snap.progress[:MAX_PROGRESS]
            ),
            facts=self._facts(snap.facts),
            error_code=self.optional(snap.error_code, CODE_CHARS),
            error_message=self.optional(snap.error_message, ERROR_TEXT_CHARS),
            files=tuple(self._file_ref(f) for f in snap.files[:MAX_FILES]),
            notice=self.optional(snap.notice, MESSAGE_CHARS),
            **_counts(snap.done, snap.total),
        )

    def _facts(self, facts: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        kept: list[tuple[str, str]] = []
        room = FACTS_TOTAL_CHARS
        for key, value in facts[:MAX_FACTS]:
            if room <= 0:
                break
            value = self.text(value, min(FACT_CHARS, room))
            room -= len(value)
            kept.append((self.text(key, LABEL_CHARS), value))
        return tuple(kept)

    def _file_ref(self, ref: FileRef) -> FileRef:
        return replace(
            ref,
            file_id=self.text(ref.file_id, FILE_ID_CHARS),
            name=self.text(ref.name, VALUE_CHARS),
            fmt=self.optional(ref.fmt, LABEL_CHARS),
        )

    def error(self, err: VendorError) -> VendorError:
        """`err` itself, its text redacted and clipped (its class and retry wait kept)."""
        err.message = self.text(err.message, MESSAGE_CHARS)
        err.args = (err.message,)  # str(err) is the message again, not the vendor's raw text
        err.code = self.optional(err.code, CODE_CHARS)
        err.notice = self.optional(err.notice, MESSAGE_CHARS)
        if isinstance(err, JobNotFoundError):
            err.hint = self.text(err.hint, MESSAGE_CHARS)
        return err

    def result(self, rf: ResultFile) -> ResultFile:
        """`rf` with its texts bounded and redacted, and its bytes redacted when it is a text
        file: inline content here, a spool file in place (a file without a secret is left
        byte for byte as it was). Archives and gzip files are posted as served."""
        text_file = rf.filename.lower().endswith(TEXT_SUFFIXES)
        content = rf.content
        if content is not None and text_file:
            content = self.redactor.redact_bytes(content)
        if rf.path is not None and text_file:
            self.redactor.redact_file(rf.path)
        return replace(
            rf,
            filename=self.text(rf.filename, VALUE_CHARS),
            title=self.text(rf.title, VALUE_CHARS),
            comment=self.text(rf.comment, MESSAGE_CHARS),
            content=content,
            note=self.optional(rf.note, MESSAGE_CHARS),
        )
