"""The HTTP API for pipelines: start, read and stop a watch on the bot's own port, without Slack's UI.

    POST   /api/v1/watches        {"backend", "job_id", "channel", "user"?}  → 201 started, 200 already
    watched GET    /api/v1/watches/{id}   the watch as it is now
    DELETE /api/v1/watches/{id}   stop watching; the thread says which client stopped it
    GET    /api/v1/openapi.json   this API's OpenAPI 3 description (no token: it holds no secret), built
                                  by `openapi()` from the same tables the routes answer from

Each request carries `Authorization: Bearer <token>`, one of the config's `api.tokens`
(bot/support/config.py); a client may use the backends and channels its token lists, and name as `user`
(mentioned, never given rights: the watch is the token's) only the users it lists. What lies beyond a token's
scope is never named to it: a watch there is 404 like a missing one (Client says how each refusal keeps to
this). Repeated failed token checks from one address are answered 429 for a while (Throttle). A refusal is
`{"error": code, "message": words}`, the words being the slash command's (bot/operations/watching.py: the API
creates and stops watches through the same operations as `/jobstatus watch` and the *Stop watching* button).

A new watch's answer waits until its parent message is in Slack, so the answer carries `thread_ts` and a
`permalink`: up to PARENT_WAIT seconds, reading the store, since with replicas the replica that holds the
channel posts it (bot/engine/replicas.py). Past that (Slack asks the bot to wait, or refuses its token) the
answer still says 201 with `thread_ts` and `permalink` null: the watch exists and is polled, and its thread
appears once Slack takes it; GET shows it then.

Tokens are compared in constant time (a SHA-256 of each, so their lengths do not show either) against every
configured token, and never logged: no log line of this module names a request's headers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot import store
from bot.domain import actors
from bot.domain.jobs import EndedReason
from bot.domain.states import Phase
from bot.metrics import Metrics
from bot.operations.refusals import UserError
from bot.operations.watching import Watching
from bot.rendering.messages import esc
from bot.support.config import ApiConfig

log = logging.getLogger(__name__)

WATCHES = "/api/v1/watches"
WATCH = "/api/v1/watches/{id}"
OPENAPI = "/api/v1/openapi.json"
PARENT_WAIT = 10.0  # seconds a POST waits for the new watch's parent message to reach Slack
PARENT_POLL = 0.2  # seconds between two reads of the store meanwhile
MAX_BODY = 4096  # bytes; a watch request is a few dozen

# What each refusal's code answers (codes are UserError.code, bot/operations/watching.py, and this module's
# own).
STATUS = {
    "malformed": 400, "invalid_job_id": 400,
    "unauthorized": 401,
    "token_not_allowed": 403, "channel_not_allowed": 403, "cannot_post": 403, "user_not_allowed": 403,
    "unknown_backend": 404, "job_not_found": 404, "not_found": 404,
    "quota_active": 429, "quota_per_minute": 429, "too_many_failures": 429,
    "backend_unavailable": 502, "backend_error": 502, "slack_refused": 502,
    "method_not_allowed": 405, "internal": 500,
}
FIELDS = {"backend", "job_id", "channel", "user"}

# When each refusal comes, in the operator's words: the OpenAPI description (openapi()) and so the docs' API
# page are rendered from this, and a test holds its codes to STATUS.
WHEN = {
    "malformed": "the body is not a JSON object with `backend`, `job_id`, `channel` "
                 "(a channel id, `C…`/`G…`) and optionally `user` (`U…`), or names another field",
    "invalid_job_id": "not a job id of that vendor",
    "unauthorized": "no `Authorization: Bearer <token>`, or not a configured token "
                    "(nothing is read or changed)",
    "token_not_allowed": "the token's `backends` or `channels` leave this one out (a backend beyond its "
                         "`backends` is refused alike whether it exists or not)",
    "channel_not_allowed": "the backend's own `channels` leave the channel out "
                           "(a token with `channels` is shown only those of its own)",
    "user_not_allowed": "`user` is not in the token's `users`",
    "cannot_post": "the bot cannot post in the channel "
                   "(not invited to a private one, archived, no such channel)",
    "unknown_backend": "no such backend",
    "job_not_found": "the vendor has no such job",
    "not_found": "no watch with that id; a watch beyond the token's `backends` or `channels` answers "
                 "the same, in the same words, so ids cannot be probed",
    "quota_active": "a quota of active watches is met (user, token or channel): "
                    "the message says which and what to do",
    "quota_per_minute": "a quota of watches started a minute is met; `Retry-After` says when to try again",
    "too_many_failures": "this address sent more than 10 requests without a valid token within a minute; "
                         "`Retry-After` says when to try again (2 s, doubling up to 5 minutes)",
    "backend_unavailable": "the vendor cannot be reached or answers too slowly; nothing was set up",
    "backend_error": "the vendor refuses the bot or answers garbage",
    "slack_refused": "Slack refuses the job's message",
    "method_not_allowed": "another method than `POST /api/v1/watches`, "
                          "`GET` or `DELETE /api/v1/watches/{id}`",
    "internal": "a bug of ours; nothing was changed",
}
# The refusals each operation may answer, besides those of every request (EVERY_REQUEST).
EVERY_REQUEST = ("unauthorized", "too_many_failures", "method_not_allowed", "internal")
OPERATIONS: dict[tuple[str, str], tuple[str, str, tuple[str, ...]]] = {
    (WATCHES, "post"): (
        "startWatch",
        "Start watching a job, as `/jobstatus watch` does; answers once its message is in the channel",
        ("malformed", "invalid_job_id", "token_not_allowed", "channel_not_allowed", "user_not_allowed",
         "cannot_post", "unknown_backend", "job_not_found", "quota_active", "quota_per_minute",
         "backend_unavailable", "backend_error", "slack_refused")),
    (WATCH, "get"): ("getWatch", "The watch as it is now", ("not_found",)),
    (WATCH, "delete"): ("stopWatch", "Stop watching, as *Stop watching* does (the thread names the token)",
                        ("not_found",)),
}
_CHANNEL = re.compile(r"[CG][A-Z0-9]{2,30}")  # a public or private channel's id
_USER = re.compile(r"[UW][A-Z0-9]{2,30}")


class ApiError(Exception):
    def __init__(self, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.retry_after = code, message, retry_after

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)


@dataclass(frozen=True)
class Client:
    """A configured API caller: its name (what threads say), what it may use (None: anything) and the Slack
    users it may name as a watch's `user`.

    A refusal never tells a client what lies beyond its scope: it names only what the client named itself
    and what its own settings allow. A backend outside its `backends` is refused in the same words whether
    it exists or not; a watch outside its scope is "no such watch" (Api._watch)."""

    name: str
    backends: frozenset[str] | None
    channels: frozenset[str] | None
    users: frozenset[str] = frozenset()

    def may_use(self, backend: str, channel: str) -> str | None:
        """None when this client may use `backend` in `channel`; else the words of the refusal."""
        n = esc(self.name)
        if self.backends is not None and backend not in self.backends:
            allowed = ", ".join(f"`{esc(b)}`" for b in sorted(self.backends)) or "none"
            return (f"API token `{n}` may not use backend `{esc(backend[:64])}` "
                    f"(its `backends` setting allows: {allowed}).")
        if self.channels is not None and channel not in self.channels:
            allowed = ", ".join(f"<#{esc(c)}>" for c in sorted(self.channels)) or "none"
            return (f"API token `{n}` may not watch in <#{esc(channel)}> "
                    f"(its `channels` setting allows: {allowed}).")
        return None

    def may_name(self, user: str) -> str | None:
        """None when this client may name `user` as the Slack user its watch mentions; else the refusal."""
        if user in self.users:
            return None
        allowed = ", ".join(f"`{esc(u)}`" for u in sorted(self.users))
        listed = f"its `users` setting lists: {allowed}" if allowed else "its `users` setting lists nobody"
        return (f"API token `{esc(self.name)}` may not name `{esc(user)}` as the watch's `user` "
                f"({listed}). Leave `user` out (the thread then names the token), "
                "or ask the bot's operator to add the user.")

    def backend_name(self, name: str) -> str:
        """The backend a scoped client names, among its own: exactly, or in other letter case when only one
        of them matches so. Any other name is refused alike, configured or not (ApiError)."""
        assert self.backends is not None
        if name in self.backends:
            return name
        same = [b for b in self.backends if b.casefold() == name.casefold()]
        if len(same) == 1:
            return same[0]
        raise ApiError("token_not_allowed", self.may_use(name, "") or "")


# Repeated 401s from one client address (Throttle). A pipeline with a wrong or rotated token fails a few times
# and someone fixes it; guessing needs thousands of tries. So the first FAILURES_FREE in FAILURE_WINDOW answer
# 401 at once (a misconfigured client sees its real error); past that the address is answered 429 with
# Retry-After, before its token is even looked at (so a guess cannot succeed meanwhile), for FIRST_PAUSE
# seconds doubling with every further failure up to MAX_PAUSE: at most one guess per 5 minutes after a few
# minutes of trying. Nothing waits: a refused request is answered at once, so slowing holds no connection.
FAILURES_FREE = 10
FAILURE_WINDOW = 60.0  # seconds
FIRST_PAUSE = 2.0  # seconds
MAX_PAUSE = 300.0  # seconds
MAX_ADDRESSES = 10_000  # addresses remembered at once (the oldest forgotten first): bounded memory


@dataclass
class _Failures:
    times: list[float]  # failed token checks within the window, oldest first
    pause_until: float = 0.0
    strikes: int = 0  # failures past the free ones: each doubles the pause
    burst_since: float | None = None  # the burst being logged: when it began (None: no burst)
    refused: int = 0  # requests answered 429 during the burst
    failed: int = 0  # token checks failed during the burst


class Throttle:
    """Failed token checks per client address (`request.remote`: behind a reverse proxy, the proxy's
    address, so every client behind it shares one budget). A burst is logged once when it starts and once
    when the address has been quiet for a window, with its counts; never one line per request."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._by_address: dict[str, _Failures] = {}
        self._settled = 0.0
        self._timer: asyncio.TimerHandle | None = None  # settles while a burst runs, requests or not

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try a token again, or None when it may now."""
        now = self.clock()
        self._settle(now)
        f = self._by_address.get(address)
        if f is None or f.pause_until <= now:
            return None
        f.refused += 1
        return max(1, math.ceil(f.pause_until - now))

    def failed(self, address: str) -> None:
        """A request from `address` carried no valid token."""
        now = self.clock()
        f = self._by_address.pop(address, None) or _Failures([])
        self._by_address[address] = f  # the newest last: the oldest are forgotten first
        if len(self._by_address) > MAX_ADDRESSES:
            del self._by_address[next(iter(self._by_address))]
        f.times = [t for t in f.times if t > now - FAILURE_WINDOW][-FAILURES_FREE:] + [now]
        if f.burst_since is not None:
            f.failed += 1
        if len(f.times) <= FAILURES_FREE and f.strikes == 0:  # once paused, until quiet, every failure counts
            return
        f.strikes += 1
        f.pause_until = now + min(MAX_PAUSE, FIRST_PAUSE * 2 ** min(f.strikes - 1, 30))
        if f.burst_since is None:
            f.burst_since, f.failed = now, len(f.times)
            self._tick_later()
            log.warning("API: %d requests with no valid token from %s within %ds: "
                        "its requests are answered 429 for a while (Retry-After, up to %ds)",
                        len(f.times), address, FAILURE_WINDOW, MAX_PAUSE)

    def _tick_later(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FAILURE_WINDOW / 4, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._settle(self.clock(), force=True)
        if any(f.burst_since is not None for f in self._by_address.values()):
            self._tick_later()

    def _settle(self, now: float, force: bool = False) -> None:
        """Forget the addresses quiet for a window past their pause, logging the end of their bursts: at most
        once a second from requests (a walk over up to MAX_ADDRESSES), and from a timer while bursts run."""
        if not force and now - self._settled < 1.0:
            return
        self._settled = now
        for address, f in list(self._by_address.items()):
            last = f.times[-1] if f.times else 0.0
            if max(f.pause_until, last) + FAILURE_WINDOW > now:
                continue
            del self._by_address[address]
            if f.burst_since is not None:
                log.warning("API: the invalid tokens from %s stopped: %d failed and %d answered 429 over %ds",
                            address, f.failed, f.refused, round(last - f.burst_since))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class Tokens:
    """The configured tokens, kept only as digests."""

    def __init__(self, config: ApiConfig) -> None:
        self._clients = [
            (_digest(t.token), Client(name, frozenset(t.backends) if t.backends is not None else None,
                                      frozenset(t.channels) if t.channels is not None else None,
                                      frozenset(t.users)))
            for name, t in config.tokens.items()
        ]

    def caller(self, authorization: str | None) -> Client | None:
        """The client whose token an `Authorization: Bearer …` header carries, else None. Every configured
        token is compared, each in constant time, whichever matches."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        given = _digest(token.strip())
        found = None
        for digest, caller in self._clients:
            if hmac.compare_digest(digest, given):
                found = caller
        return found


