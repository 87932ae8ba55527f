"""End to end, the HTTP API for pipelines (bot/inbound/api.py): real HTTP requests to the real Runtime's port,
vendor simulators behind it, assertions on what reached the fake Slack. A refusal says what the slash command
says in the same situation: each case runs both and compares."""

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
from bot.domain.jobs import ButtonAction
from bot.inbound import api as api_module
from bot.offline.vendors.core import Step
from bot.store.leases import NOW
from tests.conftest import Harness
from tests.e2e.test_postgres import query
from tests.e2e.test_replicas import Cluster, cluster  # noqa: F401  (the fixture)

TOKEN = "ci-finance-0123456789abcdef0123456789"
HR_TOKEN = "ci-hr-abcdef0123456789abcdef01234567"
OPS_TOKEN = "ci-ops-abcdef0123456789abcdef01234567"
API = {"tokens": {
    "ci-finance": {"token": TOKEN, "users": ["U0002"]},
    "ci-hr": {"token": HR_TOKEN, "backends": ["planning-demo", "fusion-demo"], "channels": ["C0002"]},
    "ci-ops": {"token": OPS_TOKEN, "channels": ["C0001"]},
}}
pytestmark = pytest.mark.settings(api=API)


async def call(h: Harness, method: str, path: str, body: Any = None, *, token: str | None = TOKEN,
               raw: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    url = h.runtime.events_url.replace("/slack/events", path)
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, headers=sent) as resp,
    ):
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


async def test_post_answers_once_the_parent_is_in_slack_and_a_repeat_gets_the_same_watch(
    harness: Harness,
) -> None:
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
    status, other = await post(
        h, {"backend": "fusion-demo", "job_id": "44046", "channel": "C0002", "user": "U0002"}
    )
    assert status == 201 and other["id"] != body["id"]
    assert "*Watched by*\\n`ci-finance` (API) for <@U0002>" in texts(h.parents("C0002")[0])
    h.sim.fusion.set_state(44046, "ERROR", message="ESS-07034")
    await h.slack.wait_for(
        lambda: any("<@U0002>" in texts(r) and "failed" in r.text for r in h.replies("C0002")),
        what="the failure reply mentioning the user the pipeline named",
    )


