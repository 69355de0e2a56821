"""Slack requests at the door: size, signature and shape are checked on the raw bytes
before Bolt parses anything, so a request nobody signed costs a few microseconds and a
malformed one gets a 4xx, never a 500 with a traceback (docs/slack.md#request-signatures).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier

# Slack's own requests are small: a slash command is a short form, an interaction payload a
# few kilobytes, a modal's state some tens of kilobytes. 1 MiB leaves room for all of them
# and caps what an unsigned sender can make us hold.
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class Refusal:
    status: str  # the HTTP status line, e.g. "401 Unauthorized"
    reason: str  # said in the (plain text) answer; never echoes the request


def screen(environ: dict[str, Any], verifier: SignatureVerifier) -> bytes | Refusal:
    """The request's body when it is small enough, signed by Slack and well formed;
    otherwise why not. Reads no more than MAX_BODY_BYTES."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return Refusal("400 Bad Request", "bad Content-Length")
    if length > MAX_BODY_BYTES:
        return Refusal("413 Payload Too Large", "request body too large")
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    try:
        # Slack sends UTF-8 only, so bytes that aren't can be refused before the signature
        # check: that check decodes the body itself and raised on them (a 500 with a
        # traceback for any sender). Refusing says nothing about the signing secret.
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal("400 Bad Request", NOT_UTF8)
    timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or ""
    signature = environ.get("HTTP_X_SLACK_SIGNATURE") or ""
    if not timestamp.isdigit() or not verifier.is_valid(text, timestamp, signature):
        return Refusal("401 Unauthorized", "invalid request")
    problem = _malformed(text, environ.get("CONTENT_TYPE") or "")
    if problem is not None:
        return Refusal("400 Bad Request", problem)
    return body


NOT_UTF8 = "body is not UTF-8"


def malformed(body: bytes, content_type: str) -> str | None:
    """What is wrong with a signed body, or None. Only what Slack sends is accepted: UTF-8
    text (also inside percent-escapes and JSON strings), holding JSON events, or a form with
    a slash command or an interaction `payload`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return NOT_UTF8
    return _malformed(text, content_type)


def _malformed(text: str, content_type: str) -> str | None:
    if content_type.split(";")[0].strip().lower() == "application/json":
        event = _json_object(text)
        return None if event is not None else "body is not a JSON object of UTF-8 text"
    try:
        # strict: parse_qs would otherwise read `%FF` as U+FFFD and act on the result
        form = parse_qs(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return "a form field is not UTF-8"
    if "payload" in form:
        payload = _json_object(form["payload"][0])
        if payload is None:
            return "payload is not a JSON object of UTF-8 text"
        if payload.get("type") == "block_actions":
            actions = payload.get("actions")
            if not actions or not isinstance(actions, list) or not isinstance(actions[0], dict):
                return "block_actions without actions"
            if not isinstance(actions[0].get("action_id"), str):  # listeners route on it
                return "block_actions without an action_id"
            if not isinstance(payload.get("user"), dict) or not payload["user"].get("id"):
                return "block_actions without a user"
        return None
    if "command" in form:
        if not form.get("user_id", [""])[0] or not form.get("channel_id", [""])[0]:
            return "slash command without user_id or channel_id"
        return None
    if "ssl_check" in form:
        return None
    return "not a Slack request"


def _json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in `text`, or None. A `\ud800` escape decodes to a lone surrogate, a
    string that UTF-8 can't encode again (for a log line, the database or Slack): such an
    object is refused like garbage."""
    try:
        value = json.loads(text)
        if not isinstance(value, dict):
            return None
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # garbage, nested too deep, or a lone surrogate
        return None
    return value
