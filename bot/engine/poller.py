"""Polls the jobs that are due, once per job however many channels watch it, and records what changed.

The schedule is a heap of (due time, job) in memory, loaded from the database at start; `tick()` runs on
an APScheduler interval, pops what is due and starts the polls as tasks, so a tick with nothing due costs
one comparison and a slow vendor holds up nothing. An answer that changes nothing is not written: only
its next poll time, and those are flushed in one batch every few seconds (so they survive a restart).
Answers that change something are written in batches, each with the Slack messages it owes.

Replicas on PostgreSQL (`replica` set): the schedule holds the jobs this replica owns. `rebalance()`, the
heartbeat bot/engine/replicas.py runs every lease/3, keeps them (a live replica's jobs stay its own), takes
jobs up to the fair share and gives back the rest (bot/store/leases.py), and the schedule follows. Every write
of a scheduled poll checks, under a row lock, that the job is still this replica's: a poll whose lease was
lost writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from bot import store
from bot.backends.base import Backend
from bot.domain.errors import BackendError, BadResponse, TooSlow
from bot.domain.jobs import Change, JobView, Upload, change_of
from bot.domain.status import JobStatus
from bot.metrics import Metrics
from bot.rendering import messages
from bot.store import PollResult, Store, Tracked, leases
from bot.support.config import Settings
from bot.support.logs import about

log = logging.getLogger(__name__)

BATCH_CHUNK = 500
MAX_DUE_PER_TICK = 5000
FLUSH_EVERY = 5.0  # seconds between writes of unchanged jobs' next poll times
PRUNE_BATCHES = 20  # history pruning batches per upkeep: the rest waits for the next one, which comes soon
AWAY_INTERVALS = 3.0  # a job whose stored next poll is this many intervals past...
# a heartbeat gives back last the jobs due within this many seconds (at most a quarter of their interval)
KEEP_DUE_WITHIN = 5.0
AWAY_FLOOR = 60.0  # ...and at least this many seconds, when the schedule is loaded: the bot was away


@dataclass
class Batch:
    """A backend with a batch status API (Immuta): all its jobs are asked in one request per cycle."""

    jobs: set[int] = field(default_factory=set)
    next_at: float = 0.0
    errors: int = 0


@dataclass
class Write:
    """A poll result waiting to be written, with the job it is of."""

    job: Tracked
    result: PollResult


class Poller:
    def __init__(
        self,
        db: Store,
        backends: Mapping[str, Backend],
        kick: Callable[[], None],
        settings: Settings,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        *,
        replica: str | None = None,
    ) -> None:
        self.db = db
        self.backends = backends
        self.kick = kick  # wakes the notifier: something is owed to Slack
        self.settings = settings
        self.clock = clock
        self._jobs: dict[int, Tracked] = {}
        self._heap: list[tuple[float, int]] = []  # (due, job) for backends polled job by job
        self._batches: dict[str, Batch] = {}  # backends polled in batches, one cycle for all their jobs
        self._inflight: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writes: list[Write] = []
        self._write_wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._upkeep: asyncio.Task[None] | None = None
        self._dirty: dict[int, float] = {}  # job -> next poll time not yet in the database
        # jobs loaded long past their next poll: their first change is "while I was away"
        self._away: set[int] = set()
        self._next_flush = 0.0
        self._next_sweep = 0.0
        self.sweep_every = 30.0  # seconds between looks for outages to note and watches past their timeout
        self.prune_every = 600.0  # seconds between prunings of history older than settings.history_retention
        self._next_prune = 0.0
        self.polls = 0
        self.loaded = False  # the schedule has been read from the database (readiness)
        self.replica = replica  # replicas on PostgreSQL: this one's id (bot/engine/replicas.py); None: alone
        self.lease = settings.lease_seconds  # the notifier's channel leases are as long (bot/app.py)
        self.metrics = metrics or Metrics(clock)
        self.metrics.jobs_tracked_from(self.tracked)

    # -- the schedule ---------------------------------------------------------------------------------
    @property
    def scheduled(self) -> int:
        return len(self._jobs)

    def owns(self, job_pk: int) -> bool:
        """Whether the job is in this poller's schedule."""
        return job_pk in self._jobs

    def tracked(self) -> dict[str, int]:
        """Jobs in the schedule by backend (every configured backend, 0 for one with none)."""
        out = dict.fromkeys(self.backends, 0)
        for job in self._jobs.values():
            out[job.backend] = out.get(job.backend, 0) + 1
        return out

    def interval(self, backend: str, job: Tracked | None = None, now: float | None = None) -> float:
        """Seconds to the next poll: the backend's interval (at least the vendor's minimum); a job unchanged
        for long backs off towards `max_poll_interval` when one is configured."""
        b = self.backends[backend]
        base: float = max(b.config.poll_interval, b.min_poll_interval)
        cap: float | None = b.config.max_poll_interval
        if job is None or cap is None or cap <= base:
            return base
        quiet = (self.clock() if now is None else now) - job.changed_at
        return min(cap, max(base, quiet / 10.0))

    async def load(self) -> int:
        """Read every polled job from the database into the schedule (a replica: its share). Overdue ones
        are spread over their interval so a restart after downtime does not ask every vendor everything at
        once."""
        self._jobs.clear()
        self._heap = []
        self._batches = {}
        if self.replica is not None:
            await self.rebalance()
        else:
            self._adopt(await self.db.run(store.polling_jobs))
        self.loaded = True
        return len(self._jobs)

    def _adopt(self, jobs: list[Tracked]) -> None:
        """Schedule jobs read from the database. One whose next poll is long past (the bot, or the replica
        that polled it, was down: AWAY_INTERVALS intervals and AWAY_FLOOR seconds) is `away`: the first answer
        that changes it is told as one "while I was away" reply."""
        now = self.clock()
        for job in jobs:
            if job.backend not in self.backends:
                continue  # its backend left the config: it waits for it to come back
            if now - job.due > max(AWAY_FLOOR, AWAY_INTERVALS * self.interval(job.backend)):
                self._away.add(job.pk)
            if job.due < now:
                job.due = now + random.uniform(0.0, min(self.interval(job.backend), 60.0))
            self._schedule(job, job.due)

    async def rebalance(self) -> leases.Balance:
        """A replica's heartbeat: say it is alive, take or give back jobs (bot/store/leases.py), and make
        the schedule hold exactly the jobs it owns. Answers and next poll times are written first, for those
        it gives."""
        assert self.replica is not None
        await self._apply_writes()
        await self._flush()
        # given back last (only when too few others are left): the jobs being polled now, those answered since
        # the writes above (their next poll time is not in the database yet), and those due before the
        # heartbeat's database call is likely over (a poll started meanwhile would be the giver's, and the
        # taker, finding the job due, would ask again at once): twice within a vendor's per-job limit
        now = self.clock()
        soon = {name: now + min(KEEP_DUE_WITHIN, self.interval(name) / 4) for name in self.backends}
        keep = sorted(self._inflight.union(
            self._dirty, (w.job.pk for w in self._writes),
            (pk for pk, job in self._jobs.items() if job.due <= soon[job.backend])))
        balance = await self.db.run(leases.balance, self.replica, self.lease, list(self.backends), keep)
        for pk in [pk for pk in self._jobs if pk not in balance.owned]:
            # given back, or lost (this replica missed its lease): a poll under way writes nothing
            self._drop(pk)
        new = balance.owned.difference(self._jobs)
        if new:
            self._adopt(await self.db.run(store.polling_jobs, new))
        return balance

    async def track(self, job_pk: int) -> None:
        """Take a job's polling state from the database after a user changed it (watch, stop, rewatch,
        cancel): schedule it at its stored next poll time, or drop it. A replica takes the job unless a live
        one polls it already, and tells the others, so that one reads it again (`retrack`)."""
        if self.replica is not None:
            if not await self.db.run(leases.claim_job, self.replica, self.lease, job_pk):
                self._drop(job_pk)
                await self.db.run(leases.notify, f"job {job_pk}")
                return
        await self.retrack(job_pk)

    async def retrack(self, job_pk: int) -> None:
        """Read a job this poller schedules again (a replica: told another changed it)."""
        job = await self.db.run(store.polling_job, job_pk)
        if job is None:
            self._drop(job_pk)
            return
        if job.backend not in self.backends:
            return
        self._schedule(job, job.due)

    def _batch(self, backend: str) -> Batch:
        return self._batches.setdefault(backend, Batch(next_at=self.clock()))

    def _schedule(self, job: Tracked, due: float) -> None:
        job.due = due
        self._jobs[job.pk] = job
        if self.backends[job.backend].capabilities.batch:
            self._batch(job.backend).jobs.add(job.pk)  # asked at the backend's next cycle
        else:
            heapq.heappush(self._heap, (due, job.pk))

    def _drop(self, job_pk: int) -> None:
        job = self._jobs.pop(job_pk, None)  # its heap entries are skipped when they come up
        self._dirty.pop(job_pk, None)
        self._away.discard(job_pk)
        if job is not None and job.backend in self._batches:
            self._batches[job.backend].jobs.discard(job_pk)

    # -- the tick ------------------------------------------------------------------------------------
    async def tick(self) -> None:
        now = self.clock()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop())
        if now >= self._next_sweep and (self._upkeep is None or self._upkeep.done()):
            # database upkeep runs beside the tick, never in it: the tick itself stays a heap peek
            self._next_sweep = now + self.sweep_every
            self._upkeep = asyncio.create_task(self._sweep(now))
        if now >= self._next_flush and self._dirty:
            self._next_flush = now + FLUSH_EVERY
            self._spawn(self._flush())
        earliest: float | None = None  # when the most overdue poll this tick starts was due: how late it runs
        for name, batch in self._batches.items():
            if batch.jobs and now >= batch.next_at:
                earliest = batch.next_at if earliest is None else min(earliest, batch.next_at)
                batch.next_at = now + self.interval(name)
                jobs = [self._jobs[pk] for pk in batch.jobs if pk not in self._inflight]
                self._inflight.update(j.pk for j in jobs)
                for i in range(0, len(jobs), BATCH_CHUNK):
                    self._spawn(self._poll(self.backends[name], jobs[i : i + BATCH_CHUNK]))
        heap = self._heap
        taken = 0
        while heap and heap[0][0] <= now and taken < MAX_DUE_PER_TICK:
            at, pk = heapq.heappop(heap)
            job = self._jobs.get(pk)
            if job is None or job.due != at or pk in self._inflight:
                continue  # dropped, rescheduled since, or being polled now (it reschedules itself)
            self._inflight.add(pk)  # a second entry for the same time (the job tracked again) is skipped
            self._spawn(self._poll(self.backends[job.backend], [job]))
            earliest = at if earliest is None else min(earliest, at)
            taken += 1
        if earliest is not None:
            self.metrics.loop_lag("poller", now - earliest)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, until: float) -> None:
        """Polls under way get until `until` (the loop's clock), then are abandoned (their jobs keep their
        stored next poll, so they are asked again after the next start); what was answered is written and
        the schedule saved. The caller bounds the writing."""
        loop = asyncio.get_running_loop()
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=max(0.0, until - loop.time()))
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
        for task in (self._writer, self._upkeep):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._apply_writes()
        await self._flush()

    # -- polling -------------------------------------------------------------------------------------
    async def _poll(self, backend: Backend, jobs: list[Tracked], force: bool = False) -> None:
        """Poll `jobs` and record the answers. A scheduled poll (not `force`: not a user's Refresh) waits
        behind users' requests for one of the backend's slots (bot/backends/slots.py): it is marked scheduled
        on the `UsersFirst` those slots answer to (the Runtime's one, given to every backend by
        build_backends); one of a job whose last answer came too slowly waits for the backend's slow lane
        before that (bot/backends/base.py)."""
        slow = not force and len(jobs) == 1 and jobs[0].error_kind == TooSlow.kind
        with contextlib.nullcontext() if force else backend.limit.priority.scheduled():
            if slow:  # its last answer came too slowly: it waits for the backend's slow lane first
                async with backend.slow_lane:
                    await self._ask(backend, jobs, force)
            else:
                await self._ask(backend, jobs, force)

    async def _ask(self, backend: Backend, jobs: list[Tracked], force: bool) -> None:
        try:
            if not backend.capabilities.batch:
                try:
                    results: Mapping[str, JobStatus | BackendError] = {
                        jobs[0].job_id: await backend.status(jobs[0].job_id)}
                except BackendError as exc:
                    results = {jobs[0].job_id: exc}
            else:
                batch = self._batches.get(backend.name)
                try:
                    results = await backend.statuses([j.job_id for j in jobs])
                    if batch is not None:
                        batch.errors = 0
                except BackendError as exc:
                    results = {j.job_id: exc for j in jobs}
                    if batch is not None:  # the whole backend is in trouble: its next cycle backs off
                        batch.errors += 1
                        batch.next_at = max(batch.next_at, self.clock() + self._backoff(
                            backend.name, batch.errors, exc.retry_after))
            for job in jobs:
                res = results.get(job.job_id)
                if res is None:
                    res = BadResponse(f"{backend.name} said nothing about job {job.job_id}")
                self._record(job, res, force)
        except asyncio.CancelledError:
            raise
        except Exception:  # one bad answer or bug must never stop the poller or another watch
            log.exception("polling %s failed unexpectedly", backend.name, extra=about(backend=backend.name))
            now = self.clock()
            for job in jobs:
                if job.pk in self._jobs:
                    self._schedule(job, now + self.interval(backend.name))
        finally:
            self._inflight.difference_update(j.pk for j in jobs)

    def _record(self, job: Tracked, res: JobStatus | BackendError, force: bool) -> None:
        """Schedule the next poll; queue a database write only when the answer changes something."""
        now = self.clock()
        self.polls += 1
        change = change_of(job, res) if isinstance(res, JobStatus) else Change.NONE
        if isinstance(res, JobStatus):
            self.metrics.poll(job.backend, None, changed=change is not Change.NONE)
        else:
            self.metrics.poll(job.backend, res)
        scheduled = job.pk in self._jobs
        if not scheduled and not force:
            return  # stopped while it was being polled
        away = False
        if isinstance(res, JobStatus):
            if res.job_id != job.job_id:  # an adapter may normalise the id; keep ours
                res = replace(res, job_id=job.job_id)
            due = now + self.interval(job.backend, job, now) * random.uniform(0.95, 1.05)
            # an answer that changes nothing is not written, unless it finds a flapping job settled: that owes
            # a note
            quiet = job.errors == 0 and change is Change.NONE and not job.settling(now)
            away = job.pk in self._away  # this answer is the first since the bot came back: it settles that
            self._away.discard(job.pk)
            if change is Change.STATE:
                job.changed_at = now
            if job.errors:
                log.info("%s job %s answers again", job.backend, job.job_id,
                         extra=about(job.backend, job.job_id))
            job.phase, job.vendor_status = res.phase, res.vendor_status
            job.progress, job.name, job.errors, job.error_kind = res.progress, res.name or job.name, 0, None
            if res.terminal:
                self._drop(job.pk)
            elif scheduled:
                self._schedule(job, due)
            if quiet and not force:
                self._dirty[job.pk] = due
                return
        else:
            due = now + self._backoff(job.backend, job.errors + 1, res.retry_after)
            if job.errors == 0:
                log.warning("%s job %s: %s", job.backend, job.job_id, res,
                            extra=about(job.backend, job.job_id))
            job.errors += 1
            if scheduled:
                self._schedule(job, due)
            if job.errors > 1 and res.kind == job.error_kind and not force:
                self._dirty[job.pk] = due  # this trouble is on record already
                return
            job.error_kind = res.kind
        self._dirty.pop(job.pk, None)
        self._writes.append(Write(job, PollResult(job.pk, res, now, due, force, away)))
        self._write_wake.set()

    def _backoff(self, backend: str, errors: int, retry_after: float | None) -> float:
        base = self.interval(backend)
        delay = min(base * (2.0 ** min(errors - 1, 6)), max(base, 300.0))
        delay *= random.uniform(0.8, 1.2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    async def _write_loop(self) -> None:
        while True:
            await self._write_wake.wait()
            self._write_wake.clear()
            try:
                await self._apply_writes()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing poll results failed; they will be polled again")

    async def _apply_writes(self) -> None:
        """Write every queued result in one transaction (batched when many jobs change at once)."""
        if not self._writes:
            return
        writes, self._writes = self._writes, []
        applied = await self.db.run(store.apply_results, [w.result for w in writes], self.replica)
        owed = False
        for w, a in zip(writes, applied, strict=True):
            owed = owed or a.owed > 0
            # the store decides whether the job flaps (store/polls.py)
            if isinstance(w.result.answer, JobStatus):
                w.job.flapping_since = a.flapping_since
            if not a.polling:
                self._drop(w.job.pk)
            if a.became_terminal and isinstance(w.result.answer, JobStatus):
                self._spawn(self.details_for(self.backends[w.job.backend], w.result.answer, a.ended_watches))
        if owed:
            self.kick()

    async def _flush(self) -> None:
        dirty, self._dirty = self._dirty, {}
        if dirty:
            await self.db.run(store.set_next_polls, list(dirty.items()), self.replica)

    async def poll_now(self, job_pk: int) -> None:
        """Poll one job right away and refresh its parents even if nothing changed (Refresh button).

        It may overlap a scheduled poll of the same job; recording the same answer twice is harmless.
        """
        job = self._jobs.get(job_pk) or await self.db.run(store.job_state, job_pk)
        if job is None or job.backend not in self.backends:
            return
        await self._poll(self.backends[job.backend], [job], force=True)
        await self._apply_writes()

    async def details_for(self, backend: Backend, st: JobStatus, watch_ids: list[int]) -> None:
        """After a job ends: what the backend can tell beyond the status (errors, logs, outputs), to the
        watches whose channel the backend's `details` allows now (bot/operations/permissions.py); the others'
        threads got the state and where the details are (messages.change), and the vendor is not even asked
        for them."""
        channels = await self.db.run(store.watch_channels, watch_ids)
        watch_ids = [w for w in watch_ids
                     if w in channels and messages.details_allowed(backend.config, channels[w])]
        if not watch_ids:
            return
        try:
            d = await backend.failure_details(st)
        except BackendError as exc:
            log.warning("%s job %s: could not read failure details: %s", backend.name, st.job_id, exc,
                        extra=about(backend.name, st.job_id))
            return
        except Exception:
            log.exception("%s job %s: reading failure details failed", backend.name, st.job_id,
                          extra=about(backend.name, st.job_id))
            return
        if d is None:
            return
        owed: list[store.Owed] = []
        reply = messages.details(JobView.of_status(backend.name, st, self.clock()), d)
        if reply is not None:
            owed.append(reply)
        if d.attachment is not None and d.attachment[1]:  # Slack refuses an empty file (missing_argument)
            owed.append(Upload.of_log(backend.name, st.job_id, d.attachment[1]))  # the name is the bot's
        await self.db.run(store.owe_many, watch_ids, owed, self.clock())
        self.kick()

    async def _sweep(self, now: float) -> None:
        """What the passing of time owes: outage notes, "longer than usual" notes, watches past their timeout,
        dropping jobs whose watches ended elsewhere (a channel archived, say), and now and then pruning old
        history."""
        try:
            owed = await self.db.run(self._notes, now)
            owed += await self.db.run(store.expire_watches, now, self.replica)
            polling = await self.db.run(store.polling_ids)
        except Exception:
            log.exception("poller upkeep failed; trying again at the next sweep")
            return
        for pk in [pk for pk in self._jobs if pk not in polling and pk not in self._inflight]:
            self._drop(pk)
        if owed:
            self.kick()
        if now >= self._next_prune:
            try:
                finished = await self.prune(now)
            except Exception:
                log.exception("pruning old history failed; trying again at the next sweep")
                return
            self._next_prune = now + self.prune_every if finished else now  # more left: at the next sweep

    def _notes(self, s: Session, now: float) -> int:
        """The notes time owes, in one transaction: outages, and runs longer than usual."""
        return (store.note_outages(s, now, self.settings.outage_note_after, self.replica)
                + store.note_late_runs(s, now, self.replica))

    async def prune(self, now: float, batches: int = PRUNE_BATCHES) -> bool:
        """Remove history older than the retention, one small transaction at a time (bot/store/history.py),
        at most `batches` of them. Returns whether nothing older is left."""
        before = now - self.settings.history_retention
        total, finished = store.Pruned(), False
        for _ in range(batches):
            batch = await self.db.run(store.prune_history, before)
            if not batch:
                finished = True
                break
            total += batch
        if total:
            log.info("pruned history older than %s UTC: %d state changes, %d ended watches, %d jobs, "
                     "%d digests",
                     time.strftime("%Y-%m-%d %H:%M", time.gmtime(before)), total.state_changes, total.watches,
                     total.jobs, total.digests)
        return finished

