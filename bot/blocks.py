"""Pure rendering: watches, transitions and command answers -> Slack text + Block Kit JSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot import eta, texts
from bot.digests import DIGEST_HOUR
from bot.grammar import COMMAND, HELP_TOPICS, CommandError
from bot.urls import URL_SHAPES
from bot.vendors import SPECS, TERMINAL_STATES, JobSnapshot, State, lookup
from storage import (
    ACTIVE,
    DEFAULT_CONNECTION,
    DONE,
    PAUSED,
    STOPPED,
    AuditEntry,
    ChannelSettings,
    Digest,
    Event,
    QuietHours,
    RunOutcome,
    Schedule,
    ScheduleRun,
    Transition,
    Watch,
    actor_token,
)
from storage.progress import decode_points
from storage.settings import CONNECTION_ROUTE, VENDOR_ROUTE

# Action ids: the verb; the button's value carries the watch id.
WATCH_REFRESH = "watch.refresh"
WATCH_STOP = "watch.stop"
SYNC_RETRY = "sync.retry"
WATCH_ERRORS = "watch.errors"
SCHEDULE_STOP = "schedule.stop"
ERRORS_INLINE_LIMIT = 2500  # longer error lists go into the thread as a CSV

MAX_BLOCKS = 50
SECTION_LIMIT = 3000

STATE_LOOK: dict[str | None, tuple[str, str]] = {
    None: (":mag:", "Checking"),
    State.QUEUED: (":hourglass_flowing_sand:", "Queued"),
    State.RUNNING: (":arrows_counterclockwise:", "Running"),
    State.SUCCEEDED: (":white_check_mark:", "Succeeded"),
    State.PARTIAL: (":warning:", "Partially succeeded"),
    State.FAILED: (":x:", "Failed"),
    State.CANCELLED: (":no_entry_sign:", "Cancelled"),
    State.EXPIRED: (":hourglass:", "Expired"),
    State.UNKNOWN: (":grey_question:", "Unrecognised status"),
}


@dataclass(frozen=True)
class Message:
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks} if self.blocks else {"text": self.text}


def esc(raw: str) -> str:
    """Make text inert in mrkdwn: only &, < and > are control characters
    (docs/slack.md#escaping-and-formatting)."""
    # Three replace() calls, not str.translate(): translate looks every character up in
    # a dict once the text has a non-ASCII character (help has — and •), ~30x slower.
    return raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def esc_clip(raw: str, limit: int) -> str:
    """Escape, then shorten to `limit` characters without splitting an entity."""
    out = esc(raw)
    if len(out) <= limit:
        return out
    kept, size = [], 1
    for piece in map(esc, raw):
        if size + len(piece) > limit:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + "…"


def quote_block(raw: str, limit: int) -> str:
    """Vendor text as a code block: escaped, clipped, and unable to close the block early."""
    return "```" + esc_clip(raw.replace("```", "ˋˋˋ"), limit - 6) + "```"


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text[:SECTION_LIMIT])}


def context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [mrkdwn(t[:2000]) for t in texts[:10]]}


def duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def slack_date(epoch: float, token: str = "{date_short_pretty} {time}") -> str:
    """A date Slack renders in the reader's own time zone, with a UTC fallback."""
    fallback = dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(epoch)}^{token}|{fallback}>"


def vendor_label(vendor: str) -> str:
    spec = lookup(vendor)
    return spec.label if spec else vendor


def who(actor: str | None) -> str:
    """A person as a mention; a token (a script, a vendor callback) by its name in bold,
    never as a mention (docs/architecture.md#watch-api)."""
    if not actor:
        return "someone"
    name = actor_token(actor)
    return f"*{esc(name)}*" if name is not None else f"<@{actor}>"


def mention_of(watch: Watch, settings: ChannelSettings | None = None, failure: bool = True) -> str:
    """Who the terminal reply pings: the requester when a person, else nobody; and only
    when the channel's mention setting says so for this outcome."""
    if settings is not None and not settings.mentions_requester(failure):
        return ""
    return "" if actor_token(watch.requester_id) is not None else f"<@{watch.requester_id}> "


