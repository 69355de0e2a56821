"""Pure parser: `/syncwatch` text -> a request dataclass, or CommandError(message, example)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from dataclasses import dataclass

from bot.texts import COMMAND
from bot.urls import UrlError, looks_like_url, parse_url
from bot.vendors import SPECS, RefError, VendorSpec, lookup
from storage import DEFAULT_ALERT_EVERY, DEFAULT_CONNECTION, MAX_ALERT_EVERY, AlertPolicy

MAX_TEXT = 4000
MAX_REFS = 10
CONNECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
SHORT_ID = re.compile(r"^[ws][a-z0-9]{3,12}$")
HELP_TOPICS = (
    "vendors",
    "watch",
    "links",
    "sync",
    "schedules",
    "list",
    "stop",
    "permissions",
    "tokens",
)
TOKEN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")  # bot/api/credentials.py's NAME
# A channel as Slack sends a picked mention (`<#C123|name>`, `<#C123>`) or its bare id.
CHANNEL_ARG = re.compile(r"^(?:<#([CG][A-Z0-9]{2,20})(?:\|[^>]{0,80})?>|([CG][A-Z0-9]{2,20}))$")
MAX_TOKEN_CHANNELS = 10


@dataclass(frozen=True)
class HelpRequest:
    topic: str | None = None


@dataclass(frozen=True)
class WatchRequest:
    vendor: str
    refs: tuple[str, ...]
    connection: str = DEFAULT_CONNECTION
    every: float | None = None  # seconds; clamped to the vendor's floor by the service


@dataclass(frozen=True)
class WatchLinksRequest:
    """`watch <url> [<url> …]`: jobs named by pasted vendor links, possibly of several vendors."""

    jobs: tuple[tuple[str, str], ...]  # (vendor key, job ref)
    connection: str = DEFAULT_CONNECTION
    every: float | None = None


@dataclass(frozen=True)
class AlertChoice:
    """A schedule's alert policy as typed (docs/architecture.md#alert-policy)."""

    policy: AlertPolicy = AlertPolicy.EVERY
    every: int = DEFAULT_ALERT_EVERY  # smart: every Nth failure in a row after the first


@dataclass(frozen=True)
class SyncRequest:
    workspace_id: str
    datasource_id: str
    connection: str = DEFAULT_CONNECTION
    at: str | None = None
    tz: str | None = None
    alert: AlertChoice | None = None  # only with `at`
    digest: str | None = None  # daily | weekly, only with `at`


@dataclass(frozen=True)
class ScheduleDigestRequest:
    """`schedule <id> digest daily|weekly|off`: sum up a schedule's quiet runs."""

    schedule_id: str
    digest: str | None  # None: off


@dataclass(frozen=True)
class ScheduleAlertRequest:
    """`schedule <id> alert <policy>`: change a schedule's alert policy."""

    schedule_id: str
    alert: AlertChoice


@dataclass(frozen=True)
class ListRequest:
    pass


@dataclass(frozen=True)
class StopRequest:
    target_id: str


@dataclass(frozen=True)
class TokenRequest:
    """`token create <name> [<#channel> …]`, `token list`, `token revoke <name>`."""

    action: str  # create | list | revoke
    name: str = ""
    channels: tuple[str, ...] = ()  # create: none given means the channel it is typed in


Request = (
    HelpRequest
    | WatchRequest
    | WatchLinksRequest
    | SyncRequest
    | ListRequest
    | StopRequest
    | TokenRequest
    | ScheduleAlertRequest
    | ScheduleDigestRequest
)


class CommandError(ValueError):
    """Input we can't act on. `message` says what is wrong (mrkdwn-safe, never echoes a
    secret); `example` is a command that works."""

    def __init__(self, message: str, example: str) -> None:
        super().__init__(message)
        self.message = message
        self.example = example


def _first_example() -> str:
    spec = next(iter(SPECS.values()))
    return f"{COMMAND} watch {spec.key} {spec.example_ref}"


