"""A database that can't be used at start: `syncwatch run` stops with one line on stderr
and exit status 1 (docs/operations.md#the-database-goes-away). `syncwatch check` reports
the same as FAIL: tests/test_cli.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from storage import Store
from tests.conftest import bot_env
from tests.processes import clean_env, free_port

# Root ignores file permissions: run the bot without the capabilities that let it.
NO_OVERRIDE = "--drop=cap_dac_override,cap_dac_read_search,cap_fowner"


def run_cmd(tmp_path) -> list[str]:
    """`syncwatch run`, as a process that file permissions stop (root: via capsh)."""
    cmd = [sys.executable, "-m", "bot.cli", "run"]
    if os.geteuid() != 0:
        return cmd
    probe = tmp_path / "probe"
    probe.touch(mode=0o444)
    dropped = ["capsh", NO_OVERRIDE, "--", "-c"]
    if (
        shutil.which("capsh") is None
        or subprocess.run([*dropped, 'test ! -w "$0"', str(probe)], timeout=30).returncode
    ):
        pytest.skip("root, and capsh can't take its power over file permissions away")
    return [*dropped, 'exec "$0" "$@"', *cmd]


def run(db_path, tmp_path, fake_slack, zoho_sim, cmd=None) -> subprocess.CompletedProcess:
    environment = bot_env(tmp_path, fake_slack, zoho_sim) | {
        "SYNCWATCH_DB": str(db_path),
        "PORT": str(free_port()),
    }
    return subprocess.run(
        cmd or [sys.executable, "-m", "bot.cli", "run"],
        env=clean_env(environment),
        capture_output=True,
        timeout=30,  # a bot that started anyway would run until this kills it
    )


def one_line(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "Traceback" not in err
    (line,) = err.splitlines()
    return line


def test_run_stops_with_one_line_when_the_directory_is_missing(tmp_path, fake_slack, zoho_sim):
    db = tmp_path / "gone" / "syncwatch.db"
    line = one_line(run(db, tmp_path, fake_slack, zoho_sim))
    assert line == f"syncwatch: can't start: database {db}: its directory does not exist"
    assert not db.parent.exists()


def test_run_stops_with_one_line_when_the_file_is_not_sqlite(tmp_path, fake_slack, zoho_sim):
    db = tmp_path / "syncwatch.db"
    db.write_text("name,amount\nacme,12\n" * 100)
    line = one_line(run(db, tmp_path, fake_slack, zoho_sim))
    assert line == f"syncwatch: can't start: database {db}: the file is not a SQLite database"


def test_run_stops_with_one_line_when_the_file_is_read_only(tmp_path, fake_slack, zoho_sim):
    db = tmp_path / "syncwatch.db"
    Store(str(db)).close()  # migrated already: opening it writes nothing by itself
    os.chmod(db, 0o444)
    line = one_line(run(db, tmp_path, fake_slack, zoho_sim, run_cmd(tmp_path)))
    assert line == f"syncwatch: can't start: database {db}: the database file is read-only"


def test_run_stops_with_one_line_when_the_directory_is_read_only(tmp_path, fake_slack, zoho_sim):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    db = folder / "syncwatch.db"
    try:
        line = one_line(run(db, tmp_path, fake_slack, zoho_sim, run_cmd(tmp_path)))
    finally:
        os.chmod(folder, 0o755)
    assert line == f"syncwatch: can't start: database {db}: its directory is not writable"
    assert not db.exists()