# What a channel's "failures" settings (mention, broadcast, cc) count as a failure.
FAILED_STATES = frozenset({State.FAILED, State.PARTIAL, State.CANCELLED, State.EXPIRED})


def is_failure(transition: Transition) -> bool:
    """A terminal reply that reports a failure: failed, partial, cancelled, expired, or the
    watch timed out (docs/architecture.md#channel-settings)."""
    if transition.event == Event.TIMEOUT:
        return True
    return transition.event == Event.STATE and transition.to_state in FAILED_STATES


def cc_line(settings: ChannelSettings | None) -> str:
    """ "cc @group @person" for a failure reply, from the channel's settings (ids only:
    Slack's own select menus picked them)."""
    if settings is None or not (settings.cc_groups or settings.cc_users):
        return ""
    groups = [f"<!subteam^{esc(g)}>" for g in settings.cc_groups]
    people = [f"<@{esc(u)}>" for u in settings.cc_users]
    return "cc " + " ".join(groups + people)


def started_by(watch: Watch, *, capital: bool = True) -> str:
    """`Asked by @alice`, or for a watch a token started, `started by *nightly-etl*` (and
    for whom, when the script said)."""
    if watch.token_name is None:
        return f"{'A' if capital else 'a'}sked by {who(watch.requester_id)}"
    line = f"started by *{esc(watch.token_name)}*"
    if actor_token(watch.requester_id) is None:
        line += f" for {who(watch.requester_id)}"
    elif watch.requested_by:
        line += f" for {esc_clip(watch.requested_by, 80)}"
    return ("S" if capital else "s") + line[1:]


def job_title(watch: Watch) -> str:
    return f"*{esc(vendor_label(watch.vendor))}* `{esc(watch.ref)}`"


def archive_link(channel_id: str, ts: str) -> str:
    """A link to a message Slack resolves for any member (no workspace domain needed)."""
    return f"https://slack.com/archives/{channel_id}/p{ts.replace('.', '')}"


# -- parent message ------------------------------------------------------------------------


def render_parent(watch: Watch, now: float, run: ScheduleRun | None = None) -> Message:
    """The one channel message per watch, rendered from the watch's current row. `run`:
    the schedule occurrence it is the run of, whose streak a failed or recovering run shows
    (docs/architecture.md#alert-policy)."""
    snap = JobSnapshot.from_json(watch.snapshot)
    emoji, label = STATE_LOOK.get(watch.state, STATE_LOOK[State.UNKNOWN])
    status_line = f"{emoji} *{label}*"
    if watch.raw_status:
        status_line += f" · vendor status `{esc_clip(watch.raw_status, 80)}`"
    if watch.status == STOPPED:
        status_line = f":octagonal_sign: *Stopped* by {who(watch.stopped_by)} · last state: {label}"
    elif watch.status == PAUSED:
        status_line = f":double_vertical_bar: *Paused* ({esc(watch.pause_reason or 'paused')})"

    streak = _streak_line(watch, run)
    if streak:
        status_line += f"\n{streak}"
    blocks: list[dict[str, Any]] = [section(f"{job_title(watch)}\n{status_line}")]
    if snap and snap.progress:
        left = _time_left(watch)
        room = 10 if left is None else 9  # Slack allows ten fields
        shown = list(snap.progress)
        if len(shown) > room:  # say what didn't fit
            shown = shown[: room - 1] + [("…", f"{len(snap.progress) - (room - 1)} more")]
        fields = [mrkdwn(f"*{esc_clip(k, 100)}*\n{esc_clip(v, 200)}") for k, v in shown]
        if left is not None:  # beside the count it comes from, the first pair
            fields.insert(1, mrkdwn(f"*Estimate*\n{left}"))
        blocks.append({"type": "section", "fields": fields})
    if snap and snap.error_message and watch.state in (State.FAILED, State.PARTIAL):
        code = f" `{esc_clip(snap.error_code, 40)}`" if snap.error_code else ""
        said = "*Vendor said*" if snap.error_code else "*Details*"
        blocks.append(section(f"{said}{code}\n{quote_block(snap.error_message, 600)}"))
    if watch.status == ACTIVE and watch.last_error:
        failed = f"Last check failed ({watch.attempts}×)"
        blocks.append(context(f":warning: {failed}: {esc_clip(watch.last_error, 300)}"))

    when = f"started {slack_date(watch.created_at, '{ago}')}"
    if watch.finished_at is not None:
        when = f"took {duration(watch.finished_at - watch.created_at)}"
    meta = [started_by(watch), when, f"watch `{watch.id}`"]
    if run is not None:
        meta.append(f"schedule `{run.schedule_id}`")
    if watch.connection != DEFAULT_CONNECTION:
        meta.append(f"connection `{esc(watch.connection)}`")
    blocks.append(context(" · ".join(meta)))
    if watch.status == ACTIVE:
        blocks.append(_actions(watch))
    else:
        done_buttons = []
        if snap and snap.error_message and watch.state in (State.FAILED, State.PARTIAL):
            done_buttons.append(_button(WATCH_ERRORS, "Show errors", watch.id))
        if _is_sync(watch) and watch.status == DONE and watch.state == State.FAILED:
            done_buttons.append(_button(SYNC_RETRY, "Retry sync", watch.id, "primary"))
        if done_buttons:
            blocks.append({"type": "actions", "elements": done_buttons})
    text = f"{vendor_label(watch.vendor)} {watch.ref}: {label}"
    if watch.status in (STOPPED, PAUSED):
        text = f"{vendor_label(watch.vendor)} {watch.ref}: {watch.status}"
    return Message(esc(text), blocks)


