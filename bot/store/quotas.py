"""The quotas' counts (bot/domain/quotas.py, applied by bot/operations/quotas.py): an identity's active
watches and its starts of the last minute, and the start recorded in the same transaction that admits it."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.domain.quotas import WINDOW, Counts, Limits, Over, over
from bot.store.models import Watch, WatchStart


def counts(s: Session, now: float, *, actor: str | None = None, channel: str | None = None) -> Counts:
    """One identity's counts, by who started the watches (`actor`, on ix_watches_user and
    ix_watch_starts_actor) or by channel (ix_watches_channel, ix_watch_starts_channel)."""
    if actor is not None:
        active = (col(Watch.user_id) == actor, col(Watch.active) == True)  # noqa: E712
        recent = (col(WatchStart.actor) == actor, col(WatchStart.at) > now - WINDOW)
    else:
        active = (col(Watch.channel) == channel, col(Watch.active) == True)  # noqa: E712
        recent = (col(WatchStart.channel) == channel, col(WatchStart.at) > now - WINDOW)
    n = s.execute(select(func.count()).select_from(Watch).where(*active)).scalar_one()
    starts = s.execute(select(col(WatchStart.at)).where(*recent).order_by(col(WatchStart.at))).scalars()
    return Counts(int(n), [float(t) for t in starts])


def admit_start(s: Session, limits: Limits, scope: str, channel_limits: Limits, actor: str, channel: str,
                now: float) -> Over | None:
    """The limit one more start by `actor` in `channel` would break (its own first, then the channel's), or
    None after recording the start. Starts that have left the window are deleted here, so the table holds
    about a minute of rows and the delete's scan stays small."""
    s.execute(delete(WatchStart).where(col(WatchStart.at) <= now - WINDOW))
    found = over(limits, counts(s, now, actor=actor), now, scope)
    if found is None:
        found = over(channel_limits, counts(s, now, channel=channel), now, "channel")
    if found is None:
        s.add(WatchStart(actor=actor, channel=channel, at=now))
    return found
