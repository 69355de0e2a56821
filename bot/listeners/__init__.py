"""Thin Slack listeners: ack fast, parse with bot.grammar, hand the work to the service.

Each listener is a top-level function Bolt calls with the arguments it names (`ack`,
`command`, `body`, `respond`, `client`, `context`); the service and the after-ack runner
reach them through `context` (set by `create_app`'s middleware), so a test can call one
with a fake `ack`/`respond` and a plain dict for `context`. `register(app)` only wires.
"""

from __future__ import annotations

from slack_bolt import App

from bot import grammar, settings_form

from . import actions, commands, events, settings


def register(app: App) -> None:
    app.command(grammar.COMMAND)(commands.answer)
    for action_id in actions.USE_CASES:
        app.action(action_id)(actions.click)
    app.action(actions.OURS)(actions.stale)  # last: buttons of older releases still get an ack
    app.event("app_home_opened")(events.home_opened)
    app.view(settings_form.CALLBACK_ID)(settings.submitted)
