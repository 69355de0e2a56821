"""Every sentence the bot says to people, in one place: help, answers to commands,
refusals and notices. Pure: plain strings, or small functions that fill one in.

Values that come from people or vendors are escaped by the caller (`blocks.esc`) before
they are passed in; the texts here are Slack mrkdwn.
"""

from __future__ import annotations

COMMAND = "/syncwatch"

# -- before a watch starts: can the bot post where it was asked? --------------------------

RUN_IN_A_CHANNEL = (
    "Run this in a channel: watches post their updates where the team can see them. "
    "Nothing was started."
)
NOT_IN_CHANNEL = (
    "I'm not in this channel yet, so I can't post updates here. Invite me with "
    "`/invite @syncwatch` and run the command again. Nothing was started."
)
CHANNEL_ARCHIVED = "This channel is archived. Nothing was started."


def channel_check_failed(code: str) -> str:
    return (
        f":warning: Slack didn't let me check this channel (`{code}`). "
        "Nothing was started; try again in a minute."
    )


# -- something broke on our side ----------------------------------------------------------


def something_went_wrong(ref: str) -> str:
    return f"Something went wrong (ref {ref}). Nothing was changed; try again."
