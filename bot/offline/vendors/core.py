"""What the vendor simulators share: scripted jobs, the request log, credentials, auth and fault injection.

Each vendor simulator (one module per vendor) is an aiohttp sub-application that answers exactly as that
vendor's documents in the vendor-docs say, quirks included. `SimulatorServer` (server.py) mounts all of
them on one loopback port, each under its own path prefix, so every backend's `base_url` carries a prefix.

What every simulator does the same way is written here once:
- jobs: `add_job` scripts a job as `Step`s (the vendor's own state word or code from a moment on), `set_state`
  moves it now; a vendor says only its defaults (`job_name`, `first_state`, `jobs_cancellable`, `new_job_id`);
- the request log: every request is recorded in `requests` (`count` reads it) before the vendor's own
  middlewares (`middlewares()`: EPM's maintenance window, Vault's usage log) and its route;
- auth: a route marked `@guarded` first asks the vendor's `refusal(request)`, which answers in the vendor's
  own words when the credentials are not good (Planning also refuses an application it does not have there);
  login and token routes are not guarded. `bearer_token` and `basic_credentials` read the Authorization
  header; `basic_users` and `bearer_tokens` are the fixed accounts (`fixed_credentials`);
- faults: `sim.<vendor>.faults = FaultPlan(rate, kinds, ...)` spoils a share of all status answers;
  `sim.<vendor>.fail_job(job_id, "429", times=2, retry_after=3)` spoils the next status calls of one job
  (Fusion, Vault, EPM DI, Planning; Immuta's batch call has no single job). A status route answers through
  `with_faults(good, job_id)`;
- a drip: `sim.<vendor>.drip(4.0)` makes every answer of the vendor, `drip(4.0, job_id)` one job's status
  answers, arrive one byte every 4 s after their headers (a vendor that is alive but hopelessly slow: no
  per-read timeout ever fires on it); `dripping` counts the answers being dripped now, `dripped` all so far.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

Clock = Callable[[], float]
# a response's key: send its body one byte per so many seconds (`VendorSim.drip`)
_DRIP = web.ResponseKey("jobstatus.drip", float)


@dataclass
class Step:
    """One state of a scripted job, entered `at` seconds after the job started.

    `state` is the vendor's own status word or code as the vendor sends it (e.g. "RUNNING" for Fusion,
    -1 / "0" for EPM, "active" or ["active"] for Immuta). `fields` are extra vendor fields for that step
    (message, progress, log paths...) that the vendor module knows how to render.
    """

    at: float
    state: Any
    fields: dict[str, Any] = field(default_factory=dict)


def json_id(value: object) -> int | str:
    """An id as the vendors send it in JSON: a number when it is all digits, else the string."""
    text = str(value)
    return int(text) if text.isdigit() else text


@dataclass
class SimJob:
    job_id: str
    name: str
    steps: list[Step]
    started: float
    cancellable: bool = True
    data: dict[str, Any] = field(default_factory=dict)  # vendor-specific extras (log text, details...)
    start_on_first_look: bool = False  # the demo's jobs start when someone first asks about them

    @property
    def json_id(self) -> int | str:
        return json_id(self.job_id)

    def current(self, now: float) -> Step:
        if self.start_on_first_look:
            self.start_on_first_look = False
            self.started = now
        elapsed = now - self.started
        step = self.steps[0]
        for s in self.steps:
            if s.at <= elapsed:
                step = s
        return step

    def set(self, now: float, state: Any, **fields: Any) -> None:
        """Move the job to `state` now (tests and cancel use this); later scripted steps are dropped."""
        elapsed = now - self.started
        self.steps = [s for s in self.steps if s.at <= elapsed] + [Step(elapsed, state, fields)]

    def then(self, after: float, state: Any, **fields: Any) -> None:
        """Schedule `state` `after` seconds from the last step (or now, whichever is later)."""
        base = max(self.steps[-1].at, 0.0)
        self.steps.append(Step(base + after, state, fields))


@dataclass
class Schedule:
    """A job the simulator's own scheduler starts as a new run every `every` seconds (`VendorSim.schedule`),
    as the vendors' schedulers start the nightly loads nobody types an id for.

    Run n (0, 1, 2, …) is due at `first_at + n * every`; it waits `queued_for` seconds, runs `runs_for`
    seconds, then ends as the vendor's success or failure word: `pattern` is read cyclically, one letter per
    run, "S" a success and "F" a failure ("SF": every other run fails; "SSFFFS": a streak of three failures
    and back to normal)."""

    name: str
    every: float
    first_at: float
    pattern: str = "S"
    queued_for: float = 1.0
    runs_for: float = 5.0
    data: dict[str, Any] = field(default_factory=dict)
    started: int = 0  # runs started so far
    run_ids: list[str] = field(default_factory=list)

    def fails(self, n: int) -> bool:
        """Whether run n ends in failure."""
        return self.pattern[n % len(self.pattern)] == "F"


# A clock that jumps far ahead starts at most this many runs of one schedule at once (the newest ones): a
# simulator left idle for a day with a 1-second schedule does not create 86,400 jobs on the next request.
MAX_CATCH_UP = 500


@dataclass
class Request:
    vendor: str
    method: str
    path: str
    query: str
    at: float
    body: bytes
    headers: dict[str, str]


FAULT_KINDS = ("500", "503", "429", "html", "malformed", "truncated", "empty", "wrong_types", "slow")


@dataclass
class FaultPlan:
    """Inject faults into a share of status answers (`rate` 0..1), chosen from `kinds`, seeded."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    slow_seconds: float = 5.0
    retry_after: float = 1.0
    injected: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def pick(self) -> str | None:
        if self.rate <= 0 or self._rng.random() >= self.rate:
            return None
        kind = self._rng.choice(self.kinds)
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind


