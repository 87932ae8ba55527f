"""Immuta adapter: every watched Immuta job's status in one `POST /jobs/statuses` per chunk of ids.

The answer is a map keyed by job id, `{"<id>": {"id", "state", "output"}}`; `state` is a string or a
one-element list. An id missing from the answer is unknown or purged (JobNotFound for that id, not a
failure). Auth: the raw API key as `Authorization: <key>` (no scheme: documentation.immuta.com/saas/
developer-guides/api-intro/authentication), or (default) the key exchanged at `POST /bim/apikey/authenticate`
for a token sent as `Authorization: Bearer <token>` (`KeyExchange`); on 401 (or the 500 some Immuta endpoints
answer where 401 is meant, NOTES.md [client]) the key is exchanged again once. No cancel API.

A job id is a GUID: Immuta's own API schema (its swagger, ../shared/vendor-docs/listing/immuta/
immuta-swagger-jobs-excerpt.json, `definitions.jobIds`) types `jobIds` as an array of at least one
(`minItems: 1`), unique, "A job UUID" each (`x-format: {guid: true}`: Joi's `string().guid()`, the hapi
validation that swagger was generated from), and the docs' example id is
`cefb58a0-cd71-11ec-8e29-81c20d280994`
(documentation.immuta.com/SaaS/developer-guides/api-intro/immuta-v1-api/configure-your-instance-of-immuta/jobs).
So anything else is refused at the command, before Immuta would refuse the whole batch with a 400.

Following: Immuta's jobs are its platform's background jobs, told apart by job *type*; `GET /jobs/search`
filters by type, state and dates and documents no job name (same page, "Get jobs based on user"). So a follow
there is by job type ("every failed run of this type"), which serves the case Immuta's users have (a kind of
background work that keeps failing); the types come from `GET /jobs/summary` ("Details about each job type").
The job objects of a search are not documented; Immuta's states are exactly pg-boss's (created, retry,
active, completed, expired, cancelled, failed), so the adapter reads pg-boss's fields (`id`, `name` the type,
`state`, `createdOn`/`startedOn`/`completedOn`) and the obvious other spellings (`jobType`, `type`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.backends.auth import HeaderAuth, RefreshingAuth, SecretStore, Token
from bot.backends.base import Backend, Capabilities
from bot.backends.http import error_words, retry_after_seconds
from bot.backends.values import MAX_LIST_PAGES, as_text, epoch_seconds
from bot.domain.errors import AuthFailed, BackendError, BadResponse, InvalidJobId, JobNotFound, Unavailable
from bot.domain.runs import Run
from bot.domain.states import IMMUTA, lookup
from bot.domain.status import FailureDetails, JobStatus
from bot.support.config import ApiKey, BackendConfig, BearerAuth, ConfigError
from bot.support.logs import about

log = logging.getLogger(__name__)

VENDOR = "immuta"
CHUNK_SIZE = 500  # job ids per POST /jobs/statuses
MESSAGE_MAX_CHARS = 3000
# A GUID as Immuta's schema takes one (Joi's guid rule: 32 hex digits, 8-4-4-4-12, any version and variant,
# hapijs/joi lib/types/string.js), written with dashes or without, optionally in braces; sent in the form
# Immuta itself writes ids in (lower case, dashes), which is also the key its answer uses
_GUID = re.compile(
    r"\{?([0-9a-fA-F]{8})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{12})\}?"
)
# What `check` asks about: the nil UUID, well-formed for Immuta's schema (Joi's guid takes any version digit)
# and never a job's id (RFC 9562 section 5.9: the special value no generator hands out), so the answer is the
# empty map of an API that works, where an empty `jobIds` would be refused (`minItems: 1`)
PROBE_ID = "00000000-0000-0000-0000-000000000000"


# GET /jobs/search: `size` has a documented minimum of 1 and no maximum; the answer's `next` (a nullable
# string, the swagger's `offset` is a string too) is where the next page starts, so a server that answers
# fewer than asked is still read whole.
SEARCH_SIZE = 500
LIVE_STATES = tuple(word for word, phase in IMMUTA.items() if not phase.terminal)


def _first_text(item: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        text = as_text(item.get(key))
        if text is not None:
            return text
    return None


def parse_search(payload: Any) -> tuple[list[Run], str | None]:
    """One `/jobs/search` page: its runs (a job without an id or a type is skipped: nothing could follow
    it) and `next`."""
    if not isinstance(payload, dict) or not isinstance(payload.get("jobs", []), list):
        raise BadResponse("Immuta /jobs/search answer is not {jobs: [...], next}")
    runs: list[Run] = []
    for item in payload.get("jobs", []):
        if not isinstance(item, dict):
            continue
        job_id, kind = _first_text(item, "id"), _first_text(item, "jobType", "type", "name")
        if job_id is None or kind is None:
            continue
        word = item.get("state")
        word = word[0] if isinstance(word, list) and word else word
        text = as_text(word) or "unknown"
        runs.append(Run(
            job_id=job_id.lower(), name=kind, phase=lookup(IMMUTA, "Immuta", text), vendor_status=text,
            started_at=epoch_seconds(item.get("startedOn")) or epoch_seconds(item.get("createdOn")),
            ended_at=epoch_seconds(item.get("completedOn")),
        ))
    nxt = payload.get("next")
    return runs, (str(nxt) if nxt not in (None, "") else None)


class _ServerError(Unavailable):
    """HTTP 500: an outage, or Immuta's way of saying 401 on some endpoints."""


