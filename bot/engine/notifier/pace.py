"""Stage 3 of the notifier: the pace of a channel's posts, and a parent's update only when chat.update has
room.

Slack's rate limits (https://docs.slack.dev/apis/web-api/rate-limits): "chat.postMessage generally allows
posting one message per second per channel, while also maintaining a workspace-wide limit", and for posting
messages "1 per second. Short bursts >1 allowed. If you attempt bursts, there is no guarantee that messages
will" go through: a short burst is used (`Bucket`), and a 429 is obeyed (its Retry-After cools the channel:
no post goes to it meanwhile, then one post and the sustained pace). The workspace's budget per method is
bot/slack/budget.py's, asked here only for chat.update (`UpdateRoom`); the sender waits for the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.slack.budget import Budget

CHANNEL_GAP = 1.0  # seconds per post in one channel, sustained (chat.postMessage and uploads to a thread)
CHANNEL_BURST = 3  # posts one channel may take at once after a quiet spell


class Bucket:
    """One channel's allowance to post: up to `burst` at once, refilled at one per `gap` seconds. Times are
    the caller's (monotonic) clock; a post is taken in advance (`take` says how long to wait for it), so the
    posts of one channel, taken one after another, keep the pace."""

    def __init__(self, now: float, tokens: float, gap: float | None = None, burst: int | None = None) -> None:
        self.gap = CHANNEL_GAP if gap is None else gap  # read when made: tests set the module's figures first
        self.burst = CHANNEL_BURST if burst is None else burst
        self.at = now
        self.tokens = tokens  # below 0: posts taken ahead, owed from the refill

    def _now(self, now: float) -> float:
        return min(float(self.burst), self.tokens + (now - self.at) / self.gap)

    def ready_in(self, now: float) -> float:
        """The seconds until one post is allowed (0: now); nothing is taken."""
        return 0.0 if self.gap <= 0 else max(0.0, (1.0 - self._now(now)) * self.gap)

    def take(self, now: float) -> float:
        """Take one post; the seconds to wait before it goes (0: now)."""
        if self.gap <= 0:
            return 0.0
        self.tokens, self.at = self._now(now) - 1.0, now
        return max(0.0, -self.tokens * self.gap)


class Pace:
    """Every channel's bucket, and the channels cooling down after a chat.postMessage 429."""

    def __init__(self) -> None:
        self._buckets: dict[str, Bucket] = {}
        self._cool_until: dict[str, float] = {}  # channel -> monotonic time before which no post goes

    def bucket(self, channel: str) -> Bucket:
        """The channel's bucket (a channel not posted to yet: a full one)."""
        bucket = self._buckets.get(channel)
        if bucket is None:
            bucket = self._buckets[channel] = Bucket(time.monotonic(), float(CHANNEL_BURST))
        return bucket

    def ready_in(self, channel: str) -> float:
        """The seconds until the channel allows one post; nothing is taken."""
        return self.bucket(channel).ready_in(time.monotonic())

    async def take(self, channel: str) -> None:
        """Take one post from the channel's bucket, waiting as long as it says."""
        wait = self.bucket(channel).take(time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)

    def empty(self, channel: str) -> None:
        """The channel starts with nothing to spend (taken over from a replica that may have used it all)."""
        self._buckets[channel] = Bucket(time.monotonic(), 0.0)

    def cool(self, channel: str, seconds: float) -> None:
        """Slack's Retry-After for a post: no post to the channel meanwhile, then one post and the sustained
        pace."""
        until = time.monotonic() + seconds
        self._cool_until[channel] = until
        self._buckets[channel] = Bucket(until, 1.0)

    def cooling(self, channel: str) -> bool:
        """Whether a 429's Retry-After still keeps posts from the channel (updates may still go)."""
        until = self._cool_until.get(channel)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._cool_until[channel]
        return False


class UpdateRoom:
    """A parent's update goes only when chat.update's budget has room now, one at a time in this process (so
    the room seen is the room spent); else it stays owed for a later pass, where it renders the latest state
    (updates coalesce in the outbox: `store.owe`)."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._one = asyncio.Lock()

    def now(self) -> bool:
        """Whether chat.update's budget has room now: else a pass leaves the parents' updates unread."""
        return self.budget.ready_in("chat.update") == 0

    @asynccontextmanager
    async def taken(self) -> AsyncIterator[bool]:
        """Hold the one update under way; yields whether there is room for it now."""
        async with self._one:
            yield self.now()