@dataclass(frozen=True)
class WatchRequest:
    backend: str
    job_id: str
    channel: str
    user: str | None


def parse_watch(raw: bytes) -> WatchRequest:
    """A POST's body, checked: ApiError("malformed") saying what is wrong with it."""
    def bad(what: str) -> ApiError:
        return ApiError("malformed", f"{what} Send JSON such as "
                        '{"backend": "fusion-prod", "job_id": "44046", "channel": "C0123ABCD"}.')

    if len(raw) > MAX_BODY:
        raise bad(f"The body is too long (at most {MAX_BODY} bytes).")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise bad("The body is not JSON.") from None
    if not isinstance(body, dict):
        raise bad("The body is not a JSON object.")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise bad(f"Unknown field {esc(unknown[0][:40])!r} (the fields are backend, job_id, channel, user).")
    values: dict[str, str] = {}
    for name in ("backend", "job_id", "channel", "user"):
        v = body.get(name)
        if v is None and name == "user":
            continue
        if isinstance(v, int) and not isinstance(v, bool) and name == "job_id":
            v = str(v)  # `jq` hands out numbers: 44046 is the job 44046
        if not isinstance(v, str) or not v.strip():
            raise bad(f"Field {name!r} is missing or not a string.")
        values[name] = v.strip()
    if len(values["backend"]) > 64:
        raise bad("Field 'backend' is too long.")
    if not _CHANNEL.fullmatch(values["channel"]):
        raise bad(f"Field 'channel' is not a channel id such as C0123ABCD: {esc(values['channel'][:40])!r}.")
    if "user" in values and not _USER.fullmatch(values["user"]):
        raise bad(f"Field 'user' is not a Slack user id such as U0123ABCD: {esc(values['user'][:40])!r}.")
    return WatchRequest(values["backend"], values["job_id"], values["channel"], values.get("user"))


