"""Bounded history: state changes, ended watches, the jobs no watch refers to any more and the daily digests
posted go once they are older than the retention, a small batch per transaction (the poller's upkeep runs
`prune_history` until it finds nothing, so the store's thread serves other work between batches).

Never removed: an active watch, a watch that still owes Slack anything (an outbox row), or a job a watch
refers to. An outbox row needs its watch and that watch's job; its payload carries what it shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, delete, or_, select
from sqlalchemy.orm import Session, aliased
from sqlmodel import col

from bot.store.models import Digest, Job, Outbox, StateChange, Watch

BATCH = 500  # rows of one table per transaction


@dataclass(frozen=True)
class Pruned:
    """Rows removed, per table."""

    state_changes: int = 0
    watches: int = 0
    jobs: int = 0
    digests: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(self.state_changes + other.state_changes, self.watches + other.watches,
                      self.jobs + other.jobs, self.digests + other.digests)

    def __bool__(self) -> bool:
        return bool(self.state_changes or self.watches or self.jobs or self.digests)


def prune_history(s: Session, before: float, limit: int = BATCH) -> Pruned:
    """One batch: up to `limit` rows of the first of these that has any older than `before`:

    1. state changes;
    2. watches that ended and owe nothing;
    3. jobs no watch refers to and nobody polls, last checked, created and asked to cancel before `before`
       (with whatever state changes of theirs are left);
    4. daily digests posted (or given up) whose window ended before `before`, except each channel's newest
       (the next one starts where it ends, and its day is not written twice).

    Nothing removed means nothing is left to remove."""
    old = s.execute(
        select(col(StateChange.id)).where(col(StateChange.at) < before).limit(limit)
    ).scalars().all()
    if old:
        return Pruned(state_changes=_delete(s, delete(StateChange).where(col(StateChange.id).in_(old))))

    owes = select(col(Outbox.id)).where(col(Outbox.watch_id) == col(Watch.id)).exists()
    ended = (col(Watch.active) == False, col(Watch.ended_at) < before, ~owes)  # noqa: E712
    old = s.execute(select(col(Watch.id)).where(*ended).limit(limit)).scalars().all()
    if old:
        # the conditions again: a row that changed since the select stays
        return Pruned(watches=_delete(s, delete(Watch).where(col(Watch.id).in_(old), *ended)))

    watched = select(col(Watch.id)).where(col(Watch.job_pk) == col(Job.id)).exists()
    done = (col(Job.polling) == False, col(Job.checked_at) < before, col(Job.created_at) < before,  # noqa: E712
            or_(col(Job.cancel_requested_at).is_(None), col(Job.cancel_requested_at) < before), ~watched)
    old = s.execute(select(col(Job.id)).where(*done).limit(limit)).scalars().all()
    if old:
        history = _delete(s, delete(StateChange).where(col(StateChange.job_pk).in_(old)))
        return Pruned(state_changes=history, jobs=_delete(s, delete(Job).where(col(Job.id).in_(old), *done)))

    newer = aliased(Digest)
    later = select(col(newer.id)).where(col(newer.channel) == col(Digest.channel),
                                        col(newer.until) > col(Digest.until)).exists()
    posted = (col(Digest.sent_at).is_not(None), col(Digest.until) < before, later)
    old = s.execute(select(col(Digest.id)).where(*posted).limit(limit)).scalars().all()
    if old:
        return Pruned(digests=_delete(s, delete(Digest).where(col(Digest.id).in_(old))))
    return Pruned()


def _delete(s: Session, stmt: Delete) -> int:
    return int(cast(CursorResult[Any],
                    s.execute(stmt, execution_options={"synchronize_session": False})).rowcount)
