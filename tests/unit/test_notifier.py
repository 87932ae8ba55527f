"""The notifier against a SlackSender double and a temp SQLite store: order per watch, pacing per channel,
each outcome of Slack's error table applied, events rendered from their snapshot, release rows delivered."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

import bot.engine.notifier
from bot import store
from bot.domain.jobs import Changed, JobView, OutboxKind, Reply, Upload
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.engine.notifier import UNKNOWN_TRIES, Notifier, WhoSends
from bot.store import PollResult, Store, Watch
from tests.conftest import FakeClock
from tests.unit.doubles import BackendDouble, SlackDouble, backends, texts


@dataclass
class Bot:
    db: Store
    slack: SlackDouble
    notifier: Notifier
    clock: FakeClock

    async def until(self, cond: Callable[[], Any] | Callable[[], Awaitable[Any]], what: str,
                    timeout: float = 30.0) -> None:  # noqa: ASYNC109  (a hang guard: generous on a busy machine)
        """Wait for a condition with a deadline, kicking the notifier meanwhile (retries fall due at once)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            got = cond()
            if asyncio.iscoroutine(got):
                got = await got
            if got:
                return
            assert loop.time() < deadline, f"timed out waiting for {what}; sent: {self.slack.sent}"
            self.notifier.kick()
            await asyncio.sleep(0.01)

    async def watch(self, job_id: str, channel: str = "C1") -> Watch:
        st = JobStatus(job_id, Phase.RUNNING, "RUNNING", name=f"job {job_id}")
        w, _job, _ = await self.db.run(store.create_watch, "fake", st, channel, "U1", now=self.clock(),
                                       interval=30, watch_timeout=3600, first_reply=None)
        return w

    async def owe(self, watch: Watch, *items: store.Owed) -> None:
        await self.db.run(store.owe_many, [watch.pk], items, self.clock())

    async def owed(self, watch_id: int | None = None) -> list[store.OwedMessage]:
        return await self.db.run(store.pending, self.clock() + 10**9, 1000, watch_id)

    async def get(self, watch: Watch) -> Watch:
        pair = await self.db.run(store.watch_and_job, watch.pk)
        assert pair is not None
        return pair[0]

    def replies(self, channel: str = "C1") -> list[str]:
        return texts(s for s in self.slack.of("chat.postMessage", channel) if s.thread_ts is not None)


@pytest.fixture(autouse=True)
def _no_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 0.0)  # pacing has its own test
    # a retry without Retry-After is due at once
    monkeypatch.setattr("bot.engine.notifier.outcome.BACKOFF_FIRST", 0.0)