def validate_immuta_job_id(text: str) -> str:
    """An Immuta job id: its globally unique identifier, as Immuta writes it (lower case, with dashes)."""
    value = text.strip() if isinstance(text, str) else ""
    guid = _GUID.fullmatch(value)
    if guid and value.startswith("{") == value.endswith("}") and value.count("-") in (0, 4):
        return "-".join(guid.groups()).lower()
    shown = value[:40] + ("…" if len(value) > 40 else "") if value else "(empty)"
    raise InvalidJobId(f"'{shown}' is not an Immuta job id: {Immuta.job_id_help}")


def _output_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = as_text(value)
    else:
        text = json.dumps(value, default=str, separators=(",", ":"))
    if text and len(text) > MESSAGE_MAX_CHARS:
        text = text[: MESSAGE_MAX_CHARS - 1] + "…"
    return text


def parse_status(entry: Any, job_id: str) -> JobStatus:
    """One job object of the statuses map (`{"id", "state", "output"}`) as a JobStatus; BadResponse if odd."""
    if not isinstance(entry, dict):
        raise BadResponse(
            f"immuta: the status of job {job_id} is a {type(entry).__name__}, expected an object"
        )
    state = entry.get("state")
    if isinstance(state, list):
        if len(state) != 1:
            raise BadResponse(f"immuta: job {job_id}: 'state' is a list of {len(state)}, expected one state")
        state = state[0]
    if not isinstance(state, str) or not state.strip():
        raise BadResponse(f"immuta: job {job_id}: 'state' is missing or not text")
    answered = entry.get("id")
    if answered is not None and (
        not isinstance(answered, str | int) or str(answered).lower() != job_id.lower()
    ):
        raise BadResponse(f"immuta: asked about job {job_id}, the answer is about another job")
    state = state.strip()
    facts = tuple((label, t) for label, key in (("Job type", "type"), ("Job name", "name"))
                  if (t := as_text(entry.get(key))) is not None)
    return JobStatus(
        job_id=job_id,
        phase=lookup(IMMUTA, VENDOR, state),
        vendor_status=state,
        message=_output_text(entry.get("output")),
        facts=facts,
    )


