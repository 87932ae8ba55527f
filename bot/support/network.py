"""What network trouble comes to, in the words an operator acts on: `cause(exc)`.

The bot meets the network through three stacks (httpx with its own transport, httpx over aiohttp for the
vendors, aiohttp for Slack), and each wraps the operating system's error its own way; httpx-aiohttp even
turns a refused connection into `httpx.ConnectTimeout`. So the cause is read from the whole chain of an
exception (`__cause__`, `__context__`, aiohttp's `os_error`), the most specific answer first: a name that
does not resolve, a refused connection, a reset, TLS, then a timeout.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import aiohttp
import httpx

NAME_NOT_RESOLVED = "name not resolved"
CONNECTION_REFUSED = "connection refused"
CONNECTION_RESET = "connection closed by the other side"
TLS_FAILED = "TLS failed"
TIMED_OUT = "timed out"

_UNREACHABLE = {errno.EHOSTUNREACH: "host unreachable", errno.ENETUNREACH: "network unreachable"}


def chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it was raised from or while handling, each once."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        nested = getattr(e, "os_error", None)  # aiohttp's ClientConnectorError keeps the OS error here
        todo.extend(n for n in (e.__cause__, e.__context__, nested) if isinstance(n, BaseException))


def cause(exc: BaseException) -> str:
    """"name not resolved", "connection refused", "connection closed by the other side", "TLS failed: …",
    "host unreachable", "network unreachable", "timed out"; else the exception's class name."""
    every = list(chain(exc))
    for e in every:
        if isinstance(e, socket.gaierror | aiohttp.ClientConnectorDNSError):
            return NAME_NOT_RESOLVED
    for e in every:
        if isinstance(e, ConnectionRefusedError):
            return CONNECTION_REFUSED
        if isinstance(e, ConnectionResetError | aiohttp.ServerDisconnectedError | httpx.RemoteProtocolError):
            return CONNECTION_RESET
        if isinstance(e, ssl.SSLError):
            return f"{TLS_FAILED}: {getattr(e, 'reason', None) or type(e).__name__}"
        if isinstance(e, OSError) and e.errno in _UNREACHABLE:
            return _UNREACHABLE[e.errno]
    for e in every:
        if isinstance(e, TimeoutError | httpx.TimeoutException):
            return TIMED_OUT
    return type(exc).__name__


def is_network(exc: BaseException) -> bool:
    """Whether `exc` is trouble on the way (what a retry may cure), not a bug of ours."""
    return isinstance(exc, OSError | TimeoutError | aiohttp.ClientError | httpx.TransportError)


def loopback(url: str) -> bool:
    """Whether `url`'s host is this machine: localhost, 127.0.0.0/8 or ::1."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def in_clear(url: str) -> bool:
    """Whether what is sent to `url` crosses a network unencrypted: plain http:// to a host that is not this
    machine."""
    return url.lower().startswith("http://") and not loopback(url)
