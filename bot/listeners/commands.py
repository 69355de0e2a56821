"""The `/syncwatch` slash command."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks, grammar
from bot.listeners.background import AfterAck
from bot.service import Requester, Service

log = logging.getLogger(__name__)


def register(app: App, service: Service, after: AfterAck) -> None:
    @app.command(grammar.COMMAND)
    def answer(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        """The ack: usage errors, help, list and stop are answered in it (pure or SQLite
        only); a watch is acked empty and started after the ack (it asks Slack first)."""
        try:
            request = grammar.parse(command.get("text") or "")
        except grammar.CommandError as err:
            ack(**blocks.render_usage_error(err).as_kwargs())  # the error *is* the ack
            return
        if isinstance(request, grammar.WatchRequest):
            ack()
            after.submit(partial(start_watch, request), command, respond, client)
            return
        ack(**service.handle(request, _requester(command)).as_kwargs())

    def start_watch(
        request: grammar.WatchRequest,
        command: dict[str, Any],
        respond: Respond,
        client: WebClient,
    ) -> None:
        who = _requester(command)
        refusal = membership_problem(client, who.channel_id)
        reply = refusal or service.handle(request, who)
        sent = respond(**reply.as_kwargs(), response_type="ephemeral")
        if getattr(sent, "status_code", 200) != 200:  # respond() doesn't raise on HTTP errors
            log.warning(
                "the answer to %s could not be delivered (HTTP %s)", who.user_id, sent.status_code
            )


def _requester(command: dict[str, Any]) -> Requester:
    return Requester(command["user_id"], command["channel_id"], command.get("team_id"))


def membership_problem(client: WebClient, channel_id: str) -> blocks.Message | None:
    """The bot must be in the channel to post there; say how to fix it if it isn't."""
    invite = (
        "I'm not in this channel yet, so I can't post updates here. Invite me with "
        "`/invite @syncwatch` and run the command again. Nothing was started."
    )
    if channel_id.startswith("D"):
        return blocks.render_notice(
            "Run this in a channel: watches post their updates where the team can see them. "
            "Nothing was started."
        )
    try:
        info = client.conversations_info(channel=channel_id)
    except SlackApiError as err:
        code = err.response.get("error", "")
        if code == "channel_not_found":
            return blocks.render_notice(invite)
        log.warning("conversations.info failed for %s: %s", channel_id, code)
        return blocks.render_notice(
            f":warning: Slack didn't let me check this channel (`{blocks.esc(code)}`). "
            "Nothing was started; try again in a minute."
        )
    channel = info.get("channel") or {}
    if channel.get("is_archived"):
        return blocks.render_notice("This channel is archived. Nothing was started.")
    if not channel.get("is_member"):
        return blocks.render_notice(invite)
    return None
