"""A backend's concurrency cap, with a user's request ahead of scheduled polls.

Every request to a backend takes one of its `max_concurrency` slots first. When they are all taken, what a
user is waiting for (watch, status, Refresh, Rewatch, cancel: anything not marked scheduled) gets the next
free slot before any scheduled poll that is waiting, so a burst of due polls never keeps a user's answer
behind it. The poller marks its scheduled polls with `scheduled()`; everything else is a user's.

A free slot is not enough when the poller is saturated: the event loop is then busy with polls from one
iteration to the next, and each step of a user's request (a database call coming back, a Slack call) waits
behind every poll step ready at that moment, so an answer that takes ~20 ms idle took seconds. So while a
user's request is being served (`user_request()`, around the listeners: `users_first`), no backend hands a
slot to a scheduled poll: the polls under way finish, the loop turns over quickly again, and the user's
request is served between polls. It is a hold, not a stop: it lasts at most USERS_FIRST_MAX seconds from the moment it
began however many requests overlap, then polls go on beside users' requests until none is left.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import ParamSpec, TypeVar

_SCHEDULED: ContextVar[bool] = ContextVar("jobstatus_scheduled_poll", default=False)
USERS_FIRST_MAX = 2.0  # seconds scheduled polls wait at most for users' requests under way
P = ParamSpec("P")
T = TypeVar("T")


@contextmanager
def scheduled() -> Iterator[None]:
    """Requests made inside are scheduled polls: they wait behind users' requests for a slot."""
    token = _SCHEDULED.set(True)
    try:
        yield
    finally:
        _SCHEDULED.reset(token)


def is_scheduled() -> bool:
    """Whether the request being made now is a scheduled poll's."""
    return _SCHEDULED.get()


class _Users:
    """The process's users' requests under way, and the hold they put on scheduled polls."""

    def __init__(self) -> None:
        self.active = 0
        self._held = False  # from the first request under way until none is left or the timer ends the hold
        self._since = 0.0
        self.slots: weakref.WeakSet[Slots] = weakref.WeakSet()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def held(self) -> bool:
        """Whether scheduled polls are held back now (never past USERS_FIRST_MAX, even should the timer that
        ends the hold be lost with its event loop)."""
        return self._held and time.monotonic() - self._since < USERS_FIRST_MAX

    def begin(self) -> None:
        self.active += 1
        if self.active == 1:
            self._held, self._since = True, time.monotonic()
            self._timer = asyncio.get_running_loop().call_later(USERS_FIRST_MAX, self._release_polls)

    def end(self) -> None:
        self.active -= 1
        if self.active == 0:
            self._release_polls()

    def _release_polls(self) -> None:
        """The hold is over: the scheduled polls waiting take the slots that are free."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._held = False
        for s in list(self.slots):
            s._serve()


_users = _Users()


@asynccontextmanager
async def user_request() -> AsyncIterator[None]:
    """A user's request is served inside: scheduled polls get no new slot meanwhile (USERS_FIRST_MAX at most)."""
    _users.begin()
    try:
        yield
    finally:
        _users.end()


def users_first(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """`fn` (a Bolt listener) serves a user's request: it runs inside `user_request()`. Bolt reads the
    listener's argument names through `__wrapped__`, which functools.wraps sets."""

    @functools.wraps(fn)
    async def serving(*args: P.args, **kwargs: P.kwargs) -> T:
        async with user_request():
            return await fn(*args, **kwargs)

    return serving


class Slots:
    """`async with slots:` holds one of `n` slots; a user's waiter is served before a scheduled one, each
    queue first come, first served, and a scheduled one not while users' requests hold polls back."""

    def __init__(self, n: int) -> None:
        self._free = n
        self._users: deque[asyncio.Future[None]] = deque()
        self._polls: deque[asyncio.Future[None]] = deque()
        _users.slots.add(self)

    @property
    def waiting(self) -> int:
        """How many wait for a slot. The queues hold only futures not yet served: `_serve` pops what it
        serves and a waiter cancelled while queued removes itself."""
        return len(self._users) + len(self._polls)

    async def __aenter__(self) -> None:
        poll = is_scheduled()
        if self._free > 0 and not self._users and not (poll and (self._polls or _users.held)):  # O(1)
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._polls if poll else self._users
        queue.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()  # handed a slot just as it was cancelled: pass it on
            elif fut in queue:
                queue.remove(fut)
            raise

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._release()

    def _release(self) -> None:
        self._free += 1
        self._serve()

    def _serve(self) -> None:
        """Hand the free slots to waiters: users' first, then scheduled polls unless users hold them back."""
        while self._free > 0:
            if self._users:
                queue = self._users
            elif self._polls and not _users.held:
                queue = self._polls
            else:
                return
            fut = queue.popleft()
            if not fut.done():
                self._free -= 1
                fut.set_result(None)  # the slot goes straight to it
