"""Veeva Vault job adapter: session login, job status within Vault's rate limits, cancel, links and hints.

Vault's error envelope (`responseStatus` FAILURE/EXCEPTION with `errors[{type, message}]`) decides before the
HTTP status: Vault's reference says it answers HTTP 200 and that logic should rest on `responseStatus` and the
error types (limited.veevavault.dev/medical/vault-api/api-reference/26.1/errors/), and Veeva's own
client library reads the body whatever the status (veeva/vault-api-library, VaultRequest.processResponse); but
a wrong API version or path has been seen to come as HTTP 404 with a MALFORMED_URL envelope. Every request
carries `X-VaultAPI-ClientID` (VaultRequest.setVaultHeaderParams sends it on every call, /auth included). The
session, its login pacing and the other-vault check are `Session`, the httpx.Auth flow every request goes
through.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.backends.auth import RefreshingAuth, SecretStore, Token
from bot.backends.base import Backend, Capabilities, digits_job_id
from bot.backends.http import retry_after_seconds
from bot.backends.values import (
    MAX_LIST_PAGES,
    absolute_url,
    as_int,
    as_text,
    epoch_seconds,
    iso_utc,
    lenient_json,
    path_segment,
)
from bot.domain.errors import (
    AuthFailed,
    BackendError,
    BadResponse,
    CancelNotSupported,
    CancelRefused,
    Forbidden,
    JobNotFound,
    Misconfigured,
    RateLimited,
    Refused,
)
from bot.domain.runs import Run
from bot.domain.states import VAULT, Phase, lookup
from bot.domain.status import FailureDetails, JobStatus, Link
from bot.support.config import BackendConfig, ConfigError, VaultSession
from bot.support.logs import about

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "v25.3"
CLIENT_ID_HEADER = "X-VaultAPI-ClientID"
# Vault's recommended client id format is {company}-{organization}-{team}-{server|client}-{program}
# (limited.veevavault.dev/medical/vault-api/references/client-id/, linked from VAPIL as
# developer.veevavault.com/docs/#client-id; VAPIL's examples:
# verteobiotech-vault-quality-client-myintegration, veeva-vault-devsupport-client-vapil). Operators set their
# own with `vault_client_id`.
DEFAULT_CLIENT_ID = "jobstatus-chatops-slack-server-jobstatusbot"
CANCEL_SINCE = (25, 3)  # the jobs/actions/cancel endpoint exists from API v25.3
LOGIN_BACKOFF = 30.0  # at most one login per this many seconds unless the last session worked
BURST_WINDOW = 300.0  # Vault's burst limit counts calls in 5-minute windows
MAX_PACE_SLEEP = 5.0  # a longer pause is handed back as RateLimited instead of being slept
HINT = "Vault: Admin > Operations > Job Status"
_VERSION = re.compile(r"v?(\d+)\.(\d+)")
_DELAY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", re.IGNORECASE)
# What the failure words mean, for the thread (Vault's answer itself says nothing more).
EXPLAIN = {
    "ERRORS_ENCOUNTERED": "The job finished, but Vault reported errors.",
    "FAILED_TO_RUN": "Vault could not run the job.",
    "TIMEOUT": "The job ran longer than Vault allows and was stopped.",
    "COMPLETED_DUE_TO_INACTIVITY": "Vault ended the job after a period of inactivity.",
    "MISSED_SCHEDULE": "The job missed its scheduled start and did not run.",
}


# -- parsing ------------------------------------------------------------------------------------------
def error_list(errors: Any) -> list[tuple[str, str]]:
    """(type, message) pairs from `errors`, a list of objects or (in cancel answers) one object."""
    if isinstance(errors, dict):
        errors = [errors]
    if not isinstance(errors, list):
        return []
    out = []
    for err in errors:
        if isinstance(err, dict):
            out.append(((as_text(err.get("type")) or "UNKNOWN").upper(), as_text(err.get("message")) or ""))
    return out


# Error types that say the address is wrong, not the job (Vault's error type list,
# limited.veevavault.dev/vault-api/api-reference/23.1/errors/error-types/:
# MALFORMED_URL "The specified resource cannot be found";
# METHOD_NOT_SUPPORTED "... Or, the API request is not supported by this version of API").
CONFIG_ERRORS = frozenset({"MALFORMED_URL", "METHOD_NOT_SUPPORTED"})
CONFIG_ADVICE = "the backend's api_version or base_url is wrong"


def mapped_vault_error(payload: dict[str, Any], what: str = "Vault",
                       advice: str = CONFIG_ADVICE) -> BackendError | None:
    """The BackendError a FAILURE/EXCEPTION answer's error type stands for (messages are not contractual), or
    None for a type that says nothing we act on; `advice` says what to fix when the address is wrong."""
    kind, detail = _first_error(payload)
    if kind in CONFIG_ERRORS:
        return Misconfigured(f"{what} does not know the API address the bot calls ({detail}): {advice}")
    if kind == "INVALID_SESSION_ID":
        return AuthFailed(f"{what} refused our session ({detail})")
    if kind == "INVALID_DATA":
        return JobNotFound(f"{what} has no such job ({detail})")
    if kind == "INSUFFICIENT_ACCESS":
        return Forbidden(f"{what} does not allow this user to see that ({detail})")
    if kind == "API_LIMIT_EXCEEDED":
        return RateLimited(f"{what} is rate limiting us ({detail})", retry_after=10.0)
    return None


def vault_error(payload: dict[str, Any], what: str = "Vault", advice: str = CONFIG_ADVICE) -> BackendError:
    """The BackendError a FAILURE/EXCEPTION answer stands for: by its error type, else a BadResponse saying
    it."""
    err = mapped_vault_error(payload, what, advice)
    if err is not None:
        return err
    return BadResponse(f"{what} answered {payload.get('responseStatus')} ({_first_error(payload)[1]})")


def _first_error(payload: dict[str, Any]) -> tuple[str, str]:
    """(type, "TYPE: message") of an answer's first error."""
    errors = error_list(payload.get("errors"))
    kind, text = errors[0] if errors else ("UNKNOWN", as_text(payload.get("responseMessage")) or "")
    return kind, f"{kind}: {text[:300]}" if text else kind


