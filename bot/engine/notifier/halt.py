"""The notifier's halt: token trouble (a revoked token, an uninstalled app) stops all sending until Slack
takes the token again. Everything owed stays in the outbox; the halt is said once in the log and on /healthz
(`slack_state`), and `auth.test` is probed on a backoff; the first probe that passes resumes sending.

"Halt" is only this; shutting the notifier down is `Notifier.stop`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.slack.sender import SlackError, SlackSender, SlackUnreachable

log = logging.getLogger("bot.engine.notifier")

PROBE_FIRST = 5.0  # seconds to the first auth.test after Slack refused the token; doubling from there...
PROBE_MAX = 300.0  # ...up to this


@dataclass(frozen=True)
class Halted:
    """Why nothing is sent: the Slack error that halted it, and since when (wall clock)."""

    error: str
    since: float

    def __str__(self) -> str:
        return f"{self.error} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.since))}"


class TokenHalt:
    def __init__(self, slack: SlackSender, clock: Callable[[], float], resumed: Callable[[], None]) -> None:
        self.slack = slack
        self.clock = clock
        self._resumed = resumed  # told when sending may go on
        self.why: Halted | None = None
        self.probe_first = PROBE_FIRST
        self._failed_probes = 0  # auth.test probes that failed since a message last went out
        self._next_probe = 0.0
        self._said: str | None = None  # the halt already logged, until a message goes out again

    def halt(self, error: str) -> None:
        """Send nothing until an auth.test passes. Logged once per halt, not per message."""
        if self.why is not None:
            return
        self.why = Halted(error, self.clock())
        self._next_probe = time.monotonic() + self._probe_delay()
        level = logging.INFO if self._said == error else logging.ERROR
        log.log(level, "Slack refuses the bot (%s): sending stopped, everything owed stays in the outbox; "
                       "checking with auth.test in %g s, then less often (up to every %g s)",
                error, self._probe_delay(), PROBE_MAX)
        self._said = error

    def message_went(self) -> None:
        """A message reached Slack: a later halt is news again, and probes start from the first delay."""
        self._said = None
        self._failed_probes = 0

    def _probe_delay(self) -> float:
        return min(PROBE_MAX, self.probe_first * 2.0 ** min(self._failed_probes, 16))

    async def probe(self) -> None:
        """When halted and a probe is due: auth.test; passed, sending resumes."""
        if self.why is None or time.monotonic() < self._next_probe:
            return
        try:
            await self.slack.auth_test()
        except (SlackError, SlackUnreachable) as exc:
            self._failed_probes += 1
            self._next_probe = time.monotonic() + self._probe_delay()
            why = exc.error if isinstance(exc, SlackError) else str(exc)
            log.debug("auth.test: %s; next check in %g s", why, self._probe_delay())
            return
        log.info("Slack accepts the bot's token again (it was stopped: %s); sending what is owed", self.why)
        self.why = None
        self._resumed()
