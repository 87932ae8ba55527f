"""Stage 6 of the notifier: what Slack's answer to one send comes to (`outcome_of`, through the one table in
bot/slack/errors.py), and doing it (`Outcomes.apply`): sent; retry (after Retry-After when Slack sends one: a
chat.postMessage 429 cools the channel's posts, any other method's holds that method's budget,
bot/slack/budget.py, and nothing else); drop that message; post a new parent; end the watch; cost only the
upload; or halt sending (bot/engine/notifier/halt.py). An error no table knows is retried with backoff
UNKNOWN_TRIES times, then its message is dropped with an ERROR log line.

What a parent Slack refuses for good means is decided here alone, by who sends it (`WhoSends`): the
notifier's pass ends the watch; the command path that has just created the watch discards it, one that
resumed it ends it again, and one that only waits for a watch another request creates leaves it to that one.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot import store
from bot.domain.jobs import Changed, OutboxKind, event_of
from bot.engine.notifier.halt import TokenHalt
from bot.engine.notifier.outage import Outage
from bot.engine.notifier.pace import Pace
from bot.metrics import Metrics
from bot.rendering import messages
from bot.slack.errors import Outcome, classify
from bot.slack.sender import SlackError, SlackUnreachable
from bot.store import OwedMessage, Store
from bot.support.logs import about

log = logging.getLogger("bot.engine.notifier")

UNKNOWN_TRIES = 5  # sends of a message that meet an error no table knows, before it is dropped
BACKOFF_FIRST = 1.0  # seconds before a message is sent again after a failure without Retry-After, doubling...
BACKOFF_MAX = 300.0  # ...up to this (with jitter)


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


class WhoSends(enum.Enum):
    """Who is sending when Slack refuses a watch's messages for good (END_WATCH), and so what it means."""

    PASS = "pass"  # the notifier's own pass: the watch ends, with a line in the log
    CREATED = "created"  # the command path, for the watch it has just created: the watch is discarded
    RESUMED = "resumed"  # the command path, for a watch it resumed: the thread stays, the watch ends again
    BESIDE = "beside"  # the command path, waiting for a watch another request creates: that request decides


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
    given_up = {OutboxKind.FILE: Outcome.NO_UPLOAD, OutboxKind.PARENT: Outcome.END_WATCH}.get(
        item.kind, Outcome.DROP
    )
    return Result(given_up, what, unknown=True, method=answered)


def retry_delay(item: OwedMessage, result: Result) -> float:
    """Seconds before a message is sent again: Slack's Retry-After, else a doubling backoff with jitter."""
    if result.retry_after is not None:
        return result.retry_after
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** min(item.attempts, 16)) * (0.5 + random.random())


def about_item(item: OwedMessage) -> dict[str, Any]:
    """A log line's fields for a line about one owed message: its watch and channel."""
    return about(watch=item.watch_id, channel=item.channel)


