"""Work that runs after the ack (Bolt lazy listeners).

The app runs with `process_before_response=True`: each ack function runs in the HTTP
request's own thread and its return is the HTTP answer, so an ack costs no thread hop and
no wait (Bolt otherwise polls for the ack every 10 ms, which was most of an ack's latency).
Anything slower than SQLite (a Slack read, `respond()`, `views.publish`) goes in a lazy
function, which Bolt starts on the listener executor once the ack has been given.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, Respond
from slack_sdk import WebClient

log = logging.getLogger(__name__)

Work = Callable[[dict[str, Any], Respond, WebClient], None]


def ack_only(ack: Ack) -> None:
    ack()


def after_ack(work: Work) -> Callable[..., None]:
    """A lazy listener running `work(body, respond, client)`. Bolt only logs what a lazy
    function raises, so the person would hear nothing: this logs it with a short ref
    (the type only: a vendor's or Slack's message may carry a request detail) and tells
    them, privately, that nothing was changed."""

    def run(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        try:
            work(body, respond, client)
        except Exception as error:
            ref = secrets.token_hex(2)
            log.error("listener failed (ref %s): %s", ref, type(error).__name__, exc_info=error)
            if respond is None or not body.get("response_url"):
                return
            try:
                respond(
                    text=f"Something went wrong (ref {ref}). Nothing was changed; try again.",
                    response_type="ephemeral",
                    replace_original=False,
                )
            except Exception as err:  # Slack unreachable too: the log line is all we have
                log.warning("could not tell the user about ref %s: %s", ref, type(err).__name__)

    run.__name__ = run.__qualname__ = f"after_ack_{work.__name__}"  # Bolt names lazies by this
    return run
