"""Simulated Oracle Fusion saas-batch job scheduler: job status, output files, ESS cancel and OAuth2 tokens.

Set up a job with `sim.fusion.add_job(44046, name="ExtractMostLabels", steps=[...])`. A step's `state` is the
Fusion status word: the saas-batch ones (ENQUEUED, RUNNING, IN_PROGRESS, SUCCEEDED, FAILED) or any ESS request
state (WAIT, READY, BLOCKED, HOLD, PAUSED, PENDING_VALIDATION, COMPLETED, ERROR, ERROR_AUTO_RETRY,
ERROR_MANUAL_RECOVERY, WARNING, EXPIRED, FINISHED, SCHEDULE_ENDED, VALIDATION_FAILED, CANCELLING, CANCELLED,
UNKNOWN).
Step `fields` the simulator understands:

- `progress`: completedPercentage (sent as a string, as Fusion does). Default per state: 0 while queued,
  50 RUNNING, 0 IN_PROGRESS (the documented 50 -> 0 drop), 100 once terminal.
- `message`: jobProgress.message (the failure reason for FAILED). Default: Fusion's own wording.
- `completed`: jobProgress.completed. Default: true once the state is terminal.
- `job_status`: jobDetails.jobStatus when it should differ from jobProgress.status.

Job-level keyword arguments of `add_job` (kept in `job.data`): `definition` (jobDefinitionName), `submitter`,
`timeout` (timeoutThreshold, seconds), `output_files` (list of `(name, size)` or ready item dicts).
The outputFiles list is paged as Oracle's example answer is (items, count, hasMore, limit, offset, totalItems,
links; fetch-extract-output-details.html): `offset`/`limit` from the query, `files_page_limit` items when no
limit is asked, and never more than `files_max_limit` (when set) whatever the limit asked, as a server that
pages on its own does (Oracle's example: one item of "totalItems": 2).
`cancellable=False` makes the ESS cancel refuse that job.

Credentials: `basic_users`, `bearer_tokens` (from VendorSim) and `oauth_clients` {client_id: secret};
`token_ttl` sets expires_in; `revoke_tokens()` makes every issued token fail with 401 at once.
Every error is Fusion's problem body, `{"title", "status", "detail"}` (`problem`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from bot.offline.vendors.core import SimJob, VendorSim, basic_credentials, bearer_token, guarded, offset_limit

STATUS_PATH = "/api/saas-batch/jobscheduler/v1/jobRequests/{job_id}"
FILES_PATH = "/api/saas-batch/jobfilemanager/v1/jobRequests/{job_id}/outputFiles"
CANCEL_PATH = "/ess/rest/scheduler/v1/requests/{job_id}/cancel"
TOKEN_PATH = "/oauth2/v1/token"

# Final as Oracle's "Statuses of Scheduled Processes" says ("No (final)"), and the saas-batch words
TERMINAL = {"SUCCEEDED", "FAILED", "ERROR", "WARNING", "CANCELLED", "CANCELED", "EXPIRED", "FINISHED",
            "SCHEDULE_ENDED", "VALIDATION_FAILED"}
QUEUED = {"WAIT", "READY", "ENQUEUED", "SCHEDULED", "BLOCKED", "HOLD", "PAUSED", "PENDING_VALIDATION",
          "ERROR_AUTO_RETRY"}
_DEFAULT_PROGRESS = {"RUNNING": 50, "IN_PROGRESS": 0}
_DEFAULT_MESSAGE = {
    "ENQUEUED": "Job Request has been enqueued",
    "IN_PROGRESS": "Job Request is in progress",
}


# -- ESS: querying job requests ------------------------------------------------------------------------
# GET ess/rest/scheduler/v1/requests and .../requests/search/{pageIndex} ("Query job requests",
# docs.oracle.com/en/cloud/saas/applications-common/24c/farca/op-ess-rest-scheduler-v1-requests-get.html):
# `q` is "Query string in SCIM filtering format" over the fields below, `orderBy` is fieldName[:(asc/desc)],
# the answer {count, items, links, pageIndex}. The page size is not documented; Oracle's own example page has
# "count": 200 (vendor-docs listing/oracle-fusion-ess), so the simulator pages by ESS_PAGE.
LIST_PATH = "/ess/rest/scheduler/v1/requests"
SEARCH_PATH = "/ess/rest/scheduler/v1/requests/search/{page}"
ESS_PAGE = 200
# "Fields that can be queried include [...]" (the same page, verbatim): a field not in the list (such as
# jobDisplayName) is refused; a listed one the simulator's items do not carry matches nothing. Oracle's pages
# do not show the answer to a bad `q`: the simulator answers 400 in Fusion's problem body, as it answers
# other bad requests.
Q_FIELDS = {
    "requestId", "absParentRequestId", "description", "application", "product", "requestCategory",
    "runAsUser", "executionType", "jobDefinitionId", "state", "scheduleDefinition", "priority",
    "processStartTime", "processEndTime", "requestedStartTime", "requestedEndTime", "submissionTime",
    "parentRequestId", "elapsedTime", "waitTime", "scheduledTime", "processor", "submitter", "submitterGUID",
    "instanceParentId", "requestType", "errorType", "processPhase", "completedTime", "retriedCount",
    "readyWaitTime", "enterpriseId", "isTimedOut", "isAsynchronous", "logicalClusterName",
    "submitterDmsECID", "submitterFlowId", "requestDmsECID", "requestFlowId", "className", "jobType",
    "externalJobType", "externalId",
}
# ESS's state words for the saas-batch words the simulator's jobs carry (the same request, another API)
ESS_WORDS = {"ENQUEUED": "WAIT", "IN_PROGRESS": "RUNNING", "FAILED": "ERROR"}
_TOKEN = re.compile(r'\s*(?:(?P<paren>[()])|"(?P<str>(?:[^"\\]|\\.)*)"|(?P<word>[A-Za-z_][\w.]*)'
                    r'|(?P<num>-?\d+(?:\.\d+)?))')
_OPS = {"eq", "ne", "gt", "ge", "lt", "le", "co", "sw", "ew"}


class ScimError(ValueError):
    """A `q` the simulator refuses: not SCIM, or a field ESS does not query."""


Row = dict[str, Any]
Test = Callable[[Row], bool]


def _compare(op: str, have: Any, want: Any) -> bool:
    if have is None:
        return op == "ne"
    if isinstance(want, str) and isinstance(have, str) and op in ("co", "sw", "ew"):
        return {"co": want in have, "sw": have.startswith(want), "ew": have.endswith(want)}[op]
    try:
        if op == "eq":
            return bool(have == want)
        if op == "ne":
            return bool(have != want)
        return bool({"gt": have > want, "ge": have >= want, "lt": have < want, "le": have <= want}[op])
    except (TypeError, KeyError):
        return False


def parse_scim(text: str) -> Test:
    """A SCIM filter (RFC 7644, section 3.4.2.2: `attr op value`, `attr pr`, `and` before `or`, `not (…)`,
    parentheses) as a test of one item; times compare as the ISO strings ESS sends, which sort in time
    order. ScimError when it is not one."""
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ScimError(f"cannot read the filter at: {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.group("paren"):
            tokens.append(("paren", m.group("paren")))
        elif m.group("str") is not None:
            tokens.append(("value", m.group("str").replace('\\"', '"')))
        elif m.group("num") is not None:
            tokens.append(("value", float(m.group("num")) if "." in m.group("num") else int(m.group("num"))))
        else:
            tokens.append(("word", m.group("word")))
    at = 0

    def peek() -> tuple[str, Any] | None:
        return tokens[at] if at < len(tokens) else None

    def take() -> tuple[str, Any]:
        nonlocal at
        if at >= len(tokens):
            raise ScimError("the filter ends too soon")
        at += 1
        return tokens[at - 1]

    def is_word(token: tuple[str, Any] | None, *words: str) -> bool:
        return token is not None and token[0] == "word" and str(token[1]).lower() in words

    def disjunction() -> Test:
        tests = [conjunction()]
        while is_word(peek(), "or"):
            take()
            tests.append(conjunction())
        return tests[0] if len(tests) == 1 else (lambda row: any(t(row) for t in tests))

    def conjunction() -> Test:
        tests = [atom()]
        while is_word(peek(), "and"):
            take()
            tests.append(atom())
        return tests[0] if len(tests) == 1 else (lambda row: all(t(row) for t in tests))

    def atom() -> Test:
        token = take()
        if token == ("paren", "("):
            inner = disjunction()
            if take() != ("paren", ")"):
                raise ScimError("a parenthesis is not closed")
            return inner
        if is_word(token, "not"):
            negated = atom()
            return lambda row: not negated(row)
        if token[0] != "word":
            raise ScimError(f"expected a field name, got {token[1]!r}")
        name = str(token[1])
        if name not in Q_FIELDS:
            raise ScimError(f"{name} cannot be queried")
        op_token = take()
        op = str(op_token[1]).lower()
        if op_token[0] != "word" or op not in _OPS | {"pr"}:
            raise ScimError(f"unknown operator {op_token[1]!r}")
        if op == "pr":
            return lambda row: row.get(name) is not None
        kind, value = take()
        if kind != "value":
            raise ScimError(f"expected a value after {name} {op}")
        return lambda row: _compare(op, row.get(name), value)

    if not tokens:
        raise ScimError("the filter is empty")
    test = disjunction()
    if at != len(tokens):
        raise ScimError(f"unexpected {tokens[at][1]!r}")
    return test


def _iso_ms(ts: float) -> str:
    """An ESS time: UTC with milliseconds, as in Oracle's example page ("2023-12-06T00:00:53.725Z")."""
    when = datetime.fromtimestamp(ts, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FusionSim(VendorSim):
    vendor = "fusion_jobscheduler"
    first_state = "ENQUEUED"
    run_words = ("ENQUEUED", "RUNNING", "SUCCEEDED", "ERROR")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.oauth_clients: dict[str, str] = {}
        self.token_ttl = 3600
        self.tokens: dict[str, float] = {}  # issued access token -> expiry (sim clock)
        self.cancel_delay = 2.0  # seconds from CANCELLING to CANCELLED
        self.files_page_limit = 25  # outputFiles items per page when the query asks no limit
        self.files_max_limit: int | None = None  # at most this many per page, whatever the query asks

    def revoke_tokens(self) -> None:
        """Every OAuth token issued so far now gets 401 (as after a key rotation or expiry)."""
        self.tokens.clear()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(STATUS_PATH, self.status),
            web.get(FILES_PATH, self.output_files),
            web.post(CANCEL_PATH, self.cancel),
            web.get(LIST_PATH, self.query_requests),
            web.get(SEARCH_PATH, self.query_requests),
            web.post(TOKEN_PATH, self.token),
        ]

    @staticmethod
    def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
        """Fusion's error answer: its problem body with the status's own title."""
        return web.json_response({"title": HTTPStatus(status).phrase, "status": status, "detail": detail},
                                 status=status, headers=headers)

    # -- auth ------------------------------------------------------------------------------------
    async def refusal(self, request: web.Request) -> web.Response | None:
        """401 unless the request has a token this simulator issued (still valid) or a fixed credential."""
        token = bearer_token(request)
        if (token is not None and self.tokens.get(token, 0.0) > self.clock()) or self.fixed_credentials(
            request
        ):
            return None
        return self.problem(401, "Authentication failed", {"WWW-Authenticate": 'Bearer realm="oracle"'})

    def _job(self, request: web.Request) -> SimJob | None:
        return self.jobs.get(request.match_info["job_id"])

    def not_found(self, job_id: str) -> web.Response:
        return self.problem(404, f"Job request {job_id} was not found.")

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, secret = basic_credentials(request) or (str(form.get("client_id", "")),
                                                           str(form.get("client_secret", "")))
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if not client_id or self.oauth_clients.get(client_id) != secret:
            return web.json_response(
                {"error": "invalid_client", "error_description": "Client authentication failed."}, status=401
            )
        token = secrets.token_urlsafe(24)
        self.tokens[token] = self.clock() + self.token_ttl
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl}
        )

    # -- job status ------------------------------------------------------------------------------
    def render(self, job: SimJob) -> dict[str, Any]:
        step = job.current(self.clock())
        state = str(step.state)
        f = step.fields
        terminal = state.upper() in TERMINAL
        progress = f.get("progress", 100 if terminal else _DEFAULT_PROGRESS.get(state.upper(), 0))
        message = f.get("message", _DEFAULT_MESSAGE.get(state.upper(), f"Job status is changed to {state}"))
        job_id = job.json_id
        return {
            "jobDetails": {
                "jobRequestId": job_id,
                "jobRequest": {
                    "serviceName": "boss",
                    "jobDefinitionName": job.data.get("definition", "DataExport"),
                    "systemDerivedVersion": "1260",
                    "jobSubmitter": job.data.get("submitter", "RODS_EXTRACTION_USER"),
                    "description": job.name,
                    "requestParameters": {"submit.argument1": job.name},
                    "jobRetryNumber": 0,
                    "timeoutThreshold": job.data.get("timeout", 36000),
                    "type": "BATCH",
                },
                "jobStatus": f.get("job_status", state),
                "jobProgress": {
                    "jobRequestId": job_id,
                    "status": state,
                    "message": message,
                    "startTime": _iso(job.started),
                    # documented quirk: endTime is filled in even while the job is only ENQUEUED
                    "endTime": _iso(job.started + 1),
                    "completedPercentage": str(progress),
                    "completed": bool(f.get("completed", terminal)),
                },
            }
        }

    @guarded
    async def status(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job is None:
            return self.not_found(request.match_info["job_id"])

        async def good() -> web.Response:
            return web.json_response(self.render(job))

        return await self.with_faults(good, job.job_id)

    @guarded
    async def output_files(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job is None:
            return self.not_found(request.match_info["job_id"])
        window = offset_limit(request, self.files_page_limit)
        if window is None:
            return self.problem(400, "offset and limit must be non-negative integers.")
        offset, limit = window
        items = []
        for entry in job.data.get("output_files", []):
            if isinstance(entry, dict):
                items.append(entry)
                continue
            name, size = entry
            href = (
                f"{self.public_url}/api/saas-batch/jobfilemanager/v1/jobRequests/{job.job_id}"
                f"/outputFiles/{name}"
            )
            items.append({  # as Oracle's example item: the enclosure is the file's /content
                "fileName": name,
                "fileSize": size,
                "timeCreated": datetime.fromtimestamp(job.started + 2, UTC).strftime("%Y-%m-%d %H:%M:%S.000"),
                "checksum": "sha-256=" + hashlib.sha256(f"{job.job_id}/{name}".encode()).hexdigest(),
                "$context": {"links": {"enclosure": {"href": f"{href}/content"}, "$self": {"href": href}}},
            })
        if self.files_max_limit is not None:
            limit = min(limit, self.files_max_limit)
        page = items[offset: offset + limit]
        return web.json_response({
            "items": page, "count": len(page), "hasMore": offset + len(page) < len(items), "limit": limit,
            "offset": offset, "totalItems": len(items), "links": [{"rel": "self", "href": str(request.url)}],
        })

    # -- ESS cancel --------------------------------------------------------------------------------
    @guarded
    async def cancel(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job is None:
            return self.not_found(request.match_info["job_id"])
        now = self.clock()
        state = str(job.current(now).state).upper()
        if not job.cancellable or state in TERMINAL or state == "CANCELLING":
            return self.problem(400, f"Request {job.job_id} cannot be cancelled in state {state}.")
        if state in QUEUED:
            job.set(now, "CANCELLED", progress=0)
        else:
            job.set(now, "CANCELLING", message="Cancel requested")
            job.then(self.cancel_delay, "CANCELLED", message="Job status is changed to CANCELLED")
        return web.Response(status=204)

    # -- ESS: querying job requests ------------------------------------------------------------------
    def ess_item(self, job: SimJob, now: float) -> Row:
        """A job request as ESS lists it (the fields of Oracle's example page that the bot reads)."""
        step = job.current(now)
        word = str(step.state).upper()
        state = ESS_WORDS.get(word, word)
        definition = str(job.data.get("definition", f"JobDefinition://oracle/apps/ess/custom/{job.name}"))
        started = next((s for s in job.steps if s.at <= now - job.started
                        and str(s.state).upper() not in QUEUED), None)
        item: Row = {
            "requestId": int(job.job_id) if job.job_id.isdigit() else job.job_id,
            "jobDefinitionId": definition,
            "jobDisplayName": job.name,
            "application": "FscmEss",
            "state": state,
            "stateDescription": state.replace("_", " ").title(),
            "submissionTime": _iso_ms(job.started),
            "processStartTime": _iso_ms(job.started + started.at) if started is not None else None,
            "processEndTime": _iso_ms(job.started + step.at) if word in TERMINAL else None,
            "submitter": str(job.data.get("submitter", "FIN_IMPL")),
        }
        return item

    @guarded
    async def query_requests(self, request: web.Request) -> web.Response:
        """One page of job requests: filtered by `q`, ordered by `orderBy`, ESS_PAGE a page from pageIndex 1.
        A `q` that does not parse, a field ESS does not query, a bad `orderBy` or pageIndex: 400."""
        raw_page = request.match_info.get("page", "1")
        if not raw_page.isdigit() or int(raw_page) < 1:
            return self.problem(400, f"Invalid pageIndex {raw_page!r}.")
        page_index = int(raw_page)
        now = self.clock()
        rows = [self.ess_item(job, now) for job in self.jobs.values()]
        q = request.query.get("q")
        if q is not None:
            try:
                test = parse_scim(q)
            except ScimError as exc:
                return self.problem(400, f"Invalid query filter q: {exc}.")
            rows = [row for row in rows if test(row)]
        order = request.query.get("orderBy")
        if order is not None:
            name, _, direction = order.split(",")[0].partition(":")
            if name not in Q_FIELDS or direction.lower() not in ("", "asc", "desc"):
                return self.problem(400, f"Invalid orderBy {order!r}.")
            rows.sort(key=lambda row: (row.get(name) is None, str(row.get(name) or "")),
                      reverse=direction.lower() == "desc")
        page = rows[(page_index - 1) * ESS_PAGE: page_index * ESS_PAGE]
        return web.json_response({
            "count": len(page),
            "items": page,
            "links": [{"href": f"{self.public_url}{SEARCH_PATH.format(page=page_index)}", "rel": "SELF"}],
            "pageIndex": page_index,
        })
