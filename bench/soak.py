"""`python -m bench --soak`: what history costs over time, with pruning on and off in the same run.

Hours of churn on a fake clock, through the bot's own code, minute by simulated minute: watches start on new
jobs (one in ten in a second channel too), jobs go queued → running → succeeded or failed (or a user stops
the watch) and each change is written as the poller writes it (`store.apply_results`), the notifier's work
is done in bulk (each parent's ts on its watch, the outbox emptied), and the poller's own upkeep
(`Poller._sweep`: outage notes, timeouts and, every `prune_every`, pruning) runs every 30 simulated seconds.
Nothing waits: a simulated day takes seconds.

The same seeded churn runs twice, on two SQLite files: once with `history_retention` as given (pruning on)
and once with a retention of 100 years (pruning off: the same upkeep finds nothing old enough). Every few
simulated hours it records the rows per table and the database file's size (after a WAL checkpoint), and
prints the ratios on/off at the end. JSON into bench/results/soak-<time>.json (and soak-latest.json).
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from bench import report
from bot import store
from bot.domain.jobs import OutboxKind, Reply
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.engine.poller import Poller
from bot.store import Job, Outbox, StateChange, Store, Watch
from bot.support.config import Settings, settings_from_dict

START = 1_800_000_000.0  # the fake clock's start (2027-01-15)
STEP = 60.0  # one simulated minute per step
SWEEP = 30.0  # the poller's upkeep period (Poller.sweep_every)
OFF = 100 * 365 * 86400.0  # "pruning off": nothing is ever this old
TABLES: tuple[tuple[str, Any], ...] = (("jobs", Job), ("watches", Watch), ("state_changes", StateChange),
                                       ("outbox", Outbox))


@dataclass
class SoakParams:
    hours: float = 72.0
    watches_per_hour: float = 600.0
    retention: float = 24 * 3600.0
    sample_every_h: float = 6.0
    seed: int = 20261206


@dataclass
class Plan:
    """One simulated job: when it starts running, when it ends (and how), whether a user stops it first."""

    job_id: str
    channels: list[str]
    running_at: float
    ends_at: float
    fails: bool
    stopped_at: float | None
    phase: Phase = Phase.QUEUED
    pk: int = 0
    watches: list[int] = field(default_factory=list)


def settings(retention: float) -> Settings:
    backend = {"type": "fusion_jobscheduler", "base_url": "https://fusion.example.com",
               "auth": {"type": "bearer", "token": "soak"}}
    return settings_from_dict({"backends": {"soak": backend}, "history_retention": retention}, "<soak>")


def status(plan: Plan, phase: Phase) -> JobStatus:
    word = {
        Phase.QUEUED: "WAIT",
        Phase.RUNNING: "RUNNING",
        Phase.SUCCEEDED: "SUCCEEDED",
        Phase.FAILED: "ERROR",
    }[phase]
    return JobStatus(plan.job_id, phase, word, name=f"soak job {plan.job_id}",
                     message="ORA-01555: snapshot too old" if phase is Phase.FAILED else None)


def new_plan(rng: random.Random, n: int, now: float) -> Plan:
    channels = [f"C{rng.randrange(40):04d}"]
    if rng.random() < 0.1:
        channels.append(f"C{40 + rng.randrange(40):04d}")
    running_at = now + rng.uniform(60, 600)
    ends_at = running_at + rng.uniform(300, 7200)
    stopped = now + rng.uniform(60, ends_at - now) if rng.random() < 0.05 else None
    return Plan(f"J{n:07d}", channels, running_at, ends_at, rng.random() < 0.15, stopped)


def start_watches(s: Session, plans: list[Plan], now: float) -> None:
    for plan in plans:
        for channel in plan.channels:
            w, job, _ = store.create_watch(s, "soak", status(plan, Phase.QUEUED), channel, "U0001", now=now,
                                           interval=30, watch_timeout=86400, first_reply=None)
            plan.pk = job.pk
            plan.watches.append(w.pk)


def deliver(s: Session, now: float) -> None:
    """What the notifier leaves behind once Slack has taken everything owed: each parent's ts on its watch, no
    outbox row. (In bulk: sending one by one is the notifier's cost, not history's.)"""
    parents = select(col(Outbox.watch_id)).where(col(Outbox.kind) == OutboxKind.PARENT)
    s.execute(update(Watch).where(col(Watch.id).in_(parents)).values(parent_ts=f"{now:.6f}"))
    s.execute(delete(Outbox))


def stop(s: Session, watch_ids: list[int], now: float) -> None:
    for wid in watch_ids:
        store.stop_watch(s, wid, now, Reply("Stopped watching (by <@U0001>).", []))


def measure(s: Session) -> dict[str, int]:
    return {
        name: int(s.execute(select(func.count()).select_from(model)).scalar_one()) for name, model in TABLES
    }


def file_size(db: Store, path: Path) -> int:
    """The database file's size once the WAL is checkpointed into it (SQLite keeps freed pages for reuse)."""
    with db.engine.connect() as conn:  # outside any transaction: a checkpoint cannot run inside one
        conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    return path.stat().st_size


