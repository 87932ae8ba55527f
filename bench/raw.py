"""The raw ceiling: a bare httpx.AsyncClient loop, `python -m bench.raw < spec.json`.

It makes the bot's own status requests (method, path, headers as the simulators saw them from the bot,
with the job id swapped) to the same simulators at the same concurrency per backend, back to back, and
nothing else: no parsing, no database, no scheduling, no auth flow. One client per backend:
`"client": "bot"` is the very httpx.AsyncClient the bot's adapters get (built by `make_http_client`, as in
`Backend.__init__` from the backend's config: its transport, limits, timeouts and default headers), so the
comparison isolates everything the bot does around a request; `"client": "httpx"` is a plain
`httpx.AsyncClient` with httpx's own transport and the same connection limits. Prints `{"phase": "measuring"}`
when the warm-up ends, then waits for a line on stdin (the caller has read the simulators' counters: on a busy
machine that read can take seconds, which must not eat into the measured span) and measures from then on;
`{"phase": "done", ...counts, "cpu_s"}` (its own CPU seconds over the measured span) at the end, one JSON line
each, so the caller can read the simulators' own counters over exactly that span.

The spec is the first line on stdin: {"warmup": s, "duration": s, "client": "bot" | "httpx", "backends":
[{"backend", "config" (the backend's config as in the bot's YAML), "url", "method", "headers", "job_id",
"count", "concurrency"}]} where `url` is the sample request's URL whose last path segment is `job_id`; the
loop asks for the backend's jobs 0..count-1 in turn.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from typing import Any

import httpx

from bench.jobs import job_id


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    warmup, duration = float(spec["warmup"]), float(spec["duration"])
    counts: dict[str, dict[str, int]] = {}
    measuring = False
    clients: list[httpx.AsyncClient] = []
    workers: list[asyncio.Task[None]] = []
    stop_at = time.monotonic() + 24 * 3600.0  # set when the measured span starts

    async def worker(
        backend: str,
        client: httpx.AsyncClient,
        method: str,
        headers: dict[str, str],
        prefix: str,
        query: str,
        ids: itertools.cycle[str],
    ) -> None:
        c = counts[backend]
        while time.monotonic() < stop_at:
            url = prefix + next(ids) + query
            try:
                resp = await client.request(method, url, headers=headers)
                ok = resp.status_code == 200
            except httpx.HTTPError:
                ok = False
            if measuring:
                c["requests"] += 1
                c["ok" if ok else "errors"] += 1

    for b in spec["backends"]:
        limit = int(b["concurrency"])
        client = make_client(spec.get("client", "bot"), b, limit)
        clients.append(client)
        base, _, query = b["url"].partition("?")
        if not base.endswith("/" + b["job_id"]):
            raise SystemExit(f"sample URL {b['url']!r} does not end with its job id {b['job_id']!r}")
        prefix = base[: -len(b["job_id"])]
        ids = itertools.cycle([job_id(b["backend"], i) for i in range(int(b["count"]))])
        counts[b["backend"]] = {"requests": 0, "ok": 0, "errors": 0}
        for _ in range(limit):
            workers.append(
                asyncio.create_task(
                    worker(
                        b["backend"],
                        client,
                        b["method"],
                        b["headers"],
                        prefix,
                        ("?" + query) if query else "",
                        ids,
                    )
                )
            )
    await asyncio.sleep(warmup)
    print(json.dumps({"phase": "measuring"}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # the caller's go-ahead
    measuring = True
    t0 = time.monotonic()
    stop_at = t0 + duration
    cpu0 = time.process_time()
    await asyncio.gather(*workers)
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    for client in clients:
        await client.aclose()
    return {"phase": "done", "elapsed": elapsed, "cpu_s": cpu, "counts": counts}


def make_client(kind: str, b: dict[str, Any], limit: int) -> httpx.AsyncClient:
    if kind == "bot":
        from bot.backends.http import make_http_client
        from bot.support.config import BackendConfig

        return make_http_client(BackendConfig.model_validate(b["config"]))
    return httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False,
                             limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit))


def main() -> int:
    spec = json.loads(sys.stdin.readline())
    result = asyncio.run(run(spec))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
