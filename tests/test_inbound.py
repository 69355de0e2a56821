"""Requests at the door: what nobody signed, what is too big and what is malformed gets a
4xx before Bolt parses it, and never a 500 with a traceback."""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import signed_headers


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