def failure_envelope(content: bytes) -> dict[str, Any] | None:
    """The body as Vault's error envelope (`responseStatus` FAILURE or EXCEPTION), whatever the HTTP
    status."""
    try:
        payload = lenient_json(content) if content else None
    except ValueError:
        return None
    if (isinstance(payload, dict)
            and str(payload.get("responseStatus", "")).upper() in ("FAILURE", "EXCEPTION")):
        return payload
    return None


def _succeeded(payload: dict[str, Any], what: str) -> None:
    status = payload.get("responseStatus")
    if not isinstance(status, str):
        raise BadResponse(f"{what} answer has no responseStatus")
    if status.upper() in ("FAILURE", "EXCEPTION"):
        raise vault_error(payload, what)
    if status.upper() not in ("SUCCESS", "WARNING"):
        raise BadResponse(f"{what} answered responseStatus {status[:40]!r}")


def parse_links(links: Any, base_url: str = "") -> tuple[Link, ...]:
    if links is None:
        return ()
    if not isinstance(links, list):
        raise BadResponse("Vault answer: data.links is not a list")
    out = []
    for item in links:
        if not isinstance(item, dict):
            raise BadResponse("Vault answer: a data.links entry is not an object")
        url = absolute_url(base_url, item.get("href"))
        if url:
            out.append(Link(as_text(item.get("rel")) or "link", url))
    return tuple(out)


def _tasks(progress: Any) -> str | None:
    """The SDK job task summary (`progress`: [{status, size}]) as "status size" pairs, if it reads as such."""
    if not isinstance(progress, list):
        return None
    parts = [
        f"{as_text(p.get('status'))} {as_int(p.get('size'))}"
        for p in progress
        if isinstance(p, dict) and as_text(p.get("status")) and as_int(p.get("size")) is not None
    ]
    return ", ".join(parts) or None


