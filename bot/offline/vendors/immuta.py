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
