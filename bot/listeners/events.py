"""Events: the App Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient

from bot.listeners.deps import after_ack_of, service_of


def home_opened(body: dict[str, Any], respond: Respond, client: WebClient, context: Any) -> None:
    """Publish the person's App Home tab, after the ack (Slack never waits on it)."""
    service = service_of(context)

    def publish(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        event = body.get("event") or {}
        if event.get("tab") != "home":
            return
        client.views_publish(user_id=event["user"], view=service.home_view(event["user"]))

    after_ack_of(context).submit(publish, body, respond, client)
