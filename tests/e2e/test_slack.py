"""The bot against Slack's refusals end to end: every class of Slack error, driven through the fake Slack."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest

from bot import store
from bot.engine import notifier
from bot.offline.vendors.core import Step
from tests.conftest import Harness


def texts(blocks: list[dict[str, Any]] | None) -> str:
    return json.dumps(blocks or [])


def buttons(msg: Any) -> list[str]:
    return [e["action_id"] for b in msg.blocks or [] if b["type"] == "actions" for e in b["elements"]]


@pytest.mark.backends(**{"epm-demo": {"details": ["C0100"]}})
async def test_an_upload_refused_in_a_channel_the_bot_has_not_joined_costs_only_the_upload(
    harness: Harness,
) -> None:
    h = harness
    # public: chat:write.public lets the bot post here
    h.slack.add_channel("C0100", "ops-public", member=False)
    h.sim.epm_di.add_job(1881, name="GL_DATA_LOAD", steps=[Step(0, -1)], log_file="outbox/logs/GL_1881.log",
                         log_text="INFO start\nERROR [AIF]: No periods were identified\nINFO end\n")
    await h.watch("watch epm-demo 1881", channel="C0100")
    h.slack.fail_next("files.completeUploadExternal", "not_in_channel")
    h.sim.epm_di.set_state(1881, "1", details="Data load failed for location GL_LOC")
    await h.slack.wait_for(lambda: any("could not be attached" in r.text for r in h.replies("C0100")),
                           what="a note that the log could not be attached")
    replies = h.replies("C0100")
    failure = next(r for r in replies if "Data load failed for location GL_LOC" in texts(r.blocks))
    assert failure.reply_broadcast is True
    assert any("No periods were identified" in texts(r.blocks) for r in replies)  # the excerpt
    note = next(r for r in replies if "could not be attached" in r.text)
    assert "`epm-demo-1881.log`" in texts(note.blocks) and "invite" in texts(note.blocks).lower()
    assert not any(r.files for r in replies)
    [parent] = h.parents("C0100")
    await h.slack.wait_for(lambda: buttons(h.slack.message("C0100", parent.ts)) == ["jobstatus_rewatch"])
    assert "Finished" in texts(h.slack.message("C0100", parent.ts).blocks)  # the watch ended as the job did


async def healthz(h: Harness) -> dict[str, Any]:
    """The detailed /healthz, on METRICS_ADDR's listener (the test's `environment` marker sets it)."""
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{h.runtime.metrics_port}/healthz") as r:
        assert r.status == 200  # liveness: the process serves, whatever Slack says
        return dict(await r.json())


@pytest.mark.environment(metrics_addr="127.0.0.1:0")
async def test_a_revoked_token_stops_sending_keeps_everything_and_resumes_by_itself(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h = harness
    # Slack's real backoff starts at 5 s; the test need not wait that long
    h.runtime.notifier.halt.probe_first = 0.2
    h.sim.fusion.add_job(4100, name="Payroll", steps=[Step(0, "ENQUEUED")])
    await h.watch("watch fusion-demo 4100")
    [parent] = h.parents()
    caplog.set_level(logging.INFO, logger="bot")
    h.slack.token_revoked = True
    h.sim.fusion.set_state(4100, "RUNNING", progress=10)
    await h.slack.wait_for(
        lambda: any(c.error == "token_revoked" for c in h.slack.calls), what="a refused call"
    )
    await h.slack.wait_for(
        lambda: h.runtime.notifier.slack_state() != "ok", what="the notifier to stop sending"
    )
    assert (await healthz(h))["slack"].startswith("token_revoked since ")
    h.sim.fusion.set_state(4100, "RUNNING", progress=60)
    h.sim.fusion.set_state(4100, "SUCCEEDED")
    await h.slack.wait_for(lambda: h.runtime.poller.scheduled == 0, what="the poller to see the job end")
    owed = await h.runtime.db.run(store.pending, 4_000_000_000.0, 100)
    # details may be owed too
    said = [notifier.render_reply(o, h.runtime.backends).text for o in owed if o.kind in ("reply", "event")]
    assert said[:2] == ["fusion-demo job 4100: running", "fusion-demo job 4100: succeeded"], said  # all kept
    assert h.replies() == []
    probes = len(h.slack.calls_of("auth.test"))
    await h.slack.wait_for(lambda: len(h.slack.calls_of("auth.test")) >= probes + 2, what="auth.test probes")

    h.slack.token_revoked = False  # an admin fixed the token
    await h.slack.wait_for(lambda: len(h.replies()) >= len(said)
                           and "Finished" in texts(h.slack.message("C0001", parent.ts).blocks),
                           what="everything owed, after the token works again")
    got = [r.text for r in h.replies()]
    assert got[: len(said)] == said and len(set(got)) == len(got), got  # in order, once each
    assert (await healthz(h))["slack"] == "ok"
    assert len(h.parents()) == 1
    stops = [r for r in caplog.records if r.levelno >= logging.WARNING and "token_revoked" in r.getMessage()]
    assert len(stops) == 1, [r.getMessage() for r in stops]  # one line when it stopped, not one per message
    assert any("accepts the bot's token again" in r.getMessage() for r in caplog.records)
    watch = await h.runtime.db.run(lambda s: s.get(store.Watch, 1))
    assert watch.ended_reason == "finished"  # ended by the job, not by Slack


# -- one test per class of the Slack error table (bot/slack/errors.py), each through the fake's fail_next ----


async def running_watch(h: Harness, job: int, channel: str = "C0001") -> Any:
    h.sim.fusion.add_job(job, steps=[Step(0, "ENQUEUED")])
    await h.watch(f"watch fusion-demo {job}", channel=channel)
    return h.parents(channel)[-1]


def said(h: Harness, job: int, channel: str = "C0001") -> list[str]:
    parent = next(m for m in h.parents(channel) if f"job {job}" in m.text)
    return [r.text for r in h.slack.thread(channel, parent.ts)]


async def test_retry_honours_the_retry_after_of_a_real_429(harness: Harness) -> None:
    h = harness
    await running_watch(h, 5001)
    h.slack.retry_after = 2
    # more than slack_sdk's own handler would absorb
    h.slack.fail_next("chat.postMessage", "ratelimited", times=4)
    h.sim.fusion.set_state(5001, "RUNNING")
    await h.slack.wait_for(lambda: said(h, 5001) == ["fusion-demo job 5001: running"], timeout=20)
    refused = [c for c in h.slack.failed_calls if c.method == "chat.postMessage"]
    assert [c.status for c in refused] == [429] * 4
    tries = sorted([c.at for c in refused] + [c.at for c in h.slack.calls_of("chat.postMessage")
                                               if c.at > refused[0].at])
    assert len(tries) == 5
    gaps = [b - a for a, b in zip(tries, tries[1:], strict=False)]
    assert min(gaps) >= 1.95, gaps  # never before Slack's Retry-After


async def test_drop_loses_only_the_refused_message(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    await running_watch(h, 5002)
    h.slack.fail_next("chat.postMessage", "invalid_blocks")
    with caplog.at_level(logging.ERROR, logger="bot"):
        h.sim.fusion.set_state(5002, "RUNNING")
        await h.slack.wait_for(lambda: any("invalid_blocks" in r.getMessage() for r in caplog.records))
    h.sim.fusion.set_state(5002, "SUCCEEDED")
    await h.slack.wait_for(lambda: "fusion-demo job 5002: succeeded" in said(h, 5002))
    assert "fusion-demo job 5002: running" not in said(h, 5002)
    assert len(h.parents()) == 1


async def test_repost_parent_when_slack_will_not_edit_it(harness: Harness) -> None:
    h = harness
    old = await running_watch(h, 5003)
    h.slack.fail_next("chat.update", "cant_update_message")
    h.sim.fusion.set_state(5003, "ENQUEUED", progress=30)  # an edit of the parent only
    await h.slack.wait_for(lambda: len(h.parents()) == 2)
    new = h.parents()[-1]
    assert new.ts != old.ts and new.metadata["event_payload"] == old.metadata["event_payload"]
    h.sim.fusion.set_state(5003, "SUCCEEDED")
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.slack.thread("C0001", new.ts)))


async def test_end_watch_when_the_channel_takes_nothing_more(harness: Harness) -> None:
    h = harness
    await running_watch(h, 5004)
    h.slack.fail_next("chat.postMessage", "restricted_action_read_only_channel")
    h.sim.fusion.set_state(5004, "RUNNING")
    await h.slack.wait_for(
        lambda: all(j.job_id != "5004" for j in h.runtime.poller._jobs.values()), poll=0.05
    )
    watch = await h.runtime.db.run(lambda s: s.get(store.Watch, 1))
    assert not watch.active and watch.ended_reason == "Slack: restricted_action_read_only_channel"
    assert await h.runtime.db.run(store.pending, 4_000_000_000.0, 100) == []


async def test_stop_sending_on_one_refused_token_then_the_same_message_goes_once(harness: Harness) -> None:
    h = harness
    h.runtime.notifier.halt.probe_first = 0.1
    await running_watch(h, 5005)
    probes = len(h.slack.calls_of("auth.test"))  # Bolt's own check of the token, at the first request
    h.slack.fail_next("chat.postMessage", "account_inactive")
    h.sim.fusion.set_state(5005, "RUNNING")
    await h.slack.wait_for(lambda: said(h, 5005) == ["fusion-demo job 5005: running"])
    assert len(h.slack.calls_of("auth.test")) > probes  # it resumed after a probe, not on its own
    assert [c.error for c in h.slack.failed_calls] == ["account_inactive"]


async def test_an_error_no_table_knows_is_retried_a_few_times_then_dropped(
        harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    h = harness
    monkeypatch.setattr("bot.engine.notifier.outcome.BACKOFF_FIRST", 0.01)
    await running_watch(h, 5006)
    h.slack.fail_next("chat.postMessage", "brand_new_error", times=notifier.UNKNOWN_TRIES)
    with caplog.at_level(logging.WARNING, logger="bot"):
        h.sim.fusion.set_state(5006, "RUNNING")
        await h.slack.wait_for(lambda: any(r.levelno == logging.ERROR and "brand_new_error" in r.getMessage()
                                           for r in caplog.records))
    assert len([c for c in h.slack.failed_calls if c.error == "brand_new_error"]) == notifier.UNKNOWN_TRIES
    h.sim.fusion.set_state(5006, "SUCCEEDED")
    await h.slack.wait_for(lambda: "fusion-demo job 5006: succeeded" in said(h, 5006))
    assert "fusion-demo job 5006: running" not in said(h, 5006)


async def test_an_answer_refused_by_a_transient_response_url_error_is_sent_again(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(5007, steps=[Step(0, "RUNNING")])
    # HTTP 500, to "Checking …" and to the answer
    h.slack.fail_next("response_url", "internal_error", times=2)
    result = await h.user.command("status fusion-demo 5007")
    await h.slack.wait_for(lambda: [p.outcome for p in result.responses()]
                           == ["internal_error", "internal_error", "ephemeral"])
    assert "running" in result.responses()[-1].text  # the answer, sent again ("Checking" is tried once)


async def test_an_answer_refused_for_good_by_the_response_url_is_logged_once(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h = harness
    h.sim.fusion.add_job(5008, steps=[Step(0, "RUNNING")])
    h.slack.fail_next("response_url", "expired_url", times=2)  # "Checking …" and the answer
    with caplog.at_level(logging.WARNING, logger="bot"):
        result = await h.user.command("status fusion-demo 5008")
        await h.slack.wait_for(
            lambda: len([r for r in caplog.records if "expired_url" in r.getMessage()]) == 2
        )
    # neither tried again: it cannot work
    assert [p.outcome for p in result.responses()] == ["expired_url"] * 2


async def test_a_watch_asked_for_while_the_token_is_refused_is_kept_and_posted_once_it_works(
        harness: Harness) -> None:
    h = harness
    h.runtime.notifier.halt.probe_first = 0.1
    await running_watch(h, 5009)  # Bolt checks the token at its first request: it keeps that answer
    h.slack.token_revoked = True
    h.sim.fusion.add_job(5010, steps=[Step(0, "RUNNING")])
    result = await h.watch("watch fusion-demo 5010", channel="C0002")
    answer = result.responses()[-1].text
    assert (
        "Watching fusion-demo job `5010`" in answer
        and "Slack refuses my token right now (token_revoked)" in answer
    )
    assert h.parents("C0002") == []
    h.slack.token_revoked = False
    await h.slack.wait_for(lambda: len(h.parents("C0002")) == 1, what="the parent, once the token works")
    h.sim.fusion.set_state(5010, "SUCCEEDED")
    await h.slack.wait_for(lambda: "fusion-demo job 5010: succeeded" in said(h, 5010, "C0002"))
