"""The fake Slack's usergroups.users.list and conversations.members, driven by a real AsyncWebClient, as
Slack's method pages document them (https://docs.slack.dev/reference/methods/usergroups.users.list,
https://docs.slack.dev/reference/methods/conversations.members; the same pages as data in
../shared/data/slack-method-reference/<method>.json, read below); and bot/operations/permissions.py's lookups
through them: cached, and failing closed when Slack cannot answer."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.offline.slack import DEFAULT_TOKEN, FakeSlack
from bot.offline.slack.webapi import SCOPES
from bot.operations.permissions import GROUP_TTL, MEMBERS_PAGE, MEMBERS_TTL, Action, Denied, Permissions
from bot.support.config import settings_from_dict
from tests.unit.doubles import CONFIG

REFERENCE = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "slack-method-reference"


def reference(method: str) -> dict[str, Any]:
    return dict(json.loads((REFERENCE / f"{method}.json").read_text(encoding="utf-8")))


@pytest.fixture
async def fs() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def client(fs: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=DEFAULT_TOKEN, base_url=fs.api_url)


async def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as caught:
        await call
    return str(caught.value.response["error"])


@pytest.mark.skipif(not REFERENCE.exists(), reason="Slack's method reference is not beside the repository")
def test_the_fake_answers_with_the_errors_and_scopes_the_pages_name() -> None:
    for method, errors in (("usergroups.users.list", {"no_such_subteam"}),
                           ("conversations.members", {"channel_not_found", "invalid_cursor", "invalid_limit",
                                                      "missing_scope"})):
        ref = reference(method)
        assert errors <= set(ref["errors"]), method
        assert set(SCOPES[method]) <= set(ref["scope"]["bot"]), method
    assert reference("conversations.members")["args"]["properties"]["limit"]["default"] == 100


async def test_usergroups_users_list(fs: FakeSlack, client: AsyncWebClient) -> None:
    fs.add_usergroup("S0OPS", "ops", ["U0001", "W0ENT"])
    fs.add_usergroup("S0OLD", "old", ["U0002"], enabled=False)
    resp = await client.usergroups_users_list(usergroup="S0OPS")
    assert resp["users"] == ["U0001", "W0ENT"]  # the page's example: a list of user ids
    assert (await client.usergroups_users_list(usergroup="S0OLD"))["users"] == []
    assert (await client.usergroups_users_list(usergroup="S0OLD", include_disabled=True))["users"] == [
        "U0002"
    ]
    assert await error_of(client.usergroups_users_list(usergroup="S0NONE")) == "no_such_subteam"
    fs.missing_scopes.add("usergroups:read")
    assert await error_of(client.usergroups_users_list(usergroup="S0OPS")) == "missing_scope"


async def test_conversations_members_pages_with_cursor_and_limit(
    fs: FakeSlack, client: AsyncWebClient
) -> None:
    people = [f"U{i:04d}" for i in range(10, 35)]
    fs.add_channel("C0100", "big", members=people)
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        resp = await client.conversations_members(
            channel="C0100", limit=10, **({"cursor": cursor} if cursor else {})
        )
        assert len(resp["members"]) <= 10
        seen += resp["members"]
        pages += 1
        cursor = resp["response_metadata"]["next_cursor"]
        if not cursor:
            break
        assert base64.b64decode(cursor).decode().startswith("user:")  # opaque base64, as the page's example
    assert pages == 3 and sorted(seen) == sorted([*people, fs.bot_user_id]) and len(set(seen)) == len(seen)
    assert len((await client.conversations_members(channel="C0100"))["members"]) == 26  # limit: "default 100"
    assert (
        await error_of(client.conversations_members(channel="C0100", cursor="not-a-cursor"))
        == "invalid_cursor"
    )
    assert await error_of(client.conversations_members(channel="C0100", limit=0)) == "invalid_limit"


async def test_conversations_members_errors(fs: FakeSlack, client: AsyncWebClient) -> None:
    fs.add_channel("G0200", "secret", private=True, member=False, members=["U0001"])
    fs.add_channel("G0300", "hr", private=True, members=["U0001"])
    assert await error_of(client.conversations_members(channel="C9999")) == "channel_not_found"
    # not the bot's
    assert await error_of(client.conversations_members(channel="G0200")) == "channel_not_found"
    assert (await client.conversations_members(channel="G0300"))["members"] == ["U0001", fs.bot_user_id]
    fs.missing_scopes.add("groups:read")  # a private channel needs groups:read, a public one channels:read
    assert await error_of(client.conversations_members(channel="G0300")) == "missing_scope"
    assert "U0001" in (await client.conversations_members(channel="C0001"))["members"]


# -- bot/operations/permissions.py through them --------------------------------------------------------------

def perms(fs: FakeSlack, now: list[float], **rules: Any) -> Permissions:
    settings = settings_from_dict({"backends": {"fin": {**CONFIG, **rules}}, "admins": ["UADMIN"]})
    return Permissions(settings, AsyncWebClient(token=fs.token, base_url=fs.api_url), lambda: now[0])


async def test_a_user_group_grants_use_and_is_asked_once_per_ttl(fs: FakeSlack) -> None:
    fs.add_usergroup("SOPS", "ops", ["U0002"])
    now = [0.0]
    p = perms(fs, now, users=["SOPS"], cancel=["SOPS"])
    await p.check("fin", "U0002", Action.CANCEL, "C0001")
    with pytest.raises(Denied, match="You may not use backend `fin`"):
        await p.check("fin", "U0001", Action.WATCH, "C0001")
    assert len(fs.calls_of("usergroups.users.list")) == 1  # cached
    fs.usergroups["SOPS"].users = ["U0001"]  # ben leaves the group, ana joins
    now[0] += GROUP_TTL
    await p.check("fin", "U0001", Action.WATCH, "C0001")
    with pytest.raises(Denied):
        await p.check("fin", "U0002", Action.WATCH, "C0001")
    assert len(fs.calls_of("usergroups.users.list")) == 2


async def test_when_slack_cannot_say_who_is_in_a_group_the_answer_is_no(fs: FakeSlack) -> None:
    fs.add_usergroup("SOPS", "ops", ["U0002"])
    fs.missing_scopes.add("usergroups:read")
    p = perms(fs, [0.0], users=["SOPS"])
    with pytest.raises(Denied) as exc:
        await p.check("fin", "U0002", Action.WATCH, "C0001")
    assert exc.value.code == "unavailable"
    assert str(exc.value) == (
        "I cannot check who may use `fin` right now (Slack: missing_scope); nothing was done. "
        "Try again in a minute."
    )
    p2 = perms(fs, [0.0], users=["U0002"])  # a backend that names no group never asks Slack
    await p2.check("fin", "U0002", Action.WATCH, "C0001")


async def test_a_group_slack_does_not_know_has_no_members(fs: FakeSlack) -> None:
    p = perms(fs, [0.0], users=["SGONE"])
    with pytest.raises(Denied, match="You may not use backend `fin`"):
        await p.check("fin", "U0002", Action.WATCH, "C0001")


async def test_channel_membership_is_read_over_pages_and_cached_briefly(fs: FakeSlack) -> None:
    people = [f"U{i:04d}" for i in range(3, 3 + 2 * MEMBERS_PAGE + 100)]  # more than two pages
    fs.add_channel("C0100", "big", members=people)
    fs.add_channel("G0200", "hr-private", private=True, members=["U0001"])
    fs.add_channel("G0300", "secret", private=True, member=False, members=["U0001"])
    now = [0.0]
    p = perms(fs, now)
    assert await p.is_member(people[-1], "C0100") and not await p.is_member("U0001", "C0100")
    assert len(fs.calls_of("conversations.members")) == 3
    assert await p.is_member("U0001", "G0200") and not await p.is_member("U0002", "G0200")
    # the bot cannot see it (channel_not_found): nobody vouched
    assert not await p.is_member("U0001", "G0300")
    calls = len(fs.calls_of("conversations.members"))
    fs.channels["G0200"].members.discard("U0001")
    assert await p.is_member("U0001", "G0200")  # cached
    now[0] += MEMBERS_TTL
    assert not await p.is_member("U0001", "G0200")
    assert len(fs.calls_of("conversations.members")) == calls + 1
