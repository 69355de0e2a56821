"""Numbered schema migrations, applied at start; an applied migration is never edited."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("syncwatch")


@migrations()
def m001_initial(db: Database) -> None:
    db["watches"].create(
        {
            "id": str,
            "vendor": str,
            "ref": str,
            "connection": str,
            "team_id": str,
            "channel_id": str,
            "requester_id": str,
            "status": str,  # active | done | stopped | paused
            "state": str,  # normalized job state; NULL before the first good poll
            "raw_status": str,
            "snapshot": str,  # last JobSnapshot as JSON (vendor data only, never secrets)
            "interval_s": float,  # starting poll interval for this watch
            "created_at": float,
            "updated_at": float,
            "next_poll_at": float,
            "lease_until": float,
            "lease_owner": str,
            "attempts": int,  # consecutive failed polls
            "polls": int,  # successful polls
            "last_error": str,
            "deadline": float,
            "finished_at": float,
            "stopped_by": str,
            "pause_reason": str,
        },
        pk="id",
        not_null={"vendor", "ref", "connection", "channel_id", "requester_id", "status"},
        defaults={"attempts": 0, "polls": 0},
    )
    db["watches"].create_index(["status", "next_poll_at"])
    db["watches"].create_index(["channel_id", "status"])
    db["watches"].create_index(["requester_id", "status"])
    # A second active watch of the same job in the same channel is refused even under a race.
    db.execute(
        "CREATE UNIQUE INDEX idx_watches_active_job ON watches (vendor, ref, channel_id) "
        "WHERE status = 'active'"
    )
    db["transitions"].create(
        {
            "id": int,
            "watch_id": str,
            "at": float,
            "event": str,  # state | stopped | timeout | note
            "from_state": str,
            "to_state": str,
            "raw_status": str,
            "error_code": str,
            "error_message": str,
            "actor": str,
            "note": str,
        },
        pk="id",
        foreign_keys=[("watch_id", "watches", "id")],
    )
    db["transitions"].create_index(["watch_id", "id"])
    db["outbox"].create(
        {
            "id": int,
            "watch_id": str,
            "kind": str,  # parent | reply | upload
            "transition_id": int,
            "payload": str,  # JSON
            "status": str,  # pending | sent | dead
            "created_at": float,
            "next_attempt_at": float,
            "attempts": int,
            "sent_at": float,
            "slack_ref": str,  # ts of a reply, id of a file
            "last_error": str,
        },
        pk="id",
        foreign_keys=[("watch_id", "watches", "id")],
        defaults={"attempts": 0, "status": "pending"},
    )
    db["outbox"].create_index(["status", "next_attempt_at"])
    db["outbox"].create_index(["watch_id", "status"])
    db["slack_messages"].create(
        {"watch_id": str, "channel_id": str, "ts": str, "posted_at": float},
        pk="watch_id",
        foreign_keys=[("watch_id", "watches", "id")],
    )


@migrations()
def m002_parent_editable(db: Database) -> None:
    # Slack refuses edits to some messages for good (edit_window_closed): remember it so
    # later changes go to the thread only, instead of retrying chat.update every time.
    db["slack_messages"].add_column("editable", int, not_null_default=1)


@migrations()
def m003_outbox_upload_file_id(db: Database) -> None:
    # The Slack file id of an upload in progress, stored before the bytes go: after a crash
    # the thread is searched for it instead of uploading the file a second time.
    db["outbox"].add_column("upload_file_id", str)
    db["outbox"].add_column("upload_started_at", float)


@migrations()
def m004_request_budgets(db: Database) -> None:
    # Vendors with a monthly request allowance (Micro: 1,000 a month per key) need a tally
    # that survives restarts. `key` is a hash of the credential, never the credential.
    db["request_budgets"].create(
        {"key": str, "period": str, "used": int}, pk=("key", "period"), defaults={"used": 0}
    )


@migrations()
def m005_sync_watches(db: Database) -> None:
    # A sync watch starts by triggering the sync (and does again after "Retry sync").
    db["watches"].add_column("trigger_pending", int, not_null_default=0)


@migrations()
def m006_schedules(db: Database) -> None:
    db["schedules"].create(
        {
            "id": str,
            "vendor": str,
            "ref": str,
            "connection": str,
            "team_id": str,
            "channel_id": str,
            "requester_id": str,
            "cron": str,  # 5-field crontab, read in `tz`
            "tz": str,
            "status": str,  # active | stopped
            "next_run_at": float,  # updated in the transaction that records a run
            "last_run_at": float,
            "created_at": float,
            "stopped_by": str,
        },
        pk="id",
        not_null={"vendor", "ref", "connection", "channel_id", "requester_id", "cron", "status"},
    )
    db["schedules"].create_index(["channel_id", "status"])


@migrations()
def m007_outbox_in_flight(db: Database) -> None:
    # Set just before a message is sent: a row found with it after a crash or an ambiguous
    # failure is looked up in Slack (by its metadata) before it is sent again.
    db["outbox"].add_column("in_flight_at", float)


def apply(db: Database) -> None:
    migrations.apply(db)
