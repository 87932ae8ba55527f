"""End to end: the HTTP front door under hostile peers (issue 20, items 1-3), with raw sockets on 127.0.0.1.

The deadlines are shortened for these tests (an autouse fixture, before the harness starts the bot): what is
asserted is that the server closes what it must and still answers /healthz and a signed /jobstatus, never how
fast (the machine is shared and noisy)."""

from __future__ import annotations

import asyncio
import gzip
import logging
import subprocess
import sys
import textwrap
import urllib.parse
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from bot.inbound import front
from bot.inbound.listeners import guard
from tests.conftest import Harness

DEADLINE = 0.5  # seconds, for headers and bodies, in these tests only
SLASH = {
    "token": "x",
    "team_id": "T0001",
    "team_domain": "fake",
    "channel_id": "C0001",
    "channel_name": "general",
    "user_id": "U0001",
    "user_name": "ana",
    "command": "/jobstatus",
    "text": "help",
    "api_app_id": "A0FAKE",
    "response_url": "http://127.0.0.1:9/response/x",
    "trigger_id": "1.2.3",
}


@pytest.fixture(autouse=True)
def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(front, "HEADER_DEADLINE", DEADLINE)
    monkeypatch.setattr(front, "BODY_DEADLINE", DEADLINE)
    yield


def port_of(h: Harness) -> int:
    return h.runtime.port


async def still_answers(h: Harness) -> None:
    """/healthz answers and a signed `/jobstatus help` is acked with its help text."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port_of(h)}/healthz") as resp,
    ):
        assert resp.status == 200
    result = await h.user.command("help")
    assert result.ok and "/jobstatus" in result.ack_text


async def closed_by_server(reader: asyncio.StreamReader, limit: float = 20.0) -> bytes:
    """What the server sent until it closed the connection (the limit only keeps a broken server from hanging
    the test: it is not the figure under test)."""
    return await asyncio.wait_for(reader.read(), limit)


# -- item 2: a timestamp that is not a number ----------------------------------------------------------------

@pytest.mark.parametrize("stamp", ["abc", "", "1e9", "١٢٣", "99999999999999999999", " 1766000000"])
async def test_a_timestamp_that_is_not_a_number_is_an_unsigned_request(
        harness: Harness, caplog: pytest.LogCaptureFixture, stamp: str) -> None:
    body = urllib.parse.urlencode(SLASH).encode()
    headers = {**harness.user.sign(body), "X-Slack-Request-Timestamp": stamp}
    with caplog.at_level(logging.DEBUG):
        status, _ = await harness.user.post_raw(body, headers)
    assert status == 401
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)


# -- item 1: the signature before any parsing ---------------------------------------------------------------

class CountingRequest(guard.AsyncBoltRequest):  # type: ignore[misc]
    """Bolt's request object (which parses the body), counted: observed, not replaced."""

    built = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).built += 1
        super().__init__(*args, **kwargs)


async def test_unsigned_bodies_are_never_parsed(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "AsyncBoltRequest", CountingRequest)
    CountingRequest.built = 0
    big = b"payload=" + b"%7B%22a%22%3A1%7D" * 60_000  # about 1 MiB of valid form-encoded JSON
    forged = {**harness.user.sign(big), "X-Slack-Signature": "v0=" + "0" * 64}
    for _ in range(3):
        assert (await harness.user.post_raw(big, forged))[0] == 401
    assert CountingRequest.built == 0
    assert (await harness.user.command("help")).ok
    assert CountingRequest.built == 1


async def test_a_body_over_the_limit_is_refused_413(harness: Harness) -> None:
    big = b"x" * (front.MAX_BODY + 1)
    status, _ = await harness.user.post_raw(big, harness.user.sign(big))
    assert status == 413
    await still_answers(harness)


# -- item 3: slow and many peers ---------------------------------------------------------------------------

async def test_a_client_that_sends_half_its_headers_is_closed(harness: Harness) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(harness))
    writer.write(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: applica")
    await writer.drain()
    await still_answers(harness)  # meanwhile
    assert await closed_by_server(reader) == b""  # closed without an answer
    writer.close()


async def test_a_client_that_trickles_its_body_is_answered_408_and_closed(harness: Harness) -> None:
    body = urllib.parse.urlencode(SLASH).encode()
    headers = harness.user.sign(body)
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(harness))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(
        f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Length: {len(body)}\r\n{head}\r\n".encode()
    )

    async def trickle() -> None:
        for byte in body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)

    dripping = asyncio.create_task(trickle())
    try:
        answer = await closed_by_server(reader)
    finally:
        dripping.cancel()
        await asyncio.gather(dripping, return_exceptions=True)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:60]
    await still_answers(harness)


