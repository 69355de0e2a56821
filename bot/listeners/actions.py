"""Buttons: on parent messages, in `list` answers and on the App Home tab."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import blocks
from bot.listeners.background import AfterAck
from bot.service import Requester, Service

OURS = re.compile(r"^(watch|sync|schedule)\.[a-z_]+$")


def _requester(body: dict[str, Any]) -> Requester:
    channel = (body.get("channel") or {}).get("id") or ""  # none for App Home clicks
    return Requester(body["user"]["id"], channel, (body.get("team") or {}).get("id"))


def register(app: App, service: Service, after: AfterAck) -> None:
    def button(use_case: Callable[[str, Requester], blocks.Message | None]) -> Callable[..., None]:
        """Ack at once; after the ack, run the use case and answer only the clicker. A
        click on the App Home tab has no response_url, so the tab is republished instead."""

        def on_click(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
            action = (body.get("actions") or [{}])[0]
            who = _requester(body)
            notice = use_case(str(action.get("value", "")), who)
            if (body.get("container") or {}).get("type") == "view":
                client.views_publish(user_id=who.user_id, view=service.home_view(who.user_id))
            elif notice is not None and body.get("response_url"):
                respond(**notice.as_kwargs(), response_type="ephemeral", replace_original=False)

        def ack_click(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
            ack()
            after.submit(on_click, body, respond, client)

        return ack_click

    app.action(blocks.WATCH_STOP)(button(service.stop))
    app.action(blocks.SCHEDULE_STOP)(button(service.stop))
    app.action(blocks.WATCH_REFRESH)(button(service.refresh))
    app.action(blocks.SYNC_RETRY)(button(service.retry_sync))
    app.action(blocks.WATCH_ERRORS)(button(service.show_errors))

    @app.action(OURS)  # registered last: buttons from older releases still get their ack
    def on_stale(ack: Ack) -> None:
        ack()
