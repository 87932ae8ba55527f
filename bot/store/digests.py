"""Daily digests (bot/engine/digests.py): the jobs of a channel that ended in a window, and one row per
(channel, day) that is claimed before its digest is posted. The row is the digest's outbox: written, with what
it says, before the Slack call (the unique (channel, day) makes two replicas or two starts write one), claimed
for a while before each attempt (so one replica posts it), marked sent after. A crash between the post
and the mark posts it again once, as with a thread reply in the outbox."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.domain.jobs import EndedReason, JobView, Reply
from bot.store.models import Digest, Job, Watch


@dataclass(frozen=True)
class Ended:
    """A job of the channel that ended, as it ended, and its thread (the parent's ts, if it was posted)."""

    job: JobView
    parent_ts: str | None
    ended_at: float


@dataclass(frozen=True)
class Window:
    """What a digest not written yet covers: jobs that ended in [since, until)."""

    since: float
    until: float
    ended: list[Ended]


def digest_window(s: Session, channel: str, day: str, until: float, first_since: float) -> Window | None:
    """The window of the channel's digest for `day`, ending at `until` and starting where the channel's
    previous digest ended (`first_since` for its first), with the jobs that ended in it; None when that day's
    digest is written already."""
    if s.execute(select(col(Digest.id))
                 .where(col(Digest.channel) == channel, col(Digest.day) == day)).first():
        return None
    last = s.execute(select(func.max(col(Digest.until))).where(col(Digest.channel) == channel)).scalar()
    since = min(float(last), until) if last is not None else first_since
    q = (select(Job, col(Watch.parent_ts), col(Watch.ended_at)).join(Watch, col(Watch.job_pk) == col(Job.id))
         .where(col(Watch.channel) == channel, col(Watch.ended_reason) == EndedReason.FINISHED.value,
                col(Watch.ended_at) >= since, col(Watch.ended_at) < until)
         .order_by(col(Watch.ended_at)))
    return Window(since, until, [Ended(job.view(), ts, float(at or 0)) for job, ts, at in s.execute(q)])


def add_digest(s: Session, channel: str, day: str, window: Window, reply: Reply | None, now: float) -> None:
    """Write the day's digest (raises IntegrityError when it is written already: another replica, or a
    start, was first). Without a reply (nothing ended) it is written as sent: the day is done, quietly."""
    s.add(Digest(channel=channel, day=day, since=window.since, until=window.until,
                 text=reply.text if reply else "", blocks=json.dumps(reply.blocks if reply else []),
                 next_attempt_at=now, sent_at=None if reply else now))
    s.flush()


@dataclass(frozen=True)
class OwedDigest:
    id: int
    channel: str
    day: str
    reply: Reply
    attempts: int


def due_digests(s: Session, now: float) -> list[int]:
    """The digests written and not sent whose next attempt is due, oldest first."""
    q = (select(col(Digest.id)).where(col(Digest.sent_at).is_(None), col(Digest.next_attempt_at) <= now)
         .order_by(col(Digest.id)))
    return [i for i in s.execute(q).scalars() if i is not None]


def claim_digest(s: Session, digest_id: int, now: float, hold: float) -> OwedDigest | None:
    """Claim a due digest for `hold` seconds (attempts+1): one UPDATE whose WHERE only one replica's can
    pass. None when it is sent, or another replica holds it."""
    done = s.execute(update(Digest).where(col(Digest.id) == digest_id, col(Digest.sent_at).is_(None),
                                          col(Digest.next_attempt_at) <= now)
                     .values(next_attempt_at=now + hold, attempts=col(Digest.attempts) + 1))
    if getattr(done, "rowcount", 0) != 1:
        return None
    row = s.get(Digest, digest_id)
    if row is None:
        return None
    return OwedDigest(digest_id, row.channel, row.day, Reply(row.text, json.loads(row.blocks)), row.attempts)


def digest_sent(s: Session, digest_id: int, now: float) -> None:
    """Done with a digest: posted, or given up for good (the log says which)."""
    row = s.get(Digest, digest_id)
    if row is not None:
        row.sent_at = now


def digest_retry(s: Session, digest_id: int, at: float) -> None:
    row = s.get(Digest, digest_id)
    if row is not None:
        row.next_attempt_at = at
