"""Flapping (issue 20, item 6) as the store decides it: the window arithmetic, and what each poll result of a
job that flips owes its threads: replies, then one "flapping" note, then parents only, then one "settled"
note."""

from __future__ import annotations

from bot import store
from bot.domain.jobs import Changed, Flapping, JobEvent, JobView, OutboxKind, Settled, event_of
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.rendering import messages
from bot.store import PollResult, Store
from bot.store.polls import FLAP_CHANGES, FLAP_WINDOW, SETTLE_AFTER, flap_changes, flap_states
from tests.conftest import FakeClock

RUNNING = JobStatus("1", Phase.RUNNING, "RUNNING")
WAITING = JobStatus("1", Phase.QUEUED, "WAIT")


def test_the_thresholds_hang_together() -> None:
    assert FLAP_CHANGES > 3  # queued, running, paused, running again: a real run is never taken for a flap
    assert SETTLE_AFTER >= FLAP_WINDOW  # the changes that made it flap have left the window once it settles


def test_changes_count_only_within_the_window_ending_now() -> None:
    now = 10_000.0
    inside = [now - FLAP_WINDOW + 1 + i for i in range(FLAP_CHANGES - 1)] + [now]
    assert flap_changes(inside, now) == FLAP_CHANGES
    assert flap_changes(inside[1:], now) is None  # one fewer: not flapping
    old = [now - FLAP_WINDOW - 5, now - FLAP_WINDOW]  # at or past the window's start: not counted
    assert flap_changes(old + inside[2:], now) is None
    assert flap_changes(old + inside, now) == FLAP_CHANGES


def test_the_states_are_the_phases_or_the_vendors_words_in_the_order_first_seen() -> None:
    flips = [(Phase.RUNNING, "RUNNING"), (Phase.QUEUED, "WAIT"), (Phase.RUNNING, "RUNNING"),
             (Phase.QUEUED, "WAIT")]
    assert flap_states(flips) == ("running", "queued")
    assert (flap_states([(Phase.QUEUED, "WAIT"), (Phase.QUEUED, "BLOCKED"), (Phase.QUEUED, "WAIT")])
            == ("WAIT", "BLOCKED"))


def test_the_notes_say_between_what_how_often_and_never_mention_anyone() -> None:
    job = JobView.of_status("fusion", JobStatus("1", Phase.RUNNING, "<@U1>"), 0.0)
    said = messages.flapping(job, ("running", "<!channel>"), 6, 120, SETTLE_AFTER).text
    assert "Flapping between running and &lt;!channel&gt;: 6 changes in 2 min" in said
    assert "<@" not in said and "<!" not in said
    settled = messages.settled(job, 300).text
    assert "Settled: running (&lt;@U1&gt;) for 5 min" in settled and "<@" not in settled


async def _watched(db: Store, clock: FakeClock) -> int:
    _, job, _ = await db.run(store.create_watch, "fake", RUNNING, "C1", "U1", now=clock(), interval=1,
                             watch_timeout=3600, first_reply=None)
    await _sent(db, clock)
    return job.pk


async def _sent(db: Store, clock: FakeClock) -> list[JobEvent | OutboxKind]:
    """What is owed now (events as events, the rest as their kind), marked sent."""
    out: list[JobEvent | OutboxKind] = []
    for m in await db.run(store.pending, clock() + 3600):
        out.append(event_of(m.payload) if m.kind is OutboxKind.EVENT else m.kind)
        await db.run(store.sent, m.id, f"1.{m.id:06d}")
    return out


async def _poll(db: Store, clock: FakeClock, pk: int, st: JobStatus,
                after: float = 1.0) -> list[store.Applied]:
    clock.advance(after)
    return await db.run(store.apply_results, [PollResult(pk, st, clock(), clock() + 1)])


