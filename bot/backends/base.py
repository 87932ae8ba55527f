"""What every backend adapter is: the normalised job status and details it answers with, and the `Backend`
base.

A `Backend` is one configured backend: a vendor adapter bound to a base URL, credentials (an httpx.Auth flow,
bot/backends/auth.py) and limits, sending every request through its one HTTP client (bot/backends/http.py);
its errors are those of bot/domain/errors.py.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

import httpx

from bot.backends.auth import RefreshingAuth, SecretStore, secrets_in
from bot.backends.http import (
    error_words,
    make_http_client,
    read_body,
    retry_after_seconds,
    too_slow,
    unreachable,
)
from bot.backends.slots import STALL_AFTER, Slots, UsersFirst
from bot.backends.values import lenient_json
from bot.domain.errors import (
    AuthFailed,
    BackendError,
    BadResponse,
    CancelNotSupported,
    FollowNotSupported,
    Forbidden,
    InvalidJobId,
    JobNotFound,
    RateLimited,
    Refused,
    Unavailable,
)
from bot.domain.runs import Run
from bot.domain.status import FailureDetails, JobStatus
from bot.support.config import BackendConfig

# The share of a backend's polling slots the jobs that answered too slowly last time may hold at once (at
# least one): a quarter leaves three in four to the jobs that answer, and still asks every slow job again
# after its backoff.
SLOW_SHARE = 0.25

MAX_ID_DIGITS = 18  # a numeric job id: at most 18 digits, so it always fits a 64-bit integer


def with_article(words: str) -> str:
    """"an Oracle Fusion", "a Veeva Vault": the indefinite article by the first letter, which is right for the
    vendors' names here (EPM is said letter by letter, "ee-pee-em")."""
    return f"{'an' if words[:1].upper() in ('A', 'E', 'I', 'O', 'U') else 'a'} {words}"


def digits_job_id(text: str, label: str, what: str) -> str:
    """A numeric job id (Fusion, Vault, EPM): 1 to MAX_ID_DIGITS ASCII digits (a bare \\d would take other
    scripts' digits too). InvalidJobId says which rule `text` breaks and `what` an id of `label` is."""
    value = text.strip() if isinstance(text, str) else ""
    shown = value[:40] + ("…" if len(value) > 40 else "") if value else "(empty)"
    if re.fullmatch(r"[0-9]+", value) and len(value) > MAX_ID_DIGITS:
        raise InvalidJobId(f"'{shown}' is too long for {with_article(label)} job id: {len(value)} digits, "
                           f"at most {MAX_ID_DIGITS}")
    if not re.fullmatch(r"[0-9]+", value):
        raise InvalidJobId(f"'{shown}' is not {with_article(label)} job id: {what}")
    return value


class Exchange:
    """One exchange with a vendor (`Backend.sending`): a slot of the backend's (`Slots.holding`), then the
    total deadline of `deadline` (bot/backends/http.py: past it, what is inside is cancelled and `TooSlow`
    raised), and STALL_AFTER seconds in, the slot handed on (bot/backends/slots.py). Every poll enters one, so
    it is one object with one timer: the stall timer, which on firing hands the slot on and then sets the
    deadline's own (a request stalls long before its deadline: STALL_AFTER is 2 s, a `timeout` 30 s by
    default); a `timeout` no longer than STALL_AFTER sets the deadline at once, and the request never stalls.
    The generator-based context managers and the second timer it replaces cost about a tenth of a poll's CPU
    (bench/, `--profile`)."""

    __slots__ = ("_hold", "_name", "_seconds", "_deadline", "_timer", "_timeout")

    def __init__(self, limit: Slots, name: str, seconds: float) -> None:
        self._hold = limit.holding()
        self._name = name
        self._seconds = seconds
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timeout: asyncio.Timeout | None = None

    async def __aenter__(self) -> None:
        await self._hold.__aenter__()
        loop = asyncio.get_running_loop()
        now = loop.time()
        stall = STALL_AFTER  # read at each request: the tests shorten it
        if self._seconds <= stall:
            self._timeout = asyncio.timeout_at(now + self._seconds)
        else:
            self._timeout = asyncio.timeout_at(None)  # its deadline is set by `_stalled`, if it comes to that
            self._deadline = now + self._seconds
            self._timer = loop.call_at(now + stall, self._stalled)
        try:
            await self._timeout.__aenter__()
        except BaseException:
            self._cancel_timer()
            await self._hold.__aexit__(None, None, None)
            raise

    def _stalled(self) -> None:
        self._timer = None
        self._hold()  # past STALL_AFTER: the slot goes on
        assert self._timeout is not None
        self._timeout.reschedule(self._deadline)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._cancel_timer()
        assert self._timeout is not None
        try:
            try:
                await self._timeout.__aexit__(exc_type, exc, tb)
            except TimeoutError:
                raise too_slow(self._name, self._seconds) from None
            if exc_type is not None and issubclass(exc_type, TimeoutError):
                # as `deadline`: a TimeoutError from inside too
                raise too_slow(self._name, self._seconds) from None
        finally:
            await self._hold.__aexit__(None, None, None)


