"""Run history (bot/domain/durations.py says what a run, its key and its duration are): each finished run's
duration kept per backend and name, a running job's usual figures taken when it starts, and the one
"longer than usual" note per run (bot/store/polls.py: `note_late_runs`)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.domain import durations
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.store.models import Job, RunDuration


def past_runs(s: Session, backend: str, name: str) -> list[float]:
    """The durations of the newest KEEP_RUNS finished runs of `name` on `backend`."""
    q = (select(col(RunDuration.seconds))
         .where(col(RunDuration.backend) == backend, col(RunDuration.name) == name)
         .order_by(col(RunDuration.ended_at).desc()).limit(durations.KEEP_RUNS))
    return list(s.execute(q).scalars())


def record_run(s: Session, backend: str, name: str, seconds: float, ended_at: float) -> None:
    """Keep one finished run's duration, and only the newest KEEP_RUNS of its key."""
    s.add(RunDuration(backend=backend, name=name, seconds=seconds, ended_at=ended_at))
    s.flush()
    keep = (select(col(RunDuration.id))
            .where(col(RunDuration.backend) == backend, col(RunDuration.name) == name)
            .order_by(col(RunDuration.ended_at).desc(), col(RunDuration.id).desc())
            .limit(durations.KEEP_RUNS))
    s.execute(delete(RunDuration).where(col(RunDuration.backend) == backend, col(RunDuration.name) == name,
                                        col(RunDuration.id).not_in(keep.scalar_subquery())))


def track_run(s: Session, job: Job, old_phase: Phase, st: JobStatus, now: float) -> None:
    """Follow a run through a status answer about to be taken into `job` (seen at `now`): when it starts,
    its start and its past runs' figures; when it ends well, its duration into the history. A job that runs
    again after it ended (a rerun under the same id) is a new run."""
    if old_phase.terminal and not st.phase.terminal:
        job.started_at, job.usual_s, job.usual_runs, job.late_after_s, job.late_noted = (
            None, None, 0, None, False
        )
    key = durations.run_key(st) or (job.name and job.name.strip()[:200]) or None
    started = job.started_at or durations.vendor_time(st, "Started", now)  # None: the bot never saw it run
    if job.started_at is None and st.phase in durations.UNDER_WAY:
        job.started_at = started or now
        figures = durations.usual(past_runs(s, job.backend, key)) if key else None
        if figures is not None:
            job.usual_s, job.usual_runs, job.late_after_s = (
                figures.median_s, figures.runs, figures.late_after_s
            )
    if (st.phase in durations.RECORDED and not old_phase.terminal and old_phase is not Phase.UNKNOWN
            and key and started):
        ended = durations.vendor_time(st, "Ended", now) or now
        if ended >= started:
            record_run(s, job.backend, key, ended - started, ended)
