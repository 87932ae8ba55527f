"""`python -m bench.front --quick` runs from a fresh checkout and reports its figures (issue 20, item 1).

A smoke test, not a timing test: it checks that each figure is there, that the flood was answered 401 (read,
one HMAC, refused) and that nothing failed; never how fast anything was (the goal is the benchmark's to
report).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def figures(d: dict[str, Any], n: int) -> None:
    assert d["n"] == n > 0, d
    for key in ("p50", "p99", "max"):
        assert isinstance(d[key], int | float) and d[key] > 0, (key, d)
    assert d["p50"] <= d["p99"] <= d["max"], d


def test_quick_front_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "bench.front", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (
        "front door: signed /jobstatus help ack (ms)" in out.stdout and "ratio flooded / idle" in out.stdout
    )
    r = json.loads((tmp_path / "front-latest.json").read_text())
    assert r["mode"] == "quick" and r["errors"] == []
    n = r["params"]["samples"]
    figures(r["idle"]["ack_ms"], n)
    figures(r["flooded"]["ack_ms"], n)
    assert r["idle"]["failed"] == r["flooded"]["failed"] == []
    flood = r["flooded"]["flood"]
    assert flood["requests"] > 0 and set(flood["statuses"]) == {"401"}, flood  # every forged body refused
    assert all(isinstance(x, float) and x > 0 for x in r["ratio_to_idle"].values()), r["ratio_to_idle"]
    assert isinstance(r["goal"]["met"], bool)
    figures(r["replay_check_ms"], r["params"]["replay_checks"])
    assert r["log"]["errors"] == 0 and r["log"]["tracebacks"] == 0, r["log"]
