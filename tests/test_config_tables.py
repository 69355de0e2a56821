"""Vendor connection settings: one table per family drives the environment's `default`
connection and the config file's named ones through the same checks."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import MICRO, ZOHO, ZUORA, ConfigError, Family, Settings

FAMILIES: list[Family] = [ZOHO, ZUORA, MICRO]
TEAM = "3B9E6F0A-2C4D-4E8B-9A71-5D0C2E8F1A64"
# One full connection per family, by key name; every key is set.
FULL = {
    "zoho": {
        "client_id": "1000.BOUNDARYCLIENT",
        "client_secret": "boundary-zoho-SECRET",
        "refresh_token": "1000.boundary-refresh",
        "dc": "EU",
        "analytics_org_id": "20001",
        "accounts_url": "http://127.0.0.1:9001/",
        "analytics_api_url": "http://127.0.0.1:9002",
        "crm_api_url": "http://127.0.0.1:9003",
        "rate_per_minute": "12",
    },
    "zuora": {
        "client_id": "boundary-zuora-client",
        "client_secret": "boundary-zuora-SECRET",
        "env": "EU-Sandbox",
        "base_url": "http://127.0.0.1:9004/",
        "rate_per_minute": "300",
    },
    "micro": {
        "api_key": "boundary-micro-KEY",
        "team_id": TEAM,
        "base_url": "http://127.0.0.1:9005",
        "rate_per_minute": "2",
    },
}


@pytest.fixture(autouse=True)
def no_config_file_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def env_of(family: Family, values: dict[str, str]) -> dict[str, str]:
    return {family.key(name).env: value for name, value in values.items()}


def toml_of(tmp_path: Path, family: Family, name: str, values: dict[str, str]) -> dict[str, str]:
    body = "".join(f'{k} = "{v}"\n' for k, v in values.items())
    path = tmp_path / "conf.toml"
    path.write_text(f"[{family.name}.{name}]\n{body}", encoding="utf-8")
    return {"SYNCWATCH_CONFIG": str(path)}


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    return info.value.problems


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_every_key_names_a_field_of_the_familys_connection(family: Family) -> None:
    conn = Settings.from_env(env_of(family, FULL[family.name])).connections(family.name)
    fields = {f.name for f in dataclasses.fields(conn["default"])}
    assert {k.name for k in family.keys} <= fields
    assert {k.name for k in family.keys} == set(FULL[family.name])


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_env_and_toml_read_the_same_values_the_same_way(tmp_path: Path, family: Family) -> None:
    values = FULL[family.name]
    from_env = Settings.from_env(env_of(family, values)).connections(family.name)["default"]
    from_toml = Settings.from_env(toml_of(tmp_path, family, "named", values))
    named = from_toml.connections(family.name)["named"]
    assert replace(named, name="default") == from_env


@pytest.mark.parametrize(
    ("family", "key", "value", "says"),
    [
        (ZOHO, "dc", "Mars", "{label}='mars' is not a Zoho data centre"),
        (ZOHO, "analytics_org_id", "acme", "{label} must be digits (Zoho's organization id)"),
        (ZOHO, "crm_api_url", "ftp://crm.test", "{label}='ftp://crm.test' is not an http(s) URL"),
        (ZUORA, "env", "moon", "{label}='moon' is not a Zuora environment"),
        (MICRO, "team_id", "team-7", "{label} must be a team UUID"),
        (MICRO, "base_url", "http://x.test/api", "{label}='http://x.test/api' must be an origin"),
    ],
)
def test_a_bad_value_is_worded_alike_in_env_and_toml(
    tmp_path: Path, family: Family, key: str, value: str, says: str
) -> None:
    values = {**FULL[family.name], key: value}
    (in_env,) = problems(env_of(family, values))
    assert in_env.startswith(says.format(label=family.key(key).env))
    toml = toml_of(tmp_path, family, "named", values)
    (in_toml,) = problems(toml)
    where = f"[{family.name}.named] in {toml['SYNCWATCH_CONFIG']}"
    assert in_toml.startswith(says.format(label=f"{key} in {where}"))


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_required_keys_are_named_when_missing(family: Family) -> None:
    required = [k for k in family.keys if k.required]
    assert required
    for key in required:
        values = {n: v for n, v in FULL[family.name].items() if n != key.name}
        assert problems(env_of(family, values)) == [
            f"{key.env} is not set (needed for the {family.vendor} connection 'default')"
        ]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_secrets_lists_every_secret_key_of_every_family(tmp_path: Path, family: Family) -> None:
    values = FULL[family.name]
    env = {**env_of(family, values), **toml_of(tmp_path, family, "named", values)}
    found = Settings.from_env(env).secrets()
    secret = [k for k in family.keys if k.secret]
    assert secret
    for key in secret:
        assert found.count(values[key.name]) == 2  # the env's `default` and `named`


def test_secret_keys_have_no_value_checks_that_could_quote_them() -> None:
    for family in FAMILIES:
        for key in family.keys:
            if key.secret:
                assert not (key.choices or key.url or key.valid or key.default), key


def test_rate_keys_and_published_limits() -> None:
    assert [f.rate_env for f in FAMILIES] == [
        "ZOHO_RATE_PER_MINUTE",
        "ZUORA_RATE_PER_MINUTE",
        "MICRO_RATE_PER_MINUTE",
    ]
    for family in FAMILIES:
        conn = Settings.from_env(env_of(family, FULL[family.name])).connections(family.name)
        limit, wording = family.limit(conn["default"])
        assert limit > 0 and wording
