"""Slack unreachable (the network): one WARNING line when the first message meets it, one when Slack answers
again (how long, how many messages waited); each message's retry at DEBUG; the counts in /metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.metrics import Metrics

log = logging.getLogger("bot.engine.notifier")


class Outage:
    def __init__(self, clock: Callable[[], float], metrics: Metrics, retry_max: float) -> None:
        self.clock = clock
        self.metrics = metrics
        self.retry_max = retry_max  # for the log line: how often a waiting message is tried at most
        self._since: float | None = None  # (self.clock) Slack could not be reached since then...
        self._waited: set[int] = set()  # ...and the owed messages that met it meanwhile

    def met(self, outbox_id: int, error: str) -> None:
        """A message met the network between the bot and Slack: the first one since Slack last answered says
        so in the log; the others are counted (the message stays owed, retried with backoff)."""
        self._waited.add(outbox_id)
        if self._since is not None:
            return
        self._since = self.clock()
        self.metrics.slack_unreachable()
        log.warning("%s: messages stay owed and are retried with backoff (up to every %g s); one line here "
                    "when Slack answers again, each retry at DEBUG", error, self.retry_max)

    def answered(self) -> None:
        """Slack answered: the end of an outage, when there was one."""
        if self._since is None:
            return
        seconds = max(0.0, self.clock() - self._since)
        waited = len(self._waited)
        self._since = None
        self._waited = set()
        self.metrics.slack_reachable(seconds, waited)
        log.warning("Slack is reachable again after %.0f s; %d messages waited for it and are being sent",
                    seconds, waited)
