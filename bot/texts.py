"""What the bot says to people, in one place: help, answers to commands, refusals and
notices, and the notes it adds to a thread. Pure: plain strings, or small functions that
fill one in. How a job's state reads in the channel (its parent message and its state
replies) is rendered from the watch itself, in blocks.py.

Values that come from people or vendors are escaped by the caller (`blocks.esc`) before
they are passed in; the texts here are Slack mrkdwn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.urls import UrlShape
    from bot.vendors import VendorSpec

COMMAND = "/syncwatch"

# -- before a watch starts: can the bot post where it was asked? --------------------------

RUN_IN_A_CHANNEL = (
    "Run this in a channel: watches post their updates where the team can see them. "
    "Invite me there with `/invite @syncwatch`. Nothing was started."
)
NOT_IN_GROUP_DMS = (
    "I don't work in group DMs: watches and syncs post their updates in a channel. Run this "
    "in a channel (a private one is fine) and invite me there with `/invite @syncwatch`. "
    "Nothing was started."
)
NOT_A_CHANNEL = (
    "I can't see this conversation, so I can't post updates in it: it looks like a DM or "
    "group DM, and I only work in channels. Run this in a channel (a private one is fine) "
    "and invite me there with `/invite @syncwatch`. Nothing was started."
)
NOT_IN_CHANNEL = (
    "I'm not in this channel yet, so I can't post updates here. Invite me with "
    "`/invite @syncwatch` and run the command again. Nothing was started."
)
CHANNEL_ARCHIVED = "This channel is archived. Nothing was started."


def channel_check_failed(code: str) -> str:
    return (
        f":warning: Slack didn't let me check this channel (`{code}`). "
        "Nothing was started; try again in a minute."
    )


# -- something broke on our side ----------------------------------------------------------


def something_went_wrong(ref: str) -> str:
    return f"Something went wrong (ref {ref}). Nothing was changed; try again."


def cant_save(reason: str) -> str:
    """The database can't take writes (deleted, read-only, disk full): said instead of
    "Started a watch", so nobody trusts a watch that would vanish at the next restart."""
    return (
        f":warning: I can't save anything right now ({reason}), so nothing was started or "
        "changed. Try again later, or tell whoever runs syncwatch."
    )


def cant_read(reason: str) -> str:
    return (
        f":warning: I can't read my database right now ({reason}). Try again later, or tell "
        "whoever runs syncwatch."
    )


# -- starting watches ---------------------------------------------------------------------


def started(noun: str, ids: str, first_id: str) -> str:
    return (
        f":eyes: Started {noun}: {ids}. Updates go to the message I just posted in this "
        f"channel and its thread. Stop with `{COMMAND} stop {first_id}`."
    )


def started_routed(noun: str, ids: str, first_id: str) -> str:
    return (
        f":eyes: Started {noun}: {ids}. Updates go to its message and thread there. "
        f"Stop with `{COMMAND} stop {first_id}`."
    )


def already_watching(title: str, watch_id: str, where: str, channel: str = "this channel") -> str:
    return (
        f"I'm already watching {title} in {channel} as `{watch_id}` — see {where}. "
        "Nothing new was started."
    )


def channel_quota(active: int, limit: int) -> str:
    return (
        f":no_entry: This channel already has {active} active watches; the limit is {limit}. "
        f"Nothing was started. Stop finished ones with `{COMMAND} list`, or ask whoever runs "
        "syncwatch to raise `[quotas]`."
    )


def person_quota(active: int, limit: int) -> str:
    return (
        f":no_entry: You already have {active} active watches; the limit is {limit} per "
        "person. Nothing was started. Your watches are on my App Home tab, each with a Stop "
        "button."
    )


def vendor_not_set_up(label: str) -> str:
    return (
        f":warning: {label} isn't set up on this syncwatch, so nothing was started. Ask "
        "whoever runs it to configure the credentials (see `syncwatch check`)."
    )


def no_such_connection(family: str, connection: str, configured: str) -> str:
    return (
        f":warning: There's no {family} connection named `{connection}`. "
        f"Configured: {configured}. Nothing was started."
    )


# -- syncs and schedules ------------------------------------------------------------------

SYNCS_UNAVAILABLE = (
    ":construction: Datasource syncs aren't available in this version, so nothing was started."
)
NOT_ON_SYNC_ALLOWLIST = (
    ":no_entry: You're not on the sync allowlist for this connection, so nothing was started. "
    "Ask whoever runs syncwatch to add you (or this channel)."
)


def datasource_tied_to_connection(ref: str, tied: str, asked: str) -> str:
    return (
        f":warning: Datasource `{ref}` is set up for connection `{tied}`, not `{asked}`. "
        "Nothing was started."
    )


def bad_schedule(problem: str, ref: str) -> str:
    return (
        f":warning: {problem}. Nothing was scheduled. Example: "
        f"`{COMMAND} sync {ref} at 06:30 tz Europe/Berlin`."
    )


def _minutes(count: float) -> str:
    count = round(count)
    return "1 minute" if count == 1 else f"{count:,} minutes"


def schedule_never_runs(cron: str, ref: str) -> str:
    return (
        f":warning: `{cron}` matches no date, so it would never run. Nothing was scheduled. "
        f"Example: `{COMMAND} sync {ref} at 06:30 tz Europe/Berlin`."
    )


def schedule_too_frequent(cron: str, gap_minutes: float, floor_minutes: int, ref: str) -> str:
    return (
        f":warning: `{cron}` runs as often as every {_minutes(gap_minutes)}; schedules here "
        f"run at most once every {_minutes(floor_minutes)}. Nothing was scheduled. Pick a "
        f"sparser time, e.g. `{COMMAND} sync {ref} at 06:30` (daily), or run a sync now "
        f"with `{COMMAND} sync {ref}`. The minimum is set by whoever runs syncwatch "
        "(`SYNCWATCH_MIN_SCHEDULE_MINUTES`); ask them if you need it lower."
    )


def schedule_runs_spaced(schedule_id: str, floor_minutes: int) -> str:
    return (
        f"Schedule {schedule_id} fires more often than the minimum of "
        f"{_minutes(floor_minutes)} between runs, so its runs are spaced that far apart."
    )


def scheduled(
    ref: str, schedule_id: str, cron: str, tz: str, next_run: str, alerts: str = ""
) -> str:
    """`alerts` is the policy's label when it is not `every`."""
    if alerts:
        posts = (
            f"It {alerts}: a run that goes well posts nothing here (it shows in "
            f"`{COMMAND} list` and on my App Home). Change with "
            f"`{COMMAND} schedule {schedule_id} alert every`"
        )
    else:
        posts = "Each run gets its own message here"
    return (
        f":calendar: Scheduled `{ref}` as `{schedule_id}`: `{cron}` ({tz}). Next run "
        f"{next_run}. {posts}; stop with `{COMMAND} stop {schedule_id}`."
    )


