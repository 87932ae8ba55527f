"""The real bot in Socket Mode: slack_bolt's AsyncSocketModeHandler connects to FakeSlack's websocket with the
app-level token, and Slack's requests arrive as envelopes instead of HTTP posts. Nothing of the bot is
mocked."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import Runtime
from bot.offline.setup import configure_simulators
from bot.offline.slack import FakeSlack, SlackUser
from bot.offline.vendors.core import Step
from bot.offline.vendors.server import SimulatorServer
from bot.support.config import Environment
from tests.conftest import settings_for, start_runtime


def buttons(msg: Any) -> list[str]:
    return [e["action_id"] for b in msg.blocks or [] if b["type"] == "actions" for e in b["elements"]]


@dataclass
class SocketBot:
    sim: SimulatorServer
    slack: FakeSlack
    runtime: Runtime
    user: SlackUser

    def parents(self, channel: str = "C0001") -> list[Any]:
        return self.slack.messages(channel)

    def replies(self, channel: str = "C0001", index: int = 0) -> list[Any]:
        return self.slack.thread(channel, self.parents(channel)[index].ts)

    async def watch(self, text: str, channel: str = "C0001") -> Any:
        """`/jobstatus …` over the socket: acked in time, then the bot's answer on the response_url."""
        result = await self.user.command(text, channel_id=channel)
        assert result.status == 200, result.text
        assert result.envelope is not None and result.envelope.type == "slash_commands"
        assert result.elapsed < 3  # Slack's ack deadline
        await result.wait_responses(2)  # "Checking …", then the answer
        return result


@pytest.fixture
async def bot(sim: SimulatorServer, slack: FakeSlack, tmp_path: Path) -> AsyncIterator[SocketBot]:
    configure_simulators(sim)
    env = Environment(
        slack_app_token=slack.app_token,
        slack_bot_token=slack.token,
        slack_signing_secret="unused",
        slack_api_url=slack.api_url,
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        port=0,
    )
    runtime = await start_runtime(settings_for(sim), env)
    try:
        yield SocketBot(sim, slack, runtime, SlackUser.over_socket(slack))
    finally:
        await runtime.stop()


async def test_connects_with_the_app_token_and_serves_only_healthz_over_http(bot: SocketBot) -> None:
    fs = bot.slack
    [opened] = fs.calls_of("apps.connections.open")
    assert opened.ok
    [conn] = fs.open_sockets()
    assert conn.hello["type"] == "hello" and fs.socket_ready() is conn
    async with aiohttp.ClientSession() as session:
        async with session.post(bot.runtime.events_url, data=b"command=/jobstatus&text=help") as resp:
            assert resp.status == 404
        health_url = bot.runtime.events_url.replace("/slack/events", "/healthz")
        async with session.get(health_url) as resp:
            assert resp.status == 200 and (await resp.json())["ok"] is True
    assert fs.envelopes == []  # nothing reached the bot but the socket's hello


async def test_serves_metrics_over_http_too(bot: SocketBot) -> None:
    bot.sim.fusion.add_job(44049, steps=[Step(0, "RUNNING")])
    await bot.watch("watch fusion-demo 44049")
    async with aiohttp.ClientSession() as session:
        async with session.get(bot.runtime.events_url.replace("/slack/events", "/metrics")) as resp:
            assert resp.status == 200
            text = await resp.text()
    [calls] = [f for f in text_string_to_metric_families(text) if f.name == "jobstatus_slack_calls"]
    [posted] = [s for s in calls.samples if s.labels == {"method": "chat.postMessage", "outcome": "ok"}]
    assert posted.value == len(bot.slack.calls_of("chat.postMessage")) == 1


async def test_watch_over_the_socket_then_state_change_replies_in_thread(bot: SocketBot) -> None:
    bot.sim.fusion.add_job(44046, name="ExtractMostLabels", steps=[Step(0, "RUNNING")])
    result = await bot.watch("watch fusion-demo 44046")
    assert result.ack_text == ""  # the "Checking" line comes through the response_url, before the answer
    assert result.envelope is not None and result.envelope.accepts_response_payload
    ack = result.envelope.ack
    assert ack is not None and ack.payload == result.body and ack in bot.slack.socket_acks
    checking, answer = [p.text for p in result.responses()]
    assert "Checking fusion-demo job `44046`" in checking and "Watching fusion-demo job `44046`" in answer
    assert [e.text for e in bot.slack.ephemerals_for("U0001")] == [checking, answer]

    [parent] = bot.parents()
    assert "ExtractMostLabels" in json.dumps(parent.blocks)
    assert buttons(parent) == ["jobstatus_cancel", "jobstatus_refresh", "jobstatus_stop"]

    bot.sim.fusion.set_state(44046, "SUCCEEDED")
    await bot.slack.wait_for(lambda: any("succeeded" in r.text for r in bot.replies()),
                             what="the 'succeeded' thread reply")
    await bot.slack.wait_for(lambda: buttons(bot.slack.message("C0001", parent.ts)) == ["jobstatus_rewatch"])
    assert len(bot.parents()) == 1


