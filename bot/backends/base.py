"""What every backend adapter shares: the normalised job status, the errors, and the HTTP plumbing."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from httpx_aiohttp import AiohttpTransport

from bot.backends.states import Phase

log = logging.getLogger(__name__)

# The most of a vendor answer we ever read; anything larger is a broken or hostile backend.
MAX_BODY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Link:
    """A link a backend gives for a job (artifacts, details, log download)."""

    label: str
    url: str


@dataclass(frozen=True)
class JobStatus:
    """One answer about one job, in the shape the rest of the bot understands.

    `vendor_status` keeps the vendor's own status word (shown to users beside the normalised phase);
    `message` is the vendor's failure or detail text; `log_paths` every log/output path the vendor gave.
    """

    job_id: str
    phase: Phase
    vendor_status: str
    name: str | None = None
    progress: int | None = None
    message: str | None = None
    log_paths: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()
    timeout_s: int | None = None

    @property
    def terminal(self) -> bool:
        return self.phase.terminal


@dataclass(frozen=True)
class FailureDetails:
    """What a backend can tell beyond the status answer once a job has ended (logs, errors, outputs)."""

    lines: tuple[str, ...] = ()  # error lines / details to show in the thread, already bounded
    total_errors: int | None = None  # how many errors the backend reported in all
    files: tuple[tuple[str, int | None], ...] = ()  # (name or path, size in bytes) of outputs
    links: tuple[Link, ...] = ()
    attachment: tuple[str, bytes] | None = None  # (filename, content) small enough to upload
    hint: str | None = None  # where to look when the API has nothing more


@dataclass(frozen=True)
class Capabilities:
    cancel: bool = False
    logs: bool = False
    batch: bool = False


class BackendError(Exception):
    """A backend could not answer as hoped. `str()` is safe to show to a user: it never holds a secret."""

    kind: ClassVar[str] = "error"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class InvalidJobId(BackendError):
    kind = "invalid_job_id"


class JobNotFound(BackendError):
    kind = "not_found"


class AuthFailed(BackendError):
    """401 after one fresh login, or credentials refused."""

    kind = "auth"


class Forbidden(BackendError):
    kind = "forbidden"


class Unavailable(BackendError):
    """Network error, timeout, 5xx, maintenance window: an outage to ride out."""

    kind = "unavailable"


class RateLimited(Unavailable):
    kind = "rate_limited"


class BadResponse(BackendError):
    """The backend answered something we cannot read (HTML, broken JSON, wrong types)."""

    kind = "bad_response"


class Refused(BadResponse):
    """The backend refused the request with a 4xx other than 401/403/404/429, and (usually) said why in its
    own words: readable, but not an answer about the job."""

    kind = "refused"


class Misconfigured(BackendError):
    """The backend says the address we call does not exist for it: the backend's `base_url` or `api_version`
    setting is wrong (Vault's MALFORMED_URL). Not about one job: every job of the backend gets it."""

    kind = "misconfigured"


class CancelNotSupported(BackendError):
    kind = "cancel_not_supported"


class CancelRefused(BackendError):
    kind = "cancel_refused"


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


def path_segment(value: str) -> str:
    """URL-encode one path segment so user text can never change which URL is called."""
    return quote(value, safe="")


def absolute_url(base_url: str, href: Any) -> str | None:
    """A vendor link as an absolute http(s) URL: `/api/...` hangs off `base_url` (prefix kept); other schemes are dropped."""
    if not isinstance(href, str) or not href.strip():
        return None
    href = href.strip()
    if href.lower().startswith(("http://", "https://")):
        return href
    if ":" in href.split("/", 1)[0]:  # javascript:, mailto:, ... never become a link
        return None
    return f"{base_url.rstrip('/')}/{href.lstrip('/')}"


def lenient_json(raw: bytes) -> Any:
    """Parse JSON, repairing one documented vendor quirk: stray closing brackets (`}}` in an array).

    Raises ValueError when the text is not JSON even after the repair.
    """
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    repaired = _drop_unbalanced_closers(text)
    if repaired == text:
        raise ValueError("not JSON")
    result = json.loads(repaired)
    log.info("repaired malformed JSON from backend (dropped unbalanced closing brackets)")
    return result


def _drop_unbalanced_closers(text: str) -> str:
    out: list[str] = []
    stack: list[str] = []
    in_str = False
    escape = False
    pairs = {"}": "{", "]": "["}
    for ch in text:
        if in_str:
            out.append(ch)
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]":
            if not stack or stack[-1] != pairs[ch]:
                continue  # a closer that closes nothing open: drop it
            stack.pop()
        out.append(ch)
    return "".join(out)


def as_text(value: Any) -> str | None:
    """A vendor field as display text: None, "" and the string "null" mean nothing."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return None if value in ("", "null", "None") else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def as_int(value: Any) -> int | None:
    """A vendor number that may come as a string ("50"), a float or garbage."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None  # NaN and ±Infinity are garbage too
    if isinstance(value, str):
        try:
            return as_int(float(value.strip()))
        except ValueError:
            return None
    return None


