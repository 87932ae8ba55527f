"""Oracle EPM Planning adapter: job status, and on failure the job's ERROR details over all pages.

Status: `GET /HyperionPlanning/rest/{v}/applications/{app}/jobs/{id}` (`api_version` default v3,
`application` required in the config). Failure details: `…/jobs/{id}/details?q={"messageType":"ERROR"}`
paged with offset/limit until the last page, then, for metadata jobs whose details list child jobs
("One or more child jobs have failed"), `…/jobs/{id}/childjobs/{child}/details` the same way; the
child jobs' lines (the real cause) come before the job's own in the bounded excerpt. The details items'
schema is not published: they are read generically. No cancel in the REST API.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from bot.backends.auth import SecretStore
from bot.backends.base import Capabilities
from bot.backends.epm_common import EpmBackend, bound_lines, parse_epm_status, validate_epm_job_id
from bot.backends.values import as_int, as_text, path_segment
from bot.domain.errors import BackendError, BadResponse
from bot.domain.status import FailureDetails, JobStatus
from bot.support.config import BackendConfig, ConfigError

VENDOR = "epm_planning"
PAGE_SIZE = 25  # the documented default page
MAX_PAGES = 40  # per listing: 1000 error items is plenty to show the first few and count the rest
MAX_CHILDREN = 20
ERROR_QUERY = json.dumps({"messageType": "ERROR"}, separators=(",", ":"))

_MESSAGE_KEYS = (
    "message", "msgText", "errorMessage", "messageText", "details", "description", "text", "error"
)
_CONTEXT_KEYS = ("recordType", "dimension", "recordName", "memberName", "member", "lineNumber", "line", "row")
_CHILD_KEYS = ("childjobid", "childjobidentifier", "childid")
_CHILD_HREF = re.compile(r"/childjobs/([^/?#]+)")


def parse_status(payload: Any, job_id: str) -> JobStatus:
    """One Planning job status answer (decoded JSON) as a JobStatus; BadResponse on wrong shapes."""
    return parse_epm_status(payload, job_id, VENDOR)


def format_item(item: Any) -> str:
    """One job-details item as a line, whatever its keys: context (record type/name) then the message."""
    if isinstance(item, str):
        return item.strip()
    if not isinstance(item, dict):
        return json.dumps(item, default=str)[:300]
    message = next((t for k in _MESSAGE_KEYS if (t := as_text(item.get(k)))), None)
    context = [t for k in _CONTEXT_KEYS if (t := as_text(item.get(k)))]
    if message:
        return (f"[{' '.join(context)}] " if context else "") + message
    pairs = [f"{k}={t}" for k, v in item.items() if k not in ("messageType", "links") and (t := as_text(v))]
    return ", ".join(pairs) if pairs else json.dumps(item, default=str)[:300]


def child_job_id(item: Any) -> str | None:
    """The child job an item stands for, if it is a child-job entry (by key, or by a /childjobs/ link)."""
    if not isinstance(item, dict):
        return None
    for key, value in item.items():
        if isinstance(key, str) and key.lower() in _CHILD_KEYS and (text := as_text(value)):
            return text
    links = item.get("links")
    if isinstance(links, list):
        for link in links:
            href = link.get("href") if isinstance(link, dict) else None
            if isinstance(href, str) and (m := _CHILD_HREF.search(href)):
                return m.group(1)
    return None


class EpmPlanning(EpmBackend):
    """Oracle EPM Planning jobs (type `epm_planning`)."""

    type_name = "epm_planning"
    label = "EPM Planning"
    capabilities = Capabilities(cancel=False, logs=True, batch=False)
    cancel_hint = ("Planning has no cancel API: cancel the job in the EPM web UI, "
                   "in the Jobs console (Application > Jobs).")
    job_id_help = "it is the Planning job id, digits only, e.g. 224"
    # Planning's "Manage Jobs" chapter (docs.oracle.com/en/cloud/saas/enterprise-performance-management-
    # common/prest/manage_jobs.html) lists job definitions (names) and one job's status by id, and no GET of
    # the jobs collection; its "Export Job Console" job writes the console as a CSV in a ZIP to the outbox,
    # a file to download, not an API to poll: `recent_runs` raises FollowNotSupported with this hint.
    follow_hint = ("Oracle documents no listing of Planning runs (the Jobs console can only be exported as "
                   "a CSV file by the Export Job Console job): watch each run by its job id instead, e.g. "
                   "from the pipeline that starts it (POST /api/v1/watches).")

    def __init__(self, name: str, config: BackendConfig, *, secrets: SecretStore | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        super().__init__(name, config, secrets=secrets, http=http)
        if not config.application:
            raise ConfigError(
                f"backend '{name}': field 'application': epm_planning needs the application name"
            )
        self.api_version = config.api_version or "v3"
        self.application = config.application

    @property
    def _app_path(self) -> str:
        return (f"/HyperionPlanning/rest/{path_segment(self.api_version)}"
                f"/applications/{path_segment(self.application)}")

    def _job_path(self, job_id: str) -> str:
        return f"{self._app_path}/jobs/{path_segment(job_id)}"

    def validate_job_id(self, text: str) -> str:
        return validate_epm_job_id(text, self.label, self.job_id_help)

    async def status(self, job_id: str) -> JobStatus:
        job_id = self.validate_job_id(job_id)
        return parse_status(await self.get_json(self._job_path(job_id)), job_id)

    async def all_pages(self, path: str) -> tuple[list[Any], int | None, bool]:
        """Every ERROR item of a details listing: (items, total the server reported, all pages read)."""
        items: list[Any] = []
        offset = 0
        reported: int | None = None
        for _ in range(MAX_PAGES):
            payload = await self.get_json(
                path, params={"q": ERROR_QUERY, "offset": offset, "limit": PAGE_SIZE}
            )
            if not isinstance(payload, dict) or not isinstance(payload.get("items", []), list):
                raise BadResponse(f"{self.name}: the job details answer is not a list of items")
            page = payload.get("items", [])
            items.extend(page)
            offset += len(page)
            total = as_int(payload.get("totalResults"))
            reported = total if total is not None else reported
            has_more = payload.get("hasMore")
            if not page:
                return items, reported, True
            if isinstance(has_more, bool):
                if not has_more:
                    return items, reported, True
            elif total is not None:
                if offset >= total:
                    return items, reported, True
            elif len(page) < PAGE_SIZE:
                return items, reported, True
        return items, reported, False

    async def failure_details(self, status: JobStatus) -> FailureDetails | None:
        where = "the Jobs console (Application > Jobs) in the EPM web UI"
        message = [status.message] if status.message else []
        job_path = self._job_path(status.job_id)
        try:
            items, reported, complete = await self.all_pages(job_path + "/details")
        except BackendError as exc:
            return FailureDetails(lines=tuple(message), links=status.links,
                                  hint=f"The job details could not be read ({exc.message}); see {where}.")
        lines: list[str] = []
        total = 0
        more = False
        children: list[tuple[str, Any]] = []
        own = 0
        for item in items:
            child = child_job_id(item)
            if child is not None and child != status.job_id:
                children.append((child, item))
            else:
                own += 1
                lines.append(format_item(item))
        total += own
        if not complete:
            more = True
            if reported is not None:
                total += max(0, reported - len(items))
        # A failed child job's details are the only place its real cause is written ("One or more child jobs
        # have failed"): its lines come first, so the job's own errors never crowd them out of the excerpt.
        child_lines: list[str] = []
        for child, summary in children[:MAX_CHILDREN]:
            label = as_text(summary.get("jobName")) if isinstance(summary, dict) else None
            label = f"child job {child}" + (f" ({label})" if label else "")
            try:
                citems, creported, ccomplete = await self.all_pages(
                    f"{job_path}/childjobs/{path_segment(child)}/details"
                )
            except BackendError as exc:
                child_lines.append(f"{label}: details could not be read ({exc.message})")
                continue
            total += len(citems)
            if not ccomplete:
                more = True
                if creported is not None:
                    total += max(0, creported - len(citems))
            child_lines.extend(f"{label}: {format_item(it)}" for it in citems)
            if not citems:
                child_lines.append(f"{label}: {format_item(summary)}")
        lines = child_lines + lines
        hints = []
        if len(children) > MAX_CHILDREN:
            hints.append(f"Only the first {MAX_CHILDREN} of {len(children)} child jobs were read.")
        if more:
            hints.append("Not every page of errors was read.")
        if not lines:
            lines = message
            hints.append(f"The job details list no errors; see {where}.")
        shown = bound_lines(lines)
        if len(shown) < len(lines):
            hints.append(f"First {len(shown)} of {len(lines)} lines shown; the rest are in {where}.")
        return FailureDetails(lines=tuple(shown), total_errors=total, links=status.links,
                              hint=" ".join(hints) or None)

    async def check(self) -> list[tuple[str, bool, str]]:
        rows = await self.oauth_check()
        if rows and not rows[0][1]:
            return rows
        try:
            payload = await self.get_json(
                f"/HyperionPlanning/rest/{path_segment(self.api_version)}/applications"
            )
        except BackendError as exc:
            rows.append(("Planning API and credentials", False, exc.message))
            return rows
        rows.append(("Planning API and credentials", True, f"API {self.api_version} answered"))
        items = payload.get("items") if isinstance(payload, dict) else None
        names = [i.get("name") for i in items if isinstance(i, dict)] if isinstance(items, list) else []
        if self.application in names:
            rows.append((f"application '{self.application}'", True, "found"))
        else:
            shown = ", ".join(str(n) for n in names[:10]) or "none"
            rows.append((f"application '{self.application}'", False, f"not found (applications: {shown})"))
        return rows
