"""The HTTP front door: what a request costs before anyone knows it is Slack's, and what one request may do.

An unsigned or forged request costs reading at most MAX_BODY bytes and one HMAC: the signature is checked over
the raw bytes before anything parses them (`check`), and a request whose timestamp or signature header cannot
be right is refused before its body is read at all. Slow peers are cut off: a connection has HEADER_DEADLINE
to send a request's headers and, idle between requests, is closed after as long (aiohttp's keepalive_timeout,
which its RequestHandler arms from the moment a connection is made, and again after each response, and which
closes the connection if no whole request has arrived by then); a body has BODY_DEADLINE; at most
`connection_cap()` connections are open at once (the oldest idle one makes room for a new one); an accept
refused for want of file descriptors is one log line per burst (`quiet_accept_errors`).

A signed request is good for one use: `Seen` keeps each state-changing request's signature in the database
until its timestamp is too old for the signature check anyway, so a replay is refused on any replica.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import logging
import os
import resource
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.store import Store
from bot.store.models import SeenRequest

log = logging.getLogger(__name__)

MAX_AGE = 60 * 5  # seconds a signed request stays valid (slack_sdk's SignatureVerifier, Slack's guide)

# The largest request this app takes is a view_submission or a Home-tab click: both carry a whole view back
# (https://docs.slack.dev/reference/interaction-payloads/view-interactions-payload), and a view holds at most
# 100 blocks (https://docs.slack.dev/reference/views/modal-views) of at most 3000 characters of text each
# (section text, https://docs.slack.dev/reference/block-kit/blocks/section-block), 3000 of private_metadata,
# and, for a modal, the state of up to 100 inputs of at most 3000 characters (plain_text_input's max_length).
# That is about 600,000 characters of JSON, which form-encoding (`payload=` + percent-escapes of its quotes,
# braces and colons) brings to about 1 MB: so 1 MiB, aiohttp's own default, held on purpose. A slash command
# (its text is at most 4000 characters) and Events API deliveries are far smaller.
MAX_BODY = 1024 * 1024

# Slack waits 3 s for an answer and then gives up
# (https://docs.slack.dev/interactivity/handling-user-interaction "respond within 3 seconds"): a request whose
# headers or body take longer than that to arrive can no longer be answered in time. A second of slack for a
# congested link on top.
HEADER_DEADLINE = 4.0  # seconds from connecting (or from the last answer) until a request's headers are in
BODY_DEADLINE = 4.0  # seconds to read a body, once its headers are in

# Connections open at once: Slack sends a handful at a time; health probes and the API add a few. The cap is
# a third of the file descriptors free at start: as many again may be in flight in one accept burst (below),
# and a third stays for what the bot opens itself (vendors, Slack, the database, log attachments). Never
# above MAX_CONNECTIONS.
MAX_CONNECTIONS = 512
MIN_CONNECTIONS = 8
# asyncio accepts up to the listening socket's backlog in one go, before any connection is seen by the cap
# (selector_events `_accept_connection`): the backlog is kept within the cap, so a burst cannot take the
# descriptors the cap leaves free. 128 is aiohttp's TCPSite default.
BACKLOG = 128

# seconds: at most one line per this long about accepts refused for want of descriptors
ACCEPT_LOG_EVERY = 10.0

# Kinds of request that change state, whose replay is refused: slash commands (watch, stop, cancel, ...),
# button clicks, modal submissions. Not refused: Events API deliveries (app_home_opened only publishes the
# person's own Home tab; Slack may deliver an event again: https://docs.slack.dev/apis/events-api/#retries)
# and shortcuts (they only open a modal, with a trigger_id Slack honours once, for 3 s:
# https://docs.slack.dev/interactivity/handling-user-interaction#modal_responses).
STATE_CHANGING = ("block_actions", "view_submission")

# A seen signature is kept until its timestamp is older than MAX_AGE on every replica: replicas' clocks differ
# a little, so SKEW more.
SKEW = 60.0
PRUNE_EVERY = 60.0  # seconds between deletions of expired signatures, per process


def stamp(headers: Mapping[str, str], now: float) -> str | None:
    """The request's `X-Slack-Request-Timestamp` if it could belong to a signed request now, else None: a
    number of seconds within MAX_AGE of `now`, with a `v0=` signature of the right length beside it. Read
    before the body: a request this refuses is never read further. A timestamp that is not a number is an
    unsigned request (slack_sdk's SignatureVerifier would raise ValueError on `int()` of it, and Bolt turn
    that into a 500)."""
    timestamp = headers.get("X-Slack-Request-Timestamp") or ""
    signature = headers.get("X-Slack-Signature") or ""
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return None
    if abs(now - int(timestamp)) > MAX_AGE or not signature.startswith("v0=") or len(signature) != 67:
        return None
    return timestamp


def signed(raw: bytes, headers: Mapping[str, str], secret: str, now: float) -> bool:
    """Slack's v0 signature: HMAC-SHA256 of "v0:{timestamp}:{body}" with the signing secret
    (https://docs.slack.dev/authentication/verifying-requests-from-slack/), over the bytes as sent."""
    timestamp = stamp(headers, now)
    if timestamp is None:
        return False
    mac = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":", hashlib.sha256)
    mac.update(raw)  # not concatenated: a body of a MiB is not copied
    return hmac.compare_digest(f"v0={mac.hexdigest()}", headers.get("X-Slack-Signature") or "")


