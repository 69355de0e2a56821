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
        # channel settings: the user groups to mention, the person's time zone
        "usergroups:read",
        "users:read",
    }
    assert "chat:write.public" not in scopes


def test_button_action_ids_are_namespaced_verbs():
    for action_id in (blocks.WATCH_REFRESH, blocks.WATCH_STOP, blocks.SYNC_RETRY):
        assert grammar.re.match(r"^(watch|sync)\.[a-z_]+$", action_id)


# -- the README's manifest snippets ------------------------------------------------------------

SLASH_KEYS = {"command", "url", "description", "usage_hint", "should_escape"}


def readme_manifests() -> list[dict]:
    """Every YAML block of the README that declares slash commands."""
    text = (ROOT / "README.md").read_text()
    blocks = [part.split("```", 1)[0] for part in text.split("```yaml\n")[1:]]
    found = [yaml.safe_load(block) for block in blocks]
    return [m for m in found if isinstance(m, dict) and "slash_commands" in m.get("features", {})]


def check_slash_command(entry: dict, *, needs_url: bool) -> None:
    """What Slack's manifest schema asks of one slash command: `command` and `description`
    always, `url` for an app not in Socket Mode; `usage_hint` and `should_escape` optional;
    nothing else."""
    assert set(entry) <= SLASH_KEYS, f"unknown keys {set(entry) - SLASH_KEYS}"
    assert isinstance(entry.get("command"), str) and entry["command"].startswith("/")
    assert isinstance(entry.get("description"), str) and entry["description"].strip()
    if needs_url:
        assert isinstance(entry.get("url"), str) and entry["url"].startswith("https://")
    if "usage_hint" in entry:
        assert isinstance(entry["usage_hint"], str) and entry["usage_hint"].strip()
    if "should_escape" in entry:
        assert isinstance(entry["should_escape"], bool)


def test_manifest_slash_commands_are_complete():
    for entry in manifest()["features"]["slash_commands"]:
        check_slash_command(entry, needs_url=not manifest()["settings"]["socket_mode_enabled"])


def test_the_readme_http_mode_snippet_is_a_complete_manifest_entry():
    snippets = readme_manifests()
    assert snippets, "the README shows no manifest snippet with slash commands"
    for snippet in snippets:
        http_mode = snippet.get("settings", {}).get("socket_mode_enabled") is False
        for entry in snippet["features"]["slash_commands"]:
            check_slash_command(entry, needs_url=http_mode)


def test_the_readme_snippet_agrees_with_manifest_yml():
    ours = {c["command"]: c for c in manifest()["features"]["slash_commands"]}
    for snippet in readme_manifests():
        for entry in snippet["features"]["slash_commands"]:
            assert entry["command"] in ours
            same = {k: v for k, v in ours[entry["command"]].items() if k != "url"}
            assert {k: v for k, v in entry.items() if k != "url"} == same
        settings = snippet.get("settings", {})
        events = settings.get("event_subscriptions", {})
        assert (
            events.get("bot_events") == manifest()["settings"]["event_subscriptions"]["bot_events"]
        )
        urls = {events.get("request_url"), settings.get("interactivity", {}).get("request_url")}
        urls |= {c.get("url") for c in snippet["features"]["slash_commands"]}
        assert len(urls) == 1 and next(iter(urls)).endswith("/slack/events")
