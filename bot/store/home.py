"""What the Home tab reads: one user's watches across channels, and what the polls say of each backend.

The watches table has no index on `user_id` (the schema's revisions are another change's business): a
user's watches are found by a scan, bounded by `limit`, which at the sizes this bot serves (thousands of
watches) is a few milliseconds."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.store.models import Job, Watch

RECENT = 24 * 3600.0  # ended watches stay on the Home tab this long


def user_watches(s: Session, user: str, now: float, limit: int) -> tuple[list[tuple[Watch, Job]], int]:
    """The user's active watches, then those ended in the last day, newest first: at most `limit`, and how
    many more there are."""
    where = (col(Watch.user_id) == user,
             or_(col(Watch.active) == True, col(Watch.ended_at) >= now - RECENT))  # noqa: E712
    q = (select(Watch, Job).join(Job, col(Job.id) == col(Watch.job_pk)).where(*where)
         .order_by(col(Watch.active).desc(), col(Watch.id).desc()).limit(limit))
    rows = [(w, j) for w, j in s.execute(q)]
    total = (s.execute(select(func.count()).select_from(Watch).where(*where)).scalar_one()
             if len(rows) == limit else 0)
    return rows, max(0, int(total) - len(rows))


def watch_user(s: Session, watch_id: int) -> str | None:
    """Who started a watch (whose Home tab shows it)."""
    w = s.get(Watch, watch_id)
    return w.user_id if w is not None else None


@dataclass(frozen=True)
class PollFigures:
    """One backend's polled jobs: how many, how many whose last poll failed, since when the oldest failure
    runs, and the kind of error the most jobs have."""

    polled: int
    failing: int
    failing_since: float | None
    error_kind: str | None


def poll_figures(s: Session) -> dict[str, PollFigures]:
    """PollFigures of every backend with polled jobs (one grouped query, over the jobs being polled)."""
    failing = func.sum(case((col(Job.errors) > 0, 1), else_=0))
    q = (select(col(Job.backend), func.count(), failing, func.min(col(Job.error_since)))
         .where(col(Job.polling) == True).group_by(col(Job.backend)))  # noqa: E712
    kinds = (select(col(Job.backend), col(Job.error_kind), func.count())
             .where(col(Job.polling) == True, col(Job.errors) > 0)  # noqa: E712
             .group_by(col(Job.backend), col(Job.error_kind)))
    top: dict[str, tuple[int, str | None]] = {}
    for backend, kind, n in s.execute(kinds):
        if backend not in top or n > top[backend][0]:
            top[backend] = (int(n), kind)
    return {backend: PollFigures(int(polled), int(failed or 0), since, top.get(backend, (0, None))[1])
            for backend, polled, failed, since in s.execute(q)}
