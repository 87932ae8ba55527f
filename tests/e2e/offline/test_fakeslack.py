"""Tests for the fake Slack (bot.offline.slack): the fake Web API driven by a real AsyncWebClient, its Socket
Mode websocket, and SlackUser driving a real Bolt app over HTTP and over Socket Mode."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.offline.slack import (
    DEFAULT_APP_TOKEN,
    DEFAULT_TOKEN,
    Ephemeral,
    FakeSlack,
    SlackUser,
    render_channel,
)

SECRET = "test-signing-secret"


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


def button(action_id: str, text: str, value: str = "", confirm: bool = False) -> dict[str, Any]:
    el: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value or action_id,
    }
    if confirm:
        el["confirm"] = {
            "title": {"type": "plain_text", "text": "Sure?"},
            "text": {"type": "plain_text", "text": "Really?"},
            "confirm": {"type": "plain_text", "text": "Yes"},
            "deny": {"type": "plain_text", "text": "No"},
        }
    return el


JOB_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Job 42* is running &lt;fast&gt;"}},
    {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "fusion"}, {"type": "plain_text", "text": "ESS"}],
    },
    {
        "type": "actions",
        "block_id": "job-actions",
        "elements": [
            button("cancel_job", "Cancel job", "42", confirm=True),
            button("stop_watching", "Stop watching", "42"),
        ],
    },
]


# ---------------------------------------------------------------------------------------------------
# Web API through a real AsyncWebClient


async def test_post_reply_update_history_permalink(fs: FakeSlack, client: AsyncWebClient) -> None:
    auth = await client.auth_test()
    assert auth["user_id"] == fs.bot_user_id and auth["team_id"] == "T0001"

    meta = {"event_type": "job_watch", "event_payload": {"job": "42"}}
    parent = await client.chat_postMessage(
        channel="C0002", text="Job 42 running", blocks=JOB_BLOCKS, metadata=meta
    )
    reply = await client.chat_postMessage(channel="C0002", text="phase: load", thread_ts=parent["ts"])
    assert float(reply["ts"]) > float(parent["ts"])
    assert len(parent["ts"].split(".")[1]) == 6

    stored = fs.message("C0002", parent["ts"])
    assert stored.blocks == JOB_BLOCKS and stored["metadata"] == meta and stored.user == fs.bot_user_id
    assert [m.ts for m in fs.messages("C0002")] == [parent["ts"]]
    assert [m.text for m in fs.thread("C0002", parent["ts"])] == ["phase: load"]

    await client.chat_update(channel="C0002", ts=parent["ts"], text="Job 42 succeeded")
    assert stored.edits == 1 and stored.text == "Job 42 succeeded"
    assert stored.blocks == JOB_BLOCKS, "chat.update without blocks keeps them, as Slack does"
    await client.chat_update(channel="C0002", ts=parent["ts"], text="Job 42 done", blocks=[])
    assert stored.edits == 2 and stored.blocks is None
    assert [v["text"] for v in stored.versions] == ["Job 42 running", "Job 42 succeeded"]

    hist = await client.conversations_history(channel="C0002", include_all_metadata=True, limit=10)
    assert [m["ts"] for m in hist["messages"]] == [parent["ts"]]
    top = hist["messages"][0]
    assert top["metadata"] == meta and top["reply_count"] == 1 and "edited" in top
    plain = await client.conversations_history(channel="C0002")
    assert "metadata" not in plain["messages"][0]
    newer = await client.conversations_history(channel="C0002", oldest=parent["ts"])
    assert newer["messages"] == []

    replies = await client.conversations_replies(channel="C0002", ts=parent["ts"])
    assert [m["ts"] for m in replies["messages"]] == [parent["ts"], reply["ts"]]

    link = await client.chat_getPermalink(channel="C0002", message_ts=parent["ts"])
    assert link["permalink"] == f"https://fake.slack.test/archives/C0002/p{parent['ts'].replace('.', '')}"

    methods = [c.method for c in fs.calls]
    assert methods[:3] == ["auth.test", "chat.postMessage", "chat.postMessage"]
    assert fs.calls[1].args["blocks"] == JOB_BLOCKS  # recorded decoded


async def test_history_newest_first_and_paged(fs: FakeSlack, client: AsyncWebClient) -> None:
    sent = [(await client.chat_postMessage(channel="C0001", text=f"m{i}"))["ts"] for i in range(5)]
    page1 = await client.conversations_history(channel="C0001", limit=2)
    assert [m["text"] for m in page1["messages"]] == ["m4", "m3"] and page1["has_more"]
    page2 = await client.conversations_history(
        channel="C0001", limit=10, cursor=page1["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in page2["messages"]] == ["m2", "m1", "m0"] and not page2["has_more"]
    assert sent == sorted(sent, key=float)


async def test_form_encoded_post_with_blocks_string(fs: FakeSlack) -> None:
    """Some callers (and slack_sdk for params-style methods) send form bodies with blocks JSON-encoded."""
    form = {"channel": "C0001", "text": "hi", "blocks": json.dumps(JOB_BLOCKS), "token": DEFAULT_TOKEN}
    async with aiohttp.ClientSession() as s, s.post(fs.api_url + "chat.postMessage", data=form) as resp:
        body = await resp.json()
    assert body["ok"] and fs.message("C0001", body["ts"]).blocks == JOB_BLOCKS


async def test_files_upload_v2_into_thread(fs: FakeSlack, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel="C0002", text="Job 42 failed")
    result = await client.files_upload_v2(
        channel="C0002",
        thread_ts=parent["ts"],
        content=b"line 1\nline 2\n",
        filename="job-42.log",
        title="Job 42 log",
        initial_comment="Log attached",
    )
    assert result["file"]["name"] == "job-42.log"
    [f] = fs.files.values()
    assert f.content == b"line 1\nline 2\n" and f.completed and f.title == "Job 42 log"
    [msg] = fs.thread("C0002", parent["ts"])
    assert msg.text == "Log attached" and msg.files[0]["id"] == f.id
    assert [c.method for c in fs.calls[-3:]] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert "[file] job-42.log" in render_channel(fs, "C0002")


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_slack_errors(fs: FakeSlack, client: AsyncWebClient) -> None:
    fs.add_channel("C0100", "secret", member=False, private=True)
    fs.add_channel("C0101", "public-outsider", member=False)
    fs.add_channel("C0102", "old", archived=True)

    async def error_of(coro: Any) -> str:
        with pytest.raises(SlackApiError) as info:
            await coro
        return str(info.value.response["error"])

    assert await error_of(client.chat_postMessage(channel="C9999", text="x")) == "channel_not_found"
    assert await error_of(client.chat_postMessage(channel="C0100", text="x")) == "channel_not_found"
    assert (await client.chat_postMessage(channel="C0101", text="allowed: chat:write.public"))["ok"]
    fs.require_membership = True
    assert await error_of(client.chat_postMessage(channel="C0101", text="x")) == "not_in_channel"
    assert await error_of(client.chat_postMessage(channel="C0102", text="x")) == "is_archived"
    # chat.update's own code for "a frozen, archived or deleted channel" (its reference lists no is_archived)
    assert await error_of(client.chat_update(channel="C0102", ts="1.000001", text="x")) == "is_inactive"
    assert await error_of(client.chat_update(channel="C0001", ts="1.000001", text="x")) == "message_not_found"
    assert await error_of(client.chat_postMessage(channel="C0001")) == "no_text"
    many = [{"type": "divider"}] * 51
    assert await error_of(client.chat_postMessage(channel="C0001", text="x", blocks=many)) == "invalid_blocks"
    assert await error_of(client.api_call("chat.frobnicate")) == "unknown_method"
    bad = AsyncWebClient(token="xoxb-wrong", base_url=fs.api_url)
    assert await error_of(bad.chat_postMessage(channel="C0001", text="x")) == "invalid_auth"
    assert await error_of(AsyncWebClient(base_url=fs.api_url).auth_test()) == "not_authed"

    long = await client.chat_postMessage(channel="C0001", text="x" * 40_500)
    assert len(fs.message("C0001", long["ts"]).text) == 40_000
    # only the one allowed post and the truncated one were applied
    assert [m.channel for m in fs.messages("C0101")] == ["C0101"]
    assert fs.messages("C0102") == [] and len(fs.messages("C0001")) == 1
    errors = [c.error for c in fs.calls if not c.ok]
    assert "invalid_auth" in errors and "is_archived" in errors


async def test_rate_limit_retry_after_honoured(fs: FakeSlack) -> None:
    client = AsyncWebClient(
        token=DEFAULT_TOKEN,
        base_url=fs.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    fs.fail_next("chat.postMessage", "ratelimited")
    started = time.monotonic()
    resp = await client.chat_postMessage(channel="C0001", text="once")
    assert resp["ok"]
    assert time.monotonic() - started >= 1.0, "the client waited Retry-After: 1"
    assert [m.text for m in fs.messages("C0001")] == ["once"]
    assert [(c.method, c.status, c.error) for c in fs.failed_calls] == [
        ("chat.postMessage", 429, "ratelimited")
    ]


async def test_without_retry_handler_429_surfaces(fs: FakeSlack, client: AsyncWebClient) -> None:
    fs.fail_next("chat.postMessage", "ratelimited")
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C0001", text="x")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "1"
    assert fs.messages("C0001") == []


async def test_fail_rate_is_seeded_and_not_applied(client: AsyncWebClient) -> None:
    async def run() -> tuple[list[bool], int]:
        fake = FakeSlack(seed=7)
        fake.fail_rate, fake.fail_kind = 0.5, "server_error"
        # 12 posts at once in one channel, a burst beyond Slack's one a second (limits.py): this test is about
        # the injected faults, so the rate limits are lifted
        fake.limits.enabled = False
        await fake.start()
        try:
            c = AsyncWebClient(token=DEFAULT_TOKEN, base_url=fake.api_url, retry_handlers=[])
            outcome = []
            for i in range(12):
                try:
                    await c.chat_postMessage(channel="C0001", text=str(i))
                    outcome.append(True)
                except SlackApiError as exc:
                    assert exc.response.status_code in (500, 503)
                    outcome.append(False)
            assert len(fake.messages("C0001")) == outcome.count(True)
            assert len(fake.failed_calls) == outcome.count(False)
            return outcome, len(fake.messages("C0001"))
        finally:
            await fake.stop()

    first, second = await run(), await run()
    assert first == second and 0 < first[1] < 12


async def test_targeted_error_not_applied(fs: FakeSlack, client: AsyncWebClient) -> None:
    fs.fail_next("chat.postMessage", "channel_not_found", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError):
            await client.chat_postMessage(channel="C0001", text="x")
    assert (await client.chat_postMessage(channel="C0001", text="third"))["ok"]
    assert [m.text for m in fs.messages("C0001")] == ["third"] and len(fs.failed_calls) == 2


async def test_response_url_ephemeral_in_channel_and_limit(fs: FakeSlack) -> None:
    url = fs.response_url("C0001", "U0001")
    rid = fs.response_url_id(url)
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json={"text": "only you"}) as r:
            assert r.status == 200
        async with s.post(url, json={"text": "everyone", "response_type": "in_channel"}) as r:
            assert r.status == 200
        async with s.post(url, json={"text": "no replace for commands", "replace_original": True}) as r:
            assert r.status == 200
        for _ in range(2):
            async with s.post(url, json={"text": "more"}) as r:
                assert r.status == 200
        async with s.post(url, json={"text": "sixth"}) as r:
            assert r.status == 404 and await r.text() == "used_url"
    assert [p.outcome for p in fs.responses(rid)] == [
        "ephemeral",
        "in_channel",
        "ephemeral",
        "ephemeral",
        "ephemeral",
        "used_url",
    ]
    assert [e.text for e in fs.ephemerals_for("U0001")][:2] == ["only you", "no replace for commands"]
    assert [m.text for m in fs.messages("C0001")] == ["everyone"]


async def test_wait_for_deadline_reports_state(fs: FakeSlack, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel="C0001", text="hello there")
    with pytest.raises(AssertionError) as info:
        await fs.wait_for(lambda: fs.messages("C0002")[0], timeout=0.2)
    assert "hello there" in str(info.value) and "IndexError" in str(info.value)


async def test_wait_for_wakes_on_change_and_subscribers(fs: FakeSlack, client: AsyncWebClient) -> None:
    seen: list[str] = []
    unsubscribe = fs.subscribe(lambda change: seen.append(change.kind))
    version = fs.version
    await client.chat_postMessage(channel="C0001", text="a")
    assert await fs.changed(version, timeout=1) > version
    msg = await fs.wait_for(lambda: fs.messages("C0001")[-1], timeout=1)
    assert msg.text == "a" and "message" in seen
    unsubscribe()
    before = len(seen)
    await client.chat_postMessage(channel="C0001", text="b")
    assert len(seen) == before


def test_render_channel_shows_threads_edits_buttons_ephemerals() -> None:
    fs = FakeSlack()
    parent = fs.post_user_message("C0002", "placeholder", user=fs.bot_user_id)
    parent.blocks = JOB_BLOCKS
    parent.edits = 1
    fs.post_user_message(
        "C0002", "phase <@U0002> <https://x.test|details>", user=fs.bot_user_id, thread_ts=parent.ts
    )
    fs.ephemerals.append(Ephemeral(channel="C0002", user="U0001", ts=fs._next_ts(), text="Watching job 42"))
    out = render_channel(fs, "C0002")
    assert out.startswith("#finance-close")
    assert "*Job 42* is running <fast>" in out
    assert "fusion  ·  ESS" in out
    assert "[1] Cancel job  [2] Stop watching (edited)" in out
    assert "    | " in out and "phase @ben details\n" in out  # a link shows its text, as in Slack
    assert "only visible to you (@ana)" in out and "Watching job 42" in out
    assert out.buttons[2] == ("C0002", parent.ts, "stop_watching")
    assert "only visible to you]" not in render_channel(fs, "C0002", viewer="U0002")
    assert render_channel(fs, "C0002", start=5).buttons.keys() == {5, 6}


# ---------------------------------------------------------------------------------------------------
# SlackUser against a real Bolt AsyncApp


def bolt_app(fs: FakeSlack, seen: dict[str, list[Any]]) -> AsyncApp:
    """A small Bolt app with a /jobstatus command and two buttons, recording what reaches it in `seen`."""
    app = AsyncApp(
        signing_secret=SECRET,
        client=AsyncWebClient(token=DEFAULT_TOKEN, base_url=fs.api_url),
    )

    @app.command("/jobstatus")
    async def on_command(ack: Any, command: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        await ack(f"Watching {command['text']}")
        seen["commands"].append(command)
        await client.chat_postMessage(
            channel=command["channel_id"], text=f"Job {command['text']}", blocks=JOB_BLOCKS
        )
        await respond("posted it")

    @app.action("stop_watching")
    async def on_stop(ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        await ack()
        seen["actions"].append(body)
        await respond(text="Stopped watching job 42", replace_original=False)
        await client.chat_postMessage(
            channel=body["channel"]["id"], thread_ts=body["container"]["message_ts"], text="stopped by ana"
        )

    @app.action("cancel_job")
    async def on_cancel(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        seen["actions"].append(body)
        await respond(text="Job 42 cancelled")  # replaces the original, as Slack does by default

    return app


@pytest.fixture
async def bolt(fs: FakeSlack) -> AsyncIterator[tuple[SlackUser, dict[str, list[Any]]]]:
    seen: dict[str, list[Any]] = {"commands": [], "actions": []}
    app = bolt_app(fs, seen)
    runner = web.AppRunner(app.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield SlackUser(f"http://127.0.0.1:{port}/slack/events", SECRET, fs), seen
    finally:
        await runner.cleanup()


async def test_signed_command_and_click_reach_bolt(
    fs: FakeSlack, bolt: tuple[SlackUser, dict[str, list[Any]]]
) -> None:
    user, seen = bolt
    result = await user.command("fusion 42", channel_id="C0002")
    assert result.status == 200 and result.ack_text == "Watching fusion 42"
    assert result.elapsed < 3
    [cmd] = seen["commands"]
    assert (
        cmd["user_id"] == "U0001"
        and cmd["channel_name"] == "finance-close"
        and cmd["command"] == "/jobstatus"
    )
    [posted] = await result.wait_responses(1)
    assert posted.payload["text"] == "posted it" and posted.outcome == "ephemeral"
    assert sorted(e.source for e in fs.ephemerals_for("U0001")) == [
        "ack",
        "response_url",
    ]  # order races, as in Slack

    msg = await fs.wait_for(lambda: fs.messages("C0002")[0])
    assert msg.text == "Job fusion 42"
    assert "[1] Cancel job  [2] Stop watching" in render_channel(fs, "C0002")

    click = await user.click("C0002", msg.ts, "stop_watching")
    assert click is not None and click.status == 200
    [body] = seen["actions"]
    assert (
        body["actions"][0]["action_id"] == "stop_watching" and body["actions"][0]["block_id"] == "job-actions"
    )
    assert body["message"]["ts"] == msg.ts and body["container"]["message_ts"] == msg.ts
    await fs.wait_for(lambda: fs.thread("C0002", msg.ts)[0].text == "stopped by ana")
    [resp] = await click.wait_responses(1)
    assert resp.outcome == "ephemeral" and msg.edits == 0


async def test_click_confirm_cancelled_and_replace_original(
    fs: FakeSlack, bolt: tuple[SlackUser, dict[str, list[Any]]]
) -> None:
    user, seen = bolt
    msg = fs.post_user_message("C0001", "job", user=fs.bot_user_id)
    msg.blocks = JOB_BLOCKS
    assert await user.click("C0001", msg.ts, text="Cancel job", confirm=False) is None
    assert seen["actions"] == [] and fs.response_posts == []

    click = await user.click("C0001", msg.ts, text="cancel job")
    assert click is not None and click.status == 200
    await fs.wait_for(lambda: msg.edits == 1)
    assert msg.text == "Job 42 cancelled" and msg.blocks is None
    with pytest.raises(LookupError):
        await user.click("C0001", msg.ts, "no_such_button")


async def test_forged_and_stale_requests_rejected(
    fs: FakeSlack, bolt: tuple[SlackUser, dict[str, list[Any]]]
) -> None:
    user, seen = bolt
    body = urllib.parse.urlencode({"command": "/jobstatus", "text": "fusion 1", "user_id": "U0001"}).encode()
    forged = SlackUser(user.bot_url, "not-the-secret", fs).sign(body)
    assert (await user.post_raw(body, forged))[0] == 401
    stale = user.sign(body, timestamp=int(time.time()) - 6 * 60)
    assert (await user.post_raw(body, stale))[0] == 401
    tampered = user.sign(body)
    assert (await user.post_raw(body + b"&x=1", tampered))[0] == 401
    assert seen["commands"] == []
    assert fs.messages("C0001") == []


async def test_click_on_ephemeral_replaces_it(
    fs: FakeSlack, client: AsyncWebClient, bolt: tuple[SlackUser, dict[str, list[Any]]]
) -> None:
    user, seen = bolt
    sent = await client.chat_postEphemeral(channel="C0001", user="U0001", text="Cancel?", blocks=JOB_BLOCKS)
    click = await user.click("C0001", sent["message_ts"], "cancel_job")
    assert click is not None and click.status == 200
    [body] = seen["actions"]
    assert body["container"]["is_ephemeral"] is True and "message" not in body
    [eph] = fs.ephemerals_for("U0001")
    await fs.wait_for(lambda: eph.edits == 1)
    assert eph.text == "Job 42 cancelled" and eph.blocks is None
    assert fs.messages("C0001") == []


async def test_response_url_delete_original(fs: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0001", text="to go")
    url = fs.response_url("C0001", "U0001", posted["ts"])
    async with aiohttp.ClientSession() as s, s.post(url, json={"delete_original": True}) as r:
        assert r.status == 200
    assert fs.messages("C0001") == []
    with pytest.raises(KeyError):
        fs.message("C0001", posted["ts"])
    assert [p.outcome for p in fs.responses(fs.response_url_id(url))] == ["deleted"]


async def test_post_to_user_id_opens_dm_and_users_info(fs: FakeSlack, client: AsyncWebClient) -> None:
    resp = await client.chat_postMessage(channel="U0002", text="psst")
    assert resp["channel"] == "D0002" and fs.channels["D0002"].is_im
    info = await client.users_info(user="U0001")
    assert info["user"]["name"] == "ana"
    conv = await client.conversations_info(channel="C0002")
    assert conv["channel"]["name"] == "finance-close" and conv["channel"]["is_member"]


# ---------------------------------------------------------------------------------------------------
# Socket Mode: apps.connections.open, the websocket, envelopes and acks


async def test_apps_connections_open_wants_the_app_level_token(fs: FakeSlack) -> None:
    client = AsyncWebClient(base_url=fs.api_url)  # apps_connections_open sends app_token as the bearer token
    opened = await client.apps_connections_open(app_token=fs.app_token)
    assert opened["url"].startswith(f"ws://127.0.0.1:{fs.port}/socket-mode/")
    for token, error in (
        ("xapp-1-A0FAKE-1-not-this-one", "invalid_auth"),
        (DEFAULT_TOKEN, "not_allowed_token_type"),
        ("", "not_authed"),
    ):
        with pytest.raises(SlackApiError) as exc:
            await client.apps_connections_open(app_token=token)
        assert exc.value.response["error"] == error, token
    with pytest.raises(SlackApiError) as exc:  # nor does the app-level token work for bot methods
        await AsyncWebClient(token=fs.app_token, base_url=fs.api_url).chat_postMessage(
            channel="C0001", text="x"
        )
    assert exc.value.response["error"] == "not_allowed_token_type"
    fs.app_token = "xapp-1-A0FAKE-2-rotated"
    with pytest.raises(SlackApiError) as exc:
        await client.apps_connections_open(app_token=DEFAULT_APP_TOKEN)
    assert exc.value.response["error"] == "invalid_auth"
    assert (await client.apps_connections_open(app_token="xapp-1-A0FAKE-2-rotated"))["ok"]
    assert [c.error for c in fs.calls_of("apps.connections.open")] == [
        None, "invalid_auth", "not_allowed_token_type", "not_authed", "invalid_auth", None]
    assert fs.messages("C0001") == []


async def _socket_url(fs: FakeSlack) -> str:
    return str(
        (await AsyncWebClient(base_url=fs.api_url).apps_connections_open(app_token=fs.app_token))["url"]
    )


async def test_socket_hello_ping_envelope_and_acks_recorded(fs: FakeSlack) -> None:
    url = await _socket_url(fs)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, autoping=False) as ws:
            hello = await ws.receive_json(timeout=5)
            assert hello["type"] == "hello" and hello["num_connections"] == 1
            assert hello["connection_info"] == {"app_id": "A0FAKE"} and "host" in hello["debug_info"]
            await ws.ping(b"sdk-ping-pong:1.5")
            pong = await ws.receive(timeout=5)
            assert pong.type == aiohttp.WSMsgType.PONG and pong.data == b"sdk-ping-pong:1.5"
            [conn] = fs.open_sockets()
            assert conn.pings == 1 and conn.hello == hello and fs.socket_ready() is conn

            payload = {"command": "/jobstatus", "text": "help", "user_id": "U0001"}
            delivery = asyncio.create_task(fs.deliver("slash_commands", payload))
            envelope = await ws.receive_json(timeout=5)
            assert envelope == {"envelope_id": envelope["envelope_id"], "payload": payload,
                                "type": "slash_commands", "accepts_response_payload": True}
            await ws.send_json({"envelope_id": envelope["envelope_id"], "payload": {"text": "Usage: ..."}})
            env = await delivery
            assert env.error is None and env.connection_id == conn.id and env.ack is not None
            assert env.ack.payload == {"text": "Usage: ..."} and env.elapsed is not None and env.elapsed < 5

            await ws.send_json({"envelope_id": envelope["envelope_id"]})  # a second ack for it
            await ws.send_json({"envelope_id": "never-sent"})
            await ws.send_str("not json")
            await fs.wait_for(lambda: len(conn.received) == 4)
            first, again, unknown = fs.socket_acks
            assert first is env.ack and not first.duplicate
            assert again.duplicate and again.payload is None and env.ack is first
            assert unknown.elapsed is None and not unknown.duplicate
            assert conn.received[-1] == "not json"

            env = await fs.deliver("interactive", {"type": "block_actions"}, timeout=0.2)  # never acked
            assert env.error == "operation_timeout" and env.ack is None and not env.accepts_response_payload
            assert (await ws.receive_json(timeout=5))["accepts_response_payload"] is False
        await fs.wait_for(lambda: not conn.open, what="the socket closed")
        assert (conn.closed_by, conn.close_code) == ("client", 1000) and fs.socket_ready() is None
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:  # a URL serves one connection
            await session.ws_connect(url)
        assert exc.value.status == 401
    env = await fs.deliver("slash_commands", payload, timeout=0.1)
    assert env.error == "dispatch_failed" and env.connection_id is None
    assert [e.error for e in fs.envelopes] == [None, "operation_timeout", "dispatch_failed"]


async def test_disconnect_drains_the_connection_and_the_next_envelope_goes_to_the_new_one(
    fs: FakeSlack,
) -> None:
    async with aiohttp.ClientSession() as session:
        old_ws = await session.ws_connect(await _socket_url(fs))
        await old_ws.receive_json(timeout=5)
        [old] = fs.open_sockets()
        assert await fs.socket_disconnect() == [old]
        message = await old_ws.receive_json(timeout=5)
        assert message["type"] == "disconnect" and message["reason"] == "refresh_requested"
        assert old.draining and old.open and fs.socket_ready() is None

        delivery = asyncio.create_task(fs.deliver("interactive", {"type": "view_submission"}, timeout=5))
        new_ws = await session.ws_connect(await _socket_url(fs))  # what a client does on `disconnect`
        assert (await new_ws.receive_json(timeout=5))["num_connections"] == 2
        envelope = await new_ws.receive_json(timeout=5)
        assert envelope["accepts_response_payload"] is True  # view_submission may answer in the ack
        await new_ws.send_json({"envelope_id": envelope["envelope_id"]})
        env = await delivery
        new = fs.socket_ready()
        assert new is not None and env.connection_id == new.id != old.id and env.ack is not None

        await fs.close_sockets()  # the server side closes: clients see CLOSE 1001 (going away)
        for ws in (old_ws, new_ws):
            assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE
            await ws.close()
        await fs.wait_for(lambda: fs.open_sockets() == [])
        assert [(c.closed_by, c.close_code) for c in fs.socket_connections] == [("server", 1001)] * 2


async def test_socket_user_sends_bolt_the_same_payloads_as_http(
    fs: FakeSlack, bolt: tuple[SlackUser, dict[str, list[Any]]]
) -> None:
    http_user, http_seen = bolt
    seen: dict[str, list[Any]] = {"commands": [], "actions": []}
    handler = AsyncSocketModeHandler(bolt_app(fs, seen), fs.app_token)
    await handler.connect_async()
    try:
        user = SlackUser.over_socket(fs)
        with pytest.raises(RuntimeError):
            await user.post_raw(b"", {})
        over_http = await http_user.command("fusion 42", channel_id="C0002")
        result = await user.command("fusion 42", channel_id="C0002")
        assert result.status == 200 and result.ack_text == over_http.ack_text == "Watching fusion 42"
        assert result.envelope is not None and result.envelope.ack is not None and result.elapsed < 3

        def same(d: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in d.items() if k not in ("response_url", "trigger_id")}

        assert same(seen["commands"][0]) == same(http_seen["commands"][0])
        assert result.envelope.payload["response_url"] == result.response_url
        [posted] = await result.wait_responses(1)
        assert posted.payload["text"] == "posted it"
        assert [e.text for e in fs.ephemerals_for("U0001") if e.source == "ack"] == ["Watching fusion 42"] * 2

        await fs.wait_for(lambda: len(fs.messages("C0002")) == 2)
        msg = fs.messages("C0002")[-1]
        click = await user.click("C0002", msg.ts, "stop_watching")
        assert click is not None and click.status == 200 and click.body is None and click.text == ""
        [body] = seen["actions"]
        assert (
            body["actions"][0]["action_id"] == "stop_watching" and body["container"]["message_ts"] == msg.ts
        )
        assert body == click.payload
        await fs.wait_for(lambda: fs.thread("C0002", msg.ts)[0].text == "stopped by ana")
        [resp] = await click.wait_responses(1)
        assert resp.outcome == "ephemeral" and http_seen["actions"] == []
    finally:
        await handler.close_async()
    with pytest.raises(ValueError):
        SlackUser("", SECRET, fs, transport="carrier-pigeon")


# ---------------------------------------------------------------------------------------------------
# What the real Slack refuses, the fake refuses, with Slack's error code (sources in bot/offline/slack/)


async def error_of(coro: Any) -> str:
    with pytest.raises(SlackApiError) as info:
        await coro
    return str(info.value.response["error"])


async def test_an_empty_file_is_refused(fs: FakeSlack, client: AsyncWebClient) -> None:
    assert (
        await error_of(client.files_getUploadURLExternal(filename="empty.log", length=0))
        == "missing_argument"
    )
    parent = await client.chat_postMessage(channel="C0002", text="Job 42 failed")
    assert await error_of(client.files_upload_v2(channel="C0002", thread_ts=parent["ts"], content=b"",
                                                 filename="empty.log")) == "missing_argument"
    assert (
        await error_of(client.files_getUploadURLExternal(filename="x.log", length=-1)) == "invalid_arguments"
    )
    assert await error_of(client.files_getUploadURLExternal(filename="", length=5)) == "missing_argument"
    assert fs.files == {} and fs.thread("C0002", parent["ts"]) == []


async def test_upload_bytes_must_match_the_announced_length(fs: FakeSlack, client: AsyncWebClient) -> None:
    ticket = await client.files_getUploadURLExternal(filename="job.log", length=10)
    async with aiohttp.ClientSession() as s:
        async with s.post(ticket["upload_url"], data=b"12345") as r:
            assert r.status == 400 and await r.text() == "length_mismatch"
        async with s.post(ticket["upload_url"], data=b"") as r:
            assert r.status == 400
    assert fs.files[ticket["file_id"]].content is None
    files = [{"id": ticket["file_id"], "title": "job.log"}]
    assert (
        await error_of(client.files_completeUploadExternal(files=files, channel_id="C0002"))
        == "file_not_found"
    )
    async with aiohttp.ClientSession() as s, s.post(ticket["upload_url"], data=b"0123456789") as r:
        assert r.status == 200
    assert (await client.files_completeUploadExternal(files=files, channel_id="C0002"))["ok"]
    assert [m.files[0]["size"] for m in fs.messages("C0002")] == [10]


async def test_file_sharing_needs_membership_where_posting_does_not(
    fs: FakeSlack, client: AsyncWebClient
) -> None:
    fs.add_channel("C0101", "public-outsider", member=False)
    parent = await client.chat_postMessage(channel="C0101", text="Job 42 failed")  # chat:write.public
    error = await error_of(client.files_upload_v2(channel="C0101", thread_ts=parent["ts"], content=b"log\n",
                                                  filename="job-42.log"))
    assert error == "not_in_channel"
    assert fs.thread("C0101", parent["ts"]) == [] and not any(f.completed for f in fs.files.values())
    fs.channels["C0101"].member = True  # the bot was invited
    await client.files_upload_v2(
        channel="C0101", thread_ts=parent["ts"], content=b"log\n", filename="job-42.log"
    )
    assert [m.files[0]["name"] for m in fs.thread("C0101", parent["ts"])] == ["job-42.log"]


async def test_chat_update_text_over_4000_characters_is_msg_too_long(
    fs: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="C0001", text="Job 42 running")
    assert (
        await error_of(client.chat_update(channel="C0001", ts=posted["ts"], text="x" * 4001))
        == "msg_too_long"
    )
    stored = fs.message("C0001", posted["ts"])
    assert stored.text == "Job 42 running" and stored.edits == 0
    await client.chat_update(channel="C0001", ts=posted["ts"], text="y" * 4000)
    assert stored.text == "y" * 4000 and stored.edits == 1
    long = await client.chat_postMessage(channel="C0001", text="z" * 40_001)  # chat.postMessage truncates
    assert fs.message("C0001", long["ts"]).text == "z" * 40_000


async def test_ephemeral_only_to_a_member_of_the_channel(fs: FakeSlack, client: AsyncWebClient) -> None:
    assert fs.channels["C0001"].members == {"U0001", "U0002"}
    fs.add_user("U0009", "carla")
    fs.add_channel("C0103", "ops-private-talk", members=["U0001"])
    for channel, user in (("C0103", "U0002"), ("C0103", "U0009"), ("C0103", "U7777"), ("C0001", "U0009")):
        error = await error_of(client.chat_postEphemeral(channel=channel, user=user, text="only you"))
        assert error == "user_not_in_channel", (channel, user)
    assert (await client.chat_postEphemeral(channel="C0103", user="U0001", text="only you"))["ok"]
    assert (await client.chat_postEphemeral(channel="C0001", user="U0002", text="only you"))["ok"]
    assert [(e.channel, e.user) for e in fs.ephemerals] == [("C0103", "U0001"), ("C0001", "U0002")]


def _button(text: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": "go",
        "text": text or {"type": "plain_text", "text": "Go"},
        **extra,
    }


def _dialog(**texts: str) -> dict[str, Any]:
    words = {"title": "Sure?", "text": "Really?", "confirm": "Yes", "deny": "No", **texts}
    return {key: {"type": "plain_text", "text": value} for key, value in words.items()}


def _actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


def _section(text: str, kind: str = "mrkdwn") -> dict[str, Any]:
    return {"type": "section", "text": {"type": kind, "text": text}}


# (what is wrong, the blocks, the JSON pointer Slack's answer names; a closing ] marks the whole pointer)
REFUSED_BLOCKS = [
    ("empty section text", [_section("")], "/blocks/0/text/text"),
    ("empty plain_text", [_section("", "plain_text")], "/blocks/0/text/text"),
    (
        "empty button text",
        [_actions(_button({"type": "plain_text", "text": ""}))],
        "/blocks/0/elements/0/text/text",
    ),
    (
        "empty context text",
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": ""}]}],
        "/blocks/0/elements/0/text",
    ),
    (
        "mrkdwn button text",
        [_actions(_button({"type": "mrkdwn", "text": "*Go*"}))],
        "/blocks/0/elements/0/text/type",
    ),
    (
        "mrkdwn header text",
        [{"type": "header", "text": {"type": "mrkdwn", "text": "Job"}}],
        "/blocks/0/text/type",
    ),
    ("button text over 75", [_actions(_button({"type": "plain_text", "text": "b" * 76}))], "/blocks/0]"),
    ("button value over 2000", [_actions(_button(value="v" * 2001))], "/blocks/0]"),
    ("confirm title over 100", [_actions(_button(confirm=_dialog(title="t" * 101)))], "/blocks/0]"),
    ("confirm text over 300", [_actions(_button(confirm=_dialog(text="t" * 301)))], "/blocks/0]"),
    ("confirm button over 30", [_actions(_button(confirm=_dialog(confirm="c" * 31)))], "/blocks/0]"),
    ("deny button over 30", [_actions(_button(confirm=_dialog(deny="d" * 31)))], "/blocks/0]"),
    (
        "mrkdwn confirm title",
        [_actions(_button(confirm={**_dialog(), "title": {"type": "mrkdwn", "text": "t"}}))],
        "/blocks/0/elements/0/confirm/title/type",
    ),
    ("unknown block type", [{"type": "jobstatus_card", "text": "hi"}], "/blocks/0]"),
    (
        "context text over 3000",
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c" * 3001}]}],
        "/blocks/0/elements/0/text",
    ),
    ("section text over 3000", [_section("s" * 3001)], "/blocks/0]"),
    (
        "field over 2000",
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
        "/blocks/0/fields/0/text",
    ),
    ("text object of no known type", [_section("hi", "html")], "/blocks/0/text"),
    ("section text not an object", [{"type": "section", "text": "hi"}], "/blocks/0/text"),
    ("more than 50 blocks", [{"type": "divider"}] * 51, "/blocks]"),
    ("actions with no elements", [_actions()], "/blocks/0/elements"),
    ("a block without a type", [{"text": "hi"}], "/blocks/0]"),
    ("a button without text", [_actions({"type": "button", "action_id": "go"})], "/blocks/0]"),
]


@pytest.mark.parametrize(("why", "blocks", "pointer"), REFUSED_BLOCKS, ids=[c[0] for c in REFUSED_BLOCKS])
async def test_block_kit_payloads_slack_refuses(
    fs: FakeSlack, client: AsyncWebClient, why: str, blocks: list[dict[str, Any]], pointer: str
) -> None:
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C0001", text="fallback", blocks=blocks)
    answer = info.value.response
    assert answer["error"] == "invalid_blocks", why
    assert any(f"[json-pointer:{pointer}" in e for e in answer["errors"]), answer["errors"]
    assert answer["response_metadata"]["messages"] == [f"[ERROR] {e}" for e in answer["errors"]]
    assert fs.messages("C0001") == []


async def test_block_kit_at_the_limits_is_taken(fs: FakeSlack, client: AsyncWebClient) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        _section("s" * 3000),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2000}] * 10},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "c" * 3000}, {"type": "plain_text", "text": "p"}],
        },
        _actions(
            _button(
                {"type": "plain_text", "text": "b" * 75},
                value="v" * 2000,
                confirm={
                    **_dialog(title="t" * 100, confirm="c" * 30, deny="d" * 30),
                    "text": {"type": "mrkdwn", "text": "*x*" * 100},
                },
            )
        ),
        *[{"type": "divider"}] * 45,
    ]
    assert len(blocks) == 50
    posted = await client.chat_postMessage(channel="C0001", text="fallback", blocks=blocks)
    assert fs.message("C0001", posted["ts"]).blocks == blocks


async def test_every_way_in_checks_the_blocks(fs: FakeSlack, client: AsyncWebClient) -> None:
    bad = [_section("")]
    posted = await client.chat_postMessage(channel="C0001", text="Job 42", blocks=JOB_BLOCKS)
    assert (
        await error_of(client.chat_update(channel="C0001", ts=posted["ts"], text="x", blocks=bad))
        == "invalid_blocks"
    )
    assert fs.message("C0001", posted["ts"]).blocks == JOB_BLOCKS
    assert await error_of(client.chat_postEphemeral(channel="C0001", user="U0001", text="x", blocks=bad)) \
        == "invalid_blocks"
    assert await error_of(client.chat_postMessage(channel="C0001", text="x", blocks="[not json")) \
        == "invalid_blocks_format"
    url = fs.response_url("C0001", "U0001", posted["ts"])
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json={"text": "x", "blocks": bad}) as r:
            assert r.status == 400 and await r.text() == "invalid_blocks"
        async with s.post(url, json={"text": "Job 42 done", "blocks": [_section("done")]}) as r:
            assert r.status == 200
    assert [p.outcome for p in fs.responses(fs.response_url_id(url))] == ["invalid_blocks", "replaced"]
    assert fs.message("C0001", posted["ts"]).blocks == [_section("done")] and fs.ephemerals == []


async def test_a_token_in_the_query_string_is_refused(fs: FakeSlack) -> None:
    header = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}

    async def call(url: str, **kw: Any) -> str:
        async with aiohttp.ClientSession() as s, s.post(url, **kw) as r:
            body = await r.json()
        return "ok" if body["ok"] else str(body["error"])

    api = fs.api_url
    assert await call(f"{api}auth.test?token={DEFAULT_TOKEN}") == "invalid_auth"
    assert await call(f"{api}chat.postMessage?token={DEFAULT_TOKEN}&channel=C0001&text=hi") == "invalid_auth"
    assert await call(f"{api}chat.postMessage?token={DEFAULT_TOKEN}", headers=header,
                      data={"channel": "C0001", "text": "hi"}) == "invalid_auth"
    assert (
        await call(f"{api}chat.postMessage", json={"token": DEFAULT_TOKEN, "channel": "C0001", "text": "hi"})
        == "not_authed"
    )  # with a JSON body the token goes in the Authorization header only
    assert (
        await call(f"{api}chat.postMessage", data={"token": DEFAULT_TOKEN, "channel": "C0001", "text": "a"})
        == "ok"
    )
    assert (
        await call(f"{api}chat.postMessage", headers=header, json={"channel": "C0001", "text": "b"}) == "ok"
    )
    assert await call(f"{api}chat.postMessage?channel=C0001&text=c", headers=header) == "ok"
    assert [m.text for m in fs.messages("C0001")] == ["a", "b", "c"]
    assert all(DEFAULT_TOKEN not in json.dumps(c.args) for c in fs.calls)


async def test_response_url_delete_original_with_a_message_deletes_and_posts(
    fs: FakeSlack, client: AsyncWebClient
) -> None:
    first = await client.chat_postMessage(channel="C0001", text="Job 42 running", blocks=JOB_BLOCKS)
    second = await client.chat_postMessage(channel="C0001", text="Job 43 running", blocks=JOB_BLOCKS)
    url_1 = fs.response_url("C0001", "U0001", first["ts"])
    url_2 = fs.response_url("C0001", "U0001", second["ts"])
    async with aiohttp.ClientSession() as s:
        payload = {"delete_original": True, "text": "Job 42 cancelled", "response_type": "in_channel"}
        async with s.post(url_1, json=payload) as r:
            assert r.status == 200
        async with s.post(
            url_2, json={"delete_original": "true", "replace_original": True, "text": "Stopped"}
        ) as r:
            assert r.status == 200
    assert [m.text for m in fs.messages("C0001")] == ["Job 42 cancelled"]
    [posted] = fs.responses(fs.response_url_id(url_1))
    assert (posted.outcome, posted.deleted, posted.ts) == (
        "in_channel",
        first["ts"],
        fs.messages("C0001")[0].ts,
    )
    [told] = fs.responses(fs.response_url_id(url_2))
    assert (told.outcome, told.deleted) == ("ephemeral", second["ts"])
    assert [(e.user, e.text) for e in fs.ephemerals_for()] == [("U0001", "Stopped")]


async def test_response_url_expires_after_30_minutes() -> None:
    now = [1_766_000_000.0]
    fake = FakeSlack(clock=lambda: now[0])
    await fake.start()
    try:
        url = fake.response_url("C0001", "U0001")
        async with aiohttp.ClientSession() as s:
            now[0] += 30 * 60
            async with s.post(url, json={"text": "at 30 minutes"}) as r:
                assert r.status == 200
            now[0] += 1
            async with s.post(url, json={"text": "past 30 minutes"}) as r:
                assert r.status == 404 and await r.text() == "expired_url"
        assert [p.outcome for p in fake.responses(fake.response_url_id(url))] == ["ephemeral", "expired_url"]
    finally:
        await fake.stop()
