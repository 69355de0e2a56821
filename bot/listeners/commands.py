"""The `/syncwatch` slash command."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks, grammar, texts
from bot.api.tokens import TokenAdmin
from bot.listeners import settings
from bot.listeners.deps import after_ack_of, service_of, tokens_of
from bot.service import Requester, Service
from bot.slack import channel_facts

log = logging.getLogger(__name__)


# Requests that end in posts to the channel: they need a channel the bot can post in.
POSTS_HERE = (grammar.WatchRequest, grammar.WatchLinksRequest, grammar.SyncRequest)


def answer(
    ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: dict[str, Any]
) -> None:
    """The ack: usage errors, help, list and stop are answered in it (pure or SQLite
    only). A watch or sync is acked empty and started after the ack, once Slack has said
    the bot can post in the channel; in a DM or group DM it is refused in the ack."""
    service = service_of(context)
    try:
        request = grammar.parse(command.get("text") or "", service.known_secrets)
    except grammar.CommandError as err:
        ack(**blocks.render_usage_error(err).as_kwargs())  # the error *is* the ack
        return
    if isinstance(request, grammar.TokenRequest):
        answer_token(ack, request, command, respond, client, context)
        return
    if isinstance(request, grammar.SettingsRequest):
        settings.open_form(ack, command, respond, client, context)
        return
    if isinstance(request, POSTS_HERE):
        refusal = conversation_problem(command)
        if refusal is not None:
            ack(**refusal.as_kwargs())
            return
        ack()
        work = partial(start_in_channel, service, request)
        after_ack_of(context).submit(work, command, respond, client)
        return
    ack(**service.handle(request, requester(command)).as_kwargs())


def start_in_channel(
    service: Service,
    request: grammar.Request,
    command: dict[str, Any],
    respond: Respond,
    client: WebClient,
) -> None:
    """After the ack: check the bot can post in the channel, start the watch or sync
    (or schedule), answer."""
    who = requester(command)
    refusal = membership_problem(client, who.channel_id)
    reply = refusal or service.handle(request, who)
    sent = respond(**reply.as_kwargs(), response_type="ephemeral")
    if getattr(sent, "status_code", 200) != 200:  # respond() doesn't raise on HTTP errors
        log.warning(
            "the answer to %s could not be delivered (HTTP %s)", who.user_id, sent.status_code
        )


def answer_token(
    ack: Ack,
    request: grammar.TokenRequest,
    command: dict[str, Any],
    respond: Respond,
    client: WebClient,
    context: dict[str, Any],
) -> None:
    """`token list` is answered in the ack; `create` and `revoke` ask Slack about the
    token's channels first (who made them, whether the bot is in them), after the ack. The
    new token goes only to the person, through response_url (docs/architecture.md#api-tokens)."""
    admin = tokens_of(context)
    if admin is None:
        ack(text=texts.something_went_wrong("tokens"))
        return
    who = requester(command)
    if request.action == "list":
        ack(**admin.handle(request, who, {}).as_kwargs())
        return
    ack()
    work = partial(_token_after_ack, admin, request)
    after_ack_of(context).submit(work, command, respond, client)


def _token_after_ack(
    admin: TokenAdmin,
    request: grammar.TokenRequest,
    command: dict[str, Any],
    respond: Respond,
    client: WebClient,
) -> None:
    who = requester(command)
    facts = {c: channel_facts(client, c) for c in admin.channels_to_check(request, who)}
    reply = admin.handle(request, who, facts)
    respond(**reply.as_kwargs(), response_type="ephemeral")


def requester(command: dict[str, Any]) -> Requester:
    return Requester(command["user_id"], command["channel_id"], command.get("team_id"))


def conversation_problem(command: dict[str, Any]) -> blocks.Message | None:
    """A DM or group DM, told by the command itself (no Slack call): the bot posts only in
    channels. Slack names a group DM's conversation `mpdm-…` and a DM `directmessage`
    (docs/slack.md#channel-membership)."""
    channel_id = command.get("channel_id") or ""
    name = command.get("channel_name") or ""
    if name.startswith("mpdm-"):
        return blocks.render_notice(texts.NOT_IN_GROUP_DMS)
    if channel_id.startswith("D") or name == "directmessage":
        return blocks.render_notice(texts.RUN_IN_A_CHANNEL)
    return None


def membership_problem(client: WebClient, channel_id: str) -> blocks.Message | None:
    """The bot must be in the channel to post there; say how to fix it if it isn't."""
    if channel_id.startswith("D"):
        return blocks.render_notice(texts.RUN_IN_A_CHANNEL)
    try:
        info = client.conversations_info(channel=channel_id)
    except SlackApiError as err:
        code = err.response.get("error", "")
        if code == "channel_not_found":  # a private channel the bot isn't in, or none
            return blocks.render_notice(texts.NOT_IN_CHANNEL)
        if code == "missing_scope":
            # The bot may read channels and private channels (channels:read, groups:read)
            # and nothing else: what it can't read is a DM or group DM.
            return blocks.render_notice(texts.NOT_A_CHANNEL)
        log.warning("conversations.info failed for %s: %s", channel_id, code)
        return blocks.render_notice(texts.channel_check_failed(blocks.esc(code)))
    channel = info.get("channel") or {}
    if channel.get("is_mpim"):
        return blocks.render_notice(texts.NOT_IN_GROUP_DMS)
    if channel.get("is_im"):
        return blocks.render_notice(texts.RUN_IN_A_CHANNEL)
    if channel.get("is_archived"):
        return blocks.render_notice(texts.CHANNEL_ARCHIVED)
    if not channel.get("is_member"):
        return blocks.render_notice(texts.NOT_IN_CHANNEL)
    return None
