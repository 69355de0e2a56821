"""Requests at the door: what nobody signed, what is too big and what is malformed gets a
4xx before Bolt parses it, and never a 500 with a traceback."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import select
import socket
import time
from collections.abc import Iterable
from urllib.parse import quote, urlencode, urlsplit

import httpx
import pytest

from bot import inbound
from tests.conftest import SIGNING_SECRET, signed_headers


def form_payload(value: object) -> str:
    return "payload=" + quote(value if isinstance(value, str) else json.dumps(value))


MALFORMED = {
    "payload garbage": "payload=garbage",
    "payload a JSON array": form_payload("[1, 2]"),
    "payload a lone brace": form_payload("{"),
    "payload nested 100k deep": form_payload("[" * 100_000 + "]" * 100_000),
    "block_actions without actions": form_payload(
        {"type": "block_actions", "actions": [], "user": {"id": "U1"}}
    ),
    "block_actions without a user": form_payload(
        {"type": "block_actions", "actions": [{"action_id": "watch.stop", "value": "w1"}]}
    ),
    "block_actions without an action_id": form_payload(
        {"type": "block_actions", "actions": [{"value": "w1"}], "user": {"id": "U1"}}
    ),
    "block_actions with a numeric action_id": form_payload(
        {"type": "block_actions", "actions": [{"action_id": 5}], "user": {"id": "U1"}}
    ),
    "command without user_id": "command=%2Fsyncwatch&text=list&channel_id=C1",
    "neither command nor payload": "hello=world",
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_signed_malformed_request_is_400_not_500(running, fake_slack, caplog, body):
    _, slack = running
    response = httpx.post(
        f"{slack.base_url}/slack/events", content=body, headers=signed_headers(body), timeout=10
    )
    assert response.status_code == 400
    assert [c.method for c in fake_slack.calls if c.method != "auth.test"] == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_a_json_content_type_on_a_form_body_is_400(running):
    _, slack = running
    body = "command=%2Fsyncwatch&text=list&user_id=U1&channel_id=C1"
    headers = signed_headers(body) | {"Content-Type": "application/json"}
    response = httpx.post(f"{slack.base_url}/slack/events", content=body, headers=headers)
    assert response.status_code == 400


@pytest.mark.parametrize("timestamp", ["abc", "", "12.5", "-1"])
def test_a_non_numeric_timestamp_is_401(running, timestamp):
    _, slack = running
    body = "command=%2Fsyncwatch&text=list&user_id=U1&channel_id=C1"
    headers = signed_headers(body) | {"X-Slack-Request-Timestamp": timestamp}
    response = httpx.post(f"{slack.base_url}/slack/events", content=body, headers=headers)
    assert response.status_code == 401


def test_a_big_unsigned_body_is_refused_without_being_read(running):
    _, slack = running
    body = b"payload=" + b"x" * (20 * 1024 * 1024)
    started = time.monotonic()
    try:
        response = httpx.post(f"{slack.base_url}/slack/events", content=body, timeout=10)
        status = response.status_code
    except httpx.HTTPError:  # the server may close before taking all of it: also a refusal
        status = 413
    assert status in (401, 413)
    assert time.monotonic() - started < 5
    # and the bot still answers signed commands at once
    answer, _ = slack.slash("help")
    assert answer.status_code == 200 and "syncwatch" in answer.text


def test_a_signed_body_just_over_the_cap_is_413(running):
    _, slack = running
    body = "command=%2Fsyncwatch&text=" + "x" * (1024 * 1024)
    response = httpx.post(
        f"{slack.base_url}/slack/events", content=body, headers=signed_headers(body), timeout=10
    )
    assert response.status_code == 413


# -- chunked bodies (no Content-Length: the server counts what it reads) --------------------


def chunked_exchange(base_url: str, headers: dict[str, str], pieces: Iterable[bytes]) -> bytes:
    """POST a chunked body, piece by piece, on a raw socket; stop writing as soon as the
    server answers or closes. Returns the answer (b"" if none came within 5 s)."""
    url = urlsplit(base_url)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request_head = (
        f"POST /slack/events HTTP/1.1\r\nHost: {url.netloc}\r\n{head}"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    got = b""
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        try:
            sock.sendall(request_head.encode())
            for piece in pieces:
                if select.select([sock], [], [], 0)[0]:
                    break
                sock.sendall(piece)
        except OSError:
            pass  # closed on us: the answer is already on its way
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except TimeoutError:
            pass  # no answer: the server is still waiting for the line to end
        except OSError:
            pass
    return got


def chunks(body: bytes, size: int) -> list[bytes]:
    return [
        f"{len(body[i : i + size]):x}\r\n".encode() + body[i : i + size] + b"\r\n"
        for i in range(0, len(body), size)
    ] + [b"0\r\n\r\n"]


def test_a_signed_command_sent_chunked_is_answered(running):
    _, slack = running
    form = {
        "command": "/syncwatch",
        "text": "help",
        "team_id": "T1",
        "user_id": "U1",
        "channel_id": "C1",
        "response_url": "http://127.0.0.1:9/r",
        "trigger_id": "t1",
    }
    body = urlencode(form)
    pieces = chunks(body.encode(), 40)
    pieces[0] = pieces[0].replace(b"\r\n", b";name=value\r\n", 1)  # an extension is fine
    answer = chunked_exchange(slack.base_url, signed_headers(body), pieces)
    assert answer.startswith(b"HTTP/1.1 200") and b"syncwatch" in answer


def test_a_chunked_body_over_the_cap_is_413(running):
    _, slack = running
    answer = chunked_exchange(slack.base_url, {}, chunks(b"x" * (1100 * 1024), 64 * 1024))
    assert answer.startswith(b"HTTP/1.1 413")


ENDLESS_FRAMING = {
    # Each re-scanned in full on every read until the 1 MiB cap: quadratic CPU on the one
    # thread that reads every connection.
    "a chunk-size line that never ends": [b"1" * 8192] * 8,
    "a trailer that never ends": [b"0\r\nX-Trailer: "] + [b"x" * 8192] * 8,
}


@pytest.mark.parametrize("pieces", ENDLESS_FRAMING.values(), ids=ENDLESS_FRAMING.keys())
def test_endless_chunked_framing_is_400_within_a_few_kib(running, pieces):
    _, slack = running
    answer = chunked_exchange(slack.base_url, {}, pieces)  # 64 KiB, far under the body cap
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"too long" in answer
    answer, _ = slack.slash("help")  # and the bot still answers signed commands
    assert answer.status_code == 200 and "syncwatch" in answer.text


# -- text that is not UTF-8 --------------------------------------------------------------------
# Slack always sends UTF-8. Bytes that aren't, raw or percent-encoded inside a field, would be
# read as U+FFFD and acted on, and a JSON `\ud800` escape (a lone surrogate) is a string no
# encoder can write out again (log, database, Slack): all are refused before Bolt sees them.

FORM = "application/x-www-form-urlencoded"
COMMAND = b"command=%2Fsyncwatch&user_id=U1&channel_id=C1&text="

NOT_UTF8 = {
    "raw 0xFF 0xFE in a field": COMMAND + b"\xff\xfe",
    "raw Latin-1 in a field": COMMAND + b"caf\xe9",
    "percent-encoded 0xFF 0xFE": COMMAND + b"%FF%FE",
    "percent-encoded truncated sequence": COMMAND + b"list%E2%82",
    "percent-encoded overlong slash": COMMAND + b"%C0%AF",
    "percent-encoded surrogate (CESU-8)": COMMAND + b"%ED%A0%80",
    "percent-encoded in a field name": b"%FF=1&" + COMMAND + b"list",
    "percent-encoded in the payload": b"payload=" + quote('{"type": "x"}').encode() + b"%FF",
    "lone surrogate escape in the payload": b"payload="
    + quote(
        json.dumps(
            {"type": "block_actions", "user": {"id": "U1"}, "actions": [{"value": "\ud800"}]}
        )
    ).encode(),
}


@pytest.mark.parametrize("body", NOT_UTF8.values(), ids=NOT_UTF8.keys())
def test_a_form_that_is_not_utf8_is_malformed(body):
    assert inbound.malformed(body, FORM) is not None


@pytest.mark.parametrize(
    "body", [b'{"type": "event_callback", "event": {"text": "\\udfff"}}', b'{"a": "\xff"}']
)
def test_a_json_body_that_is_not_unicode_is_malformed(body):
    assert inbound.malformed(body, "application/json") is not None


@pytest.mark.parametrize(
    "body",
    [
        COMMAND + b"watch%20za%20caf%C3%A9",  # é, percent-encoded UTF-8
        COMMAND + "list \u00e9\u2603".encode(),  # raw UTF-8
        COMMAND + b"%F0%9F%98%80",  # an emoji: four bytes
        b"payload=" + quote(json.dumps({"type": "view_submission", "note": "\U0001f600"})).encode(),
    ],
)
def test_utf8_of_any_width_is_accepted(body):
    assert inbound.malformed(body, FORM) is None


def signed_bytes(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    base = f"v0:{stamp}:".encode() + body
    sig = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={sig}",
        "Content-Type": FORM,
    }


@pytest.mark.parametrize("body", NOT_UTF8.values(), ids=NOT_UTF8.keys())
def test_a_signed_request_that_is_not_utf8_is_400_with_no_traceback(
    running, fake_slack, caplog, body
):
    _, slack = running
    form = body + b"&response_url=" + quote(fake_slack.response_url("r"), safe="").encode()
    response = httpx.post(
        f"{slack.base_url}/slack/events", content=form, headers=signed_bytes(form), timeout=10
    )
    assert response.status_code == 400 and "UTF-8" in response.text
    assert [c.method for c in fake_slack.calls if c.method != "auth.test"] == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_an_unsigned_body_that_is_not_utf8_is_refused_without_a_traceback(running, caplog):
    """The signature check decoded the body as UTF-8 itself: anyone could cause a 500 and a
    logged traceback with a fresh timestamp, any signature and one stray byte."""
    _, slack = running
    headers = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=0"}
    response = httpx.post(
        f"{slack.base_url}/slack/events",
        content=COMMAND + b"\xff",
        headers={"Content-Type": FORM, **headers},
        timeout=10,
    )
    assert response.status_code == 400
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
