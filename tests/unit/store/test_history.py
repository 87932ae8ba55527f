"""Pruning old history: state changes, ended watches and unwatched jobs older than the retention go, in
batches; an active watch, a watch that owes Slack anything, and the job of either stay. And the poller's
upkeep does it."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bot import store
from bot.domain.jobs import EndedReason, OutboxKind
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.engine.poller import Poller
from bot.store import Job, Pruned, StateChange, Store, Watch
from tests.conftest import FakeClock
from tests.unit.doubles import BackendDouble, backends, settings

DAY = 86400.0
RETENTION = 90 * DAY


def running(job_id: str) -> JobStatus:
    return JobStatus(job_id, Phase.RUNNING, "RUNNING")


def watch(s: Session, job_id: str, channel: str, at: float) -> Watch:
    """A watch made at `at`, its parent sent (nothing owed)."""
    w, _job, _ = store.create_watch(s, "fake", running(job_id), channel, "U1", now=at, interval=30,
                                    watch_timeout=DAY, first_reply=None)
    s.execute(text("DELETE FROM outbox WHERE watch_id = :w"), {"w": w.pk})
    w.parent_ts = f"{at:.6f}"
    return w


def end(s: Session, w: Watch, at: float) -> None:
    store.end_watch(s, w, EndedReason.STOPPED, at)
    s.execute(text("DELETE FROM outbox WHERE watch_id = :w"), {"w": w.pk})


def ids(s: Session, table: Any) -> list[int]:
    return sorted(s.execute(select(table.id)).scalars())


async def prune_all(db: Store, before: float) -> Pruned:
    total = Pruned()
    while batch := await db.run(store.prune_history, before):
        total += batch
    return total


async def test_old_history_goes_and_what_is_active_or_owed_stays(db: Store, clock: FakeClock) -> None:
    now = clock()
    old, recent = now - 100 * DAY, now - 10 * DAY

    def seed(s: Session) -> dict[str, int]:
        active = watch(s, "1", "C1", old)  # watched for 100 days and counting
        gone = watch(s, "2", "C1", old)
        end(s, gone, old + 60)
        owing = watch(s, "3", "C1", old)
        end(s, owing, old + 60)
        store.owe(s, owing, OutboxKind.UPDATE, now)  # Slack has not taken its last update yet
        shared_old = watch(s, "4", "C1", old)
        end(s, shared_old, old + 60)
        shared_new = watch(s, "4", "C2", recent)
        end(s, shared_new, recent + 60)
        lately = watch(s, "5", "C1", recent)
        end(s, lately, recent + 60)
        s.flush()
        return {"active": active.pk, "gone": gone.pk, "owing": owing.pk, "shared_old": shared_old.pk,
                "shared_new": shared_new.pk, "lately": lately.pk}

    w = await db.run(seed)
    jobs = {j.job_id: j.pk for j in await db.run(lambda s: list(s.execute(select(Job)).scalars()))}
    pruned = await prune_all(db, now - RETENTION)

    assert pruned == Pruned(state_changes=4, watches=2, jobs=1)  # the 100-day-old ones of jobs 1-4
    assert await db.run(ids, Watch) == sorted([w["active"], w["owing"], w["shared_new"], w["lately"]])
    # job 2 had only `gone`
    assert await db.run(ids, Job) == sorted([jobs["1"], jobs["3"], jobs["4"], jobs["5"]])
    history = await db.run(lambda s: s.execute(select(StateChange.job_pk, StateChange.at)).all())
    assert sorted(history) == [(jobs["5"], recent)]
    [owed] = await db.run(store.pending, now)
    assert owed.watch_id == w["owing"] and owed.kind is OutboxKind.UPDATE
    assert await prune_all(db, now - RETENTION) == Pruned()  # nothing left: no more work next time


async def test_a_job_someone_asked_to_cancel_lately_stays_without_a_watch(
        db: Store, clock: FakeClock) -> None:
    now = clock()

    def seed(s: Session) -> None:
        end(s, watch(s, "7", "C1", now - 100 * DAY), now - 100 * DAY)
        s.flush()
        job = store.find_job(s, "fake", "7")
        assert job is not None
        job.cancel_requested_by, job.cancel_requested_at = "U9", now - DAY

    await db.run(seed)
    assert await prune_all(db, now - RETENTION) == Pruned(state_changes=1, watches=1)
    assert await db.run(store.find_job, "fake", "7") is not None


async def test_pruning_goes_a_batch_at_a_time(db: Store, clock: FakeClock) -> None:
    now = clock()

    def seed(s: Session) -> None:
        job = store.create_watch(s, "fake", running("1"), "C1", "U1", now=now, interval=30, watch_timeout=DAY,
                                 first_reply=None)[1]
        s.add_all(StateChange(job_pk=job.pk, at=now - 100 * DAY + n, phase=Phase.RUNNING,
                              vendor_status="RUNNING")
                  for n in range(1_200))

    await db.run(seed)
    batches = []
    while batch := await db.run(store.prune_history, now - RETENTION):
        batches.append(batch)
    assert batches == [Pruned(state_changes=500), Pruned(state_changes=500), Pruned(state_changes=200)]
    count = await db.run(lambda s: s.execute(select(func.count()).select_from(StateChange)).scalar_one())
    assert count == 1  # the watch's first state, from now


async def test_the_upkeep_prunes_at_its_pace_and_comes_back_soon_for_what_is_left(
        db: Store, clock: FakeClock) -> None:
    now = clock()
    poller = Poller(db, backends(BackendDouble()), lambda: None, settings(history_retention="30d"), clock)

    def seed(s: Session) -> None:
        job = store.create_watch(s, "fake", running("1"), "C1", "U1", now=now, interval=30, watch_timeout=DAY,
                                 first_reply=None)[1]
        s.add_all(StateChange(job_pk=job.pk, at=now - 40 * DAY, phase=Phase.RUNNING, vendor_status="RUNNING")
                  for _ in range(1_100))

    async def history() -> int:
        return int(await db.run(
            lambda s: s.execute(select(func.count()).select_from(StateChange)).scalar_one()))

    await db.run(seed)
    try:
        assert await poller.prune(now, batches=2) is False  # 1,000 of 1,100: more is left
        assert await history() == 101
        await poller._sweep(now)  # the upkeep: it runs what is left at once ...
        assert await history() == 1
        await db.run(seed)
        clock.advance(60)
        await poller._sweep(clock())  # ... and then waits prune_every before looking again
        assert await history() == 1_101
        clock.advance(poller.prune_every)
        await poller._sweep(clock())
        assert await history() == 1
    finally:
        await poller.stop(asyncio.get_running_loop().time() + 5.0)


def test_history_retention_is_90_days_unless_configured() -> None:
    assert settings().history_retention == RETENTION
    assert settings(history_retention="7d").history_retention == 7 * DAY
