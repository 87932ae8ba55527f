"""`python -m bench.drip --quick` runs from a fresh checkout and reports its figures (issue 20, item 5).

A smoke test, not a timing test: it checks that each figure is there, that the drip phase did drip, that the
watch of a dripping job was answered as slow, and that the ratios were computed; never how fast anything was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_drip_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "bench.drip", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "healthy jobs' poll interval, mean (s)" in out.stdout
    stamped = [p for p in tmp_path.glob("drip-*.json") if p.name != "drip-latest.json"]
    assert len(stamped) == 1
    r = json.loads((tmp_path / "drip-latest.json").read_text())
    assert r == json.loads(stamped[0].read_text())
    assert r["mode"] == "quick" and r["errors"] == []

    d = r["drip"]
    for phase in ("drip_off", "drip_on"):
        p = d[phase]
        assert p["healthy_polls"] > d["setup"]["healthy_jobs"], p  # each healthy job polled more than once
        for figure in ("healthy_interval_s", "user_status_answer_s"):
            assert 0 < p[figure]["mean"] <= p[figure]["max"], (figure, p)
    assert d["drip_off"]["dripped_answers"] == 0 and d["drip_off"]["watch_of_a_dripping_job"] is None
    assert d["drip_on"]["dripped_answers"] >= 1
    assert d["drip_on"]["watch_of_a_dripping_job"]["says_slow"] is True
    assert all(isinstance(x, float) and x > 0 for x in d["ratio_on_to_off"].values()), d["ratio_on_to_off"]
