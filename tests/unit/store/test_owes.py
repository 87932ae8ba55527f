"""A write says what it owes once committed (`store.Owes`: messages for the notifier, a job for the poller),
and bot/operations/watching.py's `settle` alone applies it."""

from __future__ import annotations

from bot import store
from bot.domain.jobs import Reply
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.store import Owes, Store
from tests.conftest import FakeClock

NOTE = Reply("note", [])


async def test_each_write_says_what_it_owes(db: Store, clock: FakeClock) -> None:
    running = JobStatus("1", Phase.RUNNING, "RUNNING")
    w, job, _ = await db.run(store.create_watch, "fake", running, "C1", "U1", now=clock(), interval=30,
                             watch_timeout=600, first_reply=None)
    assert (await db.run(store.note_cancel, "fake", "1", NOTE, clock())
            == (1, Owes(messages=True, track=job.pk)))
    assert await db.run(store.note_cancel, "fake", "nope", NOTE, clock()) == (0, Owes())
    assert await db.run(store.stop_watch, w.pk, clock(), NOTE) == Owes(messages=True, track=job.pk)
    assert await db.run(store.stop_watch, w.pk, clock(), NOTE) is None  # stopped already: nothing owed
    # no watch to tell
    assert await db.run(store.note_cancel, "fake", "1", NOTE, clock()) == (0, Owes(track=job.pk))
    assert await db.run(store.rewatch, w.pk, running, clock(), 600, NOTE) == Owes(messages=True, track=job.pk)
    assert await db.run(store.rewatch, w.pk, running, clock(), 600, NOTE) == Owes()  # active already
    ended = JobStatus("1", Phase.SUCCEEDED, "SUCCEEDED")
    assert await db.run(store.refresh_job, job.pk, ended, clock()) == Owes(messages=True)
    assert await db.run(store.refresh_job, 10**9, ended, clock()) == Owes()
