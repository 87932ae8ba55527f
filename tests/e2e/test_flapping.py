"""A job whose status flips at every poll (issue 20, item 6), end to end: the real bot over HTTP, the Fusion
simulator's job flipping between RUNNING and WAIT, polled every 0.2 s. Dozens of flips give a handful of
thread replies and one "flapping" note, not a reply each; the parent keeps following; once the job holds one
state the thread hears that it settled, and its end is told as always."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.orm import Session

import bot.store.polls
from bot import store
from bot.offline.vendors.core import Step
from bot.store.polls import FLAP_CHANGES
from tests.conftest import Harness

FLIP = 0.25  # seconds between the simulator job's flips: about one per poll


def history(s: Session) -> int:
    return s.query(store.StateChange).count()


def said(h: Harness, words: str) -> list[Any]:
    return [r for r in h.replies() if words in r.text]


async def test_a_job_flipping_at_every_poll_gets_a_handful_of_replies_not_one_per_flip(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness
    # a flapping job settles after holding one state this long (5 min in production; the arithmetic has its
    # own unit tests): long enough that no pause between two flips here is taken for settling
    monkeypatch.setattr(bot.store.polls, "SETTLE_AFTER", 3.0)
    flips = [Step(i * FLIP, "WAIT" if i % 2 else "RUNNING") for i in range(240)]  # a minute of flipping
    job = h.sim.fusion.add_job(88, steps=flips)
    await h.watch("watch fusion-demo 88")
    # 47 changes seen (the first state is no change), then it holds one state
    for _ in range(1200):  # a hang guard of about two minutes
        if await h.runtime.db.run(history) - 1 >= 47:
            break
        await asyncio.sleep(0.1)
    assert await h.runtime.db.run(history) - 1 >= 47
    job.set(h.sim.fusion.clock(), "RUNNING")  # it holds one state from now on

    [note] = await h.slack.wait_for(lambda: said(h, "Flapping between") or None, timeout=10)
    assert (
        "Flapping between running and queued" in note.text
        or "Flapping between queued and running" in note.text
    )
    changes = [r for r in h.replies() if "Flapping" not in r.text and "Settled" not in r.text]
    assert len(changes) == FLAP_CHANGES - 1  # the changes before it flapped, each told; not 47
    # the parent followed every change meanwhile
    assert len(h.slack.calls_of("chat.update")) > FLAP_CHANGES

    [settled] = await h.slack.wait_for(lambda: said(h, "Settled") or None, timeout=30)
    assert "Settled: running" in settled.text
    h.sim.fusion.set_state(88, "SUCCEEDED")
    await h.slack.wait_for(lambda: said(h, "succeeded") or None, timeout=30)
    assert len(said(h, "Flapping between")) == 1 and len(said(h, "Settled")) == 1
