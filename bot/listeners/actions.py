"""Buttons on the parent message."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App, Respond

from bot import blocks
from bot.service import Requester, Service

OURS = re.compile(r"^(watch|sync)\.[a-z_]+$")


def _requester(body: dict[str, Any]) -> Requester:
    channel = (body.get("channel") or {}).get("id") or ""
    return Requester(body["user"]["id"], channel, (body.get("team") or {}).get("id"))


def register(app: App, service: Service) -> None:
    @app.action(blocks.WATCH_STOP)
    def on_stop(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        ack()
        who = _requester(body)
        notice = service.stop(str(action.get("value", "")), who)
        if body.get("response_url"):
            respond(**notice.as_kwargs(), response_type="ephemeral", replace_original=False)

    @app.action(blocks.WATCH_REFRESH)
    def on_refresh(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        ack()
        notice = service.refresh(str(action.get("value", "")), _requester(body))
        if notice is not None and body.get("response_url"):
            respond(**notice.as_kwargs(), response_type="ephemeral", replace_original=False)

    @app.action(blocks.SYNC_RETRY)
    def on_retry(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        ack()
        notice = service.retry_sync(str(action.get("value", "")), _requester(body))
        if notice is not None and body.get("response_url"):
            respond(**notice.as_kwargs(), response_type="ephemeral", replace_original=False)

    @app.action(OURS)  # registered last: buttons from older releases still get their ack
    def on_stale(ack: Ack) -> None:
        ack()
