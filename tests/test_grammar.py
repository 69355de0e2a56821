"""The `/syncwatch` grammar: every subcommand, every usage error, credential refusal
(docs/architecture.md#slash-command, docs/architecture.md#credential-looking-text)."""

from __future__ import annotations

import re

import pytest

from bot.grammar import (
    COMMAND,
    AlertChoice,
    CommandError,
    HelpRequest,
    ListRequest,
    ScheduleAlertRequest,
    ScheduleDigestRequest,
    StopRequest,
    SyncRequest,
    WatchRequest,
    looks_like_credential,
    parse,
)
from storage import AlertPolicy

WS = "2480011000000498001"
JOB = "2480011000000512007"
REF = f"{WS}/{JOB}"


def error_for(text: str) -> CommandError:
    with pytest.raises(CommandError) as info:
        parse(text)
    return info.value


def assert_example_works(err: CommandError) -> None:
    assert err.example.startswith(f"{COMMAND} ")
    parse(err.example.removeprefix(f"{COMMAND} "))  # raises if the example is itself wrong


# -- commands that parse ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", HelpRequest()),
        ("help vendors", HelpRequest("vendors")),
        ("help za", HelpRequest("za")),
        ("HELP watch", HelpRequest("watch")),
        ("help alerts", HelpRequest("schedules")),
        ("help digest", HelpRequest("schedules")),
        (f"watch za {REF}", WatchRequest("zoho-analytics", (REF,))),
        (f"watch zoho-analytics {REF}", WatchRequest("zoho-analytics", (REF,))),
        (f"watch ZA {REF}", WatchRequest("zoho-analytics", (REF,))),
        ("watch za 1/2 3/4 5/6", WatchRequest("zoho-analytics", ("1/2", "3/4", "5/6"))),
        ("watch za 1/2 as eu-team", WatchRequest("zoho-analytics", ("1/2",), "eu-team")),
        ("watch za 1/2 as EU_Team", WatchRequest("zoho-analytics", ("1/2",), "eu_team")),
        ("watch za 1/2 every 30s", WatchRequest("zoho-analytics", ("1/2",), every=30.0)),
        ("watch za 1/2 every 2m", WatchRequest("zoho-analytics", ("1/2",), every=120.0)),
        ("watch za 1/2 every 1h", WatchRequest("zoho-analytics", ("1/2",), every=3600.0)),
        ("watch za 1/2 every 45", WatchRequest("zoho-analytics", ("1/2",), every=45.0)),
        ("watch za 1/2 every 30 s", WatchRequest("zoho-analytics", ("1/2",), every=30.0)),
        ("watch za 1/2 every 1s", WatchRequest("zoho-analytics", ("1/2",), every=1.0)),
        (
            "watch za 1/2 3/4 every 1m as eu-team",
            WatchRequest("zoho-analytics", ("1/2", "3/4"), "eu-team", 60.0),
        ),
        ("  watch   za   1/2  ", WatchRequest("zoho-analytics", ("1/2",))),
        ("list", ListRequest()),
        ("ls", ListRequest()),
        ("stop w7k2", StopRequest("w7k2")),
        ("stop W7K2", StopRequest("w7k2")),
        ("stop s3xq", StopRequest("s3xq")),
        ("sync 1/2", SyncRequest("1", "2")),
        ("sync 1/2 as eu-team", SyncRequest("1", "2", "eu-team")),
        (
            "sync 1/2 at 06:30 tz Europe/Berlin",
            SyncRequest("1", "2", at="06:30", tz="Europe/Berlin"),
        ),
        ("sync 1/2 at 0 6 * * 1-5", SyncRequest("1", "2", at="0 6 * * 1-5")),
        # -- alert policies (docs/architecture.md#alert-policy)
        (
            'sync 1/2 at "0 6 * * *" alert failures',
            SyncRequest("1", "2", at="0 6 * * *", alert=AlertChoice(AlertPolicy.FAILURES)),
        ),
        (
            "sync 1/2 at “0 6 * * *” tz UTC alert every",
            SyncRequest("1", "2", at="0 6 * * *", tz="UTC", alert=AlertChoice()),
        ),
        (
            "sync 1/2 at 06:30 alert smart every 3 tz Europe/Berlin",
            SyncRequest(
                "1", "2", at="06:30", tz="Europe/Berlin", alert=AlertChoice(AlertPolicy.SMART, 3)
            ),
        ),
        (
            "sync 1/2 at 06:30 alert SMART",
            SyncRequest("1", "2", at="06:30", alert=AlertChoice(AlertPolicy.SMART, 5)),
        ),
        ("schedule s3xq alert smart 2", ScheduleAlertRequest("s3xq", AlertChoice("smart", 2))),
        (
            "sync 1/2 at 06:30 alert failures digest weekly",
            SyncRequest(
                "1", "2", at="06:30", alert=AlertChoice(AlertPolicy.FAILURES), digest="weekly"
            ),
        ),
        ("schedule s3xq digest Daily", ScheduleDigestRequest("s3xq", "daily")),
        ("schedule s3xq digest off", ScheduleDigestRequest("s3xq", None)),
        (
            "schedule S3XQ alert failures",
            ScheduleAlertRequest("s3xq", AlertChoice(AlertPolicy.FAILURES)),
        ),
    ],
)
def test_valid_command_parses_to_its_request(text: str, expected: object) -> None:
    assert parse(text) == expected


