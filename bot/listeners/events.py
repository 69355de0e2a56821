"""Events: the App Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, Respond
from slack_sdk import WebClient

from bot.listeners.background import ack_only, after_ack
from bot.service import Service


def register(app: App, service: Service) -> None:
    def publish_home(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        event = body.get("event") or {}
        if event.get("tab") != "home":
            return
        client.views_publish(user_id=event["user"], view=service.home_view(event["user"]))

    # views.publish is a Slack call: after the ack, so Slack never waits on it
    app.event("app_home_opened")(ack=ack_only, lazy=[after_ack(publish_home)])
