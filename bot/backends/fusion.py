"""Oracle Fusion saas-batch job scheduler adapter: job status, output files, optional ESS cancel, auth, and
the listing of runs for following a job definition.

The saas-batch job scheduler documents no listing of job requests (only POST and GET .../jobRequests/{id}),
so the listing uses the Enterprise Scheduler (ESS) REST API's "Query job requests with pageIndex"
(GET /ess/rest/scheduler/v1/requests/search/{pageIndex}, docs.oracle.com/en/cloud/saas/applications-common/
24c/farca/op-ess-rest-scheduler-v1-requests-get.html and the Scheduler category list, 25d/farca/
api-scheduler.html). Both APIs live on the same pod URL and take the same credentials (Oracle's own log
collector polls the ESS search with the pod's basic or OAuth credentials, as cancel already does here), so the
listing uses the backend's `base_url` and `auth`: no second host or secret to configure."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bot.backends.auth import ClientCredentials, HeaderAuth, SecretStore
from bot.backends.base import Backend, Capabilities, digits_job_id
from bot.backends.http import error_words, read_body
from bot.backends.values import (
    MAX_LIST_PAGES,
    absolute_url,
    as_int,
    as_text,
    epoch_seconds,
    iso_utc,
    path_segment,
)
from bot.domain.errors import (
    BackendError,
    BadResponse,
    CancelNotSupported,
    CancelRefused,
    JobNotFound,
    TooSlow,
)
from bot.domain.runs import Run
from bot.domain.states import FUSION, Phase, lookup
from bot.domain.status import FailureDetails, JobStatus, Link
from bot.support.config import (
    Auth,
    BackendConfig,
    BasicAuth,
    BearerAuth,
    ConfigError,
    OAuth2ClientCredentials,
)
from bot.support.logs import about
from bot.support.network import cause

log = logging.getLogger(__name__)

STATUS_PATH = "/api/saas-batch/jobscheduler/v1/jobRequests/{}"
FILES_PATH = "/api/saas-batch/jobfilemanager/v1/jobRequests/{}/outputFiles"
CANCEL_PATH = "/ess/rest/scheduler/v1/requests/{}/cancel"
MAX_FILES = 20  # output files listed in a thread; the rest are counted
# outputFiles is paged: Oracle's example answer holds one item and "totalItems": 2, beside `count`, `hasMore`,
# `limit`, `offset` and `links` (docs.oracle.com/en/cloud/saas/applications-common/faude/
# fetch-extract-output-details.html). Which `limit` the server allows is not written there: we ask
# FILES_PAGE_LIMIT and page on by the `offset` of the items we got, at most MAX_FILE_PAGES pages.
FILES_PAGE_LIMIT = 100
MAX_FILE_PAGES = 10
# ESS "Query job requests with pageIndex" (module docstring): pages from 1. Its page size is not documented
# and the answer has no hasMore: Oracle's example page 1 holds "count": 200, so a page of fewer than
# ESS_PAGE items is the last one, and a bigger page raises what counts as a full one.
SEARCH_PATH = "/ess/rest/scheduler/v1/requests/search/{}"
ESS_PAGE = 200
# the fields a listing reads (`fields`: "Common-separated list of fields to return"), so a page stays small
LIST_FIELDS = ("requestId,jobDefinitionId,jobDisplayName,state,submissionTime,processStartTime,"
               "processEndTime")
# the ESS words of a request not yet ended (every word of the status table whose phase is not terminal, but
# UNKNOWN, "Unknown or invalid state"): a request still live at `since` is listed by its state, whenever it
# was submitted
LIVE_WORDS = tuple(sorted(word for word, phase in FUSION.items()
                          if not phase.terminal and phase is not Phase.UNKNOWN))
# phases whose jobProgress.message says something worth showing (else it is "Job status is changed to X")
_MESSAGE_PHASES = {Phase.FAILED, Phase.WARNING, Phase.CANCELLED, Phase.PAUSED, Phase.UNKNOWN}


# -- auth ---------------------------------------------------------------------------------------------
def make_auth(name: str, settings: Auth, clock: Callable[[], float]) -> httpx.Auth:
    """Basic auth (many pods take it), a fixed bearer token, or OAuth 2 client credentials against the
    identity domain's token endpoint, cached until it expires and renewed once on a 401 (NOTES.md, Fusion:
    Auth)."""
    if isinstance(settings, BasicAuth):
        return httpx.BasicAuth(settings.username, settings.password)
    if isinstance(settings, BearerAuth):
        return HeaderAuth.bearer(settings.token)
    if isinstance(settings, OAuth2ClientCredentials):
        return ClientCredentials(name, settings, clock=clock)
    raise ConfigError(
        f"backend '{name}': field 'auth.type': Fusion takes basic, bearer or oauth2, not '{settings.type}'"
    )


# -- parsing ------------------------------------------------------------------------------------------
def _obj(value: Any, where: str, *, required: bool = False) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise BadResponse(f"Fusion answer: {where} is not a JSON object")
    return value


def parse_status(payload: Any, job_id: str) -> JobStatus:
    """Read a jobRequests/{id} answer. Success needs jobProgress.completed == true AND status SUCCEEDED."""
    details = _obj(_obj(payload, "the answer", required=True).get("jobDetails"), "jobDetails", required=True)
    progress = _obj(details.get("jobProgress"), "jobDetails.jobProgress")
    request = _obj(details.get("jobRequest"), "jobDetails.jobRequest")
    word = progress.get("status")
    if word is None:
        word = details.get("jobStatus")
    if not isinstance(word, str) or not word.strip():
        raise BadResponse("Fusion answer has no status word (jobProgress.status / jobStatus)")
    word = word.strip()
    answered = details.get("jobRequestId", progress.get("jobRequestId"))
    if answered is not None:
        if as_int(answered) is None:
            raise BadResponse("Fusion answer: jobRequestId is not a number")
        if job_id.isdigit() and as_int(answered) != int(job_id):
            raise BadResponse(f"Fusion answered about job {as_int(answered)} when asked about {job_id}")

    phase = lookup(FUSION, "Fusion", word)
    completed = progress.get("completed")
    done = completed is True or (isinstance(completed, str) and completed.strip().lower() == "true")
    if word.upper() == "SUCCEEDED" and not done:
        # the documented rule: SUCCEEDED counts only once completed is true (other final ESS states carry no
        # such rule: they end the watch whatever `completed` says)
        phase = Phase.RUNNING
    percent = as_int(progress.get("completedPercentage"))
    if percent is not None:
        percent = max(0, min(100, percent))
    message = as_text(progress.get("message")) if phase in _MESSAGE_PHASES else None
    timeout = as_int(request.get("timeoutThreshold"))

    facts = [
        ("Definition", as_text(request.get("jobDefinitionName"))),
        ("Submitted by", as_text(request.get("jobSubmitter"))),
        ("Started", as_text(progress.get("startTime"))),
        # endTime is filled in even while ENQUEUED (documented): show it only once the job has ended
        ("Ended", as_text(progress.get("endTime")) if phase.terminal else None),
    ]
    job_status = as_text(details.get("jobStatus"))
    if job_status and job_status.upper() != word.upper():
        facts.append(("jobStatus", job_status))
    return JobStatus(
        job_id=job_id,
        phase=phase,
        vendor_status=word,
        name=as_text(request.get("description")) or as_text(request.get("jobDefinitionName")),
        progress=percent,
        message=message,
        facts=tuple((k, v) for k, v in facts if v),
        timeout_s=timeout if timeout and timeout > 0 else None,
    )


@dataclass(frozen=True)
class FilesPage:
    """One page of an outputFiles answer."""

    files: list[tuple[str, int | None]]  # (name, size in bytes)
    links: list[Link]  # download (enclosure) links, by file name
    has_more: bool  # `hasMore`: another page follows
    total: int | None  # `totalItems`: how many files in all, when the server says
    offset: int | None  # the `offset` the server says this page starts at


def parse_output_files(payload: Any, base_url: str) -> FilesPage:
    """Read one outputFiles page: (name, size) pairs, enclosure links and the paging fields."""
    body = _obj(payload, "the outputFiles answer", required=True)
    items = body.get("items", [])
    if not isinstance(items, list):
        raise BadResponse("Fusion outputFiles answer: items is not a list")
    has_more = body.get("hasMore")
    files: list[tuple[str, int | None]] = []
    links: list[Link] = []
    for item in items:
        item = _obj(item, "an outputFiles item", required=True)
        name = as_text(item.get("fileName"))
        if name is None:
            raise BadResponse("Fusion outputFiles item without fileName")
        files.append((name, as_int(item.get("fileSize"))))
        context = item.get("$context")
        href = None
        if isinstance(context, dict) and isinstance(context.get("links"), dict):
            enclosure = context["links"].get("enclosure")
            href = enclosure.get("href") if isinstance(enclosure, dict) else None
        url = absolute_url(base_url, href)
        if url:
            links.append(Link(name, url))
    return FilesPage(files, links, str(has_more).lower() == "true",  # true, or "true" as a string
                     as_int(body.get("totalItems")), as_int(body.get("offset")))


def parse_requests(payload: Any) -> list[Run]:
    """One ESS query page (`items`, Oracle's example page): a run per request with an id and a job
    definition; times are ISO with a zone ("2023-12-06T00:00:53.725Z")."""
    items = _obj(payload, "the ESS query answer", required=True).get("items", [])
    if not isinstance(items, list):
        raise BadResponse("Fusion ESS answer: items is not a list")
    runs: list[Run] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        request_id, definition = as_int(item.get("requestId")), as_text(item.get("jobDefinitionId"))
        if request_id is None or definition is None:
            continue
        word = (as_text(item.get("state")) or "UNKNOWN").upper()
        runs.append(Run(
            job_id=str(request_id), name=definition, phase=lookup(FUSION, "Fusion", word), vendor_status=word,
            started_at=(epoch_seconds(item.get("processStartTime"))
                        or epoch_seconds(item.get("submissionTime"))),
            ended_at=epoch_seconds(item.get("processEndTime")),
            display_name=as_text(item.get("jobDisplayName")),
        ))
    return runs


# -- the adapter --------------------------------------------------------------------------------------
class FusionJobScheduler(Backend):
    type_name = "fusion_jobscheduler"
    label = "Oracle Fusion"
    # The saas-batch API has no cancel; ESS cancel only when `cancel_enabled` (see `can_cancel`).
    capabilities = Capabilities(cancel=False, logs=True)
    cancel_hint = ("Cancel it in Fusion under Tools > Scheduled Processes "
                   "(select the request, then Cancel Process).")
    job_id_help = "it is the job request id the Job Scheduler API returned, digits only, e.g. 44046"

    # Following: a run's followable name is its job definition (ESS `jobDefinitionId`, which `q` filters on;
    # `jobDisplayName` is shown but cannot be queried). ESS ids are paths such as
    # "JobDefinition://oracle/apps/ess/financials/…/GlLoad", told apart by case.
    follow_by = "job definition (jobDefinitionId)"
    names_case_sensitive = True

    def __init__(self, name: str, config: BackendConfig, *, secrets: SecretStore | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        super().__init__(name, config, secrets=secrets, http=http)
        self.clock: Callable[[], float] = time.monotonic  # token expiry; tests replace it
        self.auth = make_auth(name, config.auth, lambda: self.clock())

    @property
    def can_cancel(self) -> bool:
        return bool(self.config.cancel_enabled)

    def validate_job_id(self, text: str) -> str:
        return digits_job_id(text, self.label, self.job_id_help)

    async def status(self, job_id: str) -> JobStatus:
        job_id = self.validate_job_id(job_id)
        payload = await self.get_json(STATUS_PATH.format(path_segment(job_id)))
        return parse_status(payload, job_id)

    def raise_for_status(self, resp: httpx.Response) -> None:
        # ESS says "this request cannot be cancelled now" with a 4xx: that is a refusal, not a broken answer
        if resp.request.url.path.endswith("/cancel") and resp.status_code in (400, 409, 412, 422):
            why = error_words(resp.content, self.credentials(resp.request)) or f"HTTP {resp.status_code}"
            raise CancelRefused(f"Fusion refused to cancel: {why}")
        super().raise_for_status(resp)

    async def cancel(self, job_id: str) -> str:
        job_id = self.validate_job_id(job_id)
        if not self.can_cancel:
            raise CancelNotSupported(
                f"Cancel is not turned on for {self.name}: Fusion's job scheduler API has none. "
                f"{self.cancel_hint}"
            )
        try:
            await self.request("POST", CANCEL_PATH.format(path_segment(job_id)))
        except JobNotFound:
            raise CancelRefused(
                f"Fusion's scheduler (ESS) does not know request {job_id}. {self.cancel_hint}"
            ) from None
        return f"Fusion accepted the cancel for job {job_id}: it goes to CANCELLING, then CANCELLED."

    async def failure_details(self, status: JobStatus) -> FailureDetails | None:
        """Once a job has ended: its failure message and output files (names, sizes, download links)."""
        if not status.terminal:
            return None
        lines: list[str] = []
        if status.message and status.phase is not Phase.SUCCEEDED:
            lines.append(status.message)
        files: list[tuple[str, int | None]] = []
        links: list[Link] = []
        notes: list[str] = []  # about the output files, not errors of the job: they go with the hint
        try:
            files, links, total, complete = await self.output_files(status.job_id)
            shown = files[:MAX_FILES]
            counted = max(total or 0, len(files))
            if not complete and total is None:
                notes.append(f"…and more output files: Fusion said there were more, but not how many "
                             f"({len(files)} read).")
            elif counted > len(shown):
                notes.append(f"…and {counted - len(shown)} more output files.")
            names = {name for name, _ in shown}
            files, links = shown, [link for link in links if link.label in names]
        except JobNotFound:
            pass  # no output files for this request
        except BackendError as exc:
            notes.append(f"Could not list the output files: {exc}.")
        return FailureDetails(
            lines=tuple(lines),
            files=tuple(files),
            links=tuple(links),
            hint=" ".join([*notes, f"More in Fusion: Tools > Scheduled Processes, request {status.job_id}."]),
        )

    async def output_files(
        self, job_id: str
    ) -> tuple[list[tuple[str, int | None]], list[Link], int | None, bool]:
        """Every page of a request's output files: (files, links, totalItems if said, all pages read)."""
        files: list[tuple[str, int | None]] = []
        links: list[Link] = []
        total: int | None = None
        for _ in range(MAX_FILE_PAGES):
            offset = len(files)
            page = parse_output_files(await self.get_json(
                FILES_PATH.format(path_segment(job_id)), params={"offset": offset, "limit": FILES_PAGE_LIMIT},
            ), self.base_url)
            # the server does not page as asked: stop here
            if page.offset is not None and page.offset != offset:
                log.info("%s: outputFiles of %s answered offset %s when asked %s; not paging on",
                         self.name, job_id, page.offset, offset, extra=about(self.name, job_id))
                return files, links, total, False
            files += page.files
            links += page.links
            total = page.total if page.total is not None else total
            if not page.has_more or not page.files:
                return files, links, total, True
        return files, links, total, False

    async def recent_runs(self, since: float) -> list[Run]:
        """Every job request submitted or ended after `since`, or in a state not yet ended, oldest
        submission first, as Oracle's log collector asks (one SCIM `q`, `orderBy=submissionTime:asc`), page
        after page until one holds fewer than a full page (at most MAX_LIST_PAGES)."""
        at = iso_utc(since, millis=True)
        clauses = [f'submissionTime gt "{at}"', f'processEndTime gt "{at}"',
                   *(f'state eq "{word}"' for word in LIVE_WORDS)]
        params = {"q": " or ".join(clauses), "orderBy": "submissionTime:asc", "fields": LIST_FIELDS}
        runs: list[Run] = []
        full = ESS_PAGE
        for index in range(1, MAX_LIST_PAGES + 1):
            page = parse_requests(await self.get_json(SEARCH_PATH.format(index), params=params))
            runs += page
            full = max(full, len(page))
            if len(page) < full:
                return runs
        log.warning("%s: the ESS listing goes on past %d pages; read the first %d runs", self.name,
                    MAX_LIST_PAGES, len(runs), extra=about(self.name))
        return runs

    async def job_names(self) -> list[str]:
        """The job definitions of the requests of the last day (Fusion's REST APIs document no listing of job
        definitions)."""
        return sorted({run.name for run in await self.recent_runs(time.time() - 86400.0)})

    async def check(self) -> list[tuple[str, bool, str]]:
        """Probe with a status call for job 0: a JSON 404 proves reachability, auth and the API path."""
        try:
            async with (
                self.sending(),
                self.http.stream("GET", self.url(STATUS_PATH.format("0")), auth=self.auth) as resp,
            ):
                await read_body(resp, self.name)
        except TooSlow as exc:  # no whole answer within the backend's `timeout`: a hung or dripping server
            return [("reachable", False, str(exc))]
        except BackendError as exc:  # the OAuth token endpoint refused or failed
            return [("authenticated", False, str(exc))]
        except httpx.HTTPError as exc:
            return [("reachable", False, f"{self.base_url} is unreachable: {cause(exc)}")]
        code = resp.status_code
        rows = [("reachable", True, f"{self.base_url} answered HTTP {code}")]
        if code == 401:
            return [*rows, ("authenticated", False, f"{self.name} refused our credentials (HTTP 401)")]
        rows.append(("authenticated", code != 403, "credentials accepted" if code != 403
                     else "credentials accepted, but this account may not read job requests (HTTP 403)"))
        api_ok = code in (200, 404) and "json" in resp.headers.get("content-type", "")
        rows.append(("job scheduler API v1", api_ok, "answered as the job scheduler API does" if api_ok
                     else "unexpected answer: check base_url (it should be the pod URL, without /api)"))
        return rows
