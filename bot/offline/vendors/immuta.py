"""Simulated Immuta jobs API: the batch `POST /jobs/statuses` and API-key auth (`/bim/apikey/authenticate`).

`POST /jobs/statuses {"jobIds": [...], "wait": s, "pollInterval": s}` answers a map keyed by job id,
`{"<id>": {"id", "state", "output"}}`; ids the simulator does not know are simply absent. `wait` is
accepted and recorded but never waited on (the answer is immediate). The payload is checked as Immuta's own
API schema says (its swagger, `definitions.jobIds`: an array of at least one (`minItems: 1`), unique, each "A
job UUID" (`x-format: {guid: true}`); copied in ../shared/vendor-docs/listing/immuta/
immuta-swagger-jobs-excerpt.json): anything else is refused whole with HTTP 400 in Immuta's error body, with
the words of the Joi validation that schema comes from.

A job's `Step.state` is the Immuta state word: created, retry, active, completed, failed, expired,
cancelled (or anything else, to test unknown words), sent as a string, or as a one-element list when the
state is given as a list (`Step(0, ["active"])`) or the job has `state_as_list=True`. `Step.fields`:
`output` (str, or any JSON value) and any other key added to the job object. `add_job` data: `output`
(default output for every step), `state_as_list`.

Listing (`GET /jobs/search`, `GET /jobs/summary`, documentation.immuta.com/SaaS/developer-guides/api-intro/
immuta-v1-api/configure-your-instance-of-immuta/jobs): filters `jobType` and `state` (each once or repeated,
the swagger's `collectionFormat: multi`), `startDate`/`endDate` (`format: date`: a date or an ISO date-time,
against the job's creation), `offset` (a string in the swagger) and `size` (`minimum: 1`; no maximum is
documented, so the simulator answers at most `search_page_max` (500) whatever is asked); the answer
`{"jobs": [...], "next": <offset of the next page, or null>}`. The job objects are not documented ("List of
job objects containing job details"); Immuta's states are exactly pg-boss's job states, so the simulator
sends pg-boss's fields: `id`, `name` (the job type), `state`, `createdOn`, `startedOn`, `completedOn`. A job's
type is its `name` (add_job `name=`). A bad date, offset or size is a 400 in Immuta's (Joi's) words.

Auth: `api_keys` holds the accepted keys. Either the raw key as `Authorization: <key>`, or
`POST /bim/apikey/authenticate {"apikey"}` → `{"token"}` and `Authorization: Bearer <token>`.
Fixed tokens in `bearer_tokens` are accepted too (never expire).
`expire_tokens()` ends every issued token; a request with an ended token gets `auth_error_status`
(401, or 500 as some Immuta endpoints answer where 401 is meant).
"""

from __future__ import annotations

import itertools
import json
import re
import secrets as _secrets
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from bot.offline.vendors.core import Clock, SimJob, Step, VendorSim, bearer_token, guarded

# Joi's string().guid() without a version (hapijs/joi lib/types/string.js): 8-4-4-4-12 hex digits, the dashes
# (or colons) optional, any version and variant digit, optionally in matching brackets
_GUID = re.compile(
    r"([\[{(]?)[0-9A-F]{8}([:-]?)[0-9A-F]{4}\2?[0-9A-F]{4}\2?[0-9A-F]{4}\2?[0-9A-F]{12}([\]})]?)",
    re.IGNORECASE,
)
_BRACKETS = {"": "", "{": "}", "[": "]", "(": ")"}


def jobs_ids_refusal(body: Any) -> str | None:
    """Why Immuta's schema refuses a `POST /jobs/statuses` payload, in Joi's words (its messages
    `array.min`, `string.guid`, `array.unique`...), or None when it takes it."""
    if not isinstance(body, dict):
        return '"value" must be of type object'
    if "jobIds" not in body:
        return '"jobIds" is required'
    ids = body["jobIds"]
    if not isinstance(ids, list):
        return '"jobIds" must be an array'
    if not ids:
        return '"jobIds" must contain at least 1 items'
    seen: set[str] = set()
    for i, job_id in enumerate(ids):
        if not isinstance(job_id, str):
            return f'"jobIds[{i}]" must be a string'
        guid = _GUID.fullmatch(job_id)
        if guid is None or _BRACKETS.get(guid.group(1)) != guid.group(3):
            return f'"jobIds[{i}]" must be a valid GUID'
        if job_id in seen:
            return f'"jobIds[{i}]" contains a duplicate value'
        seen.add(job_id)
    return None


