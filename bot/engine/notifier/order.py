"""Stage 1 of the notifier: which message of a channel goes first.

What is owed comes in `store.sending_order` (state changes of watches whose parent is posted, then new
parents, then details and files, then parents' updates; a watch's own messages in their order). When several
wait for one channel at once (the command path posts a new parent while a pass sends), `Turns` gives the
channel to the one with the lowest priority (the budget's: bot/slack/budget.py), then to the first come.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.domain.jobs import OutboxKind
from bot.slack.budget import Priority

# Which message of a channel goes first when several wait for the channel (`Turns`): the budget's priorities.
PRIORITY = {OutboxKind.EVENT: Priority.CHANGE, OutboxKind.PARENT: Priority.PARENT,
            OutboxKind.REPLY: Priority.DETAIL, OutboxKind.FILE: Priority.DETAIL,
            OutboxKind.UPDATE: Priority.UPDATE}


class Turns:
    """A channel's turn to send, one message at a time, given by priority (lowest first), then first come.

    A post waits for the channel's pace inside its turn, so under a plain lock (first come) 40 watches started
    at once by the command path or the API queue 40 parents, a second each, and another user's failure reply
    that comes next waits 40 s (issue 20, item 4). Here the reply takes the next turn."""

    def __init__(self) -> None:
        self._busy = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrival = itertools.count()

    @asynccontextmanager
    async def turn(self, priority: Priority) -> AsyncIterator[None]:
        if self._busy or self._waiting:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (int(priority), next(self._arrival), waiter))
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # the turn came as it was cancelled: pass it on
                    self._next()
                raise
        self._busy = True
        try:
            yield
        finally:
            self._next()

    @property
    def taken(self) -> bool:
        """Someone sends to the channel now, or waits to."""
        return self._busy or bool(self._waiting)

    def _next(self) -> None:
        while self._waiting:
            _priority, _arrival, waiter = heapq.heappop(self._waiting)
            if not waiter.done():
                waiter.set_result(None)  # busy stays True: the turn passes straight to the waiter
                return
        self._busy = False


class ChannelTurns:
    """Every channel's `Turns`."""

    def __init__(self) -> None:
        self._by_channel: dict[str, Turns] = {}

    def of(self, channel: str) -> Turns:
        return self._by_channel.setdefault(channel, Turns())

    def taken(self, channel: str) -> bool:
        """Someone sends to the channel now, or waits to (a channel never sent to: no)."""
        turns = self._by_channel.get(channel)
        return turns is not None and turns.taken
