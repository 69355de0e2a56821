"""Settings.from_env: the only code that knows environment variable names and the TOML layout."""

from __future__ import annotations

import logging
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from bot.api import credentials
from bot.vendors.base import Connection, SyncOptions
from bot.vendors.micro import DEFAULT_BASE_URL as MICRO_DEFAULT_URL
from bot.vendors.micro import MicroConnection
from bot.vendors.zoho_auth import ZOHO_DCS, ZohoConnection
from bot.vendors.zuora import API_SANDBOX_HOSTS, ZUORA_ENVS, ZuoraConnection
from storage import DEFAULT_CONNECTION, ApiToken
from storage.engine import (
    DEFAULT_DATABASE,
    DatabaseURL,
    DatabaseURLError,
    database_password,
    parse_database_url,
)

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
SLACK_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,20}$")
SYNC_TARGET = re.compile(r"^[0-9]{1,20}/[0-9]{1,20}$")
RATE_KEY = "rate_per_minute"  # in each connection section; <FAMILY>_RATE_PER_MINUTE in the env

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """Configuration that can't work. `problems` lists every finding, one sentence each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Allowlist:
    """Slack users and channels allowed to do something (empty: nobody listed)."""

    users: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()

    def admits(self, user_id: str, channel_id: str | None) -> bool:
        return user_id in self.users or (channel_id is not None and channel_id in self.channels)


@dataclass(frozen=True)
class SyncTarget:
    """One datasource the operator set up for `/syncwatch sync` (credentials live here only)."""

    workspace_id: str
    datasource_id: str
    connection: str = DEFAULT_CONNECTION
    options: SyncOptions = SyncOptions()

    @property
    def ref(self) -> str:
        return f"{self.workspace_id}/{self.datasource_id}"


@dataclass(frozen=True)
class Settings:
    """Everything syncwatch reads from its environment and config file.

    Secrets live here in memory only; `__repr__` is overridden so they never reach a log.
    """

    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_url: str = DEFAULT_SLACK_API_URL
    db_path: str = "./syncwatch.db"
    port: int = 3000
    host: str = "0.0.0.0"
    poll_interval: float | None = None
    watch_timeout: float = 86400.0
    max_file_mb: float = 50.0
    db_pool_size: int = 20  # SYNCWATCH_DB_POOL_SIZE: PostgreSQL connections per process
    zoho: Mapping[str, ZohoConnection] = field(default_factory=dict)
    zuora: Mapping[str, ZuoraConnection] = field(default_factory=dict)
    micro: Mapping[str, MicroConnection] = field(default_factory=dict)
    syncs: Mapping[str, SyncTarget] = field(default_factory=dict)  # by "ws/ds"
    sync_allow: Mapping[str, Allowlist] = field(default_factory=dict)  # by connection
    admins: frozenset[str] = frozenset()
    log_format: str = "text"  # SYNCWATCH_LOG_FORMAT: text | json
    # SYNCWATCH_SLACK_PACE: "slack" keeps under Slack's rate limits; "off" posts as fast as
    # it can, for a local stand-in of Slack only (tests, benchmarks).
    slack_pace: str = "slack"
    quota_per_channel: int = 100  # active watches one channel may hold
    quota_per_user: int = 50  # active watches one person may have started
    min_schedule_minutes: int = 60  # SYNCWATCH_MIN_SCHEDULE_MINUTES: least time between runs
    # SYNCWATCH_REPLICA_LEASE_SECONDS: how long a dead replica's work waits for another one.
    replica_lease_seconds: float = 30.0
    # SYNCWATCH_PUBLIC_URL: where Slack and vendors reach this bot (callback URLs start so).
    public_url: str = ""
    api_rate_per_minute: float = 120.0  # SYNCWATCH_API_RATE_PER_MINUTE: requests per token
    tokens: Mapping[str, ApiToken] = field(default_factory=dict)  # [tokens.<name>], by name

    def __repr__(self) -> str:
        return (
            f"Settings(database={str(self.database)!r}, port={self.port}, host={self.host!r}, "
            f"socket_mode={self.socket_mode}, zoho={sorted(self.zoho)}, "
            f"zuora={sorted(self.zuora)}, micro={sorted(self.micro)})"
        )

    @property
    def database(self) -> DatabaseURL:
        """SYNCWATCH_DB read as a SQLite file or a PostgreSQL DSN (checked in `from_env`)."""
        return parse_database_url(self.db_path)

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    def connections(self, family: str) -> Mapping[str, Connection]:
        """Named connections of one vendor family (`zoho`, `zuora`, `micro`)."""
        by_family: dict[str, Mapping[str, Connection]] = {
            ZOHO.name: self.zoho,
            ZUORA.name: self.zuora,
            MICRO.name: self.micro,
        }
        return by_family.get(family, {})

    def may_sync(self, connection: str, user_id: str, channel_id: str) -> bool:
        """docs/architecture.md#permissions: no allowlist for the connection → anyone; else only the
        listed users/channels (and admins)."""
        allow = self.sync_allow.get(connection)
        if allow is None or user_id in self.admins:
            return True
        return allow.admits(user_id, channel_id)

    def secrets(self) -> list[str]:
        """Every configured secret value, for redaction and for tests that grep for leaks."""
        found = [self.slack_bot_token, self.slack_signing_secret, self.slack_app_token]
        found += [s for conn in self.zoho.values() for s in ZOHO.secrets(conn)]
        found += [s for conn in self.zuora.values() for s in ZUORA.secrets(conn)]
        found += [s for conn in self.micro.values() for s in MICRO.secrets(conn)]
        found += [t.options.password for t in self.syncs.values() if t.options.password]
        found.append(database_password(self.db_path))
        return [s for s in found if s]

    def problems_for_run(self) -> list[str]:
        """What stops `syncwatch run` from starting (empty when it can run)."""
        problems = []
        if not self.slack_bot_token:
            problems.append("SLACK_BOT_TOKEN is not set (the bot token, starts with xoxb-)")
        elif not self.slack_bot_token.startswith("xoxb-"):
            problems.append("SLACK_BOT_TOKEN does not look like a bot token (expected xoxb-…)")
        if self.slack_app_token and not self.slack_app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN does not look like an app token (expected xapp-…)")
        if not self.socket_mode and not self.slack_signing_secret:
            problems.append(
                "SLACK_SIGNING_SECRET is not set (required in HTTP mode; "
                "set SLACK_APP_TOKEN instead to use Socket Mode)"
            )
        if not self.zoho and not self.zuora and not self.micro:
            problems.append(
                "no vendor is configured: set ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and "
                "ZOHO_REFRESH_TOKEN, or ZUORA_CLIENT_ID, ZUORA_CLIENT_SECRET and ZUORA_ENV, "
                "or MICRO_API_KEY and MICRO_TEAM_ID (or add connections to the config file)"
            )
        return problems

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate. Raises ConfigError listing every problem found (no secrets)."""
        env = os.environ if env is None else env
        problems: list[str] = []
        get = _Reader(env, problems)

        config_path = get.text("SYNCWATCH_CONFIG") or None
        if config_path is None and Path("syncwatch.toml").is_file():
            config_path = "syncwatch.toml"
        toml = _load_toml(config_path, problems)

        zoho = _family(ZOHO, env, toml, config_path, problems)
        zuora = _family(ZUORA, env, toml, config_path, problems)
        micro = _family(MICRO, env, toml, config_path, problems)

        settings = cls(
            slack_bot_token=get.text("SLACK_BOT_TOKEN"),
            slack_signing_secret=get.text("SLACK_SIGNING_SECRET"),
            slack_app_token=get.text("SLACK_APP_TOKEN"),
            slack_api_url=get.url("SLACK_API_URL", DEFAULT_SLACK_API_URL, origin_only=False),
            db_path=get.database("SYNCWATCH_DB"),
            port=int(get.number("PORT", 3000, minimum=0, maximum=65535, integer=True)),
            host=get.text("SYNCWATCH_HOST") or "0.0.0.0",
            poll_interval=get.optional_number("SYNCWATCH_POLL_INTERVAL", minimum=1),
            watch_timeout=get.number("SYNCWATCH_WATCH_TIMEOUT", 86400, minimum=1),
            max_file_mb=get.number("SYNCWATCH_MAX_FILE_MB", 50, minimum=0.001),
            db_pool_size=int(
                get.number("SYNCWATCH_DB_POOL_SIZE", 20, minimum=2, maximum=200, integer=True)
            ),
            # Whole minutes, up to a week: cron's own unit, and a floor above a week would
            # refuse every weekly schedule too.
            min_schedule_minutes=int(
                get.number(
                    "SYNCWATCH_MIN_SCHEDULE_MINUTES", 60, minimum=1, maximum=10080, integer=True
                )
            ),
            # Renewed every third of it: below 6 s a busy database or a paused VM would make a
            # live replica's work look abandoned (docs/architecture.md#replicas).
            replica_lease_seconds=get.number(
                "SYNCWATCH_REPLICA_LEASE_SECONDS", 30, minimum=6, maximum=600
            ),
            zoho=zoho,
            zuora=zuora,
            micro=micro,
            syncs=_sync_targets(toml, config_path, problems),
            sync_allow=_sync_allowlists(toml, config_path, problems),
            slack_pace=_choice(
                get.text("SYNCWATCH_SLACK_PACE"), ("slack", "off"), "SYNCWATCH_SLACK_PACE", problems
            ),
            log_format=_choice(
                get.text("SYNCWATCH_LOG_FORMAT"), ("text", "json"), "SYNCWATCH_LOG_FORMAT", problems
            ),
            quota_per_channel=_quota(toml, "per_channel", 100, config_path, problems),
            quota_per_user=_quota(toml, "per_user", 50, config_path, problems),
            admins=_slack_ids(
                toml.get("admins", []), SLACK_USER, f"admins in {config_path}", problems
            ),
            public_url=get.url("SYNCWATCH_PUBLIC_URL", "", origin_only=False).rstrip("/"),
            api_rate_per_minute=get.number("SYNCWATCH_API_RATE_PER_MINUTE", 120, minimum=1),
            tokens=_tokens(toml, config_path, problems),
        )
        if problems:
            raise ConfigError(problems)
        if not settings.slack_api_url.endswith("/"):
            settings = replace(settings, slack_api_url=settings.slack_api_url + "/")
        return settings


