"""Choosing a database (SYNCWATCH_DB), refusing a bad one clearly, and moving data between
SQLite and PostgreSQL (`syncwatch migrate`, `syncwatch copy-db`, `syncwatch check`)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, Settings
from storage import Event, NewWatch, PollResult, Store, TransitionDraft
from storage.engine import DatabaseURL, DatabaseURLError, database_password, parse_database_url
from storage.maintenance import CopyError, copy_database, inspect
from storage.migrations import SchemaTooNewError
from storage.postgres import DatabaseUnavailableError

NOW = 1_767_225_600.0


@pytest.mark.parametrize(
    ("value", "dialect", "target"),
    [
        ("", "sqlite", "./syncwatch.db"),
        ("data/sw.db", "sqlite", "data/sw.db"),
        ("sqlite:///relative.db", "sqlite", "relative.db"),
        ("sqlite:////srv/sw.db", "sqlite", "/srv/sw.db"),
        ("postgresql://sw@db:5432/sw", "postgresql", "postgresql://sw@db:5432/sw"),
        ("postgres://sw@db/sw", "postgresql", "postgres://sw@db/sw"),
    ],
)
def test_syncwatch_db_names_a_file_or_a_postgresql_database(value, dialect, target):
    url = parse_database_url(value)
    assert (url.dialect, url.target) == (dialect, target)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("postgresql://u:hunter2secret@h:port/db", "malformed PostgreSQL URL"),
        ("postgresql://u:hunter2secret@[::1/db", "malformed PostgreSQL URL"),
        ("sqlite:///", "needs a file path"),
    ],
)
def test_a_malformed_database_url_is_refused_without_quoting_its_password(value, says):
    with pytest.raises(DatabaseURLError) as caught:
        parse_database_url(value)
    assert says in str(caught.value)
    assert "hunter2secret" not in str(caught.value)
    with pytest.raises(ConfigError) as config_error:
        Settings.from_env({"SYNCWATCH_DB": value, "MICRO_API_KEY": "k" * 20})
    assert says in str(config_error.value) and "hunter2secret" not in str(config_error.value)


def test_the_database_password_is_a_secret_and_never_shown():
    settings = Settings.from_env(
        {"SYNCWATCH_DB": "postgresql://sw:s3cr%40t-pass@db/sw", "MICRO_API_KEY": "k" * 20}
    )
    assert "s3cr@t-pass" in settings.secrets()  # redacted from logs like any secret
    assert "s3cr" not in repr(settings) and "s3cr" not in str(settings.database)
    assert str(settings.database) == "postgresql://sw@db/sw"
    assert database_password("postgresql://sw@db/sw?password=in-query-pass") == "in-query-pass"


def test_an_unreachable_postgresql_server_is_one_clear_error():
    with pytest.raises(DatabaseUnavailableError) as caught:
        Store("postgresql://postgres:pw-not-shown@127.0.0.1:1/test?connect_timeout=2")
    message = str(caught.value)
    assert message.startswith("can't connect to PostgreSQL at postgresql://postgres@127.0.0.1:1/")
    assert message.endswith("Connection refused") and "pw-not-shown" not in message


def test_a_database_migrated_by_a_newer_version_is_refused(tmp_path):
    path = str(tmp_path / "newer.db")
    Store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('syncwatch', 'm999_from_the_future', '2027-01-01')"
        )
    conn.close()
    with pytest.raises(SchemaTooNewError, match="m999_from_the_future"):
        Store(path)
    report = inspect(parse_database_url(path))
    assert not report.ok and "newer syncwatch" in report.detail


def test_a_postgresql_database_migrated_by_a_newer_version_is_refused(pg_url):
    Store(pg_url).close()
    import psycopg

    with psycopg.connect(pg_url.target, autocommit=True) as conn:
        conn.execute("INSERT INTO syncwatch_migrations VALUES ('m999_from_the_future', 0)")
    with pytest.raises(SchemaTooNewError, match="m999_from_the_future"):
        Store(pg_url)


def test_two_replicas_migrating_at_once_apply_each_migration_once(pg_url):
    import threading

    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            Store(pg_url).close()
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=open_store) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    store = Store(pg_url)
    try:
        names = [r["name"] for r in store.engine.query("SELECT name FROM syncwatch_migrations")]
    finally:
        store.close()
    assert len(names) == len(set(names)) and "m001_initial" in names


def _fill(store: Store) -> dict[str, object]:
    drafts = [
        NewWatch(
            vendor="zoho-analytics",
            ref=f"1/{i}",
            connection="default",
            channel_id="C1",
            requester_id="U1",
            interval_s=10.0,
            deadline=NOW + 86400,
        )
        for i in range(3)
    ]
    watches = store.create_watches(drafts, NOW)
    store.claim_due(NOW, "p1", 60, 10)
    result = PollResult(
        {"state": "running", "raw_status": "IN PROGRESS", "next_poll_at": NOW + 10},
        TransitionDraft(event=Event.STATE, from_state=None, to_state="running"),
        update_parent=True,
    )
    store.apply_poll(watches[0].id, "p1", result, NOW + 1)
    store.parent_posted(watches[0].id, "C1", "1600000000.000100", 1, NOW + 2)
    store.spend_budget("micro:abc", "2026-12", 7)
    schedule = store.create_schedule(drafts[0], "0 6 * * *", "UTC", NOW + 3600, NOW)
    return {"watches": [w.id for w in watches], "schedule": schedule.id}


def _contents(store: Store, made: dict[str, object]) -> dict[str, object]:
    ids = made["watches"]
    assert isinstance(ids, list)
    return {
        "watches": [store.get_watch(i) for i in ids],
        "transitions": [store.transitions(i) for i in ids],
        "outbox": [store.outbox_rows(i) for i in ids],
        "parent": store.parent_ref(ids[0]),
        "budget": store.budget_used("micro:abc", "2026-12"),
        "schedules": store.list_schedules(),
    }


def test_copy_db_moves_everything_from_sqlite_into_postgresql(tmp_path, pg_url):
    source_path = str(tmp_path / "old.db")
    source = Store(source_path)
    made = _fill(source)
    before = _contents(source, made)
    source.close()

    copied = copy_database(source_path, pg_url)
    assert copied["watches"] == 3 and copied["outbox"] >= 5 and copied["schedules"] == 1

    moved = Store(pg_url)
    try:
        assert _contents(moved, made) == before
        # new rows are numbered after the copied ones, not over them
        moved.stop_watch(made["watches"][1], "U2", NOW + 5)  # type: ignore[index]
        newest = moved.outbox_rows(made["watches"][1])[-1]  # type: ignore[index]
        assert newest.id > max(r.id for rows in before["outbox"] for r in rows)  # type: ignore[union-attr]
    finally:
        moved.close()


def test_copy_db_refuses_a_destination_that_holds_data_and_copies_nothing(tmp_path):
    first, second = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    for path in (first, second):
        store = Store(path)
        _fill(store)
        store.close()
    with pytest.raises(CopyError, match="already holds 3 row"):
        copy_database(first, second)
    assert main(["copy-db", first, second]) == 1


def test_copy_db_command_reports_each_table(tmp_path, capsys):
    source, dest = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    store = Store(source)
    _fill(store)
    store.close()
    assert main(["copy-db", source, f"sqlite:///{dest}"]) == 0
    out = capsys.readouterr().out
    assert "watches" in out and "3 rows" in out and "done:" in out
    copied = Store(dest)
    try:
        assert len(copied.list_watches(statuses=None)) == 3
    finally:
        copied.close()
    assert main(["copy-db", str(tmp_path / "missing.db"), dest]) == 2
    assert "doesn't exist" in capsys.readouterr().err


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env


def test_check_reports_the_database_and_its_schema(env, capsys, monkeypatch, tmp_path):
    assert main(["check"]) == 0
    assert "database: SQLite" in capsys.readouterr().out
    Store(env["SYNCWATCH_DB"]).close()
    main(["check"])
    assert "schema up to date" in capsys.readouterr().out
    monkeypatch.setenv("SYNCWATCH_DB", "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL       database: PostgreSQL postgresql://postgres@127.0.0.1:1/test" in out


def test_migrate_brings_a_postgresql_database_up_to_date(env, capsys, monkeypatch, pg_url):
    monkeypatch.setenv("SYNCWATCH_DB", "postgresql://placeholder")  # replaced below
    monkeypatch.setattr(Settings, "database", property(lambda self: pg_url))
    assert main(["migrate"]) == 0
    assert "schema up to date" in capsys.readouterr().out


def test_run_with_an_unreachable_database_stops_with_one_clear_line(env, tmp_path):
    run_env = {
        **env,
        "SYNCWATCH_DB": "postgresql://postgres:pw-xyz@127.0.0.1:1/test?connect_timeout=2",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        env={**run_env, "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[1],  # this checkout's code, whatever is installed
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "can't connect to PostgreSQL at postgresql://postgres@127.0.0.1:1/test" in lines[0]
    assert "Traceback" not in done.stderr and "pw-xyz" not in done.stderr + done.stdout


def test_database_url_is_passed_through_unchanged_for_sqlite_paths(tmp_path):
    path = tmp_path / "x.db"
    store = Store(DatabaseURL("sqlite", str(path)))
    store.close()
    assert path.exists()


def test_a_lost_postgresql_connection_is_unavailable_then_recovers(pg_url):
    import psycopg

    from storage import DatabaseUnavailable

    store = Store(pg_url, pool_size=1)  # one connection: the one cut below
    # Another process on the same server (another test run, a benchmark, a replica): only
    # this store's connection may be cut, never every syncwatch session on the server.
    bystander = Store(pg_url)
    try:
        store.create_watches(
            [NewWatch("zoho-analytics", "1/1", "default", "C1", "U1", 10.0, NOW + 86400)], NOW
        )
        assert store.problem() is None
        assert bystander.problem() is None
        (pid,) = store.engine.row("SELECT pg_backend_pid()")
        with psycopg.connect(pg_url.target, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(DatabaseUnavailable, match="PostgreSQL can't be reached"):
            store.list_watches()
        store.engine._checked = float("-inf")  # look again now, not in a second
        assert store.problem() is None  # the pool opened a fresh connection
        assert [w.ref for w in store.list_watches()] == ["1/1"]  # nothing was lost
        assert [w.ref for w in bystander.list_watches()] == ["1/1"]  # its link was left alone
    finally:
        bystander.close()
        store.close()


def test_budget_writes_alone_commit_without_waiting_for_the_disk(pg_url):
    """Every poll of every replica writes its account's budget row; waiting for the disk
    on each held that row's lock ~0.3 ms, which capped one account's polls, all replicas
    together. Only those writes skip the wait: a poll's outcome still waits for it."""
    store = Store(pg_url, pool_size=1)  # one connection: what it says is what they ran with
    try:
        with store.engine.transaction():
            assert store.rate_take("vendor:zoho/acct", 0.01, 0.09, NOW) == 0.0
            assert store.engine.row("SHOW synchronous_commit") == ("off",)
        store.rate_reserve("slack-post:C1", 1.0, NOW)  # the row's first write: an insert
        with store.engine.transaction():
            store.rate_reserve("slack-post:C1", 1.0, NOW)
            assert store.engine.row("SHOW synchronous_commit") == ("off",)
        with store.engine.transaction():  # the next transaction on that connection
            store.create_watches(
                [NewWatch("zoho-analytics", "1/1", "default", "C1", "U1", 10.0, NOW + 86400)],
                NOW,
            )
            assert store.engine.row("SHOW synchronous_commit") == ("on",)
    finally:
        store.close()


def test_a_database_the_server_refuses_is_one_clear_error():
    """What the server says (here: no such database; a wrong password reads alike)."""
    from urllib.parse import urlsplit

    from tests.conftest import PG_SKIP, TEST_PG

    if not TEST_PG:
        pytest.skip(PG_SKIP)
    server = urlsplit(TEST_PG)
    dsn = f"postgresql://{server.username}:pw-not-shown@{server.hostname}:{server.port or 5432}"
    with pytest.raises(DatabaseUnavailableError) as caught:
        Store(f"{dsn}/no_such_db_here")
    message = str(caught.value)
    assert message.endswith(': database "no_such_db_here" does not exist'), message
    assert message.startswith("can't connect to PostgreSQL at ") and "pw-not-shown" not in message


@pytest.mark.parametrize("value", ["1", "201", "lots"])
def test_a_pool_size_out_of_range_is_refused(value):
    with pytest.raises(ConfigError, match="SYNCWATCH_DB_POOL_SIZE"):
        Settings.from_env({"SYNCWATCH_DB_POOL_SIZE": value, "MICRO_API_KEY": "k" * 20})
    assert Settings.from_env({"MICRO_API_KEY": "k" * 20}).db_pool_size == 20
