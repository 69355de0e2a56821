"""The channel settings form (docs/architecture.md#channel-settings), pure: the modal built
from the current settings, and a submission read back into settings or into the errors
Slack shows beside each input. Slack calls (is the bot in a routed channel? which user
groups exist?) are made by the listener, which passes their answers in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import blocks, texts
from storage import ChannelSettings, MentionPolicy, QuietHours
from storage.settings import CONNECTION_ROUTE, VENDOR_ROUTE

CALLBACK_ID = "settings.save"
VALUE = "value"  # every input's action id
MENTION = "mention"
BROADCAST = "broadcast"
CC_USERS = "cc_users"
CC_GROUPS = "cc_groups"
ROUTE = "route."  # + a route key: `route.vendor:zuora`, `route.connection:eu`
QUIET_START = "quiet_start"
QUIET_END = "quiet_end"
QUIET_TZ = "quiet_tz"
MAX_GROUP_OPTIONS = 100  # Slack's limit for a static select's options
MAX_CONNECTION_ROUTES = 20  # a modal holds at most 100 blocks


@dataclass(frozen=True)
class RouteChoice:
    """One route input: its key and what it is called in the form."""

    key: str
    label: str


def route_choices(
    vendors: Sequence[tuple[str, str]], connections: Sequence[str]
) -> list[RouteChoice]:
    """Inputs for each vendor (key, label) and each named connection."""
    out = [
        RouteChoice(VENDOR_ROUTE + key, texts.settings_vendor_route_label(label))
        for key, label in vendors
    ]
    out += [
        RouteChoice(CONNECTION_ROUTE + name, texts.settings_connection_route_label(name))
        for name in connections[:MAX_CONNECTION_ROUTES]
    ]
    return out


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:150]}


def _option(value: str, text: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text[:75]}, "value": value[:150]}


def _input(
    block_id: str, label: str, element: dict[str, Any], optional: bool = True
) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label),
        "optional": optional,
        "element": {**element, "action_id": VALUE},
    }


def render_modal(
    current: ChannelSettings,
    routes: Sequence[RouteChoice],
    groups: Sequence[tuple[str, str]] | None,
    default_tz: str,
) -> dict[str, Any]:
    """The modal for views.open, prefilled with `current`. `groups` are the workspace's
    user groups (id, name), or None when Slack wouldn't list them."""
    mentions = [_option(v, t) for v, t in texts.SETTINGS_MENTION_CHOICES]
    chosen = next(o for o in mentions if o["value"] == current.mention.value)
    broadcast_option = _option(BROADCAST, texts.SETTINGS_BROADCAST_OPTION)
    checkbox: dict[str, Any] = {"type": "checkboxes", "options": [broadcast_option]}
    if current.broadcast_failures:
        checkbox["initial_options"] = [broadcast_option]
    people: dict[str, Any] = {"type": "multi_users_select"}
    if current.cc_users:
        people["initial_users"] = list(current.cc_users)
    out: list[dict[str, Any]] = [
        _input(
            MENTION,
            texts.SETTINGS_MENTION_LABEL,
            {"type": "static_select", "options": mentions, "initial_option": chosen},
            optional=False,
        ),
        _input(BROADCAST, texts.SETTINGS_BROADCAST_LABEL, checkbox),
        _input(CC_USERS, texts.SETTINGS_CC_USERS_LABEL, people),
    ]
    if groups:
        options = [_option(gid, name) for gid, name in groups[:MAX_GROUP_OPTIONS]]
        element: dict[str, Any] = {"type": "multi_static_select", "options": options}
        initial = [o for o in options if o["value"] in current.cc_groups]
        if initial:
            element["initial_options"] = initial
        out.append(_input(CC_GROUPS, texts.SETTINGS_CC_GROUPS_LABEL, element))
    else:
        out.append(blocks.context(texts.SETTINGS_NO_GROUPS))
    out.append(blocks.section(texts.SETTINGS_ROUTES_HEAD))
    stored = dict(current.routes)
    for choice in routes:
        select: dict[str, Any] = {
            "type": "conversations_select",
            "filter": {"include": ["public", "private"], "exclude_bot_users": True},
        }
        if stored.get(choice.key):
            select["initial_conversation"] = stored[choice.key]
        out.append(_input(ROUTE + choice.key, choice.label, select))
    out.append(blocks.section(texts.SETTINGS_QUIET_HEAD))
    quiet = current.quiet
    start: dict[str, Any] = {"type": "timepicker"}
    end: dict[str, Any] = {"type": "timepicker"}
    if quiet is not None:
        start["initial_time"], end["initial_time"] = quiet.start, quiet.end
    zone = {"type": "plain_text_input", "initial_value": quiet.tz if quiet else default_tz}
    out += [
        _input(QUIET_START, texts.SETTINGS_QUIET_START, start),
        _input(QUIET_END, texts.SETTINGS_QUIET_END, end),
        _input(QUIET_TZ, texts.SETTINGS_QUIET_TZ, {**zone, "max_length": 64}),
    ]
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "private_metadata": current.channel_id,
        "title": _plain(texts.SETTINGS_TITLE),
        "submit": _plain(texts.SETTINGS_SAVE),
        "close": _plain(texts.SETTINGS_CANCEL),
        "blocks": out,
    }


