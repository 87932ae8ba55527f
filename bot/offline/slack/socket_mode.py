"""The fake Slack's Socket Mode: `SocketMode`, the part of FakeSlack that is Slack's websocket side.

`apps.connections.open` (app-level `xapp-` token) hands out a `ws://127.0.0.1:PORT/socket-mode/<id>` URL,
good for one connection, soon; on it the fake says hello, answers pings, delivers envelopes
(`await fs.deliver(...)`, which `SlackUser.over_socket` uses), records the client's acks, and can send
`disconnect` (`socket_disconnect`) or close from its side (`close_sockets`) to make the client reconnect.
Recorded in `socket_connections`, `envelopes` and `socket_acks`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from bot.offline.slack.records import Call, Envelope, SocketAck, SocketConnection

log = logging.getLogger(__name__)

SOCKET_URL_TTL = 30.0  # a Socket Mode URL from apps.connections.open is for one connection, soon


class SocketMode:
    """Socket Mode, mixed into FakeSlack: its Web API method, its websocket route and what it recorded."""

    # What the Web API server this is mixed into provides.
    host: str
    port: int
    app_id: str
    clock: Callable[[], float]
    calls: list[Call]
    _event: asyncio.Event
    _changed: Callable[..., None]

    def __init__(self) -> None:
        self.socket_connections: list[SocketConnection] = []
        self.envelopes: list[Envelope] = []
        self.socket_acks: list[SocketAck] = []
        self._socket_urls: dict[str, float] = {}  # connection id → when apps.connections.open issued it
        self._envelope_index: dict[str, Envelope] = {}
        self._envelope_started: dict[str, float] = {}
        self._pending_acks: dict[str, asyncio.Future[SocketAck]] = {}

    def _api_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = secrets.token_hex(10)
        self._socket_urls[cid] = self.clock()
        return {"url": f"ws://{self.host}:{self.port}/socket-mode/{cid}"}

    def open_sockets(self) -> list[SocketConnection]:
        """Socket Mode connections open now, oldest first (draining ones included)."""
        return [c for c in self.socket_connections if c.open]

    def socket_ready(self) -> SocketConnection | None:
        """The connection the next envelope would go to (the newest open, not draining one), if any."""
        usable = [c for c in self.open_sockets() if not c.draining]
        return usable[-1] if usable else None

    async def deliver(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        connection: SocketConnection | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109  (like SlackUser.timeout)
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
    ) -> Envelope:
        """Send `payload` to the app over Socket Mode in an envelope, as Slack does, and wait for the ack.

        `type` is "slash_commands", "interactive" or "events_api". The envelope goes to `connection`,
        or to the newest open connection that was not sent a `disconnect` (waiting for one to open,
        within `timeout`). `accepts_response_payload` defaults to what Slack sends: true for slash
        commands, view_submission and block_suggestion, false otherwise. Returns the Envelope, with
        `.ack` set, or `.error` "dispatch_failed" (no connection) / "operation_timeout" (no ack in time).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if accepts_response_payload is None:
            accepts_response_payload = type == "slash_commands" or (
                type == "interactive" and payload.get("type") in ("view_submission", "block_suggestion")
            )
        env = Envelope(
            envelope_id=str(uuid.uuid4()),
            type=type,
            payload=payload,
            accepts_response_payload=accepts_response_payload,
        )
        self.envelopes.append(env)
        self._envelope_index[env.envelope_id] = env
        conn = connection or await self._wait_socket(deadline)
        message: dict[str, Any] = {
            "envelope_id": env.envelope_id,
            "payload": payload,
            "type": type,
            "accepts_response_payload": accepts_response_payload,
        }
        if retry_attempt is not None:
            message.update(retry_attempt=retry_attempt, retry_reason=retry_reason or "timeout")
        ack_future: asyncio.Future[SocketAck] = loop.create_future()
        self._pending_acks[env.envelope_id] = ack_future
        try:
            if conn is None or not conn.open:
                env.error = "dispatch_failed"
                return env
            assert conn.ws is not None
            env.connection_id, env.sent_at = conn.id, self.clock()
            self._envelope_started[env.envelope_id] = time.perf_counter()
            try:
                await conn.ws.send_str(json.dumps(message))
            except (ConnectionError, RuntimeError):
                env.error = "dispatch_failed"
                return env
            self._changed("envelope")
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await ack_future
            except TimeoutError:
                env.error = "operation_timeout"
            return env
        finally:
            self._pending_acks.pop(env.envelope_id, None)
            if env.error is not None:
                self._changed("envelope")

    async def socket_disconnect(
        self, reason: str = "refresh_requested", connection: SocketConnection | None = None
    ) -> list[SocketConnection]:
        """Send `{"type": "disconnect", "reason": ...}` (to `connection`, or to every open one), as Slack
        does before it retires a connection; those get no more envelopes. The client is expected to
        open a new connection and close the old one. Returns the connections told."""
        told = [connection] if connection is not None else self.open_sockets()
        for conn in told:
            if conn.ws is None or not conn.open:
                continue
            conn.draining, conn.disconnect_reason = True, reason
            await conn.ws.send_json(
                {
                    "type": "disconnect",
                    "reason": reason,
                    "debug_info": {"host": conn.hello["debug_info"]["host"]},
                }
            )
        self._changed("socket")
        return told

    async def close_sockets(
        self, code: int = WSCloseCode.GOING_AWAY, message: bytes = b"closed by FakeSlack"
    ) -> None:
        """Close every open Socket Mode connection from the server side (no `disconnect` first)."""
        for conn in self.open_sockets():
            assert conn.ws is not None
            conn.close_code, conn.closed_by = int(code), "server"
            await conn.ws.close(code=code, message=message)

    async def _wait_socket(self, deadline: float) -> SocketConnection | None:
        loop = asyncio.get_running_loop()
        while True:
            event = self._event
            conn = self.socket_ready()
            remaining = deadline - loop.time()
            if conn is not None or remaining <= 0:
                return conn
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        cid = request.match_info["cid"]
        issued = self._socket_urls.pop(cid, None)  # one connection per URL, as Slack's tickets
        now = self.clock()
        call = Call("socket_mode", {"id": cid}, now)
        if issued is None or now - issued > SOCKET_URL_TTL:
            call.ok, call.error, call.status = False, "invalid_url", 401
            self.calls.append(call)
            self._changed("call")
            return web.Response(status=401, text="invalid_url", content_type="text/plain")
        ws = web.WebSocketResponse(autoping=False, timeout=2.0)
        await ws.prepare(request)
        self.calls.append(call)
        conn = SocketConnection(id=cid, opened_at=now, ws=ws)
        self.socket_connections.append(conn)
        conn.hello = {
            "type": "hello",
            "num_connections": len(self.open_sockets()),
            "debug_info": {
                "host": f"fake-applink-{len(self.socket_connections)}",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }
        try:
            await ws.send_json(conn.hello)
            self._changed("socket")
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._socket_text(conn, msg.data)
                elif msg.type == WSMsgType.PING:
                    conn.pings += 1
                    await ws.pong(msg.data)
        except (ConnectionError, RuntimeError) as exc:
            log.debug("socket %s ended: %s", cid, exc)
        finally:
            conn.closed_at = self.clock()
            if conn.closed_by is None:
                conn.close_code, conn.closed_by = ws.close_code, "client"
            self._changed("socket")
        return ws

    def _socket_text(self, conn: SocketConnection, data: str) -> None:
        try:
            msg: Any = json.loads(data)
        except ValueError:
            msg = data
        conn.received.append(msg)
        if not isinstance(msg, dict) or not msg.get("envelope_id"):
            return
        eid = str(msg["envelope_id"])
        env = self._envelope_index.get(eid)
        started = self._envelope_started.get(eid)
        payload = msg.get("payload")
        ack = SocketAck(
            envelope_id=eid,
            payload=payload if isinstance(payload, dict) else None,
            at=self.clock(),
            connection_id=conn.id,
            elapsed=None if started is None else time.perf_counter() - started,
            duplicate=env is not None and env.ack is not None,
            raw=msg,
        )
        self.socket_acks.append(ack)
        if env is not None and env.ack is None:
            env.ack = ack
        future = self._pending_acks.get(eid)
        if future is not None and not future.done():
            future.set_result(ack)
        self._changed("ack")

