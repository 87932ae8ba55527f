"""The processes a benchmark run starts: the simulators' helper, the real bot (replicas too), the raw client
loop, and a throwaway PostgreSQL for replicas.

Every wait here has a deadline, every process is ended by its own pid, and all traffic is on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import yaml

from bot.offline.postgres import PostgresCluster

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("SLACK_APP_TOKEN", None)
    return env


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children so far (a PostgreSQL server: the postmaster and its backends;
    a backend that ended meanwhile is not counted)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += cpu_seconds(proc)
    return total


@contextlib.asynccontextmanager
async def database(url: str | None, logdir: Path) -> AsyncIterator[tuple[str, PostgresCluster | None]]:
    """The database to fill: `url` as given, or a new one in a throwaway cluster started (and removed)
    here."""
    if url:
        yield url, None
        return
    cluster = PostgresCluster()
    try:
        await asyncio.get_running_loop().run_in_executor(None, cluster.start)
        yield cluster.url(cluster.create_database()), cluster
    finally:
        with contextlib.suppress(OSError):
            shutil.copy(cluster.log, logdir / "postgresql.log")
        cluster.stop()


class SimProc:
    """`python -m bench.simproc`: the five vendor simulators and their control API."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.sim_port = 0
        self.control = ""
        self.session: aiohttp.ClientSession | None = None
        self.ps: psutil.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.simproc", cwd=str(ROOT), env=child_env(),
                stdout=asyncio.subprocess.PIPE, stderr=err)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError(f"the simulator process exited: see {self.log}")
        ports = json.loads(line)
        self.sim_port = int(ports["sim_port"])
        self.control = f"http://127.0.0.1:{ports['control_port']}"
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        self.ps = psutil.Process(self.proc.pid)

    def base_url(self, type_name: str) -> str:
        from bot.offline.vendors.server import PREFIXES

        return f"http://127.0.0.1:{self.sim_port}{PREFIXES[type_name]}"

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        assert self.session is not None
        async with self.session.post(self.control + path, json=body or {}) as r:
            r.raise_for_status()
            return await r.json()

    async def get(self, path: str) -> Any:
        assert self.session is not None
        async with self.session.get(self.control + path) as r:
            r.raise_for_status()
            return await r.json()

    async def counts(self) -> dict[str, Any]:
        return dict(await self.get("/counts"))

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class BotProc:
    """The real bot, `python -m bot run`, against the fake Slack and the simulators, as the tests run it."""

    def __init__(self, workdir: Path, name: str, *, slack_token: str, slack_api_url: str, secret: str,
                 db_url: str, config: dict[str, Any]) -> None:
        self.name = name
        self.log = workdir / f"bot-{name}.log"
        self.config_path = workdir / f"jobstatus-{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.metrics_port = free_port()  # METRICS_ADDR: /healthz's details (`scheduled`) are served there
        self.env = child_env()
        self.env.update({
            "SLACK_BOT_TOKEN": slack_token, "SLACK_SIGNING_SECRET": secret, "SLACK_API_URL": slack_api_url,
            "JOBSTATUS_CONFIG": str(self.config_path), "DATABASE_URL": db_url, "PORT": str(self.port),
            "METRICS_ADDR": f"127.0.0.1:{self.metrics_port}",
        })
        self.proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self.session: aiohttp.ClientSession | None = None
        self.started_at = 0.0

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    async def start(self, expect_scheduled: int | None, limit_s: float = 180.0) -> dict[str, Any]:
        """Start it and time it: until /healthz answers, and until it reports `expect_scheduled` jobs in
        its schedule (`scheduled`; bots without that field: `jobs_polling`, the database count)."""
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        with self.log.open("ab") as out:
            t0 = time.monotonic()
            self.started_at = time.time()
            self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=self.env, cwd=str(ROOT),
                                         stdout=out, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.proc.pid)
        deadline = t0 + limit_s
        healthz_s: float | None = None
        field = None
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bot {self.name} exited with {self.proc.returncode}; see {self.log}")
            try:
                last = await self.healthz()
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.05)
                continue
            if healthz_s is None:
                healthz_s = time.monotonic() - t0
            if expect_scheduled is None:
                break
            field = "scheduled" if "scheduled" in last else "jobs_polling"
            if int(last.get(field, 0)) >= expect_scheduled:
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"bot {self.name} did not come up in {limit_s:.0f} s (last /healthz: {last}); "
                               f"see {self.log}")
        return {"healthz_s": healthz_s, "all_scheduled_s": time.monotonic() - t0, "field": field,
                "expected": expect_scheduled, "healthz": last}

    async def healthz(self) -> dict[str, Any]:
        """The detailed /healthz: on METRICS_ADDR's listener; a bot older than it serves the details on its
        one port (and ignores METRICS_ADDR), so that is asked when the listener does not answer."""
        assert self.session is not None
        try:
            return await self._healthz(self.metrics_port)
        except aiohttp.ClientConnectionError:
            return await self._healthz(self.port)

    async def _healthz(self, port: int) -> dict[str, Any]:
        assert self.session is not None
        async with self.session.get(f"http://127.0.0.1:{port}/healthz") as r:
            if r.status != 200:
                raise aiohttp.ClientError(f"healthz {r.status}")
            return dict(await r.json())

    async def healthz_timed(self) -> tuple[dict[str, Any] | None, float]:
        """(/healthz answer or None when it failed, seconds it took): a busy bot may answer slowly."""
        t0 = time.monotonic()
        try:
            return await self.healthz(), time.monotonic() - t0
        except (aiohttp.ClientError, TimeoutError):
            return None, time.monotonic() - t0

    def cpu(self) -> float:
        assert self.ps is not None
        return cpu_seconds(self.ps)

    def rss(self) -> int:
        assert self.ps is not None
        return int(self.ps.memory_info().rss)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def stop(self, limit_s: float = 30.0) -> dict[str, Any]:
        """SIGTERM and time the clean stop (SIGKILL after `limit_s`)."""
        out: dict[str, Any] = {"stop_s": None, "exit_code": None}
        if self.proc is not None and self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            for _ in range(int(limit_s / 0.05)):
                if self.proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
                out["killed"] = True
            out["stop_s"] = time.monotonic() - t0
            out["exit_code"] = self.proc.returncode
        if self.session is not None:
            await self.session.close()
            self.session = None
        return out

    def log_problems(self, limit: int = 10) -> dict[str, Any]:
        """ERROR lines, tracebacks and WARNING lines in the bot's log (first few of each)."""
        errors: list[str] = []
        warnings: list[str] = []
        n_err = n_warn = n_tb = 0
        with contextlib.suppress(FileNotFoundError), self.log.open(errors="replace") as f:
            for line in f:
                if "Traceback (most recent call last)" in line:
                    n_tb += 1
                if " ERROR " in line or " CRITICAL " in line:
                    n_err += 1
                    if len(errors) < limit:
                        errors.append(line.strip()[:300])
                elif " WARNING " in line:
                    n_warn += 1
                    if len(warnings) < limit:
                        warnings.append(line.strip()[:300])
        return {"errors": n_err, "tracebacks": n_tb, "warnings": n_warn, "first_errors": errors,
                "first_warnings": warnings}


