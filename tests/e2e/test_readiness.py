"""/healthz (liveness: the process answers) and /readyz (readiness: 200, or 503 with the reasons) of the real
app: ready when serving; not while Slack refuses the token (and ready again when it takes it); a database that
does not answer, tried one ping at a time. Socket Mode's "not connected" is in test_stopping.py (a
process)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bot.app import READY_DB_TIMEOUT, Runtime
from bot.offline.vendors.core import Step
from bot.offline.vendors.server import SimulatorServer
from bot.support.config import Environment
from tests.conftest import SIGNING_SECRET, Harness, Silent, settings_for
from tests.e2e.test_process import free_port


async def probe(h: Harness, path: str, *, details: bool = True) -> tuple[int, dict[str, Any]]:
    """GET `path` on METRICS_ADDR's listener (the details), or with `details=False` on the public port."""
    port = h.runtime.metrics_port if details else h.runtime.port
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, await resp.json()


@pytest.mark.environment(metrics_addr="127.0.0.1:0")
async def test_ready_while_serving_and_not_while_slack_refuses_the_token(harness: Harness) -> None:
    h = harness
    assert await probe(h, "/readyz") == (200, {"ready": True})
    h.runtime.notifier.halt.probe_first = 0.2
    h.sim.fusion.add_job(4200, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 4200")
    h.slack.token_revoked = True
    h.sim.fusion.set_state(4200, "SUCCEEDED")
    await h.slack.wait_for(lambda: h.runtime.notifier.halted is not None, what="the notifier to stop sending")
    status, body = await probe(h, "/readyz")
    assert status == 503 and body["ready"] is False
    [reason] = body["reasons"]
    assert reason.startswith("Slack refuses the bot's token: token_revoked since ")
    status, health = await probe(h, "/healthz")
    assert status == 200 and health["ok"] is True and health["slack"].startswith("token_revoked since ")
    # the public port: ready or not, alive, and nothing about the token
    assert await probe(h, "/readyz", details=False) == (503, {"ready": False})
    assert await probe(h, "/healthz", details=False) == (200, {"ok": True})

    h.slack.token_revoked = False
    await h.slack.wait_for(lambda: h.runtime.notifier.halted is None, what="sending to resume")
    assert await probe(h, "/readyz") == (200, {"ready": True})


async def test_a_database_that_does_not_answer_is_not_ready_one_ping_at_a_time(
        silent: Silent, sim: SimulatorServer) -> None:
    env = Environment(slack_bot_token="xoxb-1", slack_signing_secret=SIGNING_SECRET,
                      database_url=f"postgresql://jobstatus:pg-s3cret@127.0.0.1:{silent.port}/jobstatus")
    runtime = Runtime(settings_for(sim), env)  # PostgreSQL that accepts and never answers
    try:
        runtime.poller.loaded = True  # the schedule is not what this test is about
        for _ in range(3):
            reasons = await runtime.not_ready()
            assert reasons == [f"the database did not answer within {READY_DB_TIMEOUT:g} s"]
        assert silent.most_at_once == 1 and len(silent.writers) == 1  # one ping waited on, not one per probe
    finally:
        runtime.db.close()

    refused = Runtime(settings_for(sim), env.model_copy(update={
        "database_url": f"postgresql://jobstatus:pg-s3cret@127.0.0.1:{free_port()}/jobstatus"}))
    try:
        refused.poller.loaded = True
        assert await refused.not_ready() == ["the database does not answer (OperationalError)"]
    finally:
        refused.db.close()
