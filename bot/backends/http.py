"""The HTTP plumbing of every adapter: its one client, reading a vendor body with a cap, and what an answer
says.

Every path that reads a vendor body reads it with `read_body`, at most MAX_BODY_BYTES: a backend's requests,
the token and login endpoints of the auth flows, EPM's download error body. Network trouble becomes
`Unavailable` (`unreachable`, with its cause); `error_words` are the vendor's own words in an error body,
`retry_after_seconds` its Retry-After.

Every request has one total deadline (`deadline`, the backend's `timeout` setting): connecting, the headers
and the whole body. httpx has no such thing: its `Timeout` bounds each operation on its own (connect, each
read, each write, waiting for the pool; www.python-httpx.org/advanced/timeouts/), and httpx-aiohttp hands
those on to aiohttp's `ClientTimeout` as per-socket-read limits, so a vendor that sends one byte every few
seconds never trips any of them and a request could last as long as the vendor likes. httpx's own advice for
an overall limit is to wrap the call in the async library's timeout; `asyncio.timeout` around sending and
reading does it.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

from bot.backends.slots import pool_size
from bot.backends.values import as_text, lenient_json
from bot.domain.errors import BadResponse, TooSlow, Unavailable
from bot.support.config import BackendConfig
from bot.support.network import cause

# The most of a vendor answer we ever read; anything larger is a broken or hostile backend.
MAX_BODY_BYTES = 2 * 1024 * 1024
# The deadline of a check a user waits for (watch, status, the modal, the API's POST;
# bot/operations/watching.py), or the backend's `timeout` when that is shorter: a vendor answers a status call
# in well under a second when it is well, and a person (or a pipeline's HTTP call) should hear within seconds
# that it is not.
USER_CHECK_SECONDS = 5.0


def make_http_client(
    config: BackendConfig, timed: Callable[[float], None] | None = None
) -> httpx.AsyncClient:
    """The one HTTP client a backend uses for everything: keep-alive pool sized to its concurrency cap.

    HTTP/1.1 keep-alive over aiohttp costs about a third of the CPU per request of httpx's own transport
    (measured in bench/); `http2: true` takes httpx's transport, which speaks HTTP/2 where offered.
    `timed` is called with the seconds each request took, from sending it to its answer's headers: httpx's
    event hooks run for every request the client sends, the auth flows' sign-ins and retries included.
    """
    # room for the backend's slots and for the stalled requests that handed theirs on (bot/backends/slots.py)
    limits = httpx.Limits(max_connections=pool_size(config.max_concurrency),
                          max_keepalive_connections=config.max_concurrency)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 10.0)),
        limits=limits,
        follow_redirects=False,
        transport=None if config.http2 else AiohttpTransport(limits=limits),
        http2=config.http2,
        headers={"User-Agent": "jobstatus-bot", "Accept": "application/json"},
        event_hooks=_timing_hooks(timed) if timed is not None else None,
    )


# a request extension the transports do not read (they read only their own keys)
_SENT_AT = "jobstatus.sent_at"


def _timing_hooks(timed: Callable[[float], None]) -> dict[str, list[Callable[[Any], Any]]]:
    async def sent(request: httpx.Request) -> None:
        request.extensions[_SENT_AT] = time.perf_counter()

    async def answered(response: httpx.Response) -> None:
        sent_at = response.request.extensions.get(_SENT_AT)
        if sent_at is not None:
            timed(time.perf_counter() - sent_at)

    return {"request": [sent], "response": [answered]}


async def read_body(response: httpx.Response, name: str, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body of a streamed `response`, at most `limit` bytes (a larger one is a BadResponse naming `name`).

    The body is kept on the response, so `response.content` has it and httpx never reads it again (uncapped).
    """
    try:
        return response.content  # read already (an auth flow read it, or it was never streamed)
    except httpx.ResponseNotRead:
        pass
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise BadResponse(f"{name} sent an answer larger than {limit // 1024} KiB")
        chunks.append(chunk)
    response._content = b"".join(chunks)  # noqa: SLF001 - what httpx's own aread() keeps; read with a cap
    return response._content


