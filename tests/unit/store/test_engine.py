"""Store.run_beside: a replica's heartbeat does not wait behind the store's own queue
(bot/engine/replicas.py)."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import text
from sqlalchemy.orm import Session

from bot.store import Store


async def test_run_beside_answers_while_the_store_thread_is_held(db: Store) -> None:
    held, release = threading.Event(), threading.Event()

    def long_write(s: Session) -> str:  # the poller's writes, holding the store's one thread
        held.set()
        release.wait(30)
        return "written"

    queued = asyncio.ensure_future(db.run(long_write))
    await asyncio.get_running_loop().run_in_executor(None, held.wait, 30)
    behind = asyncio.ensure_future(db.run(lambda s: "behind"))  # what `run` queues waits its turn
    beside = await asyncio.wait_for(db.run_beside(lambda s: s.execute(text("SELECT 1")).scalar_one()), 10)
    assert beside == 1
    assert not queued.done() and not behind.done()
    release.set()
    assert await queued == "written" and await behind == "behind"
