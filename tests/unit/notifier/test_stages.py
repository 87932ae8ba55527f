"""Each stage of the notifier's pipeline on its own (bot/notifier/): order, lease, pace and budget, claim,
outcome, the token halt, a Slack outage's log lines, and the listeners' subscription. The pipeline as a whole
is tests/unit/test_notifier.py's, and end to end tests/e2e/test_slack.py's and test_outbox.py's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from bot import store
from bot.domain.jobs import OutboxKind, Reply
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.engine.notifier import Notifier, WhoSends
from bot.engine.notifier.claim import Claim
from bot.engine.notifier.halt import TokenHalt
from bot.engine.notifier.lease import ChannelLeases
from bot.engine.notifier.order import PRIORITY, ChannelTurns, Turns
from bot.engine.notifier.outage import Outage
from bot.engine.notifier.outcome import GONE, UNKNOWN_TRIES, Result, outcome_of, retry_delay
from bot.engine.notifier.pace import Pace, UpdateRoom
from bot.metrics import Metrics
from bot.slack.budget import Budget, Priority
from bot.slack.errors import Outcome
from bot.slack.sender import SlackError, SlackUnreachable
from bot.store import OwedMessage, Store
from tests.conftest import FakeClock
from tests.unit.doubles import BackendDouble, SlackDouble, backends


def owed(kind: OutboxKind = OutboxKind.REPLY, attempts: int = 0,
         parent_ts: str | None = "1.0") -> OwedMessage:
    return OwedMessage(id=7, watch_id=3, kind=kind, payload={}, created_at=0.0, attempts=attempts,
                       channel="C1", parent_ts=parent_ts)


# -- order -------------------------------------------------------------------------------------------------
def test_every_kind_of_message_has_its_priority_and_a_state_change_comes_first() -> None:
    assert set(PRIORITY) == set(OutboxKind)
    assert min(PRIORITY, key=lambda k: PRIORITY[k]) is OutboxKind.EVENT
    assert PRIORITY[OutboxKind.PARENT] < PRIORITY[OutboxKind.REPLY] < PRIORITY[OutboxKind.UPDATE]


async def test_a_channels_next_turn_goes_to_the_lowest_priority_waiting_then_first_come() -> None:
    turns, order = Turns(), []

    async def send(name: str, priority: Priority) -> None:
        async with turns.turn(priority):
            order.append(name)

    async with turns.turn(Priority.PARENT):  # busy: the others queue
        tasks = [asyncio.create_task(send(n, p)) for n, p in
                 [("update", Priority.UPDATE), ("detail", Priority.DETAIL), ("change", Priority.CHANGE),
                  ("detail 2", Priority.DETAIL)]]
        await asyncio.sleep(0)
        assert turns.taken
    await asyncio.gather(*tasks)
    assert order == ["change", "detail", "detail 2", "update"] and not turns.taken


def test_a_channel_never_sent_to_is_not_taken() -> None:
    channels = ChannelTurns()
    assert not channels.taken("C1")
    assert channels.of("C1") is channels.of("C1") and channels.of("C1") is not channels.of("C2")


# -- lease -------------------------------------------------------------------------------------------------
class Held:
    """The database's answer to `leases.hold_channels`: the channels this replica holds now."""

    def __init__(self, *held: str) -> None:
        self.held = set(held)
        self.asked: list[tuple[str, float, list[str]]] = []

    async def run(self, fn: Callable[..., Any], replica: str, seconds: float,
                  channels: list[str]) -> set[str]:
        self.asked.append((replica, seconds, channels))
        return self.held & set(channels)


async def test_alone_every_channel_is_this_processs_and_the_database_is_never_asked() -> None:
    db = Held()
    leases = ChannelLeases(db, None, 15.0, taken_over=lambda c: pytest.fail(f"taken over {c}"))  # type: ignore[arg-type]
    await leases.renew(["C1"])
    assert leases.mine("C1") and db.asked == []


