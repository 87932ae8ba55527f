"""The watch lifecycle: find, create or resume, stop, rewatch, end (by the job, the timeout or Slack), undo,
and the one cancel request per job. Each function is one transaction's work (run through `Store.run`)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement
from sqlmodel import SQLModel, col

from bot.domain.jobs import (
    Change,
    Changed,
    EndedReason,
    JobEvent,
    OutboxKind,
    Reply,
    change_of,
    shown_progress,
    slack_ended,
)
from bot.domain.status import JobStatus
from bot.store.models import Job, Outbox, StateChange, Watch
from bot.store.outbox import owe
from bot.store.runs import track_run


def find_job(s: Session, backend: str, job_id: str) -> Job | None:
    return s.execute(
        select(Job).where(col(Job.backend) == backend, col(Job.job_id) == job_id)
    ).scalars().first()


def active_watch(s: Session, backend: str, job_id: str, channel: str) -> Watch | None:
    """The channel's active watch of a job, if it has one."""
    job = find_job(s, backend, job_id)
    if job is None:
        return None
    q = select(Watch).where(col(Watch.job_pk) == job.pk, col(Watch.channel) == channel,
                            col(Watch.active) == True)  # noqa: E712
    return s.execute(q).scalars().first()


def channel_watch(s: Session, backend: str, job_id: str, channel: str) -> Watch | None:
    """The channel's watch of a job, active or ended."""
    job = find_job(s, backend, job_id)
    return None if job is None else _watch_in(s, job.pk, channel)


def _watch_in(s: Session, job_pk: int, channel: str) -> Watch | None:
    """The channel's watch of a job, active or ended (the active or newest one in a database from before
    the unique constraint)."""
    q = (select(Watch).where(col(Watch.job_pk) == job_pk, col(Watch.channel) == channel)
         .order_by(col(Watch.active).desc(), col(Watch.id).desc()))
    return s.execute(q).scalars().first()


def watches_of(s: Session, job_pk: int, *, active: bool | None = True) -> list[Watch]:
    """The watches of a job: the active ones, the ended ones (active=False), or all (None)."""
    q = select(Watch).where(col(Watch.job_pk) == job_pk)
    if active is not None:
        q = q.where(col(Watch.active) == active)
    return list(s.execute(q).scalars())


def channel_watches(s: Session, channel: str) -> list[tuple[Watch, Job]]:
    """The channel's active watches with their jobs, oldest first."""
    q = (
        select(Watch, Job)
        .join(Job, col(Job.id) == col(Watch.job_pk))
        .where(col(Watch.channel) == channel, col(Watch.active) == True)  # noqa: E712
        .order_by(col(Watch.id))
    )
    return [(w, j) for w, j in s.execute(q)]


def watch_and_job(s: Session, watch_id: int) -> tuple[Watch, Job] | None:
    w = s.get(Watch, watch_id)
    job = s.get(Job, w.job_pk) if w is not None else None
    return (w, job) if w is not None and job is not None else None


