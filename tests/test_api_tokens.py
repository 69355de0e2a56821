"""API tokens: who may make and revoke them, that only hashes are kept, that the token
never reaches a log, tokens from the config file, the per-token rate, `syncwatch hook-url`."""

from __future__ import annotations

import hashlib
import json
import logging
import os

import pytest

from bot.api import credentials
from bot.cli import RedactingFilter, main
from bot.config import ConfigError, Settings
from tests.conftest import bot_env
from tests.test_api import REF, call, make_token


@pytest.fixture
def channels(fake_slack):
    fake_slack.set_channel("C1", creator="U1")
    fake_slack.set_channel("C0TWO", creator="U2")


def test_only_a_channels_creator_may_make_a_token_when_no_admins_are_set(
    channels, running, fake_slack
):
    bot, slack = running
    refused = slack.ask("token create etl", user="U2")  # U1 made C1
    assert "Only the person who created each of its channels" in refused
    assert "swt_" not in refused
    both = slack.ask("token create etl <#C0TWO|two>", user="U1")  # U2 made C0TWO
    assert "Only the person who created" in both
    assert bot.store.list_tokens() == []
    made = slack.ask("token create etl", user="U1")
    assert "`swt_" in made and "/hooks/zuora/swh_" in made
    assert [t.name for t in bot.store.list_tokens()] == ["etl"]
    assert "There is already a token named *etl*" in slack.ask("token create etl", user="U1")
    assert "Only the person" in slack.ask("token revoke etl", user="U2")
    assert "Revoked token *etl*" in slack.ask("token revoke etl", user="U1")


def test_with_admins_set_only_admins_may_make_or_revoke(
    channels, start_bot, fake_slack, zoho_sim, tmp_path
):
    config = tmp_path / "syncwatch.toml"
    config.write_text('admins = ["U0OPS"]\n')
    env = bot_env(tmp_path, fake_slack, zoho_sim) | {"SYNCWATCH_CONFIG": str(config)}
    bot, slack = start_bot(env)
    assert "Only syncwatch admins" in slack.ask("token create etl", user="U1")  # the creator
    assert "`swt_" in slack.ask("token create etl", user="U0OPS")
    assert "Only syncwatch admins" in slack.ask("token revoke etl", user="U1")
    listed = slack.ask("token list", user="U2")
    assert "*etl*" in listed and "<#C1>" in listed


def test_the_token_is_shown_once_and_kept_only_as_a_hash(
    channels, running, fake_slack, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)  # libraries' request dumps too
    bot, slack = running
    token = make_token(slack, fake_slack)
    key = credentials.hook_key(credentials.digest(token))
    answer = call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": REF})
    assert answer.status_code == 201
    stored = b"".join(
        (tmp_path / name).read_bytes()
        for name in os.listdir(tmp_path)
        if name.startswith("syncwatch.db") and (tmp_path / name).is_file()
    )
    assert token.encode() not in stored and key.encode() not in stored
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored
    shown = [c for c in fake_slack.calls if token in json.dumps(c.params)]
    assert [c.method for c in shown] == ["respond/cmd1"]  # privately, once
    assert shown[0].params["response_type"] == "ephemeral"
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot"))
    assert token not in ours and key not in ours
    # At DEBUG, Slack's SDK dumps the private answer's body: the process's redactor learnt
    # the token and key when they were made, so its log filter replaces them ...
    assert token in caplog.text
    logged = bot.redactor.redact(caplog.text)
    assert token not in logged and key not in logged
    # ... and any token- or key-shaped text is replaced by the filter's shapes anyway.
    line = RedactingFilter([]).redact(f"Authorization: Bearer {token} for /hooks/za/{key}")
    assert token not in line and key not in line


def test_a_pasted_token_is_refused_like_any_credential(channels, running, fake_slack):
    _, slack = running
    token = make_token(slack, fake_slack)
    assert "looks like it contains a password or token" in slack.ask(f"watch za {token}")


