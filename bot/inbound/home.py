"""The Home tab: published with views.publish when a person opens it, and again when one of their watches
changes, at most once per REFRESH_GAP per person.

A change is known by the notifier: every change a watch goes through (a new state, progress, a stop, an
end) owes its thread a message, and `watch_changed` is called once that message is in Slack. Only people who
opened the tab since this process started are refreshed (anyone else sees a fresh tab when they open it:
`app_home_opened` comes every time). Changes inside the window are not dropped: they coalesce into one
publish at the window's end (`Throttle`).

Every publish spends views.publish's budget (bot/slack/budget.py, Tier 4): a refresh after a change last of
all (Priority.HOME), a tab a person opened or clicked before those (Priority.CHANGE: someone is looking).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import store
from bot.backends.base import Backend
from bot.operations.watching import Watching
from bot.rendering import views
from bot.slack.budget import Budget, Priority
from bot.slack.errors import retry_after
from bot.store import Store
from bot.support.config import Settings

log = logging.getLogger(__name__)

REFRESH_GAP = 10.0  # seconds: at most one refresh of a person's Home tab this often
LINKS_KEPT = 10_000  # thread permalinks remembered (a parent's ts does not change; asking Slack again would)
# who started each watch, remembered (it never changes): one query per watch, not per message
OWNERS_KEPT = 100_000


class Throttle:
    """Runs `action(key)` at most once per `gap` seconds per key. A request inside the window is run once at
    the window's end, however many came meanwhile; `now` runs at once (and covers what was waiting)."""

    def __init__(self, gap: float, action: Callable[[str], Awaitable[None]]) -> None:
        self.gap = gap
        self.action = action
        self.runs = 0
        self._last: dict[str, float] = {}  # key -> loop time of its last run
        self._due: dict[str, asyncio.Task[None]] = {}  # key -> the run waiting for its window's end

    def request(self, key: str) -> None:
        if key in self._due:
            return  # the run already waiting will show this change too
        loop = asyncio.get_running_loop()
        wait = self._last.get(key, -math.inf) + self.gap - loop.time()
        self._due[key] = asyncio.create_task(self._later(key, max(0.0, wait)))

    async def now(self, key: str) -> None:
        waiting = self._due.pop(key, None)
        if waiting is not None:
            waiting.cancel()
        await self._run(key)

    async def _later(self, key: str, wait: float) -> None:
        await asyncio.sleep(wait)
        self._due.pop(key, None)  # before the run: a request during it waits for the next window
        await self._run(key)

    async def _run(self, key: str) -> None:
        self._last[key] = asyncio.get_running_loop().time()
        self.runs += 1
        try:
            await self.action(key)
        except Exception:
            log.exception("refreshing %s failed", key)

    async def close(self) -> None:
        tasks = list(self._due.values())
        self._due.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class HomeTab:
    def __init__(self, client: AsyncWebClient, db: Store, watching: Watching, backends: Mapping[str, Backend],
                 settings: Settings, clock: Callable[[], float], budget: Budget | None = None) -> None:
        self.client = client
        self.budget = budget or Budget()
        self.db = db
        self.watching = watching
        self.backends = backends
        self.settings = settings
        self.clock = clock
        self.viewers: set[str] = set()  # who opened the tab since this process started
        self.throttle = Throttle(REFRESH_GAP, self.publish)
        self._asked: set[str] = set()  # people whose publish under way they asked for (opened, clicked)
        self._notices: dict[str, str] = {}  # what the next publish tells a person (the answer to a click)
        self._links: dict[tuple[str, str], str] = {}
        self._owners: dict[int, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def opened(self, user: str) -> None:
        """`app_home_opened`: publish now, with the person's channels as Slack says they are now."""
        self.viewers.add(user)
        self._asked.add(user)
        await self.throttle.now(user)

    async def tell(self, user: str, notice: str) -> None:
        """Publish now, with `notice` on top (what a button on the tab answers: the tab has no
        response_url)."""
        self.viewers.add(user)
        self._notices[user] = notice
        self._asked.add(user)
        await self.throttle.now(user)

    def watch_changed(self, watch_id: int) -> None:
        """A watch's thread got a message (a change): refresh its owner's tab, throttled."""
        if not self.viewers:  # nobody has opened the tab: no need to ask whose watch it is
            return
        task = asyncio.create_task(self._changed(watch_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _changed(self, watch_id: int) -> None:
        user = self._owners.get(watch_id)
        if user is None:
            try:
                user = await self.db.run(store.watch_user, watch_id)
            except Exception:
                log.exception("looking up watch %s for the Home tab failed", watch_id)
                return
            if user is None:
                return
            if len(self._owners) >= OWNERS_KEPT:
                self._owners.clear()
            self._owners[watch_id] = user
        if user in self.viewers:
            self.throttle.request(user)

    async def publish(self, user: str) -> None:
        # they opened the tab or clicked on it: their channels' members asked anew
        asked = user in self._asked
        priority = Priority.CHANGE if asked else Priority.HOME
        self._asked.discard(user)
        async with self.budget.call("views.publish", priority):  # rendered once its turn came: the newest
            view = await self.render(user, self._notices.pop(user, None), fresh=asked)
            try:
                await self.client.views_publish(user_id=user, view=view)
            except SlackApiError as exc:
                log.warning("views.publish for the Home tab was refused: %s", exc.response.get("error"))
                wait = retry_after(getattr(exc.response, "headers", None))
                if wait is not None and exc.response.status_code == 429:
                    self.budget.hold("views.publish", wait)

    async def render(self, user: str, notice: str | None = None, *, fresh: bool = False) -> dict[str, Any]:
        now = self.clock()
        rows, more = await self.db.run(store.user_watches, user, now, views.HOME_WATCHES)
        figures = await self.db.run(store.poll_figures)
        lines = []
        theirs: dict[str, bool] = {}  # each channel asked once per publish
        for w, j in rows:
            if w.channel not in theirs:  # issue 19, item 5: only channels they are in
                theirs[w.channel] = await self.watching.member(user, w.channel, fresh=fresh)
            if not theirs[w.channel]:
                continue
            link = await self._link(w.channel, w.parent_ts)
            lines.append(views.HomeWatch(w.pk, w.channel, j.view(), w.active, w.ended_reason, link))
        usable = (await self.watching.usable(user))[0]  # a backend they may not use is not named to them
        return views.home(user, lines, more, [self._health(name, figures.get(name), now)
                                              for name in usable if name in self.backends], now, notice)

    def _health(self, name: str, f: store.PollFigures | None, now: float) -> views.Health:
        if f is None:
            return views.Health(name, 0, 0)
        since = f.failing_since if f.failing else None
        outage = since if since is not None and since <= now - self.settings.outage_note_after else None
        return views.Health(name, f.polled, f.failing, outage, f.error_kind)

    async def _link(self, channel: str, ts: str | None) -> str | None:
        if not ts:
            return None
        link = self._links.get((channel, ts))
        if link is None:
            link = await self.watching.permalink(channel, ts)
            if link is not None:
                if len(self._links) >= LINKS_KEPT:
                    self._links.clear()
                self._links[(channel, ts)] = link
        return link

    async def close(self) -> None:
        await self.throttle.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
