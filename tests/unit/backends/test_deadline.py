"""Every vendor request has one total deadline (issue 20, item 5): connect, headers and the whole body,
however the bytes trickle in; a request past it gives its slot back, and one stalled past STALL_AFTER hands
its slot on (bot/backends/http.py `deadline`, bot/backends/base.py `sending` and `Exchange`,
bot/backends/slots.py). On httpx.MockTransport no sockets, and no assertion on how long anything took."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

import bot.backends.base
from bot.backends import build_backend
from bot.backends.base import Backend
from bot.backends.http import deadline, make_http_client
from bot.backends.slots import UsersFirst, pool_size, stalled_max
from bot.domain.errors import TooSlow, Unavailable
from bot.support.config import BackendConfig

BASE = "https://vendor.example.com"


class Drip:
    """A body that sends one byte, then one more every `every` seconds, without end; counts what was sent."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while True:
                self.sent += 1
                yield b" "
                await asyncio.sleep(self.every)
        finally:
            self.closed = True


def dripping_backend(body: Drip, **settings: Any) -> Backend:
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    config = BackendConfig.model_validate({"type": "epm_planning", "base_url": BASE, "application": "A",
                                           "auth": {"type": "bearer", "token": "t"}, **settings})
    backend = build_backend("planning", config)
    backend.http = httpx.AsyncClient(transport=httpx.MockTransport(vendor))
    return backend


async def test_the_deadline_cancels_what_is_inside_and_says_too_slow() -> None:
    reached = asyncio.Event()
    with pytest.raises(TooSlow,
                       match="^vendor answers too slowly: no complete answer within 0.05 s$") as caught:
        async with deadline("vendor", 0.05):
            reached.set()
            await asyncio.sleep(3600)
    assert reached.is_set() and isinstance(caught.value, Unavailable)  # an outage to ride out, polls go on


async def test_work_within_the_deadline_is_untouched() -> None:
    async with deadline("vendor", 60):
        await asyncio.sleep(0)
    # and a cancellation from outside stays a cancellation, not a TooSlow
    task = asyncio.create_task(_inside_deadline())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _inside_deadline() -> None:
    async with deadline("vendor", 60):
        await asyncio.sleep(3600)


async def test_a_dripping_answer_is_given_up_at_the_deadline_and_its_slot_given_back() -> None:
    body = Drip(every=0.01)  # far quicker than any per-read timeout: only a total deadline ends it
    backend = dripping_backend(body, timeout=0.3, max_concurrency=2)
    with backend.limit.priority.scheduled(), pytest.raises(TooSlow, match="planning answers too slowly"):
        await backend.status("7")
    assert body.sent > 1 and body.closed  # it was read from, then the stream was closed
    async with backend.limit, backend.limit:  # both slots are free again
        pass
    assert backend.limit.held_by_polls == 0 and backend.limit.stalled == 0
    await backend.aclose()


async def test_a_request_stalled_past_stall_after_hands_its_slot_to_the_next_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.backends.base, "STALL_AFTER", 0.05)
    body = Drip(every=0.01)
    backend = dripping_backend(body, timeout=3600, max_concurrency=1)  # one slot, and a drip that never ends
    stuck = asyncio.create_task(backend.status("7"))
    await asyncio.sleep(0)  # it takes the one slot...
    async with asyncio.timeout(30), backend.limit:  # ...then hands it on (the timeout is a hang guard only)
        assert backend.limit.stalled == 1 and not stuck.done()  # the stalled one goes on beside it
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
    assert backend.limit.stalled == 0
    await backend.aclose()


async def test_a_stalled_request_still_ends_at_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """One timer does both (bot/backends/base.py `Exchange`): the stall hands the slot on, then sets the
    deadline."""
    monkeypatch.setattr(bot.backends.base, "STALL_AFTER", 0.05)
    body = Drip(every=0.01)
    backend = dripping_backend(body, timeout=0.5, max_concurrency=1)
    stuck = asyncio.create_task(backend.status("7"))
    await asyncio.sleep(0)  # it takes the one slot...
    # ...hands it on at STALL_AFTER (the timeout is a hang guard)
    async with asyncio.timeout(30), backend.limit:
        assert backend.limit.stalled == 1 and not stuck.done()
    with pytest.raises(TooSlow, match="^planning answers too slowly: no complete answer within 0.5 s$"):
        await asyncio.wait_for(stuck, 30)  # ...and is still given up at its deadline
    assert body.closed and backend.limit.stalled == 0 and backend.limit.held_by_polls == 0
    async with backend.limit:  # its slot is not held twice
        pass
    await backend.aclose()


async def test_at_most_stalled_max_requests_hand_their_slots_on() -> None:
    slots = UsersFirst().slots(2)
    assert stalled_max(2) == slots.stalled_max == 1 and pool_size(2) == 3
    async with slots.holding() as first, slots.holding() as second:
        first()
        first()  # once only
        second()  # the stalled budget is spent: it keeps its slot
        assert slots.stalled == 1
        async with slots:  # the one handed on
            waiting = asyncio.create_task(slots.__aenter__())
            await asyncio.sleep(0)
            assert not waiting.done()  # no third slot
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
    assert slots.stalled == 0
    async with slots, slots:  # both free again
        pass


async def test_scheduled_polls_never_take_the_slot_kept_for_users() -> None:
    slots = UsersFirst().slots(3)
    assert slots.poll_cap == 2
    with slots.priority.scheduled():
        await slots.__aenter__()
        await slots.__aenter__()
        third = asyncio.create_task(slots.__aenter__())
        await asyncio.sleep(0)
        assert not third.done() and slots.held_by_polls == 2
    async with slots:  # a user's request takes the kept slot at once
        pass
    with slots.priority.scheduled():
        await slots.__aexit__(None, None, None)  # a poll ends: the waiting poll takes its slot
        await asyncio.wait_for(third, 1)
        assert slots.held_by_polls == 2
        await slots.__aexit__(None, None, None)
        await slots.__aexit__(None, None, None)
    assert slots.held_by_polls == 0


async def test_the_http_pool_has_room_for_the_slots_and_the_stalled_requests() -> None:
    config = BackendConfig.model_validate({"type": "epm_planning", "base_url": BASE, "application": "A",
                                           "auth": {"type": "bearer", "token": "t"}, "max_concurrency": 4})
    client = make_http_client(config)
    transport = client._transport  # noqa: SLF001 - the aiohttp transport the client was built with
    assert isinstance(transport, AiohttpTransport)
    assert transport.limits.max_connections == pool_size(4) == 4 + stalled_max(4) == 6
    await client.aclose()