def _family(
    family: Family[C],
    env: Mapping[str, str],
    toml: Mapping[str, Any],
    config_path: str | None,
    problems: list[str],
) -> dict[str, C]:
    """One vendor family's connections: `default` from the environment, then the named
    `[<family>.<name>]` sections of the config file, all read by `_connection`."""
    found: dict[str, C] = {}
    from_env = _Section({k.name: env.get(k.env, "").strip() for k in family.keys}, None)
    if any(from_env.text(k) for k in family.keys if k.announces):
        default = _connection(family, DEFAULT_CONNECTION, from_env, problems)
        if default is not None:
            found[DEFAULT_CONNECTION] = default
    elif env.get(family.rate_env, "").strip():
        problems.append(
            f"{family.rate_env} is set but the environment describes no "
            f"{family.name} connection (it sets the rate of the `default` connection only; "
            f"named connections take {RATE_KEY} in their [{family.name}.<name>] section)"
        )
    for name, values in _sections(toml, family.name, problems):
        where = f"[{family.name}.{name}] in {config_path}"
        conn = _connection(family, name, _Section(values, where), problems)
        if conn is not None:
            found[name] = conn
    _warn_shared_rates(family.name, found)
    return found


def _warn_shared_rates(family: str, connections: Mapping[str, Connection]) -> None:
    """Names for one vendor account share one token bucket (VendorPool.budget), at the
    lowest rate any of them sets: say so when they set different rates."""
    accounts: dict[str, dict[str, float]] = {}
    for name, conn in connections.items():
        if conn.rate_per_minute is not None:
            accounts.setdefault(conn.rate_key, {})[name] = conn.rate_per_minute
    for rates in accounts.values():
        if len(set(rates.values())) > 1:
            named = ", ".join(f"{n!r} {r:g}/min" for n, r in sorted(rates.items()))
            log.warning(
                "%s connections %s use one account and share its token bucket: "
                "all of them poll at the lowest rate, %g/min",
                family,
                named,
                min(rates.values()),
            )


