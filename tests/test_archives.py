"""Safe archive reading: one CSV out of a zip under caps, gunzip with an output cap
(docs/vendors.md#archives-and-size-caps)."""

from __future__ import annotations

import gzip
import io
import os
import struct
import zipfile
from pathlib import Path

import pytest

from bot.vendors import archives
from bot.vendors.archives import ArchiveError, extract_single_csv, gunzip_capped, size_text

CSV = "ID,STATUS,ERRORS\r\n1,added,\r\n"
MB = 1024 * 1024


def make_zip(
    path: Path, members: dict[str, bytes | str], method: int = zipfile.ZIP_DEFLATED
) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


def extract(zip_path: Path, dest: Path, cap: int = MB, **kw: object) -> str:
    return extract_single_csv(str(zip_path), str(dest), max_total_bytes=cap, **kw)  # type: ignore[arg-type]


def forbid_inflating(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, fail if any member is opened: proves a refusal came before extracting."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a member was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", refuse)


# --- extract_single_csv ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Contacts-bulkwrite.csv", "dir/Deals-bulkwrite.CSV"])
def test_extracts_the_one_csv(name: str, tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "r.zip", {name: CSV, "notes/readme.txt": "hi", "dir/": ""})
    out = extract(zip_path, dest)
    assert Path(out).parent == dest and Path(out).suffix == ".csv"
    assert Path(out).read_bytes() == CSV.encode()
    assert os.listdir(dest) == [Path(out).name]


def test_stored_members_work_too(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "r.zip", {"a.csv": CSV}, zipfile.ZIP_STORED)
    assert Path(extract(zip_path, dest)).read_bytes() == CSV.encode()


