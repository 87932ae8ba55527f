"""Slack's budget per Web API method per workspace: the bot spends it before Slack has to say 429.

Slack limits each method "per API method per workspace/team per app" (https://docs.slack.dev/apis/web-api/
rate-limits), in tiers given on each method's reference page. Every call the bot makes to a budgeted method
goes through `Budget.call` (bot/slack/sender.py's WebSender, the Home tab), so the notifier, the Home tab and
uploads share one budget per method. Under a storm what matters goes first: waiting calls are let through by
`Priority` (a state change's reply before a new parent, before details and files, before parents' updates,
before Home-tab refreshes), oldest first within one priority. A 429 from Slack holds only the method it
refused (`hold`), for its Retry-After.

How a figure is spent: at most `per_minute` calls in any 60 seconds (a sliding window: a minute's worth may go
at once, Slack's "bursts"), a call counted from when its answer came back, so a call the bot counts as gone
from the window has left Slack's too, however long the request took. A call under way counts as well.

Replicas on PostgreSQL share the workspace's budget but not this process's memory: each replica spends
1/live-replicas of each figure (`replicas`, the live count from bot/engine/replicas.py). A channel's posts
need no sharing: the channel's lease (bot/store/leases.py) lets one replica at a time send to it.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.domain.slack_limits import LIMITS

WINDOW = 60.0  # seconds: Slack's tiers are "per minute"

class Priority(enum.IntEnum):
    """Which waiting call goes first when a method's budget is short (lowest first)."""

    CHANGE = 0  # a state change's reply (a failure's too): what a person waits for
    PARENT = 1  # a new watch's parent
    DETAIL = 2  # what adds to a change: an ended job's details, a file, a digest
    UPDATE = 3  # a parent's update: it renders the latest state whenever it goes, so waiting loses nothing
    HOME = 4  # a Home-tab refresh: the tab is rendered afresh whenever it is opened


@dataclass
class _Method:
    """One method's window: when its recent calls came back, the calls under way, who waits, and a hold."""

    per_minute: int
    window: float
    done: deque[float] = field(default_factory=deque)
    running: int = 0
    held_until: float = 0.0
    waiting: list[tuple[int, int]] = field(default_factory=list)  # (priority, arrival), sorted
    changed: asyncio.Condition | None = None

    def free_in(self, now: float, share: int) -> float | None:
        """Seconds until one more call fits (0: now); None: when a call under way ends."""
        if now < self.held_until:
            return self.held_until - now
        while self.done and self.done[0] <= now - self.window:
            self.done.popleft()
        limit = max(1, self.per_minute // max(1, share))
        if len(self.done) + self.running < limit:
            return 0.0
        if len(self.done) + self.running - limit < len(self.done):  # one of the done leaves the window first
            return self.done[len(self.done) + self.running - limit] + self.window - now
        return None


class Budget:
    """Slack's rate limits as this process spends them. `limits`: per-minute figures overriding `LIMITS`;
    `replicas`: how many live replicas share the workspace (1 alone). `window`: Slack's minute (shorter only
    in tests)."""

    def __init__(self, limits: Mapping[str, int] | None = None, replicas: Callable[[], int] = lambda: 1,
                 clock: Callable[[], float] = time.monotonic, window: float = WINDOW) -> None:
        self.limits = {**LIMITS, **(limits or {})}
        self.window = window
        self.replicas = replicas
        self.clock = clock
        self._methods: dict[str, _Method] = {}
        self._arrival = itertools.count()
        self.waited: dict[str, float] = {}  # method -> seconds calls waited for the budget, summed

    def _method(self, method: str) -> _Method | None:
        m = self._methods.get(method)
        if m is None and method in self.limits:
            m = self._methods[method] = _Method(self.limits[method], self.window)
        return m

    def ready_in(self, method: str) -> float:
        """Seconds until a call of `method` would go without waiting behind anyone (0: now; an estimate when
        it waits for calls under way). For a caller that would rather do something else meanwhile."""
        m = self._method(method)
        if m is None:
            return 0.0
        free = m.free_in(self.clock(), self.replicas())
        if m.waiting:
            return max(free or 0.0, 1.0)
        return 0.25 if free is None else free

    def hold(self, method: str, seconds: float) -> None:
        """Slack answered 429 with Retry-After `seconds`: no call of `method` (only) until then."""
        m = self._method(method)
        if m is None:
            # a method with no figure: held all the same
            m = self._methods[method] = _Method(10**9, self.window)
        m.held_until = max(m.held_until, self.clock() + max(0.0, seconds))

    @asynccontextmanager
    async def call(self, method: str, priority: Priority) -> AsyncIterator[None]:
        """Wait for `method`'s budget (behind every waiting call of a lower `priority` number), make the call
        inside, and count it from its end."""
        m = self._method(method)
        if m is None:
            yield
            return
        if m.changed is None:
            m.changed = asyncio.Condition()
        ticket = (int(priority), next(self._arrival))
        m.waiting.append(ticket)
        m.waiting.sort()
        start = self.clock()
        try:
            async with m.changed:
                while True:
                    free = m.free_in(self.clock(), self.replicas())
                    if free == 0.0 and m.waiting[0] == ticket:
                        break
                    try:  # woken when a call ends or a waiter leaves; else when the window frees a slot
                        await asyncio.wait_for(m.changed.wait(), timeout=free if free else None)
                    except TimeoutError:
                        pass
                m.running += 1
        finally:
            m.waiting.remove(ticket)
            await self._wake(m)
        if self.clock() > start:
            self.waited[method] = self.waited.get(method, 0.0) + self.clock() - start
        try:
            yield
        finally:
            m.running -= 1
            m.done.append(self.clock())
            await self._wake(m)

    @staticmethod
    async def _wake(m: _Method) -> None:
        if m.changed is not None:
            async with m.changed:
                m.changed.notify_all()
