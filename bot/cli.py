"""`syncwatch run | demo | check | watches`: the only module that wires real I/O."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.config import ConfigError, Settings
from bot.redaction import Redactor
from storage import ACTIVE, PAUSED, DatabaseUnavailable

if TYPE_CHECKING:
    from storage import Store
    from storage.engine import DatabaseURL

log = logging.getLogger("syncwatch")


class RedactingFilter(logging.Filter):
    """Last line of defence: configured secrets and token-shaped strings never reach a log."""

    # Slack tokens, Zoho tokens, and our own API tokens and callback keys (swt_, swh_).
    TOKEN_SHAPES = re.compile(
        r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|1000\.[0-9a-fA-F]{16,}\.[0-9a-fA-F]{16,}"
        r"|sw[th]_[A-Za-z0-9_-]{16,}"
    )
    # Query strings can carry credentials (Zoho's sync CONFIG holds a password): drop them.
    # The query is optional in the pattern so that a link without one simply matches and the
    # scan moves past it: with `\?` required, every `http://` inside a long run without a
    # `?` rescanned the rest of the run, n² on a logged vendor text.
    QUERY = re.compile(r"(https?://[^\s?#\"']+)(\?[^\s\"']*)?")

    def __init__(self, secrets: Redactor | Sequence[str]) -> None:
        super().__init__()
        # The process's one Redactor when given (it also learns the access tokens minted at
        # run time), so logs and vendor text are redacted alike.
        self.redactor = secrets if isinstance(secrets, Redactor) else Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Tracebacks quote local values and URLs too: format now, redacted.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def redact(self, text: str) -> str:
        text = self.redactor.redact(text)
        text = self.QUERY.sub(_drop_query, text)
        return self.TOKEN_SHAPES.sub("[redacted]", text)


def _drop_query(match: re.Match[str]) -> str:
    return match.group(1) + "?[redacted]" if match.group(2) else match.group(0)


# Control characters in a logged value (a vendor's error, a request field) would start a
# new line, or a terminal escape, that reads as a log record of its own: escape them.
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]} | {
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def escape_controls(text: str) -> str:
    return text.translate(_CONTROLS)


class TextFormatter(logging.Formatter):
    """`HH:MM:SS LEVEL logger: message`, one line per record whatever the message holds;
    a traceback (already redacted) follows on its own lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the watch id and vendor when the record has them."""

    FIELDS = ("watch_id", "vendor", "outcome")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry |= {k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)}
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(
    secrets: Redactor | Sequence[str], level: int = logging.INFO, *, json_lines: bool = False
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "httpx", "httpcore", "waitress", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _settings_or_exit() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as err:
        print("syncwatch: configuration problems:", file=sys.stderr)
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        sys.exit(1)


def _open_store(database: DatabaseURL, who: str = "syncwatch") -> Store | None:
    """The store on `database`, or None once stderr says why it can't be opened."""
    from storage import Store

    try:
        return Store(database)
    except DatabaseUnavailable as err:
        print(f"{who}: database {database}: {err.reason}", file=sys.stderr)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    problems = settings.problems_for_run()
    if problems:
        print("syncwatch: can't start:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print("Run `syncwatch check` for details.", file=sys.stderr)
        return 1
    redactor = Redactor(settings.secrets())
    setup_logging(redactor, json_lines=settings.log_format == "json")
    from slack_sdk.errors import SlackApiError

    from bot.runtime import BotProcess
    from bot.slack import check_tokens

    # Every Slack token before anything starts: a refused one stops here with one line,
    # before a vendor is polled (docs/operations.md#commands).
    checks = check_tokens(
        settings.slack_bot_token, settings.slack_app_token, settings.slack_api_url
    )
    refused = [c.problem for c in checks if c.problem]
    if refused:
        for problem in refused:
            print(f"syncwatch: can't start: {problem}", file=sys.stderr)
        return 1

    try:
        bot = BotProcess(settings, redactor=redactor)
    except DatabaseUnavailable as err:  # one line an operator can act on, no traceback
        print(
            f"syncwatch: can't start: database {settings.database}: {err.reason}", file=sys.stderr
        )
        return 1
    except Exception as err:  # e.g. Slack rejected the token during auth.test
        log.error("startup failed: %s", err)
        return 1

    def stop(signum: int, _frame: object) -> None:
        log.info("%s: shutting down", signal.Signals(signum).name)
        bot.stop_serving()  # the serve loop returns; the rest shuts down below

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bot.start()
    mode = "Socket Mode" if settings.socket_mode else "HTTP"
    log.info("syncwatch running (%s), database %s", mode, settings.database)
    try:
        if settings.socket_mode:
            bot.serve_socket_mode()
        else:
            bot.serve_http()
    except SlackApiError as err:  # the app token revoked since the check, say
        log.error("Slack refused the Socket Mode link (%s)", err.response.get("error"))
        return 1
    finally:
        bot.shutdown()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from bot.vendors import SPECS, VendorContext, VendorError, build_http_client
    from bot.vendors.pool import VendorPool

    settings = _settings_or_exit()
    failures = 0
    mode = "Socket Mode" if settings.socket_mode else f"HTTP on {settings.host}:{settings.port}"
    print(f"slack      mode {mode}; API {settings.slack_api_url}")
    for problem in settings.problems_for_run():
        print(f"FAIL       {problem}")
        failures += 1
    if settings.slack_bot_token:
        failures += _check_slack(settings)
    failures += _check_database(settings)
    print(
        f"schedules  runs at least {settings.min_schedule_minutes} minutes apart "
        "(SYNCWATCH_MIN_SCHEDULE_MINUTES)"
    )
    for name, conn in settings.zoho.items():
        print(
            f"zoho       [{name}] dc={conn.dc} accounts={conn.accounts_url} "
            f"analytics={conn.analytics_api_url} org={conn.analytics_org_id or '(not set)'}"
        )
        if not conn.analytics_org_id:
            print("WARN       ZOHO_ANALYTICS_ORG_ID is not set: Zoho Analytics polls will fail")
    redactor = Redactor(settings.secrets())
    ctx = VendorContext(build_http_client(), time.time, redactor=redactor)
    pool = VendorPool(settings.connections, ctx)
    try:
        for spec in SPECS.values():
            for name in settings.connections(spec.family):
                try:
                    detail = redactor.redact(pool.get(spec, name).check())
                    rate = pool.budget(spec, name)[1]  # the account's token bucket
                    print(f"ok         {spec.key} [{name}]: {detail}; ≤ {rate:g} requests/min")
                except VendorError as err:
                    print(f"FAIL       {spec.key} [{name}]: {redactor.redact(err.message)}")
                    failures += 1
    finally:
        pool.close()
    return 1 if failures else 0


def _check_database(settings: Settings) -> int:
    from storage.maintenance import inspect

    report = inspect(settings.database)
    print(f"{'ok        ' if report.ok else 'FAIL      '} database: {report.detail}")
    return 0 if report.ok else 1


def cmd_migrate(args: argparse.Namespace) -> int:
    from storage.maintenance import inspect, migrate

    settings = _settings_or_exit()
    try:
        migrate(settings.database)
    except Exception as err:  # unreachable server, newer schema, unreadable file
        print(f"syncwatch: can't migrate {settings.database}: {err}", file=sys.stderr)
        return 1
    print(inspect(settings.database).detail)
    return 0


def cmd_copy_db(args: argparse.Namespace) -> int:
    from storage.engine import DatabaseURLError, parse_database_url
    from storage.maintenance import copy_database

    try:
        source, destination = parse_database_url(args.source), parse_database_url(args.dest)
    except DatabaseURLError as err:
        print(f"syncwatch: {str(err).replace('SYNCWATCH_DB: ', '')}", file=sys.stderr)
        return 2
    if source.dialect == "sqlite" and not os.path.exists(source.target):
        print(f"syncwatch: {source.target} doesn't exist", file=sys.stderr)
        return 2
    print(f"copying {source} → {destination}")
    try:
        copied = copy_database(
            source, destination, progress=lambda table, n: print(f"  {table:<16} {n:>8} rows")
        )
    except Exception as err:  # CopyError, unreachable server, newer schema...
        print(f"syncwatch: nothing copied: {err}", file=sys.stderr)
        return 1
    print(f"done: {sum(copied.values())} rows; point SYNCWATCH_DB at {destination} and start")
    return 0


def _check_slack(settings: Settings) -> int:
    """Every Slack token `run` will use: the bot token, and the app token in Socket Mode."""
    from bot.slack import check_tokens

    failures = 0
    for check in check_tokens(
        settings.slack_bot_token, settings.slack_app_token, settings.slack_api_url
    ):
        if check.problem:
            print(f"FAIL       slack: {check.problem}")
            failures += 1
        else:
            print(f"ok         slack: {check.detail}")
    return failures


def cmd_watches(args: argparse.Namespace) -> int:
    from bot.blocks import duration

    settings = _settings_or_exit()
    store = _open_store(settings.database)
    if store is None:
        return 1
    try:
        statuses = None if args.all else (ACTIVE, PAUSED)
        watches = store.list_watches(statuses=statuses, limit=args.limit)
    finally:
        store.close()
    if not watches:
        print("no watches" if args.all else "no active or paused watches (--all shows every one)")
        return 0
    print(f"{'id':<8} {'status':<8} {'state':<10} {'vendor':<15} {'channel':<12} {'age':>8}  ref")
    now = time.time()
    for w in watches:
        age = duration(now - w.created_at)
        print(
            f"{w.id:<8} {w.status:<8} {(w.state or '-'):<10} {w.vendor:<15} "
            f"{w.channel_id:<12} {age:>8}  {w.ref}"
            + (f"  ({w.pause_reason})" if w.pause_reason else "")
        )
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Who changed what, newest first (docs/operations.md#audit). Reads only: it records
    nothing, and a SQLite file that isn't there is reported, not created."""
    from bot import audit

    now = time.time()
    try:
        since = audit.parse_when(args.since, now, "--since") if args.since else None
        until = audit.parse_when(args.until, now, "--until") if args.until else None
    except audit.BadTime as err:
        print(f"syncwatch audit: {err}", file=sys.stderr)
        return 2
    if since is not None and until is not None and since >= until:
        print(
            f"syncwatch audit: --since ({audit.iso(since)}) must come before --until "
            f"({audit.iso(until)})",
            file=sys.stderr,
        )
        return 2
    if args.limit < 1:
        print("syncwatch audit: --limit must be 1 or more", file=sys.stderr)
        return 2
    settings = _settings_or_exit()
    url = settings.database
    if url.dialect == "sqlite" and not os.path.exists(url.target):
        print(f"syncwatch audit: no database at {url.target} (SYNCWATCH_DB)", file=sys.stderr)
        return 1
    store = _open_store(url, "syncwatch audit")
    if store is None:
        return 1
    actor = args.actor
    if actor and actor.startswith(("token:", "operator:")):  # as the table shows them
        actor = actor.split(":", 1)[1]
    try:
        entries = store.audit_entries(
            since=since, until=until, actor=actor, watch_id=args.watch, limit=args.limit
        )
    finally:
        store.close()
    if args.json:
        for entry in entries:
            print(json.dumps(audit.as_json(entry), ensure_ascii=False))
        return 0
    if not entries:
        print("no audit entries match")
        return 0
    for line in audit.table(entries):
        print(escape_controls(line))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """`syncwatch token create NAME --channel C… | revoke NAME`: an operator's way to make
    or revoke an API token, e.g. when no Slack admin is at hand; recorded in the audit trail
    as the OS user (docs/operations.md#api-tokens)."""
    from bot import audit
    from bot.api import credentials
    from bot.api.tokens import OPERATOR_PREFIX, hook_path, hook_url, operator_entry
    from bot.config import SLACK_CHANNEL
    from storage import ApiToken, TokenNameTaken

    name = args.name
    if not credentials.NAME.match(name):
        print(
            f"syncwatch token: {name!r} can't be a token name: use 1 to 40 lowercase letters, "
            "digits, - or _, starting with a letter or digit",
            file=sys.stderr,
        )
        return 2
    channels = tuple(dict.fromkeys(args.channel or ()))
    if args.action == "create":
        if not channels:
            print("syncwatch token: create needs --channel C… (one or more)", file=sys.stderr)
            return 2
        bad = [c for c in channels if not SLACK_CHANNEL.match(c)]
        if bad:
            print(f"syncwatch token: {bad[0]!r} is not a channel id (C…)", file=sys.stderr)
            return 2
    settings = _settings_or_exit()
    if name in settings.tokens:
        print(
            f"syncwatch token: {name} comes from the config file; change it there", file=sys.stderr
        )
        return 1
    store = _open_store(settings.database)
    if store is None:
        return 1
    operator, now = audit.operator_name(), time.time()
    try:
        if args.action == "revoke":
            with store.audited():
                revoked = store.revoke_token(name)
                if revoked:
                    detail = {"token": name}
                    store.audit(operator_entry("token.revoke", operator, now, detail))
            if not revoked:
                print(f"syncwatch token: there is no token named {name!r}", file=sys.stderr)
                return 1
            print(f"revoked {name}: the API refuses it and its callback URLs answer 404")
            return 0
        secret = credentials.new_token()
        token_digest = credentials.digest(secret)
        key = credentials.hook_key(token_digest)
        token = ApiToken(
            name=name,
            digest=token_digest,
            hook_digest=credentials.digest(key),
            channels=channels,
            created_by=OPERATOR_PREFIX + operator,
            created_at=now,
        )
        try:
            with store.audited():
                store.add_token(token)
                detail = {"token": name, "channels": list(channels)}
                store.audit(operator_entry("token.create", operator, now, detail))
        except TokenNameTaken:
            print(f"syncwatch token: there is already a token named {name!r}", file=sys.stderr)
            return 1
    finally:
        store.close()
    print(f"token {name} for {', '.join(channels)} (shown once; only its hash is kept):")
    print(secret)
    for vendor in ("zuora", "zoho-analytics", "zoho-crm"):
        where = (
            hook_url(settings.public_url, vendor, key)
            if settings.public_url
            else hook_path(vendor, key)
        )
        print(f"callback {vendor}: {where}")
    return 0


def cmd_hook_url(args: argparse.Namespace) -> int:
    """The callback URL of a token for one vendor, to paste into the vendor's
    `notifyUrl` / `callbackUrl` / `callback.url` (docs/operations.md#api-tokens)."""
    from bot.api import credentials
    from bot.api.tokens import HOOK_FIELDS, hook_url
    from bot.vendors import lookup

    settings = _settings_or_exit()
    spec = lookup(args.vendor)
    if spec is None or spec.kind != "job":
        known = ", ".join(HOOK_FIELDS)
        print(f"syncwatch: unknown vendor {args.vendor!r} (callbacks: {known})", file=sys.stderr)
        return 2
    if not settings.public_url:
        print(
            "syncwatch: SYNCWATCH_PUBLIC_URL is not set: set it to the address vendors reach "
            "this bot at (e.g. https://syncwatch.example.com), then run this again",
            file=sys.stderr,
        )
        return 1
    token = settings.tokens.get(args.token)
    if token is None:
        store = _open_store(settings.database)
        if store is None:
            return 1
        try:
            token = store.token_named(args.token)
        finally:
            store.close()
    if token is None:
        print(f"syncwatch: there is no token named {args.token!r}", file=sys.stderr)
        return 1
    print(hook_url(settings.public_url, spec.key, credentials.hook_key(token.digest)))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(fast=args.fast)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncwatch",
        description="Slack bot that watches long-running vendor jobs and data syncs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("run", help="run the bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("demo", help="offline demo: simulated vendors and Slack, in the terminal")
    p.add_argument("--fast", action="store_true", help="skip the pauses between steps")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("check", help="validate configuration and try each vendor's credentials")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("migrate", help="bring the database's schema up to date, then exit")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser(
        "copy-db",
        help="copy every watch, schedule, pending message and budget into an empty database",
        description="Copy SRC into the empty database DST in one transaction (ids kept), e.g. "
        "syncwatch copy-db ./syncwatch.db postgresql://syncwatch@db/syncwatch. "
        "Stop the bot first; nothing is copied if anything fails.",
    )
    p.add_argument("source", metavar="SRC", help="file path, sqlite:///path or postgresql://…")
    p.add_argument("dest", metavar="DST", help="file path, sqlite:///path or postgresql://…")
    p.set_defaults(func=cmd_copy_db)
    p = sub.add_parser(
        "hook-url",
        help="print a token's callback URL for a vendor (needs SYNCWATCH_PUBLIC_URL)",
        description="Print the URL to paste into the vendor: Zuora AQuA notifyUrl, Zoho "
        "Analytics callbackUrl (fill in the workspace id), Zoho CRM callback.url.",
    )
    p.add_argument("vendor", help="zuora, zoho-analytics or zoho-crm (aliases too)")
    p.add_argument("token", help="the token's name")
    p.set_defaults(func=cmd_hook_url)
    p = sub.add_parser(
        "token",
        help="make or revoke an API token as an operator (recorded in the audit trail)",
        description="create NAME --channel C… prints the new token once, with its callback "
        "URLs; revoke NAME deletes it. Tokens of the config file are changed there.",
    )
    p.add_argument("action", choices=("create", "revoke"))
    p.add_argument("name", help="the token's name, e.g. nightly-etl")
    p.add_argument(
        "--channel", action="append", metavar="C…", help="a channel it may act in (repeatable)"
    )
    p.set_defaults(func=cmd_token)
    p = sub.add_parser("watches", help="list watches from the database (operators)")
    p.add_argument("--all", action="store_true", help="include finished and stopped watches")
    p.add_argument("--limit", type=int, default=200, help="at most this many rows (200)")
    p.set_defaults(func=cmd_watches)
    p = sub.add_parser(
        "audit",
        help="who changed what: commands, buttons, API calls, tokens (operators)",
        description="Print the audit trail, newest first: a table, or with --json one JSON "
        "object per line (keys: id, at, actor_kind, actor, action, via, team, channel, watch, "
        "schedule, detail). Reads only.",
    )
    p.add_argument("--since", help="from: 30m, 12h, 2d, 1w back, a date (2026-12-01) or ISO time")
    p.add_argument("--until", help="before: same forms as --since")
    p.add_argument("--actor", help="a Slack user id (U…), a token's name or an operator's name")
    p.add_argument("--watch", metavar="ID", help="one watch (w…) or schedule (s…)")
    p.add_argument("--limit", type=int, default=100, help="at most this many rows (100)")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p.set_defaults(func=cmd_audit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
