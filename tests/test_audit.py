"""The audit trail's store (on both engines), `syncwatch audit` (table, JSON lines, time
parsing and its errors, SQLite and PostgreSQL), and the App Home lines it feeds."""

from __future__ import annotations

import json
import time

import pytest

from bot import audit, blocks
from bot.cli import main
from storage import ActorKind, AuditEntry, Store, Via
from storage.maintenance import copy_database
from tests.test_store import draft

NOW = 1_767_225_600.0  # 2026-01-01 00:00 UTC
DAY = 86400.0


@pytest.fixture
def store(any_store: Store) -> Store:
    """Store tests here run on SQLite and on PostgreSQL (skipped without SYNCWATCH_TEST_PG)."""
    return any_store


def entry(action: str = "watch.stop", at: float = NOW, **kw) -> AuditEntry:
    values = {
        "action": action,
        "actor_kind": ActorKind.PERSON,
        "actor": "U1",
        "via": Via.SLASH,
        "at": at,
        "channel_id": "C1",
        "watch_id": "wabc",
        "detail": {"vendor": "zoho-analytics", "ref": "1/2"},
    }
    return AuditEntry(**(values | kw))


# -- store --------------------------------------------------------------------------------


def test_rows_come_back_newest_first_with_every_field(store):
    first = store.audit(entry("watch.create", NOW - 60, team_id="T1"))
    second = store.audit(entry("watch.stop", NOW))
    got = store.audit_entries()
    assert [e.id for e in got] == [second, first]
    assert got[1] == entry("watch.create", NOW - 60, team_id="T1", id=first)


def test_filters_by_time_actor_kind_and_watch_or_schedule(store):
    store.audit(entry("watch.create", NOW - 3 * DAY))
    store.audit(entry("watch.stop", NOW - DAY, actor="U2"))
    store.audit(
        entry("api.watch.delete", NOW - 60, actor="etl", actor_kind=ActorKind.TOKEN, via=Via.API)
    )
    store.audit(entry("schedule.stop", NOW, watch_id=None, schedule_id="s3xq"))

    def actions(**kw) -> list[str]:
        return [e.action for e in store.audit_entries(**kw)]

    assert actions(since=NOW - 2 * DAY) == ["schedule.stop", "api.watch.delete", "watch.stop"]
    assert actions(until=NOW - DAY) == ["watch.create"]  # until is exclusive
    assert actions(actor="U2") == ["watch.stop"]
    assert actions(actor="etl", actor_kind=ActorKind.PERSON) == []
    assert actions(watch_id="s3xq") == ["schedule.stop"]
    assert actions(watch_id="wabc", limit=2) == ["api.watch.delete", "watch.stop"]


def test_a_row_written_inside_audited_rolls_back_with_the_change(store):
    (watch,) = store.create_watches([draft()], NOW)
    with pytest.raises(RuntimeError), store.audited():
        store.stop_watch(watch.id, "U1", NOW)
        store.audit(entry(watch_id=watch.id))
        raise RuntimeError("the change failed after the stop")
    assert store.get_watch(watch.id).status == "active"
    assert store.audit_entries() == []
    with store.audited():
        store.stop_watch(watch.id, "U1", NOW)
        store.audit(entry(watch_id=watch.id))
    assert store.get_watch(watch.id).status == "stopped"
    assert [e.watch_id for e in store.audit_entries()] == [watch.id]


@pytest.mark.parametrize("name", ["secret", "client_password", "hook_key", "digest"])
def test_a_detail_that_could_hold_a_secret_is_refused(name):
    with pytest.raises(ValueError, match="secret"):
        entry(detail={name: "x"})


def test_a_huge_detail_is_clipped_to_its_keys(store):
    store.audit(entry(detail={"ref": "x" * 5000}))
    (got,) = store.audit_entries()
    assert got.detail == {"clipped": ["ref"]}


def test_copy_db_moves_the_audit_trail(tmp_path):
    source = Store(str(tmp_path / "a.db"))
    try:
        source.audit(entry())
    finally:
        source.close()
    copied = copy_database(str(tmp_path / "a.db"), str(tmp_path / "b.db"))
    assert copied["audit_log"] == 1
    dest = Store(str(tmp_path / "b.db"))
    try:
        assert [e.action for e in dest.audit_entries()] == ["watch.stop"]
        assert dest.audit(entry()) == 2  # new ids go on after the copied ones
    finally:
        dest.close()