def test_ten_refs_are_allowed_in_one_command() -> None:
    refs = tuple(f"{i}/1" for i in range(10))
    assert parse("watch za " + " ".join(refs)).refs == refs


def test_longest_allowed_ids_parse() -> None:
    ref = "9" * 20 + "/" + "1" * 20
    assert parse(f"watch za {ref}").refs == (ref,)


# -- usage errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Tell me what to do"),
        ("   \t ", "Tell me what to do"),
        ("frobnicate", "I don't know the subcommand `frobnicate`"),
        ("help nonsense", "There's no help topic `nonsense`"),
        ("watch", "`watch` needs a vendor and a job id"),
        ("watch za", "`watch zoho-analytics` needs a job id"),
        ("watch za every 30s", "`watch zoho-analytics` needs a job id"),
        ("watch za abc/12", "`abc/12` is not a Zoho Analytics import job"),
        ("watch za 12", "missing `/`"),
        ("watch za ../12/3", "exactly one `/` allowed"),
        ("watch za " + "1" * 21 + "/2", "ids have at most 20 digits"),
        ("watch za 1/2/3", "exactly one `/` allowed"),
        ("watch za 1/2 3/4 1/2", "`1/2` is listed twice"),
        ("watch za 1/2 every 0s", "between 1 second and 24 hours"),
        ("watch za 1/2 every 0.5s", "between 1 second and 24 hours"),
        ("watch za 1/2 every 25h", "between 1 second and 24 hours"),
        ("watch za 1/2 every abc", "`abc` is not a duration"),
        ("watch za 1/2 every", "`every` needs a value after it"),
        ("watch za 1/2 as", "`as` needs a value after it"),
        ("watch za 1/2 as Bad!Name", "`Bad!Name` is not a connection name"),
        ("watch za 1/2 as eu team", "`team` is not a Zoho Analytics import job"),
        ("watch za 1/2 as a as b", "`as` is given twice"),
        ("watch za 1/2 every 1m every 2m", "`every` is given twice"),
        ("stop", "`stop` needs one watch or schedule id"),
        ("stop w7k2 w8k3", "`stop` needs one watch or schedule id"),
        ("stop xyz!", "`xyz!` is not a watch or schedule id"),
        ("stop 7k2", "`7k2` is not a watch or schedule id"),
        ("list extra", "`list` takes no arguments"),
        ("ls all", "`list` takes no arguments"),
        ("sync", "`sync` needs exactly one"),
        ("sync 1/2 3/4", "`sync` needs exactly one"),
        ("sync 1-2", "`1-2` is not"),
        ("sync 1/2 tz Europe/Berlin", "`tz` only applies to a schedule given with `at`"),
        ("sync 1/2 at", "`at` needs a value after it"),
        ("sync 1/2 alert failures", "`alert` only applies to a schedule given with `at`"),
        ("sync 1/2 at 06:30 alert", "`alert` needs a value after it"),
        ("sync 1/2 at 06:30 alert sometimes", "`sometimes` is not an alert policy"),
        ("sync 1/2 at 06:30 alert failures every 3", "`alert failures` takes nothing after"),
        ("sync 1/2 at 06:30 alert smart every", "a whole number from 1 to 100"),
        ("sync 1/2 at 06:30 alert smart every 0", "a whole number from 1 to 100"),
        ("sync 1/2 at 06:30 alert smart every 101", "a whole number from 1 to 100"),
        ("sync 1/2 at 06:30 alert smart every ٣", "a whole number from 1 to 100"),
        ("sync 1/2 at 06:30 alert smart every 3 4", "a whole number from 1 to 100"),
        ("sync 1/2 at 06:30 alert every alert smart", "`alert` is given twice"),
        ("schedule", "`schedule` takes a schedule id and what to change"),
        ("schedule s3xq", "`schedule` takes a schedule id and what to change"),
        ("schedule s3xq stop now", "`schedule` takes a schedule id and what to change"),
        ("schedule w7k2 alert every", "`w7k2` is not a schedule id"),
        ("sync 1/2 digest daily", "`digest` only applies to a schedule given with `at`"),
        ("sync 1/2 at 06:30 digest hourly", "`digest` takes one of `daily`, `weekly`, not"),
        ("sync 1/2 at 06:30 digest off", "`digest` takes one of `daily`, `weekly`, not"),
        ("schedule s3xq digest daily weekly", "`digest` takes one of `daily`, `weekly`, `off`"),
        ("schedule s3xq alert loudly", "`loudly` is not an alert policy"),
        ("schedul s3xq alert every", "Did you mean `schedule`?"),
    ],
)
def test_usage_error_says_what_is_wrong_and_gives_a_working_example(text: str, says: str) -> None:
    err = error_for(text)
    assert says in err.message
    assert_example_works(err)


