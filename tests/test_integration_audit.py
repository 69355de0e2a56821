"""The audit trail end to end, against the real bot over HTTP: a slash command, a button on
the channel's message, tokens made and revoked in Slack, the watch API and a vendor
callback each leave one row naming who acted; refusals leave none; the thread names who
stopped a watch; `syncwatch audit` and the App Home tab show it all."""

from __future__ import annotations

import json

from tests.test_api import REF, call, make_token
from tests.test_api_callbacks import hook, key_of
from tests.test_integration import parents, replies, wait_until
from tests.test_integration_buttons import RUNNING, post_event

WS, JOB = "2480011000000498001", "2480011000000512007"


def trail(store) -> list[tuple[str, str, str, str]]:
    """(action, actor_kind, actor, via), oldest first."""
    return [
        (e.action, e.actor_kind.value, e.actor, e.via.value)
        for e in reversed(store.audit_entries())
    ]


def test_slash_and_button_rows_and_app_home_shows_them(running, fake_slack, zoho_sim):
    bot, slack = running
    zoho_sim.add_import_job(WS, JOB, RUNNING)
    slack.slash(f"watch za {WS}/{JOB}", user="U1")
    wait_until(lambda: parents(fake_slack), what="the parent message")
    (w,) = bot.store.list_watches()
    (parent,) = parents(fake_slack)
    slack.click("watch.stop", w.id, parent.ts, user="U2", key="refused")
    refusal = fake_slack.wait_for("respond/refused")[0].params["text"]
    assert "Only the person who started it" in refusal
    slack.click("watch.stop", w.id, parent.ts, user="U1", key="stop")
    wait_until(lambda: bot.store.get_watch(w.id).status == "stopped", what="the stop")
    wait_until(
        lambda: any(
            "Stopped watching at <@U1>'s request" in (m.text or "") for m in replies(fake_slack)
        ),
        what="the thread naming who stopped it",
    )
    assert trail(bot.store) == [
        ("watch.create", "person", "U1", "slash"),
        ("watch.stop", "person", "U1", "button"),
    ]
    post_event(slack, {"type": "app_home_opened", "user": "U1", "tab": "home", "channel": "D1"})
    (published,) = fake_slack.wait_for("views.publish")
    view = published.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    home = "\n".join(b["text"]["text"] for b in view["blocks"] if b.get("type") == "section")
    recent = home.split("*Your recent actions*", 1)[1]
    stop_line, start_line = recent.strip().splitlines()[:2]
    link = f"https://slack.com/archives/C1/p{parent.ts.replace('.', '')}|message>"
    assert "Stopped watching *Zoho Analytics import*" in stop_line and link in stop_line
    assert f"(`{w.id}`) in <#C1>" in stop_line and "Started watching" in start_line


def test_tokens_the_api_and_callbacks_leave_rows_and_never_the_secret(
    start_bot, fake_slack, zoho_sim, tmp_path, cli_env, capsys
):
    fake_slack.set_channel("C1", creator="U1")
    bot, slack = start_bot()
    assert "Only the person who created" in slack.ask("token create etl", user="U2")
    token = make_token(slack, fake_slack, "etl", user="U1")
    zoho_sim.add_import_job(WS, JOB, RUNNING)

    created = call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": REF})
    assert created.status_code == 201
    again = call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": REF})
    assert again.status_code == 200  # the running watch: nothing new, no row
    bad = call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": "1/x"})
    assert bad.status_code == 400
    watch_id = created.json()["id"]
    assert call(slack, "DELETE", f"/api/v1/watches/{watch_id}", token).status_code == 200
    assert call(slack, "DELETE", f"/api/v1/watches/{watch_id}", token).status_code == 200
    wait_until(
        lambda: any("at *etl*'s request" in json.dumps(m.blocks) for m in replies(fake_slack)),
        what="the thread naming the token",
    )
    answer = hook(slack, "zoho-analytics", key_of(token), f"workspace={WS}", json={"jobId": "77"})
    assert answer.status_code == 202 and answer.json()["status"] == "watching"
    assert "Revoked token *etl*" in slack.ask("token revoke etl", user="U1")

    assert trail(bot.store) == [
        ("token.create", "person", "U1", "slash"),
        ("api.watch.create", "token", "etl", "api"),
        ("api.watch.delete", "token", "etl", "api"),
        ("callback.watch.create", "token", "etl", "callback"),
        ("token.revoke", "person", "U1", "slash"),
    ]
    # What an operator sees: the same rows, and nowhere the token or its callback key.
    assert cli_env["SYNCWATCH_DB"] == str(tmp_path / "syncwatch.db")  # the bot's database
    from bot.cli import main

    assert main(["audit", "--json"]) == 0
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in out.splitlines()]
    assert (rows[-1]["action"], rows[-1]["detail"]) == (
        "token.create",
        {"token": "etl", "channels": ["C1"]},
    )
    assert rows[1]["detail"] == {"vendor": "zoho-analytics", "ref": f"{WS}/77"}
    assert rows[2] | {"id": 0, "at": ""} == {
        "id": 0,
        "at": "",
        "actor_kind": "token",
        "actor": "etl",
        "action": "api.watch.delete",
        "via": "api",
        "team": None,
        "channel": "C1",
        "watch": watch_id,
        "schedule": None,
        "detail": {"vendor": "zoho-analytics", "ref": REF},
    }
    assert token not in out and key_of(token) not in out and "swt_" not in out


def test_a_token_an_operator_made_works_and_slack_says_who_made_it(
    start_bot, fake_slack, zoho_sim, cli_env, capsys, monkeypatch
):
    from bot.cli import main

    monkeypatch.setenv("USER", "ops-anna")
    monkeypatch.setenv("LOGNAME", "ops-anna")
    assert main(["token", "create", "etl", "--channel", "C0OPS"]) == 0
    token = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("swt_"))
    fake_slack.set_channel("C0OPS", creator="U1")
    bot, slack = start_bot()
    listed = slack.ask("token list", channel="C0OPS")
    assert "*etl*" in listed and "made at the command line by ops-anna" in listed
    zoho_sim.add_import_job(WS, JOB, RUNNING)
    created = call(slack, "POST", "/api/v1/watches", token, json={"vendor": "za", "ref": REF})
    assert created.status_code == 201, created.text
    assert trail(bot.store) == [
        ("token.create", "operator", "ops-anna", "cli"),
        ("api.watch.create", "token", "etl", "api"),
    ]
