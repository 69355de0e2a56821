"""create_app builds the Bolt App; make_wsgi serves it beside /healthz and /metrics."""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from bot import health as health_report
from bot import inbound, listeners, texts
from bot.api.http import ApiHttp
from bot.api.tokens import TokenAdmin
from bot.config import Settings
from bot.listeners import deps
from bot.listeners.background import AckGate, AfterAck
from bot.metrics import Metrics
from bot.service import Service

log = logging.getLogger(__name__)

# Acks run in the HTTP server's threads (process_before_response); the work after an ack
# runs on bot/listeners/background.py's AfterAck threads.
HTTP_THREADS = 16


def create_app(
    settings: Settings,
    service: Service,
    *,
    client: WebClient,
    metrics: Metrics | None = None,
    authorize: Callable[..., Any] | None = None,
    after: AfterAck | None = None,
    tokens: TokenAdmin | None = None,
) -> App:
    """The Bolt app. `client` carries the bot token and SLACK_API_URL; Bolt copies it for
    every listener. Nothing runs at import time."""
    bolt_log = logging.getLogger("slack_bolt")
    if not any(isinstance(f, NoRequestBodies) for f in bolt_log.filters):
        bolt_log.addFilter(NoRequestBodies())
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or None,
        authorize=authorize,
        process_before_response=True,  # acks answer in the request thread, see above
        logger=bolt_log,
    )

    after = after or AfterAck()

    @app.middleware
    def provide(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
        """What listeners need beyond Bolt's arguments (bot/listeners/deps.py)."""
        context[deps.SERVICE] = service
        context[deps.AFTER_ACK] = after
        context[deps.TOKENS] = tokens
        if metrics is not None:
            metrics.last_inbound.set_to_current_time()
        return next()

    listeners.register(app)

    @app.error
    def on_error(error: Exception, body: dict[str, Any], respond: Any = None) -> None:
        ref = secrets.token_hex(2)
        log.error("listener failed (ref %s): %s", ref, type(error).__name__, exc_info=error)
        if respond is not None and body.get("response_url"):
            respond(
                text=texts.something_went_wrong(ref),
                response_type="ephemeral",
                replace_original=False,
            )

    return app


class NoRequestBodies(logging.Filter):
    """Bolt logs an unsigned request's whole body at INFO ("Invalid request signature
    detected … body: …"): anyone on the internet could fill the log, or forge lines in it.
    Say that a request was refused, never what it carried."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Invalid request signature"):
            record.msg, record.args = "Refused a request with a missing or invalid signature", None
        return True


def make_wsgi(
    app: App | None,
    *,
    render_metrics: Callable[[], bytes],
    health: Callable[[], dict[str, health_report.Check]],
    gate: AckGate | None = None,
    signing_secret: str = "",
    api: ApiHttp | None = None,
) -> Callable[..., Iterable[bytes]]:
    """WSGI app: Slack at /slack/events (HTTP mode only), /healthz, /metrics, and the watch
    API and vendor callbacks (`api`: /api/v1/…, /hooks/…) always. `gate` (the app's)
    counts the Slack requests being answered; `health` gives the /healthz checks
    (bot/health.py)."""
    gate = gate or AckGate()
    slack = SlackRequestHandler(app, path="/slack/events") if app is not None else None
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            ok, body = health_report.render(health())
            start_response(
                "200 OK" if ok else "503 Service Unavailable",
                [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
            )
            return [body]
        if path == "/metrics":
            body = render_metrics()
            start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
            return [body]
        if slack is not None and path == "/slack/events":
            if verifier is not None:  # size, signature, shape: before Bolt parses a byte
                screened = inbound.screen(environ, verifier)
                if isinstance(screened, inbound.Refusal):
                    start_response(screened.status, [("Content-Type", "text/plain")])
                    return [screened.reason.encode() + b"\n"]
                environ["wsgi.input"] = io.BytesIO(screened)
                environ["CONTENT_LENGTH"] = str(len(screened))
            with gate.answering():
                return slack(environ, start_response)
        if api is not None and api.serves(path):
            # Counted like Slack's requests: a burst of API calls is answered before the
            # deliveries it started compete for the interpreter (docs/architecture.md#watch-api).
            with gate.answering():
                return api(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return wsgi
