"""Stage 5 of the notifier: one claimed message rendered now and sent. The parent and its updates are
rendered from the database as it is; an event with bot/rendering/messages.py, with its details only where its
backend's `details` allows them now (bot/operations/permissions.py). A parent owed again after a crash
mid-send is looked for in the channel's history (by the watch id in its message metadata) before a second one
is posted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot import store
from bot.backends.base import Backend
from bot.domain.jobs import OutboxKind, Reply, Upload, event_of
from bot.engine.notifier.outcome import Result, about_item, outcome_of
from bot.engine.notifier.pace import Pace
from bot.rendering import messages
from bot.slack.budget import Priority
from bot.slack.errors import Outcome, classify
from bot.slack.sender import SlackError, SlackSender, SlackUnreachable
from bot.store import OwedMessage, Store

log = logging.getLogger("bot.engine.notifier")


def render_reply(item: OwedMessage, backends: Mapping[str, Backend]) -> Reply:
    """A `reply` or `event` row as it is posted: an event is rendered now, from the job as it was then, and
    with its details only where its backend's `details` allows them now (bot/operations/permissions.py)."""
    if item.kind is OutboxKind.EVENT:
        event = event_of(item.payload)
        backend = backends.get(event.job.backend)  # a backend no longer configured: no details (fail closed)
        hidden = (messages.details_line(backend.config, item.channel) if backend is not None
                  else messages.NO_DETAILS)
        return messages.event_reply(event, hidden)
    return Reply.of_payload(item.payload)


class Send:
    def __init__(self, db: Store, slack: SlackSender, backends: Mapping[str, Backend], pace: Pace) -> None:
        self.db = db
        self.slack = slack
        # whose backends can cancel (the parent's Cancel button), and their `details`
        self.backends = backends
        self.pace = pace

    async def __call__(self, item: OwedMessage) -> Result:
        """Send one claimed message; what it came to (a failure is an outcome, not an exception)."""
        try:
            return Result(Outcome.SENT, ts=await self._post(item))
        except Exception as exc:
            if not isinstance(exc, SlackError | SlackUnreachable):  # a failed upload step, or a bug of ours
                log.warning("watch %s: sending %s raised %s", item.watch_id, item.kind, type(exc).__name__,
                            exc_info=True, extra=about_item(item))
            return outcome_of(item, exc)

    async def _post(self, item: OwedMessage) -> str | None:
        """Send one message as it reads now; returns a parent's ts."""
        if item.kind is OutboxKind.PARENT:
            if item.attempts > 0:
                found = await self._earlier_parent(item)
                if found:
                    log.info("parent of watch %s was already posted before a restart (ts %s)",
                             item.watch_id, found, extra=about_item(item))
                    return found
            parent = await self._parent(item.watch_id)
            if parent is None:
                return None
            await self.pace.take(item.channel)
            return await self.slack.post_parent(item.channel, *parent, watch_id=item.watch_id)
        thread = item.parent_ts
        assert thread is not None  # the claim stage lets nothing of a watch go before its parent
        if item.kind is OutboxKind.UPDATE:
            parent = await self._parent(item.watch_id)
            if parent is not None:
                await self.slack.update(item.channel, thread, *parent)
            return None
        if await self._withheld(item):
            return None
        await self.pace.take(item.channel)
        if item.kind is OutboxKind.FILE:
            await self.slack.upload(item.channel, thread, Upload.of_payload(item.payload))
        elif item.kind is OutboxKind.EVENT:
            # a state change (a failure, an outage, a timeout): first in the budget
            await self.slack.post_reply(item.channel, thread, render_reply(item, self.backends),
                                        priority=Priority.CHANGE)
        else:
            await self.slack.post_reply(item.channel, thread, render_reply(item, self.backends))
        return None

    async def _withheld(self, item: OwedMessage) -> bool:
        """Whether `item` is a job's details (its details reply, or its log: every file is one) that the
        backend's `details` no longer allows in the item's channel, or what happened to the job (an event,
        details) in a channel its backend's `channels` no longer allows. Owed while the rules allowed it
        (Slack was down, say) and the config changed since: it is dropped, not posted by yesterday's rules
        (the thread got the state and where the details are, as the change reply is rendered when sent; a
        channel taken out keeps only the bot's own notes and its parent, whose buttons offer Rewatch, refused
        there)."""
        if item.kind is not OutboxKind.FILE and item.kind is not OutboxKind.EVENT and not (
                item.kind is OutboxKind.REPLY and item.payload.get("details")):
            return False
        pair = await self.db.run(store.watch_and_job, item.watch_id)
        backend = self.backends.get(pair[1].backend) if pair is not None else None
        if backend is not None and backend.config.allows_channel(item.channel) and (
                item.kind is OutboxKind.EVENT or messages.details_allowed(backend.config, item.channel)):
            return False
        log.info("watch %s: its job's details are not allowed in this channel now; dropped the owed %s",
                 item.watch_id, item.kind, extra=about_item(item))
        return True

    async def _parent(self, watch_id: int) -> tuple[str, list[dict[str, Any]]] | None:
        """The parent message of a watch, rendered from the database as it is now."""
        pair = await self.db.run(store.watch_and_job, watch_id)
        if pair is None:
            return None
        w, j = pair
        backend = self.backends.get(j.backend)
        can_cancel = backend is not None and backend.can_cancel and j.cancel_requested_at is None
        hidden = (messages.details_line(backend.config, w.channel)
                  if backend is not None and backend.config.allows_channel(w.channel)
                  else messages.NO_DETAILS)
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
                        extra=about_item(item))
            return None
