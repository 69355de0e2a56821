"""Use cases behind the slash command and buttons: create, list, stop and refresh watches.

No Slack or httpx types cross this module; it answers with `blocks.Message` values for the
person who asked, and leaves channel posts to the outbox.
"""

from __future__ import annotations

import base64
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from bot import blocks, grammar, lifecycle, settings_form, texts
from bot.config import Settings
from bot.digests import DIGEST_HOUR
from bot.redaction import MIN_SECRET_CHARS
from bot.schedules import NeverFires, TooFrequent, first_run, parse_schedule
from bot.vendors import JobSnapshot, VendorSpec, lookup
from bot.vendors.common import csv_bytes
from storage import (
    ACTIVE,
    DEFAULT_CONNECTION,
    PAUSED,
    ActorKind,
    AlertPolicy,
    AuditEntry,
    DatabaseUnavailable,
    DuplicateWatchError,
    Event,
    NewWatch,
    Schedule,
    ScheduleStatus,
    Store,
    TransitionDraft,
    Via,
    Watch,
)

log = logging.getLogger(__name__)

COMMAND = grammar.COMMAND
SYNC_VENDOR = "zoho-analytics-sync"


P = ParamSpec("P")
R = TypeVar("R")


def saves(
    use_case: Callable[Concatenate[Service, P], R],
) -> Callable[Concatenate[Service, P], R | blocks.Message]:
    """For a use case that writes. While the database can't take writes (its file deleted,
    read-only, the disk full) the person is told so privately and nothing is written: a
    watch "started" into a deleted file would vanish at the next restart
    (docs/operations.md#the-database-goes-away)."""

    @functools.wraps(use_case)
    def guarded(self: Service, /, *args: P.args, **kwargs: P.kwargs) -> R | blocks.Message:
        reason = self.store.problem()
        if reason is None:
            try:
                return use_case(self, *args, **kwargs)
            except DatabaseUnavailable as err:  # went between the look and the write
                reason = err.reason
        log.warning("a change was refused: the database can't take writes (%s)", reason)
        return blocks.render_notice(texts.cant_save(reason))

    return guarded


