"""A backend's concurrency cap, with a user's request ahead of scheduled polls.

Every request to a backend takes one of its `max_concurrency` slots first. When they are all taken, what a
user is waiting for (watch, status, Refresh, Rewatch, cancel: anything not marked scheduled) gets the next
free slot before any scheduled poll that is waiting, so a burst of due polls never keeps a user's answer
behind it. The poller marks its scheduled polls with `UsersFirst.scheduled()`; everything else is a user's.
The state is one `UsersFirst` object, made by `Runtime` (bot/app.py) and handed to what takes part.

A free slot is not enough when the poller is saturated: the event loop is then busy with polls from one
iteration to the next, and each step of a user's request (a database call coming back, a Slack call) waits
behind every poll step ready at that moment, so an answer that takes ~20 ms idle took seconds. So while a
user's request is being served (`UsersFirst.user_request()`, around the listeners: `users_first`), no backend
hands a slot to a scheduled poll: the polls under way finish, the loop turns over quickly again, and the
user's request is served between polls. It is a hold, not a stop: it lasts at most USERS_FIRST_MAX seconds
from the moment it began however many requests overlap, then polls go on beside users' requests until none is
left.

Neither helps when every slot is held by a request that does not end: a vendor that drips its answers keeps
each request for the whole of its deadline (the backend's `timeout`, bot/backends/http.py). So:
- of a backend's slots, USERS_RESERVED are never handed to a scheduled poll (when it has more than that): a
  user's check finds a slot at once however many polls are stuck, and answers within its own, shorter deadline
  (bot/operations/watching.py `check`);
- a request that has held its slot for STALL_AFTER seconds is stalled: it hands its slot on to the next waiter
  and goes on beside the cap until its deadline (`holding`), as long as fewer than `stalled_max(n)` do; the
  backend's HTTP pool has room for them (`pool_size`). So a few jobs that drip hold no slot the others need,
  and the vendor never sees more than `pool_size(n)` requests at once.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import ParamSpec, TypeVar

USERS_FIRST_MAX = 2.0  # seconds scheduled polls wait at most for users' requests under way
# Slots scheduled polls never take, of a backend with more than this many: one is enough for a user's check to
# start at once (users' requests are a person at a time, seconds each), and costs a default 8-slot backend an
# eighth of its polling concurrency; a 1-slot backend keeps its one slot for both.
USERS_RESERVED = 1
# Seconds a request holds its slot before it is taken for stalled and hands the slot on: vendors answer a
# status call in well under a second when well (~10 ms on loopback in bench/, a few hundred ms across the
# internet), so one still under way after 2 s is an outlier, and handing its slot on costs the vendor one
# request more at most.
STALL_AFTER = 2.0


def stalled_max(n: int) -> int:
    """How many stalled requests of a backend with `n` slots go on beside them at once: half as many again (at
    least one). More stalled ones keep their slots until their deadline."""
    return max(1, n // 2)


def pool_size(n: int) -> int:
    """The most requests a backend with `n` slots has under way at once: its slots and its stalled
    requests."""
    return n + stalled_max(n)
P = ParamSpec("P")
T = TypeVar("T")


class UsersFirst:
    """The process's one "users first" priority, made by `Runtime` (bot/app.py) and handed to what takes part:
    the backends' slots (`slots(n)`, through build_backends), the poller (which marks its polls `scheduled()`
    on the priority of the backend it polls) and the Bolt listeners (`users_first`, bot/inbound/listeners).

    It holds the users' requests under way, the hold they put on scheduled polls, and every backend's `Slots`
    that the hold's end serves. Which request is a scheduled poll is a contextvar, `_scheduled`, an attribute
    of this object: "is this task serving a scheduled poll" is a property of the asyncio task and of what it
    awaits (vendor requests deep inside an adapter, `asyncio.gather` in `statuses`), which a contextvar
    follows into every task the poll starts, where an argument would have to be threaded through every
    adapter."""

    def __init__(self) -> None:
        self._scheduled: ContextVar[bool] = ContextVar("jobstatus_scheduled_poll", default=False)
        self.active = 0
        self._held = False  # from the first request under way until none is left or the timer ends the hold
        self._since = 0.0
        self.slots_served: weakref.WeakSet[Slots] = weakref.WeakSet()
        self._timer: asyncio.TimerHandle | None = None

    def slots(self, n: int) -> Slots:
        """A backend's `n` slots, held back by this priority's users' requests."""
        return Slots(n, self)

    def scheduled(self) -> _Scheduled:
        """Requests made inside (`with users.scheduled():`) are scheduled polls: they wait behind users'
        requests for a slot."""
        return _Scheduled(self._scheduled)

    def is_scheduled(self) -> bool:
        """Whether the request being made now is a scheduled poll's."""
        return self._scheduled.get()

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
        for s in list(self.slots_served):
            s._serve()

    @asynccontextmanager
    async def user_request(self) -> AsyncIterator[None]:
        """A user's request is served inside: scheduled polls get no new slot meanwhile (USERS_FIRST_MAX at
        most)."""
        self.begin()
        try:
            yield
        finally:
            self.end()

    def users_first(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        """`fn` (a Bolt listener) serves a user's request: it runs inside `user_request()`. Bolt reads the
        listener's argument names through `__wrapped__`, which functools.wraps sets."""

        @functools.wraps(fn)
        async def serving(*args: P.args, **kwargs: P.kwargs) -> T:
            async with self.user_request():
                return await fn(*args, **kwargs)

        return serving


class _Scheduled:
    """`UsersFirst.scheduled()`'s context manager: a class, not a generator, as every poll enters one."""

    __slots__ = ("_var", "_token")

    def __init__(self, var: ContextVar[bool]) -> None:
        self._var = var

    def __enter__(self) -> None:
        self._token = self._var.set(True)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._var.reset(self._token)


class Slots:
    """`async with slots:` holds one of `n` slots; a user's waiter is served before a scheduled one, each
    queue first come, first served, and a scheduled one not while users' requests hold polls back, nor
    beyond `n - USERS_RESERVED` slots held by polls at once."""

    def __init__(self, n: int, priority: UsersFirst) -> None:
        self.priority = priority  # whose users' requests go ahead of this backend's scheduled polls
        self._scheduled = priority._scheduled  # read at every request: one lookup fewer on the hot path
        self._free = n
        # the most scheduled polls hold at once
        self.poll_cap = n - USERS_RESERVED if n > USERS_RESERVED else n
        self._polls_held = 0
        self.stalled = 0  # requests under way that handed their slot on (`holding`)
        self.stalled_max = stalled_max(n)
        self._users: deque[asyncio.Future[None]] = deque()
        self._polls: deque[asyncio.Future[None]] = deque()
        priority.slots_served.add(self)

    @property
    def held_by_polls(self) -> int:
        """How many slots scheduled polls hold now."""
        return self._polls_held

    @property
    def waiting(self) -> int:
        """How many wait for a slot. The queues hold only futures not yet served: `_serve` pops what it
        serves and a waiter cancelled while queued removes itself."""
        return len(self._users) + len(self._polls)

    async def __aenter__(self) -> None:
        poll = self._scheduled.get()
        if self._free > 0 and not self._users and not (
                poll and (self._polls or self.priority.held or self._polls_held >= self.poll_cap)):  # O(1)
            self._free -= 1
            self._polls_held += poll
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._polls if poll else self._users
        queue.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release(poll)  # handed a slot just as it was cancelled: pass it on
            elif fut in queue:
                queue.remove(fut)
            raise

    def holding(self) -> Hold:
        """One slot, held inside like `async with slots:`; calling what it gives (the `Hold`) hands the slot
        on to the next waiter while what is inside goes on (a stalled request), unless `stalled_max` do
        already."""
        return Hold(self)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._release(self._scheduled.get())  # the same context as at the entry: a poll's slot or a user's

    def _release(self, poll: bool) -> None:
        self._free += 1
        if poll:
            self._polls_held = max(0, self._polls_held - 1)
        self._serve()

    def _serve(self) -> None:
        """Hand the free slots to waiters: users' first, then scheduled polls unless users hold them back."""
        while self._free > 0:
            if self._users:
                queue = self._users
            elif self._polls and not self.priority.held and self._polls_held < self.poll_cap:
                queue = self._polls
            else:
                return
            fut = queue.popleft()
            if not fut.done():
                self._free -= 1
                self._polls_held += queue is self._polls
                fut.set_result(None)  # the slot goes straight to it


class Hold:
    """One of a backend's slots held (`async with slots.holding() as hand_on:`); `hand_on()` gives it to the
    next waiter while the holder goes on beside the cap (a stalled request), once, and only while fewer than
    `stalled_max` do. A class rather than a generator-based context manager: every vendor request enters one,
    and a generator's set-up costs several times what the slot itself does (bench/, `--profile`)."""

    __slots__ = ("_slots", "_poll", "_handed")

    def __init__(self, slots: Slots) -> None:
        self._slots = slots
        self._poll = False
        self._handed = False

    async def __aenter__(self) -> Hold:
        self._poll = self._slots._scheduled.get()
        await self._slots.__aenter__()
        return self

    def __call__(self) -> None:
        """Hand the slot on (see the class)."""
        slots = self._slots
        if self._handed or slots.stalled >= slots.stalled_max:
            return
        self._handed = True
        slots.stalled += 1
        slots._release(self._poll)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._handed:
            self._slots.stalled -= 1
        else:
            self._slots._release(self._poll)