def _time_left(watch: Watch) -> str | None:
    """The time left ("~4 min left") while the job runs and its samples give a believable
    estimate (docs/architecture.md#eta), else None. From the watch's row only."""
    if watch.status != ACTIVE or watch.state in TERMINAL_STATES:
        return None
    minutes = eta.shown(decode_points(watch.progress_points))
    return None if minutes is None else time_left(minutes)


def time_left(minutes: int) -> str:
    """`eta.shown_minutes` as people say it: "<1 min left", "~4 min left", "~2 h 10 min
    left", "~3 h left"."""
    if minutes < 1:
        return "<1 min left"
    if minutes < 60:
        return f"~{minutes} min left"
    hours, rest = divmod(minutes, 60)
    return f"~{hours} h {rest} min left" if rest else f"~{hours} h left"


def _streak_line(watch: Watch, run: ScheduleRun | None) -> str:
    """A scheduled run's place in its schedule's streak, once it has ended, and only while
    the watch still shows that outcome (a *Retry sync* may have run it again since)."""
    if run is None or not run.streak_count or watch.status != DONE:
        return ""
    if (watch.state == State.SUCCEEDED) != (run.outcome == RunOutcome.OK):
        return ""
    if run.outcome == RunOutcome.FAILED:
        since = slack_date(run.streak_since) if run.streak_since else "its first run"
        return texts.streak_failed(run.streak_count, since, run.broke_count or 0)
    if run.recovered_after:
        return texts.back_to_normal(run.recovered_after)
    return ""


def _is_sync(watch: Watch) -> bool:
    spec = lookup(watch.vendor)
    return spec is not None and spec.kind == "sync"


def _button(action_id: str, text: str, value: str, style: str | None = None) -> dict[str, Any]:
    button = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _actions(watch: Watch) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": WATCH_REFRESH,
                "text": {"type": "plain_text", "text": "Refresh now"},
                "value": watch.id,
            },
            {
                "type": "button",
                "action_id": WATCH_STOP,
                "text": {"type": "plain_text", "text": "Stop watching"},
                "value": watch.id,
                "style": "danger",
                "confirm": {
                    "title": {"type": "plain_text", "text": "Stop watching?"},
                    "text": {
                        "type": "plain_text",
                        "text": f"syncwatch stops checking this job ({watch.id}). "
                        "The job itself keeps running at the vendor.",
                    },
                    "confirm": {"type": "plain_text", "text": "Stop watching"},
                    "deny": {"type": "plain_text", "text": "Keep watching"},
                },
            },
        ],
    }