# -- --since / --until ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2d", NOW - 2 * DAY),
        ("12h", NOW - 12 * 3600),
        ("30m", NOW - 1800),
        ("90s", NOW - 90),
        ("1w", NOW - 7 * DAY),
        ("2025-12-30", NOW - 2 * DAY),
        ("2025-12-31T12:00", NOW - DAY / 2),
        ("2025-12-31T12:00Z", NOW - DAY / 2),
        ("2026-01-01T01:00+01:00", NOW),
        ("2025-12-31 23:59:30", NOW - 30),
    ],
)
def test_times_are_read_as_spans_dates_or_iso_times(text, expected):
    assert audit.parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["2x", "yesterday", "2026-13-01", "-2d", "2026-01-01T25:00", ""])
def test_a_bad_time_says_which_forms_work(text):
    with pytest.raises(audit.BadTime) as err:
        audit.parse_when(text, NOW, "--until")
    assert f"--until {text!r} is not a time" in str(err.value) and "2d" in str(err.value)


# -- syncwatch audit ------------------------------------------------------------------------


@pytest.fixture
def trail(cli_env, tmp_path) -> float:
    """The operator's database with four rows, at real times (the command reads the clock)."""
    now = time.time()
    s = Store(cli_env["SYNCWATCH_DB"])
    try:
        fill(s, now)
    finally:
        s.close()
    return now


def fill(s: Store, now: float) -> None:
    s.audit(entry("watch.create", now - 3 * DAY, team_id="T1"))
    s.audit(
        entry(
            "token.create",
            now - 3600,
            watch_id=None,
            detail={"token": "nightly-etl", "channels": ["C1", "C2"]},
        )
    )
    s.audit(
        entry(
            "api.watch.delete",
            now - 60,
            actor="nightly-etl",
            actor_kind=ActorKind.TOKEN,
            via=Via.API,
            detail={"vendor": "zoho-analytics", "ref": "1/2\x1b[2J"},
        )
    )
    s.audit(entry("schedule.stop", now - 30, watch_id=None, schedule_id="s3xq", via=Via.BUTTON))


def test_the_table_shows_newest_first_with_times_in_utc(trail, capsys):
    assert main(["audit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "at",
        "(UTC)",
        "actor",
        "via",
        "action",
        "watch",
        "channel",
        "detail",
    ]
    assert [line.split()[4] for line in lines[1:]] == [
        "schedule.stop",
        "api.watch.delete",
        "token.create",
        "watch.create",
    ]
    api_line = lines[2]
    assert "token:nightly-etl" in api_line and " api " in api_line and "wabc" in api_line
    assert "\x1b" not in api_line and "ref=1/2\\x1b[2J" in api_line  # a terminal escape, inert
    assert "channels=C1,C2 token=nightly-etl" in lines[3]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(trail - 30))
    assert lines[1].startswith(stamp)