async def fault_response(kind: str, plan: FaultPlan, good: Callable[[], Awaitable[web.Response]],
                         retry_after: float | None = None) -> web.Response:
    """The answer a misbehaving vendor gives instead of `good` (`retry_after` overrides the plan's)."""
    retry_after = plan.retry_after if retry_after is None else retry_after
    if kind == "500":
        return web.Response(status=500, text="Internal Server Error")
    if kind == "503":
        return web.Response(
            status=503,
            text="<html><body><h1>503 Service Unavailable</h1>Maintenance in progress</body></html>",
            content_type="text/html",
            headers={"Retry-After": str(int(retry_after))},
        )
    if kind == "429":
        return web.json_response(
            {"error": "Too Many Requests"}, status=429, headers={"Retry-After": str(int(retry_after))}
        )
    if kind == "html":
        return web.Response(status=200, text="<html><body>Sign in</body></html>", content_type="text/html")
    if kind == "malformed":
        return web.Response(status=200, text='{"status": "RUNN', content_type="application/json")
    if kind == "empty":
        return web.Response(status=200, body=b"", content_type="application/json")
    if kind == "truncated":
        resp = await good()
        body = resp.body if isinstance(resp.body, bytes) else b"{}"
        return web.Response(status=200, body=body[: max(1, len(body) // 2)], content_type="application/json")
    if kind == "wrong_types":
        return web.json_response([1, "two", None, {"status": {"nested": True}}])
    if kind == "slow":
        await asyncio.sleep(plan.slow_seconds)
        return await good()
    raise ValueError(kind)


# -- reading requests ---------------------------------------------------------------------------------------


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None for any other header or none."""
    header = request.headers.get("Authorization", "")
    return header[7:] if header.startswith("Bearer ") else None


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic …` header; None for any other header or none.

    The credentials are base64 of "user:password" (RFC 7617, section 2), and a decoder "MUST reject the
    encoded data if it contains characters outside the base alphabet" (RFC 4648, section 3.3): a header that
    does not decode is ("", ""), which no account has.
    """
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password


def offset_limit(request: web.Request, default_limit: int) -> tuple[int, int] | None:
    """The `offset` (default 0) and `limit` (default `default_limit`) a paged route is asked for; None when
    either is not a whole number, the offset is negative or the limit below 1 (the vendor refuses it)."""
    try:
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", str(default_limit)))
    except ValueError:
        return None
    return (offset, limit) if offset >= 0 and limit >= 1 else None


S = TypeVar("S", bound="VendorSim")
Route = Callable[[S, web.Request], Awaitable[web.Response]]


def guarded(route: Route[S]) -> Route[S]:
    """A route that answers only requests with good credentials: the vendor's `refusal` answers the others."""

    @functools.wraps(route)
    async def check(self: S, request: web.Request) -> web.Response:
        refused = await self.refusal(request)
        return refused if refused is not None else await route(self, request)

    return check


class VendorSim(ABC):
    """Base of one vendor's simulated API. Subclasses add routes in `routes()` and render job JSON."""

    vendor = ""
    job_name = "Job"  # a job's name when add_job is given none
    first_state: Any = None  # the state a job starts in when add_job is given no steps or state
    jobs_cancellable = True  # whether a job can be cancelled when add_job does not say
    # The vendor's words for a scheduled run's life (`schedule`): waiting, running, succeeded, failed.
    run_words: tuple[Any, Any, Any, Any] = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED")

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self.jobs: dict[str, SimJob] = {}
        self.requests: list[Request] = []
        self.faults = FaultPlan()
        # Faults for one job's status calls, in order: job id -> [(kind, Retry-After seconds or None)]
        self.job_faults: dict[str, list[tuple[str, float | None]]] = {}
        # Accepted credentials. Basic: {username: password}; bearer: set of tokens.
        self.basic_users: dict[str, str] = {}
        self.bearer_tokens: set[str] = set()
        self._next_id = 1000
        self.public_url = ""  # http://127.0.0.1:port/prefix once the server runs
        self.drip_every: float | None = None  # every answer drips: one byte per so many seconds
        # job id -> its status answers drip, one byte per so many seconds
        self.drip_jobs: dict[str, float] = {}
        self.dripping = 0  # answers being dripped now
        self.dripped = 0  # answers dripped since the start
        self.schedules: dict[str, Schedule] = {}  # by job name

    # -- the simulator's own scheduler -------------------------------------------------------------
    def schedule(self, name: str, every: float, *, pattern: str = "S", first_in: float = 0.0,
                 queued_for: float = 1.0, runs_for: float = 5.0, **data: Any) -> Schedule:
        """Declare a job the simulator starts by itself every `every` seconds, the first `first_in` seconds
        from now; its runs go queued → running → ended (`Schedule`), show in the vendor's listing and answer
        their status by id like any job. Runs are started when due, checked on every request and on
        `start_due` (tests call it after moving the clock)."""
        if every <= 0:
            raise ValueError("every must be more than 0 seconds")
        if not pattern or set(pattern) - {"S", "F"}:
            raise ValueError("pattern is a string of S (success) and F (failure), e.g. 'SF'")
        plan = Schedule(name, float(every), self.clock() + first_in, pattern, queued_for, runs_for,
                        dict(data))
        self.schedules[name] = plan
        self.start_due()
        return plan

    def start_due(self) -> list[SimJob]:
        """Start every scheduled run that is due by now (each with its due time as its start)."""
        now = self.clock()
        started: list[SimJob] = []
        for plan in self.schedules.values():
            if now < plan.first_at:
                continue
            due = int((now - plan.first_at) // plan.every) + 1  # runs due so far, in all
            first = max(plan.started, due - MAX_CATCH_UP)
            for n in range(first, due):
                started.append(self.start_scheduled(plan, n))
            plan.started = max(plan.started, due)
        return started

    def start_scheduled(self, plan: Schedule, n: int) -> SimJob:
        """Run n of `plan`, started at its due time: the vendor's words for waiting, running and its end."""
        waiting, running, succeeded, failed = self.run_words
        job = self.add_job(name=plan.name, steps=[
            Step(0.0, waiting),
            Step(plan.queued_for, running),
            Step(plan.queued_for + plan.runs_for, failed if plan.fails(n) else succeeded),
        ], **plan.data)
        job.started = plan.first_at + n * plan.every
        plan.run_ids.append(job.job_id)
        return job

    # -- jobs ------------------------------------------------------------------------------------
    def add_job(
        self,
        job_id: str | int | None = None,
        *,
        name: str | None = None,
        steps: list[Step] | None = None,
        state: Any = None,
        cancellable: bool | None = None,
        **data: Any,
    ) -> SimJob:
        steps = steps or [Step(0.0, state if state is not None else self.first_state)]
        job = SimJob(
            str(job_id) if job_id is not None else self.new_job_id(),
            self.job_name if name is None else name,
            steps,
            self.clock(),
            self.jobs_cancellable if cancellable is None else cancellable,
            dict(data),
        )
        self.jobs[job.job_id] = job
        return job

    def new_job_id(self) -> str:
        """The id of a job added without one."""
        self._next_id += 1
        return str(self._next_id)

    def set_state(self, job_id: str | int, state: Any, **fields: Any) -> None:
        self.jobs[str(job_id)].set(self.clock(), state, **fields)

    def fail_job(
        self, job_id: str | int, kind: str, times: int = 1, retry_after: float | None = None
    ) -> None:
        """The next `times` status calls for `job_id` get fault `kind` (one of FAULT_KINDS), whatever
        `faults` says; 429/503 carry `Retry-After: retry_after` (default: the plan's)."""
        if kind not in FAULT_KINDS:
            raise ValueError(kind)
        self.job_faults.setdefault(str(job_id), []).extend([(kind, retry_after)] * times)

    def drip(self, every: float | None, job_id: str | int | None = None) -> None:
        """Answer one byte every `every` seconds after the headers: every request of this vendor, or with
        `job_id` that job's status calls only; `every` None ends it."""
        if job_id is None:
            self.drip_every = every
        elif every is None:
            self.drip_jobs.pop(str(job_id), None)
        else:
            self.drip_jobs[str(job_id)] = every

    # -- plumbing --------------------------------------------------------------------------------
    @abstractmethod
    def routes(self) -> list[web.RouteDef]:
        """The vendor's endpoints."""

    @abstractmethod
    async def refusal(self, request: web.Request) -> web.Response | None:
        """The vendor's answer to a request on a guarded route that it refuses before the route runs (bad
        credentials, in the vendor's own words); None lets the request through."""

    def middlewares(self) -> list[Middleware]:
        """What the vendor does to every request after it is recorded and before its route (none here)."""
        return []

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record, *self.middlewares()])
        app.add_routes(self.routes())
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.start_due()  # the vendor's scheduler has started what is due, whoever asks
        body = await request.read()
        self.requests.append(
            Request(self.vendor, request.method, request.path, request.query_string, self.clock(), body,
                    dict(request.headers))
        )
        resp = await handler(request)
        every = self.drip_every or (resp.get(_DRIP) if isinstance(resp, web.Response) else None)
        if every and isinstance(resp, web.Response):
            return await self._drip(request, resp, float(every))
        return resp

    async def _drip(self, request: web.Request, resp: web.Response, every: float) -> web.StreamResponse:
        """`resp` sent as it is (status, headers, a Content-Length), but its body one byte every `every` s."""
        body = resp.body if isinstance(resp.body, bytes) else b""
        out = web.StreamResponse(
            status=resp.status,
            reason=resp.reason,
            headers={
                k: v
                for k, v in resp.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding")
            },
        )
        out.content_length = len(body)
        self.dripping += 1
        self.dripped += 1
        try:
            await out.prepare(request)
            for i in range(len(body)):
                await asyncio.sleep(every)
                if request.transport is None or request.transport.is_closing():
                    break  # the client gave up
                await out.write(body[i : i + 1])
            else:
                await out.write_eof()
        except ConnectionError:
            pass  # the client gave up between two bytes
        finally:
            self.dripping -= 1
        return out

    def count(self, method: str | None = None, contains: str = "") -> int:
        return sum(
            1 for r in self.requests if (method is None or r.method == method) and contains in r.path
        )

    def fixed_credentials(self, request: web.Request) -> bool:
        """Whether the request carries one of the fixed credentials: a token in `bearer_tokens` or an account
        of `basic_users`."""
        token = bearer_token(request)
        if token is not None:
            return token in self.bearer_tokens
        login = basic_credentials(request)
        return login is not None and self.basic_users.get(login[0]) == login[1]

    async def with_faults(
        self, good: Callable[[], Awaitable[web.Response]], job_id: str | None = None
    ) -> web.Response:
        """`good()`, unless a fault is due: first one queued for `job_id` (`fail_job`), else the plan's
        pick."""
        queued = self.job_faults.get(job_id) if job_id is not None else None
        if queued:
            kind, retry_after = queued.pop(0)
            resp = await fault_response(kind, self.faults, good, retry_after)
        else:
            picked = self.faults.pick()
            resp = await good() if picked is None else await fault_response(picked, self.faults, good)
        every = self.drip_jobs.get(job_id) if job_id is not None else None
        if every:
            resp[_DRIP] = every  # the request log's middleware drips it (`_drip`)
        return resp

