"""`python -m bench.burst` — issue 12: a burst of final states, and `/jobstatus watch` while the poller is
saturated.

Each figure is set beside a baseline measured in the same run, and given as a ratio to it. All on 127.0.0.1,
against the real bot (`python -m bot run`), the vendor simulators (bench/simproc.py, their own process) and
the fake Slack (this process), started with bench/procs.py's helpers.

1. Burst. Fusion watches (300 over 20 channels at a 5 s interval), seeded with the bot's own
   `store.create_watch` as bench/runner.py seeds them. Baseline: a few other watches, one per channel of its
   own, change one at a time, 0.5 s apart. Then every one of the 300 jobs moves to its final state at one
   moment (the simulators' `POST /change/many`). Measured per watch: from the change to its thread reply
   reaching the fake Slack (its own record of the message's arrival); p50/p99/max, and per channel the N-th
   reply (in arrival order) against interval + N x 1 s, the bot's sustained pace of one message a second per
   channel (Slack's limit): the share of replies within that bound and the worst excess.
2. `/jobstatus watch` while the poller is saturated: the back-to-back setup of bench/runner.py (Fusion, EPM DI
   and Planning, a 0.05 s interval, many watches), then signed `/jobstatus watch` requests for new jobs, one
   every 0.4 s; measured from each request to its "Watching …" answer reaching the fake Slack's response_url.
   Baseline: the same number of requests, for other new jobs, with the same watches at a 1 h interval (the
   poller idle), the bot started the same way.

    python -m bench.burst            # the sizes above, about 8 minutes on 2 cores (6 of them Tier 3's pace)
    python -m bench.burst --quick    # small sizes, well under a minute (the test suite runs this)
    python -m bench.burst --burst-only   # part 1 only

The fake Slack enforces Slack's rate limits (bot/offline/slack/limits.py), so part 1 also measures the time
until every parent shows its final state (chat.update is Tier 3: 50 a minute per workspace; the floor is a
minute's 50 at once, then 50 a minute) and counts the 429s Slack answered.

It prints a table and writes `bench/results/burst-<timestamp>.json` and `bench/results/burst-latest.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from bench import report
from bench.jobs import SAMPLE_BASE, job_id
from bench.procs import BotProc, SimProc, cpu_seconds
from bench.runner import (
    B2B_BACKENDS,
    SECRET,
    _r,
    bot_config,
    dist,
    machine_busy,
    other_load,
    seed_database,
    template_statuses,
)
from bot.offline.slack import FakeSlack, SlackUser
from bot.offline.slack.limits import METHOD_TIERS, TIER_PER_MINUTE, WINDOW
from bot.offline.slack.records import Change

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
FUSION = "fusion-demo"
PACE = 1.0  # seconds per message in one channel, sustained (Slack: about one a second per channel; the bot
# also uses a short burst of a few, bot/engine/notifier/pace.py)
IDLE_INTERVAL = 3600.0
TIER3_PER_MINUTE = TIER_PER_MINUTE[METHOD_TIERS["chat.update"]]  # parents' updates: Slack's Tier 3
TIER3_WINDOW = WINDOW
ME = psutil.Process()


@dataclass
class BurstParams:
    mode: str
    watches: int = 300
    channels: int = 20
    interval: float = 5.0
    baseline_changes: int = 20
    busy_watches: int = 1500  # over the three back-to-back backends
    busy_interval: float = 0.05
    requests: int = 30
    request_gap: float = 0.4
    warmup: float = 3.0
    seed: int = 20261206


QUICK = BurstParams(mode="quick", watches=32, channels=4, interval=2.0, baseline_changes=4, busy_watches=300,
                    requests=6, warmup=1.5)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


async def wait_replies(fs: FakeSlack, parents: list[tuple[str, str]], limit_s: float) -> None:
    """Until every parent has a reply, or `limit_s`. Checked every 0.2 s, not on every change (as
    `FakeSlack.wait_for` does): the fake Slack shares this event loop, and the check must not delay the very
    replies it times (their arrival is recorded when the fake Slack handles them)."""
    pending = set(parents)
    deadline = time.monotonic() + limit_s
    while pending and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
        pending = {(ch, ts) for ch, ts in pending if not fs.thread(ch, ts)}


def ended(fs: FakeSlack, channel: str, ts: str) -> bool:
    """Whether the parent shows its watch ended (the job's final state): only an ended watch's parent offers
    "Rewatch" (bot/rendering/messages.py: parent)."""
    return "Rewatch" in json.dumps(fs.message(channel, ts).blocks or [])


def first_reply_at(fs: FakeSlack, channel: str, ts: str) -> float | None:
    replies = fs.thread(channel, ts)
    return replies[0].posted_at if replies else None


async def run_burst(p: BurstParams, logdir: Path, say: Any) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="jobstatus-burst-"))
    sim = SimProc(logdir / "sim-burst.log")
    fs = FakeSlack()
    bot: BotProc | None = None
    errors: list[str] = []
    try:
        await sim.start()
        await fs.start()
        base_first = p.watches  # the baseline's jobs follow the burst's
        await sim.post("/jobs", {"backend": FUSION, "start": 0, "count": p.watches + p.baseline_changes})
        templates = await template_statuses(sim, p.interval)
        channels = [f"CB{c:04d}" for c in range(p.channels)]
        alone = [f"CI{c:04d}" for c in range(p.baseline_changes)]
        for ch in channels + alone:
            fs.add_channel(ch, f"burst-{ch.lower()}")
        plan: list[tuple[str, str, str, str]] = []
        for i in range(p.watches + p.baseline_changes):
            ch = channels[i % p.channels] if i < base_first else alone[i - base_first]
            jid = job_id(FUSION, i)
            plan.append(
                (FUSION, jid, ch, fs.seed_message(ch, f"{FUSION} job {jid} (seeded by the benchmark)"))
            )
        db_url = f"sqlite:///{work / 'bot.db'}"
        await asyncio.get_running_loop().run_in_executor(
            None, seed_database, db_url, plan, templates, p.interval, 24 * 3600.0, random.Random(p.seed))
        bot = BotProc(
            work,
            "burst",
            slack_token=fs.token,
            slack_api_url=fs.api_url,
            secret=SECRET,
            db_url=db_url,
            config=bot_config(sim, p.interval, only=(FUSION,)),
        )
        await bot.start(expect_scheduled=len(plan))
        await asyncio.sleep(p.interval)  # every job polled once since the start

        # -- baseline: one change at a time, each in a channel of its own ------------------------------------
        base: list[float] = []
        changed_at: dict[int, float] = {}
        for k in range(p.baseline_changes):
            changed_at[base_first + k] = float((await sim.post("/change", {"backend": FUSION,
                                                                            "index": base_first + k}))["at"])
            await asyncio.sleep(0.5)
        await wait_replies(fs, [(plan[i][2], plan[i][3]) for i in changed_at], p.interval + 30)
        for i, at in changed_at.items():
            got = first_reply_at(fs, plan[i][2], plan[i][3])
            if got is None:
                errors.append(f"baseline: no reply for {FUSION} {plan[i][1]}")
            else:
                base.append(got - at)
        say(
            f"  burst baseline: {len(base)} changes one at a time, p50 "
            f"{_r(sorted(base)[len(base) // 2] if base else None)} s"
        )

        # -- the burst: every job at one moment --------------------------------------------------------------
        cpu0, busy0, w0 = bot.cpu(), machine_busy(), time.monotonic()
        others0 = (await sim.counts())["cpu_s"] + cpu_seconds(ME)
        calls0 = len(fs.calls)
        refused0 = dict(fs.limits.refused)
        parents = {(plan[i][2], plan[i][3]) for i in range(p.watches)}
        final_at: dict[tuple[str, str], float] = {}  # parent -> when an edit made it show its ended watch

        def edited(change: Change) -> None:
            key = (change.channel or "", change.ts or "")
            if change.kind == "edit" and key in parents and key not in final_at and ended(fs, *key):
                final_at[key] = time.time()

        unsubscribe = fs.subscribe(edited)
        at = float((await sim.post("/change/many", {"jobs": [[FUSION, i] for i in range(p.watches)]}))["at"])
        per_channel_bound = p.interval + PACE * math.ceil(p.watches / p.channels)
        await wait_replies(
            fs, [(plan[i][2], plan[i][3]) for i in range(p.watches)], 3 * per_channel_bound + 60
        )
        # then what else is owed to the threads (the details reply of an ended job): until 3 s without a new
        # one
        quiet_since, seen = time.monotonic(), -1
        while time.monotonic() - quiet_since < 3.0 and time.monotonic() - w0 < 3 * per_channel_bound + 120:
            now_seen = sum(len(fs.thread(plan[i][2], plan[i][3])) for i in range(p.watches))
            if now_seen != seen:
                quiet_since, seen = time.monotonic(), now_seen
            await asyncio.sleep(0.5)
        # then every parent showing its final state: chat.update is Tier 3 (50 a minute per workspace)
        floor = TIER3_WINDOW * (math.ceil(p.watches / TIER3_PER_MINUTE) - 1)
        deadline = time.monotonic() + floor + per_channel_bound + 120
        while len(final_at) < len(parents) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        unsubscribe()
        refused = {m: n - refused0.get(m, 0) for m, n in fs.limits.refused.items() if n - refused0.get(m, 0)}
        wall = time.monotonic() - w0
        cpu = bot.cpu() - cpu0
        ours = cpu + (await sim.counts())["cpu_s"] + cpu_seconds(ME) - others0
        load = other_load(busy0, machine_busy(), ours, wall)
        lat: list[float] = []
        last: list[float] = []
        per_thread: Counter[int] = Counter()
        by_channel: dict[str, list[float]] = {}
        lost = 0
        for i in range(p.watches):
            replies = fs.thread(plan[i][2], plan[i][3])
            per_thread[len(replies)] += 1
            if not replies:
                lost += 1
                continue
            got = replies[0].posted_at
            last.append(replies[-1].posted_at - at)
            lat.append(got - at)
            by_channel.setdefault(plan[i][2], []).append(got - at)
        within = 0
        excess: list[float] = []
        gaps: list[float] = []  # between one reply and the next in a channel: the pace the bot kept
        for values in by_channel.values():
            gaps.extend(b - a for a, b in zip(sorted(values), sorted(values)[1:], strict=False))
            for n, value in enumerate(sorted(values), start=1):
                over = value - (p.interval + n * PACE)
                excess.append(over)
                within += over <= 0
        if lost:
            errors.append(f"burst: {lost} of {p.watches} changes got no thread reply")
        if len(final_at) < len(parents):
            errors.append(
                f"burst: {len(parents) - len(final_at)} of {len(parents)} parents never showed their "
                "final state"
            )
        burst = dist(lat)
        baseline = dist(base)
        log = bot.log_problems()
        stop = await bot.stop()
        if log["errors"] or log["tracebacks"]:
            errors.append(f"bot log (burst): {log['errors']} ERROR lines, {log['tracebacks']} tracebacks; "
                          f"first: {log['first_errors'][:1]}")
        return {
            "setup": {
                "watches": p.watches,
                "channels": p.channels,
                "interval_s": p.interval,
                "backend": FUSION,
                "baseline_changes": p.baseline_changes,
            },
            "baseline": {**baseline, "unit": "s"},
            "burst": {**burst, "unit": "s", "changes": p.watches, "replied": len(lat), "lost": lost},
            "ratio_to_baseline": {k: ratio(burst[k], baseline[k]) for k in ("p50", "p99", "max")},
            "pace_bound": {
                "rule": f"N-th reply in a channel within interval + N x {PACE:g} s",
                "replies": len(excess),
                "within": within,
                "within_share": _r(within / len(excess) if excess else None),
                "worst_excess_s": _r(max(excess) if excess else None),
            },
            # the reply that says the final state is the thread's first; an ended job's details may follow
            "last_reply_in_thread": {**dist(last), "unit": "s"},
            "replies_per_thread": {str(k): v for k, v in sorted(per_thread.items())},
            "reply_example": [r.text[:160] for r in fs.thread(plan[0][2], plan[0][3])],
            "reply_gap_in_channel_s": dist(gaps),
            # from the change until every parent shows its final state, against what Tier 3 allows at best: a
            # minute's 50 at once, then 50 more each minute (the fake Slack's sliding window, limits.py)
            "parents_final": {
                "s": _r(max(final_at.values()) - at if final_at else None, nd=1),
                "shown": len(final_at),
                "of": len(parents),
                "tier3_floor_s": floor,
            },
            "slack_429": refused,
            # every Web API call of the burst, parents' updates (chat.update, not paced, sent after the
            # replies) too
            "slack_calls": dict(Counter(c.method for c in fs.calls[calls0:])),
            "window_s": _r(wall, nd=1),
            "bot_cpu_pct": _r(100 * cpu / wall, nd=1),
            "other_load_pct": load["other_pct"],
            "stop": stop,
            "log": log,
            "errors": errors,
        }
    finally:
        if bot is not None:
            await bot.stop()
            _keep(bot.log, logdir)
        await fs.stop()
        await sim.stop()
        shutil.rmtree(work, ignore_errors=True)


async def watch_requests(p: BurstParams, phase: str, bot: BotProc, fs: FakeSlack, sim: SimProc, first: int,
                         channels: list[str]) -> dict[str, Any]:
    """`p.requests` signed `/jobstatus watch` for new jobs (index `first`..), one every `p.request_gap` s,
    each timed from its sending to its "Watching …" answer at the response_url; the poller's pace
    meanwhile."""
    user = SlackUser(bot.events_url, SECRET, fs, timeout=60.0)
    answered: list[float] = []
    acked: list[float] = []
    failed: list[str] = []

    async def one(k: int) -> None:
        await asyncio.sleep(k * p.request_gap)
        backend = B2B_BACKENDS[k % len(B2B_BACKENDS)]
        jid = job_id(backend, first + k // len(B2B_BACKENDS))
        t = time.time()
        try:
            r = await user.command(f"watch {backend} {jid}", channel_id=channels[k % len(channels)])
            if r.status != 200:
                failed.append(f"{backend} {jid}: HTTP {r.status}")
                return
            acked.append(r.elapsed)
            await fs.wait_for(lambda: any(x.text.startswith("Watching") for x in r.responses()), 120,
                              what=f"the answer to watch {backend} {jid}")
        except Exception as exc:  # recorded; the others go on
            failed.append(f"{backend} {jid}: {type(exc).__name__}: {str(exc)[:200]}")
            return
        answered.append(next(x.at for x in r.responses() if x.text.startswith("Watching")) - t)

    c0, cpu0, w0 = await sim.counts(), bot.cpu(), time.monotonic()
    await asyncio.gather(*(one(k) for k in range(p.requests)))
    c1, cpu1 = await sim.counts(), bot.cpu()
    wall = time.monotonic() - w0
    polls = sum(c1["vendors"][b]["polls"] - c0["vendors"][b]["polls"] for b in B2B_BACKENDS)
    return {"phase": phase, "sent": p.requests, "answered": {**dist(answered, 1000.0), "unit": "ms"},
            "ack": {**dist(acked, 1000.0), "unit": "ms"}, "failed": len(failed), "first_failures": failed[:5],
            "window_s": _r(wall, nd=1), "polls_per_s": _r(polls / wall, nd=1),
            "bot_cpu_pct": _r(100 * (cpu1 - cpu0) / wall, nd=1)}


async def run_saturated(p: BurstParams, logdir: Path, say: Any) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="jobstatus-saturated-"))
    sim = SimProc(logdir / "sim-saturated.log")
    fs = FakeSlack()
    bots: list[BotProc] = []
    errors: list[str] = []
    try:
        await sim.start()
        await fs.start()
        per_backend = {b: math.ceil(p.busy_watches / len(B2B_BACKENDS)) for b in B2B_BACKENDS}
        per_request_backend = math.ceil(p.requests / len(B2B_BACKENDS))
        for b in B2B_BACKENDS:
            await sim.post("/jobs", {"backend": b, "start": 0, "count": per_backend[b]})
            await sim.post("/jobs", {"backend": b, "start": SAMPLE_BASE, "count": 2 * per_request_backend})
        templates = await template_statuses(sim, p.busy_interval)
        channels = [f"CW{c:04d}" for c in range(max(1, p.busy_watches // 100))]
        asking = [f"CA{c:04d}" for c in range(3)]
        for ch in channels + asking:
            fs.add_channel(ch, f"busy-{ch.lower()}")
        plan: list[tuple[str, str, str, str]] = []
        for b in B2B_BACKENDS:
            for i in range(per_backend[b]):
                ch = channels[len(plan) % len(channels)]
                plan.append((b, job_id(b, i), ch, fs.seed_message(ch, f"{b} job {job_id(b, i)} (seeded)")))
        phases: dict[str, dict[str, Any]] = {}
        # idle first (the same watches, none due for an hour), then saturated: each on a database of its own
        for phase, interval, first in (("idle", IDLE_INTERVAL, SAMPLE_BASE),
                                       ("saturated", p.busy_interval, SAMPLE_BASE + per_request_backend)):
            db_url = f"sqlite:///{work / f'{phase}.db'}"
            await asyncio.get_running_loop().run_in_executor(
                None, seed_database, db_url, plan, templates, interval, 24 * 3600.0, random.Random(p.seed))
            bot = BotProc(work, phase, slack_token=fs.token, slack_api_url=fs.api_url, secret=SECRET,
                          db_url=db_url, config=bot_config(sim, interval, only=B2B_BACKENDS))
            bots.append(bot)
            await bot.start(expect_scheduled=len(plan))
            await asyncio.sleep(p.warmup)
            phases[phase] = await watch_requests(p, phase, bot, fs, sim, first, asking)
            phases[phase]["stop"] = await bot.stop()
            phases[phase]["log"] = log = bot.log_problems()
            if phases[phase]["failed"]:
                errors.append(f"{phase}: {phases[phase]['failed']} watch requests failed: "
                              f"{phases[phase]['first_failures'][:2]}")
            if log["errors"] or log["tracebacks"]:
                errors.append(
                    f"bot log ({phase}): {log['errors']} ERROR lines, {log['tracebacks']} tracebacks; "
                    f"first: {log['first_errors'][:1]}"
                )
            say(f"  watch while {phase}: answered p50 {phases[phase]['answered']['p50']} ms, "
                f"{phases[phase]['polls_per_s']} polls/s")
        idle, busy = phases["idle"]["answered"], phases["saturated"]["answered"]
        return {
            "setup": {
                "watches": len(plan),
                "per_backend": per_backend,
                "busy_interval_s": p.busy_interval,
                "idle_interval_s": IDLE_INTERVAL,
                "requests": p.requests,
                "request_gap_s": p.request_gap,
            },
            **phases,
            "ratio_to_idle": {k: ratio(busy[k], idle[k]) for k in ("p50", "p99", "max")},
            "errors": errors,
        }
    finally:
        for bot in bots:
            await bot.stop()
            _keep(bot.log, logdir)
        await fs.stop()
        await sim.stop()
        shutil.rmtree(work, ignore_errors=True)


def _keep(path: Path, logdir: Path) -> None:
    if path.exists():
        shutil.copy(path, logdir / path.name)


def table(r: dict[str, Any]) -> str:
    b, s = r["burst"], r.get("saturated")
    rows = [("", "p50", "p99", "max", "")]

    def row(name: str, d: dict[str, Any], extra: str = "") -> None:
        rows.append((name, str(d["p50"]), str(d["p99"]), str(d["max"]), extra))

    row("burst: change -> reply (s)", b["burst"], f"{b['burst']['replied']}/{b['burst']['changes']} replied")
    row(
        "  last reply of its thread (s)",
        b["last_reply_in_thread"],
        f"replies per thread {b['replies_per_thread']}",
    )
    row("  baseline, one at a time (s)", b["baseline"], f"{b['baseline']['n']} changes")
    row("  ratio", b["ratio_to_baseline"])
    if s is not None:
        row("watch answered, saturated (ms)", s["saturated"]["answered"],
            f"{s['saturated']['polls_per_s']} polls/s, bot CPU {s['saturated']['bot_cpu_pct']}%")
        row("  baseline, poller idle (ms)", s["idle"]["answered"],
            f"{s['idle']['polls_per_s']} polls/s, bot CPU {s['idle']['bot_cpu_pct']}%")
        row("  ratio", s["ratio_to_idle"])
    widths = [max(len(x[i]) for x in rows) for i in range(5)]
    lines = [
        "  ".join(c.ljust(widths[i]) if i in (0, 4) else c.rjust(widths[i]) for i, c in enumerate(x)).rstrip()
        for x in rows
    ]
    pb = b["pace_bound"]
    pf = b["parents_final"]
    lines.append(f"burst, per channel: {pb['within']}/{pb['replies']} replies ({pb['within_share']}) within "
                 f"{b['setup']['interval_s']:g} s + N x {PACE:g} s; worst excess {pb['worst_excess_s']} s; "
                 f"gap between replies in a channel p50 {b['reply_gap_in_channel_s']['p50']} s; "
                 f"Slack calls {b['slack_calls']}")
    lines.append(f"burst, parents: {pf['shown']}/{pf['of']} show their final state after {pf['s']} s "
                 f"(Tier 3 floor {pf['tier3_floor_s']:g} s); 429s Slack answered: {b['slack_429'] or 0}")
    return "\n".join(lines)


async def run(p: BurstParams, out: Path, burst_only: bool = False) -> int:
    def say(text: str) -> None:
        print(text, flush=True)

    run_ = report.begin(out, "burst-", "jobstatus burst benchmark", p.mode, asdict(p))
    stamp, logdir, result = run_.stamp, run_.logdir, run_.result
    t0 = time.monotonic()
    say(f"burst: {p.watches} watches over {p.channels} channels, {p.interval:g} s interval…")
    result["burst"] = await run_burst(p, logdir, say)
    if not burst_only:
        say(f"watch requests, idle then saturated ({p.busy_watches} watches at {p.busy_interval:g} s)…")
        result["saturated"] = await run_saturated(p, logdir, say)
    result["errors"] = result["burst"]["errors"] + (result["saturated"]["errors"] if not burst_only else [])
    result["total_seconds"] = round(time.monotonic() - t0, 1)
    path, _latest = report.write(result, out, stamp, "burst-")
    say("")
    say(table(result))
    for e in result["errors"]:
        say(f"ERROR: {e}")
    say(f"\nJSON: {path} (and burst-latest.json); logs in {logdir}; {result['total_seconds']} s in all")
    return 1 if result["errors"] else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, well under a minute (the smoke test)")
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where the JSON goes (default bench/results/)"
    )
    ap.add_argument("--burst-only", action="store_true", help="only part 1, the burst (its parents' updates, "
                    "at Slack's Tier 3, take about 6 minutes at the full size)")
    args = ap.parse_args(argv)
    return asyncio.run(run(QUICK if args.quick else BurstParams(mode="full"), args.out, args.burst_only))


if __name__ == "__main__":
    sys.exit(main())