def test_unknown_subcommand_suggests_the_closest_name() -> None:
    err = error_for("wacth za 1/2")
    assert "`wacth`" in err.message
    assert "Did you mean `watch`?" in err.message
    assert_example_works(err)


def test_unknown_vendor_suggests_the_closest_name() -> None:
    err = error_for("watch zoho-analytic 1/2")
    assert "Unknown vendor `zoho-analytic`" in err.message
    assert "Did you mean `zoho-analytics`?" in err.message
    assert err.example == f"{COMMAND} watch zoho-analytics {REF}"
    assert_example_works(err)


def test_unknown_vendor_without_a_close_name_lists_the_supported_ones() -> None:
    err = error_for("watch salesforce 1/2")
    assert "Did you mean" not in err.message
    assert "`zoho-analytics`" in err.message
    assert_example_works(err)


def test_more_than_ten_refs_are_refused() -> None:
    err = error_for("watch za " + " ".join(f"{i}/1" for i in range(11)))
    assert "That's 11 jobs" in err.message
    assert "at most 10" in err.message
    assert_example_works(err)


def test_text_over_4000_characters_is_refused_with_its_length() -> None:
    err = error_for("watch za " + "1/2 " * 1000)
    assert "4,009 characters" in err.message
    assert "limit is 4,000" in err.message
    assert_example_works(err)


def test_an_unknown_link_is_explained_with_a_working_example() -> None:
    url = f"https://analytics.zoho.com/workspace/{WS}/import/{JOB}"
    err = error_for(f"watch {url}")
    assert "isn't one of the job links I know" in err.message
    assert_example_works(err)


def test_sync_ids_must_be_ascii_digits() -> None:
    err = error_for("sync \u0661\u0662/\u0663")  # Arabic-Indic digits match \d, not [0-9]
    assert "both digits" in err.message
    assert_example_works(err)


def test_long_bad_ref_is_clipped_in_the_message() -> None:
    err = error_for("watch za " + "x" * 500)
    assert "x" * 61 not in err.message
    assert "…" in err.message


# -- credential-looking text -----------------------------------------------------------------

ZOHO_TOKEN = "1000." + "a" * 32 + "." + "b" * 32  # built at runtime: no token literal in the file
# (pasted text, the secret in it)
SECRETS = [
    ("xoxb-FAKE-99", "xoxb-FAKE-99"),
    ("xapp-1-FAKE99", "xapp-1-FAKE99"),
    (ZOHO_TOKEN, ZOHO_TOKEN),
    ("password=hunter2", "hunter2"),
    ("token: AbC123xYz789QwE", "AbC123xYz789QwE"),
    ("Bearer abcdefghijklmnop1234", "abcdefghijklmnop1234"),
]


def pieces(secret: str, size: int = 8) -> set[str]:
    """The secret itself and every 8-character piece of it."""
    return {secret[i : i + size] for i in range(len(secret) - size + 1)} | {secret}


@pytest.mark.parametrize(("pasted", "secret"), SECRETS)
@pytest.mark.parametrize(
    "template", ["watch za {ref} {pasted}", "watch za {ref} as {pasted}", "{pasted} watch za {ref}"]
)
def test_credential_is_refused_and_never_echoed(pasted: str, secret: str, template: str) -> None:
    err = error_for(template.format(ref=REF, pasted=pasted))
    assert "password or token" in err.message
    assert "rotate it" in err.message
    for piece in pieces(secret) | {pasted}:
        assert piece not in err.message
        assert piece not in err.example
    assert_example_works(err)


