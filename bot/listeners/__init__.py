"""Thin Slack listeners: ack fast, parse with bot.grammar, hand the work to the service."""

from __future__ import annotations

from slack_bolt import App

from bot.service import Service

from . import actions, commands, events
from .background import AfterAck


def register(app: App, service: Service, after: AfterAck) -> None:
    commands.register(app, service, after)
    actions.register(app, service, after)
    events.register(app, service, after)