def schedule_ran_late(schedule_id: str, due: str) -> str:
    return f"Schedule {schedule_id} ran late: it was due {due} but syncwatch was not running then."


def schedule_run_skipped(schedule_id: str) -> str:
    return f"Schedule {schedule_id}'s next run was skipped: this sync is still running."


# -- alert policy for schedules (docs/architecture.md#alert-policy) ------------------------


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def alert_policy_label(policy: str, every: int) -> str:
    """What a schedule's policy posts, for `list`, App Home and answers."""
    if policy == "failures":
        return "posts failed runs only"
    if policy == "smart":
        if every == 1:
            return "posts every failed run, and once when it is back to normal"
        return (
            f"posts the 1st failed run, then every {every} more in a row (the "
            f"{ordinal(1 + every)}, {ordinal(1 + 2 * every)}, …), and once when it is back "
            "to normal"
        )
    return "posts every run"


def streak_failed(count: int, since: str, good_before: int) -> str:
    """A failed scheduled run's parent: where it stands in the schedule's streak."""
    if count == 1:
        after = (
            f" after {good_before} good run{'s' if good_before != 1 else ''}" if good_before else ""
        )
        return f":rotating_light: First failed run{after}"
    return f":rotating_light: {ordinal(count)} failure in a row since {since}"


def back_to_normal(failures: int) -> str:
    return (
        f":white_check_mark: Back to normal after {failures} failure{'s' if failures != 1 else ''}"
    )


def failing_for(count: int) -> str:
    """A schedule's current failure streak in `list` and App Home."""
    return f":rotating_light: {count} failed run{'s' if count != 1 else ''} in a row"


def schedule_alert_changed(schedule_id: str, label: str) -> str:
    return f":bell: Schedule `{schedule_id}` now {label}."


