"""The Socket Mode connection, opened in the background and retried while Slack cannot be reached.

slack_sdk's client, left to itself, retries a failed first connection forever inside `connect()`, logs a
traceback each time, and keeps the bot's start waiting, so a signal is never acted on. Here the first
connection is the bot's own loop: `apps.connections.open` (the Web API call that hands out the websocket
URL, https://docs.slack.dev/reference/methods/apps.connections.open) with backoff and one log line per
failed attempt naming its cause, then the client's `connect()` to that URL, bounded, after which the client
keeps the connection up by itself (it reconnects on `disconnect` messages and lost pings). Meanwhile the
bot polls, sends what it owes, serves /healthz and /readyz (`trouble()` says why it is not connected), and
stops at once when told (`close()`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.errors import retry_after
from bot.support.network import cause, is_network

log = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0  # seconds after the first failed attempt, doubling...
BACKOFF_MAX = 60.0  # ...up to this (apps.connections.open is a Tier 1 method: about one call a minute)
# for the websocket to open once Slack gave its URL (the client would retry it forever)
CONNECT_TIMEOUT = 15.0


class OneLineNetworkTrouble(logging.Filter):
    """The Socket Mode client logs a traceback when a reconnect fails; network trouble is one line with its
    cause (a traceback is for a bug). On the client's own logger, so its other records keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and is_network(exc):
            record.msg, record.args = f"{record.getMessage()} [{cause(exc)}]", None
            record.exc_info, record.exc_text = None, None
        return True


class SocketConnection:
    """Bolt's AsyncSocketModeHandler for `app`, connected by `start()` in the background."""

    def __init__(self, app: AsyncApp, app_token: str, api_url: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.app_token = app_token
        # Its own Web API client, without retry handlers: the loop below is the retrying, one line per
        # attempt.
        self.web = AsyncWebClient(base_url=api_url, retry_handlers=[])
        self.clock = clock
        self.logger = logging.getLogger("bot.slack.socket_mode_client")
        if not any(isinstance(f, OneLineNetworkTrouble) for f in self.logger.filters):
            self.logger.addFilter(OneLineNetworkTrouble())
        self.handler: AsyncSocketModeHandler | None = None
        self.attempts = 0  # failed attempts since the last connection
        self._trouble: str | None = "not connected to Slack: connecting"
        self._task: asyncio.Task[None] | None = None
        self._opened = asyncio.Event()

    def start(self) -> None:
        """Begin connecting (in the running loop); returns at once."""
        self.handler = AsyncSocketModeHandler(self.app, self.app_token, logger=self.logger,
                                              web_client=self.web)
        self._task = asyncio.create_task(self._connect(self.handler), name="socket-mode-connect")

    async def _connect(self, handler: AsyncSocketModeHandler) -> None:
        since = self.clock()
        while True:
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** min(self.attempts, 16)) * random.uniform(0.8, 1.2)
            step = "apps.connections.open"
            try:
                resp = await self.web.apps_connections_open(app_token=self.app_token)
                handler.client.wss_uri, step = str(resp["url"]), "the Socket Mode websocket"
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await handler.connect_async()  # type: ignore[no-untyped-call]  # slack_bolt does not annotate it
            except SlackApiError as exc:
                error = str(exc.response.get("error") or "unknown_error")
                why = f"Slack refused {step} ({error})"
                if error in ("invalid_auth", "not_authed", "not_allowed_token_type", "token_revoked"):
                    why += ": check SLACK_APP_TOKEN (an app-level xapp- token with connections:write)"
                delay = max(delay, retry_after(exc.response.headers) or 0.0)
            except Exception as exc:
                if not is_network(exc):
                    raise
                why = f"{step}: {cause(exc)}"
            else:
                if self.attempts:
                    log.info("connected to Slack over Socket Mode after %d failed attempts", self.attempts)
                else:
                    log.info("connected to Slack over Socket Mode")
                self.attempts, self._trouble = 0, None
                self._opened.set()
                return
            self.attempts += 1
            self._trouble = (f"not connected to Slack: {why} ({self.attempts} attempts since "
                             f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(since))})")
            log.warning("cannot connect to Slack over Socket Mode: %s; attempt %d, next in %.0f s",
                        why, self.attempts, delay)
            await asyncio.sleep(delay)

    async def connected(self) -> bool:
        """Whether the websocket is up now (the client's own view: open, not stale, pings answered)."""
        if self.handler is None or not self._opened.is_set():
            return False
        socket_client = self.handler.client
        return bool(await socket_client.is_connected())

    async def trouble(self) -> str | None:
        """None when connected; else what /healthz and /readyz say: why not."""
        if await self.connected():
            return None
        return self._trouble or "not connected to Slack: the Socket Mode connection was lost (reconnecting)"

    async def wait_connected(self) -> None:
        await self._opened.wait()

    async def close(self) -> None:
        """Stop connecting, close the connection. The caller bounds the time (a websocket close waits for
        the other side)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.handler is not None:
            await self.handler.close_async()  # type: ignore[no-untyped-call]  # slack_bolt does not annotate it
