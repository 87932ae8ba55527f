"""Poll results and what the passing of time owes: the poller's view of the polled jobs, each answer or
error written with the thread replies it owes (as events the notifier renders), outage notes, timeouts.

Flapping: a job whose state flips at nearly every poll would get a thread reply per flip (47 in a minute at a
1 s poll). Once FLAP_CHANGES changes fall within FLAP_WINDOW, the thread gets one note saying so instead of
the reply, and from then on only the parent follows the changes (`Job.flapping_since` is set) until the job
has held one state for SETTLE_AFTER: then one note that it settled, and every change gets its reply again. An
end is always told as it is today. The count is the job's own history (state_changes), and the flag is a
column, so a restart, or another replica taking the job over, goes on where it was.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.domain.durations import UNDER_WAY, vendor_time
from bot.domain.errors import BackendError
from bot.domain.jobs import (
    CaughtUp,
    Change,
    Changed,
    EndedReason,
    Flapping,
    Late,
    Outage,
    OutboxKind,
    Recovered,
    Settled,
    TimedOut,
    change_of,
)
from bot.domain.states import Phase, worth_a_reply
from bot.domain.status import JobStatus
from bot.store.models import Job, StateChange
from bot.store.outbox import owe
from bot.store.runs import track_run
from bot.store.watches import end_watch, set_status, watches_of

# A job is flapping once this many state changes fall within FLAP_WINDOW: a real run changes state a handful
# of times in its whole life (queued, running, perhaps paused and running again, an end), never six times
# within minutes; the five before it still get their replies, so a short burst of real changes is told in
# full.
FLAP_CHANGES = 6
# The window those changes are counted in: ten polls at the default 30 s interval, so a job flipping at every
# poll is caught at the default pace too (at a 1 s poll, after six flips in six seconds).
FLAP_WINDOW = 300.0
# How long a flapping job must hold one state to be settled: no less than FLAP_WINDOW, so the changes that
# made it flap have all left the window when its changes are told again (a settled job is not flapping at once
# again).
SETTLE_AFTER = FLAP_WINDOW


@dataclass
class Tracked:
    """What the poller keeps of a job it polls: enough to tell whether an answer changes anything."""

    pk: int
    backend: str
    job_id: str
    phase: Phase
    vendor_status: str
    progress: int | None
    name: str | None
    errors: int
    error_kind: str | None
    changed_at: float
    due: float
    flapping_since: float | None = None  # its changes are too many for a reply each (see FLAP_CHANGES)

    def settling(self, now: float) -> bool:
        """Whether a flapping job has held its state long enough to be told settled (the poller writes such an
        answer even when it changes nothing)."""
        return self.flapping_since is not None and now - self.changed_at >= SETTLE_AFTER



# The columns a Tracked is read from, each labelled with its field's name (a Tracked is built by name).
_TRACKED: tuple[Any, ...] = (
    col(Job.id).label("pk"), col(Job.backend), col(Job.job_id), col(Job.phase), col(Job.vendor_status),
    col(Job.progress), col(Job.name), col(Job.errors), col(Job.error_kind), col(Job.changed_at),
    col(Job.next_poll_at).label("due"), col(Job.flapping_since),
)


def _tracked(row: Row[Any]) -> Tracked:
    return Tracked(**row._mapping)


def polling_jobs(s: Session, pks: Collection[int] | None = None) -> list[Tracked]:
    """Every polled job, for the poller's schedule (of those in `pks` only, when given: a replica's share)."""
    q = select(*_TRACKED).where(col(Job.polling) == True)  # noqa: E712
    if pks is not None:
        q = q.where(col(Job.id).in_(list(pks)))
    return [_tracked(r) for r in s.execute(q)]


def polling_job(s: Session, job_pk: int) -> Tracked | None:
    """The job, if it is polled."""
    row = s.execute(select(*_TRACKED).where(col(Job.id) == job_pk, col(Job.polling) == True)).first()  # noqa: E712
    return _tracked(row) if row is not None else None


def job_state(s: Session, job_pk: int) -> Tracked | None:
    """The job, polled or not."""
    row = s.execute(select(*_TRACKED).where(col(Job.id) == job_pk)).first()
    return _tracked(row) if row is not None else None


def polling_ids(s: Session) -> set[int]:
    q = select(col(Job.id)).where(col(Job.polling) == True)  # noqa: E712
    return {pk for pk in s.execute(q).scalars() if pk is not None}


_SET_NEXT_POLL = update(Job).where(col(Job.id) == bindparam("pk")).values(next_poll_at=bindparam("at"))
_SET_OWN_NEXT_POLL = _SET_NEXT_POLL.where(col(Job.owner) == bindparam("b_owner"))


def set_next_polls(s: Session, items: Sequence[tuple[int, float]], owner: str | None = None) -> None:
    """Unchanged jobs' next poll times, in one executemany. Plain Core: a job deleted meanwhile is skipped
    (the ORM's bulk update by primary key would raise StaleDataError and lose the whole batch). A replica
    (`owner`) writes only the jobs it still owns."""
    if items and owner is None:
        s.connection().execute(_SET_NEXT_POLL, [{"pk": pk, "at": at} for pk, at in items])
    elif items:
        s.connection().execute(_SET_OWN_NEXT_POLL,
                               [{"pk": pk, "at": at, "b_owner": owner} for pk, at in items])


@dataclass(frozen=True)
class PollResult:
    """One poll to write: the job, its answer or error, when, its next poll, and whether it was forced
    (Refresh: its parents are redrawn even when nothing changed)."""

    job_pk: int
    answer: JobStatus | BackendError
    at: float
    next_poll_at: float
    force: bool = False
    away: bool = False  # the first answer after the bot was away: a change is told as "while I was away"


@dataclass
class Applied:
    """What writing one poll result did."""

    changed: bool = False
    owed: int = 0  # outbox rows written
    terminal: bool = False
    became_terminal: bool = False
    ended_watches: list[int] = field(default_factory=list)
    polling: bool = True  # the job is still polled after this
    flapping_since: float | None = None  # the job's flapping flag after this (Tracked.flapping_since)


def apply_results(s: Session, results: Sequence[PollResult], owner: str | None = None) -> list[Applied]:
    """Write a batch of poll results in one transaction. A replica (`owner`) writes a scheduled poll only
    while it owns the job (row-locked to the end of the transaction, so no other replica takes it
    meanwhile): a poll whose lease was lost, say to a replica that took over, writes nothing (fencing)."""
    out = []
    for r in results:
        if owner is not None and not r.force:
            mine = s.get(Job, r.job_pk, with_for_update=True)
            if mine is None or mine.owner != owner:
                out.append(Applied(polling=False))  # not this replica's to poll any more
                continue
        if isinstance(r.answer, JobStatus):
            applied = apply_status(s, r.job_pk, r.answer, r.at, r.next_poll_at, r.force, r.away)
        else:
            apply_error(s, r.job_pk, r.answer, r.at, r.next_poll_at)
            applied = Applied()
            if r.force:
                for w in watches_of(s, r.job_pk):
                    applied.owed += owe(s, w, OutboxKind.UPDATE, r.at)
        job = s.get(Job, r.job_pk)
        applied.polling = bool(job and job.polling)
        out.append(applied)
    return out


def apply_status(s: Session, job_pk: int, st: JobStatus, now: float, next_poll_at: float,
                 force_update: bool = False, away: bool = False) -> Applied:
    """Record a successful poll. A state change writes history and redraws every active watch's parent; it
    owes a thread reply only when it is worth one (`worth_a_reply`: a new phase, or a vendor word that means
    something), told as "while I was away" when it is the first answer after the bot was `away`; and not while
    the job is flapping (the module's docstring): the change that makes it flap owes the one note instead, and
    an answer that finds it settled owes the one note that says so. An end always owes its reply."""
    out = Applied()
    job = s.get(Job, job_pk)
    if job is None:
        return out
    old_phase, old_word = job.phase, job.vendor_status
    change = change_of(job, st)
    changed = change is Change.STATE
    visible = change is not Change.NONE or force_update
    recovered = job.outage_noted
    settled = (not changed and job.flapping_since is not None and now - job.changed_at >= SETTLE_AFTER)
    job.checked_at = now
    job.errors = 0
    job.error_kind = None
    job.error_text = None
    job.error_since = None
    job.outage_noted = False
    job.next_poll_at = next_poll_at
    held_s = now - job.changed_at
    watches = watches_of(s, job_pk) if (changed or visible or recovered or settled) else []
    flapped: Flapping | None = None
    quiet = False  # a change the thread is not told of: the job flaps
    if changed:
        track_run(s, job, old_phase, st, now)
        set_status(job, st)
        job.changed_at = now
        s.add(StateChange(job_pk=job_pk, at=now, phase=st.phase, vendor_status=st.vendor_status,
                          message=st.message))
        out.changed = True
        if st.terminal:
            job.flapping_since = None
        elif job.flapping_since is not None:
            quiet = True
        elif worth_a_reply(old_phase, old_word, st.phase, st.vendor_status):  # else no reply to spare anyway
            flapped = _flapping(s, job, now)
            quiet = flapped is not None
    elif visible:
        set_status(job, st)
    if settled:
        job.flapping_since = None
    out.flapping_since = job.flapping_since
    view = job.view()
    if flapped is not None:
        flapped = replace(flapped, job=view)
    for w in watches:
        if recovered:
            out.owed += owe(s, w, Recovered(view), now)
        if flapped is not None:
            out.owed += owe(s, w, flapped, now)
        if settled:
            out.owed += owe(s, w, Settled(view, held_s), now)
        if changed and not quiet and worth_a_reply(old_phase, old_word, st.phase, st.vendor_status):
            told = (CaughtUp(view, w.watcher, old_phase, old_word, _steps(old_phase, st, now)) if away
                    else Changed(view, w.watcher, old_phase, old_word))
            out.owed += owe(s, w, told, now)
        if visible:
            out.owed += owe(s, w, OutboxKind.UPDATE, now)
    if st.terminal:
        out.terminal = True
        out.became_terminal = changed and not old_phase.terminal
        job.polling = False
        for w in watches or watches_of(s, job_pk):
            w.active = False
            w.ended_reason = EndedReason.FINISHED
            w.ended_at = now
            out.ended_watches.append(w.pk)
    return out


def _flapping(s: Session, job: Job, now: float) -> Flapping | None:
    """The note owed when the change just recorded makes the job flapping (FLAP_CHANGES of its changes worth a
    reply within FLAP_WINDOW, counted in its history: a vendor word that means nothing new owes no reply, so
    it is no flap either), which it marks; else None."""
    q = select(col(StateChange.at), col(StateChange.phase), col(StateChange.vendor_status)).where(
        col(StateChange.job_pk) == job.pk)
    rows = list(s.execute(q.where(col(StateChange.at) > now - FLAP_WINDOW)
                          .order_by(col(StateChange.at), col(StateChange.id))).all())
    before = s.execute(q.where(col(StateChange.at) <= now - FLAP_WINDOW)
                       .order_by(col(StateChange.at).desc(), col(StateChange.id).desc()).limit(1)).first()
    seen = ([before] if before is not None else []) + rows  # each change is told against the state before it
    worthy = [b for a, b in zip(seen, seen[1:], strict=False)
              if worth_a_reply(a.phase, a.vendor_status, b.phase, b.vendor_status)]
    changes = flap_changes([r.at for r in worthy], now)
    if changes is None:
        return None
    job.flapping_since = now
    return Flapping(job.view(), flap_states([(r.phase, r.vendor_status) for r in rows]), changes,
                    now - worthy[-changes].at, SETTLE_AFTER)


def flap_changes(times: Sequence[float], now: float) -> int | None:
    """How many of the changes at `times` (oldest first, the newest being now's) fall within FLAP_WINDOW of
    `now`, when they are FLAP_CHANGES or more: the job flaps; None when it does not."""
    n = sum(1 for t in times if now - FLAP_WINDOW < t <= now)
    return n if n >= FLAP_CHANGES else None


def flap_states(states: Sequence[tuple[Phase, str]]) -> tuple[str, ...]:
    """The states a flapping job flips between, in the order first seen: its phases, or its vendor's words
    when it flips between words of one phase."""
    phases = list(dict.fromkeys(p.value for p, _ in states))
    if len(phases) > 1:
        return tuple(phases)
    return tuple(dict.fromkeys(w for _, w in states if w)) or tuple(phases)


def _steps(old_phase: Phase, st: JobStatus, now: float) -> tuple[tuple[Phase, float | None], ...]:
    """What a job went through while the bot was away, as far as the vendor's times tell: a job that was
    queued and has ended ran from its "Started" time (when the vendor gives it); the state it is in now began
    at the vendor's time for it ("Ended", or "Started" for a run), else when the bot saw it."""
    started, ended = vendor_time(st, "Started", now), vendor_time(st, "Ended", now)
    steps: list[tuple[Phase, float | None]] = []
    if old_phase is Phase.QUEUED and st.phase.terminal and started is not None:
        steps.append((Phase.RUNNING, started))
    at = ended if st.phase.terminal else started if st.phase is Phase.RUNNING else None
    steps.append((st.phase, at or now))
    return tuple(steps)


def apply_error(s: Session, job_pk: int, err: BackendError, now: float, next_poll_at: float) -> None:
    """Record a failed poll (the outage note, if it comes to that, is `note_outages`' business)."""
    job = s.get(Job, job_pk)
    if job is None:
        return
    job.errors += 1
    job.error_kind = err.kind
    job.error_text = str(err)[:500]
    if job.error_since is None:
        job.error_since = now
    job.next_poll_at = next_poll_at


def note_outages(s: Session, now: float, outage_after: float, owner: str | None = None) -> int:
    """One note per watch for each job whose polls have failed for `outage_after` seconds (once per outage);
    a replica (`owner`) notes its own jobs'."""
    q = select(Job).where(
        col(Job.polling) == True, col(Job.errors) > 0, col(Job.outage_noted) == False,  # noqa: E712
        col(Job.error_since) <= now - outage_after,
    )
    jobs = s.execute(
        q if owner is None else q.where(col(Job.owner) == owner).with_for_update()
    ).scalars().all()
    owed = 0
    for job in jobs:
        job.outage_noted = True
        event = Outage(job.view(), job.error_since or now, job.error_kind)
        for w in watches_of(s, job.pk):
            owed += owe(s, w, event, now)
    return owed


def note_late_runs(s: Session, now: float, owner: str | None = None) -> int:
    """One note per watch for each run past the 90th percentile of its past runs (once per run: the flag is
    written with the notes); a replica (`owner`) notes its own jobs'."""
    q = select(Job).where(
        col(Job.polling) == True, col(Job.late_noted) == False,  # noqa: E712
        col(Job.late_after_s).is_not(None), col(Job.started_at).is_not(None),
        col(Job.started_at) + col(Job.late_after_s) < now,
    )
    jobs = s.execute(
        q if owner is None else q.where(col(Job.owner) == owner).with_for_update()
    ).scalars().all()
    owed = 0
    for job in jobs:
        job.late_noted = True
        if job.phase not in UNDER_WAY:
            continue  # queued again (or unknown): not a run under way, so not a late one
        view = job.view()
        for w in watches_of(s, job.pk):
            owed += owe(s, w, Late(view, w.watcher, now - (job.started_at or now), job.late_after_s or 0.0),
                        now)
    return owed


def expire_watches(s: Session, now: float, owner: str | None = None) -> int:
    """End every watch of jobs past their watch timeout (a replica's, `owner`: of its own jobs)."""
    q = select(Job).where(col(Job.polling) == True, col(Job.timeout_at).is_not(None),  # noqa: E712
                          col(Job.timeout_at) <= now)
    jobs = s.execute(
        q if owner is None else q.where(col(Job.owner) == owner).with_for_update()
    ).scalars().all()
    owed = 0
    for job in jobs:
        event = TimedOut(job.view(), max((job.timeout_at or 0) - (job.created_at or 0), 0) / 3600)
        for w in watches_of(s, job.pk):
            end_watch(s, w, EndedReason.TIMED_OUT, now, event)
            owed += 2
        job.polling = False
    return owed