def schedule_alert_unchanged(schedule_id: str, label: str) -> str:
    return f"Schedule `{schedule_id}` already {label}; nothing changed."


def digest_heading(cadence: str, tz: str) -> str:
    period = "Daily" if cadence == "daily" else "Weekly"
    return (
        f":bar_chart: *{period} digest of quiet scheduled runs* ({tz}) — the runs that posted "
        "nothing here since the last digest:"
    )


def digest_line(schedule_id: str, title: str, ok: int, failed: int) -> str:
    runs = f"{ok + failed} run{'s' if ok + failed != 1 else ''}"
    if not failed:
        outcome = "all succeeded" if ok != 1 else "succeeded"
    elif not ok:
        outcome = "all failed" if failed != 1 else "failed"
    else:
        outcome = f"{ok} ok, {failed} failed"
    return f"• `{schedule_id}` {title}: {runs}, {outcome}"


def digest_label(cadence: str | None, tz: str, at: str) -> str:
    """`at`: the digest's local time (bot/digests.py DIGEST_HOUR)."""
    if not cadence:
        return ""
    when = "every day" if cadence == "daily" else "every Monday"
    return f"quiet runs summed up here {when} at {at} ({tz})"


def schedule_digest_changed(schedule_id: str, label: str) -> str:
    if not label:
        return f":bell: Schedule `{schedule_id}` no longer has a digest."
    return f":bar_chart: Schedule `{schedule_id}`: {label}."


SYNC_RETRY_ASKED = "asked to run the sync again."


def no_sync_here(watch_id: str) -> str:
    return f"There's no sync `{watch_id}` here."


def cant_retry_sync(watch_id: str) -> str:
    return (
        f"Sync `{watch_id}` can't be retried now: it is already running again, or another "
        "sync of that datasource is running in this channel."
    )


# -- buttons and stop ---------------------------------------------------------------------


def no_watch_here(watch_id: str) -> str:
    return f"There's no watch `{watch_id}` here."


def no_watch_here_to_stop(watch_id: str) -> str:
    return (
        f":warning: There's no watch `{watch_id}` here. "
        f"`{COMMAND} list` shows the ones that are running in this channel."
    )


def no_schedule_here(schedule_id: str) -> str:
    return (
        f":warning: There's no schedule `{schedule_id}` here. "
        f"`{COMMAND} list` shows the ones in this channel."
    )


def no_errors_to_show(watch_id: str) -> str:
    return f"Watch `{watch_id}` has no errors to show."


ERRORS_ALREADY_IN_THREAD = "The full error list is already in the thread."


def already_ended(watch_id: str, status: str) -> str:
    return f"Watch `{watch_id}` is already {status}; nothing to stop."


def had_already_ended(watch_id: str) -> str:
    return f"Watch `{watch_id}` had already ended."


def has_ended(watch_id: str, status: str) -> str:
    return f"Watch `{watch_id}` has ended ({status})."


def stopped_watch(title: str, watch_id: str) -> str:
    return (
        f":octagonal_sign: Stopped watching {title} (`{watch_id}`). "
        "The job itself keeps running at the vendor."
    )


def schedule_already_stopped(schedule_id: str) -> str:
    return f"Schedule `{schedule_id}` is already stopped."


def stopped_schedule(schedule_id: str, ref: str, cron: str, tz: str) -> str:
    return (
        f":octagonal_sign: Stopped schedule `{schedule_id}` (`{ref}`, `{cron}` {tz}). "
        "A sync already running is not touched."
    )


def not_allowed(what: str) -> str:
    return (
        f":no_entry: Only the person who started it, people on this connection's allowlist or "
        f"syncwatch admins can {what}. `{COMMAND} help permissions` explains who is allowed."
    )


# -- the thread: notes about result files -------------------------------------------------


def pause_reason(slack_error: str) -> str:
    """Why a watch was paused, for its parent message, from Slack's error code."""
    return {
        "not_in_channel": "I was removed from this channel",
        "channel_not_found": "the channel is gone or I can't see it",
        "is_archived": "the channel is archived",
    }.get(slack_error, slack_error)


def result_file_lost(name: str) -> str:
    return (
        f":warning: The result file `{name}` was lost before I could post it (the bot's "
        "spool directory was cleared). Get it from the vendor."
    )


def result_file_empty(name: str) -> str:
    return f"The result file `{name}` is empty: no rows."


