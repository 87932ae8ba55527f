"""Builds the running bot: store, backends, Slack sender, Bolt app, poller, notifier, in one event loop."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client.aiohttp import make_aiohttp_handler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot import store
from bot.backends import build_backends
from bot.backends.base import Backend
from bot.backends.slots import UsersFirst
from bot.engine.digests import TICK as DIGEST_TICK
from bot.engine.digests import Digests
from bot.engine.notifier import Notifier
from bot.engine.poller import Poller
from bot.engine.replicas import Replicas, replica_id
from bot.inbound import front, listeners
from bot.inbound.api import Api
from bot.inbound.home import HomeTab
from bot.inbound.listeners import guard
from bot.metrics import Metrics
from bot.operations.permissions import Permissions
from bot.operations.watching import Watching
from bot.rendering import messages
from bot.slack.budget import Budget
from bot.slack.sender import WebSender
from bot.slack.socket import SocketConnection
from bot.store import Store
from bot.store.sealing import missing_key
from bot.support.config import Environment, Settings

log = logging.getLogger(__name__)

# Stopping: SIGTERM ends the process within 5 s (the CLI's own limit, bot/cli.py), so Runtime.stop has 4 s:
# what is under way gets until 2 s before its end, saving until 1 s before, closing the rest.
STOP_BUDGET = 4.0
SAVE_RESERVE = 2.0
CLOSE_RESERVE = 1.0
# seconds for the database to answer /readyz (Kubernetes' probe timeout is 1 s by default)
READY_DB_TIMEOUT = 0.8


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
        self.db = Store(env.database_url, env.secret_keys)  # SecretKeyError for a malformed key
        self.backends: dict[str, Backend] = {}
        # users' requests go ahead of scheduled polls, for every backend's slots (given to them by
        # build_backends in `start`) and on the event loop (the listeners run inside its `user_request`):
        # bot/backends/slots.py
        self.users = UsersFirst()
        # Bolt builds its Web API client from `token`. Given a client of ours instead, it still reads
        # SLACK_BOT_TOKEN from the environment (`token or os.environ.get(...)`, slack_bolt AsyncApp.__init__)
        # and warns on every start that the token will be unused; so the client is Bolt's, set up here.
        self.app = AsyncApp(
            token=env.slack_bot_token,
            signing_secret=env.slack_signing_secret,
            process_before_response=False,
            # right after Bolt's signature check, before anything reads the body
            before_authorize=guard.ShapeCheck(),
        )
        # after Bolt's authorization, which holds the installed team (auth.test)
        self.app.use(guard.TeamCheck())
        self.client: AsyncWebClient = self.app.client
        self.client.base_url = env.slack_api_url
        # No rate-limit retry handler: it would sleep out Retry-After inside the call, holding the notifier's
        # channel lock; the notifier reschedules the message after Retry-After instead (bot/slack/errors.py).
        self.client.retry_handlers = [
            AsyncServerErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ]
        self.metrics = Metrics(clock)
        # Slack's budget per method (bot/slack/budget.py), shared by everything that calls Slack on its own:
        # the notifier and digests (through the sender) and the Home tab. With replicas, this one's share.
        self.budget = Budget(settings.slack_limits, self._live_replicas)
        slack = WebSender(self.client, self.metrics, self.budget)
        # PostgreSQL: any number of replicas share the work (bot/engine/replicas.py), each poll and each
        # channel's sends leased for lease_seconds; SQLite: this process alone (no replica id)
        replica = replica_id() if self.db.replicated else None
        self.notifier = Notifier(self.db, slack, self.backends, clock, self.metrics, self.budget,
                                 replica=replica, lease_seconds=settings.lease_seconds)
        self.poller = Poller(self.db, self.backends, self.notifier.kick, settings, clock, self.metrics,
                             replica=replica)
        self.replicas = (Replicas(self.db, self.poller, replica, env.database_url, settings.lease_seconds)
                         if replica is not None else None)
        # who may see and do what (bot/operations/permissions.py)
        self.permissions = Permissions(settings, self.client)
        self.watching = Watching(settings, self.backends, self.db, self.poller, self.notifier, slack, clock,
                                 self.permissions)
        self.home = HomeTab(self.client, self.db, self.watching, self.backends, settings, clock, self.budget)
        # a change reached a thread: refresh its owner's Home tab (for the life of the process)
        self.notifier.subscribe(self.home.watch_changed)
        listeners.register(self.app, self.watching, self.home, self.users)
        # daily digests, if any
        self.digests = Digests(self.db, slack, settings.digests, clock, settings.backends)
        self.api = Api(settings.api, self.watching, self.metrics) if settings.api is not None else None
        self.socket = (SocketConnection(self.app, env.slack_app_token, env.slack_api_url, clock)
                       if env.slack_app_token else None)
        # signatures already used: a replayed request is refused (bot/inbound/front.py)
        self.seen = front.Seen(self.db)
        self.connections: front.ConnectionCap | None = None
        self.stopping = False
        self._runner: web.AppRunner | None = None
        self._metrics_runner: web.AppRunner | None = None  # METRICS_ADDR's listener, when set
        self.metrics_port: int | None = None  # the port METRICS_ADDR's listener took (it may ask for 0: any)
        self._scheduler: AsyncIOScheduler | None = None
        self._notifier_task: asyncio.Task[None] | None = None
        # the database ping under way, shared by readiness checks
        self._ping: asyncio.Future[None] | None = None
        self._counting: asyncio.Task[None] | None = None  # the metrics' periodic count (bot/metrics.py)

    async def _end_disallowed(self) -> None:
        """Existing watches follow the rules as they are now (issue 19, item 3): a watch in a channel its
        backend's `channels` no longer allows ends, with one note in its thread (once:
        bot/store/watches.py)."""
        allowed = {name: frozenset(b.channels) if b.channels is not None else None
                   for name, b in self.settings.backends.items()}
        note = messages.note(":no_entry_sign: Stopped watching: this channel is no longer among the "
                             "channels its backend may be used in (its `channels` setting). Ask the bot's "
                             "operator, or watch the job in an allowed channel.")
        ended = await self.db.run(store.end_disallowed, allowed, note, self.clock())
        if ended:
            log.info("ended %d watches in channels their backend's `channels` no longer allows", len(ended))

    async def start(self) -> None:
        """Serve: the schema, the backends, the schedule, then HTTP, the notifier and the poll tick. In Socket
        Mode the connection to Slack is opened in the background (bot/slack/socket.py): while Slack cannot be
        reached the bot polls, serves /healthz and /readyz, and can be stopped."""
        self.db.serve_alone()  # SQLite: raises InUse while another process serves the file
        await asyncio.get_running_loop().run_in_executor(None, self.db.upgrade)  # raises SchemaTooNew
        rotating = sorted(n for n, b in self.settings.backends.items() if b.auth.type == "oauth2_refresh")
        if rotating and not self.db.sealer.ready:  # its rotated refresh token is stored: never unencrypted
            raise missing_key(f"backend {', '.join(rotating)} keeps its rotating refresh token in the "
                              "database")
        # SecretKeyError
        sealed = await asyncio.get_running_loop().run_in_executor(None, self.db.seal_secrets)
        if sealed:
            log.info("encrypted %d stored secret(s) under the first key of JOBSTATUS_SECRET_KEYS", sealed)
        self.backends.update(build_backends(self.settings, self.env.config_path, secrets=self.db,
                                            metrics=self.metrics, users=self.users))
        await self._end_disallowed()
        resumed = await self.db.run(store.counts)
        if self.replicas is not None:
            await self.replicas.join()
        scheduled = await self.poller.load()
        if self.replicas is not None:
            self.replicas.start()
        log.info("resuming %d active watches of %d jobs (%d scheduled); %d messages owed to Slack",
                 resumed["watches_active"], resumed["jobs_polling"], scheduled, resumed["outbox"])
        # the front door (bot/inbound/front.py): bodies up to what Slack sends, deadlines for headers and
        # bodies, a cap on connections, one log line per burst when descriptors run out
        web_app = web.Application(client_max_size=front.MAX_BODY)
        if self.socket is None:  # HTTP mode; in Socket Mode Slack's requests come over the socket
            web_app.router.add_post("/slack/events", guard.handler(self.app, self.env.slack_signing_secret,
                                                                   self.seen))
        # On the public port the probes say alive / ready or not and nothing else (no backend, no Slack token
        # state, no count); the details and /metrics go on METRICS_ADDR's listener when it is set
        web_app.router.add_get("/healthz", self._alive)
        web_app.router.add_get("/readyz", self._ready)
        if self.env.metrics_host_port is None:
            web_app.router.add_get("/metrics", make_aiohttp_handler(self.metrics.registry))
        if self.api is not None:  # without `api:` in the config its routes answer 404, as any unknown path
            self.api.mount(web_app)
        self._runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=1.0, **front.runner_options())
        await self._runner.setup()
        assert self._runner.server is not None
        self.connections = front.ConnectionCap(self._runner.server, front.connection_cap())
        front.quiet_accept_errors(asyncio.get_running_loop())
        site = web.TCPSite(self._runner, self.host, self.port, backlog=front.backlog(self.connections.limit))
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if (inside := self.env.metrics_host_port) is not None:
            self._metrics_runner = web.AppRunner(self._inside_app(), access_log=None, shutdown_timeout=1.0)
            await self._metrics_runner.setup()
            metrics_site = web.TCPSite(self._metrics_runner, *inside)
            await metrics_site.start()
            self.metrics_port = metrics_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._notifier_task = asyncio.create_task(self.notifier.run())
        self._counting = asyncio.create_task(self.metrics.keep_counting(self.db, self.backends))
        self._scheduler = AsyncIOScheduler()
        self._scheduler.add_job(self.poller.tick, "interval", seconds=self.tick, max_instances=1,
                                coalesce=True, misfire_grace_time=None, id="poll-tick")
        if self.settings.digests:  # at once (a digest missed while the bot was down), then every DIGEST_TICK
            self._scheduler.add_job(self.digests.tick, "interval", seconds=DIGEST_TICK, max_instances=1,
                                    coalesce=True, misfire_grace_time=None, id="digests",
                                    next_run_time=datetime.now(UTC))
        self._scheduler.start()
        # What start-up built lives as long as the bot (the libraries, the app, the schedule): frozen, the
        # cyclic garbage collector leaves it be (docs.python.org/3/library/gc.html#gc.freeze), so its full
        # collections, which the poll path's short-lived objects set off every few seconds, walk what came
        # since and not the whole process (bench/: about a third of the poller's own CPU per poll). `stop`
        # unfreezes it.
        gc.freeze()
        if self.socket is not None:
            self.socket.start()
        mode = "Socket Mode" if self.socket else "HTTP"
        log.info("jobstatus serving (%s) on %s:%d with %d backends", mode, self.host, self.port,
                 len(self.backends))

    # -- probes ------------------------------------------------------------------------------------------
    def _inside_app(self) -> web.Application:
        """METRICS_ADDR's listener: /metrics and the probes with their details, for operators and
        Prometheus."""
        inside = web.Application()
        inside.router.add_get("/metrics", make_aiohttp_handler(self.metrics.registry))
        inside.router.add_get("/healthz", self._healthz)
        inside.router.add_get("/readyz", self._readyz)
        return inside

    async def _alive(self, _request: web.Request) -> web.Response:
        # the public port's liveness: the process answers; what it knows stays on METRICS_ADDR's listener
        return web.json_response({"ok": True})

    async def _ready(self, _request: web.Request) -> web.Response:
        # the public port's readiness: ready or not, without the reasons (they can name the Slack token's
        # state)
        ready = not await self.not_ready()
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    def _live_replicas(self) -> int:
        """How many replicas share the workspace's Slack budget: the live count of the last heartbeat (1
        alone). Each spends its share; a replica that joins or dies changes it at the next heartbeat."""
        return self.replicas.live if self.replicas is not None else 1

    async def _healthz(self, _request: web.Request) -> web.Response:
        # liveness: 200 while the process serves, in-memory figures only (behind a busy database a health
        # check must still answer at once); "slack" says whether Slack takes our messages and, in Socket
        # Mode, whether the bot is connected (or why not)
        trouble = await self.socket.trouble() if self.socket is not None else None
        return web.json_response({"ok": True, "scheduled": self.poller.scheduled, "polls": self.poller.polls,
                                  "sent": self.notifier.sent_count,
                                  "slack": trouble or self.notifier.slack_state()})

    async def _readyz(self, _request: web.Request) -> web.Response:
        reasons = await self.not_ready()
        if reasons:
            return web.json_response({"ready": False, "reasons": reasons}, status=503)
        return web.json_response({"ready": True})

    async def not_ready(self) -> list[str]:
        """Why the bot should not be sent work now (empty: ready): stopping, the database does not answer, the
        schedule is not loaded, Socket Mode is not connected, Slack refuses the bot's token."""
        reasons = []
        if self.stopping:
            reasons.append("stopping")
        db = await self._database_trouble()
        if db is not None:
            reasons.append(db)
        if not self.poller.loaded:
            reasons.append("the schedule is not loaded yet")
        if self.socket is not None and (trouble := await self.socket.trouble()) is not None:
            reasons.append(trouble)
        if self.notifier.halted is not None:
            reasons.append(f"Slack refuses the bot's token: {self.notifier.slack_state()}")
        return reasons

    async def _database_trouble(self) -> str | None:
        """None when `SELECT 1` answers within READY_DB_TIMEOUT, on a thread of its own; one ping at a time
        (a database that hangs holds one thread, not one per probe)."""
        if self._ping is None or self._ping.done():
            self._ping = asyncio.get_running_loop().run_in_executor(None, self.db.ping)
            self._ping.add_done_callback(lambda f: f.cancelled() or f.exception())  # read, if no probe waits
        try:
            await asyncio.wait_for(asyncio.shield(self._ping), READY_DB_TIMEOUT)
        except TimeoutError:
            return f"the database did not answer within {READY_DB_TIMEOUT:g} s"
        except Exception as exc:
            orig = getattr(exc, "orig", None) or exc  # SQLAlchemy's wrapper keeps the driver's error
            return f"the database does not answer ({type(orig).__name__})"
        return None

    @property
    def events_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/slack/events"

    # -- stopping ------------------------------------------------------------------------------------------
    async def stop(self, budget: float = STOP_BUDGET) -> None:
        """Stop within `budget` seconds, whatever is under way: one deadline shared by every step.

        HTTP stops taking requests, and polls and sends under way get until SAVE_RESERVE before the deadline,
        side by side; what is not done then is abandoned (a poll is asked again after the next start, a
        message stays owed in the outbox). Then what polls answered is written and the schedule saved, until
        CLOSE_RESERVE before the deadline; then connections and the database are closed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        self.stopping = True
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        grace, saved = deadline - SAVE_RESERVE, deadline - CLOSE_RESERVE
        if self.replicas is not None:
            await _within(grace, self.replicas.stop(), "stopping the heartbeat")
        steps = [_within(saved, self.notifier.stop(grace), "stopping the sends"),
                 _within(saved, self.digests.stop(grace), "posting the daily digest"),
                 _within(saved, self.poller.stop(grace), "saving the schedule")]
        if self._runner is not None:
            steps.append(_within(grace, self._runner.cleanup(), "closing the HTTP server"))
        if self._metrics_runner is not None:
            steps.append(_within(grace, self._metrics_runner.cleanup(), "closing the metrics listener"))
        await asyncio.gather(*steps)
        # after the last writes, which need the leases: the others take over now
        if self.replicas is not None:
            await _within(saved, self.replicas.leave(), "giving back the leases")
        await _within(saved, self.home.close(), "stopping the Home tab's refreshes")
        for task in (self._notifier_task, self._counting):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        closing = [b.aclose() for b in self.backends.values()]
        if self.socket is not None:
            closing.append(self.socket.close())
        await _within(deadline, asyncio.gather(*closing, return_exceptions=True), "closing connections")
        await _within(deadline, loop.run_in_executor(None, self.db.close), "closing the database")
        # what `start` froze is the collector's again (a process may start another Runtime: tests)
        gc.unfreeze()
        log.info("jobstatus stopped")


async def _within(deadline: float, step: Awaitable[Any], what: str) -> None:
    """Await `step` until `deadline` (loop time); past it, abandon it with one log line."""
    try:
        async with asyncio.timeout_at(deadline):
            await step
    except TimeoutError:
        log.warning("stopping: %s did not finish in time; left undone", what)
