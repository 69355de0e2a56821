"""Safe reading of vendor archives: one CSV out of a zip, gunzip with an output cap
(docs/vendors.md#archives-and-size-caps)."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from typing import BinaryIO

CHUNK = 64 * 1024
GZIP_READ = 8 * 1024  # small input steps, so a gzip bomb is noticed after a few KB of input
# Below this size a high compression ratio is harmless (and normal for repetitive CSV), so the
# ratio check only looks at members large enough to hurt.
RATIO_MIN_BYTES = 1024 * 1024
_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})  # what Zoho writes; no bz2/lzma
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ArchiveError(Exception):
    """An archive we refuse to open; `message` says why and is safe to show users."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def size_text(n: int) -> str:
    """Bytes as a short human size: 512 bytes, 3.2 KB, 50 MB."""
    if n < 1024:
        return f"{n:,} bytes"
    value, unit = (n / 1024, "KB") if n < 1024 * 1024 else (n / 1024 / 1024, "MB")
    return f"{value:,.1f}".removesuffix(".0") + f" {unit}"


def _shown(name: str) -> str:
    return _CONTROL.sub("?", name)[:80]


def _unsafe_name(name: str) -> bool:
    """Absolute paths, drive letters, UNC paths and any `..` make us refuse the whole archive:
    we never write under a member's name, but such an archive is not one Zoho made."""
    return (
        not name
        or name.startswith(("/", "\\"))
        or bool(_DRIVE.match(name))
        or ".." in name
        or bool(_CONTROL.search(name))
    )


def remove_quietly(path: str | None) -> None:
    """Delete a spool file if there is one; a file already gone is fine."""
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def spool(
    chunks: Iterable[bytes],
    dest_dir: str,
    *,
    prefix: str,
    suffix: str,
    cap: int,
    over: Callable[[], BaseException],
) -> str:
    """Write `chunks` into a new file in `dest_dir` and return its path. Past `cap` bytes, or
    on any error, the file is removed again; past the cap the error raised is `over()`."""
    fd, path = tempfile.mkstemp(dir=dest_dir, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            written = 0
            for chunk in chunks:
                written += len(chunk)
                if written > cap:
                    raise over()
                fh.write(chunk)
    except BaseException:
        remove_quietly(path)
        raise
    return path


def _copy_capped(src: BinaryIO, dst: BinaryIO, cap: int) -> int:
    """Copy until EOF; ArchiveError as soon as more than `cap` bytes came out (a lying header)."""
    written = 0
    while chunk := src.read(CHUNK):
        written += len(chunk)
        if written > cap:
            raise ArchiveError(
                f"it unpacks to more than {size_text(cap)} (more than its header declared)"
            )
        dst.write(chunk)
    return written


def extract_single_csv(
    zip_path: str,
    dest_dir: str,
    *,
    max_total_bytes: int,
    max_ratio: float = 100,
    max_members: int = 10,
) -> str:
    """Extract the one `*.csv` member of `zip_path` into a new file in `dest_dir`; its path.

    Every check on the declared sizes runs before a byte is inflated; while inflating, the
    actual bytes are counted as well. Member names are never used as paths.
    """
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise ArchiveError("it is not a zip archive (or it is damaged)") from exc
    with zf:
        members = zf.infolist()
        if len(members) > max_members:
            raise ArchiveError(f"it holds {len(members)} entries; at most {max_members} expected")
        for info in members:
            if _unsafe_name(info.filename):
                raise ArchiveError(f"it has an unsafe entry name `{_shown(info.filename)}`")
        declared = sum(info.file_size for info in members)
        if declared > max_total_bytes:
            raise ArchiveError(
                f"it would unpack to {size_text(declared)}, over the "
                f"{size_text(max_total_bytes)} limit"
            )
        for info in members:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_MIN_BYTES and ratio > max_ratio:
                raise ArchiveError(
                    f"`{_shown(info.filename)}` is compressed {ratio:,.0f}:1 "
                    f"(more than {max_ratio:g}:1 looks like a zip bomb)"
                )
        files = [i for i in members if not i.is_dir()]
        csvs = [i for i in files if i.filename.lower().endswith(".csv")]
        if not csvs:
            others = f" ({len(files)} other file{'s' if len(files) != 1 else ''})" if files else ""
            raise ArchiveError(f"it holds no CSV file{others}")
        if len(csvs) > 1:
            names = ", ".join(f"`{_shown(i.filename)}`" for i in csvs[:3])
            raise ArchiveError(f"it holds {len(csvs)} CSV files ({names}); one was expected")
        member = csvs[0]
        if member.flag_bits & 0x1:
            raise ArchiveError(f"`{_shown(member.filename)}` is encrypted")
        if member.compress_type not in _METHODS:
            raise ArchiveError(f"`{_shown(member.filename)}` uses an unsupported compression")
        fd, path = tempfile.mkstemp(dir=dest_dir, prefix="unzipped-", suffix=".csv")
        try:
            with os.fdopen(fd, "wb") as out, zf.open(member) as src:
                _copy_capped(src, out, max_total_bytes)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            remove_quietly(path)
            # zipfile's own text (e.g. "Bad CRC-32 for file …") names nothing secret
            raise ArchiveError(f"it is damaged ({_shown(str(exc))})") from exc
        except BaseException:
            remove_quietly(path)
            raise
    return path


def gunzip_stream(src: BinaryIO, dst: BinaryIO, max_bytes: int) -> bool:
    """Decompress gzip `src` into `dst`: True when complete, False (stopping at once) when the
    output would pass `max_bytes`. Damaged or truncated gzip → ArchiveError. Output per step
    is bounded, so a bomb can't balloon in memory."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    written = 0
    try:
        while chunk := src.read(GZIP_READ):
            data = chunk
            while data:
                out = inflater.decompress(data, max_bytes + 1 - written)  # ≥ 1; 0 = unlimited
                written += len(out)
                if written > max_bytes:
                    return False
                dst.write(out)
                if inflater.eof:  # concatenated members are valid gzip: start the next one
                    data = inflater.unused_data
                    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16) if data else inflater
                else:
                    data = inflater.unconsumed_tail
        rest = inflater.flush()
    except zlib.error as exc:
        raise ArchiveError("it is not valid gzip data") from exc
    if written + len(rest) > max_bytes:
        return False
    if not inflater.eof:
        raise ArchiveError("the gzip data is truncated")
    dst.write(rest)
    return True


def gunzip_capped(src_path: str, dest_path: str, max_bytes: int) -> bool:
    """Decompress gzip `src_path` into `dest_path`: True when complete, False (and no
    `dest_path` left) when the output would pass `max_bytes`. Damaged or truncated gzip →
    ArchiveError, and no `dest_path` left either."""
    try:
        with open(src_path, "rb") as src, open(dest_path, "wb") as dst:
            complete = gunzip_stream(src, dst, max_bytes)
    except BaseException:
        remove_quietly(dest_path)
        raise
    if not complete:
        remove_quietly(dest_path)
    return complete
