"""Every parser of typed or received text stays linear: a 40 KB adversarial input (long runs
of spaces after `token`, repeated link or mention openers, one 40 KB word...) is answered in
milliseconds. A regex with two quantifiers over the same characters took seconds on some of
these and held the GIL meanwhile, so one slash command could stall every other request."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from urllib.parse import quote

import pytest

from bot import grammar, inbound, schedules, urls
from bot.cli import RedactingFilter
from bot.demo import Terminal
from bot.vendors import SPECS, lookup

N = 40_000
SECRET = "configured-secret-1234"

# Each repeated to 40 KB: shapes that make a backtracking pattern rescan what follows.
UNITS = {
    "spaces": " ",
    "tabs": "\t",
    "newlines": "\n",
    "one long word": "a",
    "digits": "1",
    "alternating letters": "aB",
    "alternating letter and space": "a ",
    "alternating digit and dot": "1.",
    "token and a space": "token ",
    "token=": "token=",
    "channel openers": "<#C|",
    "mention openers": "<@",
    "date openers": "<!date^1^",
    "link openers": "<http://x|",
    "schemes": "://",
    "http links": "http://",
    "https links without a query": "https://x",
    "backticks": "`",
    "Slack token prefixes": "xoxb-",
    "Zoho token prefixes": "1000.",
    "keys": "key",
    "password and a colon-less space": "password ",
    "every": "every 1 ",
    "cron lists": "1,",
    "slashes": "/",
    "percent escapes": "%FF",
}


def repeated(unit: str) -> str:
    return (unit * (N // len(unit) + 1))[:N]


INPUTS = {name: repeated(unit) for name, unit in UNITS.items()} | {
    "token then 40 KB of spaces": "token" + " " * N,
    "token, spaces, then a word": "token" + " " * N + "x",
    "password then 40 KB of spaces": "password" + " " * N,
    "secret: then spaces": "secret:" + " " * N + "!",
    "Zoho token with one long part": "1000." + "a" * N,
    "bearer then spaces": "bearer" + " " * N,
}

# Within the length cap, the same inputs reach every subcommand's own parsing.
PREFIXES = (
    "",
    "watch ",
    "watch za ",
    "watch za 1/2 every ",
    "watch za 1/2 as ",
    "watch https://x/ ",
    "sync ",
    "sync 1/2 at ",
    "sync 1/2 at 06:30 tz ",
    "help ",
    "stop ",
    "list ",
)


# The schedule options (docs/architecture.md#alert-policy), timed apart from the rest.
SCHEDULE_PREFIXES = (
    "sync 1/2 at 06:30 alert ",
    "sync 1/2 at 06:30 alert smart every ",
    "sync 1/2 at 06:30 digest ",
    "schedule s3xq alert ",
    "schedule s3xq digest ",
)


def _parse_capped(text: str, prefixes: tuple[str, ...] = PREFIXES) -> None:
    for prefix in prefixes:
        try:
            grammar.parse((prefix + text)[: grammar.MAX_TEXT], secrets=(SECRET,))
        except grammar.CommandError:
            pass


def _form(text: str) -> None:
    body = f"command=%2Fsyncwatch&user_id=U1&channel_id=C1&text={quote(text)}"
    inbound.malformed(body.encode(), "application/x-www-form-urlencoded")


_redact = RedactingFilter([SECRET]).redact
_terminal = Terminal(io.StringIO())

ENTRY_POINTS: dict[str, Callable[[str], object]] = {
    "grammar.parse": lambda text: grammar.parse(text, secrets=(SECRET,)),
    "grammar.parse, 4,000 characters after each subcommand": _parse_capped,
    "grammar.parse, 4,000 characters after each schedule option": lambda text: _parse_capped(
        text, SCHEDULE_PREFIXES
    ),
    "grammar.looks_like_credential": grammar.looks_like_credential,
    "grammar.parse_duration": lambda text: grammar.parse_duration(text, "example"),
    "urls.parse_url": urls.parse_url,
    "vendors.lookup": lookup,
    **{f"{key}.parse_ref": spec.parse_ref for key, spec in SPECS.items()},
    "schedules.parse_schedule (at)": lambda text: schedules.parse_schedule(text, None),
    "schedules.parse_schedule (tz)": lambda text: schedules.parse_schedule("06:30", text),
    "inbound.malformed": _form,
    "the log redaction": _redact,
    "the demo's mrkdwn rendering": _terminal.plain,
}

# Far above what a linear scan of 40 KB takes (well under 10 ms here), far below the
# seconds the quadratic patterns took; the best of three runs, so a loaded machine's pause
# does not fail it. On a machine loaded enough to stretch every call, the bound stretches
# with the same entry point's time on plain text of the same length (SLACK times it).
BOUND = 0.05
SLACK = 10
PLAIN = repeated("word ")


def best_time(call: Callable[[str], object], text: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        try:
            call(text)
        except Exception:  # a refusal is an answer; only the time is judged here
            pass
        best = min(best, time.perf_counter() - started)
        if best < BOUND:
            break
    return best


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_parser_answers_adversarial_input_in_linear_time(entry):
    call = ENTRY_POINTS[entry]
    slow = {}
    for name, text in INPUTS.items():
        seconds = best_time(call, text)
        if seconds > BOUND:  # only then: is the whole machine slow right now?
            allowed = max(BOUND, SLACK * best_time(call, PLAIN))
            if seconds > allowed:
                slow[name] = f"{seconds * 1000:.0f} ms (allowed {allowed * 1000:.0f} ms)"
    assert slow == {}


def test_a_text_over_the_cap_is_refused_for_its_length_before_any_scan():
    """Even text that holds a credential shape: nothing looks at more than MAX_TEXT."""
    err = pytest.raises(grammar.CommandError, grammar.parse, "token" + " " * N + "Abc123!xyz9876")
    assert f"{N + 19:,} characters" in err.value.message
    assert "Abc123" not in err.value.message
