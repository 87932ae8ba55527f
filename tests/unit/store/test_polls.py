"""Poll results as the store writes them: what a change of the vendor's word owes the threads watching it."""

from __future__ import annotations

from bot import store
from bot.domain.jobs import Changed, OutboxKind, event_of
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.store import PollResult, Store
from tests.conftest import FakeClock


async def _watched(db: Store, clock: FakeClock, st: JobStatus) -> int:
    """A job watched in two channels, with nothing owed yet (the parents are sent)."""
    _, job, _ = await db.run(store.create_watch, "fake", st, "C1", "U1", now=clock(), interval=30,
                             watch_timeout=3600, first_reply=None)
    await db.run(store.create_watch, "fake", st, "C2", "U2", now=clock(), interval=30, watch_timeout=3600,
                 first_reply=None)
    for m in await db.run(store.pending, clock() + 3600):
        await db.run(store.sent, m.id, f"1.{m.id:06d}")
    return job.pk


async def _apply(db: Store, clock: FakeClock, pk: int, st: JobStatus) -> list[tuple[OutboxKind, str]]:
    clock.advance(30)
    await db.run(store.apply_results, [PollResult(pk, st, clock(), clock() + 30)])
    return [(m.kind, m.channel) for m in await db.run(store.pending, clock() + 3600)]


async def test_a_word_that_means_nothing_new_redraws_the_parents_and_owes_no_reply(
        db: Store, clock: FakeClock) -> None:
    pk = await _watched(db, clock, JobStatus("1", Phase.RUNNING, "RUNNING", progress=50))
    owed = await _apply(db, clock, pk, JobStatus("1", Phase.RUNNING, "IN_PROGRESS", progress=0))
    assert owed == [(OutboxKind.UPDATE, "C1"), (OutboxKind.UPDATE, "C2")]
    job = await db.run(store.find_job, "fake", "1")
    # what the parents show
    assert job is not None and (job.vendor_status, job.progress) == ("IN_PROGRESS", 0)
    history = await db.run(lambda s: s.query(store.StateChange).filter_by(job_pk=pk).count())
    assert history == 2  # still on record


async def test_a_word_that_carries_meaning_is_told_in_every_thread_when_it_comes_and_goes(
        db: Store, clock: FakeClock) -> None:
    pk = await _watched(db, clock, JobStatus("1", Phase.QUEUED, "WAIT"))
    owed = await _apply(db, clock, pk, JobStatus("1", Phase.QUEUED, "BLOCKED"))
    assert sorted(owed) == sorted([(OutboxKind.EVENT, "C1"), (OutboxKind.EVENT, "C2"),
                                   (OutboxKind.UPDATE, "C1"), (OutboxKind.UPDATE, "C2")])
    events = [event_of(m.payload) for m in await db.run(store.pending, clock() + 3600)
              if m.kind is OutboxKind.EVENT]
    assert ({(e.job.vendor_status, e.old_word) for e in events if isinstance(e, Changed)}
            == {("BLOCKED", "WAIT")})
    for m in await db.run(store.pending, clock() + 3600):
        await db.run(store.sent, m.id, None)
    owed = await _apply(db, clock, pk, JobStatus("1", Phase.QUEUED, "READY"))
    assert sorted(owed).count((OutboxKind.EVENT, "C1")) == 1  # the block is lifted: said too