def test_tokens_from_the_config_file(start_bot, fake_slack, zoho_sim, tmp_path):
    token = credentials.new_token()
    config = tmp_path / "syncwatch.toml"
    config.write_text(
        f'[tokens.from-config]\nsha256 = "{credentials.digest(token)}"\nchannels = ["C0DATA"]\n'
    )
    env = bot_env(tmp_path, fake_slack, zoho_sim) | {"SYNCWATCH_CONFIG": str(config)}
    bot, slack = start_bot(env)
    answer = call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": REF})
    assert answer.status_code == 201 and answer.json()["channel"] == "C0DATA"
    wrong = call(
        slack,
        "POST",
        "/api/v1/watches",
        token,
        json={"vendor": "za", "ref": REF, "channel": "C0ELSE"},
    )
    assert wrong.status_code == 403
    assert "config file" in slack.ask("token revoke from-config", user="U1")


@pytest.mark.parametrize(
    "table, problem",
    [
        ('[tokens.x]\nsha256 = "abc"\nchannels = ["C0DATA"]\n', "sha256 must be"),
        (f'[tokens.x]\nsha256 = "{"a" * 64}"\nchannels = []\n', "at least one channel"),
        (f'[tokens."Bad Name"]\nsha256 = "{"a" * 64}"\nchannels = ["C0DATA"]\n', "token name"),
    ],
)
def test_a_bad_token_table_stops_the_start(tmp_path, table, problem):
    config = tmp_path / "syncwatch.toml"
    config.write_text(table)
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"SYNCWATCH_CONFIG": str(config)})
    assert any(problem in p for p in err.value.problems), err.value.problems


def test_each_token_has_its_own_rate(channels, start_bot, fake_slack, zoho_sim, tmp_path):
    env = bot_env(tmp_path, fake_slack, zoho_sim) | {"SYNCWATCH_API_RATE_PER_MINUTE": "4"}
    bot, slack = start_bot(env)
    token = make_token(slack, fake_slack)
    other = make_token(slack, fake_slack, "other")
    statuses = [call(slack, "GET", "/api/v1/watches/w234", token).status_code for _ in range(4)]
    assert statuses[:2] == [404, 404] and statuses[-1] == 429  # a burst of 2, then wait
    limited = call(slack, "GET", "/api/v1/watches/w234", token)
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 15
    assert call(slack, "GET", "/api/v1/watches/w234", other).status_code == 404


def test_hook_url_prints_the_callback_url(cli_env, monkeypatch, capsys, tmp_path):
    token = credentials.new_token()
    config = tmp_path / "syncwatch.toml"
    config.write_text(
        f'[tokens.etl]\nsha256 = "{credentials.digest(token)}"\nchannels = ["C0DATA"]\n'
    )
    monkeypatch.setenv("SYNCWATCH_CONFIG", str(config))
    assert main(["hook-url", "zuora", "etl"]) == 1
    assert "SYNCWATCH_PUBLIC_URL is not set" in capsys.readouterr().err
    monkeypatch.setenv("SYNCWATCH_PUBLIC_URL", "https://sw.example.com/")
    assert main(["hook-url", "aqua", "etl"]) == 0
    key = credentials.hook_key(credentials.digest(token))
    assert capsys.readouterr().out.strip() == (
        f"https://sw.example.com/hooks/zuora/{key}?job=${{JOBID}}&status=${{STATUS}}"
    )
    assert main(["hook-url", "zuora", "nobody"]) == 1
    assert "no token named 'nobody'" in capsys.readouterr().err


def test_help_and_app_home_explain_tokens_with_examples_to_copy(running, fake_slack):
    bot, slack = running
    text = slack.ask("help tokens")
    for needed in (
        "token create",
        "curl -X POST https://&lt;syncwatch&gt;/api/v1/watches",
        "Authorization: Bearer swt_",
        "notifyUrl",
        "callbackUrl",
        "callback.url",
        "whoever created each of the token's channels",
    ):
        assert needed in text, needed
    home = json.dumps(bot.service.home_view("U1"))
    assert "token create nightly-etl" in home and "curl -X POST" in home
    assert "&lt;job id&gt;" in home  # placeholders escaped, not Slack markup