# -- thread replies ------------------------------------------------------------------------


def render_reply(
    watch: Watch, transition: Transition, settings: ChannelSettings | None = None
) -> Message:
    """One thread reply for one history entry. Terminal replies mention the requester (as
    the channel's `settings` allow); failure replies add the channel's cc line."""
    failure = is_failure(transition)
    message = _render_reply(watch, transition, mention_of(watch, settings, failure))
    cc = cc_line(settings) if failure else ""
    if not cc:
        return message
    # Its own block: a long error quote clipped to the section's limit must not cut it.
    return Message(f"{message.text} {cc}", [*message.blocks, section(cc)])


def _render_reply(watch: Watch, transition: Transition, mention: str) -> Message:
    label = vendor_label(watch.vendor)
    raw = f" (`{esc_clip(transition.raw_status, 80)}`)" if transition.raw_status else ""
    took = duration(transition.at - watch.created_at)
    state = transition.to_state

    if transition.event == Event.STOPPED:
        ping = mention if transition.actor != watch.requester_id else ""
        text = (
            f":octagonal_sign: {ping}Stopped watching at {who(transition.actor)}'s request "
            f"after {took}. "
            "The job itself was not touched at the vendor."
        )
        return _reply(text)
    if transition.event == Event.TIMEOUT:
        last = f" Last vendor status: `{esc_clip(transition.raw_status, 80)}`." if raw else ""
        text = (
            f":hourglass: {mention}Gave up after {took}: the job never finished while I was "
            f"watching.{last} Check it in {esc(label)} directly."
        )
        return _reply(text)
    if transition.event == Event.ERRORS:
        code = f" `{esc_clip(transition.error_code, 40)}`" if transition.error_code else ""
        head = f"{who(transition.actor)} asked for the full error list{code}"
        if transition.error_message:
            return _reply(f"{head}:\n{quote_block(transition.error_message, 2900 - len(head))}")
        return _reply(f"{head}: it is long ({esc(transition.note or '')}), so it is attached.")
    if transition.event == Event.RECOVERED:
        failures = int(transition.note) if (transition.note or "").isdigit() else 0
        return _reply(texts.back_to_normal(failures) + ".")
    if transition.event == Event.NOTE:
        by = f"{who(transition.actor)} " if transition.actor else ""
        return _reply(by + esc(transition.note or ""))

    detail = _error_detail(transition)
    noun = "Sync" if _is_sync(watch) else "Job"
    if state == State.SUCCEEDED:
        text = (
            f":white_check_mark: {mention}{noun} succeeded in {took}{raw}.{_progress_suffix(watch)}"
        )
    elif state == State.PARTIAL:
        text = (
            f":warning: {mention}{noun} completed with problems after {took}{raw}."
            f"{_progress_suffix(watch)}{detail}"
        )
    elif state == State.FAILED:
        text = f":x: {mention}{noun} failed after {took}{raw}.{detail}"
    elif state == State.CANCELLED:
        text = f":no_entry_sign: {mention}{noun} was cancelled at the vendor{raw}.{detail}"
    elif state == State.EXPIRED:
        text = f":hourglass: {mention}{esc(label)} no longer has this job's details{raw}.{detail}"
    elif state == State.UNKNOWN:
        text = (
            f":grey_question: {esc(label)} reports a status I don't recognise{raw}. "
            "I'll keep checking and show it as-is."
        )
    else:
        look = STATE_LOOK.get(state, STATE_LOOK[State.UNKNOWN])
        verb = (
            f"First check: {noun.lower()} is" if transition.from_state is None else f"{noun} is now"
        )
        text = f"{look[0]} {verb} *{look[1].lower()}*{raw}."
        if transition.from_state is None:
            text += " I'll post here when it changes."
    return _reply(text)