# Bodies at least this big are HMAC'd on a thread: hashlib lets go of the GIL while it hashes more than 2 KiB
# (CPython's hashlib HASHLIB_GIL_MINSIZE), so a flood of forged 1 MiB bodies (2-3 ms of hashing each) does not
# hold the event loop that answers Slack. Slack's own requests are mostly far smaller, and hashed in place.
HASH_ON_THREAD = 64 * 1024


class Unsigned(Exception):
    """The request is not Slack's (no valid signature, or too big, or too slow): answer `status`."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


async def read_signed(request: web.Request, secret: str, clock: Callable[[], float] = time.time) -> bytes:
    """The body of a request Slack signed, read within BODY_DEADLINE and MAX_BODY; raises Unsigned otherwise.
    Headers are judged first, then the body's declared length, so a forged request is mostly not read at
    all."""
    if stamp(request.headers, clock()) is None:
        raise Unsigned(401, "no valid signature headers")
    if request.content_length is not None and request.content_length >= MAX_BODY:  # as aiohttp's own check
        raise Unsigned(413, f"body larger than {MAX_BODY} bytes")
    try:
        async with asyncio.timeout(BODY_DEADLINE):
            raw = await request.read()  # the Application's client_max_size is MAX_BODY: a longer one raises
    except TimeoutError:
        raise Unsigned(408, f"body not read within {BODY_DEADLINE:g} s") from None
    except web.HTTPRequestEntityTooLarge:
        raise Unsigned(413, f"body larger than {MAX_BODY} bytes") from None
    if len(raw) < HASH_ON_THREAD:
        good = signed(raw, request.headers, secret, clock())
    else:
        good = await asyncio.get_running_loop().run_in_executor(
            _HASHING, signed, raw, request.headers, secret, clock()
        )
    if not good:
        raise Unsigned(401, "bad signature")
    return raw


_HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="front-hmac")  # the machine's cores, at most


def changes_state(body: Mapping[str, Any]) -> bool:
    """Whether a request of this shape is one whose replay is refused (STATE_CHANGING, and slash commands)."""
    return "command" in body or body.get("type") in STATE_CHANGING


# -- one use per signature, across replicas ----------------------------------------------------------------

UPSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def first_use(s: Session, signature: str, expires_at: float, now: float, prune: bool) -> bool:
    """Record `signature` as used; False if it already was (and has not expired). One INSERT ... ON CONFLICT
    DO NOTHING, so two replicas given the same request at once agree: exactly one of them inserts it."""
    if prune:
        s.execute(delete(SeenRequest).where(col(SeenRequest.expires_at) < now))
    insert = UPSERTS[s.get_bind().dialect.name]
    inserted = s.execute(insert(SeenRequest).values(signature=signature, expires_at=expires_at)
                         .on_conflict_do_nothing(index_elements=[SeenRequest.signature])
                         .returning(col(SeenRequest.signature))).first()
    if inserted is not None:  # RETURNING: a rowcount is not reliable for ON CONFLICT on every driver
        return True
    row = s.get(SeenRequest, signature)
    if row is not None and row.expires_at < now:  # an expired row not yet pruned: this is a new use
        row.expires_at = expires_at
        return True
    return False


class Seen:
    """The signatures of state-changing requests already taken, in the database (table seen_requests)."""

    def __init__(self, db: Store, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._pruned = 0.0

    async def first_use(self, headers: Mapping[str, str]) -> bool:
        """True the first time a signed request's signature is presented, False for a replay."""
        now = self.clock()
        prune = now - self._pruned >= PRUNE_EVERY
        if prune:
            self._pruned = now
        timestamp = int(headers.get("X-Slack-Request-Timestamp") or 0)
        signature = headers.get("X-Slack-Signature") or ""
        return await self.db.run(first_use, signature, timestamp + MAX_AGE + SKEW, now, prune)


