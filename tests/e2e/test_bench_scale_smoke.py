"""`python -m bench.scale --quick` runs from a fresh checkout and reports its figures (issue 12).

A smoke test, not a timing test: two real replicas on the session's throwaway PostgreSQL (tests/pg.py), and
the report must hold every figure, nothing lost, no error in a replica's log; never how fast anything was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def cpu_figures(u: dict[str, Any], replicas: int) -> None:
    c = u["cpu_pct"]
    assert len(c["replicas"]) == replicas, c
    for value in (*c["replicas"].values(), c["simulators"], c["bench"]):
        assert isinstance(value, int | float) and value >= 0, c
    assert c["postgresql"] is None  # the cluster is the test session's, not started by the bench
    assert u["polls"] > 0 and u["polls_per_s"] > 0, u
    assert u["machine_capacity_pct"] > 0 and isinstance(u["saturated"], list)
    assert len(u["loadavg"]["start"]) == len(u["loadavg"]["end"]) == 3


def test_quick_scale_benchmark_reports_every_figure(tmp_path: Path, postgres_url: str) -> None:
    out = subprocess.run([sys.executable, "-m", "bench.scale", "--quick", "--database-url", postgres_url,
                          "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "change -> reply p50 / p99 / max" in out.stdout and "ratio 2 / 1" in out.stdout
    stamped = [p for p in tmp_path.glob("scale-*.json") if p.name != "scale-latest.json"]
    assert len(stamped) == 1
    r = json.loads((tmp_path / "scale-latest.json").read_text())
    assert r == json.loads(stamped[0].read_text())
    assert r["mode"] == "quick" and r["errors"] == []
    assert r["setup"]["replicas"] == 2 and r["setup"]["postgresql_started_here"] is False

    s = r["steady"]
    lat = s["latency"]
    assert lat["changes"] == lat["replied"] == lat["n"] > 0 and lat["lost"] == 0, lat
    for key in ("p50", "p99", "max"):
        assert isinstance(lat[key], float) and lat[key] > 0, lat
    assert lat["p50"] <= lat["p99"] <= lat["max"]
    assert isinstance(lat["p99_minus_interval_s"], float)
    cpu_figures(s, 2)
    assert all(log["errors"] == 0 and log["tracebacks"] == 0 for log in s["log"].values()), s["log"]

    b = r["back_to_back"]
    assert b["jobs"] > 0
    cpu_figures(b["replicas_1"], 1)
    cpu_figures(b["replicas_2"], 2)
    assert isinstance(b["ratio"], float) and b["ratio"] > 0
    assert all(log["errors"] == 0 and log["tracebacks"] == 0 for log in b["log"].values()), b["log"]
    assert [t["limit"] for t in r["targets"]] == [2.0, 1.8]