@dataclass(frozen=True)
class Requester:
    user_id: str
    channel_id: str
    team_id: str | None = None
    via: Via = Via.SLASH  # how the request came: the audit trail records it

    def audit(
        self,
        action: str,
        at: float,
        *,
        watch: Watch | None = None,
        schedule_id: str | None = None,
        channel_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """The audit row for `action` done by this person (docs/operations.md#audit), in
        the channel of the watch (or `channel_id`), else where they typed or clicked."""
        facts = dict(detail or {})
        if watch is not None:
            facts = watch_facts(watch) | facts
            channel_id = watch.channel_id
        return AuditEntry(
            action=action,
            actor_kind=ActorKind.PERSON,
            actor=self.user_id,
            via=self.via,
            at=at,
            team_id=self.team_id,
            channel_id=channel_id or self.channel_id or None,
            watch_id=watch.id if watch is not None else None,
            schedule_id=schedule_id,
            detail=facts,
        )


def watch_facts(watch: Watch) -> dict[str, Any]:
    """What an audit row says about a watch: enough to read it without the watch."""
    facts: dict[str, Any] = {"vendor": watch.vendor, "ref": watch.ref}
    if watch.connection != DEFAULT_CONNECTION:
        facts["connection"] = watch.connection
    return facts


class Service:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Callable[[], float],
        on_change: Callable[[], None] = lambda: None,
        on_schedules_changed: Callable[[], None] = lambda: None,
        policy: lifecycle.PollPolicy | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.on_change = on_change  # wakes the notifier after a commit
        self.on_schedules_changed = on_schedules_changed  # reloads the schedules' cron jobs
        self.policy = policy or lifecycle.PollPolicy.from_settings(settings)
        # Configured credentials, refused wherever a command quotes one (short values would
        # match ordinary words, and no credential of ours is that short).
        self.known_secrets = tuple(s for s in settings.secrets() if len(s) >= MIN_SECRET_CHARS)

    def handle(self, request: grammar.Request, who: Requester) -> blocks.Message:
        if isinstance(request, grammar.HelpRequest):
            return blocks.render_help(
                request.topic,
                self.settings.min_schedule_minutes,
                settings_by_admins=bool(self.settings.admins),
            )
        if isinstance(request, grammar.WatchRequest):
            return self.create_watches(request, who)
        if isinstance(request, grammar.WatchLinksRequest):
            return self.create_from_links(request, who)
        if isinstance(request, grammar.ListRequest):
            try:
                return self.list_channel(who.channel_id)
            except DatabaseUnavailable as err:
                return blocks.render_notice(texts.cant_read(err.reason))
        if isinstance(request, grammar.StopRequest):
            return self.stop(request.target_id, who)
        if isinstance(request, grammar.SyncRequest):
            return self.sync(request, who)
        if isinstance(request, grammar.ScheduleAlertRequest):
            return self.change_alert(request, who)
        if isinstance(request, grammar.ScheduleDigestRequest):
            return self.change_digest(request, who)
        raise TypeError(f"unhandled request {request!r}")

    @saves
    def create_from_links(
        self, request: grammar.WatchLinksRequest, who: Requester
    ) -> blocks.Message:
        """Watches for pasted links, all or none (they may name several vendors)."""
        return self._create(request.jobs, request.connection, request.every, who)

    @saves
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
                lifecycle.new_watch(
                    spec,
                    ref,
                    connection=connection,
                    channel_id=who.channel_id,
                    requester_id=who.user_id,
                    team_id=who.team_id,
                    policy=self.policy,
                    now=now,
                    every=every,
                    trigger=trigger,
                )
            )
        over = self._quota_problem(len(drafts), who)
        if over is not None:
            return over
        try:
            action = "sync.start" if trigger else "watch.create"
            created = self.store.create_watches(
                drafts, now, audit=lambda w: who.audit(action, now, watch=w)
            )
        except DuplicateWatchError as dup:
            ref = self.store.parent_ref(dup.existing.id)
            return blocks.render_duplicate(
                dup.existing, ref.ts if ref else None, asked_in=who.channel_id
            )
        log.info(
            "watch created: %s",
            ", ".join(f"{w.id} {w.vendor} {w.ref} in {w.channel_id}" for w in created),
        )
        self.on_change()
        return blocks.render_created(created, self._routes_taken(created, who.channel_id))

    def _routes_taken(self, created: list[Watch], asked_in: str) -> dict[str, str]:
        """The route key that sent each watch made elsewhere than `asked_in` there."""
        routed = [w for w in created if w.channel_id != asked_in]
        if not routed:
            return {}
        here = self.store.channel_settings(asked_in)
        taken = {}
        for w in routed:
            route = here.route_for(w.vendor, w.connection)
            if route is not None:
                taken[w.id] = route[1]
        return taken

    def _quota_problem(self, adding: int, who: Requester) -> blocks.Message | None:
        in_channel, mine = self.store.count_active_of(
            channel_id=who.channel_id, requester_id=who.user_id
        )
        if in_channel + adding > self.settings.quota_per_channel:
            return blocks.render_notice(
                texts.channel_quota(in_channel, self.settings.quota_per_channel)
            )
        if mine + adding > self.settings.quota_per_user:
            return blocks.render_notice(texts.person_quota(mine, self.settings.quota_per_user))
        return None

    def _connection_problem(self, spec: VendorSpec, connection: str) -> blocks.Message | None:
        connections = self.settings.connections(spec.family)
        if connection not in connections:
            if not connections:
                return blocks.render_notice(texts.vendor_not_set_up(spec.label))
            names = ", ".join(f"`{n}`" for n in sorted(connections))
            return blocks.render_notice(
                texts.no_such_connection(spec.family.title(), blocks.esc(connection), names)
            )
        return None

    @saves
    def sync(self, request: grammar.SyncRequest, who: Requester) -> blocks.Message:
        """Start a datasource sync: a watch whose first poll triggers it (no vendor call here:
        the listener must ack fast)."""
        spec = lookup(SYNC_VENDOR)
        if spec is None:
            return blocks.render_notice(texts.SYNCS_UNAVAILABLE)
        ref = f"{request.workspace_id}/{request.datasource_id}"
        target = self.settings.syncs.get(ref)
        connection = request.connection
        if target is not None and request.connection == DEFAULT_CONNECTION:
            connection = target.connection  # the operator tied this datasource to a connection
        if target is not None and connection != target.connection:
            return blocks.render_notice(
                texts.datasource_tied_to_connection(ref, target.connection, blocks.esc(connection))
            )
        if not self.settings.may_sync(connection, who.user_id, who.channel_id):
            return blocks.render_notice(texts.NOT_ON_SYNC_ALLOWLIST)
        if request.at is not None:
            return self._schedule(spec.key, ref, connection, request, who)
        return self.create_watches(
            grammar.WatchRequest(spec.key, (ref,), connection), who, trigger=True
        )

    def _schedule(
        self, vendor: str, ref: str, connection: str, request: grammar.SyncRequest, who: Requester
    ) -> blocks.Message:
        now = self.clock()
        floor = self.settings.min_schedule_minutes
        try:
            cron, tz = parse_schedule(request.at or "", request.tz)
            first = first_run(cron, tz, now, floor * 60)
        except NeverFires:
            return blocks.render_notice(texts.schedule_never_runs(blocks.esc(cron), ref))
        except TooFrequent as err:
            return blocks.render_notice(
                texts.schedule_too_frequent(blocks.esc(cron), err.gap_s / 60, floor, ref)
            )
        except ValueError as err:
            return blocks.render_notice(texts.bad_schedule(blocks.esc(str(err)), ref))
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
        alert = request.alert or grammar.AlertChoice()
        with self.store.audited():
            schedule = self.store.create_schedule(
                draft,
                cron,
                tz,
                first,
                now,
                alert_policy=alert.policy.value,
                alert_every=alert.every,
                digest=request.digest,
            )
            detail = {"vendor": vendor, "ref": ref, "cron": cron, "tz": tz}
            if connection != DEFAULT_CONNECTION:
                detail["connection"] = connection
            if alert.policy != AlertPolicy.EVERY:
                detail["alert"] = alert.policy.value
            if request.digest:
                detail["cadence"] = request.digest
            self.store.audit(
                who.audit("schedule.create", now, schedule_id=schedule.id, detail=detail)
            )
        log.info(
            "schedule %s created: %s %s (%s) in %s, alerts %s",
            schedule.id,
            ref,
            cron,
            tz,
            who.channel_id,
            alert.policy.value,
        )
        self.on_schedules_changed()
        when = blocks.slack_date(schedule.next_run_at or now)
        quiet = ""
        if alert.policy != AlertPolicy.EVERY:
            quiet = texts.alert_policy_label(alert.policy.value, alert.every)
        answer = texts.scheduled(ref, schedule.id, cron, tz, when, quiet)
        if request.digest:
            answer += f" Digest: {texts.digest_label(request.digest, tz, _digest_at())}."
        return blocks.render_notice(answer)

    @saves
    def change_digest(
        self, request: grammar.ScheduleDigestRequest, who: Requester
    ) -> blocks.Message:
        """`schedule <id> digest daily|weekly|off` (docs/architecture.md#alert-digest); the
        same permission as changing its alerts."""
        schedule = self._schedule_here(request.schedule_id, who)
        if schedule is None or schedule.status != ScheduleStatus.ACTIVE:
            return blocks.render_notice(texts.no_schedule_here(blocks.esc(request.schedule_id)))
        if not self._may_manage(schedule.requester_id, schedule.connection, who):
            return blocks.render_notice(texts.not_allowed("change this schedule's digest"))
        if schedule.digest == request.digest:
            label = texts.digest_label(request.digest, schedule.tz, _digest_at()) or "no digest"
            return blocks.render_notice(texts.schedule_alert_unchanged(schedule.id, f"has {label}"))
        now = self.clock()
        with self.store.audited():
            changed = self.store.set_digest(schedule.id, request.digest, now)
            if changed:
                detail = {"cadence": request.digest or "off"}
                self.store.audit(
                    who.audit("schedule.digest", now, schedule_id=schedule.id, detail=detail)
                )
        if not changed:
            return blocks.render_notice(texts.schedule_already_stopped(schedule.id))
        log.info("schedule %s digest set to %s by %s", schedule.id, request.digest, who.user_id)
        label = texts.digest_label(request.digest, schedule.tz, _digest_at())
        return blocks.render_notice(texts.schedule_digest_changed(schedule.id, label))

    @saves
    def change_alert(self, request: grammar.ScheduleAlertRequest, who: Requester) -> blocks.Message:
        """`schedule <id> alert <policy>`: who may stop a schedule may change what it posts
        (docs/architecture.md#alert-policy)."""
        schedule = self._schedule_here(request.schedule_id, who)
        if schedule is None or schedule.status != ScheduleStatus.ACTIVE:
            return blocks.render_notice(texts.no_schedule_here(blocks.esc(request.schedule_id)))
        if not self._may_manage(schedule.requester_id, schedule.connection, who):
            return blocks.render_notice(texts.not_allowed("change this schedule's alerts"))
        choice = request.alert
        label = texts.alert_policy_label(choice.policy.value, choice.every)
        if (schedule.alert_policy, schedule.alert_every) == (choice.policy.value, choice.every):
            return blocks.render_notice(texts.schedule_alert_unchanged(schedule.id, label))
        now = self.clock()
        with self.store.audited():
            changed = self.store.set_alert_policy(schedule.id, choice.policy, choice.every)
            if changed:
                detail: dict[str, Any] = {"alert": choice.policy.value}
                if choice.policy == AlertPolicy.SMART:
                    detail["every"] = choice.every
                self.store.audit(
                    who.audit("schedule.alert", now, schedule_id=schedule.id, detail=detail)
                )
        if not changed:
            return blocks.render_notice(texts.schedule_already_stopped(schedule.id))
        log.info(
            "schedule %s alerts changed to %s (%d) by %s",
            schedule.id,
            choice.policy.value,
            choice.every,
            who.user_id,
        )
        return blocks.render_notice(texts.schedule_alert_changed(schedule.id, label))

    @saves
    def retry_sync(self, watch_id: str, who: Requester) -> blocks.Message | None:
        """The "Retry sync" button: run the same sync again in the same message and thread."""
        watch = self._watch_here(watch_id, who)
        spec = lookup(watch.vendor) if watch else None
        if watch is None or spec is None or spec.kind != "sync":
            return blocks.render_notice(texts.no_sync_here(blocks.esc(watch_id)))
        if not self._may_manage(watch.requester_id, watch.connection, who):
            return blocks.render_notice(texts.not_allowed("run this sync again"))
        now = self.clock()
        deadline = now + self.policy.watch_timeout
        with self.store.audited():
            restarted = self.store.restart_sync(
                watch.id, who.user_id, now, deadline, note=texts.SYNC_RETRY_ASKED
            )
            if restarted:
                self.store.audit(who.audit("watch.retry", now, watch=watch))
        if restarted:
            self.on_change()
            return None
        return blocks.render_notice(texts.cant_retry_sync(watch.id))

    @saves
    def show_errors(self, watch_id: str, who: Requester) -> blocks.Message | None:
        """The "Show errors" button: the vendor's full error text in the thread, once."""
        watch = self._watch_here(watch_id, who)
        if watch is None:
            return blocks.render_notice(texts.no_watch_here(blocks.esc(watch_id)))
        snap = JobSnapshot.from_json(watch.snapshot)
        if snap is None or not snap.error_message:
            return blocks.render_notice(texts.no_errors_to_show(watch.id))
        text = snap.error_message
        uploads: list[dict[str, object]] = []
        if len(text) > blocks.ERRORS_INLINE_LIMIT:
            uploads.append(_errors_csv(watch.id, text))
        draft = TransitionDraft(
            event=Event.ERRORS,
            actor=who.user_id,
            error_code=snap.error_code,
            error_message=text if not uploads else None,
            note=f"{len(text.splitlines()) or 1} lines" if uploads else None,
        )
        now = self.clock()
        with self.store.audited():
            posted = self.store.add_to_thread_once(watch.id, draft, uploads, now)
            if posted:
                self.store.audit(who.audit("watch.errors", now, watch=watch))
        if not posted:
            return blocks.render_notice(texts.ERRORS_ALREADY_IN_THREAD)
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

    @saves
    def stop(self, watch_id: str, who: Requester) -> blocks.Message:
        """Stop a watch (or a schedule) from the command or a button: the requester, people
        on the connection's allowlist, or admins (docs/architecture.md#permissions)."""
        if watch_id.startswith("s"):
            return self._stop_schedule(watch_id, who)
        watch = self._watch_here(watch_id, who)
        if watch is None:
            return blocks.render_notice(texts.no_watch_here_to_stop(blocks.esc(watch_id)))
        if watch.status not in (ACTIVE, PAUSED):
            return blocks.render_notice(texts.already_ended(watch.id, watch.status))
        if not self._may_manage(watch.requester_id, watch.connection, who):
            return blocks.render_notice(texts.not_allowed("stop this watch"))
        now = self.clock()
        with self.store.audited():
            stopped = self.store.stop_watch(watch.id, who.user_id, now)
            if stopped is not None:
                self.store.audit(who.audit("watch.stop", now, watch=watch))
        if stopped is None:
            return blocks.render_notice(texts.had_already_ended(watch.id))
        log.info("watch %s stopped by %s", watch.id, who.user_id)
        self.on_change()
        return blocks.render_notice(texts.stopped_watch(blocks.job_title(watch), watch.id))

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
        """The App Home tab: the user's watches and schedules, recent outcomes, and what
        they did lately (from the audit trail, with links to the watches' messages)."""
        schedules = self.store.list_schedules(requester_id=user_id)
        watches = self.watches_for_user(user_id)
        channels = sorted({w.channel_id for w in watches} | {s.channel_id for s in schedules})
        settings = self.store.settings_of_channels(channels, limit=blocks.HOME_SETTINGS)
        lines = [
            f"<#{blocks.esc(s.channel_id)}> — {settings_form.summary(s)}"
            for s in settings
            if not s.is_default
        ]
        actions = self.store.audit_entries(
            actor=user_id, actor_kind=ActorKind.PERSON, limit=blocks.HOME_ACTIONS
        )
        links = {}
        for watch_id in {a.watch_id for a in actions if a.watch_id}:
            parent = self.store.parent_ref(watch_id)
            if parent is not None:
                links[watch_id] = blocks.archive_link(parent.channel_id, parent.ts)
        return blocks.render_home(
            watches, self.clock(), schedules, settings_lines=lines, actions=actions, links=links
        )

    def _schedule_here(self, schedule_id: str, who: Requester) -> Schedule | None:
        """The schedule, if `who` may see it from where they are: its own channel, or the
        App Home of the person who set it."""
        schedule = self.store.get_schedule(schedule_id)
        visible = schedule is not None and (
            schedule.channel_id == who.channel_id
            or (not who.channel_id and schedule.requester_id == who.user_id)
        )
        return schedule if visible else None

    def _stop_schedule(self, schedule_id: str, who: Requester) -> blocks.Message:
        schedule = self._schedule_here(schedule_id, who)
        if schedule is None:
            return blocks.render_notice(texts.no_schedule_here(blocks.esc(schedule_id)))
        if not self._may_manage(schedule.requester_id, schedule.connection, who):
            return blocks.render_notice(texts.not_allowed("stop this schedule"))
        now = self.clock()
        with self.store.audited():
            stopped = self.store.stop_schedule(schedule.id, who.user_id, now)
            if stopped is not None:
                detail = {"vendor": schedule.vendor, "ref": schedule.ref, "cron": schedule.cron}
                entry = who.audit(
                    "schedule.stop",
                    now,
                    schedule_id=schedule.id,
                    channel_id=schedule.channel_id,
                    detail=detail,
                )
                self.store.audit(entry)
        if stopped is None:
            return blocks.render_notice(texts.schedule_already_stopped(schedule.id))
        log.info("schedule %s stopped by %s", schedule.id, who.user_id)
        self.on_schedules_changed()
        return blocks.render_notice(
            texts.stopped_schedule(schedule.id, schedule.ref, schedule.cron, schedule.tz)
        )

    @saves
    def refresh(self, watch_id: str, who: Requester) -> blocks.Message | None:
        """Poll at the next tick (the vendor's rate limit still applies)."""
        watch = self._watch_here(watch_id, who)
        if watch is None:
            return blocks.render_notice(texts.no_watch_here(blocks.esc(watch_id)))
        if watch.status != ACTIVE:
            return blocks.render_notice(texts.has_ended(watch.id, watch.status))
        now = self.clock()
        with self.store.audited():
            self.store.poll_soon(watch.id, now)
            self.store.audit(who.audit("watch.refresh", now, watch=watch))
        return None


def _digest_at() -> str:
    return f"{DIGEST_HOUR:02d}:00"


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
