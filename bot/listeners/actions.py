"""Buttons: on parent messages, in `list` answers and on the App Home tab.

Each button is acked at once; after the ack its use case runs and answers only the person
who clicked. A click on the App Home tab has no response_url, so the tab is republished.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

from slack_bolt import Ack, Respond
from slack_sdk import WebClient

from bot import blocks
from bot.listeners.deps import after_ack_of, service_of
from bot.service import Requester, Service
from storage import Via

OURS = re.compile(r"^(watch|sync|schedule)\.[a-z_]+$")

UseCase = Callable[[Service, str, Requester], blocks.Message | None]


# Every button of ours and the use case behind it.
USE_CASES: dict[str, UseCase] = {
    blocks.WATCH_STOP: Service.stop,
    blocks.SCHEDULE_STOP: Service.stop,
    blocks.WATCH_REFRESH: Service.refresh,
    blocks.SYNC_RETRY: Service.retry_sync,
    blocks.WATCH_ERRORS: Service.show_errors,
}


def click(
    ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient, context: Any
) -> None:
    """Ack at once; after the ack, run the button's use case and answer only the clicker."""
    ack()
    service = service_of(context)
    after_ack_of(context).submit(partial(_after_click, service), body, respond, client)


def _after_click(
    service: Service, body: dict[str, Any], respond: Respond, client: WebClient
) -> None:
    action = (body.get("actions") or [{}])[0]
    use_case = USE_CASES.get(str(action.get("action_id", "")))
    if use_case is None:
        return
    who = requester(body)
    notice = use_case(service, str(action.get("value", "")), who)
    if (body.get("container") or {}).get("type") == "view":
        client.views_publish(user_id=who.user_id, view=service.home_view(who.user_id))
    elif notice is not None and body.get("response_url"):
        respond(**notice.as_kwargs(), response_type="ephemeral", replace_original=False)


def stale(ack: Ack) -> None:
    """A button of ours this version no longer handles: ack it so Slack shows no error."""
    ack()


def requester(body: dict[str, Any]) -> Requester:
    channel = (body.get("channel") or {}).get("id") or ""  # none for App Home clicks
    team = (body.get("team") or {}).get("id")
    return Requester(body["user"]["id"], channel, team, via=Via.BUTTON)
