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
from typing import Any
from urllib.parse import urlsplit

from bot.vendors.base import SyncOptions
from bot.vendors.micro import DEFAULT_BASE_URL as MICRO_DEFAULT_URL
from bot.vendors.micro import MicroConnection
from bot.vendors.zoho_auth import ZOHO_DCS, ZohoConnection
from bot.vendors.zuora import API_SANDBOX_HOSTS, ZUORA_ENVS, ZuoraConnection

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
SLACK_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,20}$")
SYNC_TARGET = re.compile(r"^[0-9]{1,20}/[0-9]{1,20}$")
DEFAULT_CONNECTION = "default"
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
    connection: str = "default"
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
    zoho: Mapping[str, ZohoConnection] = field(default_factory=dict)
    zuora: Mapping[str, ZuoraConnection] = field(default_factory=dict)
    micro: Mapping[str, MicroConnection] = field(default_factory=dict)
    syncs: Mapping[str, SyncTarget] = field(default_factory=dict)  # by "ws/ds"
    sync_allow: Mapping[str, Allowlist] = field(default_factory=dict)  # by connection
    admins: frozenset[str] = frozenset()
    log_format: str = "text"  # SYNCWATCH_LOG_FORMAT: text | json
    quota_per_channel: int = 100  # active watches one channel may hold
    quota_per_user: int = 50  # active watches one person may have started

    def __repr__(self) -> str:
        return (
            f"Settings(db_path={self.db_path!r}, port={self.port}, host={self.host!r}, "
            f"socket_mode={self.socket_mode}, zoho={sorted(self.zoho)}, "
            f"zuora={sorted(self.zuora)}, micro={sorted(self.micro)})"
        )

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    def connections(self, family: str) -> Mapping[str, Any]:
        """Named connections of one vendor family (`zoho`, later `zuora`, `micro`)."""
        return {"zoho": self.zoho, "zuora": self.zuora, "micro": self.micro}.get(family, {})

    def may_sync(self, connection: str, user_id: str, channel_id: str) -> bool:
        """Design §6 Permissions: no allowlist for the connection → anyone; else only the
        listed users/channels (and admins)."""
        allow = self.sync_allow.get(connection)
        if allow is None or user_id in self.admins:
            return True
        return allow.admits(user_id, channel_id)

    def secrets(self) -> list[str]:
        """Every configured secret value, for redaction and for tests that grep for leaks."""
        found = [self.slack_bot_token, self.slack_signing_secret, self.slack_app_token]
        for conn in self.zoho.values():
            found += [conn.client_secret, conn.refresh_token, conn.client_id]
        for zconn in self.zuora.values():
            found += [zconn.client_secret, zconn.client_id]
        found += [mconn.api_key for mconn in self.micro.values()]
        found += [t.options.password for t in self.syncs.values() if t.options.password]
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

        zoho = _family(env, toml, config_path, "zoho", _zoho_from_env, _zoho_connection, problems)
        zuora = _family(
            env, toml, config_path, "zuora", _zuora_from_env, _zuora_connection, problems
        )
        micro = _family(
            env, toml, config_path, "micro", _micro_from_env, _micro_connection, problems
        )

        settings = cls(
            slack_bot_token=get.text("SLACK_BOT_TOKEN"),
            slack_signing_secret=get.text("SLACK_SIGNING_SECRET"),
            slack_app_token=get.text("SLACK_APP_TOKEN"),
            slack_api_url=get.url("SLACK_API_URL", DEFAULT_SLACK_API_URL, origin_only=False),
            db_path=get.text("SYNCWATCH_DB") or "./syncwatch.db",
            port=int(get.number("PORT", 3000, minimum=0, maximum=65535, integer=True)),
            host=get.text("SYNCWATCH_HOST") or "0.0.0.0",
            poll_interval=get.optional_number("SYNCWATCH_POLL_INTERVAL", minimum=1),
            watch_timeout=get.number("SYNCWATCH_WATCH_TIMEOUT", 86400, minimum=1),
            max_file_mb=get.number("SYNCWATCH_MAX_FILE_MB", 50, minimum=0.001),
            zoho=zoho,
            zuora=zuora,
            micro=micro,
            syncs=_sync_targets(toml, config_path, problems),
            sync_allow=_sync_allowlists(toml, config_path, problems),
            log_format=_choice(
                get.text("SYNCWATCH_LOG_FORMAT"), ("text", "json"), "SYNCWATCH_LOG_FORMAT", problems
            ),
            quota_per_channel=_quota(toml, "per_channel", 100, config_path, problems),
            quota_per_user=_quota(toml, "per_user", 50, config_path, problems),
            admins=_slack_ids(
                toml.get("admins", []), SLACK_USER, f"admins in {config_path}", problems
            ),
        )
        if problems:
            raise ConfigError(problems)
        if not settings.slack_api_url.endswith("/"):
            settings = replace(settings, slack_api_url=settings.slack_api_url + "/")
        return settings


