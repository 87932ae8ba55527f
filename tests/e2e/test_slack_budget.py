"""Slack's budgets and Slack being unreachable, end to end (issue 20, items 4, 7 and 8): the real bot over
HTTP against the fake Slack, which enforces Slack's tiers (bot/offline/slack/limits.py), and the simulators.

Where a test shrinks a figure (so a storm fits in a few watches), it shrinks it on both sides, the bot's
budget (`slack_limits`) and the fake Slack's limit, as production has the same figure on both."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.offline.vendors.core import Step
from tests.conftest import Harness

TOKEN = "ci-finance-0123456789abcdef0123456789"


async def scrape(h: Harness) -> dict[str, float]:
    url = h.runtime.events_url.replace("/slack/events", "/metrics")
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        body = await resp.text()
    return {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples if not s.labels}


def replies_saying(h: Harness, index: int, word: str, channel: str = "C0001") -> list[Any]:
    return [r for r in h.replies(channel, index) if word in r.text]


@pytest.mark.settings(slack_limits={"chat.update": 3})
async def test_a_storm_of_endings_spends_chat_update_budget_and_draws_no_429(harness: Harness) -> None:
    """Eight jobs end at once in one channel, chat.update's figure 3 a minute on both sides: every state
    change's reply goes at the channel's pace, the parents' updates go within their budget, and Slack
    answers no 429 (the bot before this change sent every update at once: five 429s, each holding the
    channel's replies too)."""
    h = harness
    h.slack.limits.per_minute["chat.update"] = 3
    jobs = list(range(7300, 7308))
    for job in jobs:
        h.sim.fusion.add_job(job, steps=[Step(0, "RUNNING")])
        await h.watch(f"watch fusion-demo {job}")
    updates_before = len(h.slack.calls_of("chat.update"))
    for job in jobs:
        h.sim.fusion.set_state(job, "SUCCEEDED")
    await h.slack.wait_for(lambda: all(replies_saying(h, k, "succeeded") for k in range(len(jobs))), 30,
                           what="every job's reply that it succeeded")
    # the updates go last (after each ended job's details), as many as the budget has room for
    await h.slack.wait_for(lambda: len(h.slack.calls_of("chat.update")) - updates_before >= 3, 30,
                           what="the updates the budget has room for")
    await asyncio.sleep(2.0)  # two passes more: nothing beyond the budget goes
    assert h.slack.limits.refused == {}
    assert [c for c in h.slack.failed_calls if c.status == 429] == []
    assert 1 <= len(h.slack.calls_of("chat.update")) - updates_before <= 3


async def test_a_429_on_chat_update_holds_updates_only_not_the_channels_replies(harness: Harness) -> None:
    """Slack refuses a parent's update with 429 and Retry-After 30: the next state change's reply in the same
    channel goes at once (the bot before this change held the whole channel for the 30 s)."""
    h = harness
    h.sim.fusion.add_job(7310, steps=[Step(0, "WAIT")])
    await h.watch("watch fusion-demo 7310")
    h.slack.retry_after = 30
    h.slack.fail_next("chat.update", "ratelimited")
    h.sim.fusion.set_state(7310, "RUNNING")
    await h.slack.wait_for(
        lambda: any(c.method == "chat.update" and c.status == 429 for c in h.slack.failed_calls),
        what="the refused update",
    )
    h.sim.fusion.set_state(7310, "SUCCEEDED")
    await h.slack.wait_for(lambda: replies_saying(h, 0, "succeeded"), 10, what="the reply, well before 30 s")
    assert h.runtime.budget.ready_in("chat.update") > 0  # the refused method waits out its Retry-After


@pytest.mark.settings(api={"tokens": {"ci-finance": {"token": TOKEN}}})
async def test_a_state_change_goes_before_a_batch_of_new_parents_in_its_channel(harness: Harness) -> None:
    """One API token starts 30 watches in a channel at once (30 parents to post, one a second); meanwhile a
    job someone else watches there fails. Its reply takes the channel's next turn, not the 31st (issue 20,
    item 4: 39 s for that reply before)."""
    h = harness
    h.sim.fusion.add_job(7320, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 7320")
    url = h.runtime.events_url.replace("/slack/events", "/api/v1/watches")
    for job in range(7400, 7430):
        h.sim.fusion.add_job(job, steps=[Step(0, "RUNNING")])

    async def start(session: aiohttp.ClientSession, job: int) -> None:
        async with session.post(
            url,
            data=json.dumps({"backend": "fusion-demo", "job_id": job, "channel": "C0001"}),
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as resp:
            assert resp.status == 201, await resp.text()

    async with aiohttp.ClientSession() as session:
        batch = asyncio.gather(*(start(session, job) for job in range(7400, 7430)))
        await h.slack.wait_for(lambda: len(h.parents()) >= 5, 30, what="the batch's first parents")
        h.sim.fusion.set_state(7320, "ERROR", message="ESS-07034")
        await h.slack.wait_for(lambda: replies_saying(h, 0, "failed"), 60, what="the failure reply")
        failed_at = replies_saying(h, 0, "failed")[0].posted_at
        parents_before = sum(1 for p in h.parents() if p.posted_at < failed_at) - 1  # 7320's own is not new
        await batch
    assert len(h.parents()) == 31
    assert parents_before <= 12, f"{parents_before} of the 30 new parents went before the failure reply"


async def test_slack_unreachable_is_two_log_lines_and_counted_in_metrics(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """Slack cannot be reached while six watched jobs in two channels change (each owes a reply and an update,
    retried with backoff): the log says so once, and once more when Slack is back, with how long and how many
    messages waited; each retry is at DEBUG. The bot before this change wrote each of those retries as a
    WARNING (44 lines in a minute for 6 watches; here as many as the DEBUG lines counted below)."""
    h = harness
    jobs = [(7330 + k, "C0001" if k < 3 else "C0002", k % 3) for k in range(6)]
    for job, channel, _index in jobs:
        h.sim.fusion.add_job(job, steps=[Step(0, "WAIT")])
        await h.watch(f"watch fusion-demo {job}", channel=channel)
    caplog.set_level(logging.DEBUG, logger="bot")
    caplog.clear()
    await h.slack.stop()
    for job, _channel, _index in jobs:
        h.sim.fusion.set_state(job, "RUNNING")
    await asyncio.sleep(12.0)  # backoff from 1 s: messages are tried several times meanwhile
    retries = [r for r in caplog.records if r.name == "bot.engine.notifier" and r.levelno == logging.DEBUG
               and "retrying" in r.getMessage()]
    await h.slack.start()
    await h.slack.wait_for(
        lambda: all(replies_saying(h, index, "running", channel) for _job, channel, index in jobs),
        60,
        what="every reply once Slack is back",
    )
    warnings = [
        r.getMessage() for r in caplog.records if r.name.startswith("bot") and r.levelno >= logging.WARNING
    ]
    assert len(warnings) == 2, warnings
    assert len(retries) >= 4  # what the bot before this change logged as WARNING lines, one per retry
    assert "Slack is unreachable" in warnings[0] and "messages stay owed" in warnings[0]
    assert warnings[1].startswith("Slack is reachable again after ")
    waited = int(warnings[1].split("; ")[1].split()[0])
    # each message that met the outage counted once, however often it was tried (each try at DEBUG)
    assert waited == len({r.getMessage().split(" failed")[0] for r in retries}) >= 2
    m = await scrape(h)
    assert m["jobstatus_slack_unreachable_total"] == 1
    assert m["jobstatus_slack_unreachable_messages_total"] == waited
    assert m["jobstatus_slack_unreachable_seconds_total"] >= 5  # from the first message that met it
    assert m["jobstatus_slack_unreachable_now"] == 0
