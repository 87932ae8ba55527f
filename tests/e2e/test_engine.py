"""The poll engine: an answer that changes nothing writes nothing, the schedule survives a restart,
long-quiet jobs back off, and overdue jobs are spread after downtime."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from sqlalchemy import event

from bot.engine.poller import FLUSH_EVERY
from bot.offline.slack import SlackUser
from bot.offline.vendors.core import Step
from bot.store import Tracked
from tests.conftest import SIGNING_SECRET, Harness, start_runtime


def statements(h: Harness) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(h.runtime.db.engine, "before_cursor_execute", record)
    return seen


@pytest.fixture(autouse=True)
def _fast_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Slack's per-channel pacing is not tested here
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 0.05)


async def test_unchanged_answers_write_nothing_but_batched_next_poll_times(harness: Harness) -> None:
    h = harness
    for n in range(20):
        h.sim.fusion.add_job(3000 + n, steps=[Step(0, "RUNNING")])
        await h.watch(f"watch fusion-demo {3000 + n}", channel=("C0001", "C0002")[n % 2])
    await asyncio.sleep(0)  # let the last command's writes settle before counting
    seen = statements(h)
    polls = h.runtime.poller.polls
    await h.slack.wait_for(lambda: h.runtime.poller.polls >= polls + 200, timeout=30, poll=0.05)
    job_writes = [s for s in seen if s.lstrip().upper().startswith("UPDATE JOBS")]
    inserts = [s for s in seen if s.lstrip().upper().startswith("INSERT")]
    assert inserts == []  # no history, no outbox: nothing changed
    # at most one batched UPDATE (an executemany) per flush period, not one per poll
    assert len(job_writes) <= 2 + (30 / FLUSH_EVERY), len(job_writes)
    h.sim.fusion.set_state(3000, "SUCCEEDED")
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.replies("C0001", 0)))


async def test_the_schedule_is_saved_on_stop_and_loaded_on_start(harness: Harness) -> None:
    h = harness
    h.sim.planning.add_job(88, steps=[Step(0, -1)])
    await h.watch("watch planning-demo 88")
    await h.slack.wait_for(lambda: h.sim.planning.count("GET", "/jobs/88") >= 4, poll=0.05)
    [job] = h.runtime.poller._jobs.values()
    await h.restart()
    assert h.runtime.poller.scheduled == 1
    [again] = h.runtime.poller._jobs.values()
    assert (again.pk, again.job_id, again.phase) == (job.pk, job.job_id, job.phase)
    h.sim.planning.set_state(88, 1)
    await h.slack.wait_for(lambda: any("failed" in r.text for r in h.replies()))


@pytest.mark.backends(**{"fusion-demo": {"poll_interval": 30, "max_poll_interval": 600}})
async def test_a_quiet_job_backs_off_up_to_the_configured_maximum(harness: Harness) -> None:
    p = harness.runtime.poller
    now = 1_000_000.0

    def job(quiet_for: float) -> Tracked:
        return Tracked(1, "fusion-demo", "1", "running", "RUNNING", None, None, 0, None, now - quiet_for, now)

    assert p.interval("fusion-demo", job(0), now) == 30
    assert p.interval("fusion-demo", job(300), now) == 30  # a few intervals in: unchanged
    assert p.interval("fusion-demo", job(3000), now) == 300
    assert p.interval("fusion-demo", job(86_400), now) == 600  # capped
    assert p.interval("epm-demo", job(86_400), now) == 0.2  # no maximum configured: no back-off


async def test_overdue_jobs_are_spread_over_their_interval_after_downtime(harness: Harness) -> None:
    h = harness
    for n in range(30):
        h.sim.immuta.add_job(f"5b7ead00-0000-4000-8000-{n:012x}", steps=[Step(0, "active")])
        await h.watch(
            f"watch immuta-demo 5b7ead00-0000-4000-8000-{n:012x}", channel=("C0001", "C0002")[n % 2]
        )
    await h.runtime.db.run(_all_overdue)
    await h.restart()
    dues = sorted(j.due for j in h.runtime.poller._jobs.values())
    assert len(dues) == 30 and dues[-1] - dues[0] > 0.02  # not all at one instant


def _all_overdue(s: Any) -> None:
    from sqlalchemy import update

    from bot.store import Job

    s.execute(update(Job).values(next_poll_at=0.0))


@pytest.mark.backends(**{"fusion-demo": {"http2": True}})
async def test_the_http2_transport_choice_works_too(harness: Harness) -> None:
    h = harness
    assert not type(h.runtime.backends["fusion-demo"].http._transport).__name__.startswith("Aiohttp")
    assert type(h.runtime.backends["epm-demo"].http._transport).__name__ == "AiohttpTransport"
    h.sim.fusion.add_job(4321, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 4321")
    h.sim.fusion.set_state(4321, "SUCCEEDED")
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.replies()))


async def test_what_start_up_built_is_out_of_the_collectors_walks_while_the_bot_runs(
    harness: Harness,
) -> None:
    """bot/app.py `start` freezes what start-up built (gc.freeze): the full collections the poll path's
    short-lived objects set off walk only what came since. `stop` gives it back, so a process that starts
    another Runtime (as here) leaks nothing of the first; and a watch is polled and told as ever meanwhile."""
    h = harness
    assert gc.get_freeze_count() > 0
    h.sim.fusion.add_job(3900, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 3900")
    h.sim.fusion.set_state(3900, "SUCCEEDED")
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.replies()))
    await h.runtime.stop()
    assert gc.get_freeze_count() == 0
    h.runtime = await start_runtime(h.settings, h.env)  # the harness stops this one
    h.user = SlackUser(h.runtime.events_url, SIGNING_SECRET, h.slack)
    assert gc.get_freeze_count() > 0
