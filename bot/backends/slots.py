"""A backend's concurrency cap, with a user's request ahead of scheduled polls.

Every request to a backend takes one of its `max_concurrency` slots first. When they are all taken, what a
user is waiting for (watch, status, Refresh, Rewatch, cancel: anything not marked scheduled) gets the next
free slot before any scheduled poll that is waiting, so a burst of due polls never keeps a user's answer
behind it. The poller marks its scheduled polls with `scheduled()`; everything else is a user's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType

_SCHEDULED: ContextVar[bool] = ContextVar("jobstatus_scheduled_poll", default=False)


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


class Slots:
    """`async with slots:` holds one of `n` slots; a user's waiter is served before a scheduled one, each
    queue first come, first served."""

    def __init__(self, n: int) -> None:
        self._free = n
        self._users: deque[asyncio.Future[None]] = deque()
        self._polls: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """How many wait for a slot. The queues hold only futures not yet served: `_release` pops what it
        serves and a waiter cancelled while queued removes itself."""
        return len(self._users) + len(self._polls)

    async def __aenter__(self) -> None:
        if self._free > 0 and not self._users and not self._polls:  # O(1): every poll passes here
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._polls if is_scheduled() else self._users
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
        for queue in (self._users, self._polls):
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)  # the slot goes straight to it
                    return
        self._free += 1
