"""Events: the App Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, Respond
from slack_sdk import WebClient

from bot.listeners.background import AfterAck
from bot.service import Service


def register(app: App, service: Service, after: AfterAck) -> None:
    def publish_home(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        event = body.get("event") or {}
        if event.get("tab") != "home":
            return
        client.views_publish(user_id=event["user"], view=service.home_view(event["user"]))

    @app.event("app_home_opened")
    def on_home(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        after.submit(publish_home, body, respond, client)  # Slack never waits on views.publish
