"""The machine, the table, the targets (recorded, never asserted) and the JSON files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.procs import ROOT


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": model, "logical_cpus": os.cpu_count(), "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "python": sys.version.split()[0],
        "implementation": platform.python_implementation(), "platform": platform.platform(),
    }


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    status = [
        line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line.strip()
    ]
    return {"commit": git("rev-parse", "--short", "HEAD").strip() or None, "dirty": bool(status),
            "dirty_files": status[:30]}


def _get(d: dict[str, Any], path: str) -> Any:
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _fmt(x: Any, nd: int = 1) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return str(x)


Row = tuple[str, Callable[[dict[str, Any]], str]]


def _ms_to_s(x: Any) -> float | None:
    return None if x is None else x / 1000


def _g(path: str, nd: int = 1) -> Callable[[dict[str, Any]], str]:
    return lambda s: _fmt(_get(s, path), nd)


def _trio(path: str, nd: int = 2) -> Callable[[dict[str, Any]], str]:
    return lambda s: " / ".join(_fmt(_get(s, f"{path}.{k}"), nd) for k in ("p50", "p99", "max"))


def _per_backend(path: str, nd: int = 1) -> Callable[[dict[str, Any]], str]:
    short = {"fusion-demo": "F", "vault-demo": "V", "epm-demo": "E", "planning-demo": "P", "immuta-demo": "I"}

    def f(s: dict[str, Any]) -> str:
        v = _get(s, path) or {}
        return " ".join(f"{short.get(b, b)}{_fmt(x, nd)}" for b, x in v.items())

    return f


ROWS: list[Row] = [
    ("watches", lambda s: _fmt(s["watches"])),
    (
        "poll interval (s; Vault)",
        lambda s: f"{_fmt(_get(s, 'setup.interval_s'), 0)} ({_fmt(_get(s, 'setup.vault_interval_s'), 0)})",
    ),
    ("seed time (s)", _g("seed.seconds", 1)),
    ("start-up: /healthz answers (s)", _g("startup.healthz_s", 2)),
    ("start-up: every watch scheduled (s)", _g("startup.all_scheduled_s", 2)),
    ("  counted with", _g("startup.field")),
    (
        "stop on SIGTERM (s): steady / b2b",
        lambda s: f"{_fmt(_get(s, 'steady_stop.stop_s'), 1)} / {_fmt(_get(s, 'b2b_stop.stop_s'), 1)}",
    ),
    ("polls/s sustained", _g("steady.polls_per_s", 1)),
    ("  expected (jobs / interval)", _g("steady.expected_polls_per_s", 1)),
    ("bot CPU, % of one core", _g("steady.bot_cpu_pct", 1)),
    (
        "  no commands / with commands",
        lambda s: (
            f"{_fmt(_get(s, 'steady.halves.no_commands.bot_cpu_pct'))} / "
            f"{_fmt(_get(s, 'steady.halves.with_commands.bot_cpu_pct'))}"
        ),
    ),
    ("bot CPU ms per 1,000 polls", _g("steady.bot_cpu_ms_per_1000_polls", 0)),
    (
        "  no commands / with commands",
        lambda s: (
            f"{_fmt(_get(s, 'steady.halves.no_commands.bot_cpu_ms_per_1000_polls'), 0)}"
            f" / {_fmt(_get(s, 'steady.halves.with_commands.bot_cpu_ms_per_1000_polls'), 0)}"
        ),
    ),
    (
        "bot RSS MB (peak)",
        lambda s: f"{_fmt(_get(s, 'steady.rss_mb'))} ({_fmt(_get(s, 'steady.rss_peak_mb'))})",
    ),
    ("RSS KB per watch (over idle bot)", _g("steady.rss_per_watch_kb", 1)),
    ("change→reply s p50/p99/max", _trio("latency", 2)),
    ("  p99 − interval (s)", _g("latency.p99_minus_interval_s", 2)),
    (
        "  replies / changes (lost)",
        lambda s: (
            f"{_fmt(_get(s, 'latency.replied'))}/{_fmt(_get(s, 'latency.changes'))}"
            f" ({_fmt(_get(s, 'latency.lost'))})"
        ),
    ),
    (
        "ack ms p50/p99 (steady)",
        lambda s: f"{_fmt(_get(s, 'ack_steady.p50'))} / {_fmt(_get(s, 'ack_steady.p99'))}",
    ),
    (
        "ack ms p50/p99 (back-to-back)",
        lambda s: f"{_fmt(_get(s, 'ack_busy.p50'))} / {_fmt(_get(s, 'ack_busy.p99'))}",
    ),
    (
        "/healthz answer s (window start/end)",
        lambda s: " / ".join(_fmt(x, 2) for x in (_get(s, "steady.healthz_latency_s") or [None, None])),
    ),
    (
        "watch cmd answered s p50/p99",
        lambda s: " / ".join(
            _fmt(_ms_to_s(_get(s, f"watch_commands.answered.{k}")), 1) for k in ("p50", "p99")
        ),
    ),
    (
        "watch cmd ack ms p50/p99",
        lambda s: f"{_fmt(_get(s, 'watch_commands.ack.p50'))} / {_fmt(_get(s, 'watch_commands.ack.p99'))}",
    ),
    ("back-to-back bot req/s", _g("back_to_back.bot.requests_per_s", 0)),
    ("back-to-back raw req/s (bot's client)", _g("back_to_back.raw.requests_per_s", 0)),
    ("  ratio bot/raw", _g("back_to_back.ratio", 2)),
    (
        "  raw with httpx's own transport",
        lambda s: (
            f"{_fmt(_get(s, 'back_to_back.raw_httpx_transport.requests_per_s'), 0)}"
            f" (ratio {_fmt(_get(s, 'back_to_back.ratio_vs_httpx_transport'), 2)})"
        ),
    ),
    (
        "  CPU %: bot / raw loop",
        lambda s: (
            f"{_fmt(_get(s, 'back_to_back.bot.cpu_pct'), 0)} / {_fmt(_get(s, 'back_to_back.raw.cpu_pct'), 0)}"
        ),
    ),
    (
        "  simulators CPU %: bot / raw",
        lambda s: (
            f"{_fmt(_get(s, 'back_to_back.bot.sim_cpu_pct'), 0)} / "
            f"{_fmt(_get(s, 'back_to_back.raw.sim_cpu_pct'), 0)}"
        ),
    ),
    (
        "  CPU ms per 1,000 req: bot / raw / httpx",
        lambda s: " / ".join(
            _fmt(_get(s, k), 0)
            for k in (
                "back_to_back.bot.cpu_ms_per_1000_polls",
                "back_to_back.raw.cpu_ms_per_1000_requests",
                "back_to_back.raw_httpx_transport.cpu_ms_per_1000_requests",
            )
        ),
    ),
    ("requests per job-hour", _per_backend("steady.requests_per_job_hour", 1)),
    ("bot log MB per day (INFO)", _g("steady.log_mb_per_day", 0)),
    ("Immuta req/cycle/200 jobs", _g("steady.immuta_requests_per_cycle_per_200_jobs", 2)),
    (
        "simulators / bench CPU % (steady)",
        lambda s: f"{_fmt(_get(s, 'steady.sim_cpu_pct'), 0)} / {_fmt(_get(s, 'steady.bench_cpu_pct'), 0)}",
    ),
    (
        "other load on the machine, % (steady/b2b/raw)",
        lambda s: " / ".join(
            _fmt(_get(s, k), 0)
            for k in (
                "steady.other_load_pct",
                "back_to_back.bot.other_load_pct",
                "back_to_back.raw.other_load_pct",
            )
        ),
    ),
    ("errors", lambda s: _fmt(len(s.get("errors", [])))),
]


def table(result: dict[str, Any]) -> str:
    sizes = result["sizes"]
    cols = [[label for label, _ in ROWS]] + [[f(s) for _, f in ROWS] for s in sizes]
    widths = [max(len(c) for c in col) for col in cols]
    lines = []
    for i in range(len(ROWS)):
        cells = [cols[0][i].ljust(widths[0])] + [cols[j][i].rjust(widths[j]) for j in range(1, len(cols))]
        lines.append("  ".join(cells))
        if i == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets with this run's values: recorded, never asserted."""
    out: list[dict[str, Any]] = []
    by_size = {s["watches"]: s for s in result["sizes"]}

    def add(size: int, what: str, value: Any, limit: Any, met: bool | None, note: str = "") -> None:
        out.append(
            {"watches": size, "target": what, "value": value, "limit": limit, "met": met, "note": note}
        )

    for n, s in by_size.items():
        interval = _get(s, "setup.interval_s")
        stated = "" if (n == 10_000 and interval == 30) else "stated for 10,000 watches at 30 s"
        cpu = _get(s, "steady.halves.no_commands.bot_cpu_pct")
        add(n, "bot CPU ≤ 15% of one core (window half without slash commands)", cpu, 15,
            None if cpu is None else cpu <= 15, stated)
        rss = _get(s, "steady.rss_peak_mb")
        add(n, "RSS ≤ 200 MB", rss, 200, None if rss is None else rss <= 200, stated)
        over = _get(s, "latency.p99_minus_interval_s")
        add(n, "p99 change→reply ≤ interval + 2 s (value: p99 of latency − the job's interval)", over, 2.0,
            None if over is None else over <= 2.0, stated)
        for key, label in (("ack_steady", "steady"), ("ack_busy", "back-to-back")):
            a = _get(s, f"{key}.p99")
            add(n, f"ack p99 ≤ 200 ms ({label})", a, 200, None if a is None else a <= 200, stated)
        ratio = _get(s, "back_to_back.ratio")
        add(n, "back-to-back ≥ 70% of the raw ceiling", ratio, 0.7, None if ratio is None else ratio >= 0.7)
        imm = _get(s, "steady.immuta_requests_per_cycle_per_200_jobs")
        add(n, "Immuta ≤ 1 request per cycle per 200 jobs", imm, 1.0, None if imm is None else imm <= 1.0)
        lost = _get(s, "latency.lost")
        add(n, "everything still works (no lost reply, no error)", len(s.get("errors", [])), 0,
            not s.get("errors") and lost == 0)
        if n >= 50_000:
            st = _get(s, "startup.all_scheduled_s")
            add(
                n, "start-up ≤ 10 s", st, 10, None if st is None else st <= 10, _get(s, "startup.field") or ""
            )
            ref = by_size.get(10_000)
            if ref is not None:
                for path, what in (("steady.rss_per_watch_kb", "per-watch memory no worse than at 10,000"),
                                   ("steady.halves.no_commands.bot_cpu_ms_per_1000_polls",
                                    "per-poll CPU no worse than at 10,000")):
                    a, b = _get(s, path), _get(ref, path)
                    add(n, what, a, b, None if a is None or b is None else a <= b * 1.05,
                        "within 5% counts as no worse")
    return out


