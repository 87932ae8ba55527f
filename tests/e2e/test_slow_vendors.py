"""A vendor that answers one byte at a time (issue 20, item 5), end to end: the real bot over HTTP against the
Fusion simulator's drip mode (bot/offline/vendors/core.py `drip`).

Some jobs of the backend drip their answers (one byte every 0.5 s: no per-read timeout ever fires); the others
answer at once. Each request has a total deadline (the backend's `timeout`), a stalled poll gives its slot
back at it, and the jobs that answered too slowly wait for a slow lane of one slot: the healthy jobs go on
being polled, a user's check of a healthy job is answered, and a user's watch of a dripping job is answered at
its own deadline with "answers too slowly" and sets nothing up. Counts and order only; the waits are hang
guards.
"""

from __future__ import annotations

import aiohttp
import pytest

from bot.offline.vendors.core import Step
from tests.conftest import Harness

DRIPPING = ("501", "502", "503")
HEALTHY = ("601", "602")
SLOW = {"fusion-demo": {"timeout": 2, "max_concurrency": 3}}  # 2 polling slots (1 kept for users), lane of 1


def status_calls(h: Harness, job: str) -> int:
    return h.sim.fusion.count("GET", f"/jobRequests/{job}")


@pytest.mark.backends(**SLOW)
async def test_jobs_that_drip_never_stall_the_backends_other_jobs_nor_a_users_answer(
    harness: Harness,
) -> None:
    h = harness
    for job in (*DRIPPING, *HEALTHY, "603", "504"):
        h.sim.fusion.add_job(job, steps=[Step(0, "RUNNING")])
    for job in (*DRIPPING, *HEALTHY):
        await h.watch(f"watch fusion-demo {job}")
    for job in (*DRIPPING, "504"):
        h.sim.fusion.drip(0.5, job)  # a status answer is ~900 bytes: it would take minutes to arrive
    # every dripping job has stalled at least once (each held a slot until its deadline)
    await h.slack.wait_for(lambda: h.sim.fusion.dripped >= len(DRIPPING), timeout=30)

    dripped, healthy = h.sim.fusion.dripped, [status_calls(h, j) for j in HEALTHY]
    await h.slack.wait_for(
        lambda: all(status_calls(h, j) >= n + 10 for j, n in zip(HEALTHY, healthy, strict=True)),
        timeout=60,
        poll=0.05,
    )
    # ten polls of each healthy job while the dripping ones (three of them) were asked again at most a few
    # times: they wait for the slow lane and back off; on today's main the healthy jobs were never polled
    # again
    assert h.sim.fusion.dripped - dripped <= 5

    # a user's check of a healthy job is answered with its state, beside the drips
    status = await h.watch("status fusion-demo 603", user="U0002")
    assert "running" in status.responses()[-1].text

    # a user's watch of a job that drips is answered at the check's deadline: slow, nothing set up
    parents = len(h.parents())
    slow = await h.watch("watch fusion-demo 504", user="U0002")
    said = slow.responses()[-1].text
    assert "answers too slowly" in said and "nothing was set up" in said
    assert len(h.parents()) == parents
    # asked once, the request given up at the deadline
    assert h.sim.fusion.count("GET", "/jobRequests/504") == 1


@pytest.mark.backends(**SLOW)
@pytest.mark.settings(outage_note_after=0.5)
async def test_the_outage_note_of_a_job_that_drips_says_it_answers_too_slowly(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(505, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 505")
    h.sim.fusion.drip(0.5, 505)
    await h.slack.wait_for(lambda: any("answers too slowly" in r.text for r in h.replies()), timeout=30)
    [note] = [r for r in h.replies() if "answers too slowly" in r.text]
    assert "Cannot reach" not in note.text and "no complete answer within 2 s" in note.text
    h.sim.fusion.drip(None, 505)  # it answers at once again: the thread hears so
    h.sim.fusion.set_state(505, "SUCCEEDED")
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.replies()), timeout=60)


@pytest.mark.backends(**SLOW)
@pytest.mark.settings(api={"tokens": {"ci": {"token": "ci-0123456789abcdef0123456789abcdef"}}})
async def test_a_pipelines_watch_of_a_job_that_drips_is_refused_as_slow_with_nothing_set_up(
    harness: Harness,
) -> None:
    h = harness
    h.sim.fusion.add_job(506, steps=[Step(0, "RUNNING")])
    h.sim.fusion.drip(0.5, 506)
    url = h.runtime.events_url.replace("/slack/events", "/api/v1/watches")
    headers = {"Authorization": "Bearer ci-0123456789abcdef0123456789abcdef"}
    body = {"backend": "fusion-demo", "job_id": "506", "channel": "C0001"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as resp,
    ):
        status, said = resp.status, await resp.json()
    assert (status, said["error"]) == (502, "backend_unavailable")
    assert "answers too slowly" in said["message"] and "nothing was set up" in said["message"]
    assert h.parents() == []