# -- slow and many peers -----------------------------------------------------------------------------------

def connection_cap() -> int:
    """How many connections may be open at once: a third of the descriptors still free now, within
    [MIN_CONNECTIONS, MAX_CONNECTIONS]."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: count nothing in use; the cap is then a third of the whole limit
        in_use = 0
    free = soft - in_use if soft != resource.RLIM_INFINITY else 3 * MAX_CONNECTIONS
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, free // 3))


def backlog(cap: int) -> int:
    """The listening socket's backlog (TCPSite's `backlog`) for a connection cap of `cap`."""
    return max(1, min(BACKLOG, cap))


LINGER = 2.0  # seconds aiohttp keeps reading (and dropping) a body left unread after the answer (default 10)


def runner_options() -> dict[str, Any]:
    """web.AppRunner's keyword arguments (aiohttp's RequestHandler takes them): keepalive_timeout is both the
    header deadline and the idle keep-alive limit (armed when a connection is made and after each answer,
    it closes the connection if no whole request has arrived by then); lingering_time bounds how long a body
    refused unread (401 on its headers, 413) is still drained so the client sees its answer; header lines
    and fields stay within aiohttp's 8190 bytes and 128 headers (Slack's are a few hundred bytes); and bodies
    are not decompressed: Slack signs and sends them as they are, so a compressed body is not one of its
    requests, and inflating one before its signature is checked would be work done for anyone."""
    return {"keepalive_timeout": HEADER_DEADLINE, "lingering_time": LINGER, "max_line_size": 8190,
            "max_field_size": 8190, "max_headers": 128, "auto_decompress": False}


class ConnectionCap:
    """At most `limit` connections open on an aiohttp server: a connection over it closes the oldest idle one
    (waiting for a request, none under way), or, with none idle, is itself closed at once. aiohttp has no such
    option: this wraps its Server's `connection_made`, which each new connection's RequestHandler calls."""

    def __init__(self, server: web.Server, limit: int) -> None:
        self.server = server
        self.limit = limit
        self.closed = 0  # connections closed to keep within the cap
        self._made = server.connection_made
        self._last_said = 0.0
        self._unsaid = 0
        server.connection_made = self._connection_made  # type: ignore[method-assign]

    def _connection_made(self, handler: Any, transport: asyncio.Transport) -> None:
        self._made(handler, transport)
        connections = self.server._connections  # aiohttp's own table, insertion-ordered: oldest first
        if len(connections) <= self.limit:
            return
        idle = next((h for h in connections if h is not handler and _idle(h)), None)
        (idle or handler).force_close()
        connections.pop(idle or handler, None)
        self.closed += 1
        self._say()

    def _say(self) -> None:
        now = time.monotonic()
        self._unsaid += 1
        if now - self._last_said >= ACCEPT_LOG_EVERY:
            log.warning("HTTP: %d connections open, the cap: closed %d (idle ones first) to make room",
                        self.limit, self._unsaid)
            self._last_said, self._unsaid = now, 0


def _idle(handler: Any) -> bool:
    """A RequestHandler waiting for a request, with none under way and none queued (aiohttp's own fields)."""
    return not getattr(handler, "_request_in_progress", True) and not getattr(handler, "_messages", True)


OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class AcceptErrors:
    """The event loop's exception handler, for one case: asyncio's accept loop, out of descriptors, reports
    each refused accept with a traceback ("socket.accept() out of system resource", selector_events
    `_accept_connection`) and retries a second later. That becomes one line per ACCEPT_LOG_EVERY, with a
    count; everything else goes to the handler that was there before (or the loop's default)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.before = loop.get_exception_handler()
        self.refused = 0
        self._unsaid = 0
        self._last_said = 0.0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if (isinstance(exc, OSError) and exc.errno in OUT_OF_DESCRIPTORS
                and "accept" in str(context.get("message"))):
            self.refused += 1
            self._unsaid += 1
            now = time.monotonic()
            if now - self._last_said >= ACCEPT_LOG_EVERY:
                log.warning("HTTP: cannot accept connections: out of file descriptors (%s); %d refused since "
                            "the last such line, retrying every second",
                            errno.errorcode.get(exc.errno, exc.errno), self._unsaid)
                self._last_said, self._unsaid = now, 0
            return
        if self.before is not None:
            self.before(loop, context)
        else:
            loop.default_exception_handler(context)


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> AcceptErrors:
    """Install AcceptErrors on `loop` (once: a second call returns the one installed)."""
    current = loop.get_exception_handler()
    if isinstance(current, AcceptErrors):
        return current
    handler = AcceptErrors(loop)
    loop.set_exception_handler(handler)
    return handler