def test_json_lines_have_stable_keys(trail, capsys):
    assert main(["audit", "--json", "--since", "2h"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["action"] for r in rows] == ["schedule.stop", "api.watch.delete", "token.create"]
    assert all(list(r) == list(audit.JSON_KEYS) for r in rows)
    assert rows[0] | {"id": 0, "at": ""} == {
        "id": 0,
        "at": "",
        "actor_kind": "person",
        "actor": "U1",
        "action": "schedule.stop",
        "via": "button",
        "team": None,
        "channel": "C1",
        "watch": None,
        "schedule": "s3xq",
        "detail": {"vendor": "zoho-analytics", "ref": "1/2"},
    }
    assert rows[0]["at"].endswith("Z") and rows[1]["actor_kind"] == "token"


@pytest.mark.parametrize(
    "args, actions",
    [
        (["--actor", "nightly-etl"], ["api.watch.delete"]),
        (["--actor", "token:nightly-etl"], ["api.watch.delete"]),
        (["--watch", "s3xq"], ["schedule.stop"]),
        (["--since", "2d", "--until", "1h"], ["token.create"]),
        (["--limit", "1"], ["schedule.stop"]),
    ],
)
def test_filters(trail, capsys, args, actions):
    assert main(["audit", "--json", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["action"] for line in out] == actions


@pytest.mark.parametrize(
    "args, said",
    [
        (["--since", "2x"], "--since '2x' is not a time: use a span back from now (30m, 12h"),
        (["--until", "tomorrow"], "--until 'tomorrow' is not a time"),
        (["--since", "1h", "--until", "2d"], "--since"),
        (["--limit", "0"], "--limit must be 1 or more"),
    ],
)
def test_bad_options_are_refused_clearly(trail, capsys, args, said):
    assert main(["audit", *args]) == 2
    out = capsys.readouterr()
    assert said in out.err and out.out == ""


def test_nothing_matching_says_so(trail, capsys):
    assert main(["audit", "--actor", "U0NOBODY"]) == 0
    assert capsys.readouterr().out.strip() == "no audit entries match"


def test_a_missing_database_is_reported_not_created(cli_env, capsys, tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.db"
    monkeypatch.setenv("SYNCWATCH_DB", str(missing))
    assert main(["audit"]) == 1
    assert "no database at" in capsys.readouterr().err and not missing.exists()


def test_the_command_reads_postgresql_too(cli_env, pg_url, capsys, monkeypatch):
    monkeypatch.setenv("SYNCWATCH_DB", pg_url.target)
    s = Store(pg_url)
    try:
        fill(s, time.time())
    finally:
        s.close()
    assert main(["audit", "--json", "--actor", "nightly-etl"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["action"] == "api.watch.delete"


# -- App Home -------------------------------------------------------------------------------


def test_home_lines_say_what_was_done_where_with_a_link_to_the_message():
    actions = [
        entry("watch.stop", NOW, watch_id="w7k2"),
        entry("token.create", NOW - 60, watch_id=None, detail={"token": "etl<b>"}),
        entry("settings.change", NOW - 120, watch_id=None, detail={}),
        entry("report.export", NOW - 180, watch_id=None, detail={}),  # a newer version's
    ]
    link = "https://slack.com/archives/C1/p1700000000000100"
    view = blocks.render_home([], NOW, [], actions=actions, links={"w7k2": link})
    text = json.dumps(view["blocks"], ensure_ascii=False)
    assert "Your recent actions" in text
    assert (
        "Stopped watching *Zoho Analytics import* `1/2` (`w7k2`) in <#C1> · <" + link + "|message>"
    ) in text
    assert "Made the API token *etl&lt;b&gt;* in <#C1>" in text
    assert "Changed the notification settings in <#C1>" in text
    assert "`report.export` in <#C1>" in text  # an action without words: by its name
    assert "Your recent actions" not in json.dumps(blocks.render_home([], NOW)["blocks"])


# -- syncwatch token (an operator's changes) --------------------------------------------------


def test_an_operators_token_create_and_revoke_are_recorded_as_the_os_user(
    cli_env, capsys, monkeypatch
):
    monkeypatch.setenv("USER", "ops-anna")
    monkeypatch.setenv("LOGNAME", "ops-anna")
    assert main(["token", "create", "nightly-etl", "--channel", "C0OPS", "--channel", "C0ETL"]) == 0
    out = capsys.readouterr().out
    secret = next(line for line in out.splitlines() if line.startswith("swt_"))
    assert "token nightly-etl for C0OPS, C0ETL (shown once" in out
    assert "callback zuora: /hooks/zuora/swh_" in out
    assert main(["token", "create", "nightly-etl", "--channel", "C0OPS"]) == 1
    assert "already a token named 'nightly-etl'" in capsys.readouterr().err
    assert main(["token", "revoke", "nightly-etl"]) == 0
    assert "revoked nightly-etl" in capsys.readouterr().out
    assert main(["token", "revoke", "nightly-etl"]) == 1  # nothing left to revoke: no row
    assert "no token named" in capsys.readouterr().err

    assert main(["audit", "--actor", "operator:ops-anna"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[4] for line in table[1:]] == ["token.revoke", "token.create"]
    assert "operator:ops-anna  cli" in table[2]
    assert "channels=C0OPS,C0ETL token=nightly-etl" in table[2]
    assert secret not in "\n".join(table)


@pytest.mark.parametrize(
    "args, said",
    [
        (["create", "Bad Name", "--channel", "C1"], "can't be a token name"),
        (["create", "etl"], "create needs --channel"),
        (["create", "etl", "--channel", "#general"], "'#general' is not a channel id"),
        (["create", "etl", "--channel", "C0OPS", "--channel", "c0x"], "'c0x' is not a channel id"),
    ],
)
def test_an_operators_bad_token_command_changes_nothing(cli_env, capsys, args, said):
    assert main(["token", *args]) == 2
    assert said in capsys.readouterr().err
    s = Store(cli_env["SYNCWATCH_DB"])
    try:
        assert s.list_tokens() == [] and s.audit_entries() == []
    finally:
        s.close()


def test_a_new_watch_and_its_audit_row_commit_together(store):
    (made,) = store.create_watches(
        [draft()], NOW, audit=lambda w: entry("watch.create", watch_id=w.id)
    )
    (row,) = store.audit_entries()
    assert (row.action, row.watch_id) == ("watch.create", made.id)

    def refused(watch):  # the row can't be written: the watch must not stand without it
        raise RuntimeError("audit row refused")

    with pytest.raises(RuntimeError):
        store.create_watches([draft(ref="3/4")], NOW, audit=refused)
    assert [w.ref for w in store.list_watches(statuses=None)] == [made.ref]
    assert store.outbox_backlog(NOW)[0] == 1  # only the first watch's parent row
