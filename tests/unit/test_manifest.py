"""manifest.yaml: valid by Slack's published app-manifest JSON schema, and asking for exactly the scopes
the bot needs for the Web API methods it calls (what a schema cannot know)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifest.yaml"
# Slack's schema, as published (../shared/data/slack-manifest-schema/SOURCE.md: slackapi/manifest-schema at
# c50cfa8). A manifest without `_metadata`, like ours, is one of version 1: the repository's entry schema
# (manifest.schema.json) sends it to manifest.schema.1.0.0.json, which is what is checked here.
SCHEMAS = ROOT.parent / "shared" / "data" / "slack-manifest-schema"
SCHEMA = SCHEMAS / "manifest.schema.1.0.0.json"

# The bot-token scopes each Web API method needs, from the method's page on docs.slack.dev
# (https://docs.slack.dev/reference/methods/<method>, "Scopes: Bot token").
METHOD_SCOPES: dict[str, set[str]] = {
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.getPermalink": set(),  # the page lists no scope
    "auth.test": set(),  # the page lists no scope: any valid token may ask (the notifier's token probe)
    "views.open": set(),  # "No scopes required": the modal of the Watch a job shortcuts
    "views.publish": set(),  # "No scopes required": the Home tab
    "files.getUploadURLExternal": {"files:write"},
    "files.completeUploadExternal": {"files:write"},
    # one scope per kind of conversation read: the bot serves public (channels:) and private (groups:)
    # channels; im:history / mpim:history would be for direct messages, where it is not used
    "conversations.history": {"channels:history", "groups:history"},
    # bot/operations/permissions.py: who is in a user group named by a backend's `users`/`cancel`
    # (usergroups.users.list), and in a channel (conversations.members: public channels:read, private
    # groups:read; the modal, the Home tab)
    "usergroups.users.list": {"usergroups:read"},
    "conversations.members": {"channels:read", "groups:read"},
}
# slack_sdk helpers that are several Web API calls (slack_sdk/web/async_client.py, files_upload_v2).
SDK_HELPERS = {"files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal")}
# Scopes that no method call asks for, and why the bot needs them.
FEATURE_SCOPES = {
    "commands": "the /jobstatus slash command (features.slash_commands) and the shortcuts "
    "(features.shortcuts)",
    "chat:write.public": "posting in public channels the bot was not invited to",
}


def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def methods_the_bot_calls() -> set[str]:
    """Every Web API method the bot's code calls through its AsyncWebClient (`client.chat_postMessage(`)."""
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        if ROOT / "bot" / "offline" in path.parents:
            continue  # Slack's and the vendors' stand-ins, not the bot
        for name in re.findall(r"\bclient\.([a-z]+_[A-Za-z0-9_]+)\(", path.read_text(encoding="utf-8")):
            found.update(SDK_HELPERS.get(name) or [name.replace("_", ".")])  # usergroups_users_list: 2 dots
    return found


def test_manifest_is_valid_by_slacks_schema() -> None:
    entry = json.loads((SCHEMAS / "manifest.schema.json").read_text(encoding="utf-8"))
    assert "manifest.schema.1.0.0.json" in json.dumps(entry), "the entry schema still sends version 1 there"
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    assert [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(manifest())] == []
    broken = {**manifest(), "oauth_config": {"scopes": {"bot": "chat:write"}}}  # a string, not a list
    assert list(validator.iter_errors(broken)), "the schema checks scopes at all"


def test_the_bot_calls_only_methods_whose_scopes_are_known() -> None:
    calls = methods_the_bot_calls()
    assert {"chat.postMessage", "chat.update", "conversations.history",
            "files.completeUploadExternal"} <= calls
    assert calls - METHOD_SCOPES.keys() == set(), "add the scopes of each new method to METHOD_SCOPES"


def test_manifest_asks_for_exactly_the_scopes_the_bot_needs() -> None:
    needed = set(FEATURE_SCOPES).union(*(METHOD_SCOPES[m] for m in methods_the_bot_calls()))
    asked = manifest()["oauth_config"]["scopes"]["bot"]
    assert len(asked) == len(set(asked)), "a scope asked for twice"
    assert sorted(set(asked) - needed) == [], "scopes the bot does not need"
    assert sorted(needed - set(asked)) == [], "scopes the bot needs and the manifest lacks"
    assert manifest()["features"]["slash_commands"][0]["command"] == "/jobstatus"


def test_manifest_declares_the_home_tab_its_event_and_the_shortcuts_the_bot_listens_for() -> None:
    from bot.rendering import views

    m = manifest()
    assert m["features"]["app_home"]["home_tab_enabled"] is True
    # the bot reads no direct messages (no message.im event, no im:history): no Messages tab to write into
    assert m["features"]["app_home"]["messages_tab_enabled"] is False
    assert "app_home_opened" in m["settings"]["event_subscriptions"]["bot_events"]
    shortcuts = {s["callback_id"]: s for s in m["features"]["shortcuts"]}
    assert shortcuts[views.GLOBAL_SHORTCUT]["type"] == "global"
    assert shortcuts[views.MESSAGE_SHORTCUT]["type"] == "message"
    for s in shortcuts.values():  # Slack's limits on a shortcut (the schema's maxLength)
        assert len(s["name"]) <= 24 and len(s["description"]) <= 150
