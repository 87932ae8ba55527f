"""The outbox queries: one waiting update per watch, a watch's parent before everything else it owes, state
changes before details and updates, and a watch's own messages in their order."""

from __future__ import annotations

from typing import Any

from bot import store
from bot.domain.jobs import Changed, JobView, OutboxKind, Reply
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.store import Store
from tests.conftest import FakeClock


async def _watch(db: Store, clock: FakeClock, job_id: str = "1", channel: str = "C1") -> store.Watch:
    w, _, _ = await db.run(store.create_watch, "fake", JobStatus(job_id, Phase.RUNNING, "RUNNING"), channel,
                           "U1", now=clock(), interval=30, watch_timeout=60, first_reply=None)
    return w


async def _threaded(db: Store, clock: FakeClock, job_id: str, channel: str = "C1") -> store.Watch:
    """A watch whose parent is posted: what it owes next goes into its thread."""
    w = await _watch(db, clock, job_id, channel)
    [parent] = await db.run(store.pending, clock(), 100, w.pk)
    await db.run(store.sent, parent.id, f"1.00000{job_id}")
    return w


def _changed(job_id: str, clock: FakeClock) -> Changed:
    view = JobView("fake", job_id, None, Phase.SUCCEEDED, "SUCCEEDED", None, None, (), (), clock())
    return Changed(view, "U1", Phase.RUNNING, "RUNNING")


def _said(m: store.OwedMessage) -> str:
    if m.kind is OutboxKind.EVENT:
        return f"changed {m.payload['job']['job_id']}"
    return str(m.payload.get("text", m.kind.value))


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


async def test_a_burst_is_owed_state_changes_first_then_details_then_updates(
        db: Store, clock: FakeClock) -> None:
    ws = [await _threaded(db, clock, str(i)) for i in range(3)]

    def burst(s: Any) -> None:  # as the poller owes it: a change and an update per watch, the details after
        for i, w in enumerate(ws):
            store.owe(s, w, _changed(str(i), clock), clock())
            store.owe(s, w, OutboxKind.UPDATE, clock())
        for i, w in enumerate(ws):
            store.owe(s, w, Reply(f"details {i}", []), clock())
            if i == 0:
                store.owe(s, w, _changed("0", clock), clock())  # a later change of watch 0: after its details
    await db.run(burst)
    assert [_said(m) for m in await db.run(store.pending, clock())] == [
        "changed 0", "changed 1", "changed 2", "details 0", "changed 0", "details 1", "details 2",
        "update", "update", "update"]
    assert [_said(m) for m in await db.run(store.pending, clock(), 100, None, None, "C1")][:3] == [
        "changed 0", "changed 1", "changed 2"]


async def test_a_message_waits_while_an_earlier_one_of_its_watch_waits_for_a_retry(
        db: Store, clock: FakeClock) -> None:
    w1, w2 = await _threaded(db, clock, "1"), await _threaded(db, clock, "2", "C2")
    for w in (w1, w2):
        await db.run(store.owe, w, Reply(f"first {w.pk}", []), clock())
        await db.run(store.owe, w, Reply(f"second {w.pk}", []), clock())
        await db.run(store.owe, w, OutboxKind.UPDATE, clock())
    first = next(m for m in await db.run(store.pending, clock(), 100, w1.pk) if m.payload.get("text"))
    await db.run(store.retry_later, first.id, clock() + 60)
    owed = await db.run(store.pending, clock())
    assert [(m.channel, _said(m)) for m in owed] == [
        ("C2", f"first {w2.pk}"), ("C2", f"second {w2.pk}"), ("C1", "update"), ("C2", "update")]
    clock.advance(60)
    assert [_said(m) for m in await db.run(store.pending, clock(), 100, w1.pk)] == [
        f"first {w1.pk}", f"second {w1.pk}", "update"]


async def test_a_channels_state_changes_go_before_its_new_parents(db: Store, clock: FakeClock) -> None:
    """Issue 20, item 4: 40 new watches' parents owed in a channel do not hold a state change of a watch whose
    parent is posted; a new watch's own change still follows its parent."""
    old = await _threaded(db, clock, "1")
    new = [await _watch(db, clock, str(i)) for i in range(10, 14)]
    # its parent is not posted yet
    await db.run(lambda s: store.owe(s, new[0], _changed("10", clock), clock()))
    await db.run(lambda s: store.owe(s, old, _changed("1", clock), clock()))
    owed = await db.run(store.pending, clock())
    assert [(m.kind, m.watch_id) for m in owed] == [
        (OutboxKind.EVENT, old.pk), *[(OutboxKind.PARENT, w.pk) for w in new], (OutboxKind.EVENT, new[0].pk)]


async def test_updates_are_left_unread_while_chat_update_has_no_room(db: Store, clock: FakeClock) -> None:
    w = await _threaded(db, clock, "1")
    await db.run(store.owe, w, OutboxKind.UPDATE, clock())
    await db.run(lambda s: store.owe(s, w, _changed("1", clock), clock()))
    assert [m.kind for m in await db.run(store.pending, clock())] == [OutboxKind.EVENT, OutboxKind.UPDATE]
    assert ([m.kind for m in await db.run(store.pending, clock(), 100, None, None, None, False)]
            == [OutboxKind.EVENT])