class _Reader:
    """Reads env values, appending a readable problem (never the value of a secret)."""

    def __init__(self, env: Mapping[str, str], problems: list[str]) -> None:
        self.env = env
        self.problems = problems

    def text(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def database(self, name: str) -> str:
        """A database URL or path; a malformed one is a problem (its password unquoted)."""
        raw = self.text(name) or DEFAULT_DATABASE
        try:
            parse_database_url(raw)
        except DatabaseURLError as err:
            self.problems.append(str(err))
            return DEFAULT_DATABASE
        return raw

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float,
        maximum: float | None = None,
        integer: bool = False,
    ) -> float:
        value = self.optional_number(name, minimum=minimum, maximum=maximum, integer=integer)
        return default if value is None else value

    def optional_number(
        self, name: str, *, minimum: float, maximum: float | None = None, integer: bool = False
    ) -> float | None:
        raw = self.text(name)
        if not raw:
            return None
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            self.problems.append(f"{name}={raw!r} is not {kind}")
            return None
        if not math.isfinite(value):  # float() reads "nan" and "inf", which no setting means
            self.problems.append(f"{name}={raw!r} is not a finite number")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bound = (
                f"between {minimum:g} and {maximum:g}" if maximum is not None else f"≥ {minimum:g}"
            )
            self.problems.append(f"{name}={raw} is out of range (must be {bound})")
            return None
        return value

    def url(self, name: str, default: str, *, origin_only: bool = True) -> str:
        raw = self.text(name)
        if not raw:
            return default
        problem = url_problem(raw, origin_only=origin_only)
        if problem:
            self.problems.append(f"{name}={masked_url(raw)!r} {problem}")
            return default
        return raw.rstrip("/") if origin_only else raw