# Keys of the error envelopes vendors put in a body (any HTTP status), most specific first:
# - Vault: `errors[{type, message}]` (a single object in cancel answers) beside `responseStatus`
#   (limited.veevavault.dev/medical/vault-api/api-reference/26.1/errors/;
#   VAPIL's VaultRequest reads the body whatever the status);
# - Oracle REST (Fusion job scheduler, ESS): `title`, `detail`, `o:errorCode` / `errorCode` (ESS's
#   SimpleExceptionDetail, docs.oracle.com/en/cloud/saas/applications-common/25c/farca/
#   op-ess-rest-scheduler-v1-requests-requestid-hold-post.html);
# - EPM: `details` (interop, Data Integration), `detail` / `message` (Planning);
# - OAuth 2 token endpoints: `error`, `error_description` (RFC 6749 section 5.2); Immuta (hapi): `message`, `error`.
ERROR_TEXT_KEYS = ("detail", "details", "message", "error_description", "title", "responseMessage", "error")
ERROR_CODE_KEYS = ("o:errorCode", "errorCode")
ERROR_WORDS_MAX = 300


def error_words(content: bytes, hide: Iterable[str] = ()) -> str | None:
    """The vendor's own words in an error body (JSON of any vendor's envelope), cut; None when there are none.

    Never the raw body: a body that is not such JSON (an HTML page, a stack trace) says nothing here. Any of
    `hide` (the credentials the request carried) the vendor repeats is blanked out. The caller escapes the words
    before they reach Slack.
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


def make_http_client(config: Any) -> httpx.AsyncClient:
    """The one HTTP client a backend uses for everything: keep-alive pool sized to its concurrency cap.

    HTTP/1.1 keep-alive over aiohttp costs about a third of the CPU per request of httpx's own transport
    (measured in bench/); `http2: true` takes httpx's transport, which speaks HTTP/2 where offered.
    """
    limits = httpx.Limits(max_connections=config.max_concurrency, max_keepalive_connections=config.max_concurrency)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 10.0)),
        limits=limits,
        follow_redirects=False,
        transport=None if config.http2 else AiohttpTransport(limits=limits),
        http2=config.http2,
        headers={"User-Agent": "jobstatus-bot", "Accept": "application/json"},
    )


class Backend(ABC):
    """One configured backend: a vendor adapter bound to a base URL, credentials and limits.

    Subclasses set `type_name`, `capabilities` and implement `validate_job_id`, `status`, and where the
    vendor can, `cancel`, `failure_details`, `statuses` (batch).
    """

    type_name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    # Where to cancel when the API cannot (shown by /jobstatus cancel).
    cancel_hint: ClassVar[str] = ""
    job_id_help: ClassVar[str] = ""
    # The vendor's own floor between two status calls for one job (Vault: 10 s); the poller honours it.
    min_poll_interval: ClassVar[float] = 0.0
    min_poll_reason: ClassVar[str] = ""  # that floor in words, for the log and `/jobstatus backends`

    def __init__(self, name: str, config: Any, *, secrets: Any = None, http: httpx.AsyncClient | None = None) -> None:
        self.name = name
        self.config = config
        self.secrets = secrets  # a SecretStore, for credentials that rotate
        self.base_url = str(config.base_url).rstrip("/")
        self.http = http or make_http_client(config)
        self.auth: httpx.Auth | None = None
        # the per-backend concurrency cap: every request to this backend waits here first
        self.limit = asyncio.Semaphore(config.max_concurrency)

    @property
    def can_cancel(self) -> bool:
        """Whether this configured backend offers cancel (may depend on config, e.g. Fusion's cancel_enabled)."""
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
        """Ask the vendor to cancel; returns what to tell the user. Raises CancelNotSupported/CancelRefused."""
        raise CancelNotSupported(f"{self.type_name} offers no cancel API. {self.cancel_hint}".strip())

    async def failure_details(self, status: JobStatus) -> FailureDetails | None:
        return None

    async def check(self) -> list[tuple[str, bool, str]]:
        """Connectivity/auth checks for `jobstatus-bot check`: (what, ok, detail) rows."""
        return []

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- shared HTTP plumbing ------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + path

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; network trouble and HTTP error classes become BackendErrors.

        Reads at most MAX_BODY_BYTES of the body. 2xx answers are returned; 404 → JobNotFound,
        401 → AuthFailed, 403 → Forbidden, 429/503 → RateLimited/Unavailable with Retry-After.
        """
        kwargs.setdefault("auth", self.auth)
        try:
            async with self.limit, self.http.stream(method, self.url(path), **kwargs) as resp:
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise BadResponse(f"{self.name} sent an answer larger than {MAX_BODY_BYTES // 1024} KiB")
                    chunks.append(chunk)
                resp._content = b"".join(chunks)  # noqa: SLF001 - body read with a cap
        except httpx.TimeoutException as exc:
            raise Unavailable(f"{self.name} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise Unavailable(f"{self.name} is unreachable ({type(exc).__name__})") from exc
        self.raise_for_status(resp)
        return resp

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
        """What an answer must never repeat to a user: the configured secrets and the credential `request` carried."""
        auth = self.config.auth
        fields = ("password", "token", "client_secret", "refresh_token", "key")
        found = [getattr(auth, field, None) for field in fields]
        header = request.headers.get("Authorization") if request is not None else None
        if header:
            found += [header, header.split(" ", 1)[-1]]
        return [s for s in found if isinstance(s, str) and len(s) >= 4]

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
