"""Configuration from env and TOML (docs/operations.md#configuration,
docs/architecture.md#contract-rules), and the CLI's handling of it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from bot import cli
from bot.config import ConfigError, Settings
from bot.vendors.zoho_auth import ZOHO_DCS

BOT_TOKEN = "xoxb-FAKE-96"
SIGNING_SECRET = "signing-SECRET-value-42"
CLIENT_ID = "1000.CLIENTIDVALUE77"
CLIENT_SECRET = "zoho-CLIENT-secret-value"
REFRESH_TOKEN = "1000.refresh-TOKEN-value"
TOML_SECRET = "toml-CLIENT-secret-value"
TOML_REFRESH = "1000.toml-refresh-value"
URL_PASSWORD = "url-PASSWORD-value"
SECRETS = [BOT_TOKEN, SIGNING_SECRET, CLIENT_SECRET, REFRESH_TOKEN, TOML_SECRET, TOML_REFRESH]

MINIMAL = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
ZOHO = {
    "ZOHO_CLIENT_ID": CLIENT_ID,
    "ZOHO_CLIENT_SECRET": CLIENT_SECRET,
    "ZOHO_REFRESH_TOKEN": REFRESH_TOKEN,
}


@pytest.fixture(autouse=True)
def no_config_file_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """from_env looks for ./syncwatch.toml; run every test in an empty directory."""
    monkeypatch.chdir(tmp_path)


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    return info.value.problems


def assert_no_secret(text: str) -> None:
    for secret in [*SECRETS, URL_PASSWORD]:
        assert secret not in text


# -- defaults and basics ---------------------------------------------------------------------


def test_minimal_env_gives_the_documented_defaults() -> None:
    settings = Settings.from_env(MINIMAL)
    assert settings.slack_bot_token == BOT_TOKEN
    assert settings.slack_signing_secret == SIGNING_SECRET
    assert settings.port == 3000
    assert settings.host == "0.0.0.0"
    assert settings.db_path == "./syncwatch.db"
    assert settings.watch_timeout == 86400
    assert settings.max_file_mb == 50
    assert settings.poll_interval is None
    assert settings.slack_api_url == "https://slack.com/api/"
    assert not settings.socket_mode
    assert dict(settings.zoho) == {}


def test_empty_env_is_valid_until_run() -> None:
    settings = Settings.from_env({})
    assert settings.slack_bot_token == ""
    assert settings.problems_for_run()


def test_values_are_read_and_trimmed() -> None:
    env = {
        **MINIMAL,
        "PORT": " 8080 ",
        "SYNCWATCH_HOST": "127.0.0.1",
        "SYNCWATCH_DB": "/data/sw.db",
        "SYNCWATCH_POLL_INTERVAL": "2.5",
        "SYNCWATCH_WATCH_TIMEOUT": "3600",
        "SYNCWATCH_MAX_FILE_MB": "0.5",
        "SLACK_APP_TOKEN": "xapp-1-A1-abc",
    }
    settings = Settings.from_env(env)
    assert (settings.port, settings.host, settings.db_path) == (8080, "127.0.0.1", "/data/sw.db")
    assert settings.poll_interval == 2.5
    assert settings.watch_timeout == 3600
    assert settings.max_file_mb == 0.5
    assert settings.socket_mode


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("http://127.0.0.1:9000/api", "http://127.0.0.1:9000/api/"),
        ("http://127.0.0.1:9000/api/", "http://127.0.0.1:9000/api/"),
        ("https://slack.example/", "https://slack.example/"),
    ],
)
def test_slack_api_url_gets_a_trailing_slash(given: str, used: str) -> None:
    assert Settings.from_env({**MINIMAL, "SLACK_API_URL": given}).slack_api_url == used


# -- numbers ---------------------------------------------------------------------------------

NUMERIC = ["PORT", "SYNCWATCH_POLL_INTERVAL", "SYNCWATCH_WATCH_TIMEOUT", "SYNCWATCH_MAX_FILE_MB"]


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("value", ["abc", "ten", "1,000", "nan", "inf", "-inf", "1e400"])
def test_numeric_setting_rejects_non_numbers(name: str, value: str) -> None:
    found = problems({**MINIMAL, name: value})
    assert len(found) == 1
    assert found[0].startswith(f"{name}=")
    assert "number" in found[0]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "-1"),
        ("PORT", "65536"),
        ("SYNCWATCH_POLL_INTERVAL", "0"),
        ("SYNCWATCH_POLL_INTERVAL", "0.5"),
        ("SYNCWATCH_WATCH_TIMEOUT", "0"),
        ("SYNCWATCH_WATCH_TIMEOUT", "-60"),
        ("SYNCWATCH_MAX_FILE_MB", "0"),
        ("SYNCWATCH_MAX_FILE_MB", "-5"),
    ],
)
def test_numeric_setting_rejects_out_of_range_values(name: str, value: str) -> None:
    found = problems({**MINIMAL, name: value})
    assert found == [found[0]]
    assert found[0].startswith(f"{name}={value}")
    assert "out of range" in found[0]


def test_port_must_be_a_whole_number() -> None:
    assert problems({"PORT": "80.5"}) == ["PORT='80.5' is not a whole number"]


# -- Zoho connection from env ----------------------------------------------------------------


@pytest.mark.parametrize("dc", sorted(ZOHO_DCS))
def test_each_zoho_data_centre_resolves_its_hosts(dc: str) -> None:
    conn = Settings.from_env({**ZOHO, "ZOHO_DC": dc.upper()}).zoho["default"]
    hosts = ZOHO_DCS[dc]
    assert conn.dc == dc
    assert conn.accounts_url == f"https://{hosts.accounts}"
    assert conn.analytics_api_url == f"https://{hosts.analytics}"
    assert conn.crm_api_url == f"https://{hosts.crm}"
    assert conn.overridden == frozenset()


def test_documented_data_centres_are_all_known() -> None:
    assert set(ZOHO_DCS) == {"us", "eu", "in", "au", "jp", "cn", "ca", "sa"}


def test_zoho_defaults_to_the_us_data_centre() -> None:
    conn = Settings.from_env(ZOHO).zoho["default"]
    assert conn.dc == "us"
    assert conn.accounts_url == "https://accounts.zoho.com"
    assert (conn.client_id, conn.client_secret, conn.refresh_token) == (
        CLIENT_ID,
        CLIENT_SECRET,
        REFRESH_TOKEN,
    )


def test_unknown_zoho_data_centre_is_refused() -> None:
    found = problems({**ZOHO, "ZOHO_DC": "uk"})
    assert found == ["ZOHO_DC='uk' is not a Zoho data centre (us, eu, in, au, jp, cn, ca, sa)"]


def test_overrides_win_over_the_data_centre() -> None:
    env = {
        **ZOHO,
        "ZOHO_DC": "eu",
        "ZOHO_ACCOUNTS_URL": "http://127.0.0.1:8001/",
        "ZOHO_ANALYTICS_API_URL": "http://127.0.0.1:8002",
        "ZOHO_CRM_API_URL": "https://crm.zoho.test",
    }
    conn = Settings.from_env(env).zoho["default"]
    assert conn.accounts_url == "http://127.0.0.1:8001"
    assert conn.analytics_api_url == "http://127.0.0.1:8002"
    assert conn.crm_api_url == "https://crm.zoho.test"
    assert conn.overridden == {"accounts", "analytics", "crm"}
    assert conn.dc == "eu"


def test_one_override_leaves_the_other_hosts_to_the_data_centre() -> None:
    conn = Settings.from_env({**ZOHO, "ZOHO_DC": "in", "ZOHO_ACCOUNTS_URL": "http://a.test"}).zoho[
        "default"
    ]
    assert conn.accounts_url == "http://a.test"
    assert conn.analytics_api_url == "https://analyticsapi.zoho.in"
    assert conn.overridden == {"accounts"}


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://accounts.zoho.test/oauth/v2", "must be an origin only"),
        (f"https://user:{URL_PASSWORD}@accounts.zoho.test", "must not carry a user name"),
        (f"https://accounts.zoho.test?token={URL_PASSWORD}", "must not have a query string"),
        ("https://accounts.zoho.test#frag", "must not have a query string"),
        ("ftp://accounts.zoho.test", "is not an http(s) URL"),
        ("accounts.zoho.test", "is not an http(s) URL"),
        ("http://[::1", "is not a valid URL"),
        ("http://accounts.zoho.test:99999", "is not a valid URL"),
        ("http://accounts.zoho.test:port", "is not a valid URL"),
    ],
)
@pytest.mark.parametrize("var", ["ZOHO_ACCOUNTS_URL", "ZOHO_ANALYTICS_API_URL", "ZOHO_CRM_API_URL"])
def test_override_must_be_an_origin(var: str, url: str, why: str) -> None:
    found = problems({**ZOHO, var: url})
    assert len(found) == 1
    assert found[0].startswith(f"{var}=")
    assert why in found[0]
    assert URL_PASSWORD not in found[0]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"https://x:{URL_PASSWORD}@slack.test/api/", "must not carry a user name"),
        ("https://slack.test/api/?a=1", "must not have a query string"),
        ("file:///tmp/slack", "is not an http(s) URL"),
        ("http://[bad/api/", "is not a valid URL"),
    ],
)
def test_slack_api_url_must_be_a_plain_http_url(url: str, why: str) -> None:
    found = problems({**MINIMAL, "SLACK_API_URL": url})
    assert len(found) == 1 and found[0].startswith("SLACK_API_URL=")
    assert why in found[0]
    assert URL_PASSWORD not in found[0]


@pytest.mark.parametrize("missing", sorted(ZOHO))
def test_partial_zoho_credentials_name_the_missing_variable(missing: str) -> None:
    env = {k: v for k, v in ZOHO.items() if k != missing}
    found = problems(env)
    assert found == [f"{missing} is not set (needed for the Zoho connection 'default')"]


def test_org_id_must_be_digits() -> None:
    found = problems({**ZOHO, "ZOHO_ANALYTICS_ORG_ID": "acme"})
    assert found == ["ZOHO_ANALYTICS_ORG_ID must be digits (Zoho's organization id)"]


# -- TOML connections ------------------------------------------------------------------------


def write_toml(tmp_path: Path, text: str, name: str = "conf.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


EU_TEAM = f"""
[zoho.eu-team]
client_id = "1000.EUCLIENT"
client_secret = "{TOML_SECRET}"
refresh_token = "{TOML_REFRESH}"
dc = "eu"
analytics_org_id = "20001"
"""


def test_toml_adds_named_connections_beside_the_env_one(tmp_path: Path) -> None:
    path = write_toml(tmp_path, EU_TEAM)
    settings = Settings.from_env({**ZOHO, "SYNCWATCH_CONFIG": path})
    assert sorted(settings.zoho) == ["default", "eu-team"]
    conn = settings.zoho["eu-team"]
    assert conn.name == "eu-team"
    assert conn.dc == "eu"
    assert conn.analytics_org_id == "20001"
    assert conn.client_secret == TOML_SECRET
    assert conn.analytics_api_url == "https://analyticsapi.zoho.eu"
    assert settings.connections("zoho") is settings.zoho
    assert settings.connections("zuora") == {}


def test_syncwatch_toml_in_the_working_directory_is_read_by_default(tmp_path: Path) -> None:
    write_toml(tmp_path, EU_TEAM, name="syncwatch.toml")
    settings = Settings.from_env({})
    assert list(settings.zoho) == ["eu-team"]


def test_toml_default_connection_is_refused(tmp_path: Path) -> None:
    path = write_toml(tmp_path, EU_TEAM + '\n[zoho.default]\nclient_id = "x"\n')
    found = problems({"SYNCWATCH_CONFIG": path})
    assert found == ["[zoho.default] is reserved for the connection the environment describes"]


def test_toml_connection_with_missing_keys_names_them(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[zoho.apac]\nclient_id = "x"\ndc = "mars"\n')
    found = problems({"SYNCWATCH_CONFIG": path})
    assert f"client_secret in [zoho.apac] in {path} is not set" in found[0]
    assert any("refresh_token in [zoho.apac]" in p for p in found)
    assert any("'mars' is not a Zoho data centre" in p for p in found)


def test_toml_override_with_a_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    text = EU_TEAM + f'accounts_url = "https://u:{URL_PASSWORD}@accounts.zoho.test"\n'
    found = problems({"SYNCWATCH_CONFIG": write_toml(tmp_path, text)})
    assert len(found) == 1 and "must not carry a user name or password" in found[0]
    assert_no_secret(found[0])


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("zoho = 3\n", "[zoho] in the config file must be a table of named connections"),
        ("[zoho]\nteam = 3\n", "[zoho.team] must be a table"),
    ],
)
def test_toml_of_the_wrong_shape_is_reported(tmp_path: Path, text: str, says: str) -> None:
    assert problems({"SYNCWATCH_CONFIG": write_toml(tmp_path, text)}) == [says]


def test_bad_toml_is_reported_without_its_content(tmp_path: Path) -> None:
    path = write_toml(tmp_path, f'[zoho.x\nclient_secret = "{TOML_SECRET}"\n')
    found = problems({"SYNCWATCH_CONFIG": path})
    assert len(found) == 1
    assert found[0].startswith(f"{path} is not valid TOML")
    assert "line 1" in found[0]
    assert_no_secret(found[0])


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.toml")
    assert problems({"SYNCWATCH_CONFIG": path}) == [
        f"SYNCWATCH_CONFIG points at {path}, which does not exist"
    ]


# -- all problems at once, no secrets --------------------------------------------------------


def test_config_error_lists_every_problem_at_once(tmp_path: Path) -> None:
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "ZOHO_CLIENT_SECRET": CLIENT_SECRET,
        "ZOHO_DC": "uk",
        "PORT": "http",
        "SYNCWATCH_WATCH_TIMEOUT": "0",
        "SYNCWATCH_CONFIG": str(tmp_path / "missing.toml"),
    }
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    found = info.value.problems
    assert len(found) == 6
    for name in ("SYNCWATCH_CONFIG", "ZOHO_CLIENT_ID", "ZOHO_REFRESH_TOKEN", "ZOHO_DC", "PORT"):
        assert any(name in p for p in found), name
    assert any(p.startswith("SYNCWATCH_WATCH_TIMEOUT=0") for p in found)
    assert str(info.value) == "; ".join(found)
    assert_no_secret(str(info.value))


def test_repr_of_settings_and_connections_holds_no_secret(tmp_path: Path) -> None:
    env = {
        **MINIMAL,
        **ZOHO,
        "SLACK_APP_TOKEN": "xapp-1-FAKE97",
        "SYNCWATCH_CONFIG": write_toml(tmp_path, EU_TEAM),
    }
    settings = Settings.from_env(env)
    shown = repr(settings) + str(settings) + "".join(repr(c) for c in settings.zoho.values())
    shown += repr(dict(settings.zoho))
    assert_no_secret(shown)
    assert "appTOKENvalue" not in shown
    assert CLIENT_ID not in shown
    assert "eu-team" in shown


def test_secrets_lists_every_configured_secret(tmp_path: Path) -> None:
    env = {**MINIMAL, **ZOHO, "SYNCWATCH_CONFIG": write_toml(tmp_path, EU_TEAM)}
    found = Settings.from_env(env).secrets()
    for secret in SECRETS:
        assert secret in found


# -- what `run` needs ------------------------------------------------------------------------


def test_run_needs_a_bot_token() -> None:
    found = Settings.from_env({**ZOHO, "SLACK_SIGNING_SECRET": SIGNING_SECRET}).problems_for_run()
    assert found == ["SLACK_BOT_TOKEN is not set (the bot token, starts with xoxb-)"]


def test_run_needs_a_bot_token_not_a_user_token() -> None:
    env = {**ZOHO, "SLACK_BOT_TOKEN": "xoxp-123-user", "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    found = Settings.from_env(env).problems_for_run()
    assert found == ["SLACK_BOT_TOKEN does not look like a bot token (expected xoxb-…)"]
    assert "xoxp-123-user" not in found[0]


def test_http_mode_needs_the_signing_secret() -> None:
    found = Settings.from_env({**ZOHO, "SLACK_BOT_TOKEN": BOT_TOKEN}).problems_for_run()
    assert len(found) == 1 and found[0].startswith("SLACK_SIGNING_SECRET is not set")


def test_socket_mode_needs_no_signing_secret() -> None:
    env = {**ZOHO, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "xapp-1-A1-abc"}
    assert Settings.from_env(env).problems_for_run() == []


def test_app_token_must_look_like_one() -> None:
    env = {**ZOHO, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "xoxb-wrongk"}
    found = Settings.from_env(env).problems_for_run()
    assert found == ["SLACK_APP_TOKEN does not look like an app token (expected xapp-…)"]


def test_run_needs_a_vendor() -> None:
    found = Settings.from_env(MINIMAL).problems_for_run()
    assert len(found) == 1 and found[0].startswith("no vendor is configured")


def test_a_toml_connection_is_enough_of_a_vendor(tmp_path: Path) -> None:
    env = {**MINIMAL, "SYNCWATCH_CONFIG": write_toml(tmp_path, EU_TEAM)}
    assert Settings.from_env(env).problems_for_run() == []


# -- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("SLACK_", "ZOHO_", "SYNCWATCH_")) or name == "PORT":
            monkeypatch.delenv(name)
    return monkeypatch


def test_check_with_bad_config_exits_1_listing_problems_without_secrets(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    clean_env.setenv("ZOHO_CLIENT_SECRET", CLIENT_SECRET)
    clean_env.setenv("ZOHO_ACCOUNTS_URL", f"https://u:{URL_PASSWORD}@accounts.zoho.test")
    clean_env.setenv("PORT", "eighty")
    with pytest.raises(SystemExit) as info:
        cli.main(["check"])
    assert info.value.code == 1
    out, err = capsys.readouterr()
    assert "configuration problems" in err
    assert "ZOHO_CLIENT_ID is not set" in err
    assert "ZOHO_ACCOUNTS_URL=" in err
    assert "PORT='eighty' is not a whole number" in err
    assert_no_secret(out + err)


def test_check_without_slack_or_vendor_fails_offline(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check"]) == 1
    out, _ = capsys.readouterr()
    assert "FAIL       SLACK_BOT_TOKEN is not set" in out
    assert "FAIL       no vendor is configured" in out


def test_watches_on_an_empty_database_says_so(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["watches"]) == 0
    assert "no active or paused watches" in capsys.readouterr().out
    assert (tmp_path / "syncwatch.db").exists()
    assert cli.main(["watches", "--all"]) == 0
    assert capsys.readouterr().out.strip() == "no watches"


def log_record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("syncwatch", logging.INFO, __file__, 1, msg, args, None)


def test_redacting_filter_removes_configured_secrets() -> None:
    record = log_record("refresh with %s and %s failed", CLIENT_SECRET, REFRESH_TOKEN)
    assert cli.RedactingFilter([CLIENT_SECRET, REFRESH_TOKEN, ""]).filter(record) is True
    message = record.getMessage()
    assert message == "refresh with [redacted] and [redacted] failed"


@pytest.mark.parametrize(
    "token",
    [
        "xoxb-FAKE-99",
        "xoxp-1-2-3-abc",
        "xapp-1-FAKE99",
        "1000." + "a" * 32 + "." + "b" * 32,
    ],
)
def test_redacting_filter_removes_token_shapes_it_was_not_told_about(token: str) -> None:
    record = log_record("slack said %r", {"token": token})
    cli.RedactingFilter([]).filter(record)
    message = record.getMessage()
    assert token not in message
    assert token[:12] not in message
    assert "[redacted]" in message


def test_redacting_filter_leaves_clean_records_alone() -> None:
    record = log_record("watch %s polled in %.1fs", "w7k2", 0.5)
    cli.RedactingFilter([CLIENT_SECRET]).filter(record)
    assert record.args == ("w7k2", 0.5)
    assert record.getMessage() == "watch w7k2 polled in 0.5s"


def test_redacting_filter_cleans_tracebacks_too() -> None:
    import logging

    from bot.cli import RedactingFilter

    try:
        raise RuntimeError("refresh failed for test-refresh-secret-value")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    RedactingFilter(["test-refresh-secret-value"]).filter(record)
    assert "test-refresh-secret-value" not in (record.exc_text or "")
    assert "[redacted]" in record.exc_text


def test_the_readme_example_config_is_valid(tmp_path) -> None:
    """The TOML example in the README stays true."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("\n```", 1)[0]
    path = tmp_path / "syncwatch.toml"
    path.write_text(example)
    settings = Settings.from_env({"SYNCWATCH_CONFIG": str(path)})
    assert settings.admins == frozenset({"U0OPS"})
    assert set(settings.zoho) == {"eu-team"} and set(settings.zuora) == {"emea"}
    assert set(settings.micro) == {"research"}
    assert settings.may_sync("default", "U0ALICE", "C9") and not settings.may_sync(
        "default", "U0BOB", "C9"
    )


def test_json_log_lines_carry_the_watch_and_vendor() -> None:
    import json
    import logging

    from bot.cli import JsonFormatter

    record = logging.LogRecord(
        "bot.poller", logging.INFO, __file__, 1, "watch %s ok", ("w7k2",), None
    )
    record.watch_id, record.vendor = "w7k2", "zuora"
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "watch w7k2 ok" and line["watch_id"] == "w7k2"
    assert line["vendor"] == "zuora" and line["level"] == "INFO"
    assert Settings.from_env({"SYNCWATCH_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError):
        Settings.from_env({"SYNCWATCH_LOG_FORMAT": "xml"})


# -- schedule floor ----------------------------------------------------------------------------


def test_the_schedule_floor_defaults_to_an_hour_and_reads_whole_minutes() -> None:
    assert Settings.from_env(MINIMAL).min_schedule_minutes == 60
    env = {**MINIMAL, "SYNCWATCH_MIN_SCHEDULE_MINUTES": " 15 "}
    assert Settings.from_env(env).min_schedule_minutes == 15


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("abc", "is not a whole number"),
        ("1.5", "is not a whole number"),
        ("60m", "is not a whole number"),
        ("0", "out of range (must be between 1 and 10080)"),
        ("-30", "out of range"),
        ("10081", "out of range"),
    ],
)
def test_a_schedule_floor_that_is_not_a_positive_whole_number_is_refused(value, says) -> None:
    (problem,) = problems({**MINIMAL, "SYNCWATCH_MIN_SCHEDULE_MINUTES": value})
    assert problem.startswith("SYNCWATCH_MIN_SCHEDULE_MINUTES=") and says in problem


# -- replica lease -----------------------------------------------------------------------------


def test_the_replica_lease_defaults_to_30_seconds_and_may_be_set() -> None:
    assert Settings.from_env(MINIMAL).replica_lease_seconds == 30
    env = {**MINIMAL, "SYNCWATCH_REPLICA_LEASE_SECONDS": "12"}
    assert Settings.from_env(env).replica_lease_seconds == 12


@pytest.mark.parametrize(
    ("value", "says"),
    [("soon", "is not a number"), ("5", "out of range (must be between 6 and 600)"), ("601", "")],
)
def test_a_replica_lease_out_of_range_is_refused(value, says) -> None:
    (problem,) = problems({**MINIMAL, "SYNCWATCH_REPLICA_LEASE_SECONDS": value})
    assert problem.startswith("SYNCWATCH_REPLICA_LEASE_SECONDS=") and says in problem
