"""A burst of requests is answered before the work it starts: the notifier's woken round
and the poller's tick wait (bounded) while the server answers, and the watch API's
requests count as being answered like Slack's."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from slack_sdk import WebClient

from bot.app import make_wsgi
from bot.listeners.background import AckGate
from bot.notifier import Notifier
from storage import NewWatch


def test_an_api_request_counts_as_being_answered():
    gate = AckGate()
    seen: list[bool] = []

    class Api:
        def serves(self, path: str) -> bool:
            return path.startswith("/api/")

        def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
            seen.append(gate.wait_quiet(0.01))  # other work asking now must wait
            start_response("201 Created", [("Content-Type", "application/json")])
            return [b"{}"]

    wsgi = make_wsgi(None, render_metrics=lambda: b"", health=dict, gate=gate, api=Api())
    environ = {"PATH_INFO": "/api/v1/watches", "REQUEST_METHOD": "POST", "wsgi.input": io.BytesIO()}
    statuses: list[str] = []
    body = b"".join(wsgi(environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["201 Created"] and json.loads(body) == {}
    assert seen == [False]
    assert gate.wait_quiet(0.01)  # answered: the work may go


def test_a_woken_notifier_posts_after_the_requests_being_answered(store, fake_slack, clock):
    answered = threading.Event()
    asked = threading.Event()

    def requests_answered() -> bool:
        asked.set()
        return answered.wait(10)

    client = WebClient(token="xoxb-test", base_url=fake_slack.api_url, retry_handlers=[])
    notifier = Notifier(store, client, clock=clock, requests_answered=requests_answered)
    try:
        new = NewWatch("zoho-analytics", "1/2", "default", "C1", "U1", 10.0, clock.now + 86400)
        store.create_watches([new], clock.now)
        notifier.start()
        notifier.wake()
        assert asked.wait(5)
        assert fake_slack.calls_for("chat.postMessage") == []  # still answering: not yet
        answered.set()
        (post,) = fake_slack.wait_for("chat.postMessage")
        assert post.params["channel"] == "C1"
    finally:
        answered.set()
        notifier.shutdown()
