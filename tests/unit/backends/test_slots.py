"""A backend's concurrency cap: a user's request gets the next free slot before scheduled polls waiting."""

from __future__ import annotations

import asyncio

from bot.backends.slots import Slots, is_scheduled, scheduled


async def test_a_users_request_goes_ahead_of_scheduled_polls_waiting_for_a_slot() -> None:
    slots = Slots(1)
    order: list[str] = []
    gate = asyncio.Event()

    async def holder() -> None:
        async with slots:
            await gate.wait()

    async def request(name: str, poll: bool) -> None:
        if poll:
            with scheduled():
                assert is_scheduled()
                async with slots:
                    order.append(name)
        else:
            assert not is_scheduled()
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
    slots = Slots(2)
    async with slots, slots:
        stuck = asyncio.create_task(slots.__aenter__())
        await asyncio.sleep(0)
        stuck.cancel()
        await asyncio.gather(stuck, return_exceptions=True)
    for _ in range(2):  # both slots are free again: two at once without waiting
        await asyncio.wait_for(slots.__aenter__(), 1.0)
    assert slots.waiting == 0
