"""Replicas on one PostgreSQL: this process's id, its heartbeat, and LISTEN for the others' news.

Every `jobstatus-bot run` on the same PostgreSQL database is a replica; PostgreSQL coordinates them
(bot/store/leases.py). This module runs the heartbeat: every lease/3 seconds `Poller.rebalance()` says
this replica is alive (which keeps its jobs its own) and takes or gives back jobs to keep the fair share,
and beside it the heartbeat alone is written on a database thread of its own (`_alive`), so a replica
whose store is busy with the poller's writes is not taken for dead.
It also LISTENs on the `jobstatus` channel, on a connection named by the replica's id: the others count a
replica live only while that session is connected (bot/store/leases.py: LIVE), so a killed replica's jobs move
at the others' next heartbeat. Notifications make the heartbeat come at once when a replica joins or leaves or
gives jobs back ("balance"), and a job another replica changed (a user watched, stopped or cancelled it
there) is read again by the one that polls it ("job <pk>"). Without LISTEN (its connection lost) the heartbeat
still comes every lease/3: notifications only make things sooner. The notifier's channel leases are its own
(bot/engine/notifier/lease.py). SQLite is one process and has no replicas.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket

from sqlalchemy.engine import make_url

from bot.engine.poller import Poller
from bot.store import Store, engine_url, leases

log = logging.getLogger(__name__)


def replica_id() -> str:
    """A new replica's id: the host, the process and a random part (a restarted process is a new replica).
    bot/app.py gives it to the poller, the notifier and `Replicas` as it builds them."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Replicas:
    def __init__(self, db: Store, poller: Poller, replica: str, url: str, lease: float) -> None:
        self.db = db
        self.poller = poller
        self.lease = lease
        self.id = replica
        self.live = 1
        # psycopg's own connection string for LISTEN (never logged: it may hold the password)
        self._conninfo = (
            make_url(engine_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._wake = asyncio.Event()
        self._listening = asyncio.Event()  # the LISTEN session is connected (once)
        self._tasks: list[asyncio.Task[None]] = []

    async def join(self) -> None:
        """Before the schedule is loaded: say this replica is alive (so the others give back their excess at
        once) and start listening."""
        # the LISTEN session first: the others count this replica live while it is connected (leases.LIVE)
        self._tasks.append(asyncio.create_task(self._listen()))
        try:
            await asyncio.wait_for(self._listening.wait(), self.lease)
        except TimeoutError:
            log.warning("replica %s: no LISTEN connection after %g s; joining on the heartbeat alone",
                        self.id, self.lease)
        self.live = await self.db.run(leases.heartbeat, self.id, self.lease)
        self.poller.metrics.replicas_live(self.live)
        await self.db.run(leases.notify, "balance")
        self._tasks.append(asyncio.create_task(self._alive()))
        log.info("replica %s joins %d live replicas on PostgreSQL (lease %g s)", self.id, self.live - 1,
                 self.lease)

    def start(self) -> None:
        """After the schedule is loaded: the heartbeat."""
        self._tasks.append(asyncio.create_task(self._beat()))

    async def _beat(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.lease / 3)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                balance = await self.poller.rebalance()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away: the leases run out and others take over
                log.exception("replica heartbeat failed; trying again in %g s", self.lease / 3)
                continue
            if balance.live != self.live or balance.claimed or balance.released:
                log.info("replica %s: %d live replicas, share %d; owns %d jobs (took %d, gave back %d)",
                         self.id, balance.live, balance.share, len(balance.owned), len(balance.claimed),
                         len(balance.released))
            self.live = balance.live
            self.poller.metrics.replicas_live(balance.live)
            if balance.released:
                await self.db.run(leases.notify, "balance")

    async def _alive(self) -> None:
        """The heartbeat alone, every lease/3 beside the store's queue (`Store.run_beside`): this replica is
        alive, and so keeps its jobs, however long the rebalancing waits behind the poller's writes. (Both
        waited in that queue once: at 50,000 jobs on a busy machine a replica's heartbeat did not come for
        minutes, the other replica took all its jobs, and both polled all of them.)"""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self.db.run_beside(leases.heartbeat, self.id, self.lease)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: the rebalancing says so in the log
                log.debug("replica %s: heartbeat failed (%s)", self.id, type(exc).__name__)

    async def _listen(self) -> None:
        import psycopg

        while True:
            try:
                # named by this replica's id: while this session is connected the others count it live
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True,
                                                                 application_name=self.id) as conn:
                    await conn.execute(f"LISTEN {leases.CHANNEL}")
                    self._listening.set()
                    self._wake.set()  # whatever was said while not listening: a heartbeat catches up
                    async for note in conn.notifies():
                        await self._heard(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("replica %s: LISTEN failed (%s); heartbeats every %g s meanwhile", self.id,
                            type(exc).__name__, self.lease / 3)
                await asyncio.sleep(self.lease / 3)

    async def _heard(self, payload: str) -> None:
        if payload == "balance":
            self._wake.set()
        elif payload.startswith("job ") and payload[4:].isdigit():
            pk = int(payload[4:])
            if self.poller.owns(pk):
                try:
                    await self.poller.retrack(pk)
                except Exception:
                    log.exception("reading job %d again failed; its next poll reads it", pk)

    async def stop(self) -> None:
        """Stop the heartbeat and listening (the leases stay until `leave`, after the last writes)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def leave(self) -> None:
        """Give back every job and channel at once (a clean stop), so the others need not wait for the
        lease."""
        try:
            await self.db.run(leases.leave, self.id)
            await self.db.run(leases.notify, "balance")
        except Exception as exc:  # the database is away: the others take over when the leases run out
            log.warning("replica %s could not give back its leases (%s); they run out in %g s", self.id,
                        type(exc).__name__, self.lease)