class Outcomes:
    """Does what the outcome of one send says, to the outbox, the watch and the notifier's other stages."""

    def __init__(self, db: Store, clock: Callable[[], float], metrics: Metrics, pace: Pace, halt: TokenHalt,
                 outage: Outage, owed_again: Callable[[], None], sent: Callable[[int], None]) -> None:
        self.db = db
        self.clock = clock
        self.metrics = metrics
        self.pace = pace
        self.halt = halt
        self.outage = outage
        self._owed_again = owed_again  # a new message is owed (a new parent, an upload's note)
        self._sent = sent  # told the watch id of each message Slack took
        self.sent_count = 0

    async def apply(self, item: OwedMessage, result: Result, who: WhoSends) -> None:
        if result.unknown:
            log.error("watch %s: sending %s failed %d times (%s, not in Slack's error table); dropped it",
                      item.watch_id, item.kind, UNKNOWN_TRIES, result.error, extra=about_item(item))
        if result.outcome is Outcome.SENT or result.method is not None:  # Slack answered
            self.outage.answered()
        match result.outcome:
            case Outcome.SENT:
                await self.db.run(store.sent, item.id, result.ts)
                self.sent_count += 1
                self._replied(item)
                self._sent(item.watch_id)
                self.halt.message_went()
            case Outcome.RETRY:
                await self._retry(item, result)
            case Outcome.STOP_SENDING:
                self.halt.halt(result.error)
                await self.db.run(store.release, item.id)  # refused before anything happened: owed as before
            case Outcome.REPOST_PARENT:
                log.warning("watch %s: the parent message cannot be edited or replied to (%s); "
                            "posting a new one", item.watch_id, result.error, extra=about_item(item))
                await self.db.run(store.forget_parent, item.watch_id, self.clock())
                self._owed_again()
            case Outcome.NO_UPLOAD:
                await self._no_upload(item, result.error)
            case Outcome.DROP:
                if not result.unknown:
                    log.error("watch %s: Slack refused a %s message for good (%s); "
                              "dropped it, the thread goes on", item.watch_id, item.kind, result.error,
                              extra=about_item(item))
                await self.db.run(store.sent, item.id, None)
            case Outcome.END_WATCH:
                await self.refused(item, result.error, who)

    async def refused(self, item: OwedMessage, error: str, who: WhoSends) -> None:
        """Slack will take nothing more for this watch (its channel is gone, the bot was removed from
        it...)."""
        match who:
            case WhoSends.PASS:
                log.warning("watch %s: Slack answered %s for channel %s: ending the watch", item.watch_id,
                            error, item.channel, extra=about_item(item))
                await self.db.run(store.end_watch_for_slack, item.watch_id, error, self.clock())
            case WhoSends.CREATED:  # nothing of it reached Slack: nothing to keep
                await self.db.run(store.discard_watch, item.watch_id)
            case WhoSends.RESUMED:  # the thread and its history stay; the watch ends again
                await self.db.run(store.end_watch_for_slack, item.watch_id, error, self.clock())
            case WhoSends.BESIDE:
                pass

    def _replied(self, item: OwedMessage) -> None:
        """A state change's reply is in Slack: how long after the poll that saw the change (its row was
        owed at that poll's time, in the same transaction)."""
        if item.kind is OutboxKind.EVENT and isinstance(event := event_of(item.payload), Changed):
            self.metrics.change_replied(event.job.backend, self.clock() - item.created_at)

    async def _retry(self, item: OwedMessage, result: Result) -> None:
        delay = retry_delay(item, result)
        if result.retry_after is not None:
            if result.method == "chat.postMessage":  # the channel's second (the sender held other methods')
                self.pace.cool(item.channel, delay)
            self.metrics.slack_waits(delay)
        if result.unreachable:
            self.outage.met(item.id, result.error)
            log.debug("watch %s: sending %s failed (%s); retrying in %.0f s", item.watch_id, item.kind,
                      result.error, delay, extra=about_item(item))
        else:
            log.warning("watch %s: sending %s failed (%s); retrying in %.0f s", item.watch_id, item.kind,
                        result.error, delay, extra=about_item(item))
        await self.db.run(store.retry_later, item.id, self.clock() + delay)

    async def _no_upload(self, item: OwedMessage, error: str) -> None:
        """The upload is refused: drop the file, and say in the thread where the log is instead."""
        filename = str(item.payload.get("filename") or "the log")
        pair = await self.db.run(store.watch_and_job, item.watch_id)
        paths = pair[1].log_path_list if pair is not None else []
        path = next((p for p in paths if p.replace("\\", "/").rsplit("/", 1)[-1] == filename), None)
        log.warning("watch %s: Slack refused the upload of %s (%s); the thread says where the log is instead",
                    item.watch_id, filename, error, extra=about_item(item))
        await self.db.run(store.replace_owed, item.id, messages.upload_refused(filename, path, error),
                          self.clock())
        self._owed_again()