@dataclass(frozen=True)
class Submission:
    """A form read back: the settings to save, or errors by block id (then nothing is
    saved). `route_channels` maps each routed channel to the block that named it, for the
    listener's membership check."""

    settings: ChannelSettings
    errors: dict[str, str]
    route_channels: dict[str, str]


def read_submission(
    values: Mapping[str, Mapping[str, Any]], current: ChannelSettings
) -> Submission:
    """Read the view's `state.values` on top of `current` (an input the form didn't show,
    such as user groups Slack wouldn't list, keeps its value)."""

    def field(block_id: str) -> dict[str, Any]:
        return dict((values.get(block_id) or {}).get(VALUE) or {})

    errors: dict[str, str] = {}
    mention_value = (field(MENTION).get("selected_option") or {}).get("value")
    try:
        mention = MentionPolicy(mention_value or current.mention.value)
    except ValueError:
        mention = current.mention
        errors[MENTION] = texts.SETTINGS_BAD_MENTION
    broadcast = any(
        o.get("value") == BROADCAST for o in field(BROADCAST).get("selected_options") or []
    )
    users = tuple(str(u) for u in field(CC_USERS).get("selected_users") or [])
    groups = current.cc_groups
    if CC_GROUPS in values:
        groups = tuple(str(o.get("value")) for o in field(CC_GROUPS).get("selected_options") or [])
    routes: dict[str, str] = {}
    route_channels: dict[str, str] = {}
    for block_id in values:
        if not block_id.startswith(ROUTE):
            continue
        channel = field(block_id).get("selected_conversation")
        if channel and channel != current.channel_id:
            routes[block_id.removeprefix(ROUTE)] = str(channel)
            route_channels.setdefault(str(channel), block_id)
    quiet = _read_quiet(field, errors)
    settings = replace(
        current,
        mention=mention,
        broadcast_failures=broadcast,
        cc_users=users,
        cc_groups=groups,
        routes=tuple(sorted(routes.items())),
        quiet=quiet,
    )
    return Submission(settings, errors, route_channels)


def _read_quiet(field: Any, errors: dict[str, str]) -> QuietHours | None:
    start = field(QUIET_START).get("selected_time")
    end = field(QUIET_END).get("selected_time")
    zone = (field(QUIET_TZ).get("value") or "").strip()
    if not start and not end:
        return None
    if not start or not end:
        errors[QUIET_START if not start else QUIET_END] = texts.SETTINGS_QUIET_HALF
        return None
    if start == end:
        errors[QUIET_END] = texts.SETTINGS_QUIET_EMPTY
    if not zone:
        errors[QUIET_TZ] = texts.SETTINGS_NEED_ZONE
    elif not valid_zone(zone):
        errors[QUIET_TZ] = texts.SETTINGS_BAD_ZONE
    if errors:
        return None
    return QuietHours(str(start), str(end), zone)


def valid_zone(name: str) -> bool:
    # ZoneInfo reads files named by the text: refuse anything that isn't a zone's shape
    # before it gets there (no "..", no absolute paths).
    if not name or len(name) > 64 or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def summary(settings: ChannelSettings) -> str:
    """Every setting in one line, for the note in the channel and App Home."""
    cc = " ".join(
        [f"<!subteam^{blocks.esc(g)}>" for g in settings.cc_groups]
        + [f"<@{blocks.esc(u)}>" for u in settings.cc_users]
    )
    routes = ", ".join(
        f"{blocks.route_reason(key)} → <#{blocks.esc(channel)}>" for key, channel in settings.routes
    )
    quiet = settings.quiet
    window = f"{quiet.start}–{quiet.end} {blocks.esc(quiet.tz)}" if quiet else ""
    return texts.settings_summary(
        settings.mention.value, settings.broadcast_failures, cc, routes, window
    )
