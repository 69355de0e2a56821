"""`syncwatch check` and `syncwatch watches` as an operator runs them."""

from __future__ import annotations

import pytest

from bot.cli import main


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env


def test_check_passes_with_working_credentials(env, capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "ok         slack: bot syncwatch" in out
    assert "ok         zoho-analytics [default]: Zoho Analytics: 1 organization visible" in out
    assert "org 55522777 found" in out


def test_check_fails_clearly_on_a_rejected_secret_without_printing_it(env, capsys, monkeypatch):
    monkeypatch.setenv("ZOHO_CLIENT_SECRET", "wrong-secret-value")
    assert main(["check"]) == 1
    captured = capsys.readouterr()
    assert "FAIL       zoho-analytics [default]:" in captured.out
    assert "wrong-secret-value" not in captured.out + captured.err


def test_check_reports_a_wrong_org(env, capsys, monkeypatch):
    monkeypatch.setenv("ZOHO_ANALYTICS_ORG_ID", "999")
    main(["check"])
    assert "org 999 is NOT among them" in capsys.readouterr().out


def test_watches_lists_what_the_database_holds(env, capsys, tmp_path):
    from bot import grammar
    from bot.config import Settings
    from bot.service import Requester, Service
    from storage import Store

    store = Store(env["SYNCWATCH_DB"])
    service = Service(store, Settings.from_env(env), clock=lambda: 1_767_225_600.0)
    service.handle(grammar.parse("watch za 1/2"), Requester("U1", "C1"))
    store.close()
    assert main(["watches"]) == 0
    out = capsys.readouterr().out
    assert "active" in out and "zoho-analytics" in out and "1/2" in out and "C1" in out


def test_check_tries_the_app_token_in_socket_mode(env, capsys, monkeypatch, fake_slack):
    monkeypatch.setenv("SLACK_APP_TOKEN", fake_slack.app_token)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "ok         slack: bot syncwatch" in out
    assert "ok         slack: SLACK_APP_TOKEN opens a Socket Mode link" in out
    (opened,) = fake_slack.calls_for("apps.connections.open")
    assert opened.headers["authorization"] == f"Bearer {fake_slack.app_token}"


def test_check_fails_on_a_rejected_app_token_without_printing_it(
    env, capsys, monkeypatch, fake_slack
):
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-A0FAKE-1-revokedtoken")
    assert main(["check"]) == 1
    captured = capsys.readouterr()
    assert "FAIL       slack: Slack rejected SLACK_APP_TOKEN (invalid_auth)" in captured.out
    assert "ok         slack: bot syncwatch" in captured.out  # the bot token still works
    assert "revokedtoken" not in captured.out + captured.err


def test_check_names_a_rejected_bot_token(env, capsys, fake_slack):
    fake_slack.fail_next("auth.test", "token_revoked")
    assert main(["check"]) == 1
    assert (
        "FAIL       slack: Slack rejected SLACK_BOT_TOKEN (token_revoked)"
        in capsys.readouterr().out
    )


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_text("not a database\n" * 100), "the file is not a SQLite database"),
        (lambda p: None, None),  # missing: fine, `run` creates it (check creates nothing)
    ],
)
def test_check_reports_an_unusable_database_as_fail(env, capsys, tmp_path, make, reason):
    make(tmp_path / "syncwatch.db")
    assert main(["check"]) == (1 if reason else 0)
    out = capsys.readouterr().out
    if reason:
        assert f"FAIL       database: SQLite {env['SYNCWATCH_DB']}: {reason}" in out
    else:
        assert "FAIL" not in out
        assert not (tmp_path / "syncwatch.db").exists()


def test_check_reports_a_missing_directory_as_fail(env, capsys, monkeypatch, tmp_path):
    db = tmp_path / "gone" / "syncwatch.db"
    monkeypatch.setenv("SYNCWATCH_DB", str(db))
    assert main(["check"]) == 1
    assert (
        f"FAIL       database: SQLite {db}: its directory does not exist" in capsys.readouterr().out
    )


def test_check_shows_the_schedule_floor(env, capsys, monkeypatch):
    monkeypatch.setenv("SYNCWATCH_MIN_SCHEDULE_MINUTES", "90")
    assert main(["check"]) == 0
    assert "schedules  runs at least 90 minutes apart" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_bad_schedule_floor_stops_check_and_run_with_the_reason(
    env, capsys, monkeypatch, command
):
    monkeypatch.setenv("SYNCWATCH_MIN_SCHEDULE_MINUTES", "hourly")

    def no_bot(*args, **kwargs):  # had `run` got past the settings, it must not serve forever
        raise RuntimeError("started a bot")

    monkeypatch.setattr("bot.runtime.BotProcess", no_bot)
    with pytest.raises(SystemExit) as exited:
        main([command])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "SYNCWATCH_MIN_SCHEDULE_MINUTES='hourly' is not a whole number" in err