async def settle(bots: list[BotProc], total: Callable[[], int], limit_s: float = 180.0) -> float:
    """Until replicas on one PostgreSQL have split the polled jobs evenly (each schedules its fair share,
    ceil(jobs / replicas), or one less, as /healthz `scheduled` says); the seconds it took. `total()` counts
    the polled jobs now (a job that ends meanwhile leaves the count); it runs in a thread."""
    t0 = time.monotonic()
    counts: list[int] = []
    jobs = -1
    while time.monotonic() - t0 < limit_s:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            counts = [int((await b.healthz())["scheduled"]) for b in bots]
            jobs = await asyncio.get_running_loop().run_in_executor(None, total)
            share = -(-jobs // len(bots))
            if sum(counts) == jobs and all(share - 1 <= c <= share for c in counts):
                return time.monotonic() - t0
        await asyncio.sleep(0.5)
    raise RuntimeError(
        f"{len(bots)} replicas did not split {jobs} jobs in {limit_s:.0f} s (scheduled: {counts})"
    )


async def run_raw(spec: dict[str, Any], on_phase: Any, log: Path, limit_s: float) -> dict[str, Any]:
    """Run `python -m bench.raw` with `spec`; `await on_phase(message)` at "measuring" (the raw loop waits for
    it to return before its measured span starts) and at "done"."""
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.raw", cwd=str(ROOT), env=child_env(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(spec).encode() + b"\n")
    result: dict[str, Any] = {}
    try:
        async with asyncio.timeout(limit_s):
            while True:
                line = await proc.stdout.readline()
                if not line:
                    break
                msg = json.loads(line)
                await on_phase(msg)
                if msg["phase"] == "measuring":  # counters read: the measured span starts now
                    proc.stdin.write(b"go\n")
                    await proc.stdin.drain()
                    proc.stdin.close()
                if msg["phase"] == "done":
                    result = msg
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if not result:
        raise RuntimeError(f"the raw client loop ended without a result (exit {proc.returncode}); see {log}")
    return result
