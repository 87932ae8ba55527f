"""Oracle EPM Data Integration adapter: job status, and on failure the job log's error lines via interop.

Status: `GET /aif/rest/V1/jobs/{id}` (see epm_common for the quirks). Failure details: the job's
`logFileName` is downloaded with `GET /interop/rest/11.1.2.3.600/applicationsnapshots/{name}/contents`
(the whole name URL-encoded, `\\` turned into `/`; a server path becomes its repository name, see
`interop_names`); its ERROR/FATAL/Exception lines with a little context are shown (bounded), and the whole log
is attached when it is at most 1 MB. When no name works, the thread says so and shows the path EPM gave.
No cancel in the REST API.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from bot.backends.base import Capabilities
from bot.backends.epm_common import EpmBackend, parse_epm_status, validate_epm_job_id
from bot.backends.values import path_segment
from bot.domain.errors import BackendError, BadResponse, Forbidden
from bot.domain.status import FailureDetails, JobStatus

VENDOR = "epm_data_integration"
INTEROP = "/interop/rest/11.1.2.3.600"

ATTACH_MAX_BYTES = 1024 * 1024  # attach the whole log up to this size, else give its path
LOG_SCAN_MAX_BYTES = 32 * 1024 * 1024  # read at most this much of a log looking for errors
ERROR_LINE = re.compile(r"\b(?:ERROR|FATAL|SEVERE)\b|Exception\b")
_ABSOLUTE = re.compile(r"/|[A-Za-z]:/")  # a server path: from the root, or a drive letter


def parse_status(payload: Any, job_id: str) -> JobStatus:
    """One Data Integration job status answer (decoded JSON) as a JobStatus; BadResponse on wrong shapes."""
    return parse_epm_status(payload, job_id, VENDOR)


class LogExcerpt:
    """Reads a log as it streams in and keeps its error lines with context, bounded, plus the small whole.

    Lines matching ERROR/FATAL/SEVERE (as words) or "Exception" are errors; each comes with `before` lines
    before and `after` lines after it; gaps between excerpts are marked "…". At most `max_lines` lines and
    `max_chars` characters are kept; every error is still counted in `total_errors`.
    """

    def __init__(self, *, before: int = 1, after: int = 2, max_lines: int = 40, max_chars: int = 3000,
                 line_chars: int = 300, keep_bytes: int = ATTACH_MAX_BYTES, tail: int = 10) -> None:
        self.after = after
        self.max_lines = max_lines
        self.max_chars = max_chars
        self.line_chars = line_chars
        self.keep_bytes = keep_bytes
        self.lines: list[str] = []
        self.total_errors = 0
        self.size = 0
        self.full = False
        self._chars = 0
        self._before: deque[tuple[int, str]] = deque(maxlen=before)
        self.tail: deque[str] = deque(maxlen=tail)
        self._after_left = 0
        self._last_no = 0
        self._no = 0
        self._partial = b""
        self._kept: list[bytes] | None = []

    @property
    def content(self) -> bytes | None:
        """The whole log when it was at most `keep_bytes`, else None."""
        return b"".join(self._kept) if self._kept is not None else None

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self._kept is not None:
            if self.size <= self.keep_bytes:
                self._kept.append(data)
            else:
                self._kept = None
        buf = self._partial + data
        *complete, self._partial = buf.split(b"\n")
        for raw in complete:
            self._line(raw)
        if len(self._partial) > 65536:  # one giant line: take what we have
            self._line(self._partial)
            self._partial = b""

    def finish(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = b""

    def _line(self, raw: bytes) -> None:
        self._no += 1
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if ERROR_LINE.search(text):
            self.total_errors += 1
            if not self.full:
                for no, before in self._before:
                    if no > self._last_no:
                        self._emit(no, before)
                self._emit(self._no, text)
                self._after_left = self.after
        elif self._after_left > 0:
            self._after_left -= 1
            self._emit(self._no, text)
        self._before.append((self._no, text))
        if text.strip():
            self.tail.append(text)

    def _emit(self, no: int, text: str) -> None:
        if self.full:
            return
        if len(text) > self.line_chars:
            text = text[: self.line_chars - 1] + "…"
        new = ["…", text] if self.lines and no > self._last_no + 1 else [text]
        cost = sum(len(t) + 1 for t in new)
        if len(self.lines) + len(new) > self.max_lines or self._chars + cost > self.max_chars:
            self.full = True
            return
        self.lines.extend(new)
        self._chars += cost
        self._last_no = no


def log_path_of(status: JobStatus) -> str | None:
    """The job's log file among its paths (logFileName comes first; outputs are not logs)."""
    for path in status.log_paths:
        if path.lower().endswith(".log"):
            return path
    for path in status.log_paths:
        if "logs/" in path.replace("\\", "/").lower():
            return path
    return None