def _family(
    env: Mapping[str, str],
    toml: Mapping[str, Any],
    config_path: str | None,
    family: str,
    from_env: Callable[[Mapping[str, str], list[str]], Any],
    from_section: Callable[..., Any],
    problems: list[str],
) -> dict[str, Any]:
    """One vendor family's connections: `default` from the environment, then the named
    `[<family>.<name>]` sections of the config file."""
    found: dict[str, Any] = {}
    before = len(problems)
    default = from_env(env, problems)
    if default is not None:
        found[DEFAULT_CONNECTION] = default
    elif len(problems) == before and env.get(f"{family.upper()}_RATE_PER_MINUTE", "").strip():
        problems.append(
            f"{family.upper()}_RATE_PER_MINUTE is set but the environment describes no "
            f"{family} connection (it sets the rate of the `default` connection only; "
            f"named connections take {RATE_KEY} in their [{family}.<name>] section)"
        )
    for name, section in _sections(toml, family, problems):
        conn = from_section(name, section, f"[{family}.{name}] in {config_path}", problems)
        if conn is not None:
            found[name] = conn
    _warn_shared_rates(family, found)
    return found


def _warn_shared_rates(family: str, connections: Mapping[str, Any]) -> None:
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
    """Why `raw` is not a usable base URL, or None. Overrides are origins (design.md §6)."""
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
    out = []
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


class _Fields:
    """One connection's settings, from env vars or a TOML section, with problem labels that
    name the variable (or the key and file) the operator has to fix."""

    def __init__(
        self, values: Mapping[str, Any], where: str, names: Mapping[str, str] | None
    ) -> None:
        self.values, self.where, self.names = values, where, names

    def label(self, key: str) -> str:
        return self.names[key] if self.names else f"{key} in {self.where}"

    def text(self, key: str) -> str:
        value = self.values.get(key, "")
        return str(value).strip() if value is not None else ""

    def pair(self) -> tuple[Callable[[str], str], Callable[[str], str]]:
        return self.label, self.text

    def rate(self, problems: list[str]) -> float | None:
        """`rate_per_minute`: unset → None (the vendor's default); else a number > 0."""
        raw = self.values.get(RATE_KEY)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        shown = (
            f"{self.names[RATE_KEY]}={raw!r}"
            if self.names
            else f"{RATE_KEY} = {raw!r} in {self.where}"
        )
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

    def warn_above(self, rate: float | None, limit: float, published: str) -> None:
        """Log (not refuse: the operator may have a bigger plan) a rate over the vendor's
        published limit."""
        if rate is not None and rate > limit:
            log.warning(
                "%s is %g requests a minute, above the vendor's published limit (%s): expect "
                "rate-limit answers, after which polls back off",
                self.label(RATE_KEY),
                rate,
                published,
            )