class ImmutaSim(VendorSim):
    """Immuta's job status API (see the module docstring)."""

    vendor = "immuta"
    job_name = "Immuta job"
    first_state = "created"
    jobs_cancellable = False
    run_words = ("created", "active", "completed", "failed")
    search_page_max = 500

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.api_keys: set[str] = set()
        self.tokens: dict[str, bool] = {}  # token -> still valid
        self.auth_error_status = 401
        self.max_job_ids: int | None = None  # refuse larger batches with HTTP 400 (None: no limit)
        self._serial = itertools.count(1)

    def new_job_id(self) -> str:
        return str(uuid.uuid4())

    def expire_tokens(self) -> None:
        for tok in self.tokens:
            self.tokens[tok] = False

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/bim/apikey/authenticate", self._authenticate),
            web.post("/jobs/statuses", self._statuses),
            web.get("/jobs/search", self._search),
            web.get("/jobs/summary", self._summary),
        ]

    def render(self, job: SimJob, step: Step) -> dict[str, Any]:
        state = step.state
        if job.data.get("state_as_list") and not isinstance(state, list):
            state = [state]
        body: dict[str, Any] = {"id": job.job_id, "state": state}
        output = step.fields.get("output", job.data.get("output"))
        if output is not None:
            body["output"] = output
        body.update({k: v for k, v in step.fields.items() if k != "output"})
        return body

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        """Immuta's error body: the status, its phrase as `error`, and a message."""
        return web.json_response(
            {"statusCode": status, "error": HTTPStatus(status).phrase, "message": message}, status=status
        )

    async def refusal(self, request: web.Request) -> web.Response | None:
        """Immuta's error body unless the request has a live token or an API key (see the module
        docstring)."""
        header = request.headers.get("Authorization", "")
        token = bearer_token(request)
        if token is not None:
            valid = self.tokens.get(token)
            if valid or token in self.bearer_tokens:  # issued tokens, or fixed ones a test/demo adds
                return None
            if valid is False:  # a token we issued that has ended
                return self._error(self.auth_error_status, "Token expired")
            return self._error(401, "Invalid token")
        if header and header in self.api_keys:
            return None
        return self._error(401, "Missing or invalid authorization")

    async def _authenticate(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return self._error(400, "Invalid JSON")
        if not isinstance(body, dict) or body.get("apikey") not in self.api_keys:
            return self._error(401, "Invalid API key")
        token = f"imt-{next(self._serial)}-{_secrets.token_hex(12)}"
        self.tokens[token] = True
        return web.json_response({"token": token})

    @guarded
    async def _statuses(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return self._error(400, "Invalid JSON")
        refused = jobs_ids_refusal(body)
        if refused is not None:
            return self._error(400, refused)
        ids = body["jobIds"]
        if self.max_job_ids is not None and len(ids) > self.max_job_ids:
            return self._error(400, f'"jobIds" must contain at most {self.max_job_ids} items')

        async def good() -> web.Response:
            now = self.clock()
            out = {}
            for job_id in ids:
                job = self.jobs.get(job_id)
                if job is not None:
                    out[job_id] = self.render(job, job.current(now))
            return web.json_response(out)

        return await self.with_faults(good)

    # -- listing -----------------------------------------------------------------------------------
    def listed(self, job: SimJob, now: float) -> dict[str, Any]:
        """A job as `/jobs/search` lists it (pg-boss's fields: see the module docstring)."""
        step = job.current(now)
        state = step.state[0] if isinstance(step.state, list) and step.state else step.state
        started = next((s for s in job.steps
                        if s.at <= now - job.started and s.state not in ("created", "retry")), None)
        ended = state in ("completed", "failed", "expired", "cancelled")
        return {
            "id": job.job_id,
            "name": job.name,
            "state": state,
            "createdOn": _iso(job.started),
            "startedOn": _iso(job.started + started.at) if started is not None else None,
            "completedOn": _iso(job.started + step.at) if ended else None,
        }

    @guarded
    async def _search(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            start = _date(query.get("startDate"), "startDate", end=False)
            end = _date(query.get("endDate"), "endDate", end=True)
        except ValueError as exc:
            return self._error(400, str(exc))
        raw_offset, raw_size = query.get("offset", "0"), query.get("size", str(self.search_page_max))
        if not raw_offset.isdigit():
            return self._error(400, '"offset" must be a number')
        if not raw_size.lstrip("-").isdigit() or int(raw_size) < 1:
            return self._error(400, '"size" must be greater than or equal to 1')
        offset, size = int(raw_offset), min(int(raw_size), self.search_page_max)
        types, states = set(query.getall("jobType", [])), set(query.getall("state", []))

        async def good() -> web.Response:
            now = self.clock()
            rows = []
            for job in sorted(self.jobs.values(), key=lambda j: j.started):
                item = self.listed(job, now)
                if (types and job.name not in types) or (states and item["state"] not in states):
                    continue
                if (start is not None and job.started < start) or (end is not None and job.started >= end):
                    continue
                rows.append(item)
            page = rows[offset:offset + size]
            more = offset + size < len(rows)
            return web.json_response({"jobs": page, "next": str(offset + size) if more else None})

        return await self.with_faults(good)

    @guarded
    async def _summary(self, request: web.Request) -> web.Response:
        """Per job type, how many jobs are in each state (the shape is not documented: "Details about each
        job type, including the number of jobs in each state for each job type")."""
        now = self.clock()
        counts: dict[str, dict[str, int]] = {}
        for job in self.jobs.values():
            state = str(self.listed(job, now)["state"])
            per = counts.setdefault(job.name, {})
            per[state] = per.get(state, 0) + 1
        return web.json_response({"jobType": [{"name": name, **per} for name, per in sorted(counts.items())]})


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def _date(text: str | None, name: str, *, end: bool) -> float | None:
    """`startDate`/`endDate` (swagger `format: date`) as epoch seconds: a bare date is its whole day (from its
    start, or up to its end for `endDate`); ValueError in Joi's words when it is no date."""
    if text is None:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
            return day + 86400.0 if end else day
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        raise ValueError(f'"{name}" must be a valid date') from None
