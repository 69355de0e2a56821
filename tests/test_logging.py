"""What reaches the log: one line per record, whatever a value holds, and never the body of
a request the bot refused."""

from __future__ import annotations

import io
import logging

import pytest

from bot import cli


@pytest.fixture
def text_log():
    """The text handler `syncwatch run` installs, writing into a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    cli.setup_logging(["shh-secret"])
    buffer = io.StringIO()
    root.handlers[0].stream = buffer
    yield buffer
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_a_value_with_a_newline_cant_forge_a_log_line(text_log):
    forged = "boom\n12:00:00 ERROR bot.poller: watch w1 failed\r\x1b[2K"
    logging.getLogger("bot.test").warning("vendor said: %s", forged)
    lines = text_log.getvalue().splitlines()
    assert len(lines) == 1
    assert "boom\\n12:00:00 ERROR bot.poller" in lines[0] and "\\r\\x1b[2K" in lines[0]


def test_a_traceback_still_spans_lines_and_is_redacted(text_log):
    try:
        raise ValueError("token shh-secret leaked")
    except ValueError:
        logging.getLogger("bot.test").exception("it failed")
    out = text_log.getvalue()
    assert "Traceback" in out and out.count("\n") > 2
    assert "shh-secret" not in out and "[redacted]" in out


def test_an_unsigned_request_is_refused_without_logging_its_body(running, caplog):
    _, slack = running
    caplog.set_level(logging.DEBUG)
    body = {"command": "/syncwatch", "text": "BODY-MARKER\n12:00:00 ERROR forged"}
    assert slack.post(body, secret="wrong-secret").status_code == 401
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "BODY-MARKER" not in logged and "forged" not in logged


def test_bolts_own_bad_signature_record_never_carries_the_body():
    """Behind the door's own check, Bolt's record of a bad signature is rewritten too."""
    from bot.app import NoRequestBodies

    record = logging.LogRecord(
        "slack_bolt",
        logging.INFO,
        __file__,
        1,
        "Invalid request signature detected (signature: x, timestamp: 1, body: BODY-MARKER)",
        None,
        None,
    )
    assert NoRequestBodies().filter(record) is True
    assert "BODY-MARKER" not in record.getMessage()