def result_file_refused(code: str) -> str:
    return f":warning: I couldn't attach the result file: Slack said `{code}`."


def result_file_unavailable(reason: str) -> str:
    return f"The result file could not be fetched: {reason}"


def cant_save_result_file(reason: str) -> str:
    return f"couldn't save the result file here ({reason})"


def vendor_reply_too_deep(vendor: str) -> str:
    return f"{vendor} sent an unreadable reply (nested too deeply)"


def internal_check_error(ref: str) -> str:
    return f"internal error while checking (ref {ref})"


# -- command answers ----------------------------------------------------------------------

HOME_NOTHING_RUNNING = f"Nothing running. Start one from a channel: `{COMMAND} help`."
HOME_RECENT_ACTIONS = "*Your recent actions*"
# What the App Home tab says a person did, by audit action (docs/operations.md#audit).
ACTION_PHRASES = {
    "watch.create": "Started watching",
    "sync.start": "Started a sync of",
    "watch.stop": "Stopped watching",
    "watch.retry": "Retried the sync of",
    "watch.refresh": "Asked for a fresh check of",
    "watch.errors": "Posted the full error list of",
    "schedule.create": "Scheduled syncs of",
    "schedule.stop": "Stopped the schedule of",
    "schedule.alert": "Changed what a schedule posts:",
    "schedule.digest": "Changed a schedule's digest:",
    "settings.change": "Changed the notification settings",
    "token.create": "Made the API token",
    "token.revoke": "Revoked the API token",
}


def action_phrase(action: str) -> str:
    """The start of a person's App Home line for `action` (an action this version has no
    words for is shown by its name)."""
    return ACTION_PHRASES.get(action) or f"`{action}`"


NOTHING_IN_CHANNEL = (
    f"No active watches or schedules in this channel. Start one with `{COMMAND} watch …` or "
    f"`{COMMAND} sync …` (`{COMMAND} help` shows how)."
)


def usage_error(message: str, example: str) -> str:
    return f":warning: {message}\nExample: `{example}` · `{COMMAND} help` for more."


# -- API tokens (Slack) -------------------------------------------------------------------


def token_created(name: str, token: str, channels: str, hooks: str) -> str:
    """The one time a token is shown: privately, to the admin who made it."""
    return (
        f":key: Token *{name}* for {channels}. Copy it now: it is shown only this once and "
        f"I keep only a hash of it.\n`{token}`\n"
        f"Scripts send it as `Authorization: Bearer …` to the watch API; watches they start "
        f'say "started by *{name}*".\n*Vendor callback URLs* (they hold the token\'s '
        f"callback key, not the token):\n{hooks}\n`{COMMAND} help tokens` has examples."
    )


def hook_url_line(label: str, field: str, url: str) -> str:
    return f"• {label} — `{field}`: `{url}`"


def hooks_need_public_url(paths: str) -> str:
    return (
        f"{paths}\n(put syncwatch's public address in front: whoever runs it sets "
        "`SYNCWATCH_PUBLIC_URL`, then `syncwatch hook-url <vendor> <token>` prints them whole)"
    )


def token_name_taken(name: str) -> str:
    return (
        f":warning: There is already a token named *{name}*. Nothing was created. Pick "
        f"another name, or `{COMMAND} token revoke {name}` first."
    )


def token_channel_problem(channel: str, why: str) -> str:
    return (
        f":warning: I can't post in <#{channel}> ({why}), so a token for it would start "
        "watches nobody sees. Invite me there with `/invite @syncwatch` first. Nothing was "
        "created."
    )


def not_token_admin(what: str, has_admins: bool) -> str:
    rule = (
        "syncwatch admins (the `admins` of its config)"
        if has_admins
        else "the person who created each of its channels (syncwatch has no `admins` set)"
    )
    return f":no_entry: Only {rule} may {what}. Nothing was changed."


def no_such_token(name: str) -> str:
    return f":warning: There's no token named *{name}*. `{COMMAND} token list` shows them."


def token_in_config(name: str) -> str:
    return (
        f":warning: Token *{name}* comes from syncwatch's config file; whoever runs syncwatch "
        "removes it there (and restarts). Nothing was changed."
    )


def token_revoked(name: str) -> str:
    return (
        f":wastebasket: Revoked token *{name}*: the API refuses it and its callback URLs "
        "answer 404 from now on. Watches it started keep running."
    )