async def _body_of(request: web.Request) -> bytes:
    """The request's body up to one byte past MAX_BODY (enough for parse_watch to refuse it), however it is
    sent (with a length or chunked): a larger body is never read whole."""
    raw = b""
    while len(raw) <= MAX_BODY:
        chunk = await request.content.read(MAX_BODY + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    return raw


Handler = Callable[[web.Request, Client], Awaitable[web.Response]]


class Api:
    """The API's routes on the bot's aiohttp application, on top of Watching's operations."""

    def __init__(self, config: ApiConfig, watching: Watching, metrics: Metrics,
                 parent_wait: float = PARENT_WAIT) -> None:
        self.tokens = Tokens(config)
        self.throttle = Throttle(time.monotonic)
        self.watching = watching
        self.metrics = metrics
        self.parent_wait = parent_wait

    def mount(self, app: web.Application) -> None:
        # the description, without a token: a pipeline's author reads it before having one, and it holds no
        # secret
        description = openapi()

        async def describe(_request: web.Request) -> web.Response:
            response = web.json_response(description)
            self.metrics.api_request("GET", OPENAPI, response.status)
            return response

        app.router.add_get(OPENAPI, describe)
        app.router.add_post(WATCHES, self._serving(WATCHES, self.create))
        app.router.add_get(WATCH, self._serving(WATCH, self.get))
        app.router.add_delete(WATCH, self._serving(WATCH, self.delete))
        # any other method: a JSON refusal like every other answer of the API, not aiohttp's plain-text 405
        app.router.add_route("*", WATCHES, self._serving(WATCHES, self._refuse_method("POST")))
        app.router.add_route("*", WATCH, self._serving(WATCH, self._refuse_method("GET, DELETE")))

    def _serving(self, route: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        """`handler` behind the token check, its refusals as JSON, each answer counted by route and status."""
        async def serve(request: web.Request) -> web.Response:
            address = request.remote or "unknown"
            try:
                wait = self.throttle.retry_after(address)
                if wait is not None:
                    raise ApiError("too_many_failures",
                                   "Too many requests from your address carried no valid API token. "
                                   f"Try again in {wait} s, with a valid `Authorization: Bearer <token>`.",
                                   wait)
                caller = self.tokens.caller(request.headers.get("Authorization"))
                if caller is None:
                    self.throttle.failed(address)
                    raise ApiError("unauthorized", "Send a valid API token: `Authorization: Bearer <token>`.")
                response = await handler(request, caller)
            except ApiError as exc:
                response = web.json_response({"error": exc.code, "message": exc.message}, status=exc.status)
                if exc.status == 401:
                    response.headers["WWW-Authenticate"] = 'Bearer realm="jobstatus"'
                if exc.retry_after is not None:
                    response.headers["Retry-After"] = str(exc.retry_after)
            except Exception:
                log.exception("API %s %s failed", request.method, route)
                response = web.json_response({"error": "internal",
                                              "message": "Something went wrong on my side; "
                                                         "nothing was changed. Please try again."},
                                             status=500)
            self.metrics.api_request(request.method, route, response.status)
            return response

        return serve

    # -- the routes ---------------------------------------------------------------------------------------
    async def create(self, request: web.Request, caller: Client) -> web.Response:
        req = parse_watch(await _body_of(request))
        w = self.watching
        try:
            # a scoped token learns nothing of the backends beyond its own: not even which exist
            backend = w.backend(req.backend if caller.backends is None else caller.backend_name(req.backend))
            refusal = caller.may_use(backend.name, req.channel)
            if refusal is not None:
                raise UserError(refusal, "token_not_allowed")
            self._backend_channels(caller, backend.name, req.channel)
            if req.user is not None and (refusal := caller.may_name(req.user)) is not None:
                raise UserError(refusal, "user_not_allowed")
            job_id = w.job_id(backend, req.job_id)
            watched = await w.watch(backend, job_id, req.channel, actors.api_actor(caller.name),
                                    mention=req.user)
        except UserError as exc:
            raise ApiError(exc.code, str(exc), exc.retry_after) from None
        log.info("API client %s: watch %d of %s job %s in %s (%s)", caller.name, watched.watch_id,
                 backend.name, job_id, req.channel, "new" if watched.new else "already watched")
        body = await self._posted(watched.watch_id)
        return web.json_response(body, status=201 if watched.new else 200)

    async def get(self, request: web.Request, caller: Client) -> web.Response:
        watch, _job = await self._watch(request, caller)
        return web.json_response(await self._body(watch.pk))

    async def delete(self, request: web.Request, caller: Client) -> web.Response:
        watch, job = await self._watch(request, caller)
        await self.watching.stop(watch.pk, actors.api_actor(caller.name))
        log.info("API client %s: stopped watch %d of %s job %s", caller.name, watch.pk, job.backend,
                 job.job_id)
        return web.json_response(await self._body(watch.pk))

    # -- helpers ------------------------------------------------------------------------------------------
    @staticmethod
    def _refuse_method(allowed: str) -> Handler:
        async def refuse(request: web.Request, _caller: Client) -> web.Response:
            raise ApiError("method_not_allowed", f"{request.method} is not taken here; use {allowed}.")
        return refuse

    def _backend_channels(self, caller: Client, backend: str, channel: str) -> None:
        """The backend's own `channels` setting (UserError `channel_not_allowed`), its refusal naming only the
        channels this client may use itself: the others may be private channels it has no business knowing."""
        allowed = self.watching.backends[backend].config.channels
        if allowed is None or channel in allowed:
            return
        if caller.channels is None:
            self.watching.backend(backend, channel)  # the slash command's own words, every channel named
        shown = [c for c in allowed if caller.channels is None or c in caller.channels]
        raise UserError(f"Backend `{esc(backend)}` may not be watched in this channel (of the channels token "
                        f"`{esc(caller.name)}` may use, its `channels` setting allows: "
                        + (", ".join(f"<#{esc(c)}>" for c in shown) or "none") + ").", "channel_not_allowed")

    async def _watch(self, request: web.Request, caller: Client) -> tuple[store.Watch, store.Job]:
        """The watch the path names, if this client may see it. One outside its scope answers exactly as a
        missing one (404, the same words): ids cannot be probed for other backends' or channels' watches."""
        text = request.match_info["id"]
        pair = None
        if text.isascii() and text.isdigit() and len(text) <= 18:
            pair = await self.watching.db.run(store.watch_and_job, int(text))
        if pair is None or caller.may_use(pair[1].backend, pair[0].channel) is not None:
            raise ApiError("not_found", f"There is no watch `{esc(text[:40])}`.")
        return pair

    async def _posted(self, watch_id: int) -> dict[str, Any]:
        """The watch's body once its parent is in Slack, or as it is after `parent_wait` seconds, or at once
        when no parent will come soon (Slack refuses the bot's token, or ended the watch)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.parent_wait
        while True:
            pair = await self.watching.db.run(store.watch_and_job, watch_id)
            if pair is None:
                raise ApiError("internal",
                               "The watch was removed meanwhile; nothing is watched. Please try again.")
            watch, _job = pair
            ended = not watch.active and watch.ended_reason != EndedReason.FINISHED
            if (watch.parent_ts is not None or ended or self.watching.notifier.halted is not None
                    or loop.time() >= deadline):
                return await self._body(watch_id, pair)
            await asyncio.sleep(PARENT_POLL)

    async def _body(self, watch_id: int, pair: tuple[store.Watch, store.Job] | None = None) -> dict[str, Any]:
        pair = pair or await self.watching.db.run(store.watch_and_job, watch_id)
        if pair is None:
            raise ApiError("not_found", f"There is no watch `{watch_id}`.")
        watch, job = pair
        return {
            "id": watch.pk,
            "backend": job.backend,
            "job_id": job.job_id,
            "channel": watch.channel,
            "state": job.phase.value,
            "vendor_status": job.vendor_status,
            "final": job.phase.terminal,
            "active": watch.active,
            "thread_ts": watch.parent_ts,
            "permalink": await self.watching.permalink(watch.channel, watch.parent_ts),
        }


def openapi() -> dict[str, Any]:
    """This API's OpenAPI 3.1 description, built from the tables the routes answer from (STATUS, WHEN,
    OPERATIONS, FIELDS), so it cannot tell another story than the code; `GET /api/v1/openapi.json` serves it
    and the docs render it (docs/hooks.py)."""
    error_ref = {"$ref": "#/components/schemas/Error"}
    watch_ref = {"$ref": "#/components/schemas/Watch"}
    paths: dict[str, dict[str, Any]] = {}
    for (path, method), (operation_id, summary, codes) in OPERATIONS.items():
        responses: dict[str, Any] = {}
        if method == "post":
            responses["201"] = {"description": "this request started the watch "
                                               "(or resumed the channel's stopped one)",
                                "content": {"application/json": {"schema": watch_ref}}}
            responses["200"] = {"description": "the channel already watches the job, "
                                               "or followed it to its end: the same watch, the same thread",
                                "content": {"application/json": {"schema": watch_ref}}}
        else:
            responses["200"] = {"description": ("stopped (or already ended)" if method == "delete"
                                                else "the watch"),
                                "content": {"application/json": {"schema": watch_ref}}}
        by_status: dict[int, list[str]] = {}
        for code in (*codes, *EVERY_REQUEST):
            by_status.setdefault(STATUS[code], []).append(code)
        for status, named in sorted(by_status.items()):
            responses[str(status)] = {"description": "; ".join(f"`{c}`: {WHEN[c]}" for c in named),
                                      "content": {"application/json": {"schema": error_ref}},
                                      "x-error-codes": named}
        operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "responses": responses,
                                     "security": [{"bearer": []}]}
        if path == WATCH:
            operation["parameters"] = [{"name": "id", "in": "path", "required": True,
                                        "schema": {"type": "integer", "minimum": 1}}]
        if method == "post":
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/WatchRequest"}}}}
        paths.setdefault(path, {})[method] = operation
    channel = {"type": "string", "pattern": f"^{_CHANNEL.pattern}$",
               "description": "a channel id (not its #name)"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "jobstatus HTTP API", "version": "1",
                 "description": "Start, read and stop a watch from a pipeline, on the bot's own port, "
                                "when the config has `api:`. Every route but this description needs "
                                "`Authorization: Bearer <token>`. A refusal is "
                                "`{\"error\": code, \"message\": words}` and changes nothing."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "one of the config's `api.tokens`"}},
            "schemas": {
                "WatchRequest": {
                    "type": "object", "additionalProperties": False,
                    "required": ["backend", "job_id", "channel"],
                    "properties": {
                        "backend": {"type": "string", "description": "a configured backend's name"},
                        "job_id": {"type": "string", "description": "the vendor's job id"},
                        "channel": channel,
                        "user": {"type": "string", "pattern": f"^{_USER.pattern}$",
                                 "description": "a Slack user the thread mentions, "
                                                "one of the token's `users`"},
                    }},
                "Watch": {
                    "type": "object",
                    "required": ["id", "backend", "job_id", "channel", "state", "vendor_status", "final",
                                 "active", "thread_ts", "permalink"],
                    "properties": {
                        "id": {"type": "integer", "description": "the watch's id, for GET and DELETE"},
                        "backend": {"type": "string", "description": "the backend's configured name"},
                        "job_id": {"type": "string", "description": "the vendor's job id"},
                        "channel": {"type": "string", "description": "the channel's id"},
                        "state": {"type": "string", "enum": [p.value for p in Phase],
                                  "description": "the bot's word for the job's state"},
                        "vendor_status": {"type": ["string", "null"], "description": "the vendor's own word"},
                        "final": {"type": "boolean", "description": "the state is one of the ends"},
                        "active": {"type": "boolean",
                                   "description": "false once the bot no longer follows the job (it ended, "
                                                  "someone stopped the watch, or it timed out)"},
                        "thread_ts": {"type": ["string", "null"],
                                      "description": "the job's message; null until Slack has taken it"},
                        "permalink": {"type": ["string", "null"], "description": "a link to the thread"},
                    }},
                "Error": {
                    "type": "object", "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string", "enum": sorted(STATUS)},
                        "message": {"type": "string",
                                    "description": "what to do, in the slash command's words "
                                                   "(Slack formatting)"},
                    }},
            },
        },
    }