def parse_status(payload: Any, job_id: str, base_url: str = "") -> JobStatus:
    """Read a /services/jobs/{id} answer (HTTP 200 even for errors: responseStatus decides).

    FAILURE answers raise the mapped BackendError; relative links hang off `base_url`.
    """
    if not isinstance(payload, dict):
        raise BadResponse("Vault answer is not a JSON object")
    _succeeded(payload, "Vault")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise BadResponse("Vault answer has no data object")
    word = data.get("status")
    if not isinstance(word, str) or not word.strip():
        raise BadResponse("Vault answer has no data.status word")
    word = word.strip()
    answered = data.get("id")
    if answered is not None:
        if as_int(answered) is None:
            raise BadResponse("Vault answer: data.id is not a number")
        if job_id.isdigit() and as_int(answered) != int(job_id):
            raise BadResponse(f"Vault answered about job {as_int(answered)} when asked about {job_id}")

    phase = lookup(VAULT, "Vault", word)
    errors = error_list(payload.get("errors"))
    said = [text for _, text in errors if text]
    explain = EXPLAIN.get(word.upper())
    message = " ".join(([explain] if explain else []) + said) or None
    facts = [
        ("Created by", as_text(data.get("created_by"))),
        ("Created", as_text(data.get("created_date"))),
        ("Started", as_text(data.get("run_start_date"))),
        ("Ended", as_text(data.get("run_end_date"))),
        ("Tasks", _tasks(data.get("progress"))),
        ("Vault errors", ", ".join(sorted({t for t, _ in errors})) or None),
    ]
    return JobStatus(
        job_id=job_id,
        phase=phase,
        vendor_status=word,
        message=message,
        links=parse_links(data.get("links"), base_url),
        facts=tuple((k, v) for k, v in facts if v),
    )


def read_cancel(payload: Any, job_id: str) -> str:
    """Read a jobs/actions/cancel answer for one job: the text for the user, or CancelRefused (Vault's
    words)."""
    if not isinstance(payload, dict):
        raise BadResponse("Vault cancel answer is not a JSON object")
    status = payload.get("responseStatus")
    if isinstance(status, str) and status.upper() in ("FAILURE", "EXCEPTION"):
        err = vault_error(payload, "Vault")
        if isinstance(err, AuthFailed | RateLimited | Forbidden):
            raise err
        errors = error_list(payload.get("errors"))
        raise CancelRefused((errors[0][1] if errors and errors[0][1] else err.message)[:500])
    items = payload.get("data")
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise BadResponse("Vault cancel answer has no data list")
    item = next(
        (i for i in items if isinstance(i.get("data"), dict) and str(as_int(i["data"].get("id"))) == job_id),
        items[0] if len(items) == 1 else None,
    )
    if item is None:
        raise BadResponse(f"Vault cancel answer does not mention job {job_id}")
    if str(item.get("responseStatus", "")).upper() == "SUCCESS":
        return f"Vault accepted the cancel for job {job_id}: it goes to CANCELLING, then CANCELLED."
    errors = error_list(item.get("errors"))
    if not errors:
        raise CancelRefused(f"Vault refused to cancel job {job_id}.")
    kind, text = errors[0]
    raise CancelRefused((text or kind)[:500])


def _host(url: Any) -> str:
    try:
        return urlsplit(url).netloc.lower() if isinstance(url, str) else ""
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return ""


def response_delay(value: str | None) -> float:
    """X-VaultAPI-ResponseDelay in seconds ("500ms", "500" = ms, "0.5s")."""
    m = _DELAY.fullmatch(value or "")
    if not m:
        return 0.0
    number = float(m.group(1))
    return number if (m.group(2) or "ms").lower() == "s" else number / 1000


