"""The fake Slack's rate limits: Slack's published tiers, enforced per method for the one workspace it is.

Slack's rate-limit page (https://docs.slack.dev/apis/web-api/rate-limits) applies its limits "per API method
per workspace/team per app", in tiers: Tier 1 "1+ per minute", Tier 2 "20+ per minute", Tier 3 "50+ per
minute", Tier 4 "100+ per minute"; and a Special tier whose conditions are the method's own, e.g.
"chat.postMessage generally allows posting one message per second per channel, while also maintaining a
workspace-wide limit" ("Posting messages: 1 per second. Short bursts >1 allowed"). Each method's tier is on
its reference page (docs.slack.dev/reference/methods/<method>, "Rate limits"); `METHOD_TIERS` copies them
from slack-api-ref's machine-readable copy of those pages (the `rate_limits` field). A method whose page
names no figure (auth.test and chat.getPermalink are "Special" with nothing more said) is not limited here.

How a tier is counted: at most its figure in any 60 seconds (a sliding window), so a burst of the whole
minute's figure is taken at once ("sporadic bursts welcome") and the next call waits for the oldest to leave
the window. The figures are Slack's floors ("50+"): the fake holds the bot to the floor.

A call over a limit is answered as the page says ("Responding to rate limiting conditions"): "HTTP 429 Too
Many Requests error, and a Retry-After HTTP header containing the number of seconds until you can retry",
with the Web API's `{"ok": false, "error": "ratelimited"}` (the `ratelimited` code every method page lists).
A refused call is not counted against the limit (it did nothing).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW = 60.0  # seconds: the tiers are "per minute"
# The tiers' figures, per minute (https://docs.slack.dev/apis/web-api/rate-limits, "Overview").
TIER_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
# Each method's tier, from its reference page (slack-api-ref docs.slack.dev/methods/<method>.json,
# `rate_limits`).
METHOD_TIERS = {
    "chat.update": 3,  # https://docs.slack.dev/reference/methods/chat.update/
    "conversations.history": 3,  # https://docs.slack.dev/reference/methods/conversations.history/
    "conversations.info": 3,  # https://docs.slack.dev/reference/methods/conversations.info/
    "apps.connections.open": 3,  # https://docs.slack.dev/reference/methods/apps.connections.open/
    "views.publish": 4,  # https://docs.slack.dev/reference/methods/views.publish/
    "views.open": 4,  # https://docs.slack.dev/reference/methods/views.open/
    "chat.postEphemeral": 4,  # https://docs.slack.dev/reference/methods/chat.postEphemeral/
    "users.info": 4,  # https://docs.slack.dev/reference/methods/users.info/
    "files.getUploadURLExternal": 4,  # https://docs.slack.dev/reference/methods/files.getUploadURLExternal/
    "files.completeUploadExternal": 4,  # https://docs.slack.dev/reference/methods/files.completeUploadExternal/
}
# chat.postMessage (Special tier, https://docs.slack.dev/reference/methods/chat.postMessage/ "Rate limits"):
# "one message per second per channel" with "short bursts >1 allowed". Slack does not say how short; this
# fake lets POST_BURST go at once in a quiet channel, then one a second.
POST_PER_SECOND = 1.0
POST_BURST = 5
# The "workspace-wide limit" of chat.postMessage has no published figure. The fake assumes the same as the
# bot's default ceiling (bot/slack/budget.py: chat.postMessage), so a bot that keeps its budget meets no 429.
POST_WORKSPACE_PER_MINUTE = 1200


@dataclass
class _Window:
    """The calls of one method in the last WINDOW seconds."""

    per_minute: int
    times: deque[float] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        """Seconds until one more call fits (0: now)."""
        while self.times and self.times[0] <= now - WINDOW:
            self.times.popleft()
        if len(self.times) < self.per_minute:
            return 0.0
        return self.times[0] + WINDOW - now if self.times else WINDOW  # a limit of 0: nothing goes


@dataclass
class _Channel:
    """One channel's posts: a bucket of POST_BURST, refilled at POST_PER_SECOND."""

    tokens: float
    at: float

    def wait(self, now: float) -> float:
        self.tokens, self.at = min(float(POST_BURST), self.tokens + (now - self.at) * POST_PER_SECOND), now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / POST_PER_SECOND


class Limits:
    """Slack's rate limits as the fake enforces them. `check(method, channel)` counts a call that fits and
    says None, or says the Retry-After (whole seconds, at least 1) of a call that does not.

    `enabled = False` lets everything through: only for a test that needs a burst beyond production's limits,
    and says so."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.enabled = True
        self.per_minute: dict[str, int] = {m: TIER_PER_MINUTE[t] for m, t in METHOD_TIERS.items()}
        self.per_minute["chat.postMessage"] = POST_WORKSPACE_PER_MINUTE
        self._windows: dict[str, _Window] = {}
        self._channels: dict[str, _Channel] = {}
        self.refused: dict[str, int] = {}  # method -> 429s answered

    def check(self, method: str, channel: str | None = None) -> int | None:
        if not self.enabled:
            return None
        now = self.clock()
        limit = self.per_minute.get(method)
        window = None
        wait = 0.0
        if limit is not None:
            window = self._windows.get(method)
            if window is None or window.per_minute != limit:
                window = self._windows[method] = _Window(limit, window.times if window else deque())
            wait = window.wait(now)
        bucket = None
        if method == "chat.postMessage" and channel:
            bucket = self._channels.setdefault(channel, _Channel(float(POST_BURST), now))
            wait = max(wait, bucket.wait(now))
        if wait > 0:
            self.refused[method] = self.refused.get(method, 0) + 1
            return max(1, math.ceil(wait))
        if window is not None:
            window.times.append(now)
        if bucket is not None:
            bucket.tokens -= 1.0
        return None

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())
