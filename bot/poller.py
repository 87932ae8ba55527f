"""Polls the jobs that are due, once per job however many channels watch it, and records what changed.

`tick()` runs on an APScheduler interval; it only starts polls (as tasks) and returns, so a slow vendor
never holds up the tick or another backend. Each result is written in one transaction with the Slack
messages it owes, then the notifier is kicked.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from bot import messages, store
from bot.backends.base import Backend, BackendError, BadResponse, JobStatus
from bot.backends.states import Phase
from bot.config import Settings
from bot.notifier import Notifier, job_view
from bot.store import DueJob, Store

log = logging.getLogger(__name__)

BATCH_CHUNK = 500
MAX_DUE_PER_TICK = 5000


class Poller:
    def __init__(
        self,
        db: Store,
        backends: Mapping[str, Backend],
        notifier: Notifier,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.backends = backends
        self.notifier = notifier
        self.settings = settings
        self.clock = clock
        self._inflight: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake_at = 0.0  # no job is due before this (refreshed from the database)
        self._next_sweep = 0.0
        self.sweep_every = 30.0  # seconds between looks for outages to note and watches past their timeout
        self.polls = 0

    # -- scheduling ----------------------------------------------------------------------------------
    def interval(self, backend: str) -> float:
        b = self.backends[backend]
        return max(b.config.poll_interval, getattr(b, "min_poll_interval", 0.0))

    def wake(self) -> None:
        """Something became due sooner than we knew (a new watch, a Refresh, a cancel)."""
        self._wake_at = 0.0

    async def tick(self) -> None:
        now = self.clock()
        if now >= self._next_sweep:
            self._next_sweep = now + self.sweep_every
            await self._sweep(now)
        if now < self._wake_at:
            return
        due = await self.db.run(store.due_jobs, now, MAX_DUE_PER_TICK, frozenset(self._inflight))
        if not due:
            nxt = await self.db.run(store.next_due)
            self._wake_at = nxt if nxt is not None else now + 60.0
            return
        by_backend: dict[str, list[DueJob]] = {}
        for job in due:
            if job.backend not in self.backends:
                continue  # a backend removed from the config: its jobs wait for it to come back
            by_backend.setdefault(job.backend, []).append(job)
        for name, jobs in by_backend.items():
            backend = self.backends[name]
            self._inflight.update(j.pk for j in jobs)
            if backend.capabilities.batch:
                for i in range(0, len(jobs), BATCH_CHUNK):
                    self._spawn(self._poll_batch(backend, jobs[i : i + BATCH_CHUNK]))
            else:
                for job in jobs:
                    self._spawn(self._poll_batch(backend, [job]))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, grace: float = 10.0) -> None:
        """Let in-flight polls finish (their results are recorded); what does not finish is polled later."""
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            for t in pending:
                t.cancel()

    # -- polling -------------------------------------------------------------------------------------
    async def _poll_batch(self, backend: Backend, jobs: list[DueJob]) -> None:
        try:
            if len(jobs) == 1:
                try:
                    results: Mapping[str, JobStatus | BackendError] = {jobs[0].job_id: await backend.status(jobs[0].job_id)}
                except BackendError as exc:
                    results = {jobs[0].job_id: exc}
            else:
                try:
                    results = await backend.statuses([j.job_id for j in jobs])
                except BackendError as exc:
                    results = {j.job_id: exc for j in jobs}
            for job in jobs:
                res = results.get(job.job_id)
                if res is None:
                    res = BadResponse(f"{backend.name} said nothing about job {job.job_id}")
                await self._record(backend, job, res)
        except asyncio.CancelledError:
            raise
        except Exception:  # one bad answer or bug must never stop the poller or another watch
            log.exception("polling %s failed unexpectedly", backend.name)
            now = self.clock()
            await self.db.run(store.set_next_polls, [(j.pk, now + self.interval(backend.name)) for j in jobs])
        finally:
            self._inflight.difference_update(j.pk for j in jobs)

    async def _record(self, backend: Backend, job: DueJob, res: JobStatus | BackendError, force: bool = False) -> None:
        now = self.clock()
        self.polls += 1
        if isinstance(res, JobStatus):
            if res.job_id != job.job_id:  # an adapter may normalise; keep our id
                res = _with_id(res, job.job_id)
            nxt = now + self.interval(backend.name) * random.uniform(0.95, 1.05)
            applied = await self.db.run(
                store.apply_status, job.pk, res, now, nxt, self._render_change, self._render_recovered, force
            )
            if applied.became_terminal:
                self._spawn(self.details_for(backend, res, applied.ended_watches))
            if applied.owed:
                self.notifier.kick()
            if job.errors:
                log.info("%s job %s answers again", backend.name, job.job_id)
        else:
            nxt = now + self._backoff(backend.name, job.errors + 1, res.retry_after)
            if job.errors == 0:
                log.warning("%s job %s: %s", backend.name, job.job_id, res)
            await self.db.run(store.apply_error, job.pk, res, now, nxt)
        self._wake_at = min(self._wake_at, nxt)

    def _backoff(self, backend: str, errors: int, retry_after: float | None) -> float:
        base = self.interval(backend)
        delay = min(base * (2 ** min(errors - 1, 6)), max(base, 300.0))
        delay *= random.uniform(0.8, 1.2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    async def poll_now(self, job_pk: int) -> None:
        """Poll one job right away and refresh its parents even if nothing changed (Refresh button).

        It may overlap a scheduled poll of the same job; recording the same answer twice is harmless.
        """
        row = await self.db.run(_job_row, job_pk)
        if row is None or row.backend not in self.backends:
            return
        backend = self.backends[row.backend]
        try:
            res: JobStatus | BackendError = await backend.status(row.job_id)
        except BackendError as exc:
            res = exc
        await self._record(backend, DueJob(job_pk, row.backend, row.job_id, row.polls, row.errors), res, force=True)
        if isinstance(res, BackendError):
            await self.db.run(_owe_updates, job_pk)
            self.notifier.kick()

    async def details_for(self, backend: Backend, st: JobStatus, watch_ids: list[int]) -> None:
        """After a job ends: what the backend can tell beyond the status (errors, logs, outputs)."""
        try:
            d = await backend.failure_details(st)
        except BackendError as exc:
            log.warning("%s job %s: could not read failure details: %s", backend.name, st.job_id, exc)
            return
        except Exception:
            log.exception("%s job %s: reading failure details failed", backend.name, st.job_id)
            return
        if d is None:
            return
        view = messages.JobView.of_status(backend.name, st, self.clock())
        text = messages.details(view, d)
        attachment = None
        if d.attachment is not None:
            name, content = d.attachment
            attachment = messages.json_payload({"filename": name, "content_b64": base64.b64encode(content).decode()})
        await self.db.run(store.owe_many, watch_ids, [("reply", text), ("file", attachment)], self.clock())
        self.notifier.kick()

    async def _sweep(self, now: float) -> None:
        """Notes owed by the passing of time: outages that started to matter, watches past their timeout."""
        owed = await self.db.run(store.note_outages, now, self.settings.outage_note_after, self._render_outage)
        owed += await self.db.run(store.expire_watches, now, self._render_timeout)
        if owed:
            self.notifier.kick()

    # -- renderers handed to the store (they run inside its transaction) --------------------------------
    def _render_change(self, job: store.Job, watch: store.Watch, old_phase: Phase, old_word: str) -> str:
        return messages.change(job_view(job), watcher=watch.user_id, old_phase=old_phase, old_word=old_word)

    def _render_recovered(self, job: store.Job) -> str:
        return messages.recovered(job_view(job))

    def _render_outage(self, job: store.Job) -> str:
        return messages.outage(job_view(job), job.error_since or self.clock(), job.error_text or "no answer",
                               job.error_kind)

    def _render_timeout(self, job: store.Job) -> str:
        limit = (job.timeout_at or 0) - (job.created_at or 0)
        return messages.timed_out(job_view(job), max(limit, 0) / 3600)


def _with_id(st: JobStatus, job_id: str) -> JobStatus:
    from dataclasses import replace

    return replace(st, job_id=job_id)


def _job_row(s: Any, job_pk: int) -> store.Job | None:
    return s.get(store.Job, job_pk)


def _owe_updates(s: Any, job_pk: int) -> None:
    for w in store.watches_of(s, job_pk):
        store.owe(s, w, "update")
