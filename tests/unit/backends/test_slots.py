"""A backend's concurrency cap: a user's request gets the next free slot before scheduled polls waiting, and
while a user's request is served, scheduled polls get no slot at all (for a bounded time)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

import bot.backends.slots
from bot.backends.slots import Slots, UsersFirst


async def test_a_users_request_goes_ahead_of_scheduled_polls_waiting_for_a_slot() -> None:
    users = UsersFirst()
    slots = users.slots(1)
    order: list[str] = []
    gate = asyncio.Event()

    async def holder() -> None:
        async with slots:
            await gate.wait()

    async def request(name: str, poll: bool) -> None:
        if poll:
            with users.scheduled():
                assert users.is_scheduled()
                async with slots:
                    order.append(name)
        else:
            assert not users.is_scheduled()
            async with slots:
                order.append(name)

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(request("poll 1", True)), asyncio.create_task(request("poll 2", True))]
    await asyncio.sleep(0)
    waiting.append(asyncio.create_task(request("user", False)))  # came last, goes first
    await asyncio.sleep(0)
    assert slots.waiting == 3
    gate.set()
    await asyncio.gather(held, *waiting)
    assert order == ["user", "poll 1", "poll 2"]
    assert slots.waiting == 0


async def test_a_waiter_cancelled_takes_no_slot_with_it() -> None:
    slots = UsersFirst().slots(2)
    async with slots, slots:
        stuck = asyncio.create_task(slots.__aenter__())
        await asyncio.sleep(0)
        stuck.cancel()
        await asyncio.gather(stuck, return_exceptions=True)
    for _ in range(2):  # both slots are free again: two at once without waiting
        await asyncio.wait_for(slots.__aenter__(), 1.0)
    assert slots.waiting == 0


async def _poll(slots: Slots, got: list[str], name: str) -> None:
    with slots.priority.scheduled():
        async with slots:
            got.append(name)


async def test_while_a_users_request_is_served_scheduled_polls_take_no_free_slot() -> None:
    users = UsersFirst()
    slots, other = users.slots(4), users.slots(4)  # the hold is the priority's: every backend's slots
    got: list[str] = []
    async with users.user_request():
        polls = [asyncio.create_task(_poll(s, got, f"poll {i}")) for i, s in enumerate((slots, other))]
        await asyncio.sleep(0.01)
        assert got == [] and slots.waiting == 1 and other.waiting == 1  # free slots, yet they wait
        async with slots:  # the user's own request takes a slot at once
            got.append("user")
    await asyncio.gather(*polls)  # the request is over: the polls go
    assert (got[0] == "user" and sorted(got[1:]) == ["poll 0", "poll 1"]
            and slots.waiting == other.waiting == 0)
    async with slots, slots, slots, slots:  # all four slots are free again
        pass


async def test_the_hold_lasts_at_most_users_first_max_however_long_the_requests(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.backends.slots, "USERS_FIRST_MAX", 0.05)
    users = UsersFirst()
    slots = users.slots(2)
    got: list[str] = []
    async with users.user_request():
        held = asyncio.create_task(_poll(slots, got, "held"))
        await asyncio.sleep(0)
        assert slots.waiting == 1
        async with users.user_request():  # overlapping: it does not start the hold again
            await asyncio.wait_for(held, 5.0)  # served once the hold is over, the requests still under way
            await asyncio.wait_for(_poll(slots, got, "later"), 1.0)  # and a later poll waits for nothing
    assert got == ["held", "later"]


async def test_a_listener_wrapped_users_first_holds_polls_and_keeps_its_arguments() -> None:
    users = UsersFirst()
    slots = users.slots(1)
    got: list[str] = []

    class Listener:
        async def clicked(self, ack: Any, body: dict[str, Any], respond: Any) -> str:
            poll = asyncio.create_task(_poll(slots, got, "poll"))
            await asyncio.sleep(0.01)
            got.append(f"served {body['n']}")
            self.poll = poll
            return "done"

    listener = Listener()
    wrapped = users.users_first(listener.clicked)
    # Bolt passes the arguments a listener names (slack_bolt.util.utils.get_arg_names_of_callable)
    assert inspect.getfullargspec(inspect.unwrap(wrapped)).args == ["self", "ack", "body", "respond"]
    assert await wrapped(ack=None, body={"n": 1}, respond=None) == "done"
    await asyncio.wait_for(listener.poll, 1.0)
    assert got == ["served 1", "poll"]


async def test_the_hold_ends_with_time_even_should_its_timer_be_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.backends.slots, "USERS_FIRST_MAX", 0.05)
    users = UsersFirst()
    slots = users.slots(1)
    got: list[str] = []
    async with users.user_request():
        timer = users._timer
        assert timer is not None
        timer.cancel()  # as if it went with an event loop closed under it
        await asyncio.sleep(0.06)
        await asyncio.wait_for(_poll(slots, got, "poll"), 1.0)  # takes the free slot: the hold is over
    assert got == ["poll"]


async def test_two_priorities_are_apart_a_users_request_holds_only_its_own_slots() -> None:
    users, other = UsersFirst(), UsersFirst()
    mine, theirs = users.slots(2), other.slots(2)
    got: list[str] = []
    async with users.user_request():
        await asyncio.wait_for(_poll(theirs, got, "theirs"), 1.0)  # no hold on the other priority's slots
        held = asyncio.create_task(_poll(mine, got, "mine"))
        await asyncio.sleep(0.01)
        assert got == ["theirs"] and mine.waiting == 1
    await asyncio.wait_for(held, 1.0)
    assert got == ["theirs", "mine"]


async def test_build_backends_gives_every_backend_the_one_priority_it_is_handed() -> None:
    from bot.backends import build_backends
    from bot.support.config import settings_from_dict

    def fusion(url: str) -> dict[str, Any]:
        return {"type": "fusion_jobscheduler", "base_url": url,
                "auth": {"type": "basic", "username": "u", "password": "s3cret-pw"}}

    users = UsersFirst()
    settings = settings_from_dict({"backends": {"a": fusion("https://a.example"), "b": fusion("https://b.example")}})
    built = build_backends(settings, "<test>", users=users)
    alone = build_backends(settings, "<test>")
    try:
        assert all(b.limit.priority is users for b in built.values())
        # the same slots, only whose they are differs
        assert built["a"].limit.poll_cap == alone["a"].limit.poll_cap
        assert alone["a"].limit.priority is not alone["b"].limit.priority is not users  # built alone: apart
    finally:
        for b in (*built.values(), *alone.values()):
            await b.aclose()