def parse_statuses(payload: Any, job_ids: Iterable[str]) -> dict[str, JobStatus | BackendError]:
    """The statuses answer (a map keyed by job id) for `job_ids`: a JobStatus, or an error per id."""
    if isinstance(payload, list) and all(
        isinstance(e, dict) and isinstance(e.get("id"), str) for e in payload
    ):
        payload = {e["id"]: e for e in payload}  # tolerate a list of job objects too
    if not isinstance(payload, dict):
        raise BadResponse(f"immuta: expected a map of job statuses, got {type(payload).__name__}")
    by_lower = {k.lower(): v for k, v in payload.items() if isinstance(k, str)}
    out: dict[str, JobStatus | BackendError] = {}
    for job_id in job_ids:
        entry = payload.get(job_id, by_lower.get(job_id.lower()))
        if entry is None:
            out[job_id] = JobNotFound(f"Immuta does not know job {job_id}: unknown or purged")
            continue
        try:
            out[job_id] = parse_status(entry, job_id)
        except BackendError as exc:
            out[job_id] = exc
    return out


class KeyExchange(RefreshingAuth):
    """The API key exchanged at `POST /bim/apikey/authenticate {"apikey"}` for a token (`{"token"}`), sent as
    a bearer token. Some Immuta endpoints answer 500 where 401 is meant: a 500 is a refusal too, so it costs
    one exchange and one retry, and a real 500 then reaches the caller as the outage it is."""

    def __init__(self, backend: Immuta, key: str) -> None:
        super().__init__(backend.name)
        self.backend = backend
        self._key = key

    async def token_request(self, request: httpx.Request) -> httpx.Request:
        return self.side_request("POST", self.backend.url("/bim/apikey/authenticate"), request,
                                 json={"apikey": self._key})

    async def read_token(self, response: httpx.Response) -> Token:
        name = self.backend.name
        try:
            self.backend.raise_for_status(response)
        except AuthFailed:
            raise AuthFailed(f"{name} refused the API key (POST /bim/apikey/authenticate)") from None
        except BadResponse as exc:  # (an outage, a 500 among them, stays what it is)
            raise AuthFailed(f"{name} refused the API key ({exc.message})") from None
        body = self.backend.json_of(response)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise BadResponse(f"{name}: the API key exchange answered without a token")
        log.info("%s: API key exchanged for a token", name, extra=about(name))
        return Token(token)

    async def refused(self, response: httpx.Response) -> bool:
        return response.status_code in (401, 500)


