"""What a listener needs besides Bolt's own arguments, carried in Bolt's `context`."""

from __future__ import annotations

from typing import Any

from bot.listeners.background import AfterAck
from bot.service import Service

SERVICE = "syncwatch_service"
AFTER_ACK = "syncwatch_after_ack"


def service_of(context: dict[str, Any]) -> Service:
    return context[SERVICE]


def after_ack_of(context: dict[str, Any]) -> AfterAck:
    return context[AFTER_ACK]
