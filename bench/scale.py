"""`python -m bench.scale` — issue 12: replicas on one PostgreSQL at 50,000 watches.

All on 127.0.0.1: a throwaway PostgreSQL cluster (bot/offline/postgres.py; or `--database-url`, an empty
database it fills), the vendor simulators in their own process (bench/simproc.py), the fake Slack in this
one, and N real `jobstatus-bot run` replicas (bench/procs.py's BotProc) sharing the database.

The watches are seeded as bench/runner.py seeds them: written straight into the database with the bot's own
`store.create_watch` (what `/jobstatus watch` runs after its check), their parents already posted in the fake
Slack, next polls spread over one interval, over the five demo backends, at most 100 watches a channel. Only
the seeding skips the replicas; every poll and every Slack message is theirs.

1. Steady: N replicas (default 2) at the interval (default 30 s), timed until they have split the jobs
   evenly (/healthz `scheduled`); after a warm-up of one interval, a measured window in which jobs (one per
   channel) move to their done state at recorded moments in the simulator; each change is timed to its
   thread reply's arrival in the fake Slack (change→reply p50/p99/max, and p99 − interval). Polls a second
   come from the simulators' counters; CPU (user+system, psutil) of each replica, the simulators' process,
   the PostgreSQL server (postmaster and backends; only when this run started it) and this process, and
   what the rest of the machine used meanwhile.
2. Back to back: the replicas restarted on the same database polling Fusion, EPM DI and Planning with a
   0.05 s interval (each replica at its limit), first one replica alone, then a second joining: polls a
   second in a window of each, in the same run, and the ratio (2 replicas / 1).

    python -m bench.scale            # 50,000 watches, 2 replicas: about 10 minutes on 2 cores
                                     # (seeding: 4 to 8)
    python -m bench.scale --quick    # 300 watches, well under a minute (the test suite runs this)

It prints a table and writes `bench/results/scale-<timestamp>.json` and `bench/results/scale-latest.json`;
targets are recorded beside the figures, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text

from bench import report
from bench.burst import wait_replies
from bench.jobs import VENDORS, split
from bench.procs import BotProc, SimProc, cpu_seconds, database, settle, tree_cpu_seconds
from bench.runner import (
    B2B_BACKENDS,
    SECRET,
    _r,
    bot_config,
    counts_delta,
    dist,
    effective_interval,
    machine_busy,
    other_load,
    plan_watches,
    seed_database,
    template_statuses,
)
from bot import store
from bot.offline.postgres import PostgresCluster
from bot.offline.slack import FakeSlack

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
ME = psutil.Process()
SATURATED = 90.0  # % of one core: a process at or above it is taken as saturated


@dataclass
class ScaleParams:
    mode: str
    watches: int = 50_000
    replicas: int = 2
    interval: float = 30.0
    window: float = 60.0
    changes: int = 100  # one per channel, spread over the window
    b2b_interval: float = 0.05
    b2b_warmup: float = 5.0
    b2b_window: float = 20.0
    watches_per_channel: int = 100
    lease: float = 15.0
    seed: int = 20261207


QUICK = ScaleParams(mode="quick", watches=300, interval=2.0, window=6.0, changes=10, b2b_warmup=1.0,
                    b2b_window=3.0)


class Meter:
    """CPU of every process of the run, the simulators' counters and the machine's, at one moment."""

    def __init__(self, sim: SimProc, pg_pid: int | None) -> None:
        self.sim = sim
        self.pg_pid = pg_pid

    async def snap(self, bots: list[BotProc]) -> dict[str, Any]:
        counts = await self.sim.counts()
        return {"t": time.monotonic(), "counts": counts, "sim": counts["cpu_s"],
                "bots": {b.name: b.cpu() for b in bots}, "bench": cpu_seconds(ME),
                "pg": tree_cpu_seconds(self.pg_pid) if self.pg_pid else None, "busy": machine_busy(),
                "loadavg": [round(x, 2) for x in os.getloadavg()]}


def usage(a: dict[str, Any], b: dict[str, Any], backends: tuple[str, ...]) -> dict[str, Any]:
    """Polls a second and CPU (% of one core) of each process between two snapshots, and which saturated."""
    wall = b["t"] - a["t"]
    delta = counts_delta(a["counts"], b["counts"])
    polls = sum(delta[x]["polls"] for x in backends)
    pct = {name: 100 * (b["bots"][name] - a["bots"][name]) / wall for name in b["bots"] if name in a["bots"]}
    sim = 100 * (b["sim"] - a["sim"]) / wall
    pg = None if a["pg"] is None or b["pg"] is None else 100 * (b["pg"] - a["pg"]) / wall
    bench = 100 * (b["bench"] - a["bench"]) / wall
    ours = (sum(pct.values()) + sim + (pg or 0.0) + bench) * wall / 100
    load = other_load(a["busy"], b["busy"], ours, wall)
    cores = os.cpu_count() or 1
    machine = 100 * (b["busy"][0] - a["busy"][0]) / wall
    saturated = [name for name, x in pct.items() if x >= SATURATED]
    saturated += [name for name, x in (("simulators", sim), ("postgresql", pg), ("bench", bench))
                  if x is not None and x >= SATURATED]
    if machine >= 0.9 * 100 * cores:  # every core busy: whoever is below SATURATED got less than it asked for
        saturated.append(
            f"the machine ({machine:.0f}% of {100 * cores}%; other processes {load['other_pct']}%)"
        )
    return {
        "window_s": _r(wall, nd=2),
        "polls": polls,
        "polls_per_s": _r(polls / wall, nd=1),
        "cpu_pct": {
            "replicas": {k: _r(v, nd=1) for k, v in pct.items()},
            "simulators": _r(sim, nd=1),
            "postgresql": _r(pg, nd=1),
            "bench": _r(bench, nd=1),
        },
        "replicas_cpu_ms_per_1000_polls": _r(
            1e6 * sum(pct.values()) * wall / 100 / polls if polls else None, nd=1
        ),
        "machine_busy_pct": _r(machine, nd=1),
        "machine_capacity_pct": 100 * cores,
        "other_load_pct": load["other_pct"],
        "steal_pct": load["steal_pct"],
        "saturated": saturated,
        "loadavg": {"start": a["loadavg"], "end": b["loadavg"]},
    }


def polling_jobs(url: str, backends: tuple[str, ...]) -> int:
    db = store.Store(url)
    try:
        with db.engine.connect() as con:
            return int(con.execute(text("SELECT count(*) FROM jobs WHERE polling AND backend = ANY(:b)"),
                                   {"b": list(backends)}).scalar_one())
    finally:
        db.close()


def _keep(path: Path, logdir: Path) -> None:
    with contextlib.suppress(OSError):
        if path.exists():
            shutil.copy(path, logdir / path.name)


def _log_errors(bots: list[BotProc], errors: list[str]) -> dict[str, Any]:
    logs = {b.name: b.log_problems() for b in bots}
    for name, log in logs.items():
        if log["errors"] or log["tracebacks"]:
            errors.append(f"replica {name}: {log['errors']} ERROR lines, {log['tracebacks']} tracebacks; "
                          f"first: {log['first_errors'][:1]}")
    return logs


async def run_scale(p: ScaleParams, url: str, cluster: PostgresCluster | None, logdir: Path,
                    say: Any) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="jobstatus-scale-"))
    sim = SimProc(logdir / "sim-scale.log")
    fs = FakeSlack()
    bots: list[BotProc] = []
    errors: list[str] = []
    out: dict[str, Any] = {"errors": errors}
    rng = random.Random(p.seed)
    all_backends = tuple(v.backend for v in VENDORS)

    def replica(name: str, interval: float, only: tuple[str, ...] | None = None) -> BotProc:
        bot = BotProc(work, name, slack_token=fs.token, slack_api_url=fs.api_url, secret=SECRET, db_url=url,
                      config={**bot_config(sim, interval, only=only), "lease_seconds": p.lease})
        bots.append(bot)
        return bot

    try:
        await sim.start()
        await fs.start()
        meter = Meter(sim, cluster.server_pid() if cluster is not None else None)
        n = p.watches
        per_backend = split(n)
        n_channels = math.ceil(n / p.watches_per_channel)
        channels = [f"CS{c:06d}" for c in range(n_channels)]
        for c, ch in enumerate(channels):
            fs.add_channel(ch, f"scale-{c}")
        for v in VENDORS:
            await sim.post("/jobs", {"backend": v.backend, "start": 0, "count": per_backend[v.backend]})
        templates = await template_statuses(sim, p.interval)
        plan, where = plan_watches(fs, n, per_backend, channels)
        t0 = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(
            None, seed_database, url, plan, templates, p.interval, 24 * 3600.0, rng)
        out["setup"] = {
            "watches": n,
            "replicas": p.replicas,
            "per_backend": per_backend,
            "channels": n_channels,
            "interval_s": p.interval,
            "lease_s": p.lease,
            "database": "postgresql",
            "postgresql_started_here": cluster is not None,
            "seed": {
                "seconds": _r(time.monotonic() - t0, nd=1),
                "via": "store.create_watch (bot.store) straight into the database, "
                "in transactions of 2,000; parents pre-posted in the fake Slack",
            },
        }
        say(f"  seeded {n:,} watches in {out['setup']['seed']['seconds']} s")

        # -- steady: N replicas at the interval --------------------------------------------------------------
        steady = [replica(f"steady-{r}", p.interval) for r in range(p.replicas)]
        t0 = time.monotonic()
        for bot in steady:
            await bot.start(expect_scheduled=None)
        settled = await settle(steady, lambda: polling_jobs(url, all_backends))
        say(f"  {p.replicas} replicas up and {n:,} jobs split after {time.monotonic() - t0:.1f} s")
        await asyncio.sleep(p.interval)  # warm-up: every job polled once since the split
        movable = [
            k for k, v in enumerate(VENDORS) if effective_interval(v.backend, p.interval) <= p.interval
        ]
        n_changes = max(1, min(p.changes, n_channels))
        changed = [c * len(VENDORS) + movable[c % len(movable)] for c in range(n_changes)]
        changed_at: dict[int, float] = {}
        start = time.time() + 0.2

        async def make_changes() -> None:
            for j, i in enumerate(changed):
                await asyncio.sleep(max(0.0, start + p.window * (j + 0.5) / n_changes - time.time()))
                backend, k, _ch, _ts = where[i]
                changed_at[i] = float((await sim.post("/change", {"backend": backend, "index": k}))["at"])

        s0 = await meter.snap(steady)
        changing = asyncio.create_task(make_changes())
        await asyncio.sleep(p.window)
        s1 = await meter.snap(steady)
        await changing
        await wait_replies(fs, [(where[i][2], where[i][3]) for i in changed], p.interval + 60)
        lat: list[float] = []
        for i in changed:
            _b, _k, ch, ts = where[i]
            got = [r.posted_at for r in fs.thread(ch, ts) if r.posted_at >= changed_at[i]]
            if got:
                lat.append(min(got) - changed_at[i])
        lost = n_changes - len(lat)
        if lost:
            errors.append(f"steady: {lost} of {n_changes} changes got no thread reply within "
                          f"{p.interval + 60:.0f} s of the window's end")
        use = usage(s0, s1, all_backends)
        expected = sum(c / effective_interval(b, p.interval) for b, c in per_backend.items())
        p99 = dist(lat)["p99"]
        out["steady"] = {
            "settled_s": _r(settled, nd=1),
            **use,
            "expected_polls_per_s": _r(expected, nd=1),
            "keeping_up": _r(use["polls_per_s"] / expected if expected else None, nd=3),
            "latency": {
                **dist(lat),
                "unit": "s",
                "changes": n_changes,
                "replied": len(lat),
                "lost": lost,
                "interval_s": p.interval,
                "p99_minus_interval_s": _r(None if p99 is None else p99 - p.interval),
            },
        }
        out["steady"]["log"] = _log_errors(steady, errors)
        out["steady"]["stop"] = [await b.stop() for b in steady]
        say(
            f"  steady: {use['polls_per_s']} polls/s (due {out['steady']['expected_polls_per_s']}), p99 "
            "change->reply "
            f"{p99} s, CPU % {use['cpu_pct']}"
        )

        # -- back to back: one replica alone, then two -------------------------------------------------------
        total = await asyncio.get_running_loop().run_in_executor(None, polling_jobs, url, B2B_BACKENDS)
        b2b: dict[str, Any] = {"backends": list(B2B_BACKENDS), "jobs": total, "interval_s": p.b2b_interval}
        running: list[BotProc] = []
        for k in (1, 2):
            bot = replica(f"b2b-{k}", p.b2b_interval, only=B2B_BACKENDS)
            running.append(bot)
            await bot.start(expect_scheduled=None)
            split_s = await settle(running, lambda: polling_jobs(url, B2B_BACKENDS))
            await asyncio.sleep(p.b2b_warmup)
            a = await meter.snap(running)
            await asyncio.sleep(p.b2b_window)
            b = await meter.snap(running)
            u = usage(a, b, B2B_BACKENDS)
            # the poller's tick (0.5 s) lets a job be polled at most twice a second: near that, few jobs set
            # the pace, not CPU, and the ratio says nothing about the replicas
            u["polls_per_job_per_s"] = _r(u["polls"] / u["window_s"] / total if total else None, nd=2)
            b2b[f"replicas_{k}"] = {"settled_s": _r(split_s, nd=1), **u}
            say(f"  back to back, {k} replica(s): {b2b[f'replicas_{k}']['polls_per_s']} polls/s, "
                f"CPU % {b2b[f'replicas_{k}']['cpu_pct']}")
        one, two = b2b["replicas_1"]["polls_per_s"], b2b["replicas_2"]["polls_per_s"]
        b2b["ratio"] = _r(two / one if one else None, nd=2)
        b2b["log"] = _log_errors(running, errors)
        b2b["stop"] = [await b.stop() for b in running]
        out["back_to_back"] = b2b
        failed = [f"{c.method}: {c.error}" for c in fs.calls if not c.ok] + [
            f"{c.method}: {c.error}" for c in fs.failed_calls]
        if failed:
            errors.append(f"{len(failed)} Slack API calls failed: {failed[:3]}")
        return out
    except Exception as exc:  # what was measured so far is kept, and why the rest is missing
        errors.append(f"{type(exc).__name__}: {str(exc)[:500]}")
        return out
    finally:
        for bot in bots:
            await bot.stop()
            _keep(bot.log, logdir)
            _keep(bot.config_path, logdir)
        await fs.stop()
        await sim.stop()
        shutil.rmtree(work, ignore_errors=True)


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's two targets with this run's values: recorded, never asserted."""
    over = r["steady"]["latency"]["p99_minus_interval_s"]
    ratio = r["back_to_back"]["ratio"]
    return [
        {"target": f"p99 change→reply ≤ interval + 2 s ({r['setup']['watches']:,} watches, "
                   f"{r['setup']['replicas']} replicas)", "value": over, "limit": 2.0,
         "met": None if over is None else over <= 2.0},
        {"target": "back-to-back polls/s, 2 replicas / 1", "value": ratio, "limit": 1.8,
         "met": None if ratio is None else ratio >= 1.8},
    ]


