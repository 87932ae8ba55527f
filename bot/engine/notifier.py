"""Sends what the outbox owes to Slack: in order per watch, paced per channel, retried, and only once.

One message's way, all in `_send_one`: **owe** (the store wrote it with the change that owes it) →
**claim** (attempts+1, committed before the Slack call, so a crash in between leaves it owed) → **send**
(rendered now: the parent and its updates from the database as it is, an event with messages.py) →
**outcome** (`outcome_of` says what Slack's answer comes to, through the one table in bot/slack/errors.py;
`_apply` does it). A parent owed again after a crash mid-send is looked for in the channel's history (by
the watch id in its message metadata) before a second one is posted.

The outcomes: sent; retry (after Retry-After when Slack sends one: a chat.postMessage 429 holds the channel's
posts, any other method's holds that method's budget, bot/slack/budget.py, and nothing else); drop that
message; post a new parent; end the watch; cost only the upload; or stop sending.
Stopping is for token trouble: the notifier holds everything owed, says so once in the log and on /healthz
(`slack_state`), and probes `auth.test` on a backoff; the first probe that passes resumes sending. An
error no table knows is retried with backoff UNKNOWN_TRIES times, then its message is dropped with an
ERROR log line.

The order: each pass reads what is owed in `store.sending_order` (state changes of watches whose parent is
posted, then new parents, then details and files, then parents' updates; a watch's own messages in their
order) and sends each channel's share in that order, one channel task at a time per channel. A task that
reaches anything but a state change after something new was owed (`kick`) reads its channel's share again,
so a new state change goes first, before the rest of a batch of new parents too.

The pace: a token bucket per channel (`Bucket`), CHANNEL_BURST posts at once, refilled at one per CHANNEL_GAP
seconds; after a chat.postMessage 429 no post goes to the channel for its Retry-After, then one post and the
sustained pace. Then the workspace's budget per method (bot/slack/budget.py, in the sender): a post waits for
chat.postMessage's at its priority (a state change's reply before a parent, before details); a parent's
update goes only when chat.update's budget has room now, one at a time in this process, else it stays owed
for a later pass, where it renders the latest state (updates coalesce in the outbox: `store.owe`).

Slack unreachable (the network): one WARNING line when the first message meets it, one when a message goes
again (how long, how many messages waited), each message's retry at DEBUG; the counts in /metrics.

Replicas on PostgreSQL (`replica` set): a replica sends to a channel only while it holds the channel's lease
(bot/store/leases.py), taken or renewed at each pass and checked again before each claim, so each watch's
order and the channel's pace hold across replicas. A channel taken over starts with an empty bucket (the
replica before may have used it all): its first post waits CHANNEL_GAP.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bot import store
from bot.backends.base import Backend
from bot.domain.jobs import Changed, OutboxKind, Reply, Upload, event_of
from bot.metrics import Metrics
from bot.rendering import messages
from bot.slack.budget import Budget, Priority
from bot.slack.errors import Outcome, classify
from bot.slack.sender import SlackError, SlackSender, SlackUnreachable
from bot.store import OwedMessage, Store, leases
from bot.support.logs import about

log = logging.getLogger(__name__)

# Slack's rate limits (https://docs.slack.dev/apis/web-api/rate-limits): "chat.postMessage generally allows
# posting one message per second per channel, while also maintaining a workspace-wide limit", and for posting
# messages "1 per second. Short bursts >1 allowed. If you attempt bursts, there is no guarantee that messages
# will" go through: a short burst is used, and a 429 is obeyed (its Retry-After holds the channel).
CHANNEL_GAP = 1.0  # seconds per post in one channel, sustained (chat.postMessage and uploads to a thread)
CHANNEL_BURST = 3  # posts one channel may take at once after a quiet spell
UNKNOWN_TRIES = 5  # sends of a message that meet an error no table knows, before it is dropped
BACKOFF_FIRST = 1.0  # seconds before a message is sent again after a failure without Retry-After, doubling...
BACKOFF_MAX = 300.0  # ...up to this (with jitter)
PROBE_FIRST = 5.0  # seconds to the first auth.test after Slack refused the token; doubling from there...
PROBE_MAX = 300.0  # ...up to this


@dataclass(frozen=True)
class Stopped:
    """Why nothing is sent: the Slack error that stopped it, and since when (wall clock)."""

    error: str
    since: float

    def __str__(self) -> str:
        return f"{self.error} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.since))}"


# Which message of a channel goes first when several wait for the channel (`Turns`): the budget's priorities.
_PRIORITY = {OutboxKind.EVENT: Priority.CHANGE, OutboxKind.PARENT: Priority.PARENT, OutboxKind.REPLY: Priority.DETAIL,
             OutboxKind.FILE: Priority.DETAIL, OutboxKind.UPDATE: Priority.UPDATE}


class Turns:
    """A channel's turn to send, one message at a time, given by priority (lowest first), then first come.

    A post waits for the channel's pace inside its turn, so under a plain lock (first come) 40 watches started
    at once by the command path or the API queue 40 parents, a second each, and another user's failure reply
    that comes next waits 40 s (issue 20, item 4). Here the reply takes the next turn."""

    def __init__(self) -> None:
        self._busy = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrival = itertools.count()

    @asynccontextmanager
    async def turn(self, priority: Priority) -> AsyncIterator[None]:
        if self._busy or self._waiting:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (int(priority), next(self._arrival), waiter))
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # the turn came as it was cancelled: pass it on
                    self._next()
                raise
        self._busy = True
        try:
            yield
        finally:
            self._next()

    @property
    def taken(self) -> bool:
        """Someone sends to the channel now, or waits to."""
        return self._busy or bool(self._waiting)

    def _next(self) -> None:
        while self._waiting:
            _priority, _arrival, waiter = heapq.heappop(self._waiting)
            if not waiter.done():
                waiter.set_result(None)  # busy stays True: the turn passes straight to the waiter
                return
        self._busy = False


class Bucket:
    """One channel's allowance to post: up to `CHANNEL_BURST` at once, refilled at one per `CHANNEL_GAP`
    seconds. Times are the caller's (monotonic) clock; a post is taken in advance (`take` says how long to
    wait for it), so the posts of one channel, taken one after another, keep the pace."""

    def __init__(self, now: float, tokens: float) -> None:
        self.at = now
        self.tokens = tokens  # below 0: posts taken ahead, owed from the refill

    def _now(self, now: float) -> float:
        return min(float(CHANNEL_BURST), self.tokens + (now - self.at) / CHANNEL_GAP)

    def ready_in(self, now: float) -> float:
        """The seconds until one post is allowed (0: now); nothing is taken."""
        return 0.0 if CHANNEL_GAP <= 0 else max(0.0, (1.0 - self._now(now)) * CHANNEL_GAP)

    def take(self, now: float) -> float:
        """Take one post; the seconds to wait before it goes (0: now)."""
        if CHANNEL_GAP <= 0:
            return 0.0
        self.tokens, self.at = self._now(now) - 1.0, now
        return max(0.0, -self.tokens * CHANNEL_GAP)


@dataclass(frozen=True)
class Result:
    """What sending one owed message came to."""

    outcome: Outcome
    error: str = ""  # Slack's code, or what failed: for the log, an upload's note, an ended watch's reason
    retry_after: float | None = None  # RETRY: the seconds Slack asked for
    ts: str | None = None  # SENT: a parent's ts, its watch's thread from now on
    unknown: bool = False  # the error is in no table, and it has been tried UNKNOWN_TRIES times
    method: str | None = None  # the Slack method that answered with the error (None: no answer from Slack)
    unreachable: bool = False  # Slack could not be reached (the network)

    @property
    def done(self) -> bool:
        """Done with the message (sent, or dropped for good): what its watch owes next may go."""
        return self.outcome in (Outcome.SENT, Outcome.DROP, Outcome.NO_UPLOAD)


GONE = Result(Outcome.SENT)  # the row went meanwhile: sent (or dropped) by another path


def outcome_of(item: OwedMessage, exc: Exception) -> Result:
    """What a failed send comes to. Slack's refusal: its code's outcome in the table (a parent Slack will
    never take ends its watch: nothing could be threaded under it). The network: transient. Anything else
    (a code no table knows, a failed upload step, a bug of ours): retried until UNKNOWN_TRIES sends, then
    it costs this message only (a file its upload, a parent its watch)."""
    if isinstance(exc, SlackUnreachable):
        return Result(Outcome.RETRY, str(exc), unreachable=True)
    if isinstance(exc, SlackError):
        outcome = classify(exc.method, exc.error)
        if outcome is Outcome.DROP and item.kind is OutboxKind.PARENT:
            outcome = Outcome.END_WATCH
        if outcome is not None:
            return Result(outcome, exc.error, exc.retry_after, method=exc.method)
        what = f"{exc.method}: {exc.error}"
    else:
        what = type(exc).__name__
    answered = exc.method if isinstance(exc, SlackError) else None
    if item.attempts + 1 < UNKNOWN_TRIES:
        return Result(Outcome.RETRY, f"{what}, not in Slack's error table", method=answered)
    given_up = {OutboxKind.FILE: Outcome.NO_UPLOAD, OutboxKind.PARENT: Outcome.END_WATCH}.get(item.kind, Outcome.DROP)
    return Result(given_up, what, unknown=True, method=answered)


def _about(item: OwedMessage) -> dict[str, Any]:
    """A log line's fields for a line about one owed message: its watch and channel."""
    return about(watch=item.watch_id, channel=item.channel)


