"""`python -m bench.failover` — replicas on PostgreSQL: kill -9 one, measure.

Three real `jobstatus-bot run` processes (bench/procs.py's BotProc) share an empty PostgreSQL database: a
throwaway cluster's (bot/offline/postgres.py), or the one `--database-url` names (give one you can throw away:
its tables are created and filled). 3,000 Fusion watches over 300 channels are seeded with the bot's own
`store.create_watch`, their parents already in the fake Slack; the replicas split them. Then 300 of the jobs
(one per channel) change state over a window around the moment one replica is killed with SIGKILL, and the
run reports: how long until the dead replica's jobs were owned by the others and polled again, whether every
change reached its thread (lost), replies that arrived twice (repeated), parents posted again (duplicate),
and pairs of polls of one job closer than half its interval (double polls: two replicas polling one job;
counted over the jobs that did not change, since an ended job is asked again for its details).
The vendor simulator and the fake Slack run in this process, on 127.0.0.1. It prints the figures as JSON
and writes them to `bench/results/failover-<timestamp>.json` (and `failover-latest.json`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from bench import report
from bench.procs import BotProc, database, settle
from bot import store
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.offline.setup import configure_simulators, demo_backends
from bot.offline.slack import FakeSlack
from bot.offline.vendors.core import Step
from bot.offline.vendors.server import SimulatorServer

SECRET = "bench-failover-secret"
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def run(url: str, work: Path, watches: int, channels: int, replicas: int, interval: float, lease: float,
              changes: int) -> dict[str, Any]:
    sim = SimulatorServer()
    await sim.start()
    configure_simulators(sim)
    slack = FakeSlack()
    await slack.start()
    chans = [f"CF{n:05d}" for n in range(channels)]
    for ch in chans:
        slack.add_channel(ch, f"load-{ch}")
    fusion = {**demo_backends(sim, poll_interval=interval)["fusion-demo"], "details": "anywhere"}  # as before
    config = {"backends": {"fusion-demo": fusion}, "lease_seconds": lease}
    rng = random.Random(20261206)
    jobs = [(7_000_000 + i, chans[i % channels]) for i in range(watches)]
    for job_id, _ch in jobs:
        sim.fusion.add_job(job_id, steps=[Step(0, "RUNNING")])

    db = store.Store(url)
    parents: dict[int, tuple[str, str]] = {}
    try:
        db.upgrade()
        with Session(db.engine, expire_on_commit=False) as s, s.begin():
            now = time.time()
            for job_id, ch in jobs:
                st = JobStatus(job_id=str(job_id), phase=Phase.RUNNING, vendor_status="RUNNING")
                watch, job, _ = store.create_watch(
                    s,
                    "fusion-demo",
                    st,
                    ch,
                    "U0001",
                    now=now,
                    interval=interval,
                    watch_timeout=86400.0,
                    first_reply=None,
                )
                watch.parent_ts = slack.store_message(ch, f"fusion-demo job `{job_id}`").ts
                job.next_poll_at = now + rng.uniform(0.0, interval)
                parents[job_id] = (ch, watch.parent_ts)
            s.execute(text("DELETE FROM outbox"))
    finally:
        db.close()

    bots: list[BotProc] = []
    try:
        for n in range(replicas):
            bot = BotProc(
                work,
                f"replica-{n}",
                slack_token=slack.token,
                slack_api_url=slack.api_url,
                secret=SECRET,
                db_url=url,
                config=config,
            )
            bot.env["LOG_LEVEL"] = "WARNING"
            bots.append(bot)
            await bot.start(expect_scheduled=None)
        settled = await settle(bots, lambda: watches)  # every job owned, shares even
        engine = store.Store(url)
        with engine.engine.connect() as con:
            owners: dict[str, int] = dict(
                con.execute(
                    text(
                        "SELECT owner, count(*) FROM jobs WHERE polling AND owner IS NOT NULL GROUP BY owner"
                    )
                ).all()
            )
        await asyncio.sleep(interval)  # a whole interval of polling with the shares even

        victim = bots[0].proc
        assert victim is not None
        victim_id = next(o for o in owners if o.split(":")[-2] == str(victim.pid))
        with engine.engine.connect() as con:
            victims = {int(j) for (j,) in con.execute(text("SELECT job_id FROM jobs WHERE owner = :o"),
                                                       {"o": victim_id})}
        changed = rng.sample([j for j, _ in jobs], changes)
        window = 10.0  # the changes: from 5 s before the kill to 5 s after
        t_kill = time.time() + window / 2
        for job_id in changed:
            at = t_kill - window / 2 + rng.uniform(0.0, window)
            sim.fusion.jobs[str(job_id)].steps.append(
                Step(at - sim.fusion.jobs[str(job_id)].started, "SUCCEEDED")
            )
        await asyncio.sleep(max(0.0, t_kill - time.time()))
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed = time.time()

        taken_at = None
        while taken_at is None and time.time() - killed < 10 * lease + 60:
            with engine.engine.connect() as con:
                left = con.execute(text("SELECT count(*) FROM jobs WHERE polling AND owner = :o"),
                                   {"o": victim_id}).scalar_one()
            if left == 0:
                taken_at = time.time()
            else:
                await asyncio.sleep(0.2)
        engine.close()

        def replied(job_id: int) -> int:
            ch, ts = parents[job_id]
            return sum(1 for r in slack.thread(ch, ts) if "succeeded" in r.text.lower())

        try:  # every change in its thread, or the time it may take is over (what is missing then is lost)
            await slack.wait_for(lambda: all(replied(j) for j in changed), timeout=lease + 2 * interval + 60)
        except (AssertionError, TimeoutError):
            pass
        await asyncio.sleep(3.0)  # a straggling repeat would show by now

        polls: dict[str, list[float]] = {}
        for r in sim.fusion.requests:
            if r.method == "GET" and "/jobRequests/" in r.path:
                polls.setdefault(r.path.rsplit("/", 1)[-1], []).append(r.at)
        # the dead replica's jobs that did not end (one that ended before the kill is rightly never asked
        # again)
        again = [min((t for t in polls.get(str(j), []) if t > killed), default=float("inf")) - killed
                 for j in victims - set(changed)]
        never = sum(1 for a in again if a == float("inf"))
        again = [a for a in again if a != float("inf")]
        # an ended job is asked for details too
        steady = {str(j) for j, _ in jobs} - {str(j) for j in changed}
        pairs = [(job, a, b) for job, ts in polls.items() if job in steady
                 for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False) if b - a < 0.5 * interval]
        # of those, the dead replica's last poll of a job and the survivor's first: its next poll time was not
        # written yet (every FLUSH_EVERY seconds), so the survivor asked it again sooner than the interval
        at_failover = sum(1 for job, a, b in pairs if int(job) in victims and a <= killed < b)
        repeated = sum(n - 1 for j in changed for n in Counter(
            r.text for r in slack.thread(*parents[j])).values() if n > 1)
        return {
            "replicas": replicas, "watches": watches, "channels": channels, "interval_s": interval,
            "lease_s": lease, "settled_s": round(settled, 1), "victim_jobs": len(victims),
            "owned_by_survivors_s": None if taken_at is None else round(taken_at - killed, 2),
            "polled_again_s": {"p50": percentile(again, 0.5), "p99": percentile(again, 0.99),
                               "max": max(again, default=None)},
            "never_polled_again": never,
            "changes": changes, "lost": sum(1 for j in changed if not replied(j)),
            "repeated_replies": repeated,
            "duplicate_parents": sum(len(slack.messages(ch)) for ch in chans) - watches,
            "double_polls": len(pairs), "of_which_across_the_kill": at_failover,
            # each double poll: the job, whether it was the dead replica's, its two polls' times from the kill
            "double_poll_times": [{"job": job, "dead_replicas": int(job) in victims,
                                   "first_s": round(a - killed, 2), "second_s": round(b - killed, 2)}
                                  for job, a, b in pairs[:30]],
        }
    finally:
        for bot in bots:
            await bot.stop()
        await slack.stop()
        await sim.stop()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    run_ = report.begin(
        args.out,
        "failover-",
        "jobstatus failover benchmark",
        "full",
        vars(args) | {"out": str(args.out)},
        f"{args.watches:,} watches, {args.replicas} replicas on PostgreSQL, one killed",
    )
    async with database(args.database_url or None, run_.logdir) as (url, _cluster):
        figures = await run(
            url,
            run_.logdir,
            args.watches,
            args.channels,
            args.replicas,
            args.interval,
            args.lease,
            args.changes,
        )
    result = run_.result | figures
    report.write(result, args.out, run_.stamp, "failover-")
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="an empty PostgreSQL database to fill (default: $DATABASE_URL, else a throwaway cluster)",
    )
    ap.add_argument("--watches", type=int, default=3000)
    ap.add_argument("--channels", type=int, default=300)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--interval", type=float, default=30.0, help="seconds between polls of a job")
    ap.add_argument("--lease", type=float, default=15.0, help="lease_seconds")
    ap.add_argument("--changes", type=int, default=300, help="jobs that change state around the kill")
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where the JSON goes (default bench/results/)"
    )
    args = ap.parse_args()
    if args.database_url and not args.database_url.startswith(("postgres://", "postgresql")):
        print(
            "bench.failover: --database-url must be a postgresql:// URL (an empty database)", file=sys.stderr
        )
        return 2
    print(json.dumps(asyncio.run(measure(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
