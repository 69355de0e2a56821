"""What a listener needs besides Bolt's own arguments, carried in Bolt's `context`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.listeners.background import AfterAck
from bot.service import Service

if TYPE_CHECKING:
    from bot.api.tokens import TokenAdmin

SERVICE = "syncwatch_service"
AFTER_ACK = "syncwatch_after_ack"
TOKENS = "syncwatch_tokens"


def service_of(context: dict[str, Any]) -> Service:
    return context[SERVICE]


def after_ack_of(context: dict[str, Any]) -> AfterAck:
    return context[AFTER_ACK]


def tokens_of(context: dict[str, Any]) -> TokenAdmin | None:
    return context.get(TOKENS)
