"""The Slack app manifest and the code agree: command, events, interactivity, Socket Mode."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot import blocks, grammar

ROOT = Path(__file__).resolve().parent.parent


def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def test_manifest_declares_the_command_the_code_answers():
    commands = [c["command"] for c in manifest()["features"]["slash_commands"]]
    assert commands == [grammar.COMMAND]
    assert manifest()["features"]["slash_commands"][0]["should_escape"] is False


def test_manifest_enables_what_the_listeners_use():
    m = manifest()
    assert m["settings"]["socket_mode_enabled"] is True
    assert m["settings"]["interactivity"]["is_enabled"] is True
    assert m["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert m["features"]["app_home"]["home_tab_enabled"] is True


def test_manifest_asks_only_for_the_scopes_used():
    scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    assert scopes == {
        "commands",
        "chat:write",
        "files:write",
        "channels:read",
        "groups:read",
        # conversations.replies: find a file an interrupted upload may already have shared
        "channels:history",
        "groups:history",
    }
    assert "chat:write.public" not in scopes


def test_button_action_ids_are_namespaced_verbs():
    for action_id in (blocks.WATCH_REFRESH, blocks.WATCH_STOP, blocks.SYNC_RETRY):
        assert grammar.re.match(r"^(watch|sync)\.[a-z_]+$", action_id)
