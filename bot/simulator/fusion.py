"""Simulated Oracle Fusion saas-batch job scheduler: job status, output files, ESS cancel and OAuth2 tokens.

Set up a job with `sim.fusion.add_job(44046, name="ExtractMostLabels", steps=[...])`. A step's `state` is the
Fusion status word (ENQUEUED, RUNNING, IN_PROGRESS, SUCCEEDED, FAILED, ERROR, WARNING, CANCELLED, ...).
Step `fields` the simulator understands:

- `progress`: completedPercentage (sent as a string, as Fusion does). Default per state: 0 while queued,
  50 RUNNING, 0 IN_PROGRESS (the documented 50 -> 0 drop), 100 once terminal.
- `message`: jobProgress.message (the failure reason for FAILED). Default: Fusion's own wording.
- `completed`: jobProgress.completed. Default: true once the state is terminal.
- `job_status`: jobDetails.jobStatus when it should differ from jobProgress.status.

Job-level keyword arguments of `add_job` (kept in `job.data`): `definition` (jobDefinitionName), `submitter`,
`timeout` (timeoutThreshold, seconds), `output_files` (list of `(name, size)` or ready item dicts).
`cancellable=False` makes the ESS cancel refuse that job.

Credentials: `basic_users`, `bearer_tokens` (from VendorSim) and `oauth_clients` {client_id: secret};
`token_ttl` sets expires_in; `revoke_tokens()` makes every issued token fail with 401 at once.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.simulator.core import SimJob, VendorSim

STATUS_PATH = "/api/saas-batch/jobscheduler/v1/jobRequests/{job_id}"
FILES_PATH = "/api/saas-batch/jobfilemanager/v1/jobRequests/{job_id}/outputFiles"
CANCEL_PATH = "/ess/rest/scheduler/v1/requests/{job_id}/cancel"
TOKEN_PATH = "/oauth2/v1/token"

TERMINAL = {"SUCCEEDED", "FAILED", "ERROR", "WARNING", "CANCELLED", "CANCELED"}
QUEUED = {"WAIT", "READY", "ENQUEUED", "SCHEDULED", "BLOCKED", "HOLD", "PAUSED"}
_DEFAULT_PROGRESS = {"RUNNING": 50, "IN_PROGRESS": 0}
_DEFAULT_MESSAGE = {
    "ENQUEUED": "Job Request has been enqueued",
    "IN_PROGRESS": "Job Request is in progress",
}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FusionSim(VendorSim):
    vendor = "fusion_jobscheduler"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.oauth_clients: dict[str, str] = {}
        self.token_ttl = 3600
        self.tokens: dict[str, float] = {}  # issued access token -> expiry (sim clock)
        self.cancel_delay = 2.0  # seconds from CANCELLING to CANCELLED

    def default_state(self) -> str:
        return "ENQUEUED"

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

    # -- auth ------------------------------------------------------------------------------------
    def authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and self.tokens.get(header[7:], 0.0) > self.clock():
            return True
        return self.check_basic_or_bearer(request)

    @staticmethod
    def unauthorized() -> web.Response:
        return web.json_response(
            {"title": "Unauthorized", "status": 401, "detail": "Authentication failed"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="oracle"'},
        )

    def _job(self, request: web.Request) -> SimJob | None:
        return self.jobs.get(request.match_info["job_id"])

    @staticmethod
    def not_found(job_id: str) -> web.Response:
        return web.json_response(
            {"title": "Not Found", "status": 404, "detail": f"Job request {job_id} was not found."}, status=404
        )

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = secret = ""
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if not client_id or self.oauth_clients.get(client_id) != secret:
            return web.json_response(
                {"error": "invalid_client", "error_description": "Client authentication failed."}, status=401
            )
        token = secrets.token_urlsafe(24)
        self.tokens[token] = self.clock() + self.token_ttl
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl})

    # -- job status ------------------------------------------------------------------------------
    def render(self, job: SimJob) -> dict[str, Any]:
        step = job.current(self.clock())
        state = str(step.state)
        f = step.fields
        terminal = state.upper() in TERMINAL
        progress = f.get("progress", 100 if terminal else _DEFAULT_PROGRESS.get(state.upper(), 0))
        message = f.get("message", _DEFAULT_MESSAGE.get(state.upper(), f"Job status is changed to {state}"))
        job_id = int(job.job_id) if job.job_id.isdigit() else job.job_id
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

    async def status(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return self.unauthorized()
        job = self._job(request)
        if job is None:
            return self.not_found(request.match_info["job_id"])

        async def good() -> web.Response:
            return web.json_response(self.render(job))

        return await self.with_faults(good, job.job_id)

    async def output_files(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return self.unauthorized()
        job = self._job(request)
        if job is None:
            return self.not_found(request.match_info["job_id"])
        items = []
        for entry in job.data.get("output_files", []):
            if isinstance(entry, dict):
                items.append(entry)
                continue
            name, size = entry
            href = f"{self.public_url}/api/saas-batch/jobfilemanager/v1/jobRequests/{job.job_id}/outputFiles/{name}"
            items.append({
                "fileName": name,
                "fileSize": size,
                "timeCreated": _iso(job.started + 2),
                "checksum": hashlib.md5(f"{job.job_id}/{name}".encode()).hexdigest(),
                "$context": {"links": {"enclosure": {"href": href}}},
            })
        return web.json_response({"items": items, "count": len(items), "hasMore": False})

    # -- ESS cancel --------------------------------------------------------------------------------
    async def cancel(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return self.unauthorized()
        job = self._job(request)
        if job is None:
            return self.not_found(request.match_info["job_id"])
        now = self.clock()
        state = str(job.current(now).state).upper()
        if not job.cancellable or state in TERMINAL or state == "CANCELLING":
            return web.json_response(
                {"title": "Bad Request", "status": 400,
                 "detail": f"Request {job.job_id} cannot be cancelled in state {state}."},
                status=400,
            )
        if state in QUEUED:
            job.set(now, "CANCELLED", progress=0)
        else:
            job.set(now, "CANCELLING", message="Cancel requested")
            job.then(self.cancel_delay, "CANCELLED", message="Job status is changed to CANCELLED")
        return web.Response(status=204)