def interop_names(log_path: str) -> list[str]:
    """The names the interop download may know a log by, best first: the one place this rule lives.

    The interop API names files by their place in the EPM repository: List Files shows `outbox/logs/X.log`,
    and Oracle's Download page gives a repository file by its path there ("inbox\\s112.csv", the whole name
    URL- encoded; docs.oracle.com/en/cloud/saas/enterprise-performance-management-common/prest/download.html).
    Data Integration may give the log's server path instead, `/u03/inbox/outbox/logs/Vision_271.log` (seen by
    jasonwjones/pbj-pbcs-client, src/main/java/com/jasonwjones/di/api/v1/JobDefinition.java). So `\\` becomes
    `/`; a relative name is used as it is; a server path is cut to its part from the last `outbox` segment on,
    and else (or next) tried as `outbox/logs/{its file name}`, where Data Integration writes its process logs.
    Whether the download itself refuses a server path is not written anywhere: it is tried only when nothing
    else is left.
    """
    name = log_path.replace("\\", "/").strip()
    if not _ABSOLUTE.match(name):
        return [name]
    parts = [p for p in name.split("/") if p]
    names = []
    outbox = [i for i, part in enumerate(parts) if part.lower() == "outbox"]
    if outbox and outbox[-1] < len(parts) - 1:
        names.append("/".join(parts[outbox[-1]:]))
    if parts:
        names.append(f"outbox/logs/{parts[-1]}")
    names.append(name)
    return list(dict.fromkeys(names))


class EpmDataIntegration(EpmBackend):
    """Oracle EPM Data Integration jobs (type `epm_data_integration`)."""

    type_name = "epm_data_integration"
    label = "EPM Data Integration"
    capabilities = Capabilities(cancel=False, logs=True, batch=False)
    cancel_hint = (
        "Data Integration has no cancel API: cancel the job in the EPM web UI, under Data Integration > "
        "Process Details (or the Jobs console)."
    )
    job_id_help = "it is the Data Integration process (job) id, digits only, e.g. 1881"
    # Oracle's Data Integration REST reference (docs.oracle.com/en/cloud/saas/enterprise-performance-
    # management-common/prest/, "Data Integration") documents running a job (POST /aif/rest/{v}/jobs) and one
    # job's status (GET .../jobs/{jobIdentifier}), and no GET of the jobs collection: `recent_runs` raises
    # FollowNotSupported with this hint.
    follow_hint = ("Oracle documents no listing of Data Integration runs (only one run's status by its "
                   "process id): watch each run by its id instead, e.g. from the pipeline that starts it "
                   "(POST /api/v1/watches).")

    def validate_job_id(self, text: str) -> str:
        return validate_epm_job_id(text, self.label, self.job_id_help)

    async def status(self, job_id: str) -> JobStatus:
        job_id = self.validate_job_id(job_id)
        payload = await self.get_json(f"/aif/rest/V1/jobs/{path_segment(job_id)}")
        return parse_status(payload, job_id)

    async def failure_details(self, status: JobStatus) -> FailureDetails | None:
        where = f"Data Integration > Process Details in the EPM web UI (process id {status.job_id})"
        message = (status.message,) if status.message else ()
        log_path = log_path_of(status)
        if log_path is None:
            return FailureDetails(lines=message, hint=f"No log file was named; see {where}.")
        names = interop_names(log_path)
        got: tuple[str, LogExcerpt, bool] | None = None
        failed: BackendError | None = None
        for name in names:
            excerpt = LogExcerpt()
            try:
                _size, cut = await self.download(
                    f"{INTEROP}/applicationsnapshots/{path_segment(name)}/contents", excerpt.feed,
                    max_bytes=LOG_SCAN_MAX_BYTES,
                )
            except BadResponse as exc:  # EPM has no file by that name (its JSON error): the next name may do
                failed = exc
                continue
            except BackendError as exc:  # an outage or refused credentials: another name will not help
                failed = exc
                break
            got = (name, excerpt, cut)
            break
        if got is None:
            assert failed is not None  # interop_names always gives a name to ask for
            asked = f"; asked the interop API for {', '.join(names)}" if names != [log_path] else ""
            return FailureDetails(
                lines=message, files=((log_path, None),),
                hint=f"The log {log_path} could not be downloaded ({failed.message}{asked}); see {where}.",
            )
        name, excerpt, cut = got
        excerpt.finish()
        content = excerpt.content
        filename = name.rsplit("/", 1)[-1] or "job.log"
        lines = list(excerpt.lines)
        hint_parts = []
        if not lines:
            lines = list(excerpt.tail)[-8:]
            hint_parts.append("The log has no ERROR/FATAL/Exception lines; its last lines are shown.")
        if cut:
            hint_parts.append(
                f"Only the first {LOG_SCAN_MAX_BYTES // (1024 * 1024)} MB of the log were read."
            )
        if content is None:
            hint_parts.append(f"The whole log is {log_path} (too large to attach); see {where}.")
        return FailureDetails(
            lines=tuple(lines),
            total_errors=excerpt.total_errors,
            files=((log_path, excerpt.size),),
            attachment=(filename, content) if content is not None else None,
            hint=" ".join(hint_parts) or None,
        )

    async def check(self) -> list[tuple[str, bool, str]]:
        rows = await self.oauth_check()
        if rows and not rows[0][1]:
            return rows
        try:
            payload = await self.get_json(f"{INTEROP}/applicationsnapshots")
        except Forbidden:
            rows.append(("EPM API and credentials", False,
                         "credentials accepted, but this account may not use "
                         "the interop API (HTTP 403): job logs cannot be downloaded"))
            return rows
        except BackendError as exc:
            rows.append(("EPM API and credentials", False, exc.message))
            return rows
        items = payload.get("items") if isinstance(payload, dict) else None
        count = len(items) if isinstance(items, list) else 0
        rows.append(("EPM API and credentials", True, f"interop API answered ({count} files visible)"))
        return rows
