"""`/syncwatch settings`: the channel settings form, opened and submitted
(docs/architecture.md#channel-settings)."""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from typing import Any

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot import settings_form, texts
from bot.config import Settings
from bot.listeners.deps import after_ack_of, service_of
from bot.service import Service
from bot.slack import channel_facts
from bot.vendors import SPECS
from storage import ActorKind, AuditEntry, DatabaseUnavailable, Via

log = logging.getLogger(__name__)

DEFAULT_TZ = "UTC"  # when Slack won't say the person's own zone


def may_change(settings: Settings, user_id: str) -> bool:
    """Admins, or — when the config names none — anyone in the channel (the command is
    typed there)."""
    return not settings.admins or user_id in settings.admins


def open_form(
    ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: Any
) -> None:
    """In the ack: a DM or a person who may not change settings is refused privately;
    otherwise the form opens after the ack (with the command's trigger_id)."""
    service = service_of(context)
    channel_id = command.get("channel_id") or ""
    name = command.get("channel_name") or ""
    if channel_id.startswith("D") or name in ("directmessage",) or name.startswith("mpdm-"):
        ack(text=texts.SETTINGS_IN_A_CHANNEL)
        return
    if not may_change(service.settings, command["user_id"]):
        ack(text=texts.SETTINGS_ADMINS_ONLY)
        return
    ack()
    after_ack_of(context).submit(partial(_open, service), command, respond, client)


def route_choices(settings: Settings) -> list[settings_form.RouteChoice]:
    """A route input for each vendor that is set up, and each named connection."""
    vendors = [(s.key, s.label) for s in SPECS.values() if settings.connections(s.family)]
    families = sorted({s.family for s in SPECS.values()})
    names = sorted(
        {n for family in families for n in settings.connections(family) if n != "default"}
    )
    return settings_form.route_choices(vendors, names)


def _open(service: Service, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
    current = service.store.channel_settings(command["channel_id"])
    view = settings_form.render_modal(
        current,
        route_choices(service.settings),
        user_groups(client),
        person_tz(client, command["user_id"]),
    )
    try:
        client.views_open(trigger_id=command["trigger_id"], view=view)
    except SlackApiError as err:
        code = str(err.response.get("error", ""))
        log.warning("views.open failed: %s", code)
        respond(text=texts.settings_form_failed(code), response_type="ephemeral")


def user_groups(client: WebClient) -> list[tuple[str, str]] | None:
    """The workspace's user groups (id, name), or None when Slack won't list them (the
    `usergroups:read` scope missing, a free workspace, an error)."""
    try:
        answer = client.usergroups_list()
    except (SlackApiError, SlackClientError) as err:
        log.info("user groups can't be listed: %s", type(err).__name__)
        return None
    groups = answer.get("usergroups") or []
    out = []
    for group in groups[: settings_form.MAX_GROUP_OPTIONS]:
        handle = group.get("handle") or ""
        label = f"@{handle}" if handle else str(group.get("name") or group.get("id"))
        out.append((str(group.get("id")), label))
    return out


def person_tz(client: WebClient, user_id: str) -> str:
    """The person's own time zone from Slack, the quiet-hours zone's default."""
    try:
        tz = (client.users_info(user=user_id).get("user") or {}).get("tz")
    except (SlackApiError, SlackClientError):
        return DEFAULT_TZ
    return str(tz) if tz and settings_form.valid_zone(str(tz)) else DEFAULT_TZ


def submitted(ack: Ack, body: dict[str, Any], client: WebClient, context: Any) -> None:
    """The form's Save: checked whole (errors beside the inputs, nothing saved), then saved
    and announced in the channel."""
    service = service_of(context)
    view = body.get("view") or {}
    user_id = (body.get("user") or {}).get("id") or ""
    channel_id = str(view.get("private_metadata") or "")
    if not may_change(service.settings, user_id):
        ack(response_action="errors", errors={settings_form.MENTION: texts.SETTINGS_ADMINS_ONLY})
        return
    values = (view.get("state") or {}).get("values") or {}
    try:
        current = service.store.channel_settings(channel_id)
    except DatabaseUnavailable as err:
        ack(response_action="errors", errors={settings_form.MENTION: texts.cant_read(err.reason)})
        return
    form = settings_form.read_submission(values, current)
    errors = dict(form.errors)
    for channel, block_id in form.route_channels.items():
        problem = route_problem(client, channel)
        if problem is not None:
            errors.setdefault(block_id, problem)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    saved = replace(form.settings, updated_by=user_id, updated_at=service.clock())
    reason = service.store.problem()
    if reason is None:
        try:
            with service.store.audited():  # the change and its audit row commit together
                service.store.save_channel_settings(saved)
                service.store.audit(
                    AuditEntry(
                        action="settings.change",
                        actor_kind=ActorKind.PERSON,
                        actor=user_id,
                        via=Via.MODAL,
                        at=saved.updated_at,
                        team_id=(body.get("team") or {}).get("id"),
                        channel_id=channel_id,
                        detail={"settings": settings_form.summary(saved)},
                    )
                )
        except DatabaseUnavailable as err:
            reason = err.reason
    if reason is not None:
        ack(response_action="errors", errors={settings_form.MENTION: texts.cant_save(reason)})
        return
    log.info("channel %s settings changed by %s", channel_id, user_id)
    ack()
    note = texts.settings_changed(user_id, settings_form.summary(saved))
    after_ack_of(context).submit(partial(_announce, channel_id, note), body, _no_respond, client)


def _announce(
    channel_id: str, note: str, body: dict[str, Any], respond: Any, client: WebClient
) -> None:
    """Tell the channel who changed what. The settings are saved either way: a channel the
    bot isn't in (yet) just doesn't hear about it."""
    try:
        client.chat_postMessage(channel=channel_id, text=note, unfurl_links=False)
    except SlackApiError as err:
        log.warning("settings note not posted in %s: %s", channel_id, err.response.get("error"))


def _no_respond(**kwargs: Any) -> None:
    """A form has no response_url: nothing to answer privately through."""


def route_problem(client: WebClient, channel_id: str) -> str | None:
    """Why watches can't be routed to `channel_id` (the bot must be in it), or None."""
    try:
        facts = channel_facts(client, channel_id)
    except SlackClientError:
        return texts.settings_bad_channel("unreachable")
    if facts.error:
        return texts.settings_bad_channel(facts.error)
    if facts.is_direct:
        return texts.settings_bad_channel("not_a_channel")
    if facts.is_archived:
        return texts.SETTINGS_ROUTE_ARCHIVED
    if not facts.is_member:
        return texts.SETTINGS_ROUTE_NOT_MEMBER
    return None
