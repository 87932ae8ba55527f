"""Simulated Oracle EPM Data Integration: job status (`/aif/rest/V1/jobs/{id}`) and interop log download.

A job's `Step.state` is the `status` value exactly as it is sent: an int (-1) or, as in the vendor's own
example, a string ("0"). From the code the simulator derives `jobStatus` (RUNNING, SUCCESS, FAILED, ...)
and `descriptiveStatus` (Processing, Completed, Error, ...); `Step.fields` override any answer key
(e.g. `{"jobStatus": "SUCCESS"}` beside status -1 for the documented disagreement, `{"details": "..."}`),
and a field set to None drops that key.

`add_job` data keys: `details` (default for every step; else the string "null"), `log_file` (logFileName; may
use `\\`; default `outbox/logs/{name}_{id}.log`), `server_paths=True` (logFileName is the log's server path,
`{server_root}outbox/logs/…`, as Data Integration has been seen to send; the file stays downloadable only by
its repository name), `log_text` (str/bytes: the log served by the interop download at `log_file`),
`output_file`, `process_type` (default INTEGRATION), `executed_by` (default admin), `links` (replaces the
default self link; the document's own example sends `[0]`).

Unknown job id: HTTP 404 with EPM's error JSON (`{"status": 1, "details": "... does not exist"}`); set
`unknown_job_http = 200` for the variant that answers that JSON with HTTP 200.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.offline.vendors.core import Clock, SimJob, Step, guarded
from bot.offline.vendors.epm_common import DESCRIPTIVE, EpmSimBase, code_of

JOB_STATUS_WORDS = {
    -1: "RUNNING",
    0: "SUCCESS",
    1: "FAILED",
    2: "CANCEL PENDING",
    3: "CANCELLED",
    4: "INVALID PARAMETER",
    2147483647: "UNKNOWN",
}


class EpmDiSim(EpmSimBase):
    """Oracle EPM Data Integration job status and log download (see the module docstring)."""

    vendor = "epm_data_integration"
    job_name = "GL_DATA_LOAD"
    first_state = "-1"

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.unknown_job_http = 404

    def add_job(self, job_id: str | int | None = None, **kwargs: Any) -> SimJob:
        job = super().add_job(job_id, **kwargs)
        job.data.setdefault("log_file", f"outbox/logs/{job.name}_{job.job_id}.log")
        if job.data.get("server_paths"):
            job.data["log_file"] = self.server_root + self.repository_name(job.data["log_file"])
        if "log_text" in job.data:
            self.add_file(job.data["log_file"], job.data["log_text"])
        return job

    def routes(self) -> list[web.RouteDef]:
        return [*super().routes(), web.get("/aif/rest/{version}/jobs/{job_id}", self._status)]

    def render(self, job: SimJob, step: Step) -> dict[str, Any]:
        code = code_of(step.state)
        body: dict[str, Any] = {
            "links": job.data.get(
                "links",
                [
                    {
                        "rel": "self",
                        "href": f"{self.public_url}/aif/rest/V1/jobs/{job.job_id}",
                        "action": "GET",
                    }
                ],
            ),
            "status": step.state,
            "details": job.data.get("details", "null"),
            "jobId": job.job_id,
            "jobName": job.name,
            "jobStatus": JOB_STATUS_WORDS.get(code, "UNKNOWN") if code is not None else None,
            "descriptiveStatus": DESCRIPTIVE.get(code, "Unknown") if code is not None else None,
            "logFileName": job.data["log_file"],
            "outputFileName": job.data.get("output_file"),
            "processType": job.data.get("process_type", "INTEGRATION"),
            "executedBy": job.data.get("executed_by", "admin"),
        }
        body.update(step.fields)
        return {k: v for k, v in body.items() if v is not None}

    @guarded
    async def _status(self, request: web.Request) -> web.Response:
        if request.match_info["version"] != "V1":
            return self.epm_error(4, "Invalid API version. The current version is V1.", http=400)
        job = self.jobs.get(request.match_info["job_id"])

        async def good() -> web.Response:
            if job is None:
                return self.epm_error(
                    1,
                    f"Job with ID {request.match_info['job_id']} does not exist.",
                    http=self.unknown_job_http,
                )
            return web.json_response(self.render(job, job.current(self.clock())))

        return await self.with_faults(good, request.match_info["job_id"])