async def test_a_replica_sends_only_where_it_holds_the_lease_and_empties_a_channel_it_takes_over() -> None:
    db, taken = Held("C1"), list[str]()
    leases = ChannelLeases(db, "r1", 15.0, taken_over=taken.append)  # type: ignore[arg-type]
    await leases.renew(["C1", "C2"])
    assert leases.mine("C1") and not leases.mine("C2") and taken == ["C1"]
    assert db.asked == [("r1", 15.0, ["C1", "C2"])]
    await leases.renew(["C1"])  # renewed, not taken over again
    assert taken == ["C1"]
    db.held = set()  # another replica took it
    await leases.renew(["C1"])
    assert not leases.mine("C1")


# -- pace and budget ---------------------------------------------------------------------------------------
def test_a_429_cools_the_channel_for_its_retry_after_then_one_post_goes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 1.0)
    now = [100.0]
    monkeypatch.setattr("bot.engine.notifier.pace.time.monotonic", lambda: now[0])
    pace = Pace()
    assert not pace.cooling("C1") and pace.ready_in("C1") == 0.0
    pace.cool("C1", 5.0)
    assert pace.cooling("C1") and not pace.cooling("C2")
    now[0] = 105.0
    assert not pace.cooling("C1") and pace.ready_in("C1") == 0.0  # one post, then the sustained pace
    assert pace.bucket("C1").take(now[0]) == 0.0 and pace.ready_in("C1") == 1.0


def test_a_channel_taken_over_waits_a_whole_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 1.0)
    monkeypatch.setattr("bot.engine.notifier.pace.time.monotonic", lambda: 50.0)
    pace = Pace()
    pace.empty("C1")
    assert pace.ready_in("C1") == 1.0 and pace.ready_in("C2") == 0.0


async def test_an_update_goes_only_when_chat_updates_budget_has_room_now() -> None:
    class Full(Budget):
        def ready_in(self, method: str) -> float:
            return 3.0 if method == "chat.update" else 0.0

    assert UpdateRoom(Budget()).now()
    room = UpdateRoom(Full())
    assert not room.now()
    async with room.taken() as now:
        assert now is False


# -- claim -------------------------------------------------------------------------------------------------
async def test_a_reply_is_not_due_before_its_parent_and_a_row_gone_is_gone(
        db: Store, clock: FakeClock) -> None:
    w, _, _ = await db.run(store.create_watch, "fake", JobStatus("1", Phase.RUNNING, "RUNNING"), "C1", "U1",
                           now=clock(), interval=30, watch_timeout=60, first_reply=None)
    await db.run(store.owe_many, [w.pk], [Reply("hi", [])], clock())
    parent, reply = await db.run(store.pending, clock() + 10, 10, w.pk)
    claim = Claim(db)
    assert await claim.due(reply.id) is None  # its parent is not posted yet
    row = await claim.due(parent.id)
    assert isinstance(row, OwedMessage) and row.kind is OutboxKind.PARENT and row.attempts == 0
    claimed = await claim(parent.id)
    assert isinstance(claimed, OwedMessage) and claimed.attempts == 0  # the tries before this one...
    again = await claim.due(parent.id)
    # ...and this one, committed before the send
    assert isinstance(again, OwedMessage) and again.attempts == 1
    await db.run(store.sent, parent.id, "1.5")
    assert await claim.due(parent.id) is GONE and await claim(parent.id) is GONE


# -- outcome -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "method", "code", "outcome"), [
    (OutboxKind.REPLY, "chat.postMessage", "ratelimited", Outcome.RETRY),
    (OutboxKind.REPLY, "chat.postMessage", "token_revoked", Outcome.STOP_SENDING),
    (OutboxKind.REPLY, "chat.postMessage", "channel_not_found", Outcome.END_WATCH),
    # a parent Slack never takes
    (OutboxKind.PARENT, "chat.postMessage", "invalid_blocks", Outcome.END_WATCH),
    (OutboxKind.REPLY, "chat.postMessage", "invalid_blocks", Outcome.DROP),
])
def test_slacks_answer_comes_to_its_tables_outcome(kind: OutboxKind, method: str, code: str,
                                                   outcome: Outcome) -> None:
    assert outcome_of(owed(kind), SlackError(method, code)).outcome is outcome


