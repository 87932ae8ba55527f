"""The outbox's recovery paths (bot/store/outbox.py): a parent Slack lost, one channel's or one watch's
messages, parents first when more are due than one read takes, and a row that vanished between the read and
the call (sent or dropped by another path meanwhile)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from bot import store
from bot.domain.jobs import OutboxKind, Reply
from bot.store import Store
from bot.store.models import Outbox, Watch
from tests.conftest import FakeClock
from tests.unit.store.test_outbox import _threaded, _watch


def _rows(s: Session, watch_id: int) -> list[tuple[OutboxKind, str, float]]:
    rows = s.execute(select(Outbox).where(col(Outbox.watch_id) == watch_id)
                     .order_by(col(Outbox.id))).scalars()
    return [(r.kind, r.payload, r.next_attempt_at) for r in rows]


def _parent_ts(s: Session, watch_id: int) -> str | None:
    w = s.get(Watch, watch_id)
    assert w is not None
    return w.parent_ts


async def test_a_lost_parent_is_owed_anew_once_its_updates_dropped_its_thread_messages_kept(
        db: Store, clock: FakeClock) -> None:
    w = await _threaded(db, clock, "1")
    other = await _threaded(db, clock, "2")
    for watch in (w, other):
        await db.run(store.owe, watch, OutboxKind.UPDATE, clock())
        await db.run(store.owe, watch, Reply("kept", []), clock())
    clock.advance(5)
    await db.run(store.forget_parent, w.pk, clock())
    await db.run(store.forget_parent, w.pk, clock())  # told twice: still one parent owed
    assert await db.run(_parent_ts, w.pk) is None
    assert await db.run(_rows, w.pk) == [
        (OutboxKind.REPLY, '{"text":"kept","blocks":[],"broadcast":false}', clock() - 5),
        (OutboxKind.PARENT, "{}", clock())]
    # untouched
    assert [k for k, _, _ in await db.run(_rows, other.pk)] == [OutboxKind.UPDATE, OutboxKind.REPLY]
    assert await db.run(_parent_ts, other.pk) == "1.000002"
    await db.run(store.forget_parent, 999_999, clock())  # a watch gone meanwhile: nothing to do, no error


async def test_pending_reads_one_channels_or_one_watchs_messages_only(db: Store, clock: FakeClock) -> None:
    a, b, c = (await _threaded(db, clock, "1", "C1"), await _threaded(db, clock, "2", "C2"),
               await _threaded(db, clock, "3", "C2"))
    for w in (a, b, c):
        await db.run(store.owe, w, Reply(f"to {w.pk}", []), clock())
    assert {(m.channel, m.watch_id) for m in await db.run(store.pending, clock(), 100, None, None, "C2")} == {
        ("C2", b.pk), ("C2", c.pk)}
    assert [m.watch_id for m in await db.run(store.pending, clock(), 100, None, None, "C1")] == [a.pk]
    assert await db.run(store.pending, clock(), 100, None, None, "C9") == []
    assert [m.watch_id for m in await db.run(store.pending, clock(), 100, c.pk, None, "C2")] == [c.pk]
    assert await db.run(store.pending, clock(), 100, a.pk, None, "C2") == []  # both filters hold
    [m] = await db.run(store.pending, clock(), 100, a.pk)
    assert (m.channel, m.parent_ts, m.attempts, m.created_at) == ("C1", "1.000001", 0, clock())


async def test_when_more_are_due_than_the_limit_parents_are_read_first_and_updates_last(
        db: Store, clock: FakeClock) -> None:
    old = [await _threaded(db, clock, str(i)) for i in range(3)]
    for w in old:
        await db.run(store.owe, w, OutboxKind.UPDATE, clock())  # the oldest rows
    for w in old:
        await db.run(store.owe, w, Reply(f"reply {w.pk}", []), clock())
    new = await _watch(db, clock, "9")  # its parent is the newest row
    assert [m.kind for m in await db.run(store.pending, clock(), 1)] == [OutboxKind.PARENT]
    two = await db.run(store.pending, clock(), 2)
    assert [(m.kind, m.watch_id) for m in two] == [(OutboxKind.PARENT, new.pk), (OutboxKind.REPLY, old[0].pk)]
    four = await db.run(store.pending, clock(), 4)
    assert [m.kind for m in four] == [OutboxKind.PARENT] + [OutboxKind.REPLY] * 3
    assert len(await db.run(store.pending, clock(), 5)) == 5
    # chat.update has no budget
    no_updates = await db.run(store.pending, clock(), 100, None, None, None, False)
    assert [m.kind for m in no_updates] == [OutboxKind.PARENT] + [OutboxKind.REPLY] * 3


async def test_nothing_is_due_before_its_time(db: Store, clock: FakeClock) -> None:
    w = await _threaded(db, clock, "1")
    await db.run(store.owe, w, Reply("later", []), clock() + 10)
    assert await db.run(store.pending, clock()) == []
    clock.advance(10)
    assert [m.payload["text"] for m in await db.run(store.pending, clock())] == ["later"]


async def test_a_message_waits_only_for_its_own_watchs_earlier_messages(db: Store, clock: FakeClock) -> None:
    """Another watch's message in retry backoff, owed earlier, holds nothing of this one's (whichever watch
    was made first)."""
    a, b, c = (await _threaded(db, clock, "1"), await _threaded(db, clock, "2"),
               await _threaded(db, clock, "3"))
    await db.run(store.owe, b, Reply("b waits", []), clock())
    [waiting] = await db.run(store.pending, clock())
    await db.run(store.retry_later, waiting.id, clock() + 60)
    for w in (a, c):
        await db.run(store.owe, w, Reply(f"to {w.pk}", []), clock())
    assert [m.payload["text"] for m in await db.run(store.pending, clock())] == [f"to {a.pk}", f"to {c.pk}"]


async def test_an_update_waiting_for_its_retry_holds_none_of_its_watchs_replies(
        db: Store, clock: FakeClock) -> None:
    w = await _threaded(db, clock, "1")
    await db.run(store.owe, w, OutboxKind.UPDATE, clock())
    [update] = await db.run(store.pending, clock())
    await db.run(store.claim, update.id)
    await db.run(store.retry_later, update.id, clock() + 60)
    await db.run(store.owe, w, Reply("goes now", []), clock())
    assert [m.payload.get("text") for m in await db.run(store.pending, clock())] == ["goes now"]


async def test_a_row_that_vanished_meanwhile_is_no_error_and_changes_nothing(
        db: Store, clock: FakeClock) -> None:
    w = await _threaded(db, clock, "1")
    await db.run(store.owe, w, Reply("one", []), clock())
    [m] = await db.run(store.pending, clock())
    await db.run(store.sent, m.id)  # another path sent it
    assert await db.run(store.claim, m.id) is None
    assert await db.run(store.peek, m.id) is None
    await db.run(store.sent, m.id, "9.999999")  # its parent ts is not taken from a row that is gone
    await db.run(store.retry_later, m.id, clock() + 60)
    await db.run(store.release, m.id)
    await db.run(store.replace_owed, m.id, Reply("instead", []), clock())
    assert await db.run(_rows, w.pk) == []
    assert await db.run(_parent_ts, w.pk) == "1.000001"


async def test_a_claim_counts_an_attempt_and_a_release_gives_it_back_never_below_none(
        db: Store, clock: FakeClock) -> None:
    w = await _threaded(db, clock, "1")
    await db.run(store.owe, w, Reply("one", []), clock())
    [m] = await db.run(store.pending, clock())
    first = await db.run(store.claim, m.id)
    second = await db.run(store.claim, m.id)
    assert first is not None and second is not None and (first.attempts, second.attempts) == (0, 1)
    peeked = await db.run(store.peek, m.id)
    assert peeked is not None and peeked.attempts == 2
    for _ in range(3):
        await db.run(store.release, m.id)
    peeked = await db.run(store.peek, m.id)
    assert peeked is not None and peeked.attempts == 0
    await db.run(store.retry_later, m.id, clock() + 30)
    assert await db.run(store.pending, clock()) == []
    clock.advance(30)
    assert [x.id for x in await db.run(store.pending, clock())] == [m.id]


async def test_an_update_in_retry_backoff_stands_for_later_ones_and_a_refused_file_becomes_a_note(
        db: Store, clock: FakeClock) -> None:
    w = await _threaded(db, clock, "1")
    assert await db.run(store.owe, w, OutboxKind.UPDATE, clock()) is True
    [u] = await db.run(store.pending, clock())
    await db.run(store.claim, u.id)
    # tried, waits for its retry: it will render the newest
    await db.run(store.retry_later, u.id, clock() + 30)
    assert await db.run(store.owe, w, OutboxKind.UPDATE, clock()) is False
    clock.advance(30)
    assert await db.run(store.owe, w, OutboxKind.UPDATE, clock()) is True  # due and claimed: may be in flight
    await db.run(store.owe, w, Reply("a file", []), clock())
    rows = await db.run(_rows, w.pk)
    file_id = max(x.id for x in await db.run(store.pending, clock()) if x.kind is OutboxKind.REPLY)
    await db.run(store.replace_owed, file_id, Reply("no file: see the log", []), clock() + 1)
    after = await db.run(_rows, w.pk)
    assert after[:-1] == rows[:-1] and after[-1] == (OutboxKind.REPLY,
                                                     '{"text":"no file: see the '
                                                     'log","blocks":[],"broadcast":false}',
                                                     clock() + 1)


async def test_owing_many_skips_a_watch_gone_meanwhile(db: Store, clock: FakeClock) -> None:
    a, b = await _threaded(db, clock, "1"), await _threaded(db, clock, "2")

    def owe_both(s: Session) -> None:
        store.owe_many(s, [a.pk, 999_999, b.pk], [Reply("details", []), OutboxKind.UPDATE], clock())
    await db.run(owe_both)
    for w in (a, b):
        assert [k for k, _, _ in await db.run(_rows, w.pk)] == [OutboxKind.REPLY, OutboxKind.UPDATE]