def test_credential_check_wins_over_other_errors() -> None:
    err = error_for("wacth zuora xoxb-FAKE-99")
    assert "password or token" in err.message
    assert "wacth" not in err.message


@pytest.mark.parametrize(
    "text",
    [
        f"watch za {REF}",
        f"watch za {REF} 2480011000000498001/2480011000000512008 every 30s",
        "watch za 1/2 as monkey1234567890abc",
        "watch za 1/2 as key-team",
        "watch za 1/2 as tokenizer",
        "watch za 1/2 as secret-team",
    ],
)
def test_ordinary_command_is_not_mistaken_for_a_credential(text: str) -> None:
    assert not looks_like_credential(text)
    parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "2c92c0f96abc12345678901234567890",
        "monkey1234567890abc",
        WS,
        "help token",
        "the key 1234567890123",
    ],
)
def test_ids_and_words_containing_key_are_not_credentials(text: str) -> None:
    assert not looks_like_credential(text)


@pytest.mark.parametrize(
    "text",
    [
        *(pasted for pasted, _ in SECRETS),
        "xoxp-1234-5678",
        "Password = hunter2",
        "secret: 2c92c0f96abc12345678901234567890",
        "api_key=Abcdef123456789",
    ],
)
def test_credential_shapes_are_recognised(text: str) -> None:
    assert looks_like_credential(text)


# -- injection-looking input in echoed places ------------------------------------------------

HOSTILE = ["<!channel>", "<@U123>", "*bold*", "`rm`", "```", "' OR 1=1 --", "a&b<c>"]


def assert_inert(message: str) -> None:
    assert "<" not in message
    assert ">" not in message
    assert message.count("`") % 2 == 0  # input backticks can't open or close inline code
    assert "&amp;amp;" not in message


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize(
    "template",
    [
        "{x}",  # unknown subcommand
        "watch za {x}",  # bad ref
        "watch za 1/2 as {x}",  # bad connection name
        "watch {x} 1/2",  # unknown vendor
        "stop {x}",
        "help {x}",
        "watch za 1/2 every {x}",
    ],
)
def test_injection_looking_input_is_not_echoed_raw(hostile: str, template: str) -> None:
    err = error_for(template.format(x=hostile))
    assert_inert(err.message)
    assert_example_works(err)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_injection_looking_sync_target_is_not_echoed_raw(hostile: str) -> None:
    message = error_for(f"sync {hostile}").message
    for raw in ("<!channel>", "<@U123>", "<c>", "&b"):
        assert raw not in message
    assert message.count("`") % 2 == 0


def test_echoed_input_stays_readable_after_escaping() -> None:
    assert "`&lt;!channel&gt;`" in error_for("<!channel>").message
    assert "&lt;@U123&gt;" in error_for("watch za <@U123>").message
    assert "`'rm'`" in error_for("watch za 1/2 as `rm`").message


def test_every_error_message_is_one_short_paragraph() -> None:
    for text in ["", "wacth", "watch za x", "stop", "watch za 1/2 as <!here>"]:
        message = error_for(text).message
        assert "\n" not in message
        assert len(message) < 400
        assert not re.search(r"<[!@#]", message)


def test_a_ref_after_a_one_word_option_is_still_a_ref() -> None:
    request = parse("watch za 1/2 as eu 3/4")
    assert request == WatchRequest("zoho-analytics", ("1/2", "3/4"), "eu", None)


def test_every_accepts_a_space_before_the_unit() -> None:
    assert parse("watch za 1/2 every 2 m").every == 120


def test_a_link_after_a_vendor_name_must_match_it() -> None:
    with pytest.raises(CommandError) as err:
        parse("watch zuora https://www.zohoapis.com/crm/bulk/v8/write/6120045000001938011")
    assert "is a Zoho CRM bulk write link, not Zuora AQuA query" in err.value.message


def test_keyword_with_equals_and_a_long_value_is_a_credential() -> None:
    assert looks_like_credential("watch za 1/2 token=abcdefghijklmnopqrstuvwxyzabcd")
    assert looks_like_credential("api_key=ABCDEFGHIJKLMNOP")


def test_zuora_job_ids_are_32_hex_and_lower_cased() -> None:
    request = parse("watch aqua 2C92C0F96ABC12345678901234567890")
    assert request == WatchRequest("zuora", ("2c92c0f96abc12345678901234567890",), "default", None)
    assert "32 hex" in error_for("watch zuora 2c92c0f96abc").message