def table(r: dict[str, Any]) -> str:
    s, b = r["steady"], r["back_to_back"]
    lat = s["latency"]

    def cpu(u: dict[str, Any]) -> str:
        c = u["cpu_pct"]
        reps = " + ".join(f"{x}" for x in c["replicas"].values())
        return (
            f"replicas {reps}, simulators {c['simulators']}, PostgreSQL {c['postgresql']}, bench "
            f"{c['bench']}; "
            f"machine {u['machine_busy_pct']} of {u['machine_capacity_pct']} (others {u['other_load_pct']}); "
            f"load {u['loadavg']['end']}"
        )

    lines = [
        f"steady, {r['setup']['watches']:,} watches, {r['setup']['replicas']} replicas, "
        f"{r['setup']['interval_s']:g} s "
        f"interval: {s['polls_per_s']} polls/s of {s['expected_polls_per_s']} due",
        f"  change -> reply p50 / p99 / max: {lat['p50']} / {lat['p99']} / {lat['max']} s "
        f"(p99 - interval {lat['p99_minus_interval_s']} s; {lat['replied']}/{lat['changes']} replied)",
        f"  CPU % of one core: {cpu(s)}",
        f"back to back ({', '.join(b['backends'])}; {b['jobs']:,} jobs, {b['interval_s']:g} s interval):",
    ]
    for k in (1, 2):
        u = b[f"replicas_{k}"]
        lines.append(f"  {k} replica(s): {u['polls_per_s']} polls/s; CPU % of one core: {cpu(u)}")
    lines.append(f"  ratio 2 / 1: {b['ratio']}")
    for name, u in (
        ("steady", s),
        ("back to back, 1", b["replicas_1"]),
        ("back to back, 2", b["replicas_2"]),
    ):
        if u["saturated"]:
            lines.append(f"  saturated ({name}): {', '.join(u['saturated'])}")
    return "\n".join(lines)