def _progress_suffix(watch: Watch) -> str:
    snap = JobSnapshot.from_json(watch.snapshot)
    if not snap or not snap.progress:
        return ""
    return " " + "; ".join(f"{esc(k)}: {esc_clip(v, 120)}" for k, v in snap.progress[:4]) + "."


def _error_detail(transition: Transition) -> str:
    parts = []
    if transition.error_code or transition.error_message:
        code = f" `{esc_clip(transition.error_code, 40)}`" if transition.error_code else ""
        parts.append(f"\n{'Vendor said' if transition.error_code else 'Details'}{code}:")
        if transition.error_message:
            # 2,000 leaves room in the 3,000 section for status, progress and code
            parts.append(quote_block(transition.error_message, 2000))
    if transition.note:
        parts.append(f"\n{esc(transition.note)}")
    return "\n".join(parts) if parts else ""


def render_quiet_digest(lines: list[str], quiet: QuietHours | None) -> Message:
    """One reply for what quiet hours held in a thread, oldest first (`lines` are rendered
    replies and notes: already escaped)."""
    head = texts.quiet_digest_head(
        len(lines), f"{quiet.start}–{quiet.end} {esc(quiet.tz)}" if quiet else None
    )
    body = "\n".join(f"• {line}" for line in lines)
    return Message(head, [section(f"{head}\n{body}")])


def _reply(text: str) -> Message:
    fallback = text.split("\n", 1)[0][:300]
    return Message(fallback, [section(text)])


# -- command answers (ephemeral) -----------------------------------------------------------


def render_usage_error(err: CommandError) -> Message:
    return Message(texts.usage_error(err.message, esc(err.example)))


def render_help(
    topic: str | None = None, schedule_floor_minutes: int = 60, settings_by_admins: bool = False
) -> Message:
    sections = texts.help_sections(
        list(SPECS.values()), URL_SHAPES, schedule_floor_minutes, settings_by_admins
    )
    # Help is our own text, but its placeholders (`<vendor>`) would read as Slack markup.
    sections = {name: esc(text) for name, text in sections.items()}
    spec = lookup(topic) if topic else None
    if spec is not None:
        topic = "vendors"
    if topic in sections:
        return Message(sections[topic], [section(sections[topic])])
    intro = esc(texts.help_intro(HELP_TOPICS))
    blocks = [section(intro), section(sections["watch"]), section(sections["vendors"])]
    blocks.append(context(texts.NOT_IN_THREADS))
    return Message(intro, blocks)


def render_created(watches: list[Watch], routes: dict[str, str] | None = None) -> Message:
    """ "Started …"; `routes` maps a watch that went to another channel to the route key
    that sent it there (docs/architecture.md#channel-settings)."""
    ids = ", ".join(f"`{w.id}` ({job_title(w)})" for w in watches)
    noun = "a watch" if len(watches) == 1 else f"{len(watches)} watches"
    routes = routes or {}
    notes = [
        texts.routed_note(w.channel_id, route_reason(routes[w.id]))
        for w in watches
        if w.id in routes
    ]
    if not notes:
        return Message(texts.started(noun, ids, watches[0].id))
    return Message(
        "\n".join([*dict.fromkeys(notes), texts.started_routed(noun, ids, watches[0].id)])
    )


def route_reason(key: str) -> str:
    """What a route key names, for people: "Zuora", "connection `eu`"."""
    if key.startswith(CONNECTION_ROUTE):
        return f"connection `{esc(key.removeprefix(CONNECTION_ROUTE))}`"
    return esc(vendor_label(key.removeprefix(VENDOR_ROUTE)))


def render_duplicate(
    existing: Watch, parent_ts: str | None, asked_in: str | None = None
) -> Message:
    """ "Already watching"; a watch this channel routed elsewhere is named by its channel."""
    channel = "this channel"
    if asked_in is not None and existing.channel_id != asked_in:
        channel = f"<#{esc(existing.channel_id)}>"
    where = f"its message in {channel}"
    if parent_ts:
        where = f"<{archive_link(existing.channel_id, parent_ts)}|its message>"
    return Message(texts.already_watching(job_title(existing), existing.id, where, channel))