@dataclass(frozen=True)
class Capabilities:
    cancel: bool = False
    logs: bool = False
    batch: bool = False


class Backend(ABC):
    """One configured backend: a vendor adapter bound to a base URL, credentials and limits.

    Subclasses set `type_name`, `capabilities` and implement `validate_job_id`, `status`, and where the
    vendor can, `cancel`, `failure_details`, `statuses` (batch).
    """

    type_name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # the vendor's product in words, for what users read ("Oracle Fusion")
    capabilities: ClassVar[Capabilities] = Capabilities()
    # Where to cancel when the API cannot (shown by /jobstatus cancel).
    cancel_hint: ClassVar[str] = ""
    job_id_help: ClassVar[str] = ""  # what a job id of this vendor is, with an example of the vendor's own
    # The vendor's own floor between two status calls for one job (Vault: 10 s); the poller honours it.
    min_poll_interval: ClassVar[float] = 0.0
    min_poll_reason: ClassVar[str] = ""  # that floor in words, for the log and `/jobstatus backends`
    # Following by name (bot/domain/runs.py): what a followable name is in the vendor's words ("job
    # definition"), empty where the vendor documents no listing of runs; then `follow_hint` says why and what
    # to do instead. `names_case_sensitive`: whether the vendor tells two names apart by case alone.
    follow_by: ClassVar[str] = ""
    follow_hint: ClassVar[str] = ""
    names_case_sensitive: ClassVar[bool] = False

    def __init__(self, name: str, config: BackendConfig, *, secrets: SecretStore | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        self.name = name
        self.config = config
        self.secrets = secrets  # for credentials that rotate
        self.base_url = str(config.base_url).rstrip("/")
        self.http = http or make_http_client(config)
        self.auth: httpx.Auth | None = None  # set by the adapter from `config.auth`; every request carries it
        # the per-backend concurrency cap: every request to this backend waits here first, a user's request
        # ahead of scheduled polls (bot/backends/slots.py); a backend built alone (a test, `jobstatus-bot
        # check`) has a priority of its own until `users_first` gives it the process's (build_backends)
        self.limit: Slots
        self.slow_lane: asyncio.Semaphore
        self.users_first(UsersFirst())

    def users_first(self, priority: UsersFirst) -> None:
        """This backend's slots go to `priority`'s users' requests ahead of its scheduled polls.
        build_backends calls it once, before the backend is used, with the one `UsersFirst` the Runtime
        made."""
        self.limit = priority.slots(self.config.max_concurrency)
        # the scheduled polls of jobs whose last answer came too slowly (TooSlow) take one of these first:
        # however many of its jobs drip, they hold at most SLOW_SHARE of the slots polls may take, and the
        # rest of the backend's jobs are polled at their interval beside them (bot/engine/poller.py)
        self.slow_lane = asyncio.Semaphore(max(1, int(self.limit.poll_cap * SLOW_SHARE)))

    @property
    def can_cancel(self) -> bool:
        """Whether this configured backend offers cancel (may depend on config, e.g. Fusion's
        cancel_enabled)."""
        return self.capabilities.cancel

    # -- what subclasses provide ---------------------------------------------------------------
    @abstractmethod
    def validate_job_id(self, text: str) -> str:
        """The job id in the vendor's form; raises InvalidJobId saying what an id looks like."""

    @abstractmethod
    async def status(self, job_id: str) -> JobStatus:
        """One job's status now."""

    async def statuses(self, job_ids: Iterable[str]) -> Mapping[str, JobStatus | BackendError]:
        """Status of many jobs; backends with a batch API override this with one request."""
        ids = list(job_ids)
        results = await asyncio.gather(*(self.status(j) for j in ids), return_exceptions=True)
        out: dict[str, JobStatus | BackendError] = {}
        for job_id, res in zip(ids, results, strict=True):
            if isinstance(res, BaseException) and not isinstance(res, BackendError):
                if isinstance(res, Exception):
                    res = BadResponse(f"unexpected error reading the answer: {type(res).__name__}")
                else:
                    raise res
            out[job_id] = res
        return out

    async def cancel(self, job_id: str) -> str:
        """Ask the vendor to cancel; returns what to tell the user. Raises
        CancelNotSupported/CancelRefused."""
        raise CancelNotSupported(f"{self.label} offers no cancel API. {self.cancel_hint}".strip())

    async def failure_details(self, status: JobStatus) -> FailureDetails | None:
        return None

    @property
    def can_follow(self) -> bool:
        """Whether runs can be followed by name here: the vendor documents a listing of recent runs."""
        return bool(self.follow_by)

    async def recent_runs(self, since: float) -> list[Run]:
        """Every run the vendor lists that was still live at `since` (epoch seconds) or started or ended after
        it, in the fewest requests the vendor's API allows (discovery calls it once per backend per interval,
        however many follows there are). Raises FollowNotSupported where the vendor has no listing."""
        raise FollowNotSupported(f"{self.label} documents no listing of its runs, so a job cannot be "
                                 f"followed by name there. {self.follow_hint}".strip())

    async def job_names(self) -> list[str]:
        """The followable names the vendor lists (for "did you mean" when a follow names none of them); empty
        where the vendor lists no names."""
        return []

    async def check(self) -> list[tuple[str, bool, str]]:
        """Connectivity/auth checks for `jobstatus-bot check`: (what, ok, detail) rows."""
        return []

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- shared HTTP plumbing ------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + path

    def sending(self) -> Exchange:
        """Around every exchange with the vendor: one of the backend's slots, then the request's total
        deadline (the backend's `timeout`: connect, headers and the whole body, bot/backends/http.py
        `deadline`). The deadline starts once the slot is held, so waiting behind other requests is no
        vendor's slowness; and a request past it is cancelled and its slot given back, so a vendor that drips
        its answers can hold a slot for `timeout` at most (`Exchange`)."""
        return Exchange(self.limit, self.name, self.config.timeout)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request with the backend's auth; network trouble and HTTP error classes become
        BackendErrors.

        Reads at most MAX_BODY_BYTES of the body. 2xx answers are returned; 404 → JobNotFound,
        401 → AuthFailed, 403 → Forbidden, 429/503 → RateLimited/Unavailable with Retry-After.
        """
        with unreachable(self.name):
            async with self.sending(), self.http.stream(method, self.url(path), auth=self.auth,
                                                        **kwargs) as resp:
                await read_body(resp, self.name)
        self.raise_for_status(resp)
        return resp

    async def sign_in(self) -> None:
        """Get the token or session of a refreshing auth now, as the first request would (for `check` to say
        whether signing in works before it calls the API); fixed credentials need nothing."""
        if isinstance(self.auth, RefreshingAuth):
            with unreachable(self.name):
                async with self.sending():
                    await self.auth.sign_in(self.http, self.base_url)

    def raise_for_status(self, resp: httpx.Response) -> None:
        """Non-2xx answers as BackendErrors: the HTTP status class decides the type, the vendor's own words in
        the body (`error_words`, any envelope) go into the message before the bare status."""
        code = resp.status_code
        if 200 <= code < 300:
            return
        retry = retry_after_seconds(resp.headers.get("Retry-After"))
        words = error_words(resp.content, self.credentials(resp.request))
        status = f"HTTP {code}: {words}" if words else f"HTTP {code}"
        if code == 429:
            raise RateLimited(f"{self.name} is rate limiting us ({status})", retry_after=retry)
        if code == 401:
            raise AuthFailed(f"{self.name} refused our credentials ({status})")
        if code == 403:
            raise Forbidden(f"{self.name} does not allow this account to see that ({status})")
        if code == 404:
            raise JobNotFound(f"{self.name} has no such job ({status})")
        if code >= 500:
            raise Unavailable(f"{self.name} is having trouble ({status})", retry_after=retry)
        raise Refused(f"{self.name} answered {status}")

    def credentials(self, request: httpx.Request | None = None) -> list[str]:
        """What an answer must never repeat to a user: the configured secrets and the credential `request`
        carried."""
        return secrets_in(self.config.auth, request)

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        resp = await self.request("GET", path, **kwargs)
        return self.json_of(resp)

    def json_of(self, resp: httpx.Response) -> Any:
        ctype = resp.headers.get("content-type", "")
        if not resp.content:
            raise BadResponse(f"{self.name} sent an empty answer")
        if "html" in ctype:
            raise BadResponse(f"{self.name} sent an HTML page instead of JSON (HTTP {resp.status_code})")
        try:
            return lenient_json(resp.content)
        except ValueError as exc:
            raise BadResponse(f"{self.name} sent malformed JSON") from exc
