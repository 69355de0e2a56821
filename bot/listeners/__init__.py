"""Thin Slack listeners: ack fast, parse with bot.grammar, hand the work to the service."""

from __future__ import annotations

from slack_bolt import App

from bot.service import Service

from . import actions, commands, events


def register(app: App, service: Service) -> None:
    commands.register(app, service)
    actions.register(app, service)
    events.register(app, service)
