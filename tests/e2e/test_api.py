"""End to end, the HTTP API for pipelines (bot/api.py): real HTTP requests to the real Runtime's port, vendor
simulators behind it, assertions on what reached the fake Slack. A refusal says what the slash command says
in the same situation: each case runs both and compares."""

from __future__ import annotations

import asyncio
import html
import json
import logging
from typing import Any

import aiohttp
import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bot import store
from bot.offline.vendors.core import Step
from bot.store.leases import NOW
from tests.conftest import Harness
from tests.e2e.test_postgres import query
from tests.e2e.test_replicas import Cluster, cluster  # noqa: F401  (the fixture)

TOKEN = "ci-finance-0123456789abcdef0123456789"
HR_TOKEN = "ci-hr-abcdef0123456789abcdef01234567"
API = {"tokens": {
    "ci-finance": {"token": TOKEN},
    "ci-hr": {"token": HR_TOKEN, "backends": ["planning-demo", "fusion-demo"], "channels": ["C0002"]},
}}
pytestmark = pytest.mark.settings(api=API)


async def call(h: Harness, method: str, path: str, body: Any = None, *, token: str | None = TOKEN,
               raw: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    url = h.runtime.events_url.replace("/slack/events", path)
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
    async with aiohttp.ClientSession() as session, session.request(method, url, data=data, headers=sent) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if resp.content_type == "application/json" else text


async def post(h: Harness, body: Any, **kw: Any) -> tuple[int, Any]:
    return await call(h, "POST", "/api/v1/watches", body, **kw)


async def slash(h: Harness, text: str, channel: str = "C0001") -> str:
    """What the slash command answers: in its ack when refused before the vendor is asked, else last."""
    result = await h.user.command(text, channel_id=channel, user_id="U0001")
    if result.ack_text:
        return str(result.ack_text)
    await result.wait_responses(2)
    return str(result.responses()[-1].text)


def texts(msg: Any) -> str:
    return html.unescape(json.dumps(msg.blocks or [], ensure_ascii=False))


async def test_post_answers_once_the_parent_is_in_slack_and_a_repeat_gets_the_same_watch(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(44046, name="ExtractMostLabels", steps=[Step(0, "RUNNING")])
    status, body = await post(h, {"backend": "fusion-demo", "job_id": 44046, "channel": "C0001"})
    assert status == 201, body
    [parent] = h.parents()
    assert body == {"id": body["id"], "backend": "fusion-demo", "job_id": "44046", "channel": "C0001",
                    "state": "running", "vendor_status": "RUNNING", "final": False, "active": True,
                    "thread_ts": parent.ts, "permalink": body["permalink"]}
    assert body["permalink"] and parent.ts.replace(".", "") in body["permalink"]
    assert "*Watched by*\\n`ci-finance` (API)" in texts(parent)  # no user given: the client is named

    again_status, again = await post(h, {"backend": "fusion-demo", "job_id": "44046", "channel": "C0001"})
    assert (again_status, again) == (200, body)
    assert len(h.parents()) == 1

    # the same job in another channel, with a user to mention: one job row, a second thread
    status, other = await post(h, {"backend": "fusion-demo", "job_id": "44046", "channel": "C0002", "user": "U0002"})
    assert status == 201 and other["id"] != body["id"]
    assert "<@U0002>" in texts(h.parents("C0002")[0])
    h.sim.fusion.set_state(44046, "ERROR", message="ESS-07034")
    await h.slack.wait_for(lambda: any("<@U0002>" in texts(r) and "failed" in r.text for r in h.replies("C0002")),
                           what="the failure reply mentioning the user the pipeline named")


@pytest.mark.backends(**{"immuta-demo": {"channels": ["C0002"]}})
async def test_each_refusal_has_its_status_and_the_slash_commands_words(harness: Harness) -> None:
    h = harness
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"backend": "fusoin-demo", "job_id": "1", "channel": "C0001"}, 404, "unknown_backend",
         "watch fusoin-demo 1"),
        ({"backend": "fusion-demo", "job_id": "12ab", "channel": "C0001"}, 400, "invalid_job_id",
         "watch fusion-demo 12ab"),
        ({"backend": "fusion-demo", "job_id": "424242", "channel": "C0001"}, 404, "job_not_found",
         "watch fusion-demo 424242"),
        ({"backend": "immuta-demo", "job_id": "00000000-0000-4000-8000-0000000000a1", "channel": "C0001"}, 403, "channel_not_allowed",
         "watch immuta-demo 00000000-0000-4000-8000-0000000000a1"),
    ]
    for body, status, code, command in cases:
        got = await post(h, body)
        assert got == (status, {"error": code, "message": await slash(h, command)}), body

    h.sim.fusion.add_job(4300, steps=[Step(0, "RUNNING")])
    h.sim.fusion.fail_job(4300, "503", times=20)
    status, down = await post(h, {"backend": "fusion-demo", "job_id": "4300", "channel": "C0001"})
    assert (status, down["error"]) == (502, "backend_unavailable")
    said = await slash(h, "watch fusion-demo 4300")
    assert down["message"] == said and "cannot be reached right now" in said

    # a channel the bot cannot post in: Slack's refusal, in the slash command's words, and nothing stays
    h.sim.planning.add_job(225, steps=[Step(0, -1)])
    status, refused = await post(h, {"backend": "planning-demo", "job_id": "225", "channel": "C0NOWHERE"})
    assert (status, refused["error"]) == (403, "cannot_post")
    assert refused["message"].startswith("I cannot post in this channel. Invite me first")

    # what the token may use: its backends, its channels
    status, other = await post(h, {"backend": "planning-demo", "job_id": "225", "channel": "C0001"}, token=HR_TOKEN)
    assert (status, other["error"]) == (403, "token_not_allowed")
    assert other["message"] == ("API token `ci-hr` may not watch in <#C0001> (its `channels` setting allows: "
                                "<#C0002>).")
    status, other = await post(h, {"backend": "immuta-demo", "job_id": "00000000-0000-4000-8000-0000000000a1", "channel": "C0002"}, token=HR_TOKEN)
    assert (status, other["error"]) == (403, "token_not_allowed") and "`backends` setting" in other["message"]

    # malformed bodies say what is wrong
    for raw, says in [(b"{not json", "not JSON"), (b"[1]", "not a JSON object"),
                      (b'{"backend": "fusion-demo", "job_id": "1"}', "'channel' is missing"),
                      (b'{"backend": "fusion-demo", "job_id": "1", "channel": "C0001", "jobid": 1}', "'jobid'"),
                      (b'{"backend": "fusion-demo", "job_id": "1", "channel": "#general"}', "not a channel id"),
                      (b'{"backend": "fusion-demo", "job_id": "1", "channel": "C0001", "user": "bob"}',
                       "not a Slack user id"),
                      (b" " * 2_000_000, "too long")]:  # more than aiohttp would read whole: never read whole
        status, bad = await post(h, None, raw=raw)
        assert (status, bad["error"]) == (400, "malformed") and says in bad["message"], raw

    # another method on either route: a JSON refusal saying which are taken
    for method, path, allowed in [("PUT", "/api/v1/watches", "POST"), ("GET", "/api/v1/watches", "POST"),
                                  ("PATCH", "/api/v1/watches/1", "GET, DELETE")]:
        status, refused = await call(h, method, path, {"backend": "fusion-demo"})
        assert (status, refused["error"]) == (405, "method_not_allowed") and allowed in refused["message"], method

    assert h.parents("C0001") == [] and h.parents("C0002") == []
    assert await h.runtime.db.run(_watch_count) == 0


