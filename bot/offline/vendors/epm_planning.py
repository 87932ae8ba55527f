"""Simulated Oracle EPM Planning jobs: status, paged job details (ERROR messages) and child-job details.

Routes (under `/HyperionPlanning/rest/{v}`): `GET /applications` (used by `check`),
`GET /applications/{app}/jobs/{id}`, `GET …/jobs/{id}/details?q={"messageType":"ERROR"}&offset=&limit=`
(limit defaults to 25) and `GET …/jobs/{id}/childjobs/{child}/details` (same paging).

A job's `Step.state` is the `status` code as sent (int in Planning's examples: -1, 0, 1, ...). The answer
carries `descriptiveStatus` (Processing, Completed, ...) or, for errors, `jobStatus: "Error"` as the
document's error example does. `Step.fields` override answer keys (e.g. `{"details": "One or more child
jobs have failed"}`); a field set to None drops the key.

`add_job` data keys: `details` (default for every step), `application` (only this app answers for the job;
default any), `job_type`, `details_items` (list of dicts: the job-details items, any keys; `messageType`
defaults to ERROR), `child_jobs` ({child_id: {"name": str, "status": int, "items": [dicts]}}: listed in the
parent's details as `{"childJobId", "jobName", "status", "descriptiveStatus"}` items, their own messages at
`…/childjobs/{child}/details`), `stray_brace=True` (render the answer with the stray `}}` the document's
error example has in `links`), `raw_body` (str: served verbatim, e.g. `DOC_ERROR_EXAMPLE`).

Unknown job id (or a job of another application): HTTP 404 with `{"status": 1, "details": "... does not
exist"}`. A request Planning refuses (an application it does not have, a bad query) gets an HTTP error status
with Planning's error body, `{"status", "detail", "message"}` (`planning_error`): the shape a real Planning
was seen to answer (the REST reference publishes no error schema).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot.offline.vendors.core import Clock, SimJob, Step, guarded, json_id, offset_limit
from bot.offline.vendors.epm_common import DESCRIPTIVE, EpmSimBase, code_of

BASE = "/HyperionPlanning/rest/{version}"

# The document's own error example, stray `}}` and all.
DOC_ERROR_EXAMPLE = """{
"status": 1,
"details": "An error occurred while updating the relational database.",
"jobStatus": "Error",
"jobId": 145,
"jobName": "Refresh Database",
"links": [{
"rel": "self",
"href": "https://<BASE-URL>/HyperionPlanning/rest/v3/applications/PS4app1/jobs/145",
"action": "GET"
}}, {
"rel": "job-details",
"href": "https://<BASE-URL>/HyperionPlanning/rest/v3/applications/test2/jobs/145/details",
"action": "GET"
}]
}"""


class PlanningSim(EpmSimBase):
    """Oracle EPM Planning job status and details (see the module docstring)."""

    vendor = "epm_planning"
    job_name = "Refresh Database"
    first_state = -1

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.applications = ["Vision"]

    def routes(self) -> list[web.RouteDef]:
        return [
            *super().routes(),
            web.get(BASE + "/applications", self._applications),
            web.get(BASE + "/applications/{app}/jobs/{job_id}", self._status),
            web.get(BASE + "/applications/{app}/jobs/{job_id}/details", self._details),
            web.get(
                BASE + "/applications/{app}/jobs/{job_id}/childjobs/{child}/details", self._child_details
            ),
        ]

    # -- rendering --------------------------------------------------------------------------------
    def _job_url(self, request: web.Request, job: SimJob) -> str:
        mi = request.match_info
        return (
            f"{self.public_url}/HyperionPlanning/rest/{mi['version']}"
            f"/applications/{mi['app']}/jobs/{job.job_id}"
        )

    def render(self, request: web.Request, job: SimJob, step: Step) -> dict[str, Any]:
        code = code_of(step.state)
        url = self._job_url(request, job)
        body: dict[str, Any] = {
            "status": step.state,
            "details": job.data.get("details"),
            "jobId": job.json_id,
            "jobName": job.name,
        }
        if code == 1:
            body["jobStatus"] = "Error"
        else:
            body["descriptiveStatus"] = DESCRIPTIVE.get(code, "Unknown") if code is not None else None
        body["links"] = [
            {"rel": "self", "href": url, "action": "GET"},
            {"rel": "job-details", "href": url + "/details", "action": "GET"},
        ]
        body.update(step.fields)
        return {k: v for k, v in body.items() if v is not None}

    @staticmethod
    def with_stray_brace(body: dict[str, Any]) -> str:
        """The answer as text with the document's stray `}` after the first link."""
        links = body.get("links") or [{}]
        rest = {k: v for k, v in body.items() if k != "links"}
        head = json.dumps(rest, indent=0)[:-1].rstrip()  # drop the closing brace
        link_text = [json.dumps(link, indent=0) for link in links]
        link_text[0] += "}"
        return head + ',\n"links": [' + ", ".join(link_text) + "]\n}"

    def _find(self, request: web.Request) -> SimJob | None:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            return None
        app = job.data.get("application")
        if app is not None and app != request.match_info["app"]:
            return None
        return job

    def _not_found(self, request: web.Request) -> web.Response:
        return self.epm_error(1, f"Job with ID {request.match_info['job_id']} does not exist.", http=404)

    @staticmethod
    def planning_error(http: int, detail: str) -> web.Response:
        """Planning refusing a request: an HTTP error status and its error body (detail, message, status)."""
        return web.json_response({"status": http, "detail": detail, "message": detail}, status=http)

    async def refusal(self, request: web.Request) -> web.Response | None:
        """EPM's 401 for bad credentials; then, on a route of one application, a 400 for an application this
        Planning does not have."""
        refused = await super().refusal(request)
        app = request.match_info.get("app")
        if refused is not None or app is None or app in self.applications:
            return refused
        return self.planning_error(
            400, f"The application {app} does not exist or you do not have access to it."
        )

    # -- handlers ---------------------------------------------------------------------------------
    @guarded
    async def _applications(self, request: web.Request) -> web.Response:
        items = [{"name": app, "type": "EPBCS", "dpEnabled": False} for app in self.applications]
        return web.json_response({"items": items, "type": "Planning"})

    @guarded
    async def _status(self, request: web.Request) -> web.Response:
        job = self._find(request)

        async def good() -> web.Response:
            if job is None:
                return self._not_found(request)
            if "raw_body" in job.data:
                return web.Response(text=job.data["raw_body"], content_type="application/json")
            body = self.render(request, job, job.current(self.clock()))
            if job.data.get("stray_brace"):
                return web.Response(text=self.with_stray_brace(body), content_type="application/json")
            return web.json_response(body)

        return await self.with_faults(good, request.match_info["job_id"])

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        try:
            q = json.loads(request.query.get("q", "{}") or "{}")
        except ValueError:
            q = None
        window = offset_limit(request, 25)
        if not isinstance(q, dict) or window is None:
            return self.planning_error(400, "Invalid query parameter: q, offset and limit.")
        offset, limit = window
        wanted = q.get("messageType")
        if wanted:
            items = [i for i in items if str(i.get("messageType", "")).upper() == str(wanted).upper()]
        page = items[offset: offset + limit]
        return web.json_response({
            "items": page,
            "totalResults": len(items),
            "hasMore": offset + len(page) < len(items),
            "count": len(page),
            "offset": offset,
            "limit": limit,
            "links": [{"rel": "self", "href": str(request.url), "action": "GET"}],
        })

    @guarded
    async def _details(self, request: web.Request) -> web.Response:
        job = self._find(request)

        async def good() -> web.Response:
            if job is None:
                return self._not_found(request)
            items = [{"messageType": "ERROR", **item} for item in job.data.get("details_items", [])]
            for child_id, child in job.data.get("child_jobs", {}).items():
                code = code_of(child.get("status", 1))
                items.append({
                    "childJobId": json_id(child_id),
                    "jobName": child.get("name", f"Child job {child_id}"),
                    "status": code,
                    "descriptiveStatus": DESCRIPTIVE.get(code, "Unknown") if code is not None else "Unknown",
                    "messageType": "ERROR" if code == 1 else "INFO",
                })
            return self._page(request, items)

        return await self.with_faults(good)

    @guarded
    async def _child_details(self, request: web.Request) -> web.Response:
        job = self._find(request)

        async def good() -> web.Response:
            children = job.data.get("child_jobs", {}) if job is not None else {}
            child = next((c for cid, c in children.items() if str(cid) == request.match_info["child"]), None)
            if child is None:
                return self.epm_error(
                    1, f"Child job {request.match_info['child']} of job {request.match_info['job_id']} "
                       "does not exist.", http=404,
                )
            items = [{"messageType": "ERROR", **item} for item in child.get("items", [])]
            return self._page(request, items)

        return await self.with_faults(good)