NO_TOKENS_HERE = (
    f"No API tokens for this channel. An admin makes one with `{COMMAND} token create <name>`."
)


def token_list_line(name: str, channels: str, origin: str) -> str:
    return f"• *{name}* — {channels} · {origin}"


# -- the watch API's errors (JSON `message`s: plain text, no Slack markup) -------------------

API_UNAUTHORIZED = "A valid API token is required: send it as `Authorization: Bearer swt_…`."
API_NOT_FOUND = "There is no such watch for this token."
API_NO_ROUTE = "There is nothing at this address; see /api/v1/openapi.json."
API_BODY_TOO_LARGE = "The request body is over 64 KB."
API_INVALID_JSON = "The body must be a JSON object (UTF-8)."
API_NOT_AN_OBJECT = "The body must be a JSON object."
API_CHANNEL_REQUIRED = "This token has several channels: say which one with `channel`."
API_NOT_IN_CHANNEL = (
    "syncwatch is not a member of that channel, so it can't post there: /invite @syncwatch."
)
API_CHANNEL_ARCHIVED = "That channel is archived."
API_SLACK_UNAVAILABLE = "Slack could not be asked about the channel; try again shortly."
API_IDEMPOTENCY_REUSED = "This Idempotency-Key was already used with a different body."
API_IDEMPOTENCY_BUSY = "A request with this Idempotency-Key is still being answered; retry."
API_BAD_IDEMPOTENCY_KEY = "Idempotency-Key must be 1 to 200 visible ASCII characters."
API_NO_JOB_ID = "No job id found in the callback (query `job`, `jobId` or `id`, or the body)."


def api_method_not_allowed(allowed: str) -> str:
    return f"Use {allowed} here."


def api_rate_limited(seconds: int) -> str:
    return f"Too many requests for this token; retry in {seconds} s."


def api_unknown_field(names: str) -> str:
    return f"Unknown field(s): {names}."


def api_missing_field(name: str) -> str:
    return f"`{name}` is required."


def api_invalid_field(name: str, expected: str) -> str:
    return f"`{name}` must be {expected}."


def api_unknown_vendor(name: str, known: str) -> str:
    return f"Unknown vendor {name!r}. Known: {known}."


def api_vendor_not_configured(label: str) -> str:
    return f"{label} isn't set up on this syncwatch; nothing was started."


def api_unknown_connection(family: str, name: str, configured: str) -> str:
    return f"There's no {family} connection named {name!r}. Configured: {configured}."


def api_channel_not_allowed(channel: str) -> str:
    return f"This token may not post in {channel}."


def api_unavailable(reason: str) -> str:
    return f"syncwatch can't save anything right now ({reason}); nothing was changed."


def api_quota(active: int, limit: int, whose: str) -> str:
    return f"{whose} already has {active} active watches; the limit is {limit}."


def api_internal_error(ref: str) -> str:
    return f"Something went wrong (ref {ref}); nothing was changed."


# -- help ---------------------------------------------------------------------------------

NOT_IN_THREADS = "Slash commands can't be used inside threads; run them in the channel."


def help_intro(topics: Iterable[str]) -> str:
    return (
        f"*syncwatch* watches long-running vendor jobs and tells this channel how they end.\n"
        f"• `{COMMAND} watch <vendor> <job-ref>` — watch a job\n"
        f"• `{COMMAND} sync <workspace-id>/<datasource-id>` — run a datasource sync\n"
        f"• `{COMMAND} watch <link>` — or paste a vendor API link\n"
        f"• `{COMMAND} list` — active watches and schedules in this channel\n"
        f"• `{COMMAND} stop <watch-id | schedule-id>` — stop watching\n"
        f"• `{COMMAND} schedule <schedule-id> alert every | failures | smart` — which runs "
        "of a schedule post here\n"
        f"• `{COMMAND} token create <name>` — let a script or a vendor callback start "
        "watches here (admins)\n"
        f"• `{COMMAND} settings` — this channel's mentions, routes and quiet hours\n"
        f"• `{COMMAND} help <topic>` — topics: {', '.join(topics)}"
    )


