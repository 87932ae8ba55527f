"""The poller against a Backend double and a temp SQLite store: what each answer writes and owes, outages,
recovery, the end of a job, timeouts, and answers that are garbage."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from bot import store
from bot.domain.errors import Unavailable
from bot.domain.jobs import JobEvent, OutboxKind, event_of
from bot.domain.states import Phase
from bot.domain.status import FailureDetails, JobStatus
from bot.engine.poller import Poller
from bot.store import Store
from tests.conftest import FakeClock
from tests.unit.doubles import BackendDouble, backends, settings, until

YEAR = 365 * 86400.0


@dataclass
class Rig:
    db: Store
    backend: BackendDouble
    poller: Poller
    clock: FakeClock
    kicks: list[None]

    async def watch(self, job_id: str, channel: str = "C1", watch_timeout: float = YEAR) -> int:
        st = self.backend.jobs.setdefault(job_id, JobStatus(job_id, Phase.RUNNING, "RUNNING"))
        assert isinstance(st, JobStatus)
        _w, job, _ = await self.db.run(store.create_watch, "fake", st, channel, "U1", now=self.clock(),
                                       interval=30, watch_timeout=watch_timeout, first_reply=None)
        await self.db.run(lambda s: s.execute(text("DELETE FROM outbox")))  # the parents are Slack's business
        await self.poller.track(job.pk)
        return job.pk

    async def poll(self) -> None:
        """Ten minutes on (past any backoff): one tick, and its polls answered."""
        asked = len(self.backend.asked)
        self.clock.advance(600)
        await self.poller.tick()
        await until(lambda: len(self.backend.asked) > asked, "a poll")

    async def owed(self) -> list[tuple[OutboxKind, dict[str, Any]]]:
        return [(r.kind, r.payload) for r in await self.db.run(store.pending, self.clock() + YEAR)]

    async def events(self) -> list[JobEvent]:
        return [event_of(p) for k, p in await self.owed() if k is OutboxKind.EVENT]


@pytest.fixture
async def rig(db: Store, clock: FakeClock) -> AsyncIterator[Rig]:
    backend = BackendDouble()
    kicks: list[None] = []
    poller = Poller(db, backends(backend), lambda: kicks.append(None), settings(outage_note_after=60), clock)
    yield Rig(db, backend, poller, clock, kicks)
    await poller.stop(asyncio.get_running_loop().time() + 5.0)


async def test_an_unchanged_answer_owes_nothing_and_a_change_owes_one_event_per_watch(rig: Rig) -> None:
    pk = await rig.watch("1", "C1")
    await rig.watch("1", "C2")  # a second channel, the same job
    await rig.poll()
    await rig.poll()
    assert rig.backend.asked == ["1", "1"] and await rig.owed() == [] and rig.kicks == []

    rig.backend.jobs["1"] = JobStatus("1", Phase.FAILED, "FAILED", message="ORA-01555")
    await rig.poll()
    assert rig.backend.asked == ["1", "1", "1"]  # once a cycle, however many channels watch it
    await until(lambda: rig.kicks, "the notifier to be woken")
    kinds = [k for k, _ in await rig.owed()]
    assert kinds.count(OutboxKind.UPDATE) == 2 and kinds.count(OutboxKind.EVENT) == 2
    assert ({(e.tag, e.job.phase, e.job.message) for e in await rig.events()}
            == {("changed", Phase.FAILED, "ORA-01555")})
    assert rig.poller.scheduled == 0  # ended: no longer polled
    watches = await rig.db.run(store.watches_of, pk, active=None)
    assert {(w.active, w.ended_reason) for w in watches} == {(False, "finished")}


async def test_failure_details_and_the_log_are_owed_to_every_watch_of_a_job_that_ended(rig: Rig) -> None:
    await rig.watch("1")

    async def details(st: JobStatus) -> FailureDetails:
        # the vendor's name for its log: a path, a mention, a misleading extension; the thread never shows it
        return FailureDetails(lines=("ERROR one",), attachment=("../<!here> payroll.pdf.exe", b"ERROR one\n"))

    rig.backend.failure_details = details  # type: ignore[method-assign]
    rig.backend.jobs["1"] = JobStatus("1", Phase.FAILED, "FAILED")
    await rig.poll()

    async def all_owed() -> bool:
        return len(await rig.owed()) == 4

    await until(all_owed, "the change, the update, the details and the log")
    kinds = [k for k, _ in await rig.owed()]
    # the thread replies first, the parent's update after them (bot/store/outbox.py: pending)
    assert kinds == [OutboxKind.EVENT, OutboxKind.REPLY, OutboxKind.FILE, OutboxKind.UPDATE]
    [(_, log)] = [(k, p) for k, p in await rig.owed() if k is OutboxKind.FILE]
    # `<backend>-<job>.log`, the bot's
    assert log == {"filename": "fake-1.log", "content_b64": "RVJST1Igb25lCg=="}


async def test_an_outage_is_noted_once_and_its_end_once(rig: Rig) -> None:
    await rig.watch("1")
    rig.backend.jobs["1"] = Unavailable("fake is having trouble (HTTP 503)")
    for _ in range(4):
        await rig.poll()

    async def noted() -> bool:
        # the note is written by the poller's upkeep, which runs beside a tick: keep ticking (as the running
        # bot does every 0.5 s) until the upkeep after the outage's first write has run
        rig.clock.advance(1)
        await rig.poller.tick()
        return len(await rig.events()) > 0

    await until(noted, "the outage note")
    [outage] = await rig.events()
    assert outage.tag == "outage" and outage.job.error_text == "fake is having trouble (HTTP 503)"

    rig.backend.jobs["1"] = JobStatus("1", Phase.RUNNING, "RUNNING")
    await rig.poll()

    async def recovered() -> bool:
        rig.clock.advance(1)
        await rig.poller.tick()
        return [e.tag for e in await rig.events()] == ["outage", "recovered"]

    await until(recovered, "one note that it answers again")
    await rig.poll()
    assert [e.tag for e in await rig.events()] == ["outage", "recovered"]


async def test_a_watch_past_its_timeout_ends_with_a_note(rig: Rig) -> None:
    pk = await rig.watch("1", watch_timeout=300)
    await rig.poll()  # ten minutes on: past the watch timeout

    async def ended() -> bool:
        return not (await rig.db.run(store.watches_of, pk, active=None))[0].active

    await until(ended, "the watch to end")
    [(kind, payload), (update, _)] = await rig.owed()
    assert (kind, update) == (OutboxKind.EVENT, OutboxKind.UPDATE)
    event = event_of(payload)
    assert event.tag == "timed_out" and event.hours == 300 / 3600  # type: ignore[union-attr]
    [w] = await rig.db.run(store.watches_of, pk, active=None)
    assert w.ended_reason == "timed out"
    await until(lambda: rig.poller.scheduled == 0, "the job to leave the schedule")


async def test_an_adapter_that_raises_anything_stops_neither_the_poller_nor_another_job(rig: Rig) -> None:
    await rig.watch("1")
    await rig.watch("2")
    rig.backend.jobs["1"] = ValueError("a bug in the adapter")
    rig.backend.jobs["2"] = JobStatus("2", Phase.SUCCEEDED, "SUCCEEDED")
    await rig.poll()
    await until(lambda: rig.poller.scheduled == 1, "job 2 to end, job 1 to stay scheduled")
    assert [(e.job.job_id, e.job.phase) for e in await rig.events()] == [("2", Phase.SUCCEEDED)]
    rig.backend.jobs["1"] = JobStatus("1", Phase.SUCCEEDED, "SUCCEEDED")
    await rig.poll()
    await until(lambda: rig.poller.scheduled == 0, "job 1 to end too")


async def test_an_answer_about_another_id_is_kept_under_the_watched_one(rig: Rig) -> None:
    await rig.watch("0042")
    rig.backend.jobs["0042"] = JobStatus("42", Phase.CANCELLED, "CANCELLED")  # the adapter normalised the id

    async def changed() -> bool:
        return len(await rig.events()) == 1

    await rig.poll()
    await until(changed, "the change")
    [event] = await rig.events()
    assert (event.job.job_id, event.job.phase) == ("0042", Phase.CANCELLED)


def test_the_poller_does_not_import_the_notifier() -> None:
    code = "import sys, bot.engine.poller; print('bot.engine.notifier' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


async def test_a_scheduled_poll_waits_behind_users_for_a_slot_and_a_refresh_does_not(rig: Rig) -> None:
    marks: list[bool] = []
    answer = rig.backend.status

    async def status(job_id: str) -> JobStatus:  # the double notes how each request was marked
        marks.append(rig.backend.limit.priority.is_scheduled())
        return await answer(job_id)

    rig.backend.status = status  # type: ignore[method-assign]
    pk = await rig.watch("1")
    await rig.poll()
    await rig.poller.poll_now(pk)  # Refresh
    assert marks == [True, False]
