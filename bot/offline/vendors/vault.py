"""Simulated Veeva Vault job API: session login, job status with Vault's limits, cancel, API versions.

Set up a job with `sim.vault.add_job(1201, steps=[...])`. A step's `state` is the Vault status word
(SCHEDULED, QUEUEING, QUEUED, RUNNING, SUCCESS, ERRORS_ENCOUNTERED, CANCELLING, CANCELLED, TIMEOUT,
FAILED_TO_RUN, ...). Step `fields` the simulator understands:

- `links`: the data.links list to send (default: none while the job runs; `artifacts` and `self` once it
  ends).
- `progress`: data.progress (the task summary of Vault Java SDK jobs), sent as given.
- `errors`: a list of `{type, message}` put beside the data, with responseStatus WARNING.
- `response_status`: the top-level responseStatus to send instead of SUCCESS/WARNING.

Job-level keyword arguments of `add_job`: `created_by` (user id, default 44533), `cancel_message` (the
text of the OPERATION_NOT_ALLOWED error when a cancel is refused; default Vault's own wording).
`cancellable=False` makes the cancel action refuse the job whatever its state; jobs that are not
QUEUED/QUEUEING/SCHEDULED/RUNNING are always refused.

Vault answers errors with HTTP 200 and `responseStatus: FAILURE`
(limited.veevavault.dev/medical/vault-api/api-reference/26.1/errors/), except that an API version this vault
does not offer, or a path it does not have, gets HTTP 404 with a MALFORMED_URL envelope (as a real vault was
seen to answer; the reference itself only describes the type: "The specified resource cannot be found").
`client_ids` is the client id of every request as Vault's API Usage Log records it
(limited.veevavault.dev/medical/vault-api/references/client-id/): the `client_id` query parameter over the
`X-VaultAPI-ClientID` header, `unknown` when there is none, `invalid_client_id` when it breaks the format.

Switches for tests: `basic_users` {username: password} are the accounts `/auth` accepts; `expire_sessions()`;
`other_vault = True` makes `/auth` hand out a session for a different vault; `burst_limit` (per 5-minute
window) and `response_delay_ms` drive the X-VaultAPI-* headers; `job_poll_window` (10 s) is the per-job status
limit.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.offline.vendors.core import SimJob, VendorSim, guarded

TERMINAL = {"SUCCESS", "ERRORS_ENCOUNTERED", "CANCELLED", "TIMEOUT", "COMPLETED_DUE_TO_INACTIVITY",
            "MISSED_SCHEDULE", "FAILED_TO_RUN"}
QUEUED = {"SCHEDULED", "QUEUEING", "QUEUED"}
CANCELLABLE = QUEUED | {"RUNNING"}
BURST_WINDOW = 300.0
# Vault's client id format: letters, digits, `.`, `_`, `-`, at most 100
# (limited.veevavault.dev/medical/vault-api/references/client-id/)
CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")


def _vault_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def failure(error_type: str, message: str) -> dict[str, Any]:
    return {"responseStatus": "FAILURE", "errors": [{"type": error_type, "message": message}]}


# Listing runs (general.veevavault.dev/vault-api/api-reference/26.2/jobs/retrieve-job-histories/ and
# .../retrieve-job-monitors/): `limit` "any value between 1 and 200", default 50; `status` in lower case, from
# these lists; dates as YYYY-MM-DDTHH:MM:SSZ.
LIST_MAX = 200
LIST_DEFAULT = 50
HISTORY_WORDS = {"success", "errors_encountered", "failed_to_run", "missed_schedule", "timeout",
                 "completed_due_to_inactivity", "cancelled"}
MONITOR_WORDS = {"scheduled", "queued", "running"}


def _list_date(text: str | None) -> float | None:
    """A listing's `start_date`/`end_date` as epoch seconds; ValueError unless YYYY-MM-DDTHH:MM:SSZ."""
    if text is None:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


