"""Per-connection request rate (docs/vendors.md#request-rate): the `rate_per_minute` setting, one
token bucket per vendor account (not per connection name), and the poller using both."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import ConfigError, Settings
from bot.lifecycle import PollPolicy
from bot.poller import Poller
from bot.vendors import VendorContext, build_http_client
from bot.vendors.micro import SPEC as MICRO
from bot.vendors.pool import UnknownConnectionError, VendorPool
from bot.vendors.zoho_analytics import SPEC as ZA
from bot.vendors.zoho_analytics_sync import SPEC as ZA_SYNC
from bot.vendors.zoho_crm import SPEC as CRM
from bot.vendors.zuora import SPEC as ZUORA
from storage import DONE, Store
from tests.test_poller import ENV as ZOHO_ENV
from tests.test_poller import FakeZoho, watch

ZUORA_ENV = {
    "ZUORA_CLIENT_ID": "zuora-client-id-5d1e",
    "ZUORA_CLIENT_SECRET": "zuora-client-SECRET-77f0",
    "ZUORA_ENV": "us-prod",
}
MICRO_ENV = {
    "MICRO_API_KEY": "micro-API-key-4c2a9e1b",
    "MICRO_TEAM_ID": "3b9e6f0a-2c4d-4e8b-9a71-5d0c2e8f1a64",
}
ALL_ENV = {**ZOHO_ENV, **ZUORA_ENV, **MICRO_ENV}


@pytest.fixture(autouse=True)
def no_config_file_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """from_env looks for ./syncwatch.toml; run every test in an empty directory."""
    monkeypatch.chdir(tmp_path)


def with_toml(tmp_path: Path, text: str, env: Mapping[str, str] = ZOHO_ENV) -> dict[str, str]:
    path = tmp_path / "conf.toml"
    path.write_text(text, encoding="utf-8")
    return {**env, "SYNCWATCH_CONFIG": str(path)}


def problems(env: Mapping[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    return info.value.problems


def zoho_section(name: str, *, org: str = "55522777", extra: str = "", **over: str) -> str:
    """A named Zoho connection; by default the same account as the env's `default`."""
    values = {
        "client_id": ZOHO_ENV["ZOHO_CLIENT_ID"],
        "client_secret": ZOHO_ENV["ZOHO_CLIENT_SECRET"],
        "refresh_token": ZOHO_ENV["ZOHO_REFRESH_TOKEN"],
        "accounts_url": ZOHO_ENV["ZOHO_ACCOUNTS_URL"],
        "analytics_api_url": ZOHO_ENV["ZOHO_ANALYTICS_API_URL"],
        "analytics_org_id": org,
        **over,
    }
    body = "".join(f'{k} = "{v}"\n' for k, v in values.items() if v)
    return f"[zoho.{name}]\n{body}{extra}\n"


def pool_for(env: Mapping[str, str]) -> VendorPool:
    settings = Settings.from_env(env)
    return VendorPool(
        settings.connections, VendorContext(http=build_http_client(), clock=lambda: 0)
    )


# -- the setting ------------------------------------------------------------------------------


def test_rate_is_unset_by_default_everywhere(tmp_path: Path) -> None:
    text = (
        zoho_section("eu-team")
        + '[zuora.emea]\nclient_id = "c"\nclient_secret = "s"\nenv = "eu-prod"\n'
        + f'[micro.research]\napi_key = "k-research"\nteam_id = "{MICRO_ENV["MICRO_TEAM_ID"]}"\n'
    )
    settings = Settings.from_env(with_toml(tmp_path, text, ALL_ENV))
    for family in ("zoho", "zuora", "micro"):
        conns = settings.connections(family)
        assert len(conns) == 2
        assert all(c.rate_per_minute is None for c in conns.values())


def test_env_sets_the_default_connections_rate() -> None:
    env = {
        **ALL_ENV,
        "ZOHO_RATE_PER_MINUTE": " 12.5 ",
        "ZUORA_RATE_PER_MINUTE": "300",
        "MICRO_RATE_PER_MINUTE": "2",
    }
    settings = Settings.from_env(env)
    assert settings.zoho["default"].rate_per_minute == 12.5
    assert settings.zuora["default"].rate_per_minute == 300
    assert settings.micro["default"].rate_per_minute == 2


