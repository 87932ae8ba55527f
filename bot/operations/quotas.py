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
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # bot.support.config reads this module's defaults: it imports nothing of the bot at its import
    from bot.store import Store
    from bot.support.config import QuotasConfig

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


def limits_of(config: QuotasConfig, scope: str) -> Limits:
    q = {"user": config.user, "token": config.token, "channel": config.channel}[scope]
    return Limits(q.active, q.per_minute)


def refusal(o: Over, token: str | None) -> str:
    """The words of a refusal: the limit, and what to do instead. `token`: the API client's name, rendered
    (messages.who), when an API token started the watch."""
    scope, kind = o.setting.split(".")
    what = {"user": "one user", "token": "one API token", "channel": "one channel"}[scope]
    setting = f"(the `quotas: {scope}: {kind}` setting)"
    if kind == "active":
        who = {"user": "You have", "token": f"API token {token} has", "channel": "This channel has"}[scope]
        stop = ("stop the ones you no longer need (`DELETE /api/v1/watches/{id}`)" if token
                else "stop the ones you no longer need (`/jobstatus list`, or *Stop watching* on the Home tab)")
        return (f"{who} {o.limit} active {'watch' if o.limit == 1 else 'watches'}, the most {what} may have {setting}. To watch more, {stop} "
                "or wait for their jobs to end.")
    who = {"user": "You started", "token": f"API token {token} started", "channel": "This channel got"}[scope]
    return (f"{who} {o.limit} new {'watch' if o.limit == 1 else 'watches'} in the last minute, the most {what} may {setting}. Try again in "
            f"{o.retry_after} s: spread the starts out, or ask the bot's operator to raise the quota.")


async def admit(db: Store, config: QuotasConfig, actor: str, channel: str, now: float) -> None:
    """Let `actor` (a Slack user, or an API token: messages.api_actor) start a watch in `channel` now, or
    refuse: UserError, code `quota_active` or `quota_per_minute` (the HTTP API answers 429, with
    Retry-After for the per-minute limits)."""
    # imported here: bot.operations.watching calls this module, and bot.support.config reads its defaults
    from bot.operations.watching import UserError
    from bot.rendering import messages
    from bot.store.quotas import admit_start

    token = actor.startswith(messages.API_ACTOR)
    scope = "token" if token else "user"
    found = await db.run(admit_start, limits_of(config, scope), scope, limits_of(config, "channel"),
                         actor, channel, now)
    if found is not None:
        code = "quota_active" if found.retry_after is None else "quota_per_minute"
        raise UserError(refusal(found, messages.who(actor) if token else None), code, retry_after=found.retry_after)