@pytest.mark.parametrize(
    "name",
    [
        "../Contacts-bulkwrite.csv",
        "a/../../b.csv",
        "/etc/cron.d/x.csv",
        "C:/Windows/x.csv",
        "C:\\Windows\\x.csv",
        "\\\\server\\share\\x.csv",
        "dir\\..\\x.csv",
        "x\x01.csv",
    ],
)
def test_unsafe_member_names_refuse_the_whole_archive(
    name: str, tmp_path: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zip_path = make_zip(tmp_path / "r.zip", {"fine.txt": "x", name: CSV})
    forbid_inflating(monkeypatch)
    with pytest.raises(ArchiveError, match="unsafe entry name"):
        extract(zip_path, dest)
    assert os.listdir(dest) == []


def test_no_csv_member(tmp_path: Path, dest: Path) -> None:
    with pytest.raises(ArchiveError) as err:
        extract(make_zip(tmp_path / "a.zip", {"result.txt": CSV}), dest)
    assert err.value.message == "it holds no CSV file (1 other file)"
    with pytest.raises(ArchiveError, match=r"^it holds no CSV file \(2 other files\)$"):
        extract(make_zip(tmp_path / "b.zip", {"a.xlsx": "x", "b.json": "{}"}), dest)
    with pytest.raises(ArchiveError, match=r"^it holds no CSV file$"):
        extract(make_zip(tmp_path / "c.zip", {}), dest)
    assert os.listdir(dest) == []


def test_two_csv_members_are_refused(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(
        tmp_path / "r.zip", {"Contacts-bulkwrite.csv": CSV, "Deals-bulkwrite.csv": CSV}
    )
    with pytest.raises(ArchiveError) as err:
        extract(zip_path, dest)
    assert err.value.message == (
        "it holds 2 CSV files (`Contacts-bulkwrite.csv`, `Deals-bulkwrite.csv`); one was expected"
    )
    assert os.listdir(dest) == []


def test_too_many_members(tmp_path: Path, dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    members = {f"f{i}.txt": "x" for i in range(10)} | {"a.csv": CSV}
    with pytest.raises(ArchiveError, match="it holds 11 entries; at most 10 expected"):
        extract(make_zip(tmp_path / "r.zip", members), dest)
    with pytest.raises(ArchiveError, match="at most 3 expected"):
        extract(
            make_zip(tmp_path / "s.zip", {"a.csv": CSV, "b": "", "c": "", "d": ""}),
            dest,
            max_members=3,
        )


def test_declared_size_over_the_cap_is_refused_before_extracting(
    tmp_path: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zip_path = make_zip(tmp_path / "r.zip", {"a.csv": "x" * 2000, "b.txt": "y" * 2000})
    forbid_inflating(monkeypatch)
    with pytest.raises(ArchiveError) as err:
        extract(zip_path, dest, cap=3000)
    assert err.value.message == "it would unpack to 3.9 KB, over the 2.9 KB limit"
    assert os.listdir(dest) == []


def test_ratio_bomb_is_refused_without_extracting(
    tmp_path: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zip_path = tmp_path / "bomb.zip"
    with (
        zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("Contacts-bulkwrite.csv", "w") as member,
    ):
        for _ in range(50):
            member.write(bytes(MB))  # 50 MB of zeros
    assert zip_path.stat().st_size < MB
    forbid_inflating(monkeypatch)
    with pytest.raises(ArchiveError) as err:
        extract(zip_path, dest, cap=200 * MB)
    assert "compressed" in err.value.message and "more than 100:1" in err.value.message
    assert os.listdir(dest) == []


def test_ratio_limit_is_configurable_and_small_members_are_exempt(
    tmp_path: Path, dest: Path
) -> None:
    small = make_zip(tmp_path / "small.zip", {"a.csv": "0" * 100_000})  # ~1000:1, but tiny
    assert Path(extract(small, dest)).stat().st_size == 100_000
    big = make_zip(tmp_path / "big.zip", {"a.csv": "ab" * MB})
    with pytest.raises(ArchiveError, match="more than 5:1"):
        extract(big, dest, cap=10 * MB, max_ratio=5)


def _patch_u32(data: bytearray, signature: bytes, offset: int, value: int) -> None:
    """Overwrite a 32-bit field at `offset` after every `signature` (local and central headers)."""
    start = 0
    while (at := data.find(signature, start)) >= 0:
        data[at + offset : at + offset + 4] = struct.pack("<I", value)
        start = at + 4


def test_lying_size_header_stops_at_the_cap(tmp_path: Path, dest: Path) -> None:
    real = os.urandom(2 * MB)  # incompressible, so no ratio check applies
    data = bytearray(make_zip(tmp_path / "r.zip", {"a.csv": real}).read_bytes())
    _patch_u32(data, b"PK\x03\x04", 22, 100)  # local header: uncompressed size
    _patch_u32(data, b"PK\x01\x02", 24, 100)  # central directory: uncompressed size
    liar = tmp_path / "liar.zip"
    liar.write_bytes(bytes(data))
    assert zipfile.ZipFile(liar).getinfo("a.csv").file_size == 100
    with pytest.raises(ArchiveError):
        extract(liar, dest, cap=MB)
    assert os.listdir(dest) == []


def test_the_byte_count_itself_stops_at_the_cap() -> None:
    """Defence in depth: even if zipfile believed a lie, the copy stops at the cap."""
    sink = io.BytesIO()
    with pytest.raises(ArchiveError, match="more than 1,000 bytes"):
        archives._copy_capped(io.BytesIO(b"x" * 5000), sink, 1000)
    assert len(sink.getvalue()) <= 1000


@pytest.mark.parametrize(
    "content",
    [b"", b"not a zip at all", b"<html>Link not valid</html>", b"PK\x03\x04" + b"\0" * 40],
    ids=["empty", "text", "html", "truncated-header"],
)
def test_not_a_zip(content: bytes, tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "r.zip"
    path.write_bytes(content)
    with pytest.raises(ArchiveError, match="not a zip archive"):
        extract(path, dest)


def test_truncated_zip(tmp_path: Path, dest: Path) -> None:
    data = make_zip(tmp_path / "r.zip", {"a.csv": CSV * 100}).read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="not a zip archive"):
        extract(cut, dest)


def test_crc_error(tmp_path: Path, dest: Path) -> None:
    data = bytearray(make_zip(tmp_path / "r.zip", {"a.csv": CSV}, zipfile.ZIP_STORED).read_bytes())
    at = data.index(CSV.encode())
    data[at] ^= 0xFF
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=r"it is damaged \(Bad CRC-32"):
        extract(bad, dest)
    assert os.listdir(dest) == []


def test_corrupt_deflate_stream(tmp_path: Path, dest: Path) -> None:
    data = bytearray(make_zip(tmp_path / "r.zip", {"a.csv": os.urandom(4000).hex()}).read_bytes())
    name_end = data.index(b"a.csv") + len("a.csv")
    data[name_end : name_end + 200] = b"\xff" * 200
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="it is damaged"):
        extract(bad, dest)
    assert os.listdir(dest) == []


def test_encrypted_member_is_refused(tmp_path: Path, dest: Path) -> None:
    data = bytearray(make_zip(tmp_path / "r.zip", {"a.csv": CSV}).read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + offset
        data[at] |= 0x01
    enc = tmp_path / "enc.zip"
    enc.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="`a.csv` is encrypted"):
        extract(enc, dest)


def test_unusual_compression_is_refused(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "r.zip", {"a.csv": CSV}, zipfile.ZIP_BZIP2)
    with pytest.raises(ArchiveError, match="unsupported compression"):
        extract(zip_path, dest)


# --- gunzip_capped --------------------------------------------------------------------------


def gz(tmp_path: Path, data: bytes, name: str = "r.csv.gz") -> str:
    path = tmp_path / name
    path.write_bytes(gzip.compress(data))
    return str(path)


def test_gunzip_complete(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert gunzip_capped(gz(tmp_path, CSV.encode()), str(out), 1000) is True
    assert out.read_bytes() == CSV.encode()


def test_gunzip_exactly_at_the_cap(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert gunzip_capped(gz(tmp_path, b"x" * 1000), str(out), 1000) is True
    assert out.stat().st_size == 1000


def test_gunzip_concatenated_members(tmp_path: Path) -> None:
    src = tmp_path / "two.gz"
    src.write_bytes(gzip.compress(b"a,b\r\n") + gzip.compress(b"1,2\r\n"))
    out = tmp_path / "r.csv"
    assert gunzip_capped(str(src), str(out), 1000) is True
    assert out.read_bytes() == b"a,b\r\n1,2\r\n"


def test_gunzip_over_the_cap_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert gunzip_capped(gz(tmp_path, b"x" * 1001), str(out), 1000) is False
    assert not out.exists()


def test_gunzip_bomb_stops_early(tmp_path: Path) -> None:
    src = tmp_path / "bomb.gz"
    with gzip.open(src, "wb") as fh:
        for _ in range(50):
            fh.write(bytes(MB))
    out = tmp_path / "r.csv"
    assert gunzip_capped(str(src), str(out), MB) is False
    assert not out.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (gzip.compress(CSV.encode() * 50)[:-30], "truncated"),
        (b"", "truncated"),
        (b"not gzip", "not valid gzip"),
    ],
    ids=["truncated", "empty", "garbage"],
)
def test_gunzip_damaged(content: bytes, message: str, tmp_path: Path) -> None:
    src = tmp_path / "bad.gz"
    src.write_bytes(content)
    out = tmp_path / "r.csv"
    with pytest.raises(ArchiveError, match=message):
        gunzip_capped(str(src), str(out), MB)
    assert not out.exists()


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0 bytes"),
        (1023, "1,023 bytes"),
        (1024, "1 KB"),
        (1536, "1.5 KB"),
        (50 * MB, "50 MB"),
        (int(2.25 * MB), "2.2 MB"),
    ],
)
def test_size_text(n: int, text: str) -> None:
    assert size_text(n) == text