@asynccontextmanager
async def deadline(name: str, seconds: float) -> AsyncIterator[None]:
    """Everything inside (connect, headers, the whole body, an auth flow's sign-in) within `seconds` in all,
    else `TooSlow` naming `name`: what is inside is cancelled, so the connection is closed and whatever it
    held (a backend's slot, bot/backends/slots.py) is given back at the deadline at the latest."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise too_slow(name, seconds) from None


def too_slow(name: str, seconds: float) -> TooSlow:
    """What a request past its `deadline` raises (also bot/backends/base.py `Exchange`, the same deadline)."""
    return TooSlow(f"{name} answers too slowly: no complete answer within {seconds:g} s")


@contextmanager
def unreachable(name: str) -> Iterator[None]:
    """Network trouble inside (httpx's errors) as the outage it is: `Unavailable` naming `name` and the cause
    ("connection refused", "timed out", "name not resolved": bot/support/network.py)."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise Unavailable(f"{name} is unreachable: {cause(exc)}") from exc


def retry_after_seconds(value: str | None, *, default: float | None = None) -> float | None:
    """Parse a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


# Keys of the error envelopes vendors put in a body (any HTTP status), most specific first:
# - Vault: `errors[{type, message}]` (a single object in cancel answers) beside `responseStatus`
#   (limited.veevavault.dev/medical/vault-api/api-reference/26.1/errors/;
#   VAPIL's VaultRequest reads the body whatever the status);
# - Oracle REST (Fusion job scheduler, ESS): `title`, `detail`, `o:errorCode` / `errorCode` (ESS's
#   SimpleExceptionDetail, docs.oracle.com/en/cloud/saas/applications-common/25c/farca/
#   op-ess-rest-scheduler-v1-requests-requestid-hold-post.html);
# - EPM: `details` (interop, Data Integration), `detail` / `message` (Planning);
# - OAuth 2 token endpoints: `error`, `error_description` (RFC 6749 section 5.2); Immuta (hapi): `message`,
#   `error`.
ERROR_TEXT_KEYS = ("detail", "details", "message", "error_description", "title", "responseMessage", "error")
ERROR_CODE_KEYS = ("o:errorCode", "errorCode")
ERROR_WORDS_MAX = 300


def error_words(content: bytes, hide: Iterable[str] = ()) -> str | None:
    """The vendor's own words in an error body (JSON of any vendor's envelope), cut; None when there are none.

    Never the raw body: a body that is not such JSON (an HTML page, a stack trace) says nothing here. Any of
    `hide` (the credentials the request carried) the vendor repeats is blanked out. The caller escapes the
    words before they reach Slack.
    """
    if not content:
        return None
    try:
        body = lenient_json(content[:65536])
    except ValueError:
        return None
    words = _envelope_words(body)
    if not words:
        return None
    for secret in sorted((h for h in hide if h), key=len, reverse=True):
        words = words.replace(secret, "[hidden]")
    words = " ".join(words.split())
    return words if len(words) <= ERROR_WORDS_MAX else words[: ERROR_WORDS_MAX - 1] + "…"


def _envelope_words(body: Any, depth: int = 0) -> str | None:
    if not isinstance(body, dict) or depth > 1:
        return None
    errors = body.get("errors")
    if isinstance(errors, dict):
        errors = [errors]
    if isinstance(errors, list):
        said = []
        for err in errors[:3]:
            if isinstance(err, dict):
                kind, text = _words(err.get("type")), _words(err.get("message"))
                said.append(f"{kind}: {text}" if kind and text else kind or text or "")
        if any(said):
            return "; ".join(s for s in said if s)
    nested = body.get("error")
    if isinstance(nested, dict):
        return _envelope_words(nested, depth + 1)
    text = next((t for k in ERROR_TEXT_KEYS if (t := _words(body.get(k)))), None)
    code = next((c for k in ERROR_CODE_KEYS if (c := _words(body.get(k)))), None)
    if code is None and _words(body.get("error_description")):
        code = _words(body.get("error"))  # OAuth: `error` is the code, `error_description` the words
    if text and code and code not in text:
        return f"{code}: {text}"
    return text or code


def _words(value: Any) -> str | None:
    return as_text(value) if isinstance(value, str) else None  # a number or an object is no error text