async def test_idle_keep_alive_connections_are_closed(harness: Harness) -> None:
    conns = []
    for _ in range(40):
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(harness))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
        conns.append((reader, writer))
    for reader, _ in conns:
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    await still_answers(harness)
    for reader, writer in conns:  # then idle: each one closed by the server
        rest = await closed_by_server(reader)
        assert b"HTTP/1.1" not in rest.split(b"\r\n\r\n", 1)[-1]  # nothing more than the first answer's body
        writer.close()


async def test_connections_over_the_cap_make_room_by_closing_idle_ones(harness: Harness) -> None:
    assert harness.runtime.connections is not None
    harness.runtime.connections.limit = 10
    idle = [await asyncio.open_connection("127.0.0.1", port_of(harness)) for _ in range(30)]
    await asyncio.sleep(0.1)  # let the server take them in
    await still_answers(harness)  # a new connection still gets in, and is answered
    assert len(harness.runtime._runner.server._connections) <= 10  # type: ignore[union-attr]
    assert harness.runtime.connections.closed >= 20
    for _, writer in idle:
        writer.close()


# -- out of file descriptors: one log line per burst -------------------------------------------------------

SERVER = textwrap.dedent("""
    import asyncio, logging, resource, sys
    from aiohttp import web
    from bot.inbound import front

    async def main(limit):
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(levelname)s %(name)s %(message)s")
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        app = web.Application(client_max_size=front.MAX_BODY)
        app.router.add_get("/healthz", lambda r: web.json_response({"ok": True}))
        runner = web.AppRunner(app, access_log=None, **front.runner_options())
        await runner.setup()
        cap = front.ConnectionCap(runner.server, front.connection_cap() if limit == "auto" else int(limit))
        front.quiet_accept_errors(asyncio.get_running_loop())
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=front.backlog(cap.limit))
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main(sys.argv[1]))
""")


async def _flood_fds(limit: str) -> tuple[str, int]:
    """A server under RLIMIT_NOFILE 64 (cap `limit`): 150 connections held, then dropped; then /healthz.
    Returns (its log, /healthz's status)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, limit], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    status = 0
    try:
        assert proc.stdout is not None
        port = int(await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline))
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(150)]
        await asyncio.sleep(1.5)  # the accept loop retries once a second: a burst of refusals
        for _, writer in held:
            writer.close()
        for _ in range(50):  # once descriptors are free again (the accept loop's retry), it answers
            try:
                async with aiohttp.ClientSession() as session, \
                        session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    status = resp.status
                    break
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    return err, status


async def test_out_of_descriptors_is_one_log_line_not_a_traceback_per_accept() -> None:
    log, status = await _flood_fds("1000")  # a cap above the limit: accept itself runs out
    assert status == 200
    lines = [line for line in log.splitlines() if "out of file descriptors" in line]
    assert len(lines) == 1, log[-2000:]
    assert "Traceback" not in log and "socket.accept() out of system resource" not in log


async def test_the_default_cap_keeps_accept_from_running_out_of_descriptors() -> None:
    """With the cap the bot computes (a third of the descriptors still free, and a backlog no longer), the
    connections over it are closed as they come, before accept runs out."""
    log, status = await _flood_fds("auto")
    assert status == 200
    assert "the cap: closed" in log
    assert "out of file descriptors" not in log and "Traceback" not in log


async def test_a_compressed_body_is_not_inflated_before_its_signature_is_checked(harness: Harness) -> None:
    """Slack sends its requests uncompressed; a gzip bomb (200 KiB that inflates to 200 MiB) is read as sent,
    one HMAC over those bytes, refused 401: aiohttp would otherwise inflate it (to its 1 MiB limit, 413)."""
    bomb = gzip.compress(b"0" * (200 * 1024 * 1024), compresslevel=9)
    headers = {**harness.user.sign(b""), "X-Slack-Signature": "v0=" + "0" * 64, "Content-Encoding": "gzip"}
    assert (await harness.user.post_raw(bomb, headers))[0] == 401
    await still_answers(harness)
