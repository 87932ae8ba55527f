"""The outbox queries: one waiting update per watch, and a watch's parent before everything else it owes."""

from __future__ import annotations

from bot import store
from bot.backends.base import JobStatus
from bot.backends.states import Phase
from bot.jobs import OutboxKind, Reply
from bot.store import Store
from tests.conftest import FakeClock


async def _watch(db: Store, clock: FakeClock) -> store.Watch:
    w, _, _ = await db.run(store.create_watch, "fake", JobStatus("1", Phase.RUNNING, "RUNNING"), "C1", "U1",
                           now=clock(), interval=30, watch_timeout=60, first_reply=None)
    return w


async def test_an_update_waiting_to_be_sent_stands_for_later_ones(db: Store, clock: FakeClock) -> None:
    w = await _watch(db, clock)
    assert await db.run(store.owe, w, OutboxKind.UPDATE, clock()) is True
    assert await db.run(store.owe, w, OutboxKind.UPDATE, clock()) is False  # it will render the newest state
    [update] = [m for m in await db.run(store.pending, clock()) if m.kind is OutboxKind.UPDATE]
    await db.run(store.claim, update.id)  # being sent now: it renders what was true before this change
    assert await db.run(store.owe, w, OutboxKind.UPDATE, clock()) is True


async def test_a_watch_owes_its_parent_before_what_was_owed_ahead_of_it(db: Store, clock: FakeClock) -> None:
    w = await _watch(db, clock)
    [parent] = await db.run(store.pending, clock())
    await db.run(store.sent, parent.id, "1.000001")
    await db.run(store.owe, w, Reply("owed first", []), clock())
    await db.run(store.forget_parent, w.pk, clock())  # Slack lost the parent: a new one is owed
    assert [m.kind for m in await db.run(store.pending, clock())] == [OutboxKind.PARENT, OutboxKind.REPLY]


async def test_thread_replies_go_before_parent_updates_waiting(db: Store, clock: FakeClock) -> None:
    w = await _watch(db, clock)
    [parent] = await db.run(store.pending, clock())
    await db.run(store.sent, parent.id, "1.000001")
    await db.run(store.owe, w, OutboxKind.UPDATE, clock())
    await db.run(store.owe, w, Reply("running", []), clock())
    await db.run(store.owe, w, OutboxKind.UPDATE, clock())  # collapses into the one waiting
    await db.run(store.owe, w, Reply("succeeded", []), clock())
    owed = await db.run(store.pending, clock())
    assert [(m.kind, m.payload.get("text")) for m in owed] == [
        (OutboxKind.REPLY, "running"), (OutboxKind.REPLY, "succeeded"), (OutboxKind.UPDATE, None)]