def counts(s: Session) -> dict[str, int]:
    """What the store holds, for the log line at start."""
    def n(table: type[SQLModel], *where: ColumnElement[bool]) -> int:
        return int(s.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

    return {
        "jobs_polling": n(Job, col(Job.polling) == True),  # noqa: E712
        "watches_active": n(Watch, col(Watch.active) == True),  # noqa: E712
        "outbox": n(Outbox),
    }


@dataclass(frozen=True)
class Owes:
    """What a write owes once it is committed: messages in the outbox (the notifier sends them) and a job
    whose schedule changed (the poller follows it). The write says it; `Watching.settle` alone applies it, so
    an operation cannot forget to wake one or the other."""

    messages: bool = False
    track: int | None = None  # a job to poll (again), or None


@dataclass(frozen=True)
class Figures:
    """What /metrics shows that only the database knows (bot/metrics.py counts it every few seconds)."""

    watches: dict[str, int]  # active watches by backend
    outbox: int  # messages owed to Slack
    oldest_owed: float | None  # when the oldest of them was owed (its row's created_at)


def figures(s: Session) -> Figures:
    by_backend = (select(col(Job.backend), func.count()).select_from(Watch)
                  .join(Job, col(Job.id) == col(Watch.job_pk)).where(col(Watch.active) == True)  # noqa: E712
                  .group_by(col(Job.backend)))
    outbox, oldest = s.execute(
        select(func.count(), func.min(col(Outbox.created_at))).select_from(Outbox)
    ).one()
    return Figures({str(b): int(n) for b, n in s.execute(by_backend)}, int(outbox),
                   None if oldest is None else float(oldest))


def set_status(job: Job, st: JobStatus) -> None:
    """Take a status answer into the job's row."""
    job.phase = st.phase
    job.vendor_status = st.vendor_status
    job.name = st.name or job.name
    job.progress = shown_progress(st.phase, st.progress, job.progress)
    job.message = st.message
    job.log_paths = json.dumps(list(st.log_paths))
    job.links = json.dumps([[link.label, link.url] for link in st.links])


def create_watch(
    s: Session,
    backend: str,
    st: JobStatus,
    channel: str,
    user_id: str,
    *,
    now: float,
    interval: float,
    watch_timeout: float,
    first_reply: Changed | None,
    again_note: Reply | None = None,
    mention: str | None = None,
) -> tuple[Watch, Job, str]:
    """The watch of `st`'s job in `channel`: (watch, job, what), `what` being

    "created": a new watch, its parent (and `first_reply`, the result of a job that has ended) owed;
    "resumed": the channel's earlier watch, stopped or timed out, follows the job again in its own thread
        (with `again_note`), or, when the job has ended since, gets `first_reply` there, once;
    "exists": the channel watches it now, or followed it to its end: nothing to do but link the thread.

    The job row is shared by every channel watching it; its state is taken from `st` only when no other
    watch is following it already (otherwise the poller owns it). `mention`: the Slack user a new watch's
    thread mentions (an API request's `user`); a resumed watch keeps its own.
    """
    job = find_job(s, backend, st.job_id)
    existing = None
    if job is None:
        job = Job(backend=backend, job_id=st.job_id, created_at=now, changed_at=now, checked_at=now)
        track_run(s, job, job.phase, st, now)
        set_status(job, st)
        job.polling = False
        s.add(job)
        s.flush()
        s.add(StateChange(job_pk=job.pk, at=now, phase=job.phase, vendor_status=job.vendor_status,
                          message=job.message))
    else:
        existing = _watch_in(s, job.pk, channel)
        if existing is not None and (existing.active or existing.ended_reason == EndedReason.FINISHED):
            return existing, job, "exists"
        if not job.polling:
            if change_of(job, st) is Change.STATE:
                s.add(StateChange(job_pk=job.pk, at=now, phase=st.phase, vendor_status=st.vendor_status,
                                  message=st.message))
                job.changed_at = now
            track_run(s, job, job.phase, st, now)
            set_status(job, st)
            job.checked_at = now
    if existing is not None:
        _resume(s, existing, job, st, now, interval, watch_timeout, first_reply, again_note)
        return existing, job, "resumed"
    watch = Watch(job_pk=job.pk, channel=channel, user_id=user_id, mention=mention, created_at=now)
    if st.terminal:
        watch.active = False
        watch.ended_reason = EndedReason.FINISHED
        watch.ended_at = now
    s.add(watch)
    s.flush()
    if not st.terminal:
        _start_polling(job, now, interval * random.uniform(0.5, 1.0))  # spreads jobs watched at once
        limit = st.timeout_s if st.timeout_s else watch_timeout
        job.timeout_at = max(job.timeout_at or 0.0, now + limit)
    owe(s, watch, OutboxKind.PARENT, now)
    if first_reply:
        owe(s, watch, first_reply, now)
    return watch, job, "created"


def _resume(s: Session, watch: Watch, job: Job, st: JobStatus, now: float, interval: float,
            watch_timeout: float, result: Changed | None, note: Reply | None) -> None:
    """An ended watch of this channel, back: in its own thread (a new parent only if it never had one)."""
    if watch.parent_ts is None and s.execute(
            select(col(Outbox.id))
            .where(col(Outbox.watch_id) == watch.pk, col(Outbox.kind) == OutboxKind.PARENT)
            .limit(1)).scalar() is None:
        owe(s, watch, OutboxKind.PARENT, now)
    if st.terminal:
        watch.ended_reason = EndedReason.FINISHED
        watch.ended_at = now
        if result:
            owe(s, watch, result, now)
        owe(s, watch, OutboxKind.UPDATE, now)
        return
    _restart(s, watch, job, now, watch_timeout, note)


def _restart(s: Session, watch: Watch, job: Job, now: float, watch_timeout: float,
             note: Reply | None) -> None:
    watch.active = True
    watch.ended_reason = None
    watch.ended_at = None
    if note:
        owe(s, watch, note, now)
    owe(s, watch, OutboxKind.UPDATE, now)
    _start_polling(job, now, 0.0)
    job.timeout_at = max(job.timeout_at or 0.0, now + watch_timeout)


def _start_polling(job: Job, now: float, delay: float) -> None:
    if not job.polling:
        job.polling = True
        job.next_poll_at = now + delay
        job.errors = 0
        job.error_since = None
        job.outage_noted = False


def refresh_polling(s: Session, job: Job) -> None:
    """A job is polled while it has an active watch and has not ended."""
    s.flush()
    n = s.execute(
        select(func.count()).select_from(Watch).where(col(Watch.job_pk) == job.pk,
                                                      col(Watch.active) == True)  # noqa: E712
    ).scalar_one()
    job.polling = n > 0 and not job.phase.terminal


def end_watch(s: Session, watch: Watch, reason: EndedReason, now: float,
              note: Reply | JobEvent | None = None) -> None:
    """Stop a watch (stopped by a user, timed out...), with a note in its thread; the parent shows Rewatch."""
    if not watch.active:
        return
    watch.active = False
    watch.ended_reason = reason
    watch.ended_at = now
    if note:
        owe(s, watch, note, now)
    owe(s, watch, OutboxKind.UPDATE, now)
    job = s.get(Job, watch.job_pk)
    if job is not None:
        refresh_polling(s, job)


def stop_watch(s: Session, watch_id: int, now: float, note: Reply) -> Owes | None:
    """A user stops a watch; returns what it owes (its note, its job's schedule), or None when it had ended
    already."""
    w = s.get(Watch, watch_id)
    if w is None or not w.active:
        return None
    end_watch(s, w, EndedReason.STOPPED, now, note)
    return Owes(messages=True, track=w.job_pk)


def rewatch(s: Session, watch_id: int, st: JobStatus, now: float, watch_timeout: float, note: Reply) -> Owes:
    """A user follows an ended watch's job again, in its thread, from the status `st` just read."""
    w = s.get(Watch, watch_id)
    job = s.get(Job, w.job_pk) if w is not None else None
    if w is None or job is None or w.active:
        return Owes()
    _restart(s, w, job, now, watch_timeout, note)
    set_status(job, st)
    job.checked_at = now
    return Owes(messages=True, track=job.pk)


def refresh_job(s: Session, job_pk: int, st: JobStatus, now: float) -> Owes:
    """Take a status read outside the poller (a Rewatch of a job that has ended) into every parent of the
    job."""
    job = s.get(Job, job_pk)
    if job is None:
        return Owes()
    set_status(job, st)
    job.checked_at = now
    for w in watches_of(s, job_pk, active=None):
        owe(s, w, OutboxKind.UPDATE, now)
    return Owes(messages=True)


def end_watch_for_slack(s: Session, watch_id: int, error: str, now: float) -> None:
    """Slack will not take messages for this watch any more (channel gone, archived, bot removed)."""
    w = s.get(Watch, watch_id)
    if w is None:
        return
    w.active = False
    w.ended_reason = slack_ended(error)
    w.ended_at = now
    s.execute(delete(Outbox).where(col(Outbox.watch_id) == watch_id))
    job = s.get(Job, w.job_pk)
    if job is not None:
        refresh_polling(s, job)


def discard_watch(s: Session, watch_id: int) -> None:
    """Undo a watch whose parent could not be posted (e.g. the bot is not in the channel)."""
    w = s.get(Watch, watch_id)
    if w is None:
        return
    s.execute(delete(Outbox).where(col(Outbox.watch_id) == watch_id))
    job_pk = w.job_pk
    s.delete(w)
    s.flush()
    others = s.execute(
        select(func.count()).select_from(Watch).where(col(Watch.job_pk) == job_pk)
    ).scalar_one()
    job = s.get(Job, job_pk)
    if job is not None:
        if others == 0:
            s.execute(delete(StateChange).where(col(StateChange.job_pk) == job_pk))
            s.delete(job)
        else:
            refresh_polling(s, job)


# -- cancel: one vendor call per job, however many ask at once ------------------------------------------


def claim_cancel(s: Session, backend: str, job_id: str, user: str, now: float) -> tuple[str, float] | None:
    """Record that `user` is asking the vendor to cancel the job now. Returns who asked before, and when,
    if someone did (then nobody asks again). One conditional UPDATE decides: atomic on SQLite and on
    PostgreSQL (the second of two concurrent updates waits for the first, then finds the row taken)."""
    job = find_job(s, backend, job_id)
    if job is None:  # an admin cancelling a job nobody watches: the row remembers the request
        job = Job(backend=backend, job_id=job_id, polling=False, created_at=now, changed_at=now,
                  checked_at=now)
        s.add(job)
        s.flush()
    took = cast(CursorResult[Any], s.execute(  # an UPDATE's result: a cursor's, with its rowcount
        update(Job).where(col(Job.id) == job.pk, col(Job.cancel_requested_at).is_(None))
        .values(cancel_requested_by=user, cancel_requested_at=now)
    )).rowcount
    if took:
        return None
    s.refresh(job)
    return str(job.cancel_requested_by), float(job.cancel_requested_at or now)


def release_cancel(s: Session, backend: str, job_id: str, user: str, at: float) -> None:
    """The vendor did not take `user`'s cancel: the next one may ask again (a row kept only for it goes)."""
    job = find_job(s, backend, job_id)
    if job is None or job.cancel_requested_by != user or job.cancel_requested_at != at:
        return
    job.cancel_requested_by = job.cancel_requested_at = None
    if not watches_of(s, job.pk, active=None):
        s.delete(job)


def note_cancel(s: Session, backend: str, job_id: str, note: Reply, now: float) -> tuple[int, Owes]:
    """The vendor took a cancel: every active watch of the job says so, its parents lose the Cancel button,
    and the job is polled now. Returns how many watches were told, and what that owes."""
    job = find_job(s, backend, job_id)
    if job is None:
        return 0, Owes()
    watches = watches_of(s, job.pk)
    for w in watches:
        owe(s, w, note, now)
        owe(s, w, OutboxKind.UPDATE, now)
    job.next_poll_at = now
    # its next poll is now: follow it to its end
    return len(watches), Owes(messages=bool(watches), track=job.pk)


# -- permissions (bot/operations/permissions.py): the job's owner, and watches the rules no longer allow ---

def job_owner(s: Session, backend: str, job_id: str) -> str | None:
    """The `cancel: owner` of a job: who started its earliest watch, in any channel. One owner per job,
    whichever channel asks: watching the job in a channel of one's own makes nobody its owner. When an API
    client watched it first, that client owns it (`api:<name>`), and no person does: a user the client named
    is only mentioned, and watching the job later gives nobody the right either."""
    q = (select(col(Watch.user_id)).join(Job, col(Job.id) == col(Watch.job_pk))
         .where(col(Job.backend) == backend, col(Job.job_id) == job_id)
         .order_by(col(Watch.created_at), col(Watch.id)).limit(1))
    return s.execute(q).scalar_one_or_none()


def watch_channels(s: Session, watch_ids: list[int]) -> dict[int, str]:
    """Each watch's channel."""
    if not watch_ids:
        return {}
    rows = s.execute(select(col(Watch.id), col(Watch.channel)).where(col(Watch.id).in_(watch_ids)))
    return {int(i or 0): str(c) for i, c in rows}


def end_disallowed(s: Session, allowed: dict[str, frozenset[str] | None], note: Reply,
                   now: float) -> list[int]:
    """End every active watch whose channel its backend's `channels` (`allowed`: backend → channels, None =
    anywhere) no longer allows, each with `note` in its thread; returns their jobs. Each watch is ended by a
    conditional UPDATE (`active` still true), so of two replicas starting at once only one ends it and writes
    the note, and a restart finds nothing left to end."""
    q = (select(Watch, col(Job.backend)).join(Job, col(Job.id) == col(Watch.job_pk))
         .where(col(Watch.active) == True))  # noqa: E712
    ended: list[int] = []
    for w, backend in s.execute(q).all():
        rule = allowed.get(backend)
        if backend not in allowed or rule is None or w.channel in rule:
            continue
        res = cast(CursorResult[Any], s.execute(
            update(Watch).where(col(Watch.id) == w.pk, col(Watch.active) == True)  # noqa: E712
            .values(active=False, ended_reason=EndedReason.NOT_ALLOWED, ended_at=now)
            .execution_options(synchronize_session=False)))
        if res.rowcount != 1:
            continue
        s.expire(w)
        owe(s, w, note, now)
        owe(s, w, OutboxKind.UPDATE, now)
        job = s.get(Job, w.job_pk)
        if job is not None:
            refresh_polling(s, job)
            ended.append(job.pk)
    return ended
