"""The vendor simulators in their own process, with a small control API: `python -m bench.simproc`.

The simulators take real CPU at 10,000+ watches; in their own process they neither slow the bench's
fake Slack (whose clock times the replies) nor get counted as the bot's. It prints one JSON line,
`{"sim_port": ..., "control_port": ...}`, then serves on 127.0.0.1 until SIGTERM/SIGINT.

The simulators are the ones in `bot/offline/vendors/`, mounted as `SimulatorServer` mounts them, with
these changes for long runs: requests are counted per route instead of logged (a full log of 50,000
watches' polls would grow without bound), the vendors' own middlewares are left out (EPM's maintenance
switch, never on here, and Vault's usage log, another list that grows with every request), and Vault's
burst window is kept in a deque with a limit no run reaches (the real 2,000 calls per 5 minutes would
only measure Vault's throttle; the list the simulator keeps for it costs O(calls in the window) per
request).

Control API (JSON):
- `POST /jobs {"backend", "start", "count"}`: add jobs start..start+count-1 in their running state.
- `POST /change {"backend", "index"}`: move that job to its done state now; answers `{"at": epoch}`.
- `POST /change/many {"jobs": [[backend, index], ...]}`: move them all at one moment (no await between
  them, so no poll sees some changed and others not); answers `{"at": epoch}`.
- `GET /counts`: per vendor `{"routes": {"GET /prefix/route": n}, "status": n, "polls": n, "total": n}`,
  and this process's `cpu_s` and `rss`.
- `GET /samples`: the first request seen per route (method, path, headers, body), for the raw client.
- `POST /samples/clear`: forget them.
"""

from __future__ import annotations

import asyncio
import collections
import json
import signal
import sys
import time
from typing import Any

import psutil
from aiohttp import web

from bench.jobs import BY_BACKEND, JOB_NAME, VENDORS, job_id
from bot.offline.loopback import serve
from bot.offline.setup import configure_simulators
from bot.offline.vendors.core import SimJob, Step, VendorSim
from bot.offline.vendors.immuta import ImmutaSim
from bot.offline.vendors.server import SimulatorServer
from bot.offline.vendors.vault import BURST_WINDOW, VaultSim

_SKIP_HEADERS = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}


class BenchVaultSim(VaultSim):
    """Vault with its burst window in a deque and a limit no run reaches (headers as Vault sends them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.burst_limit = 1_000_000_000
        self._window: collections.deque[float] = collections.deque()

    async def reply(self, payload: Any, *, counted: bool = True) -> web.Response:
        if not counted:
            return web.json_response(payload)
        now = self.clock()
        self._window.append(now)
        while self._window and now - self._window[0] >= BURST_WINDOW:
            self._window.popleft()
        remaining = max(0, self.burst_limit - len(self._window))
        headers = {
            "X-VaultAPI-BurstLimit": str(self.burst_limit),
            "X-VaultAPI-BurstLimitRemaining": str(remaining),
        }
        return web.json_response(payload, headers=headers)


class BenchImmutaSim(ImmutaSim):
    """Immuta counting the job statuses it renders (one batch request answers for many jobs)."""

    rendered = 0

    def render(self, job: SimJob, step: Step) -> dict[str, Any]:
        self.rendered += 1
        return super().render(job, step)


class Sims(SimulatorServer):
    """The five simulators as SimulatorServer serves them, each mounted with a request counter for a log."""

    vault: BenchVaultSim
    immuta: BenchImmutaSim

    def __init__(self) -> None:
        super().__init__()
        self.vault = BenchVaultSim(time.time)
        self.immuta = BenchImmutaSim(time.time)
        self.counts: dict[str, collections.Counter[str]] = {t: collections.Counter() for t in self.by_type}
        self.samples: dict[str, dict[str, Any]] = {}

    def mount(self, type_name: str, sim: VendorSim) -> web.Application:
        app = web.Application(middlewares=[self._counter(type_name)])
        app.add_routes(sim.routes())
        return app

    def _counter(self, type_name: str) -> Any:
        counts = self.counts[type_name]

        @web.middleware
        async def count(request: web.Request, handler: Any) -> web.StreamResponse:
            route = request.match_info.route.resource
            key = f"{request.method} {route.canonical if route is not None else 'unmatched'}"
            counts[key] += 1
            if key not in self.samples:
                body = await request.read()
                self.samples[key] = {
                    "type": type_name, "method": request.method, "path": request.path,
                    "query": request.query_string, "match": dict(request.match_info),
                    "headers": {k: v for k, v in request.headers.items() if k.lower() not in _SKIP_HEADERS},
                    "body": body.decode("utf-8", "replace"),
                }
            return await handler(request)

        return count

    # -- control -------------------------------------------------------------------------------------
    def add_jobs(self, backend: str, start: int, count: int) -> None:
        v = BY_BACKEND[backend]
        sim: VendorSim = getattr(self, v.sim)
        for i in range(start, start + count):
            sim.add_job(job_id(backend, i), name=JOB_NAME, steps=[Step(0.0, v.running)])

    def change(self, backend: str, index: int) -> float:
        v = BY_BACKEND[backend]
        sim: VendorSim = getattr(self, v.sim)
        at = time.time()
        sim.set_state(job_id(backend, index), v.done)
        return at

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for v in VENDORS:
            routes = dict(self.counts[v.type_name])
            status = sum(n for k, n in routes.items() if _is_status(k))
            polls = self.immuta.rendered if not v.per_job else status
            out[v.backend] = {
                "routes": routes,
                "status": status,
                "polls": polls,
                "total": sum(routes.values()),
            }
        return out


def _is_status(route_key: str) -> bool:
    method, _, route = route_key.partition(" ")
    return (method == "GET" and route.endswith("/{job_id}")) or (
        method == "POST" and route.endswith("/jobs/statuses")
    )


async def main() -> int:
    sims = Sims()
    configure_simulators(sims)
    await sims.start()
    me = psutil.Process()

    async def jobs(request: web.Request) -> web.Response:
        body = await request.json()
        sims.add_jobs(body["backend"], int(body["start"]), int(body["count"]))
        return web.json_response({"ok": True})

    async def change(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"at": sims.change(body["backend"], int(body["index"]))})

    async def change_many(request: web.Request) -> web.Response:
        body = await request.json()
        at = time.time()
        for backend, index in body["jobs"]:
            sims.change(backend, int(index))
        return web.json_response({"at": at})

    async def counts(_request: web.Request) -> web.Response:
        cpu = me.cpu_times()
        return web.json_response({"vendors": sims.snapshot(), "cpu_s": cpu.user + cpu.system,
                                  "rss": me.memory_info().rss, "at": time.time()})

    async def samples(_request: web.Request) -> web.Response:
        return web.json_response(sims.samples)

    async def clear(_request: web.Request) -> web.Response:
        sims.samples.clear()
        return web.json_response({"ok": True})

    control = web.Application()
    control.add_routes([web.post("/jobs", jobs), web.post("/change", change),
                        web.post("/change/many", change_many), web.get("/counts", counts),
                        web.get("/samples", samples), web.post("/samples/clear", clear)])
    runner, control_port = await serve(control)
    print(json.dumps({"sim_port": sims.port, "control_port": control_port}), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await sims.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