def url_problem(raw: str, *, origin_only: bool = True) -> str | None:
    """Why `raw` is not a usable base URL, or None. Overrides are origins
    (docs/architecture.md#base-url-overrides)."""
    try:
        parts = urlsplit(raw)
        _ = parts.port  # raises ValueError unless the port is a number in 0-65535
    except ValueError:
        return "is not a valid URL (check the host and port)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL"
    if parts.username or parts.password:
        return "must not carry a user name or password"
    if origin_only and parts.path.strip("/"):
        return "must be an origin only (scheme://host[:port]); the API paths are added by syncwatch"
    if parts.query or parts.fragment:
        return "must not have a query string or fragment"
    return None


def masked_url(raw: str) -> str:
    """A URL to quote in a problem: its user info or query may hold a secret, so hide them."""
    raw = re.sub(r"//[^/?#]*@", "//…@", raw)
    return re.sub(r"([?#]).*", r"\1…", raw, count=1, flags=re.S)


def _load_toml(path: str | None, problems: list[str]) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        problems.append(f"SYNCWATCH_CONFIG points at {path}, which does not exist")
    except tomllib.TOMLDecodeError as err:
        problems.append(f"{path} is not valid TOML: {err}")
    except OSError as err:
        problems.append(f"{path} can't be read: {err.strerror}")
    return {}


def _sections(
    toml: Mapping[str, Any], family: str, problems: list[str]
) -> list[tuple[str, Mapping[str, Any]]]:
    table = toml.get(family, {})
    if not isinstance(table, dict):
        problems.append(f"[{family}] in the config file must be a table of named connections")
        return []
    out: list[tuple[str, Mapping[str, Any]]] = []
    for name, section in table.items():
        if not isinstance(section, dict):
            problems.append(f"[{family}.{name}] must be a table")
        elif name == DEFAULT_CONNECTION:
            problems.append(
                f"[{family}.default] is reserved for the connection the environment describes"
            )
        else:
            out.append((name, section))
    return out


# -- vendor connections --------------------------------------------------------------------
# One table per vendor family says what a connection takes. The same generic path reads the
# `default` connection from the environment and each `[<family>.<name>]` section of the
# config file, so both accept the same values and word their problems alike.

