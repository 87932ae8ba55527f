"""`python -m bench` — the poll engine's benchmark at 1,000 / 10,000 / 50,000 watches (see bench/__init__.py).

    python -m bench                     # full: 1,000, 10,000 and 50,000 watches, 30 s interval
    python -m bench --quick             # one small size in well under a minute (the test suite runs this)
    python -m bench --sizes 1000,10000 --window 90
    python -m bench --soak              # history over 72 simulated hours, pruning on against off
                                        # (bench/soak.py)
    python -m bench --soak --quick      # 6 simulated hours, in seconds (the test suite runs this)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from bench import report, soak
from bench.runner import Params, run_baseline, run_size
from bot.support.config import parse_duration

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def params(args: argparse.Namespace) -> Params:
    if args.quick:
        p = Params(
            mode="quick",
            sizes=[300],
            interval=2.0,
            window=5.0,
            warmup=2.0,
            b2b_window=2.0,
            b2b_warmup=0.5,
            changes=15,
            acks=15,
            b2b_acks=6,
            samples=5,
            baseline_window=1.0,
        )
    else:
        p = Params(mode="full", sizes=[1000, 10_000, 50_000], interval=30.0, window=60.0, warmup=30.0,
                   b2b_window=20.0, b2b_warmup=3.0, changes=100, acks=100, b2b_acks=40, samples=50,
                   baseline_window=5.0)
    if args.sizes:
        p.sizes = [int(x.replace("_", "")) for x in args.sizes.split(",") if x.strip()]
    for name in ("interval", "window", "warmup", "b2b_window"):
        value = getattr(args, name)
        if value is not None:
            setattr(p, name, float(value))
    if args.warmup is None and not args.quick:
        p.warmup = p.interval  # one interval: every job polled once since the start
    p.keep = args.keep
    p.profile = args.profile
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one small size with short windows (the smoke test)")
    ap.add_argument("--sizes", help="comma-separated watch counts (default 1000,10000,50000; quick: 300)")
    ap.add_argument(
        "--window", type=float, help="seconds of the steady measurement window per size (default 60)"
    )
    ap.add_argument(
        "--warmup",
        type=float,
        help="seconds between start-up and the steady window (default: 30, "
        "one interval, so every job has been polled once)",
    )
    ap.add_argument("--interval", type=float, help="poll interval in seconds (default 30; Vault at least 10)")
    ap.add_argument("--b2b-window", type=float, help="seconds of each back-to-back measurement (default 20)")
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where the JSON goes (default bench/results/)"
    )
    ap.add_argument("--keep", action="store_true", help="keep each size's work directory (database, configs)")
    ap.add_argument("--profile", action="store_true",
                    help="sample the bot with py-spy during the measured windows (pip install py-spy); "
                         "the summary goes into the JSON, the stacks into the logs directory")
    ap.add_argument(
        "--soak",
        action="store_true",
        help="instead: rows and database size after hours of simulated churn, pruning on against off",
    )
    ap.add_argument("--hours", type=float, help="--soak: simulated hours (default 72; quick: 6)")
    ap.add_argument(
        "--rate", type=float, help="--soak: new jobs watched per simulated hour (default 600; quick: 60)"
    )
    ap.add_argument("--retention", help="--soak: history_retention with pruning on (default 24h; quick: 2h)")
    args = ap.parse_args(argv)
    if args.soak:
        return soak.main(soak_params(args), args.out)
    p = params(args)
    return asyncio.run(run(p, args.out))


def soak_params(args: argparse.Namespace) -> soak.SoakParams:
    p = soak.SoakParams(hours=6, watches_per_hour=60, retention=2 * 3600.0, sample_every_h=1) if args.quick \
        else soak.SoakParams()
    if args.hours is not None:
        p.hours = args.hours
    if args.rate is not None:
        p.watches_per_hour = args.rate
    if args.retention is not None:
        p.retention = parse_duration(args.retention)
    return p


async def run(p: Params, out: Path) -> int:
    def say(text: str) -> None:
        print(text, flush=True)

    run_ = report.begin(
        out,
        "",
        "jobstatus benchmark",
        p.mode,
        dict(vars(p)),
        f"sizes {', '.join(f'{n:,}' for n in p.sizes)}; interval {p.interval:g} s, window {p.window:g} s",
    )
    stamp, logdir, result = run_.stamp, run_.logdir, run_.result
    m = result["machine"]
    result["sizes"] = []
    t0 = time.monotonic()
    say("idle baseline (no watches)…")
    try:
        result["baseline"] = await run_baseline(p, logdir)
    except Exception as exc:
        result["baseline"] = {"error": f"{type(exc).__name__}: {exc}"}
    say(f"  {result['baseline']}")
    for n in p.sizes:
        say(f"{n:,} watches…")
        t = time.monotonic()
        git = report.git_state()  # the code under test may change between sizes (a working tree in use)
        r = await run_size(n, p, result["baseline"], logdir, say)
        entry = {"watches": n, **r.data, "errors": r.errors, "notes": r.notes, "git": git,
                 "seconds": round(time.monotonic() - t, 1)}
        result["sizes"].append(entry)
        for e in r.errors:
            say(f"  ERROR: {e}")
    result["total_seconds"] = round(time.monotonic() - t0, 1)
    result["targets"] = report.targets(result)
    path, latest = report.write(result, out, stamp)
    say("")
    say(f"Machine: {m['cpu_model']} — {m['logical_cpus']} logical CPUs ({m['physical_cores']} cores), "
        f"{m['memory_gb']} GB, Python {m['python']} ({m['platform']})")
    b = result["baseline"]
    say(
        f"Idle bot (no watches): start-up {b.get('startup_s')} s, RSS {b.get('rss_mb')} MB, CPU "
        f"{b.get('cpu_pct')}%"
    )
    say("")
    say(report.table(result))
    say("")
    say(report.targets_text(result["targets"]))
    notes = sorted({note for s in result["sizes"] for note in s["notes"] if "\n" not in note})
    for note in notes:
        say(f"Note: {note}")
    say(f"\nJSON: {path} (and {latest}); logs in {logdir}; {result['total_seconds']} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