def test_an_unknown_error_is_retried_then_costs_only_its_message() -> None:
    assert outcome_of(owed(), SlackError("chat.postMessage", "brand_new")).outcome is Outcome.RETRY
    last = UNKNOWN_TRIES - 1
    assert outcome_of(owed(attempts=last), SlackError("chat.postMessage", "brand_new")) == Result(
        Outcome.DROP, "chat.postMessage: brand_new", unknown=True, method="chat.postMessage")
    assert outcome_of(owed(OutboxKind.FILE, last), ValueError()).outcome is Outcome.NO_UPLOAD
    assert outcome_of(owed(OutboxKind.PARENT, last), ValueError()).outcome is Outcome.END_WATCH
    assert (outcome_of(owed(), SlackUnreachable("refused"))
            == Result(Outcome.RETRY, "refused", unreachable=True))


def test_a_retry_waits_slacks_retry_after_else_a_doubling_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.engine.notifier.outcome.random.random", lambda: 0.5)  # no jitter
    assert retry_delay(owed(), Result(Outcome.RETRY, retry_after=7.0)) == 7.0
    assert ([retry_delay(owed(attempts=n), Result(Outcome.RETRY)) for n in (0, 1, 2, 20)]
            == [1.0, 2.0, 4.0, 300.0])


# -- the token halt ----------------------------------------------------------------------------------------
async def test_a_halt_is_said_once_probed_on_a_backoff_and_lifted_by_a_passing_auth_test(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    monkeypatch.setattr("bot.engine.notifier.halt.time.monotonic", lambda: now[0])
    slack, resumed = SlackDouble(), []
    halt = TokenHalt(slack, FakeClock(), resumed=lambda: resumed.append(True))
    with caplog.at_level(logging.INFO, logger="bot.engine.notifier"):
        halt.halt("token_revoked")
        halt.halt("token_revoked")  # a second message meeting it: no second line
    assert halt.why is not None and halt.why.error == "token_revoked"
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    slack.token_refused = True
    await halt.probe()
    assert slack.auth_tests == 0  # not due before PROBE_FIRST
    now[0] = 5.0
    await halt.probe()
    assert slack.auth_tests == 1 and halt.why is not None
    now[0] = 9.0
    await halt.probe()
    assert slack.auth_tests == 1  # the next one is 10 s after the failed one
    slack.token_refused = False
    now[0] = 15.0
    await halt.probe()
    assert halt.why is None and resumed == [True]


# -- a Slack outage ----------------------------------------------------------------------------------------
def test_an_outage_is_one_line_when_it_starts_and_one_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    metrics = Metrics(clock)
    outage = Outage(clock, metrics, 300.0)
    with caplog.at_level(logging.WARNING, logger="bot.engine.notifier"):
        outage.answered()  # no outage: nothing to say
        outage.met(1, "connection refused")
        outage.met(2, "connection refused")
        outage.met(1, "connection refused")
        clock.now += 42
        outage.answered()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and said[0].startswith("connection refused: messages stay owed")
    assert said[1] == "Slack is reachable again after 42 s; 2 messages waited for it and are being sent"
    assert metrics.registry.get_sample_value("jobstatus_slack_unreachable_total") == 1.0
    assert metrics.registry.get_sample_value("jobstatus_slack_unreachable_messages_total") == 2.0


# -- listeners ---------------------------------------------------------------------------------------------
async def test_a_listener_hears_each_message_slack_takes_until_it_unsubscribes(
        db: Store, clock: FakeClock) -> None:
    notifier = Notifier(db, SlackDouble(), backends(BackendDouble()), clock)
    heard: list[int] = []
    unsubscribe = notifier.subscribe(heard.append)
    w1, _, _ = await db.run(store.create_watch, "fake", JobStatus("1", Phase.RUNNING, "RUNNING"), "C1", "U1",
                            now=clock(), interval=30, watch_timeout=60, first_reply=None)
    assert await notifier.deliver_watch(w1.pk, WhoSends.CREATED) is None
    assert heard == [w1.pk] and notifier.sent_count == 1
    unsubscribe()
    w2, _, _ = await db.run(store.create_watch, "fake", JobStatus("2", Phase.RUNNING, "RUNNING"), "C1", "U1",
                            now=clock(), interval=30, watch_timeout=60, first_reply=None)
    assert await notifier.deliver_watch(w2.pk, WhoSends.CREATED) is None
    assert heard == [w1.pk] and notifier.sent_count == 2
