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
import secrets
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


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FusionSim(VendorSim):
    vendor = "fusion_jobscheduler"
    first_state = "ENQUEUED"

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