def test_toml_sets_a_named_connections_rate(tmp_path: Path) -> None:
    text = (
        zoho_section("eu-team", extra="rate_per_minute = 20")
        + '[zuora.emea]\nclient_id = "c"\nclient_secret = "s"\nenv = "eu-prod"\n'
        + "rate_per_minute = 120.5\n"
        + f'[micro.research]\napi_key = "k-research"\nteam_id = "{MICRO_ENV["MICRO_TEAM_ID"]}"\n'
        + "rate_per_minute = 1\n"
    )
    settings = Settings.from_env(with_toml(tmp_path, text, ALL_ENV))
    assert settings.zoho["eu-team"].rate_per_minute == 20
    assert settings.zuora["emea"].rate_per_minute == 120.5
    assert settings.micro["research"].rate_per_minute == 1
    assert settings.zoho["default"].rate_per_minute is None  # env unset: the vendor default


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("fast", "ZOHO_RATE_PER_MINUTE='fast' is not a number (requests a minute)"),
        ("0", "ZOHO_RATE_PER_MINUTE='0' is out of range (must be > 0 requests a minute)"),
        ("-5", "ZOHO_RATE_PER_MINUTE='-5' is out of range (must be > 0 requests a minute)"),
        ("nan", "ZOHO_RATE_PER_MINUTE='nan' is not a finite number"),
        ("inf", "ZOHO_RATE_PER_MINUTE='inf' is not a finite number"),
        ("30/min", "ZOHO_RATE_PER_MINUTE='30/min' is not a number (requests a minute)"),
    ],
)
def test_bad_env_rate_is_a_problem(raw: str, says: str) -> None:
    assert problems({**ZOHO_ENV, "ZOHO_RATE_PER_MINUTE": raw}) == [says]


@pytest.mark.parametrize(
    ("family", "env"), [("ZUORA", ZUORA_ENV), ("MICRO", MICRO_ENV)], ids=["zuora", "micro"]
)
def test_bad_env_rate_of_other_vendors_is_a_problem(family: str, env: dict[str, str]) -> None:
    found = problems({**env, f"{family}_RATE_PER_MINUTE": "0"})
    assert found == [
        f"{family}_RATE_PER_MINUTE='0' is out of range (must be > 0 requests a minute)"
    ]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ('"fast"', "'fast' in [zoho.eu-team] in {path} is not a number (requests a minute)"),
        ("true", "True in [zoho.eu-team] in {path} is not a number (requests a minute)"),
        ("[30]", "[30] in [zoho.eu-team] in {path} is not a number (requests a minute)"),
        ("0", "0 in [zoho.eu-team] in {path} is out of range (must be > 0 requests a minute)"),
        (
            "-1.5",
            "-1.5 in [zoho.eu-team] in {path} is out of range (must be > 0 requests a minute)",
        ),
        ("inf", "inf in [zoho.eu-team] in {path} is not a finite number"),
        ("nan", "nan in [zoho.eu-team] in {path} is not a finite number"),
    ],
)
def test_bad_toml_rate_is_a_problem(tmp_path: Path, value: str, why: str) -> None:
    env = with_toml(tmp_path, zoho_section("eu-team", extra=f"rate_per_minute = {value}"))
    assert problems(env) == ["rate_per_minute = " + why.format(path=env["SYNCWATCH_CONFIG"])]


def test_bad_rate_in_a_zuora_or_micro_section_is_a_problem(tmp_path: Path) -> None:
    text = (
        '[zuora.emea]\nclient_id = "c"\nclient_secret = "s"\nenv = "eu-prod"\n'
        'rate_per_minute = "x"\n'
        f'[micro.research]\napi_key = "k"\nteam_id = "{MICRO_ENV["MICRO_TEAM_ID"]}"\n'
        "rate_per_minute = -2\n"
    )
    env = with_toml(tmp_path, text, {})
    path = env["SYNCWATCH_CONFIG"]
    assert problems(env) == [
        f"rate_per_minute = 'x' in [zuora.emea] in {path} is not a number (requests a minute)",
        f"rate_per_minute = -2 in [micro.research] in {path} is out of range "
        "(must be > 0 requests a minute)",
    ]