async def simulate(path: Path, retention: float, p: SoakParams, say: Any) -> dict[str, Any]:
    db = Store(f"sqlite:///{path}")
    db.upgrade()
    clock = [START]
    poller = Poller(db, {}, lambda: None, settings(retention), lambda: clock[0])
    rng = random.Random(p.seed)
    plans: list[Plan] = []
    made = 0
    owed_rate = 0.0
    samples: list[dict[str, Any]] = []
    sweep_s = 0.0
    t0 = time.perf_counter()
    steps = int(p.hours * 3600 / STEP)
    sample_every = max(1, int(p.sample_every_h * 3600 / STEP))
    try:
        for step in range(1, steps + 1):
            now = START + step * STEP
            clock[0] = now
            owed_rate += p.watches_per_hour * STEP / 3600
            fresh = [new_plan(rng, made + i, now) for i in range(int(owed_rate))]
            made += len(fresh)
            owed_rate -= len(fresh)
            if fresh:
                await db.run(start_watches, fresh, now)
                plans += fresh
            results, stopping, live = [], [], []
            for plan in plans:
                if plan.stopped_at is not None and plan.stopped_at <= now:
                    stopping += plan.watches
                    continue
                nxt = (Phase.RUNNING if plan.phase is Phase.QUEUED and plan.running_at <= now else
                       (Phase.FAILED if plan.fails else Phase.SUCCEEDED) if plan.ends_at <= now else None)
                if nxt is not None:
                    plan.phase = nxt
                    results.append(store.PollResult(plan.pk, status(plan, nxt), now, now + 30))
                if not plan.phase.terminal:
                    live.append(plan)
            plans = live
            if stopping:
                await db.run(stop, stopping, now)
            if results:
                await db.run(store.apply_results, results)
            await db.run(deliver, now)
            for half in (now - SWEEP, now):  # the upkeep, every 30 s as in the bot
                t = time.perf_counter()
                await poller._sweep(half)
                sweep_s += time.perf_counter() - t
            if step % sample_every == 0 or step == steps:
                rows = await db.run(measure)
                size = file_size(db, path)
                hour = round(step * STEP / 3600, 2)
                samples.append(
                    {"hour": hour, "rows": rows, "total_rows": sum(rows.values()), "file_bytes": size}
                )
                say(f"  {'on ' if retention < OFF else 'off'} {hour:6.1f} h: {sum(rows.values()):>9,} rows, "
                    f"{size / 2**20:8.2f} MiB, {made:,} jobs so far")
    finally:
        await poller.stop(asyncio.get_running_loop().time() + 5.0)
        db.close()
    return {"retention_s": retention, "jobs": made, "samples": samples, "upkeep_s": round(sweep_s, 2),
            "seconds": round(time.perf_counter() - t0, 1)}


def ratios(on: dict[str, Any], off: dict[str, Any]) -> dict[str, Any]:
    a, b = on["samples"][-1], off["samples"][-1]
    out: dict[str, Any] = {"total_rows": round(a["total_rows"] / b["total_rows"], 3),
                           "file_bytes": round(a["file_bytes"] / b["file_bytes"], 3)}
    for name, _ in TABLES:
        out[name] = round(a["rows"][name] / b["rows"][name], 3) if b["rows"][name] else None
    return out


async def run(p: SoakParams, out: Path) -> int:
    def say(line: str) -> None:
        print(line, flush=True)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    say(f"jobstatus soak: {p.hours:g} simulated hours, {p.watches_per_hour:g} new jobs an hour, retention "
        f"{p.retention / 3600:g} h against none (SQLite)")
    with tempfile.TemporaryDirectory(prefix="jobstatus-soak-") as work:
        on = await simulate(Path(work) / "on.db", p.retention, p, say)
        off = await simulate(Path(work) / "off.db", OFF, p, say)
    r = ratios(on, off)
    result = {
        "schema": 1,
        "mode": "soak",
        "started_at": stamp,
        "machine": report.machine(),
        "git": report.git_state(),
        "params": asdict(p),
        "pruning_on": on,
        "pruning_off": off,
        "ratios": r,
    }
    a, b = on["samples"][-1], off["samples"][-1]
    say("")
    say(f"after {p.hours:g} h ({on['jobs']:,} jobs)   pruning on   pruning off   on/off")
    for name, _ in TABLES:
        ratio = f"{r[name]:6.3f}" if r[name] is not None else "     —"
        say(f"  {name:<22} {a['rows'][name]:>11,} {b['rows'][name]:>13,}   {ratio}")
    say(f"  {'rows, all tables':<22} {a['total_rows']:>11,} {b['total_rows']:>13,}   {r['total_rows']:6.3f}")
    say(f"  {'file size (MiB)':<22} {a['file_bytes'] / 2**20:>11.2f} {b['file_bytes'] / 2**20:>13.2f}   "
        f"{r['file_bytes']:6.3f}")
    say(f"  upkeep time (s)        {on['upkeep_s']:>11} {off['upkeep_s']:>13}")
    out.mkdir(parents=True, exist_ok=True)
    body = json.dumps(result, indent=2, default=str)
    path = out / f"soak-{stamp}.json"
    path.write_text(body)
    (out / "soak-latest.json").write_text(body)
    say(f"\nJSON: {path}")
    return 0


def main(p: SoakParams, out: Path) -> int:
    return asyncio.run(run(p, out))