@pytest.fixture
async def bot_(db: Store, clock: FakeClock) -> AsyncIterator[Bot]:
    slack = SlackDouble()
    notifier = Notifier(db, slack, backends(BackendDouble()), clock)
    notifier.halt.probe_first = 0.0
    task = asyncio.create_task(notifier.run())
    try:
        yield Bot(db, slack, notifier, clock)
    finally:
        await notifier.stop(asyncio.get_running_loop().time() + 5.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _owe_each(s: Any, items: list[tuple[Watch, store.Owed]], now: float) -> None:
    for w, what in items:
        store.owe(s, w, what, now)


def note(said: str) -> Reply:
    return Reply(said, [{"type": "section", "text": {"type": "mrkdwn", "text": said}}])


async def test_a_watch_gets_its_parent_then_its_replies_in_order_in_its_thread(bot_: Bot) -> None:
    w = await bot_.watch("1")
    view = JobView("fake", "1", None, Phase.FAILED, "FAILED", None, "boom", (), (), bot_.clock())
    await bot_.owe(w, note("one"), note("two"), Changed(view, "U1", Phase.RUNNING, "RUNNING"))
    await bot_.until(lambda: len(bot_.slack.sent) == 4, "the parent and three replies")
    parent, *replies = bot_.slack.sent
    assert parent.thread_ts is None and parent.watch_id == w.pk and "fake job 1: running" == parent.text
    assert [r.thread_ts for r in replies] == [parent.ts] * 3
    assert texts(replies) == ["one", "two", "fake job 1: failed: boom"]
    assert replies[-1].broadcast is True  # a failure is shown in the channel too
    assert (await bot_.get(w)).parent_ts == parent.ts and await bot_.owed() == []


async def test_a_reply_slack_refuses_for_now_holds_back_its_watch_only(
        bot_: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    # the refused reply is due again 5 to 15 s later
    monkeypatch.setattr("bot.engine.notifier.outcome.BACKOFF_FIRST", 10.0)
    w1, w2 = await bot_.watch("1"), await bot_.watch("2")
    await bot_.until(lambda: len(bot_.slack.sent) == 2, "both parents")
    bot_.slack.refuse("chat.postMessage", "internal_error")  # transient, no Retry-After: this message waits
    await bot_.db.run(_owe_each, [(w1, note("w1 first")), (w1, note("w1 second")), (w2, note("w2 first"))],
                      bot_.clock())  # one transaction: one pass of the notifier finds all three
    await bot_.until(lambda: bot_.replies() == ["w2 first"], "the other watch's reply")  # it did not wait
    assert [m.payload["text"] for m in await bot_.owed(w1.pk)] == ["w1 first", "w1 second"]
    bot_.notifier.kick()
    await asyncio.sleep(0.1)  # a pass meanwhile: "w1 second" waits for "w1 first", which is not due yet
    assert bot_.replies() == ["w2 first"]
    bot_.clock.advance(20)
    await bot_.until(lambda: len(bot_.replies()) == 3, "every reply, the refused one again")
    assert bot_.replies() == ["w2 first", "w1 first", "w1 second"]  # its watch's order kept


async def test_posts_in_one_channel_are_paced_after_a_short_burst_and_other_channels_do_not_wait(
        bot_: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 0.2)
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_BURST", 2)
    w1 = await bot_.watch("1", "C1")
    await bot_.owe(w1, note("a"), note("b"), note("c"))
    await bot_.watch("2", "C2")
    await bot_.until(lambda: len(bot_.slack.sent) == 5, "four posts in C1, one in C2")
    c1 = bot_.slack.of("chat.postMessage", "C1")
    # the burst of two is spent by the parent and "a"; "b" and "c" wait for the bucket to refill, one gap each
    # (measured from the parent: a post is timed when its turn is taken, a little before it reaches Slack)
    assert c1[2].at - c1[0].at >= 0.19 and c1[3].at - c1[0].at >= 0.39, [s.at for s in c1]
    [c2] = bot_.slack.of("chat.postMessage", "C2")
    assert c2.at < c1[-1].at  # C2's parent went out while C1 was being paced


def test_a_channels_bucket_allows_a_short_burst_then_one_post_per_gap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 1.0)
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_BURST", 3)
    b = bot.engine.notifier.Bucket(100.0, 3.0)
    assert [b.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]  # the burst
    assert b.ready_in(100.0) == 1.0 and b.ready_in(100.5) == 0.5  # looking takes nothing
    assert b.take(100.0) == 1.0 and b.take(100.0) == 2.0  # taken ahead, one a second: the sustained pace
    assert b.take(110.0) == 0.0 and b.take(110.0) == 0.0  # refilled over the quiet spell...
    assert b.take(200.0) == 0.0 and b.tokens == 2.0  # ...up to the burst, not beyond


async def test_a_429_empties_the_channels_bucket_after_its_wait(
        bot_: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 0.2)
    w = await bot_.watch("1", "C1")
    await bot_.until(lambda: len(bot_.slack.sent) == 1, "the parent")
    bot_.slack.refuse("chat.postMessage", "ratelimited", retry_after=0.3)
    t0 = time.monotonic()
    await bot_.owe(w, note("a"), note("b"))
    await bot_.until(lambda: bot_.slack.refusals["chat.postMessage"] == [], "the 429")
    bot_.clock.advance(1)  # the refused message is due again (its Retry-After, on the store's clock)
    await bot_.until(lambda: bot_.replies() == ["a", "b"], "both replies after Slack's wait")
    a, b = bot_.slack.of("chat.postMessage", "C1")[1:]
    assert a.at - t0 >= 0.29  # nothing to the channel for Slack's Retry-After
    # then one post, and the sustained pace: the bucket (3 before) holds one at the end of the wait, so the
    # second post is a refill (0.2 s) later at the soonest. (Measured from the wait's end, not from the first
    # post: a first post that went late, on a busy machine, leaves the bucket the time to refill meanwhile.)
    assert b.at - t0 >= 0.3 + 0.19


async def test_in_a_burst_every_state_change_goes_before_the_details_of_any(bot_: Bot) -> None:
    ws = [await bot_.watch(str(i), "C1") for i in range(3)]
    await bot_.until(lambda: len(bot_.slack.sent) == 3, "the parents")

    def burst(s: Any) -> None:  # one transaction: one pass of the notifier finds it all
        for i, w in enumerate(ws):
            view = JobView("fake", str(i), None, Phase.SUCCEEDED, "SUCCEEDED", None, None, (), (),
                           bot_.clock())
            store.owe(s, w, Changed(view, "U1", Phase.RUNNING, "RUNNING"), bot_.clock())
            store.owe(s, w, OutboxKind.UPDATE, bot_.clock())
            store.owe(s, w, note(f"details {i}"), bot_.clock())
    await bot_.db.run(burst)
    await bot_.until(lambda: len(bot_.replies()) == 6 and len(bot_.slack.of("chat.update")) == 3, "the burst")
    assert bot_.replies() == ["fake job 0: succeeded", "fake job 1: succeeded", "fake job 2: succeeded",
                              "details 0", "details 1", "details 2"], bot_.replies()
    last_reply = bot_.slack.sent.index(bot_.slack.of("chat.postMessage", "C1")[-1])
    assert all(bot_.slack.sent.index(u) > last_reply for u in bot_.slack.of("chat.update"))  # updates last


async def test_a_state_change_owed_while_a_channel_is_paced_goes_before_the_details_waiting(
        bot_: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 0.3)
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_BURST", 1)
    w1, w2 = await bot_.watch("1", "C1"), await bot_.watch("2", "C1")
    await bot_.until(lambda: len(bot_.slack.sent) == 2, "the parents")
    await asyncio.sleep(0.35)  # the bucket has its one post again
    view = JobView("fake", "1", None, Phase.SUCCEEDED, "SUCCEEDED", None, None, (), (), bot_.clock())
    await bot_.owe(w1, Changed(view, "U1", Phase.RUNNING, "RUNNING"), note("details 1"))
    bot_.notifier.kick()
    # "details 1" waits for the pace...
    await bot_.until(lambda: len(bot_.replies()) == 1, "the first change")
    view2 = JobView("fake", "2", None, Phase.SUCCEEDED, "SUCCEEDED", None, None, (), (), bot_.clock())
    await bot_.owe(w2, Changed(view2, "U1", Phase.RUNNING, "RUNNING"))  # ...and this is owed meanwhile
    bot_.notifier.kick()
    await bot_.until(lambda: len(bot_.replies()) == 3, "all three")
    assert bot_.replies() == ["fake job 1: succeeded", "fake job 2: succeeded", "details 1"]


async def test_retry_after_holds_the_channel_and_reschedules_the_message(bot_: Bot) -> None:
    w1, w2, w3 = await bot_.watch("1", "C1"), await bot_.watch("2", "C1"), await bot_.watch("3", "C2")
    await bot_.until(lambda: len(bot_.slack.sent) == 3, "the parents")
    bot_.slack.refuse("chat.postMessage", "ratelimited", retry_after=30)
    await bot_.owe(w1, note("w1"))
    await bot_.until(lambda: bot_.slack.refusals["chat.postMessage"] == [], "the 429")
    await bot_.owe(w2, note("w2"))
    await bot_.owe(w3, note("w3"))
    await bot_.until(lambda: bot_.replies("C2") == ["w3"], "the other channel's reply")
    [owed_w1] = await bot_.owed(w1.pk)
    assert owed_w1.attempts == 1 and bot_.replies("C1") == []  # nothing to C1 for Slack's 30 s
    due = await bot_.db.run(lambda s: s.get(store.Outbox, owed_w1.id).next_attempt_at)
    assert due == bot_.clock() + 30


async def test_a_message_slack_will_never_take_is_dropped_and_the_thread_goes_on(
        bot_: Bot, caplog: pytest.LogCaptureFixture) -> None:
    w = await bot_.watch("1")
    bot_.slack.refuse("chat.postMessage", "invalid_blocks")
    await bot_.until(_ended(bot_, w), "the watch to end")  # a parent Slack never takes: nothing to thread
    assert (await bot_.get(w)).ended_reason == "Slack: invalid_blocks" and await bot_.owed() == []

    w2 = await bot_.watch("2")
    await bot_.until(lambda: len(bot_.slack.sent) == 1, "the second watch's parent")
    bot_.slack.refuse("chat.postMessage", "invalid_blocks")
    with caplog.at_level(logging.ERROR, logger="bot"):
        await bot_.owe(w2, note("refused"), note("next"))
        await bot_.until(lambda: bot_.replies() == ["next"], "the reply after the dropped one")
    assert any("invalid_blocks" in r.getMessage() and "dropped" in r.getMessage() for r in caplog.records)
    assert (await bot_.get(w2)).active and await bot_.owed() == []


async def test_a_parent_that_cannot_be_edited_is_posted_again_and_the_thread_moves_there(bot_: Bot) -> None:
    w = await bot_.watch("1")
    await bot_.until(lambda: len(bot_.slack.sent) == 1, "the parent")
    old = bot_.slack.sent[0].ts
    bot_.slack.refuse("chat.update", "cant_update_message")
    await bot_.owe(w, OutboxKind.UPDATE)
    await bot_.until(lambda: len(bot_.slack.of("chat.postMessage")) == 2, "a new parent")
    new = bot_.slack.sent[-1]
    assert new.thread_ts is None and new.watch_id == w.pk and new.ts != old
    await bot_.owe(w, note("after"))
    await bot_.until(lambda: bot_.replies() == ["after"], "a reply")
    assert bot_.slack.sent[-1].thread_ts == new.ts == (await bot_.get(w)).parent_ts


async def test_a_channel_that_takes_nothing_more_ends_the_watch(bot_: Bot) -> None:
    w = await bot_.watch("1")
    await bot_.until(lambda: len(bot_.slack.sent) == 1, "the parent")
    bot_.slack.refuse("chat.postMessage", "not_in_channel")
    await bot_.owe(w, note("one"), note("two"))
    await bot_.until(_ended(bot_, w), "the watch to end")
    ended = await bot_.get(w)
    assert ended.ended_reason == "Slack: not_in_channel" and await bot_.owed() == [] and bot_.replies() == []


def _ended(bot_: Bot, w: Watch) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not (await bot_.get(w)).active

    return check


@pytest.mark.parametrize(("who", "kept", "active"), [
    (WhoSends.CREATED, False, False),  # the command path's new watch: discarded, nothing of it kept
    (WhoSends.RESUMED, True, False),  # a resumed watch: its thread and history stay, the watch ends again
    (WhoSends.BESIDE, True, True),  # another request creates it: that request decides
    (WhoSends.PASS, True, False),  # the notifier's own pass: ended
])
async def test_what_a_refused_parent_means_is_decided_by_who_sends_it(
        db: Store, clock: FakeClock, who: WhoSends, kept: bool, active: bool) -> None:
    slack = SlackDouble()
    notifier = Notifier(db, slack, backends(BackendDouble()), clock)
    st = JobStatus("1", Phase.RUNNING, "RUNNING")
    w, _, _ = await db.run(store.create_watch, "fake", st, "C9", "U1", now=clock(), interval=30,
                           watch_timeout=60, first_reply=None)
    slack.refuse("chat.postMessage", "channel_not_found")
    assert await notifier.deliver_watch(w.pk, who) == "channel_not_found"
    pair = await db.run(store.watch_and_job, w.pk)
    assert (pair is not None) == kept
    if pair is not None:
        assert pair[0].active == active
        assert pair[0].ended_reason == (None if active else "Slack: channel_not_found")


async def test_token_trouble_stops_sending_keeps_everything_and_resumes_after_auth_test(bot_: Bot) -> None:
    w = await bot_.watch("1")
    await bot_.until(lambda: len(bot_.slack.sent) == 1, "the parent")
    bot_.slack.token_refused = True
    bot_.slack.refuse("chat.postMessage", "token_revoked")
    await bot_.owe(w, note("one"), note("two"))
    await bot_.until(lambda: bot_.notifier.halted is not None, "sending to stop")
    assert bot_.notifier.slack_state().startswith("token_revoked since ")
    probes = bot_.slack.auth_tests
    await bot_.until(lambda: bot_.slack.auth_tests > probes, "a probe")
    assert [o.attempts for o in await bot_.owed()] == [0, 0]  # released: owed as if never tried
    assert bot_.replies() == []
    bot_.slack.token_refused = False
    await bot_.until(lambda: bot_.replies() == ["one", "two"], "everything owed, once the token works")
    assert bot_.notifier.slack_state() == "ok"


async def test_a_refused_upload_costs_only_the_upload_and_says_where_the_log_is(bot_: Bot) -> None:
    st = JobStatus("1", Phase.FAILED, "FAILED", log_paths=("outbox/logs/GL_1.log",))
    w, _, _ = await bot_.db.run(store.create_watch, "fake", st, "C1", "U1", now=bot_.clock(), interval=30,
                                watch_timeout=60, first_reply=None)
    await bot_.until(lambda: len(bot_.slack.sent) == 1, "the parent")
    bot_.slack.refuse("files.completeUploadExternal", "not_in_channel")
    await bot_.owe(w, Upload("GL_1.log", b"ERROR one\n"), note("after"))
    await bot_.until(lambda: len(bot_.replies()) == 2, "the next reply, and a note instead of the file")
    after, refused = bot_.replies()  # the note is owed when the upload is refused, after what was owed then
    assert after == "after" and "could not be attached" in refused
    assert "outbox/logs/GL_1.log" in json.dumps(bot_.slack.sent[-1].blocks)
    assert bot_.slack.of("files.completeUploadExternal") == [] and await bot_.owed() == []


async def test_an_error_no_table_knows_is_retried_a_few_times_then_dropped(
        bot_: Bot, caplog: pytest.LogCaptureFixture) -> None:
    w = await bot_.watch("1")
    await bot_.until(lambda: len(bot_.slack.sent) == 1, "the parent")
    bot_.slack.refuse("chat.postMessage", "brand_new_error", times=UNKNOWN_TRIES)
    with caplog.at_level(logging.ERROR, logger="bot"):
        await bot_.owe(w, note("refused"), note("next"))
        await bot_.until(lambda: bot_.replies() == ["next"], "the reply after the dropped one")
    assert bot_.slack.refusals["chat.postMessage"] == []  # tried exactly UNKNOWN_TRIES times
    assert any("brand_new_error" in r.getMessage() and "not in Slack's error table" in r.getMessage()
               for r in caplog.records)


async def test_a_state_change_reads_as_it_was_when_it_happened(bot_: Bot) -> None:
    w = await bot_.watch("1")
    pair = await bot_.db.run(store.watch_and_job, w.pk)
    assert pair is not None
    job = pair[1]
    failed = JobStatus("1", Phase.FAILED, "FAILED", message="ORA-01555 <!channel>")
    [applied] = await bot_.db.run(store.apply_results,
                                  [PollResult(job.pk, failed, bot_.clock(), bot_.clock())])
    assert applied.changed and applied.owed == 2  # the change, and the parent's update
    # the job moves on
    await bot_.db.run(lambda s: s.execute(text("UPDATE jobs SET message = 'later words'")))
    await bot_.until(lambda: len(bot_.replies()) == 1, "the change's reply")
    [reply] = [s for s in bot_.slack.sent if s.thread_ts is not None]
    assert ("ORA-01555 &lt;!channel&gt;" in json.dumps(reply.blocks)
            and "later words" not in json.dumps(reply.blocks))
    assert "<@U1>" in json.dumps(reply.blocks) and reply.broadcast is True


async def test_rows_the_last_release_wrote_are_delivered(bot_: Bot) -> None:
    """The outbox shapes of the release before this one, inserted as it wrote them: they must still go."""
    st = JobStatus("1", Phase.RUNNING, "RUNNING", log_paths=("logs/one.log",))
    w, _, _ = await bot_.db.run(store.create_watch, "fake", st, "C1", "U1", now=bot_.clock(), interval=30,
                                watch_timeout=60, first_reply=None)
    await bot_.db.run(lambda s: s.execute(text("DELETE FROM outbox")))
    rows = [("parent", {}),
            ("reply", {"text": "old reply",
                       "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "old"}}],
                       "broadcast": True}),
            ("file", {"filename": "one.log", "content_b64": "RVJST1Igb25lCg=="}),
            ("update", {})]
    for kind, payload in rows:
        await bot_.db.run(_insert, w.pk, kind, json.dumps(payload), bot_.clock())
    await bot_.until(lambda: len(bot_.slack.sent) == 4, "the four release rows")
    parent, reply, upload, update = bot_.slack.sent
    assert parent.watch_id == w.pk and parent.thread_ts is None
    assert (reply.text, reply.thread_ts, reply.broadcast) == ("old reply", parent.ts, True)
    assert reply.blocks[0]["text"]["text"] == "old"
    assert ((upload.method, upload.filename, upload.thread_ts)
            == ("files.completeUploadExternal", "one.log", parent.ts))
    assert (update.method, update.ts) == ("chat.update", parent.ts)
    assert await bot_.owed() == []


def _insert(s: Any, watch_id: int, kind: str, payload: str, now: float) -> None:
    s.execute(text("INSERT INTO outbox (watch_id, kind, payload, created_at, attempts, next_attempt_at) "
                   "VALUES (:w, :k, :p, :now, 0, :now)"), {"w": watch_id, "k": kind, "p": payload,
                                                           "now": now})


async def test_a_parent_posted_before_a_crash_is_found_not_posted_twice(db: Store, clock: FakeClock) -> None:
    slack = SlackDouble()
    notifier = Notifier(db, slack, backends(BackendDouble()), clock)
    w, _, _ = await db.run(store.create_watch, "fake", JobStatus("1", Phase.RUNNING, "RUNNING"), "C1", "U1",
                           now=clock(), interval=30, watch_timeout=60, first_reply=None)
    [row] = await db.run(store.pending, clock() + 1)
    await db.run(store.claim, row.id)  # the claim was committed, then the process died during the post...
    ts = await slack.post_parent("C1", "fake job 1: running", [], w.pk)  # ...which Slack had taken
    assert await notifier.deliver_watch(w.pk, WhoSends.BESIDE) is None
    assert len(slack.of("chat.postMessage")) == 1
    pair = await db.run(store.watch_and_job, w.pk)
    assert pair is not None and pair[0].parent_ts == ts


async def test_a_reply_whose_parent_is_forgotten_meanwhile_waits_for_the_new_one(
        bot_: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A reply Slack will not thread (cannot_reply_to_message) makes the notifier forget the parent while
    the command path (a second /jobstatus watch linking the thread) waits for the channel to send that same
    reply: it must wait for the new parent, never go out without a thread, never count as a failed try."""
    w = await bot_.watch("1")
    await bot_.until(lambda: len(bot_.slack.sent) == 1, "the parent")
    loop = asyncio.get_running_loop()
    in_flight, gate, peeked = asyncio.Event(), asyncio.Event(), asyncio.Event()
    post_reply, peek = bot_.slack.post_reply, store.peek
    peeks: list[int] = []

    async def slow_post_reply(channel: str, thread_ts: str, reply: Reply) -> None:
        in_flight.set()
        await gate.wait()
        await post_reply(channel, thread_ts, reply)

    def watched_peek(s: Any, outbox_id: int) -> store.OwedMessage | None:
        peeks.append(outbox_id)
        if len(peeks) == 2:  # the command path has read the row, its parent still there
            loop.call_soon_threadsafe(peeked.set)
        return peek(s, outbox_id)

    monkeypatch.setattr(bot_.slack, "post_reply", slow_post_reply)
    monkeypatch.setattr(store, "peek", watched_peek)
    bot_.slack.refuse("chat.postMessage", "cannot_reply_to_message")
    await bot_.owe(w, note("reply"))
    await asyncio.wait_for(in_flight.wait(), 5)  # the notifier's channel pass is sending it
    with caplog.at_level(logging.WARNING, logger="bot"):
        command_path = asyncio.create_task(bot_.notifier.deliver_watch(w.pk, WhoSends.BESIDE))
        await asyncio.wait_for(peeked.wait(), 5)
        gate.set()
        assert await asyncio.wait_for(command_path, 5) is None
    assert not any("raised" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records]
    await bot_.until(lambda: bot_.replies() == ["reply"], "the reply, in the new thread")
    parents = [s for s in bot_.slack.of("chat.postMessage") if s.thread_ts is None]
    assert len(parents) == 2 and bot_.slack.sent[-1].thread_ts == parents[-1].ts
