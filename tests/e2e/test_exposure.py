"""What the bot shows about itself (issue 19, item 8): the public port's probes say ready / not ready and
nothing else, /metrics and the probes' details move to METRICS_ADDR's listener; at LOG_LEVEL=DEBUG no
response_url and no token reaches the log (a real process driven through a slash command and a click, over
HTTP and Socket Mode)."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bot.offline.setup import configure_simulators, demo_backends
from bot.offline.slack import FakeSlack, SlackUser
from bot.offline.vendors.core import Step
from bot.offline.vendors.server import SimulatorServer
from tests.conftest import Harness
from tests.e2e.test_process import SECRET, bot_env, free_port, start_bot


async def get(port: int | None, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}{path}") as r:
        body = await r.text()
        return r.status, (await r.json() if r.content_type == "application/json" else body)


async def test_the_public_port_says_only_alive_and_ready_without_metrics_addr(harness: Harness) -> None:
    h = harness
    assert await get(h.runtime.port, "/healthz") == (200, {"ok": True})
    assert await get(h.runtime.port, "/readyz") == (200, {"ready": True})
    assert h.runtime.metrics_port is None


@pytest.mark.environment(metrics_addr="127.0.0.1:0")
async def test_with_metrics_addr_metrics_and_details_are_served_there_and_not_on_the_public_port(
        harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(4300, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 4300")
    public, inside = h.runtime.port, h.runtime.metrics_port
    assert inside is not None and inside != public

    status, _ = await get(public, "/metrics")
    assert status == 404  # the public port no longer names the backends
    assert await get(public, "/healthz") == (200, {"ok": True})
    assert await get(public, "/readyz") == (200, {"ready": True})

    status, exposition = await get(inside, "/metrics")
    assert status == 200 and 'jobstatus_jobs_tracked{backend="fusion-demo"} 1.0' in exposition
    status, health = await get(inside, "/healthz")
    assert status == 200 and health["ok"] is True and health["slack"] == "ok" and health["scheduled"] == 1
    assert await get(inside, "/readyz") == (200, {"ready": True})
    status, _ = await get(inside, "/slack/events")
    assert status == 404  # the listener serves what it is for and nothing else


@pytest.mark.environment(metrics_addr="127.0.0.1:0")
async def test_not_ready_on_the_public_port_gives_no_reasons(harness: Harness) -> None:
    h = harness
    h.runtime.stopping = True  # one of the reasons; the others name the database or Slack's token state
    assert await get(h.runtime.port, "/readyz") == (503, {"ready": False})
    assert await get(h.runtime.metrics_port, "/readyz") == (503, {"ready": False, "reasons": ["stopping"]})
    h.runtime.stopping = False


# -- debug logs ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["http", "socket"])
async def test_debug_logs_of_a_slash_command_and_a_click_carry_no_response_url_and_no_token(
        tmp_path: Path, transport: str) -> None:
    sim = SimulatorServer()
    await sim.start()
    configure_simulators(sim)
    slack = FakeSlack()
    await slack.start()
    port = free_port()
    (tmp_path / "jobstatus.yaml").write_text(
        yaml.safe_dump({"backends": demo_backends(sim, poll_interval=0.5)})
    )
    env = bot_env(tmp_path, slack, port) | {"LOG_LEVEL": "DEBUG"}
    # slack_sdk's Socket Mode client logs each envelope it receives, response_url and all
    if transport == "socket":
        env["SLACK_APP_TOKEN"] = slack.app_token
    log = tmp_path / "bot.log"
    proc = await start_bot(env, log)
    try:
        sim.fusion.add_job(44050, steps=[Step(0, "RUNNING")])
        if transport == "socket":
            await slack.wait_for(lambda: slack.socket_ready() is not None, what="the Socket Mode connection")
            user = SlackUser.over_socket(slack)
        else:
            user = SlackUser(f"http://127.0.0.1:{port}/slack/events", SECRET, slack)
        command = await user.command("watch fusion-demo 44050")
        # Bolt's respond(): slack_sdk's webhook client posts to the response_url
        await command.wait_responses(2)
        [parent] = slack.messages("C0001")
        polled = sim.fusion.count("GET", "/jobRequests/44050")
        click = await user.click("C0001", parent.ts, "jobstatus_refresh")
        assert click is not None and click.status == 200
        await slack.wait_for(
            lambda: sim.fusion.count("GET", "/jobRequests/44050") > polled, what="the click's poll"
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        await slack.stop()
        await sim.stop()
    text = log.read_text()
    # the log is DEBUG's: slack_sdk's lines about what it sends and receives are there (the web client logs on
    # Bolt's logger, which Bolt hands it), and were cleaned
    assert re.search(r"DEBUG slack_bolt\.AsyncApp: Sending a request - url: POST \S+chat\.postMessage", text)
    assert re.search(r"DEBUG slack_sdk\.webhook\.\S+: Sending a request - url: \[redacted\]", text)
    for url in (command.response_url, click.response_url):
        assert url not in text and url.split("/response/")[1] not in text
    assert "/response/" not in text and "response_url': 'http" not in text
    assert slack.token not in text and "xoxb-" not in text and "xapp-" not in text
    assert user.verification_token not in text  # Slack's legacy verification token, in every payload
    if transport == "socket":  # the envelopes were logged (so there was a response_url to take out)
        assert re.search(r"DEBUG bot\.slack\.socket_mode_client: .*\[redacted\]", text), text[-3000:]