# Shapes of secrets people paste by mistake (docs/architecture.md#credential-looking-text). Matching
# text is refused and never echoed, stored or logged.
_CREDENTIAL_PATTERNS = [
    re.compile(r"xox[abposr]-[A-Za-z0-9-]{6,}"),  # Slack tokens
    re.compile(r"xapp-\d-[A-Za-z0-9-]{6,}"),  # Slack app-level tokens
    re.compile(r"\b1000\.[0-9a-fA-F]{16,}\.[0-9a-fA-F]{16,}\b"),  # Zoho OAuth tokens
    re.compile(r"(?i)\b(?:password|passwd|pwd)\s*[=:]"),
    re.compile(r"(?i)\b(?:bearer|zoho-oauthtoken|basic)\s+[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(r"\bsw[th]_[A-Za-z0-9_-]{16,}"),  # our own API tokens and callback keys
]
# Every pattern here is linear in the text: no two quantifiers can share the same characters
# (`\s*[=:]?\s*` could split one run of spaces between its two `\s*` in n² ways, and the
# text is attacker-typed). Keep it so when adding a shape: tests/test_grammar_speed.py.
_SECRET_KEYWORD = re.compile(
    r"(?i)\b(?:token|secret|api[-_]?key|key|password|credential)s?\s*(?:[=:]\s*)?"
    r"([^\s\"']{12,})"
)


def looks_like_credential(text: str) -> bool:
    if any(p.search(text) for p in _CREDENTIAL_PATTERNS):
        return True
    for match in _SECRET_KEYWORD.finditer(text):
        value = match.group(1)
        if re.search(r"(?i)(?:token|secret|key|password|credential)s?\s*[=:]", match.group(0)):
            return True  # `token=<anything long>` is a credential whatever its alphabet
        classes = sum(bool(re.search(c, value)) for c in ("[a-z]", "[A-Z]", "[0-9]", r"[^\w]"))
        if classes >= 2:  # a long mixed string right after "token"/"secret"/"key"
            return True
    return False


def _inert(text: str) -> str:
    """Escape mrkdwn's control characters (docs/slack.md#escaping-and-formatting) in text that
    quotes user input."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """Inline code for user-supplied text in an error: clipped, and safe inside backticks."""
    text = text.replace("`", "'").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"`{text[:60]}{'…' if len(text) > 60 else ''}`"


def parse(text: str, secrets: Collection[str] = ()) -> Request:
    """Parse the text after `/syncwatch`. Raises CommandError; never returns partial work.
    `secrets` are the configured credentials: a command quoting one is refused even when
    it fits a job-ref shape (a Micro API key looks like any other id)."""
    # The length cap comes first: nothing else here may look at more than MAX_TEXT
    # characters, so no scan (the credential shapes, the configured secrets) can be made
    # to run long by a long text (docs/architecture.md#slash-command).
    if len(text) > MAX_TEXT:
        raise CommandError(
            f"That command is {len(text):,} characters long; the limit is {MAX_TEXT:,}.",
            _first_example(),
        )
    if looks_like_credential(text) or any(secret in text for secret in secrets):
        raise CommandError(
            "That looks like it contains a password or token, so I ignored the whole command "
            "and didn't store it. Credentials belong in syncwatch's configuration, never in "
            "Slack — if it was real, rotate it.",
            f"{COMMAND} help",
        )
    words = text.split()
    if not words:
        raise CommandError(
            "Tell me what to do: `watch`, `sync`, `list`, `stop` or `help`.", _first_example()
        )
    verb, args = words[0].lower(), words[1:]
    if verb in ("help", "?", "-h", "--help"):
        return _parse_help(args)
    if verb == "watch":
        return _parse_watch(args)
    if verb == "sync":
        return _parse_sync(args)
    if verb in ("list", "ls"):
        if args:
            raise CommandError("`list` takes no arguments.", f"{COMMAND} list")
        return ListRequest()
    if verb in ("stop", "unwatch"):
        return _parse_stop(args)
    if verb in ("token", "tokens"):
        return _parse_token(args)
    if verb in ("schedule", "schedules"):
        return _parse_schedule_change(args)
    verbs = ["watch", "sync", "list", "stop", "help", "token", "schedule"]
    guess = difflib.get_close_matches(verb, verbs, n=1)
    hint = f" Did you mean `{guess[0]}`?" if guess else ""
    raise CommandError(
        f"I don't know the subcommand {code(verb)}.{hint} "
        "Try `watch`, `sync`, `list`, `stop` or `help`.",
        _first_example(),
    )


# Words people try for a topic that another one covers.
_HELP_ALIASES = {"alert": "schedules", "alerts": "schedules", "digest": "schedules"}


def _parse_help(args: list[str]) -> HelpRequest:
    if not args:
        return HelpRequest()
    topic = _HELP_ALIASES.get(args[0].lower(), args[0].lower())
    if topic in HELP_TOPICS or lookup(topic) is not None:
        return HelpRequest(topic)
    raise CommandError(
        f"There's no help topic {code(topic)}. Topics: {', '.join(HELP_TOPICS)}.",
        f"{COMMAND} help vendors",
    )


# How many words each option takes; None = every word up to the next option (cron fields).
_OPTION_WORDS: dict[str, int | None] = {
    "as": 1,
    "every": 1,
    "tz": 1,
    "at": None,
    "alert": None,
    "digest": None,
}


def _take_options(
    args: list[str], allowed: tuple[str, ...], example: str
) -> tuple[list[str], dict[str, list[str]]]:
    """Split positional words from `keyword value` options; each option at most once, and a
    word after a one-word option's value is positional again (`watch za 1/2 as eu 3/4`)."""
    positional: list[str] = []
    options: dict[str, list[str]] = {}
    current: list[str] | None = None
    room: int | None = 0
    for word in args:
        key = word.lower()
        if key in allowed:
            if key in options:
                raise CommandError(f"`{key}` is given twice.", example)
            current = options[key] = []
            room = _OPTION_WORDS.get(key, 1)
        elif current is not None and (room is None or room > 0):
            current.append(word)
            room = None if room is None else room - 1
        else:
            positional.append(word)
    for key, values in options.items():
        if not values:
            raise CommandError(f"`{key}` needs a value after it.", example)
    return positional, options


def _parse_connection(options: dict[str, list[str]], example: str) -> str:
    if "as" not in options:
        return DEFAULT_CONNECTION
    values = options["as"]
    if len(values) != 1 or not CONNECTION_NAME.match(values[0].lower()):
        raise CommandError(
            f"{code(' '.join(values))} is not a connection name: use one word of letters, "
            "digits, `-` or `_`, as named in syncwatch's config.",
            example,
        )
    return values[0].lower()


def _vendor(name: str) -> VendorSpec:
    spec = lookup(name)
    if spec is not None:
        return spec
    names = sorted({n for s in SPECS.values() for n in (s.key, *s.aliases)})
    guess = difflib.get_close_matches(name.lower(), names, n=1)
    hint = f" Did you mean `{guess[0]}`?" if guess else ""
    supported = ", ".join(f"`{s.key}` (`{'`, `'.join(s.aliases[:1])}`)" for s in SPECS.values())
    example = (
        _first_example()
        if not guess
        else f"{COMMAND} watch {guess[0]} "
        + (
            lookup(guess[0]).example_ref  # type: ignore[union-attr]
        )
    )
    raise CommandError(f"Unknown vendor {code(name)}.{hint} Supported: {supported}.", example)


def _parse_watch(args: list[str]) -> WatchRequest | WatchLinksRequest:
    if not args:
        raise CommandError("`watch` needs a vendor and a job id.", _first_example())
    if any(looks_like_url(word) for word in args):
        return _parse_links(args)
    spec = _vendor(args[0])
    example = f"{COMMAND} watch {spec.key} {spec.example_ref}"
    positional, options = _take_options(_join_units(args[1:]), ("as", "every"), example)
    if not positional:
        raise CommandError(
            f"`watch {spec.key}` needs a job id: `{_inert(spec.ref_syntax)}`.", example
        )
    if len(positional) > MAX_REFS:
        raise CommandError(
            f"That's {len(positional)} jobs; one command can watch at most {MAX_REFS}.", example
        )
    refs: list[str] = []
    for raw in positional:
        try:
            ref = spec.parse_ref(raw)
        except RefError as err:  # its text quotes the input: make it inert in mrkdwn
            raise CommandError(_inert(str(err)), example) from None
        if ref in refs:
            raise CommandError(f"{code(raw)} is listed twice.", example)
        refs.append(ref)
    every = None
    if "every" in options:
        every = parse_duration(" ".join(options["every"]), example)
    return WatchRequest(spec.key, tuple(refs), _parse_connection(options, example), every)


LINK_EXAMPLE = (
    "https://analyticsapi.zoho.com/restapi/v2/bulk/workspaces/2480011000000498001"
    "/importjobs/2480011000000512007"
)


def _parse_links(args: list[str]) -> WatchLinksRequest:
    """Pasted vendor links, optionally after a vendor name (which they must then match)."""
    example = f"{COMMAND} watch {LINK_EXAMPLE}"
    named = lookup(args[0]) if not looks_like_url(args[0]) else None
    words = args[1:] if named else args
    positional, options = _take_options(_join_units(words), ("as", "every"), example)
    if len(positional) > MAX_REFS:
        raise CommandError(
            f"That's {len(positional)} jobs; one command can watch at most {MAX_REFS}.", example
        )
    jobs: list[tuple[str, str]] = []
    for raw in positional:
        if not looks_like_url(raw):
            raise CommandError(
                f"{code(raw)} isn't a link: give either links or a vendor and job ids.", example
            )
        try:
            vendor, ref = parse_url(raw)
            spec = lookup(vendor)
            if spec is None:
                raise UrlError("that vendor isn't supported by this version")
            ref = spec.parse_ref(ref)
        except (UrlError, RefError) as err:
            raise CommandError(f"{code(raw)}: {_inert(str(err))}.", example) from None
        if named is not None and spec.key != named.key:
            raise CommandError(f"{code(raw)} is a {spec.label} link, not {named.label}.", example)
        if (spec.key, ref) in jobs:
            raise CommandError(f"{code(raw)} is listed twice.", example)
        jobs.append((spec.key, ref))
    if not jobs:
        raise CommandError("`watch` needs at least one job link or id.", example)
    every = parse_duration(" ".join(options["every"]), example) if "every" in options else None
    return WatchLinksRequest(tuple(jobs), _parse_connection(options, example), every)


def _join_units(words: list[str]) -> list[str]:
    """`every 30 s` → `every 30s`, so a duration is one word like every other option value."""
    out: list[str] = []
    for word in words:
        if (
            out
            and len(out) >= 2
            and out[-2].lower() == "every"
            and _DURATION.match(out[-1] + word)
            and re.fullmatch(r"[0-9.]+", out[-1])
        ):
            out[-1] += word
        else:
            out.append(word)
    return out


_DURATION = re.compile(
    r"^(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?)?$", re.I
)


def parse_duration(text: str, example: str) -> float:
    match = _DURATION.match(text.strip())
    if not match:
        raise CommandError(
            f"{code(text)} is not a duration: write e.g. `30s`, `2m` or `1h`.", example
        )
    value = float(match.group(1))
    unit = (match.group(2) or "s").lower()[0]
    seconds = value * {"s": 1, "m": 60, "h": 3600}[unit]
    if seconds < 1 or seconds > 86400:
        raise CommandError("The interval must be between 1 second and 24 hours.", example)
    return seconds


_SYNC_SYNTAX = "&lt;workspace-id&gt;/&lt;datasource-id&gt;"  # mrkdwn-escaped placeholders
_SYNC_TARGET = re.compile(r"^([0-9]{1,20})/([0-9]{1,20})$")  # ASCII: \d admits other scripts


def _parse_sync(args: list[str]) -> SyncRequest:
    example = f"{COMMAND} sync 2480011000000498001/2480011000000630011"
    positional, options = _take_options(args, ("as", "at", "tz", "alert", "digest"), example)
    if len(positional) != 1:
        raise CommandError(f"`sync` needs exactly one `{_SYNC_SYNTAX}`.", example)
    match = _SYNC_TARGET.match(positional[0])
    if not match:
        raise CommandError(
            f"{code(positional[0])} is not `{_SYNC_SYNTAX}` (both digits).",
            example,
        )
    if "tz" in options and "at" not in options:
        raise CommandError("`tz` only applies to a schedule given with `at`.", example)
    for option in ("alert", "digest"):
        if option in options and "at" not in options:
            raise CommandError(
                f"`{option}` only applies to a schedule given with `at`.", ALERT_EXAMPLE
            )
    # `at "0 6 * * *"`: the quotes people type around a cron (Slack may make them curly).
    at = " ".join(options["at"]).strip(_QUOTES) if "at" in options else None
    tz = " ".join(options["tz"]) if "tz" in options else None
    alert = parse_alert(options["alert"], ALERT_EXAMPLE) if "alert" in options else None
    digest = None
    if "digest" in options:
        digest = parse_digest(options["digest"], DIGEST_EXAMPLE, allow_off=False)
    return SyncRequest(
        match.group(1), match.group(2), _parse_connection(options, example), at, tz, alert, digest
    )


_QUOTES = "\"'“”‘’"
ALERT_EXAMPLE = f"{COMMAND} sync 2480011000000498001/2480011000000630011 at 06:30 alert failures"
_ALERT_NAMES = {
    "every": AlertPolicy.EVERY,
    "all": AlertPolicy.EVERY,
    "always": AlertPolicy.EVERY,
    "failures": AlertPolicy.FAILURES,
    "failure": AlertPolicy.FAILURES,
    "failed": AlertPolicy.FAILURES,
    "smart": AlertPolicy.SMART,
}
DIGEST_EXAMPLE = (
    f"{COMMAND} sync 2480011000000498001/2480011000000630011 at 06:30 alert failures digest daily"
)


def parse_digest(words: list[str], example: str, *, allow_off: bool) -> str | None:
    """`daily` | `weekly` (| `off` when changing a schedule): None means off."""
    choices = ("daily", "weekly", "off") if allow_off else ("daily", "weekly")
    word = words[0].lower()
    if len(words) != 1 or word not in choices:
        shown = "`, `".join(choices)
        raise CommandError(
            f"`digest` takes one of `{shown}`, not {code(' '.join(words))}: a message that "
            "sums up the runs that posted nothing, every day or every Monday.",
            example,
        )
    return None if word == "off" else word


_ALERT_COUNT = re.compile(r"^[0-9]{1,3}$")  # ASCII digits, and never a long number


def parse_alert(words: list[str], example: str) -> AlertChoice:
    """`every` | `failures` | `smart [every N]` (docs/architecture.md#alert-policy). One look
    at each word: linear in the text."""
    policy = _ALERT_NAMES.get(words[0].lower())
    if policy is None:
        raise CommandError(
            f"{code(words[0])} is not an alert policy. Use `every` (each run posts), "
            "`failures` (only failed runs post) or `smart [every N]` (the first failure, then "
            f"every Nth failure in a row, and one message when it is back to normal; N is "
            f"{DEFAULT_ALERT_EVERY} unless given).",
            example,
        )
    rest = [word.lower() for word in words[1:]]
    if policy != AlertPolicy.SMART:
        if rest:
            raise CommandError(
                f"`alert {policy.value}` takes nothing after it; only `smart` takes `every N`.",
                example,
            )
        return AlertChoice(policy)
    if not rest:
        return AlertChoice(policy)
    if rest[0] == "every":
        rest = rest[1:]
    if (
        len(rest) != 1
        or not _ALERT_COUNT.match(rest[0])
        or not 1 <= int(rest[0]) <= MAX_ALERT_EVERY
    ):
        shown = " ".join(words[1:])
        raise CommandError(
            f"`alert smart` takes `every N` with N a whole number from 1 to {MAX_ALERT_EVERY}, "
            f"not {code(shown)}; e.g. `alert smart every 3` posts the 1st, 4th, 7th, … "
            "failure in a row.",
            example,
        )
    return AlertChoice(policy, int(rest[0]))


def _parse_schedule_change(args: list[str]) -> ScheduleAlertRequest | ScheduleDigestRequest:
    example = f"{COMMAND} schedule s3xq alert failures"
    if len(args) < 3 or args[1].lower() not in ("alert", "digest"):
        raise CommandError(
            "`schedule` takes a schedule id and what to change: "
            "`schedule <schedule-id> alert every | failures | smart [every N]` or "
            "`schedule <schedule-id> digest daily | weekly | off`.",
            example,
        )
    target = args[0].lower()
    if not SHORT_ID.match(target) or not target.startswith("s"):
        raise CommandError(
            f"{code(args[0])} is not a schedule id; schedule ids look like `s3xq` "
            f"(`{COMMAND} list` shows them).",
            example,
        )
    if args[1].lower() == "digest":
        digest_example = f"{COMMAND} schedule {target} digest daily"
        return ScheduleDigestRequest(target, parse_digest(args[2:], digest_example, allow_off=True))
    return ScheduleAlertRequest(
        target, parse_alert(args[2:], f"{COMMAND} schedule {target} alert failures")
    )


def _parse_stop(args: list[str]) -> StopRequest:
    example = f"{COMMAND} stop w7k2"
    if len(args) != 1:
        raise CommandError(
            "`stop` needs one watch or schedule id (shown in its message and in `list`).",
            example,
        )
    target = args[0].lower()
    if not SHORT_ID.match(target):
        raise CommandError(
            f"{code(args[0])} is not a watch or schedule id; ids look like `w7k2` or `s3xq`.",
            example,
        )
    return StopRequest(target)


def _parse_token(args: list[str]) -> TokenRequest:
    example = f"{COMMAND} token create nightly-etl"
    action = args[0].lower() if args else ""
    if action in ("list", "ls") and len(args) == 1:
        return TokenRequest("list")
    if action not in ("create", "revoke") or len(args) < 2:
        raise CommandError(
            "`token` takes `create <name> [<#channel> …]`, `list` or `revoke <name>`.", example
        )
    name = args[1].lower()
    if not TOKEN_NAME.match(name):
        raise CommandError(
            f"{code(args[1])} is not a token name: one word of lower-case letters, digits, "
            "`-` or `_` (up to 40), e.g. the script's name.",
            example,
        )
    if action == "revoke":
        if len(args) != 2:
            raise CommandError(
                "`token revoke` takes one token name.", f"{COMMAND} token revoke {name}"
            )
        return TokenRequest("revoke", name)
    channels: list[str] = []
    for raw in args[2:]:
        match = CHANNEL_ARG.match(raw)
        if match is None:
            raise CommandError(
                f"{code(raw)} is not a channel I can read: pick it from Slack's list after "
                "`#` (it arrives as a link), or give its id (`C…`, at the bottom of the "
                "channel's details).",
                f"{COMMAND} token create {name} C0123ABCD",
            )
        channel = match.group(1) or match.group(2)
        if channel not in channels:
            channels.append(channel)
    if len(channels) > MAX_TOKEN_CHANNELS:
        raise CommandError(f"A token may post in at most {MAX_TOKEN_CHANNELS} channels.", example)
    return TokenRequest("create", name, tuple(channels))
