"""The one redactor (bot/redaction.py) and the vendor boundary that applies it and the text
limits (bot/vendors/boundary.py, docs/vendors.md#vendor-text-boundary)."""

from __future__ import annotations

import os
import threading

import httpx
import pytest

from bot import redaction
from bot.cli import RedactingFilter
from bot.redaction import LIVE_TOKENS_KEPT, Redactor
from bot.vendors.base import (
    FileRef,
    JobNotFoundError,
    JobSnapshot,
    RateLimitedError,
    ResultFile,
    State,
    VendorContext,
    build_http_client,
)
from bot.vendors.boundary import (
    ERROR_TEXT_CHARS,
    FACTS_TOTAL_CHARS,
    MAX_COUNT,
    MESSAGE_CHARS,
    STATUS_CHARS,
    VendorBoundary,
    clip,
)
from bot.vendors.zoho_auth import auth_for as zoho_auth_for
from bot.vendors.zuora_auth import ZuoraConnection
from bot.vendors.zuora_auth import auth_for as zuora_auth_for
from tests.fakes import FakeClock, zoho_connection

SECRET = "pa$$.w0rd*(x)+?"  # every regex metacharacter means itself


# -- the redactor -------------------------------------------------------------------------


def test_secrets_are_replaced_as_plain_text_longest_first():
    r = Redactor([SECRET, "client-secret", "client-secret-2"])
    text = f"a {SECRET} b client-secret-2 c client-secret d pa.w0rd"
    assert r.redact(text) == "a [redacted] b [redacted] c [redacted] d pa.w0rd"


def test_values_under_eight_characters_are_ignored():
    r = Redactor(["short7!", "", "eight888"])
    assert r.redact("short7! eight888") == "short7! [redacted]"
    assert r.values() == {"eight888"}


@pytest.mark.parametrize(
    "echoed",
    [
        'pa$$.w0rd*(x)+?"',  # as is (and a quote after it)
        '{"pw": "s3cr\\"et-v@lue"}',  # inside a JSON string
        '"s3cr""et-v@lue",2',  # inside a quoted CSV cell
        "CONFIG=%7B%22pw%22%3A%22s3cr%22et-v%40lue%22%7D",  # URL-encoded in a query
    ],
)
def test_the_spellings_a_vendor_echoes_are_redacted(echoed):
    r = Redactor([SECRET, 's3cr"et-v@lue'])
    assert "[redacted]" in r.redact(echoed)
    assert "w0rd" not in r.redact(echoed) and "et-v" not in r.redact(echoed)


def test_bytes_without_a_secret_come_back_unchanged():
    r = Redactor([SECRET])
    data = "naïve,café\r\n1,2\n".encode("utf-16")  # not even UTF-8
    assert r.redact_bytes(data) == data
    assert r.redact_bytes(f"x,{SECRET}\n".encode()) == b"x,[redacted]\n"