_ZOHO_ENV = {
    "client_id": "ZOHO_CLIENT_ID",
    "client_secret": "ZOHO_CLIENT_SECRET",
    "refresh_token": "ZOHO_REFRESH_TOKEN",
    "dc": "ZOHO_DC",
    "analytics_org_id": "ZOHO_ANALYTICS_ORG_ID",
    "accounts_url": "ZOHO_ACCOUNTS_URL",
    "analytics_api_url": "ZOHO_ANALYTICS_API_URL",
    "crm_api_url": "ZOHO_CRM_API_URL",
    RATE_KEY: "ZOHO_RATE_PER_MINUTE",
}
# Published request limits a configured rate is checked against (vendors.md §3.6, §5.8, §7.6).
ZOHO_LIMIT = (40.0, "Zoho Analytics: 40 bulk-API calls a minute; import-job polls are bulk calls")
ZUORA_LIMIT = (50_000.0, "Zuora: 50,000 calls a minute per tenant")
ZUORA_SANDBOX_LIMIT = (5_000 / 60, "Zuora API Sandbox: 5,000 calls an hour, about 83 a minute")
MICRO_LIMIT = (600.0, "Micro: 10 requests a second per key, and 1,000 a month")


def _zoho_from_env(env: Mapping[str, str], problems: list[str]) -> ZohoConnection | None:
    values = {key: env.get(var, "").strip() for key, var in _ZOHO_ENV.items()}
    if not any(values[k] for k in ("client_id", "client_secret", "refresh_token")):
        return None
    return _zoho_connection(DEFAULT_CONNECTION, values, "environment", problems, names=_ZOHO_ENV)


def _zoho_connection(
    name: str,
    values: Mapping[str, Any],
    where: str,
    problems: list[str],
    names: Mapping[str, str] | None = None,
) -> ZohoConnection | None:
    fields = _Fields(values, where, names)
    label, text = fields.pair()
    before = len(problems)
    rate = fields.rate(problems)
    for key in ("client_id", "client_secret", "refresh_token"):
        if not text(key):
            problems.append(f"{label(key)} is not set (needed for the Zoho connection {name!r})")
    dc = (text("dc") or "us").lower()
    if dc not in ZOHO_DCS:
        problems.append(f"{label('dc')}={dc!r} is not a Zoho data centre ({', '.join(ZOHO_DCS)})")
        dc = "us"
    hosts = ZOHO_DCS[dc]
    resolved: dict[str, str] = {}
    overridden = set()
    for key, host, short in (
        ("accounts_url", hosts.accounts, "accounts"),
        ("analytics_api_url", hosts.analytics, "analytics"),
        ("crm_api_url", hosts.crm, "crm"),
    ):
        raw = text(key)
        if raw:
            problem = url_problem(raw)
            if problem:
                problems.append(f"{label(key)}={masked_url(raw)!r} {problem}")
            overridden.add(short)
            resolved[key] = raw.rstrip("/")
        else:
            resolved[key] = f"https://{host}"
    org = text("analytics_org_id")
    if org and not org.isdigit():
        problems.append(f"{label('analytics_org_id')} must be digits (Zoho's organization id)")
    if len(problems) > before:
        return None
    fields.warn_above(rate, *ZOHO_LIMIT)
    return ZohoConnection(
        name=name,
        client_id=text("client_id"),
        client_secret=text("client_secret"),
        refresh_token=text("refresh_token"),
        dc=dc,
        analytics_org_id=org,
        overridden=frozenset(overridden),
        rate_per_minute=rate,
        **resolved,
    )


_ZUORA_ENV = {
    "client_id": "ZUORA_CLIENT_ID",
    "client_secret": "ZUORA_CLIENT_SECRET",
    "base_url": "ZUORA_BASE_URL",
    "env": "ZUORA_ENV",
    RATE_KEY: "ZUORA_RATE_PER_MINUTE",
}


def _zuora_from_env(env: Mapping[str, str], problems: list[str]) -> ZuoraConnection | None:
    values = {key: env.get(var, "").strip() for key, var in _ZUORA_ENV.items()}
    if not any(v for k, v in values.items() if k != RATE_KEY):
        return None
    return _zuora_connection(DEFAULT_CONNECTION, values, "environment", problems, _ZUORA_ENV)