def help_sections(
    specs: Sequence[VendorSpec],
    url_shapes: Iterable[UrlShape],
    schedule_floor_minutes: int = 60,
    settings_by_admins: bool = False,
) -> dict[str, str]:
    """Each `help <topic>` answer, by topic (unescaped: placeholders like `<vendor>`)."""
    vendor_lines = "\n".join(
        f"• `{spec.key}` (alias `{'`, `'.join(spec.aliases[:2])}`): {spec.label}, "
        f"job ref `{spec.ref_syntax}` — e.g. `{COMMAND} watch {spec.key} {spec.example_ref}`"
        for spec in specs
    )
    first = specs[0]
    return {
        "watch": (
            f"*Watch a job* — `{COMMAND} watch <vendor> <job-ref> [<job-ref> …] [as <connection>] "
            f"[every <interval>]`\n"
            f"e.g. `{COMMAND} watch {first.key} {first.example_ref}`\n"
            "I post one message here, keep it current, explain each change in its thread, and "
            "mention you when the job ends. `every 30s` sets how often I check (vendors have "
            "minimums); `as eu-team` picks a named connection from syncwatch's config.\n"
            "Where the vendor counts the work (Zoho Analytics and Zoho CRM rows, Micro rows, "
            'Zuora batches), the message shows the time left ("~4 min left") from the pace of '
            "my last few checks, once there are two; it isn't shown when the job stalls, or "
            "when it would be more than a day."
        ),
        "sync": (
            f"*Run a datasource sync* — `{COMMAND} sync <workspace-id>/<datasource-id> "
            "[as <connection>] [at <HH:MM or cron> [tz <zone>]]`\n"
            f"e.g. `{COMMAND} sync 2480011000000498001/2480011000000630011` now, or "
            f"`{COMMAND} sync 2480011000000498001/2480011000000630011 at 06:30 tz Europe/Berlin` "
            "every day. I trigger the Zoho Analytics sync, then watch until Zoho records how it "
            "went; a failed sync gets a *Retry sync* button. Datasource passwords live in "
            "syncwatch's config, never in Slack. `list` shows schedules; `stop s3xq` ends one."
        ),
        "links": (
            f"*Paste a link* — `{COMMAND} watch <link> [<link> …]` works out the vendor and ids "
            "from a vendor API link (nothing is fetched from it). Links I understand:\n"
            + "\n".join(f"• {shape.example}" for shape in url_shapes)
            + "\nSeveral links, even of different vendors, start one watch each."
        ),
        "schedules": (
            f"*Schedules* — `{COMMAND} sync <ws>/<ds> at 06:30` (daily) or "
            f"`at 0 6 * * 1-5` (a 5-field cron), read in `tz <IANA zone>` (default UTC). Each "
            f"run posts its own message. Runs are at least {_minutes(schedule_floor_minutes)} "
            "apart (the operator's minimum). A run missed while syncwatch was down runs once when "
            f"it is back and says it ran late. `{COMMAND} list` shows the next run; "
            f"`{COMMAND} stop s3xq` ends a schedule.\n"
            "*Alerts* — add `alert <policy>` to choose which runs post here: `alert every` "
            "(the default: each run), `alert failures` (only failed runs, with their "
            "mention), or `alert smart` (the 1st failure in a row, then every 5 more: the "
            "6th, 11th, …, and one message when it is back to normal; `alert smart every 3` "
            "makes it the 4th, 7th, …). "
            "Runs that go well then post nothing, but stay in `list` and on my App Home. A "
            'failed run\'s message shows its streak ("3rd failure in a row since …"). '
            f"Change it later with `{COMMAND} schedule s3xq alert failures` (who may stop a "
            f"schedule may change it), e.g. `{COMMAND} sync <ws>/<ds> at 06:30 alert failures`.\n"
            "*Digest* — add `digest daily` or `digest weekly` (or later "
            f"`{COMMAND} schedule s3xq digest daily|weekly|off`) to get one message here at "
            "09:00 in the schedule's zone, every day or every Monday, summing up the runs "
            "that posted nothing since the last one."
        ),
        "permissions": (
            "*Who may do what* — anyone in a channel I'm in may watch jobs and list. A "
            "connection's syncs may be run by anyone, unless the operator set a sync allowlist "
            "for it (then only listed people and channels). *Stop*, *Retry sync*, and "
            "stopping a schedule or changing its alerts or digest: the person who started it, "
            "people on that connection's allowlist, "
            "and syncwatch admins. Others get a private refusal. API tokens "
            f"(`{COMMAND} help tokens`): syncwatch admins, or when none are set, whoever "
            "created each of the token's channels. Every change (watches started and stopped, "
            "retries, refreshes, schedules, tokens) is recorded with who made it: your own "
            "recent ones are on my App Home tab, and operators read them all with "
            "`syncwatch audit`."
        ),
        "list": (
            f"*List* — `{COMMAND} list` shows this channel's active watches and schedules, each "
            "with a Stop button. Your own are also on my App Home tab."
        ),
        "stop": (
            f"*Stop* — `{COMMAND} stop w7k2` stops watching (the job itself keeps running). "
            "The id is shown in the watch's message and in `list`; the *Stop watching* button "
            "does the same."
        ),
        "vendors": f"*Vendors*\n{vendor_lines}",
        "tokens": tokens_help(),
        "settings": settings_help(settings_by_admins),
    }