class VaultSim(VendorSim):
    vendor = "veeva_vault"
    first_state = "QUEUED"
    run_words = ("QUEUED", "RUNNING", "SUCCESS", "ERRORS_ENCOUNTERED")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Three API versions a year since 2017 (YY.1, YY.2, YY.3), all kept
        # (developer.veevavault.com/docs/, "Versioning" and "Naming")
        self.versions = [f"v{yy}.{n}" for yy in range(17, 26) for n in (1, 2, 3)] + ["v26.1"]
        self.vault_id = 1001
        self.vault_name = "PromoMats"
        self.other_vault = False
        self.sessions: dict[str, str] = {}  # sessionId -> username
        self.burst_limit = 2000
        self.response_delay_ms = 0
        self.job_poll_window = 10.0
        self.cancel_delay = 2.0
        self._burst: list[float] = []
        self._asked: dict[str, float] = {}  # job id -> when its status was last answered
        self.client_ids: list[str] = []  # per request, as the API Usage Log records it

    def expire_sessions(self) -> None:
        """Every session handed out so far is now invalid (idle timeout reached)."""
        self.sessions.clear()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api", self.api_versions),
            web.post("/api/{v}/auth", self.auth),
            web.get("/api/{v}/services/jobs/monitors", self.monitors),
            web.get("/api/{v}/services/jobs/histories", self.histories),
            web.get("/api/{v}/services/jobs/{job_id}", self.status),
            web.post("/api/{v}/services/jobs/actions/cancel", self.cancel),
            web.route("*", "/{path:.*}", self.malformed_url),  # anything else: not a Vault API address
        ]

    def middlewares(self) -> list[Middleware]:
        return [self._usage_log]

    @web.middleware
    async def _usage_log(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record the request's client id; an API version this vault does not offer is a MALFORMED_URL."""
        given = request.query.get("client_id", request.headers.get("X-VaultAPI-ClientID"))
        self.client_ids.append("unknown" if given is None else given if CLIENT_ID.fullmatch(given)
                               else "invalid_client_id")
        version = request.match_info.get("v")
        if version is not None and version not in self.versions:
            return await self.malformed_url(request)
        return await handler(request)

    async def malformed_url(self, request: web.Request) -> web.Response:
        return web.json_response(
            failure("MALFORMED_URL", "The specified resource cannot be found."), status=404
        )

    # -- plumbing --------------------------------------------------------------------------------
    async def reply(self, payload: Any, *, counted: bool = True) -> web.Response:
        """A JSON answer with the burst-limit headers every Vault API answer carries (/auth has its own
        limit)."""
        if not counted:
            return web.json_response(payload)
        now = self.clock()
        self._burst = [t for t in self._burst if now - t < BURST_WINDOW] + [now]
        remaining = max(0, self.burst_limit - len(self._burst))
        delay_ms = self.response_delay_ms or (500 if remaining == 0 else 0)
        headers = {
            "X-VaultAPI-BurstLimit": str(self.burst_limit),
            "X-VaultAPI-BurstLimitRemaining": str(remaining),
        }
        if delay_ms:
            headers["X-VaultAPI-ResponseDelay"] = f"{delay_ms}ms"
            await asyncio.sleep(delay_ms / 1000)
        return web.json_response(payload, headers=headers)

    def user_of(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        return self.sessions.get(header.removeprefix("Bearer ").strip())

    async def refusal(self, request: web.Request) -> web.Response | None:
        """INVALID_SESSION_ID (with HTTP 200, as every Vault error) unless the request has a live session."""
        if self.user_of(request) is not None:
            return None
        return await self.reply(failure("INVALID_SESSION_ID", "Invalid or expired session ID."))

    # -- endpoints -------------------------------------------------------------------------------
    @guarded
    async def api_versions(self, request: web.Request) -> web.Response:
        return await self.reply({
            "responseStatus": "SUCCESS",
            "values": {v: f"{self.public_url}/api/{v}" for v in self.versions},
        })

    async def auth(self, request: web.Request) -> web.Response:
        form = await request.post()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        if not username or self.basic_users.get(username) != password:
            return await self.reply({
                "responseStatus": "FAILURE",
                "responseMessage": f"Authentication failed for user: {username}",
                "errors": [{"type": "USERNAME_OR_PASSWORD_INCORRECT",
                            "message": f"Authentication failed for user: {username}."}],
            }, counted=False)
        session = secrets.token_hex(32).upper()
        self.sessions[session] = username
        if self.other_vault:  # the user cannot reach this vault: Vault silently picks another one
            vaults = [{"id": 2002, "name": "Other Vault", "url": "https://other-vault.veevavault.com/api"}]
        else:
            vaults = [{"id": self.vault_id, "name": self.vault_name, "url": f"{self.public_url}/api"}]
        return await self.reply({
            "responseStatus": "SUCCESS",
            "sessionId": session,
            "userId": 61603,
            "vaultIds": vaults,
            "vaultId": vaults[0]["id"],
        }, counted=False)

    def render(self, job: SimJob, version: str) -> dict[str, Any]:
        now = self.clock()
        step = job.current(now)
        state = str(step.state)
        f = step.fields
        data: dict[str, Any] = {
            "id": job.json_id,
            "status": state,
            "method": "POST",
            "created_by": job.data.get("created_by", 44533),
            "created_date": _vault_time(job.started),
        }
        started = next((s for s in job.steps if s.at <= now - job.started and s.state not in QUEUED), None)
        if started is not None:
            data["run_start_date"] = _vault_time(job.started + started.at)
        if state in TERMINAL:
            data["run_end_date"] = _vault_time(job.started + step.at)
        base = f"/api/{version}/services/jobs/{job.job_id}"
        links = f.get("links")
        if links is None and state in TERMINAL:
            links = [
                {
                    "rel": "artifacts",
                    "href": f"{base}/artifacts",
                    "method": "GET",
                    "accept": "application/json",
                },
                {"rel": "self", "href": base, "method": "GET", "accept": "application/json"},
            ]
        if links is not None:
            data["links"] = links
        if "progress" in f:
            data["progress"] = f["progress"]
        payload: dict[str, Any] = {"responseStatus": "SUCCESS", "responseMessage": "OK", "data": data}
        if f.get("errors"):
            payload["responseStatus"] = "WARNING"
            payload["errors"] = f["errors"]
        if "response_status" in f:
            payload["responseStatus"] = f["response_status"]
        return payload

    @guarded
    async def status(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]

        async def good() -> web.Response:
            job = self.jobs.get(job_id)
            if job is None:
                return await self.reply(failure("INVALID_DATA", f"Invalid job_id [{job_id}]."))
            now = self.clock()
            last = self._asked.get(job_id)
            if last is not None and now - last < self.job_poll_window:
                return await self.reply(
                    failure(
                        "API_LIMIT_EXCEEDED",
                        f"Job status may be requested once every 10 seconds per job [{job_id}].",
                    )
                )
            self._asked[job_id] = now
            return await self.reply(self.render(job, request.match_info["v"]))

        return await self.with_faults(good, job_id)

    @guarded
    async def cancel(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        if not isinstance(body, list) or not body or len(body) > 500:
            return await self.reply(
                failure("INVALID_DATA", 'Expected a JSON array of 1 to 500 {"job_id": N}.')
            )
        now = self.clock()
        results = []
        for entry in body:
            job = self.jobs.get(str(entry.get("job_id"))) if isinstance(entry, dict) else None
            if job is None:
                results.append({"responseStatus": "FAILURE",
                                "errors": {"type": "INVALID_DATA", "message": f"Invalid job_id [{entry}]."}})
                continue
            state = str(job.current(now).state)
            if not job.cancellable or state not in CANCELLABLE:
                results.append({"responseStatus": "FAILURE", "errors": {
                    "type": "OPERATION_NOT_ALLOWED",
                    "message": job.data.get("cancel_message",
                                            f"Job [{job.job_id}] cannot be cancelled in status [{state}]."),
                }})
                continue
            job.set(now, "CANCELLING")
            job.then(self.cancel_delay, "CANCELLED")
            results.append({"responseStatus": "SUCCESS", "data": {"id": job.json_id}})
        return await self.reply({"responseStatus": "SUCCESS", "data": results})

    # -- listing runs ----------------------------------------------------------------------------
    def listed(self, job: SimJob, now: float) -> dict[str, Any]:
        """A job as the listings show it (the fields of the documented examples: job-histories-response and
        job-monitors-response, v26.2)."""
        step = job.current(now)
        state = str(step.state)
        item: dict[str, Any] = {
            "job_id": job.json_id,
            "title": job.name,
            "status": state,
            "created_by": job.data.get("created_by", 1),
            "created_date": _vault_time(job.started),
            "modified_by": job.data.get("created_by", 1),
            "modified_date": _vault_time(job.started + step.at),
        }
        started = next((s for s in job.steps if s.at <= now - job.started and s.state not in QUEUED), None)
        if started is not None:
            item["run_start_date"] = _vault_time(job.started + started.at)
        elif state == "SCHEDULED":  # when it is due to start (the monitors example: a future run_start_date)
            due = next((s for s in job.steps if s.at > now - job.started), None)
            if due is not None:
                item["run_start_date"] = _vault_time(job.started + due.at)
        if state in TERMINAL:
            item["run_end_date"] = _vault_time(job.started + step.at)
        return item

    async def listing(self, request: web.Request, ended: bool) -> web.Response:
        """One page of histories (`ended`: completed jobs, filtered by their end) or monitors (uncompleted:
        by creation), newest first; bad parameters are INVALID_DATA, as Vault answers a bad value (HTTP 200,
        responseStatus FAILURE: limited.veevavault.dev/medical/vault-api/api-reference/26.1/errors/)."""
        query = request.query
        words = HISTORY_WORDS if ended else MONITOR_WORDS
        try:
            start, end = _list_date(query.get("start_date")), _list_date(query.get("end_date"))
        except ValueError:
            return await self.reply(failure(
                "INVALID_DATA", "Invalid value for [start_date] or [end_date]: use YYYY-MM-DDTHH:MM:SSZ."))
        status = query.get("status")
        if status is not None and status not in words:
            return await self.reply(failure("INVALID_DATA", f"Invalid value for [status]: [{status}]."))
        try:
            limit = int(query.get("limit", str(LIST_DEFAULT)))
            offset = int(query.get("offset", "0"))
        except ValueError:
            limit, offset = 0, -1
        if not 1 <= limit <= LIST_MAX or offset < 0:
            return await self.reply(failure(
                "INVALID_DATA", f"Invalid value for [limit] or [offset]: limit is 1 to {LIST_MAX}."))
        now = self.clock()
        rows: list[tuple[float, dict[str, Any]]] = []
        for job in self.jobs.values():
            item = self.listed(job, now)
            if (str(item["status"]) in TERMINAL) != ended:
                continue
            if ended:
                when = job.started + job.current(now).at  # completion
            else:
                when = job.started  # "the date and time the job instance was created"
            if (start is not None and when < start) or (end is not None and when > end):
                continue
            if status is not None and str(item["status"]).lower() != status:
                continue
            rows.append((when, item))
        rows.sort(key=lambda r: r[0], reverse=True)
        page = [item for _, item in rows[offset:offset + limit]]
        path = request.path.split("/api/", 1)[-1]
        details: dict[str, Any] = {"total": len(rows), "limit": limit, "offset": offset}
        if offset + limit < len(rows):
            details["next_page"] = f"/api/{path}?limit={limit}&offset={offset + limit}"
        if offset > 0:
            details["previous_page"] = f"/api/{path}?limit={limit}&offset={max(0, offset - limit)}"
        return await self.reply({
            "responseStatus": "SUCCESS",
            "responseMessage": "OK",
            "url": f"/api/{path}?limit={limit}&offset={offset}",
            "responseDetails": details,
            "jobs": page,
        })

    @guarded
    async def histories(self, request: web.Request) -> web.Response:
        return await self.with_faults(lambda: self.listing(request, ended=True))

    @guarded
    async def monitors(self, request: web.Request) -> web.Response:
        return await self.with_faults(lambda: self.listing(request, ended=False))
