"""`python -m bench.front` — issue 20 item 1: the HTTP front door under an unsigned flood.

All on 127.0.0.1: the real bot (`python -m bot run`, its own process), the vendor simulators (their own
process), the fake Slack (this process), and the flood (a process of its own, so it does not share this
process's event loop with the measurement).

1. Idle: signed `/jobstatus help` commands, one every GAP s; measured from sending each to its ack (Slack
   gives up after 3 s). The baseline.
2. Flooded: the same, while FLOODERS unsigned senders each post 1 MiB bodies (form-encoded JSON, the costliest
   kind to parse) to /slack/events as fast as the bot answers them. Goal: the ack's p99 under 200 ms.
   Given as ratios to the idle figures, with how many flood requests the bot answered and with what.
3. The replay check's cost: recording one signature in the database (bot/inbound/front.py `Seen.first_use`, on
   the store's thread, SQLite), what each state-changing request pays.

    python -m bench.front            # 100 acks idle and 100 flooded, about a minute
    python -m bench.front --quick    # 20 and 20 (the test suite runs this)

It prints a table and writes `bench/results/front-<timestamp>.json` and `bench/results/front-latest.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import report
from bench.procs import BotProc, SimProc, child_env
from bench.runner import SECRET, bot_config, dist
from bot.inbound.front import MAX_BODY
from bot.offline.slack import FakeSlack, SlackUser

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
GOAL_P99_MS = 200.0  # the goal for the signed ack while flooded
_UNIT = b"%7B%22type%22%3A%22block_actions%22%2C%22a%22%3A1%7D"  # form-encoded JSON
# just under the body limit (aiohttp refuses a body of client_max_size bytes or more): read whole and HMAC'd,
# the most an unsigned request can cost
FLOOD_BODY = (b"payload=" + _UNIT * (MAX_BODY // len(_UNIT))).ljust(MAX_BODY - 1, b"A")[:MAX_BODY - 1]


@dataclass
class FrontParams:
    mode: str
    samples: int = 100  # signed acks per phase
    gap: float = 0.1  # seconds between them
    flooders: int = 12  # unsigned senders (the reproduction)
    ramp: float = 1.0  # seconds of flood before measuring
    replay_checks: int = 2000


QUICK = FrontParams(mode="quick", samples=20, replay_checks=300)


async def acks(user: SlackUser, n: int, gap: float) -> tuple[list[float], list[str]]:
    """n signed `/jobstatus help`, one every `gap` s: each one's seconds to its ack, and the failures."""
    took: list[float] = []
    failed: list[str] = []
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            result = await user.command("help")
        except (aiohttp.ClientError, TimeoutError) as exc:
            failed.append(type(exc).__name__)
        else:
            if result.ok and "/jobstatus" in result.ack_text:
                took.append(time.perf_counter() - t0)
            else:
                failed.append(f"{result.status}: {result.text[:80]}")
        await asyncio.sleep(gap)
    return took, failed