Limit = tuple[float, str]  # a vendor's published request limit a minute, and its wording
C = TypeVar("C", bound=Connection)

# Published request limits a configured rate is checked against (each vendor's API docs).
ZOHO_LIMIT: Limit = (
    40.0,
    "Zoho Analytics: 40 bulk-API calls a minute; import-job polls are bulk calls",
)
ZUORA_LIMIT: Limit = (50_000.0, "Zuora: 50,000 calls a minute per tenant")
ZUORA_SANDBOX_LIMIT: Limit = (
    5_000 / 60,
    "Zuora API Sandbox: 5,000 calls an hour, about 83 a minute",
)
MICRO_LIMIT: Limit = (600.0, "Micro: 10 requests a second per key, and 1,000 a month")


@dataclass(frozen=True)
class Key:
    """One setting of a vendor connection.

    `name` is its key in a `[<family>.<name>]` section of the config file and the name of
    the connection's field; `env` is the variable that sets it on the `default` connection.
    A value is trimmed, then lower-cased (`lower`), then `default` stands in when it is empty;
    an empty value is only a problem when `required`.
    """

    name: str
    env: str
    required: bool = False  # "<key> is not set (needed for the <Vendor> connection …)"
    secret: bool = False  # never quoted in a problem; listed by Settings.secrets()
    url: bool = False  # an origin (scheme://host[:port]) overriding the vendor's own host
    rate: bool = False  # requests a minute: a finite number > 0 (RATE_KEY)
    lower: bool = False
    default: str = ""
    choices: tuple[str, ...] = ()  # else "<key>='x' is not <kind> (a, b, …)"
    kind: str = ""
    valid: Callable[[str], bool] | None = None  # else "<key> <says>"
    says: str = ""
    example: str = ""  # shown when neither of a family's `either` keys is set
    announces: bool = False  # set in the environment, it means there is a `default` connection


@dataclass(frozen=True)
class Family(Generic[C]):
    """A vendor family's connection settings: the keys, how checked values become the
    connection, and the published rate limit a configured rate is compared with."""

    name: str  # the config file's [<name>.<connection>] tables
    vendor: str  # "Zoho", as problems name it
    keys: tuple[Key, ...]
    make: Callable[[str, Checked], C]
    limit: Callable[[C], Limit]
    either: tuple[str, str] | None = None  # one of these two keys must be set

    def key(self, name: str) -> Key:
        return next(k for k in self.keys if k.name == name)

    @property
    def rate_env(self) -> str:
        return next(k.env for k in self.keys if k.rate)

    def secrets(self, conn: C) -> list[str]:
        """The values of this connection's secret keys (each key names a field)."""
        return [str(getattr(conn, k.name)) for k in self.keys if k.secret]


@dataclass(frozen=True)
class Checked:
    """One connection's values once every key passed its checks: text by key name (trimmed,
    lower-cased and defaulted as the key says; "" when unset) and the rate (None: unset)."""

    values: Mapping[str, str]
    rate: float | None

    def __getitem__(self, name: str) -> str:
        return self.values[name]


def _zoho(name: str, v: Checked) -> ZohoConnection:
    hosts = ZOHO_DCS[v["dc"]]
    urls = {
        "accounts": ("accounts_url", hosts.accounts),
        "analytics": ("analytics_api_url", hosts.analytics),
        "crm": ("crm_api_url", hosts.crm),
    }
    resolved = {key: v[key] or f"https://{host}" for key, host in urls.values()}
    return ZohoConnection(
        name=name,
        client_id=v["client_id"],
        client_secret=v["client_secret"],
        refresh_token=v["refresh_token"],
        dc=v["dc"],
        analytics_org_id=v["analytics_org_id"],
        overridden=frozenset(short for short, (key, _) in urls.items() if v[key]),
        rate_per_minute=v.rate,
        **resolved,
    )


