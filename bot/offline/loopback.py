"""Serving a stand-in: an aiohttp application on a loopback port, the port chosen by the system when 0."""

from __future__ import annotations

from aiohttp import web


async def serve(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    """Start `app` on `host`:`port` (0: any free port); returns its runner (cleanup() stops it) and the
    port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner, int(runner.addresses[0][1])
