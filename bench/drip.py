"""`python -m bench.drip` — issue 20, item 5: a vendor that drips its answers beside healthy jobs of the same
backend.

All in this process, on 127.0.0.1: the vendor simulators (their drip mode, bot/offline/vendors/core.py), the
fake Slack, and the real bot (`bot.app.Runtime`: Bolt over HTTP, the poller, the notifier) on a temporary
SQLite database. One Fusion backend (`max_concurrency` 4, `timeout` 10 s, 1 s poll interval) watches healthy
jobs through signed `/jobstatus watch` requests. Two phases of the same length, in one run:

1. drip off: every job answers at once;
2. drip on: a share of the watched jobs answer one byte every 2 s (a status answer would take half an hour).

Measured in each phase: the healthy jobs' achieved poll interval (from the simulator's request log: the mean
gap between two status calls of one job), and the time from a signed `/jobstatus status` of another healthy
job to its answer reaching the fake Slack's response_url. In the drip phase also: a `/jobstatus watch` of a
job that drips, to its answer ("answers too slowly"), which is the user's check's deadline (5 s) by design.
Today's main is not in the same run, so each figure of the drip phase is given as its ratio to the drip-off
phase (the machine as it was); on today's main the healthy jobs were not polled for 100 s and more, and the
watch of a dripping job showed only "Checking …".

    python -m bench.drip            # 20 s phases, about a minute
    python -m bench.drip --quick    # 5 s phases, about 20 s (the test suite runs this)

It prints a table and writes `bench/results/drip-<timestamp>.json` and `bench/results/drip-latest.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import report
from bot.app import Runtime
from bot.offline.setup import configure_simulators, demo_backends
from bot.offline.slack import FakeSlack, SlackUser
from bot.offline.vendors.core import Step
from bot.offline.vendors.server import SimulatorServer
from bot.support.config import Environment, settings_from_dict

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
SECRET = "bench-drip-signing-secret"
FUSION = "fusion-demo"
INTERVAL = 1.0  # seconds between polls of one job
TIMEOUT = 10.0  # the backend's total deadline per request: a dripping poll holds its slot this long
CONCURRENCY = 4  # 3 slots for polls, 1 kept for users (bot/backends/slots.py); a slow lane of 1
DRIP_EVERY = 2.0  # seconds between two bytes of a dripping answer
NEW_DRIP = "8999"  # a job that drips, watched in the drip phase: its watch is answered "too slowly"


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def intervals(requests: list[Any], jobs: set[str], since: float, until: float) -> list[float]:
    """Each gap between two status calls of one of `jobs` within [since, until], from the request log."""
    at: dict[str, list[float]] = defaultdict(list)
    for r in requests:
        job = r.path.rsplit("/", 1)[-1]
        if job in jobs and since <= r.at <= until and "/jobRequests/" in r.path:
            at[job].append(r.at)
    return [b - a for times in at.values() for a, b in zip(times, times[1:], strict=False)]


async def answer_time(user: SlackUser, text: str, wait: float) -> tuple[float, str]:
    """Seconds from a signed command to its final answer (the one after "Checking …"), and that answer."""
    started = time.perf_counter()
    result = await user.command(text, channel_id="C0001", user_id="U0001")
    posts = await result.wait_responses(2, timeout=wait)
    return time.perf_counter() - started, posts[-1].text


async def phase(sim: SimulatorServer, user: SlackUser, healthy: set[str], seconds: float, probes: list[str],
                dripping: list[str]) -> dict[str, Any]:
    for job in dripping:
        sim.fusion.drip(DRIP_EVERY, job)
    since = sim.fusion.clock()
    dripped = sim.fusion.dripped
    answers: list[float] = []
    gap = seconds / (len(probes) + 1)
    for job in probes:  # users' checks of other healthy jobs, spread over the phase
        await asyncio.sleep(gap)
        took, said = await answer_time(user, f"status {FUSION} {job}", TIMEOUT * 3)
        if "running" not in said:
            raise RuntimeError(f"status of {job} said: {said[:200]}")
        answers.append(took)
    await asyncio.sleep(gap)
    slow: dict[str, Any] | None = None
    if dripping:
        took, said = await answer_time(user, f"watch {FUSION} {dripping[-1]}", TIMEOUT * 3)
        slow = {"answer_s": _r(took), "says_slow": "answers too slowly" in said}
    until = sim.fusion.clock()
    gaps = intervals(sim.fusion.requests, healthy, since, until)
    for job in dripping:
        sim.fusion.drip(None, job)
    return {
        "seconds": _r(until - since, 1),
        "healthy_polls": len(gaps) + len(healthy),
        "healthy_interval_s": {"mean": _r(statistics.fmean(gaps)) if gaps else None,
                               "max": _r(max(gaps)) if gaps else None},
        "user_status_answer_s": {"mean": _r(statistics.fmean(answers)), "max": _r(max(answers))},
        "dripped_answers": sim.fusion.dripped - dripped,
        "watch_of_a_dripping_job": slow,
    }


async def run(quick: bool) -> dict[str, Any]:
    seconds = 5.0 if quick else 20.0
    n_healthy, n_drip = (6, 3) if quick else (20, 8)
    sim = SimulatorServer()
    await sim.start()
    slack = FakeSlack()
    await slack.start()
    tmp = tempfile.TemporaryDirectory(prefix="jobstatus-bench-drip-")
    runtime: Runtime | None = None
    try:
        configure_simulators(sim)
        backends = {FUSION: demo_backends(sim, poll_interval=INTERVAL)[FUSION]}
        backends[FUSION].update(timeout=TIMEOUT, max_concurrency=CONCURRENCY)
        settings = settings_from_dict({"backends": backends}, "<bench.drip>")
        env = Environment(
            slack_bot_token=slack.token,
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
            database_url=f"sqlite:///{tmp.name}/bot.db",
            port=0,
        )
        runtime = Runtime(settings, env, host="127.0.0.1", tick=0.05)
        await runtime.start()
        user = SlackUser(runtime.events_url, SECRET, slack)
        healthy = {str(7000 + i) for i in range(n_healthy)}
        drips = [str(8000 + i) for i in range(n_drip)]
        probes = [str(9000 + i) for i in range(4)]
        for job in [*sorted(healthy), *drips, *probes, NEW_DRIP]:
            sim.fusion.add_job(job, steps=[Step(0, "RUNNING")])
        for job in [*sorted(healthy), *drips]:
            await answer_time(user, f"watch {FUSION} {job}", 30)
        off = await phase(sim, user, healthy, seconds, probes[:2], [])
        on = await phase(sim, user, healthy, seconds, probes[2:], [*drips, NEW_DRIP])

        def ratio(path: tuple[str, str]) -> float | None:
            a, b = off[path[0]][path[1]], on[path[0]][path[1]]
            return _r(b / a) if a and b else None

        return {
            "setup": {"healthy_jobs": n_healthy, "dripping_jobs": n_drip, "poll_interval_s": INTERVAL,
                      "timeout_s": TIMEOUT, "max_concurrency": CONCURRENCY, "drip_every_s": DRIP_EVERY,
                      "phase_s": seconds},
            "drip_off": off,
            "drip_on": on,
            "ratio_on_to_off": {"healthy_interval_mean": ratio(("healthy_interval_s", "mean")),
                                "user_status_answer_mean": ratio(("user_status_answer_s", "mean"))},
        }
    finally:
        if runtime is not None:
            await runtime.stop()
        await slack.stop()
        await sim.stop()
        tmp.cleanup()


def table(r: dict[str, Any]) -> str:
    off, on, ratio = r["drip_off"], r["drip_on"], r["ratio_on_to_off"]
    slow = on["watch_of_a_dripping_job"] or {}
    return "\n".join([
        "drip: figure                               drip off   drip on   on/off",
        f"healthy jobs' poll interval, mean (s)      {off['healthy_interval_s']['mean']:>8}  "
        f"{on['healthy_interval_s']['mean']:>8}  {ratio['healthy_interval_mean']}",
        f"healthy jobs' poll interval, max (s)       {off['healthy_interval_s']['max']:>8}  "
        f"{on['healthy_interval_s']['max']:>8}",
        f"user's /jobstatus status answer, mean (s)  {off['user_status_answer_s']['mean']:>8}  "
        f"{on['user_status_answer_s']['mean']:>8}  {ratio['user_status_answer_mean']}",
        f"watch of a dripping job answered in (s)    {'':>8}  {slow.get('answer_s')!s:>8}  "
        f"(says slow: {slow.get('says_slow')})",
        f"dripped answers started                    {off['dripped_answers']:>8}  {on['dripped_answers']:>8}",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.drip", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
    p.add_argument("--quick", action="store_true", help="5 s phases and fewer jobs (about 20 s)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the JSON results go")
    args = p.parse_args(argv)
    m = report.machine()
    print(f"bench.drip ({'quick' if args.quick else 'full'}): {m['cpu_model']}, {m['logical_cpus']} CPUs, "
          f"Python {m['python']}", flush=True)
    result: dict[str, Any] = {"schema": 1, "mode": "quick" if args.quick else "full", "machine": m,
                              "git": report.git_state(), "errors": []}
    try:
        result["drip"] = asyncio.run(run(args.quick))
    except Exception as exc:  # recorded, and the exit status says so
        result["errors"].append(f"{type(exc).__name__}: {exc}")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path, _ = report.write(result, args.out, stamp, prefix="drip-")
    if "drip" in result:
        print(table(result["drip"]))
    for e in result["errors"]:
        print(f"error: {e}", file=sys.stderr)
    print(f"written: {path}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