def _zuora_connection(
    name: str,
    values: Mapping[str, Any],
    where: str,
    problems: list[str],
    names: Mapping[str, str] | None = None,
) -> ZuoraConnection | None:
    fields = _Fields(values, where, names)
    label, text = fields.pair()
    before = len(problems)
    rate = fields.rate(problems)
    for key in ("client_id", "client_secret"):
        if not text(key):
            problems.append(f"{label(key)} is not set (needed for the Zuora connection {name!r})")
    env_name = text("env").lower() or None
    base_url = text("base_url")
    if env_name is not None and env_name not in ZUORA_ENVS:
        problems.append(
            f"{label('env')}={env_name!r} is not a Zuora environment ({', '.join(ZUORA_ENVS)})"
        )
    if base_url:
        problem = url_problem(base_url)
        if problem:
            problems.append(f"{label('base_url')}={masked_url(base_url)!r} {problem}")
    elif env_name is None:
        problems.append(
            f"set {label('env')} (e.g. us-prod, eu-sandbox) or {label('base_url')} "
            f"for the Zuora connection {name!r}"
        )
    if len(problems) > before:
        return None
    conn = ZuoraConnection(
        name=name,
        client_id=text("client_id"),
        client_secret=text("client_secret"),
        # ZUORA_BASE_URL wins when both are set (design.md §3).
        base_url=base_url.rstrip("/") if base_url else ZUORA_ENVS[env_name or ""],
        env=env_name,
        overridden=bool(base_url),
        rate_per_minute=rate,
    )
    sandbox = urlsplit(conn.base_url).hostname in API_SANDBOX_HOSTS
    fields.warn_above(rate, *(ZUORA_SANDBOX_LIMIT if sandbox else ZUORA_LIMIT))
    return conn


_MICRO_ENV = {
    "api_key": "MICRO_API_KEY",
    "team_id": "MICRO_TEAM_ID",
    "base_url": "MICRO_BASE_URL",
    RATE_KEY: "MICRO_RATE_PER_MINUTE",
}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _micro_from_env(env: Mapping[str, str], problems: list[str]) -> MicroConnection | None:
    values = {key: env.get(var, "").strip() for key, var in _MICRO_ENV.items()}
    if not values["api_key"] and not values["team_id"]:
        return None
    return _micro_connection(DEFAULT_CONNECTION, values, "environment", problems, _MICRO_ENV)


def _micro_connection(
    name: str,
    values: Mapping[str, Any],
    where: str,
    problems: list[str],
    names: Mapping[str, str] | None = None,
) -> MicroConnection | None:
    fields = _Fields(values, where, names)
    label, text = fields.pair()
    before = len(problems)
    rate = fields.rate(problems)
    if not text("api_key"):
        problems.append(f"{label('api_key')} is not set (needed for the Micro connection {name!r})")
    team = text("team_id")
    if team and not _UUID.match(team):
        problems.append(f"{label('team_id')} must be a team UUID (e.g. 3b9e6f0a-2c4d-…)")
    base_url = text("base_url")
    if base_url:
        problem = url_problem(base_url)
        if problem:
            problems.append(f"{label('base_url')}={masked_url(base_url)!r} {problem}")
    if len(problems) > before:
        return None
    fields.warn_above(rate, *MICRO_LIMIT)
    return MicroConnection(
        name=name,
        api_key=text("api_key"),
        team_id=team.lower(),
        base_url=base_url.rstrip("/") if base_url else MICRO_DEFAULT_URL,
        overridden=bool(base_url),
        rate_per_minute=rate,
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
        fields = _Fields(section, where, None)
        unknown = set(section) - {"connection", "user_name", "password", "schedule_id"}
        if unknown:
            problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        ws, ds = key.split("/")
        found[key] = SyncTarget(
            ws,
            ds,
            fields.text("connection") or DEFAULT_CONNECTION,
            SyncOptions(
                user_name=fields.text("user_name") or None,
                password=fields.text("password") or None,
                schedule_id=fields.text("schedule_id") or None,
            ),
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