@pytest.mark.backends(**{"immuta-demo": {"channels": ["C0002"]}})
async def test_each_refusal_has_its_status_and_the_slash_commands_words(harness: Harness) -> None:
    h = harness
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        (
            {"backend": "fusoin-demo", "job_id": "1", "channel": "C0001"},
            404,
            "unknown_backend",
            "watch fusoin-demo 1",
        ),
        (
            {"backend": "fusion-demo", "job_id": "12ab", "channel": "C0001"},
            400,
            "invalid_job_id",
            "watch fusion-demo 12ab",
        ),
        (
            {"backend": "fusion-demo", "job_id": "424242", "channel": "C0001"},
            404,
            "job_not_found",
            "watch fusion-demo 424242",
        ),
        (
            {"backend": "immuta-demo", "job_id": "00000000-0000-4000-8000-0000000000a1", "channel": "C0001"},
            403,
            "channel_not_allowed",
            "watch immuta-demo 00000000-0000-4000-8000-0000000000a1",
        ),
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
    status, other = await post(
        h, {"backend": "planning-demo", "job_id": "225", "channel": "C0001"}, token=HR_TOKEN
    )
    assert (status, other["error"]) == (403, "token_not_allowed")
    assert other["message"] == ("API token `ci-hr` may not watch in <#C0001> (its `channels` setting allows: "
                                "<#C0002>).")
    status, other = await post(
        h,
        {"backend": "immuta-demo", "job_id": "00000000-0000-4000-8000-0000000000a1", "channel": "C0002"},
        token=HR_TOKEN,
    )
    assert (status, other["error"]) == (403, "token_not_allowed") and "`backends` setting" in other["message"]

    # malformed bodies say what is wrong
    for raw, says in [
        (b"{not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"backend": "fusion-demo", "job_id": "1"}', "'channel' is missing"),
        (b'{"backend": "fusion-demo", "job_id": "1", "channel": "C0001", "jobid": 1}', "'jobid'"),
        (b'{"backend": "fusion-demo", "job_id": "1", "channel": "#general"}', "not a channel id"),
        (
            b'{"backend": "fusion-demo", "job_id": "1", "channel": "C0001", "user": "bob"}',
            "not a Slack user id",
        ),
        (b" " * 2_000_000, "too long"),
    ]:  # more than aiohttp would read whole: never read whole
        status, bad = await post(h, None, raw=raw)
        assert (status, bad["error"]) == (400, "malformed") and says in bad["message"], raw

    # another method on either route: a JSON refusal saying which are taken
    for method, path, allowed in [("PUT", "/api/v1/watches", "POST"), ("GET", "/api/v1/watches", "POST"),
                                  ("PATCH", "/api/v1/watches/1", "GET, DELETE")]:
        status, refused = await call(h, method, path, {"backend": "fusion-demo"})
        assert (status, refused["error"]) == (405, "method_not_allowed") and allowed in refused["message"], (
            method
        )

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
    _, first = await post(
        h, {"backend": "planning-demo", "job_id": "224", "channel": "C0002"}, token=HR_TOKEN
    )
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

    # a token sees only its channels' and backends' watches: another is as missing as an id it does not know
    assert (await call(h, "GET", f"/api/v1/watches/{second['id']}", token=HR_TOKEN))[1][
        "error"
    ] == "not_found"
    status, refused = await call(h, "DELETE", f"/api/v1/watches/{second['id']}", token=HR_TOKEN)
    assert (status, refused["error"]) == (404, "not_found")
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
    assert (
        'jobstatus_api_requests_total{method="DELETE",route="/api/v1/watches/{id}",status="404"} 1.0'
        in metrics
    )
    assert (
        'jobstatus_api_requests_total{method="GET",route="/api/v1/watches/{id}",status="404"} 3.0' in metrics
    )


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
    assert (
        status == 201 and early["active"] is True and (early["thread_ts"], early["permalink"]) == (None, None)
    )
    await h.slack.wait_for(lambda: len(h.parents()) == 2, what="the parent, once Slack takes it")
    status, later = await call(h, "GET", f"/api/v1/watches/{early['id']}")
    assert later["thread_ts"] == h.parents()[1].ts


@pytest.mark.settings()
async def test_without_api_in_the_config_the_routes_answer_404(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(800, steps=[Step(0, "RUNNING")])
    for method, path in (
        ("POST", "/api/v1/watches"),
        ("GET", "/api/v1/watches/1"),
        ("DELETE", "/api/v1/watches/1"),
    ):
        status, _ = await call(
            h, method, path, {"backend": "fusion-demo", "job_id": "800", "channel": "C0001"}
        )
        assert status == 404
    assert h.sim.fusion.count() == 0 and h.parents() == []


# -- issue 19 item 4: scope, 401s, the named user; issue 20 item 4: quotas -----------------------------------

async def call_from(h: Harness, method: str, path: str, body: Any = None, *, token: str | None = TOKEN,
                    source: str = "127.0.0.1") -> tuple[int, Any, str | None]:
    """A request from a given loopback source address (127.0.0.2 is another client to the bot's
    `request.remote`), with the answer's Retry-After."""
    url = h.runtime.events_url.replace("/slack/events", path)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as session, \
            session.request(method, url, json=body, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers.get("Retry-After")


@pytest.mark.backends(**{"immuta-demo": {"channels": ["C0002", "C0SECRET"]}})
async def test_a_watch_or_backend_beyond_the_tokens_scope_answers_as_one_that_does_not_exist(
        harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(910, steps=[Step(0, "RUNNING")])
    h.sim.immuta.add_job("00000000-0000-4000-8000-0000000001a1", steps=[Step(0, "running")])
    # not HR's channel
    _, finance = await post(h, {"backend": "fusion-demo", "job_id": "910", "channel": "C0001"})
    # HR's channel,
    _, immuta = await post(
        h, {"backend": "immuta-demo", "job_id": "00000000-0000-4000-8000-0000000001a1", "channel": "C0002"}
    )
    missing = max(finance["id"], immuta["id"]) + 1000  # not HR's backend

    def shape(said: Any, given: object) -> Any:
        return {**said, "message": said["message"].replace(str(given), "<id>")}

    for method in ("GET", "DELETE"):
        status, none = await call(h, method, f"/api/v1/watches/{missing}", token=HR_TOKEN)
        assert (status, none["error"]) == (404, "not_found")
        for watch in (finance, immuta):
            status, said = await call(h, method, f"/api/v1/watches/{watch['id']}", token=HR_TOKEN)
            assert (status, shape(said, watch["id"])) == (404, shape(none, missing)), (method, watch)
            for name in ("fusion-demo", "immuta-demo", "C0001", "C0002"):
                assert name not in said["message"]
    for watch in (finance, immuta):  # the DELETEs stopped nothing
        assert (await call(h, "GET", f"/api/v1/watches/{watch['id']}"))[1]["active"] is True

    # POST: a backend beyond the token's `backends` is refused in the words of one that does not exist
    status, exists = await post(
        h,
        {"backend": "immuta-demo", "job_id": "00000000-0000-4000-8000-0000000001a1", "channel": "C0002"},
        token=HR_TOKEN,
    )
    status2, nowhere = await post(
        h,
        {"backend": "immuta-dem0", "job_id": "00000000-0000-4000-8000-0000000001a1", "channel": "C0002"},
        token=HR_TOKEN,
    )
    assert status == status2 == 403 and exists["error"] == nowhere["error"] == "token_not_allowed"
    assert exists["message"].replace("immuta-demo", "<b>") == nowhere["message"].replace("immuta-dem0", "<b>")
    assert "vault-demo" not in nowhere["message"] and "Did you mean" not in nowhere["message"]
    # ...and a backend's own `channels` are named only where the token may watch itself
    status, refused = await post(
        h,
        {"backend": "immuta-demo", "job_id": "00000000-0000-4000-8000-0000000001a1", "channel": "C0001"},
        token=OPS_TOKEN,
    )
    assert (status, refused["error"]) == (403, "channel_not_allowed")
    assert "C0SECRET" not in refused["message"] and "C0002" not in refused["message"]
    assert refused["message"].endswith("its `channels` setting allows: none).")
    assert len(h.parents("C0002")) == 1


async def test_repeated_401s_from_one_address_are_answered_429_and_logged_once_per_burst(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h = harness
    api = h.runtime.api
    assert api is not None
    free, first_pause = api_module.FAILURES_FREE, api_module.FIRST_PAUSE
    now = [1000.0]
    # the pause's end and the burst's quiet, without sleeping through them
    api.throttle.clock = lambda: now[0]
    caplog.set_level(logging.INFO, logger="bot.inbound.api")
    h.sim.fusion.add_job(920, steps=[Step(0, "RUNNING")])
    body = {"backend": "fusion-demo", "job_id": "920", "channel": "C0001"}
    wrong = "ci-finance-guess-0000000000000000000000"
    answers = [(await call_from(h, "POST", "/api/v1/watches", body, token=wrong))[0]
               for _ in range(free + 1)]
    assert answers == [401] * (free + 1)  # a client with a wrong token sees its real error first
    for token in (wrong, TOKEN):  # then nothing from that address is looked at, a valid token neither
        for _ in range(20):
            status, said, retry = await call_from(h, "POST", "/api/v1/watches", body, token=token)
            assert (
                (status, said["error"]) == (429, "too_many_failures")
                and retry is not None
                and int(retry) >= 1
            )
    assert "Try again in" in said["message"] and h.parents() == []
    # another address is not held back
    status, made, _ = await call_from(h, "POST", "/api/v1/watches", body, source="127.0.0.2")
    assert status == 201, made
    started = [r.getMessage() for r in caplog.records if "no valid token" in r.getMessage()]
    assert started == [f"API: {free + 1} requests with no valid token from 127.0.0.1 within 60s: its "
                       "requests are answered 429 for a while (Retry-After, up to 300s)"]

    now[0] += first_pause  # the pause is over: one more wrong token doubles it
    assert (await call_from(h, "POST", "/api/v1/watches", body, token=wrong))[0] == 401
    status, _, retry = await call_from(h, "GET", f"/api/v1/watches/{made['id']}")
    assert status == 429 and int(retry or 0) == 2 * first_pause
    now[0] += 2 * first_pause + 61  # quiet for a window: the burst's one closing line, with its counts
    status, _, _ = await call_from(h, "GET", f"/api/v1/watches/{made['id']}")
    assert status == 200
    lines = [r.getMessage() for r in caplog.records if "127.0.0.1" in r.getMessage()]
    assert lines[1:] == [
        "API: the invalid tokens from 127.0.0.1 stopped: 12 failed and 41 answered 429 over 2s"
    ]


async def test_a_token_names_only_its_own_users_and_the_named_user_is_mentioned_without_rights(
        harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(930, steps=[Step(0, "RUNNING")])
    body = {"backend": "fusion-demo", "job_id": "930", "channel": "C0001"}
    for token, user in ((TOKEN, "U0003"), (HR_TOKEN, "U0002")):
        status, refused = await post(h, {**body, "channel": "C0002", "user": user}, token=token)
        assert (status, refused["error"]) == (403, "user_not_allowed"), token
        assert f"may not name `{user}`" in refused["message"] and "Leave `user` out" in refused["message"]
    assert h.parents("C0002") == [] and h.sim.fusion.count() == 0

    status, made = await post(h, {**body, "user": "U0002"})
    assert status == 201
    [parent] = h.parents()
    assert "*Watched by*\\n`ci-finance` (API) for <@U0002>" in texts(parent)
    row = await h.runtime.db.run(store.watch_and_job, made["id"])
    assert row is not None and (row[0].user_id, row[0].mention) == ("api:ci-finance", "U0002")

    # no rights: not on U0002's Home tab, no cancel under `cancel: watcher`, no Stop from a Home tab
    await h.user.open_home("U0002")
    await h.slack.wait_for(lambda: any(c.ok and c.args.get("user_id") == "U0002"
                                       for c in h.slack.calls_of("views.publish")), what="U0002's Home tab")
    assert "930" not in json.dumps(h.slack.home_of("U0002"))
    result = await h.user.command("cancel fusion-demo 930", channel_id="C0001", user_id="U0002")
    answer = str(result.ack_text) if result.ack_text else str((await result.wait_responses(2))[-1].text)
    assert (
        answer.startswith("Only `ci-finance` (API), who first watched it")
        and "or an admin may cancel" in answer
    ), answer
    assert h.sim.fusion.count("POST", "/ess/rest/scheduler/v1/requests/930/cancel") == 0
    # watching it in a channel of their own afterwards makes them no owner either: the token watched it first
    await h.watch("watch fusion-demo 930", channel="C0002", user="U0002")
    result = await h.user.command("cancel fusion-demo 930", channel_id="C0002", user_id="U0002")
    answer = str(result.ack_text) if result.ack_text else str((await result.wait_responses(2))[-1].text)
    assert answer.startswith("Only `ci-finance` (API), who first watched it"), answer
    assert h.sim.fusion.count("POST", "/ess/rest/scheduler/v1/requests/930/cancel") == 0
    forged = {
        "type": "block_actions",
        "user": {"id": "U0002"},
        "container": {"type": "view", "view_id": "V1"},
        "view": {"type": "home"},
        "trigger_id": h.slack.new_trigger("U0002"),
        "actions": [{"action_id": ButtonAction.STOP, "value": str(made["id"]), "type": "button"}],
    }
    assert (await h.user.send_payload(forged))[0] == 200
    await h.slack.wait_for(
        lambda: "does not belong to a watch of yours" in json.dumps(h.slack.home_of("U0002"))
    )
    assert (await call(h, "GET", f"/api/v1/watches/{made['id']}"))[1]["active"] is True

    # ...but pinged when the job fails
    h.sim.fusion.set_state(930, "ERROR", message="ESS-07034")
    await h.slack.wait_for(lambda: any("`ci-finance` (API) for <@U0002>, fusion-demo job" in texts(r)
                                       for r in h.replies()), what="the failure reply pinging U0002")


@pytest.mark.settings(api=API, quotas={"token": {"active": 100, "per_minute": 4}})
async def test_a_flooding_token_is_refused_at_its_limit_while_others_still_watch_in_the_channel(
        harness: Harness) -> None:
    h = harness
    for job in range(940, 950):
        h.sim.fusion.add_job(job, steps=[Step(0, "RUNNING")])
    made = [await post(h, {"backend": "fusion-demo", "job_id": str(job), "channel": "C0001"})
            for job in range(940, 944)]
    assert [status for status, _ in made] == [201] * 4
    for job in (944, 945):
        status, refused, retry = await call_from(
            h, "POST", "/api/v1/watches", {"backend": "fusion-demo", "job_id": str(job), "channel": "C0001"}
        )
        assert (status, refused["error"]) == (429, "quota_per_minute")
        assert retry is not None and 1 <= int(retry) <= 60
        assert refused["message"].startswith(
            "API token `ci-finance` (API) started 4 new watches in the last minute,"
            " the most one API token may (the `quotas: token: per_minute` setting)."
        )
        assert f"Try again in {retry} s" in refused["message"]
    assert h.sim.fusion.count("GET", "/jobRequests/944") == 0  # refused before the vendor is asked
    # the same job again costs nothing and is still answered
    assert (await post(h, {"backend": "fusion-demo", "job_id": "940", "channel": "C0001"}))[0] == 200
    # another token and a person still watch in the same channel
    assert (await post(h, {"backend": "fusion-demo", "job_id": "946", "channel": "C0001"}, token=OPS_TOKEN))[
        0
    ] == 201
    await h.watch("watch fusion-demo 947")
    assert len(h.parents()) == 6


@pytest.mark.settings(api=API, quotas={"token": {"active": 2, "per_minute": 100},
                                       "user": {"active": 100, "per_minute": 2}})
async def test_active_watches_are_limited_and_a_rewatch_counts_as_a_start(harness: Harness) -> None:
    h = harness
    for job in range(950, 954):
        h.sim.fusion.add_job(job, steps=[Step(0, "RUNNING")])
    first = [
        await post(h, {"backend": "fusion-demo", "job_id": str(job), "channel": "C0002"})
        for job in (950, 951)
    ]
    status, refused, retry = await call_from(h, "POST", "/api/v1/watches",
                                             {"backend": "fusion-demo", "job_id": "952", "channel": "C0002"})
    assert (status, refused["error"], retry) == (429, "quota_active", None)
    assert "2 active watches" in refused["message"] and "DELETE /api/v1/watches/{id}" in refused["message"]
    assert (await call(h, "DELETE", f"/api/v1/watches/{first[0][1]['id']}"))[0] == 200
    assert (await post(h, {"backend": "fusion-demo", "job_id": "952", "channel": "C0002"}))[0] == 201

    # a person: two starts a minute; a Rewatch is a start
    await h.watch("watch fusion-demo 953")
    [parent] = h.parents()

    async def press(action: ButtonAction) -> Any:
        await h.slack.wait_for(
            lambda: any(
                e.get("action_id") == action
                for b in h.parents()[0].blocks
                if b["type"] == "actions"
                for e in b["elements"]
            ),
            what=str(action),
        )
        return await h.user.click("C0001", parent.ts, action)

    await press(ButtonAction.STOP)
    await press(ButtonAction.REWATCH)
    await h.slack.wait_for(lambda: any("Watching again" in r.text for r in h.replies()), what="the rewatch")
    await press(ButtonAction.STOP)
    clicked = await press(ButtonAction.REWATCH)
    assert clicked is not None
    [answer] = await clicked.wait_responses(1)
    assert answer.text.startswith("You started 2 new watches in the last minute, the most one user may (the "
                                  "`quotas: user: per_minute` setting). Try again in "), answer.text
    assert sum("Watching again" in r.text for r in h.replies()) == 1


def _watch_count(s: Any) -> int:
    from sqlalchemy import func, select

    from bot.store import Watch

    return int(s.execute(select(func.count()).select_from(Watch)).scalar_one())


# -- replicas on PostgreSQL: the replica that answers is not the one that posts ------------------------------

async def test_with_replicas_the_answer_waits_for_the_replica_that_holds_the_channel(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811  (the fixture imported above)
    """Two real `jobstatus-bot run` processes on one PostgreSQL database (tests/e2e/test_replicas.py's
    cluster), the token given by ${ENV}. Replica a holds #C0001's send lease (written as its notifier would),
    so the POST through replica b cannot post the parent itself: b answers once a has posted it."""
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
        con.execute(
            text(
                f"INSERT INTO channel_leases (channel, owner, lease_until) VALUES ('C0001', :a, {NOW} + 600)"
            ),
            {"a": a},
        )
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
