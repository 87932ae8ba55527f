"""The benchmark runs from a fresh checkout and reports every figure: `python -m bench --quick`.

A smoke test, not a timing test: it checks that each figure is there and sane (numbers, counts above
zero, nothing lost, no errors), never how fast anything was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.offline.slack import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("fusion-demo", "vault-demo", "epm-demo", "planning-demo", "immuta-demo")


def positive(d: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = d.get(key)
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value, d)
        assert value > 0, (key, value)


def test_quick_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "polls/s sustained" in out.stdout and "Targets (recorded, not asserted)" in out.stdout
    latest = tmp_path / "latest.json"
    stamped = [p for p in tmp_path.glob("*.json") if p.name != "latest.json"]
    assert latest.exists() and len(stamped) == 1
    r = json.loads(latest.read_text())
    assert r == json.loads(stamped[0].read_text())

    assert r["mode"] == "quick" and r["machine"]["cpu_model"] and r["machine"]["logical_cpus"] >= 1
    assert r["machine"]["python"].startswith("3.")
    positive(r["baseline"], "startup_s", "rss_mb")
    [s] = r["sizes"]
    assert s["errors"] == [], s["errors"]
    assert s["watches"] > 0

    positive(s["seed"], "seconds", "watches")
    positive(s["startup"], "healthz_s", "all_scheduled_s")
    assert s["startup"]["field"] in ("scheduled", "jobs_polling")
    assert s["watch_commands"]["parents_posted"] == s["watch_commands"]["sent"] > 0

    st = s["steady"]
    positive(st, "window_s", "polls", "polls_per_s", "expected_polls_per_s", "bot_cpu_s", "bot_cpu_pct",
             "bot_cpu_ms_per_1000_polls", "rss_mb", "rss_peak_mb", "immuta_requests_per_cycle_per_200_jobs")
    assert isinstance(st["rss_per_watch_kb"], int | float)
    for half in st["halves"].values():
        positive(half, "window_s", "polls_per_s", "bot_cpu_pct", "bot_cpu_ms_per_1000_polls")
    for b in BACKENDS:
        assert st["requests"][b]["status"] > 0, b
        positive(st["requests_per_job_hour"], b)

    lat = s["latency"]
    assert lat["changes"] > 0 and lat["replied"] == lat["changes"] and lat["lost"] == 0
    positive(lat, "p50", "p99", "max", "interval_s")
    assert lat["p50"] <= lat["p99"] <= lat["max"]
    assert isinstance(lat["p99_minus_interval_s"], int | float)

    for key in ("ack_steady", "ack_busy"):
        ack = s[key]
        assert ack["failed"] == 0 and ack["n"] > 0, ack
        positive(ack, "p50", "p99", "max")

    b2b = s["back_to_back"]
    positive(b2b["bot"], "requests_per_s", "cpu_pct", "cpu_ms_per_1000_polls")
    for raw in (b2b["raw"], b2b["raw_httpx_transport"]):
        positive(raw, "requests_per_s", "cpu_pct", "cpu_ms_per_1000_requests")
        assert raw["errors"] == 0
    positive(b2b, "ratio", "ratio_vs_httpx_transport")
    for b in b2b["backends"]:
        positive(b2b["ratio_by_backend"], b)
    for name in ("steady_log", "b2b_log"):
        assert s[name]["errors"] == 0 and s[name]["tracebacks"] == 0, s[name]

    assert r["targets"] and all(t["met"] in (True, False, None) for t in r["targets"])


async def test_a_seeded_message_is_the_bots_to_edit_and_reply_to() -> None:
    async with FakeSlack() as fs:
        ts = fs.seed_message("C0001", "pre-existing parent")
        assert fs.calls == [] and [m.ts for m in fs.messages("C0001")] == [ts]
        client = AsyncWebClient(token=fs.token, base_url=fs.api_url)
        await client.chat_update(channel="C0001", ts=ts, text="edited")
        await client.chat_postMessage(channel="C0001", thread_ts=ts, text="a reply")
        assert fs.message("C0001", ts).text == "edited"
        assert [r.text for r in fs.thread("C0001", ts)] == ["a reply"]


def test_quick_soak_reports_rows_and_size_with_pruning_on_and_off(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--soak", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "pruning on   pruning off   on/off" in out.stdout
    r = json.loads((tmp_path / "soak-latest.json").read_text())
    on, off = r["pruning_on"], r["pruning_off"]
    assert r["mode"] == "soak" and on["jobs"] == off["jobs"] > 0  # the same churn twice
    assert [s["hour"] for s in on["samples"]] == [s["hour"] for s in off["samples"]] == [1, 2, 3, 4, 5, 6]
    # with a 2 h retention the pruned database stops growing; the other keeps every row
    a, b = on["samples"], off["samples"]
    assert a[1] == b[1]  # nothing is 2 h old before hour 2
    assert a[-1]["total_rows"] < b[-1]["total_rows"] and a[-1]["file_bytes"] < b[-1]["file_bytes"]
    assert b[-1]["rows"]["jobs"] == off["jobs"] and a[-1]["rows"]["jobs"] < on["jobs"]
    assert 0 < r["ratios"]["total_rows"] < 1 and 0 < r["ratios"]["file_bytes"] < 1