async def test_stop_watching_button_over_the_socket(bot: SocketBot) -> None:
    bot.sim.fusion.add_job(44047, name="DataExport", steps=[Step(0, "RUNNING")])
    await bot.watch("watch fusion-demo 44047")
    [parent] = bot.parents()

    click = await bot.user.click("C0001", parent.ts, "jobstatus_stop")
    assert click is not None and click.status == 200 and click.body is None  # an empty ack
    assert click.envelope is not None and click.envelope.type == "interactive"
    assert click.envelope.payload["type"] == "block_actions"
    assert not click.envelope.accepts_response_payload  # as Slack sends block_actions
    [answer] = await click.wait_responses(1)
    assert "Stopped watching" in answer.text and answer.outcome == "ephemeral"
    await bot.slack.wait_for(lambda: buttons(bot.slack.message("C0001", parent.ts)) == ["jobstatus_rewatch"])
    await bot.slack.wait_for(lambda: any("Stopped watching" in r.text for r in bot.replies()))


async def test_reconnects_after_disconnect_and_keeps_serving(bot: SocketBot) -> None:
    fs = bot.slack
    [old] = fs.open_sockets()
    await fs.socket_disconnect("refresh_requested")
    # the client asks for a new URL, opens a new connection and closes the old one
    new = await fs.wait_for(lambda: fs.socket_ready(), what="a new Socket Mode connection")
    assert new is not old and new.hello["type"] == "hello"
    await fs.wait_for(lambda: not old.open, what="the old connection closed by the client")
    assert old.closed_by == "client" and old.disconnect_reason == "refresh_requested"
    assert len(fs.calls_of("apps.connections.open")) == 2

    bot.sim.fusion.add_job(44048, steps=[Step(0, "RUNNING")])
    result = await bot.watch("watch fusion-demo 44048")
    assert result.envelope is not None and result.envelope.connection_id == new.id
    assert len(bot.parents()) == 1
    bot.sim.fusion.set_state(44048, "SUCCEEDED")
    await bot.slack.wait_for(lambda: any("succeeded" in r.text for r in bot.replies()))


async def test_reconnects_when_the_server_closes_the_socket(bot: SocketBot) -> None:
    fs = bot.slack
    [old] = fs.open_sockets()
    await fs.close_sockets()
    new = await fs.wait_for(lambda: fs.socket_ready(), what="a new Socket Mode connection")
    assert new is not old and not old.open and old.closed_by == "server"
    result = await bot.user.command("help")
    assert result.status == 200 and "/jobstatus watch" in result.ack_text


async def test_home_tab_shortcut_and_modal_over_the_socket(bot: SocketBot) -> None:
    """The Home tab's event (an events_api envelope), a shortcut and a modal's submission (interactive
    envelopes; a view_submission's ack carries its response_action) reach the bot over the socket too."""
    from bot.rendering import views

    fs, user = bot.slack, bot.user
    bot.runtime.home.throttle.gap = 1.0  # the refresh below need not wait out 10 s
    bot.sim.fusion.add_job(44046, steps=[Step(0, "RUNNING")])
    opened = await user.open_home("U0001")
    assert opened.status == 200
    await fs.wait_for(lambda: fs.home_of("U0001"), what="views.publish")
    await user.shortcut(views.GLOBAL_SHORTCUT, viewing="C0001")
    await fs.wait_for(lambda: fs.modals("U0001"), what="views.open")
    [modal] = fs.modals("U0001")
    refused = await user.submit(modal.id, {"backend": "fusion-demo", "job_id": "x"})
    assert refused.body is not None and set(refused.body["errors"]) == {"job_id"}
    done = await user.submit(modal.id, {"backend": "fusion-demo", "job_id": "44046"})
    assert done.status == 200 and not fs.modals("U0001")
    await fs.wait_for(lambda: bot.parents("C0001"), what="the parent posted in the current channel")
    await fs.wait_for(lambda: "44046" in json.dumps(fs.home_of("U0001")), timeout=15,
                      what="the Home tab refreshed with the new watch")