@pytest.mark.parametrize("chunk", [1, 3, 7, 16, 1 << 20])
def test_a_file_is_redacted_in_place_even_across_chunk_borders(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(redaction, "_CHUNK", chunk)
    r = Redactor([SECRET, "client-secret-2"])
    path = tmp_path / "result.csv"
    path.write_bytes(b"h\n" + (SECRET + ",client-secret-2\n").encode() * 5 + SECRET.encode())
    assert r.redact_file(str(path)) is True
    assert path.read_bytes() == b"h\n" + b"[redacted],[redacted]\n" * 5 + b"[redacted]"
    assert os.listdir(tmp_path) == ["result.csv"]  # no scratch file left


def test_a_file_without_a_secret_is_not_rewritten(tmp_path, monkeypatch):
    monkeypatch.setattr(redaction, "_CHUNK", 5)
    path = tmp_path / "result.csv"
    content = b"a,b\n" + os.urandom(4096)
    path.write_bytes(content)
    before = os.stat(path)
    assert Redactor([SECRET]).redact_file(str(path)) is False
    after = os.stat(path)
    assert path.read_bytes() == content
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_live_tokens_are_kept_per_cache_and_bounded():
    r = Redactor(["configured-secret"])
    for n in range(10):
        r.remember("zoho", f"zoho-token-{n:02}")
    r.remember("zuora", "zuora-token-00")
    assert r.values() == {
        "configured-secret",
        "zuora-token-00",
        *(f"zoho-token-{n:02}" for n in range(10 - LIVE_TOKENS_KEPT, 10)),
    }
    assert r.redact("zoho-token-09 zoho-token-00") == "[redacted] zoho-token-00"


def test_remembering_from_many_threads_loses_no_token():
    r = Redactor()
    threads = [
        threading.Thread(target=r.remember, args=(f"cache-{n}", f"token-{n:04}")) for n in range(50)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(r.values()) == 50
    assert r.redact(" ".join(f"token-{n:04}" for n in range(50))).count("[redacted]") == 50


def test_the_log_filter_redacts_with_the_process_redactor_and_its_live_tokens():
    r = Redactor(["configured-secret"])
    log_filter = RedactingFilter(r)
    r.remember("zoho", "1000.live.token")  # minted after logging was set up
    assert log_filter.redact("got 1000.live.token for configured-secret") == (
        "got [redacted] for [redacted]"
    )


# -- token caches register what they mint ---------------------------------------------------


def test_zoho_and_zuora_token_caches_register_each_minted_token():
    def handler(request: httpx.Request) -> httpx.Response:
        token = "zoho-live-token-1" if "/oauth/v2/" in request.url.path else "zuora-live-token-1"
        return httpx.Response(200, json={"access_token": token, "expires_in": 3600})

    ctx = VendorContext(
        http=build_http_client(httpx.MockTransport(handler)),
        clock=FakeClock(),
        redactor=Redactor(),
    )
    zuora = ZuoraConnection("default", "zuora-client", "zuora-secret", "https://rest.zuora.test")
    try:
        assert zoho_auth_for(zoho_connection(), ctx).access_token() == "zoho-live-token-1"
        assert zuora_auth_for(zuora, ctx).access_token() == "zuora-live-token-1"
    finally:
        ctx.http.close()
    assert ctx.redactor.values() == {"zoho-live-token-1", "zuora-live-token-1"}


# -- the boundary ---------------------------------------------------------------------------


@pytest.fixture
def boundary() -> VendorBoundary:
    r = Redactor([SECRET])
    r.remember("zoho", "live-access-token")
    return VendorBoundary(r)


def test_clip_is_bounded_marked_and_idempotent():
    assert clip("abc", 3) == "abc"
    assert clip("abcd", 3) == "ab…"
    assert clip(clip("x" * 50, 10), 10) == clip("x" * 50, 10)


def test_every_string_of_a_snapshot_is_redacted(boundary):
    s = SECRET
    snap = JobSnapshot(
        state=State.FAILED,
        raw_status=f"ERROR {s}",
        progress=((f"Module {s}", f"live-access-token · {s}"),),
        facts=((f"k{s}", f"v {s}"),),
        error_code=f"E-{s}",
        error_message=f"login with {s} and live-access-token refused",
        files=(FileRef(f"id-{s}", f"Batch {s}", 3, "csv"),),
        notice=f"note {s}",
    )
    clean = boundary.snapshot(snap)
    assert SECRET not in clean.to_json() and "live-access-token" not in clean.to_json()
    assert clean.raw_status == "ERROR [redacted]"
    assert clean.error_message == "login with [redacted] and [redacted] refused"
    assert clean.files == (FileRef("id-[redacted]", "Batch [redacted]", 3, "csv"),)
    assert (clean.state, clean.progress[0][0]) == (State.FAILED, "Module [redacted]")


def test_every_string_of_a_snapshot_is_bounded(boundary):
    huge = "S" * 10_000_000
    snap = JobSnapshot(
        state=State.UNKNOWN,
        raw_status=huge,
        progress=tuple((huge, huge) for _ in range(100)),
        facts=tuple((huge, huge) for _ in range(1000)),
        error_code=huge,
        error_message=huge,
        files=(FileRef(huge, huge, None, huge),),
        notice=huge,
    )
    clean = boundary.snapshot(snap)
    assert len(clean.raw_status) == STATUS_CHARS and clean.raw_status.endswith("…")
    assert len(clean.error_message or "") == ERROR_TEXT_CHARS
    assert len(clean.notice or "") == MESSAGE_CHARS
    assert sum(len(v) for _, v in clean.facts) <= FACTS_TOTAL_CHARS
    assert len(clean.to_json()) < 1_000_000


@pytest.mark.parametrize(
    ("done", "total", "kept"),
    [
        (3, 10, (3, 10)),
        (0, 0, (0, 0)),
        (MAX_COUNT, MAX_COUNT, (MAX_COUNT, MAX_COUNT)),
        (-1, 10, (None, None)),
        (3, MAX_COUNT + 1, (None, None)),
        (True, 10, (None, None)),
        (3, None, (None, None)),
        (None, 10, (None, None)),
        (10**400, 10**400, (None, None)),
    ],
)
def test_counts_pass_only_as_plausible_pairs(boundary, done, total, kept):
    # a count no float can hold, a bool or a lone count never reaches the estimate
    clean = boundary.snapshot(JobSnapshot(State.RUNNING, "running", done=done, total=total))
    assert (clean.done, clean.total) == kept


def test_a_snapshot_stored_before_the_counts_reads_without_them():
    stored = '{"state": "running", "raw_status": "executing", "progress": [["Batches", "1"]]}'
    snap = JobSnapshot.from_json(stored)
    assert snap is not None and (snap.done, snap.total) == (None, None)
    again = JobSnapshot.from_json(JobSnapshot(State.RUNNING, "x", done=4, total=9).to_json())
    assert again is not None and (again.done, again.total) == (4, 9)


def test_an_error_keeps_its_class_and_wait_with_its_text_cleaned(boundary):
    err = RateLimitedError(f"slow down {SECRET}" + "!" * 10_000, code=SECRET, retry_after=30)
    err.notice = "live-access-token"
    clean = boundary.error(err)
    assert isinstance(clean, RateLimitedError) and clean.retry_after == 30
    assert clean.message.startswith("slow down [redacted]!!")
    assert len(clean.message) == MESSAGE_CHARS and str(clean) == clean.message
    assert (clean.code, clean.notice) == ("[redacted]", "[redacted]")
    gone = boundary.error(JobNotFoundError("no job", hint=f"check {SECRET}"))
    assert isinstance(gone, JobNotFoundError) and gone.hint == "check [redacted]"


def test_text_result_files_are_redacted_and_others_posted_as_served(boundary, tmp_path):
    spooled = tmp_path / "zuora-1.csv"
    spooled.write_bytes(f"a\n{SECRET}\n".encode())
    gz = tmp_path / "zuora-2.csv.gz"
    gz.write_bytes(b"\x1f\x8b" + SECRET.encode())
    inline = boundary.result(
        ResultFile(f"r-{SECRET}.csv", f"T {SECRET}", f"c {SECRET}", content=SECRET.encode())
    )
    on_disk = boundary.result(ResultFile("r.csv", "T", path=str(spooled)))
    served = boundary.result(ResultFile("r.csv.gz", "T", path=str(gz)))
    note = boundary.result(ResultFile("r.csv", "T", note=f"see {SECRET}" + "." * 5000))
    assert (inline.filename, inline.title, inline.comment) == (
        "r-[redacted].csv",
        "T [redacted]",
        "c [redacted]",
    )
    assert inline.content == b"[redacted]"
    assert spooled.read_bytes() == b"a\n[redacted]\n" and on_disk.path == str(spooled)
    assert gz.read_bytes() == b"\x1f\x8b" + SECRET.encode() and served.path == str(gz)
    assert note.note is not None and note.note.startswith("see [redacted]")
    assert len(note.note) == MESSAGE_CHARS


@pytest.mark.parametrize("limit", [5, 9, 20, 37])
def test_clipping_a_long_text_never_keeps_part_of_a_secret(limit):
    """Only the head of a long value is redacted; the secrets past it can't reach the kept part
    however much the ones before them shrink."""
    secrets = ["s" * 30 + "A", "t" * 9 + "B"]
    boundary = VendorBoundary(Redactor(secrets))
    for text in (
        secrets[0] * 20 + secrets[1] * 20,
        (secrets[0] + "xx") * 40,
        "y" * (limit - 2) + secrets[0] * 3,
        secrets[1] * 7 + secrets[0] * 7,
    ):
        clean = boundary.text(text, limit)
        whole = clip(boundary.redactor.redact(text), limit)
        assert clean == whole
        assert "sss" not in clean and "ttt" not in clean
