"""The notifier, composed here from its stages: **order** (bot/engine/notifier/order.py) → **lease**
(lease.py) → **pace/budget** (pace.py) → **claim** (claim.py) → **send** (send.py) → **outcome** (outcome.py),
with the token halt (halt.py) and the log lines of a Slack outage (outage.py) beside them.

A pass reads what is owed in `store.sending_order` and sends each channel's share in that order, one channel
task at a time per channel (`_channel`). A task that reaches anything but a state change after something new
was owed (`kick`) reads its channel's share again, so a new state change goes first, before the rest of a
batch of new parents too. A post waits for the channel's pace before that check, where what is owed meanwhile
may still go before it; a parent's update goes only when chat.update's budget has room now (`UpdateRoom`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping

from bot import store
from bot.backends.base import Backend
from bot.domain.jobs import OutboxKind
from bot.engine.notifier.claim import Claim
from bot.engine.notifier.halt import Halted, TokenHalt
from bot.engine.notifier.lease import ChannelLeases
from bot.engine.notifier.order import PRIORITY, ChannelTurns
from bot.engine.notifier.outage import Outage
from bot.engine.notifier.outcome import BACKOFF_MAX, Outcomes, Result, WhoSends
from bot.engine.notifier.pace import Pace, UpdateRoom
from bot.engine.notifier.send import Send
from bot.metrics import Metrics
from bot.slack.budget import Budget
from bot.slack.errors import Outcome
from bot.slack.sender import SlackSender
from bot.store import OwedMessage, Store

log = logging.getLogger("bot.engine.notifier")

# a replica's channel leases, when nobody says (bot/support/config.py's lease_seconds does)
LEASE_SECONDS = 15.0
SHARE = 2000  # owed messages read per pass


class Notifier:
    def __init__(
        self,
        db: Store,
        slack: SlackSender,
        backends: Mapping[str, Backend],
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        budget: Budget | None = None,
        *,
        replica: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.db = db
        self.slack = slack
        self.clock = clock
        self.metrics = metrics or Metrics(clock)
        self._listeners: list[Callable[[int], None]] = []
        # the stages, in the order a message passes them
        self.turns = ChannelTurns()
        self.pace = Pace()
        self.leases = ChannelLeases(db, replica, lease_seconds, taken_over=self.pace.empty)
        self.updates = UpdateRoom(budget or Budget())  # the sender's budget (shared with the Home tab)
        self.claim = Claim(db)
        self.send = Send(db, slack, backends, self.pace)
        self.halt = TokenHalt(slack, clock, resumed=self._again)
        self.outage = Outage(clock, self.metrics, BACKOFF_MAX)
        self.outcomes = Outcomes(db, clock, self.metrics, self.pace, self.halt, self.outage,
                                 owed_again=self.kick, sent=self._tell_sent)
        # the loop
        self._wake = asyncio.Event()
        self._kicked_at: float | None = None  # monotonic time of the first kick since the last pass began
        self._kicks = 0  # kicks so far: something new may be owed
        self._sending: set[str] = set()  # channels with a task of this pass under way
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False  # shutting down (`stop`)

    # -- what the rest of the bot sees ------------------------------------------------------------------
    def subscribe(self, listener: Callable[[int], None]) -> Callable[[], None]:
        """Tell `listener` the watch id of each message Slack takes; returns the call that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _tell_sent(self, watch_id: int) -> None:
        for listener in list(self._listeners):
            listener(watch_id)

    @property
    def halted(self) -> Halted | None:
        """Why sending is halted (token trouble), or None while it goes on."""
        return self.halt.why

    @property
    def sent_count(self) -> int:
        return self.outcomes.sent_count

    def slack_state(self) -> str:
        """"ok", or why sending is halted ("token_revoked since 2026-...Z"): for /healthz and readiness."""
        return "ok" if self.halt.why is None else str(self.halt.why)

    def kick(self) -> None:
        """Something new is owed: a pass reads the outbox again, and a channel task under way stops before
        its next details reply or update, so the new messages take their place in the order."""
        self._kicks += 1
        self._again()

    def _again(self) -> None:
        """Wake the loop for another pass (nothing new owed that this process knows of)."""
        if self._kicked_at is None:
            self._kicked_at = time.monotonic()
        self._wake.set()

    # -- the loop --------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Deliver until `stop()`: woken by `kick()`, and every second for retries that fall due."""
        while not self._stopping:
            try:
                if self.halt.why is not None:
                    await self.halt.probe()
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

    async def _owed(self, channel: str | None) -> list[OwedMessage]:
        """What is owed now in sending order (one channel's share, or every channel's); parents' updates only
        when chat.update's budget has room now."""
        return await self.db.run(store.pending, self.clock(), SHARE, None, self.leases.replica, channel,
                                 self.updates.now())

    async def drain(self) -> None:
        """One pass: a task per channel with something owed and no task under way."""
        if self.halt.why is not None:
            return
        by_channel: dict[str, list[OwedMessage]] = {}
        for row in await self._owed(None):
            by_channel.setdefault(row.channel, []).append(row)
        await self.leases.renew(list(by_channel))
        for channel, items in by_channel.items():
            if channel in self._sending or not self.leases.mine(channel):
                continue
            self._sending.add(channel)
            task = asyncio.create_task(self._channel(channel, items))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self, until: float) -> None:
        """Shut down: sends under way get until `until` (the loop's clock), then are abandoned: what is not
        sent stays owed in the outbox (a claimed one as after a crash: sent again, a parent looked for
        first)."""
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
        kicks = self._kicks
        queue = deque(items)
        reread = False  # the share was just read again: the message at its head goes now
        try:
            blocked: set[int] = set()  # watches whose earlier message is still owed: keep their order
            while queue:
                item = queue.popleft()
                if self._stopping or self.halt.why is not None or not self.leases.mine(channel):
                    return
                if item.watch_id in blocked:
                    continue
                if item.kind is not OutboxKind.EVENT and self.turns.taken(channel):
                    return  # the command path posts new parents here: the rest waits for a pass after them (a
                    # state change owed meanwhile, in a task of its own then, takes the channel's next turn)
                post = item.kind is not OutboxKind.UPDATE
                # chat.postMessage's Retry-After: updates may still go
                if post and self.pace.cooling(channel):
                    blocked.add(item.watch_id)
                    continue
                if post:  # a post waits for the pace here, where what is owed meanwhile...
                    await asyncio.sleep(self.pace.ready_in(channel))
                if self._kicks != kicks and not reread and item.kind is not OutboxKind.EVENT:
                    kicks, reread = self._kicks, True  # ...may still go before it
                    queue = deque(await self._owed(channel))
                    continue
                reread = False
                result = await (self._through(item.id) if post else self._update(item.id))
                if result is None and not post:
                    continue  # no room in chat.update's budget now: it stays owed, its watch's posts go on
                if result is not None and result.done:
                    sent = True
                else:
                    blocked.add(item.watch_id)
        finally:
            self._sending.discard(channel)
            if sent:
                self._again()  # what was owed meanwhile to this channel goes out now, not at the next sweep

    async def _update(self, outbox_id: int) -> Result | None:
        """A parent's update, when chat.update's budget has room now (None: not now, it stays owed and a later
        pass sends it, rendered as the job is then)."""
        async with self.updates.taken() as room:
            return await self._through(outbox_id) if room else None

    async def deliver_watch(self, watch_id: int, who: WhoSends) -> str | None:
        """Send everything owed to one watch now (the command path). Returns the Slack error that refuses
        the watch for good (done with as `who` says), or None (sent, or left owed)."""
        for item in await self.db.run(store.pending, self.clock() + 3600, 100, watch_id):
            if self.halt.why is not None:
                break
            result = await self._through(item.id, who)
            if result is not None and result.outcome is Outcome.END_WATCH:
                return result.error
            if result is None or not result.done:
                break
        return None

    # -- one message through the stages -----------------------------------------------------------------
    async def _through(self, outbox_id: int, who: WhoSends = WhoSends.PASS) -> Result | None:
        """One owed message, claimed, sent and its outcome applied. None when it was not its turn (its
        parent is not posted yet, its channel is cooling or another replica's, sending is halted): it stays
        owed as it was."""
        row = await self.claim.due(outbox_id)
        if not isinstance(row, OwedMessage):
            return row
        async with self.turns.of(row.channel).turn(PRIORITY[row.kind]):  # order
            if self.halt.why is not None or (
                row.kind is not OutboxKind.UPDATE and self.pace.cooling(row.channel)
            ):
                return None  # pace
            # lease: renewed right before the claim, a whole lease to send
            await self.leases.renew([row.channel])
            if not self.leases.mine(row.channel):
                return None  # another replica sends to this channel: it sends this too
            item = await self.claim(outbox_id)  # claim
            if not isinstance(item, OwedMessage):
                return item
            result = await self.send(item)  # send
            await self.outcomes.apply(item, result, who)  # outcome
            return result