class Immuta(Backend):
    """Immuta jobs (type `immuta`)."""

    type_name = "immuta"
    label = "Immuta"
    capabilities = Capabilities(cancel=False, logs=False, batch=True)
    cancel_hint = "Immuta has no documented cancel API: cancel the job in the Immuta UI."
    job_id_help = "it is the job's globally unique identifier, e.g. cefb58a0-cd71-11ec-8e29-81c20d280994"
    follow_by = "job type"
    # a job type is matched exactly, as the `jobType` filter of /jobs/search takes it
    names_case_sensitive = True

    def __init__(self, name: str, config: BackendConfig, *, secrets: SecretStore | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        super().__init__(name, config, secrets=secrets, http=http)
        auth = config.auth
        if isinstance(auth, ApiKey):
            self.auth = KeyExchange(self, auth.key) if auth.exchange else HeaderAuth(auth.key)
        elif isinstance(auth, BearerAuth):
            self.auth = HeaderAuth.bearer(auth.token)
        else:
            raise ConfigError(
                f"backend '{name}': immuta supports auth types api_key, bearer, not '{auth.type}'"
            )

    def raise_for_status(self, resp: httpx.Response) -> None:
        if resp.status_code == 500:
            words = error_words(resp.content, self.credentials(resp.request))
            raise _ServerError(f"{self.name} is having trouble (HTTP 500{': ' + words if words else ''})",
                               retry_after=retry_after_seconds(resp.headers.get("Retry-After")))
        super().raise_for_status(resp)

    async def _post_statuses(self, ids: list[str]) -> Any:
        return self.json_of(await self.request("POST", "/jobs/statuses", json={"jobIds": ids, "wait": 0}))

    # -- the adapter ------------------------------------------------------------------------------
    def validate_job_id(self, text: str) -> str:
        return validate_immuta_job_id(text)

    async def statuses(self, job_ids: Iterable[str]) -> Mapping[str, JobStatus | BackendError]:
        """All the ids' statuses, one POST per CHUNK_SIZE ids; per id a JobStatus or its own error."""
        out: dict[str, JobStatus | BackendError] = {}
        wanted: dict[str, list[str]] = {}  # normalised id -> the ids as asked
        for raw in job_ids:
            try:
                wanted.setdefault(self.validate_job_id(raw), []).append(raw)
            except InvalidJobId as exc:
                out[raw] = exc
        ids = list(wanted)
        chunks = [ids[i: i + CHUNK_SIZE] for i in range(0, len(ids), CHUNK_SIZE)]

        async def one(chunk: list[str]) -> dict[str, JobStatus | BackendError]:
            try:
                return parse_statuses(await self._post_statuses(chunk), chunk)
            except BackendError as exc:
                return {j: exc for j in chunk}

        for result in await asyncio.gather(*(one(c) for c in chunks)):
            for job_id, res in result.items():
                for asked in wanted[job_id]:
                    out[asked] = res
        return out

    async def status(self, job_id: str) -> JobStatus:
        job_id = self.validate_job_id(job_id)
        res = (await self.statuses([job_id]))[job_id]
        if isinstance(res, BackendError):
            raise res
        return res

    async def recent_runs(self, since: float) -> list[Run]:
        """Two searches: the jobs live now (`state` created, retry, active: however old), and the jobs
        created from the day of `since` on (`startDate` is a date in the swagger); of those, the ones that
        started or ended since `since`. A job created before that day and ended after `since` is seen as live
        by the discovery before it ended."""
        day = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d")
        live = await self._search([("state", word) for word in LIVE_STATES])
        recent = await self._search([("startDate", day)])
        seen = {run.job_id for run in live}
        return live + [run for run in recent if run.job_id not in seen and (
            (run.started_at or 0.0) >= since or (run.ended_at or 0.0) >= since)]

    async def _search(self, query: list[tuple[str, str]]) -> list[Run]:
        runs: list[Run] = []
        offset: str | None = "0"
        for _ in range(MAX_LIST_PAGES):
            page, offset = parse_search(await self.get_json(
                "/jobs/search", params=[*query, ("offset", offset or "0"), ("size", str(SEARCH_SIZE))]))
            runs += page
            if offset is None or not page:
                return runs
        log.warning("%s: Immuta's job search goes on past %d pages; read the first %d runs", self.name,
                    MAX_LIST_PAGES, len(runs), extra=about(self.name))
        return runs

    async def job_names(self) -> list[str]:
        """The job types `GET /jobs/summary` counts jobs of (strings, or objects naming their type)."""
        payload = await self.get_json("/jobs/summary")
        kinds = payload.get("jobType") if isinstance(payload, dict) else payload
        names: set[str] = set()
        for entry in kinds if isinstance(kinds, list) else []:
            name = as_text(entry) if isinstance(entry, str) else (
                _first_text(entry, "jobType", "type", "name") if isinstance(entry, dict) else None)
            if name is not None:
                names.add(name)
        return sorted(names)

    async def failure_details(self, status: JobStatus) -> FailureDetails | None:
        """Immuta's only detail is `output`, which the state-change reply already shows."""
        if status.message:
            return None
        return FailureDetails(hint="Immuta gave no output for this job; look it up in the Immuta UI.")

    async def check(self) -> list[tuple[str, bool, str]]:
        rows: list[tuple[str, bool, str]] = []
        if isinstance(self.auth, KeyExchange):
            try:
                await self.sign_in()
                rows.append(("API key exchange", True, "token received"))
            except BackendError as exc:
                return [("API key exchange", False, exc.message)]
        try:
            payload = await self._post_statuses([PROBE_ID])
        except BackendError as exc:
            rows.append(("jobs API", False, exc.message))
            return rows
        # the answer is the statuses map, without the probe (no such job) or, were it ever there, with it
        ok = isinstance(payload, dict)
        rows.append(("jobs API", ok, "POST /jobs/statuses answered" if ok else "unexpected answer shape"))
        return rows
