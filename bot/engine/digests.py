"""Daily digests: once a day per configured channel, the jobs of the channel that ended since the previous
digest (counts by outcome, each failure with its first line and its thread).

Each digest is a day in its channel's time zone: the day's digest is due at `at` local time and covers the
jobs that ended between the previous digest's due time and this one's. `tick()` (on the APScheduler loop,
and once at start) writes the newest due day's digest if it is not written yet (bot/store/digests.py: one
row per channel and day, so two replicas or two starts write one), then posts what is written and not
sent. A bot that was down at the due time posts it at start; one down for days posts one digest covering
them all. A day on which no job ended writes its row and posts nothing.

Daylight saving: `at` in a day it does not exist (the spring gap) is the moment the clock jumps to (02:30
in a gap from 02:00 to 03:00 is 03:30 local, an hour after the gap began); in a day it exists twice (autumn)
it is the first of the two.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from bot.domain.jobs import JobView
from bot.rendering import messages
from bot.slack.errors import Outcome, classify
from bot.slack.sender import SlackError, SlackSender, SlackUnreachable
from bot.store import Store
from bot.store import digests as rows
from bot.support.config import BackendConfig, DigestConfig

log = logging.getLogger(__name__)

HOLD = 60.0  # seconds a replica holds a digest it is posting before another may try
RETRY = 60.0  # seconds before a digest Slack could not take now is tried again
TICK = 30.0  # seconds between looks for a digest that is due


def due_at(day: date, at: str, tz: ZoneInfo) -> float:
    """When `day`'s digest is due: `at` ("HH:MM") that day in `tz` (see the module's note on DST)."""
    hour, minute = (int(p) for p in at.split(":"))
    local = datetime.combine(day, clock_time(hour, minute), tzinfo=tz)  # fold=0: the first of a doubled hour
    return local.timestamp()


def latest_due(now: float, at: str, tz: ZoneInfo) -> tuple[date, float]:
    """The newest day whose digest is due by `now`, and when it was due."""
    today = datetime.fromtimestamp(now, tz).date()
    for day in (today, today - timedelta(days=1), today - timedelta(days=2)):
        when = due_at(day, at, tz)
        if when <= now:
            return day, when
    raise AssertionError("a digest is due at least once in any two days")  # pragma: no cover


class Digests:
    """Writes and posts the configured channels' daily digests; `clock` is injectable (tests)."""

    def __init__(self, db: Store, slack: SlackSender, configs: Sequence[DigestConfig],
                 clock: Callable[[], float] = time.time,
                 backends: Mapping[str, BackendConfig] | None = None) -> None:
        self.db = db
        # each backend's `details` rule: a failure's text only where allowed
        self.backends = dict(backends or {})
        self.slack = slack
        self.configs = list(configs)
        self.clock = clock
        self.posted = 0
        self._task: asyncio.Task[None] | None = None

    def _shown(self, job: JobView, channel: str) -> JobView:
        """The job as the digest's channel may see it: without the failure text where its backend's `details`
        does not allow it there, or that is no longer configured (bot/operations/permissions.py); the digest
        then says "no message"."""
        cfg = self.backends.get(job.backend)
        return (job if cfg is not None and messages.details_allowed(cfg, channel)
                else messages.without_details(job))

    async def tick(self) -> None:
        """Write each channel's newest due digest if it is not written yet, then post what is owed, in a
        task of its own that `stop()` lets finish (a post is marked sent before the process stops)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._tick())
        await asyncio.shield(self._task)

    async def stop(self, until: float) -> None:
        """A tick under way gets until `until` (the loop's clock), then is abandoned: a digest posted and not
        yet marked sent is posted again after HOLD, the rest stays owed in the database."""
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), max(0.0, until - asyncio.get_running_loop().time()))
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _tick(self) -> None:
        """A failure is logged and tried again at the next tick: nothing is lost, it is in the database."""
        if not self.configs:
            return
        for config in self.configs:
            try:
                await self.write(config)
            except Exception:
                log.exception("writing the daily digest of %s failed; trying again in %g s",
                              config.channel, TICK)
        try:
            await self.send()
        except Exception:
            log.exception("posting daily digests failed; trying again in %g s", TICK)

    async def write(self, config: DigestConfig) -> bool:
        """Write the channel's newest due digest; False when it is written already (by this replica or
        another, before or after a restart)."""
        now = self.clock()
        day, until = latest_due(now, config.at, ZoneInfo(config.timezone))
        window = await self.db.run(rows.digest_window, config.channel, day.isoformat(), until,
                                   until - 86400.0)
        if window is None:
            return False
        ended = [(self._shown(e.job, config.channel), await self._link(config.channel, e.parent_ts))
                 for e in window.ended]
        reply = messages.digest(day.isoformat(), ended) if ended else None
        try:
            await self.db.run(rows.add_digest, config.channel, day.isoformat(), window, reply, now)
        except IntegrityError:
            return False  # another replica wrote it first
        log.info("daily digest of %s for %s: %d jobs ended", config.channel, day.isoformat(), len(ended))
        return True

    async def _link(self, channel: str, ts: str | None) -> str | None:
        """The thread's permalink, or its /archives/ path when Slack gives none now."""
        if ts is None:
            return None
        try:
            link = await self.slack.permalink(channel, ts)
        except (SlackError, SlackUnreachable):
            link = None
        return link or messages.thread_link(channel, ts)

    async def send(self) -> None:
        """Post each written digest not sent yet, claimed first (one replica posts it)."""
        now = self.clock()
        for digest_id in await self.db.run(rows.due_digests, now):
            owed = await self.db.run(rows.claim_digest, digest_id, now, HOLD)
            if owed is None:
                continue
            try:
                await self.slack.post_message(owed.channel, owed.reply)
            except (SlackError, SlackUnreachable) as exc:
                await self._failed(owed, exc)
                continue
            await self.db.run(rows.digest_sent, digest_id, self.clock())
            self.posted += 1

    async def _failed(self, owed: rows.OwedDigest, exc: SlackError | SlackUnreachable) -> None:
        outcome = classify(exc.method, exc.error) if isinstance(exc, SlackError) else Outcome.RETRY
        why = exc.error if isinstance(exc, SlackError) else str(exc)
        if outcome in (Outcome.RETRY, Outcome.STOP_SENDING) and owed.attempts < 24 * 60:
            delay = max(RETRY, exc.retry_after or 0.0) if isinstance(exc, SlackError) else RETRY
            log.warning("the daily digest of %s for %s was not posted (%s); trying again in %g s",
                        owed.channel, owed.day, why, delay)
            await self.db.run(rows.digest_retry, owed.id, self.clock() + delay)
            return
        log.error("Slack refuses the daily digest of %s for %s (%s); it is dropped",
                  owed.channel, owed.day, why)
        await self.db.run(rows.digest_sent, owed.id, self.clock())