def targets_text(rows: list[dict[str, Any]]) -> str:
    lines = ["Targets (recorded, not asserted):"]
    for t in rows:
        mark = {True: "met   ", False: "MISSED", None: "n/a   "}[t["met"]]
        note = f"  ({t['note']})" if t["note"] else ""
        lines.append(
            f"  {mark} {t['watches']:>7,}  {t['target']}: {_fmt(t['value'], 2)} vs "
            f"{_fmt(t['limit'], 2)}{note}"
        )
    return "\n".join(lines)


@dataclass
class Run:
    """One benchmark run's header: its stamp, its logs directory and the JSON's opening fields."""

    stamp: str
    logdir: Path
    result: dict[str, Any]


def begin(out: Path, prefix: str, title: str, mode: str, params: dict[str, Any], detail: str = "") -> Run:
    """Start a run of a benchmark mode: the logs directory `<out>/<prefix><stamp>-logs`, the result's header
    (schema, mode, start, machine, git state, params) and the first line printed."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    logdir = out / f"{prefix}{stamp}-logs"
    logdir.mkdir(parents=True, exist_ok=True)
    m = machine()
    result: dict[str, Any] = {
        "schema": 1,
        "mode": mode,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": m,
        "git": git_state(),
        "params": params,
        "logs": str(logdir),
    }
    print(f"{title} ({mode}): {m['cpu_model']}, {m['logical_cpus']} CPUs, {m['memory_gb']} GB, "
          f"Python {m['python']}{'; ' + detail if detail else ''}", flush=True)
    return Run(stamp, logdir, result)


def write(result: dict[str, Any], out: Path, stamp: str, prefix: str = "") -> tuple[Path, Path]:
    """`<out>/<prefix><stamp>.json` and `<out>/<prefix>latest.json`, the same text."""
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str)
    path = out / f"{prefix}{stamp}.json"
    path.write_text(text)
    latest = out / f"{prefix}latest.json"
    latest.write_text(text)
    return path, latest