def render_list(
    watches: list[Watch],
    now: float,
    schedules: list[Schedule] | None = None,
    *,
    total: int | None = None,
) -> Message:
    """Active watches and schedules of a channel, each with its own Stop button. `total`
    is how many watches are active when `watches` holds only the first few."""
    schedules = schedules or []
    total = len(watches) if total is None else max(total, len(watches))
    if not watches and not schedules:
        return Message(texts.NOTHING_IN_CHANNEL)
    out: list[dict[str, Any]] = []
    if watches:
        out.append(section(f"*Active watches in this channel ({total})*"))
        for w in watches[:LIST_WATCHES]:
            emoji, label = STATE_LOOK.get(w.state, STATE_LOOK[State.UNKNOWN])
            line = (
                f"{emoji} `{w.id}` {job_title(w)} — {label}, {started_by(w, capital=False)}, "
                f"for {duration(now - w.created_at)}"
            )
            out.append(_with_stop(line, WATCH_STOP, w.id))
        shown = min(len(watches), LIST_WATCHES)
        if total > shown:
            more = total - shown
            out.append(context(f"…and {more} more; stop any with `{COMMAND} stop <id>`."))
    out += _schedule_blocks(schedules)
    summary = f"{total} active watches and {len(schedules)} schedules in this channel"
    return Message(summary, out[:MAX_BLOCKS])


# Kept small: Slack refuses messages whose blocks pass about 13k characters.
LIST_WATCHES = 20
LIST_SCHEDULES = 8


def _with_stop(text: str, action_id: str, item_id: str, confirm: bool = False) -> dict[str, Any]:
    block = section(text)
    block["accessory"] = _button(action_id, "Stop", item_id, "danger")
    if confirm:
        block["accessory"]["confirm"] = {
            "title": {"type": "plain_text", "text": f"Stop {item_id}?"},
            "text": {"type": "plain_text", "text": "The vendor job itself is not touched."},
            "confirm": {"type": "plain_text", "text": "Stop"},
            "deny": {"type": "plain_text", "text": "Keep it"},
        }
    return block


def _schedule_blocks(schedules: list[Schedule]) -> list[dict[str, Any]]:
    if not schedules:
        return []
    out = [section(f"*Schedules ({len(schedules)})*")]
    for s in schedules[:LIST_SCHEDULES]:
        when = slack_date(s.next_run_at) if s.next_run_at else "never"
        line = (
            f":calendar: `{s.id}` {esc(vendor_label(s.vendor))} `{esc(s.ref)}` — "
            f"`{esc(s.cron)}` ({esc(s.tz)}), next {when}, set by <@{s.requester_id}>\n"
            f"Alerts: {texts.alert_policy_label(s.alert_policy, s.alert_every)}"
        )
        if s.digest:
            line += f"; {texts.digest_label(s.digest, esc(s.tz), f'{DIGEST_HOUR:02d}:00')}"
        if s.streak_kind == RunOutcome.FAILED and s.streak_count:
            line += f"\n{texts.failing_for(s.streak_count)}"
            if s.streak_since:
                line += f" since {slack_date(s.streak_since)}"
        out.append(_with_stop(line, SCHEDULE_STOP, s.id))
    if len(schedules) > LIST_SCHEDULES:
        out.append(context(f"…and {len(schedules) - LIST_SCHEDULES} more."))
    return out


def render_digest(digest: Digest) -> Message:
    """One channel message summing up the quiet runs of its schedules since the last one
    (docs/architecture.md#alert-digest)."""
    head = texts.digest_heading(digest.cadence, esc(digest.tz))
    lines = [
        texts.digest_line(
            line.schedule_id,
            f"{esc(vendor_label(line.vendor))} `{esc(line.ref)}`",
            line.ok,
            line.failed,
        )
        for line in digest.lines[:40]
    ]
    if len(digest.lines) > 40:
        lines.append(f"…and {len(digest.lines) - 40} more schedules.")
    body = "\n".join(lines)
    return Message(head, [section(f"{head}\n{body}")])