async def test_a_job_that_flips_at_every_poll_gets_a_few_replies_one_note_then_parent_updates_then_settled(
        db: Store, clock: FakeClock) -> None:
    pk = await _watched(db, clock)
    said: list[JobEvent | OutboxKind] = []
    flags = []
    for i in range(47):  # 47 flips, a second apart
        [applied] = await _poll(db, clock, pk, WAITING if i % 2 == 0 else RUNNING)
        flags.append(applied.flapping_since)
        said += await _sent(db, clock)
    events = [e for e in said if not isinstance(e, OutboxKind)]
    changes = [e for e in events if isinstance(e, Changed)]
    [note] = [e for e in events if isinstance(e, Flapping)]
    assert len(changes) == FLAP_CHANGES - 1  # the changes before it flapped, each told
    assert (note.changes, note.states) == (FLAP_CHANGES, ("running", "queued"))  # in the order first seen
    assert said.count(OutboxKind.UPDATE) == 47  # the parent follows every change
    assert flags[FLAP_CHANGES - 2] is None and flags[FLAP_CHANGES - 1] is not None and flags[-1] is not None

    # it holds one state: nothing until SETTLE_AFTER, then one note, with the state it settled in
    await _poll(db, clock, pk, WAITING, after=SETTLE_AFTER - 10)
    assert [e for e in await _sent(db, clock) if not isinstance(e, OutboxKind)] == []
    [applied] = await _poll(db, clock, pk, WAITING, after=10)
    [settled] = await _sent(db, clock)
    assert (isinstance(settled, Settled) and settled.job.phase is Phase.QUEUED
            and settled.held_s >= SETTLE_AFTER)
    assert applied.flapping_since is None
    [applied] = await _poll(db, clock, pk, WAITING)
    assert await _sent(db, clock) == []  # once

    # settled, a change is told again
    await _poll(db, clock, pk, RUNNING)
    assert [type(e) for e in await _sent(db, clock)] == [Changed, OutboxKind]


async def test_an_end_while_flapping_gets_its_reply(db: Store, clock: FakeClock) -> None:
    pk = await _watched(db, clock)
    for i in range(FLAP_CHANGES + 2):
        await _poll(db, clock, pk, WAITING if i % 2 == 0 else RUNNING)
    await _sent(db, clock)
    [applied] = await _poll(db, clock, pk, JobStatus("1", Phase.FAILED, "ERROR", message="disk full"))
    events = [e for e in await _sent(db, clock) if not isinstance(e, OutboxKind)]
    assert [(type(e), e.job.phase) for e in events] == [(Changed, Phase.FAILED)]
    assert applied.terminal and applied.flapping_since is None


async def test_the_flag_is_on_record_so_a_restart_goes_on_where_it_was(db: Store, clock: FakeClock) -> None:
    pk = await _watched(db, clock)
    for i in range(FLAP_CHANGES):
        await _poll(db, clock, pk, WAITING if i % 2 == 0 else RUNNING)
    [tracked] = await db.run(store.polling_jobs)
    assert tracked.flapping_since == clock()  # what a new process (or another replica) reads
    assert not tracked.settling(clock()) and tracked.settling(clock() + SETTLE_AFTER)


async def test_a_vendor_word_that_means_nothing_new_owes_no_reply_so_its_flips_are_no_flapping(
        db: Store, clock: FakeClock) -> None:
    pk = await _watched(db, clock)
    said: list[JobEvent | OutboxKind] = []
    for i in range(3 * FLAP_CHANGES):  # Fusion's RUNNING and IN_PROGRESS are both "running"
        [applied] = await _poll(db, clock, pk,
                                JobStatus("1", Phase.RUNNING, "IN_PROGRESS" if i % 2 == 0 else "RUNNING"))
        assert applied.flapping_since is None
        said += await _sent(db, clock)
    assert set(said) == {OutboxKind.UPDATE}  # the parent follows; no reply, no note
    # and a real flip after them is told as one change, not counted with them
    await _poll(db, clock, pk, WAITING)
    assert [type(e) for e in await _sent(db, clock)] == [Changed, OutboxKind]