def _zuora(name: str, v: Checked) -> ZuoraConnection:
    return ZuoraConnection(
        name=name,
        client_id=v["client_id"],
        client_secret=v["client_secret"],
        # ZUORA_BASE_URL wins when both are set.
        base_url=v["base_url"] or ZUORA_ENVS[v["env"]],
        env=v["env"] or None,
        overridden=bool(v["base_url"]),
        rate_per_minute=v.rate,
    )


def _zuora_limit(conn: ZuoraConnection) -> Limit:
    sandbox = urlsplit(conn.base_url).hostname in API_SANDBOX_HOSTS
    return ZUORA_SANDBOX_LIMIT if sandbox else ZUORA_LIMIT


def _micro(name: str, v: Checked) -> MicroConnection:
    return MicroConnection(
        name=name,
        api_key=v["api_key"],
        team_id=v["team_id"],
        base_url=v["base_url"] or MICRO_DEFAULT_URL,
        overridden=bool(v["base_url"]),
        rate_per_minute=v.rate,
    )


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

ZOHO = Family(
    name="zoho",
    vendor="Zoho",
    keys=(
        Key("client_id", "ZOHO_CLIENT_ID", required=True, secret=True, announces=True),
        Key("client_secret", "ZOHO_CLIENT_SECRET", required=True, secret=True, announces=True),
        Key("refresh_token", "ZOHO_REFRESH_TOKEN", required=True, secret=True, announces=True),
        Key(
            "dc",
            "ZOHO_DC",
            lower=True,
            default="us",
            choices=tuple(ZOHO_DCS),
            kind="a Zoho data centre",
        ),
        Key("accounts_url", "ZOHO_ACCOUNTS_URL", url=True),
        Key("analytics_api_url", "ZOHO_ANALYTICS_API_URL", url=True),
        Key("crm_api_url", "ZOHO_CRM_API_URL", url=True),
        Key(
            "analytics_org_id",
            "ZOHO_ANALYTICS_ORG_ID",
            valid=str.isdigit,
            says="must be digits (Zoho's organization id)",
        ),
        Key(RATE_KEY, "ZOHO_RATE_PER_MINUTE", rate=True),
    ),
    make=_zoho,
    limit=lambda conn: ZOHO_LIMIT,
)

ZUORA = Family(
    name="zuora",
    vendor="Zuora",
    keys=(
        Key("client_id", "ZUORA_CLIENT_ID", required=True, secret=True, announces=True),
        Key("client_secret", "ZUORA_CLIENT_SECRET", required=True, secret=True, announces=True),
        Key(
            "env",
            "ZUORA_ENV",
            lower=True,
            choices=tuple(ZUORA_ENVS),
            kind="a Zuora environment",
            example="e.g. us-prod, eu-sandbox",
            announces=True,
        ),
        Key("base_url", "ZUORA_BASE_URL", url=True, announces=True),
        Key(RATE_KEY, "ZUORA_RATE_PER_MINUTE", rate=True),
    ),
    make=_zuora,
    limit=_zuora_limit,
    either=("env", "base_url"),
)

MICRO = Family(
    name="micro",
    vendor="Micro",
    keys=(
        Key("api_key", "MICRO_API_KEY", required=True, secret=True, announces=True),
        Key(
            "team_id",
            "MICRO_TEAM_ID",
            lower=True,
            valid=lambda v: bool(_UUID.match(v)),
            says="must be a team UUID (e.g. 3b9e6f0a-2c4d-…)",
            announces=True,
        ),
        Key("base_url", "MICRO_BASE_URL", url=True),
        Key(RATE_KEY, "MICRO_RATE_PER_MINUTE", rate=True),
    ),
    make=_micro,
    limit=lambda conn: MICRO_LIMIT,
)


