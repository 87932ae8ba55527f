"""The fake Slack enforces Slack's published rate limits (bot/offline/slack/limits.py), each against its page,
driven over HTTP by slack_sdk's AsyncWebClient; the limits' clock is a fake one, so a minute passes at once.

Slack's rate-limit page: https://docs.slack.dev/apis/web-api/rate-limits (tiers "per API method per
workspace/team per app"; "HTTP 429 Too Many Requests error, and a Retry-After HTTP header containing the
number of seconds until you can retry"). Each method's tier: its reference page's "Rate limits", copied in
../shared/data/slack-method-reference/rate_limits_by_method.json (read here, so the table cannot drift).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.offline.slack import DEFAULT_TOKEN, FakeSlack
from bot.offline.slack.limits import METHOD_TIERS, POST_BURST, POST_WORKSPACE_PER_MINUTE, TIER_PER_MINUTE

REFERENCE = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "slack-method-reference"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fs(clock: Clock) -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    fake.limits.clock = clock
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def client(fs: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=DEFAULT_TOKEN, base_url=fs.api_url)  # no retry handler: a 429 is raised


def test_each_limited_method_has_the_tier_of_its_reference_page() -> None:
    tiers = json.loads((REFERENCE / "rate_limits_by_method.json").read_text())
    for method, tier in METHOD_TIERS.items():
        assert tiers[method] == f"t{tier}", method
    # the special tier's methods the bot calls: chat.postMessage is limited per channel (below); auth.test and
    # chat.getPermalink name no figure, so the fake does not limit them
    assert tiers["chat.postMessage"] == tiers["auth.test"] == tiers["chat.getPermalink"] == "t5"
    assert "auth.test" not in METHOD_TIERS and "chat.getPermalink" not in METHOD_TIERS
    assert TIER_PER_MINUTE == {1: 1, 2: 20, 3: 50, 4: 100}  # the page's "Overview" table


async def test_chat_update_is_tier_3_fifty_a_minute_then_429_with_retry_after(
        fs: FakeSlack, client: AsyncWebClient, clock: Clock) -> None:
    # https://docs.slack.dev/reference/methods/chat.update/ : Tier 3, "50+ per minute"
    ts = (await client.chat_postMessage(channel="C0001", text="parent"))["ts"]
    for k in range(50):
        clock.now += 0.1
        await client.chat_update(channel="C0001", ts=ts, text=f"edit {k}")
    with pytest.raises(SlackApiError) as refused:
        await client.chat_update(channel="C0001", ts=ts, text="one too many")
    assert refused.value.response.status_code == 429
    assert refused.value.response["error"] == "ratelimited"
    # the first of the 50 leaves the window 60 s after it went: 60 - 50 x 0.1 = 55 s from now
    assert refused.value.response.headers["Retry-After"] in ("55", "56")
    assert fs.message("C0001", ts).text == "edit 49"  # the refused edit did nothing
    assert fs.limits.refused == {"chat.update": 1}
    clock.now += 55.1
    await client.chat_update(channel="C0001", ts=ts, text="after the wait")
    assert fs.message("C0001", ts).text == "after the wait"


async def test_views_publish_is_tier_4_a_hundred_a_minute(fs: FakeSlack, client: AsyncWebClient,
                                                          clock: Clock) -> None:
    # https://docs.slack.dev/reference/methods/views.publish/ : Tier 4, "100+ per minute"
    view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    for _ in range(100):
        await client.views_publish(user_id="U0001", view=view)
    with pytest.raises(SlackApiError) as refused:
        await client.views_publish(user_id="U0002", view=view)
    assert refused.value.response.status_code == 429 and refused.value.response["error"] == "ratelimited"
    assert refused.value.response.headers["Retry-After"] == "60"
    # the limit is per method: chat.update (another method) still goes
    ts = (await client.chat_postMessage(channel="C0001", text="parent"))["ts"]
    await client.chat_update(channel="C0001", ts=ts, text="edited")
    clock.now += 60.0
    await client.views_publish(user_id="U0002", view=view)


async def test_file_upload_methods_are_tier_4(fs: FakeSlack, client: AsyncWebClient, clock: Clock) -> None:
    # https://docs.slack.dev/reference/methods/files.getUploadURLExternal/ : Tier 4
    for _ in range(100):
        await client.files_getUploadURLExternal(filename="job.log", length=3)
    with pytest.raises(SlackApiError) as refused:
        await client.files_getUploadURLExternal(filename="job.log", length=3)
    assert refused.value.response.status_code == 429
    assert fs.limits.per_minute["files.completeUploadExternal"] == 100  # its page: Tier 4 too


async def test_chat_postmessage_one_a_second_per_channel_after_a_short_burst(
        fs: FakeSlack, client: AsyncWebClient, clock: Clock) -> None:
    # https://docs.slack.dev/reference/methods/chat.postMessage/ and the rate-limit page: "Posting messages:
    # 1 per second. Short bursts >1 allowed"
    for k in range(POST_BURST):
        await client.chat_postMessage(channel="C0001", text=f"burst {k}")
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C0001", text="too fast")
    assert refused.value.response.status_code == 429 and refused.value.response.headers["Retry-After"] == "1"
    await client.chat_postMessage(channel="C0002", text="another channel has its own second")
    clock.now += 1.0
    await client.chat_postMessage(channel="C0001", text="a second later")
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C0001", text="and again at once")
    assert [m.text for m in fs.messages("C0001")][-1] == "a second later"


async def test_chat_postmessage_workspace_ceiling(
    fs: FakeSlack, client: AsyncWebClient, clock: Clock
) -> None:
    # the rate-limit page: "while also maintaining a workspace-wide limit" (no figure published: the fake's
    # assumed POST_WORKSPACE_PER_MINUTE, the bot's default budget)
    fs.limits.per_minute["chat.postMessage"] = 4  # a small ceiling, so the test posts a few
    for k in range(4):
        fs.add_channel(f"CW{k}", f"w{k}")
        await client.chat_postMessage(channel=f"CW{k}", text="one each")
    fs.add_channel("CW9", "w9")
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="CW9", text="over the workspace's minute")
    assert refused.value.response.status_code == 429
    assert POST_WORKSPACE_PER_MINUTE >= 20 * 60 // 1  # 20 channels at one a second fit under the default


async def test_the_429_is_the_documented_http_answer(fs: FakeSlack, clock: Clock) -> None:
    """The raw answer, as the page describes it: status 429, Retry-After in whole seconds, ok false."""
    fs.limits.per_minute["chat.update"] = 0
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{fs.api_url}chat.update", headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
                            json={"channel": "C0001", "ts": "1.2", "text": "x"})
        assert r.status == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert await r.json() == {"ok": False, "error": "ratelimited"}


async def test_limits_can_be_lifted_for_a_test_that_says_it_needs_a_burst(fs: FakeSlack,
                                                                          client: AsyncWebClient) -> None:
    fs.limits.enabled = False  # this test needs a burst beyond production's limits: it checks the switch
    for k in range(POST_BURST + 3):
        await client.chat_postMessage(channel="C0001", text=f"{k}")
    assert fs.limits.refused == {}
