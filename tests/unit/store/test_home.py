"""What the Home tab reads: one person's watches (active first, recently ended after, bounded) and each
backend's poll figures (how many polled, failing, since when, the commonest error)."""

from __future__ import annotations

from bot import store
from bot.domain.errors import AuthFailed, Unavailable
from bot.domain.jobs import Reply
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.store import PollResult, Store
from tests.conftest import FakeClock

NOTE = Reply("stopped", [])


async def _watch(db: Store, clock: FakeClock, backend: str, job_id: str, channel: str, user: str) -> int:
    watch, _job, _ = await db.run(store.create_watch, backend, JobStatus(job_id, Phase.RUNNING, "RUNNING"),
                                  channel,
                                  user, now=clock(), interval=30, watch_timeout=3600, first_reply=None)
    return watch.pk


async def test_a_users_watches_active_first_then_recently_ended_bounded_with_the_rest_counted(
        db: Store, clock: FakeClock) -> None:
    old = await _watch(db, clock, "epm", "1", "C1", "U1")
    await db.run(store.stop_watch, old, clock(), NOTE)
    clock.advance(2 * store.home.RECENT)  # ended long ago: no longer on the tab
    ended = await _watch(db, clock, "epm", "2", "C1", "U1")
    await db.run(store.stop_watch, ended, clock(), NOTE)
    active = [await _watch(db, clock, "fusion", str(i), f"C{i % 2}", "U1") for i in range(3)]
    await _watch(db, clock, "fusion", "9", "C1", "U2")  # someone else's
    rows, more = await db.run(store.user_watches, "U1", clock(), 10)
    assert [w.pk for w, _ in rows] == [*reversed(active), ended] and more == 0
    assert all(w.user_id == "U1" for w, _ in rows) and rows[-1][0].active is False
    rows, more = await db.run(store.user_watches, "U1", clock(), 2)
    assert len(rows) == 2 and more == 2
    assert await db.run(store.watch_user, ended) == "U1" and await db.run(store.watch_user, 999) is None


async def test_poll_figures_count_polled_and_failing_jobs_with_the_oldest_failure_and_commonest_error(
        db: Store, clock: FakeClock) -> None:
    for i in range(3):
        await _watch(db, clock, "fusion", str(i), "C1", "U1")
    await _watch(db, clock, "epm", "7", "C1", "U1")
    jobs = {j.job_id: j.pk for j in [await db.run(store.find_job, "fusion", str(i)) for i in range(3)] if j}
    start = clock()
    await db.run(store.apply_results, [PollResult(jobs["0"], Unavailable("down"), start, start + 30)])
    clock.advance(10)
    await db.run(store.apply_results, [PollResult(jobs["1"], Unavailable("down"), clock(), clock() + 30),
                                       PollResult(jobs["2"], AuthFailed("no"), clock(), clock() + 30)])
    figures = await db.run(store.poll_figures)
    assert figures["fusion"] == store.PollFigures(polled=3, failing=3, failing_since=start,
                                                  error_kind="unavailable")
    assert figures["epm"] == store.PollFigures(polled=1, failing=0, failing_since=None, error_kind=None)
