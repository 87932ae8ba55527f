"""Slack's budget per method (bot/slack/budget.py) and the notifier's turns per channel: figures from Slack's
pages, spent in priority order, a 429 holding only its method, a replica's share. The window is shortened
(Budget's `window`) so a "minute" passes in a fraction of a second; no test asserts how long anything took."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.domain.slack_limits import LIMITS
from bot.engine.notifier import Turns
from bot.slack.budget import Budget, Priority
from bot.support.config import settings_from_dict

REFERENCE = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "slack-method-reference"
# the rate-limit page's floor per tier (https://docs.slack.dev/apis/web-api/rate-limits, "Overview")
TIER = {"t3": 50, "t4": 100}


def test_each_figure_is_its_methods_tier_on_slacks_pages() -> None:
    tiers = json.loads((REFERENCE / "rate_limits_by_method.json").read_text())
    for method, per_minute in LIMITS.items():
        if method == "chat.postMessage":  # Special tier: the channel's second is the notifier's Bucket
            assert tiers[method] == "t5"
            continue
        assert TIER[tiers[method]] == per_minute, method
    assert LIMITS["chat.update"] == 50 and LIMITS["views.publish"] == 100
    assert LIMITS["files.getUploadURLExternal"] == LIMITS["files.completeUploadExternal"] == 100


async def spend(budget: Budget, method: str, priority: Priority, log: list[str], name: str,
                hold: asyncio.Event | None = None) -> None:
    async with budget.call(method, priority):
        log.append(name)
        if hold is not None:
            await hold.wait()


async def test_a_minutes_figure_goes_at_once_then_the_window_paces() -> None:
    budget = Budget({"chat.update": 3}, window=0.3)
    log: list[str] = []
    tasks = [asyncio.create_task(spend(budget, "chat.update", Priority.UPDATE, log, f"u{k}"))
             for k in range(5)]
    await asyncio.sleep(0.05)
    assert log == ["u0", "u1", "u2"]  # the figure at once ("bursts"), then nothing until the window moves
    assert budget.ready_in("chat.update") > 0
    await asyncio.gather(*tasks)
    assert log == ["u0", "u1", "u2", "u3", "u4"]
    assert budget.waited["chat.update"] > 0


async def test_waiting_calls_go_by_priority_then_first_come() -> None:
    budget = Budget({"chat.postMessage": 1}, window=0.2)
    log: list[str] = []
    release = asyncio.Event()
    first = asyncio.create_task(spend(budget, "chat.postMessage", Priority.DETAIL, log, "first", release))
    await asyncio.sleep(0.01)
    order = [("home", Priority.HOME), ("update", Priority.UPDATE), ("detail", Priority.DETAIL),
             ("parent", Priority.PARENT), ("change-a", Priority.CHANGE), ("change-b", Priority.CHANGE)]
    waiting = []
    for name, priority in order:
        waiting.append(asyncio.create_task(spend(budget, "chat.postMessage", priority, log, name)))
        await asyncio.sleep(0.005)
    release.set()
    await asyncio.gather(first, *waiting)
    assert log == ["first", "change-a", "change-b", "parent", "detail", "update", "home"]


async def test_a_429_holds_only_the_method_it_refused() -> None:
    budget = Budget(window=0.2)
    budget.hold("chat.update", 0.3)
    assert budget.ready_in("chat.update") > 0
    assert budget.ready_in("chat.postMessage") == 0 and budget.ready_in("views.publish") == 0
    log: list[str] = []
    await spend(budget, "chat.postMessage", Priority.CHANGE, log, "reply")  # not held: goes at once
    assert log == ["reply"]
    await spend(budget, "chat.update", Priority.UPDATE, log, "update")  # waits for the hold's end, then goes
    assert log == ["reply", "update"]


async def test_each_replica_spends_its_share_of_the_workspace() -> None:
    live = 4
    budget = Budget({"chat.update": 10}, replicas=lambda: live, window=30.0)
    log: list[str] = []
    tasks = [asyncio.create_task(spend(budget, "chat.update", Priority.UPDATE, log, str(k)))
             for k in range(4)]
    await asyncio.sleep(0.05)
    assert len(log) == 2  # 10 a minute over 4 replicas: 2 for this one
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_method_without_a_figure_is_not_paced() -> None:
    budget = Budget(window=10.0)
    log: list[str] = []
    await asyncio.gather(*(spend(budget, "auth.test", Priority.CHANGE, log, str(k)) for k in range(200)))
    assert len(log) == 200


async def test_a_cancelled_wait_gives_its_place_up() -> None:
    budget = Budget({"views.publish": 1}, window=0.2)
    log: list[str] = []
    release = asyncio.Event()
    first = asyncio.create_task(spend(budget, "views.publish", Priority.HOME, log, "first", release))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(spend(budget, "views.publish", Priority.CHANGE, log, "gone"))
    later = asyncio.create_task(spend(budget, "views.publish", Priority.HOME, log, "later"))
    await asyncio.sleep(0.01)
    gone.cancel()
    release.set()
    await asyncio.gather(first, later)
    assert log == ["first", "later"]


def test_the_config_overrides_a_figure_and_refuses_a_method_without_one() -> None:
    backends = {"f": {"type": "fusion_jobscheduler", "base_url": "https://fusion.example.com",
                      "auth": {"type": "basic", "username": "u", "password": "p"}}}
    s = settings_from_dict({"backends": backends, "slack_limits": {"chat.update": 20}}, "<test>")
    assert Budget(s.slack_limits).limits["chat.update"] == 20
    with pytest.raises(Exception, match="'chat.delete' has no budget; the methods that have one are"):
        settings_from_dict({"backends": backends, "slack_limits": {"chat.delete": 20}}, "<test>")
    with pytest.raises(Exception, match="at least 1"):
        settings_from_dict({"backends": backends, "slack_limits": {"chat.update": 0}}, "<test>")


async def test_a_channels_turn_goes_to_a_state_change_before_waiting_parents() -> None:
    turns = Turns()
    log: list[str] = []
    release = asyncio.Event()

    async def send(name: str, priority: Priority, hold: asyncio.Event | None = None) -> None:
        async with turns.turn(priority):
            log.append(name)
            if hold is not None:
                await hold.wait()

    first = asyncio.create_task(send("parent-0", Priority.PARENT, release))
    await asyncio.sleep(0.01)
    parents = [asyncio.create_task(send(f"parent-{k}", Priority.PARENT)) for k in range(1, 4)]
    await asyncio.sleep(0.01)
    change = asyncio.create_task(send("failure reply", Priority.CHANGE))
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(first, change, *parents)
    assert log == ["parent-0", "failure reply", "parent-1", "parent-2", "parent-3"]