def api_version(value: str | None) -> tuple[str, tuple[int, int]]:
    m = _VERSION.fullmatch((value or DEFAULT_API_VERSION).strip())
    if not m:
        raise ConfigError(f"field 'api_version': expected a Vault API version such as v25.3, got {value!r}")
    major, minor = int(m.group(1)), int(m.group(2))
    return f"v{major}.{minor}", (major, minor)


# -- the session ----------------------------------------------------------------------------------
def _error_types(content: bytes) -> set[str] | None:
    """The error types of a Vault answer (`errors[{type}]`, any `responseStatus`); None when it is no JSON
    object."""
    try:
        payload = lenient_json(content) if content else None
    except ValueError:
        return None
    return {t for t, _ in error_list(payload.get("errors"))} if isinstance(payload, dict) else None


class Session(RefreshingAuth):
    """Vault's session: `POST /api/{v}/auth` (form `username`, `password`) → `sessionId`, sent as
    `Authorization: {sessionId}` (NOTES.md, Vault: Login). Vault ends a session with INVALID_SESSION_ID, in an
    HTTP 200 body as its reference says (so the body is read, with the cap) or with another status: one login
    more, one retry.

    Never a login loop: after the first login, one re-login if it succeeded; then one per LOGIN_BACKOFF
    seconds until a session has actually worked; a refused or failed login is said again (with the wait)
    meanwhile. A session for another vault than the configured one is refused (Vault gives one silently to a
    user who cannot reach the asked vault). The login carries the client id header like every request
    (VaultRequest's setVaultHeaderParams).
    """

    requires_response_body = True
    carried_headers = (*RefreshingAuth.carried_headers, CLIENT_ID_HEADER)

    def __init__(self, backend: VeevaVault, settings: VaultSession) -> None:
        super().__init__(backend.name, clock=lambda: backend.clock())
        self.backend = backend
        self.settings = settings
        self.vault_name: str | None = None  # the vault the session is for, once logged in
        # Login pacing: logins since a session last worked, when the last one was, and how it ended.
        self._logins_unproven = 0
        self._last_login: float | None = None
        self._last_login_result = "ok"  # ok | refused | misconfigured | outage
        self._last_login_error = ""

    def authorize(self, request: httpx.Request, token: str) -> None:
        request.headers["Authorization"] = token

    async def token_request(self, request: httpx.Request) -> httpx.Request:
        now = self.clock()
        if not self._login_allowed(now):
            wait = LOGIN_BACKOFF - (now - (self._last_login or now))
            kinds: dict[str, type[BackendError]] = {"outage": RateLimited, "misconfigured": Misconfigured}
            error = kinds.get(self._last_login_result, AuthFailed)
            why = self._last_login_error or "the last session did not work"
            raise error(f"{why}. Not logging in to Vault again for {wait:.0f} s.", retry_after=wait)
        self._last_login = now
        self._logins_unproven += 1
        # until its answer is read, the login counts as an outage: a login that gets no answer is one
        self._last_login_result, self._last_login_error = (
            "outage", f"{self.name}: Vault did not answer the login"
        )
        return self.side_request("POST", self.backend.url(f"/api/{self.backend.api_version}/auth"), request,
                                 data={"username": self.settings.username,
                                       "password": self.settings.password})

    async def read_token(self, response: httpx.Response) -> Token:
        try:
            self.backend.raise_for_status(response)
            session = self.read_login(self.backend.json_of(response))
        except (AuthFailed, Forbidden) as exc:
            self._last_login_result, self._last_login_error = "refused", exc.message
            raise
        except Misconfigured as exc:
            self._last_login_result, self._last_login_error = "misconfigured", exc.message
            raise
        except BackendError as exc:
            self._last_login_result, self._last_login_error = "outage", exc.message
            raise
        self._last_login_result, self._last_login_error = "ok", ""
        return Token(session)

    async def refused(self, response: httpx.Response) -> bool:
        if not 200 <= response.status_code < 300:
            try:
                self.backend.raise_for_status(response)
            except AuthFailed:  # a 401, or INVALID_SESSION_ID with another status
                return True
            except BackendError:
                pass
            return False
        types = _error_types(response.content)
        if types is None:
            return False
        if "INVALID_SESSION_ID" in types:
            return True
        if not types & CONFIG_ERRORS:
            self._logins_unproven = 0  # the session worked
        return False

    def _login_allowed(self, now: float) -> bool:
        """Never log in in a loop: after the first login, one re-login if it succeeded; then one per 30 s
        until a session has actually worked."""
        if self._last_login is None or self._logins_unproven == 0 or now - self._last_login >= LOGIN_BACKOFF:
            return True
        return self._logins_unproven == 1 and self._last_login_result == "ok"

    def read_login(self, payload: Any) -> str:
        """The session id in Vault's login answer, once it is known to be for the configured vault."""
        name, user = self.backend.name, self.settings.username
        if not isinstance(payload, dict):
            raise BadResponse(f"{name}: Vault's login answer is not a JSON object")
        if str(payload.get("responseStatus", "")).upper() != "SUCCESS":
            err = mapped_vault_error(payload, name, self.backend.advice)
            if isinstance(err, Misconfigured | RateLimited):
                raise err
            kinds = ", ".join(t for t, _ in error_list(payload.get("errors"))) or "no reason given"
            raise AuthFailed(f"{name}: Vault refused the login for user {user} ({kinds})")
        session = payload.get("sessionId")
        if not isinstance(session, str) or not session.strip():
            raise BadResponse(f"{name}: Vault's login answer has no sessionId")
        self._check_vault(payload)
        return session.strip()

    def _check_vault(self, payload: dict[str, Any]) -> None:
        """Vault silently logs a user who cannot reach the asked vault into another one: refuse that
        session."""
        name, user = self.backend.name, self.settings.username
        ours = _host(self.backend.base_url)
        vaults = payload.get("vaultIds") if isinstance(payload.get("vaultIds"), list) else []
        known = [
            (as_int(v.get("id")), _host(v.get("url")), as_text(v.get("name")))
            for v in vaults or []
            if isinstance(v, dict) and isinstance(v.get("url"), str)
        ]
        vault_id = as_int(payload.get("vaultId"))
        current = next((k for k in known if k[0] == vault_id), None)
        if current is not None and current[1] == ours:
            self.vault_name = current[2] or str(vault_id)
            return
        if current is None and not known:
            log.warning("%s: Vault's login answer names no vault URL; "
                        "cannot check it is the configured vault", name, extra=about(name))
            return
        where = f"{current[2] or current[0]} at {current[1]}" if current else f"vault {vault_id}"
        raise AuthFailed(
            f"{name}: Vault gave user {user} a session for another vault ({where}), not {ours}: "
            "this user cannot reach the configured vault"
        )


