"""`python -m bench.burst --quick` runs from a fresh checkout and reports its figures (issue 12).

A smoke test, not a timing test: it checks that each figure is there, that nothing was lost or failed,
and that the ratios were computed; never how fast anything was.
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


def test_quick_burst_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "bench.burst", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "burst: change -> reply (s)" in out.stdout and "watch answered, saturated (ms)" in out.stdout
    stamped = [p for p in tmp_path.glob("burst-*.json") if p.name != "burst-latest.json"]
    assert len(stamped) == 1
    r = json.loads((tmp_path / "burst-latest.json").read_text())
    assert r == json.loads(stamped[0].read_text())
    assert r["mode"] == "quick" and r["errors"] == []

    b = r["burst"]
    n = b["setup"]["watches"]
    assert b["burst"]["changes"] == b["burst"]["replied"] == n and b["burst"]["lost"] == 0
    figures(b["burst"], n)
    figures(b["last_reply_in_thread"], n)
    # a thread's last reply is not before its first
    assert b["last_reply_in_thread"]["p50"] >= b["burst"]["p50"]
    figures(b["baseline"], b["setup"]["baseline_changes"])
    assert all(isinstance(x, float) and x > 0 for x in b["ratio_to_baseline"].values()), b[
        "ratio_to_baseline"
    ]
    pb = b["pace_bound"]
    assert pb["replies"] == n and 0 <= pb["within"] <= n and isinstance(pb["worst_excess_s"], float)
    assert b["slack_calls"].get("chat.postMessage", 0) >= n  # one thread reply per watch at least
    assert b["log"]["errors"] == 0 and b["log"]["tracebacks"] == 0, b["log"]

    s = r["saturated"]
    for phase in ("idle", "saturated"):
        assert s[phase]["failed"] == 0, s[phase]["first_failures"]
        figures(s[phase]["answered"], s["setup"]["requests"])
        assert s[phase]["log"]["errors"] == 0 and s[phase]["log"]["tracebacks"] == 0, s[phase]["log"]
    # the saturated poller polled: more polls a second than the watch requests' own checks of the idle phase
    assert s["saturated"]["polls_per_s"] > s["idle"]["polls_per_s"]
    assert all(isinstance(x, float) and x > 0 for x in s["ratio_to_idle"].values()), s["ratio_to_idle"]
