"""Quotas, applied: an identity's limits from the config, the words of a refusal, and `admit`, which counts
and records a start in one transaction (bot/store/quotas.py). The limits themselves, their defaults and why,
and the arithmetic are bot/domain/quotas.py's."""

from __future__ import annotations

from bot.domain import actors
from bot.domain.quotas import Limits, Over
from bot.operations.refusals import UserError
from bot.rendering import messages
from bot.store import Store
from bot.store.quotas import admit_start
from bot.support.config import QuotasConfig


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
        where = ("`DELETE /api/v1/watches/{id}`" if token
                 else "`/jobstatus list`, or *Stop watching* on the Home tab")
        stop = f"stop the ones you no longer need ({where})"
        return (f"{who} {o.limit} active {'watch' if o.limit == 1 else 'watches'}, the most {what} may have "
                f"{setting}. To watch more, {stop} or wait for their jobs to end.")
    who = {"user": "You started", "token": f"API token {token} started", "channel": "This channel got"}[scope]
    return (f"{who} {o.limit} new {'watch' if o.limit == 1 else 'watches'} in the last minute, the most "
            f"{what} may {setting}. Try again in {o.retry_after} s: spread the starts out, or ask the bot's "
            "operator to raise the quota.")


async def admit(db: Store, config: QuotasConfig, actor: str, channel: str, now: float) -> None:
    """Let `actor` (a Slack user, or an API token: actors.api_actor) start a watch in `channel` now, or
    refuse: UserError, code `quota_active` or `quota_per_minute` (the HTTP API answers 429, with
    Retry-After for the per-minute limits)."""
    token = actor.startswith(actors.API_ACTOR)
    scope = "token" if token else "user"
    found = await db.run(admit_start, limits_of(config, scope), scope, limits_of(config, "channel"),
                         actor, channel, now)
    if found is not None:
        code = "quota_active" if found.retry_after is None else "quota_per_minute"
        raise UserError(refusal(found, messages.who(actor) if token else None), code,
                        retry_after=found.retry_after)
