"""Builds the running bot: store, backends, Slack sender, Bolt app, poller, notifier, in one event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client.aiohttp import make_aiohttp_handler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot import listeners, store
from bot.backends import build_backends
from bot.backends.base import Backend
from bot.config import Environment, Settings
from bot.listeners import guard
from bot.metrics import Metrics
from bot.notifier import Notifier
from bot.poller import Poller
from bot.slack.sender import WebSender
from bot.store import Store
from bot.watching import Watching

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

log = logging.getLogger(__name__)


class Runtime:
    """One bot process. `await start()` serves Slack and polls; `await stop()` shuts down cleanly."""

    def __init__(
        self,
        settings: Settings,
        env: Environment,
        *,
        host: str = "0.0.0.0",
        tick: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.env = env
        self.host = host
        self.tick = tick
        self.clock = clock
        self.port = env.port
        self.db = Store(env.database_url)
        self.backends: dict[str, Backend] = {}
        # No rate-limit retry handler: it would sleep out Retry-After inside the call, holding the notifier's
        # channel lock; the notifier reschedules the message after Retry-After instead (bot/slack/errors.py).
        self.client = AsyncWebClient(
            token=env.slack_bot_token,
            base_url=env.slack_api_url,
            retry_handlers=[
                AsyncServerErrorRetryHandler(max_retry_count=2),
                AsyncConnectionErrorRetryHandler(max_retry_count=2),
            ],
        )
        self.metrics = Metrics(clock)
        slack = WebSender(self.client, self.metrics)
        self.notifier = Notifier(self.db, slack, self.backends, clock, self.metrics)
        self.poller = Poller(self.db, self.backends, self.notifier.kick, settings, clock, self.metrics)
        self.watching = Watching(settings, self.backends, self.db, self.poller, self.notifier, slack, clock)
        self.app = AsyncApp(
            signing_secret=env.slack_signing_secret,
            client=self.client,
            process_before_response=False,
            before_authorize=guard.ShapeCheck(),  # right after Bolt's signature check, before anything reads the body
        )
        listeners.register(self.app, self.watching)
        self._runner: web.AppRunner | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._notifier_task: asyncio.Task[None] | None = None
        self._counting: asyncio.Task[None] | None = None
        self._socket: AsyncSocketModeHandler | None = None

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.db.create_schema)
        self.backends.update(build_backends(self.settings, self.env.config_path, secrets=self.db,
                                            metrics=self.metrics))
        resumed = await self.db.run(store.counts)
        scheduled = await self.poller.load()
        log.info("resuming %d active watches of %d jobs (%d scheduled); %d messages owed to Slack",
                 resumed["watches_active"], resumed["jobs_polling"], scheduled, resumed["outbox"])
        if self.env.slack_app_token:
            # Socket Mode: Slack's requests come over the socket; HTTP serves only /healthz
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(self.app, self.env.slack_app_token)
            await handler.connect_async()  # type: ignore[no-untyped-call]  # slack_bolt does not annotate it
            self._socket = handler
            web_app = web.Application()
        else:
            web_app = web.Application()
            web_app.router.add_post("/slack/events", guard.handler(self.app, self.env.slack_signing_secret))
        web_app.router.add_get("/healthz", self._healthz)
        web_app.router.add_get("/metrics", make_aiohttp_handler(self.metrics.registry))
        self._runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._notifier_task = asyncio.create_task(self.notifier.run())
        self._counting = asyncio.create_task(self.metrics.keep_counting(self.db, self.backends))
        self._scheduler = AsyncIOScheduler()
        self._scheduler.add_job(self.poller.tick, "interval", seconds=self.tick, max_instances=1, coalesce=True,
                                misfire_grace_time=None, id="poll-tick")
        self._scheduler.start()
        mode = "Socket Mode" if self._socket else "HTTP"
        log.info("jobstatus serving (%s) on %s:%d with %d backends", mode, self.host, self.port, len(self.backends))

    async def _healthz(self, _request: web.Request) -> web.Response:
        # in-memory figures only: behind a busy database a health check must still answer at once
        # liveness: 200 while the process serves; "slack" says whether Slack takes our messages (or since when not)
        return web.json_response({"ok": True, "scheduled": self.poller.scheduled, "polls": self.poller.polls,
                                  "sent": self.notifier.sent_count, "slack": self.notifier.slack_state()})

    @property
    def events_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/slack/events"

    async def stop(self) -> None:
        """Finish in-flight polls and sends; whatever is not sent stays owed in the outbox."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        await self.poller.stop()
        await self.notifier.stop()
        for task in (self._notifier_task, self._counting):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]  # slack_bolt does not annotate it
        if self._runner is not None:
            await self._runner.cleanup()
        for b in self.backends.values():
            await b.aclose()
        await asyncio.get_running_loop().run_in_executor(None, self.db.close)
        log.info("jobstatus stopped")