def render_notice(text: str) -> Message:
    return Message(text)


HOME_SETTINGS = 10  # channels whose settings App Home shows, at most
HOME_ACTIONS = 10  # the person's recent actions shown on App Home


def render_home(
    watches: list[Watch],
    now: float,
    schedules: list[Schedule] | None = None,
    *,
    settings_lines: list[str] | None = None,
    actions: Sequence[AuditEntry] = (),
    links: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The App Home view: the user's running watches and schedules (each with Stop), then
    recent outcomes, the settings of the channels they watch in (one line each), then their
    recent actions, newest first (`links`: a watch id's message)."""
    schedules = schedules or []
    active = [w for w in watches if w.status in (ACTIVE, PAUSED)]
    recent = [w for w in watches if w.status not in (ACTIVE, PAUSED)][:10]
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your syncwatch watches"}}
    ]
    if not active and not schedules:
        out.append(section(texts.HOME_NOTHING_RUNNING))
    for w in active[:40]:
        emoji, label = STATE_LOOK.get(w.state, STATE_LOOK[State.UNKNOWN])
        if w.status == PAUSED:
            emoji, label = ":double_vertical_bar:", f"Paused ({esc(w.pause_reason or '')})"
        line = (
            f"{emoji} {job_title(w)} — {label}\n`{w.id}` in <#{w.channel_id}>, "
            f"for {duration(now - w.created_at)}"
        )
        out.append(_with_stop(line, WATCH_STOP, w.id, confirm=True))
    if len(active) > 40:
        out.append(context(f"…and {len(active) - 40} more."))
    if schedules:
        out.append({"type": "divider"})
        out += _schedule_blocks(schedules)
    if recent:
        out.append({"type": "divider"})
        out.append(section("*Recent outcomes*"))
        lines = []
        for w in recent:
            emoji, label = STATE_LOOK.get(w.state, STATE_LOOK[State.UNKNOWN])
            if w.status == STOPPED:
                emoji, label = ":octagonal_sign:", "Stopped"
            lines.append(f"{emoji} {job_title(w)} — {label} in <#{w.channel_id}>")
        out.append(section("\n".join(lines)))
    if settings_lines:
        out.append({"type": "divider"})
        out.append(section("\n".join([texts.HOME_SETTINGS_HEAD, *settings_lines])))
    if actions:
        out.append({"type": "divider"})
        out.append(section(texts.HOME_RECENT_ACTIONS))
        shown = [_action_line(a, links or {}) for a in actions[:HOME_ACTIONS]]
        out.append(section("\n".join(shown)))
    out.append({"type": "divider"})
    out.append(section(esc(texts.HOME_TOKENS)))  # our text; its `<job id>` must not be markup
    return {"type": "home", "blocks": out[:100]}


def _action_line(entry: AuditEntry, links: Mapping[str, str]) -> str:
    """`• <when> — Stopped watching *Zoho Analytics* `1/2` (`w7k2`) in #ops · message`."""
    detail = entry.detail
    subject = ""
    if detail.get("vendor") and detail.get("ref"):
        subject = (
            f" *{esc(vendor_label(str(detail['vendor'])))}* `{esc_clip(str(detail['ref']), 80)}`"
        )
    elif detail.get("token"):
        subject = f" *{esc_clip(str(detail['token']), 40)}*"
    item = entry.watch_id or entry.schedule_id
    if item:
        subject += f" (`{esc(item)}`)"
    where = f" in <#{entry.channel_id}>" if entry.channel_id else ""
    link = links.get(entry.watch_id or "")
    message = f" · <{link}|message>" if link else ""
    when = slack_date(entry.at, "{date_short_pretty} {time}")
    return f"• {when} — {texts.action_phrase(entry.action)}{subject}{where}{message}"