def test_env_rate_without_an_env_connection_is_a_problem() -> None:
    """It sets the `default` connection's rate only: set alone, it would silently do nothing."""
    assert problems({"MICRO_RATE_PER_MINUTE": "5"}) == [
        "MICRO_RATE_PER_MINUTE is set but the environment describes no micro connection "
        "(it sets the rate of the `default` connection only; named connections take "
        "rate_per_minute in their [micro.<name>] section)"
    ]


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Mapping[str, str]], None]:
    """The process environment as an operator sets it, nothing inherited."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "SYNCWATCH_", "ZOHO_", "ZUORA_", "MICRO_")):
            monkeypatch.delenv(name, raising=False)

    def set_env(values: Mapping[str, str]) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


def test_a_bad_rate_stops_the_cli_before_anything_starts(operator_env, capsys) -> None:
    from bot import cli

    operator_env({**ZOHO_ENV, "SLACK_APP_TOKEN": "xapp-rate", "ZOHO_RATE_PER_MINUTE": "lots"})
    with pytest.raises(SystemExit) as info:
        cli.main(["run"])
    assert info.value.code == 1
    assert "ZOHO_RATE_PER_MINUTE='lots' is not a number" in capsys.readouterr().err


def test_check_prints_each_connections_effective_rate(
    operator_env, capsys, tmp_path, fake_slack, zoho_sim, crm_sim
) -> None:
    from bot import cli
    from tests.conftest import bot_env

    env = bot_env(tmp_path, fake_slack, zoho_sim, crm_sim=crm_sim)
    alias = {
        "client_id": env["ZOHO_CLIENT_ID"],
        "client_secret": env["ZOHO_CLIENT_SECRET"],
        "refresh_token": env["ZOHO_REFRESH_TOKEN"],
        "analytics_org_id": env["ZOHO_ANALYTICS_ORG_ID"],
        "accounts_url": env["ZOHO_ACCOUNTS_URL"],
        "analytics_api_url": env["ZOHO_ANALYTICS_API_URL"],
        "crm_api_url": env["ZOHO_CRM_API_URL"],
    }
    text = "[zoho.alias]\n" + "".join(f'{k} = "{v}"\n' for k, v in alias.items())
    operator_env(with_toml(tmp_path, text + "rate_per_minute = 12\n", env))
    assert cli.main(["check"]) == 0
    out = capsys.readouterr().out
    assert "ok         zoho-analytics [default]: Zoho Analytics: 1 organization" in out
    # `alias` is the same account: its 12/min is the account's, for both names
    for name in ("default", "alias"):
        line = next(ln for ln in out.splitlines() if f"zoho-analytics [{name}]" in ln)
        assert line.endswith("; ≤ 12 requests/min")
        line = next(ln for ln in out.splitlines() if f"zoho-crm [{name}]" in ln)
        assert line.endswith("; ≤ 12 requests/min")


@pytest.mark.parametrize(
    ("env", "rate", "warned"),
    [
        (ZOHO_ENV, "40", False),
        (ZOHO_ENV, "41", True),  # Zoho Analytics: 40 bulk calls a minute
        (MICRO_ENV, "600", False),
        (MICRO_ENV, "601", True),  # Micro: 10 a second
        (ZUORA_ENV, "50000", False),
        (ZUORA_ENV, "50001", True),
        ({**ZUORA_ENV, "ZUORA_ENV": "us-sandbox"}, "83", False),
        ({**ZUORA_ENV, "ZUORA_ENV": "us-sandbox"}, "90", True),  # API Sandbox: 5,000 an hour
    ],
)
def test_rate_above_the_published_limit_is_logged_not_refused(
    env: dict[str, str], rate: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    var = next(k for k in env if k.endswith("_CLIENT_ID") or k == "MICRO_API_KEY").split("_")[0]
    with caplog.at_level(logging.WARNING, logger="bot.config"):
        settings = Settings.from_env({**env, f"{var}_RATE_PER_MINUTE": rate})
    assert settings.connections(var.lower())["default"].rate_per_minute == float(rate)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(warnings) == warned
    if warned:
        assert f"{var}_RATE_PER_MINUTE is {rate} requests a minute" in warnings[0]
        assert "published limit" in warnings[0]


# -- one bucket per vendor account --------------------------------------------------------------


def test_budget_is_the_vendor_default_unless_the_connection_sets_one(tmp_path: Path) -> None:
    env = with_toml(
        tmp_path,
        zoho_section("slow", org="111", extra="rate_per_minute = 6"),
        {**ALL_ENV, "ZUORA_RATE_PER_MINUTE": "100"},
    )
    pool = pool_for(env)
    assert pool.budget(ZA, "default")[1] == ZA.rate_per_minute == 30
    assert pool.budget(ZA_SYNC, "default")[1] == ZA_SYNC.rate_per_minute == 45
    assert pool.budget(CRM, "default")[1] == CRM.rate_per_minute
    assert pool.budget(MICRO, "default")[1] == MICRO.rate_per_minute
    assert pool.budget(ZUORA, "default")[1] == 100
    # the setting is the connection's: each Zoho API of that account gets a bucket at it
    assert [pool.budget(s, "slow")[1] for s in (ZA, ZA_SYNC, CRM)] == [6, 6, 6]
    # one bucket per (vendor API, account): Analytics polls and syncs don't share one
    assert pool.budget(ZA, "slow")[0] != pool.budget(ZA_SYNC, "slow")[0]
    assert pool.budget(ZA, "slow")[0][0] == "zoho-analytics"


def test_unknown_connection_has_no_budget() -> None:
    pool = pool_for(ZOHO_ENV)
    with pytest.raises(UnknownConnectionError, match="no zoho connection named 'eu-team'"):
        pool.budget(ZA, "eu-team")
    with pytest.raises(UnknownConnectionError, match="no zuora connection named 'default'"):
        pool.budget(ZUORA, "default")


def test_two_names_for_one_zoho_account_share_a_bucket(tmp_path: Path) -> None:
    text = (
        zoho_section("alias")  # same accounts host and org id as the env's `default`
        + zoho_section("other-client", client_id="1000.OTHERCLIENT", client_secret="x2")
        + zoho_section("other-org", org="99988877")
        + zoho_section("other-dc", accounts_url="https://accounts.zoho.eu.test")
    )
    pool = pool_for(with_toml(tmp_path, text))
    key = pool.budget(ZA, "default")[0]
    assert pool.budget(ZA, "alias")[0] == key
    assert pool.budget(ZA, "other-client")[0] == key  # the org is the account, whoever asks
    assert pool.budget(ZA, "other-org")[0] != key
    assert pool.budget(ZA, "other-dc")[0] != key


def test_zoho_without_an_org_id_is_one_account_per_client(tmp_path: Path) -> None:
    text = (
        zoho_section("a", org="")
        + zoho_section("b", org="", refresh_token="1000.otherrefresh")
        + zoho_section("c", org="", client_id="1000.OTHERCLIENT")
    )
    pool = pool_for(with_toml(tmp_path, text))
    assert pool.budget(ZA, "a")[0] == pool.budget(ZA, "b")[0]
    assert pool.budget(ZA, "a")[0] != pool.budget(ZA, "c")[0]


def test_zuora_and_micro_accounts(tmp_path: Path) -> None:
    team = MICRO_ENV["MICRO_TEAM_ID"]
    text = (
        '[zuora.alias]\nclient_id = "zuora-client-id-5d1e"\nclient_secret = "s2"\n'
        'env = "us-prod"\n'
        '[zuora.other]\nclient_id = "another-client"\nclient_secret = "s3"\nenv = "us-prod"\n'
        '[zuora.sandbox]\nclient_id = "zuora-client-id-5d1e"\nclient_secret = "s4"\n'
        'env = "us-sandbox"\n'
        f'[micro.alias]\napi_key = "{MICRO_ENV["MICRO_API_KEY"]}"\nteam_id = "{team}"\n'
        f'[micro.other]\napi_key = "another-micro-key"\nteam_id = "{team}"\n'
    )
    pool = pool_for(with_toml(tmp_path, text, ALL_ENV))
    key = pool.budget(ZUORA, "default")[0]
    assert pool.budget(ZUORA, "alias")[0] == key
    assert pool.budget(ZUORA, "other")[0] != key
    assert pool.budget(ZUORA, "sandbox")[0] != key
    assert pool.budget(MICRO, "alias")[0] == pool.budget(MICRO, "default")[0]
    assert pool.budget(MICRO, "other")[0] != pool.budget(MICRO, "default")[0]


def test_rate_key_holds_no_secret(tmp_path: Path) -> None:
    settings = Settings.from_env(with_toml(tmp_path, zoho_section("alias", org=""), ALL_ENV))
    conns = [c for f in ("zoho", "zuora", "micro") for c in settings.connections(f).values()]
    assert len(conns) == 4
    secrets = settings.secrets()
    for conn in conns:
        assert len(conn.rate_key) == 16 and int(conn.rate_key, 16) >= 0
        for secret in secrets:
            assert secret not in conn.rate_key
            assert conn.rate_key not in secret
        assert conn.rate_key not in repr(conn)  # repr unchanged: name and host only


def test_names_for_one_account_with_different_rates_all_use_the_lowest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = (
        zoho_section("fast", extra="rate_per_minute = 25")
        + zoho_section("slow", extra="rate_per_minute = 10")
        + zoho_section("unset")
        + zoho_section("elsewhere", org="99988877", extra="rate_per_minute = 25")
    )
    with caplog.at_level(logging.WARNING, logger="bot.config"):
        pool = pool_for(with_toml(tmp_path, text))
    # an unset name has no say: the account's rate is the lowest one that is set
    assert {n: pool.budget(ZA, n)[1] for n in ("default", "fast", "slow", "unset")} == {
        "default": 10,
        "fast": 10,
        "slow": 10,
        "unset": 10,
    }
    assert pool.budget(ZA, "elsewhere")[1] == 25
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "'fast' 25/min, 'slow' 10/min" in warning
    assert "lowest rate, 10/min" in warning


def test_one_name_setting_a_rate_sets_it_for_the_account(tmp_path: Path) -> None:
    pool = pool_for(with_toml(tmp_path, zoho_section("bulk", extra="rate_per_minute = 12")))
    assert pool.budget(ZA, "default") == pool.budget(ZA, "bulk")
    assert pool.budget(ZA, "default")[1] == 12


# -- the poller takes tokens from the account's bucket at its rate ----------------------------


@pytest.fixture
def make_poller(clock, store: Store) -> Iterator[Callable[[Mapping[str, str], FakeZoho], Poller]]:
    made: list[tuple[Poller, VendorPool]] = []

    def make(env: Mapping[str, str], zoho: FakeZoho) -> Poller:
        ctx = VendorContext(http=build_http_client(httpx.MockTransport(zoho)), clock=clock)
        vendors = VendorPool(Settings.from_env(env).connections, ctx)
        poller = Poller(store, vendors, PollPolicy(), clock=clock, rand=lambda: 0.0)
        made.append((poller, vendors))
        return poller

    yield make
    for poller, vendors in made:
        poller.shutdown()
        vendors.close()


RUNNING: dict[str, Any] = {"jobCode": "1002", "jobStatus": "JOB IN PROGRESS"}


def test_a_connection_at_6_a_minute_polls_its_burst_then_waits(make_poller, store, clock):
    zoho = FakeZoho()
    zoho.job("1", RUNNING)
    poller = make_poller({**ZOHO_ENV, "ZOHO_RATE_PER_MINUTE": "6"}, zoho)
    # interval 60 s: after its poll a watch is not due again within the part checked below
    watches = [watch(store, clock, job="1", channel_id=f"C{i}", interval_s=60) for i in range(4)]
    start = clock.now
    poller.run_once()
    assert zoho.polls() == 1  # burst: max(1, 6 / 6) = 1 (at the default 30/min: all 4)
    held = sorted(store.get_watch(w.id).next_poll_at - start for w in watches)
    # refill at 5/min (the rate less the burst): one token every 12 s, one watch per token
    assert held == pytest.approx([12, 24, 36, 60], abs=0.01)  # 60: the one polled
    polled_at = []
    for _ in range(45):
        clock.advance(1)
        before = zoho.polls()
        poller.run_once()
        polled_at += [clock.now - start] * (zoho.polls() - before)
    assert polled_at == [12, 24, 36]
    assert all(store.get_watch(w.id).polls == 1 for w in watches)


def test_two_names_for_one_account_get_one_burst_between_them(make_poller, store, clock, tmp_path):
    zoho = FakeZoho()
    zoho.job("1", RUNNING)
    poller = make_poller(with_toml(tmp_path, zoho_section("alias")), zoho)
    for i in range(8):
        watch(store, clock, job="1", channel_id=f"C{i}", connection=("default", "alias")[i % 2])
    poller.run_once()
    assert zoho.polls() == 5  # one 30/min bucket (burst 5), not two


def test_two_accounts_get_a_burst_each(make_poller, store, clock, tmp_path):
    zoho = FakeZoho()
    zoho.job("1", RUNNING)
    poller = make_poller(with_toml(tmp_path, zoho_section("other-org", org="99988877")), zoho)
    for i in range(12):
        watch(store, clock, job="1", channel_id=f"C{i}", connection=("default", "other-org")[i % 2])
    poller.run_once()
    assert zoho.polls() == 10
    orgs = [r.headers["ZANALYTICS-ORGID"] for r in zoho.requests if "/importjobs/" in r.url.path]
    assert sorted(set(orgs)) == ["55522777", "99988877"]
    assert orgs.count("99988877") == 5


def test_unknown_connection_still_fails_without_taking_a_token(make_poller, store, clock):
    zoho = FakeZoho()
    poller = make_poller(ZOHO_ENV, zoho)
    w = watch(store, clock, connection="eu-team")
    poller.run_once()
    failed = store.get_watch(w.id)
    assert (failed.status, failed.state) == (DONE, "failed")
    (t,) = store.transitions(w.id)
    assert t.error_message == (
        "no zoho connection named 'eu-team' is configured in syncwatch's config"
    )
    assert zoho.requests == []
    assert poller.buckets._buckets == {}