async def flood(url: str, senders: int, seconds: float) -> dict[str, Any]:
    """`senders` loops posting FLOOD_BODY unsigned, for `seconds`: the statuses the bot answered."""
    statuses: Counter[str] = Counter()
    stop = time.monotonic() + seconds
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }

    async def one(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop:
            headers["X-Slack-Request-Timestamp"] = str(int(time.time()))
            try:
                async with session.post(url, data=FLOOD_BODY, headers=headers) as resp:
                    await resp.read()
                    statuses[str(resp.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                statuses[type(exc).__name__] += 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(one(session) for _ in range(senders)))
    return {"requests": sum(statuses.values()), "statuses": dict(statuses), "seconds": seconds}


def replay_check_cost(n: int) -> dict[str, Any]:
    """Seconds per `Seen.first_use` (one INSERT ... ON CONFLICT on the store's thread), SQLite in a temp
    dir."""
    from bot.inbound.front import Seen
    from bot.store import Store

    work = Path(tempfile.mkdtemp(prefix="jobstatus-front-"))
    try:
        db = Store(f"sqlite:///{work / 'seen.db'}")
        db.upgrade()
        seen = Seen(db)

        async def go() -> list[float]:
            took = []
            now = int(time.time())
            for i in range(n):
                headers = {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": f"v0={i:064x}"}
                t0 = time.perf_counter()
                assert await seen.first_use(headers)
                took.append(time.perf_counter() - t0)
            return took

        took = asyncio.run(go())
        db.close()
        return dist(took, 1000.0)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


async def run(p: FrontParams, out: Path) -> int:
    def say(text: str) -> None:
        print(text, flush=True)

    run_ = report.begin(out, "front-", "jobstatus front-door benchmark", p.mode, asdict(p))
    stamp, logdir, result = run_.stamp, run_.logdir, run_.result
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="jobstatus-front-"))
    sim = SimProc(logdir / "sim-front.log")
    fs = FakeSlack()
    bot: BotProc | None = None
    errors: list[str] = []
    try:
        await sim.start()
        await fs.start()
        bot = BotProc(work, "front", slack_token=fs.token, slack_api_url=fs.api_url, secret=SECRET,
                      db_url=f"sqlite:///{work / 'front.db'}", config=bot_config(sim, 30.0))
        await bot.start(expect_scheduled=None)
        user = SlackUser(bot.events_url, SECRET, fs)
        await acks(user, 3, 0.0)  # warm up: Bolt's first auth.test, imports
        say(f"idle: {p.samples} signed /jobstatus help…")
        idle, idle_failed = await acks(user, p.samples, p.gap)
        seconds = p.ramp + p.samples * (p.gap + 0.2) + 5.0
        say(f"flooded: {p.flooders} unsigned senders of 1 MiB bodies, {p.samples} signed /jobstatus help…")
        flooder = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.front", "--flood", bot.events_url, str(p.flooders), str(seconds),
            cwd=str(ROOT), env=child_env(), stdout=subprocess.PIPE)
        await asyncio.sleep(p.ramp)
        flooded, flooded_failed = await acks(user, p.samples, p.gap)
        flood_out, _ = await flooder.communicate()
        flood_figures = json.loads(flood_out.decode() or "{}")
        result["stop"] = await bot.stop()
        result["log"] = log = bot.log_problems()
        result["idle"] = {"ack_ms": dist(idle, 1000.0), "failed": idle_failed}
        result["flooded"] = {
            "ack_ms": dist(flooded, 1000.0),
            "failed": flooded_failed,
            "flood": flood_figures,
        }
        result["ratio_to_idle"] = {k: ratio(result["flooded"]["ack_ms"][k], result["idle"]["ack_ms"][k])
                                   for k in ("p50", "p99", "max")}
        p99 = result["flooded"]["ack_ms"]["p99"]
        result["goal"] = {"p99_ms_under": GOAL_P99_MS, "met": p99 is not None and p99 < GOAL_P99_MS}
        say(f"replay check: {p.replay_checks} signatures recorded…")
        result["replay_check_ms"] = await asyncio.get_running_loop().run_in_executor(
            None, replay_check_cost, p.replay_checks)
        for phase in ("idle", "flooded"):
            if result[phase]["failed"]:
                errors.append(
                    f"{phase}: {len(result[phase]['failed'])} acks failed: {result[phase]['failed'][:3]}"
                )
        if log["errors"] or log["tracebacks"]:
            errors.append(f"bot log: {log['errors']} ERROR lines, {log['tracebacks']} tracebacks; "
                          f"first: {log['first_errors'][:1]}")
        if not flood_figures.get("requests"):
            errors.append("the flood sent nothing")
    finally:
        if bot is not None:
            await bot.stop()
            if bot.log.exists():  # the temp dir goes: its log is kept beside the results
                shutil.copy(bot.log, logdir / bot.log.name)
        await fs.stop()
        await sim.stop()
        shutil.rmtree(work, ignore_errors=True)
    result["errors"] = errors
    result["total_seconds"] = round(time.monotonic() - t0, 1)
    path, _latest = report.write(result, out, stamp, "front-")
    say("")
    say(table(result))
    for e in errors:
        say(f"ERROR: {e}")
    say(f"\nJSON: {path} (and front-latest.json); logs in {logdir}; {result['total_seconds']} s in all")
    return 1 if errors else 0


def table(r: dict[str, Any]) -> str:
    i, f, q = r["idle"]["ack_ms"], r["flooded"]["ack_ms"], r["ratio_to_idle"]
    fl = r["flooded"]["flood"]
    return "\n".join(
        [
            "front door: signed /jobstatus help ack (ms)   p50      p99      max",
            f"  idle                                  {i['p50']:>8} {i['p99']:>8} {i['max']:>8}",
            f"  flooded ({r['params']['flooders']} unsigned 1 MiB senders)    {f['p50']:>8} {f['p99']:>8} "
            f"{f['max']:>8}",
            f"  ratio flooded / idle                  {q['p50']:>8} {q['p99']:>8} {q['max']:>8}",
            f"flood: {fl.get('requests')} requests in {fl.get('seconds', 0):.0f} s, answered "
            f"{fl.get('statuses')}; "
            f"goal p99 < {GOAL_P99_MS:g} ms: {'met' if r['goal']['met'] else 'NOT met'}",
            f"replay check per state-changing request (ms, SQLite): p50 {r['replay_check_ms']['p50']} "
            f"p99 {r['replay_check_ms']['p99']}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.front", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20 acks a phase (the smoke test)")
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where the JSON goes (default bench/results/)"
    )
    ap.add_argument("--flood", nargs=3, metavar=("URL", "SENDERS", "SECONDS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.flood:  # the flood's own process
        url, senders, seconds = args.flood
        print(json.dumps(asyncio.run(flood(url, int(senders), float(seconds)))), flush=True)
        return 0
    return asyncio.run(run(QUICK if args.quick else FrontParams(mode="full"), args.out))


if __name__ == "__main__":
    sys.exit(main())
