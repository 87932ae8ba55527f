"""Run history in the store: durations kept per backend and name, a run's usual figures taken when it
starts, one "longer than usual" note per run past the 90th percentile, and "while I was away"."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from bot import store
from bot.domain import durations
from bot.domain.jobs import CaughtUp, Changed, Late, OutboxKind, event_of
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.store import PollResult, Store
from bot.store.models import RunDuration
from bot.store.runs import past_runs
from tests.conftest import FakeClock

NAME = "Nightly load"


async def _watch(db: Store, clock: FakeClock, job_id: str, st: JobStatus,
                 channels: tuple[str, ...] = ("C1",)) -> int:
    pk = 0
    for n, channel in enumerate(channels):
        _, job, _ = await db.run(store.create_watch, "fake", st, channel, f"U{n + 1}", now=clock(),
                                 interval=30, watch_timeout=86400, first_reply=None)
        pk = job.pk
    await _send_all(db, clock)
    return pk


async def _send_all(db: Store, clock: FakeClock) -> list[object]:
    """Mark everything owed as sent; returns the events it held."""
    events = []
    for m in await db.run(store.pending, clock() + 3600):
        if m.kind is OutboxKind.EVENT:
            events.append(event_of(m.payload))
        await db.run(store.sent, m.id, f"1.{m.id:06d}" if m.kind is OutboxKind.PARENT else None)
    return events


async def _answer(db: Store, clock: FakeClock, pk: int, st: JobStatus, away: bool = False) -> list[object]:
    await db.run(store.apply_results, [PollResult(pk, st, clock(), clock() + 30, away=away)])
    return await _send_all(db, clock)


async def _run(db: Store, clock: FakeClock, job_id: str, minutes: float, name: str = NAME) -> None:
    """One run of `name`, seen queued, then running, then succeeded `minutes` later."""
    pk = await _watch(db, clock, job_id, JobStatus(job_id, Phase.QUEUED, "WAIT", name=name))
    clock.advance(30)
    await _answer(db, clock, pk, JobStatus(job_id, Phase.RUNNING, "RUNNING", name=name))
    clock.advance(minutes * 60)
    await _answer(db, clock, pk, JobStatus(job_id, Phase.SUCCEEDED, "SUCCEEDED", name=name))


async def test_a_finished_run_is_kept_under_its_backend_and_name_and_failures_are_not(
        db: Store, clock: FakeClock) -> None:
    await _run(db, clock, "1", 14)
    assert await db.run(past_runs, "fake", NAME) == [14 * 60]
    pk = await _watch(db, clock, "2", JobStatus("2", Phase.RUNNING, "RUNNING", name=NAME))
    clock.advance(60)
    await _answer(db, clock, pk, JobStatus("2", Phase.FAILED, "FAILED", name=NAME))
    assert await db.run(past_runs, "fake", NAME) == [14 * 60]  # a failed run stops early: not history
    assert await db.run(past_runs, "fake", "other") == []


async def test_the_vendors_start_and_end_times_are_the_duration_where_given(
        db: Store, clock: FakeClock) -> None:
    pk = await _watch(db, clock, "1", JobStatus("1", Phase.QUEUED, "WAIT", name=NAME))
    clock.advance(600)
    started = clock() - 300  # the vendor says it started 5 minutes before the bot saw it running
    iso = "%Y-%m-%dT%H:%M:%SZ"
    await _answer(db, clock, pk, JobStatus("1", Phase.RUNNING, "RUNNING", name=NAME,
                                           facts=(("Started", time.strftime(iso, time.gmtime(started))),)))
    clock.advance(900)
    await _answer(db, clock, pk, JobStatus("1", Phase.SUCCEEDED, "SUCCEEDED", name=NAME, facts=(
        ("Started", time.strftime(iso, time.gmtime(started))),
        ("Ended", time.strftime(iso, time.gmtime(clock() - 60))))))
    assert await db.run(past_runs, "fake", NAME) == [300 + 900 - 60]


async def test_history_is_bounded_per_key(db: Store, clock: FakeClock,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(durations, "KEEP_RUNS", 3)
    for n in range(5):
        await _run(db, clock, str(n), 10 + n)
    assert await db.run(past_runs, "fake", NAME) == [14 * 60, 13 * 60, 12 * 60]  # the newest three
    count = await db.run(lambda s: s.execute(select(func.count()).select_from(RunDuration)).scalar())
    assert count == 3


async def test_a_run_past_the_90th_percentile_of_five_runs_is_noted_once_in_every_thread(
        db: Store, clock: FakeClock) -> None:
    for n, minutes in enumerate((10, 12, 14, 16, 18)):
        await _run(db, clock, str(n), minutes)
    pk = await _watch(db, clock, "9", JobStatus("9", Phase.RUNNING, "RUNNING", name=NAME), ("C1", "C2"))
    job = await db.run(store.find_job, "fake", "9")
    assert job is not None and job.usual_runs == 5 and job.usual_s == 14 * 60
    assert job.late_after_s is not None and abs(job.late_after_s - 17.2 * 60) < 1e-6
    clock.advance(17 * 60)
    assert await db.run(store.note_late_runs, clock()) == 0  # within the usual
    clock.advance(60)
    assert await db.run(store.note_late_runs, clock()) == 2
    events = await _send_all(db, clock)
    assert (sorted((e.watcher, round(e.seconds)) for e in events if isinstance(e, Late))
            == [("U1", 1080), ("U2", 1080)])
    clock.advance(600)
    assert await db.run(store.note_late_runs, clock()) == 0  # once per run
    await _answer(db, clock, pk, JobStatus("9", Phase.SUCCEEDED, "SUCCEEDED", name=NAME))
    assert len(await db.run(past_runs, "fake", NAME)) == 6  # the late run is history too


async def test_no_note_without_five_past_runs(db: Store, clock: FakeClock) -> None:
    for n in range(4):
        await _run(db, clock, str(n), 10)
    await _watch(db, clock, "9", JobStatus("9", Phase.RUNNING, "RUNNING", name=NAME))
    job = await db.run(store.find_job, "fake", "9")
    assert job is not None and job.usual_runs == 4 and job.late_after_s is None  # shown, never "late"
    clock.advance(86000)
    assert await db.run(store.note_late_runs, clock()) == 0
    await _watch(db, clock, "10", JobStatus("10", Phase.RUNNING, "RUNNING", name="never ran"))
    job = await db.run(store.find_job, "fake", "10")
    assert job is not None and job.usual_s is None and job.usual_runs == 0


async def test_the_first_change_after_the_bot_was_away_is_one_caught_up_reply(
        db: Store, clock: FakeClock) -> None:
    pk = await _watch(db, clock, "1", JobStatus("1", Phase.RUNNING, "RUNNING"), ("C1", "C2"))
    clock.advance(3600)
    events = await _answer(db, clock, pk, JobStatus("1", Phase.FAILED, "FAILED", message="ORA-1"), away=True)
    assert [type(e) for e in events] == [CaughtUp, CaughtUp]
    first = events[0]
    assert (isinstance(first, CaughtUp) and first.old_phase is Phase.RUNNING
            and first.steps == ((Phase.FAILED, clock()),))
    pk = await _watch(db, clock, "2", JobStatus("2", Phase.RUNNING, "RUNNING"))
    events = await _answer(db, clock, pk, JobStatus("2", Phase.SUCCEEDED, "SUCCEEDED"))
    assert [type(e) for e in events] == [Changed]  # not away: the usual reply


async def test_a_run_the_bot_never_saw_under_way_is_not_history(db: Store, clock: FakeClock) -> None:
    """Queued, then succeeded at the next answer (or a job watched before this release, running with no
    start on record): without the vendor's start time the run's length is unknown, so it is not kept."""
    pk = await _watch(db, clock, "1", JobStatus("1", Phase.QUEUED, "WAIT", name=NAME))
    clock.advance(600)
    await _answer(db, clock, pk, JobStatus("1", Phase.SUCCEEDED, "SUCCEEDED", name=NAME))
    assert await db.run(past_runs, "fake", NAME) == []