HOME_TOKENS = (
    "*Scripts and vendor callbacks* — jobs that scripts start can show up here by themselves. "
    f"An admin makes a token in the channel with `{COMMAND} token create nightly-etl` "
    "(shown once, privately, with its callback URLs); the script then calls\n"
    "```curl -X POST $SYNCWATCH/api/v1/watches -H 'Authorization: Bearer swt_…' "
    '-H \'Content-Type: application/json\' -d \'{"vendor": "zuora", "ref": "<job id>"}\'```'
    f"\n`{COMMAND} help tokens` says more."
)


def tokens_help() -> str:
    """`help tokens`: the API and callbacks, with things to copy."""
    return (
        f"*API tokens* — `{COMMAND} token create <name> [<#channel> …]` (default: this "
        f"channel), `{COMMAND} token list`, `{COMMAND} token revoke <name>`. Only syncwatch "
        "admins may create or revoke one (the `admins` of its config; when none are set, "
        "whoever created each of the token's channels). The token is shown once, privately; "
        'I keep only its hash. Watches it starts say "started by *<name>*".\n'
        "*Start a watch from a script* (201, or 200 with the watch already running):\n"
        "```curl -X POST https://<syncwatch>/api/v1/watches -H 'Authorization: Bearer swt_…' "
        "-H 'Content-Type: application/json' -H 'Idempotency-Key: run-2024-06-01' "
        '-d \'{"vendor": "zuora", "ref": "2c92c0f8…", "requested_by": "U0ALICE"}\'```\n'
        "*Wait for it*: `curl https://<syncwatch>/api/v1/watches/<id> -H 'Authorization: Bearer "
        "swt_…'` gives its state, vendor status, progress, files and link; `-X DELETE` stops "
        "it. The contract: `/api/v1/openapi.json`.\n"
        "*Vendor callbacks* — paste the token's callback URL (shown with it; `syncwatch "
        "hook-url <vendor> <name>` prints it) into the vendor, and a job announces itself: "
        "Zuora AQuA `notifyUrl` = `…/hooks/zuora/<key>?job=${JOBID}&status=${STATUS}`; Zoho "
        "Analytics import `callbackUrl` = `…/hooks/zoho-analytics/<key>?workspace=<workspace-id>`; "
        "Zoho CRM bulk write `callback.url` = `…/hooks/zoho-crm/<key>`. A watched job is checked "
        "at once; an unwatched one gets a watch in the token's (first) channel. I only take the "
        "job id from a callback: my own check of the job decides what it says."
    )


# -- channel settings (docs/architecture.md#channel-settings) ------------------------------


def settings_help(by_admins: bool) -> str:
    """`help settings`: every setting, and who may change them here."""
    who = (
        "Only syncwatch admins (the `admins` of its config) may change them."
        if by_admins
        else "No syncwatch admins are configured, so anyone in the channel may change them."
    )
    return (
        f"*Channel settings* — `{COMMAND} settings` in a channel opens a form with this "
        f"channel's settings. {who}\n"
        "• *Mention the requester* when a job ends: always (the default), only on failures "
        "(failed, partial, cancelled, expired, timed out) or never.\n"
        "• *Broadcast failures*: a failure reply is also sent to the channel.\n"
        "• *On failure, also mention* user groups and people (cc at the end of the reply).\n"
        "• *Routes*: watches of a vendor, or of a named connection, started here post into "
        "another channel (one I'm in); a connection's route wins over its vendor's.\n"
        "• *Quiet hours* (start, end, time zone; may cross midnight): thread replies that "
        "aren't failures wait, and each watch gets one summary reply when quiet hours end "
        "(then its files). Failures still post at once. The top message keeps updating.\n"
        "Settings are per channel; my App Home tab shows those of your channels."
    )


