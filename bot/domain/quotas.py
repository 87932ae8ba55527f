"""Quotas: how many watches one Slack user, one API token and one channel may have active, and may start in a
minute, whichever way the watch is started (slash command, modal, the HTTP API, Rewatch).

Why these defaults. The bot's scarce resource is Slack's: about one message a second per channel
(chat.postMessage's special rate limit) and about 50 `chat.update` a minute per workspace (Tier 3). One new
watch costs a parent message at once and updates for as long as it lives; a flood of new watches in one
channel queues every other watch's replies there behind its parents. So:

- an API token is a pipeline: legitimate heavy use is thousands of watches a day (a few a minute on average,
  bunched at a close or a nightly load) and a script starting hundreds in one go. TOKEN_PER_MINUTE (600: ten a
  second for a whole minute) and TOKEN_ACTIVE (5,000: a day's thousands still running at the default 24 h
  watch timeout) are several times that, so a well-behaved pipeline never meets them;
- a Slack user types or clicks: a few watches a minute by hand, dozens on a busy day; but a workflow or a
  script acting as a person may start a close's hundred jobs in one go. USER_PER_MINUTE (300: five a second
  for a whole minute) and USER_ACTIVE (1,000) are past both, and still bound a runaway loop to a quarter of
  a channel's room;
- a channel is shared: CHANNEL_PER_MINUTE and CHANNEL_ACTIVE are twice a token's, so one identity at its own
  limit takes at most half of a channel's room and every other user and token of that channel keeps the rest.

Counts come from the database (`watch_starts` for the last minute, `watches` for the active ones), so replicas
share them. The check and the record of the start are one transaction; two requests of one identity racing at
its limit may both pass (a limit can be exceeded by the number of requests in flight at once, never more).
Every admitted start counts, also one the vendor then refuses (it cost a vendor call); a request for a job the
channel already watches is answered before the quotas and costs nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WINDOW = 60.0  # seconds: the "per minute" of the per-minute limits, a sliding window over the starts

USER_ACTIVE = 1_000
USER_PER_MINUTE = 300
TOKEN_ACTIVE = 5_000
TOKEN_PER_MINUTE = 600
CHANNEL_ACTIVE = 2 * TOKEN_ACTIVE
CHANNEL_PER_MINUTE = 2 * TOKEN_PER_MINUTE


@dataclass(frozen=True)
class Limits:
    """One identity's limits: active watches at once, and watches started in any WINDOW seconds."""

    active: int
    per_minute: int


@dataclass(frozen=True)
class Counts:
    """What the database says of an identity now: its active watches, and the times of its recent starts."""

    active: int
    starts: list[float]  # oldest first, those later than now - WINDOW


@dataclass(frozen=True)
class Over:
    """A limit met: which (`setting` names it in the config), the figure, and for a per-minute limit the
    seconds until one more start fits."""

    setting: str
    limit: int
    retry_after: int | None


def over(limits: Limits, counts: Counts, now: float, setting: str) -> Over | None:
    """The first limit one more start would break, or None. Per minute: with `n` starts in the window and a
    limit of `k`, the (n - k + 1)-th oldest must leave the window before one more fits."""
    if counts.active >= limits.active:
        return Over(f"{setting}.active", limits.active, None)
    recent = sorted(t for t in counts.starts if t > now - WINDOW)
    if len(recent) >= limits.per_minute:
        leaves = recent[len(recent) - limits.per_minute] + WINDOW
        return Over(f"{setting}.per_minute", limits.per_minute, max(1, math.ceil(leaves - now)))
    return None
