"""Use cases behind the slash command and buttons: create, list, stop and refresh watches.

No Slack or httpx types cross this module; it answers with `blocks.Message` values for the
person who asked, and leaves channel posts to the outbox.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot import blocks, grammar, lifecycle
from bot.config import Settings
from bot.poller import next_run, parse_schedule
from bot.vendors import JobSnapshot, VendorSpec, lookup
from bot.vendors.common import csv_bytes
from storage import (
    ACTIVE,
    PAUSED,
    DuplicateWatchError,
    NewWatch,
    Store,
    TransitionDraft,
    Watch,
)

log = logging.getLogger(__name__)

COMMAND = grammar.COMMAND
SYNC_VENDOR = "zoho-analytics-sync"


@dataclass(frozen=True)
class Requester:
    user_id: str
    channel_id: str
    team_id: str | None = None


class Service:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Callable[[], float],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.on_change = on_change  # wakes the notifier after a commit
        self.on_schedules_changed: Callable[[], None] = lambda: None  # reloads cron jobs
        self.policy = lifecycle.PollPolicy(settings.poll_interval, settings.watch_timeout)

    def handle(self, request: grammar.Request, who: Requester) -> blocks.Message:
        if isinstance(request, grammar.HelpRequest):
            return blocks.render_help(request.topic)
        if isinstance(request, grammar.WatchRequest):
            return self.create_watches(request, who)
        if isinstance(request, grammar.WatchLinksRequest):
            return self.create_from_links(request, who)
        if isinstance(request, grammar.ListRequest):
            return self.list_channel(who.channel_id)
        if isinstance(request, grammar.StopRequest):
            return self.stop(request.target_id, who)
        if isinstance(request, grammar.SyncRequest):
            return self.sync(request, who)
        raise TypeError(f"unhandled request {request!r}")

    def create_from_links(
        self, request: grammar.WatchLinksRequest, who: Requester
    ) -> blocks.Message:
        """Watches for pasted links, all or none (they may name several vendors)."""
        return self._create(request.jobs, request.connection, request.every, who)

    def create_watches(
        self, request: grammar.WatchRequest, who: Requester, *, trigger: bool = False
    ) -> blocks.Message:
        jobs = tuple((request.vendor, ref) for ref in request.refs)
        return self._create(jobs, request.connection, request.every, who, trigger=trigger)

    def _create(
        self,
        jobs: tuple[tuple[str, str], ...],
        connection: str,
        every: float | None,
        who: Requester,
        *,
        trigger: bool = False,
    ) -> blocks.Message:
        now = self.clock()
        drafts = []
        for vendor, ref in jobs:
            spec = lookup(vendor)
            if spec is None:  # grammar only yields known vendors; a guard, not a path
                raise ValueError(f"unknown vendor {vendor}")
            refusal = self._connection_problem(spec, connection)
            if refusal is not None:
                return refusal
            drafts.append(
                NewWatch(
                    vendor=spec.key,
                    ref=ref,
                    connection=connection,
                    channel_id=who.channel_id,
                    requester_id=who.user_id,
                    team_id=who.team_id,
                    interval_s=lifecycle.start_interval(spec, every, self.policy),
                    deadline=now + self.policy.watch_timeout,
                    trigger=trigger,
                )
            )
        over = self._quota_problem(len(drafts), who)
        if over is not None:
            return over
        try:
            created = self.store.create_watches(drafts, now)
        except DuplicateWatchError as dup:
            ref = self.store.parent_ref(dup.existing.id)
            return blocks.render_duplicate(dup.existing, ref.ts if ref else None)
        log.info(
            "watch created: %s",
            ", ".join(f"{w.id} {w.vendor} {w.ref} in {w.channel_id}" for w in created),
        )
        self.on_change()
        return blocks.render_created(created)

    def _quota_problem(self, adding: int, who: Requester) -> blocks.Message | None:
        in_channel = self.store.count_active(channel_id=who.channel_id)
        if in_channel + adding > self.settings.quota_per_channel:
            return blocks.render_notice(
                f":no_entry: This channel already has {in_channel} active watches; the limit is "
                f"{self.settings.quota_per_channel}. Nothing was started. Stop finished ones "
                f"with `{COMMAND} list`, or ask whoever runs syncwatch to raise `[quotas]`."
            )
        mine = self.store.count_active(requester_id=who.user_id)
        if mine + adding > self.settings.quota_per_user:
            return blocks.render_notice(
                f":no_entry: You already have {mine} active watches; the limit is "
                f"{self.settings.quota_per_user} per person. Nothing was started. Your watches "
                "are on my App Home tab, each with a Stop button."
            )
        return None

    def _connection_problem(self, spec: VendorSpec, connection: str) -> blocks.Message | None:
        connections = self.settings.connections(spec.family)
        if connection not in connections:
            if not connections:
                text = (
                    f":warning: {spec.label} isn't set up on this syncwatch, so nothing was "
                    "started. Ask whoever runs it to configure the credentials "
                    f"(see `syncwatch check`)."
                )
            else:
                names = ", ".join(f"`{n}`" for n in sorted(connections))
                text = (
                    f":warning: There's no {spec.family.title()} connection named "
                    f"`{blocks.esc(connection)}`. Configured: {names}. Nothing was started."
                )
            return blocks.render_notice(text)
        return None

    def sync(self, request: grammar.SyncRequest, who: Requester) -> blocks.Message:
        """Start a datasource sync: a watch whose first poll triggers it (no vendor call here:
        the listener must ack fast)."""
        spec = lookup(SYNC_VENDOR)
        if spec is None:
            return blocks.render_notice(
                ":construction: Datasource syncs aren't available in this version, so nothing "
                "was started."
            )
        ref = f"{request.workspace_id}/{request.datasource_id}"
        target = self.settings.syncs.get(ref)
        connection = request.connection
        if target is not None and request.connection == "default":
            connection = target.connection  # the operator tied this datasource to a connection
        if target is not None and connection != target.connection:
            return blocks.render_notice(
                f":warning: Datasource `{ref}` is set up for connection `{target.connection}`, "
                f"not `{blocks.esc(connection)}`. Nothing was started."
            )
        if not self.settings.may_sync(connection, who.user_id, who.channel_id):
            return blocks.render_notice(
                ":no_entry: You're not on the sync allowlist for this connection, so nothing "
                "was started. Ask whoever runs syncwatch to add you (or this channel)."
            )
        if request.at is not None:
            return self._schedule(spec.key, ref, connection, request, who)
        return self.create_watches(
            grammar.WatchRequest(spec.key, (ref,), connection), who, trigger=True
        )

    def _schedule(
        self, vendor: str, ref: str, connection: str, request: grammar.SyncRequest, who: Requester
    ) -> blocks.Message:
        try:
            cron, tz = parse_schedule(request.at or "", request.tz)
        except ValueError as err:
            return blocks.render_notice(
                f":warning: {blocks.esc(str(err))}. Nothing was scheduled. Example: "
                f"`{COMMAND} sync {ref} at 06:30 tz Europe/Berlin`."
            )
        now = self.clock()
        draft = NewWatch(
            vendor=vendor,
            ref=ref,
            connection=connection,
            channel_id=who.channel_id,
            requester_id=who.user_id,
            team_id=who.team_id,
            interval_s=0,
            deadline=0,
        )
        schedule = self.store.create_schedule(draft, cron, tz, next_run(cron, tz, now), now)
        log.info(
            "schedule %s created: %s %s (%s) in %s", schedule.id, ref, cron, tz, who.channel_id
        )
        self.on_schedules_changed()
        return blocks.render_notice(
            f":calendar: Scheduled `{ref}` as `{schedule.id}`: `{cron}` ({tz}). Next run "
            f"{blocks.slack_date(schedule.next_run_at or now)}. Each run gets its own message "
            f"here; stop with `{COMMAND} stop {schedule.id}`."
        )

    def retry_sync(self, watch_id: str, who: Requester) -> blocks.Message | None:
        """The "Retry sync" button: run the same sync again in the same message and thread."""
        watch = self._watch_here(watch_id, who)
        spec = lookup(watch.vendor) if watch else None
        if watch is None or spec is None or spec.kind != "sync":
            return blocks.render_notice(f"There's no sync `{blocks.esc(watch_id)}` here.")
        if not self._may_manage(watch.requester_id, watch.connection, who):
            return _refusal("run this sync again")
        now = self.clock()
        if self.store.restart_sync(watch.id, who.user_id, now, now + self.policy.watch_timeout):
            self.on_change()
            return None
        return blocks.render_notice(
            f"Sync `{watch.id}` can't be retried now: it is already running again, or another "
            "sync of that datasource is running in this channel."
        )

    def show_errors(self, watch_id: str, who: Requester) -> blocks.Message | None:
        """The "Show errors" button: the vendor's full error text in the thread, once."""
        watch = self._watch_here(watch_id, who)
        if watch is None:
            return blocks.render_notice(f"There's no watch `{blocks.esc(watch_id)}` here.")
        snap = JobSnapshot.from_json(watch.snapshot)
        if snap is None or not snap.error_message:
            return blocks.render_notice(f"Watch `{watch.id}` has no errors to show.")
        text = snap.error_message
        uploads: list[dict[str, object]] = []
        if len(text) > blocks.ERRORS_INLINE_LIMIT:
            uploads.append(_errors_csv(watch.id, text))
        draft = TransitionDraft(
            event="errors",
            actor=who.user_id,
            error_code=snap.error_code,
            error_message=text if not uploads else None,
            note=f"{len(text.splitlines()) or 1} lines" if uploads else None,
        )
        if not self.store.add_to_thread_once(watch.id, draft, uploads, self.clock()):
            return blocks.render_notice("The full error list is already in the thread.")
        self.on_change()
        return None

    def list_channel(self, channel_id: str) -> blocks.Message:
        # Only what the answer shows, and a count for the rest: `list` is answered in the
        # ack, and a busy channel may hold hundreds of watches.
        total = self.store.count_active(channel_id=channel_id)
        watches = self.store.list_watches(
            channel_id=channel_id, statuses=(ACTIVE,), limit=blocks.LIST_WATCHES
        )
        schedules = self.store.list_schedules(channel_id=channel_id)
        return blocks.render_list(watches, self.clock(), schedules, total=total)

    def stop(self, watch_id: str, who: Requester) -> blocks.Message:
        """Stop a watch (or a schedule) from the command or a button: the requester, people
        on the connection's allowlist, or admins (docs/architecture.md#permissions)."""
        if watch_id.startswith("s"):
            return self._stop_schedule(watch_id, who)
        watch = self._watch_here(watch_id, who)
        if watch is None:
            return blocks.render_notice(
                f":warning: There's no watch `{blocks.esc(watch_id)}` here. "
                f"`{COMMAND} list` shows the ones that are running in this channel."
            )
        if watch.status not in (ACTIVE, PAUSED):
            return blocks.render_notice(
                f"Watch `{watch.id}` is already {watch.status}; nothing to stop."
            )
        if not self._may_manage(watch.requester_id, watch.connection, who):
            return _refusal("stop this watch")
        stopped = self.store.stop_watch(watch.id, who.user_id, self.clock())
        if stopped is None:
            return blocks.render_notice(f"Watch `{watch.id}` had already ended.")
        log.info("watch %s stopped by %s", watch.id, who.user_id)
        self.on_change()
        return blocks.render_notice(
            f":octagonal_sign: Stopped watching {blocks.job_title(watch)} (`{watch.id}`). "
            "The job itself keeps running at the vendor."
        )

    def _watch_here(self, watch_id: str, who: Requester) -> Watch | None:
        """The watch, if `who` may see it from where they clicked: its own channel, or the
        requester's App Home (no channel)."""
        watch = self.store.get_watch(watch_id)
        if watch is None:
            return None
        if who.channel_id:
            return watch if watch.channel_id == who.channel_id else None
        return (
            watch
            if watch.requester_id == who.user_id or who.user_id in self.settings.admins
            else None
        )

    def _may_manage(self, owner: str, connection: str, who: Requester) -> bool:
        if who.user_id == owner or who.user_id in self.settings.admins:
            return True
        allow = self.settings.sync_allow.get(connection)
        return allow is not None and allow.admits(who.user_id, who.channel_id or None)

    def watches_for_user(self, user_id: str) -> list[Watch]:
        return self.store.list_watches(requester_id=user_id, statuses=None, limit=60)

    def home_view(self, user_id: str) -> dict[str, Any]:
        """The App Home tab: the user's watches and schedules, then recent outcomes."""
        schedules = self.store.list_schedules(requester_id=user_id)
        return blocks.render_home(self.watches_for_user(user_id), self.clock(), schedules)

    def _stop_schedule(self, schedule_id: str, who: Requester) -> blocks.Message:
        schedule = self.store.get_schedule(schedule_id)
        visible = schedule is not None and (
            schedule.channel_id == who.channel_id
            or (not who.channel_id and schedule.requester_id == who.user_id)
        )
        if schedule is None or not visible:
            return blocks.render_notice(
                f":warning: There's no schedule `{blocks.esc(schedule_id)}` here. "
                f"`{COMMAND} list` shows the ones in this channel."
            )
        if not self._may_manage(schedule.requester_id, schedule.connection, who):
            return _refusal("stop this schedule")
        if self.store.stop_schedule(schedule.id, who.user_id, self.clock()) is None:
            return blocks.render_notice(f"Schedule `{schedule.id}` is already stopped.")
        log.info("schedule %s stopped by %s", schedule.id, who.user_id)
        self.on_schedules_changed()
        return blocks.render_notice(
            f":octagonal_sign: Stopped schedule `{schedule.id}` (`{schedule.ref}`, "
            f"`{schedule.cron}` {schedule.tz}). A sync already running is not touched."
        )

    def refresh(self, watch_id: str, who: Requester) -> blocks.Message | None:
        """Poll at the next tick (the vendor's rate limit still applies)."""
        watch = self._watch_here(watch_id, who)
        if watch is None:
            return blocks.render_notice(f"There's no watch `{blocks.esc(watch_id)}` here.")
        if watch.status != ACTIVE:
            return blocks.render_notice(f"Watch `{watch.id}` has ended ({watch.status}).")
        self.store.poll_soon(watch.id, self.clock())
        return None


def _refusal(what: str) -> blocks.Message:
    return blocks.render_notice(
        f":no_entry: Only the person who started it, people on this connection's allowlist or "
        f"syncwatch admins can {what}. `{COMMAND} help permissions` explains who is allowed."
    )


def _errors_csv(watch_id: str, text: str) -> dict[str, object]:
    """A long error list goes into the thread as a CSV (one line per row) instead."""
    # csv_bytes neutralizes spreadsheet formulas: vendor text must not run when opened.
    content = csv_bytes([("line", "error"), *enumerate(text.splitlines(), 1)])
    return {
        "filename": f"errors-{watch_id}.csv",
        "title": f"Errors for watch {watch_id}",
        "comment": "The vendor's full error list",
        "content_b64": base64.b64encode(content).decode("ascii"),
    }