class _Section:
    """One connection's raw values, from the environment (`where` None) or a config-file
    section, and how a problem names each key: the variable, or the key and its section."""

    def __init__(self, values: Mapping[str, object], where: str | None) -> None:
        self.values, self.where = values, where

    def label(self, key: Key) -> str:
        return key.env if self.where is None else f"{key.name} in {self.where}"

    def text(self, key: Key) -> str:
        return _text(self.values, key.name)

    def rate(self, key: Key, problems: list[str]) -> float | None:
        """A rate key: unset → None (the vendor's default); else a number > 0."""
        raw = self.values.get(key.name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if self.where is None:
            shown = f"{key.env}={raw!r}"
        else:
            shown = f"{key.name} = {raw!r} in {self.where}"
        try:
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise ValueError
            value = float(raw)
        except (ValueError, OverflowError):
            problems.append(f"{shown} is not a number (requests a minute)")
            return None
        if not math.isfinite(value):
            problems.append(f"{shown} is not a finite number")
            return None
        if value <= 0:
            problems.append(f"{shown} is out of range (must be > 0 requests a minute)")
            return None
        return value


def _text(values: Mapping[str, object], key: str) -> str:
    """A config value as trimmed text ("" when unset); TOML numbers are read as written."""
    value = values.get(key, "")
    return str(value).strip() if value is not None else ""


def _value_problem(key: Key, value: str, label: str) -> str | None:
    """What is wrong with the non-empty `value` of `key` (None: nothing). A secret's value
    is never quoted, and a URL only masked."""
    if key.choices and value not in key.choices:
        said = label if key.secret else f"{label}={value!r}"
        return f"{said} is not {key.kind} ({', '.join(key.choices)})"
    if key.url and (why := url_problem(value)):
        return f"{label}={masked_url(value)!r} {why}"
    if key.valid is not None and not key.valid(value):
        return f"{label} {key.says}"
    return None


def _connection(family: Family[C], name: str, section: _Section, problems: list[str]) -> C | None:
    """Check one connection's values against its family's keys; the connection, or None
    with every problem found appended (the rate first, then missing keys, then bad values)."""
    before = len(problems)
    rate = None
    for key in family.keys:
        if key.rate:
            rate = section.rate(key, problems)
    for key in family.keys:
        if key.required and not section.text(key):
            problems.append(
                f"{section.label(key)} is not set "
                f"(needed for the {family.vendor} connection {name!r})"
            )
    values: dict[str, str] = {}
    for key in family.keys:
        if key.rate:
            continue
        value = section.text(key)
        value = (value.lower() if key.lower else value) or key.default
        if value and (problem := _value_problem(key, value, section.label(key))):
            problems.append(problem)
        values[key.name] = value.rstrip("/") if key.url else value
    if family.either is not None and not any(values[k] for k in family.either):
        first, second = (family.key(k) for k in family.either)
        example = f" ({first.example})" if first.example else ""
        problems.append(
            f"set {section.label(first)}{example} or {section.label(second)} "
            f"for the {family.vendor} connection {name!r}"
        )
    if len(problems) > before:
        return None
    conn = family.make(name, Checked(values, rate))
    _warn_above(conn, family, section)
    return conn


def _warn_above(conn: C, family: Family[C], section: _Section) -> None:
    """Log (not refuse: the operator may have a bigger plan) a rate over the vendor's
    published limit."""
    limit, published = family.limit(conn)
    rate = conn.rate_per_minute
    if rate is not None and rate > limit:
        rate_key = next(k for k in family.keys if k.rate)
        log.warning(
            "%s is %g requests a minute, above the vendor's published limit (%s): expect "
            "rate-limit answers, after which polls back off",
            section.label(rate_key),
            rate,
            published,
        )


def _slack_ids(raw: Any, shape: re.Pattern[str], where: str, problems: list[str]) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        problems.append(f"{where} must be a list of Slack ids")
        return frozenset()
    bad = [v for v in raw if not shape.match(v)]
    if bad:
        problems.append(f"{where}: {', '.join(map(repr, bad[:3]))} are not Slack ids")
    return frozenset(v for v in raw if shape.match(v))


def _sync_allowlists(
    toml: Mapping[str, Any], config_path: str | None, problems: list[str]
) -> dict[str, Allowlist]:
    """`[sync_allow.<connection>] users = [...], channels = [...]`."""
    table = toml.get("sync_allow", {})
    if not isinstance(table, dict):
        problems.append(f"[sync_allow] in {config_path} must be a table of connections")
        return {}
    found = {}
    for name, section in table.items():
        if not isinstance(section, dict):
            problems.append(f"[sync_allow.{name}] in {config_path} must be a table")
            continue
        where = f"[sync_allow.{name}] in {config_path}"
        found[name] = Allowlist(
            users=_slack_ids(section.get("users", []), SLACK_USER, f"users of {where}", problems),
            channels=_slack_ids(
                section.get("channels", []), SLACK_CHANNEL, f"channels of {where}", problems
            ),
        )
    return found


def _sync_targets(
    toml: Mapping[str, Any], config_path: str | None, problems: list[str]
) -> dict[str, SyncTarget]:
    """`[syncs."<ws>/<ds>"] connection, user_name, password, schedule_id`: datasource
    credentials come from here only, never from Slack."""
    table = toml.get("syncs", {})
    if not isinstance(table, dict):
        problems.append(f"[syncs] in {config_path} must be a table keyed by <ws>/<ds>")
        return {}
    found = {}
    for key, section in table.items():
        where = f'[syncs."{key}"] in {config_path}'
        if not SYNC_TARGET.match(key) or not isinstance(section, dict):
            problems.append(f"{where}: the key must be <workspace-id>/<datasource-id>, a table")
            continue
        unknown = set(section) - {"connection", "user_name", "password", "schedule_id"}
        if unknown:
            problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        ws, ds = key.split("/")
        found[key] = SyncTarget(
            ws,
            ds,
            _text(section, "connection") or DEFAULT_CONNECTION,
            SyncOptions(
                user_name=_text(section, "user_name") or None,
                password=_text(section, "password") or None,
                schedule_id=_text(section, "schedule_id") or None,
            ),
        )
    return found


def _tokens(
    toml: Mapping[str, Any], config_path: str | None, problems: list[str]
) -> dict[str, ApiToken]:
    """`[tokens.<name>] sha256 = "<hex digest of the token>", channels = ["C…"]`: API tokens
    the operator made (docs/operations.md#api-tokens). Only the hash is written down."""
    table = toml.get("tokens", {})
    if not isinstance(table, dict):
        problems.append(f"[tokens] in {config_path} must be a table of token names")
        return {}
    found = {}
    for name, section in table.items():
        where = f"[tokens.{name}] in {config_path}"
        if not credentials.NAME.match(str(name)) or not isinstance(section, dict):
            problems.append(
                f"{where}: a token name is lower-case letters, digits, - and _ (a table)"
            )
            continue
        unknown = set(section) - {"sha256", "channels"}
        if unknown:
            problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        token_digest = _text(section, "sha256").lower()
        if not credentials.HEX64.match(token_digest):
            problems.append(
                f"{where}: sha256 must be the 64-hex-digit SHA-256 of the token "
                '(e.g. printf %s "$TOKEN" | sha256sum)'
            )
            continue
        channels = _slack_ids(
            section.get("channels", []), SLACK_CHANNEL, f"channels of {where}", problems
        )
        if not channels:
            problems.append(f"{where}: channels must list at least one channel id")
            continue
        listed = tuple(c for c in section["channels"] if c in channels)
        found[name] = ApiToken(
            name=name,
            digest=token_digest,
            hook_digest=credentials.digest(credentials.hook_key(token_digest)),
            channels=tuple(dict.fromkeys(listed)),
            created_by=None,
            created_at=0.0,
            source="config",
        )
    return found


def _quota(
    toml: Mapping[str, Any], key: str, default: int, config_path: str | None, problems: list[str]
) -> int:
    """`[quotas] per_channel = 100, per_user = 50`: active watches, so one busy channel or
    one script can't crowd everyone else out of the vendors' rate limits."""
    table = toml.get("quotas", {})
    value = table.get(key, default) if isinstance(table, dict) else default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        problems.append(f"[quotas] {key} in {config_path} must be a whole number ≥ 1")
        return default
    return value


def _choice(value: str, allowed: tuple[str, ...], name: str, problems: list[str]) -> str:
    if not value:
        return allowed[0]
    if value.lower() not in allowed:
        problems.append(f"{name}={value!r} must be one of {', '.join(allowed)}")
        return allowed[0]
    return value.lower()