# -- listing runs -------------------------------------------------------------------------------------
# Retrieve Job Monitors (uncompleted: scheduled, queued, running) and Retrieve Job Histories (completed),
# general.veevavault.dev/vault-api/api-reference/26.2/jobs/retrieve-job-monitors/ and
# .../retrieve-job-histories/: `limit` 1 to 200, paged by `offset`, `responseDetails.total` the whole count.
MONITORS_PATH = "/api/{}/services/jobs/monitors"
HISTORIES_PATH = "/api/{}/services/jobs/histories"
LIST_LIMIT = 200


def parse_listing(payload: dict[str, Any], what: str) -> tuple[list[Run], int | None]:
    """One monitors or histories page: its runs and `responseDetails.total`. Times are read in the zone they
    carry (the documented examples end in Z); a job without an id or a title is skipped, since nothing could
    follow or watch it."""
    jobs = payload.get("jobs", [])
    if not isinstance(jobs, list):
        raise BadResponse(f"{what}: Vault's job listing has no list of jobs")
    runs: list[Run] = []
    for item in jobs:
        if not isinstance(item, dict):
            continue
        job_id, title = as_int(item.get("job_id")), as_text(item.get("title"))
        word = as_text(item.get("status"))
        if job_id is None or title is None:
            continue
        word = word or "UNKNOWN"
        # a SCHEDULED instance's run_start_date is when it is due to start (the monitors example): not yet a
        # start, so it counts from its creation like a queued one
        start = None if word.upper() == "SCHEDULED" else epoch_seconds(item.get("run_start_date"))
        runs.append(Run(
            job_id=str(job_id), name=title, phase=lookup(VAULT, "Vault", word), vendor_status=word,
            started_at=start or epoch_seconds(item.get("created_date")),
            ended_at=epoch_seconds(item.get("run_end_date")),
        ))
    details = payload.get("responseDetails")
    total = as_int(details.get("total")) if isinstance(details, dict) else None
    return runs, total