SETTINGS_IN_A_CHANNEL = (
    "Settings are per channel: run `/syncwatch settings` in the channel whose notifications "
    "you want to change."
)
SETTINGS_ADMINS_ONLY = (
    "Only syncwatch admins may change this channel's settings (the `admins` of its config). "
    f"`{COMMAND} help settings` shows what they are."
)
SETTINGS_NOT_A_MEMBER = "Only people in this channel may change its settings. Nothing was changed."
SETTINGS_TITLE = "Channel settings"
SETTINGS_SAVE = "Save"
SETTINGS_CANCEL = "Cancel"
SETTINGS_MENTION_LABEL = "Mention the requester when a job ends"
SETTINGS_MENTION_CHOICES = (
    ("always", "Always"),
    ("failures", "Only on failures"),
    ("never", "Never"),
)
SETTINGS_BROADCAST_LABEL = "Failures"
SETTINGS_BROADCAST_OPTION = "Also send failure replies to the channel"
SETTINGS_CC_USERS_LABEL = "On failure, also mention these people"
SETTINGS_CC_GROUPS_LABEL = "On failure, also mention these user groups"
SETTINGS_NO_GROUPS = (
    "_User groups can't be listed here (Slack didn't let me read them); people still can be "
    "picked above._"
)
SETTINGS_ROUTES_HEAD = (
    "*Routes* — watches started here post into another channel instead (one I'm in)."
)
SETTINGS_QUIET_HEAD = (
    "*Quiet hours* — thread replies that aren't failures wait until they end, then come as "
    "one summary per watch. Leave start and end empty for none."
)
SETTINGS_QUIET_START = "Quiet from"
SETTINGS_QUIET_END = "Quiet until"
SETTINGS_QUIET_TZ = "Time zone (IANA, e.g. Europe/Berlin)"


def settings_vendor_route_label(vendor: str) -> str:
    return f"{vendor} watches go to"


def settings_connection_route_label(connection: str) -> str:
    return f"Watches on connection {connection} go to"


def settings_bad_channel(code: str) -> str:
    return f"I can't use that channel (Slack says `{code}`). Pick another one."


SETTINGS_ROUTE_NOT_MEMBER = (
    "I'm not in that channel, so I couldn't post there. Invite me with `/invite @syncwatch` "
    "first, or pick another channel."
)
SETTINGS_ROUTE_ARCHIVED = "That channel is archived. Pick another one."
SETTINGS_QUIET_EMPTY = "Quiet hours need different start and end times."
SETTINGS_QUIET_HALF = "Fill in both start and end, or neither."
SETTINGS_BAD_ZONE = "That isn't a time zone I know. Use an IANA name such as Europe/Berlin."
SETTINGS_NEED_ZONE = "Quiet hours need a time zone, such as Europe/Berlin."


def settings_changed(user_id: str, summary: str) -> str:
    return f":gear: <@{user_id}> changed this channel's settings: {summary}"


def settings_summary(
    mention: str,
    broadcast: bool,
    cc: str,
    routes: str,
    quiet: str,
) -> str:
    """One line that says every setting (parts already escaped)."""
    mention_text = {
        "always": "mention the requester on every outcome",
        "failures": "mention the requester only on failures",
        "never": "never mention the requester",
    }[mention]
    parts = [mention_text]
    if broadcast:
        parts.append("failures are sent to the channel")
    if cc:
        parts.append(f"failures also mention {cc}")
    if routes:
        parts.append(f"routes: {routes}")
    parts.append(f"quiet hours {quiet}" if quiet else "no quiet hours")
    return "; ".join(parts) + "."


def routed_note(channel_id: str, why: str) -> str:
    return f"Watching in <#{channel_id}> (this channel routes {why} there)."


def quiet_digest_head(count: int, window: str | None) -> str:
    during = f"during quiet hours ({window})" if window else "during quiet hours"
    noun = "update" if count == 1 else "updates"
    return f":zzz: {count} {noun} held {during}:"


HOME_SETTINGS_HEAD = "*Channel settings*"
SETTINGS_BAD_MENTION = "Pick one of the choices."


def settings_form_failed(code: str) -> str:
    return (
        f":warning: Slack didn't open the settings form (`{code}`). Nothing was changed; "
        "run the command again."
    )