def render_reply(item: OwedMessage, backends: Mapping[str, Backend]) -> Reply:
    """A `reply` or `event` row as it is posted: an event is rendered now, from the job as it was then, and
    with its details only where its backend's `details` allows them now (bot/operations/permissions.py)."""
    if item.kind is OutboxKind.EVENT:
        event = event_of(item.payload)
        backend = backends.get(event.job.backend)
        hidden = messages.details_line(backend.config, item.channel) if backend is not None else None
        return messages.event_reply(event, hidden)
    return Reply.of_payload(item.payload)


class Notifier:
    def __init__(
        self,
        db: Store,
        slack: SlackSender,
        backends: Mapping[str, Backend],
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.db = db
        self.slack = slack
        self.budget = budget or Budget()  # the sender's (shared with the Home tab): here to ask chat.update's room
        self.backends = backends  # whose backends can cancel: the parent's Cancel button
        self.clock = clock
        self._wake = asyncio.Event()
        self._turns: dict[str, Turns] = {}  # channel -> whose turn it is to send there
        self._buckets: dict[str, Bucket] = {}
        self._held: dict[str, float] = {}  # channel -> monotonic time before which no post goes (a 429's)
        self._updating = asyncio.Lock()  # one parent's update at a time: its budget is asked, then spent
        self._unreachable_since: float | None = None  # (self.clock) Slack could not be reached since then...
        self._waited: set[int] = set()  # ...and the owed messages that met it meanwhile
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._owed = 0  # kicks so far: something new may be owed
        self._stopping = False
        self.sent_count = 0
        self.stopped: Stopped | None = None
        self.probe_first = PROBE_FIRST
        self._probes = 0  # auth.test probes that failed since a message last went out
        self._next_probe = 0.0
        self._said_stopped: str | None = None  # the stop already logged, until a message goes out again
        self.metrics = metrics or Metrics(clock)
        self._kicked_at: float | None = None  # monotonic time of the first kick since the last pass began
        self.replica: str | None = None  # replicas on PostgreSQL: this one's id (bot/engine/replicas.py); None: alone
        self.lease = 15.0
        self._holding: dict[str, float] = {}  # channel -> monotonic time its lease (this replica's) runs out
        self.on_sent: Callable[[int], None] | None = None  # told the watch id of each message Slack took

    def kick(self) -> None:
        """Something new is owed: a pass reads the outbox again, and a channel task under way stops before
        its next details reply or update, so the new messages take their place in the order."""
        self._owed += 1
        self._again()

    def _again(self) -> None:
        """Wake the loop for another pass (nothing new owed that this process knows of)."""
        if self._kicked_at is None:
            self._kicked_at = time.monotonic()
        self._wake.set()

    def slack_state(self) -> str:
        """"ok", or why sending is stopped ("token_revoked since 2026-...Z"): for /healthz and readiness."""
        return "ok" if self.stopped is None else str(self.stopped)

    async def run(self) -> None:
        """Deliver until `stop()`: woken by `kick()`, and every second for retries that fall due."""
        while not self._stopping:
            try:
                if self.stopped is not None:
                    await self._probe()
                else:
                    await self.drain()
            except Exception:  # a bug must not stop delivery for good
                log.exception("notifier pass failed")
            due = time.monotonic() + 1.0
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            except TimeoutError:
                pass
            self._wake.clear()
            # the next pass was due at the first kick since this one began, or when the wait was over
            woke, kicked, self._kicked_at = time.monotonic(), self._kicked_at, None
            self.metrics.loop_lag("notifier", woke - min(due, kicked if kicked is not None else due))

    async def drain(self) -> None:
        if self.stopped is not None:
            return
        rows = await self.db.run(store.pending, self.clock(), 2000, None, self.replica, None, self._update_room())
        by_channel: dict[str, list[OwedMessage]] = {}
        for row in rows:
            by_channel.setdefault(row.channel, []).append(row)
        if self.replica is not None and by_channel:
            await self._hold(list(by_channel))
        for channel, items in by_channel.items():
            if channel in self._busy or not self._holds(channel):
                continue
            self._busy.add(channel)
            task = asyncio.create_task(self._channel(channel, items))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self, until: float) -> None:
        """Sends under way get until `until` (the loop's clock), then are abandoned: what is not sent stays
        owed in the outbox (a claimed one as after a crash: sent again, a parent looked for first)."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            loop = asyncio.get_running_loop()
            _done, pending = await asyncio.wait(list(self._tasks), timeout=max(0.0, until - loop.time()))
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _channel(self, channel: str, items: list[OwedMessage]) -> None:
        """Send one channel's share of a pass, in its order, until something stops it; then another pass.
        Before a details reply, a file or an update: when something new was owed since the share was read
        (`kick`), it is read again, so a state change owed meanwhile goes first (once per message sent, so a
        stream of kicks cannot keep a message from going)."""
        sent = False
        owed = self._owed
        queue = deque(items)
        reread = False  # the share was just read again: the message at its head goes now
        try:
            blocked: set[int] = set()  # watches whose earlier message is still owed: keep their order
            while queue:
                item = queue.popleft()
                if self._stopping or self.stopped is not None or not self._holds(channel):
                    return
                if item.watch_id in blocked:
                    continue
                turns = self._turns.get(channel)
                if item.kind is not OutboxKind.EVENT and turns is not None and turns.taken:
                    return  # the command path posts new parents here: the rest waits for a pass after them (a
                    # state change owed meanwhile, in a task of its own then, takes the channel's next turn)
                post = item.kind is not OutboxKind.UPDATE
                if post and self._is_held(channel):  # chat.postMessage's Retry-After: updates may still go
                    blocked.add(item.watch_id)
                    continue
                if post:  # a post waits for the pace here, where what is owed meanwhile...
                    await asyncio.sleep(self._bucket(channel).ready_in(time.monotonic()))
                if self._owed != owed and not reread and item.kind is not OutboxKind.EVENT:
                    owed, reread = self._owed, True  # ...may still go before it
                    queue = deque(await self.db.run(store.pending, self.clock(), 2000, None, self.replica, channel,
                                                    self._update_room()))
                    continue
                reread = False
                result = await (self._send_one(item.id) if post else self._send_update(item.id))
                if result is None and not post:
                    continue  # no room in chat.update's budget now: it stays owed, its watch's posts go on
                if result is not None and result.done:
                    sent = True
                else:
                    blocked.add(item.watch_id)
        finally:
            self._busy.discard(channel)
            if sent:
                self._again()  # what was owed meanwhile to this channel goes out now, not at the next sweep

    def _update_room(self) -> bool:
        """Whether chat.update's budget has room now: else a pass leaves the parents' updates unread (owed, and
        rendered as the job is whenever their turn comes)."""
        return self.budget.ready_in("chat.update") == 0

    async def _send_update(self, outbox_id: int) -> Result | None:
        """A parent's update, when chat.update's budget has room now (None: not now, it stays owed and a later
        pass sends it, rendered as the job is then). One at a time, so the room seen is the room spent."""
        async with self._updating:
            if self.budget.ready_in("chat.update") > 0:
                return None
            return await self._send_one(outbox_id)

    async def _hold(self, channels: list[str]) -> None:
        """Take or renew the send leases of these channels (a replica). One just taken, perhaps from a
        replica that died mid-send, starts with an empty bucket, as if this replica had just used it all."""
        assert self.replica is not None
        start = time.monotonic()
        held = await self.db.run(leases.hold_channels, self.replica, self.lease, channels)
        for channel in channels:
            if channel not in held:
                self._holding.pop(channel, None)
                continue
            if self._holding.get(channel, 0.0) <= start:
                self._buckets[channel] = Bucket(time.monotonic(), 0.0)
            self._holding[channel] = start + self.lease * 0.8  # a margin for the clocks of host and database

    def _holds(self, channel: str) -> bool:
        """Whether this replica may send to the channel (alone, always)."""
        return self.replica is None or self._holding.get(channel, 0.0) > time.monotonic()

    def _is_held(self, channel: str) -> bool:
        until = self._held.get(channel)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._held[channel]
        return False

    async def deliver_watch(self, watch_id: int) -> str | None:
        """Send everything owed to one watch now (the command path). Returns the Slack error that refuses
        the watch for good (it is not ended: the caller undoes it), or None (sent, or left owed)."""
        for item in await self.db.run(store.pending, self.clock() + 3600, 100, watch_id):
            if self.stopped is not None:
                break
            result = await self._send_one(item.id, first=True)
            if result is not None and result.outcome is Outcome.END_WATCH:
                return result.error
            if result is None or not result.done:
                break
        return None

    # -- the pipeline of one message: claim, send, apply the outcome -------------------------------------
    async def _send_one(self, outbox_id: int, first: bool = False) -> Result | None:
        """One owed message, claimed, sent and its outcome applied. None when it was not its turn (its
        parent is not posted yet, its channel is held, sending is stopped): it stays owed as it was.
        `first`: the command path, which ends no watch itself (it undoes a watch Slack refuses)."""
        row = await self.db.run(store.peek, outbox_id)
        if row is None:
            return GONE
        if row.kind is not OutboxKind.PARENT and row.parent_ts is None:
            return None
        async with self._turns.setdefault(row.channel, Turns()).turn(_PRIORITY[row.kind]):
            if self.stopped is not None or (row.kind is not OutboxKind.UPDATE and self._is_held(row.channel)):
                return None
            if self.replica is not None:  # renewed right before the claim: the send has a whole lease
                await self._hold([row.channel])
                if not self._holds(row.channel):
                    return None  # another replica sends to this channel: it sends this too
            item = await self.db.run(store.claim, outbox_id)
            if item is None:
                return GONE
            if item.kind is not OutboxKind.PARENT and item.parent_ts is None:  # its parent was forgotten meanwhile
                await self.db.run(store.release, item.id)
                return None
            result = await self._send(item)
            await self._apply(item, result, first)
            return result

    async def _send(self, item: OwedMessage) -> Result:
        try:
            return Result(Outcome.SENT, ts=await self._post(item))
        except Exception as exc:
            if not isinstance(exc, SlackError | SlackUnreachable):  # a failed upload step, or a bug of ours
                log.warning("watch %s: sending %s raised %s", item.watch_id, item.kind, type(exc).__name__,
                            exc_info=True, extra=_about(item))
            return outcome_of(item, exc)

    async def _post(self, item: OwedMessage) -> str | None:
        """Send one message as it reads now; returns a parent's ts."""
        if item.kind is OutboxKind.PARENT:
            if item.attempts > 0:
                found = await self._earlier_parent(item)
                if found:
                    log.info("parent of watch %s was already posted before a restart (ts %s)", item.watch_id, found,
                             extra=_about(item))
                    return found
            parent = await self._parent(item.watch_id)
            if parent is None:
                return None
            await self._pace(item.channel)
            return await self.slack.post_parent(item.channel, *parent, watch_id=item.watch_id)
        thread = item.parent_ts
        assert thread is not None  # _send_one sends nothing of a watch before its parent
        if item.kind is OutboxKind.UPDATE:
            parent = await self._parent(item.watch_id)
            if parent is not None:
                await self.slack.update(item.channel, thread, *parent)
            return None
        await self._pace(item.channel)
        if item.kind is OutboxKind.FILE:
            await self.slack.upload(item.channel, thread, Upload.of_payload(item.payload))
        elif item.kind is OutboxKind.EVENT:  # a state change (a failure, an outage, a timeout): first in the budget
            await self.slack.post_reply(item.channel, thread, render_reply(item, self.backends),
                                       priority=Priority.CHANGE)
        else:
            await self.slack.post_reply(item.channel, thread, render_reply(item, self.backends))
        return None

    async def _parent(self, watch_id: int) -> tuple[str, list[dict[str, Any]]] | None:
        """The parent message of a watch, rendered from the database as it is now."""
        pair = await self.db.run(store.watch_and_job, watch_id)
        if pair is None:
            return None
        w, j = pair
        backend = self.backends.get(j.backend)
        can_cancel = backend is not None and backend.can_cancel and j.cancel_requested_at is None
        hidden = messages.details_line(backend.config, w.channel) if backend is not None else None
        return messages.parent(j.view(), watcher=w.watcher, watch_id=w.pk, active=w.active,
                               ended_reason=w.ended_reason, can_cancel=can_cancel, hidden=hidden)

    async def _earlier_parent(self, item: OwedMessage) -> str | None:
        """After a crash mid-send: the parent may be in Slack already. Find it by its metadata.

        When Slack will not let us look (no history scope, say), the parent is posted: a second parent is
        better than none. Transient trouble and token trouble are the send's own (raised)."""
        try:
            return await self.slack.earlier_parent(item.channel, item.created_at - 5, item.watch_id)
        except SlackError as exc:
            if classify(exc.method, exc.error) in (Outcome.RETRY, Outcome.STOP_SENDING):
                raise
            log.warning("cannot read channel history to check for an earlier parent: %s", exc.error,
                        extra=_about(item))
            return None

    def _bucket(self, channel: str) -> Bucket:
        """The channel's bucket (a channel not posted to yet: a full one)."""
        bucket = self._buckets.get(channel)
        if bucket is None:
            bucket = self._buckets[channel] = Bucket(time.monotonic(), float(CHANNEL_BURST))
        return bucket

    async def _pace(self, channel: str) -> None:
        """Take one post from the channel's bucket, waiting as long as it says."""
        wait = self._bucket(channel).take(time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)

    async def _apply(self, item: OwedMessage, result: Result, first: bool) -> None:
        """Do what the outcome of one send says, to the outbox, the watch and the notifier's own state."""
        if result.unknown:
            log.error("watch %s: sending %s failed %d times (%s, not in Slack's error table); dropped it",
                      item.watch_id, item.kind, UNKNOWN_TRIES, result.error, extra=_about(item))
        if result.outcome is Outcome.SENT or result.method is not None:  # Slack answered
            self._reachable()
        match result.outcome:
            case Outcome.SENT:
                await self.db.run(store.sent, item.id, result.ts)
                self.sent_count += 1
                self._replied(item)
                if self.on_sent is not None:
                    self.on_sent(item.watch_id)
                self._said_stopped = None
                self._probes = 0
            case Outcome.RETRY:
                await self._retry(item, result)
            case Outcome.STOP_SENDING:
                self._stop(result.error)
                await self.db.run(store.release, item.id)  # refused before anything happened: owed as before
            case Outcome.REPOST_PARENT:
                log.warning("watch %s: the parent message cannot be edited or replied to (%s); posting a new one",
                            item.watch_id, result.error, extra=_about(item))
                await self.db.run(store.forget_parent, item.watch_id, self.clock())
                self.kick()
            case Outcome.NO_UPLOAD:
                await self._no_upload(item, result.error)
            case Outcome.DROP:
                if not result.unknown:
                    log.error("watch %s: Slack refused a %s message for good (%s); dropped it, the thread goes on",
                              item.watch_id, item.kind, result.error, extra=_about(item))
                await self.db.run(store.sent, item.id, None)
            case Outcome.END_WATCH:
                if not first:  # the command path undoes the new watch and tells the user
                    log.warning("watch %s: Slack answered %s for channel %s: ending the watch", item.watch_id,
                                result.error, item.channel, extra=_about(item))
                    await self.db.run(store.end_watch_for_slack, item.watch_id, result.error, self.clock())

    def _replied(self, item: OwedMessage) -> None:
        """A state change's reply is in Slack: how long after the poll that saw the change (its row was
        owed at that poll's time, in the same transaction)."""
        if item.kind is OutboxKind.EVENT and isinstance(event := event_of(item.payload), Changed):
            self.metrics.change_replied(event.job.backend, self.clock() - item.created_at)

    async def _retry(self, item: OwedMessage, result: Result) -> None:
        if result.retry_after is not None:
            delay = result.retry_after
            if result.method == "chat.postMessage":  # the channel's second (the sender held other methods')
                until = time.monotonic() + delay
                self._held[item.channel] = until  # Slack asked: no post to this channel meanwhile...
                self._buckets[item.channel] = Bucket(until, 1.0)  # ...then one post, and the sustained pace
            self.metrics.slack_waits(delay)
        else:
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** min(item.attempts, 16)) * (0.5 + random.random())
        if result.unreachable:
            self._unreachable(item, result.error)
            log.debug("watch %s: sending %s failed (%s); retrying in %.0f s", item.watch_id, item.kind,
                      result.error, delay, extra=_about(item))
        else:
            log.warning("watch %s: sending %s failed (%s); retrying in %.0f s", item.watch_id, item.kind,
                        result.error, delay, extra=_about(item))
        await self.db.run(store.retry_later, item.id, self.clock() + delay)

    # -- Slack unreachable: one line when it starts, one when it ends ------------------------------------
    def _unreachable(self, item: OwedMessage, error: str) -> None:
        """A message met the network between the bot and Slack: the first one since Slack last answered says
        so in the log; the others are counted (the message stays owed, retried with backoff)."""
        self._waited.add(item.id)
        if self._unreachable_since is not None:
            return
        self._unreachable_since = self.clock()
        self.metrics.slack_unreachable()
        log.warning("%s: messages stay owed and are retried with backoff (up to every %g s); one line here "
                    "when Slack answers again, each retry at DEBUG", error, BACKOFF_MAX)

    def _reachable(self) -> None:
        """Slack answered: the end of an outage, when there was one."""
        if self._unreachable_since is None:
            return
        seconds = max(0.0, self.clock() - self._unreachable_since)
        waited = len(self._waited)
        self._unreachable_since = None
        self._waited = set()
        self.metrics.slack_reachable(seconds, waited)
        log.warning("Slack is reachable again after %.0f s; %d messages waited for it and are being sent",
                    seconds, waited)

    async def _no_upload(self, item: OwedMessage, error: str) -> None:
        """The upload is refused: drop the file, and say in the thread where the log is instead."""
        filename = str(item.payload.get("filename") or "the log")
        pair = await self.db.run(store.watch_and_job, item.watch_id)
        paths = pair[1].log_path_list if pair is not None else []
        path = next((p for p in paths if p.replace("\\", "/").rsplit("/", 1)[-1] == filename), None)
        log.warning("watch %s: Slack refused the upload of %s (%s); the thread says where the log is instead",
                    item.watch_id, filename, error, extra=_about(item))
        await self.db.run(store.replace_owed, item.id, messages.upload_refused(filename, path, error), self.clock())
        self.kick()

    # -- stopped: token trouble -------------------------------------------------------------------------
    def _stop(self, error: str) -> None:
        """Send nothing until an auth.test passes. Logged once per stop, not per message."""
        if self.stopped is not None:
            return
        self.stopped = Stopped(error, self.clock())
        self._next_probe = time.monotonic() + self._probe_delay()
        level = logging.INFO if self._said_stopped == error else logging.ERROR
        log.log(level, "Slack refuses the bot (%s): sending stopped, everything owed stays in the outbox; "
                       "checking with auth.test in %g s, then less often (up to every %g s)",
                error, self._probe_delay(), PROBE_MAX)
        self._said_stopped = error

    def _probe_delay(self) -> float:
        return min(PROBE_MAX, self.probe_first * 2.0 ** min(self._probes, 16))

    async def _probe(self) -> None:
        if self.stopped is None or time.monotonic() < self._next_probe:
            return
        try:
            await self.slack.auth_test()
        except (SlackError, SlackUnreachable) as exc:
            self._probes += 1
            self._next_probe = time.monotonic() + self._probe_delay()
            why = exc.error if isinstance(exc, SlackError) else str(exc)
            log.debug("auth.test: %s; next check in %g s", why, self._probe_delay())
            return
        log.info("Slack accepts the bot's token again (it was stopped: %s); sending what is owed", self.stopped)
        self.stopped = None
        self._again()