async def test_without_a_valid_token_nothing_changes_and_no_token_is_logged(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h = harness
    caplog.set_level(logging.DEBUG)
    h.sim.fusion.add_job(500, steps=[Step(0, "RUNNING")])
    body = {"backend": "fusion-demo", "job_id": "500", "channel": "C0001"}
    wrong = "ci-finance-0123456789abcdef012345678X"
    for kw in ({"token": None}, {"token": wrong}, {"token": TOKEN[:-1]}, {"token": ""},
               {"token": None, "headers": {"Authorization": f"Basic {TOKEN}"}}):
        status, said = await post(h, body, **kw)
        assert status == 401 and said["error"] == "unauthorized", kw
    assert h.sim.fusion.count() == 0 and h.parents() == []
    assert await h.runtime.db.run(_watch_count) == 0

    status, made = await post(h, body)
    assert status == 201
    for method in ("GET", "DELETE"):
        assert (await call(h, method, f"/api/v1/watches/{made['id']}", token=wrong))[0] == 401
    status, now = await call(h, "GET", f"/api/v1/watches/{made['id']}")
    assert status == 200 and now["active"] is True
    assert len(h.replies()) == 0

    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "API client ci-finance: watch" in logged  # the API's requests are logged at all...
    for secret in (TOKEN, HR_TOKEN, wrong, TOKEN[:-1]):
        assert secret not in logged  # ...and no token, right or wrong, is in them


async def test_get_follows_the_job_and_delete_says_in_the_thread_who_stopped_it(harness: Harness) -> None:
    h = harness
    h.sim.planning.add_job(224, steps=[Step(0, -1)])
    h.sim.fusion.add_job(600, steps=[Step(0, "RUNNING")])
    _, first = await post(h, {"backend": "planning-demo", "job_id": "224", "channel": "C0002"}, token=HR_TOKEN)
    _, second = await post(h, {"backend": "fusion-demo", "job_id": "600", "channel": "C0001"})

    # what a pipeline's loop does: GET until the state is final
    h.sim.planning.set_state(224, 0, details="Metadata import was successful")
    for _ in range(100):
        status, now = await call(h, "GET", f"/api/v1/watches/{first['id']}", token=HR_TOKEN)
        assert status == 200
        if now["final"]:
            break
        await asyncio.sleep(0.1)
    assert (now["state"], now["final"]) == ("succeeded", True)
    assert now["thread_ts"] == first["thread_ts"]

    # a token sees only its channels' and backends' watches; ids it does not know are 404
    assert (await call(h, "GET", f"/api/v1/watches/{second['id']}", token=HR_TOKEN))[1]["error"] == \
        "token_not_allowed"
    status, refused = await call(h, "DELETE", f"/api/v1/watches/{second['id']}", token=HR_TOKEN)
    assert (status, refused["error"]) == (403, "token_not_allowed")
    for missing in ("999999", "abc"):
        status, said = await call(h, "GET", f"/api/v1/watches/{missing}")
        assert (status, said["error"]) == (404, "not_found")

    status, stopped = await call(h, "DELETE", f"/api/v1/watches/{second['id']}")
    assert status == 200 and stopped["active"] is False and stopped["id"] == second["id"]
    await h.slack.wait_for(lambda: any("Stopped watching (by `ci-finance` (API))" in r.text
                                       for r in h.replies("C0001")), what="the note naming the API client")
    assert (await call(h, "DELETE", f"/api/v1/watches/{second['id']}"))[0] == 200  # again: nothing more
    await asyncio.sleep(0.3)
    assert sum("Stopped watching" in r.text for r in h.replies("C0001")) == 1

    # every request counted by route and status
    async with aiohttp.ClientSession() as session, \
            session.get(h.runtime.events_url.replace("/slack/events", "/metrics")) as resp:
        metrics = await resp.text()
    assert 'jobstatus_api_requests_total{method="POST",route="/api/v1/watches",status="201"} 2.0' in metrics
    assert 'jobstatus_api_requests_total{method="DELETE",route="/api/v1/watches/{id}",status="403"} 1.0' in metrics
    assert 'jobstatus_api_requests_total{method="GET",route="/api/v1/watches/{id}",status="404"} 2.0' in metrics


async def test_the_answer_waits_for_a_parent_slack_makes_wait_for(harness: Harness) -> None:
    """A parent the notifier could not send at once (here Slack's Retry-After; with replicas, another replica
    holding the channel) is waited for in the store; past the wait the answer comes without a thread."""
    h = harness
    h.sim.fusion.add_job(700, steps=[Step(0, "RUNNING")])
    h.slack.fail_next("chat.postMessage", "ratelimited")  # Retry-After: 1 s
    status, body = await post(h, {"backend": "fusion-demo", "job_id": "700", "channel": "C0001"})
    [parent] = h.parents()
    assert status == 201 and body["thread_ts"] == parent.ts and body["permalink"]

    h.runtime.api.parent_wait = 0.3  # type: ignore[union-attr]
    h.slack.retry_after = 3
    h.slack.fail_next("chat.postMessage", "ratelimited")
    h.sim.fusion.add_job(701, steps=[Step(0, "RUNNING")])
    status, early = await post(h, {"backend": "fusion-demo", "job_id": "701", "channel": "C0001"})
    assert status == 201 and early["active"] is True and (early["thread_ts"], early["permalink"]) == (None, None)
    await h.slack.wait_for(lambda: len(h.parents()) == 2, what="the parent, once Slack takes it")
    status, later = await call(h, "GET", f"/api/v1/watches/{early['id']}")
    assert later["thread_ts"] == h.parents()[1].ts


@pytest.mark.settings()
async def test_without_api_in_the_config_the_routes_answer_404(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(800, steps=[Step(0, "RUNNING")])
    for method, path in (("POST", "/api/v1/watches"), ("GET", "/api/v1/watches/1"), ("DELETE", "/api/v1/watches/1")):
        status, _ = await call(h, method, path, {"backend": "fusion-demo", "job_id": "800", "channel": "C0001"})
        assert status == 404
    assert h.sim.fusion.count() == 0 and h.parents() == []


def _watch_count(s: Any) -> int:
    from sqlalchemy import func, select

    from bot.store import Watch

    return int(s.execute(select(func.count()).select_from(Watch)).scalar_one())


# -- replicas on PostgreSQL: the replica that answers is not the one that posts ---------------------------------

async def test_with_replicas_the_answer_waits_for_the_replica_that_holds_the_channel(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811  (the fixture imported above)
    """Two real `jobstatus-bot run` processes on one PostgreSQL database (tests/e2e/test_replicas.py's cluster),
    the token given by ${ENV}. Replica a holds #C0001's send lease (written as its notifier would), so the
    POST through replica b cannot post the parent itself: b answers once a has posted it."""
    c = cluster
    config = yaml.safe_load((c.tmp / "jobstatus.yaml").read_text())
    config["api"] = {"tokens": {"ci-finance": {"token": "${CI_TOKEN}"}}}
    (c.tmp / "jobstatus.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("CI_TOKEN", TOKEN)
    await c.start("a")
    await c.start("b")
    [a] = [r for (r,) in query(c.url, "SELECT id FROM replicas") if c.name_of(r) == "a"]
    engine = create_engine(store.engine_url(c.url), poolclass=NullPool)
    with engine.begin() as con:
        con.execute(text(f"INSERT INTO channel_leases (channel, owner, lease_until) VALUES ('C0001', :a, {NOW} + 600)"),
                    {"a": a})
    engine.dispose()

    c.sim.fusion.add_job(9300, steps=[Step(0, "RUNNING")])
    url = f"http://127.0.0.1:{c.ports['b']}/api/v1/watches"
    async with aiohttp.ClientSession() as session, session.post(
            url, json={"backend": "fusion-demo", "job_id": "9300", "channel": "C0001"},
            headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        status, body = resp.status, await resp.json()
    [parent] = c.slack.messages("C0001")
    assert status == 201 and body["thread_ts"] == parent.ts, body
    assert query(c.url, "SELECT owner FROM channel_leases WHERE channel = 'C0001'") == [(a,)]  # a sent it
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{c.ports['a']}/api/v1/watches/{body['id']}",
            headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert (resp.status, await resp.json()) == (200, body)  # any replica answers for any watch
    for name in ("a", "b"):
        assert TOKEN not in c.log(name)
    assert "API client ci-finance: watch" in c.log("b")
