"""End to end, through the fake Slack and the vendor simulators: "longer than usual" (the parent's usual
duration, one note past the 90th percentile of five runs, none without history), "while I was away" after a
restart past a gap (one reply for a job that changed, none for one that did not), and the daily digest
(posted at start when it was missed, once per day across restarts)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

import bot.engine.poller
from bot.app import Runtime
from bot.offline.slack import SlackUser
from bot.offline.vendors.core import Step
from tests.conftest import SIGNING_SECRET, FakeClock, Harness, start_runtime


def texts(blocks: list[dict[str, Any]] | None) -> str:
    return json.dumps(blocks or [], ensure_ascii=False)


def late_notes(h: Harness, index: int) -> list[Any]:
    return [r for r in h.replies(index=index) if "longer than usual" in r.text]


async def test_a_run_past_the_90th_percentile_of_five_runs_gets_one_note_and_none_without_history(
        harness: Harness) -> None:
    h = harness
    for n in range(5):  # five runs of GL_DATA_LOAD, each seen running, then seen to succeed
        job_id = 3000 + n
        h.sim.epm_di.add_job(job_id, name="GL_DATA_LOAD", steps=[Step(0, -1)])
        await h.watch(f"watch epm-demo {job_id}")
        await asyncio.sleep(0.3)
        h.sim.epm_di.set_state(job_id, 0)
        await h.slack.wait_for(lambda i=n: any("succeeded" in r.text for r in h.replies(index=i)),
                               what=f"run {n} to end")
    h.sim.epm_di.add_job(3100, name="GL_DATA_LOAD", steps=[Step(0, -1)])  # the sixth run: it keeps running
    h.sim.epm_di.add_job(3200, name="NEVER_RAN_BEFORE", steps=[Step(0, -1)])
    await h.watch("watch epm-demo 3100")
    await h.watch("watch epm-demo 3200")
    usual = texts(h.parents()[5].blocks)
    assert "Usually ~" in usual and "(last 5 runs)" in usual and "expected end <!date^" in usual
    await h.slack.wait_for(lambda: late_notes(h, 5), what="the longer-than-usual note", timeout=20)
    [note] = late_notes(h, 5)
    assert "<@U0001>" in note.text and "9 in 10 of its last 5 runs took at most" in note.text
    await asyncio.sleep(1.5)  # many sweeps later: still one note
    assert len(late_notes(h, 5)) == 1
    assert late_notes(h, 6) == [] and "Usually" not in texts(h.parents()[6].blocks)  # no history: nothing


async def test_a_restart_after_a_gap_gives_one_while_i_was_away_reply_and_none_for_unchanged_jobs(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness
    # away after 3 poll intervals (0.6 s here), not a minute
    monkeypatch.setattr(bot.engine.poller, "AWAY_FLOOR", 0.0)
    h.sim.fusion.add_job(7001, name="Payroll", steps=[Step(0, "RUNNING")])
    h.sim.fusion.add_job(7002, name="Ledger", steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 7001")
    await h.watch("watch fusion-demo 7002")
    await asyncio.sleep(0.5)
    await h.runtime.stop()
    h.sim.fusion.set_state(7001, "PAUSED")  # what the bot does not see: it was down...
    h.sim.fusion.set_state(7001, "FAILED", message="ORA-00060 deadlock <!here>")  # ...and it ended so
    await asyncio.sleep(1.5)
    h.runtime = await start_runtime(h.settings, h.env)
    h.user = SlackUser(h.runtime.events_url, SIGNING_SECRET, h.slack)
    await h.slack.wait_for(lambda: any("While I was away" in r.text for r in h.replies(index=0)),
                           what="the catch-up reply", timeout=20)
    await asyncio.sleep(1.5)  # more polls: nothing else is told about the change
    replies = h.replies(index=0)
    away = [r for r in replies if "While I was away" in r.text]
    assert len(away) == 1 and away[0].text.startswith(
        "While I was away: fusion-demo job 7001: running → failed"
    )
    head = texts(away[0].blocks)
    assert (
        "running → failed at <!date^" in head
        and "<@U0001>" in head
        and "ORA-00060 deadlock &lt;!here&gt;" in head
    )
    assert "<!here>" not in head and away[0].reply_broadcast is True
    # not a second, plain one
    assert not any(r.text.startswith("fusion-demo job 7001: failed") for r in replies)
    assert h.replies(index=1) == []  # unchanged: nothing


def _at_in_an_hour(now: float) -> str:
    return datetime.fromtimestamp(now + 3600, UTC).strftime("%H:%M")


T0 = time.time()


@pytest.mark.settings(digests=[{"channel": "C0001", "at": _at_in_an_hour(T0), "timezone": "UTC"}])
async def test_a_missed_digest_is_posted_at_start_and_once_per_day_across_restarts(harness: Harness) -> None:
    h = harness
    # the harness started at T0 (real time): yesterday's digest is the newest due; nothing had ended then
    await asyncio.sleep(0.5)
    assert [m for m in h.slack.messages("C0001") if "Daily digest" in m.text] == []
    h.sim.fusion.add_job(7101, name="Payroll", steps=[Step(0, "RUNNING")])
    h.sim.fusion.add_job(7102, name="Ledger", steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 7101")
    await h.watch("watch fusion-demo 7102")
    h.sim.fusion.set_state(7101, "SUCCEEDED")
    h.sim.fusion.set_state(7102, "FAILED", message="ORA-01555 snapshot too old\nsecond line")
    await h.slack.wait_for(lambda: any("failed" in r.text for r in h.replies(index=1)), what="the failure")
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.replies(index=0)), what="the success")

    later = FakeClock(T0 + 2 * 3600)  # the bot was down at the digest's time: it comes back two hours later

    async def restart() -> None:
        await h.runtime.stop()
        h.runtime = Runtime(h.settings, h.env, host="127.0.0.1", tick=0.05)
        h.runtime.digests.clock = later
        await h.runtime.start()

    def digests() -> list[Any]:
        return [m for m in h.slack.messages("C0001") if m.text.startswith("Daily digest")]

    await restart()
    await h.slack.wait_for(digests, what="the missed digest, posted at start", timeout=20)
    [digest] = digests()
    assert "2 jobs ended: 1 succeeded, 1 failed" in digest.text
    body = texts(digest.blocks)
    assert "ORA-01555 snapshot too old" in body and "second line" not in body
    thread = h.parents()[1].ts
    assert f"/archives/C0001/p{thread.replace('.', '')}|thread>" in body  # the failure's thread
    await restart()
    await asyncio.sleep(1.0)
    later.advance(3600)
    await h.runtime.digests.tick()
    assert len(digests()) == 1  # once that day, whatever restarts
    later.advance(86400)
    await h.runtime.digests.tick()
    assert len(digests()) == 1  # the next day: nothing ended since, nothing posted
