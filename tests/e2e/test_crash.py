"""Crash safety: the real `jobstatus-bot run` killed with SIGKILL at random moments while jobs change state.

After every restart the bot must resume from the database: every terminal state reaches its thread, no
parent is posted twice, and at most one reply per crash is repeated (a reply Slack took just before the
kill, whose outbox row was not yet marked sent)."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from pathlib import Path

import yaml

from bot.offline.setup import configure_simulators, demo_backends
from bot.offline.slack import FakeSlack, SlackUser
from bot.offline.vendors.core import Step
from bot.offline.vendors.server import SimulatorServer
from tests.e2e.test_process import SECRET, bot_env, free_port, start_bot

KILLS = 10
SEED = 20261122


async def test_sigkill_at_random_moments_loses_nothing_and_duplicates_no_parent(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    sim = SimulatorServer()
    await sim.start()
    configure_simulators(sim)
    slack = FakeSlack()
    await slack.start()
    for n in range(3, 6):
        slack.add_channel(f"C000{n}", f"ops-{n}")
    channels = ["C0001", "C0002", "C0003", "C0004", "C0005"]
    port = free_port()
    (tmp_path / "jobstatus.yaml").write_text(
        yaml.safe_dump({"backends": demo_backends(sim, poll_interval=0.3)})
    )
    env = bot_env(tmp_path, slack, port)
    log = tmp_path / "bot.log"
    proc = await start_bot(env, log)
    user = SlackUser(f"http://127.0.0.1:{port}/slack/events", SECRET, slack)
    jobs = []
    try:
        for i in range(10):
            job_id = 7000 + i
            end = "FAILED" if i % 3 == 0 else "SUCCEEDED"
            t0 = 8 + i * 0.7
            sim.fusion.add_job(job_id, steps=[
                Step(0, "ENQUEUED"), Step(t0 - 4, "RUNNING"), Step(t0 - 2, "IN_PROGRESS", {"progress": 40}),
                Step(t0, end, {"message": f"job {job_id} ended"} if end == "FAILED" else {})])
            channel = channels[i % len(channels)]
            result = await user.command(f"watch fusion-demo {job_id}", channel_id=channel)
            await result.wait_responses(2)  # "Checking …", then the answer
            jobs.append((job_id, channel, end))
        parents = {ch: [m.ts for m in slack.messages(ch)] for ch in channels}
        assert sum(len(v) for v in parents.values()) == 10

        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            proc = await start_bot(env, log)

        def final_reply(job_id: int, channel: str, end: str) -> bool:
            for m in slack.messages(channel):
                if f"job `{job_id}`" in str(m.blocks) or str(job_id) in m.text:
                    return any(end.lower() in r.text.lower() for r in slack.thread(channel, m.ts))
            return False

        for job_id, channel, end in jobs:
            await slack.wait_for(lambda j=job_id, c=channel, e=end: final_reply(j, c, e), timeout=40)

        assert {ch: [m.ts for m in slack.messages(ch)] for ch in channels} == parents  # no second parent
        repeated = 0
        for ch in channels:
            for ts in parents[ch]:
                texts = Counter(r.text for r in slack.thread(ch, ts) if not r.files)
                repeated += sum(n - 1 for n in texts.values())
        assert repeated <= KILLS, repeated
        print(f"\ncrash test: {KILLS} SIGKILLs survived, 10 watches, 0 lost terminal states, "
              f"{repeated} repeated replies, 0 duplicate parents")
    finally:
        if proc.poll() is None:
            proc.kill()
        await slack.stop()
        await sim.stop()