# -- the adapter --------------------------------------------------------------------------------------
class VeevaVault(Backend):
    """Veeva Vault's job API.

    Following by name: a run is listed by Retrieve Job Monitors (scheduled, queued, running) and Retrieve
    Job Histories (completed); neither filters by name, so the bot matches the job's `title` itself. Vault
    documents nothing about the case of titles; they are labels people give job definitions, so they are
    matched without regard to case (`names_case_sensitive` False: "user account activation" follows "User
    Account Activation")."""

    type_name = "veeva_vault"
    label = "Veeva Vault"
    capabilities = Capabilities(cancel=True, logs=True)
    cancel_hint = f"Cancel it in {HINT}."
    job_id_help = "it is the job_id Vault returned when the job started, digits only, e.g. 1201"
    min_poll_interval = 10.0  # Vault answers API_LIMIT_EXCEEDED to a second status call within 10 s
    min_poll_reason = "Vault allows one status call per job per 10 s"
    burst_low = 50  # below this many calls left in the burst window, requests are spread over it
    follow_by = "job title"
    names_case_sensitive = False

    def __init__(self, name: str, config: BackendConfig, *, secrets: SecretStore | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        super().__init__(name, config, secrets=secrets, http=http)
        if not isinstance(config.auth, VaultSession):
            raise ConfigError(
                f"backend '{name}': field 'auth.type': Vault takes vault_session, not '{config.auth.type}'"
            )
        try:
            self.api_version, self._version = api_version(config.api_version)
        except ConfigError as exc:
            raise ConfigError(f"backend '{name}': {exc}") from None
        self.client_id: str = config.vault_client_id or DEFAULT_CLIENT_ID
        # on every request, /auth included (as VAPIL does)
        self.http.headers[CLIENT_ID_HEADER] = self.client_id
        self.advice = (f"the backend's api_version ({self.api_version}) or base_url ({self.base_url}) "
                       "is wrong (base_url is the vault's https:// address without /api; "
                       "api_version must be one the vault offers)")
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
        self.session = Session(self, config.auth)
        self.auth = self.session
        # job id -> (last status call, last answer)
        self._seen: dict[str, tuple[float, JobStatus | None]] = {}
        self._next_request_at = 0.0

    @property
    def can_cancel(self) -> bool:
        return self._version >= CANCEL_SINCE

    @property
    def backoff_hint(self) -> float:
        """Seconds until Vault's burst headers let us send the next request (0 = now)."""
        return max(0.0, self._next_request_at - self.clock())

    def validate_job_id(self, text: str) -> str:
        return digits_job_id(text, self.label, self.job_id_help)

    # -- HTTP: pacing by the burst headers (the session is `Session`'s) ---------------------------------
    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        wait = self.backoff_hint
        if wait > MAX_PACE_SLEEP:
            raise RateLimited(f"{self.name}: Vault's burst limit is nearly used up; pausing",
                              retry_after=wait)
        if wait > 0:
            await self.sleep(wait)
        resp = await super().request(method, path, **kwargs)
        self._note_limits(resp)
        return resp

    def raise_for_status(self, resp: httpx.Response) -> None:
        """Vault's envelope first, whatever the HTTP status; an error type we act on decides the BackendError.
        A 404 that is no Vault answer at all means the address is not a Vault API (Vault itself says "no such
        job" with INVALID_DATA); other statuses go by their class, with the envelope's words."""
        if 200 <= resp.status_code < 300:
            return
        envelope = failure_envelope(resp.content)
        err = mapped_vault_error(envelope, self.name, self.advice) if envelope is not None else None
        if err is not None:
            header = retry_after_seconds(resp.headers.get("Retry-After"))
            if isinstance(err, RateLimited) and header is not None:
                err.retry_after = header
            raise err
        if resp.status_code == 404 and envelope is None:
            raise Misconfigured(f"{self.name} answered HTTP 404 with no Vault answer: {self.advice}")
        super().raise_for_status(resp)

    def _note_limits(self, resp: httpx.Response) -> None:
        gap = response_delay(resp.headers.get("X-VaultAPI-ResponseDelay"))
        remaining = as_int(resp.headers.get("X-VaultAPI-BurstLimitRemaining"))
        if remaining is not None and remaining < self.burst_low:
            gap = max(gap, BURST_WINDOW / max(remaining, 1))  # spread what is left over a whole window
        if gap > 0:
            self._next_request_at = max(self._next_request_at, self.clock() + gap)
            log.info("%s: Vault burst limit low (%s left) or responses delayed; next call in %.1f s",
                     self.name, remaining, gap, extra=about(self.name))

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One Vault API call (the session logs in first, and once more on INVALID_SESSION_ID or 401): its
        answer."""
        payload = self.json_of(await self.request(method, path, **kwargs))
        if not isinstance(payload, dict):
            raise BadResponse(f"{self.name}: Vault answer is not a JSON object")
        types = {t for t, _ in error_list(payload.get("errors"))}
        if types & CONFIG_ERRORS:  # the same with HTTP 200: the address is wrong, not the job
            raise vault_error(payload, self.name, self.advice)
        if "INVALID_SESSION_ID" in types:  # after the session's one re-login
            raise AuthFailed(f"{self.name}: Vault refused a fresh session (INVALID_SESSION_ID)")
        return payload

    # -- the API ---------------------------------------------------------------------------------
    async def status(self, job_id: str) -> JobStatus:
        """Job status, never more than one call per job per `min_poll_interval`: sooner, the last answer."""
        job_id = self.validate_job_id(job_id)
        now = self.clock()
        when, last = self._seen.get(job_id, (None, None))
        if when is not None and now - when < self.min_poll_interval:
            if last is not None:
                return last
            raise RateLimited(f"{self.name}: Vault allows one status call per job "
                              f"every {self.min_poll_interval:.0f} s",
                              retry_after=self.min_poll_interval - (now - when))
        if len(self._seen) > 1000:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.min_poll_interval}
        self._seen[job_id] = (now, last)
        payload = await self._call("GET", f"/api/{self.api_version}/services/jobs/{path_segment(job_id)}")
        status = parse_status(payload, job_id, self.base_url)
        self._seen[job_id] = (now, status)
        return status

    async def recent_runs(self, since: float) -> list[Run]:
        """Every uncompleted job (monitors, however long ago it was created: a run still live at `since`)
        and every job completed since `since` (histories, `start_date` filters by completion), each paged by
        `offset` until `responseDetails.total` is read: two requests when each fits in a page."""
        monitors = await self._list(MONITORS_PATH, {})
        histories = await self._list(HISTORIES_PATH, {"start_date": iso_utc(since)})
        return monitors + histories

    async def _list(self, template: str, query: dict[str, str]) -> list[Run]:
        path = template.format(self.api_version)
        runs: list[Run] = []
        offset = 0
        for _ in range(MAX_LIST_PAGES):
            payload = await self._list_page(path, {**query, "limit": LIST_LIMIT, "offset": offset})
            page, total = parse_listing(payload, self.name)
            runs += page
            offset += LIST_LIMIT
            if not page or total is None or offset >= total:
                return runs
        log.warning("%s: Vault's %s listing goes on past %d pages; read the first %d runs", self.name,
                    path.rsplit("/", 1)[-1], MAX_LIST_PAGES, len(runs), extra=about(self.name))
        return runs

    async def _list_page(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """One listing page, its FAILURE answered as any call's, except INVALID_DATA: about a listing it is a
        parameter Vault refused (a date, a limit), not "no such job"."""
        payload = await self._call("GET", path, params=params)
        kind, detail = _first_error(payload)
        if kind == "INVALID_DATA" and str(payload.get("responseStatus", "")).upper() == "FAILURE":
            raise Refused(f"{self.name} refused the job listing ({detail})")
        _succeeded(payload, self.name)
        return payload

    async def job_names(self) -> list[str]:
        """The titles of the jobs scheduled, queued or running now and of the last LIST_LIMIT completed ones
        (Vault lists no job definitions): one page of each listing."""
        names: set[str] = set()
        for template in (MONITORS_PATH, HISTORIES_PATH):
            payload = await self._list_page(template.format(self.api_version),
                                            {"limit": LIST_LIMIT, "offset": 0})
            names.update(run.name for run in parse_listing(payload, self.name)[0])
        return sorted(names, key=str.casefold)

    async def cancel(self, job_id: str) -> str:
        job_id = self.validate_job_id(job_id)
        if not self.can_cancel:
            raise CancelNotSupported(
                f"Vault's cancel API needs API v25.3 or later; {self.name} uses {self.api_version}. "
                f"{self.cancel_hint}"
            )
        payload = await self._call(
            "POST", f"/api/{self.api_version}/services/jobs/actions/cancel", json=[{"job_id": int(job_id)}]
        )
        return read_cancel(payload, job_id)

    async def failure_details(self, status: JobStatus) -> FailureDetails | None:
        """Once a job has ended: what its status word means, Vault's error types, its links, where to look."""
        if not status.terminal:
            return None
        lines = [status.message] if status.message and status.phase is not Phase.SUCCEEDED else []
        types = dict(status.facts).get("Vault errors")
        if types:
            lines.append(f"Vault error types: {types}")
        return FailureDetails(
            lines=tuple(lines),
            total_errors=len(types.split(", ")) if types else None,
            links=status.links,
            hint=f"{HINT} (job {status.job_id})",
        )

    async def check(self) -> list[tuple[str, bool, str]]:
        """Log in (reachable, authenticated, right vault), then GET /api for the configured API version."""
        try:
            await self.sign_in()
        except (AuthFailed, Forbidden) as exc:
            return [("reachable", True, f"{self.base_url} answered"), ("authenticated", False, str(exc))]
        except Misconfigured as exc:
            return [("reachable", True, f"{self.base_url} answered"), ("API address", False, str(exc))]
        except BackendError as exc:
            return [("reachable", False, str(exc))]
        rows = [
            ("reachable", True, f"{self.base_url} answered"),
            ("authenticated", True,
             f"logged in as {self.session.settings.username} to vault {self.session.vault_name or '?'}"),
        ]
        try:
            payload = await self._call("GET", "/api")
            _succeeded(payload, "Vault")
            values = payload.get("values")
            listed = values if isinstance(values, dict) else {}
            offered = sorted((v for v in listed if _VERSION.fullmatch(v)), key=lambda v: api_version(v)[1])
        except BackendError as exc:
            return [*rows, ("API version", False, f"could not list the vault's API versions: {exc}")]
        ok = self.api_version in offered
        detail = (f"{self.api_version} offered" if ok
                  else f"{self.api_version} not offered (vault offers {', '.join(offered[-4:]) or 'none'})")
        if not self.can_cancel:
            detail += "; cancel needs v25.3 or later"
        return [*rows, ("API version", ok, detail)]