async def run(p: ScaleParams, out: Path, url: str | None) -> int:
    def say(line: str) -> None:
        print(line, flush=True)

    run_ = report.begin(out, "scale-", "jobstatus scale benchmark", p.mode, asdict(p),
                        f"{p.watches:,} watches, {p.replicas} replicas on PostgreSQL")
    result = run_.result
    t0 = time.monotonic()
    async with database(url, run_.logdir) as (db_url, cluster):
        result.update(await run_scale(p, db_url, cluster, run_.logdir, say))
    complete = "steady" in result and "back_to_back" in result
    result["targets"] = targets(result) if complete else []
    result["total_seconds"] = round(time.monotonic() - t0, 1)
    path, _latest = report.write(result, out, run_.stamp, "scale-")
    say("")
    if complete:
        say(table(result))
    for t in result["targets"]:
        say(f"target {'met' if t['met'] else 'MISSED' if t['met'] is False else 'n/a'}: {t['target']}: "
            f"{t['value']} vs {t['limit']}")
    for e in result["errors"]:
        say(f"ERROR: {e}")
    say(f"\nJSON: {path} (and scale-latest.json); logs in {run_.logdir}; {result['total_seconds']} s in all")
    return 1 if result["errors"] or not complete else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="300 watches, short windows (the smoke test)")
    ap.add_argument("--watches", type=int, help="watches seeded (default 50,000)")
    ap.add_argument("--replicas", type=int, help="replicas in the steady phase (default 2)")
    ap.add_argument(
        "--database-url", help="an empty PostgreSQL database to fill (default: a throwaway cluster)"
    )
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where the JSON goes (default bench/results/)"
    )
    args = ap.parse_args(argv)
    p = QUICK if args.quick else ScaleParams(mode="full")
    if args.watches is not None:
        p.watches = args.watches
    if args.replicas is not None:
        p.replicas = args.replicas
    if args.database_url and not args.database_url.startswith(("postgres://", "postgresql")):
        print(
            "bench.scale: --database-url must be a postgresql:// URL (replicas need PostgreSQL)",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(run(p, args.out, args.database_url))


if __name__ == "__main__":
    sys.exit(main())
